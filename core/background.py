"""Long work with a progress bar (issue 14 item 10): an export, an import, a rebuild of the
running aggregates, a round of reminders.

A web request hands its work to ``start``. The work runs in this process's small pool of job
threads, with its own connection, and reports ``progress(done, total)`` as it goes. The request
waits up to a second (``web.background``): work over by then answers as it always did (the file,
the redirect), so small imports and exports look exactly as before. Longer work is *detached*:
the person is sent to its page, whose bar follows it, and finds it again under "Việc chạy nền"
until it is purged a week after it ended.

Why threads of the web process, not huey: the demo and small installs run no worker, and the
upload's bytes and the person's access are at hand here.

What a job reports lives in memory (``_live``) and is written to ``core_background_job`` only
while the work is between transactions: a progress row written inside the work's transaction
would be seen by nobody until its commit (and on SQLite would wait for the work's own write lock).
So the process running a job shows every step; another process serving the poll sees the bar move
at each commit. A job whose process has ended (a restart, a crash) is marked interrupted: never
"running" for ever.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import os
import socket
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable

from peewee import BlobField, BooleanField, CharField, DateTimeField, ForeignKeyField, IntegerField, TextField

from core.models import User
from core.db import CoreModel, db
from core.errors import BaocaoError, NotFound, ValidationError
from core.i18n import core_catalog

log = logging.getLogger("baocao.background")

RUNNING, DONE, FAILED, INTERRUPTED = "running", "done", "failed", "interrupted"
STATUSES = (RUNNING, DONE, FAILED, INTERRUPTED)
THREADS = 2  # jobs at once per process; more wait their turn ("background.phase.waiting")
FLUSH_SECONDS = 0.5  # the shortest time between two progress writes of one job
KEEP_DAYS = 7  # finished jobs (and their files) are purged after this
WAITING, WORKING = "background.phase.waiting", "background.phase.working"

# This process: its host and pid tell another process whether it is still alive; the token tells a
# process apart from an earlier one with the same pid (a restarted container is often pid 1 again).
HOST, PID, TOKEN = socket.gethostname()[:60], os.getpid(), uuid.uuid4().hex[:12]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


class BackgroundJob(CoreModel):
    kind = CharField(max_length=60)  # what it does, for the log and the tests ("completeness.export")
    title = CharField(max_length=120)  # a locale key, with ``title_params``
    title_params = TextField(default="{}")
    account = ForeignKeyField(User, on_delete="CASCADE", backref="+")
    status = CharField(max_length=12, default=RUNNING)
    done = IntegerField(default=0)
    total = IntegerField(null=True)  # None: the work does not know its size (the bar is indeterminate)
    phase = CharField(max_length=120, default=WAITING)  # a locale key: what it is doing now
    detached = BooleanField(default=False)  # the person was sent to its page: keep its result
    process = CharField(max_length=120)  # "host:pid:token" of the process running it
    back_url = CharField(max_length=600, default="")  # the page it was started from
    result_url = CharField(max_length=600, default="")  # where its outcome is seen
    summary = CharField(max_length=120, default="")  # a locale key, with ``summary_params``
    summary_params = TextField(default="{}")
    file_name = CharField(max_length=200, default="")
    file_type = CharField(max_length=120, default="")
    file_data = BlobField(null=True)
    error = TextField(default="")  # JSON {"vi": ..., "en": ...}: the refusal, in both languages
    created_at = DateTimeField(default=utcnow)
    updated_at = DateTimeField(default=utcnow)
    finished_at = DateTimeField(null=True)

    class Meta:
        indexes = ((("account", "created_at"), False), (("status", "process"), False))

    @property
    def finished(self) -> bool:
        return self.status != RUNNING

    @property
    def percent(self) -> int | None:
        if self.status == DONE:
            return 100
        if not self.total:
            return None
        return max(0, min(100, self.done * 100 // self.total))

    def title_text(self, lang: str) -> str:
        return core_catalog().gettext(lang, self.title, **json.loads(self.title_params or "{}"))

    def summary_text(self, lang: str) -> str:
        if not self.summary:
            return ""
        return core_catalog().gettext(lang, self.summary, **json.loads(self.summary_params or "{}"))

    def error_text(self, lang: str) -> str:
        if not self.error:
            return ""
        messages = json.loads(self.error)
        return messages.get(lang) or messages.get("vi", "")


@dataclass
class Outcome:
    """What a finished job leaves: where to go next, a file to download, a sentence to show."""

    url: str = ""
    file: bytes | None = None
    file_name: str = ""
    file_type: str = ""
    summary: str = ""  # a locale key
    summary_params: dict | None = None
    value: object = None  # for the quick answer only (a page to render again): never stored


class Progress:
    """Handed to the work: ``progress(done, total)`` after each step, ``progress.phase(key)`` when
    it moves to another kind of step (reading, writing the file). Cheap to call often: it writes
    at most every ``FLUSH_SECONDS``, and never inside the work's transaction."""

    def __init__(self, job_id: int):
        self.job_id = job_id
        self.done = 0
        self.total: int | None = None
        self.current = WAITING
        self._written = 0.0

    def __call__(self, done: int, total: int | None = None) -> None:
        self.done = max(0, int(done))
        if total is not None:
            self.total = max(0, int(total))
        self._flush()

    def phase(self, key: str, *, total: int | None = None) -> None:
        """A new kind of step: the count starts again (with ``total`` when it is known)."""
        self.current, self.done, self.total = key, 0, total
        self._flush(force=True)

    def _flush(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if (not force and now - self._written < FLUSH_SECONDS) or db.in_transaction():
            return
        self._written = now
        BackgroundJob.update(done=self.done, total=self.total, phase=self.current, updated_at=utcnow()).where(
            (BackgroundJob.id == self.job_id) & (BackgroundJob.status == RUNNING)).execute()


class Handle:
    """The running job as its starter holds it: ``future`` ends with the work's ``Outcome`` (or its
    exception), after the job's row says so."""

    def __init__(self, job: BackgroundJob, work: Callable[[Progress], Outcome]):
        self.job_id = job.id
        self.progress = Progress(job.id)
        self.work = work
        self.lock = threading.Lock()
        self.finished = False
        self.detached = False
        self.future: Future | None = None

    def detach(self) -> bool:
        """The person will follow the job on its page: its result is kept. False when it has
        ended meanwhile (answer with its outcome, as for quick work)."""
        with self.lock:
            if self.finished:
                return False
            self.detached = True
            return True


_live: dict[int, Handle] = {}  # the jobs this process runs, by id
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="baocao-job")
        return _pool


def create(account_id: int, kind: str, title: str, title_params: dict | None = None, *,
           back_url: str = "") -> BackgroundJob:
    """The job's row, before its work starts (outside the work's transaction: the row exists
    whatever the work does)."""
    return BackgroundJob.create(kind=kind[:60], title=title, title_params=json.dumps(title_params or {}),
                                account=account_id, process=f"{HOST}:{PID}:{TOKEN}", back_url=back_url[:600])


def start(job: BackgroundJob, work: Callable[[Progress], Outcome]) -> Handle:
    """Run ``work(progress)`` in a job thread with its own connection; ``handle.future`` ends with
    its outcome. Its row is finished (done, failed) before the future is."""
    handle = Handle(job, work)
    _live[job.id] = handle
    # The starter's context goes with the work, as anyio's threads carry it for ``run_db``: the
    # e-mail it may queue (``mailer.sending``), the plugins that hear of its reports.
    handle.future = _executor().submit(contextvars.copy_context().run, _run, handle)
    return handle


def _messages(exc: BaocaoError) -> dict:
    if isinstance(exc, ValidationError) and exc.errors:
        catalog = core_catalog()
        keys = list(dict.fromkeys(exc.errors.values()))
        return {lang: " ".join(catalog.gettext(lang, key, **exc.params) for key in keys) for lang in ("vi", "en")}
    return {"vi": exc.message("vi"), "en": exc.message("en")}


def _run(handle: Handle) -> Outcome:
    outcome, failure, error = None, None, {}
    with db.connection_context():
        handle.progress.phase(WORKING)
        try:
            outcome = handle.work(handle.progress) or Outcome()
        except BaocaoError as exc:
            failure, error = exc, _messages(exc)
        except Exception as exc:  # noqa: BLE001 — the person is told; the log keeps the trace
            log.exception("background job %s failed", handle.job_id)
            failure = exc
            error = {lang: core_catalog().gettext(lang, "background.error.unexpected") for lang in ("vi", "en")}
        with handle.lock:
            handle.finished = True
            detached = handle.detached
        _finish(handle, outcome, error, detached)
        if detached:
            _deliver_mail()
    _live.pop(handle.job_id, None)
    if failure is not None:
        raise failure
    return outcome


def _finish(handle: Handle, outcome: Outcome | None, error: dict, detached: bool) -> None:
    fields = {"status": FAILED if error else DONE, "finished_at": utcnow(), "updated_at": utcnow(),
              "detached": detached, "error": json.dumps(error, ensure_ascii=False) if error else "",
              "done": handle.progress.done, "total": handle.progress.total, "phase": handle.progress.current}
    if outcome is not None:
        fields.update(result_url=outcome.url[:600], summary=outcome.summary,
                      summary_params=json.dumps(outcome.summary_params or {}, ensure_ascii=False))
        if outcome.file is not None and detached:  # quick work was answered with its file already
            fields.update(file_name=outcome.file_name[:200], file_type=outcome.file_type[:120],
                          file_data=outcome.file)
    BackgroundJob.update(**fields).where(BackgroundJob.id == handle.job_id).execute()


def _deliver_mail() -> None:
    """The e-mail a detached job queued: its request has answered long ago, and the web layer
    delivers only what a request queued before it answered (the worker's outbox job would send
    it within the minute; the demo and small installs run no worker)."""
    from core import mailer

    settings = mailer.current_settings()
    if settings is not None:
        mailer.deliver_pending(settings)  # never raises


def _alive(process: str) -> bool:
    """Whether the process that ran a job may still run it; False only when it surely does not."""
    host, _, rest = process.partition(":")
    pid_text, _, token = rest.partition(":")
    if host != HOST:
        return True  # another machine's: it says so itself when it ends (or restarts: see reap)
    if token == TOKEN:
        return True  # ours: _live tells whether it still runs
    try:
        pid = int(pid_text)
    except ValueError:
        return False
    if pid == PID:
        return False  # an earlier process with our pid (a restarted container)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, another user's
    return True


def reap(account_id: int | None = None) -> int:
    """Mark the running jobs whose process has ended as interrupted (of one account, or all)."""
    query = BackgroundJob.select(BackgroundJob.id, BackgroundJob.process).where(BackgroundJob.status == RUNNING)
    if account_id is not None:
        query = query.where(BackgroundJob.account == account_id)
    ended = [job.id for job in query
             if (job.process.endswith(f":{TOKEN}") and job.id not in _live) or not _alive(job.process)]
    if ended:
        BackgroundJob.update(status=INTERRUPTED, finished_at=utcnow(), updated_at=utcnow()).where(
            BackgroundJob.id.in_(ended) & (BackgroundJob.status == RUNNING)).execute()
    return len(ended)


def _with_live(job: BackgroundJob) -> BackgroundJob:
    """The row, with this process's newer numbers when it runs the job (not yet written)."""
    handle = _live.get(job.id)
    if handle is not None and job.status == RUNNING:
        job.done, job.total, job.phase = handle.progress.done, handle.progress.total, handle.progress.current
    return job


def get(account_id: int, job_id: int) -> BackgroundJob:
    """One of the person's jobs; ``NotFound`` for anyone else's (its existence is not told)."""
    where = (BackgroundJob.id == job_id) & (BackgroundJob.account == account_id)
    job = BackgroundJob.get_or_none(where)
    if job is None:
        raise NotFound()
    if job.status == RUNNING and job.id not in _live and reap(account_id):
        # Not run by this process: it may have ended with its process. The page polls every
        # second, so a job this process runs costs one query, not two.
        job = BackgroundJob.get(where)
    return _with_live(job)


def listing(account_id: int, *, limit: int = 50) -> list[BackgroundJob]:
    """The person's jobs to find again, newest first: those still running, and those that ended
    while they followed them (quick work answered at once is not listed: nothing to come back to)."""
    reap(account_id)
    fields = [f for f in BackgroundJob._meta.sorted_fields if f.name != "file_data"]
    query = (BackgroundJob.select(*fields, BackgroundJob.file_data.is_null(False).alias("has_file"))
             .where((BackgroundJob.account == account_id)
                    & ((BackgroundJob.status == RUNNING) | (BackgroundJob.detached == True)))  # noqa: E712
             .order_by(BackgroundJob.created_at.desc(), BackgroundJob.id.desc()).limit(limit))
    return [_with_live(job) for job in query]


def download(account_id: int, job_id: int) -> tuple[bytes, str, str]:
    """The file a finished job left: (content, name, type)."""
    job = get(account_id, job_id)
    if job.status != DONE or job.file_data is None:
        raise NotFound()
    return bytes(job.file_data), job.file_name, job.file_type


def purge(*, days: int = KEEP_DAYS, now: dt.datetime | None = None) -> int:
    """Jobs that ended more than ``days`` ago, with their files."""
    cutoff = (now or utcnow()) - dt.timedelta(days=days)
    return BackgroundJob.delete().where((BackgroundJob.status != RUNNING)
                                        & (BackgroundJob.finished_at < cutoff)).execute()


def wait_all(timeout: float = 30.0) -> None:
    """Block until this process's jobs have ended (the tests, and a server stopping politely)."""
    for handle in list(_live.values()):
        if handle.future is not None:
            try:
                handle.future.result(timeout=timeout)
            except Exception:  # noqa: BLE001 — its row says how it ended
                pass
