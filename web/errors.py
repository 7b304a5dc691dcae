"""Error pages: 401/403/404/413/500/503 as full pages or htmx fragments, never a traceback."""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request

from core import audit
from core.db import run_db
from web.templating import render

log = logging.getLogger("baocao.web")
KNOWN = {400, 403, 404, 405, 413, 422, 500, 503}


async def render_error(request: Request, status: int, reason: str | None = None):
    shown = status if status in KNOWN else (500 if status >= 500 else 400)
    context = {"status": status, "shown": shown, "reason": reason}
    try:
        return await render(request, "core/errors/error.html", context, partial="core/_error.html",
                            status_code=status)
    except Exception:  # noqa: BLE001 — the error page itself must never fail
        log.exception("error page failed")
        from starlette.responses import PlainTextResponse

        return PlainTextResponse(f"{status}", status_code=status)


async def record_denial(request: Request) -> None:
    """A refused request of a logged-in user goes into the audit trail (security.md ACL-05).
    The error page is shown whatever happens here."""
    actor = getattr(request.state, "actor", None)
    if actor is None:
        return
    try:
        # The path only: a query string may carry anything the user typed.
        await run_db(audit.record, "access.denied", actor=actor, result="denied", object_type="route",
                     object_id=request.url.path[:64], details={"method": request.method,
                                                               "path": request.url.path[:300]})
    except Exception:  # noqa: BLE001 — an audit failure must not break the error page
        log.exception("could not record a denied request")


async def http_error(request: Request, exc: HTTPException):
    if exc.status_code == 403:
        await record_denial(request)
    response = await render_error(request, exc.status_code, exc.detail if isinstance(exc.detail, str) else None)
    if exc.headers:
        response.headers.update(exc.headers)
    return response


async def domain_error(request: Request, exc):
    """A ``core.errors.NotFound`` or ``Forbidden`` leaving a view answers 404 or 403, so a view
    need not translate them itself: whatever the domain layer refuses reads the same everywhere."""
    from core.errors import NotFound

    return await http_error(request, HTTPException(404 if isinstance(exc, NotFound) else 403))


async def plugin_error(request: Request, exc):
    return await render_error(request, 500, "plugin")


async def server_error(request: Request, exc: Exception):
    log.error("unhandled error in request %s %s (request id %s)", request.method, request.url.path,
              getattr(request.state, "request_id", "-"), exc_info=exc)
    return await render_error(request, 500)
