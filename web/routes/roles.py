"""The roles screen ``/admin/roles`` (``core.role.admin``: system administrators only).

Lists every role: the core's built-in ones, each plugin's, and those defined here. A system
administrator defines a role from the declared permissions (grouped by the plugin that declares
them), changes its names and permissions, and deletes it once nobody holds it. The core's and
the plugins' roles are shown read-only; "copy" starts a new role from one of them.

All decisions are ``core.accounts.roles``'s. Success redirects (303) with ``?done=…``; bad input
answers 422 with the form and the message at the field; deleting a role still granted answers
409 with the role's page saying how many grants hold it.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.responses import RedirectResponse
from starlette.routing import Route

from core.accounts import roles
from core.db import run_db
from core.errors import Forbidden, NotFound, ValidationError
from web.guards import require
from web.params import parse_id
from web.templating import render

PERMISSION = roles.PERMISSION
DONE = {d: f"roles.done.{d}" for d in ("created", "saved", "deleted")}
MAX_PERMISSIONS = 500


def _form_of(data) -> dict:
    # Only these fields are read (ACL-03); lengths are cut before the service checks them.
    return {"code": str(data.get("code", ""))[:80], "name": str(data.get("name", ""))[:600],
            "name_en": str(data.get("name_en", ""))[:600],
            "permissions": [str(p)[:100] for p in data.getlist("permissions")][:MAX_PERMISSIONS]}


def _form_context(access, registry, role_id: int | None, form: dict | None) -> dict:
    row = roles.get_role(access, role_id) if role_id is not None else None
    if form is None:
        form = {"code": "", "name": "", "name_en": "", "permissions": []}
        if row is not None:
            form = {"code": row.role.code, "name": row.role.name, "name_en": row.role.name_en,
                    "permissions": row.codes}
    return {"row": row, "form": form, "groups": roles.permission_groups(registry), "errors": {}}


async def _form_page(request, role_id: int | None, *, form=None, status_code=200, **extra):
    try:
        context = await run_db(_form_context, request.state.access, request.app.state.registry, role_id, form)
    except NotFound:
        raise HTTPException(404) from None
    except Forbidden:
        raise HTTPException(403) from None
    context.update(extra)
    return await render(request, "core/roles/form.html", context, status_code=status_code)


@require(PERMISSION)
async def roles_page(request):
    try:
        groups = await run_db(roles.list_roles, request.state.access, request.app.state.registry)
    except Forbidden:
        raise HTTPException(403) from None
    return await render(request, "core/roles/list.html", {
        "groups": groups, "permissions": request.app.state.registry.permissions,
        "done": DONE.get(request.query_params.get("done") or "")})


@require(PERMISSION)
async def role_new(request):
    form = None
    source = parse_id(request.query_params.get("from"))
    if source is not None:  # "copy": the permissions of an existing role, a new code and names
        try:
            row = await run_db(roles.get_role, request.state.access, source)
        except NotFound:
            raise HTTPException(404) from None
        except Forbidden:
            raise HTTPException(403) from None
        form = {"code": "", "name": "", "name_en": "", "permissions": row.codes}
    return await _form_page(request, None, form=form)


async def _save(request, role_id: int | None):
    form = _form_of(await request.form())
    try:
        role = await run_db(roles.save_role, request.state.access, request.app.state.registry, role_id=role_id,
                            **form)
    except NotFound:
        raise HTTPException(404) from None
    except Forbidden:
        raise HTTPException(403) from None
    except ValidationError as exc:
        return await _form_page(request, role_id, form=form, status_code=422, errors=exc.errors)
    done = "created" if role_id is None else "saved"
    return RedirectResponse(request.url_for("role_edit", role_id=role.id).path + f"?done={done}", status_code=303)


@require(PERMISSION, reauth=True)  # SESS-06: what a role holds is a permission change
async def role_create(request):
    return await _save(request, None)


@require(PERMISSION)
async def role_edit(request):
    return await _form_page(request, request.path_params["role_id"],
                            done=DONE.get(request.query_params.get("done") or ""))


@require(PERMISSION, reauth=True)  # SESS-06
async def role_save(request):
    return await _save(request, request.path_params["role_id"])


@require(PERMISSION, reauth=True)  # SESS-06
async def role_delete(request):
    role_id = request.path_params["role_id"]
    try:
        await run_db(roles.delete_role, request.state.access, role_id)
    except NotFound:
        raise HTTPException(404) from None
    except Forbidden as exc:
        if exc.key != "roles.error.granted":
            raise HTTPException(403) from None
        return await _form_page(request, role_id, status_code=409, refusal={"key": exc.key, "params": exc.params})
    return RedirectResponse(request.url_for("roles").path + "?done=deleted", status_code=303)


ROUTES = [
    Route("/admin/roles", roles_page, methods=["GET"], name="roles"),
    Route("/admin/roles/new", role_new, methods=["GET"], name="role_new"),
    Route("/admin/roles/new", role_create, methods=["POST"], name="role_create"),
    Route("/admin/roles/{role_id:int}", role_edit, methods=["GET"], name="role_edit"),
    Route("/admin/roles/{role_id:int}", role_save, methods=["POST"], name="role_save"),
    Route("/admin/roles/{role_id:int}/delete", role_delete, methods=["POST"], name="role_delete"),
]
