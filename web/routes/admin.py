"""The administrator's plugins page and the per-unit activation screen.

Both pages list a plugin's failures: those of this web server (in memory, ``PluginManager``) and
those other processes recorded in the database (the worker's jobs and report subscribers:
``core.plugin_failures``), shown to system administrators only, who clear them once the plugin
is fixed.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.responses import RedirectResponse
from starlette.routing import Route

from core import activation, plugin_failures
from core.units import tree as units
from core.db import run_db
from core.errors import NotFound, ValidationError
from core.plugins import STAGES
from core.settings import redact
from web.guards import require
from web.params import BadParameter, parse_id
from web.templating import render

PERMISSION = "core.plugin.admin"


@require(PERMISSION)
async def plugins_page(request):
    pm, registry = request.app.state.pm, request.app.state.registry
    infos = sorted(pm.infos.values(), key=lambda i: (i.status == "ok", i.name))
    sees = plugin_failures.allowed(request.state.access)
    recorded = plugin_failures.by_plugin(await run_db(plugin_failures.recorded)) if sees else {}
    return await render(request, "core/admin/plugins.html", {
        "infos": infos, "domains": registry.domains, "enabled": request.state.enabled,
        "core_parts": list(pm.core_parts.values()),  # always on: listed apart, no switch
        "recorded": recorded, "sees_recorded": sees,
        "cleared": request.query_params.get("done") == "cleared", "pm_names": set(pm.infos), "stages": STAGES})


def _activation_rows(plugin: str, roots: list[int] | None, registry, settings):
    """The subtrees the administrator manages (``roots``; None: all), with each unit's
    explicit setting and effective state."""
    nodes = units.flatten([n for root in roots for n in units.tree(root)] if roots is not None else units.tree())
    explicit = activation.overrides(plugin)
    default = activation.default_enabled(registry, settings, plugin)
    effective: dict[int, bool] = {}
    rows = []
    for node in nodes:  # parents come before children in a flattened tree
        unit = node.unit
        if unit.id in explicit:
            state = explicit[unit.id]
        elif unit.parent_id in effective:
            state = effective[unit.parent_id]
        else:
            state, _ = activation.explain(unit.id, plugin, registry, settings)
        effective[unit.id] = state
        rows.append({"unit": unit, "depth": node.depth, "explicit": explicit.get(unit.id),
                     "effective": state})
    return {"rows": rows, "default": default}


async def _detail_context(request, name):
    pm, registry, settings = request.app.state.pm, request.app.state.registry, request.app.state.settings
    info = pm.infos.get(name)
    if info is None:
        raise HTTPException(404)
    context = {"info": info, "domain": registry.domains.get(name),
               "config": redact(settings.plugin(name)), "activation": None,
               "recorded": [], "sees_recorded": plugin_failures.allowed(request.state.access),
               "cleared": request.query_params.get("done") == "cleared", "stages": STAGES}
    if context["sees_recorded"]:
        context["recorded"] = await run_db(plugin_failures.recorded, name)
    if name in registry.domains:
        roots = request.state.access.roots(PERMISSION)
        context["activation"] = await run_db(_activation_rows, name, roots, registry, settings)
    return context


@require(PERMISSION)
async def plugin_detail(request):
    context = await _detail_context(request, request.path_params["name"])
    return await render(request, "core/admin/plugin_detail.html", context,
                        partial="core/admin/_activation.html")


def _switch(unit_id, plugin, state, access, registry, reset_subtree):
    # The unit comes from the form, so check on the server that the administrator
    # holds the right at that unit (a grant there or above it).
    if not access.allowed(PERMISSION, units.ancestor_ids(unit_id)):
        raise NotFound()
    activation.set_activation(unit_id, plugin, state, access.actor, registry, reset_subtree=reset_subtree)


@require(PERMISSION)
async def activation_submit(request):
    name = request.path_params["name"]
    form = await request.form()
    unit_id = parse_id(str(form.get("unit", "")))
    if unit_id is None:
        raise BadParameter()
    state = str(form.get("state", ""))
    try:
        await run_db(_switch, unit_id, name, state, request.state.access, request.app.state.registry,
                     form.get("reset_subtree") == "1")
    except ValidationError:
        raise HTTPException(400) from None
    if request.state.htmx.wants_partial:
        context = await _detail_context(request, name)
        context["changed_unit"] = unit_id
        return await render(request, "core/admin/_activation.html", context)
    return RedirectResponse(request.url_for("admin_plugin", name=name).path + f"#unit-{unit_id}",
                            status_code=303)


@require(PERMISSION)
async def failures_clear(request):
    """Dismiss the failures other processes recorded for a plugin (system administrators only:
    ``core.plugin_failures.clear`` refuses anyone else, a 403). A plugin no longer installed
    keeps its rows on the list page until cleared, so the name need not be a loaded plugin's."""
    name = request.path_params["name"]
    if not plugin_failures.valid_name(name):
        raise HTTPException(404)
    form = await request.form()
    await run_db(plugin_failures.clear, request.state.access, name)
    if form.get("back") != "list" and name in request.app.state.pm.infos:
        target = request.url_for("admin_plugin", name=name).path + "?done=cleared#recorded-failures"
    else:
        target = request.url_for("admin_plugins").path + "?done=cleared#recorded-failures"
    return RedirectResponse(target, status_code=303)


ROUTES = [
    Route("/admin/plugins", plugins_page, methods=["GET"], name="admin_plugins"),
    Route("/admin/plugins/{name}", plugin_detail, methods=["GET"], name="admin_plugin"),
    Route("/admin/plugins/{name}/activation", activation_submit, methods=["POST"], name="admin_plugin_activation"),
    Route("/admin/plugins/{name}/failures/clear", failures_clear, methods=["POST"], name="admin_plugin_failures_clear"),
]
