"""The exchange log: one row per packet sent or received, with what the remote answered.

Outbound rows are written with their outbox message in the transition's transaction (send.py): the
outbox keeps the delivery (state, attempts, last error, next attempt), this row keeps what the
remote said — its acknowledgement (receipt number, time) when delivery succeeded, and the report's
status in the national system when a status packet comes back (receive.py). Reading the log joins
the two: ``rows`` asks the outbox for the messages of the rows shown, in one query.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from core.api import OutboxEntry, outbox_entries, transaction, utcnow

from .models import Exchange

MAX_ANSWER = 2000
# What a person sees of an outbound packet: the outbox's state, and "acknowledged" once the remote
# said it has it (a message the remote acknowledged is sent, whatever the outbox row says since);
# "blocked": it could not be made (a code the mapping lacks), so nothing was queued.
OUT_STATES = ("blocked", "pending", "sending", "sent", "acknowledged", "failed", "cancelled")


def _parse_time(text) -> dt.datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return value


def record_ack(connector: str, message_id: str, ack: dict, answer: str) -> None:
    """The remote has the packet: keep its receipt (called by the channel's deliver, after the
    commit of the transition, in its own transaction). A status the remote already gave (accepted,
    returned) is not lowered back to "received"."""
    ack = ack if isinstance(ack, dict) else {}
    with transaction():
        row = Exchange.get_or_none((Exchange.connector == connector) & (Exchange.direction == "out")
                                   & (Exchange.message_id == message_id))
        if row is None:
            return  # a message queued by an older version of the plugin: the outbox still says sent
        changes = {"acknowledged_at": _parse_time(ack.get("received_at")) or utcnow(),
                   "receipt_id": str(ack.get("receipt_id") or "")[:80], "answer": (answer or "")[:MAX_ANSWER],
                   "updated_at": utcnow()}
        if not row.remote_status:
            changes["remote_status"] = "received"
        Exchange.update(**changes).where(Exchange.id == row.id).execute()


def record_remote_status(connector: str, message_ids, status: str, reason: str, at: dt.datetime | None) -> int:
    """The national system's word on a report (a report-status packet received): set on the
    outbound rows of the packets it refers to; returns how many rows it reached. Called inside the
    receiving transaction."""
    ids = sorted({m for m in message_ids if m})
    if not ids:
        return 0
    return (Exchange.update(remote_status=status, remote_reason=reason[:MAX_ANSWER], remote_at=at or utcnow(),
                            updated_at=utcnow())
            .where((Exchange.connector == connector) & (Exchange.direction == "out")
                   & (Exchange.message_id.in_(ids))).execute())


@dataclass(frozen=True)
class LogRow:
    exchange: Exchange
    message: OutboxEntry | None  # the outbox message of an outbound packet

    @property
    def state(self) -> str:
        if self.exchange.direction == "in" or self.exchange.state == "blocked":
            return self.exchange.state
        if self.exchange.acknowledged_at is not None:
            return "acknowledged"
        return self.message.state if self.message else "sent"


def rows(*, connectors: list[str], channels: dict[str, str], direction: str = "", state: str = "",
         report_id: int | None = None, unit_ids=None, limit: int = 200) -> list[LogRow]:
    """The newest rows first, of ``connectors``; ``channels`` maps a connector to its outbox channel;
    ``unit_ids`` (None: all) keeps the rows of those units (a unit's officer sees their own)."""
    if not connectors:
        return []
    query = (Exchange.select().where(Exchange.connector.in_(sorted(connectors)))
             .order_by(Exchange.created_at.desc(), Exchange.id.desc()))
    if direction:
        query = query.where(Exchange.direction == direction)
    if report_id is not None:
        query = query.where(Exchange.report_id == report_id)
    if unit_ids is not None:
        query = query.where(Exchange.unit_id.in_(sorted(unit_ids)))
    if direction != "out" and state in ("refused", "proposed", "applied", "rejected", "recorded"):
        query = query.where(Exchange.state == state)
    found = list(query.limit(limit if not state else limit * 5))
    by_key: dict[tuple[str, str], OutboxEntry] = {}
    wanted = sorted({channels[r.connector] for r in found if r.direction == "out" and r.connector in channels})
    if wanted:
        keys = [r.message_id for r in found if r.direction == "out"]
        for entry in outbox_entries(wanted, keys=keys, limit=len(keys) or 1):
            by_key[(entry.channel, entry.key)] = entry
    out = [LogRow(r, by_key.get((channels.get(r.connector, ""), r.message_id))) for r in found]
    if state:
        out = [r for r in out if r.state == state]
    return out[:limit]


def counts(rows_: list[LogRow]) -> dict[str, int]:
    found: dict[str, int] = {}
    for row in rows_:
        found[row.state] = found.get(row.state, 0) + 1
    return found
