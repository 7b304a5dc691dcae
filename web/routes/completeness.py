"""The completeness screen ``/completeness`` ("Tình hình gửi báo cáo"), its Excel files and its
numbers over the JSON API.

- ``/completeness``: every regime the person may see, with the reporting rates of its latest due
  period; with ``?regime=<code>`` (and ``period=start/end``, default: the latest period whose
  deadline has passed) the summary line, the numbers by level and a table of the units, filtered
  by ``status`` (on_time, late, not_submitted, overdue, accepted, returned), ``level`` (a unit
  kind) and ``q`` (words of the unit's name), sorted by ``sort`` (unit, code, level, status,
  submitted, deadline; "-" before it for the other way), paged by ``page``;
- ``/completeness/year?regime=<code>&year=``: the regime's periods of a year as columns, a row per
  unit with its numbers over the year;
- ``/completeness/units/<id>``: one unit's reports, each linking to the report's page;
- ``/completeness/export.xlsx`` and ``/completeness/year/export.xlsx``: the same views as files;
- ``api_overview``, ``api_period``, ``api_year``: the same numbers under ``/api/v1/completeness``,
  mounted and described by ``web.routes.api`` (which wraps them in its guard).

The filters are a plain GET form: a filtered view is a link one can keep or send; without
JavaScript it reloads the page, with htmx only the table is fetched again. Who sees what and
every number are ``core.reporting.completeness``'s; a regime or unit out of sight answers 404.
"""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.routing import Route

from core import clock
from core.db import run_db
from core.errors import NotFound
from core.models import UNIT_KINDS
from core.reporting import facade as reporting
from core.safe_input import parse_int
from web.background import export as background_export
from web.guards import require
from web.templating import render

SORTABLE = ("unit", "level", "deadline", "submitted", "status")


def _translator(request):
    catalog, lang = request.app.state.registry.catalog, request.state.lang

    def t(key, **params):
        return catalog.gettext(lang, key, **params)

    return t


def _links(path: str, filters) -> dict:
    def link(**changes) -> str:
        changes.setdefault("page", "")
        query = urlencode(filters.params(**changes))
        return path + ("?" + query if query else "")

    def sort_link(key: str) -> str:
        """The column's link: this column ascending, or descending when it is the ascending one now."""
        return link(sort=f"-{key}" if filters.sort == key else key)

    def sorted_as(key: str) -> str:
        return "ascending" if filters.sort == key else "descending" if filters.sort == f"-{key}" else ""

    return {"link": link, "sort_link": sort_link, "sorted_as": sorted_as}


def _common() -> dict:
    return {"states": reporting.COMPLETENESS_STATES, "state_labels": reporting.COMPLETENESS_STATE_LABELS,
            "kinds": UNIT_KINDS, "today": clock.today()}


def period_context(access, params) -> dict:
    filters = reporting.CompletenessFilters.from_params(params)
    if not filters.regime:
        return {**_common(), "lines": reporting.completeness_overview(access), "f": filters}
    view = reporting.completeness_period(access, filters)
    filters.period = view.period.key  # the links keep the period shown, even once another one falls due
    chosen = {"regime": view.regime.code, "period": view.period.key}
    # The page's units only: values far from the usual (history, peers) and open follow-ups (item 9).
    flags = reporting.quality_flag_counts(access, view.regime.code, view.period.key,
                                          unit_ids=[r.unit_id for r in view.rows]) if view.rows else {}
    return {**_common(), "view": view, "f": filters, "regimes": view.regimes, "sortable": SORTABLE, "flags": flags,
            **_links("/completeness", filters),
            "export_href": "/completeness/export.xlsx?" + urlencode({**chosen, **_sort(filters)}),
            "year_href": "/completeness/year?" + urlencode({"regime": view.regime.code, "year": view.period.year})}


def _sort(filters) -> dict:
    return {"sort": filters.sort} if filters.sort != "unit" else {}


@require()
async def completeness_page(request):
    context = await run_db(period_context, request.state.access, request.query_params)
    if "view" not in context:
        return await render(request, "core/completeness/overview.html", context)
    return await render(request, "core/completeness/period.html", context,
                        partial="core/completeness/_units.html")


def year_context(access, params) -> dict:
    filters = reporting.CompletenessFilters.from_params(params)
    view = reporting.completeness_year(access, filters)
    filters.year = view.year
    chosen = {"regime": view.regime.code, "year": view.year}
    return {**_common(), "view": view, "f": filters, "regimes": view.regimes, **_links("/completeness/year", filters),
            "export_href": "/completeness/year/export.xlsx?" + urlencode(chosen),
            "period_href": lambda period: "/completeness?" + urlencode({"regime": view.regime.code,
                                                                        "period": period.key})}


@require()
async def year_page(request):
    context = await run_db(year_context, request.state.access, request.query_params)
    return await render(request, "core/completeness/year.html", context, partial="core/completeness/_year_table.html")


def unit_context(access, unit_id: int, params) -> dict:
    regime = " ".join(str(params.get("regime", "") or "").split())[:40]
    year = parse_int(str(params.get("year", "") or "").strip()[:10], minimum=1990, maximum=2100)
    view = reporting.completeness_unit(access, unit_id, regime=regime, year=year)
    return {**_common(), "view": view}


@require()
async def unit_page(request):
    context = await run_db(unit_context, request.state.access, request.path_params["unit_id"], request.query_params)
    return await render(request, "core/completeness/unit.html", context)


def _xlsx(content: bytes, filename: str) -> Response:
    return Response(content, media_type=reporting.COMPLETENESS_XLSX_MEDIA,
                    headers={"Content-Disposition": f'attachment; filename="{filename}"',
                             "Cache-Control": "private, no-store"})


def _period_file(access, params, t, lang, actor) -> tuple[bytes, str]:
    filters = reporting.CompletenessFilters.from_params(params)
    if not filters.regime:
        raise NotFound()  # a domain refusal: the job thread reports it as 404
    view = reporting.completeness_period(access, filters, limit=None)
    content = reporting.completeness_workbook(view, t, lang, actor=actor)
    return content, reporting.completeness_filename(view.regime, view.period.key.replace("/", "_"))


@require()
async def period_export(request):
    args = (request.state.access, request.query_params, _translator(request), request.state.lang, request.state.actor)
    return await _export(request, "completeness.export", "background.title.completeness_export",
                         lambda: _period_file(*args), "/completeness")


def _year_file(access, params, t, lang, actor) -> tuple[bytes, str]:
    filters = reporting.CompletenessFilters.from_params(params)
    if not filters.regime:
        raise NotFound()  # a domain refusal: the job thread reports it as 404
    view = reporting.completeness_year(access, filters, limit=None)
    content = reporting.completeness_year_workbook(view, t, lang, actor=actor)
    return content, reporting.completeness_filename(view.regime, str(view.year))


@require()
async def year_export(request):
    args = (request.state.access, request.query_params, _translator(request), request.state.lang, request.state.actor)
    return await _export(request, "completeness.year_export", "background.title.completeness_year_export",
                         lambda: _year_file(*args), "/completeness/year")


async def _export(request, kind: str, title: str, build, page: str):
    # A province's year over thousands of units takes a while: past a second it is a job whose
    # page offers the file when it is ready (web.background).
    back = page + (f"?{request.url.query}" if request.url.query else "")

    async def refused():  # not reached: the builders refuse with NotFound
        raise NotFound()

    return await background_export(request, kind=kind, title=title, build=build, answer=_xlsx,
                                   media_type=reporting.COMPLETENESS_XLSX_MEDIA, back_url=back, refused=refused)


# -- the JSON API (mounted under /api/v1 by web.routes.api, which guards these) ----------------------

def _iso(value):
    return value.isoformat() if value is not None else None


def _period_json(period, lang: str) -> dict:
    return {"key": period.key, "start": period.start.isoformat(), "end": period.end.isoformat(),
            "frequency": period.frequency, "year": period.year, "index": period.index,
            "label": {"vi": period.label("vi"), "en": period.label("en")},
            "deadline": {"first": period.first_deadline.isoformat(), "last": period.last_deadline.isoformat()}}


def _regime_json(regime) -> dict:
    return {"code": regime.code, "name": regime.name, "frequency": regime.frequency}


def _unit_json(code: str, name: str, kind: str) -> dict:
    return {"code": code, "name": name, "kind": kind}


def _query_filters(request, *, year: bool = False):
    """The API's filters from its query string: a value it cannot read is a 400 naming it."""
    from web.routes import api

    params = request.query_params
    fields = {}
    status, level = api._text(request, "status", 20), api._text(request, "level", 20)
    if status and status not in reporting.COMPLETENESS_STATES:
        fields["status"] = api.messages("api.error.choice", value=status,
                                        choices=", ".join(reporting.COMPLETENESS_STATES))
    if level and level not in UNIT_KINDS:
        fields["level"] = api.messages("api.error.choice", value=level, choices=", ".join(UNIT_KINDS))
    sorts = [s for key in reporting.COMPLETENESS_SORTS for s in (key, "-" + key)]
    sort = api._text(request, "sort", 20)
    if sort and sort not in sorts:
        fields["sort"] = api.messages("api.error.choice", value=sort, choices=", ".join(sorts))
    period = api._text(request, "period", 25)
    if period and reporting.parse_completeness_period(period) is None:
        fields["period"] = api.messages("completeness.api.error.period", value=period[:25])
    raw_year = api._text(request, "year", 10)
    if year and raw_year and parse_int(raw_year, minimum=1990, maximum=2100) is None:
        fields["year"] = api.messages("completeness.api.error.year", value=raw_year)
    try:
        limit, offset = api._pagination(request)
    except api.BadParameters as exc:
        fields.update(exc.fields)
    if fields:
        raise api.BadParameters(fields)
    filters = reporting.CompletenessFilters.from_params(params)
    filters.regime = request.path_params.get("code", "")[:40]
    return filters, limit, offset


async def api_overview(request):
    """Every regime the caller may see, with the numbers of its latest due period."""
    from web.routes import api

    limit, offset = api._pagination(request)
    lines = await run_db(reporting.completeness_overview, request.state.access)
    items = [{"regime": _regime_json(line.regime), "period": _period_json(line.period, request.state.lang),
              **line.counts.as_dict()} for line in lines[offset:offset + limit]]
    return api.ok(api.page(items, len(lines), limit, offset))


def _period_data(access, filters, limit, offset, lang) -> dict:
    view = reporting.completeness_period(access, filters, limit=limit, offset=offset)
    items = [{"unit": _unit_json(r.unit_code, r.unit_name, r.unit_kind), "report": r.report_id,
              "status": r.status, "state": r.state, "timeliness": r.timeliness, "overdue": r.overdue,
              "deadline": r.deadline.isoformat(), "submitted_at": _iso(r.submitted_at)} for r in view.rows]
    return {"items": items, "total": view.total, "limit": limit, "offset": offset, "as_of": view.today.isoformat(),
            "regime": _regime_json(view.regime), "period": _period_json(view.period, lang),
            **view.totals.as_dict(),
            "levels": [{"kind": kind, **counts.as_dict()} for kind, counts in view.levels],
            "periods": [p.key for p in view.periods]}


async def api_period(request):
    """A regime's period: its numbers, by level, and the units (paged)."""
    from web.routes import api

    filters, limit, offset = _query_filters(request)
    data = await run_db(_period_data, request.state.access, filters, limit, offset, request.state.lang)
    return api.ok(data)


def _year_data(access, filters, limit, offset, lang) -> dict:
    view = reporting.completeness_year(access, filters, limit=limit, offset=offset)
    items = [{"unit": _unit_json(r.unit_code, r.unit_name, r.unit_kind), **r.counts.as_dict(),
              "reports": {key: {"report": c.report_id, "state": c.state, "overdue": c.overdue,
                                "deadline": c.deadline.isoformat(), "submitted_at": _iso(c.submitted_at)}
                          for key, c in r.cells.items()}} for r in view.rows]
    return {"items": items, "total": view.total, "limit": limit, "offset": offset, "as_of": view.today.isoformat(),
            "regime": _regime_json(view.regime), "year": view.year, "years": view.years,
            **view.totals.as_dict(),
            "periods": [{**_period_json(p, lang), **c.as_dict()} for p, c in view.periods]}


async def api_year(request):
    """A regime over a reporting year: each period's numbers and each unit's."""
    from web.routes import api

    filters, limit, offset = _query_filters(request, year=True)
    data = await run_db(_year_data, request.state.access, filters, limit, offset, request.state.lang)
    return api.ok(data)


def _counts_schema() -> dict:
    number = {"type": "integer"}
    rate = {"type": ["number", "null"], "description": "percent of expected, one decimal; null when none expected"}
    counts = {"type": "object", "required": [*reporting.COMPLETENESS_COUNTS, "submitted"],
              "properties": {name: number for name in (*reporting.COMPLETENESS_COUNTS, "submitted")}}
    rates = {"type": "object", "required": ["submitted", "on_time", "accepted"],
             "properties": {"submitted": rate, "on_time": rate, "accepted": rate}}
    return {"counts": counts, "rates": rates}


def _schemas() -> dict:
    """The answers' JSON Schemas, for the OpenAPI document (web.routes.api.SCHEMAS)."""
    text = {"type": "string"}
    date = {"type": "string", "format": "date"}
    counted = _counts_schema()
    regime = {"type": "object", "required": ["code", "name", "frequency"],
              "properties": {"code": text, "name": text, "frequency": {"type": ["string", "null"]}}}
    period = {"type": "object", "required": ["key", "start", "end", "frequency", "year", "index", "label", "deadline"],
              "properties": {"key": text, "start": date, "end": date, "frequency": text, "year": {"type": "integer"},
                             "index": {"type": "integer"}, "label": {"$ref": "#/components/schemas/Texts"},
                             "deadline": {"type": "object", "properties": {"first": date, "last": date}}}}
    unit = {"type": "object", "required": ["code", "name", "kind"],
            "properties": {"code": text, "name": text, "kind": {"type": "string", "enum": list(UNIT_KINDS)}}}
    state = {"type": "string", "enum": ["on_time", "late", "not_submitted", "accepted", "returned"]}
    paging = {"total": {"type": "integer"}, "limit": {"type": "integer"}, "offset": {"type": "integer"}}

    def obj(properties: dict) -> dict:
        return {"type": "object", "required": list(properties), "properties": properties}

    return {
        "CompletenessRegimePage": obj({"items": {"type": "array", "items": obj(
            {"regime": regime, "period": period, **counted})}, **paging}),
        "CompletenessPeriod": obj({
            "items": {"type": "array", "items": obj({
                "unit": unit, "report": {"type": "integer"}, "status": text, "state": state,
                "timeliness": {"type": ["string", "null"], "enum": ["on_time", "late", None]},
                "overdue": {"type": "boolean"}, "deadline": date,
                "submitted_at": {"type": ["string", "null"], "format": "date-time"}})},
            **paging, "as_of": date, "regime": regime, "period": period, **counted,
            "levels": {"type": "array", "items": obj({"kind": text, **counted})},
            "periods": {"type": "array", "items": text}}),
        "CompletenessYear": obj({
            "items": {"type": "array", "items": obj({
                "unit": unit, **counted,
                "reports": {"type": "object", "additionalProperties": obj({
                    "report": {"type": "integer"}, "state": state, "overdue": {"type": "boolean"}, "deadline": date,
                    "submitted_at": {"type": ["string", "null"], "format": "date-time"}})}})},
            **paging, "as_of": date, "regime": regime, "year": {"type": "integer"},
            "years": {"type": "array", "items": {"type": "integer"}}, **counted,
            "periods": {"type": "array", "items": {"allOf": [period, obj(counted)]}}}),
    }


API_SCHEMAS = _schemas()

ROUTES = [
    Route("/completeness", completeness_page, methods=["GET"], name="completeness"),
    Route("/completeness/export.xlsx", period_export, methods=["GET"], name="completeness_export"),
    Route("/completeness/year", year_page, methods=["GET"], name="completeness_year"),
    Route("/completeness/year/export.xlsx", year_export, methods=["GET"], name="completeness_year_export"),
    Route("/completeness/units/{unit_id:int}", unit_page, methods=["GET"], name="completeness_unit"),
]
