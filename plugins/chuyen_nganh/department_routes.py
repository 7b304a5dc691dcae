"""The sector's pages at /p/chuyen_nganh/sector: the decided delegations one may read (straight to
the page when there is one), and one sector's page (department.py) with links into the core's own
screens, filtered for each regime and its period through their query parameters."""

from __future__ import annotations

from urllib.parse import urlencode

from core.api import run_db
from web.api import RedirectResponse, Route, render, require

from . import department as dept
from .rights import VIEW

FREQUENCIES = ("monthly", "quarterly", "half_year", "nine_months", "annual")  # the figures explorer's


def _core_link(request, name: str, path_params: dict | None = None, **query) -> str:
    path = str(request.app.url_path_for(name, **(path_params or {})))
    pairs = [(k, v) for k, values in query.items() for v in (values if isinstance(values, (list, tuple)) else [values])
             if v not in ("", None)]
    return path + ("?" + urlencode(pairs) if pairs else "")


def _links(request, row, department) -> dict:
    """Where each part of a regime's row leads: the core's screens, filtered for its code and period."""
    r, period = row.regime, row.period
    links = {"regime": _core_link(request, "regime_detail", {"id": r.id})}
    if r.draft_id:
        links["draft"] = _core_link(request, "regime_detail", {"id": r.draft_id})
    if period is not None:
        chosen = {"regime": r.code, "period": period.key}
        links.update(
            queue=_core_link(request, "report_queue", **chosen),
            completeness=_core_link(request, "completeness", **chosen),
            reports=_core_link(request, "regime_reports", {"id": r.id}, period=period.key),
            consolidation=_core_link(request, "consolidation", **chosen),
            # Each number opens the completeness table filtered to the units it counts.
            **{f"state_{state}": _core_link(request, "completeness", **chosen, status=state)
               for state in ("on_time", "late", "not_submitted", "overdue", "accepted", "returned")})
    if department is not None:
        links["dashboard"] = _core_link(request, "dashboard", unit=department.code)
        if r.indicator_codes and r.frequency in FREQUENCIES:
            links["figures"] = _core_link(request, "figures_explorer", indicator=list(r.indicator_codes),
                                          unit=department.code, frequency=r.frequency)
    return links


def _badges() -> dict:
    from .routes import BADGES  # here: routes.py imports this module's ROUTES

    return BADGES


@require(VIEW)
async def sectors(request):
    rows = await run_db(dept.sectors, request.state.access)
    if len(rows) == 1:
        return RedirectResponse(request.url_for("chuyen_nganh:sector", id=rows[0]["d"].id).path, status_code=303)
    return await render(request, "chuyen_nganh/department_index.html", {"rows": rows, "badges": _badges()})


@require(VIEW)
async def sector(request):
    context = await run_db(dept.sector_view, request.state.access, request.path_params["id"])
    department = context["department"]
    context["links"] = {row.regime.code: _links(request, row, department)
                        for row in context["issued"] + context["drafts"]}
    context["new_regime"] = _core_link(request, "regime_new") if context["can_draft"] else ""
    context["badges"] = _badges()
    return await render(request, "chuyen_nganh/department.html", context)


ROUTES = [
    Route("/sector", sectors, methods=["GET"], name="sectors"),
    Route("/sector/{id:int}", sector, methods=["GET"], name="sector"),
]
