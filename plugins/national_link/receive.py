"""What remotes send down: read, checked, kept, and made a proposal or recorded.

``fetch_connector`` reads a connector's inbox after the last position it read (``Cursor``) and hands
each packet to ``receive_packet``, which in one transaction:
- checks it (``packets.check``: size, JSON, schema, signature verified as a report's is) and that
  it comes from the connector's remote (its sender code) to a unit switched on for the connector
  (its receiver code); a packet that fails is kept as **refused** with every problem, for
  inspection, and changes nothing;
- drops a repeat (the same message id from the same remote: counted, nothing else — a remote that
  answers twice changes nothing twice), unless what was kept under that id had been refused and
  this one passes: the remote fixed it and sent it again;
- records a **report status** at once on the packets it answers (exchange.record_remote_status);
- makes anything else that changes the province's data — a regime or an ad-hoc request, an
  indicator catalogue, indicator groups, a period catalogue — a **proposal** for the administrator
  (proposals.py shows what is new and what changed, and applies it in one transaction).
The position moves past a packet only once it is kept, so a failure halfway reads the rest again.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field

from core.api import Unit, transaction, utcnow

from . import connectors as connector_settings
from .exchange import record_remote_status
from .models import ConnectorSwitch, Cursor, Exchange, Proposal

NAME = "national_link"
log = logging.getLogger("baocao.national_link")
# Packet types that change the province's data: shown, then applied or rejected by a person.
PROPOSED = ("regime", "indicator_catalogue", "indicator_groups", "period_catalogue")
MAX_ERROR = 500
MAX_DOCUMENT = 20_000_000  # characters of a packet kept as received (packets.MAX_BYTES is 16 MB)


@dataclass
class FetchResult:
    connector: str
    received: int = 0
    refused: int = 0
    repeats: int = 0
    error: str = ""
    exchanges: list = field(default_factory=list)


def our_codes(connector: str) -> dict[str, int]:
    """Agency code → unit id of the units switched on for ``connector`` (who may be addressed)."""
    unit_ids = [u for (u,) in ConnectorSwitch.select(ConnectorSwitch.unit_id)
                .where((ConnectorSwitch.connector == connector) & (ConnectorSwitch.enabled == True)).tuples()]  # noqa: E712
    if not unit_ids:
        return {}
    return {code.strip(): uid for uid, code in Unit.select(Unit.id, Unit.agency_code)
            .where(Unit.id.in_(unit_ids)).tuples() if code and code.strip()}


def _problem(place: str, key: str, **params) -> dict:
    return {"place": place, "key": key, "params": params}


def receive_packet(connector, raw: bytes, settings) -> tuple[Exchange, str]:
    """Keep one packet from ``connector``; returns its row and what happened: "refused",
    "repeat", "recorded" or "proposed"."""
    from . import packets

    checked = packets.check(raw, settings)
    header = checked.header or {}
    problems = [{"place": p.place, "key": p.key, "params": dict(p.params)} for p in checked.problems]
    addressees = our_codes(connector.name)
    unit_id = addressees.get(str(header.get("receiver", "")))
    if checked.packet is not None and not problems:
        if str(header.get("sender", "")) != connector.agency_code:
            problems.append(_problem("header.sender", "national_link.receive.wrong_sender",
                                     sender=str(header.get("sender", ""))[:60], expected=connector.agency_code))
        if unit_id is None:
            problems.append(_problem("header.receiver", "national_link.receive.wrong_receiver",
                                     receiver=str(header.get("receiver", ""))[:60]))
    mid = str(header.get("message_id") or "")[:80] or f"unreadable-{utcnow().isoformat()}"
    verdict = checked.verdict
    fields = dict(packet_type=(checked.packet_type or "")[:30], in_reply_to=str(header.get("in_reply_to") or "")[:80],
                  unit_id=unit_id, state="refused" if problems else "recorded",
                  problems=json.dumps(problems, ensure_ascii=False),
                  signature_status=verdict.status if verdict else "", signer=(verdict.signer_name if verdict else "")[:255],
                  document=raw.decode("utf-8", errors="replace")[:MAX_DOCUMENT], updated_at=utcnow())
    with transaction():
        known = Exchange.get_or_none((Exchange.connector == connector.name) & (Exchange.direction == "in")
                                     & (Exchange.message_id == mid))
        if known is not None and (known.state != "refused" or problems):
            # Kept once: a repeat of what was taken changes nothing; a refused one stays refused,
            # with the latest reasons.
            changes = {"repeats": Exchange.repeats + 1, "updated_at": utcnow()}
            if known.state == "refused":
                changes.update(problems=fields["problems"], document=fields["document"])
            Exchange.update(**changes).where(Exchange.id == known.id).execute()
            return Exchange.get_by_id(known.id), "repeat"
        if known is not None:
            # Refused before, right now (the remote fixed what was wrong and sent it again): taken.
            Exchange.update(**fields).where(Exchange.id == known.id).execute()
            row = Exchange.get_by_id(known.id)
        else:
            row = Exchange.create(direction="in", connector=connector.name, message_id=mid, **fields)
        if problems:
            return row, "refused"
        if checked.packet_type == "report_status":
            _record_status(connector, row, checked.body)
            return row, "recorded"
        if checked.packet_type in PROPOSED:
            Proposal.create(exchange_id=row.id, connector=connector.name, packet_type=checked.packet_type,
                            title=_title(checked.packet_type, checked.body)[:255])
            Exchange.update(state="proposed").where(Exchange.id == row.id).execute()
            return Exchange.get_by_id(row.id), "proposed"
        return row, "recorded"  # kept for reading (a form or outline template, KPI data, …)


def _title(packet_type: str, body: dict) -> str:
    if packet_type == "regime":
        return f"{body.get('code', '')} — {body.get('name', '')}"
    return str(body.get("title") or body.get("name") or "")


def _record_status(connector, row: Exchange, body: dict) -> None:
    from . import packets

    status = packets.report_status_of(body)
    refs = list(status.get("refs") or ())
    if row.in_reply_to:
        refs.append(row.in_reply_to)
    reached = record_remote_status(connector.name, refs, status["status"], status.get("reason", ""), status.get("at"))
    if not reached:
        # A status about nothing we sent: kept, and said so in the log.
        Exchange.update(problems=json.dumps([_problem("body", "national_link.receive.status_unmatched")]))\
            .where(Exchange.id == row.id).execute()


def fetch_connector(connector, settings) -> FetchResult:
    """Read the connector's inbox from where it was left; never raises (the error is kept)."""
    result = FetchResult(connector.name)
    cursor, _ = Cursor.get_or_create(connector=connector.name)
    try:
        raws, position = connector_settings.fetch(connector, cursor.position)
    except Exception as exc:  # noqa: BLE001 — the remote is down: said on the log page, tried again later
        result.error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR]
        Cursor.update(fetched_at=utcnow(), last_error=result.error).where(Cursor.id == cursor.id).execute()
        return result
    for raw in raws:
        row, outcome = receive_packet(connector, raw, settings)
        result.exchanges.append(row)
        if outcome == "repeat":
            result.repeats += 1
        elif outcome == "refused":
            result.refused += 1
        else:
            result.received += 1
    Cursor.update(position=str(position or cursor.position)[:80], fetched_at=utcnow(), last_error="")\
        .where(Cursor.id == cursor.id).execute()
    return result


def fetch_all(settings) -> list[FetchResult]:
    found = connector_settings.connectors(settings.plugin(NAME))
    return [fetch_connector(c, settings) for c in found.values() if c.receives and c.kind == "qcvn125"]


def fetch_job(context) -> None:
    for result in fetch_all(context.settings):
        if result.error:
            log.warning("national link %s: inbox not read: %s", result.connector, result.error)
