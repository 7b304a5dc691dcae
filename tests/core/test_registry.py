"""Plugins declare, the core enforces: names and namespaces checked at start-up.

Each rule is tested on its own with a ``Domain`` (``validate_domain``) or a
folder (``check_resource_namespace``), and through ``build_registry`` with
throw-away plugin modules to show that a breach fails only the plugin at fault.
"""

from __future__ import annotations

import json
import types

import pytest

import core
from core.errors import PluginError
from core.hookspecs import hookimpl
from core.i18n import Catalog, core_catalog
from core.plugins import build_plugin_manager, summarise
from core.registry import CORE_DOMAIN, Domain, MenuItem, Permission, build_registry, check_resource_namespace, \
    plugin_messages, validate_domain
from core.settings import PLUGIN_NAME_RE
from tests.fixtures.plugins import fx


def catalog_with(*keys):
    catalog = core_catalog().copy()
    for key in keys:
        catalog.messages["vi"][key] = catalog.messages["en"][key] = key
    return catalog


def plugin(name, **hooks):
    """A throw-away plugin module named ``name`` implementing ``hooks``."""
    module = types.ModuleType(name)
    for hook_name, fn in hooks.items():
        fn.__name__ = hook_name
        setattr(module, hook_name, hookimpl(fn))
    return module


def domain_hook(**fields):
    def register_domain():
        return Domain(**fields)

    return register_domain


def build(settings, *extra, names=("fx_good",)):
    pm = build_plugin_manager(settings, builtins=fx(*names), extra_plugins=extra, load_entrypoints=False)
    return pm, build_registry(pm, settings)


# -- what fx_good declares ends up in the registry -----------------------------------------------------------


def test_fx_good_declarations_are_registered(settings):
    pm, registry = build(settings)
    domain = registry.domains["fx_good"]
    assert [r.name for r in domain.routes] == ["index", "items", "item_add"]
    assert {c: p.plugin for c, p in registry.permissions.items() if c.startswith("fx_good.")} == \
        {"fx_good.item.view": "fx_good", "fx_good.item.edit": "fx_good"}
    assert "core.plugin.admin" in registry.permissions
    assert [m.id for m in registry.menu() if m.plugin == "fx_good"] == ["fx_good.items"]
    assert registry.resource_dir("fx_good", "templates").joinpath("fx_good", "page.html").is_file()
    assert registry.resource_dir("fx_good", "static").joinpath("fx_good", "fx_good.css").is_file()
    assert registry.resource_dir("fx_good", "migrations").joinpath("0001_item.py").is_file()
    assert registry.catalog.gettext("vi", "fx_good.label") == "Phân hệ mẫu"
    assert registry.catalog.gettext("en", "fx_good.label") == "Sample plugin"
    assert registry.plugin_names() == ["fx_good"]
    # The core's own catalogue is not changed by a plugin's messages.
    assert "fx_good.label" not in core_catalog().messages["vi"]


def test_plugin_models_get_prefixed_tables():
    from tests.fixtures.plugins.fx_good.models import Item

    assert Item._meta.table_name == "fx_good_item"


@pytest.mark.parametrize("name,ok", [
    ("kinhte_xahoi", True), ("abc", True), ("a" * 31, True), ("fx_2", True),
    ("ab", False), ("a" * 32, False), ("2fx", False), ("_fx", False), ("FxBadName", False), ("fx-good", False),
    ("fx.good", False), ("fx good", False), ("hello\n", False),
])
def test_plugin_name_rule(name, ok):
    assert bool(PLUGIN_NAME_RE.match(name)) is ok


@pytest.mark.parametrize("name", ["core", "web", "static", "admin", "login"])
def test_reserved_names_are_refused(settings, name):
    pm, registry = build(settings, plugin(name, register_domain=domain_hook(name=name, label=f"{name}.label")))
    assert (pm.infos[name].status, pm.infos[name].stage) == ("failed", "registration")
    assert registry.domains["core"] is CORE_DOMAIN and pm.infos["fx_good"].ok


# -- validate_domain, one rule at a time -------------------------------------------------------------------


def test_a_valid_domain_passes():
    catalog = catalog_with("fx_x.label", "fx_x.perm", "fx_x.menu")
    validate_domain(Domain(name="fx_x", label="fx_x.label",
                           permissions=(Permission("fx_x.item.view", "fx_x.perm"),
                                        Permission("fx_x.item.admin", "fx_x.perm", scope="global")),
                           menu=(MenuItem("fx_x.items", "fx_x.menu", "/", group="fx_x"),
                                 MenuItem("fx_x.more", "fx_x.menu", "/", group="reports"))),
                    "fx_x", catalog)


@pytest.mark.parametrize("domain,key,culprit", [
    ("not a domain", "plugin.error.not_a_domain", None),
    (Domain(name="fx_y", label="fx_x.label"), "plugin.error.name_mismatch", "fx_y"),
    (Domain(name="fx_x", label="fx_x.label", requires_core_api=core.CORE_API + 1), "plugin.error.core_api", None),
    (Domain(name="fx_x", label="fx_x.label", permissions=(Permission("fx_xy.item.view", "fx_x.perm"),)),
     "plugin.error.permission_code", "fx_xy.item.view"),
    (Domain(name="fx_x", label="fx_x.label", permissions=(Permission("fx_x.item", "fx_x.perm"),)),
     "plugin.error.permission_code", "fx_x.item"),
    (Domain(name="fx_x", label="fx_x.label", permissions=(Permission("fx_x.Item.view", "fx_x.perm"),)),
     "plugin.error.permission_code", "fx_x.Item.view"),
    (Domain(name="fx_x", label="fx_x.label", permissions=(Permission("fx_x.item.view.all", "fx_x.perm"),)),
     "plugin.error.permission_code", "fx_x.item.view.all"),
    (Domain(name="fx_x", label="fx_x.label", permissions=(Permission("fx_x.item.view\n", "fx_x.perm"),)),
     "plugin.error.permission_code", "fx_x.item.view"),
    (Domain(name="fx_x", label="fx_x.label", permissions=(Permission("fx_x.item.view", "fx_x.perm", scope="x"),)),
     "plugin.error.permission_code", "fx_x.item.view"),
    (Domain(name="fx_x", label="fx_x.label", menu=(MenuItem("core.home", "fx_x.menu", "/"),)),
     "plugin.error.menu_id", "core.home"),
    (Domain(name="fx_x", label="fx_x.label", menu=(MenuItem("fx_x.a", "fx_x.menu", "/", group="fx_other"),)),
     "plugin.error.menu_group", "fx_other"),
    (Domain(name="fx_x", label="nav.home"), "plugin.error.label_namespace", "nav.home"),
    (Domain(name="fx_x", label="fx_x.label", menu=(MenuItem("fx_x.a", "fx_x.unknown", "/"),)),
     "plugin.error.label_missing", "fx_x.unknown"),
])
def test_validate_domain_refuses(domain, key, culprit):
    with pytest.raises(PluginError) as caught:
        validate_domain(domain, "fx_x", catalog_with("fx_x.label", "fx_x.perm", "fx_x.menu"))
    assert caught.value.key == key
    message = summarise(caught.value)  # what the plugins page and the terminal show
    assert "fx_x" in message and "\n" not in message
    if culprit:
        assert culprit in message


# -- templates and static files stay in their namespace ---------------------------------------------------


def test_resources_inside_the_namespace_pass(tmp_path):
    (tmp_path / "templates" / "fx_x").mkdir(parents=True)
    (tmp_path / "static" / "fx_x").mkdir(parents=True)
    (tmp_path / "templates" / "__pycache__").mkdir()
    (tmp_path / "static" / ".DS_Store").write_text("")
    check_resource_namespace("fx_x", tmp_path)
    check_resource_namespace("fx_x", None)


@pytest.mark.parametrize("path", ["templates/layout.html", "templates/core", "static/app.css", "static/fx_good",
                                  "templates/fx_x.html"])
def test_resources_outside_the_namespace_fail(tmp_path, path):
    (tmp_path / "templates" / "fx_x").mkdir(parents=True)
    target = tmp_path / path
    if "." in target.name:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("")
    else:
        target.mkdir(parents=True)
    with pytest.raises(PluginError) as caught:
        check_resource_namespace("fx_x", tmp_path)
    assert path in str(caught.value) and "fx_x" in str(caught.value)


def test_locale_keys_must_carry_the_plugin_prefix(tmp_path):
    (tmp_path / "vi.json").write_text('{"fx_x.label": "X", "nav.home": "Đè lên"}', encoding="utf-8")
    catalog = Catalog()
    with pytest.raises(PluginError, match="nav.home"):
        catalog.add(plugin_messages("fx_x", tmp_path))
    assert catalog.messages["vi"] == {}  # nothing of a refused file is merged


def test_a_plugin_cannot_overwrite_core_messages(settings, tmp_path):
    module = with_locale(plugin("fx_x", register_domain=domain_hook(name="fx_x", label="fx_x.label")),
                         tmp_path, {"fx_x.label": "X", "nav.home": "Bị ghi đè"})
    pm, registry = build(settings, module)
    assert pm.infos["fx_x"].stage == "declaration" and "nav.home" in pm.infos["fx_x"].summary
    assert registry.catalog.gettext("vi", "nav.home") == core_catalog().gettext("vi", "nav.home")


# -- build_registry: a breach fails only its plugin ------------------------------------------------------------


def test_duplicate_permission_fails_the_plugin_and_logs_the_code(settings, caplog):
    pm, registry = build(settings, names=("fx_good", "fx_dup_permission"))
    info = pm.infos["fx_dup_permission"]
    assert (info.status, info.stage) == ("failed", "declaration")
    assert "fx_dup_permission.item.view" in info.summary
    assert not any(c.startswith("fx_dup_permission.") for c in registry.permissions)
    assert any("permission fx_dup_permission.item.view declared by" in r.getMessage() for r in caplog.records)
    assert pm.infos["fx_good"].ok


def with_locale(module, folder, messages):
    """Give a throw-away plugin a package folder with locale/vi.json."""
    (folder / "locale").mkdir(parents=True)
    (folder / "locale" / "vi.json").write_text(json.dumps(messages), encoding="utf-8")
    module.__file__ = str(folder / "__init__.py")
    return module


def test_menu_entry_may_use_a_core_or_own_permission_but_not_an_undeclared_one(settings, tmp_path):
    good = plugin("fx_x", register_domain=domain_hook(
        name="fx_x", label="fx_x.label", permissions=(Permission("fx_x.item.view", "fx_x.label"),),
        menu=(MenuItem("fx_x.a", "fx_x.label", "/", permission="fx_x.item.view"),
              MenuItem("fx_x.b", "fx_x.label", "/", permission="core.plugin.admin"))))
    bad = plugin("fx_y", register_domain=domain_hook(
        name="fx_y", label="fx_y.label",
        menu=(MenuItem("fx_y.a", "fx_y.label", "/", permission="fx_y.item.view"),)))
    with_locale(good, tmp_path / "fx_x", {"fx_x.label": "X"})
    with_locale(bad, tmp_path / "fx_y", {"fx_y.label": "Y"})
    pm, registry = build(settings, good, bad)
    assert pm.infos["fx_x"].ok and "fx_x" in registry.domains
    assert pm.infos["fx_y"].stage == "declaration" and "fx_y.item.view" in pm.infos["fx_y"].summary


def test_register_domain_must_return_a_domain(settings):
    pm, registry = build(settings, plugin("fx_x", register_domain=lambda: {"name": "fx_x"}))
    assert pm.infos["fx_x"].stage == "declaration" and "fx_x" not in registry.domains


def test_register_domain_raising_fails_only_that_plugin(settings):
    def register_domain():
        raise RuntimeError("cannot declare")

    pm, registry = build(settings, plugin("fx_x", register_domain=register_domain))
    assert (pm.infos["fx_x"].stage, pm.infos["fx_x"].summary) == ("declaration", "RuntimeError: cannot declare")
    assert "fx_x" not in registry.domains and pm.infos["fx_good"].ok


def test_register_permissions_raising_fails_the_plugin_and_keeps_it_out(settings):
    def register_permissions():
        raise RuntimeError("no permissions today")

    module = plugin("fx_x", register_domain=domain_hook(name="fx_x", label=""),
                    register_permissions=register_permissions)
    pm, registry = build(settings, module)
    assert (pm.infos["fx_x"].status, pm.infos["fx_x"].stage) == ("failed", "declaration")
    assert "no permissions today" in pm.infos["fx_x"].summary
    assert "fx_x" not in registry.domains and "fx_x" not in registry.plugin_names()


def test_a_plugin_without_register_domain_is_not_mounted(settings):
    pm, registry = build(settings, plugin("fx_x", menu_items=lambda: []))
    assert pm.infos["fx_x"].stage == "declaration" and "fx_x" not in registry.domains


def test_depending_on_a_failed_plugin_fails(settings):
    module = plugin("fx_x", register_domain=domain_hook(name="fx_x", label="", depends_on=("fx_broken_import",)))
    pm, registry = build(settings, module, names=("fx_good", "fx_broken_import"))
    assert pm.infos["fx_x"].stage == "declaration" and "fx_broken_import" in pm.infos["fx_x"].summary
    assert "fx_x" not in registry.domains


def test_depending_on_a_working_plugin_is_fine(settings):
    module = plugin("fx_x", register_domain=domain_hook(name="fx_x", label="", depends_on=("fx_good",)))
    pm, registry = build(settings, module)
    assert pm.infos["fx_x"].ok and "fx_x" in registry.domains
