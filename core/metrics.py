"""Prometheus metrics (issue 17 item 6; docs/observability.md), read at ``/metrics``.

Two kinds:

- **request metrics**, counted by each web worker as it serves (``Metrics.observe_request``, from
  ``web.middleware.ObservedRequests``): the duration histogram and the requests in flight. With
  several workers (``baocao serve --workers N``) each worker writes its values to its own files in
  the directory ``PROMETHEUS_MULTIPROC_DIR`` (prometheus_client's multiprocess mode, chosen when the
  library is first imported, so ``prepare_multiprocess`` names it before the workers start) and a
  scrape, answered by any worker, sums them all. Without that directory (one process, the tests)
  each app keeps its values in its own registry.
- **state metrics**, read from the database at each scrape (``StateCollector``), so every worker
  answers the same: the outbox's depth and oldest waiting message, the worker's job runs (counted
  in ``core_job_run`` by ``count_job_runs``: the worker is another process, maybe another machine),
  how long a consolidation rebuild has been running, the mismatches the latest integrity check found
  (core.integrity); from /proc, each worker's memory, CPU time and open files; and, given the
  settings, the free space of the filesystems holding the stored files, the backups and a SQLite
  database (``storage_families``: a full disk stops uploads, backups and every write).
"""

from __future__ import annotations

import atexit
import datetime as dt
import logging
import os
import re
import shutil
import tempfile
from pathlib import Path

from peewee import CharField, DateTimeField, IntegerField
from prometheus_client import CollectorRegistry, Gauge, Histogram, generate_latest, multiprocess
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from core import __version__
from core.db import CoreModel, transaction
from core.models import utcnow

log = logging.getLogger("baocao.metrics")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
WORKERS_FILE = "workers"  # in the multiprocess directory: how many workers serve was asked for
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"  # the classic text format Prometheus reads
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "(unmatched)"  # a path no route matched: one series, not one per probed URL
# Latency buckets around what a page should take (≤ 1 s p95, the alert) and what a large export takes.
BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_PID_FILE = re.compile(r"_(\d+)\.db\Z")


def prepare_multiprocess(workers: int) -> str:
    """Before ``baocao serve`` starts its workers: with several, a fresh directory for their metric
    files (removed when the command ends), named in the environment they inherit; with one, none
    (the process keeps its values in memory), whatever the environment said."""
    if workers <= 1:
        os.environ.pop(MULTIPROC_ENV, None)
        return ""
    directory = tempfile.mkdtemp(prefix="baocao-metrics-")
    Path(directory, WORKERS_FILE).write_text(str(workers), encoding="ascii")
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    os.environ[MULTIPROC_ENV] = directory
    return directory


class Metrics:
    """One app's request metrics, and what a scrape reads."""

    def __init__(self, multiprocess_dir: str | None = None, settings=None):
        self.settings = settings  # where the files, backups and a SQLite database live (storage_families)
        self.multiprocess_dir = os.environ.get(MULTIPROC_ENV, "") if multiprocess_dir is None else multiprocess_dir
        # In multiprocess mode the values live in files, not in a registry: a scrape reads the files.
        self.registry = None if self.multiprocess_dir else CollectorRegistry()
        self.request_duration = Histogram(
            "baocao_http_request_duration_seconds", "Time to answer a request, by route template and status class.",
            ("method", "route", "status"), buckets=BUCKETS, registry=self.registry)
        self.in_flight = Gauge("baocao_http_requests_in_flight", "Requests being answered now.",
                               registry=self.registry, multiprocess_mode="livesum")
        self.state = StateCollector(self)
        if self.registry is not None:
            self.registry.register(self.state)

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        method = method if method in METHODS else "OTHER"
        self.request_duration.labels(method, route or UNMATCHED, f"{status // 100}xx").observe(seconds)

    def worker_pids(self) -> list[int]:
        """The web workers alive now; the files of those that ended lose their live gauges
        (their counts stay: a counter never goes back)."""
        if not self.multiprocess_dir:
            return [os.getpid()]
        found = {int(m.group(1)) for name in os.listdir(self.multiprocess_dir) if (m := _PID_FILE.search(name))}
        alive = []
        for pid in sorted(found):
            if _alive(pid):
                alive.append(pid)
            else:
                multiprocess.mark_process_dead(pid, self.multiprocess_dir)
        return alive

    def expected_workers(self) -> int:
        if not self.multiprocess_dir:
            return 1
        try:
            return int(Path(self.multiprocess_dir, WORKERS_FILE).read_text(encoding="ascii"))
        except (OSError, ValueError):
            return 0  # started by another server (gunicorn, uvicorn itself): unknown

    def exposition(self) -> bytes:
        """The text a scrape gets. Reads the database: call it with a connection open."""
        if self.registry is not None:
            return generate_latest(self.registry)
        self.worker_pids()  # the ended workers' live gauges go before the files are read
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=self.multiprocess_dir)
        registry.register(self.state)
        return generate_latest(registry)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# -- what the database says, at each scrape ------------------------------------------------------------

class JobRun(CoreModel):
    """How often each worker job ran, how it ended, and when it last ran (migration 0036)."""

    job = CharField(max_length=120, primary_key=True)
    ok = IntegerField(default=0)
    error = IntegerField(default=0)
    last_run_at = DateTimeField(null=True)


def record_job_run(job: str, ok: bool) -> None:
    """Count one run of ``job``; one upsert, its own transaction."""
    now = utcnow()
    column = JobRun.ok if ok else JobRun.error
    with transaction():
        JobRun.insert(job=job[:120], ok=int(ok), error=int(not ok), last_run_at=now).on_conflict(
            conflict_target=[JobRun.job], update={column: column + 1, JobRun.last_run_at: now}).execute()


def count_job_runs(huey) -> None:
    """Every task the worker runs (the core's and the plugins' jobs) is counted once it ends.
    Counting never stops the worker: a failure to count is a warning."""
    from core.db import db

    @huey.post_execute(name="baocao.job_runs")
    def count(task, task_value, exception):
        try:
            with db.connection_context():
                record_job_run(task.name, exception is None)
        except Exception as exc:  # noqa: BLE001 — the job ran; only its count is lost
            log.warning("job run of %s not counted: %s", task.name, exc)


def _seconds(since: dt.datetime | None, now: dt.datetime) -> float:
    return max(0.0, (now - since).total_seconds()) if since is not None else 0.0


def _epoch(moment: dt.datetime) -> float:
    return moment.replace(tzinfo=dt.timezone.utc).timestamp()  # stored times are naive UTC


class StateCollector:
    """The metrics read at each scrape (a prometheus_client custom collector)."""

    def __init__(self, metrics: Metrics):
        self.metrics = metrics

    def collect(self):
        build = GaugeMetricFamily("baocao_build_info", "The version serving; always 1.", labels=["version"])
        build.add_metric([__version__], 1)
        yield build
        yield from self._workers()
        if self.metrics.settings is not None:
            yield from storage_families(self.metrics.settings)
        try:
            families = list(self._database())
        except Exception as exc:  # noqa: BLE001 — the rest of the scrape still says something
            log.warning("metrics: database not read: %s", exc)
            families = []
        up = GaugeMetricFamily("baocao_database_up", "1 when the scrape could read the database.")
        up.add_metric([], 1 if families else 0)
        yield up
        yield from families

    def _workers(self):
        pids = self.metrics.worker_pids()
        alive = GaugeMetricFamily("baocao_worker_processes", "Web worker processes alive.")
        alive.add_metric([], len(pids))
        expected = GaugeMetricFamily("baocao_worker_processes_expected",
                                     "Web workers the server was started with (0: unknown).")
        expected.add_metric([], self.metrics.expected_workers())
        yield alive
        yield expected
        yield from process_families(pids)

    def _database(self):
        from peewee import fn

        from core import background, outbox

        now = utcnow()
        depth = GaugeMetricFamily("baocao_outbox_messages", "Outbox messages by channel and state.",
                                  labels=["channel", "state"])
        counts = {(row.channel, row.state): row.n for row in outbox.OutboxMessage.select(
            outbox.OutboxMessage.channel, outbox.OutboxMessage.state, fn.COUNT(outbox.OutboxMessage.id).alias("n"))
            .group_by(outbox.OutboxMessage.channel, outbox.OutboxMessage.state)}
        # Every channel shows its waiting and failed counts, 0 included, so an alert has a series to read.
        for channel in set(outbox.channels()) | {channel for channel, _ in counts}:
            for state in outbox.STATES:
                if (channel, state) in counts or state in ("pending", "sending", "failed"):
                    depth.add_metric([channel, state], counts.get((channel, state), 0))
        yield depth

        oldest = GaugeMetricFamily("baocao_outbox_oldest_pending_age_seconds",
                                   "Age of the oldest message not delivered yet (pending or sending), by channel.",
                                   labels=["channel"])
        waiting = {row.channel: row.first for row in outbox.OutboxMessage.select(
            outbox.OutboxMessage.channel, fn.MIN(outbox.OutboxMessage.created_at).alias("first"))
            .where(outbox.OutboxMessage.state.in_(("pending", "sending"))).group_by(outbox.OutboxMessage.channel)}
        for channel in sorted(set(outbox.channels()) | set(waiting)):
            oldest.add_metric([channel], _seconds(_naive(waiting.get(channel)), now))
        yield oldest

        runs = CounterMetricFamily("baocao_job_runs", "Worker job runs by job and result.", labels=["job", "result"])
        last = GaugeMetricFamily("baocao_job_last_run_timestamp_seconds", "When each worker job last ran (Unix time).",
                                 labels=["job"])
        for row in JobRun.select().order_by(JobRun.job):
            runs.add_metric([row.job, "ok"], row.ok)
            runs.add_metric([row.job, "error"], row.error)
            if row.last_run_at is not None:
                last.add_metric([row.job], _epoch(_naive(row.last_run_at)))
        yield runs
        yield last

        # Accepted figures reach the consolidations in the acceptance's own transaction
        # (docs/consolidation.md "Live consolidation"): no lag there. What can wait is a full rebuild
        # (baocao consolidation rebuild, /admin/consolidation): the running aggregates are being
        # recomputed until it ends. Its age is the lag.
        started = (background.BackgroundJob.select(fn.MIN(background.BackgroundJob.created_at))
                   .where((background.BackgroundJob.kind == "consolidation.rebuild")
                          & (background.BackgroundJob.status == background.RUNNING)).scalar())
        lag = GaugeMetricFamily("baocao_consolidation_lag_seconds",
                                "How long the oldest running consolidation rebuild has been running (0: none).")
        lag.add_metric([], _seconds(_naive(started), now))
        yield lag

        from core import integrity

        found = integrity.last_mismatches()
        if found is not None:  # no series before the first daily check: baocao_job_last_run_* says when it ran
            mismatches = GaugeMetricFamily("baocao_integrity_mismatches",
                                           "Stored items whose hash differed at the latest integrity check.")
            mismatches.add_metric([], found)
            yield mismatches


def _naive(value):
    """A stored time as naive UTC (SQLite may hand back text)."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return value


# -- free space, at each scrape --------------------------------------------------------------------------

def storage_paths(settings) -> dict[str, Path]:
    """What the instance writes to, by use: the stored files, the backups (when set) and the SQLite
    database file (PostgreSQL's disk is the database server's: watch it there)."""
    from core.db import parse_database_url

    paths = {"files": settings.files_root()}
    if settings.backup_dir:
        paths["backups"] = Path(settings.backup_dir)
    try:
        spec = parse_database_url(settings.database_url)
    except Exception:  # noqa: BLE001 — a bad URL is refused at start; nothing to measure here
        spec = None
    if spec is not None and spec.backend == "sqlite" and not spec.is_memory:
        paths["database"] = Path(spec.database)
    return paths


def storage_families(settings):
    """Free bytes and the free fraction of the filesystem of each path of ``storage_paths`` (of its
    nearest existing folder: the files folder is made at the first upload). The alert: < 10 % warns,
    < 5 % is critical (docs/observability.md)."""
    free = GaugeMetricFamily("baocao_storage_free_bytes", "Free bytes on the filesystem holding it, by use.",
                             labels=["use"])
    ratio = GaugeMetricFamily("baocao_storage_free_ratio", "Free fraction (0-1) of the filesystem holding it, by use.",
                              labels=["use"])
    for use, path in storage_paths(settings).items():
        path = path.absolute()
        while not path.exists() and path != path.parent:
            path = path.parent
        try:
            usage = shutil.disk_usage(path)
        except OSError as exc:
            log.warning("metrics: free space of %s not read: %s", use, exc)
            continue
        free.add_metric([use], usage.free)
        ratio.add_metric([use], usage.free / usage.total if usage.total else 0.0)
    yield free
    yield ratio


# -- each worker process, from /proc --------------------------------------------------------------------

def process_families(pids: list[int]):
    """Resident memory, CPU seconds, open files and start time of each worker, labelled by pid.
    Nothing where /proc is absent (not Linux)."""
    families = {
        "rss": GaugeMetricFamily("process_resident_memory_bytes", "Resident memory of a worker.", labels=["pid"]),
        "cpu": CounterMetricFamily("process_cpu_seconds", "CPU time (user and system) of a worker.", labels=["pid"]),
        "fds": GaugeMetricFamily("process_open_fds", "Open file descriptors of a worker.", labels=["pid"]),
        "start": GaugeMetricFamily("process_start_time_seconds", "When a worker started (Unix time).",
                                   labels=["pid"]),
    }
    try:
        ticks, page = os.sysconf("SC_CLK_TCK"), os.sysconf("SC_PAGE_SIZE")
        boot = next(float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime "))
    except (OSError, ValueError, AttributeError, StopIteration):
        return
    for pid in pids:
        try:
            # Fields after the command name, which is in parentheses and may hold spaces (man 5 proc).
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            fds = len(os.listdir(f"/proc/{pid}/fd"))
        except (OSError, IndexError):
            continue  # ended in between, or not ours to read
        label = [str(pid)]
        families["cpu"].add_metric(label, (int(stat[11]) + int(stat[12])) / ticks)  # utime, stime
        families["start"].add_metric(label, boot + int(stat[19]) / ticks)
        families["rss"].add_metric(label, int(stat[21]) * page)
        families["fds"].add_metric(label, fds)
    yield from families.values()
