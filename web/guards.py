"""Route guards: every endpoint declares who may call it.

``require(code)`` needs a logged-in user holding ``code`` at their unit (the
plugin owning the code must be enabled for that unit); ``require()`` any
logged-in user; ``public`` nobody in particular. The mark left on the endpoint
lets a test walk every route and find one that declares nothing.

An administrator who must use two-factor authentication and has not set it up
is sent to ``/account/2fa`` from every guarded page (AUTH-08). ``reauth=True``
marks a sensitive action: a session whose last login or re-authentication is
older than ``reauth_minutes`` is sent to ``/account/confirm`` first (SESS-06).
"""

from __future__ import annotations

import functools
from urllib.parse import quote, urlsplit

from starlette.exceptions import HTTPException
from starlette.responses import RedirectResponse, Response

from core.accounts import mfa
from core.db import run_db

PUBLIC = "public"
AUTHENTICATED = "authenticated"
PASSWORD_PATH = "/account/password"
MFA_PATH = "/account/2fa"
REAUTH_PATH = "/account/confirm"


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


def _redirect(request, url: str, hx_status: int = 200) -> Response:
    if request.state.htmx:  # a bare 303 would be followed by htmx and swapped into the page
        return Response(status_code=hx_status, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)


def _mfa_exempt(path: str) -> bool:
    """Pages an administrator without 2FA may still open: setting it up, and what that needs."""
    return path in (PASSWORD_PATH, MFA_PATH, REAUTH_PATH) or path.startswith(MFA_PATH + "/")


def reauth_redirect(request) -> Response:
    """To the confirm page, then back: to this page for a GET; for a form sent (POST), to the
    page it was sent from when that is on this site, else home. The form is sent again there."""
    if request.method in ("GET", "HEAD"):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    else:
        referer = urlsplit(request.headers.get("referer", ""))
        same_origin = referer.scheme == request.url.scheme and referer.netloc == request.headers.get("host", "")
        target = safe_next(referer.path + (f"?{referer.query}" if referer.query else ""), "/") \
            if same_origin else "/"
    return _redirect(request, f"{REAUTH_PATH}?next={quote(safe_next(target), safe='/')}", hx_status=401)


def require(code: str | None = None, *, reauth: bool = False):
    """Guard an endpoint; ``code`` None means any logged-in user. ``reauth``: a sensitive
    action that needs a recent login or re-authentication (SESS-06)."""

    def decorate(endpoint):
        @functools.wraps(endpoint)
        async def guarded(request):
            actor = request.state.actor
            if actor is None:
                return login_redirect(request)
            # The confirm page too: an old login confirms before the password change (SESS-06).
            if actor.must_change_password and request.url.path not in (PASSWORD_PATH, REAUTH_PATH):
                return RedirectResponse(PASSWORD_PATH, status_code=303)
            settings = request.app.state.settings
            if (not _mfa_exempt(request.url.path)
                    and mfa.mfa_required(actor, request.state.access, settings.require_admin_mfa)
                    and not await run_db(mfa.is_enrolled, actor)):
                return _redirect(request, MFA_PATH)
            if code is not None and not request.state.access.allowed(code):
                raise HTTPException(403)
            session = getattr(request.state, "session", None)
            if reauth and not mfa.reauth_fresh(getattr(session, "reauth_at", None), settings.reauth_minutes):
                return reauth_redirect(request)
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
