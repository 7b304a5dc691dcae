"""A server killed in the middle of a submission leaves the report as before or as after, never
half-written (issue 6): a real process is killed with SIGKILL while its submission transaction is
open, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core import audit
from core.reporting import data as rd
from core.reporting import workflow as wf
from core.db import db
from core.reporting.opening import Report
from tests.fixtures.forms import form_world

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def w(db_session):
    return form_world()


def _child(settings, report_id, user_id, revision, marker=None):
    args = [sys.executable, "-m", "tests.fixtures.crash_submit", settings.database_url, str(report_id),
            str(user_id), str(revision)] + ([str(marker)] if marker else [])
    return subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(marker: Path, process, limit: float = 60.0) -> None:
    deadline = time.monotonic() + limit
    while not marker.exists():
        if process.poll() is not None:
            raise AssertionError(f"the submitting process ended early: {process.stderr.read()}")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError("the submitting process never reached its transaction")
        time.sleep(0.05)


def _state(report_id):
    report = Report.get_by_id(report_id)
    return (report.status, report.revision, report.submitted_at,
            wf.ReportVersion.select().where(wf.ReportVersion.report == report_id).count(),
            wf.ReportEvent.select().where(wf.ReportEvent.report == report_id).count(),
            audit.AuditEvent.select().where(audit.AuditEvent.action == "report.submitted").count())


def test_a_submission_killed_mid_transaction_leaves_the_report_as_before(w, settings, tmp_path):
    cells = {("banle", "cur"): (rd.MISSING, "10"), ("dulich", "cur"): (rd.MISSING, "5")}
    saved = rd.save(w.p["reporter"], w.report.id, cells, {"ketqua": (rd.MISSING, "Bán lẻ tăng khá.")})
    before = _state(w.report.id)
    assert before[0] == "draft" and before[3:] == (0, 0, 0)

    marker = tmp_path / "inside"
    child = _child(settings, w.report.id, w.users["reporter"].id, saved.revision, marker)
    _wait_for(marker, child)
    os.kill(child.pid, signal.SIGKILL)
    assert child.wait(timeout=30) == -signal.SIGKILL

    assert _state(w.report.id) == before  # as before: nothing of the submission remains
    assert audit.verify().ok
    if settings.database_url.startswith("sqlite"):
        assert db.execute_sql("PRAGMA integrity_check").fetchone()[0] == "ok"

    # The same submission, run again to the end, gives the state after: one version.
    child = _child(settings, w.report.id, w.users["reporter"].id, saved.revision)
    out, err = child.communicate(timeout=120)
    assert child.returncode == 0, err
    assert out.strip() == "1"
    status, revision, submitted_at, versions, events, audited = _state(w.report.id)
    assert (status, revision, versions, events, audited) == ("submitted", saved.revision + 1, 1, 1, 1)
    assert submitted_at is not None and audit.verify().ok
