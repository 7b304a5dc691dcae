"""Logging in and out, the password page, the language switch, and the health check."""

from __future__ import annotations

from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from core.accounts import login as accounts
from core.db import db, run_db
from core.errors import ValidationError
from core.i18n import LANGUAGES
from core.accounts.mfa import mark_reauthenticated
from core.models import utcnow
from core.accounts.passwords import verify_password
from web.guards import public, require, safe_next
from web.middleware import cookie_header, cookie_names
from web.templating import render

import secrets
from urllib.parse import quote


@public
async def login_page(request):
    if request.state.actor is not None:
        return RedirectResponse(safe_next(request.query_params.get("next")), status_code=303)
    return await render(request, "core/login.html", {
        "next": safe_next(request.query_params.get("next"), ""),
        "expired": request.state.session_expired or request.query_params.get("expired") == "1",
        "errors": {}, "username": ""})


def _login_again(settings, next_url: str, username: str) -> dict:
    """The login page once more, keeping ``next`` and the username (never the password)."""
    return {"next": next_url, "expired": False, "username": username, "error_params": {},
            "lockout": {"threshold": settings.lockout_threshold, "minutes": settings.lockout_minutes}}


@public
async def login_submit(request):
    form = await request.form()
    username = str(form.get("username", ""))[:64]
    password = str(form.get("password", ""))
    next_url = safe_next(str(form.get("next", "")))
    settings = request.app.state.settings
    user = None
    if username and password:
        # The client address as the server sees it: X-Forwarded-For is not trusted, so behind
        # a reverse proxy every user shares the proxy's address and its rate limit (WEB-07).
        result = await run_db(accounts.login, username, password, request.client.host if request.client else None,
                              rate_per_minute=settings.login_rate_per_minute,
                              lockout_threshold=settings.lockout_threshold,
                              lockout_minutes=settings.lockout_minutes)
        if result.retry_after is not None:
            return await render(request, "core/login.html", {
                **_login_again(settings, next_url, username),
                "errors": {"form": "login.error.rate_limited"}, "error_params": {"seconds": result.retry_after}},
                status_code=429, headers={"Retry-After": str(result.retry_after)})
        user = result.user
    if user is None:
        # One message whatever was wrong (unknown, wrong password, locked, disabled):
        # never tell which accounts exist or are locked (security.md AUTH-07).
        return await render(request, "core/login.html", {
            **_login_again(settings, next_url, username),
            "errors": {"form": "login.error.invalid"}}, status_code=422)
    names = cookie_names(settings)
    # A browser that was already logged in leaves its old session behind: end it,
    # so a copy of the old cookie is worth nothing (security.md SESS-02).
    await run_db(accounts.end_session, request.cookies.get(names["session"]))
    # With 2FA on, the session waits for the code (web/routes/mfa.py) and counts as logged out until then.
    token = await run_db(accounts.start_session, user, request.client.host if request.client else None,
                         request.headers.get("user-agent"), mfa_pending=result.mfa_pending,
                         reauth_at=None if result.mfa_pending else utcnow(),
                         max_sessions=settings.max_sessions_per_person)
    if result.mfa_pending:
        next_url = "/login/verify" + (f"?next={quote(next_url, safe='/')}" if next_url != "/" else "")
    response = RedirectResponse(next_url, status_code=303)
    response.headers.append("Set-Cookie", cookie_header(names["session"], token, settings))
    # A fresh CSRF seed at login, so a token learnt before login is worth nothing after it.
    response.headers.append("Set-Cookie", cookie_header(names["csrf"], secrets.token_urlsafe(24), settings))
    request.state.session_started = True
    request.state.csrf_rotated = True
    return response


@public
async def logout(request):
    settings = request.app.state.settings
    names = cookie_names(settings)
    await run_db(accounts.logout, request.cookies.get(names["session"]))
    response = RedirectResponse("/login", status_code=303)
    response.headers.append("Set-Cookie", cookie_header(names["session"], "", settings, max_age=0))
    request.state.session_started = True
    return response


@public
async def set_language(request):
    form = await request.form()
    lang = str(form.get("lang", ""))
    next_url = safe_next(str(form.get("next", "")))
    if lang not in LANGUAGES:
        lang = request.state.lang
    if request.state.actor is not None:
        await run_db(accounts.set_language, request.state.actor, lang)
    settings = request.app.state.settings
    response = RedirectResponse(next_url, status_code=303)
    response.headers.append("Set-Cookie", cookie_header(cookie_names(settings)["lang"], lang, settings,
                                                        max_age=365 * 24 * 3600))
    return response


@require()
async def password_page(request):
    return await render(request, "core/password.html", {"errors": {}, "done": False},
                        partial="core/_password_form.html")


@require(reauth=True)  # SESS-06: with an old login, confirm (password and code) first
async def password_submit(request):
    form = await request.form()
    settings = request.app.state.settings
    try:
        # The other sessions end and the API tokens are revoked with the change; this one stays.
        await run_db(accounts.change_password, request.state.actor.id, str(form.get("current", ""))[:128],
                     str(form.get("new", "")), str(form.get("confirm", "")),
                     keep_session_id=getattr(request.state.session, "session_id", None),
                     lockout_threshold=settings.lockout_threshold, lockout_minutes=settings.lockout_minutes)
    except ValidationError as exc:
        return await render(request, "core/password.html", {"errors": exc.errors, "done": False},
                            partial="core/_password_form.html", status_code=422)
    # The current password was just checked: that counts as re-authenticating (SESS-06).
    await run_db(mark_reauthenticated, getattr(request.state.session, "session_id", None))
    return await render(request, "core/password.html", {"errors": {}, "done": True},
                        partial="core/_password_form.html")


def _ping() -> bool:
    db.execute_sql("SELECT 1").fetchone()
    return True


@public
async def healthz(request):
    try:
        await run_db(_ping)
    except Exception:  # noqa: BLE001 — the answer is the status, the details go to the log
        import logging

        logging.getLogger("baocao.web").exception("health check: database unreachable")
        return JSONResponse({"status": "error", "database": "unreachable"}, status_code=503)
    return JSONResponse({"status": "ok", "database": "ok"}, headers={"Cache-Control": "no-store"})


ROUTES = [
    Route("/login", login_page, methods=["GET"], name="login"),
    Route("/login", login_submit, methods=["POST"], name="login_submit"),
    Route("/logout", logout, methods=["POST"], name="logout"),
    Route("/lang", set_language, methods=["POST"], name="set_language"),
    Route("/account/password", password_page, methods=["GET"], name="password"),
    Route("/account/password", password_submit, methods=["POST"], name="password_submit"),
    Route("/healthz", healthz, methods=["GET"], name="healthz"),
]
