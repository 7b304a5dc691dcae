"""The system administrator's screen to rebuild live consolidation (``core.reporting.repair``):
the regimes and periods sent up a chain, a button per period and one for everything.

The rebuild is a background job (``web.background``): a province's year takes minutes, and the
administrator follows it on its own page, or leaves and finds it again under "Việc chạy nền".
A plain form: it works without JavaScript.
"""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.responses import RedirectResponse
from starlette.routing import Route

from core import background
from core.db import run_db
from core.errors import ValidationError
from core.reporting import facade as reporting
from web.background import follow
from web.guards import require
from web.templating import render


async def _page(request, *, errors=None, status_code: int = 200):
    rows = await run_db(reporting.rebuild_choices)
    q = request.query_params
    done = None
    if "periods" in q:
        done = {key: q.get(key, "0")[:9] for key in ("periods", "scopes", "members")}
    return await render(request, "core/repair/page.html", {"rows": rows, "done": done, "errors": errors or {}},
                        status_code=status_code)


@require(reporting.REPAIR_PERMISSION)
async def repair_page(request):
    return await _page(request)


@require(reporting.REPAIR_PERMISSION)
async def rebuild(request):
    form = await request.form()
    regime_code, period = str(form.get("regime", "") or "")[:40], str(form.get("period", "") or "")[:25]
    access = request.state.access
    page = request.app.url_path_for("consolidation_repair")

    def work(progress) -> background.Outcome:
        progress.phase("background.phase.rebuilding")
        result = reporting.rebuild_consolidation(access, regime_code=regime_code, period=period, progress=progress)
        counts = {"periods": result.periods, "scopes": result.scopes, "members": result.members}
        return background.Outcome(url=f"{page}?{urlencode(counts)}", summary="background.summary.rebuild",
                                  summary_params=counts)

    try:
        return await follow(request, kind="consolidation.rebuild", title="background.title.rebuild", work=work,
                            answer=lambda outcome: RedirectResponse(outcome.url, status_code=303), back_url=page)
    except ValidationError as exc:
        return await _page(request, errors=exc.errors, status_code=422)


ROUTES = [
    Route("/admin/consolidation", repair_page, methods=["GET"], name="consolidation_repair"),
    Route("/admin/consolidation/rebuild", rebuild, methods=["POST"], name="consolidation_rebuild"),
]
