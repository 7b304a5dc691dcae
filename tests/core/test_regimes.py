"""Reporting regimes in the core (issue 4): components (Decree 09/2019 Art. 7), issuing checks
(Art. 11, Art. 8 cl. 5), the issuing policy and rights, versions, plugin-shipped regimes.

Tree: Tỉnh Quảng Trị → Sở Tài chính, Sở Y tế, Huyện Gio Linh (→ Xã Gio Mỹ), Xã Ái Tử, Xã Cam Lộ;
Tỉnh Khác → Xã Ngoài, Công ty Ngoài (organisation). Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest

from core.accounts import login as accounts
from core.regimes import regimes as rg
from core.reporting import opening as rp
from core.accounts.access import Grant, Role, grants_of
from core.audit import AuditEvent
from core.errors import Forbidden, NotFound, SettingsError, ValidationError
from core.models import Unit, User
from core.accounts.permissions import Access
from core.registry import CORE_DOMAIN
from core.settings import RegimeSettings, load_settings
from core.units.tree import ancestor_ids
from core.regimes.workdays import WorkCalendar

REGISTRY = SimpleNamespace(permissions={p.code: p for p in CORE_DOMAIN.permissions})
CAL = WorkCalendar()
TODAY = dt.date(2026, 3, 2)


def access_of(user) -> Access:
    user = User.get_by_id(user.id)
    return Access(actor=user, registry=REGISTRY, grants=grants_of(user.id), chain=tuple(ancestor_ids(user.unit_id)))


@pytest.fixture
def world(db_session):
    u = {}
    u["province"] = Unit.create(code="44", name="Tỉnh Quảng Trị", kind="province")
    u["stc"] = Unit.create(code="STC", name="Sở Tài chính", kind="department", parent=u["province"])
    u["syt"] = Unit.create(code="SYT", name="Sở Y tế", kind="department", parent=u["province"])
    u["district"] = Unit.create(code="GL", name="Huyện Gio Linh", kind="district", parent=u["province"])
    u["giomy"] = Unit.create(code="GM", name="Xã Gio Mỹ", kind="commune", parent=u["district"])
    u["aitu"] = Unit.create(code="AT", name="Xã Ái Tử", kind="commune", parent=u["province"])
    u["camlo"] = Unit.create(code="CL", name="Xã Cam Lộ", kind="commune", parent=u["province"])
    u["other"] = Unit.create(code="99", name="Tỉnh Khác", kind="province")
    u["outside"] = Unit.create(code="XN", name="Xã Ngoài", kind="commune", parent=u["other"])
    u["company"] = Unit.create(code="CTY", name="Công ty Ngoài", kind="organisation", parent=u["other"])

    def person(name, unit, *roles):
        user = accounts.create_user(name, name, accounts.random_password(), u[unit])
        for role in roles:
            Grant.create(user=user, role=Role.get(Role.code == role), unit=u[unit])
        return access_of(user)

    people = {
        "editor": person("editor", "stc", "regime_editor"),
        "issuer": person("issuer", "province", "regime_issuer"),
        "district": person("district", "district", "regime_editor", "regime_issuer"),
        "commune": person("commune", "aitu", "regime_editor", "regime_issuer"),
        "viewer": person("viewer", "syt", "viewer"),
        "nobody": person("nobody", "camlo"),
    }
    return SimpleNamespace(u=u, p=people)


def periodic(w, **changes) -> dict:
    data = {
        "code": "KTXH.THANG", "name": "Báo cáo tình hình kinh tế - xã hội hằng tháng", "regime_type": "periodic",
        "content": "Tình hình kinh tế - xã hội trong tháng", "content_type": "both",
        "kinds": ["department", "commune"], "receiving_unit_id": w.u["province"].id, "sending_methods": ["system"],
        "deadline_rules": [{"level": "Xã → tỉnh", "from_kind": "commune", "rule": "2wd"},
                           {"level": "Sở → tỉnh", "from_kind": "department", "rule": "+1wd"}],
        "frequency": "monthly", "cutoff_rule": "decree", "outline": "# I. Kinh tế\n# II. Xã hội",
        "legal_number": "12/2025/QĐ-UBND", "legal_date": "2025-08-01", "legal_issuer": "UBND tỉnh Quảng Trị",
        "issuing_unit_id": w.u["province"].id, "preparing_unit_id": w.u["stc"].id,
    }
    data.update(changes)
    return data


def test_the_planning_department_drafts_and_the_province_issues(world):
    regime = rg.save_draft(world.p["editor"], periodic(world))
    assert (regime.status, regime.version, regime.code) == ("draft", 1, "KTXH.THANG")
    issued, opened = rp.issue_and_open(world.p["issuer"], regime.id, calendar=CAL, today=TODAY)
    assert issued.status == "issued" and issued.valid_from == TODAY and issued.issued_by_id == world.p["issuer"].actor.id
    assert opened.periods == 1  # March 2026 (15/02 – 14/03) has started
    assert AuditEvent.select().where(AuditEvent.action == "regime.issue").count() == 1


def test_a_periodic_regime_without_components_1_to_9_is_refused_listing_them(world):
    data = periodic(world, content="", kinds=[], sending_methods=[], deadline_rules=[], frequency="", outline="",
                    receiving_unit_id="")
    regime = rg.save_draft(world.p["editor"], data)
    with pytest.raises(ValidationError) as exc:
        rg.issue(world.p["issuer"], regime.id, calendar=CAL, today=TODAY)
    assert exc.value.key == "regimes.error.missing_components"
    for lang in ("vi", "en"):
        text = exc.value.message(lang)
        for part in ("2. Nội dung yêu cầu báo cáo", "3. Đối tượng thực hiện báo cáo", "4. Cơ quan nhận báo cáo",
                     "5. Phương thức gửi, nhận báo cáo", "6. Thời hạn gửi báo cáo", "7. Tần suất thực hiện báo cáo",
                     "9. Mẫu đề cương báo cáo"):
            assert part in text, (lang, part)
        assert "1. Tên" not in text and "10." not in text
    assert [n for n, _, _ in rg.missing_components(regime)] == [2, 3, 4, 5, 6, 7, 9]
    assert rg.Regime.get_by_id(regime.id).status == "draft"


def test_a_periodic_regime_needs_its_legal_basis(world):
    regime = rg.save_draft(world.p["editor"], periodic(world, legal_number="", legal_issuer=""))
    with pytest.raises(ValidationError) as exc:
        rg.issue(world.p["issuer"], regime.id, calendar=CAL, today=TODAY)
    assert exc.value.key == "regimes.error.legal_basis"
    assert "Điều 11" in exc.value.message("vi")


def test_a_deadline_leaving_no_working_day_is_refused_citing_article_8(world):
    # "15th" after a Saturday cut-off leaves zero working days (legal reference §1.5): 14/02/2026 is the first.
    rules = [{"level": "Xã → tỉnh", "from_kind": "", "rule": "day:15"}]
    regime = rg.save_draft(world.p["editor"], periodic(world, deadline_rules=rules))
    with pytest.raises(ValidationError) as exc:
        rg.issue(world.p["issuer"], regime.id, calendar=CAL, today=TODAY)
    assert exc.value.key == "deadlines.error.art8_cutoff"
    message = exc.value.message("vi")
    assert "Điều 8 khoản 5" in message and "15/01/2026 – 14/02/2026" in message


def test_a_level_after_the_previous_one_in_the_calendar(world):
    regime = rg.save_draft(world.p["editor"], periodic(world))
    rows = rg.calendar_rows(regime, 2026, CAL)
    october = rows[9]
    assert october.error is None
    # cut-off Wed 14/10 → communes 2wd Fri 16/10 → departments +1wd Mon 19/10
    assert [(lv.level, lv.deadline) for lv in october.levels] == [
        ("Xã → tỉnh", dt.date(2026, 10, 16)), ("Sở → tỉnh", dt.date(2026, 10, 19))]


def test_plus_rule_on_the_first_level_is_refused_at_saving(world):
    rules = [{"level": "Sở → tỉnh", "from_kind": "", "rule": "+1wd"}]
    with pytest.raises(ValidationError) as exc:
        rg.save_draft(world.p["editor"], periodic(world, deadline_rules=rules))
    assert exc.value.errors == {"deadline_rules.0": "regimes.error.rule_after_first"}


def test_a_bad_rule_is_refused_per_row(world):
    rules = [{"level": "A", "from_kind": "", "rule": "2wd"}, {"level": "B", "from_kind": "", "rule": "soon"}]
    with pytest.raises(ValidationError) as exc:
        rg.save_draft(world.p["editor"], periodic(world, deadline_rules=rules))
    assert exc.value.errors == {"deadline_rules.1": "regimes.error.rule_invalid"}
    assert not rg.Regime.select().exists()


def test_a_commune_may_not_issue_a_periodic_regime(world):
    data = periodic(world, code="XA.THANG", issuing_unit_id=world.u["aitu"].id, preparing_unit_id="",
                    receiving_unit_id=world.u["aitu"].id)
    with pytest.raises(ValidationError) as exc:
        rg.save_draft(world.p["commune"], data)
    assert exc.value.errors["issuing_unit"] == "regimes.error.periodic_issuer"
    # ... unless the operator's policy says otherwise.
    policy = RegimeSettings(periodic_issuer_kinds=("province", "commune"))
    assert rg.save_draft(world.p["commune"], data, policy=policy).status == "draft"


def test_the_preparing_unit_is_a_department_of_the_issuer(world):
    with pytest.raises(ValidationError) as exc:
        rg.save_draft(world.p["issuer"], periodic(world, preparing_unit_id=world.u["aitu"].id))
    assert exc.value.errors["preparing_unit"] == "regimes.error.preparer"


def thematic(w, issuer: str, **changes) -> dict:
    data = {"code": "CD.1", "name": "Báo cáo chuyên đề về phòng chống thiên tai", "regime_type": "thematic",
            "content": "Thiệt hại do bão số 5", "kinds": [], "unit_ids": [],
            "receiving_unit_id": w.u[issuer].id, "issuing_unit_id": w.u[issuer].id}
    data.update(changes)
    return data


def test_a_district_requests_only_from_its_own_subtree_or_organisations(world):
    with pytest.raises(ValidationError) as exc:
        rg.save_draft(world.p["district"], thematic(world, "district", unit_ids=[world.u["aitu"].id]))
    assert exc.value.errors["units"] == "regimes.error.recipients_outside"
    ok = rg.save_draft(world.p["district"], thematic(world, "district",
                                                     unit_ids=[world.u["giomy"].id, world.u["company"].id]))
    assert [u.code for u in rg.resolve_units(ok, TODAY)] == ["GM", "CTY"] or \
        {u.code for u in rg.resolve_units(ok, TODAY)} == {"GM", "CTY"}
    # A policy of "any" lifts the subtree rule.
    data = thematic(world, "district", code="CD.2", unit_ids=[world.u["aitu"].id])
    assert rg.save_draft(world.p["district"], data, policy=RegimeSettings(request_recipients="any"))


def test_rights_are_enforced_in_the_core(world):
    # No edit right anywhere.
    with pytest.raises(ValidationError) as exc:
        rg.save_draft(world.p["viewer"], periodic(world))
    assert exc.value.errors["issuing_unit"] == "regimes.error.no_edit_right"
    regime = rg.save_draft(world.p["editor"], periodic(world))
    # The drafter cannot issue; the issuer cannot change the draft.
    with pytest.raises(Forbidden):
        rg.issue(world.p["editor"], regime.id, calendar=CAL, today=TODAY)
    with pytest.raises(Forbidden):
        rg.save_draft(world.p["issuer"], periodic(world, name="Khác"), regime_id=regime.id)
    # Someone who sees nothing of it gets NotFound, as for a regime that does not exist.
    with pytest.raises(NotFound):
        rg.issue(world.p["nobody"], regime.id, calendar=CAL, today=TODAY)
    with pytest.raises(NotFound):
        rg.get_regime(world.p["district"], regime.id)
    assert rg.Regime.get_by_id(regime.id).status == "draft"


def test_viewer_sees_regimes_of_units_in_its_subtree(world):
    regime = rg.save_draft(world.p["editor"], periodic(world, receiving_unit_id=world.u["syt"].id))
    assert [r.id for r in rg.visible_regimes(world.p["viewer"])] == [regime.id]
    assert rg.visible_regimes(world.p["nobody"]) == []


def test_drafts_change_in_place_and_issued_regimes_get_new_versions(world):
    regime = rg.save_draft(world.p["editor"], periodic(world))
    rg.save_draft(world.p["editor"], periodic(world, name="Tên mới"), regime_id=regime.id)
    assert rg.Regime.select().count() == 1 and rg.Regime.get_by_id(regime.id).name == "Tên mới"
    rg.issue(world.p["issuer"], regime.id, calendar=CAL, today=TODAY)
    with pytest.raises(Forbidden):
        rg.save_draft(world.p["editor"], periodic(world, name="Sửa trực tiếp"), regime_id=regime.id)
    draft = rg.new_version(world.p["editor"], regime.id)
    assert (draft.code, draft.version, draft.status) == ("KTXH.THANG", 2, "draft")
    assert rg.new_version(world.p["editor"], regime.id).id == draft.id  # one draft at a time
    later = TODAY + dt.timedelta(days=40)
    rg.issue(world.p["issuer"], draft.id, calendar=CAL, today=later)
    old, new = rg.Regime.get_by_id(regime.id), rg.Regime.get_by_id(draft.id)
    assert (old.status, old.valid_to) == ("retired", later)
    assert (new.status, new.valid_from) == ("issued", later)


def test_suspend_and_retire_need_a_reason_and_the_issue_right(world):
    regime = rg.save_draft(world.p["editor"], periodic(world))
    rg.issue(world.p["issuer"], regime.id, calendar=CAL, today=TODAY)
    with pytest.raises(ValidationError) as exc:
        rg.suspend(world.p["issuer"], regime.id, "  ")
    assert exc.value.errors == {"reason": "regimes.error.reason_required"}
    with pytest.raises(Forbidden):
        rg.suspend(world.p["editor"], regime.id, "Chờ sửa đổi")
    assert rg.suspend(world.p["issuer"], regime.id, "Chờ sửa đổi").status == "suspended"
    assert rg.resume(world.p["issuer"], regime.id).status == "issued"
    assert rg.retire(world.p["issuer"], regime.id, "Thay bằng quyết định mới").status == "retired"
    event = AuditEvent.select().where(AuditEvent.action == "regime.retire").get()
    assert "Thay bằng quyết định mới" in event.details


def test_code_is_required_unique_and_well_formed(world):
    rg.save_draft(world.p["editor"], periodic(world))
    for code, key in (("", "regimes.error.code_required"), ("KTXH.THANG", "regimes.error.code_taken"),
                      ("mã có dấu", "regimes.error.code_invalid")):
        with pytest.raises(ValidationError) as exc:
            rg.save_draft(world.p["editor"], periodic(world, code=code))
        assert exc.value.errors["code"] == key


def test_unit_groups_choose_reporting_units(world):
    group = rg.save_group("SO_NGANH", "Các sở, ban, ngành", [world.u["stc"].id, world.u["syt"].id])
    regime = rg.save_draft(world.p["editor"], periodic(world, kinds=[], group_ids=[group.id]))
    assert {u.code for u in rg.resolve_units(regime, TODAY)} == {"STC", "SYT"}


def test_units_no_longer_valid_do_not_report(world):
    world.u["camlo"].valid_to = dt.date(2025, 6, 30)
    world.u["camlo"].save()
    regime = rg.save_draft(world.p["editor"], periodic(world))
    codes = {u.code for u in rg.resolve_units(regime, TODAY)}
    assert codes == {"STC", "SYT", "GM", "AT"}  # the receiving province never reports to itself


def test_a_plugin_regime_loads_once_as_a_draft_and_keeps_the_administrators_edits(world):
    spec = rg.RegimeSpec(code="kinhte_xahoi.quy", name="Báo cáo KT-XH hằng quý", frequency="quarterly",
                         reporting_kinds=("department",), deadline_rules=(("Sở → tỉnh", "", "2wd"),),
                         preparing_unit_code="STC")
    regime = rg.load_spec("kinhte_xahoi", spec)
    assert (regime.status, regime.plugin, regime.issuing_unit_id) == ("draft", "kinhte_xahoi", world.u["province"].id)
    rg.save_draft(world.p["editor"], {**periodic(world), "name": "Tên do quản trị sửa"}, regime_id=regime.id)
    assert rg.load_spec("kinhte_xahoi", spec) is None
    assert rg.Regime.get_by_id(regime.id).name == "Tên do quản trị sửa"
    with pytest.raises(ValueError):
        rg.load_spec("kinhte_xahoi", rg.RegimeSpec(code="other.x", name="X"))


def test_load_plugin_regimes_isolates_a_bad_spec(world):
    recorded = []

    class PM:
        def call_each(self, hook, **kwargs):
            assert hook == "register_regimes" and "settings" in kwargs
            return [("kinhte_xahoi", [rg.RegimeSpec(code="khac.x", name="X"),
                                      rg.RegimeSpec(code="kinhte_xahoi.nam", name="Năm", frequency="annual")])]

        def record_error(self, name, stage, exc):
            recorded.append(name)

    assert rg.load_plugin_regimes(PM()) == {"kinhte_xahoi": ["kinhte_xahoi.nam"]}
    assert recorded == ["kinhte_xahoi"]


def test_regime_settings_section(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('[regimes]\nperiodic_issuer_kinds = ["province", "district"]\nrequest_recipients = "any"\n',
                    encoding="utf-8")
    settings = load_settings(path, env={})
    assert settings.regimes.periodic_issuer_kinds == ("province", "district")
    assert settings.regimes.request_recipients == "any"
    assert load_settings(None, env={}).regimes == RegimeSettings()
    for bad in ('[regimes]\nwho = "x"\n', '[regimes]\nrequest_recipients = "all"\n',
                '[regimes]\nperiodic_issuer_kinds = ["county"]\n'):
        path.write_text(bad, encoding="utf-8")
        with pytest.raises(SettingsError):
            load_settings(path, env={})


def test_the_list_is_searched_without_diacritics_and_ordered_by_period_length(world):
    editor = world.p["editor"]
    rg.save_draft(editor, periodic(world, code="KTXH.NAM", name="Báo cáo tình hình kinh tế - xã hội năm",
                                   frequency="annual"))
    rg.save_draft(editor, periodic(world))
    rg.save_draft(editor, periodic(world, code="KTXH.QUY", name="Báo cáo kinh tế - xã hội quý",
                                   frequency="quarterly"))
    issuer = world.p["issuer"]
    assert [r.code for r in rg.visible_regimes(issuer)] == ["KTXH.THANG", "KTXH.QUY", "KTXH.NAM"]
    assert [r.code for r in rg.visible_regimes(issuer, q="bao cao HANG thang")] == ["KTXH.THANG"]
    assert [r.code for r in rg.visible_regimes(issuer, q="ktxh.quy")] == ["KTXH.QUY"]
