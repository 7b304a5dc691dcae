"""Which units send through which connector, and which regimes each connector carries: the
administrator's switches (Điều "the administrator switches connectors per unit").

A connector is switched on at a unit, not at its subtree: the unit whose reports go up through it
(the province to the Government; a department to its ministry's system). Switching on or off, and
adding or removing a regime, are audited; the connectors themselves (address, credentials, timeouts)
are the settings' (docs/national_link_connectors.md), never stored here.
"""

from __future__ import annotations

from core.api import BaocaoError, Forbidden, Unit, audit_record, regime_by_code, today, transaction, unit_chain, utcnow

from .models import ConnectorSwitch, Cursor, Route
from .rights import OPERATE

MAX_CODE = 40


def cursors() -> dict[str, Cursor]:
    return {c.connector: c for c in Cursor.select()}


def _operable_units(access) -> list[Unit]:
    day = today()
    units = Unit.select().where((Unit.valid_to.is_null()) | (Unit.valid_to >= day)).order_by(Unit.code)
    return [u for u in units if access.allowed(OPERATE, unit_chain(u.id))]


def overview(access, found: dict) -> dict:
    switched: dict[str, list] = {name: [] for name in found}
    for row in ConnectorSwitch.select().where(ConnectorSwitch.enabled == True):  # noqa: E712
        if row.connector in switched:
            switched[row.connector].append(row.unit_id)
    units = {u.id: u for u in Unit.select().where(Unit.id.in_({u for ids in switched.values() for u in ids} or {0}))}
    routes: dict[str, list] = {name: [] for name in found}
    for row in Route.select().order_by(Route.regime_code):
        if row.connector in routes:
            routes[row.connector].append(row.regime_code)
    return {"switched": {name: [units[u] for u in ids if u in units] for name, ids in switched.items()},
            "routes": routes, "choices": _operable_units(access), "cursors": cursors()}


def switch(access, connector: str, unit_id: int, enabled: bool) -> None:
    unit = Unit.get_or_none(Unit.id == unit_id)
    if unit is None or not access.allowed(OPERATE, unit_chain(unit.id)):
        raise Forbidden()
    if enabled and not (unit.agency_code or "").strip():
        # A packet names its sender by this code: without it nothing could be sent.
        raise BaocaoError("national_link.connectors.error.no_agency_code", unit=unit.name)
    with transaction():
        (ConnectorSwitch.insert(connector=connector, unit_id=unit.id, enabled=enabled, changed_by=access.actor.id,
                                changed_at=utcnow())
         .on_conflict(conflict_target=[ConnectorSwitch.connector, ConnectorSwitch.unit_id],
                      update={ConnectorSwitch.enabled: enabled, ConnectorSwitch.changed_by: access.actor.id,
                              ConnectorSwitch.changed_at: utcnow()}).execute())
        audit_record("national_link.connector.switched", actor=access.actor, unit=unit.id,
                     object_type="national_link_connector", object_id=connector,
                     details={"connector": connector, "enabled": enabled})


def switch_from_form(access, connector: str, form) -> None:
    try:
        unit_id = int(str(form.get("unit_id", "")))
    except ValueError:
        raise BaocaoError("national_link.connectors.error.unit_required") from None
    switch(access, connector, unit_id, str(form.get("enabled", "")) == "1")


def set_route(access, connector: str, regime_code: str, present: bool) -> None:
    if not access.allowed(OPERATE):
        raise Forbidden()
    code = (regime_code or "").strip()
    if not code or len(code) > MAX_CODE:
        raise BaocaoError("national_link.connectors.error.regime_code", limit=MAX_CODE)
    if present and regime_by_code(code) is None:
        raise BaocaoError("national_link.connectors.error.regime_unknown", code=code)
    with transaction():
        if present:
            Route.insert(connector=connector, regime_code=code, added_by=access.actor.id).on_conflict_ignore().execute()
        else:
            Route.delete().where((Route.connector == connector) & (Route.regime_code == code)).execute()
        audit_record("national_link.route.added" if present else "national_link.route.removed", actor=access.actor,
                     object_type="national_link_connector", object_id=connector,
                     details={"connector": connector, "regime": code})


def route_from_form(access, connector: str, form) -> None:
    set_route(access, connector, str(form.get("regime_code", "")), str(form.get("present", "1")) == "1")
