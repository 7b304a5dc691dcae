"""What a delegation gives (plugins/chuyen_nganh, Điều 6.3 and 9.1c; hook ``role_grants``): the
administrators its decision names hold the delegated role at the department while it is in force —
issuing regimes and keeping the sector's catalogue there, nowhere else —, not before its first day,
not while suspended, not once revoked or past its last day; nobody else of the department holds it;
a plugin switched off at the department gives nothing; one query per request; the holder must use
two factors; the delegation's page says who holds the role and until when."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest
from starlette.testclient import TestClient

from core.accounts import mfa, plugin_grants
from core.db import db
from core.models import PluginActivation, User
from core.units.tree import ancestor_ids
from plugins.chuyen_nganh import delegation as svc
from plugins.chuyen_nganh.rights import CATALOGUE, DELEGATED_ROLE
from tests.core.test_role_grants import access_of, request_context
from tests.fixtures.plugins import log_in
from tests.plugins.test_chuyen_nganh_delegation import application, decision, world  # noqa: F401 — fixture
from tests.web.test_autosave_queries import QueryCounter

ISSUE = "core.regime.issue"
FIRST_DAY = dt.datetime(2026, 12, 1, 3, 0)  # decision() puts the delegation in force from 1/12/2026


def holds(app, user, code, unit) -> bool:
    return access_of(app, user).allowed(code, ancestor_ids(unit.id))


@pytest.fixture
def decided(world, client, frozen_clock):  # noqa: F811 — the delegation tests' fixture
    d = svc.apply(world.applicant, application(world))
    svc.record_decision(world.operator, d.id, decision())
    return SimpleNamespace(w=world, app=client.app, id=d.id, deputy=User.get_by_id(world.deputy.id),
                           clock=frozen_clock)


def test_the_named_administrator_holds_the_role_at_the_department_and_nowhere_else(decided):
    w, app, deputy = decided.w, decided.app, decided.deputy
    decided.clock(FIRST_DAY)
    for code in (ISSUE, CATALOGUE, "core.regime.edit", "core.report.receive"):
        assert holds(app, deputy, code, w.tree.department), code
    for unit in (w.tree.province, w.education, *w.tree.communes):
        assert not holds(app, deputy, ISSUE, unit) and not holds(app, deputy, CATALOGUE, unit), unit.name
    access = access_of(app, deputy)
    assert access.roots(ISSUE) == [w.tree.department.id]
    assert [(g.plugin, g.role) for g in plugin_grants.from_plugins(access.grants)] == [("chuyen_nganh", DELEGATED_ROLE)]
    # Not a unit administrator: the delegation gives the sector's work, not the department's accounts.
    assert not access.allowed("core.unit.admin") and not access.allowed("core.report.seal")


def test_nothing_before_the_first_day_while_suspended_once_revoked_or_past_the_last_day(decided, frozen_clock):
    w, app, deputy = decided.w, decided.app, decided.deputy
    assert not holds(app, deputy, ISSUE, w.tree.department)  # decided on 26/11, in force from 1/12
    frozen_clock(FIRST_DAY)
    assert holds(app, deputy, ISSUE, w.tree.department)
    svc.suspend(w.operator, decided.id, "Chưa bố trí cán bộ")
    assert not holds(app, deputy, ISSUE, w.tree.department) and not holds(app, deputy, CATALOGUE, w.tree.department)
    svc.resume(w.operator, decided.id, "Đã bố trí cán bộ")
    assert holds(app, deputy, CATALOGUE, w.tree.department)
    svc.revoke(w.operator, decided.id, "Bộ đã triển khai hệ thống ngành")
    assert not holds(app, deputy, ISSUE, w.tree.department) and access_of(app, deputy).grants == ()


def test_nothing_past_the_last_day(world, client, frozen_clock):  # noqa: F811
    d = svc.apply(world.applicant, application(world))
    svc.record_decision(world.operator, d.id, decision(valid_to="2026-12-31"))
    deputy = User.get_by_id(world.deputy.id)
    frozen_clock(dt.datetime(2026, 12, 31, 16, 0))  # 23:00 on 31/12 in Việt Nam: still the last day
    assert holds(client.app, deputy, ISSUE, world.tree.department)
    frozen_clock(dt.datetime(2026, 12, 31, 17, 0))  # midnight: 1/1/2027, expired
    assert not holds(client.app, deputy, ISSUE, world.tree.department)


def test_a_person_of_the_department_the_decision_does_not_name_holds_nothing(decided):
    w, app = decided.w, decided.app
    decided.clock(FIRST_DAY)
    applicant = w.applicant.actor  # applied for the delegation, but is not among its administrators
    assert not holds(app, applicant, ISSUE, w.tree.department) and not holds(app, applicant, CATALOGUE, w.tree.department)
    assert plugin_grants.from_plugins(access_of(app, applicant).grants) == []


def test_switched_off_at_the_department_the_plugin_gives_nothing(decided):
    w, app, deputy = decided.w, decided.app, decided.deputy
    decided.clock(FIRST_DAY)
    PluginActivation.create(unit=w.tree.department, plugin="chuyen_nganh", enabled=False)
    assert not holds(app, deputy, ISSUE, w.tree.department) and access_of(app, deputy).grants == ()


def test_one_query_per_request_for_the_delegations(decided):
    w, app = decided.w, decided.app
    decided.clock(FIRST_DAY)
    for person in (decided.deputy, w.applicant.actor):
        user, chain, enabled = request_context(app, person)
        with QueryCounter(db.obj) as counter:
            counter.start()
            plugin_grants.granted(user, app.state.pm, app.state.registry, app.state.settings, enabled, chain)
            statements = counter.stop()
        assert len(statements) == 1, statements


def test_the_delegated_administrator_must_use_two_factors(decided):
    decided.clock(FIRST_DAY)
    access = access_of(decided.app, decided.deputy)
    assert mfa.mfa_required(decided.deputy, access, require_admin_mfa=True)
    assert not mfa.mfa_required(decided.deputy, access, require_admin_mfa=False)
    applicant = decided.w.applicant.actor
    assert not mfa.mfa_required(applicant, access_of(decided.app, applicant), require_admin_mfa=True)


def test_the_delegations_page_says_who_holds_the_role_and_until_when(world, client, make_user, frozen_clock):  # noqa: F811
    deputy, password = make_user(unit=world.tree.department)
    reader = make_user(unit=world.tree.department, roles=("chuyen_nganh.sector_admin",))
    d = svc.apply(world.applicant, application(world, administrator_ids=(str(deputy.id),)))

    def note():
        log_in(client, *reader)
        page = client.get(f"/p/chuyen_nganh/{d.id}")
        assert page.status_code == 200
        return page.text.split('id="chuyen_nganh-role">', 1)[1].split("</p>", 1)[0]

    applied = note()
    assert applied.startswith("Khi ủy quyền có hiệu lực") and "“Quản trị lĩnh vực được ủy quyền”" in applied
    svc.record_decision(world.operator, d.id, decision())
    frozen_clock(FIRST_DAY)
    in_force = note()
    assert in_force.startswith("Ủy quyền đang có hiệu lực") and "tại Sở Nông nghiệp và Môi trường" in in_force
    other = TestClient(client.app)  # the app is running already (``client``): no second start-up
    log_in(other, deputy, password)
    assert other.get("/regimes", follow_redirects=False).status_code == 200
    svc.revoke(world.operator, d.id, "Bộ đã triển khai hệ thống ngành")
    assert note().startswith("Ủy quyền đã chấm dứt")
    # The role is gone from the deputy's rights at once, on the same session.
    assert other.get("/regimes", follow_redirects=False).status_code == 403
