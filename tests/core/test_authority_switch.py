"""The administrator's per-unit switch decides which units report on a regime issued on a plugin's
issuing authority (issue 15 item 5; core.regimes.authority, core.reporting.opening.reporting_units):
a commune where the authority's plugin is switched off gets no report of the next period, keeps the
reports it has, and gets them again once the plugin is switched back on. Runs on SQLite and
PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest

from core import clock
from core.accounts.permissions import core_access
from core.activation import set_activation
from core.api import IssuingAuthority
from core.db import db
from core.models import User
from core.plugins import BUILTIN_PLUGINS
from core.regimes import regimes as rg
from core.regimes.forms import install_form
from core.reporting import events
from core.reporting.opening import Report, issue_and_open, open_due_periods
from tests.fixtures.plugins import fx
from tests.fixtures.plugins import fx_authority
from web.testing import _kit_indicators, kit_form_definition

DECISION = "15/QĐ-UBND"
MARCH = dt.datetime(2026, 3, 20, 3, 0)
APRIL = dt.date(2026, 4, 20)
MAY = dt.date(2026, 5, 20)


@pytest.fixture
def world(make_app, unit_tree, make_user, frozen_clock):
    frozen_clock(MARCH)
    app = make_app(builtins=BUILTIN_PLUGINS + fx("fx_authority"))
    fx_authority.GRANTS.clear()
    department = unit_tree.department
    officer, _ = make_user(unit=department, roles=("regime_editor", "regime_issuer"))
    admin, _ = make_user(unit=unit_tree.province, is_admin=True)
    with db.connection_context():
        _kit_indicators()
        form = install_form("NN-THANG", "Tiến độ gieo trồng", department.id, kit_form_definition(), frequency="monthly")
    fx_authority.GRANTS[department.id] = [
        (IssuingAuthority("d1", department.id, frozenset(u.id for u in unit_tree.communes), DECISION, "Ủy quyền"),
         dt.date(2026, 1, 1), None)]
    yield {"app": app, "tree": unit_tree, "officer": officer, "admin": admin, "form": form}
    fx_authority.GRANTS.clear()


def in_context(world):
    app = world["app"]
    return events.using(app.state.pm, app.state.registry, app.state.settings)


def issue_regime(world):
    department = world["tree"].department
    data = {"code": "nn.thang", "name": "Báo cáo tiến độ gieo trồng hằng tháng", "regime_type": "periodic",
            "content": "Số liệu trong kỳ.", "content_type": "data", "kinds": ["commune"], "unit_ids": [],
            "receiving_unit_id": department.id, "sending_methods": ["system"],
            "deadline_rules": [{"level": "Xã → Sở", "from_kind": "", "rule": "2wd"}],
            "frequency": "monthly", "cutoff_rule": "decree", "form_id": world["form"].id,
            "legal_number": DECISION, "legal_date": "2026-01-10", "legal_issuer": "UBND tỉnh",
            "issuing_unit_id": department.id, "preparing_unit_id": department.id}
    app = world["app"]
    with db.connection_context(), in_context(world):
        access = core_access(User.get_by_id(world["officer"].id))
        regime = rg.save_draft(access, data, policy=app.state.settings.regimes)
        issued, _ = issue_and_open(access, regime.id, today=clock.today(), policy=app.state.settings.regimes)
    return issued


def switch(world, unit, state):
    with db.connection_context():
        set_activation(unit.id, "fx_authority", state, User.get_by_id(world["admin"].id),
                       world["app"].state.registry)


def open_on(world, day, regime):
    with db.connection_context(), in_context(world):
        return open_due_periods(day, regime_ids=[regime.id])


def reports():
    with db.connection_context():
        return sorted((r.unit.code, r.period_index) for r in Report.select().join(rg.Regime)
                      .where(rg.Regime.code == "nn.thang"))


def test_a_commune_where_the_plugin_is_switched_off_gets_no_report_of_the_next_period(world):
    gio, cam = world["tree"].communes
    regime = issue_regime(world)
    assert regime.authority == "fx_authority:d1"
    assert reports() == [("44.CAMLO", 4), ("44.GIOLINH", 4)]

    switch(world, cam, "off")
    opened = open_on(world, APRIL, regime)
    assert opened.reports == 1
    # Cam Lộ keeps its March report; April opened only for Gio Linh.
    assert reports() == [("44.CAMLO", 4), ("44.GIOLINH", 4), ("44.GIOLINH", 5)]


def test_switching_the_plugin_back_on_opens_the_communes_report_again(world):
    gio, cam = world["tree"].communes
    regime = issue_regime(world)
    switch(world, cam, "off")
    open_on(world, APRIL, regime)
    switch(world, cam, "inherit")  # back to the default: on
    assert open_on(world, MAY, regime).reports == 3  # April's missing report (still due) and May's two
    assert ("44.CAMLO", 6) in reports() and ("44.GIOLINH", 6) in reports()


def test_a_switch_on_an_ancestor_reaches_the_communes_below_it(world):
    regime = issue_regime(world)
    switch(world, world["tree"].province, "off")  # the department is below too: the authority ends
    assert open_on(world, APRIL, regime).reports == 0
    assert reports() == [("44.CAMLO", 4), ("44.GIOLINH", 4)]
