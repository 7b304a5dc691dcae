"""E-mail to send: queued into the outbox's SMTP channel (core.outbox, core.channels.smtp).

Whether to queue at all depends on the settings (``smtp_host`` empty: no e-mail). The workflow's
functions do not take the settings, so the web layer (and any job or command that wants mail)
says so with ``with mailer.sending(settings):`` around the work; ``queue`` does nothing outside
it. A queued mail is an outbox message written in the caller's transaction; ``deliver_pending``
sends the mail that is due (the web layer calls it right after a request that queued some, the
worker's outbox job every minute) and never raises.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
from dataclasses import dataclass

from core import outbox
from core.channels import smtp


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


def queue(recipient: str, subject: str, body: str) -> outbox.OutboxMessage | None:
    """Queue one message in the current transaction; None when e-mail is off here."""
    context = _current.get()
    if context is None or not recipient:
        return None
    message = outbox.enqueue(smtp.NAME, {"to": recipient[:254], "subject": subject[:255], "body": body})
    context.queued += 1
    return message


def deliver_pending(settings, *, now: dt.datetime | None = None, limit: int = outbox.BATCH) -> outbox.DeliveryResult:
    """Send the e-mail that is due; never raises (failures are recorded on the messages)."""
    if not settings.smtp_host:
        return outbox.DeliveryResult()
    return outbox.deliver_due(settings, names=[smtp.NAME], now=now, limit=limit)
