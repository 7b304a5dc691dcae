"""Long work followed with a progress bar (issue 14 item 10, ``core.background``): a job's row
tells its owner how far it has got and what it left; quick work leaves nothing to come back to;
a refusal is kept in both languages; a job whose process has ended is marked interrupted, not
"running" for ever; progress is never written inside the work's transaction; old jobs go."""

from __future__ import annotations

import datetime as dt
import json
import threading

import pytest

from core import background
from core.background import BackgroundJob, Outcome
from core.db import db, transaction
from core.errors import NotFound, ValidationError


@pytest.fixture
def owner(app, make_user):
    user, _ = make_user()
    with db.connection_context():
        yield user
    background.wait_all()


@pytest.fixture
def stranger(owner, make_user):
    user, _ = make_user()
    return user


def started(owner, work, **kwargs):
    job = background.create(owner.id, "test.work", "background.title.usage_export", **kwargs)
    return job, background.start(job, work)


def test_quick_work_answers_with_its_outcome_and_is_not_listed(owner):
    job, handle = started(owner, lambda progress: Outcome(file=b"xlsx", file_name="a.xlsx", summary="background.done"))
    outcome = handle.future.result(timeout=10)
    assert outcome.file == b"xlsx"
    row = BackgroundJob.get_by_id(job.id)
    assert row.status == "done" and row.finished_at is not None and not row.detached
    assert row.file_data is None  # the request sent the file itself: nothing kept
    assert background.listing(owner.id) == []


def test_detached_work_shows_its_progress_and_keeps_its_file(owner, stranger):
    step, release = threading.Event(), threading.Event()

    def work(progress):
        progress.phase("background.phase.writing")
        progress(3, 10)
        step.set()
        release.wait(10)
        progress(10, 10)
        return Outcome(file=b"PK-bytes", file_name="tình hình.xlsx", file_type="application/x-test",
                       summary="background.summary.file", url="/completeness")

    job, handle = started(owner, work, back_url="/completeness?regime=x")
    assert step.wait(10)
    assert handle.detach() is True
    seen = background.get(owner.id, job.id)
    assert (seen.status, seen.done, seen.total, seen.percent, seen.phase) == (
        "running", 3, 10, 30, "background.phase.writing")
    assert [j.id for j in background.listing(owner.id)] == [job.id]
    with pytest.raises(NotFound):
        background.get(stranger.id, job.id)  # someone else's: not even its existence
    release.set()
    handle.future.result(timeout=10)
    done = background.get(owner.id, job.id)
    assert (done.status, done.percent, done.result_url, done.back_url) == ("done", 100, "/completeness",
                                                                          "/completeness?regime=x")
    assert done.summary_text("vi") == "Tệp đã sẵn sàng để tải về."
    assert background.download(owner.id, job.id) == (b"PK-bytes", "tình hình.xlsx", "application/x-test")
    with pytest.raises(NotFound):
        background.download(stranger.id, job.id)
    listed = background.listing(owner.id)
    assert [j.id for j in listed] == [job.id] and listed[0].has_file


def test_work_that_ends_before_the_detach_is_answered_at_once(owner):
    job, handle = started(owner, lambda progress: Outcome(url="/x"))
    handle.future.result(timeout=10)
    assert handle.detach() is False  # the caller answers with the outcome, as for quick work
    assert BackgroundJob.get_by_id(job.id).detached is False


def test_a_refusal_is_kept_in_both_languages_and_reaches_the_caller(owner):
    def work(progress):
        raise ValidationError({"regime": "repair.error.regime"})

    job, handle = started(owner, work)
    with pytest.raises(ValidationError):
        handle.future.result(timeout=10)
    row = BackgroundJob.get_by_id(job.id)
    assert row.status == "failed"
    assert row.error_text("vi") == "Không có chế độ báo cáo với mã này."
    assert row.error_text("en") == "There is no reporting regime with this code."


def test_an_unexpected_error_is_told_plainly_and_logged(owner, caplog):
    def work(progress):
        raise RuntimeError("disk on fire")

    job, handle = started(owner, work)
    with pytest.raises(RuntimeError):
        handle.future.result(timeout=10)
    row = BackgroundJob.get_by_id(job.id)
    assert row.status == "failed" and "disk on fire" not in row.error
    assert row.error_text("en").startswith("Something unexpected went wrong; nothing was changed.")
    assert any("disk on fire" in (r.exc_text or "") or r.exc_info for r in caplog.records
               if r.name == "baocao.background")


def test_progress_is_not_written_inside_the_works_transaction(owner):
    seen = {}
    release = threading.Event()

    def work(progress):
        with transaction():
            progress.phase("background.phase.saving")  # inside: kept in memory only
            progress(5, 8)
            seen["inside"] = BackgroundJob.get_by_id(progress.job_id).done
        progress._written = 0  # the next call may write at once
        progress(6, 8)
        release.wait(10)
        return Outcome()

    job, handle = started(owner, work)
    for _ in range(200):
        if BackgroundJob.get_by_id(job.id).done == 6:
            break
        threading.Event().wait(0.02)
    assert seen["inside"] == 0
    row = BackgroundJob.get_by_id(job.id)
    assert (row.done, row.total) == (6, 8)
    release.set()
    handle.future.result(timeout=10)


def test_jobs_of_an_ended_process_are_marked_interrupted(owner):
    def row(process):
        return BackgroundJob.create(kind="t", title="background.title.rebuild", account=owner.id, process=process)

    dead = row(f"{background.HOST}:999999999:0123456789ab")  # no such pid on this machine
    ours_lost = row(f"{background.HOST}:{background.PID}:{background.TOKEN}")  # ours, but no thread runs it
    reused_pid = row(f"{background.HOST}:{background.PID}:ffffffffffff")  # an earlier process with our pid
    elsewhere = row("another-host:1:0123456789ab")  # another machine's: it answers for itself
    assert background.reap() == 3
    states = {j.id: j.status for j in BackgroundJob.select()}
    assert states[dead.id] == states[ours_lost.id] == states[reused_pid.id] == "interrupted"
    assert states[elsewhere.id] == "running"


def test_finished_jobs_are_purged_after_a_week(owner):
    now = dt.datetime(2026, 12, 7, 3, 0)
    old = BackgroundJob.create(kind="t", title="t", account=owner.id, process="h:1:x", status="done",
                               finished_at=now - dt.timedelta(days=8), file_data=b"x")
    recent = BackgroundJob.create(kind="t", title="t", account=owner.id, process="h:1:x", status="failed",
                                  finished_at=now - dt.timedelta(days=6))
    running = BackgroundJob.create(kind="t", title="t", account=owner.id, process="h:1:x",
                                   created_at=now - dt.timedelta(days=30))
    assert background.purge(now=now) == 1
    assert {j.id for j in BackgroundJob.select()} == {recent.id, running.id}


def test_the_title_and_summary_are_words_in_the_persons_language(owner):
    job = background.create(owner.id, "t", "background.title.remind")
    BackgroundJob.update(summary="background.summary.remind",
                         summary_params=json.dumps({"reminded": 3, "already": 1})).where(
        BackgroundJob.id == job.id).execute()
    row = BackgroundJob.get_by_id(job.id)
    assert row.title_text("vi") == "Đôn đốc các đơn vị chậm gửi báo cáo"
    assert row.summary_text("en") == "3 units reminded; 1 had been reminded today already."
