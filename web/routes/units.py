"""The unit tree a user may see, and one unit's page.

What a user sees is decided on the server from their grants: the subtrees where
they hold ``core.unit.view``. A unit outside them answers 404, exactly like a
unit that does not exist, so a guessed URL tells nothing (security.md ACL-02).
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.routing import Route

from core import units
from core.db import run_db
from core.i18n import fold
from core.models import Unit, User
from web.guards import require
from web.templating import render

PERMISSION = "core.unit.view"


def _visible_tree(roots: list[int] | None, q: str):
    nodes = units.flatten([n for root in roots for n in units.tree(root)] if roots is not None else units.tree())
    total = len(nodes)
    if q:
        needle = fold(q)
        nodes = [n for n in nodes if needle in fold(n.unit.name) or needle in n.unit.code.lower()]
    return nodes, total


@require(PERMISSION)
async def unit_list(request):
    q = request.query_params.get("q", "").strip()[:100]
    nodes, total = await run_db(_visible_tree, request.state.access.roots(PERMISSION), q)
    return await render(request, "core/units/list.html", {"nodes": nodes, "total": total, "q": q},
                        partial="core/units/_tree.html")


def _unit_page(unit_id: int, access):
    unit = Unit.get_or_none(Unit.id == unit_id)
    if unit is None or not access.allowed(PERMISSION, units.ancestor_ids(unit.id)):
        return None
    children = sorted(Unit.select().where(Unit.parent == unit), key=units.sort_key)
    chain = [Unit.get_by_id(uid) for uid in reversed(units.ancestor_ids(unit.id))]
    # Only the ancestors the user may open become links in the breadcrumb.
    openable = {u.id for u in chain if access.allowed(PERMISSION, units.ancestor_ids(u.id))}
    accounts = User.select().where(User.unit == unit).count()
    # "target", not "unit": every template already has "unit", the user's own.
    return {"target": unit, "children": children, "chain": chain, "openable": openable, "accounts": accounts}


@require(PERMISSION)
async def unit_detail(request):
    try:
        unit_id = int(request.path_params["unit_id"])
    except ValueError:
        raise HTTPException(404) from None
    context = await run_db(_unit_page, unit_id, request.state.access)
    if context is None:
        raise HTTPException(404)
    return await render(request, "core/units/detail.html", context)


ROUTES = [
    Route("/units", unit_list, methods=["GET"], name="units"),
    Route("/units/{unit_id}", unit_detail, methods=["GET"], name="unit_detail"),
]
