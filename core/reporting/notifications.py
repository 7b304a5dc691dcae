"""Notifications of the report workflow: in the app, and by e-mail when a mail server is set.

Who is told, and the e-mails, are decided by the built-in subscriber
``core.reporting.subscribers.notify``: it hears the workflow's transitions (submitted, returned,
accepted, reopened; ``core.reporting.events``) inside their transaction, so the notifications and
their queued e-mails commit with the change or not at all. This module keeps what is read: the
stored notification, its wording and the person's inbox. Who is told:

- submit → whoever may receive the report: a grant carrying ``core.report.receive`` at the
  receiving unit or one of its ancestors;
- return, accept, reopen → whoever may fill it: ``core.report.submit`` at the report's unit or
  an ancestor, and the person who submitted the latest version;

never the person who acted, and only active accounts. System administrators hold every right
without a grant; they are not told of every report in the province, only through a grant.

A notification stores facts (action, actor, reason, version), not text: it is worded when shown,
in the reader's language. An e-mail carries both languages, Vietnamese first, and a link to the
report when ``public_url`` is set. The address is the person's own, set on the notifications
page (``EmailAddress``: accounts have no e-mail field of their own).
"""

from __future__ import annotations

import re
import unicodedata

from peewee import JOIN, CharField, DateTimeField, ForeignKeyField, IntegerField, TextField

from core import audit
from core.db import CoreModel, transaction
from core.errors import NotFound, ValidationError
from core.models import Unit, User, utcnow
from core.regimes.regimes import Regime
from core.reporting.opening import Report

ACTIONS = ("submit", "return", "accept", "reopen")
# Reminders (core.reporting.reminders): before the deadline, on its day, overdue (escalation), a
# receiver's "Đôn đốc". Worded from their own keys with the deadline; ``version_number`` holds the
# working days that were left when a "due_soon" one was sent (a count fixed at sending, not today's).
REMINDER_ACTIONS = ("due_soon", "due_today", "overdue", "urge")
PAGE_SIZE = 100
MAX_EMAIL = 254
# One address, no display name: enough to refuse a typing slip, not a full RFC 5322 parser.
EMAIL_RE = re.compile(r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+\.[^@\s<>,;\".]{2,}\Z")


class Notification(CoreModel):
    user = ForeignKeyField(User, backref="notifications", on_delete="CASCADE")
    report = ForeignKeyField(Report, on_delete="CASCADE")
    action = CharField(max_length=12)
    actor = ForeignKeyField(User, null=True, on_delete="SET NULL")
    reason = TextField(default="")
    version_number = IntegerField(null=True)
    created_at = DateTimeField(default=utcnow)
    read_at = DateTimeField(null=True)

    class Meta:
        indexes = ((("user", "read_at"), False), (("user", "created_at"), False))


class EmailAddress(CoreModel):
    """Where a person's notifications are e-mailed (none: in the app only)."""

    user = ForeignKeyField(User, unique=True, on_delete="CASCADE")
    address = CharField(max_length=MAX_EMAIL)
    updated_at = DateTimeField(default=utcnow)


def _receiving_unit_id(report: Report) -> int | None:
    """The unit that reviews the report (the regime's receiving unit until reports carry their own)."""
    if hasattr(report, "receiver_id"):
        return report.receiver_id
    return report.regime.receiving_unit_id


# -- wording -------------------------------------------------------------------------------------

def report_names(report_ids: set[int]) -> dict[int, dict]:
    """For each report: its unit's name, its period label, its regime's name and its receiver's name."""
    if not report_ids:
        return {}
    rows = list(Report.select(Report, Regime, Unit).join(Regime).switch(Report).join(Unit)
                .where(Report.id.in_(report_ids)))
    receivers = {_receiving_unit_id(r) for r in rows} - {None}
    receiver_names = dict(Unit.select(Unit.id, Unit.name).where(Unit.id.in_(receivers)).tuples()) if receivers else {}
    return {r.id: {"unit": r.unit.name, "period": r.label, "regime": r.regime.name,
                   "receiver": receiver_names.get(_receiving_unit_id(r), ""), "deadline": r.deadline}
            for r in rows}


def text(notification: Notification, names: dict, lang: str) -> str:
    """One line, e.g. "Xã Ái Tử đã gửi báo cáo Tháng 3/2026 — Báo cáo tình hình …"."""
    from core.i18n import core_catalog

    catalog = core_catalog()
    params = dict(names)
    if notification.action in REMINDER_ACTIONS:
        return _reminder_text(notification, params, lang, catalog)
    if notification.action != "submit" and not params.get("receiver"):
        params["receiver"] = catalog.gettext(lang, "notify.someone")
    line = catalog.gettext(lang, f"notify.text.{notification.action}", **params)
    if notification.action == "submit" and (notification.version_number or 1) > 1:
        line += " " + catalog.gettext(lang, "notify.text.version", version=notification.version_number)
    if notification.reason:
        line += " " + catalog.gettext(lang, "notify.text.reason", reason=notification.reason)
    return line


def _reminder_text(notification: Notification, params: dict, lang: str, catalog) -> str:
    from core.i18n import format_date

    params["deadline"] = format_date(params.get("deadline"), lang)
    params["days"] = notification.version_number or 0
    if not params.get("receiver"):
        params["receiver"] = catalog.gettext(lang, "notify.someone")
    line = catalog.gettext(lang, f"reminders.text.{notification.action}", **params)
    if notification.reason:
        line += " " + catalog.gettext(lang, "reminders.text.message", message=notification.reason)
    return line


def report_path(report_id: int) -> str:
    return f"/reports/{report_id}"


# -- the person's inbox --------------------------------------------------------------------------

def unread_count(user_id: int) -> int:
    return Notification.select().where((Notification.user == user_id) & Notification.read_at.is_null()).count()


def inbox(user_id: int, lang: str, *, limit: int = PAGE_SIZE) -> list[dict]:
    """The person's notifications, newest first, worded in ``lang``."""
    actor = User.alias()
    rows = list(Notification.select(Notification, actor)
                .join(actor, JOIN.LEFT_OUTER, on=(Notification.actor == actor.id))
                .where(Notification.user == user_id)
                .order_by(Notification.created_at.desc(), Notification.id.desc()).limit(limit))
    names = report_names({n.report_id for n in rows})
    return [{"id": n.id, "text": text(n, names.get(n.report_id, {}), lang), "at": n.created_at,
             "read": n.read_at is not None, "report_id": n.report_id, "action": n.action,
             "actor": n.actor.full_name if n.actor_id is not None else ""} for n in rows]


def mark_read(user_id: int, notification_id: int) -> Notification:
    """Mark one of the person's own notifications read (another's does not exist for them)."""
    with transaction():
        notification = Notification.get_or_none((Notification.id == notification_id)
                                                & (Notification.user == user_id))
        if notification is None:
            raise NotFound()
        if notification.read_at is None:
            (Notification.update(read_at=utcnow())
             .where((Notification.id == notification.id) & Notification.read_at.is_null()).execute())
    return notification


def mark_all_read(user_id: int) -> int:
    with transaction():
        return (Notification.update(read_at=utcnow())
                .where((Notification.user == user_id) & Notification.read_at.is_null()).execute())


def email_of(user_id: int) -> str:
    row = EmailAddress.get_or_none(EmailAddress.user == user_id)
    return row.address if row is not None else ""


def set_email(actor: User, address: str) -> str:
    """Set (or, empty, remove) where the person's notifications are e-mailed."""
    address = unicodedata.normalize("NFC", (address or "").strip())
    if address and (len(address) > MAX_EMAIL or not EMAIL_RE.match(address)):
        raise ValidationError({"email": "notify.error.email"})
    with transaction():
        previous = email_of(actor.id)
        if address == previous:
            return address
        EmailAddress.delete().where(EmailAddress.user == actor.id).execute()
        if address:
            EmailAddress.create(user=actor.id, address=address)
        audit.record("notify.email_set", actor=actor, object_type="user", object_id=actor.id,
                     details={"set": bool(address)})
    return address

