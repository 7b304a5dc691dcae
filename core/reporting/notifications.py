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

import json
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
    report = ForeignKeyField(Report, null=True, on_delete="CASCADE")  # empty for a plugin's notice
    action = CharField(max_length=12)
    actor = ForeignKeyField(User, null=True, on_delete="SET NULL")
    reason = TextField(default="")
    version_number = IntegerField(null=True)
    created_at = DateTimeField(default=utcnow)
    read_at = DateTimeField(null=True)
    # A plugin's notice (``notify``): its plugin, message key, wording in both languages (JSON
    # {"vi": …, "en": …}, frozen when sent) and the page it opens.
    plugin = CharField(max_length=40, default="")
    message = CharField(max_length=120, default="")
    params = TextField(default="{}")
    link = CharField(max_length=500, default="")

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

    if notification.plugin:
        return _notice_text(notification, lang)
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


def link_of(notification: Notification) -> str:
    """The page a notification opens: its report, or the page a plugin's notice names."""
    if notification.report_id is not None:
        return report_path(notification.report_id)
    return notification.link or "/notifications"


# -- a plugin's notices ------------------------------------------------------------------------------

NOTICE_ACTION = "notice"
LINK_RE = re.compile(r"/(?![/\\])[^\s]{0,499}\Z")  # a path of this site: never another site's address


def _notice_text(notification: Notification, lang: str) -> str:
    try:
        words = json.loads(notification.params or "{}")
    except ValueError:
        words = {}
    line = (words.get(lang) or words.get("vi") or notification.message) if isinstance(words, dict) else ""
    if notification.reason:
        from core.i18n import core_catalog

        line += " " + core_catalog().gettext(lang, "notify.text.reason", reason=notification.reason)
    return line


def notify(access, user_ids, message: str, params: dict | None = None, *, link: str = "",
           reason: str = "") -> int:
    """Put a plugin's notice in people's notifications (and their e-mail, when a mail server is
    set), in the caller's transaction, so it goes with the change it tells of or not at all.

    ``access``: the acting person's rights (its registry words the message; its actor is never told).
    ``message``: a key of the plugin's messages (``<plugin>.…``), worded now in both languages
    with ``params`` and kept so (the e-mail is worded the same). ``link``: the page it opens, a
    path of this site (``/p/<plugin>/…``). Only active accounts are told. Returns how many."""
    from core.reporting import events

    registry = getattr(access, "registry", None)
    if not hasattr(registry, "catalog"):  # rights built outside a request (the demo's seed): the context's
        context = events.current.get()
        registry = context.registry if context is not None else None
    plugin = message.split(".", 1)[0] if "." in message else ""
    if plugin == "core" or plugin not in getattr(registry, "domains", {}):
        raise ValueError(f"a plugin's notice names a message of the plugin, not {message!r}")
    if link and not LINK_RE.match(link):
        raise ValueError(f"a notice opens a page of this site (a path), not {link!r}")
    catalog = getattr(registry, "catalog", None)
    if catalog is None or message not in catalog.messages["vi"]:
        raise ValueError(f"the message {message!r} is not among the plugins' messages")
    words = {lang: catalog.gettext(lang, message, **(params or {})) for lang in ("vi", "en")}
    actor_id = getattr(access.actor, "id", None)
    people = sorted({int(u) for u in user_ids} - {actor_id})
    if not people:
        return 0
    people = [u for (u,) in User.select(User.id).where(User.id.in_(people) & (User.is_active == True))  # noqa: E712
              .tuples()]
    with transaction():
        return store_notices(people, plugin=plugin, message=message, words=words, link=link, actor_id=actor_id,
                             reason=reason)


def store_notices(user_ids, *, plugin: str, message: str, words: dict[str, str], link: str = "",
                  actor_id: int | None = None, reason: str = "") -> int:
    """Notices already worded (``words``: language → text) for ``user_ids``, with their e-mail
    queued, in the caller's transaction: ``notify`` for a plugin's, the core's own (core.integrity)."""
    now = utcnow()
    stored = json.dumps(words, ensure_ascii=False)
    made = [Notification.create(user=user_id, report=None, action=NOTICE_ACTION, actor=actor_id,
                                reason=reason or "", plugin=plugin, message=message, params=stored,
                                link=link, created_at=now) for user_id in user_ids]
    _mail_notices(made)
    return len(made)


def _mail_notices(made: list[Notification]) -> None:
    from core import mailer
    from core.i18n import core_catalog

    if not made or not mailer.enabled():
        return
    addresses = dict(EmailAddress.select(EmailAddress.user, EmailAddress.address)
                     .where(EmailAddress.user.in_([n.user_id for n in made])).tuples())
    catalog = core_catalog()
    settings = mailer.current_settings()
    for notification in made:
        address = addresses.get(notification.user_id)
        if not address:
            continue
        vi, en = text(notification, {}, "vi"), text(notification, {}, "en")
        link = (settings.public_url.rstrip("/") + link_of(notification)) if settings.public_url else ""
        mailer.queue(address, " ".join(f"{vi} / {en}".split())[:255], mail_body(vi, en, link, catalog))


def mail_body(vi: str, en: str, link: str, catalog) -> str:
    """A notification's e-mail: Vietnamese first, then English, each with its link and footer."""
    lines = []
    for lang, line in (("vi", vi), ("en", en)):
        if lang == "en":
            lines += ["", "-- English --", ""]
        lines.append(line)
        if link:
            lines.append(catalog.gettext(lang, "notify.mail.open", link=link))
        lines += ["", catalog.gettext(lang, "notify.mail.footer")]
    return "\n".join(lines) + "\n"


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
    names = report_names({n.report_id for n in rows} - {None})
    return [{"id": n.id, "text": text(n, names.get(n.report_id, {}), lang), "at": n.created_at,
             "read": n.read_at is not None, "report_id": n.report_id, "action": n.action, "link": link_of(n),
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

