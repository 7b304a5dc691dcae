"""Route guards: every endpoint declares who may call it.

``require(code)`` needs a logged-in user holding ``code`` at their unit (the
plugin owning the code must be enabled for that unit); ``require()`` any
logged-in user; ``public`` nobody in particular. The mark left on the endpoint
lets a test walk every route and find one that declares nothing.
"""

from __future__ import annotations

import functools
from urllib.parse import quote

from starlette.exceptions import HTTPException
from starlette.responses import RedirectResponse, Response


PUBLIC = "public"
AUTHENTICATED = "authenticated"
PASSWORD_PATH = "/account/password"


def _mark(fn, value):
    fn.__baocao_permission__ = value
    return fn


def public(fn):
    return _mark(fn, PUBLIC)


def login_redirect(request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    url = f"/login?next={quote(target, safe='/')}"
    if getattr(request.state, "session_expired", False):
        # The session row is gone by the time the login page loads: say so in the URL.
        url += "&expired=1"
    if request.state.htmx:
        return Response(status_code=401, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)


def require(code: str | None = None):
    """Guard an endpoint; ``code`` None means any logged-in user."""

    def decorate(endpoint):
        @functools.wraps(endpoint)
        async def guarded(request):
            actor = request.state.actor
            if actor is None:
                return login_redirect(request)
            if actor.must_change_password and request.url.path != PASSWORD_PATH:
                return RedirectResponse(PASSWORD_PATH, status_code=303)
            if code is not None and not request.state.access.allowed(code):
                raise HTTPException(403)
            return await endpoint(request)

        return _mark(guarded, code or AUTHENTICATED)

    return decorate


def safe_next(value: str | None, default: str = "/") -> str:
    """A same-origin path for ``next=``: refuses //host, /\\host, schemes and control characters."""
    if not value or not value.startswith("/") or value.startswith("//") or value.startswith("/\\"):
        return default
    if any(ord(c) < 32 or c == "\\" for c in value):
        return default
    return value
