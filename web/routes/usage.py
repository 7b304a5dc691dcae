"""The usage report screen (Điều 9.3c) for unit administrators and the operator: /admin/usage.

A plain GET form chooses the last month (default: last month) and how many months end with it (at
most 12); ``unit`` narrows the report to one unit's subtree (a unit the reader does not administer,
or no unit at all, is a 404). The figures come from ``core.usage`` (a handful of grouped queries per
page); the table of units is paged, the totals cover every unit. The same report downloads as Excel
(one sheet per month, a summary by level) and as CSV. With htmx the form and the page links swap
only the results (``#core-usage-results``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from urllib.parse import urlencode

from starlette.responses import Response
from starlette.routing import Route

from core import clock, usage
from core.db import run_db
from core.errors import NotFound
from core.models import utcnow
from web.background import export as background_export
from web.guards import require
from web.params import parse_id, parse_int
from web.templating import render

PER_PAGE = 200
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@dataclass
class Choice:
    last: usage.Month
    count: int
    unit_id: int | None
    page: int
    values: dict[str, str]  # what the form shows again
    errors: dict[str, str] = field(default_factory=dict)  # field → message key

    def query(self, **extra) -> str:
        kept = {"month": self.last.key, "months": str(self.count)}
        if self.unit_id is not None:
            kept["unit"] = str(self.unit_id)
        return "?" + urlencode({**kept, **extra})


def parse(params) -> Choice:
    """The form's values, checked: a bad month is said so (never silently replaced by another);
    a unit that is not an id is answered like a unit that does not exist."""
    default = usage.last_month()
    this_month = usage.Month.of(clock.today())
    errors, values = {}, {}
    raw_month = str(params.get("month") or "").strip()[:20]
    last = default
    if raw_month:
        found = usage.parse_month(raw_month)
        if found is None:
            errors["month"] = "usage.error.month"
        elif found > this_month:
            errors["month"] = "usage.error.future"
        else:
            last = found
    values["month"] = last.key if not errors.get("month") else raw_month
    raw_count = str(params.get("months") or "").strip()[:5]
    count = 1
    if raw_count:
        count = parse_int(raw_count, minimum=1, maximum=usage.MAX_MONTHS) or 0
        if not count:
            errors["months"], count = "usage.error.months", 1
    values["months"] = str(count)
    unit_id = None
    raw_unit = str(params.get("unit") or "").strip()
    if raw_unit:
        unit_id = parse_id(raw_unit)
        if unit_id is None:
            raise NotFound()
    page = parse_int(str(params.get("page") or "1"), maximum=1_000_000) or 1
    return Choice(last, count, unit_id, page, values, errors)


def _administers(access, unit_id: int) -> bool:
    try:
        usage.scope_roots(access, unit_id)
    except NotFound:
        return False
    return True


def _screen(access, params, lang: str, path: str) -> dict:
    choice = parse(params)
    context = {"values": choice.values, "errors": choice.errors, "base_path": path,
               "max_months": usage.MAX_MONTHS, "report": None}
    if choice.errors:
        return context
    report = usage.compute(access, choice.last, choice.count, unit_id=choice.unit_id)
    pages = max(1, math.ceil(len(report.units) / PER_PAGE))
    page = min(choice.page, pages)
    parents = {row.unit.parent_id for row in report.units}
    up, up_label = None, None
    if report.root is not None:
        # Up to the parent when the reader administers it, else back to the reader's whole scope.
        parent = report.root.parent_id
        if parent is not None and _administers(access, parent):
            up, up_label = f"{path}{choice.query(unit=parent)}", "usage.up"
        else:
            up, up_label = f"{path}?{urlencode({'month': choice.last.key, 'months': choice.count})}", "usage.up_all"

    def href(number: int) -> str:
        return f"{path}{choice.query(page=number)}"

    context.update(
        report=report, page=page, pages=pages,
        rows=report.units[(page - 1) * PER_PAGE: page * PER_PAGE],
        drill={uid for uid in parents if uid is not None},
        drill_query={"month": choice.last.key, "months": choice.count},
        scope_label=usage.scope_label(report, lang), range_label=usage.range_label(report, lang),
        kind_labels={k.kind: usage.kind_label(k.kind, lang) for k in report.by_kind},
        month_labels=[m.label(lang) for m in report.months],
        prev_href=href(page - 1) if page > 1 else None, next_href=href(page + 1) if page < pages else None,
        up_href=up, up_label=up_label, query=choice.query(), zone=usage.zone_name(),
    )
    return context


@require(usage.PERMISSION)
async def usage_page(request):
    path = request.app.url_path_for("usage")
    context = await run_db(_screen, request.state.access, request.query_params, request.state.lang, path)
    context["export_xlsx"] = request.app.url_path_for("usage_export")
    context["export_csv"] = request.app.url_path_for("usage_export_csv")
    return await render(request, "core/usage/page.html", context, partial="core/usage/_results.html",
                        status_code=422 if context["errors"] else 200)


def _export(access, params, lang: str, kind: str):
    choice = parse(params)
    if choice.errors:
        return None, None
    report = usage.compute(access, choice.last, choice.count, unit_id=choice.unit_id)
    if kind == "csv":
        return usage.csv_bytes(report, lang), usage.filename(report, "csv")
    actor = access.actor
    content = usage.workbook(report, lang, scope=usage.scope_label(report, lang),
                             by=f"{actor.full_name} ({actor.username})", now=utcnow())
    return content, usage.filename(report, "xlsx")


async def _download(request, kind: str, media_type: str):
    # A year over every unit of a province takes a while: past a second it is a job whose page
    # offers the file when it is ready (web.background).
    access, params, lang = request.state.access, request.query_params, request.state.lang
    query = f"?{request.url.query}" if request.url.query else ""
    return await background_export(
        request, kind=f"usage.export.{kind}", title="background.title.usage_export",
        build=lambda: _export(access, params, lang, kind), media_type=media_type,
        answer=lambda content, name: Response(content, media_type=media_type,
                                              headers={"Content-Disposition": f'attachment; filename="{name}"'}),
        back_url=request.app.url_path_for("usage") + query,
        refused=lambda: usage_page(request))  # the same 422 and message as the screen


@require(usage.PERMISSION)
async def usage_export(request):
    return await _download(request, "xlsx", XLSX)


@require(usage.PERMISSION)
async def usage_export_csv(request):
    return await _download(request, "csv", "text/csv; charset=utf-8")


ROUTES = [
    Route("/admin/usage", usage_page, methods=["GET"], name="usage"),
    Route("/admin/usage/export.xlsx", usage_export, methods=["GET"], name="usage_export"),
    Route("/admin/usage/export.csv", usage_export_csv, methods=["GET"], name="usage_export_csv"),
]
