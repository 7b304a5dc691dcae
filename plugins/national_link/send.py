"""Sending reports up: which report goes, through which connector, as which packets.

A report goes up when it is the voice of a unit that sends through a connector:
- a **consolidated** report accepted at a unit where the connector is switched on (the province
  accepts the consolidated report its planning department prepared for it: that is the province's
  report to the Government; a department's consolidated sector report accepted at a unit switched on
  for the ministry's connector likewise) — unit reports accepted there are not sent, their figures are
  in the consolidated one;
- a report **submitted with no receiver** in the system (the top of the tree) by a unit where the
  connector is switched on: the remote is its receiver;
and only when its regime is routed to that connector (``Route``: the administrator's list, and every
regime applied from that connector's proposals).

Each goes as packets in the outbox, queued in the transition's transaction: report data, the
narrative when the report has one, and the report status; to a DHIS2 connector, the report's
figures as a data value set. The packets' bodies are frozen now, from the version concerned; the
header (sender and receiver codes, time) is completed and the packet sealed by the sending unit's
organisation seal when it is delivered (``packet_for_delivery``), so a unit whose code or seal is
missing shows a clear failure in the log, to retry once fixed. Each message's id is derived from
(connector, report, version, packet type): the same version is never queued twice (the outbox keeps
one message per key), and a resend carries the same message id, which the remote uses to drop it.
"""

from __future__ import annotations

import json
import uuid

from core.api import BaocaoError, Unit, enqueue, report_overview, utcnow

from . import connectors as connector_settings
from .models import ConnectorSwitch, Exchange, Route

NAME = "national_link"
MESSAGE_NAMESPACE = uuid.UUID("6f1c5b1e-1d0e-4c1a-9a51-3f7e2c0b9d11")  # baocao national link message ids
REPORT_PACKETS = ("report_data", "list_data", "narrative", "report_status")


def message_id(connector: str, *parts) -> str:
    """A stable id: the same packet of the same report version always gets the same one."""
    return str(uuid.uuid5(MESSAGE_NAMESPACE, "|".join([connector, *map(str, parts)])))


def sending_unit(transition) -> int | None:
    """The unit whose report this is, to the remote (None: not one that goes up)."""
    if transition.action == "accepted" and transition.receiver_id is not None:
        return transition.receiver_id
    if transition.action == "submitted" and transition.receiver_id is None:
        return transition.unit_id
    return None


def switched_on(unit_id: int) -> set[str]:
    return {c for (c,) in ConnectorSwitch.select(ConnectorSwitch.connector)
            .where((ConnectorSwitch.unit_id == unit_id) & (ConnectorSwitch.enabled == True)).tuples()}  # noqa: E712


def routed(regime_code: str) -> set[str]:
    return {c for (c,) in Route.select(Route.connector).where(Route.regime_code == regime_code).tuples()}


def on_transition(transition, settings) -> int:
    """Queue the packets ``transition`` calls for; returns how many messages were queued."""
    unit_id = sending_unit(transition)
    if unit_id is None:
        return 0
    overview = report_overview(transition.report_id)
    if overview is None or (transition.action == "accepted" and overview.kind != "consolidated"):
        return 0
    names = switched_on(unit_id) & routed(overview.regime_code)
    if not names:
        return 0
    known = connector_settings.connectors(settings.plugin(NAME))
    queued = 0
    for name in sorted(names):
        connector = known.get(name)
        if connector is None:
            continue  # switched on, then removed from the settings: nothing to send it through
        if connector.kind == "dhis2":
            if transition.action == "accepted":  # a vertical system takes accepted figures only
                queued += _queue_value_set(connector, overview, transition, unit_id)
        else:
            queued += _queue_packets(connector, overview, transition, unit_id)
    return queued


def _record(connector, packet_type: str, mid: str, transition, unit_id: int, outbox_id: int) -> None:
    Exchange.insert(direction="out", connector=connector.name, packet_type=packet_type, message_id=mid,
                    report_id=transition.report_id, report_version=transition.version_number, unit_id=unit_id,
                    outbox_id=outbox_id).on_conflict_ignore().execute()


def _queue_packets(connector, overview, transition, unit_id: int) -> int:
    from . import packets

    version = transition.version_number
    status = "accepted" if transition.action == "accepted" else "submitted"
    bodies = {"report_data": packets.report_data_body(overview.id, version),
              "list_data": packets.list_data_body(overview.id, version),
              "narrative": packets.narrative_body(overview.id, version)}
    queued = 0
    sent_ids = []
    for packet_type in ("report_data", "list_data", "narrative"):
        body = bodies[packet_type]
        if body is None:
            continue  # nothing of that kind in this report (no list rows, no outline)
        mid = message_id(connector.name, "report", overview.id, version, packet_type)
        sent_ids.append(mid)
        queued += _enqueue(connector, packet_type, body, mid, transition, unit_id)
    status_body = packets.report_status_body(overview.id, status, at=transition.at, refs=sent_ids, version=version)
    mid = message_id(connector.name, "report", overview.id, version, "report_status", status)
    queued += _enqueue(connector, "report_status", status_body, mid, transition, unit_id)
    return queued


def _enqueue(connector, packet_type: str, body: dict, mid: str, transition, unit_id: int) -> int:
    message = enqueue(connector.channel, {"connector": connector.name, "unit_id": unit_id,
                                          "report_id": transition.report_id, "packet_type": packet_type,
                                          "message_id": mid, "body": body}, key=mid)
    _record(connector, packet_type, mid, transition, unit_id, message.id)
    return 1


def _queue_value_set(connector, overview, transition, unit_id: int) -> int:
    from . import dhis2

    mid = message_id(connector.name, "report", overview.id, transition.version_number, "dataValueSets")
    try:
        value_set = dhis2.value_set_for_report(connector.name, overview.id)
    except BaocaoError as exc:
        # A code the mapping lacks (or a period DHIS2 cannot name): nothing goes, the log says why,
        # and the acceptance stands. The operator completes the mapping and exports the figures.
        Exchange.insert(direction="out", connector=connector.name, packet_type="dhis2_values", message_id=mid,
                        report_id=transition.report_id, report_version=transition.version_number,
                        unit_id=unit_id, state="blocked", answer=exc.message("vi")[:2000],
                        problems=json.dumps([{"place": "", "key": exc.key, "params": _plain(exc.params)}],
                                            ensure_ascii=False)).on_conflict_ignore().execute()
        return 0
    message = enqueue(connector.channel, {"connector": connector.name, "unit_id": unit_id,
                                          "report_id": overview.id, "message_id": mid, "value_set": value_set},
                      key=mid)
    _record(connector, "dhis2_values", mid, transition, unit_id, message.id)
    return 1


def _plain(params: dict) -> dict:
    """An error's parameters as JSON keeps them (a list of codes stays a list; anything else, text)."""
    return {k: v if isinstance(v, (str, int, float, bool, list)) else str(v) for k, v in params.items()}


def packet_for_delivery(payload: dict, connector, *, sent_at=None) -> dict:
    """The unsigned packet of a queued message, its header completed now: the sending unit's
    electronic code (mã định danh) as it is recorded today, the remote's, the time of sending."""
    from . import packets

    unit = Unit.get_or_none(Unit.id == payload["unit_id"])
    if unit is None or not (unit.agency_code or "").strip():
        raise BaocaoError("national_link.error.no_agency_code", unit=unit.name if unit else payload["unit_id"])
    return packets.new_packet(payload["packet_type"], payload["body"], sender=unit.agency_code.strip(),
                              receiver=connector.agency_code, message_id=payload["message_id"],
                              sent_at=sent_at or utcnow(), mapping=connector.mapping_version)


# -- catalogues, sent by the operator -----------------------------------------------------------------

CATALOGUES = ("indicator_catalogue", "period_catalogue")


def catalogue_body(packet_type: str, year: int) -> dict:
    """The province's catalogue as it stands: every indicator in force, or the year's periods of every
    frequency (Decree 09/2019 Art. 12)."""
    from core.api import search_indicators

    from . import packets

    if packet_type == "indicator_catalogue":
        return packets.indicator_catalogue_body([i.code for i in search_indicators()])
    return packets.period_catalogue_body(None, year)


def queue_catalogue(access, connector, unit_id: int, packet_type: str, year: int) -> tuple[str, bool]:
    """Queue a catalogue for the remote from ``unit_id`` (switched on for ``connector``): its message
    id, and False when the very same catalogue was queued before (nothing new to send)."""
    import hashlib
    import json

    from core.api import Forbidden, audit_record, transaction, unit_chain

    from .rights import OPERATE

    if packet_type not in CATALOGUES or connector.kind == "dhis2":
        raise BaocaoError("national_link.connectors.error.catalogue")
    if not access.allowed(OPERATE, unit_chain(unit_id)) or connector.name not in switched_on(unit_id):
        raise Forbidden()
    body = catalogue_body(packet_type, year)
    digest = hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()
    mid = message_id(connector.name, "catalogue", unit_id, packet_type, digest)
    with transaction():
        if Exchange.select().where((Exchange.connector == connector.name) & (Exchange.direction == "out")
                                   & (Exchange.message_id == mid)).exists():
            return mid, False
        message = enqueue(connector.channel, {"connector": connector.name, "unit_id": unit_id, "report_id": None,
                                              "packet_type": packet_type, "message_id": mid, "body": body}, key=mid)
        Exchange.insert(direction="out", connector=connector.name, packet_type=packet_type, message_id=mid,
                        unit_id=unit_id, outbox_id=message.id).on_conflict_ignore().execute()
        audit_record("national_link.catalogue.queued", actor=access.actor, unit=unit_id,
                     object_type="national_link_connector", object_id=connector.name,
                     details={"connector": connector.name, "packet": packet_type, "message_id": mid})
    return mid, True
