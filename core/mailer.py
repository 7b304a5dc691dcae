"""E-mail: the outbox of queued messages and their delivery by SMTP.

A message is queued as a row in the same transaction as the change it tells about, so a change
that rolls back sends nothing and a committed one is never forgotten. Delivery happens after the
commit, in ``deliver_pending``: right after the web request that queued something (see
``web.routes.notifications.DeliverMailAfterRequest``) and every minute from the worker
(``core.jobs``), so a mail that failed waits for its next attempt there.

Several processes may deliver at once (web workers, the huey worker): each message is claimed by
one conditional UPDATE before it is sent, so a message goes out once. A claim lasts ``LEASE``: a
process that dies while sending leaves the message to be tried again after it. A message that
keeps failing is retried after longer and longer waits, then marked failed after
``MAX_ATTEMPTS``; its last error stays on the row for the operator.

Whether to queue at all depends on the settings (``smtp_host`` empty: no e-mail). The workflow's
functions do not take the settings, so the web layer (and any job or command that wants mail)
says so with ``with mailer.sending(settings):`` around the work; ``queue`` does nothing outside
it. Delivery never raises into its caller: a broken mail server must not break a request.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import logging
import smtplib
import ssl
from dataclasses import dataclass, field
from email.header import Header
from email.mime.text import MIMEText
from email.utils import formataddr, formatdate, make_msgid

from peewee import Check, CharField, DateTimeField, IntegerField, TextField

from core.db import CoreModel, transaction
from core.models import utcnow

log = logging.getLogger("baocao.mail")

STATUSES = ("pending", "sent", "failed")
MAX_ATTEMPTS = 8
RETRY_MINUTES = (1, 2, 5, 10, 30, 60, 120)  # wait after the 1st, 2nd, ... failure (last repeats)
LEASE = dt.timedelta(minutes=10)  # a claim older than this is free again
SMTP_TIMEOUT = 20  # seconds; a stalled server must not hold a worker for long
BATCH = 100
MAX_ERROR = 500


class OutboxMail(CoreModel):
    recipient = CharField(max_length=254)
    subject = CharField(max_length=255)
    body = TextField()
    status = CharField(max_length=8, default="pending",
                       constraints=[Check("status IN ('pending', 'sent', 'failed')")])
    attempts = IntegerField(default=0)
    next_attempt_at = DateTimeField(default=utcnow, index=True)
    last_error = TextField(default="")
    created_at = DateTimeField(default=utcnow)
    sent_at = DateTimeField(null=True)


@dataclass
class MailContext:
    settings: object
    queued: int = 0  # messages queued under this context (the web layer delivers when > 0)


_current: contextvars.ContextVar[MailContext | None] = contextvars.ContextVar("baocao_mail", default=None)


@contextlib.contextmanager
def sending(settings):
    """Queue e-mail for the work done inside (when ``settings.smtp_host`` is set)."""
    context = MailContext(settings) if settings.smtp_host else None
    token = _current.set(context)
    try:
        yield context
    finally:
        _current.reset(token)


def enabled() -> bool:
    return _current.get() is not None


def current_settings():
    """The settings of the ``sending`` block we are in (None outside one, or with mail off)."""
    context = _current.get()
    return context.settings if context is not None else None


def queue(recipient: str, subject: str, body: str) -> OutboxMail | None:
    """Queue one message in the current transaction; None when e-mail is off here."""
    context = _current.get()
    if context is None or not recipient:
        return None
    mail = OutboxMail.create(recipient=recipient[:254], subject=subject[:255], body=body)
    context.queued += 1
    return mail


@dataclass
class DeliveryResult:
    sent: int = 0
    failed: int = 0  # attempts that failed this time (the message may still be retried)
    errors: list[str] = field(default_factory=list)


def _retry_after(attempts: int) -> dt.timedelta:
    return dt.timedelta(minutes=RETRY_MINUTES[min(attempts, len(RETRY_MINUTES)) - 1])


def _claim(mail: OutboxMail, now: dt.datetime) -> bool:
    with transaction():
        return (OutboxMail.update(attempts=OutboxMail.attempts + 1, next_attempt_at=now + LEASE)
                .where((OutboxMail.id == mail.id) & (OutboxMail.status == "pending")
                       & (OutboxMail.next_attempt_at <= now) & (OutboxMail.attempts == mail.attempts))
                .execute()) == 1


def _failed(mail_id: int, attempts: int, error: str, now: dt.datetime) -> None:
    give_up = attempts >= MAX_ATTEMPTS
    with transaction():
        (OutboxMail.update(last_error=error[:MAX_ERROR], status="failed" if give_up else "pending",
                           next_attempt_at=now + _retry_after(attempts))
         .where(OutboxMail.id == mail_id).execute())
    if give_up:
        log.error("mail %s to be given up after %d attempts: %s", mail_id, attempts, error[:MAX_ERROR])


def _message(settings, mail: OutboxMail) -> MIMEText:
    # The compat32 classes on purpose: the modern header folding drops the space between two
    # encoded words ("the reportTháng 3" in a mail reader); ``Header`` encodes the subject whole.
    message = MIMEText(mail.body, "plain", "utf-8")
    message["From"] = formataddr(("Hệ thống báo cáo", settings.smtp_from), charset="utf-8")
    message["To"] = mail.recipient
    message["Subject"] = Header(mail.subject, "utf-8")
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=settings.smtp_from.rpartition("@")[2] or "localhost")
    return message


def _connect(settings) -> smtplib.SMTP:
    server = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=SMTP_TIMEOUT)
    try:
        server.ehlo()
        if settings.smtp_starttls:
            server.starttls(context=ssl.create_default_context())
            server.ehlo()
        if settings.smtp_user:
            server.login(settings.smtp_user, settings.smtp_password)
    except BaseException:
        server.close()
        raise
    return server


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".strip()


def deliver_pending(settings, *, now: dt.datetime | None = None, limit: int = BATCH) -> DeliveryResult:
    """Send the messages that are due; never raises (failures are recorded on the messages)."""
    result = DeliveryResult()
    if not settings.smtp_host:
        return result
    try:
        _deliver(settings, now or utcnow(), limit, result)
    except Exception as exc:  # noqa: BLE001 — the database itself failed: next run tries again
        log.exception("mail delivery stopped")
        result.errors.append(_describe(exc))
    return result


def _deliver(settings, now: dt.datetime, limit: int, result: DeliveryResult) -> None:
    due = list(OutboxMail.select().where((OutboxMail.status == "pending") & (OutboxMail.next_attempt_at <= now))
               .order_by(OutboxMail.id).limit(limit))
    claimed = [(mail, mail.attempts + 1) for mail in due if _claim(mail, now)]
    if not claimed:
        return
    try:
        server = _connect(settings)
    except Exception as exc:  # noqa: BLE001 — server down, refused login, TLS failure...
        error = _describe(exc)
        log.warning("mail server %s:%s unusable: %s", settings.smtp_host, settings.smtp_port, error)
        for mail, attempts in claimed:
            _failed(mail.id, attempts, error, now)
        result.failed += len(claimed)
        result.errors.append(error)
        return
    try:
        for mail, attempts in claimed:
            try:
                server.send_message(_message(settings, mail))
            except Exception as exc:  # noqa: BLE001 — this recipient refused; the others still go
                _failed(mail.id, attempts, _describe(exc), now)
                result.failed += 1
                result.errors.append(_describe(exc))
                continue
            with transaction():
                (OutboxMail.update(status="sent", sent_at=utcnow(), last_error="")
                 .where(OutboxMail.id == mail.id).execute())
            result.sent += 1
    finally:
        with contextlib.suppress(Exception):
            server.quit()
