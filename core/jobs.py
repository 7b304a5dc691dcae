"""Background and scheduled work on huey, stored in the application's own database.

huey's SQL storage keeps the queue in the same SQLite file or PostgreSQL
database as everything else, so the default install needs no extra server, and
several ``baocao worker`` processes can share one PostgreSQL queue.
"""

from __future__ import annotations

import logging

from huey import crontab
from huey.contrib.sql_huey import SqlHuey

from core import clock
from core.db import make_database

log = logging.getLogger("baocao.jobs")


def make_huey(settings, *, immediate: bool = False) -> SqlHuey:
    """A huey instance for these settings with the core's periodic tasks registered."""
    huey = SqlHuey(name="baocao", database=make_database(settings.database_url), immediate=immediate)
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
        with db.connection_context():
            removed = accounts.purge_login_attempts()
        log.info("purged %d old login attempts", removed)
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
        with db.connection_context():
            result = reports.open_due_periods(calendar=regimes.work_calendar(settings))
        log.info("opened %d periods, %d reports", result.periods, result.reports)
        return result.reports

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

    # Every minute, when a mail server is set: e-mails queued by the workflow's notifications
    # (core.mailer). The web request that queued one delivers it at once; this sends the rest and
    # retries the failures. Without ``smtp_host`` nothing is queued, so there is no task.
    if settings.smtp_host:
        @huey.periodic_task(crontab(minute="*"), name="core.deliver_mail")
        def deliver_mail():
            from core import mailer
            from core.db import db, init_db

            if db.obj is None:
                init_db(settings.database_url)
            with db.connection_context():
                result = mailer.deliver_pending(settings)
            if result.sent or result.failed:
                log.info("mail: %d sent, %d failed", result.sent, result.failed)
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

    return huey


def run_worker(settings, workers: int = 1) -> None:
    from huey.consumer import Consumer

    from core.db import init_db

    init_db(settings.database_url)
    huey = make_huey(settings)
    Consumer(huey, workers=workers, periodic=True, worker_type="thread").run()
