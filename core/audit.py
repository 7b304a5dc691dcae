"""The audit trail: append-only, hash-chained events.

Each event stores the SHA-256 of its own canonical content together with the
previous event's hash, so removing or editing any row breaks the chain from
there on (``baocao audit verify`` names the first broken link). Events are
written inside the business operation's transaction: the change and its record
commit together or not at all. Never put a password, token or session id into
``details``.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import hashlib
import json
import threading
import unicodedata
import weakref
from dataclasses import dataclass

from peewee import CharField, DateTimeField, IntegerField, TextField, fn

from core.db import CoreModel, db, is_sqlite, transaction
from core import clock
from core.i18n import fold
from core.models import Unit, User, utcnow
from core.units.tree import subtree_ids

GENESIS = "0" * 64
RESULTS = ("ok", "denied", "failed")
VIEW_PERMISSION = "core.audit.view"

# Action code → message key, for the screens ("Đăng nhập", "Bật/tắt phân hệ"...). Record
# with one of these codes; a plugin may use its own ("<plugin>.<thing>.<verb>"), which the
# screens then show as the bare code.
ACTIONS = {
    "auth.login": "audit.action.auth.login",
    "auth.login_failed": "audit.action.auth.login_failed",
    "auth.logout": "audit.action.auth.logout",
    "auth.locked": "audit.action.auth.locked",
    "auth.password_changed": "audit.action.auth.password_changed",
    "auth.mfa_enabled": "audit.action.auth.mfa_enabled",
    "auth.mfa_disabled": "audit.action.auth.mfa_disabled",
    "auth.mfa_failed": "audit.action.auth.mfa_failed",
    "auth.mfa_recovery_codes": "audit.action.auth.mfa_recovery_codes",
    "auth.reauth": "audit.action.auth.reauth",
    "user.create": "audit.action.user.create",
    "user.disable": "audit.action.user.disable",
    "user.enable": "audit.action.user.enable",
    "user.password_reset": "audit.action.user.password_reset",
    "user.unlock": "audit.action.user.unlock",
    "grant.add": "audit.action.grant.add",
    "grant.remove": "audit.action.grant.remove",
    "role.create": "audit.action.role.create",
    "role.edit": "audit.action.role.edit",
    "role.delete": "audit.action.role.delete",
    "session.end": "audit.action.session.end",
    "plugin.switch": "audit.action.plugin.switch",
    "plugin.failures_clear": "audit.action.plugin.failures_clear",
    "followup.marked": "quality.audit.marked",
    "followup.cleared": "quality.audit.cleared",
    "feedback.created": "feedback.audit.created",
    "feedback.replied": "feedback.audit.replied",
    "feedback.status_changed": "feedback.audit.status_changed",
    "feedback.assigned": "feedback.audit.assigned",
    "reminder.urge": "reminders.audit.urge",
    "reminder.policy": "reminders.audit.policy",
    "consolidation.rebuild": "repair.audit.rebuild",
    "audit.export": "audit.action.audit.export",
    "access.denied": "audit.action.access.denied",
    "indicator.change": "audit.action.indicator.change",
    "indicator.import": "audit.action.indicator.import",
    "indicator.values.put": "audit.action.indicator.values.put",
    "api_token.create": "audit.action.api_token.create",
    "api_token.revoke": "audit.action.api_token.revoke",
    "unit.change": "audit.action.unit.change",
    "unit.import": "audit.action.unit.import",
    "unit.export": "audit.action.unit.export",
    "regime.create": "audit.action.regime.create",
    "regime.edit": "audit.action.regime.edit",
    "regime.new_version": "audit.action.regime.new_version",
    "regime.issue": "audit.action.regime.issue",
    "regime.suspend": "audit.action.regime.suspend",
    "regime.resume": "audit.action.regime.resume",
    "regime.retire": "audit.action.regime.retire",
    "regime.period_open": "audit.action.regime.period_open",
    "calendar.add": "audit.action.calendar.add",
    "calendar.remove": "audit.action.calendar.remove",
    "regime.group": "audit.action.regime.group",
    "regime.group_delete": "audit.action.regime.group_delete",
    "form.created": "audit.action.form.created",
    "form.draft_saved": "audit.action.form.draft_saved",
    "form.published": "audit.action.form.published",
    "form.version_created": "audit.action.form.version_created",
    "form.copied": "audit.action.form.copied",
    "report.saved": "audit.action.report.saved",
    "report.comment_added": "audit.action.report.comment_added",
    "report.attachment_added": "audit.action.report.attachment_added",
    "report.attachment_deleted": "audit.action.report.attachment_deleted",
    "report.submitted": "audit.action.report.submitted",
    "report.returned": "audit.action.report.returned",
    "report.accepted": "audit.action.report.accepted",
    "report.reopened": "audit.action.report.reopened",
    "trust.anchor_added": "trust.audit.anchor_added",
    "trust.anchor_deactivated": "trust.audit.anchor_deactivated",
    "trust.crl_uploaded": "trust.audit.crl_uploaded",
    "trust.crl_refreshed": "trust.audit.crl_refreshed",
    "trust.crl_source_added": "trust.audit.crl_source_added",
    "trust.crl_source_removed": "trust.audit.crl_source_removed",
    "trust.certificate_registered": "trust.audit.certificate_registered",
    "trust.certificate_deactivated": "trust.audit.certificate_deactivated",
    "trust.identity_number_set": "trust.audit.identity_number_set",
    "consolidation.opened": "consolidation.audit.opened",
    "consolidation.refreshed": "consolidation.audit.refreshed",
    "notify.email_set": "notify.audit.email_set",
    "report.signing_prepared": "signing.audit.signing_prepared",
    "report.signature_refused": "signing.audit.signature_refused",
    "report.signature_checked": "signing.audit.signature_checked",
    "seal.installed": "signing.audit.seal_installed",
    "seal.retired": "signing.audit.seal_retired",
    "outbox.retry": "outbox.audit.retry",
    "outbox.cancel": "outbox.audit.cancel",
    "backup.created": "backup.audit.created",
    "backup.restored": "backup.audit.restored",
    "migrate.applied": "migrate.audit.applied",
    "integrity.checked": "integrity.audit.checked",
    "incident.exported": "incident.audit.exported",
}

# ``object_type`` values the core uses → message key. An event about an account uses
# object_type "user" and object_id = the account's id, so it shows in that user's history.
OBJECT_TYPES = {
    "user": "audit.object.user",
    "grant": "audit.object.grant",
    "role": "audit.object.role",
    "unit": "audit.object.unit",
    "session": "audit.object.session",
    "plugin": "audit.object.plugin",
    "route": "audit.object.route",
    "audit": "audit.object.audit",
    "indicator_value": "audit.object.indicator_value",
    "api_token": "audit.object.api_token",
    "indicator": "audit.object.indicator",
    "regime": "audit.object.regime",
    "form": "audit.object.form",
    "report": "audit.object.report",
    "unit_group": "audit.object.unit_group",
    "unit_change": "audit.object.unit_change",
    "trust_anchor": "trust.object.trust_anchor",
    "crl": "trust.object.crl",
    "crl_source": "trust.object.crl_source",
    "outbox_message": "outbox.object.outbox_message",
    "feedback": "feedback.audit.object",
    "backup": "backup.audit.object",
    "migration": "migrate.audit.object",
    "integrity": "integrity.audit.object",
    "incident": "incident.audit.object",
}

RESULT_LABELS = {"ok": "audit.result.ok", "denied": "audit.result.denied", "failed": "audit.result.failed"}


@dataclass(frozen=True)
class RequestInfo:
    request_id: str = ""
    client_address: str = ""


# Set by the web layer for each request; the CLI and jobs leave it empty.
current_request: contextvars.ContextVar[RequestInfo] = contextvars.ContextVar("baocao_audit_request",
                                                                              default=RequestInfo())


class AuditEvent(CoreModel):
    at = DateTimeField(default=utcnow, index=True)
    actor_id = IntegerField(null=True, index=True)  # no foreign key: events outlive accounts
    actor_name = CharField(max_length=64, default="")
    unit_id = IntegerField(null=True, index=True)
    action = CharField(max_length=64, index=True)
    object_type = CharField(max_length=64, default="")
    object_id = CharField(max_length=64, default="")
    result = CharField(max_length=10, default="ok")
    request_id = CharField(max_length=32, default="")
    client_address = CharField(max_length=64, default="")
    details = TextField(default="{}")
    prev_hash = CharField(max_length=64)
    hash = CharField(max_length=64, unique=True)

    CHAINED = ("at", "actor_id", "actor_name", "unit_id", "action", "object_type", "object_id", "result",
               "request_id", "client_address", "details")

    def content(self) -> dict:
        values = {name: getattr(self, name) for name in self.CHAINED}
        values["at"] = self.at.isoformat(timespec="microseconds")
        return values

    def canonical(self) -> str:
        """The chained fields as the hash takes them (without the previous hash, which comes first)."""
        return json.dumps(self.content(), sort_keys=True, ensure_ascii=False, separators=(",", ":"))

    def compute_hash(self) -> str:
        return hashlib.sha256((self.prev_hash + self.canonical()).encode("utf-8")).hexdigest()


def lock_chain() -> None:
    """Serialise writers so two events never claim the same predecessor (held to the transaction's
    end). Public for writers that must take it before locks of their own, so every writer takes
    locks in one order (core.reporting.consolidation)."""
    if not is_sqlite():  # SQLite transactions already begin IMMEDIATE, one writer at a time
        db.execute_sql("SELECT pg_advisory_xact_lock(4242001)")


def record(action: str, *, actor=None, unit=None, object_type: str = "", object_id="", result: str = "ok",
           details: dict | None = None) -> AuditEvent:
    """Append one event (inside the caller's transaction when there is one)."""
    if result not in RESULTS:
        raise ValueError(f"audit result must be one of {RESULTS}")
    info = current_request.get()
    unit_id = getattr(unit, "id", unit)
    if unit_id is None and actor is not None:
        unit_id = actor.unit_id
    # Inside the caller's transaction the event commits or rolls back with the change it records:
    # a savepoint of its own would cost two more round trips and change nothing.
    event = AuditEvent(
        at=utcnow(), actor_id=getattr(actor, "id", None), actor_name=getattr(actor, "username", "") or "",
        unit_id=unit_id, action=action, object_type=object_type, object_id=str(object_id or ""),
        result=result, request_id=info.request_id[:32], client_address=(info.client_address or "")[:64],
        details=json.dumps(details or {}, sort_keys=True, ensure_ascii=False, default=str))
    with contextlib.nullcontext() if db.in_transaction() else transaction():
        # SQLite (its write transaction holds the database), or a PostgreSQL database not yet at
        # migration 0039 (the events of the backup taken before it): read the last hash, then insert.
        if is_sqlite() or not _append_in_one_call():
            lock_chain()
            last = AuditEvent.select(AuditEvent.hash).order_by(AuditEvent.id.desc()).first()
            event.prev_hash = last.hash if last else GENESIS
            event.hash = event.compute_hash()
            event.save(force_insert=True)
        else:
            # The lock, the last hash and the insert in one round trip (migration 0039): the chain's
            # lock is then held over this call and the commit only, not four round trips.
            event.id, event.prev_hash, event.hash = db.execute_sql(_APPEND, (
                event.at, event.actor_id, event.actor_name, event.unit_id, event.action, event.object_type,
                event.object_id, event.result, event.request_id, event.client_address, event.details,
                event.canonical(), GENESIS)).fetchone()
    return event


_APPEND_FUNCTION = ("baocao_audit_append(timestamp, bigint, text, bigint, text, text, text, text, text, text, "
                    "text, text, text)")
_APPEND_FOUND: weakref.WeakSet = weakref.WeakSet()  # the databases the function was found in
_APPEND_LOCK = threading.Lock()


def _append_in_one_call() -> bool:
    """Whether this database has ``baocao_audit_append`` (migration 0039), asked until it is found."""
    database = db.obj
    if database in _APPEND_FOUND:
        return True
    found = database.execute_sql("SELECT to_regprocedure(%s) IS NOT NULL", (_APPEND_FUNCTION,)).fetchone()[0]
    if found:
        with _APPEND_LOCK:
            _APPEND_FOUND.add(database)
    return found


def forget_schema() -> None:
    """After a migration step (core.migrate): whether the function exists is asked again."""
    with _APPEND_LOCK:
        _APPEND_FOUND.clear()


_APPEND = ("SELECT event_id, event_prev_hash, event_hash FROM baocao_audit_append("
           "%s::timestamp, %s::bigint, %s::text, %s::bigint, %s::text, %s::text, %s::text, %s::text, %s::text, "
           "%s::text, %s::text, %s::text, %s::text)")


@dataclass(frozen=True)
class Verification:
    ok: bool
    checked: int
    broken_id: int | None = None
    reason: str = ""  # "link": the previous event was removed or altered; "content": this one was
    broken_at: dt.datetime | None = None
    broken_action: str = ""


def verify() -> Verification:
    """Walk the chain in order; report the first event whose link or content does not hold."""
    previous = GENESIS
    checked = 0
    for event in AuditEvent.select().order_by(AuditEvent.id).iterator():
        reason = ("link" if event.prev_hash != previous
                  else "content" if event.compute_hash() != event.hash else "")
        if reason:
            return Verification(False, checked, event.id, reason, event.at, event.action)
        previous = event.hash
        checked += 1
    return Verification(True, checked)


# -- reading the trail (the audit screens and the export) --------------------------------------

@dataclass(frozen=True)
class Filters:
    """What the audit screens filter on. Dates are Vietnam calendar days, both inclusive."""

    date_from: dt.date | None = None
    date_to: dt.date | None = None
    action: str = ""
    actor: str = ""  # a username, matched whole, any case
    result: str = ""
    unit_id: int | None = None  # the unit and its subtree
    text: str = ""

    def active(self) -> bool:
        return any((self.date_from, self.date_to, self.action, self.actor, self.result,
                    self.unit_id is not None, self.text))


def viewing_scope(access) -> list[int] | None:
    """Unit ids whose events ``access``'s actor may read (the subtrees where they hold
    ``core.audit.view``); None means every event, also those tied to no unit."""
    roots = access.roots(VIEW_PERMISSION)
    if roots is None:
        return None
    return sorted({uid for root in roots for uid in subtree_ids(root)})


def _vietnam_midnight_utc(day: dt.date) -> dt.datetime:
    local = dt.datetime.combine(day, dt.time.min, tzinfo=clock.zone())
    return local.astimezone(dt.timezone.utc).replace(tzinfo=None)


def matching_units(text: str, scope: list[int] | None) -> list[int]:
    """Units whose name or code contains ``text``, ignoring case and diacritics."""
    needle = fold(text)
    query = Unit.select(Unit.id, Unit.name, Unit.code)
    if scope is not None:
        query = query.where(Unit.id.in_(scope)) if scope else query.where(Unit.id.is_null())
    return [u.id for u in query if needle in fold(f"{u.name} {u.code}")]


def matching_users(text: str) -> list[int]:
    """Accounts whose full name or username contains ``text``, ignoring case and diacritics."""
    needle = fold(text)
    return [u.id for u in User.select(User.id, User.full_name, User.username)
            if needle in fold(f"{u.full_name} {u.username}")]


def search(filters: Filters, *, scope: list[int] | None, own_user_id: int | None = None,
           text_actions: tuple[str, ...] = ()):
    """Events matching ``filters`` inside ``scope`` (unit ids; None: all), newest first.

    With ``own_user_id`` only that user's history: what they did, and what was done to
    their account (object_type "user"). ``text_actions``: action codes whose label (in the
    reader's language) matches the free text, which the caller knows and this layer does not.
    """
    event = AuditEvent
    query = event.select()
    if own_user_id is not None:
        query = query.where((event.actor_id == own_user_id)
                            | ((event.object_type == "user") & (event.object_id == str(own_user_id))))
    if scope is not None:
        query = query.where(event.unit_id.in_(scope)) if scope else query.where(event.id.is_null())
    if filters.date_from:
        query = query.where(event.at >= _vietnam_midnight_utc(filters.date_from))
    if filters.date_to:
        query = query.where(event.at < _vietnam_midnight_utc(filters.date_to + dt.timedelta(days=1)))
    if filters.action:
        query = query.where(event.action == filters.action)
    if filters.actor:
        query = query.where(fn.LOWER(event.actor_name) == filters.actor.lower())
    if filters.result:
        query = query.where(event.result == filters.result)
    if filters.unit_id is not None:
        below = subtree_ids(filters.unit_id)
        if scope is not None:
            below = sorted(set(below) & set(scope))
        query = query.where(event.unit_id.in_(below)) if below else query.where(event.id.is_null())
    if filters.text:
        text = unicodedata.normalize("NFC", filters.text)
        term = (event.actor_name.contains(text) | event.object_type.contains(text)
                | event.object_id.contains(text) | event.details.contains(text)
                | event.request_id.contains(text) | event.client_address.contains(text)
                | event.action.contains(text))
        units = matching_units(text, scope)
        if units:
            term |= event.unit_id.in_(units)
        people = matching_users(text)
        if people:
            term |= event.actor_id.in_(people)
        if text_actions:
            term |= event.action.in_(list(text_actions))
        query = query.where(term)
    return query.order_by(event.id.desc())


def names_for(events) -> tuple[dict[int, str], dict[int, str]]:
    """(unit id → name, user id → full name) for the events shown: two queries."""
    unit_ids = {e.unit_id for e in events if e.unit_id is not None}
    user_ids = {e.actor_id for e in events if e.actor_id is not None}
    units = {u.id: u.name for u in Unit.select(Unit.id, Unit.name).where(Unit.id.in_(unit_ids))} if unit_ids else {}
    users = {u.id: u.full_name for u in User.select(User.id, User.full_name).where(User.id.in_(user_ids))} \
        if user_ids else {}
    return units, users


def known_actions() -> list[str]:
    """Every action code the screens offer: the core's and any other already recorded."""
    recorded = {a for (a,) in AuditEvent.select(AuditEvent.action).distinct().tuples()}
    return sorted(set(ACTIONS) | recorded)


def details_of(event) -> dict:
    try:
        value = json.loads(event.details or "{}")
    except ValueError:
        return {"details": event.details}
    return value if isinstance(value, dict) else {"details": value}
