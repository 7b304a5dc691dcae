"""The reports a user's units must send or receive, soonest deadline first (issue 6 builds the
workflow on it). Which reports show is decided in ``core.reporting.opening.reports_for`` from the grants:
``core.report.submit`` for sending, ``core.report.receive`` for receiving."""

from __future__ import annotations

from starlette.routing import Route

from core import clock
from core.db import run_db
from core.reporting import facade as reporting
from web.guards import require
from web.templating import render

ROLES = ("send", "receive")


def _context(access, role: str) -> dict:
    rows = reporting.reports_for(access, role=role)
    return {"rows": rows, "role_filter": role, "today": clock.today(), "status_labels": reporting.STATUS_LABELS}


@require()
async def report_list(request):
    role = request.query_params.get("role") if request.query_params.get("role") in ROLES else ""
    context = await run_db(_context, request.state.access, role)
    return await render(request, "core/reports/list.html", context, partial="core/reports/_table.html")


ROUTES = [Route("/reports", report_list, methods=["GET"], name="reports")]
