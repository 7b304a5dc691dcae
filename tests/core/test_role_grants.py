"""Roles a plugin gives from its own records (issue 15, hook ``role_grants``): the role joins the
user's rights at its unit and nowhere else, for the days the plugin says; another plugin's role, a
core role or anything else is ignored and recorded; a plugin switched off (at the user's unit or at
the grant's) grants nothing; a raising plugin grants nothing and the page still answers; a failing
query leaves the caller's transaction usable; the holder must use two factors like an
administrator. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest
from starlette.testclient import TestClient

from core.accounts import mfa, plugin_grants
from core.activation import enabled_plugins
from core.api import RoleGrant
from core.db import db
from core.models import PluginActivation, User
from core.plugins import BUILTIN_PLUGINS
from core.units.tree import ancestor_ids
from tests.fixtures.plugins import fx, fx_role_grants, log_in
from tests.web.test_autosave_queries import QueryCounter

MARCH = dt.datetime(2026, 3, 20, 3, 0)
JANUARY = dt.date(2026, 1, 1)
ISSUE = "core.regime.issue"


@pytest.fixture
def world(make_app, make_settings, unit_tree, make_user, frozen_clock):
    frozen_clock(MARCH)
    fx_role_grants.GRANTS.clear()
    fx_role_grants.RAISE[0] = fx_role_grants.BAD_QUERY[0] = False

    def app_with(**settings):
        return make_app(make_settings(**settings), builtins=BUILTIN_PLUGINS + fx("fx_role_grants"))

    app = app_with()
    department = unit_tree.department
    steward, password = make_user(unit=department)
    plain, plain_password = make_user(unit=department)
    yield SimpleNamespace(app=app, app_with=app_with, tree=unit_tree, steward=steward, password=password,
                          plain=plain, plain_password=plain_password)
    fx_role_grants.GRANTS.clear()
    fx_role_grants.RAISE[0] = fx_role_grants.BAD_QUERY[0] = False


def give(user, *answers, start=JANUARY, end=None):
    fx_role_grants.GRANTS.setdefault(user.id, []).extend((answer, start, end) for answer in answers)


def request_context(app, user):
    """(user, the ancestor chain of their unit, the plugins switched on there), as a request reads them."""
    state = app.state
    user = User.get_by_id(user.id)
    chain = tuple(ancestor_ids(user.unit_id))
    enabled = enabled_plugins(user.unit_id, state.registry, state.settings, set(state.pm.healthy), chain=chain)
    return user, chain, enabled


def access_of(app, user):
    """What a request of ``user`` holds, built as the middleware builds it."""
    user, chain, enabled = request_context(app, user)
    return plugin_grants.request_access(user, chain, enabled, app.state.pm, app.state.registry, app.state.settings)


def granted_on(app, user, day=None):
    user, chain, enabled = request_context(app, user)
    return plugin_grants.granted(user, app.state.pm, app.state.registry, app.state.settings, enabled, chain, day)


def errors_of(app) -> list[str]:
    return [summary for _stage, summary, _at in app.state.pm.infos["fx_role_grants"].errors]


def page_status(app, user, password, path) -> int:
    with TestClient(app) as client:
        log_in(client, user, password)
        return client.get(path, follow_redirects=False).status_code


def test_a_granted_role_joins_the_users_rights_at_its_unit_and_nowhere_else(world):
    tree = world.tree
    give(world.steward, RoleGrant(tree.department.id, fx_role_grants.ROLE))
    with db.connection_context():
        access = access_of(world.app, world.steward)
        assert access.allowed(ISSUE) and access.allowed(fx_role_grants.THING)
        assert access.roots(ISSUE) == [tree.department.id]
        assert not access.allowed(ISSUE, ancestor_ids(tree.province.id))
        assert not access.allowed(ISSUE, ancestor_ids(tree.communes[0].id))
        assert [(g.plugin, g.role) for g in plugin_grants.from_plugins(access.grants)] == [
            ("fx_role_grants", fx_role_grants.ROLE)]
        # Only for the days the plugin's records say.
        assert granted_on(world.app, world.steward, dt.date(2025, 12, 31)) == ()
        plain = access_of(world.app, world.plain)
        assert not plain.allowed(ISSUE) and plain.roots(ISSUE) == []
    # Through the web stack: the regimes page needs core.regime.view, which only the role gives.
    assert page_status(world.app, world.steward, world.password, "/regimes") == 200
    assert page_status(world.app, world.plain, world.plain_password, "/regimes") == 403


def test_another_plugins_role_a_core_role_or_anything_else_is_ignored_and_recorded(world):
    department = world.tree.department.id
    give(world.steward, RoleGrant(department, "chuyen_nganh.sector_admin"), RoleGrant(department, "unit_admin"),
         RoleGrant(department, "fx_role_grants.nobody"), RoleGrant(True, fx_role_grants.ROLE), "everything")
    with db.connection_context():
        access = access_of(world.app, world.steward)
    assert plugin_grants.from_plugins(access.grants) == [] and access.grants == ()
    assert not access.allowed("core.unit.admin") and not access.allowed("chuyen_nganh.delegation.apply")
    errors = errors_of(world.app)
    assert len(errors) == 5 and all("not a RoleGrant of a role fx_role_grants declares" in e for e in errors)


def test_a_plugin_switched_off_grants_nothing(world, make_user):
    tree = world.tree
    # Off at the user's unit: the plugin is not even asked.
    give(world.steward, RoleGrant(tree.department.id, fx_role_grants.ROLE))
    with db.connection_context():
        PluginActivation.create(unit=tree.department, plugin="fx_role_grants", enabled=False)
        assert not access_of(world.app, world.steward).allowed(ISSUE)
    # On at the user's unit (the province), off at the grant's: that grant counts for nothing.
    officer, _ = make_user(unit=tree.province)
    give(officer, RoleGrant(tree.department.id, fx_role_grants.ROLE), RoleGrant(tree.communes[0].id, fx_role_grants.ROLE))
    with db.connection_context():
        access = access_of(world.app, officer)
        assert access.roots(ISSUE) == [tree.communes[0].id]
        assert not access.allowed(ISSUE, ancestor_ids(tree.department.id))
    assert errors_of(world.app) == []


def test_no_query_is_asked_when_no_plugin_switched_on_answers_the_hook(world):
    tree = world.tree
    give(world.steward, RoleGrant(tree.department.id, fx_role_grants.ROLE))
    with db.connection_context():
        for plugin in ("fx_role_grants", "chuyen_nganh"):
            PluginActivation.create(unit=tree.department, plugin=plugin, enabled=False)
        with QueryCounter(db.obj) as counter:
            user, chain, enabled = request_context(world.app, world.steward)
            counter.start()
            found = plugin_grants.granted(user, world.app.state.pm, world.app.state.registry,
                                          world.app.state.settings, enabled, chain)
            statements = counter.stop()
    assert found == () and statements == []


def test_a_raising_plugin_grants_nothing_and_the_page_still_answers(world):
    give(world.steward, RoleGrant(world.tree.department.id, fx_role_grants.ROLE))
    fx_role_grants.RAISE[0] = True
    with TestClient(world.app) as client:
        log_in(client, world.steward, world.password)
        assert client.get("/").status_code == 200
        assert client.get("/regimes", follow_redirects=False).status_code == 403
    assert any("the register of stewards is unreachable" in e for e in errors_of(world.app))


def test_a_failing_query_grants_nothing_and_leaves_the_callers_transaction_usable(world):
    give(world.steward, RoleGrant(world.tree.department.id, fx_role_grants.ROLE))
    fx_role_grants.BAD_QUERY[0] = True
    with db.connection_context():
        with db.atomic():
            User.update(full_name="Đổi trong giao dịch").where(User.id == world.plain.id).execute()
            access = access_of(world.app, world.steward)
            assert not access.allowed(ISSUE)
            # On PostgreSQL an aborted transaction refuses every later statement: this one runs.
            assert User.select().where(User.id == world.plain.id).count() == 1
        assert User.get_by_id(world.plain.id).full_name == "Đổi trong giao dịch"
    assert errors_of(world.app)


def test_an_inactive_user_holds_nothing(world):
    give(world.steward, RoleGrant(world.tree.department.id, fx_role_grants.ROLE))
    with db.connection_context():
        User.update(is_active=False).where(User.id == world.steward.id).execute()
        access = access_of(world.app, world.steward)
    assert access.grants == () and not access.allowed(ISSUE)


def test_the_holder_of_a_plugins_role_must_use_two_factors_like_an_administrator(world):
    app = world.app_with(require_admin_mfa=True)
    give(world.steward, RoleGrant(world.tree.department.id, fx_role_grants.ROLE))
    with db.connection_context():
        assert mfa.mfa_required(User.get_by_id(world.steward.id), access_of(app, world.steward))
        assert not mfa.mfa_required(User.get_by_id(world.plain.id), access_of(app, world.plain))
    with TestClient(app) as client:
        log_in(client, world.steward, world.password)
        home = client.get("/", follow_redirects=False)
        assert home.status_code == 303 and home.headers["location"] == "/account/2fa"
    assert page_status(app, world.plain, world.plain_password, "/") == 200
