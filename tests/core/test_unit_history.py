"""Units with a history (issue 4): the Quảng Trị tree before and after 01/07/2025, the
changes that link them, and the change operations with their refusals."""

from __future__ import annotations

import csv
import datetime as dt
from collections import Counter

import pytest

from core.accounts import admin as account_admin
from core.units import history as uh
from core.units import tree as units
from core.audit import AuditEvent
from core.demo import load_units
from core.errors import NotFound, ValidationError
from core.models import Unit
from core.units.changes import UnitChange, UnitChangeLink, name_at, parent_at
from core.units.history import DATA

EVE, REFORM = dt.date(2025, 6, 30), dt.date(2025, 7, 1)


def csv_rows():
    with DATA.open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture
def demo(db_session):
    return load_units()


def kinds(nodes):
    return Counter(n.unit.kind for n in nodes)


def test_the_tree_on_30_06_2025_is_the_three_level_tree_of_the_data(demo):
    rows = csv_rows()
    nodes = units.flatten(units.tree(at=EVE))
    former = [n.strip() for r in rows for n in r["former_units"].split(";") if n.strip()]
    # The data lists 265 former units: 264 communes and one district-level unit (Huyện Cồn Cỏ,
    # now Đặc khu Cồn Cỏ), which had no communes; legal.md §5.1 gives 145 + 119 = 264 communes.
    assert len(former) == 265
    assert kinds(nodes) == {"province": 2, "district": 18, "commune": 264}
    assert {n.unit.name for n in nodes if n.depth == 0} == {"Tỉnh Quảng Bình", "Tỉnh Quảng Trị"}
    assert {n.unit.admin_code for n in nodes if n.depth == 0} == {"44", "45"}
    assert all(n.depth == 2 for n in nodes if n.unit.kind == "commune")
    districts = {(r["former_province"], r["former_district"]) for r in rows}
    assert len(districts) == 18


def test_the_tree_from_01_07_2025_is_the_current_two_level_tree(demo):
    then = units.flatten(units.tree(at=REFORM))
    now = units.flatten(units.tree())
    assert [n.unit.id for n in then] == [n.unit.id for n in now]
    assert kinds(now) == {"province": 1, "department": 6, "commune": 78}
    assert not any(n.unit.valid_to for n in now)


def test_former_units_stay_out_of_current_lists_and_pickers(demo):
    former = {u.id for u in Unit.select().where(Unit.valid_to.is_null(False))}
    assert len(former) == 2 + 18 + 264
    assert not former & {n.unit.id for n in units.flatten(units.tree())}
    assert not former & {n.unit.id for n in account_admin.scope_units(_Everything())}


class _Everything:
    def roots(self, code):
        return None


def test_every_former_commune_has_exactly_one_successor_today(demo):
    by_code = {r["code"]: r for r in csv_rows()}
    for commune in Unit.select().where((Unit.kind == "commune") & Unit.valid_to.is_null(False)):
        successors = uh.successors(commune)
        assert len(successors) == 1, commune.code
        row = by_code[successors[0].code]
        assert commune.name in row["former_units"]
        assert commune.parent.name == row["former_district"]


def test_former_districts_were_dissolved_except_con_co_which_changed_level(demo):
    con_co = Unit.get(Unit.code == "QT.h-con-co")
    assert [u.name for u in uh.successors(con_co)] == ["Đặc khu Cồn Cỏ"]
    assert uh.changes_of(con_co)[0].change.kind == "level_change"
    for district in Unit.select().where((Unit.kind == "district") & (Unit.id != con_co.id)):
        assert uh.successors(district) == []
        (view,) = uh.changes_of(district)
        assert view.change.kind == "dissolve" and view.change.effective_date == REFORM
        assert "203/2025/QH15" in view.change.legal_basis


def test_the_predecessors_of_phuong_dong_hoi_are_the_eight_listed_units(demo):
    dong_hoi = Unit.get(Unit.code == "18880")
    lineage = uh.predecessors(dong_hoi)
    assert sorted(item.unit.name for item in lineage) == sorted([
        "Phường Đức Ninh Đông", "Phường Đồng Hải", "Phường Đồng Phú", "Phường Phú Hải", "Phường Hải Thành",
        "Phường Nam Lý", "Xã Bảo Ninh", "Xã Đức Ninh"])
    assert all(item.unit.parent.name == "Thành phố Đồng Hới" for item in lineage)
    change = lineage[0].change
    assert change.kind == "merge" and change.effective_date == REFORM
    assert "1680/NQ-UBTVQH15" in change.legal_basis and "16/06/2025" in change.legal_basis
    assert all(item.unit.valid_to == EVE for item in lineage)


def test_the_new_province_comes_from_the_two_former_provinces(demo):
    lineage = uh.predecessors(Unit.get(Unit.code == "44"))
    assert sorted(item.unit.code for item in lineage) == ["QB", "QT"]
    assert "12/06/2025" in lineage[0].change.legal_basis
    assert [u.code for u in uh.successors(Unit.get(Unit.code == "QB"))] == ["44"]
    assert uh.successors(Unit.get(Unit.code == "QB"), at=EVE)[0].code == "QB"


def test_xa_tan_thanh_kept_unchanged_is_a_merge_of_one_and_namesakes_stay_apart(demo):
    kept = Unit.get(Unit.code == "18919")
    (item,) = uh.predecessors(kept)
    assert item.unit.code == "QB.h-minh-hoa.xa-tan-thanh" and item.unit.name == "Xã Tân Thành"
    assert item.change.kind == "merge" and "Không sắp xếp" in item.change.note
    other = Unit.get(Unit.code == "QT.h-huong-hoa.xa-tan-thanh")
    assert [u.name for u in uh.successors(other)] == ["Xã Lao Bảo"]


def test_loading_the_history_twice_changes_nothing(demo):
    before = (Unit.select().count(), UnitChange.select().count())
    assert uh.load_quang_tri_history()["changes"] == 0
    assert (Unit.select().count(), UnitChange.select().count()) == before


# -- operations -------------------------------------------------------------------------------

@pytest.fixture
def small(db_session):
    province = Unit.create(code="P", name="Tỉnh A", kind="province")
    d1 = Unit.create(code="D1", name="Huyện Một", kind="district", parent=province)
    d2 = Unit.create(code="D2", name="Huyện Hai", kind="district", parent=province)
    c1 = Unit.create(code="C1", name="Xã Một", kind="commune", parent=d1)
    c2 = Unit.create(code="C2", name="Xã Hai", kind="commune", parent=d1)
    return {u.code: u for u in (province, d1, d2, c1, c2)}


BASIS = "Nghị quyết thử 1/2030"
DAY = dt.date(2030, 1, 1)


def written():
    return (Unit.select().count(), UnitChange.select().count(), UnitChangeLink.select().count(),
            AuditEvent.select().count(), [(u.name, u.parent_id, u.valid_from, u.valid_to) for u in Unit.select()])


def test_a_merge_ends_the_sources_the_day_before_and_creates_the_new_unit(small):
    change = uh.merge([small["C1"], small["C2"]], {"code": "C3", "name": "Xã Ba", "kind": "commune",
                                                  "parent": small["D1"]}, effective_date=DAY, legal_basis=BASIS)
    new = Unit.get(Unit.code == "C3")
    assert new.valid_from == DAY
    assert Unit.get(Unit.code == "C1").valid_to == DAY - dt.timedelta(days=1)
    assert [u.code for u in uh.successors(Unit.get(Unit.code == "C1"), at=DAY)] == ["C3"]
    assert sorted(i.unit.code for i in uh.predecessors(new)) == ["C1", "C2"]
    assert AuditEvent.select().where(AuditEvent.action == "unit.change",
                                     AuditEvent.object_id == str(change.id)).exists()
    assert {n.unit.code for n in units.flatten(units.tree(at=DAY))} == {"P", "D1", "D2", "C3"}
    assert {n.unit.code for n in units.flatten(units.tree(at=DAY - dt.timedelta(days=1)))} == {
        "P", "D1", "D2", "C1", "C2"}


def test_a_split_needs_one_source_and_two_targets(small):
    with pytest.raises(ValidationError) as refused:
        uh.split(small["C1"], [{"code": "X", "name": "Xã X", "kind": "commune", "parent": small["D1"]}],
                 effective_date=DAY, legal_basis=BASIS)
    assert refused.value.errors == {"to": "units.history.error.split_needs_two"}
    uh.split(small["C1"], [{"code": "X", "name": "Xã X", "kind": "commune", "parent": small["D1"]},
                           {"code": "Y", "name": "Xã Y", "kind": "commune", "parent": small["D2"]}],
             effective_date=DAY, legal_basis=BASIS)
    assert [u.code for u in uh.successors(Unit.get(Unit.code == "C1"), at=DAY)] == ["X", "Y"]


def test_rename_and_reparent_keep_the_row_and_rebuild_the_past(small):
    c1 = small["C1"]
    uh.rename(c1, "Xã Một Mới", effective_date=DAY, legal_basis=BASIS)
    uh.reparent(c1, small["D2"], effective_date=DAY + dt.timedelta(days=10), legal_basis=BASIS)
    c1 = Unit.get_by_id(c1.id)
    assert (c1.name, c1.parent_id) == ("Xã Một Mới", small["D2"].id)
    before = DAY - dt.timedelta(days=1)
    assert name_at(c1, before) == "Xã Một" and name_at(c1, DAY) == "Xã Một Mới"
    assert parent_at(c1, DAY) == small["D1"].id and parent_at(c1, DAY + dt.timedelta(days=10)) == small["D2"].id
    old = {n.unit.code: n for n in units.flatten(units.tree(at=before))}
    assert old["C1"].unit.name == "Xã Một" and old["C1"].unit.parent_id == small["D1"].id
    assert [v.change.kind for v in uh.changes_of(c1)] == ["rename", "reparent"]
    with pytest.raises(ValidationError) as refused:
        uh.rename(c1, "Xã Khác", effective_date=DAY, legal_basis=BASIS)
    assert refused.value.errors == {"effective_date": "units.history.error.not_after_last_change"}


def test_a_change_of_level_keeps_the_row_and_the_old_kind(small):
    uh.change_level(small["D2"], "commune", new_parent=small["D1"], effective_date=DAY, legal_basis=BASIS)
    old = {n.unit.code: n.unit for n in units.flatten(units.tree(at=DAY - dt.timedelta(days=1)))}
    assert old["D2"].kind == "district" and old["D2"].parent_id == small["P"].id
    assert Unit.get(Unit.code == "D2").kind == "commune"


@pytest.mark.parametrize("call, errors", [
    (lambda s: uh.reparent(s["D1"], s["C1"], effective_date=DAY, legal_basis=BASIS),
     {"parent": "units.history.error.cycle"}),
    (lambda s: uh.reparent(s["P"], s["P"], effective_date=DAY, legal_basis=BASIS),
     {"parent": "units.history.error.cycle"}),
    (lambda s: uh.merge([s["C1"]], {"code": "C2", "name": "Xã", "kind": "commune", "parent": s["D1"]},
                        effective_date=DAY, legal_basis=BASIS),
     {"code": "units.history.error.code_taken"}),
    (lambda s: uh.merge([s["C1"]], s["C2"], effective_date=DAY, legal_basis=""),
     {"legal_basis": "units.history.error.legal_basis_required"}),
    (lambda s: uh.merge([s["C1"]], s["C2"], effective_date=None, legal_basis=BASIS),
     {"effective_date": "units.history.error.date_required"}),
    (lambda s: uh.dissolve(s["D1"], effective_date=DAY, legal_basis=BASIS),
     {"unit": "units.history.error.children_still_valid"}),
    (lambda s: uh.establish({"code": "N", "name": "Xã N", "kind": "hamlet", "parent": s["D1"]},
                            effective_date=DAY, legal_basis=BASIS),
     {"kind": "units.history.error.kind_invalid"}),
    (lambda s: uh.rename(s["C1"], "Xã Một", effective_date=DAY, legal_basis=BASIS),
     {"name": "units.history.error.same_name"}),
])
def test_bad_changes_are_refused_with_a_field_key_and_write_nothing(small, call, errors):
    before = written()
    with pytest.raises(ValidationError) as refused:
        call(small)
    assert refused.value.errors == errors
    assert written() == before


def test_impossible_dates_are_refused(small):
    started = Unit.create(code="S", name="Xã Mới", kind="commune", parent=small["D1"], valid_from=DAY)
    before = written()
    # It would end (DAY - 1) before it began (DAY).
    with pytest.raises(ValidationError) as refused:
        uh.merge([started], small["C1"], effective_date=DAY, legal_basis=BASIS)
    assert refused.value.errors == {"from": "units.history.error.date_outside_validity"}
    uh.dissolve(small["C2"], effective_date=DAY, legal_basis=BASIS)
    before = written()
    # C2 ended on DAY - 1: it cannot take part in a change a year later.
    with pytest.raises(ValidationError) as refused:
        uh.merge([small["C2"]], small["C1"], effective_date=DAY + dt.timedelta(days=365), legal_basis=BASIS)
    assert refused.value.errors == {"from": "units.history.error.unit_ended"}
    # A new parent that is not in force on the effective date.
    with pytest.raises(ValidationError) as refused:
        uh.reparent(small["C1"], started, effective_date=DAY - dt.timedelta(days=5), legal_basis=BASIS)
    assert refused.value.errors == {"parent": "units.history.error.parent_not_valid"}
    assert written() == before


def test_a_former_unit_takes_no_plugin_settings(demo):
    from core import activation

    class Registry:
        def plugin_names(self):
            return ["kinhte_xahoi"]

    with pytest.raises(NotFound):
        activation.set_activation(Unit.get(Unit.code == "QB").id, "kinhte_xahoi", "off", None, Registry())
