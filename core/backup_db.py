"""The database half of a backup: a consistent dump, its facts, and putting it back.

SQLite is copied with the online backup API (``sqlite3.Connection.backup``): a consistent copy
while the server runs, never a file copy that loses the ``-wal`` or tears a transaction
(security.md F16, BAK-01). PostgreSQL is dumped with ``pg_dump --format=custom`` inside a
snapshot exported by our own REPEATABLE READ transaction, so the row counts and the audit chain's
head written in the manifest describe exactly the rows in the dump, however busy the server is.
The password reaches pg_dump and pg_restore through ``PGPASSWORD``, never the command line (which
any local user can read in the process list).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

from core.db import DatabaseURL, parse_database_url
from core.errors import BaocaoError

AUDIT_TABLE = "core_audit_event"
MIGRATIONS_SUFFIX = "_migrations"  # playhouse.migrations history tables (core.migrate)
DUMP_NAMES = {"sqlite": "database.sqlite3", "postgresql": "database.pgdump"}


@dataclass(frozen=True)
class Facts:
    """What the manifest records of a database, and what a restore must find again."""

    tables: dict  # table -> row count
    audit: dict  # {"count", "last_id", "last_hash"}
    migrations: dict  # history table -> applied step names, in order

    def as_dict(self) -> dict:
        return {"tables": self.tables, "audit": self.audit, "migrations": self.migrations}


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _tables(conn, kind: str) -> list[str]:
    if kind == "sqlite":
        sql = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
    else:
        # Every schema a dump holds, not only public (a schema of its own is named "schema.table").
        sql = ("SELECT CASE WHEN table_schema = 'public' THEN table_name ELSE table_schema || '.' || table_name END "
               "FROM information_schema.tables WHERE table_schema NOT IN ('pg_catalog', 'information_schema') "
               "AND table_schema NOT LIKE 'pg\\_%' ORDER BY 1")
    return [row[0] for row in conn.execute(sql).fetchall()]


def _relation(name: str) -> str:
    return ".".join(_quote(part) for part in name.split(".", 1))


def read_facts(conn, kind: str) -> Facts:
    """Row counts of every table, the audit chain's head and count, and the migrations applied,
    through a DB-API connection (sqlite3 or psycopg) already inside the snapshot to describe."""
    # nosec B608 below: the names come from the database's own catalogue, quoted by _relation, or are the
    # constant AUDIT_TABLE; no input reaches the SQL.
    tables = {name: conn.execute(f"SELECT count(*) FROM {_relation(name)}").fetchone()[0]  # nosec B608
              for name in _tables(conn, kind)}
    audit = {"count": tables.get(AUDIT_TABLE, 0), "last_id": None, "last_hash": None}
    if AUDIT_TABLE in tables:
        head = conn.execute(f"SELECT id, hash FROM {AUDIT_TABLE} ORDER BY id DESC LIMIT 1").fetchone()  # nosec B608
        if head:
            audit.update(last_id=head[0], last_hash=head[1])
    migrations = {name: [row[0] for row in conn.execute(f"SELECT name FROM {_relation(name)} ORDER BY name")]  # nosec B608
                  for name in tables if name.endswith(MIGRATIONS_SUFFIX)}
    return Facts(tables, audit, migrations)


# -- SQLite ---------------------------------------------------------------------------------------

def _sqlite_path(spec: DatabaseURL) -> Path:
    if spec.is_memory:
        raise BaocaoError("backup.error.memory_database")
    return Path(spec.database)


def sqlite_dump(spec: DatabaseURL, target: Path) -> Facts:
    source_path = _sqlite_path(spec)
    if not source_path.is_file():  # sqlite3.connect would quietly create an empty one
        raise BaocaoError("backup.error.no_database", database=str(source_path))
    source = sqlite3.connect(source_path)
    copy = sqlite3.connect(target)
    try:
        source.backup(copy)  # pages=-1: one step under one read lock, so one consistent state
        check = copy.execute("PRAGMA integrity_check").fetchone()[0]
        if check != "ok":  # a damaged source: say so now, not on the day of the restore
            raise BaocaoError("backup.error.integrity", detail=str(check)[:300])
        facts = read_facts(copy, "sqlite")
    finally:
        copy.close()
        source.close()
    return facts


def sqlite_restore(dump: Path, spec: DatabaseURL) -> None:
    path = _sqlite_path(spec)
    path.parent.mkdir(parents=True, exist_ok=True)
    source = sqlite3.connect(dump)
    target = sqlite3.connect(path)
    try:
        source.backup(target)
    finally:
        target.close()
        source.close()


@contextlib.contextmanager
def connect(spec: DatabaseURL):
    """A plain DB-API connection (not the application's pool) to the database of ``spec``."""
    if spec.backend == "sqlite":
        conn = sqlite3.connect(_sqlite_path(spec))
    else:
        import psycopg

        try:
            conn = psycopg.connect(**spec.connect_kwargs())
        except psycopg.OperationalError as exc:
            raise BaocaoError("backup.error.connect", database=f"{spec.host or ''}/{spec.database}",
                              detail=" ".join(str(exc).split())[:300]) from None
    try:
        yield conn
    finally:
        conn.close()


def is_empty(url: str) -> bool:
    """True when the database has no table at all (a SQLite file that does not exist yet counts)."""
    spec = parse_database_url(url)
    if spec.backend == "sqlite" and not _sqlite_path(spec).exists():
        return True
    with connect(spec) as conn:
        return not _tables(conn, spec.backend)


def facts_of(url: str) -> Facts:
    spec = parse_database_url(url)
    with connect(spec) as conn:
        return read_facts(conn, spec.backend)


# -- PostgreSQL -----------------------------------------------------------------------------------

def _libpq_value(value: str) -> str:
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def _pg_command(tool: str, spec: DatabaseURL) -> tuple[list[str], dict]:
    """The tool's path and connection arguments, and the environment carrying the password."""
    path = shutil.which(tool)
    if path is None:
        raise BaocaoError("backup.error.tool_missing", tool=tool)
    # A conninfo string as --dbname carries the URL's options (sslmode…) as libpq reads them.
    conninfo = " ".join(f"{key}={_libpq_value(value)}" for key, value in (("dbname", spec.database), *spec.options))
    args = [path, "--dbname", conninfo, "--no-password"]
    if spec.host:
        args += ["--host", spec.host]
    if spec.port:
        args += ["--port", str(spec.port)]
    if spec.user:
        args += ["--username", spec.user]
    env = dict(os.environ)
    if spec.password is not None:
        env["PGPASSWORD"] = spec.password
    return args, env


def _run(tool: str, args: list[str], env: dict) -> None:
    try:
        done = subprocess.run(args, env=env, capture_output=True, text=True, errors="replace")
    except OSError as exc:
        raise BaocaoError("backup.error.tool_failed", tool=tool, detail=str(exc)) from None
    if done.returncode != 0:
        detail = " ".join((done.stderr or done.stdout or f"exit {done.returncode}").split())[:500]
        raise BaocaoError("backup.error.tool_failed", tool=tool, detail=detail)


def pg_dump(spec: DatabaseURL, target: Path) -> Facts:
    import psycopg

    args, env = _pg_command("pg_dump", spec)
    with connect(spec) as conn:
        conn.read_only = True
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ  # one snapshot for every read
        snapshot = conn.execute("SELECT pg_export_snapshot()").fetchone()[0]
        facts = read_facts(conn, "postgresql")
        # The exported snapshot lives as long as this transaction: pg_dump runs inside it.
        _run("pg_dump", [*args, "--format=custom", f"--snapshot={snapshot}", "--file", str(target)], env)
        conn.rollback()
    return facts


def pg_restore(dump: Path, spec: DatabaseURL) -> None:
    args, env = _pg_command("pg_restore", spec)
    # All or nothing; --no-owner and --no-privileges: the source server's roles need not exist here.
    _run("pg_restore", [*args, "--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction",
                        str(dump)], env)


def dump(url: str, target_dir: Path) -> tuple[str, Path, Facts]:
    """Dump the database of ``url`` into ``target_dir``: (kind, the dump's path, its facts)."""
    spec = parse_database_url(url)
    target = target_dir / DUMP_NAMES[spec.backend]
    facts = (sqlite_dump if spec.backend == "sqlite" else pg_dump)(spec, target)
    return spec.backend, target, facts


def restore(kind: str, dump_path: Path, url: str) -> None:
    spec = parse_database_url(url)
    if spec.backend != kind:
        raise BaocaoError("backup.error.kind_mismatch", archive=kind, target=spec.backend)
    (sqlite_restore if kind == "sqlite" else pg_restore)(dump_path, spec)
