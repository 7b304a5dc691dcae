"""The national link's screens at /p/national_link/: the exchange log (what went, what the remote
answered, what failed and why, with "send again now" and "cancel"), a packet's page (what will be
sent, or what was received and why it was refused), the proposals received, and the connectors with
the units each serves and the regimes it carries. Plain forms with the CSRF token: everything works
without JavaScript. Refusals come back on the page with their reason (422); a step taken meanwhile
by someone else is a 409."""

from __future__ import annotations

import json
import re

from core.api import (BaocaoError, Forbidden, NotFound, Unit, cancel_outbox_entry, deliver_outbox_now, outbox_entries,
                      retry_outbox_entry,
                      run_db, unit_chain)
from web.api import JSONResponse, RedirectResponse, Route, instance_settings, plugin_settings, render, require

from . import exchange, proposals, switches
from .connectors import connectors as configured
from .models import Exchange
from .rights import APPLY, OPERATE, VIEW

PAGE = 200
DIRECTIONS = ("out", "in")
STATES = ("blocked", "pending", "sending", "acknowledged", "sent", "failed", "cancelled", "refused", "proposed", "applied",
          "rejected", "recorded")
BADGES = {"blocked": "badge-failed", "pending": "badge-info", "sending": "badge-info", "acknowledged": "badge-ok", "sent": "badge-ok",
          "failed": "badge-failed", "cancelled": "badge-off", "refused": "badge-failed", "proposed": "badge-warn",
          "applied": "badge-ok", "rejected": "badge-off", "recorded": "badge-ok", "open": "badge-warn"}


ERROR_TYPE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*: ")


def error_text(text: str) -> str:
    """An outbox error as a person reads it: without the exception's type the outbox keeps before it."""
    return ERROR_TYPE.sub("", text or "", count=1)


def _connectors(request) -> dict:
    return configured(plugin_settings(request))


def _channels(found: dict) -> dict[str, str]:
    return {name: c.channel for name, c in found.items()}


def _visible_units(access, unit_ids, code=VIEW) -> set[int]:
    return {u for u in unit_ids if u is not None and access.allowed(code, unit_chain(u))}


def _log(access, found: dict, params) -> dict:
    connector = params.get("connector", "")
    direction = params.get("direction", "")
    state = params.get("state", "")
    report = str(params.get("report", ""))
    report_id = int(report) if report.isdigit() and len(report) < 12 else None
    names = [connector] if connector in found else list(found)
    rows = exchange.rows(connectors=names, channels=_channels(found),
                         direction=direction if direction in DIRECTIONS else "",
                         state=state if state in STATES else "", report_id=report_id, limit=PAGE)
    units = {u.id: u for u in Unit.select().where(Unit.id.in_({r.exchange.unit_id for r in rows} or {0}))}
    shown = _visible_units(access, units)
    rows = [r for r in rows if r.exchange.unit_id in shown or (r.exchange.unit_id is None and access.allowed(OPERATE))]
    operate = _visible_units(access, units, OPERATE)
    cursors = switches.cursors()
    return {"rows": rows, "units": units, "operate": operate, "counts": exchange.counts(rows),
            "filters": {"connector": connector, "direction": direction, "state": state, "report": report_id},
            "cursors": cursors, "can_operate": access.allowed(OPERATE)}


def _common(request, found) -> dict:
    return {"connectors": found, "badges": BADGES, "states": STATES, "error_text": error_text}


@require(VIEW)
async def home(request):
    return RedirectResponse(request.url_for("national_link:exchange").path, status_code=307)


@require(VIEW)
async def log_page(request):
    found = _connectors(request)
    context = await run_db(_log, request.state.access, found, request.query_params)
    done = request.query_params.get("done", "")
    return await render(request, "national_link/exchange.html",
                        {**context, **_common(request, found), "done": done, "active": "exchange"})


def _exchange_for(access, exchange_id: int, code=VIEW) -> Exchange:
    row = Exchange.get_or_none(Exchange.id == exchange_id)
    if row is None or (row.unit_id is not None and not access.allowed(code, unit_chain(row.unit_id))) \
            or (row.unit_id is None and not access.allowed(OPERATE)):
        raise NotFound()
    return row


def _packet_context(access, exchange_id: int, found: dict) -> dict:
    from . import packets
    from .send import packet_for_delivery

    row = _exchange_for(access, exchange_id)
    message = None
    if row.direction == "out" and row.connector in found:  # its own outbox message, by its key
        message = next(iter(outbox_entries([found[row.connector].channel], keys=[row.message_id], limit=1)), None)
    packet, problem, schema_problems = None, None, []
    if row.direction == "out" and message is not None:
        connector = found.get(row.connector)
        payload = message.payload
        if "value_set" in payload:
            packet = payload["value_set"]
        elif connector is not None:
            try:
                packet = packet_for_delivery(payload, connector)
                schema_problems = packets.problems_of(packet)
            except BaocaoError as exc:
                problem = exc
    elif row.direction == "in":
        try:
            packet = json.loads(row.document)
        except ValueError:
            packet = None
    unit = Unit.get_or_none(Unit.id == row.unit_id) if row.unit_id else None
    return {"row": row, "message": message, "packet": packet, "problem": problem, "schema_problems": schema_problems,
            "packet_text": json.dumps(packet, ensure_ascii=False, indent=2, sort_keys=True) if packet is not None else
            row.document, "unit": unit, "can_operate": row.unit_id is None or access.allowed(OPERATE, unit_chain(row.unit_id))}


@require(VIEW)
async def packet_page(request):
    found = _connectors(request)
    context = await run_db(_packet_context, request.state.access, request.path_params["id"], found)
    return await render(request, "national_link/packet.html", {**context, **_common(request, found), "active": "exchange"})


def _act(access, exchange_id: int, action: str, found: dict) -> None:
    row = _exchange_for(access, exchange_id, OPERATE)
    if row.direction != "out" or row.outbox_id is None or row.connector not in found:
        raise NotFound()
    channel = [found[row.connector].channel]
    if action == "retry":
        retry_outbox_entry(access, row.outbox_id, channel)
    else:
        cancel_outbox_entry(access, row.outbox_id, channel)


async def _action(request, action: str):
    found = _connectors(request)
    try:
        await run_db(_act, request.state.access, request.path_params["id"], action, found)
    except BaocaoError as exc:
        if isinstance(exc, (NotFound, Forbidden)):
            raise
        context = await run_db(_log, request.state.access, found, {})
        return await render(request, "national_link/exchange.html",
                            {**context, **_common(request, found), "refused": exc, "active": "exchange"},
                            status_code=409)
    if action == "retry":
        # "Send again now": delivered at once (a worker would within the minute; the demo has none).
        settings = instance_settings(request)
        await run_db(deliver_outbox_now, [found[c].channel for c in found], settings)
    return RedirectResponse(request.url_for("national_link:exchange").path + f"?done={action}", status_code=303)


@require(OPERATE)
async def retry(request):
    return await _action(request, "retry")


@require(OPERATE)
async def cancel(request):
    return await _action(request, "cancel")


@require(OPERATE)
async def deliver(request):
    found = _connectors(request)
    if found:
        await run_db(deliver_outbox_now, [c.channel for c in found.values()], instance_settings(request))
    return RedirectResponse(request.url_for("national_link:exchange").path + "?done=deliver", status_code=303)


@require(OPERATE)
async def fetch(request):
    from .receive import fetch_all

    results = await run_db(fetch_all, instance_settings(request))
    failed = [r for r in results if r.error]
    return RedirectResponse(request.url_for("national_link:exchange").path
                            + ("?done=fetch_failed" if failed else "?done=fetch"), status_code=303)


# -- proposals --------------------------------------------------------------------------------------

@require(APPLY)
async def proposals_page(request):
    state = request.query_params.get("state", "open")
    rows = await run_db(proposals.listing, state if state in ("open", "applied", "rejected") else "")
    found = _connectors(request)
    return await render(request, "national_link/proposals.html",
                        {"rows": rows, "state": state, **_common(request, found), "active": "proposals"})


async def _proposal(request, *, refused=None, status_code=200, reason=""):
    seen = await run_db(proposals.preview, request.path_params["id"])
    found = _connectors(request)
    return await render(request, "national_link/proposal.html",
                        {"seen": seen, "refused": refused, "reason": reason, **_common(request, found),
                         "active": "proposals"}, status_code=status_code)


@require(APPLY)
async def proposal_page(request):
    return await _proposal(request)


@require(APPLY)
async def proposal_apply(request):
    try:
        result = await run_db(proposals.apply, request.state.access, request.path_params["id"])
    except BaocaoError as exc:
        if isinstance(exc, (NotFound, Forbidden)):
            raise
        return await _proposal(request, refused=exc, status_code=422)
    if result.get("regime_id"):
        return RedirectResponse(request.url_for("regime_detail", id=result["regime_id"]).path, status_code=303)
    return RedirectResponse(request.url_for("national_link:proposal", id=request.path_params["id"]).path,
                            status_code=303)


@require(APPLY)
async def proposal_reject(request):
    form = await request.form()
    reason = str(form.get("reason", ""))
    try:
        await run_db(proposals.reject, request.state.access, request.path_params["id"], reason)
    except BaocaoError as exc:
        if isinstance(exc, (NotFound, Forbidden)):
            raise
        return await _proposal(request, refused=exc, status_code=422, reason=reason[:proposals.MAX_REASON])
    return RedirectResponse(request.url_for("national_link:proposals").path + "?state=rejected", status_code=303)


# -- connectors: the units each serves, the regimes it carries ----------------------------------------

async def _connectors_page(request, *, refused=None, status_code=200):
    found = _connectors(request)
    context = await run_db(switches.overview, request.state.access, found)
    return await render(request, "national_link/connectors.html",
                        {**context, **_common(request, found), "refused": refused, "active": "connectors"},
                        status_code=status_code)


@require(OPERATE)
async def connectors_page(request):
    return await _connectors_page(request)


async def _connector_change(request, change):
    found = _connectors(request)
    name = request.path_params["name"]
    if name not in found:
        raise NotFound()
    form = await request.form()
    try:
        await run_db(change, request.state.access, name, form)
    except BaocaoError as exc:
        if isinstance(exc, (NotFound, Forbidden)):
            raise
        return await _connectors_page(request, refused=exc, status_code=422)
    return RedirectResponse(request.url_for("national_link:connectors").path + f"#connector-{name}", status_code=303)


@require(OPERATE)
async def switch_unit(request):
    return await _connector_change(request, switches.switch_from_form)


@require(OPERATE)
async def route_change(request):
    return await _connector_change(request, switches.route_from_form)


@require(OPERATE)
async def send_catalogue(request):
    """The operator sends a catalogue to the remote (to reconcile codes with the national system):
    queued, then delivered at once; the log shows how it went."""
    from core.api import today

    from .send import queue_catalogue

    found = _connectors(request)
    connector = found.get(request.path_params["name"])
    if connector is None:
        raise NotFound()
    form = await request.form()
    try:
        unit_id = int(str(form.get("unit_id", "")))
    except ValueError:
        return await _connectors_page(request, refused=BaocaoError("national_link.connectors.error.unit_required"),
                                      status_code=422)
    try:
        _, queued = await run_db(queue_catalogue, request.state.access, connector, unit_id,
                                 str(form.get("packet_type", "")), today().year)
    except BaocaoError as exc:
        if isinstance(exc, (NotFound, Forbidden)):
            raise
        return await _connectors_page(request, refused=exc, status_code=422)
    await run_db(deliver_outbox_now, [connector.channel], instance_settings(request))
    done = "catalogue" if queued else "catalogue_same"
    return RedirectResponse(request.url_for("national_link:exchange").path + f"?done={done}", status_code=303)


@require(VIEW)
async def schema_file(request):
    from . import packets

    mapping, packet_type = request.path_params["mapping"], request.path_params["packet"]
    if mapping not in packets.MAPPINGS or packet_type not in packets.PACKET_TYPES:
        raise NotFound()
    return JSONResponse(packets.schema(packet_type, mapping))


ROUTES = [
    # The log has a path of its own, so the menu does not mark it current on every other page.
    Route("/", home, methods=["GET"], name="home"),
    Route("/log", log_page, methods=["GET"], name="exchange"),
    Route("/packets/{id:int}", packet_page, methods=["GET"], name="packet"),
    Route("/packets/{id:int}/retry", retry, methods=["POST"], name="retry"),
    Route("/packets/{id:int}/cancel", cancel, methods=["POST"], name="cancel"),
    Route("/deliver", deliver, methods=["POST"], name="deliver"),
    Route("/fetch", fetch, methods=["POST"], name="fetch"),
    Route("/proposals", proposals_page, methods=["GET"], name="proposals"),
    Route("/proposals/{id:int}", proposal_page, methods=["GET"], name="proposal"),
    Route("/proposals/{id:int}/apply", proposal_apply, methods=["POST"], name="proposal_apply"),
    Route("/proposals/{id:int}/reject", proposal_reject, methods=["POST"], name="proposal_reject"),
    Route("/connectors", connectors_page, methods=["GET"], name="connectors"),
    Route("/connectors/{name}/units", switch_unit, methods=["POST"], name="switch_unit"),
    Route("/connectors/{name}/routes", route_change, methods=["POST"], name="route_change"),
    Route("/connectors/{name}/send", send_catalogue, methods=["POST"], name="send_catalogue"),
    Route("/schemas/{mapping}/{packet}.json", schema_file, methods=["GET"], name="schema"),
]
