"""The read-only JSON API (``/api/v1``), its OpenAPI description, its documentation page
and the personal access tokens that machines use to call it.

One declarative list, ``ENDPOINTS``, drives everything: the routes mounted under
``/api/v1``, the OpenAPI 3.1 document at ``/api/v1/openapi.json`` and the human-readable
page at ``/api``. Adding an endpoint anywhere else is impossible by construction.

Who may call: the browser session (cookie) or ``Authorization: Bearer bc_…`` (a token
from ``/account/tokens``, see ``core.accounts.api_tokens``); the caller then has exactly the
grants of that user. Only GET and HEAD are served; anything else is refused with 405
before the request is read (``web.middleware.RequestContextMiddleware``). Errors are
JSON, never a redirect or an HTML page::

    {"error": {"code": "not_found", "message": {"vi": "…", "en": "…"}}}

with ``"fields": {"<parameter>": {"vi": …, "en": …}}`` for bad parameters (400).
A unit outside the caller's ``core.unit.view`` subtrees answers 404 like one that does not
exist (security.md ACL-02). Answers carry ``Cache-Control: private, no-store``.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import logging
from dataclasses import dataclass
from decimal import Decimal

from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route

import core
from core import clock
from core.accounts import api_tokens
from core.catalogue import indicators
from core.units import tree as units
from core.units.changes import past_values
from core.db import run_db
from core.errors import BaocaoError, ValidationError
from core.i18n import LANGUAGES, core_catalog, fold
from core.models import Unit, utcnow
from core.reporting import facade as reporting
from web.guards import require
from web.middleware import RequestRefused
from web.params import BadParameter, parse_int, read_json
from web.routes import completeness as completeness_routes
from web.templating import render

log = logging.getLogger("baocao.api")

BASE = "/api/v1"
MAX_LIMIT = 500
DEFAULT_LIMIT = 100
UNIT_VIEW = "core.unit.view"
INDICATOR_VIEW = "core.indicator.view"
REGIME_VIEW = "core.regime.view"
REGIME_STATUSES = ("draft", "issued", "suspended", "retired")
NO_STORE = {"Cache-Control": "private, no-store"}
STATUS_CODES = {400: "bad_request", 401: "unauthenticated", 403: "forbidden", 404: "not_found",
                405: "method_not_allowed", 500: "server_error", 503: "unavailable"}


# -- errors ------------------------------------------------------------------------------------

def messages(key: str, **params) -> dict[str, str]:
    catalog = core_catalog()
    return {lang: catalog.gettext(lang, key, **params) for lang in LANGUAGES}


def json_error(status: int, code: str | None = None, *, key: str | None = None, fields: dict | None = None,
               headers: dict | None = None, **params) -> JSONResponse:
    """The one shape of every API error; ``fields`` maps a parameter to its messages {vi, en}."""
    code = code or STATUS_CODES.get(status, "error")
    body = {"error": {"code": code, "message": messages(key or f"api.error.{code}", **params)}}
    if fields:
        body["error"]["fields"] = fields
    return JSONResponse(body, status_code=status, headers={**NO_STORE, **(headers or {})})


class BadParameters(Exception):
    """Per-parameter messages: {"limit": {"vi": …, "en": …}}."""

    def __init__(self, fields: dict[str, dict[str, str]]):
        super().__init__(", ".join(fields))
        self.fields = fields


def _http_error_json(exc: HTTPException) -> JSONResponse:
    """An HTTPException as the JSON error; a ``web.params.BadParameter`` says why (id too large, deep JSON…)."""
    if isinstance(exc, BadParameter):
        return json_error(exc.status_code, "bad_request" if exc.status_code == 400 else None,
                          key=f"error.reason.{exc.detail}", headers=exc.headers, **exc.params)
    return json_error(exc.status_code, headers=exc.headers)


def bearer_token(headers) -> str | None:
    """The token of an ``Authorization`` header; None without one, "" when it is not a bearer token
    (which is then refused: an API request that tries to authenticate must succeed or get 401)."""
    value = headers.get("authorization")
    if value is None:
        return None
    scheme, _, token = value.strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


class ApiBoundary:
    """Around the ``/api/v1`` mount: every refusal or failure becomes the JSON error,
    including Starlette's own 404 for an unknown path."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False

        async def watch(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            return await self.app(scope, receive, watch)
        except RequestRefused:  # a body too large or carrying NUL: web.middleware.RequestLimits answers
            raise
        except HTTPException as exc:
            if started:
                raise
            response = _http_error_json(exc)
            if exc.status_code == 403:
                from starlette.requests import Request

                from web.errors import record_denial

                await record_denial(Request(scope, receive))
        except Exception as exc:  # noqa: BLE001 — never a traceback, never an HTML page
            if started:
                raise
            from starlette.requests import Request

            from web.errors import server_error

            response = await server_error(Request(scope, receive), exc)  # 503 busy, 400 unstorable, or 500
        await response(scope, receive, send)


def api_require(code: str | None = None):
    """``web.guards.require`` with JSON answers: 401 without a user, 403 without the right
    (or when the account must first change its password or set up two-factor authentication)."""

    def decorate(endpoint):
        guarded = require(code)(endpoint)

        @functools.wraps(guarded)  # keeps the guard's mark for the route-permission test
        async def api_endpoint(request):
            if request.state.actor is None:
                return json_error(401, headers={"WWW-Authenticate": 'Bearer realm="baocao"'})
            try:
                response = await guarded(request)
            except BadParameters as exc:
                return json_error(400, "invalid_parameters", fields=exc.fields)
            except HTTPException as exc:  # handled here: Starlette would render its HTML page inside the route
                if exc.status_code == 403:
                    from web.errors import record_denial

                    await record_denial(request)
                return _http_error_json(exc)
            if isinstance(response, RedirectResponse) or "hx-redirect" in response.headers:
                # require() sends such a user to the password or two-factor page; a machine can't follow.
                return json_error(403, "account_action_required")
            return response

        return api_endpoint

    return decorate


# -- parameters --------------------------------------------------------------------------------

def _bad(name: str, key: str, **params) -> BadParameters:
    return BadParameters({name: messages(key, **params)})


def _pagination(request) -> tuple[int, int]:
    fields = {}
    limit, offset = DEFAULT_LIMIT, 0
    raw = request.query_params.get("limit")
    if raw not in (None, ""):
        limit = parse_int(raw, minimum=1, maximum=MAX_LIMIT)
        if limit is None:
            fields["limit"] = messages("api.error.limit", max=MAX_LIMIT)
    raw = request.query_params.get("offset")
    if raw not in (None, ""):
        offset = parse_int(raw, minimum=0)  # at most 2**63 - 1: a larger OFFSET overflows SQLite
        if offset is None:
            fields["offset"] = messages("api.error.offset")
    if fields:
        raise BadParameters(fields)
    return limit, offset


def _date_param(request, name: str, default: dt.date | None = None) -> dt.date | None:
    raw = (request.query_params.get(name) or "").strip()
    if not raw:
        return default
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise _bad(name, "api.error.date", value=raw[:20]) from None


def _text(request, name: str, limit: int = 100) -> str:
    return (request.query_params.get(name) or "").strip()[:limit]


def _iso(value):
    return value.isoformat() if value is not None else None


def ok(data, status: int = 200) -> JSONResponse:
    return JSONResponse(data, status_code=status, headers=NO_STORE)


def page(items: list, total: int, limit: int, offset: int) -> dict:
    return {"items": items, "total": total, "limit": limit, "offset": offset}


# -- units ---------------------------------------------------------------------------------------
# The same visibility as the unit screens (web/routes/units.py): today's units in the subtrees
# where the caller holds core.unit.view; a former unit is visible to whoever may view one of its
# anchors, the unit(s) of today it leads to (core.units.history.Lineages).

def _history_module():
    try:
        from core.units import history as unit_history
    except ImportError:
        return None
    return unit_history


def _visible_nodes(roots, at: dt.date) -> list:
    """Every node of the tree as at ``at`` the caller may see, flattened in tree order."""
    history = _history_module()
    if roots is None:
        return units.flatten(units.tree(at=at))
    if at == clock.today() or history is None:
        nodes = units.flatten([n for root in roots for n in units.tree(root, at=at)])
        seen = set()  # two grants, one inside the other: each unit once
        return [n for n in nodes if not (n.unit.id in seen or seen.add(n.unit.id))]
    visible = history.visible_ids(roots, history.Lineages())
    return [n for n in units.flatten(units.tree(at=at)) if n.unit.id in visible]


def _may_open(access, unit: Unit) -> bool:
    if access.allowed(UNIT_VIEW, units.ancestor_ids(unit.id)):
        return True
    history = _history_module()
    if history is None:
        return False
    return any(access.allowed(UNIT_VIEW, units.ancestor_ids(a)) for a in history.Lineages().anchors(unit.id))


def _codes_by_id(ids) -> dict[int, str]:
    ids = [i for i in set(ids) if i is not None]
    out = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        out.update(dict(Unit.select(Unit.id, Unit.code).where(Unit.id.in_(chunk)).tuples()))
    return out


def unit_json(unit: Unit, parent_codes: dict[int, str]) -> dict:
    return {"code": unit.code, "name": unit.name, "kind": unit.kind,
            "parent_code": parent_codes.get(unit.parent_id), "admin_code": unit.admin_code,
            "agency_code": unit.agency_code, "valid_from": _iso(unit.valid_from), "valid_to": _iso(unit.valid_to)}


def _visible_unit(code: str, access) -> Unit | None:
    unit = Unit.get_or_none(Unit.code == code)
    if unit is None or not _may_open(access, unit):
        return None
    return unit


def _unit_list(access, at, parent, kind, q, limit, offset):
    rows = [n.unit for n in _visible_nodes(access.roots(UNIT_VIEW), at)]
    if parent:
        parent_unit = _visible_unit(parent, access)
        if parent_unit is None:
            return None
        rows = [u for u in rows if u.parent_id == parent_unit.id]
    if kind:
        rows = [u for u in rows if u.kind == kind]
    if q:
        needle = fold(q)
        rows = [u for u in rows if needle in fold(u.name) or needle in u.code.lower()]
    chosen = rows[offset:offset + limit]
    codes = {u.id: u.code for u in rows}
    missing = [u.parent_id for u in chosen if u.parent_id is not None and u.parent_id not in codes]
    codes.update(_codes_by_id(missing))
    return page([unit_json(u, codes) for u in chosen], len(rows), limit, offset)


@api_require(UNIT_VIEW)
async def units_index(request):
    from core.models import UNIT_KINDS

    at = _date_param(request, "at", clock.today())
    kind = _text(request, "kind", 20)
    if kind and kind not in UNIT_KINDS:
        raise _bad("kind", "api.error.choice", value=kind, choices=", ".join(UNIT_KINDS))
    limit, offset = _pagination(request)
    result = await run_db(_unit_list, request.state.access, at, _text(request, "parent", 40), kind,
                          _text(request, "q"), limit, offset)
    if result is None:
        raise HTTPException(404)
    return ok({"at": at.isoformat(), **result})


def _brief(unit: Unit) -> dict:
    return {"code": unit.code, "name": unit.name, "kind": unit.kind, "valid_from": _iso(unit.valid_from),
            "valid_to": _iso(unit.valid_to)}


def _change_json(change) -> dict:
    return {"kind": change.kind, "effective_date": _iso(change.effective_date), "legal_basis": change.legal_basis,
            "note": change.note, "old_name": change.old_name, "new_name": change.new_name,
            "old_kind": change.old_kind, "new_kind": change.new_kind}


def _lineage_json(item) -> dict:
    return {**_brief(item.unit), "change": _change_json(item.change),
            "earlier": [_lineage_json(e) for e in item.earlier]}


def _history(unit: Unit) -> dict | None:
    """Predecessors (a lineage tree), the units of today it became, and every change it took part in."""
    history = _history_module()
    if history is None:
        return None
    return {
        "predecessors": [_lineage_json(item) for item in history.predecessors(unit)],
        "successors": [_brief(u) for u in history.successors(unit) if u.id != unit.id],  # what it is today
        "changes": [{**_change_json(view.change), "role": view.role, "from": [u.code for u in view.sources],
                     "to": [u.code for u in view.targets]} for view in history.changes_of(unit)],
    }


def _unit_detail(code, access, at):
    unit = _visible_unit(code, access)
    if unit is None:
        return None
    history = _history_module()
    if history is not None and past_values(at):
        # Renamed or moved since that day: the tree as at the date knows how it stood then.
        nodes = units.tree(unit.id, at=at)
        valid, shown = bool(nodes), (nodes[0].unit if nodes else unit)
        children = [n.unit for n in nodes[0].children] if nodes else []
    else:  # nothing changed in place since: one query, not the whole tree
        valid, shown = units.is_valid(unit, at), unit
        children = sorted(Unit.select().where((Unit.parent == unit.id) & units.valid_at(at)),
                          key=units.sort_key) if valid else []
    codes = _codes_by_id([shown.parent_id])
    codes[unit.id] = unit.code
    data = unit_json(shown, codes)
    data["valid_at"] = valid
    data["children"] = [unit_json(c, codes) for c in children]
    history = _history(unit)
    if history is not None:
        data["history"] = history
    return data


@api_require(UNIT_VIEW)
async def unit_one(request):
    at = _date_param(request, "at", clock.today())
    data = await run_db(_unit_detail, request.path_params["code"][:40], request.state.access, at)
    if data is None:
        raise HTTPException(404)
    return ok({"at": at.isoformat(), **data})


# -- indicators -------------------------------------------------------------------------------

INDICATOR_FIELDS = ("code", "version", "name", "unit_of_measure", "value_type", "aggregation", "disaggregation",
                    "periodicity", "agency", "higher_code", "source_act")


def indicator_json(ind) -> dict:
    data = {name: getattr(ind, name) for name in INDICATOR_FIELDS}
    data.update(group=ind.group.code, levels=ind.level_list, valid_from=_iso(ind.valid_from),
                valid_to=_iso(ind.valid_to), is_current=bool(ind.is_current))
    return data


def _indicator_list(q, level, group, limit, offset):
    """One page of current versions: the query of ``core.catalogue.indicators`` (every word of ``q`` in the
    folded name or the code), counted and cut in the database, not 5,000 rows read for 100."""
    Indicator, Group = indicators.Indicator, indicators.IndicatorGroup
    filtered = getattr(indicators, "_filtered", None)
    if filtered is None:  # the catalogue module without its paging helper: search() and cut here
        found = indicators.search(q, level=level or None, group=group or None)
        return page([indicator_json(i) for i in found[offset:offset + limit]], len(found), limit, offset)
    group_id = None
    if group:
        group_obj = Group.get_or_none(Group.code == group)
        if group_obj is None:
            return page([], 0, limit, offset)
        group_id = group_obj.id
    total = filtered(Indicator.select(), q, level or None, group_id).count()
    rows = (filtered(Indicator.select(Indicator, Group).join(Group), q, level or None, group_id)
            .order_by(Indicator.code).limit(limit).offset(offset))
    return page([indicator_json(i) for i in rows], total, limit, offset)


@api_require(INDICATOR_VIEW)
async def indicators_index(request):
    level = _text(request, "level", 20)
    if level and level not in indicators.LEVELS:
        raise _bad("level", "api.error.choice", value=level, choices=", ".join(indicators.LEVELS))
    limit, offset = _pagination(request)
    return ok(await run_db(_indicator_list, _text(request, "q"), level, _text(request, "group", 10), limit, offset))


def _indicator_detail(code):
    current = indicators.current(code)
    versions = indicators.history(code)
    if not versions:
        return None
    base = current or versions[-1]
    data = indicator_json(base)
    data["versions"] = [{"version": v.version, "valid_from": _iso(v.valid_from), "valid_to": _iso(v.valid_to),
                         "is_current": bool(v.is_current)} for v in versions]
    return data


@api_require(INDICATOR_VIEW)
async def indicator_one(request):
    data = await run_db(_indicator_detail, request.path_params["code"][:10].upper())
    if data is None:
        raise HTTPException(404)
    return ok(data)


def _indicator_version(code, version):
    found = indicators.get_version(code, version)
    return indicator_json(found) if found is not None else None


@api_require(INDICATOR_VIEW)
async def indicator_version(request):
    data = await run_db(_indicator_version, request.path_params["code"][:10].upper(),
                        request.path_params["version"])
    if data is None:
        raise HTTPException(404)
    return ok(data)


def _groups():
    from peewee import fn

    Indicator, Group = indicators.Indicator, indicators.IndicatorGroup
    counts = dict(Indicator.select(Indicator.group, fn.COUNT(Indicator.id))
                  .where(Indicator.is_current == True).group_by(Indicator.group).tuples())  # noqa: E712
    return [{"code": g.code, "name": g.name, "level": g.level, "indicators": counts.get(g.id, 0)}
            for g in Group.select().order_by(Group.code)]


@api_require(INDICATOR_VIEW)
async def indicator_groups(request):
    level = _text(request, "level", 20)
    if level and level not in indicators.LEVELS:
        raise _bad("level", "api.error.choice", value=level, choices=", ".join(indicators.LEVELS))
    rows = await run_db(_groups)
    rows = [g for g in rows if not level or g["level"] == level]
    return ok({"items": rows, "total": len(rows)})


# -- periods ------------------------------------------------------------------------------------

def _error_messages(exc: BaocaoError) -> dict[str, str]:
    return {lang: exc.message(lang) for lang in LANGUAGES}


def _calendar(settings):
    from core.regimes.workdays import work_calendar

    return work_calendar(settings)


def periods_data(frequency: str, year_text: str, deadline: str | None, calendar) -> list[dict]:
    """The windows of ``baocao periods`` (core.regimes.periods, core.regimes.deadlines), or BadParameters."""
    from core.regimes.deadlines import DeadlineRule, check_chain
    from core.regimes.periods import check_frequency, check_year, windows

    fields: dict[str, dict[str, str]] = {}
    if not frequency:
        fields["frequency"] = messages("api.error.required")
    else:
        try:
            check_frequency(frequency)
        except BaocaoError as exc:
            fields["frequency"] = _error_messages(exc)
    year = None
    try:
        year = check_year(int(year_text))
    except ValueError:
        fields["year"] = messages("periods.error.year", value=year_text[:10], low=1990, high=2100)
    except BaocaoError as exc:
        fields["year"] = _error_messages(exc)
    rule = None
    if deadline:
        try:
            rule = DeadlineRule.parse(deadline)
        except BaocaoError as exc:
            fields["deadline"] = _error_messages(exc)
    if fields:
        raise BadParameters(fields)
    out = []
    for w in windows(frequency, year):
        try:
            level = check_chain(w, {"1": rule}, calendar)[0] if rule else None
        except BaocaoError as exc:
            raise BadParameters({"deadline": _error_messages(exc)}) from None
        out.append({
            "frequency": w.frequency, "year": w.year, "index": w.index,
            "label": {lang: w.label(lang) for lang in LANGUAGES},
            "start": w.start.isoformat(), "end": w.end.isoformat(), "iso_interval": w.iso_interval,
            "deadline_rule": str(rule) if rule else None,
            "deadline": level.deadline.isoformat() if level else None,
            "nominal_deadline": level.nominal.isoformat() if level else None,
        })
    return out


@api_require()
async def periods_index(request):
    frequency = _text(request, "frequency", 20)
    year = _text(request, "year", 10) or str(clock.today().year)
    deadline = _text(request, "deadline", 20) or None
    settings = request.app.state.settings
    items = await run_db(lambda: periods_data(frequency, year, deadline, _calendar(settings)))
    return ok({"items": items, "total": len(items)})


# -- regimes -------------------------------------------------------------------------------------
# core.regimes.regimes decides who sees a regime (issuing, preparing or receiving unit in the caller's
# scope); drafts only for those who may edit that regime.

def _regimes_module():
    try:
        from core.regimes import regimes
    except ImportError:
        return None
    return regimes if hasattr(regimes, "visible_regimes") else None


def regime_json(regime, codes: dict[int, str], *, full: bool = True, groups: dict[int, str] | None = None) -> dict:
    """``codes``: unit id -> code; ``groups``: unit group id -> code (the receiving rule's group)."""
    data = {"code": regime.code, "version": regime.version, "name": regime.name, "type": regime.regime_type,
            "status": regime.status, "frequency": regime.frequency, "valid_from": _iso(regime.valid_from),
            "valid_to": _iso(regime.valid_to), "plugin": regime.plugin,
            "issuing_unit": codes.get(regime.issuing_unit_id), "receiving_unit": codes.get(regime.receiving_unit_id),
            # Who receives each report: one named unit ("unit", receiving_unit), the reporting unit's
            # parent ("parent"), or the owner of a unit group ("group_owner", receiving_group).
            "receiving_rule": regime.receiving_rule,
            "receiving_group": (groups or {}).get(regime.receiving_group_id),
            "legal_basis": {"number": regime.legal_number or None, "date": _iso(regime.legal_date),
                            "issuer": regime.legal_issuer or None}}
    if full:
        selector = regime.selector
        data.update({
            "content": regime.content, "content_type": regime.content_type,
            "reporting_units": {"kinds": selector["kinds"],
                                "units": [codes[i] for i in selector["unit_ids"] if i in codes],
                                "groups": selector.get("group_codes", []),
                                "scope": codes.get(selector["scope_unit_id"])},
            "sending_methods": regime.methods, "deadline_rules": regime.rules, "cutoff_rule": regime.cutoff_rule,
            "outline": regime.outline, "data_forms": regime.data_forms, "guidance": regime.guidance,
            "preparing_unit": codes.get(regime.preparing_unit_id), "issued_at": _iso(regime.issued_at),
        })
    return data


def _regime_unit_codes(rows) -> dict[int, str]:
    ids = set()
    for r in rows:
        ids.update({r.issuing_unit_id, r.receiving_unit_id, r.preparing_unit_id})
        selector = r.selector
        ids.update(selector["unit_ids"])
        ids.add(selector["scope_unit_id"])
    return _codes_by_id(ids)


def _regime_group_codes(rows) -> dict[int, str]:
    ids = sorted({r.receiving_group_id for r in rows} - {None})
    if not ids:
        return {}
    group = _regimes_module().UnitGroup
    return dict(group.select(group.id, group.code).where(group.id.in_(ids)).tuples())


def _shown_regimes(access, **filters) -> list:
    module = _regimes_module()
    return [r for r in module.visible_regimes(access, **filters)
            if r.status != module.DRAFT or module.can_edit(access, r)]


def _regime_list(access, q, status, limit, offset):
    rows = _shown_regimes(access, status=status or None, q=q)
    chosen = rows[offset:offset + limit]
    codes = _regime_unit_codes(chosen)
    groups = _regime_group_codes(chosen)
    return page([regime_json(r, codes, full=False, groups=groups) for r in chosen], len(rows), limit, offset)


@api_require(REGIME_VIEW)
async def regimes_index(request):
    if _regimes_module() is None:
        return json_error(503, "unavailable")
    status = _text(request, "status", 20)
    if status and status not in REGIME_STATUSES:
        raise _bad("status", "api.error.choice", value=status, choices=", ".join(REGIME_STATUSES))
    limit, offset = _pagination(request)
    return ok(await run_db(_regime_list, request.state.access, _text(request, "q"), status, limit, offset))


def _regime_detail(access, code):
    module = _regimes_module()
    rows = [r for r in _shown_regimes(access) if r.code == code]
    if not rows:
        return None
    in_force = [r for r in rows if r.status == module.ISSUED]
    chosen = in_force[0] if in_force else rows[0]  # newest version first
    codes = _regime_unit_codes([chosen])
    groups = chosen.selector["group_ids"]
    data = regime_json(chosen, codes, groups=_regime_group_codes([chosen]))
    if groups:
        data["reporting_units"]["groups"] = [g.code for g in module.UnitGroup.select().where(
            module.UnitGroup.id.in_(groups)).order_by(module.UnitGroup.code)]
    data["versions"] = [{"version": r.version, "status": r.status, "valid_from": _iso(r.valid_from),
                         "valid_to": _iso(r.valid_to)} for r in rows]
    return data


@api_require(REGIME_VIEW)
async def regime_one(request):
    if _regimes_module() is None:
        return json_error(503, "unavailable")
    data = await run_db(_regime_detail, request.state.access, request.path_params["code"][:40])
    if data is None:
        raise HTTPException(404)
    return ok(data)


# -- a report's values (issue 5): read, and write with the screen's validation -----------------
# core.reporting.data decides who may read (the reporting unit, the receiver) and write (the reporting
# unit while the report is open); PUT goes through the same ``save`` as the screen and the Excel
# upload. Writing needs a session with the CSRF header, or a token created with "may write".

def _report_values(access, report_id: int) -> dict:
    from core.regimes.form_engine import canonical

    sheet = reporting.load_sheet(access, report_id)
    report = sheet.report
    shown = [c.key for c in sheet.columns]
    return {
        "report": {"id": report.id, "unit": {"code": report.unit.code, "name": report.unit.name},
                   "regime": {"code": report.regime.code, "version": report.regime.version},
                   "period": {"frequency": report.frequency, "year": report.year, "index": report.period_index,
                              "label": report.label, "start": _iso(report.period_start),
                              "end": _iso(report.period_end)},
                   "deadline": _iso(report.deadline),
                   "form": {"code": sheet.version.form.code, "version": sheet.version.version},
                   "revision": report.revision, "status": report.status, "editable": sheet.editable},
        "columns": [{"key": c.key, "label": c.label, "kind": c.kind, "decimals": c.decimals, "percent": c.percent}
                    for c in sheet.columns],
        "rows": [{"key": r.key, "kind": r.kind, "number": r.number, "label": r.label, "indicator": r.indicator or None,
                  "option": r.option or None, "unit": r.unit or None} for r in sheet.form.rows],
        "kinds": {f"{r}.{c}": kind for (r, c), kind in sheet.kinds.items() if kind != "greyed"},
        "values": {f"{r.key}.{c}": (None if sheet.values.get((r.key, c)) is None
                                    else canonical(sheet.values[(r.key, c)]))
                   for r in sheet.form.rows for c in shown if sheet.kinds[(r.key, c)] != "greyed"},
        "sections": {s["key"]: sheet.sections.get(s["key"], "") for s in sheet.form.outline},
        "messages": [{"severity": m.severity, "rule": m.rule, "cell": m.cell, "message": dict(m.text)}
                     for m in sheet.messages],
    }


@api_require()
async def report_values(request):
    return ok(await run_db(_report_values, request.state.access, request.path_params["id"]))


def _values_body(body) -> tuple[dict, dict, int | None, dict]:
    """(cells, sections, revision, per-field errors) of a PUT body."""

    fields: dict[str, dict] = {}
    if not isinstance(body, dict):
        raise BadParameters({"body": messages("report_entry.api.body")})
    revision = body.get("revision")
    if revision is not None and (isinstance(revision, bool) or not isinstance(revision, int)):
        fields["revision"] = messages("report_entry.api.revision")
        revision = None
    values = body.get("values", {})
    sections = body.get("sections", {})
    if not isinstance(values, dict):
        fields["values"] = messages("report_entry.api.values")
        values = {}
    if not isinstance(sections, dict):
        fields["sections"] = messages("report_entry.api.sections")
        sections = {}
    if fields:
        raise BadParameters(fields)
    cells, bad = {}, {}
    for where, value in values.items():
        row, sep, col = str(where).partition(".")
        if not sep or not row or not col:
            bad[str(where)[:90]] = messages("report_entry.api.cell_name", cell=str(where)[:90])
        elif value is not None and (isinstance(value, bool) or not isinstance(value, (str, int, float, Decimal))):
            bad[str(where)[:90]] = messages("report_entry.api.cell_value")
        else:
            cells[(row[:40], col[:40])] = (reporting.MISSING, value)
    clean_sections = {}
    for key, text in sections.items():
        if not isinstance(text, str):
            bad[f"section:{str(key)[:40]}"] = messages("report_entry.api.sections")
        else:
            clean_sections[str(key)[:40]] = (reporting.MISSING, text)
    return cells, clean_sections, revision, bad


def _put_values(access, report_id: int, body, lang: str = "vi") -> tuple[int, dict]:
    """``lang``: how value strings are read (docs/api.md): the caller's language, as for the
    screens; JSON numbers are numbers in every language."""

    cells, sections, revision, bad = _values_body(body)
    if bad:
        return 422, _cells_error("invalid_values", "report_data.error.cells", bad, count=len(bad))
    try:
        result = reporting.save(access, report_id, cells, sections, expected_revision=revision, source="api", lang=lang)
    except reporting.CellErrors as exc:
        cells_out = {where: {lang: err.message(lang) for lang in LANGUAGES} for where, err in exc.errors.items()}
        return 422, _cells_error("invalid_values", "report_data.error.cells", cells_out, count=len(cells_out))
    except reporting.SaveConflict as exc:
        data = _cells_error("conflict", "report_entry.api.conflict", {}, revision=exc.revision)
        data["error"]["revision"] = exc.revision
        return 409, data
    except BaocaoError as exc:
        if exc.status is not None:  # NotFound, Forbidden: the API's 404/403 (web.errors.domain_error)
            raise
        code = "not_editable" if exc.key == "report_data.error.not_editable" else "refused"
        return (409 if code == "not_editable" else 422), {
            "error": {"code": code, "message": {lang: exc.message(lang) for lang in LANGUAGES}}}
    data = _report_values(access, report_id)
    data["changed"] = {"cells": result.changed_cells, "sections": result.changed_sections}
    return 200, data


def _cells_error(code: str, key: str, cells: dict, **params) -> dict:
    return {"error": {"code": code, "message": messages(key, **params), "cells": cells}}


@api_require()
async def report_values_put(request):
    # The body is JSON and says so (security.md API-02): a form or text body is refused before it is read.
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        return json_error(415, "unsupported_media_type")
    try:
        # Bounded in size and depth (web.params); a JSON number keeps all its digits (a float would
        # turn 99999999999.999999 into 100000000000 before anyone could refuse it).
        body = await read_json(request, parse_float=Decimal)
    except BadParameter as exc:
        if exc.status_code != 400:
            raise
        key = "report_entry.api.body" if exc.detail == "json_malformed" else f"error.reason.{exc.detail}"
        raise BadParameters({"body": messages(key, **exc.params)}) from None
    status, data = await run_db(_put_values, request.state.access, request.path_params["id"], body,
                                request.state.lang)
    return ok(data, status)


# -- the declarative description ----------------------------------------------------------------

@dataclass(frozen=True)
class Param:
    name: str
    where: str  # "query" or "path"
    schema: dict
    description: str  # message key
    required: bool = False
    example: object = None


@dataclass(frozen=True)
class Endpoint:
    path: str  # below /api/v1
    name: str  # route name in the "api" mount, and the OpenAPI operationId
    endpoint: object
    summary: str  # message key
    permission: str | None  # None: any logged-in user
    response: str  # schema name in components
    params: tuple[Param, ...] = ()
    tag: str = "units"
    errors: tuple[int, ...] = (401, 403)
    method: str = "get"  # "put" for the one writing endpoint (a report's values)
    body: str | None = None  # schema name of the request body


STRING = {"type": "string"}
DATE = {"type": "string", "format": "date"}
NULL_STRING = {"type": ["string", "null"]}
NULL_DATE = {"type": ["string", "null"], "format": "date"}
PAGING = (
    Param("limit", "query", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
          "api.param.limit"),
    Param("offset", "query", {"type": "integer", "minimum": 0, "default": 0}, "api.param.offset"),
)
AT = Param("at", "query", DATE, "api.param.at", example="2025-06-30")
LEVEL = Param("level", "query", {"type": "string", "enum": list(indicators.LEVELS)}, "api.param.level")
REPORT_ID = Param("id", "path", {"type": "integer", "minimum": 1}, "report_entry.api.param.id", required=True,
                  example=1)


def _unit_kinds():
    from core.models import UNIT_KINDS

    return list(UNIT_KINDS)


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("/units", "units", units_index, "api.ep.units", UNIT_VIEW, "UnitPage",
             (AT, Param("parent", "query", STRING, "api.param.parent", example="44"),
              Param("kind", "query", {"type": "string", "enum": _unit_kinds()}, "api.param.kind"),
              Param("q", "query", STRING, "api.param.q_units", example="dong ha"), *PAGING),
             errors=(400, 401, 403, 404)),
    Endpoint("/units/{code}", "unit", unit_one, "api.ep.unit", UNIT_VIEW, "UnitDetail",
             (Param("code", "path", STRING, "api.param.unit_code", required=True, example="44"), AT),
             errors=(400, 401, 403, 404)),
    Endpoint("/indicators", "indicators", indicators_index, "api.ep.indicators", INDICATOR_VIEW, "IndicatorPage",
             (Param("q", "query", STRING, "api.param.q_indicators", example="dan so"), LEVEL,
              Param("group", "query", STRING, "api.param.group", example="T01"), *PAGING),
             tag="indicators", errors=(400, 401, 403)),
    Endpoint("/indicators/{code}", "indicator", indicator_one, "api.ep.indicator", INDICATOR_VIEW,
             "IndicatorDetail",
             (Param("code", "path", STRING, "api.param.indicator_code", required=True, example="T0101"),),
             tag="indicators", errors=(401, 403, 404)),
    Endpoint("/indicators/{code}/versions/{version}", "indicator_version", indicator_version,
             "api.ep.indicator_version", INDICATOR_VIEW, "Indicator",
             (Param("code", "path", STRING, "api.param.indicator_code", required=True, example="T0101"),
              Param("version", "path", {"type": "integer", "minimum": 1}, "api.param.version", required=True,
                    example=1)),
             tag="indicators", errors=(401, 403, 404)),
    Endpoint("/indicator-groups", "indicator_groups", indicator_groups, "api.ep.indicator_groups", INDICATOR_VIEW,
             "IndicatorGroupList", (LEVEL,), tag="indicators", errors=(400, 401, 403)),
    Endpoint("/periods", "periods", periods_index, "api.ep.periods", None, "PeriodList",
             (Param("frequency", "query", {"type": "string",
                                           "enum": ["monthly", "quarterly", "half_year", "nine_months", "annual"]},
                    "api.param.frequency", required=True, example="monthly"),
              Param("year", "query", {"type": "integer", "minimum": 1990, "maximum": 2100}, "api.param.year",
                    example=2026),
              Param("deadline", "query", {"type": "string", "pattern": r"^(\d{1,3}wd|day:\d{1,2})$"},
                    "api.param.deadline", example="2wd")),
             tag="periods", errors=(400, 401, 403)),
    Endpoint("/regimes", "regimes", regimes_index, "api.ep.regimes", REGIME_VIEW, "RegimePage",
             (Param("q", "query", STRING, "api.param.q_regimes"),
              Param("status", "query", {"type": "string", "enum": list(REGIME_STATUSES)}, "api.param.status"),
              *PAGING),
             tag="regimes", errors=(400, 401, 403, 503)),
    Endpoint("/regimes/{code}", "regime", regime_one, "api.ep.regime", REGIME_VIEW, "RegimeDetail",
             (Param("code", "path", STRING, "api.param.regime_code", required=True),),
             tag="regimes", errors=(401, 403, 404, 503)),
    Endpoint("/reports/{id}/values", "report_values", report_values, "report_entry.api.ep.get", None,
             "ReportValues", (REPORT_ID,), tag="reports", errors=(401, 403, 404)),
    Endpoint("/reports/{id}/values", "report_values_put", report_values_put, "report_entry.api.ep.put", None,
             "ReportValues", (REPORT_ID,), tag="reports", errors=(400, 401, 403, 404, 405, 409, 413, 415, 422),
             method="put", body="ReportValuesInput"),  # 405: an id the route does not match (the read-only rule)
    # Completeness and timeliness (issue 14): the numbers of /completeness, which decides who sees what
    # (web/routes/completeness.py, core.reporting.completeness); a regime out of sight is a 404.
    Endpoint("/completeness", "completeness", api_require()(completeness_routes.api_overview),
             "completeness.api.ep.overview", None, "CompletenessRegimePage", PAGING, tag="reports",
             errors=(400, 401, 403)),
    Endpoint("/completeness/{code}", "completeness_period", api_require()(completeness_routes.api_period),
             "completeness.api.ep.period", None, "CompletenessPeriod",
             (Param("code", "path", STRING, "completeness.api.param.code", required=True, example="KTXH.THANG"),
              Param("period", "query", STRING, "completeness.api.param.period", example="2026-02-15/2026-03-14"),
              Param("status", "query", {"type": "string", "enum": list(reporting.COMPLETENESS_STATES)},
                    "completeness.api.param.status"),
              Param("level", "query", {"type": "string", "enum": _unit_kinds()}, "completeness.api.param.level"),
              Param("q", "query", STRING, "completeness.api.param.q"),
              Param("sort", "query", STRING, "completeness.api.param.sort", example="-status"), *PAGING),
             tag="reports", errors=(400, 401, 403, 404)),
    Endpoint("/completeness/{code}/year", "completeness_year", api_require()(completeness_routes.api_year),
             "completeness.api.ep.year", None, "CompletenessYear",
             (Param("code", "path", STRING, "completeness.api.param.code", required=True, example="KTXH.THANG"),
              Param("year", "query", {"type": "integer", "minimum": 1990, "maximum": 2100},
                    "completeness.api.param.year", example=2026),
              Param("level", "query", {"type": "string", "enum": _unit_kinds()}, "completeness.api.param.level"),
              Param("q", "query", STRING, "completeness.api.param.q"), *PAGING),
             tag="reports", errors=(400, 401, 403, 404)),
)


@api_require()
async def openapi_json(request):
    from web.routes.plugin_api import described  # plugins' endpoints (web.api.json_route), for this caller

    registry = request.app.state.registry
    extra, schemas, tags = described(registry, request.state.enabled)
    body = json.dumps(openapi(request.state.lang, extra=extra, extra_schemas=schemas, extra_tags=tags,
                              catalog=registry.catalog), ensure_ascii=False, sort_keys=True).encode("utf-8")
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {"ETag": etag, "Cache-Control": "private, no-cache", "Vary": "Cookie, Authorization"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)


OPENAPI = Endpoint("/openapi.json", "openapi", openapi_json, "api.ep.openapi", None, "OpenAPI", tag="meta",
                   errors=(401,))
ALL_ENDPOINTS = ENDPOINTS + (OPENAPI,)


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(properties: dict, required=None) -> dict:
    return {"type": "object", "properties": properties, "required": list(required or properties)}


def _page_of(item: str) -> dict:
    return _obj({"items": {"type": "array", "items": _ref(item)}, "total": {"type": "integer"},
                 "limit": {"type": "integer"}, "offset": {"type": "integer"}})


TEXTS = _obj({"vi": STRING, "en": STRING})
UNIT_SCHEMA = _obj({"code": STRING, "name": STRING, "kind": {"type": "string", "enum": _unit_kinds()},
                    "parent_code": NULL_STRING, "admin_code": NULL_STRING, "agency_code": NULL_STRING,
                    "valid_from": NULL_DATE, "valid_to": NULL_DATE})
INDICATOR_SCHEMA = _obj({
    "code": STRING, "version": {"type": "integer"}, "name": STRING, "group": STRING,
    "levels": {"type": "array", "items": {"type": "string", "enum": list(indicators.LEVELS)}},
    "unit_of_measure": NULL_STRING, "value_type": {"type": "string", "enum": list(indicators.VALUE_TYPES)},
    "aggregation": {"type": "string", "enum": list(indicators.AGGREGATIONS)}, "disaggregation": NULL_STRING,
    "periodicity": NULL_STRING, "agency": NULL_STRING, "higher_code": NULL_STRING, "source_act": NULL_STRING,
    "valid_from": NULL_DATE, "valid_to": NULL_DATE, "is_current": {"type": "boolean"}})
SCHEMAS = {
    "Error": _obj({"error": {"type": "object", "required": ["code", "message"], "properties": {
        "code": STRING, "message": _ref("Texts"),
        "fields": {"type": "object", "additionalProperties": _ref("Texts")},
        "cells": {"type": "object", "additionalProperties": _ref("Texts")},
        "revision": {"type": "integer"}}}}),
    "Texts": TEXTS,
    "Unit": UNIT_SCHEMA,
    "UnitPage": {"allOf": [_page_of("Unit"), _obj({"at": DATE})]},
    "UnitDetail": {"allOf": [_ref("Unit"), {
        "type": "object", "required": ["at", "valid_at", "children"],
        "properties": {"at": DATE, "valid_at": {"type": "boolean"},
                       "children": {"type": "array", "items": _ref("Unit")},
                       "history": {"type": "object", "additionalProperties": {"type": "array"}}}}]},
    "Indicator": INDICATOR_SCHEMA,
    "IndicatorPage": _page_of("Indicator"),
    "IndicatorDetail": {"allOf": [_ref("Indicator"), _obj({"versions": {"type": "array", "items": _obj({
        "version": {"type": "integer"}, "valid_from": NULL_DATE, "valid_to": NULL_DATE,
        "is_current": {"type": "boolean"}})}})]},
    "IndicatorGroup": _obj({"code": STRING, "name": STRING, "level": {"type": "string",
                                                                      "enum": list(indicators.LEVELS)},
                            "indicators": {"type": "integer"}}),
    "IndicatorGroupList": _obj({"items": {"type": "array", "items": _ref("IndicatorGroup")},
                                "total": {"type": "integer"}}),
    "Period": _obj({"frequency": STRING, "year": {"type": "integer"}, "index": {"type": "integer"},
                    "label": _ref("Texts"), "start": DATE, "end": DATE, "iso_interval": STRING,
                    "deadline_rule": NULL_STRING, "deadline": NULL_DATE, "nominal_deadline": NULL_DATE}),
    "PeriodList": _obj({"items": {"type": "array", "items": _ref("Period")}, "total": {"type": "integer"}}),
    "Regime": _obj({
        "code": STRING, "version": {"type": "integer"}, "name": STRING,
        "type": {"type": "string", "enum": ["periodic", "thematic", "ad_hoc"]},
        "status": {"type": "string", "enum": list(REGIME_STATUSES)}, "frequency": NULL_STRING,
        "valid_from": NULL_DATE, "valid_to": NULL_DATE, "plugin": NULL_STRING, "issuing_unit": NULL_STRING,
        "receiving_unit": NULL_STRING,
        "receiving_rule": {"type": "string", "enum": ["unit", "parent", "group_owner"],
                           "description": "unit: receiving_unit receives; parent: each reporting unit's "
                                          "parent; group_owner: the owner of receiving_group"},
        "receiving_group": NULL_STRING,
        "legal_basis": _obj({"number": NULL_STRING, "date": NULL_DATE, "issuer": NULL_STRING})}),
    "RegimeDetail": {"allOf": [_ref("Regime"), _obj({
        "content": STRING, "content_type": {"type": "string", "enum": ["text", "data", "both"]},
        "reporting_units": _obj({"kinds": {"type": "array", "items": STRING},
                                 "units": {"type": "array", "items": STRING},
                                 "groups": {"type": "array", "items": STRING}, "scope": NULL_STRING}),
        "sending_methods": {"type": "array", "items": STRING},
        "deadline_rules": {"type": "array", "items": {"type": "object"}}, "cutoff_rule": STRING,
        "outline": STRING, "data_forms": STRING, "guidance": STRING, "preparing_unit": NULL_STRING,
        "issued_at": NULL_STRING,
        "versions": {"type": "array", "items": _obj({"version": {"type": "integer"}, "status": STRING,
                                                     "valid_from": NULL_DATE, "valid_to": NULL_DATE})}})]},
    "RegimePage": _page_of("Regime"),
    "ReportValues": _obj({
        "report": {"type": "object"}, "columns": {"type": "array", "items": {"type": "object"}},
        "rows": {"type": "array", "items": {"type": "object"}},
        "kinds": {"type": "object", "additionalProperties": {"type": "string",
                                                             "enum": ["input", "prefill", "computed"]}},
        "values": {"type": "object", "additionalProperties": NULL_STRING},
        "sections": {"type": "object", "additionalProperties": STRING},
        "messages": {"type": "array", "items": _obj({"severity": STRING, "rule": STRING, "cell": NULL_STRING,
                                                     "message": _ref("Texts")})}},
        required=["report", "columns", "rows", "values", "messages"]),
    "ReportValuesInput": {"type": "object", "properties": {
        "revision": {"type": "integer", "description": "409 when the report's revision is no longer this"},
        "values": {"type": "object", "additionalProperties": {"type": ["string", "number", "null"]}},
        "sections": {"type": "object", "additionalProperties": STRING}}},
    **completeness_routes.API_SCHEMAS,
    "OpenAPI": {"type": "object"},
}


def openapi(lang: str = "vi", *, extra=(), extra_schemas=None, extra_tags=(), catalog=None) -> dict:
    """The OpenAPI 3.1 document, from ``ALL_ENDPOINTS`` and ``extra``: the plugins' endpoints
    (``web.routes.plugin_api.described``), with their schemas and tags, worded from ``catalog``
    (the registry's, which holds the plugins' messages)."""
    catalog = catalog or core_catalog()

    def t(key, **params):
        return catalog.gettext(lang, key, **params)

    paths: dict[str, dict] = {}
    for ep in ALL_ENDPOINTS + tuple(extra):
        responses = {"200": {"description": t("api.response.ok"),
                             "content": {"application/json": {"schema": _ref(ep.response)}}}}
        # 400 on every operation: a NUL in the query or an id in the path past 2**63 - 1 is refused
        # before any endpoint reads its parameters (web.middleware), whatever the endpoint; 429 too:
        # a caller past its budget is refused first (web.rate_limits).
        for status in sorted({400, 429, *ep.errors}):
            responses[str(status)] = {"description": t(f"api.response.{status}"),
                                      "content": {"application/json": {"schema": _ref("Error")}}}
        operation = {
            "operationId": ep.name, "summary": t(ep.summary), "tags": [ep.tag],
            "x-summary": {lang_: catalog.gettext(lang_, ep.summary) for lang_ in LANGUAGES},
            "x-permission": ep.permission,
            "parameters": [{"name": p.name, "in": p.where, "required": p.required or p.where == "path",
                            "description": t(p.description), "schema": p.schema,
                            **({"example": p.example} if p.example is not None else {})} for p in ep.params],
            "responses": responses,
        }
        if ep.permission:
            operation["description"] = t("api.doc.needs", permission=ep.permission)
        if ep.body:
            operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref(ep.body)}}}
            operation["description"] = t("report_entry.api.doc.write")
        paths.setdefault(BASE + ep.path, {})[ep.method] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": t("api.doc.title"), "version": core.__version__,
                 "description": t("api.doc.description")},
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}, {"cookie": []}],
        "tags": [{"name": tag, "description": t(f"api.tag.{tag}")}
                 for tag in ("units", "indicators", "periods", "regimes", "reports", "meta")]
                + [{"name": tag, "description": t(f"{tag}.label")} for tag in extra_tags],
        "paths": paths,
        "components": {
            "schemas": {**SCHEMAS, **(extra_schemas or {})},
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "bc_…",
                           "description": t("api.doc.bearer")},
                "cookie": {"type": "apiKey", "in": "cookie", "name": "baocao_session",
                           "description": t("api.doc.cookie")},
            },
        },
    }


def _route_path(ep: Endpoint) -> str:
    return ep.path.replace("{version}", "{version:int}").replace("{id}", "{id:int}")


API_ROUTES = [Route(_route_path(ep), ep.endpoint, methods=[ep.method.upper()], name=ep.name) for ep in ALL_ENDPOINTS]


# -- screens: the documentation page and the tokens --------------------------------------------

@require()
async def api_docs(request):
    from web.routes.plugin_api import described  # plugins' endpoints, for this caller

    lang = request.state.lang
    catalog = request.app.state.registry.catalog
    extra = described(request.app.state.registry, request.state.enabled)[0]
    endpoints = [{"path": BASE + ep.path, "summary": catalog.gettext(lang, ep.summary), "permission": ep.permission,
                  "params": [{"name": p.name, "where": p.where, "required": p.required,
                              "type": _type_text(p.schema), "description": catalog.gettext(lang, p.description),
                              "example": p.example} for p in ep.params],
                  "tag": ep.tag, "method": ep.method.upper()} for ep in ALL_ENDPOINTS + tuple(extra)]
    origin = f"{request.url.scheme}://{request.headers.get('host', 'localhost')}"
    return await render(request, "core/api/docs.html", {"endpoints": endpoints, "origin": origin,
                                                        "max_limit": MAX_LIMIT, "max_days": api_tokens.MAX_DAYS})


def _type_text(schema: dict) -> str:
    if "enum" in schema:
        return " | ".join(str(v) for v in schema["enum"])
    kind = schema.get("type", "")
    return f"{kind} ({schema['format']})" if schema.get("format") else str(kind)


TOKEN_DONE = {"revoked": "api.token.done.revoked"}


def _tokens_context(actor, *, form=None, errors=None, created=None, done=None) -> dict:
    return {"tokens": api_tokens.tokens_of(actor), "form": form or {"name": "", "days": api_tokens.DEFAULT_DAYS},
            "errors": errors or {}, "created": created, "done": done, "choices": api_tokens.EXPIRY_CHOICES,
            "max_days": api_tokens.MAX_DAYS, "max_active": api_tokens.MAX_ACTIVE_PER_USER, "now": utcnow()}


async def _tokens_page(request, status_code=200, **kwargs):
    context = await run_db(_tokens_context, request.state.actor, **kwargs)
    return await render(request, "core/api/tokens.html", context, partial="core/api/_tokens.html",
                        status_code=status_code)


@require()
async def tokens_page(request):
    return await _tokens_page(request, done=TOKEN_DONE.get(request.query_params.get("done") or ""))


@require(reauth=True)
async def token_create(request):
    form = await request.form()
    data = {"name": str(form.get("name", ""))[:200], "days": str(form.get("days", ""))[:5],
            "can_write": form.get("can_write") == "1"}
    try:
        token, secret = await run_db(lambda: api_tokens.create_token(request.state.actor, data["name"], data["days"],
                                                                     can_write=data["can_write"]))
    except ValidationError as exc:
        return await _tokens_page(request, status_code=422, form=data, errors=exc.errors)
    # Shown once, in this answer; never stored, never in a URL, not cached.
    response = await _tokens_page(request, created={"token": token, "secret": secret})
    response.headers["Cache-Control"] = "no-store"
    return response


@require()
async def token_revoke(request):
    await run_db(api_tokens.revoke, request.state.actor, request.path_params["token_id"])
    if request.state.htmx.wants_partial:
        return await _tokens_page(request, done=TOKEN_DONE["revoked"])
    return RedirectResponse(request.url_for("api_tokens").path + "?done=revoked", status_code=303)


ROUTES = [
    Mount(BASE, routes=API_ROUTES, name="api", middleware=[Middleware(ApiBoundary)]),
    Route("/api", api_docs, methods=["GET"], name="api_docs"),
    Route("/account/tokens", tokens_page, methods=["GET"], name="api_tokens"),
    Route("/account/tokens", token_create, methods=["POST"], name="api_token_create"),
    Route("/account/tokens/{token_id:int}/revoke", token_revoke, methods=["POST"], name="api_token_revoke"),
]
