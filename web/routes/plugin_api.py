"""Plugins' JSON endpoints: declared with ``web.api.json_route`` in ``Domain.api``, mounted at
``/api/v1/p/<plugin>/…`` and described in the OpenAPI document beside the core's endpoints.

They are the core API's in every way a caller sees: the same authentication (the session cookie or
``Authorization: Bearer bc_…``), read-only (GET and HEAD; ``web.middleware`` refuses anything else
under ``/api/v1/`` before the request is read), the same JSON error shape, ``Cache-Control:
private, no-store``. Like a plugin's pages they answer 404 where the plugin is switched off for
the caller's unit and 503 while it is failed (``web.middleware.PluginBoundary``), and they appear
in the OpenAPI document only for callers whose unit has the plugin switched on.

The endpoint is a plain function ``(request) -> data``, run in a worker thread with a database
connection (as widgets are); ``data`` (dicts, lists, numbers, text, ``Decimal``, dates) becomes
the JSON answer, or the function returns a ``Response`` of its own. A ``core.api`` refusal with a
status (``NotFound``, ``Forbidden``) answers that status; any other ``BaocaoError`` (a
``ValidationError``, the figures query's refusal…) is a 400 naming the problem in both languages.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from starlette.middleware import Middleware
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from core.db import run_db
from core.errors import BaocaoError, PluginError, ValidationError
from core.i18n import LANGUAGES
from core.registry import CODE_PART, own_permission
from web.routes.api import BASE, NO_STORE, ApiBoundary, Endpoint, Param, api_require

PREFIX = BASE + "/p"  # /api/v1/p/<plugin>/…
PATH_RE = re.compile(r"^(/[A-Za-z0-9_\-.{}:]+)+\Z")
CONVERTOR_RE = re.compile(r"\{(\w+):\w+\}")
DEFAULT_ERRORS = (400, 401, 403, 404)


@dataclass(frozen=True)
class JsonRoute:
    """One JSON endpoint of a plugin (``web.api.json_route`` makes it)."""

    path: str  # below /api/v1/p/<plugin>; Starlette path parameters, e.g. "/farms/{id:int}"
    endpoint: Callable
    summary: str  # message key of the plugin
    permission: str | None  # None: any logged-in user
    name: str
    params: tuple[Param, ...] = ()
    response: dict = field(default_factory=lambda: {"type": "object"})  # JSON Schema of the answer
    errors: tuple[int, ...] = DEFAULT_ERRORS


def json_route(path: str, endpoint: Callable, *, summary: str, permission: str | None, name: str | None = None,
               params: tuple[Param, ...] = (), response: dict | None = None) -> JsonRoute:
    """A JSON endpoint at ``/api/v1/p/<plugin><path>`` (GET), in the OpenAPI document.

    ``permission`` must be given: a code the plugin or the core declares, checked at the caller's
    unit, or None for any logged-in user. ``params`` (``web.api.ApiParam``) and ``response`` (a JSON
    Schema) describe it in the document; ``name`` (default: ``endpoint.__name__``) is its
    operationId below the plugin's name."""
    return JsonRoute(path=path, endpoint=endpoint, summary=summary, permission=permission,
                     name=name or getattr(endpoint, "__name__", ""), params=tuple(params),
                     response=response or {"type": "object"})


def _plain(value):
    if isinstance(value, Decimal):
        from core.regimes.form_engine import canonical

        return canonical(value)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


def _refusal(request, exc: BaocaoError) -> JSONResponse:
    """A refusal without an HTTP status: 400, in the plugin's words (its messages are in the registry)."""
    catalog = request.app.state.registry.catalog
    body = {"error": {"code": "bad_request",
                      "message": {lang: catalog.gettext(lang, exc.key, **exc.params) for lang in LANGUAGES}}}
    if isinstance(exc, ValidationError) and exc.errors:
        body["error"]["fields"] = {str(f): {lang: catalog.gettext(lang, key, **exc.params) for lang in LANGUAGES}
                                   for f, key in exc.errors.items()}
    return JSONResponse(body, status_code=400, headers=NO_STORE)


def _asgi(route: JsonRoute):
    @api_require(route.permission)
    async def answer(request):
        try:
            data = await run_db(route.endpoint, request)
        except BaocaoError as exc:
            if exc.status is not None:
                raise  # NotFound, Forbidden: the API's 404/403 (web.errors.domain_error)
            return _refusal(request, exc)
        if isinstance(data, Response):
            return data
        body = json.dumps(data, ensure_ascii=False, default=_plain).encode("utf-8")
        return Response(body, media_type="application/json", headers=NO_STORE)

    answer.__name__ = route.name
    return answer


def check(name: str, routes, registry) -> None:
    """Refuse a declaration outside the plugin's namespace, as ``core.registry`` does for the rest."""
    seen = set()
    for route in routes:
        if not isinstance(route, JsonRoute) or not PATH_RE.match(route.path) or ".." in route.path \
                or not re.fullmatch(CODE_PART, route.name or "") or route.name in seen:
            raise PluginError("plugin.error.api_route", plugin=name, path=str(getattr(route, "path", route))[:100])
        seen.add(route.name)
        if route.permission is not None and not own_permission(name, route.permission, registry.permissions):
            raise PluginError("plugin.error.api_permission", plugin=name, path=route.path, code=route.permission)
        if not route.summary.startswith(name + ".") or route.summary not in registry.catalog.messages["vi"]:
            raise PluginError("plugin.error.label_missing", plugin=name, key=route.summary)


def plugin_api_mounts(pm, registry) -> list[Mount]:
    """One mount per healthy plugin that declares JSON endpoints; a bad declaration fails that plugin.
    They go before the core's ``/api/v1`` mount, which would answer 404 for their paths."""
    from web.middleware import PluginBoundary

    mounts = []
    for name in registry.plugin_names():
        routes = registry.domains[name].api
        if not routes or not pm.infos[name].ok:
            continue
        try:
            check(name, routes, registry)
        except PluginError as exc:
            pm.fail(name, "declaration", exc)
            continue
        mounts.append(Mount(f"{PREFIX}/{name}", name=f"api_{name}",
                            routes=[Route(r.path, _asgi(r), methods=["GET"], name=r.name) for r in routes],
                            middleware=[Middleware(ApiBoundary), Middleware(PluginBoundary, plugin=name, pm=pm)]))
    return mounts


def described(registry, enabled) -> tuple[list[Endpoint], dict, list[str]]:
    """(endpoints, their response schemas, tags) of the plugins switched on for the caller, for the
    OpenAPI document and the /api page: their paths below /api/v1, tagged with the plugin's name."""
    endpoints, schemas, tags = [], {}, []
    for name in sorted(n for n in registry.plugin_names() if n in enabled):
        routes = registry.domains[name].api
        if not routes:
            continue
        tags.append(name)
        for route in routes:
            schema = f"{name}.{route.name}"
            schemas[schema] = route.response
            endpoints.append(Endpoint(f"/p/{name}" + CONVERTOR_RE.sub(r"{\1}", route.path), schema, None,
                                      route.summary, route.permission, schema, route.params, tag=name,
                                      errors=route.errors))
    return endpoints, schemas, tags
