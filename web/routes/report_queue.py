"""The receiving unit's queue ``/inbox`` ("Chờ tôi xử lý") and its bulk accept.

The filters are a GET form, so a filtered view is a link one can keep or send, and the page works
without JavaScript; with htmx a filter change swaps only the table. The bulk accept posts the
ticked reports with the filters as hidden fields and answers with the same view and the outcome:
how many were accepted, and each one that was not, by unit, with why. Which reports show and
what accepting does are ``core.reporting.queue``'s.
"""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.routing import Route

from core import clock
from core.db import run_db
from core.errors import BaocaoError
from core.reporting import facade as reporting
from web.guards import require
from web.templating import render


def queue_context(access, params, *, result: reporting.BulkResult | None = None,
                  error: BaocaoError | None = None) -> dict:
    filters = reporting.QueueFilters.from_params(params)
    q = reporting.review_queue(access, filters)

    def link(**changes) -> str:
        changes.setdefault("page", "")
        return "/inbox?" + urlencode(filters.params(**changes))

    filtered = bool(filters.regime or filters.period or filters.unit or filters.late)
    return {"q": q, "f": filters, "link": link, "statuses": reporting.STATUSES,
            "status_labels": reporting.STATUS_LABELS,
            "today": clock.today(), "filtered": filtered, "result": result, "bulk_error": error,
            "max_bulk": reporting.MAX_BULK}


async def _render(request, context: dict, status_code: int = 200):
    return await render(request, "core/report_queue/page.html", context, partial="core/report_queue/_table.html",
                        status_code=status_code)


@require()
async def queue_page(request):
    context = await run_db(queue_context, request.state.access, request.query_params)
    return await _render(request, context)


@require()
async def bulk_accept(request):
    access = request.state.access
    form = await request.form()
    try:
        ids = reporting.selected_ids(form.getlist("report"))
    except BaocaoError as exc:
        context = await run_db(queue_context, access, form, error=exc)
        return await _render(request, context, status_code=422)
    result = await run_db(reporting.bulk_accept, access, ids)
    context = await run_db(queue_context, access, form, result=result)
    return await _render(request, context)


ROUTES = [
    Route("/inbox", queue_page, methods=["GET"], name="report_queue"),
    Route("/inbox/accept", bulk_accept, methods=["POST"], name="report_queue_accept"),
]
