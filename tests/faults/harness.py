"""Kill-point drills (security.md DB-01, DB-09, API-01): a business operation killed with SIGKILL at
its N-th database statement, or just before or just after one of its commits, leaves the database
exactly as before the operation or exactly as after it.

The parent (the test) imports everything once and seeds a world; each operation starts from a
saved *stage* of that world. For every drill the parent ``os.fork()``s a child that opens its own
connection (the parent holds none across the fork: a SQLite or PostgreSQL connection shared by
two processes is corrupted by the first one that writes), counts the statements of the
operation through the database's ``execute_sql`` and ``commit``, and kills itself at the chosen
point. A dry run (no ``kill_at``) lists an operation's points and gives the "after" state.

``snapshot()`` reads every table whole, so "exactly before or exactly after" covers every row the
operation may touch (values, status, versions, signatures, audit tail, outbox messages). The
stage is put back after every drill (``Stages``), sequences included: the next complete run must
number its rows as the dry run did. ``Receiver`` stands for the remote system outbox messages go to.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import traceback
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from core.db import close_db, db, init_db, is_sqlite, parse_database_url

# Columns whose value differs between two complete runs of the same operation from the same
# stage (all else is frozen: core.clock, the ids): a CMS SignedData made by the server (the .p12
# and seal providers) carries the machine clock's signing time (cryptography's builder), and the
# signature row keeps that time and the CMS's digest; an e-mail's outbox message gets a random
# idempotency key. Compared without those parts (the rows themselves are still counted).


def _present(value):
    return value is not None and value not in (b"", "")


def _evidence(value):
    evidence = json.loads(value) if isinstance(value, str) else dict(value)
    evidence.pop("cms_sha256", None)
    evidence.get("times", {}).pop("signing_time", None)
    return json.dumps(evidence, sort_keys=True)


VOLATILE = {
    ("core_report_signature", "cms"): _present,
    ("core_report_signature", "signing_time"): _present,
    ("core_report_signature", "evidence"): _evidence,
    ("core_outbox_message", "key"): _present,
}


# -- kill points ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Point:
    """A place to die: before the ``index``-th statement, or before/after a commit."""

    index: int  # position in the operation's sequence of points
    kind: str  # "sql", "before_commit", "after_commit"
    label: str  # the statement's first words, for the drill's printout


def instrument(database, *, kill_at: int | None, seen: list) -> None:
    """Wrap ``database`` (this process's own object) so each statement and commit is a numbered
    point; at point ``kill_at`` the process SIGKILLs itself, with no cleanup of any kind."""
    execute_sql, commit = database.execute_sql, database.commit

    def point(kind, label):
        seen.append(Point(len(seen), kind, label))
        if kill_at is not None and len(seen) - 1 == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    def counted_sql(sql, params=None):
        point("sql", " ".join(str(sql).split()[:4])[:60])
        return execute_sql(sql, params)

    def counted_commit(*args, **kwargs):
        point("before_commit", "COMMIT")
        result = commit(*args, **kwargs)
        point("after_commit", "COMMIT done")
        return result

    database.execute_sql = counted_sql
    database.commit = counted_commit


@dataclass
class ChildResult:
    killed: bool
    points: list = field(default_factory=list)
    error: str = ""


def run_in_child(url: str, operation, *, kill_at: int | None = None) -> ChildResult:
    """Fork; the child runs ``operation()`` on a new connection to ``url`` and dies at ``kill_at``
    (or runs to the end and reports its points)."""
    close_db()  # no connection of the parent's crosses the fork: each process opens its own
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 0
        try:
            os.close(read_end)
            seen: list[Point] = []
            database = init_db(url)  # its own pool: nothing inherited is used
            instrument(database, kill_at=kill_at, seen=seen)
            with db.connection_context():
                operation()
            payload = {"points": [[p.index, p.kind, p.label] for p in seen]}
        except BaseException:  # noqa: BLE001 — reported to the parent, which fails the drill
            payload, code = {"error": traceback.format_exc()[-3000:]}, 3
        with os.fdopen(write_end, "w") as out:
            out.write(json.dumps(payload))
        os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end) as inp:
        text = inp.read()
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL:
        return ChildResult(killed=True)
    payload = json.loads(text or "{}")
    return ChildResult(killed=False, points=[Point(*p) for p in payload.get("points", [])],
                       error=payload.get("error", "") or ("" if os.WEXITSTATUS(status) == 0 else f"exit {status}"))


# -- what the database holds ----------------------------------------------------------------------

def _plain(value):
    if isinstance(value, memoryview):
        return bytes(value)
    return value


def snapshot() -> dict:
    """Every table's rows (sorted), volatile columns reduced to what stays the same. PostgreSQL
    gives all its tables in one statement (one round trip instead of one a table)."""
    tables = {}
    if is_sqlite():
        for table in db.get_tables():
            cursor = db.execute_sql(f'SELECT * FROM "{table}"')
            names = [c[0] for c in cursor.description]
            tables[table] = [dict(zip(names, row)) for row in cursor.fetchall()]
    else:
        names = db.get_tables()
        columns = ", ".join(f"""(SELECT coalesce(json_agg(row_to_json(t)), '[]') FROM "{table}" t)"""
                            for table in names)
        tables = dict(zip(names, db.execute_sql(f"SELECT {columns}").fetchone()))
    out = {}
    for table, rows in sorted(tables.items()):
        kept = []
        for row in rows:
            for name, reduce in VOLATILE.items():
                if name[0] == table and name[1] in row:
                    row[name[1]] = reduce(row[name[1]])
            kept.append(tuple(_plain(v) for v in row.values()))
        out[table] = sorted(kept, key=repr)
    return out


def differences(got: dict, expected: dict, limit: int = 5) -> list[str]:
    """The tables where ``got`` differs from ``expected``, with a few rows of each side."""
    out = []
    for table in sorted(set(got) | set(expected)):
        a, b = got.get(table, []), expected.get(table, [])
        if a != b:
            only_got = [r for r in a if r not in b][:limit]
            only_expected = [r for r in b if r not in a][:limit]
            out.append(f"{table}: {len(a)} rows vs {len(b)}; only now: {repr(only_got)[:600]}; "
                       f"only expected: {repr(only_expected)[:600]}")
    return out


def integrity_ok() -> bool:
    return not is_sqlite() or db.execute_sql("PRAGMA integrity_check").fetchone()[0] == "ok"


# -- stages: saved states of the world ------------------------------------------------------------

class Stages:
    """Saved states of the test database, put back whole: on SQLite a copy of the file; on
    PostgreSQL every table's rows (``COPY … TO STDOUT``) and every sequence, written back in one
    transaction with triggers off (the audit table refuses DELETE). Copying a database with
    ``CREATE DATABASE … TEMPLATE`` instead cost 0.3–4 s a copy on a busy server; the rows cost a
    few milliseconds. The caller holds no connection when it saves or restores."""

    def __init__(self, url: str, directory: Path):
        self.url = url
        self.spec = parse_database_url(url)
        self.directory = directory
        self.saved: dict[str, object] = {}

    def _connect(self):
        import psycopg

        return psycopg.connect(self.url, autocommit=True)

    def save(self, name: str) -> None:
        if self.spec.backend == "sqlite":
            with db.connection_context():  # the whole database in its main file
                db.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            close_db()
            target = self.directory / f"stage-{name}.db"
            shutil.copyfile(self.spec.database, target)
            self.saved[name] = target
            return
        close_db()
        with self._connect() as conn:
            tables = [row[0] for row in conn.execute(
                "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace "
                "AND relkind IN ('r', 'p') ORDER BY relname")]
            rows = {}
            for table in tables:
                with conn.cursor().copy(f'COPY "{table}" TO STDOUT') as copy:
                    rows[table] = b"".join(bytes(block) for block in copy)
            sequences = conn.execute(
                "SELECT quote_ident(schemaname) || '.' || quote_ident(sequencename), "
                "coalesce(last_value, start_value), last_value IS NOT NULL FROM pg_sequences "
                "WHERE schemaname = 'public'").fetchall()
        self.saved[name] = (rows, sequences)

    def restore(self, name: str, tables=None) -> None:
        """Put stage ``name`` back; on PostgreSQL only ``tables`` (names) when given — those an
        operation writes — and every sequence."""
        close_db()
        if self.spec.backend == "sqlite":
            for extra in (Path(f"{self.spec.database}-wal"), Path(f"{self.spec.database}-shm")):
                extra.unlink(missing_ok=True)
            shutil.copyfile(self.saved[name], self.spec.database)
        else:
            rows, sequences = self.saved[name]
            chosen = [t for t in rows if tables is None or t in tables]
            with self._connect() as conn, conn.transaction():
                # Replica mode: no trigger fires (foreign keys, the audit chain's append-only guard).
                conn.execute("SET LOCAL session_replication_role = replica; "
                             + "; ".join(f'DELETE FROM "{table}"' for table in chosen))
                for table in chosen:
                    if rows[table]:
                        with conn.cursor().copy(f'COPY "{table}" FROM STDIN') as copy:
                            copy.write(rows[table])
                self._setval(conn, sequences)
        init_db(self.url)

    @staticmethod
    def _setval(conn, sequences) -> None:
        if sequences:
            conn.cursor().executemany("SELECT setval(%s::regclass, %s, %s)", sequences)


# -- a receiver that records idempotency keys -----------------------------------------------------

class Receiver:
    """A local HTTP endpoint standing for the remote system: it records every delivery's
    idempotency key (``hits``); a repeat of a key it already has is acknowledged and not counted
    again (``accepted``), as a receiver honouring the key does."""

    def __init__(self):
        self.hits: list[str] = []
        self.accepted: dict[str, int] = {}
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 — http.server's name
                key = self.headers.get("Idempotency-Key", "")
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    receiver.hits.append(key)
                    receiver.accepted.setdefault(key, 0)
                    if receiver.hits.count(key) == 1:
                        receiver.accepted[key] += 1
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/messages"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def clear(self) -> None:
        with self._lock:
            self.hits.clear()
            self.accepted.clear()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def deliver(self, message, settings) -> None:
        """A channel's ``deliver``: POST the payload with the message's idempotency key."""
        body = json.dumps(message.payload).encode()
        request = urllib.request.Request(self.url, data=body, method="POST",
                                         headers={"Idempotency-Key": message.key,
                                                  "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            if response.status >= 300:
                raise RuntimeError(f"receiver said {response.status}")
