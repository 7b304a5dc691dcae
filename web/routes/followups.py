"""Values marked for follow-up ("Số liệu cần theo dõi", issue 14 item 9): the list a receiver keeps
until each value is cleared, as DHIS2's follow-up list.

``/followups``: the open follow-ups of the reports the person receives (``core.report.receive``),
newest first, a page at a time; ``?state=cleared`` the cleared ones with who cleared them and why.
Each row links to its report's review page at the cell. ``POST /followups/<id>/clear`` clears one,
with an optional note, in one transaction with its audit event; a follow-up of a report one does
not receive is a 404 (it does not exist for them), one cleared meanwhile by a colleague is a 409
with the list and the reason. Values are marked on the review page (``web.routes.report_review``).
"""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.responses import RedirectResponse
from starlette.routing import Route

from core.db import run_db
from core.errors import BaocaoError, Forbidden, NotFound
from core.reporting import facade as reporting
from web.guards import require
from web.params import parse_int
from web.templating import render

RECEIVE = "core.report.receive"


def _filters(params) -> dict:
    state = str(params.get("state", "") or "")
    return {"state": state if state in reporting.FOLLOWUP_STATES else "open",
            "page": parse_int(str(params.get("page", "1") or "1")[:10], maximum=99_999) or 1}


async def _page(request, *, status_code: int = 200, done: str | None = None, error=None):
    filters = _filters(request.query_params)
    listing = await run_db(reporting.followup_list, request.state.access, state=filters["state"],
                           page=filters["page"])

    def link(**changes) -> str:
        values = {"state": listing.state if listing.state != "open" else "", "page": ""}
        values.update({k: str(v) for k, v in changes.items()})
        values["page"] = values["page"] if values["page"] not in ("", "1") else ""
        kept = {k: v for k, v in values.items() if v}
        return request.url_for("followups").path + (("?" + urlencode(kept)) if kept else "")

    # The clear forms carry the list's state and page, so the answer comes back to the same view.
    kept = {"state": listing.state if listing.state != "open" else "",
            "page": str(listing.page) if listing.page > 1 else ""}
    kept = {k: v for k, v in kept.items() if v}
    return await render(request, "core/followups/list.html",
                        {"listing": listing, "link": link, "done": done, "error": error,
                         "keep_query": ("?" + urlencode(kept)) if kept else "", "max_note": reporting.FOLLOWUP_MAX_NOTE},
                        status_code=status_code)


@require(RECEIVE)
async def followups_page(request):
    done = "quality.done.cleared" if request.query_params.get("done") == "cleared" else None
    return await _page(request, done=done)


@require(RECEIVE)
async def clear(request):
    form = await request.form()
    note = str(form.get("note", ""))[:reporting.FOLLOWUP_MAX_NOTE + 100]
    try:
        followup = await run_db(reporting.clear_followup, request.state.access, request.path_params["id"], note)
    except (NotFound, Forbidden):
        raise  # their own handlers: the 403 and 404 pages
    except BaocaoError as exc:
        return await _page(request, status_code=409, error=exc)
    if form.get("back") == "review":
        return RedirectResponse(f"/reports/{followup.report_id}/review?done=cleared#review-quality", status_code=303)
    filters = _filters(request.query_params)
    query = {"done": "cleared", "state": filters["state"] if filters["state"] != "open" else "",
             "page": str(filters["page"]) if filters["page"] > 1 else ""}
    return RedirectResponse(request.url_for("followups").path + "?" + urlencode({k: v for k, v in query.items() if v}),
                            status_code=303)


ROUTES = [
    Route("/followups", followups_page, methods=["GET"], name="followups"),
    Route("/followups/{id:int}/clear", clear, methods=["POST"], name="followup_clear"),
]
