"""Regimes owned by plugins (issue 13 item 6): a regime names its issuing unit, its receiving unit as
a rule (one named unit, each reporting unit's parent, a unit group's owner) and its reporting units
(kinds, a unit group, codes: the union); each report stores the receiver its rule gave; a plugin's
regime opens reports only where the plugin is switched on, and switching it off leaves the reports
already opened readable with their data; a code that names nothing is refused, naming the field or
the file and key, and nothing is written. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import types
from decimal import Decimal

import pytest

from core import activation
from core.api import Domain, PluginDataError, hookimpl, plugin_data
from core.errors import ValidationError
from core.plugins import build_plugin_manager
from core.regimes import regimes as rg
from core.regimes.forms import Form
from core.registry import build_registry
from core.reporting import data as rd
from core.reporting import events
from core.reporting import opening as rp
from core.models import User
from tests.core.test_plugin_data import REGIME, package
from tests.core.test_regimes import CAL, TODAY, periodic, world  # noqa: F401 — the fixture
from tests.fixtures.forms import form_world

APRIL = dt.date(2026, 3, 20)  # April 2026's window (15/03 – 14/04) has started


def receivers(regime) -> dict[str, str | None]:
    """Reporting unit code → its report's receiver code, for the regime's reports."""
    return {r.unit.code: (r.receiver.code if r.receiver_id else None)
            for r in rp.Report.select().where(rp.Report.regime == regime.id)}


def issue(world, regime):
    return rp.issue_and_open(world.p["issuer"], regime.id, calendar=CAL, today=TODAY)


def spec(**changes) -> rg.RegimeSpec:
    fields = dict(code="fx_agri.monthly", name="Báo cáo tiến độ gieo trồng hằng tháng", frequency="monthly",
                  content="Diện tích gieo trồng.", reporting_kinds=("commune",), outline="I. Kết quả",
                  deadline_rules=(("Xã → nhận", "commune", "2wd"),), legal_number="12/2026/QĐ-UBND",
                  legal_date=dt.date(2026, 1, 5), legal_issuer="UBND tỉnh")
    fields.update(changes)
    return rg.RegimeSpec(**fields)


def shipping(settings, *specs):
    """A plugin manager with the plugin ``fx_agri`` shipping ``specs``."""
    module = types.ModuleType("fx_agri")
    module.register_domain = hookimpl(lambda settings: Domain(name="fx_agri", label=""))
    module.register_regimes = hookimpl(lambda settings: list(specs))
    return build_plugin_manager(settings, builtins=(), extra_plugins=[module], load_entrypoints=False)


# -- the receiving rule ---------------------------------------------------------------------------

def test_under_the_parent_rule_each_unit_reports_to_its_own_parent(world):
    regime = rg.save_draft(world.p["editor"], periodic(world, receiving_rule="parent", receiving_unit_id="",
                                                       kinds=["commune"]))
    assert (regime.receiving_rule, regime.receiving_unit_id) == ("parent", None)
    assert rg.missing_components(regime) == []
    issue(world, regime)
    # Gio Mỹ sits under the district; Ái Tử and Cam Lộ straight under the province.
    assert receivers(regime) == {"GM": "GL", "AT": "44", "CL": "44"}


def test_under_the_unit_rule_a_plugin_names_its_issuer_and_receiver_by_code(world, settings):
    pm = shipping(settings, spec(issuing_unit_code="44", receiving_rule="unit", receiving_unit_code="STC"))
    assert rg.load_plugin_regimes(pm, settings) == {"fx_agri": ["fx_agri.monthly"]}
    regime = rg.Regime.get(rg.Regime.code == "fx_agri.monthly")
    assert (regime.plugin, regime.issuing_unit_id, regime.receiving_rule, regime.receiving_unit_id) == \
        ("fx_agri", world.u["province"].id, "unit", world.u["stc"].id)
    issue(world, regime)
    assert receivers(regime) == {"GM": "STC", "AT": "STC", "CL": "STC"}


def test_under_the_group_owner_rule_the_owner_when_the_period_opens_receives(world, settings):
    group = rg.save_group("XA_NN", "Xã theo dõi nông nghiệp", [world.u["giomy"].id, world.u["aitu"].id],
                          owner_id=world.u["syt"].id)
    pm = shipping(settings, spec(receiving_rule="group_owner", receiving_group="XA_NN", reporting_kinds=(),
                                 reporting_group="XA_NN"))
    rg.load_plugin_regimes(pm, settings)
    regime = rg.Regime.get(rg.Regime.code == "fx_agri.monthly")
    assert (regime.receiving_rule, regime.receiving_group_id, regime.receiving_unit_id) == \
        ("group_owner", group.id, None)
    issue(world, regime)
    assert receivers(regime) == {"GM": "SYT", "AT": "SYT"}
    # A new owner receives the periods opened from then on; the open period keeps its receiver.
    rg.save_group("XA_NN", "Xã theo dõi nông nghiệp", [world.u["giomy"].id, world.u["aitu"].id],
                  owner_id=world.u["stc"].id)
    rp.open_due_periods(APRIL, calendar=CAL)
    april = {r.unit.code: r.receiver.code for r in rp.Report.select().where(rp.Report.period_end == dt.date(2026, 4, 14))}
    assert april == {"GM": "STC", "AT": "STC"}
    march = {r.unit.code: r.receiver.code for r in rp.Report.select().where(rp.Report.period_end == dt.date(2026, 3, 14))}
    assert march == {"GM": "SYT", "AT": "SYT"}


def test_a_group_without_owner_cannot_receive(world):
    group = rg.save_group("XA_NN", "Xã theo dõi", [world.u["aitu"].id])
    regime = rg.save_draft(world.p["editor"], periodic(world, receiving_rule="group_owner",
                                                       receiving_group_id=str(group.id)))
    with pytest.raises(ValidationError) as exc:
        issue(world, regime)
    assert "regimes.error.group_no_owner" in {p.key for p in exc.value.problems}
    assert not rp.Report.select().exists()
    with pytest.raises(ValidationError) as exc:
        rg.save_draft(world.p["editor"], periodic(world, code="KHAC", receiving_rule="group_owner"))
    assert exc.value.errors == {"receiving_group": "regimes.error.receiving_group_required"}


# -- the reporting units: the union --------------------------------------------------------------------

def test_the_reporting_units_are_the_union_of_kinds_group_and_codes(world, settings):
    rg.save_group("XA_AT", "Ái Tử", [world.u["aitu"].id])
    pm = shipping(settings, spec(reporting_kinds=("department",), reporting_group="XA_AT", reporting_codes=("CL",),
                                 deadline_rules=(("Mọi đơn vị → tỉnh", "", "2wd"),)))
    rg.load_plugin_regimes(pm, settings)
    regime = rg.Regime.get(rg.Regime.code == "fx_agri.monthly")
    assert {u.code for u in rg.resolve_units(regime, TODAY)} == {"STC", "SYT", "AT", "CL"}
    issue(world, regime)
    assert set(receivers(regime)) == {"STC", "SYT", "AT", "CL"}  # the province receives: not itself


# -- a code that names nothing ------------------------------------------------------------------------

@pytest.mark.parametrize("changes, field, code", [
    ({"issuing_unit_code": "NOPE"}, "issuing_unit_code", "NOPE"),
    ({"receiving_rule": "unit", "receiving_unit_code": "SNN"}, "receiving_unit_code", "SNN"),
    ({"receiving_rule": "group_owner", "receiving_group": "KHONG_CO"}, "receiving_group", "KHONG_CO"),
    ({"reporting_codes": ("CL", "XX9")}, "reporting_codes", "XX9"),
    ({"reporting_group": "KHONG_CO"}, "reporting_group", "KHONG_CO"),
])
def test_a_spec_naming_an_unknown_unit_or_group_is_refused_by_field_and_writes_nothing(world, settings, changes,
                                                                                    field, code):
    pm = shipping(settings, spec(**changes))
    assert rg.load_plugin_regimes(pm, settings) == {}
    assert not rg.Regime.select().exists()
    (stage, summary, _), = pm.infos["fx_agri"].errors
    assert stage == "contribution"
    assert f"fx_agri.monthly, trường {field}: không có" in summary and f"“{code}”" in summary
    assert f"Regime fx_agri.monthly, field {field}: no unit" in summary  # both languages


@pytest.mark.parametrize("old, new, where", [
    ('[issuing_unit]\nkind = "province"', '[issuing_unit]\ncode = "NOPE"', "issuing_unit.code"),
    ('[units]\nkinds = ["commune"]', '[units]\nkinds = ["commune"]\ncodes = ["CL", "XX9"]', "units.codes"),
    ('[units]\nkinds = ["commune"]', '[units]\ngroup = "KHONG_CO"', "units.group"),
    ('[units]\n', '[receiving_unit]\nrule = "unit"\ncode = "SNN"\n\n[units]\n', "receiving_unit.code"),
    ('[units]\n', '[receiving_unit]\nrule = "group_owner"\ngroup = "KHONG_CO"\n\n[units]\n', "receiving_unit.group"),
])
def test_a_file_naming_an_unknown_unit_or_group_is_named_with_its_key_and_writes_nothing(
        tmp_path, world, settings, old, new, where):
    assert old in REGIME
    data = plugin_data("fx_agri", package(tmp_path, regimes={"01_monthly.toml": REGIME.replace(old, new)}))
    data.load_indicators()
    with pytest.raises(PluginDataError) as exc_info:
        data.regimes()
    (problem,) = exc_info.value.problems
    assert (problem.file, problem.where) == ("data/regimes/01_monthly.toml", where)
    vi, en = problem.message("vi"), problem.message("en")
    assert vi.startswith(f"data/regimes/01_monthly.toml: {where}: không có") and en.startswith(
        f"data/regimes/01_monthly.toml: {where}: no unit")
    module = types.ModuleType("fx_agri")
    module.register_regimes = hookimpl(lambda settings: data.regimes())
    pm = build_plugin_manager(settings, builtins=(), extra_plugins=[module], load_entrypoints=False)
    assert rg.load_plugin_regimes(pm, settings) == {}
    assert not rg.Regime.select().exists() and not Form.select().exists()


@pytest.mark.parametrize("table, where, key", [
    ('[receiving_unit]\nrule = "parent"\ncode = "STC"\n', "receiving_unit.code", "plugin_data.rule_key"),
    ('[receiving_unit]\nrule = "group_owner"\n', "receiving_unit", "plugin_data.schema.required"),
    ('[receiving_unit]\nrule = "sideways"\n', "receiving_unit.rule", "regimes.error.choice"),
    ('[receiving_unit]\nkind = "province"\ncode = "STC"\n', "receiving_unit.code", "plugin_data.one_of"),
])
def test_a_receiving_rule_with_the_wrong_keys_is_named(tmp_path, table, where, key):
    text = REGIME.replace("[units]\n", table + "\n[units]\n")
    with pytest.raises(PluginDataError) as exc_info:
        plugin_data("fx_agri", package(tmp_path, regimes={"01.toml": text})).regimes()
    (problem,) = exc_info.value.problems
    assert (problem.where, problem.key) == (where, key)
    assert problem.message("vi") != problem.message("en")


def test_a_file_with_rules_and_codes_loads_as_the_spec(tmp_path, world):
    rg.save_group("XA_NN", "Xã", [world.u["aitu"].id], owner_id=world.u["stc"].id)
    text = REGIME.replace('[issuing_unit]\nkind = "province"', '[issuing_unit]\ncode = "44"').replace(
        '[units]\nkinds = ["commune"]',
        '[receiving_unit]\nrule = "group_owner"\ngroup = "XA_NN"\n\n[units]\nkinds = ["department"]\n'
        'group = "XA_NN"\ncodes = ["CL"]')
    (loaded,) = plugin_data("fx_agri", package(tmp_path, regimes={"01.toml": text})).regimes()
    assert (loaded.issuing_unit_code, loaded.receiving_rule, loaded.receiving_group, loaded.reporting_kinds,
            loaded.reporting_group, loaded.reporting_codes) == \
        ("44", "group_owner", "XA_NN", ("department",), "XA_NN", ("CL",))


# -- the plugin's switch --------------------------------------------------------------------------------

@pytest.fixture
def owned(db_session, settings):
    """tests/fixtures/forms.py's world (reports of March opened for Ái Tử and Cam Lộ) with its regime
    owned by the plugin ``fx_agri``, the plugin's manager and registry, and Ái Tử's report filled."""
    w = form_world()
    rg.Regime.update(plugin="fx_agri").where(rg.Regime.code == w.regime.code).execute()
    w.regime = rg.Regime.get_by_id(w.regime.id)
    w.pm = shipping(settings)
    w.registry = build_registry(w.pm, settings)
    w.settings = settings
    rd.save(w.p["reporter"], w.report.id, {("banle", "cur"): (rd.MISSING, "12,5")},
            {"ketqua": (rd.MISSING, "Gieo cấy đúng lịch.")})
    return w


def april_units(regime_code="KTXH.THANG") -> set[str]:
    return {r.unit.code for r in rp.Report.select().join(rg.Regime).where(
        (rg.Regime.code == regime_code) & (rp.Report.period_end == dt.date(2026, 4, 14)))}


def test_a_plugin_switched_off_for_a_commune_opens_nothing_there_and_keeps_its_reports(owned):
    admin = User.get_by_id(owned.users["issuer"].id)
    activation.set_activation(owned.u["aitu"].id, "fx_agri", "off", admin, owned.registry)
    with events.using(owned.pm, owned.registry, owned.settings):
        assert rp.reporting_units(owned.regime, APRIL) == [owned.u["camlo"]]
        rp.open_due_periods(APRIL, calendar=CAL)
    assert april_units() == {"CL"}
    # March's report of Ái Tử stays, readable by its unit, with its figures and its text.
    assert rd.can_read(owned.p["reporter"], rp.Report.get_by_id(owned.report.id))
    assert rd.stored_values(owned.report.id)[("banle", "cur")] == Decimal("12.5")
    assert rp.Report.get_by_id(owned.report.id).status == "draft"
    # Switched on again, the next run opens the period it missed.
    activation.set_activation(owned.u["aitu"].id, "fx_agri", "inherit", admin, owned.registry)
    with events.using(owned.pm, owned.registry, owned.settings):
        assert rp.open_due_periods(APRIL, calendar=CAL).reports == 1
    assert april_units() == {"AT", "CL"}


def test_switched_off_above_a_commune_counts_and_without_a_manager_the_switches_still_count(owned):
    admin = User.get_by_id(owned.users["issuer"].id)
    activation.set_activation(owned.u["province"].id, "fx_agri", "off", admin, owned.registry)
    activation.set_activation(owned.u["camlo"].id, "fx_agri", "on", admin, owned.registry)
    # No plugin manager named (the core used alone): the default is on, the switches still hold.
    rp.open_due_periods(APRIL, calendar=CAL)
    assert april_units() == {"CL"}


def test_a_plugin_not_installed_or_failed_opens_nothing(owned, settings):
    bare = build_plugin_manager(settings, builtins=(), load_entrypoints=False)
    with events.using(bare, build_registry(bare, settings), settings):
        assert rp.open_due_periods(APRIL, calendar=CAL).reports == 0
    owned.pm.fail("fx_agri", "startup", RuntimeError("cannot start"))
    with events.using(owned.pm, owned.registry, settings):
        assert rp.open_due_periods(APRIL, calendar=CAL).reports == 0
    assert april_units() == set()


def test_the_provinces_own_regime_ignores_plugin_switches(db_session, settings):
    w = form_world()
    pm = shipping(settings)
    registry = build_registry(pm, settings)
    admin = User.get_by_id(w.users["issuer"].id)
    activation.set_activation(w.u["province"].id, "fx_agri", "off", admin, registry)
    with events.using(pm, registry, settings):
        rp.open_due_periods(APRIL, calendar=CAL)
    assert april_units() == {"AT", "CL"}
