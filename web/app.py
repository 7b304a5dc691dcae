"""The application factory.

Starlette 1.x is declaration-only (no adding routes or middleware after the
app exists), so everything is collected first: settings, database, plugins and
their declarations, templates, routes. Migrations and plugins' ``startup``
hooks run in the lifespan, before the first request is served.
"""

from __future__ import annotations

import gc
import logging
from contextlib import asynccontextmanager
from pathlib import Path

import anyio.to_thread
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from core import background, clock, malloc, outbox
from core.accounts import passwords
from core.db import close_db, init_db
from core.errors import BaocaoError, PluginError
from core.migrate import migrate_all
from core.plugins import BUILTIN_PLUGINS, build_plugin_manager
from core.registry import build_registry
from core.settings import Settings, load_settings
from core.startup import start_plugins
from web import errors
from core.metrics import Metrics
from web.middleware import (CSRFMiddleware, ObservedRequests, PluginBoundary, PluginRequestError,
                            RequestContextMiddleware, RequestLimits, SecurityHeadersMiddleware, ServerErrorPage)
from web.routes import admin, api as api_routes, audit as audit_routes, home, mfa, session, units, users
from web.routes import indicators as indicator_routes
from web.routes import figures_explorer as figures_explorer_routes
from web.routes import regimes as regime_routes, reports as report_routes
from web.routes import forms as form_routes
from web.routes import report_entry
from web.routes import completeness as completeness_routes
from web.routes import report_workflow as report_workflow_routes
from web.routes import usage as usage_routes
from web.routes import consolidation as consolidation_routes
from web.routes import feedback as feedback_routes
from web.routes import background as background_routes
from web.routes import repair as repair_routes
from web.routes import unit_groups as unit_group_routes
from web.routes import unit_changes
from web.routes import dashboard as dashboard_routes
from web.routes import report_excel as report_excel_routes
from web.routes import report_queue as report_queue_routes, report_review as report_review_routes
from web.routes import notifications as notification_routes
from web.routes import followups as followup_routes
from web.routes import report_signing as report_signing_routes
from web.routes import report_print as report_print_routes
from web.routes import reminders as reminder_routes
from web.routes import trust as trust_routes
from web.routes import calendar as calendar_routes
from web.routes import outbox as outbox_routes
from web.routes import roles as role_routes
from web.routes import metrics as metrics_routes
from web.routes import well_known
from web.templating import build_templates
from web.rate_limits import RateLimits

log = logging.getLogger("baocao.app")
STATIC_DIR = Path(__file__).with_name("static")


def _plugin_mounts(pm, registry) -> list[Mount]:
    mounts = []
    for name in registry.plugin_names():
        domain = registry.domains[name]
        try:
            routes = list(domain.routes)
            for route in routes:
                # Deny by default: a plugin page that names no permission (nor is marked public) never mounts.
                if getattr(getattr(route, "endpoint", None), "__baocao_permission__", None) is None:
                    raise PluginError("plugin.error.route_unguarded", plugin=name,
                                      route=getattr(route, "path", repr(route)))
            mount = Mount(f"/p/{name}", routes=routes, name=name,
                          middleware=[Middleware(PluginBoundary, plugin=name, pm=pm)])
        except Exception as exc:  # noqa: BLE001 — a bad route declaration fails this plugin only
            pm.fail(name, "declaration", exc)
            continue
        mounts.append(mount)
    return mounts


def _check_menu_routes(pm, registry, routes) -> None:
    """Every declared menu entry must point at a route that exists."""
    from starlette.routing import NoMatchFound, Router

    router = Router(routes=routes)
    for name in registry.plugin_names():
        for item in registry.domains[name].menu:
            if item.route.startswith("/"):
                continue
            try:
                router.url_path_for(item.route)
            except NoMatchFound:
                pm.fail(name, "declaration", PluginError("plugin.error.menu_route", plugin=name, id=item.id,
                                                         route=item.route))
                break


def _static_files(registry) -> StaticFiles:
    """One /static mount: the core's files under core/, each plugin's under <name>/."""
    static = StaticFiles(directory=str(STATIC_DIR))
    for name in registry.plugin_names():
        directory = registry.resource_dir(name, "static")
        if directory is not None:
            static.all_directories.append(str(directory))
    return static


def create_app(settings: Settings | None = None, *, builtins=BUILTIN_PLUGINS, extra_plugins=(),
               load_entrypoints: bool = True, strict: bool = False, migrate: bool = True) -> Starlette:
    settings = settings or load_settings()
    settings.check_for_production()
    well_known.warn_if_unconfigured(settings)  # no security.txt contact: a warning, not a refusal
    clock.configure(settings.time_zone)  # one process serves one instance: its days are the setting's zone
    passwords.self_test()
    malloc.map_large_blocks()  # a burst of logins' 19 MiB hashes go back to the system (core/malloc.py)
    init_db(settings.database_url)
    pm = build_plugin_manager(settings, builtins=builtins, extra_plugins=extra_plugins,
                              load_entrypoints=load_entrypoints, strict=strict)
    registry = build_registry(pm, settings)
    outbox.configure(pm, settings)  # the channels enqueue accepts and the worker's job delivers
    templates = build_templates(registry, auto_reload=settings.mode == "development")
    metrics = Metrics(settings=settings)  # this app's request metrics (or this worker's share of them: core.metrics)

    core_routes = (session.ROUTES + mfa.ROUTES + home.ROUTES + admin.ROUTES + units.ROUTES + users.ROUTES
                   + audit_routes.ROUTES + api_routes.ROUTES + indicator_routes.ROUTES + figures_explorer_routes.ROUTES
                   + regime_routes.ROUTES + report_routes.ROUTES + report_entry.ROUTES + report_workflow_routes.ROUTES
                   + unit_group_routes.ROUTES + unit_changes.ROUTES + dashboard_routes.ROUTES
                   + report_excel_routes.ROUTES + form_routes.ROUTES
                   + report_queue_routes.ROUTES + report_review_routes.ROUTES + completeness_routes.ROUTES
                   + consolidation_routes.ROUTES + usage_routes.ROUTES
                   + notification_routes.ROUTES + feedback_routes.ROUTES
                   + report_signing_routes.ROUTES + followup_routes.ROUTES
                   + report_print_routes.ROUTES + reminder_routes.ROUTES
                   + trust_routes.ROUTES
                   + calendar_routes.ROUTES
                   + outbox_routes.ROUTES
                   + role_routes.ROUTES
                   + background_routes.ROUTES + repair_routes.ROUTES
                   + metrics_routes.ROUTES + well_known.ROUTES)
    plugin_mounts = _plugin_mounts(pm, registry)
    _check_menu_routes(pm, registry, core_routes + plugin_mounts)
    static = _static_files(registry)
    # Plugins' JSON endpoints (/api/v1/p/<name>/, web.api.json_route) before the core's /api/v1 mount.
    from web.routes.plugin_api import plugin_api_mounts

    routes = plugin_api_mounts(pm, registry) + core_routes + plugin_mounts + [Mount("/static", app=static,
                                                                                      name="static")]

    @asynccontextmanager
    async def lifespan(app):
        if migrate:
            await anyio.to_thread.run_sync(lambda: _migrate(registry, pm, settings))
        await start_plugins(pm, registry, settings)  # roles, start-up hooks, regimes (core.startup)
        await anyio.to_thread.run_sync(_tidy_background_jobs)
        # Everything made so far (modules, templates, routes, plugins) lives as long as the process:
        # moved out of the collector's generations, a full collection no longer walks it in the
        # middle of a request (the 780-cell entry page's p95 halves; bench/run.py). Not in tests:
        # there the app lives for one test, and a full collection of the test process at each
        # start cost more than the test itself.
        frozen = settings.mode != "test"
        if frozen:
            gc.collect()
            gc.freeze()
        yield
        if frozen:
            gc.unfreeze()  # an app stopped inside a longer process leaves nothing uncollectable
        # Long work still running ends before its connections go (a server stopping politely).
        await anyio.to_thread.run_sync(background.wait_all)
        close_db()

    middleware = [
        # Outermost: e-mail queued by a request is delivered once its response has gone out.
        Middleware(notification_routes.DeliverMailAfterRequest, settings=settings),
        Middleware(SecurityHeadersMiddleware, settings=settings),
        Middleware(ObservedRequests, metrics=metrics),  # access log, request metrics (docs/observability.md)
        Middleware(ServerErrorPage, handler=errors.server_error),
        Middleware(TrustedHostMiddleware, allowed_hosts=list(settings.allowed_hosts)),
        Middleware(RequestContextMiddleware, settings=settings, registry=registry, pm=pm),
        Middleware(RateLimits, settings=settings, routes=routes),  # per caller, API and exports (API-04)
        Middleware(RequestLimits, settings=settings, render_error=errors.render_error),
        Middleware(CSRFMiddleware, settings=settings, render_error=errors.render_error),
    ]
    app = Starlette(
        debug=False,  # tracebacks never reach a browser, in any mode
        routes=routes,
        middleware=middleware,
        exception_handlers={HTTPException: errors.http_error, PluginRequestError: errors.plugin_error,
                            BaocaoError: errors.domain_error,  # NotFound 404, Forbidden 403, …
                            Exception: errors.server_error},
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.pm = pm
    app.state.registry = registry
    app.state.templates = templates
    app.state.metrics = metrics
    app.state.static = static
    return app


def _tidy_background_jobs() -> None:
    """Jobs left "running" by a process of this machine that has ended are marked interrupted;
    finished ones older than a week go (the worker purges them too, daily)."""
    import peewee

    from core.db import db

    try:
        with db.connection_context():
            background.reap()
            background.purge()
    except peewee.DatabaseError as exc:  # the server starts anyway; /healthz says the database is down
        logging.getLogger("baocao.background").warning("background jobs not tidied: %s", exc)


def _migrate(registry, pm, settings) -> None:
    """Pending steps, each process in turn under the start lock: the first backs up (or, in
    production without a backup key, refuses to start: core.migrate.backup_before) and migrates."""
    migrate_all(registry, pm, settings)  # opens and closes its own connections
