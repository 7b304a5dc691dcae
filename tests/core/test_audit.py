"""The audit trail itself: the hash chain, the database refusing edits, ``baocao audit verify``,
concurrent writers, and the events the core records (security.md §2.6 LOG-01..LOG-04).

Runs on SQLite and, with ``BAOCAO_TEST_DATABASE_URL``, on PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import peewee
import pytest

from core import audit
from core.activation import overrides, set_activation
from core.audit import ACTIONS, OBJECT_TYPES, RESULT_LABELS, AuditEvent, record, verify
from core.db import close_db, db, init_db, is_sqlite
from core.i18n import LANGUAGES, core_catalog
from core.models import Unit, User, utcnow

SCRIPT = shutil.which("baocao", path=str(Path(sys.executable).parent)) or str(Path(sys.executable).with_name("baocao"))


@pytest.fixture
def people(db_session):
    province = Unit.create(code="44", name="Tỉnh Quảng Trị", kind="province")
    district = Unit.create(code="464", name="Huyện Gio Linh", kind="district", parent=province)
    clerk = User.create(username="canbo", full_name="Cán bộ", password_hash="x", unit=district)
    return SimpleNamespace(province=province, district=district, clerk=clerk)


def fill(actor, count: int) -> list[AuditEvent]:
    kinds = list(ACTIONS)
    return [record(kinds[i % len(kinds)], actor=actor, object_type="user", object_id=i,
                   result=audit.RESULTS[i % 3], details={"n": i, "text": "Xã Gio Mỹ"}) for i in range(count)]


def drop_append_only_triggers() -> None:
    """What an attacker with the database owner's rights does first."""
    if is_sqlite():
        db.execute_sql("DROP TRIGGER core_audit_event_no_update")
        db.execute_sql("DROP TRIGGER core_audit_event_no_delete")
    else:
        db.execute_sql("ALTER TABLE core_audit_event DISABLE TRIGGER core_audit_event_append_only")


# -- LOG-02: the chain ------------------------------------------------------------------------------

def test_log02_the_chain_verifies_after_many_events(people):
    events = fill(people.clerk, 150)
    result = verify()
    assert result.ok and result.checked == 150
    assert events[0].prev_hash == audit.GENESIS
    assert all(b.prev_hash == a.hash for a, b in zip(events, events[1:]))
    assert len({e.hash for e in events}) == 150


def test_log02_an_event_the_database_appends_hashes_as_verify_rebuilds_it(db_session):
    """On PostgreSQL the chain's lock, the last hash and the insert are one call to a function of the
    database (migration 0039), which hashes in SQL: its hash, for Vietnamese text and every field,
    must be the one ``verify`` rebuilds in Python. (On SQLite the same assertions hold for the insert
    made in Python.)"""
    details = {"ghi chú": "Xã Gio Mỹ – số liệu “tháng 2” ≥ 5 ½", "emoji": "📊", "n": 3}
    made = [record("report.saved", object_type="report", object_id=n, details=details) for n in range(3)]
    stored = list(AuditEvent.select().order_by(AuditEvent.id))[-3:]
    assert [(e.id, e.prev_hash, e.hash) for e in made] == [(e.id, e.prev_hash, e.hash) for e in stored]
    assert [e.at for e in made] == [e.at for e in stored]
    assert all(e.compute_hash() == e.hash for e in stored)
    assert stored[1].prev_hash == stored[0].hash and stored[2].prev_hash == stored[1].hash
    assert json.loads(stored[0].details) == details
    assert verify().ok


def test_log02_an_empty_trail_verifies(db_session):
    assert verify() == audit.Verification(True, 0)


def test_log02_an_edited_row_is_named_by_verify(people):
    events = fill(people.clerk, 10)
    drop_append_only_triggers()
    db.execute_sql("UPDATE core_audit_event SET details = '{\"n\": 999}' WHERE id = %s" % events[4].id)
    result = verify()
    assert not result.ok and result.broken_id == events[4].id and result.reason == "content"
    assert result.checked == 4 and result.broken_action == events[4].action
    assert result.broken_at == AuditEvent.get_by_id(events[4].id).at


def test_log02_a_deleted_row_breaks_the_link_of_the_next(people):
    events = fill(people.clerk, 10)
    drop_append_only_triggers()
    db.execute_sql("DELETE FROM core_audit_event WHERE id = %s" % events[5].id)
    result = verify()
    assert not result.ok and result.broken_id == events[6].id and result.reason == "link"


def test_log02_a_row_rehashed_after_editing_still_breaks_the_next_link(people):
    events = fill(people.clerk, 5)
    drop_append_only_triggers()
    forged = AuditEvent.get_by_id(events[2].id)
    forged.result = "ok" if forged.result != "ok" else "failed"
    forged.hash = forged.compute_hash()
    forged.save()
    result = verify()
    assert (result.broken_id, result.reason) == (events[3].id, "link")


@pytest.mark.parametrize("statement", [
    "UPDATE core_audit_event SET result = 'ok'",
    "UPDATE core_audit_event SET details = '{}' WHERE id = {id}",
    "DELETE FROM core_audit_event WHERE id = {id}",
    "DELETE FROM core_audit_event",
])
def test_log02_the_database_refuses_updates_and_deletes(people, statement):
    events = fill(people.clerk, 3)
    before = [(e.id, e.hash, e.details) for e in AuditEvent.select().order_by(AuditEvent.id)]
    with pytest.raises(peewee.DatabaseError, match="append-only"):
        with db.atomic():
            db.execute_sql(statement.replace("{id}", str(events[1].id)))
    assert [(e.id, e.hash, e.details) for e in AuditEvent.select().order_by(AuditEvent.id)] == before
    assert verify().ok


def test_log02_the_model_cannot_update_or_delete_either(people):
    event = record("user.create", actor=people.clerk)
    event.result = "failed"
    with pytest.raises(peewee.DatabaseError, match="append-only"):
        with db.atomic():
            event.save()
    with pytest.raises(peewee.DatabaseError, match="append-only"):
        with db.atomic():
            event.delete_instance()
    assert verify().ok and AuditEvent.get_by_id(event.id).result == "ok"


def test_log02_the_table_cannot_be_emptied_at_once(people):
    """TRUNCATE on PostgreSQL (it skips row triggers, so a statement trigger guards it);
    SQLite has no TRUNCATE, its equivalent is a DELETE without WHERE."""
    fill(people.clerk, 3)
    statement = "DELETE FROM core_audit_event" if is_sqlite() else "TRUNCATE core_audit_event"
    with pytest.raises(peewee.DatabaseError, match="append-only"):
        with db.atomic():
            db.execute_sql(statement)
    assert AuditEvent.select().count() == 3


# -- LOG-02: concurrent writers keep one chain ---------------------------------------------------------

def test_log02_concurrent_writers_keep_one_chain(people):
    """4 threads × 20 events, each on its own connection: no two events claim one predecessor."""
    actor_id, errors = people.clerk.id, []
    barrier = threading.Barrier(4)

    def writer(n):
        try:
            with db.connection_context():
                actor = User.get_by_id(actor_id)
                barrier.wait(timeout=10)
                for i in range(20):
                    record("plugin.switch", actor=actor, object_type="plugin", object_id=f"t{n}-{i}")
        except Exception as exc:  # noqa: BLE001 — reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    events = list(AuditEvent.select().order_by(AuditEvent.id))
    assert len(events) == 80
    assert len({e.prev_hash for e in events}) == 80  # a fork would repeat a predecessor
    result = verify()
    assert result.ok and result.checked == 80


def test_log02_concurrent_business_transactions_keep_one_chain(people, settings):
    """The same with the record inside a longer business transaction (plugin switches)."""
    from core.registry import Domain

    registry = SimpleNamespace(plugin_names=lambda: ["fx_good"], domains={"fx_good": Domain("fx_good", "x")})
    units = [Unit.create(code=f"U{n}", name=f"Xã {n}", kind="commune", parent=people.district).id
             for n in range(4)]
    actor_id, errors = people.clerk.id, []

    def writer(unit_id):
        try:
            with db.connection_context():
                actor = User.get_by_id(actor_id)
                for i in range(10):
                    set_activation(unit_id, "fx_good", ("on", "off", "inherit")[i % 3], actor, registry)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(u,)) for u in units]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert AuditEvent.select().where(AuditEvent.action == "plugin.switch").count() == 40
    assert verify().ok


# -- LOG-01 / LOG-04: what an event carries ------------------------------------------------------------

def test_log01_log04_an_event_carries_who_what_where_and_utc_time(people):
    before = utcnow()
    token = audit.current_request.set(audit.RequestInfo("abc123def456", "203.0.113.7"))
    try:
        event = record("grant.add", actor=people.clerk, unit=people.province, object_type="grant", object_id=42,
                       details={"role": "viewer"})
    finally:
        audit.current_request.reset(token)
    stored = AuditEvent.get_by_id(event.id)
    assert (stored.actor_id, stored.actor_name, stored.unit_id) == (people.clerk.id, "canbo", people.province.id)
    assert (stored.action, stored.object_type, stored.object_id, stored.result) == ("grant.add", "grant", "42", "ok")
    assert (stored.request_id, stored.client_address) == ("abc123def456", "203.0.113.7")
    assert before <= stored.at <= utcnow()  # naive UTC, as both backends store it
    assert stored.at.tzinfo is None
    # Without a unit the actor's own unit is used; outside a request there is no id or address.
    plain = AuditEvent.get_by_id(record("auth.logout", actor=people.clerk).id)
    assert plain.unit_id == people.district.id and plain.request_id == plain.client_address == ""


def test_log01_a_result_outside_the_list_is_refused(people):
    with pytest.raises(ValueError):
        record("auth.login", actor=people.clerk, result="maybe")
    assert AuditEvent.select().count() == 0


def test_log03_control_characters_in_details_are_encoded(people):
    event = record("user.create", actor=people.clerk, details={"name": "An\nINFO forged line\r\x1b[31m"})
    stored = AuditEvent.get_by_id(event.id).details
    assert "\n" not in stored and "\r" not in stored and "\x1b" not in stored
    assert json.loads(stored)["name"].startswith("An\nINFO")


def test_log01_a_plugin_switch_is_recorded_with_the_switch(people):
    from core.registry import Domain

    registry = SimpleNamespace(plugin_names=lambda: ["fx_good"], domains={"fx_good": Domain("fx_good", "x")})
    set_activation(people.district.id, "fx_good", "off", people.clerk, registry, reset_subtree=True)
    event = AuditEvent.get(AuditEvent.action == "plugin.switch")
    assert (event.actor_id, event.unit_id, event.object_type, event.object_id) == \
        (people.clerk.id, people.district.id, "plugin", "fx_good")
    assert json.loads(event.details) == {"state": "off", "reset_subtree": True}


def test_log01_the_switch_and_its_record_commit_together(people, monkeypatch):
    from core.registry import Domain

    registry = SimpleNamespace(plugin_names=lambda: ["fx_good"], domains={"fx_good": Domain("fx_good", "x")})

    def broken(*args, **kwargs):
        raise RuntimeError("audit store unavailable")

    monkeypatch.setattr(audit, "record", broken)
    with pytest.raises(RuntimeError):
        set_activation(people.district.id, "fx_good", "off", people.clerk, registry)
    assert overrides("fx_good") == {}  # no record, no change


# -- the action catalogue ------------------------------------------------------------------------------

def recorded_actions() -> set[str]:
    """Every action the core and its screens record: literal first arguments of ``audit.record``,
    and the verbs of ``f"regime.{action}"`` (the lifecycle actions of core/regimes/regimes.py)."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    found = set()
    for path in [*(root / "core").rglob("*.py"), *(root / "web").rglob("*.py")]:
        text = path.read_text(encoding="utf-8")
        found |= set(re.findall(r"audit\.record\(\s*\"([a-z_.]+)\"", text))
        found |= set(re.findall(r"audit\.record\(\"([a-z_.]+)\"", text))
        if 'f"regime.{action}"' in text:
            found |= {f"regime.{verb}" for verb in re.findall(r"_lifecycle\(access, regime_id, \"([a-z_]+)\"", text)}
    return found


def test_log01_every_action_the_core_and_its_screens_use_has_words_in_both_languages():
    wanted = {"auth.login", "auth.login_failed", "auth.logout", "auth.locked", "auth.password_changed",
              "user.create", "user.disable", "user.enable", "user.password_reset", "user.unlock", "grant.add",
              "grant.remove", "session.end", "plugin.switch", "audit.export", "access.denied"}
    assert wanted <= set(ACTIONS)
    assert "regime.retire" in recorded_actions() and "unit.change" in recorded_actions()
    assert sorted(recorded_actions() - set(ACTIONS)) == []
    catalog = core_catalog()
    for lang in LANGUAGES:
        for key in [*ACTIONS.values(), *OBJECT_TYPES.values(), *RESULT_LABELS.values()]:
            assert key in catalog.messages[lang], (lang, key)
    assert set(RESULT_LABELS) == set(audit.RESULTS)
    assert catalog.gettext("vi", ACTIONS["auth.login"]) == "Đăng nhập"
    assert catalog.gettext("vi", ACTIONS["plugin.switch"]) == "Bật/tắt phân hệ"


# -- baocao audit verify ---------------------------------------------------------------------------------

def run_cli(database_url, cwd, *args) -> subprocess.CompletedProcess:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(cwd), "LANG": "C.UTF-8",
           "BAOCAO_DATABASE_URL": database_url}
    return subprocess.run([SCRIPT, *args], cwd=cwd, env=env, capture_output=True, text=True, encoding="utf-8",
                          timeout=120)


@pytest.fixture
def trail(settings, database_url):
    """A migrated database with 12 events, closed again so the command has it to itself."""
    from core.migrate import migrate_core

    init_db(database_url)
    migrate_core()
    with db.connection_context():
        unit = Unit.create(code="44", name="Tỉnh Quảng Trị", kind="province")
        actor = User.create(username="quantri", full_name="Quản trị", password_hash="x", unit=unit)
        ids = [e.id for e in fill(actor, 12)]
    close_db()
    yield ids
    close_db()


def tamper(database_url, *statements) -> None:
    init_db(database_url)
    with db.connection_context():
        drop_append_only_triggers()
        for statement in statements:
            db.execute_sql(statement)
    close_db()


def test_log02_cli_audit_verify_reports_an_intact_chain(trail, database_url, tmp_path):
    result = run_cli(database_url, tmp_path, "audit", "verify")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    assert "12 sự kiện" in lines[0] and "12 event(s)" in lines[0] and "toàn vẹn" in lines[0]


def test_log02_cli_audit_verify_names_the_edited_event(trail, database_url, tmp_path):
    tamper(database_url, "UPDATE core_audit_event SET details = '{\"n\": 0}' WHERE id = %d" % trail[7])
    result = run_cli(database_url, tmp_path, "audit", "verify")
    assert result.returncode == 1, result.stdout + result.stderr
    line = result.stdout.strip()
    assert len(line.splitlines()) == 1
    assert f"#{trail[7]}" in line and "nội dung" in line and "content" in line
    assert list(ACTIONS)[7] in line  # the action of the broken event (fill() cycles through ACTIONS)
    assert " UTC" in line


def test_log02_cli_audit_verify_reports_a_deleted_event_as_a_broken_link(trail, database_url, tmp_path):
    tamper(database_url, "DELETE FROM core_audit_event WHERE id = %d" % trail[5])
    result = run_cli(database_url, tmp_path, "audit", "verify")
    assert result.returncode == 1
    line = result.stdout.strip()
    assert f"#{trail[6]}" in line and "không còn nối" in line and "no longer links" in line


@pytest.mark.empty_database
def test_cli_audit_verify_without_a_schema_says_so(database_url, tmp_path):
    close_db()
    result = run_cli(database_url, tmp_path, "audit", "verify")
    assert result.returncode == 2
    assert "baocao migrate" in result.stderr and "Traceback" not in result.stderr


def test_cli_audit_needs_a_subcommand(tmp_path):
    result = subprocess.run([SCRIPT, "audit"], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                            env={"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "LANG": "C.UTF-8"})
    assert result.returncode == 2 and "verify" in result.stderr


def test_vietnam_days_become_utc_bounds(people, monkeypatch):
    """A Vietnam calendar day runs from 17:00 UTC the day before (LOG-04: stored in UTC)."""
    times = iter([dt.datetime(2026, 5, 1, 16, 30), dt.datetime(2026, 5, 1, 17, 30)])
    monkeypatch.setattr(audit, "utcnow", lambda: next(times))
    late, early = record("auth.login", actor=people.clerk), record("auth.logout", actor=people.clerk)
    day = dt.date(2026, 5, 2)
    on_the_2nd = audit.search(audit.Filters(date_from=day, date_to=day), scope=None)
    assert [e.id for e in on_the_2nd] == [early.id]
    on_the_1st = audit.search(audit.Filters(date_to=dt.date(2026, 5, 1)), scope=None)
    assert [e.id for e in on_the_1st] == [late.id]
