"""Error pages: 401/403/404/413/500/503 as full pages or htmx fragments, never a traceback."""

from __future__ import annotations

import logging
import sqlite3

from starlette.exceptions import HTTPException
from starlette.requests import Request

from core import audit
from core.errors import BaocaoError
from core.db import run_db
from web.templating import render

log = logging.getLogger("baocao.web")
KNOWN = {400, 403, 404, 405, 413, 422, 500, 503}
# Refusals that say why (core/locale: error.reason.<reason>): a parameter that is no usable
# number, a NUL character, a JSON body too deep, a body too large, a database too busy.
REASONS = {"parameter", "id_range", "nul", "json_malformed", "json_too_deep", "json_nul", "body_too_large",
           "busy", "unstorable", "reconnecting"}
# What psycopg says when the server ended the connection (a restart, a failover) or cannot be reached:
# a 503, not a 500 — nothing is wrong with the request, and the pool reconnects on the next one.
CONNECTION_LOST = ("server closed the connection unexpectedly", "terminating connection due to administrator",
                   "the connection is closed", "the connection is lost", "Connection refused",
                   "could not connect to server", "connection failed")
RETRY_AFTER_SECONDS = 2  # a busy database (SQLite's write lock) is free again within a second or two


async def render_error(request: Request, status: int, reason: str | None = None, headers: dict | None = None,
                       **params):
    if request.url.path.startswith("/api/v1/"):
        # A refusal by a middleware (the CSRF check of a write without a token) under the API: its
        # JSON error, as the API documents every answer, never the HTML page.
        from web.routes.api import json_error

        return json_error(status, headers=headers)
    shown = status if status in KNOWN else (500 if status >= 500 else 400)
    context = {"status": status, "shown": shown, "reason": reason,
               "reason_key": f"error.reason.{reason}" if reason in REASONS else None, "reason_params": params}
    try:
        return await render(request, "core/errors/error.html", context, partial="core/_error.html",
                            status_code=status, headers=headers)
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
    if request.url.path.startswith("/api/v1/"):
        # A path under /api/v1 that no API route matched, e.g. one with a newline the mount's
        # pattern does not cross: the API's JSON error all the same, never the HTML page.
        response = await api_error(request, exc.status_code)
        if exc.headers:
            response.headers.update(exc.headers)
        return response
    if exc.status_code == 403:
        await record_denial(request)
    response = await render_error(request, exc.status_code, exc.detail if isinstance(exc.detail, str) else None,
                                  **getattr(exc, "params", {}))
    if exc.headers:
        response.headers.update(exc.headers)
    return response


async def domain_error(request: Request, exc):
    """A ``core.errors.BaocaoError`` with a ``status`` (``NotFound`` 404, ``Forbidden`` 403) leaving
    a view answers that status, so a view need not translate it: whatever the domain layer refuses
    reads the same everywhere. Under /api/v1/ the answer is the API's JSON error. Without a status
    the view should have handled it: a 500 like any other escaped exception."""
    status = getattr(exc, "status", None)
    if status is None:
        return await server_error(request, exc)
    if request.url.path.startswith("/api/v1/"):
        return await api_error(request, status)
    return await http_error(request, HTTPException(status))


async def api_error(request: Request, status: int):
    """The API's JSON error for a refusal, a 403 recorded as the HTML pages record it."""
    from web.routes.api import json_error

    if status == 403:
        await record_denial(request)
    return json_error(status)


async def plugin_error(request: Request, exc):
    if classify(exc) is not None:  # a busy database or unstorable input, not the plugin's fault
        return await server_error(request, exc)
    return await render_error(request, 500, "plugin")


def classify(exc: BaseException) -> tuple[int, str] | None:
    """The answer an exception that escaped a view deserves when it is not the server's fault:
    (503, "busy") for a database still locked after the busy wait, (503, "reconnecting") for a
    database connection the server ended (a restart), (400, reason) for input no
    database can store; None for a real failure (a 500). An exception raised ``from`` another
    (a plugin's failure wrapping the database's) is judged by its cause."""
    import peewee
    from playhouse.pool import MaxConnectionsExceeded

    seen = 0
    while exc is not None and seen < 5:
        text = str(exc)
        if isinstance(exc, (peewee.OperationalError, sqlite3.OperationalError)) and (
                "database is locked" in text or "database table is locked" in text):
            return 503, "busy"
        if isinstance(exc, MaxConnectionsExceeded):  # every pooled connection in use for the whole wait
            return 503, "busy"
        if isinstance(exc, (peewee.OperationalError, peewee.InterfaceError)) and any(
                marker in text for marker in CONNECTION_LOST):
            return 503, "reconnecting"
        if isinstance(exc, (peewee.DataError, ValueError)) and "NUL (0x00)" in text:  # PostgreSQL text
            return 400, "nul"
        if isinstance(exc, OverflowError) and "SQLite INTEGER" in text:
            return 400, "parameter"
        if isinstance(exc, peewee.DataError) and "out of range" in text:  # PostgreSQL integer/numeric
            return 400, "unstorable"
        exc, seen = exc.__cause__, seen + 1
    return None


async def server_error(request: Request, exc: Exception):
    """An exception no view handled: 503 (busy, with Retry-After) or 400 when ``classify`` knows
    it, else the 500 page. Under /api/v1/ the answer is the API's JSON error, never HTML."""
    if getattr(exc, "status", None) is not None and isinstance(exc, BaocaoError):
        return await domain_error(request, exc)  # a refusal that reached past the app's handlers
    known = classify(exc)
    api = request.url.path.startswith("/api/v1/")
    if known is None:
        log.error("unhandled error in request %s %s (request id %s)", request.method, request.url.path,
                  getattr(request.state, "request_id", "-"), exc_info=exc)
        if api:
            from web.routes.api import json_error

            return json_error(500)
        return await render_error(request, 500)
    status, reason = known
    log.warning("request %s %s refused with %s (%s): %s (request id %s)", request.method, request.url.path,
                status, reason, exc, getattr(request.state, "request_id", "-"))
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if status == 503 else None
    if api:
        from web.routes.api import json_error

        return json_error(status, "busy" if status == 503 else "bad_request", key=f"error.reason.{reason}",
                          headers=headers)
    return await render_error(request, status, reason, headers=headers)
