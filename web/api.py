"""The public plugin API of the web layer: rendering, htmx helpers, guards, routes.

Plugin screens import from here (and ``core.api`` for the domain), nothing else
of baocao.
"""

from starlette.exceptions import HTTPException
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route

from web.guards import public, require, safe_next
from web.htmx import HtmxDetails, hx_redirect, hx_trigger
from web.templating import render

__all__ = [
    "HTTPException", "HTMLResponse", "JSONResponse", "RedirectResponse", "Response", "Mount", "Route",
    "public", "require", "safe_next", "HtmxDetails", "hx_redirect", "hx_trigger", "render",
]
