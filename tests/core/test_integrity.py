"""Stored-data integrity (security.md CRY-03): every stored hash recomputed — frozen report versions,
their signatures, attachments, feedback screenshots — by ``verify_stored``, ``baocao integrity
verify`` and the worker's daily job (audited, administrators told, metric); and the free space of
the filesystems the instance writes to (LOG-05), read at each scrape."""

from __future__ import annotations

import collections
import contextvars
import datetime as dt
import hashlib
import json
import re

import pytest

from core import audit, integrity
from core.accounts.permissions import core_access
from core.db import close_db, db, init_db, parse_database_url
from core import feedback as fb
from core.reporting import data as rd
from core.reporting import notifications
from core.reporting.data import ReportAttachment, attachment_path
from core.reporting.versions import ReportVersion
from tests.fixtures.signing import fill, sign_p12, signed_world

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 64


@pytest.fixture
def world(make_settings):
    """A signed, submitted report with two attachments, and a feedback item with its screenshot.
    No connection held: the command opens and closes the database itself."""
    settings = make_settings(require_signature=True)
    init_db(settings.database_url)
    with db.connection_context():
        w = signed_world()
        w.settings = settings
        fill(w)
        for name in ("Phụ lục 1.pdf", "Phụ lục 2.pdf"):
            rd.add_attachment(w.p["reporter"], w.report.id, name, PDF + name.encode(), settings=settings)
        w.version = sign_p12(w)  # the revision the attachments left
        w.feedback = fb.submit(core_access(w.users["reporter"]), kind="problem", title="Không in được",
                               description="Bấm In thì trang trắng.", screenshot=("man-hinh.png", PNG),
                               settings=settings)
        w.attachments = list(ReportAttachment.select().order_by(ReportAttachment.id))
    yield w
    close_db()


def tamper(w) -> dict:
    """What an intruder with database and disk access does behind the application's back: a number
    changed in the frozen version, an attachment's bytes changed, a screenshot deleted."""
    with db.connection_context():
        version = ReportVersion.get_by_id(w.version.id)
        altered = version.canonical.replace('"10"', '"99"')
        assert altered != version.canonical
        ReportVersion.update(canonical=altered).where(ReportVersion.id == version.id).execute()
    second = w.attachments[1]
    path = attachment_path(w.settings.files_root(), second.stored_name)
    path.write_bytes(PDF + b"sua doi")
    (w.settings.files_root() / "feedback" / w.feedback.screenshot_stored[:2] / w.feedback.screenshot_stored).unlink()
    return {"canonical": hashlib.sha256(altered.encode("utf-8")).hexdigest(),
            "attachment": hashlib.sha256(PDF + b"sua doi").hexdigest()}


def test_untouched_data_verifies_in_batches(world):
    with db.connection_context():
        result = integrity.verify_stored(world.settings, batch=1)  # one row a batch: every batch boundary crossed
    assert result.ok
    assert result.checked == {"report_version": 1, "signature": 1, "attachment": 2, "screenshot": 1}


def test_each_altered_or_missing_item_is_named_with_its_report_and_unit(world):
    found = tamper(world)
    with db.connection_context():
        result = integrity.verify_stored(world.settings, batch=1)
    by_kind = {m.kind: m for m in result.mismatches}
    assert sorted(by_kind) == ["attachment", "report_version", "screenshot", "signature"]
    assert len(result.mismatches) == 4
    version = by_kind["report_version"]
    assert (version.id, version.report_id, version.unit) == (world.version.id, world.report.id, world.u["aitu"].code)
    assert (version.expected, version.actual) == (world.version.sha256, found["canonical"])
    # The signature signed the bytes as they were: it no longer covers them.
    assert by_kind["signature"].expected == world.version.sha256 and by_kind["signature"].actual == found["canonical"]
    attachment = by_kind["attachment"]
    assert attachment.id == world.attachments[1].id and attachment.expected == world.attachments[1].sha256
    assert attachment.actual.startswith(found["attachment"]) and not attachment.missing
    screenshot = by_kind["screenshot"]
    assert screenshot.id == world.feedback.id and screenshot.missing and screenshot.report_id is None
    assert screenshot.expected == hashlib.sha256(PNG).hexdigest()


@pytest.fixture
def run_cli(monkeypatch, world):
    from core import cli

    settings = world.settings
    for name, value in {"BAOCAO_DATABASE_URL": settings.database_url, "BAOCAO_SECRET_KEY": settings.secret_key,
                        "BAOCAO_MODE": "test", "BAOCAO_FILES_DIR": settings.files_dir}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("BAOCAO_SETTINGS", raising=False)
    # In a context of its own, as a command's process: what the command names for the rest of its
    # context (the plugins for report events, the message catalogue) does not stay in the test's.
    return lambda *args: contextvars.copy_context().run(cli.main, list(args))


def test_the_command_exits_0_when_all_matches_and_1_with_a_table_of_mismatches(world, run_cli, capsys):
    assert run_cli("integrity", "verify") == 0
    out = capsys.readouterr().out
    assert "5" in out and "every hash matches" in out and "mọi mã băm đều khớp" in out
    tamper(world)
    assert run_cli("integrity", "verify") == 1
    lines = capsys.readouterr().out.splitlines()
    assert "4" in lines[0] and "differ from their recorded hash" in lines[0]
    assert "kind" in lines[1] and "expected" not in lines[1] and "recorded" in lines[1]
    rows = lines[2:]
    assert len(rows) == 4
    assert any(str(world.report.id) in row and world.u["aitu"].code in row and "report version" in row for row in rows)
    assert any("feedback screenshot" in row and "file missing" in row for row in rows)
    init_db(world.settings.database_url)  # the command closed the test's database


def scrape(settings) -> str:
    from core.metrics import Metrics

    with db.connection_context():
        return Metrics(multiprocess_dir="", settings=settings).exposition().decode()


def test_the_daily_job_runs_at_three_in_the_morning_audits_and_tells_the_administrators(world):
    from core.jobs import make_huey
    from core.metrics import JobRun, count_job_runs

    huey = make_huey(world.settings, immediate=True)
    count_job_runs(huey)

    def due(at):
        return [t.name for t in huey.read_periodic(at) if t.name == integrity.JOB_NAME]

    # crontab times are UTC: 03:00 on 8 December in Vietnam (UTC+7) is 20:00 on the 7th.
    assert due(dt.datetime(2026, 12, 7, 20, 0)) == [integrity.JOB_NAME]
    assert due(dt.datetime(2026, 12, 7, 19, 0)) == due(dt.datetime(2026, 12, 7, 20, 1)) == []
    assert due(dt.datetime(2026, 12, 8, 3, 0)) == []  # 03:00 UTC is 10:00 in Vietnam
    assert "baocao_integrity_mismatches" not in scrape(world.settings)  # never ran yet
    task = next(t for t in huey.read_periodic(dt.datetime(2026, 12, 7, 20, 0)) if t.name == integrity.JOB_NAME)

    assert huey.execute(task) == 0
    with db.connection_context():
        assert notifications.Notification.select().where(notifications.Notification.plugin == "core").count() == 0
    assert re.search(r"^baocao_integrity_mismatches 0\.0$", scrape(world.settings), re.M)

    tamper(world)
    assert huey.execute(task) == 4
    with db.connection_context():
        runs = {row.job: (row.ok, row.error) for row in JobRun.select()}
        events = list(audit.AuditEvent.select().where(audit.AuditEvent.action == "integrity.checked")
                      .order_by(audit.AuditEvent.id))
        notices = list(notifications.Notification.select().where(notifications.Notification.plugin == "core"))
        inbox = notifications.inbox(world.admin.actor.id, "en")
        assert audit.verify().ok
    assert runs[integrity.JOB_NAME] == (2, 0)
    assert [e.result for e in events] == ["ok", "failed"]
    details = json.loads(events[-1].details)
    assert details["count"] == 4 and {m["kind"] for m in details["mismatches"]} == set(integrity.KINDS)
    # Every active system administrator, and nobody else, is told, in both languages.
    assert [n.user_id for n in notices] == [world.admin.actor.id]
    assert "4 stored item(s)" in inbox[0]["text"] and inbox[0]["link"] == "/audit"
    assert "4 mục dữ liệu" in json.loads(notices[0].params)["vi"]
    assert re.search(r"^baocao_integrity_mismatches 4\.0$", scrape(world.settings), re.M)


# -- LOG-05: storage nearly full ----------------------------------------------------------------------

def test_free_space_of_the_files_backups_and_database_filesystems_is_read_at_each_scrape(make_settings, tmp_path,
                                                                                          monkeypatch):
    from core import metrics

    settings = make_settings(backup_dir=str(tmp_path / "backups"))  # neither folder exists yet
    init_db(settings.database_url)
    usage = collections.namedtuple("usage", "total used free")
    seen = []

    def disk_usage(path):
        seen.append(path)
        return usage(1000, 960, 40)

    monkeypatch.setattr(metrics.shutil, "disk_usage", disk_usage)
    try:
        text = scrape(settings)
    finally:
        close_db()
    uses = {"files", "backups"} | ({"database"} if parse_database_url(settings.database_url).backend == "sqlite"
                                   else set())
    for use in uses:
        assert re.search(rf'^baocao_storage_free_bytes{{use="{use}"}} 40\.0$', text, re.M), use
        assert re.search(rf'^baocao_storage_free_ratio{{use="{use}"}} 0\.04$', text, re.M), use
    assert "database" in uses or 'use="database"' not in text  # PostgreSQL's disk is the server's
    assert all(path.exists() for path in seen)  # a folder not made yet: the filesystem it will be on
    assert len(seen) == len(uses)
