"""The home page: who you are, your unit, and the widgets of the plugins enabled for it."""

from __future__ import annotations

import datetime as dt

from starlette.routing import Route

from core.i18n import VIETNAM_TZ

from core.registry import Widget
from web.guards import require
from web.templating import render


@require()
async def home(request):
    pm = request.app.state.pm
    widgets = []
    for name, contributed in pm.call_each("dashboard_widgets", enabled=request.state.enabled, request=request,
                                          actor=request.state.actor, unit=request.state.unit):
        widgets.extend(w for w in contributed if isinstance(w, Widget) and w.id.startswith(name + "."))
    widgets.sort(key=lambda w: (w.order, w.id))
    registry = request.app.state.registry
    plugins = [registry.domains[n] for n in registry.plugin_names() if n in request.state.enabled]
    today = dt.datetime.now(VIETNAM_TZ).date()
    return await render(request, "core/home.html", {"widgets": widgets, "plugins": plugins, "today": today})


ROUTES = [Route("/", home, methods=["GET"], name="home")]
