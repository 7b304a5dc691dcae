"""Account administration screens (issue 3) and the user's own sessions.

Unit administrators (``core.unit.admin``) list, create, disable, enable and
unlock the accounts of their units, reset a forgotten password, hand out and
take back roles, and end sessions. The rules live in ``core.accounts.admin``;
every screen resolves the account from the path and checks on the server that
its unit lies in the administrator's subtree, so an account elsewhere answers
404 and shows nothing (security.md ACL-02). Forms carry only what the action
needs; anything else they send is ignored (ACL-03).

Each action works as a plain form (POST, then a redirect back to the account
page with a message) and with htmx (the account panel is swapped in place). A
temporary password is shown once, in the answer to the request that made it,
and never stored in the clear or put into a URL.

An account's page also lists, read-only, the roles a plugin's records give it
(a delegation in force, say), with the plugin that gives them: no grant row
shows them, and they count when deciding who may take control of the account
(every action here passes the app's plugins, ``PluginRights``, to the service).

``/account/sessions`` lets every user see where they are logged in and end the
other sessions (SESS-05).
"""

from __future__ import annotations

from starlette.responses import RedirectResponse
from starlette.routing import Route

from core.accounts import admin
from core.accounts import mfa
from core.accounts import login as accounts
from core.accounts.access import ADMIN_CODE
from core.accounts.plugin_grants import PluginRights
from core.db import run_db
from core.errors import NotFound, ValidationError
from core.models import Unit, User
from core.units.tree import ancestor_ids
from web.guards import require
from web.middleware import cookie_names
from web.params import parse_id
from web.templating import render

PERMISSION = ADMIN_CODE
LIST_LIMIT = 200  # rows shown at once; the filter narrows a larger list
USERNAME_MAX, NAME_MAX = 64, 255

# ?done=<what> after a plain-form action → the message shown on the account page.
DONE = {
    "disabled": "users.done.disabled",
    "enabled": "users.done.enabled",
    "unlocked": "users.done.unlocked",
    "mfa_reset": "users.done.mfa_reset",
    "granted": "users.done.granted",
    "revoked": "users.done.revoked",
    "session_ended": "users.done.session_ended",
    "sessions_ended": "users.done.sessions_ended",
}
MY_DONE = {"ended": "sessions.done.ended", "others": "sessions.done.others"}


def _int(value) -> int | None:
    return parse_id(str(value or "").strip())


def describe_agent(agent: str | None) -> str:
    """A short, readable name for a browser's User-Agent ("Firefox · Windows")."""
    agent = agent or ""
    browser = next((name for token, name in (("Edg/", "Edge"), ("OPR/", "Opera"), ("CocCoc", "Cốc Cốc"),
                                             ("Firefox/", "Firefox"), ("Chrome/", "Chrome"), ("Safari/", "Safari"))
                    if token in agent), "")
    system = next((name for token, name in (("Android", "Android"), ("iPhone", "iOS"), ("iPad", "iOS"),
                                            ("Windows", "Windows"), ("Mac OS X", "macOS"), ("Linux", "Linux"))
                   if token in agent), "")
    return " · ".join(p for p in (browser, system) if p) or agent[:60]


def _plugins(request) -> PluginRights:
    """What the services ask about the roles the plugins give the account acted on."""
    state = request.app.state
    return PluginRights(state.pm, state.registry, state.settings)


def _timeouts(settings, user) -> dict:
    """The timeouts that apply to ``user``'s sessions, so the lists show live sessions only."""
    idle = settings.session_idle_minutes
    if user.is_admin and settings.admin_session_idle_minutes:
        idle = min(idle, settings.admin_session_idle_minutes)
    return {"idle_minutes": idle, "lifetime_hours": settings.session_lifetime_hours}


# -- the list -------------------------------------------------------------------------------------------

def _list_context(access, q: str, unit_id: int | None, status: str | None) -> dict:
    rows = admin.list_users(access, q=q, unit_id=unit_id, status=status)
    return {"rows": rows[:LIST_LIMIT], "total": len(rows), "limit": LIST_LIMIT,
            "scope_units": admin.scope_units(access), "q": q, "unit_filter": unit_id,
            "status_filter": status or ""}


@require(PERMISSION)
async def users_page(request):
    params = request.query_params
    q = (params.get("q") or "").strip()[:100]
    status = params.get("status") if params.get("status") in admin.STATUSES else None
    context = await run_db(_list_context, request.state.access, q, _int(params.get("unit")), status)
    return await render(request, "core/users/list.html", context, partial="core/users/_table.html")


# -- a new account --------------------------------------------------------------------------------------

def _form_choices(access) -> dict:
    return {"scope_units": admin.scope_units(access), "roles": admin.grantable_roles(access)}


def _new_context(access, form: dict, errors: dict, hours: int) -> dict:
    return {**_form_choices(access), "form": form, "errors": errors, "hours": hours}


@require(PERMISSION)
async def user_new(request):
    form = {"username": "", "full_name": "", "unit": _int(request.query_params.get("unit")), "roles": []}
    context = await run_db(_new_context, request.state.access, form, {},
                           request.app.state.settings.temp_password_hours)
    return await render(request, "core/users/new.html", context, partial="core/users/_new_form.html")


@require(PERMISSION, reauth=True)  # SESS-06: issues a password and grants roles
async def user_create(request):
    data = await request.form()
    # Only these fields are read: is_admin, must_change_password and the like are ignored (ACL-03).
    form = {"username": str(data.get("username", "")).strip()[:USERNAME_MAX],
            "full_name": str(data.get("full_name", "")).strip()[:NAME_MAX],
            "unit": _int(data.get("unit")),
            "roles": [str(code)[:100] for code in data.getlist("roles")][:20]}
    access, settings = request.state.access, request.app.state.settings
    try:
        user, password = await run_db(admin.create_user, access, form["username"], form["full_name"], form["unit"],
                                      roles=form["roles"], temp_hours=settings.temp_password_hours)
    except ValidationError as exc:
        context = await run_db(_new_context, access, form, exc.errors, settings.temp_password_hours)
        return await render(request, "core/users/new.html", context, partial="core/users/_new_form.html",
                            status_code=422)
    unit = await run_db(lambda: user.unit)
    return await render(request, "core/users/created.html",
                        {"user": user, "user_unit": unit, "temp_password": password,
                         "hours": settings.temp_password_hours},
                        partial="core/users/_created.html")


# -- one account ------------------------------------------------------------------------------------------

def _grant_rows(access, user) -> list[dict]:
    rows = []
    for grant in admin.user_grants(user):
        chain = ancestor_ids(grant.unit_id)
        revocable = (access.actor is not None and user.id != access.actor.id
                     and access.allowed(ADMIN_CODE, chain)
                     and all(access.allowed(code, chain) for code in grant.role.codes()))
        granter = User.get_or_none(User.id == grant.granted_by_id) if grant.granted_by_id else None
        rows.append({"id": grant.id, "role": grant.role, "unit": grant.unit, "granted_at": grant.granted_at,
                     "granted_by": granter.full_name if granter else "", "revocable": revocable})
    return rows


def _plugin_role_rows(plugins: PluginRights, user) -> list[dict]:
    """The roles the plugins give the account today, named for the page: the role, where, and the
    plugin whose records give it (one query for the units' names)."""
    given = plugins.of(user)
    if not given:
        return []
    names = dict(Unit.select(Unit.id, Unit.name).where(Unit.id.in_({g[0] for g in given})).tuples())
    rows = []
    for grant in given:
        domain = plugins.registry.domains[grant.plugin]
        spec = next(r for r in domain.roles if r.code == grant.role)
        rows.append({"role_label": spec.label, "unit": names.get(grant[0], ""), "plugin_label": domain.label})
    return rows


def _detail_context(access, user_id: int, settings, plugins: PluginRights, *, grant_form=None,
                    grant_errors=None) -> dict:
    user = admin.get_user(access, user_id)
    return {
        "user": user, "user_unit": user.unit,
        "locked": accounts.is_locked(user),
        "mfa_enrolled": mfa.is_enrolled(user.id),
        "temp_expired": accounts.temporary_password_expired(user),
        "refusal": admin.control_refusal(access, user, plugins),
        "grants_refusal": admin.grants_refusal(access, user, plugins),
        "plugin_roles": _plugin_role_rows(plugins, user),
        "is_self": access.actor is not None and user.id == access.actor.id,
        "grants": _grant_rows(access, user),
        "sessions": admin.user_sessions(user, **_timeouts(settings, user)),
        "scope_units": admin.scope_units(access), "roles": admin.grantable_roles(access),
        "grant_form": grant_form or {"role": "", "unit": user.unit_id},
        "grant_errors": grant_errors or {},
        "describe_agent": describe_agent,
    }


async def _detail(request, user_id: int, *, status_code=200, **extra):
    settings = request.app.state.settings
    context = await run_db(_detail_context, request.state.access, user_id, settings, _plugins(request),
                           grant_form=extra.pop("grant_form", None), grant_errors=extra.pop("grant_errors", None))
    context.update(extra)
    return await render(request, "core/users/detail.html", context, partial="core/users/_detail.html",
                        status_code=status_code)


@require(PERMISSION)
async def user_detail(request):
    done = DONE.get(request.query_params.get("done") or "")
    return await _detail(request, request.path_params["id"], done=done)


async def _act(request, fn, *args, done: str, **kwargs):
    """Run an action on one account; answer with the account page (htmx) or a redirect to it."""
    user_id = request.path_params["id"]
    await run_db(fn, request.state.access, *args, plugins=_plugins(request), **kwargs)
    if request.state.htmx.wants_partial:
        return await _detail(request, user_id, done=DONE[done])
    return RedirectResponse(request.url_for("user_detail", id=user_id).path + f"?done={done}", status_code=303)


@require(PERMISSION)
async def user_disable(request):
    return await _act(request, admin.disable_user, request.path_params["id"], done="disabled")


@require(PERMISSION)
async def user_enable(request):
    return await _act(request, admin.enable_user, request.path_params["id"], done="enabled")


@require(PERMISSION)
async def user_unlock(request):
    return await _act(request, admin.unlock_user, request.path_params["id"], done="unlocked")


@require(PERMISSION, reauth=True)
async def user_reset_mfa(request):
    return await _act(request, admin.reset_mfa, request.path_params["id"], done="mfa_reset")


@require(PERMISSION)
async def user_end_all_sessions(request):
    return await _act(request, admin.end_all_sessions, request.path_params["id"], done="sessions_ended")


@require(PERMISSION)
async def user_end_session(request):
    user_id, session_id = request.path_params["id"], request.path_params["session_id"]

    def end(access, plugins):
        from core.models import Session

        admin.get_user(access, user_id)  # the account must be in scope ...
        if not Session.select().where((Session.id == session_id) & (Session.user == user_id)).exists():
            raise NotFound()  # ... and the session its own
        admin.end_session(access, session_id, plugins=plugins)

    return await _act(request, end, done="session_ended")


@require(PERMISSION, reauth=True)  # SESS-06: a recent login or re-authentication
async def user_revoke(request):
    return await _act(request, admin.revoke, request.path_params["id"], request.path_params["grant_id"],
                      done="revoked")


@require(PERMISSION, reauth=True)  # SESS-06: a recent login or re-authentication
async def user_grant(request):
    user_id = request.path_params["id"]
    data = await request.form()
    # Only the role and the unit are read; the unit is checked against the subtree (ACL-03).
    form = {"role": str(data.get("role", ""))[:100], "unit": _int(data.get("unit"))}  # a plugin's role: <plugin>.<role>
    try:
        await run_db(admin.grant, request.state.access, user_id, form["role"], form["unit"], plugins=_plugins(request))
    except ValidationError as exc:
        return await _detail(request, user_id, status_code=422, grant_form=form, grant_errors=exc.errors)
    if request.state.htmx.wants_partial:
        return await _detail(request, user_id, done=DONE["granted"])
    return RedirectResponse(request.url_for("user_detail", id=user_id).path + "?done=granted", status_code=303)


@require(PERMISSION, reauth=True)  # SESS-06: a recent login or re-authentication
async def user_reset_password(request):
    user_id = request.path_params["id"]
    settings = request.app.state.settings
    password = await run_db(admin.reset_password, request.state.access, user_id,
                            temp_hours=settings.temp_password_hours, plugins=_plugins(request))
    # Shown in this answer only: never stored in the clear, never in a URL.
    return await _detail(request, user_id, temp_password=password, hours=settings.temp_password_hours)


# -- the user's own sessions (SESS-05) ----------------------------------------------------------------------

def _my_sessions_context(actor, token, settings) -> dict:
    return {"sessions": admin.user_sessions(actor, **_timeouts(settings, actor)),
            "current_id": admin.current_session_id(actor, token), "describe_agent": describe_agent}


def _token(request) -> str | None:
    return request.cookies.get(cookie_names(request.app.state.settings)["session"])


async def _my_sessions(request, done=None):
    context = await run_db(_my_sessions_context, request.state.actor, _token(request), request.app.state.settings)
    context["done"] = done
    return await render(request, "core/users/my_sessions.html", context, partial="core/users/_my_sessions.html")


@require()
async def my_sessions(request):
    return await _my_sessions(request, MY_DONE.get(request.query_params.get("done") or ""))


@require()
async def my_session_end(request):
    await run_db(admin.end_session, request.state.actor, request.path_params["session_id"])
    if request.state.htmx.wants_partial:
        return await _my_sessions(request, MY_DONE["ended"])
    return RedirectResponse(request.url_for("my_sessions").path + "?done=ended", status_code=303)


@require()
async def my_sessions_end_others(request):
    actor = request.state.actor
    current = await run_db(admin.current_session_id, actor, _token(request))
    await run_db(admin.end_other_sessions, actor, current)
    if request.state.htmx.wants_partial:
        return await _my_sessions(request, MY_DONE["others"])
    return RedirectResponse(request.url_for("my_sessions").path + "?done=others", status_code=303)


ROUTES = [
    Route("/users", users_page, methods=["GET"], name="users"),
    Route("/users/new", user_new, methods=["GET"], name="user_new"),
    Route("/users/new", user_create, methods=["POST"], name="user_create"),
    Route("/users/{id:int}", user_detail, methods=["GET"], name="user_detail"),
    Route("/users/{id:int}/disable", user_disable, methods=["POST"], name="user_disable"),
    Route("/users/{id:int}/enable", user_enable, methods=["POST"], name="user_enable"),
    Route("/users/{id:int}/reset-password", user_reset_password, methods=["POST"], name="user_reset_password"),
    Route("/users/{id:int}/unlock", user_unlock, methods=["POST"], name="user_unlock"),
    Route("/users/{id:int}/mfa/reset", user_reset_mfa, methods=["POST"], name="user_reset_mfa"),
    Route("/users/{id:int}/grants", user_grant, methods=["POST"], name="user_grant"),
    Route("/users/{id:int}/grants/{grant_id:int}/revoke", user_revoke, methods=["POST"], name="user_revoke"),
    Route("/users/{id:int}/sessions/end", user_end_all_sessions, methods=["POST"], name="user_sessions_end"),
    Route("/users/{id:int}/sessions/{session_id:int}/end", user_end_session, methods=["POST"],
          name="user_session_end"),
    Route("/account/sessions", my_sessions, methods=["GET"], name="my_sessions"),
    Route("/account/sessions/others/end", my_sessions_end_others, methods=["POST"], name="my_sessions_end_others"),
    Route("/account/sessions/{session_id:int}/end", my_session_end, methods=["POST"], name="my_session_end"),
]
