"""Unit groups (nhóm đơn vị): named sets of units a regime can choose as its reporting units
("Các sở, ban, ngành", "UBND cấp xã"), each with an optional owner unit (the receiver of a regime
whose receiving rule is "group_owner"). A list, and one form to create or change a group with
its owner and its members picked from today's unit tree.

Rights: ``core.regime.edit``. A user puts in a group only units they may see (the subtrees where
they hold ``core.unit.view``), and opens, changes or deletes only a group all of whose members they
may see; any other group answers 404, like one that does not exist (ACL-02). System administrators
see everything.

The picker works without JavaScript: the filter and the "select every commune" helpers are
submit buttons of the same form (``action`` = ``filter``, ``add:<kind>``, ``clear:<kind>``,
``clear``) that send the form back with the choice so far and write nothing; only ``save`` writes.
With htmx the same requests answer with the picker alone, swapped in place.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.responses import RedirectResponse
from starlette.routing import Route

from core import clock
from core.regimes import regimes as rg
from core.units import tree as units
from core.db import run_db
from core.errors import NotFound, ValidationError
from core.i18n import fold
from core.models import Unit
from web.guards import require
from web.params import parse_id
from web.templating import render

EDIT = rg.EDIT
UNIT_VIEW = "core.unit.view"
MAX_MEMBERS = 5000
DONE = {"created": "groups.done.created", "saved": "groups.done.saved", "deleted": "groups.done.deleted"}


def visible_ids(access) -> set[int] | None:
    """The units the actor may see (and so put in a group); None: every unit."""
    roots = access.roots(UNIT_VIEW)
    if roots is None:
        return None
    return {uid for root in roots for uid in units.subtree_ids(root)}


# -- the list -------------------------------------------------------------------------------------

def _list_context(access) -> dict:
    allowed = visible_ids(access)
    members = rg.group_member_ids()
    usage = rg.group_usage()
    rows = []
    for group in rg.groups():
        ids = members.get(group.id, set())
        if not rg.group_manageable(ids, allowed):
            continue
        used = usage.get(group.id, [])
        shown = [r for r in used if rg.can_view(access, r)]
        rows.append({"group": group, "members": len(ids), "regimes": shown, "hidden": len(used) - len(shown),
                     "owner": group.owner if group.owner_id else None})
    return {"rows": rows, "labels": {"statuses": rg.STATUS_LABELS}}


@require(EDIT)
async def group_list(request):
    context = await run_db(_list_context, request.state.access)
    context["done"] = DONE.get(request.query_params.get("done") or "")
    return await render(request, "core/unit_groups/list.html", context)


# -- the picker -----------------------------------------------------------------------------------

@dataclass
class Section:
    """The units of one kind directly under one parent (parent None: the top of the tree)."""

    parent: Unit | None
    kind: str
    nodes: list = field(default_factory=list)


def _visible_nodes(access) -> list:
    roots = access.roots(UNIT_VIEW)
    if roots is None:
        return units.flatten(units.tree())
    seen, out = set(), []
    for root in roots:
        for node in units.flatten(units.tree(root)):
            if node.unit.id not in seen:
                seen.add(node.unit.id)
                out.append(node)
    return out


def _matches(unit, needle: str) -> bool:
    return not needle or needle in fold(unit.name) or needle in unit.code.lower()


def _picker(access, form: dict) -> dict:
    """Today's units the actor sees, grouped by parent and kind, filtered by ``form['q']``."""
    nodes = _visible_nodes(access)
    shown_ids = {n.unit.id for n in nodes}
    needle = fold(form["q"].strip())
    sections: dict[tuple, Section] = {}
    kinds, matched = [], []
    for node in nodes:
        unit = node.unit
        if not _matches(unit, needle):
            continue
        matched.append(unit)
        if unit.kind not in kinds:
            kinds.append(unit.kind)
        parent_id = unit.parent_id if unit.parent_id in shown_ids else None
        key = (parent_id, unit.kind)
        if key not in sections:
            sections[key] = Section(unit.parent if parent_id else None, unit.kind)
        sections[key].nodes.append(node)
    selected = set(form["unit_ids"])
    return {"sections": list(sections.values()), "kinds": kinds, "matched": matched,
            "hidden_selected": sorted(selected - {u.id for u in matched}),
            "selected_count": len(selected), "total_units": len(nodes)}


def _apply_helper(access, form: dict, action: str) -> None:
    """``add:<kind>`` / ``clear:<kind>``: every unit of that kind shown by the filter; ``clear``: none."""
    if action == "clear":
        form["unit_ids"] = []
        return
    verb, _, kind = action.partition(":")
    if verb not in ("add", "clear") or not kind:
        return
    needle = fold(form["q"].strip())
    ids = {n.unit.id for n in _visible_nodes(access) if n.unit.kind == kind and _matches(n.unit, needle)}
    chosen = set(form["unit_ids"])
    form["unit_ids"] = sorted(chosen | ids if verb == "add" else chosen - ids)


# -- the form -------------------------------------------------------------------------------------

def _form_data(data) -> dict:
    ids = []
    for value in data.getlist("unit_ids")[:MAX_MEMBERS]:
        text = str(value).strip()[:20]
        number = parse_id(text)
        ids.append(text if number is None else number)
    return {"code": str(data.get("code", "")).strip()[:100], "name": str(data.get("name", ""))[:1000],
            "owner": str(data.get("owner", "")).strip()[:20], "q": str(data.get("q", ""))[:100], "unit_ids": ids}


def _group_or_404(access, group_id: int):
    group = rg.UnitGroup.get_or_none(rg.UnitGroup.id == group_id)
    if group is None:
        raise NotFound("groups.error.not_found")
    members = rg.group_members(group.id)
    if not rg.group_manageable({u.id for u in members}, visible_ids(access)):
        raise NotFound("groups.error.not_found")
    return group, members


def _form_context(access, form: dict, errors: dict, group_id: int | None = None, **extra) -> dict:
    group, former, used = None, [], []
    if group_id is not None:
        group, members = _group_or_404(access, group_id)
        today = clock.today()
        former = [u for u in members if not units.is_valid(u, today)]
        used = [r for r in rg.group_usage().get(group.id, []) if rg.can_view(access, r)]
    # Values that are not unit ids (a tampered form) are kept for the message, not shown as ticks.
    form = {**form, "unit_ids": [i for i in form["unit_ids"] if isinstance(i, int)]}
    return {"form": form, "errors": errors, "group": group, "former": former, "used": used,
            "selected": set(form["unit_ids"]), "owner_unit": _owner_unit(access, form["owner"]), **_picker(access, form),
            **extra}


def _owner_unit(access, code: str):
    """The unit the owner field names today, shown beside the code when the actor may see it."""
    unit = rg.valid_units(clock.today()).where(Unit.code == code).first() if code else None
    allowed = visible_ids(access)
    return unit if unit is not None and (allowed is None or unit.id in allowed) else None


def _initial_form(access, group_id: int | None) -> dict:
    if group_id is None:
        return {"code": "", "name": "", "owner": "", "q": "", "unit_ids": []}
    group, members = _group_or_404(access, group_id)
    today = clock.today()
    return {"code": group.code, "name": group.name, "owner": group.owner.code if group.owner_id else "", "q": "",
            "unit_ids": [u.id for u in members if units.is_valid(u, today)]}


async def _show(request, group_id: int | None):
    access = request.state.access

    def build():
        return _form_context(access, _initial_form(access, group_id), {}, group_id)

    context = await run_db(build)
    context["done"] = DONE.get(request.query_params.get("done") or "")
    return await render(request, "core/unit_groups/form.html", context)


async def _submit(request, group_id: int | None):
    access = request.state.access
    data = await request.form()
    form = _form_data(data)
    action = str(data.get("action", "save"))[:40]
    if action != "save":
        # Filter or a selection helper: the form comes back with the choice so far; nothing is written.
        def build():
            _apply_helper(access, form, action)
            return _form_context(access, form, {}, group_id)

        context = await run_db(build)
        return await render(request, "core/unit_groups/form.html", context,
                            partial="core/unit_groups/_picker.html")
    try:
        group = await run_db(lambda: rg.write_group(group_id, form["code"], form["name"], form["unit_ids"],
                                                    owner=form["owner"], allowed=visible_ids(access),
                                                    actor=access.actor))
    except ValidationError as exc:
        context = await run_db(_form_context, access, form, exc.errors, group_id)
        return await render(request, "core/unit_groups/form.html", context, status_code=422)
    done = "created" if group_id is None else "saved"
    return RedirectResponse(request.url_for("unit_groups").path + f"?done={done}#group-{group.id}", status_code=303)


@require(EDIT)
async def group_new(request):
    return await _show(request, None)


@require(EDIT)
async def group_create(request):
    return await _submit(request, None)


@require(EDIT)
async def group_edit(request):
    return await _show(request, request.path_params["id"])


@require(EDIT)
async def group_update(request):
    return await _submit(request, request.path_params["id"])


@require(EDIT)
async def group_delete(request):
    access = request.state.access
    group_id = request.path_params["id"]
    try:
        await run_db(lambda: rg.delete_group(group_id, allowed=visible_ids(access), actor=access.actor))
    except ValidationError as exc:
        def build():
            return _form_context(access, _initial_form(access, group_id), {}, group_id,
                                 delete_error=exc.errors["delete"], delete_params=exc.params)

        context = await run_db(build)
        return await render(request, "core/unit_groups/form.html", context, status_code=422)
    return RedirectResponse(request.url_for("unit_groups").path + "?done=deleted", status_code=303)


ROUTES = [
    Route("/unit-groups", group_list, methods=["GET"], name="unit_groups"),
    Route("/unit-groups/new", group_new, methods=["GET"], name="unit_group_new"),
    Route("/unit-groups/new", group_create, methods=["POST"], name="unit_group_create"),
    Route("/unit-groups/{id:int}", group_edit, methods=["GET"], name="unit_group_edit"),
    Route("/unit-groups/{id:int}", group_update, methods=["POST"], name="unit_group_update"),
    Route("/unit-groups/{id:int}/delete", group_delete, methods=["POST"], name="unit_group_delete"),
]
