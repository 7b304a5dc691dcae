"""Background and scheduled work on huey, stored in the application's own database.

huey's SQL storage keeps the queue in the same SQLite file or PostgreSQL
database as everything else, so the default install needs no extra server, and
several ``baocao worker`` processes can share one PostgreSQL queue. With the
setting ``job_broker = "redis://…"`` the queue is a Redis server instead (extra
``[redis]``; docs/topology.md).

Every worker's scheduler enqueues the periodic tasks due at its minute, so N
workers would run each periodic task N times a tick: ``OncePerTickScheduler``
lets only the first worker to claim a task's tick in the broker enqueue it.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

from huey import crontab
from huey.consumer import Consumer, Scheduler
from huey.contrib.sql_huey import SqlHuey

from core import clock
from core.db import _safe, make_database
from core.errors import SettingsError

log = logging.getLogger("baocao.jobs")


def make_broker(settings, *, immediate: bool = False):
    """The huey of these settings, without tasks: the SQL storage in the application's database, or
    the Redis server ``job_broker`` names (checked now: a missing package or a server that does not
    answer stops the worker at start with one bilingual line, not at the first task)."""
    if not settings.job_broker:
        return SqlHuey(name="baocao", database=make_database(settings.database_url), immediate=immediate)
    try:
        import redis
        from huey import RedisHuey
    except ImportError:
        raise SettingsError("topology.error.redis_package") from None
    huey = RedisHuey(name="baocao", url=settings.job_broker, immediate=immediate)
    if not immediate:  # immediate mode keeps its queue in memory: the server is not used
        try:
            huey.storage.conn.ping()
        except redis.RedisError as exc:
            raise SettingsError("topology.error.redis_down", url=_safe(settings.job_broker),
                                detail=str(exc).rstrip(".")[:200]) from None
    return huey


def make_huey(settings, *, immediate: bool = False, plugins=None):
    """A huey instance for these settings with the core's periodic tasks registered, and with
    ``plugins`` — the ``(plugin manager, registry)`` of ``baocao worker`` — the plugins' jobs
    (hook ``register_jobs``) too, as ``huey.plugin_jobs`` by task name."""
    huey = make_broker(settings, immediate=immediate)
    clock.configure(settings.time_zone)  # the jobs' "today" (periods to open) is the instance's day

    @huey.periodic_task(crontab(minute="*/30"), name="core.purge_expired_sessions")
    def purge_expired_sessions():
        # Expired sessions are refused at once anyway; this only keeps the table small.
        from core.accounts import login as accounts
        from core.db import db, init_db

        if db.obj is None:
            init_db(settings.database_url)
        with db.connection_context():
            removed = accounts.purge_expired_sessions(idle_minutes=settings.session_idle_minutes,
                                                      lifetime_hours=settings.session_lifetime_hours,
                                                      admin_idle_minutes=settings.admin_session_idle_minutes)
        log.info("purged %d expired sessions", removed)
        return removed

    # Hourly, at a quarter to: away from the session purge on the hour and half hour.
    @huey.periodic_task(crontab(minute="45"), name="core.purge_login_attempts")
    def purge_login_attempts():
        # The rate limit reads only the last minute; older rows are kept a while for administrators.
        from core.accounts import login as accounts
        from core.db import db, init_db

        if db.obj is None:
            init_db(settings.database_url)
        from core import rate_limits

        with db.connection_context():
            removed = accounts.purge_login_attempts()
            windows = rate_limits.purge()  # the API and export budgets' minutes that have ended (API-04)
        log.info("purged %d old login attempts, %d rate-limit windows", removed, windows)
        return removed

    # Daily at 01:15 (UTC): accounts unused for ``inactive_days`` are disabled (AUTH-10).
    @huey.periodic_task(crontab(hour="1", minute="15"), name="core.disable_inactive_accounts")
    def disable_inactive_accounts():
        from core.accounts import admin as account_admin
        from core.db import db, init_db

        if db.obj is None:
            init_db(settings.database_url)
        with db.connection_context():
            disabled = account_admin.disable_inactive(days=settings.inactive_days)
        log.info("disabled %d inactive accounts", len(disabled))
        return len(disabled)

    # Hourly, at five past: open the periods of issued periodic regimes that have started, with one
    # report per reporting unit. Idempotent (UNIQUE per regime, unit and period): a second run, or
    # a second worker, creates nothing new.
    @huey.periodic_task(crontab(minute="5"), name="core.open_periods")
    def open_periods():
        from core.regimes import regimes
        from core.reporting import opening as reports
        from core.db import db, init_db

        if db.obj is None:
            init_db(settings.database_url)
        # The worker's plugins are named for the task (name_subscribers): a plugin's regime opens
        # reports only where the plugin is switched on, and those plugins hear the reports opened.
        with db.connection_context():
            result = reports.open_due_periods(calendar=regimes.work_calendar(settings))
        log.info("opened %d periods, %d reports", result.periods, result.reports)
        return result.reports

    # Hourly at ten past, sending only from 07:00 to 18:00 of the instance's day: crontab is UTC and
    # the time zone a setting, so the hour is checked here. Idempotent (core.reporting.reminders:
    # one row per report, kind and day), so the later runs of a day, a second worker, or a run
    # after a crash send only what was not sent yet; a worker down at 07:00 catches up at 08:10.
    @huey.periodic_task(crontab(minute="10"), name="core.send_reminders")
    def send_reminders():
        from core import mailer
        from core.db import db, init_db
        from core.reporting import reminders

        if not reminders.in_office_hours():
            return 0
        if db.obj is None:
            init_db(settings.database_url)
        with db.connection_context(), mailer.sending(settings):
            result = reminders.send_due(settings=settings)
        return result.total

    # Daily at 01:35 (UTC): API tokens expired or revoked more than 90 days ago (they are refused
    # at once anyway; the audit trail keeps their story).
    @huey.periodic_task(crontab(hour="1", minute="35"), name="core.purge_api_tokens")
    def purge_api_tokens():
        from core.accounts import api_tokens
        from core.db import db, init_db

        if db.obj is None:
            init_db(settings.database_url)
        with db.connection_context():
            removed = api_tokens.purge_expired()
        log.info("purged %d old API tokens", removed)
        return removed

    # Daily at 01:40 (UTC): background jobs (core.background) that ended more than a week ago,
    # with the files they left; the web server also purges them when it starts.
    @huey.periodic_task(crontab(hour="1", minute="40"), name="core.purge_background_jobs")
    def purge_background_jobs():
        from core import background
        from core.db import db, init_db

        if db.obj is None:
            init_db(settings.database_url)
        with db.connection_context():
            removed = background.purge()
        log.info("purged %d old background jobs", removed)
        return removed

    # Every minute: the outbox (core.outbox), every channel: e-mail queued by the notifications and
    # what plugins send to other systems. A web request that queued e-mail delivers it at once;
    # this sends the rest and retries the failures.
    @huey.periodic_task(crontab(minute="*"), name="core.deliver_outbox")
    def deliver_outbox():
        from core import outbox
        from core.db import db, init_db

        if db.obj is None:
            init_db(settings.database_url)
        with db.connection_context():
            result = outbox.deliver_due(settings)
        if result.sent or result.failed:
            log.info("outbox: %d sent, %d failed, %d given up", result.sent, result.failed, result.given_up)
        return result.sent

    # Hourly, at twenty past: fetch the CRLs of the pinned CAs (core.signatures.trust), so that signature checks
    # find a current one. A source that fails keeps its previous CRL and is tried again next hour.
    @huey.periodic_task(crontab(minute="20"), name="core.refresh_crls")
    def refresh_crls():
        from core.signatures import trust
        from core.db import db, init_db

        if db.obj is None:
            init_db(settings.database_url)
        with db.connection_context():
            result = trust.refresh_crls()
        log.info("CRLs: %d new, %d unchanged, %d failed", result.fetched, result.unchanged, result.failed)
        return result.fetched

    # Hourly at ten to: the daily backup (core.backup) from 02:00 of the instance's day, once a day —
    # crontab is UTC, so the hour is checked there; a worker down at 02:00 backs up when it is back.
    # Only with backup_dir and backup_key_file set; retention runs after each backup.
    @huey.periodic_task(crontab(minute="50"), name="core.backup")
    def daily_backup():
        from core import backup
        from core.db import db, init_db

        if db.obj is None:
            init_db(settings.database_url)
        archive = backup.run_daily(settings)
        return archive.path.name if archive else None

    # Daily at 03:00 of the instance's day (after the backup): every stored hash recomputed
    # (core.integrity); a mismatch is audited and notified to the system administrators. The
    # schedule is the zone's hour, not a UTC crontab: the run is once a day, counted once.
    from core import integrity

    @huey.periodic_task(integrity.at_integrity_hour, name=integrity.JOB_NAME)
    def check_integrity():
        from core.db import db, init_db

        if db.obj is None:
            init_db(settings.database_url)
        with db.connection_context():
            return len(integrity.run_job(settings).mismatches)

    if plugins:
        record_failures(huey, plugins[0])
    huey.plugin_jobs = schedule_plugin_jobs(huey, settings, *plugins) if plugins else {}
    if plugins and plugins[1] is not None:
        name_subscribers(huey, settings, *plugins)
    return huey


def record_failures(huey, pm) -> None:
    """The worker's plugin failures (its jobs', the report subscribers' its tasks reach, the jobs
    it refuses) are written to the database for the web server's plugins page
    (``core.plugin_failures``): this process's plugin manager is not the one the page reads.

    A failure inside a transaction (a subscriber's, within the transition's) waits until the
    transaction is over; huey's post-execute hook writes what a task left waiting once the task
    has returned or raised, its transactions closed."""
    from core import plugin_failures

    recorder = plugin_failures.attach(pm, "worker")

    @huey.post_execute(name="baocao.plugin_failures")
    def write_failures(task, task_value, exception):
        recorder.flush()


def name_subscribers(huey, settings, pm, registry) -> None:
    """Every task (the core's and the plugins' jobs) runs with the worker's plugins named as the
    report subscribers (``core.reporting.events.using``), as a request and a command do: huey's
    worker threads start with none of the context ``baocao worker`` set, so the reports a task
    opens or moves would otherwise reach the core's own subscribers only.

    huey's pre- and post-execute hooks, not a wrapper per task: they cover the plugins' jobs and
    any task added later. The name is forgotten after each task (a stack: in immediate mode a task
    may run another), so nothing outlives it in the thread that ran it."""
    from core.reporting import events

    local = threading.local()  # each thread's tokens, for ``events.current.reset``

    @huey.pre_execute(name="baocao.report_subscribers")
    def enter(task):
        if not hasattr(local, "tokens"):
            local.tokens = []
        local.tokens.append(events.use(pm, registry, settings))

    @huey.post_execute(name="baocao.report_subscribers")
    def leave(task, task_value, exception):
        if getattr(local, "tokens", None):
            events.current.reset(local.tokens.pop())


def run_worker(settings, workers: int = 1, plugins=None) -> None:
    from core.db import init_db

    init_db(settings.database_url)
    _configure_outbox(settings, plugins)
    huey = make_huey(settings, plugins=plugins)
    from core.metrics import count_job_runs

    count_job_runs(huey)  # runs and last run of each job, for /metrics (docs/observability.md)
    WorkerConsumer(huey, workers=workers, periodic=True, worker_type="thread").run()


# -- several workers on one broker: each periodic task once per tick -------------------------------

CLAIM_KEEP_MINUTES = 3  # a claim outlives the tick by more than two schedulers can be apart (60 s)


def claim_key(task_name: str, minute: dt.datetime) -> str:
    return f"baocao.periodic.{task_name}.{minute:%Y%m%d%H%M}"


def claim_periodic(huey, now: dt.datetime | None = None) -> list:
    """The periodic tasks due at ``now``'s minute that this worker is the first to claim.

    A claim is a key written only if absent (``put_if_empty``: Redis HSETNX, an INSERT on the SQL
    storage's primary key), so of the workers ticking in the same minute one enqueues each task.
    The claims of the minute ``CLAIM_KEEP_MINUTES`` before are deleted on the way: the broker
    keeps a few keys per task, not one per tick forever."""
    now = (now or huey._get_timestamp()).replace(second=0, microsecond=0)
    old = now - dt.timedelta(minutes=CLAIM_KEEP_MINUTES)
    for task in huey.read_periodic(old):
        huey.delete(claim_key(task.name, old))
    return [task for task in huey.read_periodic(now)
            if huey.put_if_empty(claim_key(task.name, now), "1")]


class OncePerTickScheduler(Scheduler):
    """huey's scheduler, enqueuing only the periodic tasks this worker claimed (``claim_periodic``)."""

    def enqueue_periodic_tasks(self, now):
        self._logger.debug("Checking periodic tasks")
        try:
            claimed = claim_periodic(self.huey, now)
        except Exception:  # noqa: BLE001 — the broker out of reach: the next tick tries again
            self._logger.exception("Error claiming the periodic tasks.")
            return
        for task in claimed:
            self._logger.info("Enqueueing periodic task %s.", task)
            try:
                self.huey.enqueue(task)
            except Exception:  # noqa: BLE001 — as huey's own scheduler: the next tick tries again
                self._logger.exception("Error enqueueing periodic task %s.", task)


class WorkerConsumer(Consumer):
    scheduler_class = OncePerTickScheduler


def _configure_outbox(settings, plugins=None) -> None:
    # The worker delivers the plugins' outbox channels too (hook register_channels), from the
    # plugins it was given, or loaded here as the app loads them.
    from core import outbox
    from core.plugins import build_plugin_manager

    outbox.configure(plugins[0] if plugins else build_plugin_manager(settings), settings)


# -- plugins' periodic jobs (hook register_jobs) --------------------------------------------------

JOB_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{1,40}$")


@dataclass(frozen=True)
class Job:
    """A periodic job of a plugin, run by ``baocao worker`` (hook ``register_jobs``).

    ``name``: snake_case, unique in the plugin; the worker's task is ``<plugin>.<name>``.
    ``schedule``: the five crontab fields "minute hour day month day_of_week" as huey reads them
    (``*``, ``*/n``, ``m-n``, ``m,n``; day of week 0 = Sunday), in UTC like the core's own jobs:
    ``"*/15 * * * *"`` every quarter hour, ``"30 1 * * *"`` daily at 01:30 UTC.
    ``run(context)``: called with a ``JobContext``, inside a database connection (not a
    transaction: open one per business operation with ``core.api.transaction``).
    """

    name: str
    schedule: str
    run: Callable[["JobContext"], Any]

    def crontab(self):
        fields = self.schedule.split() if isinstance(self.schedule, str) else []
        if len(fields) != 5:
            raise ValueError("five crontab fields: minute hour day month day_of_week")
        return crontab(*fields, strict=True)


@dataclass(frozen=True)
class JobContext:
    """What a job is given: its plugin's name, the instance's settings, and the units where the
    plugin is switched on (a plugin switched off for a unit skips that unit: DESIGN §4)."""

    plugin: str
    settings: Any
    registry: Any = field(repr=False)

    def units_enabled(self) -> list:
        """The units in force today where this plugin is switched on (its own setting, else the
        nearest ancestor's, else the plugin's default), in one pass over the unit tree."""
        from core.activation import default_enabled
        from core.models import PluginActivation, Unit
        from core.units.tree import valid_at

        own = dict(PluginActivation.select(PluginActivation.unit, PluginActivation.enabled)
                   .where(PluginActivation.plugin == self.plugin).tuples())
        parents = dict(Unit.select(Unit.id, Unit.parent).tuples())
        default = default_enabled(self.registry, self.settings, self.plugin)
        decided: dict[int, bool] = {}

        def enabled(unit_id: int) -> bool:
            chain, current = [], unit_id
            while current is not None and current not in decided and current not in own:
                chain.append(current)
                current = parents.get(current)
            state = default if current is None else decided.get(current, own.get(current))
            for uid in chain:
                decided[uid] = state
            return state

        units = Unit.select().where(valid_at(clock.today())).order_by(Unit.code)
        return [unit for unit in units if enabled(unit.id)]


def schedule_plugin_jobs(huey, settings, pm, registry) -> dict:
    """Register every healthy plugin's jobs on ``huey``; return them by task name.

    A job the core refuses (not a ``Job``, a bad name or schedule, a name twice) is recorded
    against its plugin and skipped. A job that raises is recorded against its plugin (stage "job")
    and the worker goes on: it is tried again at its next time, never retried at once. In the
    worker both reach the plugins page through the database (``record_failures``).
    """
    from core.errors import PluginError

    tasks = {}
    for plugin, jobs in pm.call_each("register_jobs", stage="contribution", settings=settings):
        seen = set()
        for job in jobs if isinstance(jobs, (list, tuple)) else [jobs]:
            name = getattr(job, "name", repr(job))
            try:
                if not isinstance(job, Job) or not isinstance(job.name, str) or not JOB_NAME_RE.match(job.name):
                    raise PluginError("plugin.error.job_invalid", plugin=plugin, job=str(name)[:60],
                                      reason="Job(name=snake_case, schedule, run)")
                if not callable(job.run):
                    raise PluginError("plugin.error.job_invalid", plugin=plugin, job=name, reason="run")
                try:
                    validate = job.crontab()
                except ValueError as exc:
                    raise PluginError("plugin.error.job_invalid", plugin=plugin, job=name,
                                      reason=f"schedule {job.schedule!r}: {exc}") from None
                if name in seen:
                    raise PluginError("plugin.error.job_duplicate", plugin=plugin, job=name)
            except PluginError as exc:
                pm.record_error(plugin, "contribution", exc)
                continue
            seen.add(name)
            task_name = f"{plugin}.{name}"
            tasks[task_name] = huey.periodic_task(validate, name=task_name)(
                _job_runner(settings, pm, registry, plugin, job))
    return tasks


def _job_runner(settings, pm, registry, plugin: str, job: Job):
    def run_job():
        from core.db import db, init_db

        info = pm.infos.get(plugin)
        if info is None or not info.ok:  # failed since the worker started: its jobs stop
            return None
        if db.obj is None:
            init_db(settings.database_url)
        try:
            with db.connection_context():
                return job.run(JobContext(plugin=plugin, settings=settings, registry=registry))
        except Exception as exc:  # noqa: BLE001 — the plugin's failure, never the worker's
            pm.record_error(plugin, "job", exc)
            return None

    run_job.__name__ = f"{plugin}_{job.name}"
    return run_job
