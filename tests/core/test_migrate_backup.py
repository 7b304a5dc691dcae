"""A backup before migrating (security.md DB-08; docs/backup.md): pending steps on a database that
holds data are preceded by an archive of it; production without a backup key refuses, naming the
two ways out, unless told explicitly (``--without-backup``, ``migrate_without_backup``), and that
choice is audited; the start lock lets one process back up and migrate. And the migration of a
seeded database (the demo) from an older schema to head keeps every row, the audit chain and the
stored hashes."""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from core import audit, backup, backup_db, integrity
from core.backup_crypto import write_new_key
from core.db import db, parse_database_url
from core.errors import BaocaoError
from core.migrate import CORE_MIGRATIONS, migrate_all, pending, runner
from core.plugins import build_plugin_manager
from core.registry import build_registry

LAST = sorted(p.stem for p in Path(CORE_MIGRATIONS).glob("[0-9]*.py"))[-1]


@pytest.fixture
def production(settings, tmp_path):
    """The test's settings in production mode, without a backup key."""
    return replace(settings, mode="production", backup_dir=str(tmp_path / "backups"))


@pytest.fixture
def with_key(production, tmp_path):
    return replace(production, backup_key_file=str(write_new_key(tmp_path / "backup.key")))


@pytest.fixture
def migrated(settings):
    """The test's migrated database, no connection held (a command or an app re-points the proxy)."""
    from core.db import close_db, init_db

    init_db(settings.database_url)
    yield
    close_db()


@pytest.fixture
def plugins(settings):
    pm = build_plugin_manager(settings)
    return build_registry(pm, settings), pm


def roll_back(target: str | None = None) -> list[str]:
    """Undo the core's last step (or every step back through ``target``): an older schema."""
    with db.connection_context():
        return runner("core", CORE_MIGRATIONS).down(target)


def core_pending(plugins) -> list[str]:
    return pending(*plugins)["core"]


def archives(settings) -> list[Path]:
    folder = Path(settings.backup_dir)
    return sorted(folder.glob("baocao-*.bcbak")) if folder.is_dir() else []


def events(action: str) -> list[dict]:
    with db.connection_context():
        return [json.loads(e.details) for e in audit.AuditEvent.select().where(audit.AuditEvent.action == action)
                .order_by(audit.AuditEvent.id)]


def test_production_without_a_key_refuses_and_names_both_ways_out(db_session, production, plugins):
    roll_back()
    with pytest.raises(BaocaoError) as refused:
        migrate_all(*plugins, production)
    for lang in ("vi", "en"):
        text = refused.value.message(lang)
        assert "baocao backup keygen" in text and "baocao migrate --without-backup" in text
        assert "migrate_without_backup" in text
    assert core_pending(plugins) == [LAST]  # nothing migrated
    assert archives(production) == [] and events("migrate.applied") == []


def test_production_with_a_key_backs_up_first_then_migrates_and_audits_it(db_session, with_key, plugins):
    roll_back()
    applied = migrate_all(*plugins, with_key)
    assert applied["core"] == [LAST] and core_pending(plugins) == []
    [archive] = archives(with_key)
    manifest = backup.verify_archive(with_key, archive)
    # Taken before the step: the archive's history lacks it, the database's has it now.
    core_history = manifest["migrations"]["core_migrations"]
    assert LAST not in core_history and core_history == sorted(core_history)
    [event] = events("migrate.applied")
    assert event["backup"] == archive.name and event["sha256"] == backup.sha256_file(archive)[0]
    assert event["steps"] == {"core": [LAST]}
    # Nothing pending: no backup, no event.
    assert migrate_all(*plugins, with_key) == {"core": [], **{k: [] for k in applied if k != "core"}}
    assert archives(with_key) == [archive] and len(events("migrate.applied")) == 1


def test_the_command_refuses_then_migrates_without_backup_when_told(migrated, production, run_production_cli,
                                                                    capsys, plugins):
    roll_back()
    assert run_production_cli("migrate") == 2
    err = capsys.readouterr().err
    assert "baocao backup keygen" in err and "--without-backup" in err and "khóa sao lưu" in err
    assert core_pending(plugins) == [LAST]
    assert run_production_cli("migrate", "--without-backup") == 0
    assert core_pending(plugins) == [] and archives(production) == []
    [event] = events("migrate.applied")
    assert event["why"] == "without_backup" and event["backup"] == ""


@pytest.fixture
def run_production_cli(monkeypatch, production):
    from core import cli

    for name, value in {"BAOCAO_DATABASE_URL": production.database_url, "BAOCAO_SECRET_KEY": production.secret_key,
                        "BAOCAO_MODE": "production", "BAOCAO_ALLOWED_HOSTS": "baocao.example.vn",
                        "BAOCAO_FILES_DIR": production.files_dir, "BAOCAO_BACKUP_DIR": production.backup_dir}.items():
        monkeypatch.setenv(name, value)
    for name in ("BAOCAO_SETTINGS", "BAOCAO_BACKUP_KEY_FILE", "BAOCAO_MIGRATE_WITHOUT_BACKUP"):
        monkeypatch.delenv(name, raising=False)
    # In a context of its own, as a command's process: what the command names for the rest of its
    # context (the plugins for report events, the message catalogue) does not stay in the test's.
    return lambda *args: contextvars.copy_context().run(cli.main, list(args))


def test_the_server_start_refuses_without_a_key_unless_the_setting_says_go_on(migrated, production, plugins):
    from starlette.testclient import TestClient

    from web.app import create_app

    roll_back()
    with pytest.raises(BaocaoError) as refused:
        with TestClient(create_app(production, load_entrypoints=False)):
            pass
    assert refused.value.key == "migrate.error.backup_required"
    assert core_pending(plugins) == [LAST]
    with TestClient(create_app(replace(production, migrate_without_backup=True), load_entrypoints=False)) as client:
        assert client.get("/login").status_code == 200
    assert core_pending(plugins) == [] and archives(production) == []
    [event] = events("migrate.applied")
    assert event["why"] == "setting"


def test_outside_production_a_backup_is_not_required(db_session, settings, plugins):
    assert settings.mode == "test" and not settings.backup_key_file
    roll_back()
    assert migrate_all(*plugins, settings)["core"] == [LAST]
    [event] = events("migrate.applied")
    assert event["why"] == "not_production"


@pytest.mark.empty_database
def test_a_new_database_has_nothing_to_back_up(production, plugins):
    from core.db import init_db

    init_db(production.database_url)
    applied = migrate_all(*plugins, production)
    assert applied["core"][-1] == LAST and archives(production) == []
    [event] = events("migrate.applied")
    assert event["why"] == "new_database"


def test_only_the_process_holding_the_start_lock_backs_up_and_migrates(db_session, with_key, plugins):
    from core.startup import one_start_at_a_time

    roll_back()
    other = one_start_at_a_time(with_key.database_url)  # another process, in the middle of its start
    done = {}
    waiting = threading.Thread(target=lambda: done.update(applied=migrate_all(*plugins, with_key)))
    waiting.start()
    waiting.join(0.5)
    assert waiting.is_alive() and archives(with_key) == [] and core_pending(plugins) == [LAST]
    other.close()
    waiting.join(60)
    assert done["applied"]["core"] == [LAST] and len(archives(with_key)) == 1


# -- production-like data: the demo, from an older schema to head -------------------------------------

def row_counts(url: str, *, history: bool = False) -> dict[str, int]:
    """Rows of every table (the migration histories only with ``history``: they grow by design)."""
    with backup_db.connect(parse_database_url(url)) as conn:
        tables = backup_db.read_facts(conn, parse_database_url(url).backend).tables
    return {t: n for t, n in tables.items() if history or not t.endswith(backup_db.MIGRATIONS_SUFFIX)}


def test_a_seeded_database_migrates_from_an_older_schema_keeping_every_row(db_session, with_key, plugins,
                                                                          tmp_path):
    from core.demo import issue_demo_regimes, seed_demo
    from core.reporting.versions import ReportVersion

    today = dt.date(2026, 11, 26)
    demo = seed_demo(with_key, tmp_path / "certs")
    list(plugins[1].call_each("seed_demo", stage="contribution", settings=with_key, today=today, demo_ca=demo.ca))
    issue_demo_regimes(plugins[1], with_key, today)
    with db.connection_context():
        versions = sorted(ReportVersion.select(ReportVersion.id, ReportVersion.sha256).tuples())
    seeded = row_counts(with_key.database_url)
    assert seeded["core_unit"] > 50 and seeded["core_audit_event"] > 0
    undone = roll_back("0033_regime_authority")  # five steps back: columns and a table dropped
    assert undone[-1] == "0033_regime_authority" and len(undone) >= 5
    older = row_counts(with_key.database_url)
    older_with_history = row_counts(with_key.database_url, history=True)

    applied = migrate_all(*plugins, with_key)

    assert applied["core"] == list(reversed(undone))
    after = row_counts(with_key.database_url)
    # Every row is still there; the audit trail has grown by the backup and the migration only.
    assert {t: n for t, n in after.items() if t in older and t != "core_audit_event"} == \
        {t: n for t, n in older.items() if t != "core_audit_event"}
    assert after["core_audit_event"] == older["core_audit_event"] + 2
    assert {t: n for t, n in seeded.items() if t != "core_audit_event"} == \
        {t: n for t, n in after.items() if t != "core_audit_event"}
    with db.connection_context():
        assert audit.verify().ok
        assert sorted(ReportVersion.select(ReportVersion.id, ReportVersion.sha256).tuples()) == versions
        assert integrity.verify_stored(with_key).ok
        if parse_database_url(with_key.database_url).backend == "sqlite":
            assert db.execute_sql("PRAGMA foreign_key_check").fetchall() == []
            assert db.execute_sql("PRAGMA integrity_check").fetchone()[0] == "ok"
    [archive] = archives(with_key)
    # The archive holds the older schema's rows, all of them.
    assert backup.verify_archive(with_key, archive)["tables"] == older_with_history
