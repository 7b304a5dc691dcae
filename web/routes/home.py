"""The home page: the person's work list first (reports to send, to review, late units, unread
notifications: ``core.reporting.worklist``), then who you are, your unit, and the widgets of the
plugins enabled for it."""

from __future__ import annotations

from starlette.routing import Route

from markupsafe import Markup

from core.db import run_db
from core.errors import PluginError
from core import clock, feedback
from core.registry import Widget, own_permission
from core.reporting import facade as reporting
from web.guards import require
from web.templating import render, request_context


def render_widgets(request) -> list[tuple[Widget, Markup]]:
    """Each plugin's widgets rendered on their own: a widget that fails, names a template outside
    its plugin's folder or a permission that is not its plugin's or the core's, is dropped and
    recorded; the page stays up. A widget with a ``permission`` shows only to users holding it at
    their unit. Each plugin is asked in turn with ``request.state.plugin`` set to it, so
    ``web.api.plugin_settings(request)`` reads its settings table there as in its views, and its
    templates get the same table as ``plugin_settings``."""
    pm, templates = request.app.state.pm, request.app.state.templates
    registry, access, settings = request.app.state.registry, request.state.access, request.app.state.settings
    rendered = []
    for plugin in sorted(request.state.enabled):
        request.state.plugin = plugin
        try:
            contributions = pm.call_each("dashboard_widgets", enabled={plugin}, request=request,
                                         actor=request.state.actor, unit=request.state.unit)
        finally:
            request.state.plugin = None
        for name, contributed in contributions:
            for widget in contributed:
                try:
                    if not isinstance(widget, Widget) or not widget.id.startswith(name + "."):
                        raise PluginError("plugin.error.widget", plugin=name)
                    if not widget.template.startswith(f"{name}/"):
                        raise PluginError("plugin.error.resource_namespace", plugin=name, kind="templates",
                                          path=widget.template)
                    if widget.permission is not None:
                        if not own_permission(name, widget.permission, registry.permissions):
                            raise PluginError("plugin.error.widget_permission", plugin=name, id=widget.id,
                                              code=widget.permission)
                        if not access.allowed(widget.permission):
                            continue
                    context = {**request_context(request), **widget.context, "request": request, "widget": widget,
                               "plugin_settings": settings.plugin(name)}
                    # Rendered by the app's environment, which autoescapes (security.md WEB-02, F11).
                    html = Markup(templates.get_template(widget.template).render(context))  # nosec B704
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
    # The work list and the widgets query the database: one worker thread with a connection.
    work, news, widgets = await run_db(_work_and_widgets, request, today)
    return await render(request, "core/home.html", {"widgets": widgets, "plugins": plugins, "today": today,
                                                    "work": work, "feedback": news,
                                                    "status_labels": reporting.STATUS_LABELS})


def _work_and_widgets(request, today):
    lang = getattr(request.state, "lang", "vi")
    work = reporting.work_list(request.state.access, lang=lang, today=today, settings=request.app.state.settings)
    # Answers to one's problem reports, and to an operator the items nobody has taken (Điều 9.4).
    news = feedback.home_part(request.state.access, lang)
    return work, news, render_widgets(request)


ROUTES = [Route("/", home, methods=["GET"], name="home")]
