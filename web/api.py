"""The public plugin API of the web layer: rendering, htmx helpers, guards, routes, JSON endpoints.

Plugin screens import from here (and ``core.api`` for the domain), nothing else
of baocao.
"""

from starlette.exceptions import HTTPException
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route

from core.errors import PluginError
from core.registry import Widget
from web.charts import (Chart, ChartTable, Series as ChartSeries, attainment_chart, bar_chart, chart_workbook,
                        gauge_chart, line_chart)
from web.guards import public, require, safe_next
from web.htmx import HtmxDetails, hx_redirect, hx_trigger
from web.routes.api import Param as ApiParam
from web.routes.plugin_api import JsonRoute, json_route
from web.templating import render


def plugin_settings(request) -> dict:
    """The ``[plugins.<name>]`` table of the settings (a copy; empty when absent) for the plugin
    whose view, JSON endpoint or ``dashboard_widgets`` hook is serving ``request``. Widget
    templates get the same table as ``plugin_settings``."""
    name = getattr(request.state, "plugin", None)
    if not name:
        raise PluginError("plugin.error.no_plugin_request")
    return request.app.state.settings.plugin(name)


def instance_settings(request):
    """The instance's whole ``core.api.Settings``, for a plugin's view that calls a core function
    taking them (``core.api.deliver_outbox_now``, ``verify_document``, its own channel's delivery).
    Read-only: a view never changes the settings."""
    return request.app.state.settings


__all__ = [
    "HTTPException", "HTMLResponse", "JSONResponse", "RedirectResponse", "Response", "Mount", "Route",
    "public", "require", "safe_next", "HtmxDetails", "hx_redirect", "hx_trigger", "render",
    # a plugin's own settings ([plugins.<name>]) in its views, JSON endpoints and widgets
    "plugin_settings", "instance_settings",
    # a home-page block (hook dashboard_widgets); the same class as core.api.Widget
    "Widget",
    # JSON endpoints at /api/v1/p/<plugin>/…, in the OpenAPI document (Domain.api)
    "json_route", "JsonRoute", "ApiParam",
    # charts drawn on the server as SVG, each with its numbers in a table, and their Excel export
    "line_chart", "bar_chart", "attainment_chart", "gauge_chart", "ChartSeries", "Chart", "ChartTable",
    "chart_workbook",
]
