"""Per-caller budgets on the API and the exports (security.md API-04): a pure ASGI middleware
inside ``RequestContextMiddleware``, whose state says who is asking.

Two buckets, each a number of requests per caller and minute (``core.rate_limits``):

- "api": every path under ``/api/`` (the plugins' ``/api/v1/p/…`` too), setting
  ``api_requests_per_minute``;
- "export": the routes whose name ends in ``_export`` or ``_export_csv``, the core's and the
  plugins', setting ``exports_per_minute``.

The caller is the API token (its SHA-256: no second look-up of the token), else the person logged
in, else the client address. Past the budget: 429 with ``Retry-After``, the API's JSON error under
``/api/``, the error page in the person's language elsewhere. Nothing else is counted: pages,
``/healthz``, ``/metrics``, ``/static``.
"""

from __future__ import annotations

import hashlib
import logging
import re

import peewee
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.routing import Mount, compile_path

from core import rate_limits
from core.db import run_db
from web.templating import render

log = logging.getLogger("baocao.rate_limits")

API_PATHS = "/api/"
EXPORT_NAME = re.compile(r"_export(_csv)?\Z")


def export_patterns(routes, prefix: str = "") -> list[re.Pattern]:
    """The path patterns of the export routes, mounts' routes included (a plugin's under
    ``/p/<name>``), collected once when the application is built."""
    found = []
    for route in routes:
        if isinstance(route, Mount):
            found += export_patterns(route.routes or [], prefix + route.path)
        elif EXPORT_NAME.search(getattr(route, "name", None) or ""):
            found.append(compile_path(prefix + route.path)[0])
    return found


def caller_of(scope) -> str:
    """Whose budget a request spends: the token, the person, or the client address."""
    state = scope.get("state", {})
    if state.get("api_bearer"):
        from web.routes.api import bearer_token

        token = bearer_token(Headers(scope=scope)) or ""
        return "t:" + hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()
    actor = state.get("actor")
    if actor is not None:
        return f"u:{actor.id}"
    return "a:" + (scope.get("client") or ("unknown",))[0][:64]


class RateLimits:
    """Count each API or export request against its caller's budget; refuse past it."""

    def __init__(self, app, settings, routes):
        self.app = app
        self.limits = {"api": settings.api_requests_per_minute, "export": settings.exports_per_minute}
        self.exports = tuple(export_patterns(routes))

    def bucket(self, path: str) -> str | None:
        if path.startswith(API_PATHS):
            return "api"
        if any(pattern.match(path) for pattern in self.exports):
            return "export"
        return None

    async def __call__(self, scope, receive, send):
        bucket = self.bucket(scope["path"]) if scope["type"] == "http" else None
        limit = self.limits[bucket] if bucket else 0
        if not limit:
            return await self.app(scope, receive, send)
        try:
            allowed, retry_after = await run_db(rate_limits.spend, bucket, caller_of(scope), limit)
        except peewee.OperationalError as exc:
            # A database too busy to count (SQLite's write lock) does not refuse a read it may serve.
            log.warning("%s request not counted: %s", bucket, exc)
            allowed = True
        if allowed:
            return await self.app(scope, receive, send)
        headers = {"Retry-After": str(retry_after)}
        if bucket == "api":
            from web.routes.api import json_error

            response = json_error(429, "rate_limited", key="ratelimit.reason.api", headers=headers, limit=limit,
                                  seconds=retry_after)
        else:
            # The error page of the other refusals (web.errors.render_error), with 429's own title.
            response = await render(Request(scope, receive), "core/errors/error.html", {
                "status": 429, "shown": 429, "reason": "rate_limited", "reason_key": "ratelimit.reason.export",
                "reason_params": {"limit": limit, "seconds": retry_after}},
                partial="core/_error.html", status_code=429, headers=headers)
        await response(scope, receive, send)
