"""The home page: who you are, your unit, and the widgets of the plugins enabled for it."""

from __future__ import annotations

from starlette.routing import Route

from markupsafe import Markup

from core.db import run_db
from core.errors import PluginError
from core import clock
from core.registry import Widget
from web.guards import require
from web.templating import render, request_context


def render_widgets(request) -> list[tuple[Widget, Markup]]:
    """Each plugin's widgets rendered on their own: a widget that fails, or names a
    template outside its plugin's folder, is dropped and recorded; the page stays up."""
    pm, templates = request.app.state.pm, request.app.state.templates
    rendered = []
    for name, contributed in pm.call_each("dashboard_widgets", enabled=request.state.enabled, request=request,
                                          actor=request.state.actor, unit=request.state.unit):
        for widget in contributed:
            try:
                if not isinstance(widget, Widget) or not widget.id.startswith(name + "."):
                    raise PluginError("plugin.error.widget", plugin=name)
                if not widget.template.startswith(f"{name}/"):
                    raise PluginError("plugin.error.resource_namespace", plugin=name, kind="templates",
                                      path=widget.template)
                context = {**request_context(request), **widget.context, "request": request, "widget": widget}
                html = Markup(templates.get_template(widget.template).render(context))
            except Exception as exc:  # noqa: BLE001 — one widget's failure is its plugin's alone
                pm.record_error(name, "contribution", exc)
                continue
            rendered.append((widget, html))
    return sorted(rendered, key=lambda pair: (pair[0].order, pair[0].id))


@require()
async def home(request):
    registry = request.app.state.registry
    plugins = sorted((registry.domains[n] for n in registry.plugin_names() if n in request.state.enabled),
                     key=lambda d: d.name)
    today = clock.today()
    # Widgets may query the database, so they render in a worker thread with a connection.
    widgets = await run_db(render_widgets, request)
    return await render(request, "core/home.html", {"widgets": widgets, "plugins": plugins, "today": today})


ROUTES = [Route("/", home, methods=["GET"], name="home")]
