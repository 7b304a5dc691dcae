"""A plugin's issuing authority (issue 15, the delegated issuer; hook ``issuing_authorities``):
a department may issue a periodic regime to communes outside its subtree only on a plugin's
authority, on that authority's decision, to units within its scope; the regime remembers the
authority and opens periods only while it stands; a failing plugin grants nothing (fail closed).
Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest

from core import clock
from core.accounts.permissions import core_access
from core.api import IssuingAuthority
from core.db import db
from core.errors import ValidationError
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


@pytest.fixture
def world(make_app, unit_tree, make_user, frozen_clock):
    frozen_clock(MARCH)
    app = make_app(builtins=BUILTIN_PLUGINS + fx("fx_authority"))
    fx_authority.GRANTS.clear()
    fx_authority.RAISE[0] = False
    department = unit_tree.department
    officer, _ = make_user(unit=department, roles=("regime_editor", "regime_issuer"))
    with db.connection_context():
        _kit_indicators()
        form = install_form("NN-THANG", "Tiến độ gieo trồng", department.id, kit_form_definition(), frequency="monthly")
    yield {"app": app, "tree": unit_tree, "officer": officer, "form": form}
    fx_authority.GRANTS.clear()
    fx_authority.RAISE[0] = False


def grant(world, units, *, end=None, key="d1", number=DECISION):
    department = world["tree"].department
    fx_authority.GRANTS.setdefault(department.id, []).append(
        (IssuingAuthority(key, department.id, frozenset(u.id for u in units), number, f"Ủy quyền số {number}"),
         dt.date(2026, 1, 1), end))


def draft(world, *, units=None, kinds=(), number=DECISION):
    department = world["tree"].department
    data = {"code": "nn.thang", "name": "Báo cáo tiến độ gieo trồng hằng tháng", "regime_type": "periodic",
            "content": "Số liệu trong kỳ.", "content_type": "data", "kinds": list(kinds),
            "unit_ids": [u.id for u in units or ()], "receiving_unit_id": department.id,
            "sending_methods": ["system"], "deadline_rules": [{"level": "Xã → Sở", "from_kind": "", "rule": "2wd"}],
            "frequency": "monthly", "cutoff_rule": "decree", "form_id": world["form"].id,
            "legal_number": number, "legal_date": "2026-01-10", "legal_issuer": "UBND tỉnh",
            "issuing_unit_id": department.id, "preparing_unit_id": department.id}
    app = world["app"]
    with db.connection_context(), events.using(app.state.pm, app.state.registry, app.state.settings):
        return rg.save_draft(core_access(User.get_by_id(world["officer"].id)), data, policy=app.state.settings.regimes)


def issue(world, regime, today=None):
    app = world["app"]
    with db.connection_context(), events.using(app.state.pm, app.state.registry, app.state.settings):
        return issue_and_open(core_access(User.get_by_id(world["officer"].id)), regime.id,
                              today=today or clock.today(), policy=app.state.settings.regimes)


def reports_of(regime_code):
    with db.connection_context():
        return sorted((r.unit.code, r.period_index) for r in Report.select().join(rg.Regime)
                      .where(rg.Regime.code == regime_code))


def test_without_an_authority_a_department_issues_no_periodic_regime_to_communes(world):
    gio = world["tree"].communes[0]
    with pytest.raises(ValidationError) as refused:
        draft(world, units=[gio])
    assert refused.value.errors == {"issuing_unit": "regimes.error.periodic_issuer",
                                    "units": "regimes.error.recipients_outside"}


def test_on_its_authority_the_department_issues_to_the_communes_of_its_scope(world):
    gio, cam = world["tree"].communes
    grant(world, [gio, cam])
    regime = draft(world, kinds=("commune",))  # kinds are read within the authority's units
    issued, opened = issue(world, regime)
    assert issued.authority == "fx_authority:d1" and opened.reports == 2
    assert reports_of("nn.thang") == [("44.CAMLO", 4), ("44.GIOLINH", 4)]
    with db.connection_context(), events.using(world["app"].state.pm, world["app"].state.registry,
                                               world["app"].state.settings):
        assert [u.code for u in rg.resolve_units(rg.Regime.get_by_id(issued.id))] == ["44.CAMLO", "44.GIOLINH"]


def test_the_legal_basis_must_be_the_authoritys_decision_and_the_units_within_its_scope(world):
    gio, cam = world["tree"].communes
    grant(world, [gio])
    with pytest.raises(ValidationError) as wrong_basis:
        draft(world, units=[gio], number="99/QĐ-UBND")
    assert wrong_basis.value.errors["legal_number"] == "regimes.error.authority_basis"
    with pytest.raises(ValidationError) as outside:
        draft(world, units=[gio, cam])
    assert outside.value.errors == {"units": "regimes.error.outside_authority"}
    with db.connection_context():
        assert not rg.Regime.select().where(rg.Regime.code == "nn.thang").exists()  # nothing saved


def test_an_ended_authority_opens_no_more_periods_and_keeps_the_reports(world):
    gio = world["tree"].communes[0]
    grant(world, [gio], end=dt.date(2026, 4, 14))  # revoked at the end of the window open in March
    issued, _ = issue(world, draft(world, units=[gio]))
    assert reports_of("nn.thang") == [("44.GIOLINH", 4)]
    app = world["app"]
    with db.connection_context(), events.using(app.state.pm, app.state.registry, app.state.settings):
        result = open_due_periods(dt.date(2026, 4, 20), regime_ids=[issued.id])
    assert result.reports == 0 and reports_of("nn.thang") == [("44.GIOLINH", 4)]


def test_a_failing_plugin_grants_nothing(world):
    gio = world["tree"].communes[0]
    grant(world, [gio])
    fx_authority.RAISE[0] = True
    with pytest.raises(ValidationError) as refused:
        draft(world, units=[gio])
    assert "issuing_unit" in refused.value.errors
