"""The outbox screen for system administrators (``core.outbox.admin``): /admin/outbox.

Every message the system sends to other systems (e-mail, plugins' channels; core.outbox), newest
first, filtered by channel and state, with its attempts, last error and next attempt in the
instance's time zone; "Gửi lại ngay" (retry now) and "Huỷ" (cancel), each a POST with the CSRF token,
one transaction and one audit event (core.outbox.retry_now, cancel). A message whose state no longer
allows the action (it went out meanwhile) answers 409 with the page and the reason; an unknown id is
a 404 page.
"""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.responses import RedirectResponse
from starlette.routing import Route

from core import outbox
from core.db import run_db
from core.errors import BaocaoError, Forbidden, NotFound
from web.guards import require
from web.templating import render

DONE = {"retried": "outbox.done.retried", "cancelled": "outbox.done.cancelled"}
LIMIT = 200


def _filters(params) -> dict:
    channel, state = params.get("channel", "")[:64], params.get("state", "")
    return {"channel": channel, "state": state if state in outbox.STATES else ""}


def _context(filters: dict) -> dict:
    known = outbox.channels()
    return {"messages": outbox.listing(limit=LIMIT, **filters), "counts": outbox.counts(),
            "channel_names": outbox.channel_names(), "labels": {n: c.label for n, c in known.items() if c.label},
            "states": outbox.STATES, "filters": filters, "limit": LIMIT}


async def _page(request, *, status_code=200, done=None, error=None):
    filters = _filters(request.query_params)
    context = await run_db(_context, filters)
    kept = {k: v for k, v in filters.items() if v}
    context.update(done=done, error=error, keep=("?" + urlencode(kept)) if kept else "")
    return await render(request, "core/outbox/list.html", context, status_code=status_code)


@require(outbox.PERMISSION)
async def outbox_page(request):
    return await _page(request, done=DONE.get(request.query_params.get("done", "")))


def _back(request, done: str) -> RedirectResponse:
    # Back to the list as it was filtered (the form carries the filters in its action's query).
    filters = {k: v for k, v in _filters(request.query_params).items() if v}
    query = urlencode({"done": done, **filters})
    return RedirectResponse(request.url_for("outbox").path + f"?{query}", status_code=303)


async def _act(request, action, done: str):
    try:
        await run_db(action, request.state.access, request.path_params["id"])
    except (Forbidden, NotFound):
        raise  # their own handlers: the 403 and 404 pages
    except BaocaoError as exc:
        return await _page(request, status_code=409, error={"key": exc.key, "params": exc.params})
    return _back(request, done)


@require(outbox.PERMISSION)
async def retry(request):
    return await _act(request, outbox.retry_now, "retried")


@require(outbox.PERMISSION)
async def cancel(request):
    return await _act(request, outbox.cancel, "cancelled")


ROUTES = [
    Route("/admin/outbox", outbox_page, methods=["GET"], name="outbox"),
    Route("/admin/outbox/{id:int}/retry", retry, methods=["POST"], name="outbox_retry"),
    Route("/admin/outbox/{id:int}/cancel", cancel, methods=["POST"], name="outbox_cancel"),
]
