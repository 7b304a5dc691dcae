"""Two-factor authentication screens (security.md AUTH-08) and re-authentication (SESS-06).

* ``/login/verify``: the second step of a login. The session made when the password
  was right is *pending*: the request context treats its user as logged out
  everywhere but here. A right code ends it and starts a new session (a new
  token, SESS-02); a wrong one counts towards the account lockout.
* ``/account/2fa``: turn 2FA on (QR code, secret, a first code), see how many
  recovery codes are left, make new ones, turn it off (not when it is required).
* ``/account/confirm``: the password again (and a code when 2FA is on) before a
  sensitive action; then back to where the user was.

Recovery codes are shown once, in the answer to the request that made them.
"""

from __future__ import annotations

import secrets
from starlette.responses import RedirectResponse
from starlette.routing import Route

from core.accounts import login as accounts
from core.accounts import mfa
from core.db import run_db
from core.errors import ValidationError
from core.models import utcnow
from web.guards import public, require, safe_next
from web.middleware import cookie_header, cookie_names
from web.templating import render

CODE_MAX = 32  # a 6-digit code or a recovery code, with the spaces and dashes people type
DONE = {"disabled": "mfa.done.disabled"}


def _client(request) -> str | None:
    return request.client.host if request.client else None


def _lockout(settings) -> dict:
    return {"threshold": settings.lockout_threshold, "minutes": settings.lockout_minutes}


# -- the second step of a login ---------------------------------------------------------------

def _verify_context(request, next_url: str, error: str | None = None) -> dict:
    return {"next": next_url, "errors": {"code": error} if error else {},
            "lockout": _lockout(request.app.state.settings)}


@public
async def login_verify(request):
    next_url = safe_next(request.query_params.get("next"), "")
    if request.state.actor is not None:
        return RedirectResponse(next_url or "/", status_code=303)
    if request.state.mfa_user is None:
        return RedirectResponse("/login" + ("?expired=1" if request.state.session_expired else ""), status_code=303)
    return await render(request, "core/login_verify.html", _verify_context(request, next_url))


@public
async def login_verify_submit(request):
    form = await request.form()
    next_url = safe_next(str(form.get("next", "")), "")
    user = request.state.mfa_user
    if user is None:  # no pending session (timed out, or never logged in)
        return RedirectResponse("/login" + ("?expired=1" if request.state.session_expired else ""), status_code=303)
    settings = request.app.state.settings
    method = await run_db(mfa.complete_login, user.id, str(form.get("code", ""))[:CODE_MAX], settings.secret_key,
                          lockout_threshold=settings.lockout_threshold, lockout_minutes=settings.lockout_minutes)
    if method is None:
        return await render(request, "core/login_verify.html",
                            _verify_context(request, next_url, "mfa.error.login_code"), status_code=422)
    names = cookie_names(settings)
    # The pending session ends and a new one begins: a token seen before the second
    # factor is worth nothing after it (SESS-02).
    await run_db(accounts.end_session, request.cookies.get(names["session"]))
    token = await run_db(accounts.start_session, user, _client(request), request.headers.get("user-agent"),
                         reauth_at=utcnow(), max_sessions=settings.max_sessions_per_person)
    response = RedirectResponse(next_url or "/", status_code=303)
    response.headers.append("Set-Cookie", cookie_header(names["session"], token, settings))
    response.headers.append("Set-Cookie", cookie_header(names["csrf"], secrets.token_urlsafe(24), settings))
    request.state.session_started = True
    request.state.csrf_rotated = True
    return response


# -- the 2FA page ------------------------------------------------------------------------------

def _page_context(request, actor, *, codes=None, errors=None, done=None) -> dict:
    settings = request.app.state.settings
    state = mfa.status(actor)
    context = {"status": state, "required": mfa.mfa_required(actor, request.state.access, settings.require_admin_mfa),
               "codes": codes, "errors": errors or {}, "done": done, "recovery_count": mfa.RECOVERY_COUNT}
    if not state["enrolled"]:
        secret, uri = mfa.begin_enrollment(actor, settings.secret_key)
        context.update(secret=mfa.group_secret(secret), qr=mfa.qr_svg(uri))
    return context


async def _page(request, *, status_code=200, **kwargs):
    from markupsafe import Markup

    context = await run_db(_page_context, request, request.state.actor, **kwargs)
    if "qr" in context:
        # segno's own SVG markup: no user input in it but the username, which segno escapes.
        context["qr"] = Markup(context["qr"])  # nosec B704
    return await render(request, "core/mfa.html", context, status_code=status_code)


@require()
async def mfa_page(request):
    return await _page(request, done=DONE.get(request.query_params.get("done", "")))


@require(reauth=True)
async def mfa_enable(request):
    form = await request.form()
    settings = request.app.state.settings
    try:
        codes = await run_db(mfa.confirm_enrollment, request.state.actor, str(form.get("code", ""))[:CODE_MAX],
                             settings.secret_key)
    except ValidationError as exc:
        return await _page(request, errors=exc.errors, status_code=422)
    return await _page(request, codes=codes, done="mfa.done.enabled")


@require(reauth=True)
async def mfa_recovery_codes(request):
    try:
        codes = await run_db(mfa.regenerate_recovery_codes, request.state.actor,
                             request.app.state.settings.secret_key)
    except ValidationError as exc:
        return await _page(request, errors=exc.errors, status_code=422)
    return await _page(request, codes=codes, done="mfa.done.regenerated")


@require(reauth=True)
async def mfa_disable(request):
    settings = request.app.state.settings
    actor = request.state.actor
    if mfa.mfa_required(actor, request.state.access, settings.require_admin_mfa):
        return await _page(request, errors={"form": "mfa.error.required"}, status_code=403)
    await run_db(mfa.disable, actor)
    return RedirectResponse("/account/2fa?done=disabled", status_code=303)


# -- re-authentication -------------------------------------------------------------------------

async def _reauth_page(request, next_url: str, errors: dict, status_code: int = 200):
    enrolled = await run_db(mfa.is_enrolled, request.state.actor)
    return await render(request, "core/reauth.html", {
        "next": next_url, "errors": errors, "enrolled": enrolled,
        "minutes": request.app.state.settings.reauth_minutes,
        "lockout": _lockout(request.app.state.settings)}, status_code=status_code)


@require()
async def reauth_page(request):
    return await _reauth_page(request, safe_next(request.query_params.get("next")), {})


@require()
async def reauth_submit(request):
    form = await request.form()
    next_url = safe_next(str(form.get("next", "")))
    settings = request.app.state.settings
    errors = await run_db(mfa.reauthenticate, request.state.actor.id, str(form.get("password", ""))[:128],
                          str(form.get("code", ""))[:CODE_MAX], settings.secret_key,
                          lockout_threshold=settings.lockout_threshold, lockout_minutes=settings.lockout_minutes)
    if errors:
        return await _reauth_page(request, next_url, errors, status_code=422)
    names = cookie_names(settings)
    # A new token for the same session (SESS-02): its age and lifetime stay as they were.
    token = await run_db(mfa.rotate_session, request.cookies.get(names["session"]), reauth_at=utcnow())
    response = RedirectResponse(next_url, status_code=303)
    if token:
        response.headers.append("Set-Cookie", cookie_header(names["session"], token, settings))
        request.state.session_started = True
    return response


ROUTES = [
    Route("/login/verify", login_verify, methods=["GET"], name="login_verify"),
    Route("/login/verify", login_verify_submit, methods=["POST"], name="login_verify_submit"),
    Route("/account/2fa", mfa_page, methods=["GET"], name="mfa"),
    Route("/account/2fa/enable", mfa_enable, methods=["POST"], name="mfa_enable"),
    Route("/account/2fa/recovery-codes", mfa_recovery_codes, methods=["POST"], name="mfa_recovery_codes"),
    Route("/account/2fa/disable", mfa_disable, methods=["POST"], name="mfa_disable"),
    Route("/account/confirm", reauth_page, methods=["GET"], name="reauth"),
    Route("/account/confirm", reauth_submit, methods=["POST"], name="reauth_submit"),
]
