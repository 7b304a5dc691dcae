"""The screens of consolidated reports: the periods a unit received reports for (with the button
that opens its consolidated report), the consolidation page of a consolidated report (its sources,
the refresh button, a read-only grid where every consolidated cell links to its drill-down), and
one cell's drill-down (each unit's figure, the rule, the result, who has not sent yet).

Every decision is ``core.reporting.consolidation``'s. The buttons are plain forms that redirect (303) on
success, so they work without JavaScript; a refusal answers 422 with the page and the message. The
cell drill-down is a page of its own, and an htmx partial in the panel beside the grid. The report
entry page shows ``_banner.html`` for a consolidated report (``banner_context``).
"""

from __future__ import annotations

from starlette.responses import RedirectResponse
from starlette.routing import Route

from core.regimes import regimes as rg
from core.db import run_db
from core.errors import BaocaoError, Forbidden, NotFound
from core.reporting import facade as reporting
from web.guards import require
from web.params import parse_id
from web.templating import render

DONE = {"opened": "consolidation.opened.done", "refreshed": "consolidation.refresh.done"}


def _int(value) -> int | None:
    return parse_id(str(value or "").strip())


_MARK = 987_654_321_012  # a value no path holds: where each link's own value goes


def url_maker(request, name: str, param: str, **params):
    """``url_for(name, **params, <param>=value)`` as a function of ``value``, the route looked up
    once. The grid of a consolidation links each of its hundreds of cells (and each source its
    report), and Starlette finds a route by name by trying every route in turn: two searches per
    cell cost the page most of its time. The same URLs: the path's converter writes the value as
    it is (a number, a cell key), so it goes where the mark was."""
    prefix, _, suffix = str(request.app.url_path_for(name, **params, **{param: _MARK})).partition(str(_MARK))
    return lambda value: f"{prefix}{value}{suffix}"


def banner_context(access, report, *, received: list | None = None, used: dict | None = None) -> dict:
    """What the entry page's banner needs for a consolidated report (nothing for a unit's report).
    ``received``: the reports its unit received, ``used``: the source versions the last refresh
    counted, when the caller read them already (each is read once per page)."""
    if report.kind != reporting.CONSOLIDATED_KIND:
        return {}
    last = reporting.last_refresh(report.id)
    used = reporting.consolidation_recorded(report.id) if used is None else used
    # Judged by the rule the last refresh used, as consolidation_changes would find it itself.
    changes = reporting.consolidation_changes(report, include_submitted=bool(last and last.include_submitted),
                                              received=received, used=used)
    return {"consolidation": {"changes": changes, "last": last, "count": len(used),
                              "can_refresh": report.status in reporting.EDITABLE and reporting.can_fill(access,
                                                                                                        report)}}


# -- the periods to consolidate ---------------------------------------------------------------

def _list_context(access, regime: str, period: str, settings) -> dict:
    try:
        rows = reporting.received_periods(access, regime_code=regime, period=period)
    except BaocaoError:
        rows = []
    return {"rows": rows, "status_labels": reporting.STATUS_LABELS, "include_submitted": settings.consolidate_submitted}


async def _list_page(request, *, error=None, status_code: int = 200):
    q = request.query_params
    context = await run_db(_list_context, request.state.access, str(q.get("regime", ""))[:40],
                           str(q.get("period", ""))[:30], request.app.state.settings)
    context["error"] = error
    return await render(request, "core/consolidation/list.html", context, status_code=status_code)


@require()
async def period_list(request):
    return await _list_page(request)


@require()
async def open_report(request):
    form = await request.form()
    regime_id, unit_id = _int(form.get("regime")), _int(form.get("unit"))
    if regime_id is None:
        raise NotFound()
    settings = request.app.state.settings
    try:
        report = await run_db(reporting.open_consolidated, request.state.access, regime_id, str(form.get("period",
                                                                                                         ""))[:30],
                              unit_id=unit_id, include_submitted=settings.consolidate_submitted,
                              calendar=rg.work_calendar(settings))
    except (NotFound, Forbidden):
        raise
    except BaocaoError as exc:
        return await _list_page(request, error=exc, status_code=422)
    return RedirectResponse(f"/reports/{report.id}/consolidation?done=opened", status_code=303)


# -- a consolidated report's page -------------------------------------------------------------

def _page_context(access, report_id: int) -> dict:
    report = reporting.get_consolidated(access, report_id)
    sheet = reporting.load_sheet(access, report.id, report=report)
    used = reporting.consolidation_recorded(report.id)
    counted, others = reporting.sources_overview(access, report, used=used)
    received = [s.report for s in counted + others]  # every report received: the banner's too, read once
    return {"report": report, "sheet": sheet, "counted": counted, "others": others,
            "cells": reporting.aggregated_cells(sheet.form,
                                                report.period_index), "status_labels": reporting.STATUS_LABELS,
            **banner_context(access, report, received=received, used=used)}


async def _page(request, *, error=None, status_code: int = 200):
    context = await run_db(_page_context, request.state.access, request.path_params["id"])
    context.update(error=error, notice=DONE.get(request.query_params.get("done", "")),
                   cell_url=url_maker(request, "consolidation_cell", "cell", id=context["report"].id),
                   report_url=url_maker(request, "report_entry", "id"))
    return await render(request, "core/consolidation/page.html", context, status_code=status_code)


@require()
async def consolidation_page(request):
    return await _page(request)


@require()
async def refresh(request):
    report_id = request.path_params["id"]
    settings = request.app.state.settings
    try:
        await run_db(reporting.refresh_consolidated, request.state.access, report_id,
                     include_submitted=settings.consolidate_submitted)
    except (NotFound, Forbidden):
        raise
    except BaocaoError as exc:
        return await _page(request, error=exc, status_code=422)
    return RedirectResponse(f"/reports/{report_id}/consolidation?done=refreshed", status_code=303)


# -- one cell ---------------------------------------------------------------------------------

def _cell_context(access, report_id: int, cell: str) -> dict:
    row, column = reporting.parse_cell(cell)
    detail = reporting.cell_detail(access, report_id, row, column)
    return {"report": detail.report, "detail": detail, "status_labels": reporting.STATUS_LABELS}


@require()
async def cell_page(request):
    context = await run_db(_cell_context, request.state.access, request.path_params["id"],
                           request.path_params["cell"][:90])
    context["report_url"] = url_maker(request, "report_entry", "id")
    return await render(request, "core/consolidation/cell.html", context, partial="core/consolidation/_cell.html")


ROUTES = [
    Route("/consolidation", period_list, methods=["GET"], name="consolidation"),
    Route("/consolidation/open", open_report, methods=["POST"], name="consolidation_open"),
    Route("/reports/{id:int}/consolidation", consolidation_page, methods=["GET"], name="consolidation_page"),
    Route("/reports/{id:int}/consolidation/refresh", refresh, methods=["POST"], name="consolidation_refresh"),
    Route("/reports/{id:int}/consolidation/{cell}", cell_page, methods=["GET"], name="consolidation_cell"),
]
