"""The plugin manager: explicit built-ins, allow-listed entry points, check_pending,
one manager per app, and failure isolation at the stages that run before a request.

The fixture plugins are real packages under tests/fixtures/plugins (see its
__init__ for which one fails where); baocao-hello under tests/fixtures/vendor
is a vendor package "installed" into a folder of the test's own.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import types

import pluggy
import pytest
from starlette.testclient import TestClient

from core.errors import PluginError, StartupError
from core.hookspecs import hookimpl
from core.plugins import BUILTIN_PLUGINS, ENTRY_POINT_GROUP, build_plugin_manager, summarise
from core.registry import build_registry
from core.settings import PluginSettings
from tests.fixtures.plugins import FAILING, fx, log_in
from tests.fixtures.vendor import HELLO, forget_modules, install_dist, install_hello

BUILTIN_NAMES = {"kinhte_xahoi", "chuyen_nganh", "national_link"}
# Stages a manager and registry reach without a database or a request.
EARLY = {name: stage for name, stage in FAILING.items() if stage in ("import", "registration", "declaration")}


def load(settings, *names, strict=False, **kwargs):
    """A manager and registry with fx_good plus ``names``, the way create_app builds them."""
    pm = build_plugin_manager(settings, builtins=fx("fx_good", *names), load_entrypoints=False,
                              strict=strict, **kwargs)
    return pm, build_registry(pm, settings)


# -- built-ins and check_pending ----------------------------------------------------------


def test_builtins_come_from_an_explicit_list_and_pass_check_pending(settings):
    # Import paths written out in core/plugins.py, not discovered by scanning a folder.
    assert isinstance(BUILTIN_PLUGINS, tuple) and all(p.startswith("plugins.") for p in BUILTIN_PLUGINS)
    pm = build_plugin_manager(settings, load_entrypoints=False, strict=True)
    assert set(pm.infos) == {p.rsplit(".", 1)[1] for p in BUILTIN_PLUGINS} >= BUILTIN_NAMES
    assert all(i.ok and i.source == "builtin" and "register_domain" in i.hooks for i in pm.infos.values())
    pm.check_pending()  # every hookimpl of every built-in matches a spec
    registry = build_registry(pm, settings)
    assert set(registry.plugin_names()) == set(pm.infos)


def test_builtins_argument_replaces_the_list(settings):
    pm = build_plugin_manager(settings, builtins=fx("fx_good"), load_entrypoints=False)
    assert set(pm.infos) == {"fx_good"}
    assert pm.has_plugin("fx_good") and not pm.has_plugin("kinhte_xahoi")


def test_misspelt_hook_is_caught_by_check_pending_and_only_that_plugin_fails(settings):
    pm, registry = load(settings, "fx_misspelt_hook")
    info = pm.infos["fx_misspelt_hook"]
    assert (info.status, info.stage) == ("failed", "registration")
    assert "menu_item" in info.summary
    assert not pm.has_plugin("fx_misspelt_hook")  # unregistered: its hooks never run
    pm.check_pending()  # nothing unverified remains
    assert pm.infos["fx_good"].ok and "fx_good" in registry.domains and "fx_misspelt_hook" not in registry.domains


# -- one manager per application ---------------------------------------------------------------


def test_two_apps_in_one_process_have_independent_managers(make_app):
    first = make_app(builtins=fx("fx_good"))
    second = make_app(builtins=fx("fx_good", "fx_menu_raises", "fx_misspelt_hook"))
    pm1, pm2 = first.state.pm, second.state.pm
    assert pm1 is not pm2 and first.state.registry is not second.state.registry
    assert set(pm1.infos) == {"fx_good"}
    assert set(pm2.infos) == {"fx_good", "fx_menu_raises", "fx_misspelt_hook"}
    assert [i.plugin_name for i in pm1.hook.menu_items.get_hookimpls()] == ["fx_good"]
    assert {i.plugin_name for i in pm2.hook.menu_items.get_hookimpls()} == {"fx_good", "fx_menu_raises"}
    assert set(first.state.registry.domains) == {"core", "fx_good"}
    assert set(second.state.registry.domains) == {"core", "fx_good", "fx_menu_raises"}

    # What happens to a plugin in one app stays in that app.
    pm2.record_error("fx_good", "request", RuntimeError("only in the second app"))
    pm2.fail("fx_good", "startup", RuntimeError("only in the second app"))
    assert not pm2.infos["fx_good"].ok and not pm2.has_plugin("fx_good")
    assert pm1.infos["fx_good"].ok and pm1.has_plugin("fx_good") and not pm1.infos["fx_good"].errors
    assert first.state.templates is not second.state.templates


def test_no_plugin_manager_lives_at_module_level(make_app):
    import core.plugins
    import core.registry
    import web.app
    import web.middleware
    import web.templating

    make_app(builtins=fx("fx_good"))
    for module in (core.plugins, core.registry, web.app, web.middleware, web.templating):
        found = [name for name, value in vars(module).items() if isinstance(value, pluggy.PluginManager)]
        assert found == [], f"{module.__name__} keeps a plugin manager in {found}"


# -- failures at import, registration and declaration ----------------------------------------------


@pytest.mark.parametrize("name,stage", sorted(EARLY.items()))
def test_a_failing_plugin_is_isolated_at_its_stage(settings, name, stage):
    pm, registry = load(settings, name)
    info = pm.infos[name]
    assert (info.status, info.stage) == ("failed", stage)
    assert info.summary and "\n" not in info.summary and "Traceback" not in info.summary
    assert not pm.has_plugin(name) and name not in registry.domains
    assert pm.infos["fx_good"].ok and "fx_good" in registry.domains
    assert "fx_good.item.view" in registry.permissions
    assert set(pm.healthy) == {"fx_good"}


def test_summaries_name_the_culprit(settings):
    pm, _ = load(settings, *EARLY)
    summary = {name: pm.infos[name].summary for name in EARLY}
    assert "baocao_fixture_missing_dependency" in summary["fx_broken_import"]
    assert summary["fx_broken_import"].startswith("ModuleNotFoundError")
    assert "FxBadName" in summary["FxBadName"]
    assert "fx_bad_hook_args" in summary["fx_bad_hook_args"] and "menu_items" in summary["fx_bad_hook_args"]
    assert "templates/layout.html" in summary["fx_bad_namespace"]
    assert "fx_dup_permission.item.view" in summary["fx_dup_permission"]
    assert "fx_good.item.view" in summary["fx_foreign_permission"]
    # The fixture that tried to take fx_good's code did not take it.
    assert pm.infos["fx_good"].ok


def test_foreign_permission_fails_whichever_loads_first(settings):
    pm = build_plugin_manager(settings, builtins=fx("fx_foreign_permission", "fx_good"), load_entrypoints=False)
    registry = build_registry(pm, settings)
    assert pm.infos["fx_foreign_permission"].stage == "declaration"
    assert pm.infos["fx_good"].ok and registry.permissions["fx_good.item.view"].plugin == "fx_good"


def test_failure_goes_to_the_log_with_its_traceback(settings, caplog):
    with caplog.at_level(logging.ERROR, logger="baocao.plugins"):
        load(settings, "fx_broken_import")
    (record,) = [r for r in caplog.records if "fx_broken_import" in r.getMessage()]
    message = record.getMessage()
    assert message.startswith("plugin fx_broken_import failed at import: ModuleNotFoundError")
    assert "Traceback (most recent call last)" in message


def test_summarise_gives_one_line():
    assert summarise(ValueError("first line\nsecond line")) == "ValueError: first line"
    assert summarise(RuntimeError()) == "RuntimeError"
    text = summarise(PluginError("plugin.error.bad_name", plugin="Xy"))
    assert "\n" not in text and '"Xy"' in text and "PluginError" not in text
    assert len(summarise(ValueError("x" * 1000))) <= 300


def test_extra_plugin_objects_are_registered_by_name(settings):
    calls = []
    plugin = types.ModuleType("fx_extra")

    @hookimpl
    def startup(registry):
        calls.append(registry)

    plugin.startup = startup
    pm = build_plugin_manager(settings, builtins=(), extra_plugins=[plugin], load_entrypoints=False)
    assert pm.infos["fx_extra"].source == "extra" and pm.infos["fx_extra"].hooks == ["startup"]
    assert pm.call_each("startup", stage="startup", settings=settings, registry="R") == []
    assert calls == ["R"]


def test_call_each_skips_plugins_not_enabled_and_records_contribution_errors(settings):
    pm, _ = load(settings, "fx_menu_raises")
    results = pm.call_each("menu_items", enabled={"fx_good", "fx_menu_raises"}, request=None, actor=None, unit=None)
    assert [name for name, _ in results] == ["fx_good"]
    assert pm.infos["fx_menu_raises"].ok  # a contribution failure keeps the plugin
    (stage, summary, _when), = pm.infos["fx_menu_raises"].errors
    assert stage == "contribution" and "menu badge count" in summary
    assert pm.call_each("menu_items", enabled={"fx_menu_raises"}, request=None, actor=None, unit=None) == []
    assert len(pm.infos["fx_menu_raises"].errors) == 2
    assert pm.call_each("menu_items", enabled=set(), request=None, actor=None, unit=None) == []
    assert len(pm.infos["fx_menu_raises"].errors) == 2  # not enabled: not even called


# -- strict mode (tests and CI) re-raises -------------------------------------------------------------


def test_strict_reraises_an_import_failure(settings):
    with pytest.raises(ModuleNotFoundError, match="baocao_fixture_missing_dependency"):
        build_plugin_manager(settings, builtins=fx("fx_good", "fx_broken_import"), load_entrypoints=False,
                             strict=True)


@pytest.mark.parametrize("name", ["fx_bad_hook_args", "fx_misspelt_hook"])
def test_strict_reraises_a_registration_failure(settings, name):
    # Refused by the manager itself (refuse_unhonoured), before pluggy would: one clear message.
    with pytest.raises(PluginError, match=name):
        build_plugin_manager(settings, builtins=fx("fx_good", name), load_entrypoints=False, strict=True)


def test_strict_reraises_a_bad_name(settings):
    with pytest.raises(PluginError, match="FxBadName"):
        build_plugin_manager(settings, builtins=fx("FxBadName"), load_entrypoints=False, strict=True)


@pytest.mark.parametrize("name", ["fx_bad_namespace", "fx_dup_permission", "fx_foreign_permission"])
def test_strict_reraises_a_declaration_failure(settings, name):
    with pytest.raises(PluginError, match=name):
        load(settings, name, strict=True)


@pytest.mark.parametrize("name,error", [("fx_bad_migration", RuntimeError), ("fx_startup_fails", ConnectionError)])
def test_strict_reraises_a_migration_or_startup_failure(make_app, name, error):
    app = make_app(builtins=fx("fx_good", name), strict=True)
    with pytest.raises(error, match=name):
        with TestClient(app):
            pass


# -- the settings kill switch ---------------------------------------------------------------------------


def test_disabled_in_settings_is_blocked_everywhere(make_settings):
    settings = make_settings(plugins=PluginSettings(disabled=("fx_menu_raises",)))
    pm, registry = load(settings, "fx_menu_raises")
    info = pm.infos["fx_menu_raises"]
    assert info.status == "blocked" and pm.is_blocked("fx_menu_raises")
    assert "fx_menu_raises" not in registry.domains and pm.infos["fx_good"].ok


def test_a_bad_name_in_disabled_refuses_to_start(make_settings):
    settings = make_settings(plugins=PluginSettings(disabled=("Bad-Name",)))
    with pytest.raises(StartupError, match="Bad-Name"):
        build_plugin_manager(settings, load_entrypoints=False)


# -- vendor packages through the entry-point group baocao.plugins ------------------------------------------


@pytest.fixture
def hello_installed(tmp_path, monkeypatch):
    """baocao-hello "installed" into a folder on sys.path, never into the venv."""
    forget_modules("baocao_hello")
    site = install_hello(tmp_path / "site-packages")
    monkeypatch.syspath_prepend(str(site))
    yield site
    forget_modules("baocao_hello")


def test_the_fixture_install_is_what_importlib_metadata_finds(hello_installed):
    import importlib.metadata

    dist = importlib.metadata.distribution("baocao-hello")
    assert dist.version == "1.0"
    (ep,) = [ep for ep in dist.entry_points if ep.group == ENTRY_POINT_GROUP]
    assert (ep.name, ep.value) == ("hello", "baocao_hello")


def test_an_installed_package_is_not_loaded_unless_allow_listed(make_app, hello_installed):
    app = make_app(load_entrypoints=True, builtins=fx("fx_good"))
    info = app.state.pm.infos["hello"]
    assert (info.status, info.source, info.version, info.distribution) == \
        ("not_allowed", "entrypoint", "1.0", "baocao-hello")
    assert "baocao_hello" not in sys.modules  # discovered, never imported
    assert not app.state.pm.has_plugin("hello") and "hello" not in app.state.registry.domains
    with TestClient(app) as client:
        assert client.get("/p/hello/").status_code == 404


def test_load_entrypoints_false_ignores_installed_packages(make_app, make_settings, hello_installed):
    settings = make_settings(plugins=PluginSettings(allow_external=("hello",)))
    app = make_app(settings, load_entrypoints=False, builtins=())
    assert "hello" not in app.state.pm.infos and "baocao_hello" not in sys.modules


def test_an_allow_listed_package_loads_and_mounts(make_app, make_settings, make_user, hello_installed):
    settings = make_settings(plugins=PluginSettings(allow_external=("hello",)))
    app = make_app(settings, load_entrypoints=True, builtins=fx("fx_good"), strict=True)
    info = app.state.pm.infos["hello"]
    assert (info.status, info.source, info.version, info.distribution) == ("ok", "entrypoint", "1.0", "baocao-hello")
    assert "baocao_hello" in sys.modules
    assert app.url_path_for("hello:greetings") == "/p/hello/"
    with TestClient(app) as client:
        user, password = make_user(is_admin=True)
        log_in(client, user, password)
        page = client.get("/p/hello/")
        assert page.status_code == 200 and 'id="hello-greetings"' in page.text
        assert client.get("/static/hello/hello.css").status_code == 200
        plugins = client.get("/admin/plugins")
        assert plugins.status_code == 200
        row = plugins.text.split('id="plugin-hello"', 1)[1].split("</tr>", 1)[0]
        assert ">1.0<" in row and "baocao-hello" in row
        from core.i18n import core_catalog

        assert core_catalog().gettext("vi", "plugins.source.entrypoint") in row
        assert core_catalog().gettext("vi", "plugins.status.ok") in row


def test_blocked_entry_point_is_not_imported_even_if_allowed(make_app, make_settings, hello_installed):
    settings = make_settings(plugins=PluginSettings(allow_external=("hello",), disabled=("hello",)))
    app = make_app(settings, load_entrypoints=True, builtins=())
    assert app.state.pm.infos["hello"].status == "blocked" and "baocao_hello" not in sys.modules


def test_an_allow_listed_package_that_fails_to_import_is_isolated(make_app, make_settings, tmp_path, monkeypatch):
    site = install_dist(tmp_path / "site-packages", "baocao-broken", "0.3",
                        {ENTRY_POINT_GROUP: {"broken_vendor": "tests.fixtures.plugins.fx_broken_import"}})
    monkeypatch.syspath_prepend(str(site))
    settings = make_settings(plugins=PluginSettings(allow_external=("broken_vendor",)))
    app = make_app(settings, load_entrypoints=True, builtins=fx("fx_good"))
    info = app.state.pm.infos["broken_vendor"]
    assert (info.status, info.stage, info.source, info.version) == ("failed", "import", "entrypoint", "0.3")
    assert "baocao_fixture_missing_dependency" in info.summary
    assert app.state.pm.infos["fx_good"].ok


def test_the_vendor_package_passes_its_own_tests_when_installed(tmp_path):
    """What docs/writing_plugins.md tells a vendor to run, run against the installed package."""
    site = install_hello(tmp_path / "site-packages")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BAOCAO_", "PYTEST_"))}
    env.update(PYTHONPATH=str(site), PYTHONDONTWRITEBYTECODE="1")
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                             "--basetemp", str(tmp_path / "pytest"), "tests"],
                            cwd=HELLO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "4 passed" in result.stdout


# -- implementations the manager will not honour are refused at registration (issue 13 item 10) ------


def _plugin(name, **functions):
    module = types.ModuleType(name)
    for attr, function in functions.items():
        setattr(module, attr, function)
    return module


def _menu(request, actor, unit):
    return []


def _wrapper(request, actor, unit):
    yield


REFUSED = {
    "fx_wrapper": ({"menu_items": hookimpl(wrapper=True)(_wrapper)}, "wrapper", "menu_items"),
    "fx_hookwrapper": ({"menu_items": hookimpl(hookwrapper=True)(_wrapper)}, "hookwrapper", "menu_items"),
    "fx_unknown": ({"on_report_frobbed": hookimpl(lambda settings: None)}, "on_report_frobbed", "misspelt"),
    "fx_specname_unknown": ({"whatever": hookimpl(specname="menu_itemz")(_menu)}, "menu_itemz", "misspelt"),
    # A keyword with a default is never passed by call_each: a typo would stay at its default.
    "fx_stray_kwarg": ({"menu_items": hookimpl(lambda request, user=None: [])}, "user", "menu_items"),
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_an_implementation_the_core_cannot_honour_is_refused_at_registration(settings, name):
    functions, *words = REFUSED[name]
    pm = build_plugin_manager(settings, builtins=fx("fx_good"), extra_plugins=[_plugin(name, **functions)],
                              load_entrypoints=False)
    info = pm.infos[name]
    assert (info.status, info.stage) == ("failed", "registration")
    assert name in info.summary and all(word in info.summary for word in words), info.summary
    assert not pm.has_plugin(name)  # nothing of it was registered: its hooks never run
    assert pm.infos["fx_good"].ok
    assert [n for n, _ in pm.call_each("menu_items", request=None, actor=None, unit=None)] == ["fx_good"]
    pm.check_pending()


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_strict_reraises_an_implementation_the_core_cannot_honour(settings, name):
    functions, *_ = REFUSED[name]
    with pytest.raises(PluginError, match=name):
        build_plugin_manager(settings, builtins=(), extra_plugins=[_plugin(name, **functions)],
                             load_entrypoints=False, strict=True)


def test_an_optional_implementation_of_a_hook_this_core_lacks_is_accepted_and_never_called(settings):
    calls = []
    plugin = _plugin("fx_newer", on_future_event=hookimpl(optionalhook=True)(lambda event: calls.append(event)),
                     menu_items=hookimpl(_menu))
    pm = build_plugin_manager(settings, builtins=(), extra_plugins=[plugin], load_entrypoints=False, strict=True)
    assert pm.infos["fx_newer"].ok and calls == []
    pm.check_pending()


def test_tryfirst_and_trylast_order_the_calls_of_call_each(settings):
    order = []

    def impl(name, **opts):
        return _plugin(name, menu_items=hookimpl(**opts)(lambda request: order.append(name)))

    plugins = [impl("fx_last", trylast=True), impl("fx_first", tryfirst=True), impl("fx_plain_a"),
               impl("fx_plain_b")]
    pm = build_plugin_manager(settings, builtins=(), extra_plugins=plugins, load_entrypoints=False, strict=True)
    pm.call_each("menu_items", request=None, actor=None, unit=None)
    # pluggy's own order: tryfirst, then the others last registered first, then trylast.
    assert order == ["fx_first", "fx_plain_b", "fx_plain_a", "fx_last"]


@pytest.mark.parametrize("option", ["firstresult", "historic"])
def test_a_hookspec_call_each_cannot_honour_is_refused(settings, option):
    spec = types.ModuleType("fx_specs")
    spec.pick_one = pluggy.HookspecMarker("baocao")(**{option: True})(lambda settings: None)
    pm = build_plugin_manager(settings, builtins=(), load_entrypoints=False)
    with pytest.raises(TypeError, match="pick_one"):
        pm.add_hookspecs(spec)


def test_no_core_hookspec_asks_for_firstresult_or_historic():
    from core import hookspecs

    marked = [name for name, value in vars(hookspecs).items() if hasattr(value, "baocao_spec")]
    assert marked and all(not getattr(hookspecs, n).baocao_spec.get(o) for n in marked
                          for o in ("firstresult", "historic"))
