"""Safety around the roles a plugin gives (issue 15 follow-up, security).

A role only a plugin's records give (``RoleSpec(assignable=False)``: chuyen_nganh's delegated
administrator) is never offered to grant and is refused by hand, a system administrator included,
with a message in both languages and nothing written — also while its plugin is not loaded, since
the flag is kept in the role table, following the declaration. Whoever cannot hold the rights a
delegation gives an account does not take control of it (reset its password, disable or enable it,
unlock it, reset its second factor, end its sessions) nor change its grants while the delegation is
in force; once it is revoked, the department's unit administrator can again. Runs on SQLite and
PostgreSQL.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from types import SimpleNamespace

import pytest

from core.accounts import admin, roles
from core.accounts import login as accounts
from core.accounts.access import Grant, Role, grant_role
from core.accounts.permissions import core_access
from core.accounts.plugin_grants import PluginRights
from core.audit import AuditEvent
from core.errors import Forbidden, ValidationError
from core.i18n import core_catalog
from core.models import Session, User
from plugins.chuyen_nganh import delegation as svc
from plugins.chuyen_nganh.rights import DELEGATED_ROLE, SECTOR_ADMIN_ROLE
from tests.core.test_role_grants import access_of
from tests.plugins.test_chuyen_nganh_delegation import application, decision, world  # noqa: F401 — fixture

FIRST_DAY = dt.datetime(2026, 12, 1, 3, 0)  # decision() puts the delegation in force from 1/12/2026
CONTROL = (admin.reset_password, admin.disable_user, admin.enable_user, admin.unlock_user, admin.reset_mfa,
           admin.end_all_sessions)


@pytest.fixture
def org(world, client, make_user, frozen_clock):  # noqa: F811 — the delegation tests' fixture
    """The delegation tests' world, decided (in force from 1/12/2026), with the department's unit
    administrator, and the deputy it names already holding a grant made by hand (``viewer``)."""
    unit_admin, _ = make_user(unit=world.tree.department, roles=("unit_admin",))
    d = svc.apply(world.applicant, application(world))
    svc.record_decision(world.operator, d.id, decision())
    viewer = Grant.create(user=world.deputy.id, role=Role.get(Role.code == "viewer"), unit=world.tree.department)
    state = client.app.state
    return SimpleNamespace(w=world, app=client.app, id=d.id, unit_admin=unit_admin, viewer=viewer,
                           system=world.operator.actor, department=world.tree.department, clock=frozen_clock,
                           plugins=lambda: PluginRights(state.pm, state.registry, state.settings))


def deputy(org) -> User:
    return User.get_by_id(org.w.deputy.id)


def account_state(user_id: int):
    """What taking control of the account, or changing its grants, would change."""
    user = User.get_by_id(user_id)
    grants = sorted((g.role_id, g.unit_id) for g in Grant.select().where(Grant.user == user_id))
    audited = AuditEvent.select().where(AuditEvent.object_type == "user").count()
    return (user.password_hash, user.is_active, user.must_change_password, grants,
            Session.select().where(Session.user == user_id).count(), audited)


# -- a role only a plugin's records give ---------------------------------------------------------------------

def test_the_delegated_role_is_marked_as_given_only_by_its_plugin_and_never_offered(org):
    assert not Role.get(Role.code == DELEGATED_ROLE).assignable
    assert Role.get(Role.code == SECTOR_ADMIN_ROLE).assignable and Role.get(Role.code == "viewer").assignable
    offered = {r.code for r in admin.grantable_roles(access_of(org.app, org.system))}
    assert SECTOR_ADMIN_ROLE in offered and "unit_admin" in offered and DELEGATED_ROLE not in offered
    assert DELEGATED_ROLE not in {r.code for r in admin.grantable_roles(access_of(org.app, org.unit_admin))}


def test_a_grant_of_it_by_hand_is_refused_in_both_languages_and_writes_nothing(org):
    system, department = access_of(org.app, org.system), org.department.id
    before = account_state(org.w.deputy.id), User.select().count(), Grant.select().count()
    with pytest.raises(ValidationError) as refused:
        admin.grant(system, org.w.deputy.id, DELEGATED_ROLE, department)
    assert refused.value.errors == {"role": "access.error.role_not_assignable"}
    with pytest.raises(Forbidden) as forbidden:
        grant_role(system, deputy(org), Role.get(Role.code == DELEGATED_ROLE), department)
    assert forbidden.value.key == "access.error.role_not_assignable"
    with pytest.raises(ValidationError) as refused:
        admin.create_user(system, "qt_uyquyen", "Quản trị được ủy quyền", department, roles=(DELEGATED_ROLE,))
    assert refused.value.errors == {"roles": "access.error.role_not_assignable"}
    assert (account_state(org.w.deputy.id), User.select().count(), Grant.select().count()) == before
    assert User.get_or_none(User.username == "qt_uyquyen") is None
    catalog = core_catalog()
    assert catalog.gettext("vi", "access.error.role_not_assignable").startswith("Vai trò này không cấp tay được")
    assert catalog.gettext("en", "access.error.role_not_assignable").startswith("This role cannot be granted by hand")
    # The plugin's other role is granted as before.
    admin.grant(system, org.w.deputy.id, SECTOR_ADMIN_ROLE, department)


def test_the_refusal_holds_while_the_plugin_is_not_loaded(org):
    # core_access knows the core's permissions only, as when chuyen_nganh failed at start-up: the
    # role row, with the core's rights it carries (issuing regimes), is still there and still refused.
    system = core_access(User.get_by_id(org.system.id))
    assert "chuyen_nganh.delegation.view" not in system.registry.permissions
    assert DELEGATED_ROLE not in {r.code for r in admin.grantable_roles(system)}
    with pytest.raises(Forbidden) as forbidden:
        grant_role(system, deputy(org), Role.get(Role.code == DELEGATED_ROLE), org.department.id)
    assert forbidden.value.key == "access.error.role_not_assignable"


def test_the_flag_follows_the_plugins_declaration_and_hand_grants_made_before_are_reported(org, caplog):
    registry = org.app.state.registry
    spec = next(r for r in registry.roles() if r.code == DELEGATED_ROLE)

    def declared(assignable):
        return SimpleNamespace(roles=lambda: [dataclasses.replace(spec, assignable=assignable)],
                               catalog=registry.catalog, domains={})

    assert roles.sync_declared(declared(True)) == {"roles": 0, "links": 0}
    assert Role.get(Role.code == DELEGATED_ROLE).assignable
    # Granted by hand while an older release allowed it: the sync removes nothing, but says so.
    Grant.create(user=org.w.deputy.id, role=Role.get(Role.code == DELEGATED_ROLE), unit=org.department)
    with caplog.at_level(logging.WARNING, logger="baocao.roles"):
        roles.sync_declared(declared(False))
    assert not Role.get(Role.code == DELEGATED_ROLE).assignable
    assert any(DELEGATED_ROLE in r.getMessage() and "1 grant(s)" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="baocao.roles"):
        roles.sync_declared(declared(False))  # nothing changes, nothing said again
    assert caplog.records == []


# -- taking control of an account that holds the rights a delegation gives ------------------------------------

def test_the_unit_administrator_does_not_take_control_of_the_delegated_administrator_while_in_force(org):
    w = org.w
    accounts.start_session(deputy(org))
    # Decided, not yet in force: the deputy holds only what the unit administrator may give.
    assert admin.control_refusal(access_of(org.app, org.unit_admin), deputy(org), org.plugins()) is None
    org.clock(FIRST_DAY)
    unit_admin, plugins = access_of(org.app, org.unit_admin), org.plugins()
    assert admin.control_refusal(unit_admin, deputy(org), plugins) == "users.error.above_own"
    assert admin.grants_refusal(unit_admin, deputy(org), plugins) == "users.error.above_own"
    before = account_state(w.deputy.id)
    for action in CONTROL:
        with pytest.raises(Forbidden) as refused:
            action(unit_admin, w.deputy.id, plugins=plugins)
        assert refused.value.key == "users.error.above_own", action.__name__
    session = Session.get(Session.user == w.deputy.id)
    for attempt in (lambda: admin.end_session(unit_admin, session.id, plugins=plugins),
                    lambda: admin.grant(unit_admin, w.deputy.id, "reporter", org.department.id, plugins=plugins),
                    lambda: admin.revoke(unit_admin, w.deputy.id, org.viewer.id, plugins=plugins)):
        with pytest.raises(Forbidden) as refused:
            attempt()
        assert refused.value.key == "users.error.above_own"
    assert account_state(w.deputy.id) == before
    # The system administrator holds every right: not refused.
    system = access_of(org.app, org.system)
    assert admin.control_refusal(system, deputy(org), plugins) is None
    assert admin.grants_refusal(system, deputy(org), plugins) is None

    # Revoked: the deputy holds only the grant made by hand, which the unit administrator may give.
    svc.revoke(w.operator, org.id, "Bộ đã triển khai hệ thống ngành")
    plugins = org.plugins()
    assert admin.control_refusal(unit_admin, deputy(org), plugins) is None
    admin.grant(unit_admin, w.deputy.id, "reporter", org.department.id, plugins=plugins)
    admin.revoke(unit_admin, w.deputy.id, org.viewer.id, plugins=plugins)
    assert admin.reset_password(unit_admin, w.deputy.id, plugins=plugins)
    admin.disable_user(unit_admin, w.deputy.id, plugins=plugins)
    assert not deputy(org).is_active
    admin.enable_user(unit_admin, w.deputy.id, plugins=plugins)
    assert deputy(org).is_active


def test_a_disabled_delegated_administrator_is_not_enabled_by_the_unit_administrator(org):
    # Enabling an account is taking control of it too: what the delegation would give it counts.
    org.clock(FIRST_DAY)
    admin.disable_user(access_of(org.app, org.system), org.w.deputy.id, plugins=org.plugins())
    with pytest.raises(Forbidden) as refused:
        admin.enable_user(access_of(org.app, org.unit_admin), org.w.deputy.id, plugins=org.plugins())
    assert refused.value.key == "users.error.above_own" and not deputy(org).is_active
    admin.enable_user(access_of(org.app, org.system), org.w.deputy.id, plugins=org.plugins())
    assert deputy(org).is_active


def test_the_plugins_are_asked_once_per_account_for_a_request(org):
    org.clock(FIRST_DAY)
    plugins = org.plugins()
    given = plugins.of(deputy(org))
    assert [(g.plugin, g.role, g[0]) for g in given] == [("chuyen_nganh", DELEGATED_ROLE, org.department.id)]
    assert plugins.of(deputy(org)) is given
    # A disabled account holds nothing on its requests, but what it would hold counts here.
    User.update(is_active=False).where(User.id == org.w.deputy.id).execute()
    assert [g.role for g in org.plugins().of(deputy(org))] == [DELEGATED_ROLE]
