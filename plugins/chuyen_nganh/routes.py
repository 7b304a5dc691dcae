"""The delegation screens at /p/chuyen_nganh/: the department's list and application form, the
operator's queue, and one delegation's page with the actions its reader may take (plain forms with
the CSRF token: everything works without JavaScript). A refused form comes back with what was typed
and each message at its field (422); a step taken meanwhile by someone else is a 409."""

from __future__ import annotations

from urllib.parse import quote

from core.api import NotFound, run_db, today, unit_groups
from web.api import RedirectResponse, Response, Route, render, require

from . import delegation as svc
from .delegation import ADMIN, APPLY, VIEW
from .catalogue_routes import ROUTES as CATALOGUE_ROUTES
from .department_routes import ROUTES as DEPARTMENT_ROUTES
from .template_routes import ROUTES as TEMPLATE_ROUTES
from .models import SHOWN_STATUSES

BADGES = {"applied": "badge-info", "returned": "badge-warn", "approved": "badge-ok", "suspended": "badge-warn",
          "revoked": "badge-off", "expired": "badge-off"}
REASON_ACTIONS = {"return": svc.return_for_changes, "suspend": svc.suspend, "resume": svc.resume,
                  "revoke": svc.revoke}


def _common() -> dict:
    return {"badges": BADGES, "shown_status": svc.shown_status, "today": today()}


# -- the department's list and the operator's queue -------------------------------------------------

def _rows(delegations) -> list[dict]:
    units = {u.id: u for u in svc.units_named({d.department_unit_id for d in delegations})}
    day = today()
    return [{"d": d, "department": units.get(d.department_unit_id), "status": svc.shown_status(d, day)}
            for d in delegations]


def _list_context(access) -> dict:
    return {"rows": _rows(svc.visible(access)), "can_apply": bool(svc.applicant_units(access)), **_common()}


@require(VIEW)
async def delegations(request):
    context = await run_db(_list_context, request.state.access)
    return await render(request, "chuyen_nganh/list.html", context)


def _queue_context(access, params) -> dict:
    status = params.get("status", "")
    status = status if status in SHOWN_STATUSES else ""
    sector = params.get("sector", "").strip().lower()[:20]
    department = svc.parse_id(params.get("department", "")) or None
    rows = svc.visible(access, status=status, sector=sector, department_id=department)
    departments = svc.units_named({d.department_unit_id for d in svc.visible(access)})
    return {"rows": _rows(rows), "filters": {"status": status, "sector": sector, "department": department},
            "statuses": SHOWN_STATUSES, "departments": departments, **_common()}


@require(ADMIN)
async def queue(request):
    # Default: what waits for the operator.
    params = dict(request.query_params)
    if not params:
        params = {"status": "applied"}
    context = await run_db(_queue_context, request.state.access, params)
    return await render(request, "chuyen_nganh/queue.html", context)


# -- applying, and changing a returned application --------------------------------------------------

def _form_from(data) -> svc.Application:
    return svc.Application(
        department_unit_id=str(data.get("department_unit_id") or ""), sector=str(data.get("sector") or "")[:40],
        sector_name=str(data.get("sector_name") or "")[:400], purpose=str(data.get("purpose") or "")[:5000],
        scope_unit_ids=tuple(str(v)[:20] for v in data.getlist("scope_unit_ids")[:5000]),
        scope_kinds=tuple(str(v)[:20] for v in data.getlist("scope_kinds")[:20]),
        scope_group_ids=tuple(str(v)[:20] for v in data.getlist("scope_group_ids")[:200]),
        administrator_ids=tuple(str(v)[:20] for v in data.getlist("administrator_ids")[:200]))


def _application_of(d) -> svc.Application:
    scope = d.scope_selector
    return svc.Application(department_unit_id=str(d.department_unit_id), sector=d.sector, sector_name=d.sector_name,
                           purpose=d.purpose, scope_unit_ids=tuple(str(i) for i in scope["unit_ids"]),
                           scope_kinds=tuple(scope["kinds"]), scope_group_ids=tuple(str(i) for i in scope["group_ids"]),
                           administrator_ids=tuple(str(i) for i in d.administrator_ids))


def _form_context(access, form: svc.Application, delegation=None) -> dict:
    departments = ([u for u in svc.units_named([delegation.department_unit_id])] if delegation
                   else svc.applicant_units(access))
    return {"form": form, "delegation": delegation, "departments": departments,
            "units": svc.scope_choices(), "kinds": svc.SCOPE_KINDS, "groups": unit_groups(),
            "users": svc.administrator_choices([u.id for u in departments]),
            "chosen_units": set(form.scope_unit_ids), "chosen_kinds": set(form.scope_kinds),
            "chosen_groups": set(form.scope_group_ids),
            "chosen_users": set(form.administrator_ids)}


async def _form_page(request, form, delegation=None, errors=None, field_params=None, status_code=200):
    context = await run_db(_form_context, request.state.access, form, delegation)
    context.update(errors=errors or {}, field_params=field_params or {})
    return await render(request, "chuyen_nganh/apply.html", context, status_code=status_code)


@require(APPLY)
async def apply(request):
    if request.method == "GET":
        return await _form_page(request, svc.Application())
    data = await request.form(max_files=0, max_fields=6000)
    form = _form_from(data)
    try:
        delegation = await run_db(svc.apply, request.state.access, form)
    except svc.Refused as exc:
        return await _form_page(request, form, errors=exc.errors, field_params=exc.field_params, status_code=422)
    return RedirectResponse(request.url_for("chuyen_nganh:delegation", id=delegation.id).path + "?done=apply",
                            status_code=303)


def _changeable(access, delegation_id, method):
    """The delegation a department may change: its own, returned (a GET of any other is a 404; a
    form sent after someone acted meanwhile goes on to the service, which answers 409)."""
    delegation = svc.get(access, delegation_id)
    if not svc.can_change(access, delegation):
        raise NotFound()
    if method == "GET" and "change" not in svc.allowed_actions(access, delegation):
        raise NotFound()
    return delegation


@require(APPLY)
async def change(request):
    delegation_id = request.path_params["id"]
    delegation = await run_db(_changeable, request.state.access, delegation_id, request.method)
    if request.method == "GET":
        return await _form_page(request, _application_of(delegation), delegation)
    data = await request.form(max_files=0, max_fields=6000)
    form = _form_from(data)
    try:
        await run_db(svc.change, request.state.access, delegation_id, form)
    except svc.Refused as exc:
        status = 409 if "form" in exc.errors else 422
        return await _form_page(request, form, delegation, errors=exc.errors, field_params=exc.field_params,
                                status_code=status)
    return RedirectResponse(request.url_for("chuyen_nganh:delegation", id=delegation_id).path + "?done=change",
                            status_code=303)


# -- one delegation ---------------------------------------------------------------------------------

def _page_context(access, delegation_id) -> dict:
    d = svc.get(access, delegation_id)
    day = today()
    return {"d": d, "status": svc.shown_status(d, day), "department": svc.units_named([d.department_unit_id])[0:1],
            "scope": d.scope_selector, "scope_units": svc.units_named(svc.scope_units(d, day)),
            "listed_units": svc.units_named(d.scope_selector["unit_ids"]),
            "scope_groups": svc.groups_named(d.scope_selector["group_ids"]),
            "administrators": svc.users_named(d.administrator_ids), "applicant": svc.users_named([d.applicant_id]),
            "history": svc.history(d), "file": svc.decision_file(d), "actions": svc.allowed_actions(access, d, day),
            "in_force": svc.in_force(d.department_unit_id, d.sector, day) == d, **_common()}


async def _delegation_page(request, delegation_id, errors=None, field_params=None, typed=None, open_form="",
                           status_code=200):
    context = await run_db(_page_context, request.state.access, delegation_id)
    context.update(errors=errors or {}, field_params=field_params or {}, typed=typed or {}, open_form=open_form,
                   done=request.query_params.get("done", "")[:20])
    return await render(request, "chuyen_nganh/delegation.html", context, status_code=status_code)


@require(VIEW)
async def delegation_page(request):
    return await _delegation_page(request, request.path_params["id"])


def _refusal_status(exc) -> int:
    return 409 if "form" in exc.errors and exc.errors["form"] == "chuyen_nganh.error.state" else 422


@require(ADMIN, reauth=True)
async def decide(request):
    delegation_id = request.path_params["id"]
    data = await request.form(max_files=1, max_fields=20)
    try:
        typed = {k: str(data.get(k) or "")[:300] for k in ("decision_number", "decision_date", "signer_name",
                                                             "signer_title", "valid_from", "valid_to")}
        upload = data.get("file")
        file = None
        if upload is not None and not isinstance(upload, str) and getattr(upload, "filename", ""):
            # One byte past the limit is enough to know the file is too big.
            file = (upload.filename, await upload.read(svc.MAX_FILE_BYTES + 1))
    finally:
        await data.close()
    decision = svc.Decision(number=typed["decision_number"], date=typed["decision_date"],
                            signer_name=typed["signer_name"], signer_title=typed["signer_title"],
                            valid_from=typed["valid_from"], valid_to=typed["valid_to"], file=file)
    try:
        await run_db(svc.record_decision, request.state.access, delegation_id, decision)
    except svc.Refused as exc:
        return await _delegation_page(request, delegation_id, exc.errors, exc.field_params, typed, "decide",
                                      _refusal_status(exc))
    return RedirectResponse(request.url_for("chuyen_nganh:delegation", id=delegation_id).path + "?done=decide",
                            status_code=303)


def _reason_view(action: str):
    @require(ADMIN, reauth=action == "resume")
    async def view(request):
        delegation_id = request.path_params["id"]
        data = await request.form(max_files=0, max_fields=5)
        reason = str(data.get("reason") or "")[:3000]
        try:
            await run_db(REASON_ACTIONS[action], request.state.access, delegation_id, reason)
        except svc.Refused as exc:
            return await _delegation_page(request, delegation_id, exc.errors, exc.field_params, {"reason": reason},
                                          action, _refusal_status(exc))
        return RedirectResponse(request.url_for("chuyen_nganh:delegation", id=delegation_id).path + f"?done={action}",
                                status_code=303)

    view.__name__ = f"delegation_{action}"
    return view


def _file_of(access, delegation_id):
    file = svc.decision_file(svc.get(access, delegation_id))
    if file is None:
        raise NotFound()
    return file.filename, bytes(file.content)


@require(VIEW)
async def decision_file(request):
    filename, content = await run_db(_file_of, request.state.access, request.path_params["id"])
    ascii_name = "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "_" for c in filename) or "quyet-dinh.pdf"
    return Response(content, media_type="application/pdf", headers={
        "Content-Disposition": f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}",
        "X-Content-Type-Options": "nosniff", "Cache-Control": "private, no-store"})


ROUTES = [
    Route("/", delegations, methods=["GET"], name="delegations"),
    Route("/apply", apply, methods=["GET", "POST"], name="apply"),
    Route("/queue", queue, methods=["GET"], name="queue"),
    Route("/{id:int}", delegation_page, methods=["GET"], name="delegation"),
    Route("/{id:int}/change", change, methods=["GET", "POST"], name="change"),
    Route("/{id:int}/decide", decide, methods=["POST"], name="decide"),
    Route("/{id:int}/decision.pdf", decision_file, methods=["GET"], name="decision_file"),
    *(Route(f"/{{id:int}}/{action}", _reason_view(action), methods=["POST"], name=action) for action in REASON_ACTIONS),
    *CATALOGUE_ROUTES,
    *DEPARTMENT_ROUTES,
    *TEMPLATE_ROUTES,
]
