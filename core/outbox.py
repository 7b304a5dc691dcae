"""The outbox: messages to other systems, written with the change they tell about, delivered later.

A message is a row written in the caller's transaction (``enqueue``), so a change that rolls back
sends nothing and a committed one is never forgotten. Delivery (``deliver_due``) runs after the
commit: every minute from ``baocao worker`` (core.jobs), and right after a web request that queued
e-mail (core.mailer). Each message names a **channel** (SMTP is built in, plugins add theirs with
the hook ``register_channels``) whose ``deliver(message, settings)`` sends it.

Several processes may deliver at once: a batch is claimed in one short transaction that moves the
messages to "sending" with a lease (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite lets one writer
in at a time), so two workers never claim one message. A worker that dies while sending leaves its
messages to be claimed again once the lease ends; a delivery is then repeated, which is why every
message carries an idempotency key the receiver can use to drop repeats. A failed attempt waits
longer and longer (``RETRY_MINUTES``); after ``outbox_max_attempts`` (a setting, or the channel's
own) the message is given up ("failed") with its last error kept for the administrator, who may
retry it now or cancel it (``retry_now``, ``cancel``, audited). Delivery never raises into its
caller: a broken receiver must not break a request or stop the other messages.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import uuid
from dataclasses import dataclass, field

from peewee import Check, CharField, DateTimeField, IntegerField, TextField, fn

from core import audit
from core.db import CoreModel, is_sqlite, transaction
from core.errors import BaocaoError, Forbidden, NotFound
from core.channels import Channel, Message, Unavailable, smtp
from core.models import utcnow

log = logging.getLogger("baocao.outbox")

STATES = ("pending", "sending", "sent", "failed", "cancelled")
RETRY_MINUTES = (1, 2, 5, 10, 30, 60, 120)  # wait after the 1st, 2nd, ... failure (the last repeats)
LEASE = dt.timedelta(minutes=10)  # a claim older than this is free again
BATCH = 100
MAX_ERROR = 500
MAX_KEY = 200
PERMISSION = "core.outbox.admin"
CHANNEL_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*\Z")


class OutboxMessage(CoreModel):
    channel = CharField(max_length=64)
    key = CharField(max_length=MAX_KEY)  # idempotency key, unique per channel; handed to the receiver
    payload = TextField()  # JSON
    state = CharField(max_length=10, default="pending",
                      constraints=[Check("state IN ('pending', 'sending', 'sent', 'failed', 'cancelled')")])
    attempts = IntegerField(default=0)
    next_attempt_at = DateTimeField(default=utcnow)
    lease_until = DateTimeField(null=True)
    last_error = TextField(default="")
    created_at = DateTimeField(default=utcnow)
    sent_at = DateTimeField(null=True)

    class Meta:
        indexes = ((("channel", "key"), True), (("state", "next_attempt_at"), False))


@dataclass
class DeliveryResult:
    sent: int = 0
    failed: int = 0  # attempts that failed this time (the message may still be retried)
    given_up: int = 0
    errors: list[str] = field(default_factory=list)


# -- the channels of this process --------------------------------------------------------------------
# One process serves one instance (as core.clock's zone): the app and the worker say once which
# channels exist, so ``enqueue`` can refuse a name nobody delivers. Built-in channels always exist.

def builtin_channels() -> list[Channel]:
    return [smtp.CHANNEL]


_configured: dict[str, Channel] = {}


def collect(pm=None, settings=None) -> dict[str, Channel]:
    """The built-in channels and those plugins register (a name already taken is refused and recorded)."""
    found = {c.name: c for c in builtin_channels()}
    if pm is None:
        return found
    for plugin, result in pm.call_each("register_channels", stage="contribution", settings=settings):
        for channel in result or ():
            try:
                _check_channel(channel, plugin, found)
            except BaocaoError as exc:
                pm.record_error(plugin, "contribution", exc)
                continue
            found[channel.name] = channel
    return found


def _check_channel(channel, plugin: str, found: dict) -> None:
    name = getattr(channel, "name", "")
    if not isinstance(channel, Channel) or not callable(channel.deliver):
        raise BaocaoError("outbox.error.not_a_channel", plugin=plugin)
    if not CHANNEL_RE.match(name) or len(name) > 64 or not name.startswith(plugin + "."):
        raise BaocaoError("outbox.error.channel_name", plugin=plugin, channel=name[:64])
    if name in found:
        raise BaocaoError("outbox.error.channel_taken", plugin=plugin, channel=name)


def configure(pm=None, settings=None, *, channels: list[Channel] | None = None) -> dict[str, Channel]:
    """Set the channels of this process: from a plugin manager, or given (tests)."""
    found = collect(pm, settings)
    for channel in channels or ():
        found[channel.name] = channel
    _configured.clear()
    _configured.update(found)
    return dict(found)


def channels() -> dict[str, Channel]:
    return dict(_configured) if _configured else {c.name: c for c in builtin_channels()}


# -- enqueueing -------------------------------------------------------------------------------------

def enqueue(channel: str, payload, key: str | None = None) -> OutboxMessage:
    """Queue ``payload`` (anything JSON can hold) for ``channel`` in the caller's transaction.

    ``key`` makes it idempotent: a second message with the same key on the same channel is not
    added (the first is returned). Without one a random key is given, so every receiver gets one."""
    if channel not in channels():
        raise BaocaoError("outbox.error.unknown_channel", channel=str(channel)[:64])
    key = str(key) if key is not None else uuid.uuid4().hex
    if not key or len(key) > MAX_KEY:
        raise BaocaoError("outbox.error.bad_key", limit=MAX_KEY)
    try:
        text = json.dumps(payload, ensure_ascii=False, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError):
        raise BaocaoError("outbox.error.payload", channel=channel) from None
    with transaction():
        # INSERT OR IGNORE / ON CONFLICT DO NOTHING: two writers with one key keep one row, and on
        # PostgreSQL the conflict does not abort the caller's transaction.
        OutboxMessage.insert(channel=channel, key=key, payload=text, created_at=utcnow(),
                             next_attempt_at=utcnow()).on_conflict_ignore().execute()
        return OutboxMessage.get((OutboxMessage.channel == channel) & (OutboxMessage.key == key))


# -- delivery ---------------------------------------------------------------------------------------

def _retry_after(attempts: int) -> dt.timedelta:
    return dt.timedelta(minutes=RETRY_MINUTES[min(attempts, len(RETRY_MINUTES)) - 1])


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".strip()[:MAX_ERROR]


def _due(names, now: dt.datetime):
    return (OutboxMessage.channel.in_(list(names))
            & (((OutboxMessage.state == "pending") & (OutboxMessage.next_attempt_at <= now))
               | ((OutboxMessage.state == "sending") & (OutboxMessage.lease_until <= now))))


def claim(names, now: dt.datetime, limit: int = BATCH) -> list[OutboxMessage]:
    """Move up to ``limit`` due messages of these channels to "sending" with a lease; return them.
    Two claimers never get one message: PostgreSQL skips the rows another claimer holds, SQLite
    runs one claim at a time (BEGIN IMMEDIATE)."""
    if not names:
        return []
    with transaction():
        query = (OutboxMessage.select(OutboxMessage.id).where(_due(names, now))
                 .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id).limit(limit))
        if not is_sqlite():
            query = query.for_update("FOR UPDATE SKIP LOCKED")
        ids = [row.id for row in query]
        if not ids:
            return []
        (OutboxMessage.update(state="sending", lease_until=now + LEASE, attempts=OutboxMessage.attempts + 1)
         .where(OutboxMessage.id.in_(ids) & _due(names, now)).execute())
        return list(OutboxMessage.select().where(OutboxMessage.id.in_(ids) & (OutboxMessage.state == "sending")
                                                 & (OutboxMessage.lease_until == now + LEASE))
                    .order_by(OutboxMessage.id))


def _ours(row: OutboxMessage):
    # Only while our lease holds: a message an administrator cancelled, or another worker claimed
    # after our lease ended, is not overwritten.
    return ((OutboxMessage.id == row.id) & (OutboxMessage.state == "sending")
            & (OutboxMessage.lease_until == row.lease_until))


def _record_sent(row: OutboxMessage) -> None:
    with transaction():
        (OutboxMessage.update(state="sent", sent_at=utcnow(), last_error="", lease_until=None)
         .where(_ours(row)).execute())


def _record_failure(row: OutboxMessage, error: str, now: dt.datetime, max_attempts: int) -> bool:
    give_up = row.attempts >= max_attempts
    with transaction():
        (OutboxMessage.update(state="failed" if give_up else "pending", last_error=error, lease_until=None,
                              next_attempt_at=now + _retry_after(row.attempts))
         .where(_ours(row)).execute())
    if give_up:
        log.error("outbox message %s (%s) given up after %d attempts: %s", row.id, row.channel, row.attempts,
                  error)
    return give_up


def _message(row: OutboxMessage) -> Message:
    return Message(id=row.id, channel=row.channel, key=row.key, payload=json.loads(row.payload),
                   attempt=row.attempts, created_at=row.created_at)


def deliver_due(settings, *, names=None, now: dt.datetime | None = None, limit: int = BATCH,
                known: dict[str, Channel] | None = None) -> DeliveryResult:
    """Deliver the due messages of the channels ``names`` (default: every channel of this process).
    Never raises: each failure is recorded on its message and the others still go."""
    known = known if known is not None else channels()
    names = [n for n in (names if names is not None else known) if n in known]
    now = now or utcnow()
    result = DeliveryResult()
    try:
        claimed = claim(names, now, limit)
    except Exception as exc:  # noqa: BLE001 — the database itself failed: the next run tries again
        log.exception("outbox delivery stopped")
        result.errors.append(_describe(exc))
        return result
    down: dict[str, str] = {}  # channel → the error that made it unavailable in this batch
    default_max = getattr(settings, "outbox_max_attempts", 8)
    for row in claimed:
        channel = known[row.channel]
        max_attempts = channel.max_attempts or default_max
        error = down.get(row.channel)
        if error is None:
            try:
                channel.deliver(_message(row), settings)
            except Unavailable as exc:
                error = down[row.channel] = _describe(exc)
                log.warning("outbox channel %s unavailable: %s", row.channel, error)
            except Exception as exc:  # noqa: BLE001 — this message failed; the others still go
                error = _describe(exc)
        try:
            if error is None:
                _record_sent(row)
                result.sent += 1
                continue
            result.failed += 1
            result.errors.append(error)
            result.given_up += _record_failure(row, error, now, max_attempts)
        except Exception as exc:  # noqa: BLE001 — its lease ends and it is claimed again
            log.exception("outbox message %s: result not recorded", row.id)
            result.errors.append(_describe(exc))
    return result


# -- the administrator's view and actions ----------------------------------------------------------

def listing(*, channel: str = "", state: str = "", limit: int = 200) -> list[OutboxMessage]:
    """The newest messages first, filtered by channel and state (unknown filters match nothing)."""
    query = OutboxMessage.select().order_by(OutboxMessage.id.desc()).limit(limit)
    if channel:
        query = query.where(OutboxMessage.channel == channel)
    if state:
        query = query.where(OutboxMessage.state == state)
    return list(query)


def counts() -> dict[str, int]:
    rows = OutboxMessage.select(OutboxMessage.state, fn.COUNT(OutboxMessage.id)).group_by(OutboxMessage.state)
    return {state: count for state, count in rows.tuples()}


def channel_names() -> list[str]:
    stored = [c for (c,) in OutboxMessage.select(OutboxMessage.channel).distinct().tuples()]
    return sorted(set(stored) | set(channels()))


def _check_admin(access) -> None:
    if not access.allowed(PERMISSION):
        raise Forbidden()


def retry_now(access, message_id: int) -> OutboxMessage:
    """Make a waiting or given-up message due now; a given-up one gets a fresh series of attempts."""
    _check_admin(access)
    return _retry(access, message_id, None)


def cancel(access, message_id: int) -> OutboxMessage:
    """Stop a message that has not gone out; one being sent right now cannot be stopped."""
    _check_admin(access)
    return _cancel(access, message_id, None)


def _retry(access, message_id: int, allowed) -> OutboxMessage:
    with transaction():
        row = _locked(message_id, allowed)
        if row.state not in ("pending", "failed"):
            raise BaocaoError("outbox.error.cannot_retry", state=row.state)
        before = (row.state, row.attempts)
        changes = {"state": "pending", "next_attempt_at": utcnow(), "lease_until": None}
        if row.state == "failed":
            changes["attempts"] = 0
        OutboxMessage.update(**changes).where(OutboxMessage.id == row.id).execute()
        audit.record("outbox.retry", actor=access.actor, object_type="outbox_message", object_id=row.id,
                     details={"channel": row.channel, "state": before[0], "attempts": before[1]})
    return OutboxMessage.get_by_id(row.id)


def _cancel(access, message_id: int, allowed) -> OutboxMessage:
    with transaction():
        row = _locked(message_id, allowed)
        if row.state not in ("pending", "failed"):
            raise BaocaoError("outbox.error.cannot_cancel", state=row.state)
        OutboxMessage.update(state="cancelled", lease_until=None).where(OutboxMessage.id == row.id).execute()
        audit.record("outbox.cancel", actor=access.actor, object_type="outbox_message", object_id=row.id,
                     details={"channel": row.channel, "state": row.state, "attempts": row.attempts})
    return OutboxMessage.get_by_id(row.id)


# -- a plugin's view of its own channels (core.api) ---------------------------------------------------
# A plugin's screen (an exchange log) lists, retries and cancels the messages of the channels it
# names; the plugin's route checks its own permission, the core refuses any other channel's message
# as not found, so a plugin's administrator never reaches e-mail or another plugin's messages.

@dataclass(frozen=True)
class Entry:
    """One message as a plugin's screen shows it; times are naive UTC, as stored."""

    id: int
    channel: str
    key: str
    payload: dict
    state: str
    attempts: int
    next_attempt_at: dt.datetime | None
    last_error: str
    created_at: dt.datetime
    sent_at: dt.datetime | None


def _entry(row: OutboxMessage) -> Entry:
    return Entry(id=row.id, channel=row.channel, key=row.key, payload=json.loads(row.payload), state=row.state,
                 attempts=row.attempts, next_attempt_at=row.next_attempt_at, last_error=row.last_error,
                 created_at=row.created_at, sent_at=row.sent_at)


def _names(channels) -> list[str]:
    if isinstance(channels, str) or not channels:
        raise ValueError("channels must be a non-empty list of channel names")
    return sorted(set(channels))


def entries(channels, *, state: str = "", keys=None, limit: int = 200) -> list[Entry]:
    """The messages of ``channels`` (names), newest first; ``keys`` keeps those idempotency keys."""
    query = (OutboxMessage.select().where(OutboxMessage.channel.in_(_names(channels)))
             .order_by(OutboxMessage.id.desc()).limit(limit))
    if state:
        query = query.where(OutboxMessage.state == state)
    if keys is not None:
        keys = sorted(set(keys))
        if not keys:
            return []
        query = query.where(OutboxMessage.key.in_(keys))
    return [_entry(row) for row in query]


def retry_entry(access, message_id: int, channels) -> Entry:
    """``retry_now`` for a message of ``channels`` (any other is ``NotFound``); audited as it is."""
    return _entry(_retry(access, message_id, _names(channels)))


def cancel_entry(access, message_id: int, channels) -> Entry:
    """``cancel`` for a message of ``channels`` (any other is ``NotFound``); audited as it is."""
    return _entry(_cancel(access, message_id, _names(channels)))


def deliver_entries(channels, settings) -> DeliveryResult:
    """Deliver the due messages of ``channels`` now, in the caller's thread (an operator pressing
    "send now" on a plugin's screen, where no worker runs — the demo); the worker's job does the
    same every minute. Channels this process does not know are skipped."""
    return deliver_due(settings, names=_names(channels))


def _locked(message_id: int, allowed=None) -> OutboxMessage:
    query = OutboxMessage.select().where(OutboxMessage.id == message_id)
    if allowed is not None:
        query = query.where(OutboxMessage.channel.in_(allowed))
    if not is_sqlite():
        query = query.for_update()
    row = query.first()
    if row is None:
        raise NotFound()
    return row


__all__ = ["Channel", "Message", "Unavailable", "DeliveryResult", "OutboxMessage", "enqueue", "deliver_due",
           "claim", "configure", "channels", "retry_now", "cancel", "listing", "STATES", "Entry", "entries",
           "retry_entry", "cancel_entry", "deliver_entries"]
