"""``core.api.create_regime_draft``: a plugin's RegimeSpec taken up by a person as a draft of its units
(not the plugin's), with its form created and published, through the rights and the issuing policy of
the regime screen (an issuing authority included); a refusal leaves nothing, form included. Runs on
SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest

from core.accounts.permissions import core_access
from core.api import IssuingAuthority, RegimeSpec, create_regime_draft
from core.audit import AuditEvent
from core.db import db
from core.errors import Forbidden, ValidationError
from core.models import User
from core.plugins import BUILTIN_PLUGINS
from core.regimes import regimes as rg
from core.regimes.forms import Form, FormVersion
from core.reporting import events
from tests.fixtures.plugins import fx
from tests.fixtures.plugins import fx_authority
from web.testing import _kit_indicators, kit_form_definition

DECISION = "15/QĐ-UBND"


@pytest.fixture
def world(make_app, unit_tree, make_user, frozen_clock):
    frozen_clock(dt.datetime(2026, 3, 20, 3, 0))
    app = make_app(builtins=BUILTIN_PLUGINS + fx("fx_authority"))
    fx_authority.GRANTS.clear()
    officer, _ = make_user(unit=unit_tree.department, roles=("regime_editor",))
    stranger, _ = make_user(unit=unit_tree.communes[0], roles=("regime_editor",))
    with db.connection_context():
        _kit_indicators()
    yield {"app": app, "tree": unit_tree, "officer": officer, "stranger": stranger}
    fx_authority.GRANTS.clear()


def spec(world, **changes) -> RegimeSpec:
    department = world["tree"].department
    values = dict(code="nn.thang.1", name="Báo cáo tiến độ gieo trồng hằng tháng", frequency="monthly",
                  content="Số liệu trong kỳ.", content_type="data", reporting_kinds=("commune",),
                  deadline_rules=({"level": "Xã → Sở", "from_kind": "commune", "rule": "2wd"},),
                  legal_number=DECISION, legal_date=dt.date(2026, 1, 10), legal_issuer="UBND tỉnh",
                  issuing_unit_code=department.code, receiving_unit_code=department.code,
                  preparing_unit_code=department.code,
                  form={"code": "NN-THANG-1", "name": "Tiến độ gieo trồng", "definition": kit_form_definition()})
    values.update(changes)
    return RegimeSpec(**values)


def make(world, the_spec, who="officer"):
    app = world["app"]
    with db.connection_context(), events.using(app.state.pm, app.state.registry, app.state.settings):
        return create_regime_draft(core_access(User.get_by_id(world[who].id)), the_spec)


def grant(world):
    department = world["tree"].department
    units = frozenset(c.id for c in world["tree"].communes)
    fx_authority.GRANTS.setdefault(department.id, []).append(
        (IssuingAuthority("d1", department.id, units, DECISION, "Ủy quyền"), dt.date(2026, 1, 1), None))


def written():
    with db.connection_context():
        return (rg.Regime.select().where(rg.Regime.code == "nn.thang.1").count(),
                Form.select().where(Form.code == "NN-THANG-1").count())


def test_a_spec_becomes_a_draft_of_its_units_with_its_form_published(world):
    grant(world)
    regime_id = make(world, spec(world))
    with db.connection_context():
        regime = rg.Regime.get_by_id(regime_id)
        department = world["tree"].department.id
        assert (regime.status, regime.version, regime.plugin) == ("draft", 1, None)
        assert (regime.issuing_unit_id, regime.receiving_unit_id, regime.preparing_unit_id) == (department,) * 3
        assert regime.legal_number == DECISION and regime.selector["kinds"] == ["commune"]
        assert regime.created_by_id == world["officer"].id
        form = Form.get_by_id(regime.form_id)
        assert (form.code, form.owner_unit_id, form.frequency, form.created_by_id) == \
            ("NN-THANG-1", department, "monthly", world["officer"].id)
        assert FormVersion.get(FormVersion.form == form).status == "published"
        actions = [e.action for e in AuditEvent.select().order_by(AuditEvent.id)]
        assert actions[-3:] == ["form.created", "form.published", "regime.create"]
    # Kinds are read within the authority's units: the communes, though outside the department.
    app = world["app"]
    with db.connection_context(), events.using(app.state.pm, app.state.registry, app.state.settings):
        assert {u.id for u in rg.resolve_units(rg.Regime.get_by_id(regime_id))} == \
            {c.id for c in world["tree"].communes}


def test_the_regime_screens_policy_applies_and_a_refusal_leaves_nothing(world):
    # No authority: a department issues no periodic regime to communes — not through the API either.
    with pytest.raises(ValidationError) as refused:
        make(world, spec(world))
    assert refused.value.errors["issuing_unit"] == "regimes.error.periodic_issuer"
    assert written() == (0, 0)  # the form created before the draft was refused is gone too


def test_a_person_without_the_right_at_the_unit_is_refused(world):
    grant(world)
    with pytest.raises(Forbidden):
        make(world, spec(world), who="stranger")
    assert written() == (0, 0)


def test_a_form_code_taken_is_said_at_the_form(world):
    grant(world)
    make(world, spec(world))
    with pytest.raises(ValidationError) as refused:
        make(world, spec(world, code="nn.thang.2"))
    assert refused.value.errors == {"form": "forms.error.code_taken"}
    with db.connection_context():
        assert not rg.Regime.select().where(rg.Regime.code == "nn.thang.2").exists()


def test_a_spec_naming_an_unknown_unit_is_refused(world):
    grant(world)
    with pytest.raises(rg.RegimeSpecError):
        make(world, spec(world, reporting_codes=("KHONG.CO",)))
    assert written() == (0, 0)
