"""Per-unit activation: the fallback chain, switching, and what "disabled" takes away.

Resolution for a unit: its own setting, else the nearest ancestor's, else the
plugin's default (``Domain.enabled_by_default``, overridden by
``[plugins.<name>] enabled_by_default``). Datasette once shipped this kind of
chain with a missing ``return`` that made one link fall through to the next,
so every link is tested on its own, on a province → district → commune tree.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from core.accounts import login as accounts
from core.activation import chain_and_plugins, default_enabled, enabled_plugins, explain, overrides, set_activation
from core.errors import NotFound, ValidationError
from core.i18n import core_catalog
from core.models import PluginActivation, Unit
from core.accounts.permissions import allowed
from core.registry import CORE_DOMAIN, Domain, Permission, Registry
from core.settings import PluginSettings

GOOD = Domain(name="fx_good", label="", permissions=(Permission("fx_good.item.view", ""),))
OPTIN = Domain(name="fx_optin", label="", enabled_by_default=False,
               permissions=(Permission("fx_optin.item.view", ""),))
BOTH = {"fx_good", "fx_optin"}


def make_registry(*domains):
    domains = {"core": CORE_DOMAIN, **{d.name: d for d in domains}}
    permissions = {p.code: p for d in domains.values() for p in d.permissions}
    return Registry(domains=domains, permissions=permissions, catalog=core_catalog(), plugin_dirs={})


@pytest.fixture
def registry():
    return make_registry(GOOD, OPTIN)


@pytest.fixture
def tree(db_session):
    """Quảng Trị province → Gio Linh district → Gio Mỹ commune, and a sibling district → commune."""
    province = Unit.create(code="44", name="Tỉnh Quảng Trị", kind="province")
    district = Unit.create(code="464", name="Huyện Gio Linh", kind="district", parent=province)
    commune = Unit.create(code="19255", name="Xã Gio Mỹ", kind="commune", parent=district)
    sibling = Unit.create(code="465", name="Huyện Cam Lộ", kind="district", parent=province)
    sibling_commune = Unit.create(code="19366", name="Xã Cam Hiếu", kind="commune", parent=sibling)
    return SimpleNamespace(province=province, district=district, commune=commune, sibling=sibling,
                           sibling_commune=sibling_commune)


@pytest.fixture
def admin(tree):
    user = accounts.create_user("quantri", "Quản trị", accounts.random_password(), tree.province, is_admin=True)
    return user


def row(unit, plugin, enabled):
    PluginActivation.create(unit=unit, plugin=plugin, enabled=enabled)


def states(tree, registry, settings, plugin="fx_good", healthy=BOTH):
    return tuple(plugin in enabled_plugins(u.id, registry, settings, healthy)
                 for u in (tree.province, tree.district, tree.commune))


# -- the chain, link by link ---------------------------------------------------------------------------


def test_no_setting_anywhere_gives_the_plugin_default(tree, registry, settings):
    assert states(tree, registry, settings, "fx_good") == (True, True, True)
    assert states(tree, registry, settings, "fx_optin") == (False, False, False)
    assert explain(tree.commune.id, "fx_good", registry, settings) == (True, None)
    assert explain(tree.commune.id, "fx_optin", registry, settings) == (False, None)


def test_the_units_own_setting_decides(tree, registry, settings):
    row(tree.commune, "fx_good", False)
    row(tree.commune, "fx_optin", True)
    assert states(tree, registry, settings, "fx_good") == (True, True, False)
    assert states(tree, registry, settings, "fx_optin") == (False, False, True)
    assert explain(tree.commune.id, "fx_good", registry, settings) == (False, tree.commune)


def test_the_parents_setting_is_inherited(tree, registry, settings):
    row(tree.district, "fx_good", False)
    assert states(tree, registry, settings) == (True, False, False)
    assert explain(tree.commune.id, "fx_good", registry, settings) == (False, tree.district)


def test_a_grandparents_setting_is_inherited_through_a_unit_without_one(tree, registry, settings):
    row(tree.province, "fx_good", False)
    row(tree.province, "fx_optin", True)
    assert states(tree, registry, settings, "fx_good") == (False, False, False)
    assert states(tree, registry, settings, "fx_optin") == (True, True, True)
    assert explain(tree.commune.id, "fx_good", registry, settings) == (False, tree.province)


def test_the_nearest_setting_wins_over_farther_ones(tree, registry, settings):
    row(tree.province, "fx_good", False)
    row(tree.district, "fx_good", True)
    assert states(tree, registry, settings) == (False, True, True)
    assert explain(tree.commune.id, "fx_good", registry, settings) == (True, tree.district)
    row(tree.commune, "fx_good", False)
    assert states(tree, registry, settings) == (False, True, False)
    assert explain(tree.commune.id, "fx_good", registry, settings) == (False, tree.commune)


def test_one_query_for_chain_and_plugins_agrees_with_the_two(tree, registry, settings):
    """Every request reads its unit's chain and plugins in one query (chain_and_plugins); with
    several settings on one unit (a row each in the join) and along the chain, it must give the
    ancestor chain and the plugins the two separate reads give."""
    from core.units.tree import ancestor_ids

    row(tree.province, "fx_good", False)
    row(tree.province, "fx_optin", True)
    row(tree.district, "fx_good", True)
    row(tree.commune, "fx_optin", False)
    for unit in (tree.province, tree.district, tree.commune, tree.sibling, tree.sibling_commune):
        chain = tuple(ancestor_ids(unit.id))
        assert chain_and_plugins(unit.id, registry, settings, BOTH) == (
            chain, enabled_plugins(unit.id, registry, settings, BOTH, chain=chain))
    assert chain_and_plugins(tree.commune.id, registry, settings, BOTH) == (
        (tree.commune.id, tree.district.id, tree.province.id), frozenset({"fx_good"}))


def test_a_setting_applies_to_its_subtree_only(tree, registry, settings):
    row(tree.district, "fx_good", False)
    assert "fx_good" in enabled_plugins(tree.sibling.id, registry, settings, BOTH)
    assert "fx_good" in enabled_plugins(tree.sibling_commune.id, registry, settings, BOTH)


def test_settings_override_the_declared_default(tree, registry, make_settings):
    settings = make_settings(plugins=PluginSettings(config={"fx_good": {"enabled_by_default": False},
                                                            "fx_optin": {"enabled_by_default": True}}))
    assert default_enabled(registry, settings, "fx_good") is False
    assert default_enabled(registry, settings, "fx_optin") is True
    assert states(tree, registry, settings, "fx_good") == (False, False, False)
    assert states(tree, registry, settings, "fx_optin") == (True, True, True)
    # An explicit row still beats the configured default.
    row(tree.district, "fx_good", True)
    assert states(tree, registry, settings, "fx_good") == (False, True, True)


def test_the_declared_default_applies_when_settings_say_nothing_boolean(registry, make_settings):
    settings = make_settings(plugins=PluginSettings(config={"fx_good": {"other_key": 1}}))
    assert default_enabled(registry, settings, "fx_good") is True
    assert default_enabled(registry, settings, "fx_optin") is False


def test_one_plugins_setting_does_not_leak_to_another(tree, registry, settings):
    row(tree.province, "fx_optin", True)
    row(tree.district, "fx_good", False)
    assert enabled_plugins(tree.commune.id, registry, settings, BOTH) == {"fx_optin"}
    assert enabled_plugins(tree.province.id, registry, settings, BOTH) == {"fx_good", "fx_optin"}


def test_a_failed_plugin_is_never_enabled(tree, registry, settings):
    row(tree.commune, "fx_good", True)
    assert "fx_good" not in enabled_plugins(tree.commune.id, registry, settings, healthy={"fx_optin"})
    assert "fx_good" not in enabled_plugins(None, registry, settings, healthy={"fx_optin"})


def test_no_unit_gives_the_defaults(tree, registry, settings):
    row(tree.province, "fx_good", False)
    assert enabled_plugins(None, registry, settings, BOTH) == {"fx_good"}


def test_the_core_is_not_a_switchable_plugin(tree, registry, settings):
    assert "core" not in enabled_plugins(tree.commune.id, registry, settings, BOTH | {"core"})


# -- switching -----------------------------------------------------------------------------------------


def test_switch_on_off_and_back_to_inherit(tree, registry, settings, admin):
    set_activation(tree.district.id, "fx_good", "off", admin, registry)
    assert overrides("fx_good") == {tree.district.id: False}
    assert states(tree, registry, settings) == (True, False, False)
    saved = PluginActivation.get(unit=tree.district, plugin="fx_good")
    assert saved.updated_by_id == admin.id and saved.updated_at is not None
    set_activation(tree.district.id, "fx_good", "on", admin, registry)
    assert overrides("fx_good") == {tree.district.id: True}
    set_activation(tree.district.id, "fx_good", "inherit", admin, registry)
    assert overrides("fx_good") == {}
    assert states(tree, registry, settings) == (True, True, True)


def test_switching_a_unit_keeps_settings_below_it_unless_told(tree, registry, settings, admin):
    set_activation(tree.commune.id, "fx_good", "on", admin, registry)
    set_activation(tree.province.id, "fx_good", "off", admin, registry)
    assert states(tree, registry, settings) == (False, False, True)
    set_activation(tree.province.id, "fx_good", "off", admin, registry, reset_subtree=True)
    assert overrides("fx_good") == {tree.province.id: False}
    assert states(tree, registry, settings) == (False, False, False)


def test_reset_subtree_touches_only_that_plugin_and_that_subtree(tree, registry, settings, admin):
    set_activation(tree.commune.id, "fx_good", "off", admin, registry)
    set_activation(tree.commune.id, "fx_optin", "on", admin, registry)
    set_activation(tree.sibling_commune.id, "fx_good", "off", admin, registry)
    set_activation(tree.district.id, "fx_good", "inherit", admin, registry, reset_subtree=True)
    assert overrides("fx_good") == {tree.sibling_commune.id: False}
    assert overrides("fx_optin") == {tree.commune.id: True}


@pytest.mark.parametrize("state", ["", "ON", "enabled", "true", "1"])
def test_a_bad_state_is_refused(tree, registry, admin, state):
    with pytest.raises(ValidationError):
        set_activation(tree.district.id, "fx_good", state, admin, registry)
    assert overrides("fx_good") == {}


def test_an_unknown_plugin_or_unit_is_not_found(tree, registry, admin):
    with pytest.raises(NotFound):
        set_activation(tree.district.id, "fx_unknown", "on", admin, registry)
    with pytest.raises(NotFound):
        set_activation(tree.district.id, "core", "off", admin, registry)
    with pytest.raises(NotFound):
        set_activation(987654, "fx_good", "on", admin, registry)
    assert PluginActivation.select().count() == 0


# -- disabled means its permissions grant nothing ---------------------------------------------------------------


def test_permissions_of_a_disabled_plugin_grant_nothing(tree, registry, settings, admin):
    row(tree.district, "fx_good", False)
    at_commune = enabled_plugins(tree.commune.id, registry, settings, BOTH)
    at_sibling = enabled_plugins(tree.sibling.id, registry, settings, BOTH)
    assert not allowed(admin, "fx_good.item.view", registry, at_commune)
    assert allowed(admin, "fx_good.item.view", registry, at_sibling)
    # The core's own rights do not depend on any plugin being on.
    assert allowed(admin, "core.plugin.admin", registry, frozenset())


def test_allowed_denies_what_is_not_declared_or_not_held(tree, registry, admin):
    everything = frozenset(BOTH)
    clerk = accounts.create_user("canbo", "Cán bộ", accounts.random_password(), tree.commune)
    assert not allowed(admin, "fx_good.item.delete", registry, everything)  # never declared
    assert not allowed(admin, "fx_ghost.item.view", registry, everything | {"fx_ghost"})
    assert not allowed(None, "fx_good.item.view", registry, everything)
    assert not allowed(clerk, "fx_good.item.view", registry, everything)  # holds no grant
    admin.is_active = False
    assert not allowed(admin, "fx_good.item.view", registry, everything)
