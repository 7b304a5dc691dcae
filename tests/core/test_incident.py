"""The incident evidence export (security.md VN-02): the window's audit events with their chain
hashes, the login attempts, the sessions, the people and reports they name, a manifest whose
SHA-256 values match the files, a bilingual README; the export audited; the window bounded; and
the ``baocao incident export`` command as an operator runs it. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import zipfile

import pytest

from core import audit, incident
from core.accounts.login import LoginAttempt
from core.errors import BaocaoError
from core.models import Session, Unit, User
from core.reporting import data as rd
from tests.fixtures.forms import form_world

T0 = dt.datetime(2026, 3, 2, 1, 0)  # 08:00 in Hà Nội
WINDOW = ("2026-03-02T07:00", "2026-03-02T12:00")  # local: 00:00 – 05:00 UTC
FORMULA = "=cmd|' /C calc'!A0"


def read(archive: bytes) -> tuple[dict, dict]:
    """The archive's files as bytes, and each CSV as a list of dicts."""
    with zipfile.ZipFile(io.BytesIO(archive)) as z:
        files = {name: z.read(name) for name in z.namelist()}
    tables = {name: list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
              for name, data in files.items() if name.endswith(".csv")}
    return files, tables


@pytest.fixture
def incident_world(db_session, frozen_clock):
    frozen_clock(T0)
    w = form_world()
    frozen_clock(T0 + dt.timedelta(hours=1))
    rd.save(w.p["reporter"], w.report.id, {("banle", "cur"): (rd.MISSING, "10")})
    reporter, other = w.users["reporter"], w.users["other"]
    LoginAttempt.create(address="203.0.113.7", attempted_at=T0 + dt.timedelta(minutes=30), username="reporter",
                        success=True)
    LoginAttempt.create(address="198.51.100.9", attempted_at=T0 + dt.timedelta(minutes=40), username=FORMULA)
    LoginAttempt.create(address="198.51.100.9", attempted_at=T0 + dt.timedelta(days=5), username="other")
    Session.create(token_hash="a" * 64, user=reporter, created_at=T0 + dt.timedelta(minutes=30),
                   last_seen_at=T0 + dt.timedelta(hours=1), client_address="203.0.113.7", user_agent="Firefox")
    Session.create(token_hash="b" * 64, user=other, created_at=T0 - dt.timedelta(days=10),
                   last_seen_at=T0 - dt.timedelta(days=9), client_address="192.0.2.1", user_agent="Chrome")
    frozen_clock(T0 + dt.timedelta(days=3))
    audit.record("auth.login", actor=other)  # outside the window
    frozen_clock(T0 + dt.timedelta(days=3, hours=1))
    return w


def export(**filters) -> tuple[incident.Result, bytes]:
    buffer = io.BytesIO()
    win = incident.window(*WINDOW, unit_code=filters.get("unit", ""), username=filters.get("user", ""))
    result = incident.export(buffer, win, exported_by={"via": "test"})
    return result, buffer.getvalue()


def test_the_package_holds_the_window_s_evidence_and_a_manifest_that_proves_it(incident_world):
    w = incident_world
    head_before = audit.AuditEvent.select().order_by(audit.AuditEvent.id.desc()).first()
    result, archive = export()
    files, tables = read(archive)
    assert set(files) == {*incident.FILES, "manifest.json", "README.txt"}
    # Every audit event of the window, every column, with the hashes of the chain; none outside it.
    expected = list(audit.AuditEvent.select().where(
        (audit.AuditEvent.at >= T0 - dt.timedelta(hours=1)) & (audit.AuditEvent.at < T0 + dt.timedelta(hours=4))
        & (audit.AuditEvent.action != incident.ACTION)).order_by(audit.AuditEvent.id))
    rows = tables["audit.csv"]
    assert [int(r["id"]) for r in rows] == [e.id for e in expected] and expected
    assert [(r["prev_hash"], r["hash"]) for r in rows] == [(e.prev_hash, e.hash) for e in expected]
    assert rows[-1]["action"] == "report.saved" and rows[-1]["at_local"] == "2026-03-02T09:00:00"
    assert rows[-1]["at_utc"] == "2026-03-02T02:00:00Z"
    # Login attempts of the window, the typed formula neutralised; the sessions started or active.
    logins = tables["logins.csv"]
    assert [(r["address"], r["username"], r["success"]) for r in logins] == [
        ("203.0.113.7", "reporter", "yes"), ("198.51.100.9", "'" + FORMULA, "no")]
    assert [(s["username"], s["unit_name"], s["client_address"], s["user_agent"]) for s in tables["sessions.csv"]] \
        == [("reporter", "Xã Ái Tử", "203.0.113.7", "Firefox")]
    assert b"a" * 64 not in b"".join(files.values())  # never a session token's hash
    # The people and the report those rows name; a typed name without an account is listed too.
    users = {r["username"]: r for r in tables["affected_users.csv"]}
    assert {"reporter", "editor", "issuer", "'" + FORMULA} <= set(users) and "other" not in users
    assert users["reporter"]["appears_in"] == "audit logins sessions"
    assert users["'" + FORMULA]["user_id"] == ""
    reports = tables["affected_reports.csv"]
    assert [(int(r["report_id"]), r["unit_name"], r["status"]) for r in reports] == [(w.report.id, "Xã Ái Tử", "draft")]
    # Excel reads UTF-8 because of the BOM.
    assert all(files[name].startswith("\ufeff".encode()) for name in incident.FILES)
    # The manifest: filters, when (UTC and local), counts, each file's SHA-256, the chain's head, verified.
    manifest = json.loads(files["manifest.json"])
    assert manifest["filters"]["from_utc"] == "2026-03-02T00:00:00Z" and manifest["filters"]["to_utc"] == \
        "2026-03-02T05:00:00Z"
    assert manifest["exported_at_utc"] == "2026-03-05T02:00:00Z"
    assert manifest["exported_at_local"] == "2026-03-05T09:00:00+07:00"
    assert manifest["exported_by"] == {"via": "test"}
    assert manifest["counts"] == {name: len(tables[name]) for name in incident.FILES}
    assert manifest["sha256"] == {name: hashlib.sha256(files[name]).hexdigest()
                                  for name in (*incident.FILES, "README.txt")}
    assert manifest["audit_chain"]["verified"] is True
    assert (manifest["audit_chain"]["head_id"], manifest["audit_chain"]["head_hash"]) == (head_before.id,
                                                                                          head_before.hash)
    # The README says what each file is, and the 24 h / 72 h duties, in both languages.
    readme = files["README.txt"].decode("utf-8")
    for text in (*incident.FILES, "manifest.json", "24 giờ", "72 giờ", "24 hours", "72 hours"):
        assert text in readme
    # The export is in the trail, with its filters and the manifest's SHA-256; the chain still holds.
    event = audit.AuditEvent.select().order_by(audit.AuditEvent.id.desc()).first()
    assert event.id == result.event.id and event.action == "incident.exported"
    details = json.loads(event.details)
    assert details["filters"] == manifest["filters"]
    assert details["manifest_sha256"] == hashlib.sha256(files["manifest.json"]).hexdigest()
    assert audit.verify().ok


def test_unit_and_user_filters_narrow_every_file(incident_world):
    w = incident_world
    _, archive = export(unit="CL")  # Xã Cam Lộ: nothing of Ái Tử's
    _, tables = read(archive)
    assert tables["logins.csv"] == [] and tables["sessions.csv"] == [] and tables["affected_reports.csv"] == []
    assert all(int(r["unit_id"]) == w.u["camlo"].id for r in tables["audit.csv"])
    _, archive = export(user="Reporter")
    _, tables = read(archive)
    assert {r["actor_name"] for r in tables["audit.csv"]} == {"reporter"}
    assert [r["username"] for r in tables["logins.csv"]] == ["reporter"]
    assert [r["username"] for r in tables["affected_users.csv"]] == ["reporter"]


@pytest.mark.parametrize("start, end, unit, key", [
    ("2026-03-01T00:00", "2026-04-01T00:01", "", "incident.error.too_long"),
    ("2026-03-02T12:00", "2026-03-02T07:00", "", "incident.error.order"),
    ("02/03/2026", "2026-03-02T07:00", "", "incident.error.time"),
    ("", "2026-03-02T07:00", "", "incident.error.required"),
    ("2026-03-02T07:00", "2026-03-02T12:00", "NO-SUCH", "incident.error.unit"),
])
def test_a_bad_window_is_refused_in_both_languages_and_nothing_is_recorded(db_session, start, end, unit, key):
    before = audit.AuditEvent.select().count()
    with pytest.raises(BaocaoError) as exc:
        incident.window(start, end, unit_code=unit)
    assert exc.value.key == key
    assert exc.value.message("vi") != exc.value.message("en") and key not in str(exc.value)
    assert audit.AuditEvent.select().count() == before


def test_thirty_one_days_is_the_limit_and_times_without_offset_are_the_instance_s(db_session):
    win = incident.window("2026-03-01T00:00", "2026-04-01T00:00")
    assert (win.start, win.end) == (dt.datetime(2026, 2, 28, 17, 0), dt.datetime(2026, 3, 31, 17, 0))
    assert incident.window("2026-02-28T12:00Z", "2026-03-01T01:00+07:00").end == dt.datetime(2026, 2, 28, 18, 0)


# -- the command ------------------------------------------------------------------------------------

def test_the_command_writes_the_package_and_records_it(tmp_path, database_url):
    from core.db import close_db, db, init_db
    from tests.core.test_cli import run

    env = {"BAOCAO_DATABASE_URL": database_url}
    init_db(database_url)
    try:
        with db.connection_context():
            from core.migrate import migrate_core

            migrate_core()
            province = Unit.create(code="44", name="Tỉnh Quảng Trị", kind="province")
            from core.accounts import login as accounts

            user = accounts.create_user("canbo", "Cán bộ", accounts.random_password(), province)
            audit.record("auth.login", actor=user)
            now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    finally:
        close_db()
    start, end = (now - dt.timedelta(hours=1)).isoformat() + "Z", (now + dt.timedelta(hours=1)).isoformat() + "Z"
    out = tmp_path / "su-co.zip"
    done = run("incident", "export", "--from", start, "--to", end, "--user", "canbo", "--out", str(out),
               cwd=tmp_path, **env)
    assert done.returncode == 0, done.stderr
    assert str(out) in done.stdout and "1 sự kiện nhật ký" in done.stdout
    files, tables = read(out.read_bytes())
    assert [r["action"] for r in tables["audit.csv"]] == ["auth.login"]
    manifest = json.loads(files["manifest.json"])
    assert manifest["exported_by"]["via"] == "command" and manifest["audit_chain"]["verified"] is True
    assert not (tmp_path / "su-co.zip.partial").exists()
    # Evidence is never overwritten; a window over 31 days is refused in one line, both languages.
    again = run("incident", "export", "--from", start, "--to", end, "--out", str(out), cwd=tmp_path, **env)
    assert again.returncode == 2 and "đã có" in again.stderr and "exists already" in again.stderr
    long = run("incident", "export", "--from", "2026-01-01T00:00", "--to", "2026-03-01T00:00", "--out",
               str(tmp_path / "long.zip"), cwd=tmp_path, **env)
    assert long.returncode == 2 and len(long.stderr.strip().splitlines()) == 1
    assert "tối đa 31 ngày" in long.stderr and "at most 31 days" in long.stderr
    assert not (tmp_path / "long.zip").exists()
    init_db(database_url)
    try:
        with db.connection_context():
            recorded = [json.loads(e.details) for e in audit.AuditEvent.select().where(
                audit.AuditEvent.action == incident.ACTION)]
            assert audit.verify().ok
    finally:
        close_db()
    assert len(recorded) == 1 and recorded[0]["filters"]["user"] == "canbo" and recorded[0]["via"] == "command"
