"""ACL-01: deny by default. Every route names the permission it needs, or is on the
explicit public list below; a plugin route that names nothing is refused at start-up."""

from __future__ import annotations

import types

from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from core.hookspecs import hookimpl
from core.registry import Domain
from tests.fixtures.plugins import fx
from web.guards import AUTHENTICATED, PUBLIC

# Reviewed one by one: what an anonymous visitor may reach.
PUBLIC_ROUTES = {"login", "login_submit", "login_verify", "login_verify_submit", "logout", "set_language", "healthz",
                 "metrics",  # guarded by its own bearer token (metrics_token), not by a session: web/routes/metrics.py
                 "security_txt"}  # RFC 9116: anyone may read where to report a vulnerability (web/routes/well_known.py)


def walk(routes, prefix=""):
    for route in routes:
        if isinstance(route, Mount):
            if route.name == "static":
                continue  # files, not endpoints
            yield from walk(route.routes, f"{prefix}{route.name}:" if route.name else prefix)
        elif isinstance(route, Route):
            yield f"{prefix}{route.name}", route


def test_acl_01_every_route_declares_a_permission_or_is_listed_public(make_app):
    app = make_app(builtins=fx("fx_good", "fx_view_raises", "fx_menu_raises") + (
        "plugins.kinhte_xahoi", "plugins.chuyen_nganh", "plugins.national_link"))
    registry = app.state.registry
    seen_public, checked = set(), 0
    for name, route in walk(app.routes):
        mark = getattr(route.endpoint, "__baocao_permission__", None)
        assert mark is not None, f"route {name} ({route.path}) declares no permission"
        if mark == PUBLIC:
            seen_public.add(name)
        elif mark != AUTHENTICATED:
            assert mark in registry.permissions, f"route {name} requires an undeclared permission {mark}"
        checked += 1
    assert checked > 10
    assert seen_public == PUBLIC_ROUTES, "the public list changed: review it"


async def _open(request):  # pragma: no cover - never mounted
    return None


def test_acl_01_a_plugin_route_without_a_guard_fails_its_plugin_only(make_app, make_user):
    careless = types.ModuleType("fx_careless")
    careless.register_domain = hookimpl(lambda: Domain(name="fx_careless", label="",
                                                       routes=[Route("/open", _open, name="open")]))
    careless.register_domain.__name__ = "register_domain"
    app = make_app(builtins=fx("fx_good"), extra_plugins=[careless])
    info = app.state.pm.infos["fx_careless"]
    assert info.status == "failed" and info.stage == "declaration" and "/open" in info.summary
    with TestClient(app) as client:
        assert client.get("/p/fx_careless/open").status_code == 404  # never mounted
        assert client.get("/healthz").status_code == 200
