"""Templates: one Jinja2 environment per app, and ``render`` for full pages and fragments.

Autoescaping is on for every template whatever its file name (Starlette's
default covers only .html/.htm/.xml; security.md F11). Plugin templates live in
their own ``templates/<name>/`` folder (checked at start-up), so the loaders
below can be searched in turn without one plugin shadowing another.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import NamedTuple

import jinja2
from starlette.routing import Mount, Route, replace_params
from starlette.templating import Jinja2Templates

from core.catalogue.indicators import value_text as indicator_value_text
from core.db import run_db
from core.i18n import format_date, format_datetime, format_number
from core.registry import MENU_GROUPS, MenuItem
from web import assets, grid_html
from web.htmx import HtmxDetails

TEMPLATES_DIR = Path(__file__).with_name("templates")


def build_templates(registry, *, auto_reload: bool = True) -> Jinja2Templates:
    """``auto_reload``: look at each template file's time of change on every use (development,
    where templates are edited while the server runs); otherwise a template is read once."""
    loaders = [jinja2.FileSystemLoader(str(TEMPLATES_DIR))]
    for name in registry.plugin_names():
        directory = registry.resource_dir(name, "templates")
        if directory is not None:
            loaders.append(jinja2.FileSystemLoader(str(directory)))
    env = jinja2.Environment(loader=jinja2.ChoiceLoader(loaders), autoescape=True,
                             trim_blocks=True, lstrip_blocks=True, auto_reload=auto_reload)
    env.globals["htmx_file"] = assets.HTMX_FILE
    env.globals["indicator_value_text"] = indicator_value_text  # an indicator import's old → new (core/indicators/_plan.html)
    env.globals["grid_body"] = grid_html.grid_body  # the entry grid's rows (core/report_entry/_grid.html)
    env.globals["url_for"] = url_for  # paths, not absolute URLs: right behind any proxy
    # No context processor: Starlette applies those after the view's context and would
    # silently replace a view's own "unit" or "actor"; ``render`` merges them the other way.
    return Jinja2Templates(env=env)


class RoutePaths:
    """Every named route's path format, found once per app: ``path`` fills one in instead of asking
    Starlette, whose ``url_path_for`` asks every route in turn, each miss raising an exception. A
    workflow card's ~20 links with parameters cost ~13 % of a worker's time under load
    (bench/load.py, py-spy), and the menu's ~55 entries and a page's static files ~7,000 misses a
    page. Routes never change once the app exists (Starlette 1.x).

    Indexed as Starlette names them: a route inside a named mount is ``mount:route``, and the first
    route in order wins for a name and set of parameters. Mounts here have no parameters of their own;
    anything else (the static files' mount, a name not found) is left to Starlette. A path without
    parameters, and a static file's, is kept once made (few keys: the route names, the files a
    template names)."""

    def __init__(self, app):
        self.app = app
        self.formats: dict[tuple[str, frozenset], tuple[str, dict]] = {}
        self._fixed: dict[tuple, str] = {}
        self._index(app.routes, prefix="", qualifier="")

    def _index(self, routes, prefix: str, qualifier: str) -> None:
        for route in routes:
            if isinstance(route, Mount):
                if set(route.param_convertors) == {"path"}:
                    inner = qualifier + (f"{route.name}:" if route.name else "")
                    self._index(route.routes, prefix + route.path, inner)
            elif isinstance(route, Route):
                key = (qualifier + route.name, frozenset(route.param_convertors))
                self.formats.setdefault(key, (prefix + route.path_format, route.param_convertors))

    def path(self, name: str, path_params: dict) -> str:
        if path_params and name != "static":
            return self._fill(name, path_params)
        key = (name, *sorted(path_params.items()))
        url = self._fixed.get(key)
        if url is None:
            url = self._fixed[key] = self._fill(name, path_params)
        return url

    def _fill(self, name: str, path_params: dict) -> str:
        found = self.formats.get((name, frozenset(path_params)))
        if found is None:
            return str(self.app.url_path_for(name, **path_params))
        path_format, convertors = found
        return replace_params(path_format, convertors, dict(path_params))[0]


def path_for(app, name: str, /, **path_params) -> str:
    """``app.url_path_for`` through the app's ``RoutePaths``, made on first use."""
    routes = getattr(app.state, "route_paths", None)
    if routes is None:
        routes = app.state.route_paths = RoutePaths(app)
    return routes.path(name, path_params)


@jinja2.pass_context
def url_for(context, name: str, /, **path_params) -> str:
    app = context["request"].app
    url = path_for(app, name, **path_params)
    if name == "static":
        # A fingerprint of the file's content, so browsers may keep static files for a
        # long time (one round trip less per page on a slow line) and still see a change.
        url += f"?v={static_fingerprint(app.state.static, path_params['path'])}"
    return url


@functools.lru_cache(maxsize=512)
def static_fingerprint(static, path: str) -> str:
    full_path, _ = static.lookup_path(path)
    if not full_path:
        return "0"
    with open(full_path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()[:12]


def request_context(request) -> dict:
    """Variables every template can use (sync: Starlette calls context processors so)."""
    state = request.state
    lang = getattr(state, "lang", "vi")
    catalog = request.app.state.registry.catalog

    def translate(key, **params):
        return catalog.gettext(lang, key, **params)

    return {
        "_": translate,
        "lang": lang,
        "actor": getattr(state, "actor", None),
        "unit": getattr(state, "unit", None),
        "csrf_token": getattr(state, "csrf_token", ""),
        "request_id": getattr(state, "request_id", ""),
        "fmt_number": lambda v, decimals=None: format_number(v, lang, decimals),
        "fmt_date": lambda v: format_date(v, lang),
        "fmt_datetime": lambda v: format_datetime(v, lang),
        # A deadline rule ("1wd", "day:25") in plain words: the one formatter of every screen.
        "fmt_deadline_rule": lambda rule, frequency=None: _describe_rule(rule, translate, frequency),
        "htmx": getattr(state, "htmx", None),
    }


def _describe_rule(rule, translate, frequency):
    from core.regimes.regimes import describe_deadline_rule  # the domain's wording, loaded on first use

    return describe_deadline_rule(rule, translate, frequency)


def _resolve(request, route: str) -> str:
    return route if route.startswith("/") else path_for(request.app, route)


class MenuEntry(NamedTuple):
    item: MenuItem
    url: str
    current: bool  # the page shown is this entry's or one below it


class MenuGroup(NamedTuple):
    group: str
    label: str  # a message key
    entries: list[MenuEntry]


def build_menu(request) -> list[MenuGroup]:
    """Menu groups for the current user: declared items plus contributions, filtered here.
    Tuples with names, not dicts: a template reads ``entry.url`` as an attribute first, and a dict
    answers that with an exception (~55 entries × 4 reads a page)."""
    app_state = request.app.state
    registry, pm = app_state.registry, app_state.pm
    actor, enabled = request.state.actor, request.state.enabled
    items: list[MenuItem] = [i for i in registry.menu() if i.plugin == "core" or i.plugin in enabled]
    for name, contributed in pm.call_each("menu_items", enabled=enabled, request=request, actor=actor,
                                          unit=request.state.unit):
        items.extend(i for i in contributed if isinstance(i, MenuItem) and i.plugin == name)
    groups: dict[str, list] = {}
    path = request.url.path
    for item in sorted(items, key=lambda i: (MENU_GROUPS.get(i.group, 50), i.order, i.id)):
        if item.permission and not request.state.access.allowed(item.permission):
            continue
        try:
            url = _resolve(request, item.route)
        except Exception as exc:  # noqa: BLE001 — an unresolvable entry is dropped, the page renders
            pm.record_error(item.plugin, "contribution", exc)
            continue
        current = path == url or (url != "/" and path.startswith(url.rstrip("/") + "/"))
        groups.setdefault(item.group, []).append(MenuEntry(item, url, current))
    # A plugin's own group is titled with the plugin's label.
    return [MenuGroup(g, f"nav.group.{g}" if g in MENU_GROUPS else f"{g}.label", e) for g, e in groups.items()]


def template_extras(request, template_name: str) -> dict:
    """``extra_template_vars`` contributions, each key prefixed with its plugin's name."""
    pm = request.app.state.pm
    extras = {}
    for name, values in pm.call_each("extra_template_vars", enabled=getattr(request.state, "enabled", frozenset()),
                                     request=request, template_name=template_name):
        if isinstance(values, dict):
            extras.update({f"{name}_{key}": value for key, value in values.items()})
    return extras


async def render(request, page: str, context: dict | None = None, *, partial: str | None = None,
                 status_code: int = 200, headers: dict | None = None):
    """Render ``page`` in full, or only ``partial`` for an htmx request that wants a fragment."""
    htmx = getattr(request.state, "htmx", None) or HtmxDetails(request.headers)
    name = partial if partial and htmx.wants_partial else page
    ctx = dict(context or {})
    if name == page and "menu" not in ctx:  # a fragment passes its own (empty) menu: none is built
        ctx["menu"] = await run_db(build_menu, request) if getattr(request.state, "actor", None) else []
    ctx = {**request_context(request), **ctx, **template_extras(request, name)}
    response = request.app.state.templates.TemplateResponse(request, name, ctx, status_code=status_code,
                                                            headers=headers)
    response.headers["Vary"] = "HX-Request"
    return response
