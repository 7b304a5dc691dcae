"""The figures explorer's answers (issue 14 item 6, core.catalogue.explorer): the figures store laid
out as a pivot of indicator × unit × period × value kind; the units as at a date, former communes
counted into their successor after the merges of 01/07/2025 (summed, or left empty with a note when
the indicator's rule cannot combine them), as they were before; a split unit left out with a note;
the disaggregation options; who sees which units; the store's size limit; the Excel file.
Built with the kit's fixtures (web/testing.py). Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal

import openpyxl
import pytest

from core.accounts.access import Grant, Role
from core.accounts.permissions import core_access
from core.api import Figure, put_figures, save_indicator, save_indicator_group
from core.catalogue import explorer
from core.catalogue import figures as store
from core.db import db
from core.i18n import core_catalog
from core.models import Unit, User
from core.units import history as uh

MERGE = dt.date(2025, 7, 1)
BASIS = "Nghị quyết 1680/NQ-UBTVQH15 ngày 16/06/2025 của Ủy ban Thường vụ Quốc hội"


def t(key, **params):
    return core_catalog().gettext("vi", key, **params)


@pytest.fixture
def world(app, unit_tree, make_user, frozen_clock):
    """20/03/2026. Under the province: Xã Một and Xã Hai merged into the new Xã Ba on 01/07/2025;
    Xã Bốn split into Xã Năm and Xã Sáu the same day. Indicators: rice area (summed) and the poverty
    rate (a weighted average, which the store cannot combine without its weights)."""
    frozen_clock(dt.datetime(2026, 3, 20, 3, 0))
    province = unit_tree.province
    with db.connection_context():
        mot = Unit.create(code="44.MOT", name="Xã Một", kind="commune", parent=province)
        hai = Unit.create(code="44.HAI", name="Xã Hai", kind="commune", parent=province)
        bon = Unit.create(code="44.BON", name="Xã Bốn", kind="commune", parent=province)
        uh.merge([mot, hai], {"code": "44.BA", "name": "Xã Ba", "kind": "commune", "parent": province},
                 effective_date=MERGE, legal_basis=BASIS)
        uh.split(bon, [{"code": "44.NAM", "name": "Xã Năm", "kind": "commune", "parent": province},
                       {"code": "44.SAU", "name": "Xã Sáu", "kind": "commune", "parent": province}],
                 effective_date=MERGE, legal_basis=BASIS)
        ba, nam = Unit.get(Unit.code == "44.BA"), Unit.get(Unit.code == "44.NAM")
        save_indicator_group("EX01", "Chỉ tiêu thử của màn hình tra cứu", "commune")
        save_indicator({"code": "EX0101", "name": "Diện tích lúa gieo trồng", "group": "EX01", "levels": "commune",
                        "unit_of_measure": "ha", "aggregation": "sum", "disaggregation": "Vụ: Đông xuân; Hè thu"})
        save_indicator({"code": "EX0102", "name": "Tỷ lệ hộ nghèo", "group": "EX01", "levels": "commune",
                        "unit_of_measure": "%", "value_type": "percent", "aggregation": "weighted_average"})
        put_figures([
            Figure("EX0101", mot.id, "monthly", 2025, 6, "actual", "100.5"),
            Figure("EX0101", hai.id, "monthly", 2025, 6, "actual", "200"),
            Figure("EX0101", mot.id, "monthly", 2025, 6, "actual", "60", option="Đông xuân"),
            Figure("EX0101", hai.id, "monthly", 2025, 6, "actual", "70", option="Đông xuân"),
            Figure("EX0101", mot.id, "monthly", 2025, 6, "plan", "90"),
            Figure("EX0101", ba.id, "monthly", 2025, 7, "actual", "310"),
            Figure("EX0101", ba.id, "monthly", 2025, 7, "plan", "320"),
            Figure("EX0101", bon.id, "monthly", 2025, 6, "actual", "50"),
            Figure("EX0101", nam.id, "monthly", 2025, 7, "actual", "25"),
            Figure("EX0102", mot.id, "monthly", 2025, 6, "actual", "10"),
            Figure("EX0102", hai.id, "monthly", 2025, 6, "actual", "20"),
            Figure("EX0101", province.id, "monthly", 2025, 6, "actual", "9999"),
        ], source="test")
    viewer, _ = make_user(unit=province, roles=("viewer",))
    commune_user, _ = make_user(unit=unit_tree.communes[0], roles=("viewer",))
    return {"tree": unit_tree, "mot": mot, "hai": hai, "bon": bon, "ba": ba, "nam": nam,
            "viewer": viewer, "commune_user": commune_user}


def access(user):
    return core_access(User.get_by_id(user.id))


def ask(user, **params):
    with db.connection_context():
        choice = explorer.Choice.from_params({"frequency": "monthly", "from": "2025-6", "to": "2025-7", **params})
        return explorer.explore(access(user), choice, t, "vi")


def grid(page) -> dict:
    """{(row labels…, column labels…): the cell} of the pivot."""
    pivot = page.pivot
    return {tuple(m.label for m in row) + tuple(m.label for m in col): cell
            for row, cells in zip(pivot.rows, pivot.cells) for col, cell in zip(pivot.cols, cells)}


JUNE, JULY = "Tháng 6 năm 2025", "Tháng 7 năm 2025"
RICE = "Diện tích lúa gieo trồng (ha)"


def test_former_communes_count_into_their_successor_after_the_merge(world):
    page = ask(world["viewer"], indicator="EX0101", unit="44.BA")
    assert page.pivot.row_dims == ["indicator"] and page.pivot.col_dims == ["period"]
    cells = grid(page)
    june, july = cells[(RICE, JUNE)], cells[(RICE, JULY)]
    assert june.value == Decimal("300.5") and july.value == Decimal("310")
    assert june.notes == (1,) and july.notes == ()
    (note,) = page.notes
    assert note.text(t, "vi") == ("Xã Ba: gồm số liệu của Xã Hai, Xã Một (đã sáp nhập từ ngày 01/07/2025), "
                                  "cộng gộp theo cách tổng hợp của từng chỉ tiêu.")


def test_a_total_missing_a_former_units_figure_says_it_is_incomplete(world):
    page = ask(world["viewer"], indicator="EX0101", unit="44.BA", kind=["plan"])
    june = grid(page)[(RICE, JUNE)]
    assert june.value == Decimal("90") and june.notes == (1,)  # Xã Một's plan only
    assert page.notes[0].text(t, "vi") == ("Xã Ba: gồm số liệu của Xã Một (đã sáp nhập từ ngày 01/07/2025); "
                                           "thiếu số liệu của Xã Hai nên số này chưa đầy đủ.")


def test_before_the_merge_the_former_communes_appear_as_they_were(world):
    page = ask(world["viewer"], indicator="EX0101", unit="44", scope="children", at="2025-06-30")
    codes = [u.code for u in page.units]
    assert "44.MOT" in codes and "44.HAI" in codes and "44.BON" in codes and "44.BA" not in codes
    cells = grid(page)
    assert cells[("Xã Một", JUNE)].value == Decimal("100.5")
    assert cells[("Xã Hai", JUNE)].value == Decimal("200")
    assert cells[("Xã Bốn", JUNE)].value == Decimal("50")
    assert cells[("Tỉnh Quảng Trị", JUNE)].value == Decimal("9999")
    # Xã Ba did not exist yet: its July figure has no unit to be shown under, and nothing is noted.
    assert all(c.notes == () for c in cells.values()) and page.notes == []
    assert cells[("Xã Một", JULY)].value is None


def test_after_the_merge_the_tree_shows_the_successors_and_a_split_unit_is_left_out_with_a_note(world):
    page = ask(world["viewer"], indicator="EX0101", unit="44", scope="children")
    names = [u.name for u in page.units]
    assert "Xã Ba" in names and "Xã Năm" in names and "Xã Một" not in names and "Xã Bốn" not in names
    cells = grid(page)
    assert cells[("Xã Ba", JUNE)].value == Decimal("300.5")
    # Xã Bốn's 50 ha cannot be divided between Xã Năm and Xã Sáu.
    assert cells[("Xã Năm", JUNE)].value is None and cells[("Xã Năm", JULY)].value == Decimal("25")
    assert cells[("Xã Sáu", JUNE)].value is None
    texts = [n.text(t, "vi") for n in page.notes]
    assert texts[-1] == ("Xã Bốn đã chia tách vào Xã Năm, Xã Sáu: 1 số liệu của đơn vị này không chia được "
                         "cho các đơn vị mới nên không được tính.")


def test_an_indicator_whose_rule_cannot_combine_leaves_the_merged_cell_empty_with_a_note(world):
    page = ask(world["viewer"], indicator=["EX0101", "EX0102"], unit="44.BA")
    cells = grid(page)
    poverty = cells[("Tỷ lệ hộ nghèo (%)", JUNE)]
    assert poverty.value is None and poverty.blocked and poverty.notes == (1, 2)
    assert cells[(RICE, JUNE)].value == Decimal("300.5") and cells[(RICE, JUNE)].notes == (1,)
    assert page.notes[1].text(t, "vi") == (
        "Xã Ba, chỉ tiêu EX0102 Tỷ lệ hộ nghèo: các đơn vị trước sáp nhập đều có số liệu nhưng không cộng gộp "
        "được (cách tổng hợp: Trung bình có trọng số), nên ô để trống.")


def test_the_rules_that_combine_values(world):
    ten, twenty = Decimal("10"), Decimal("20")
    assert explorer.combine([ten, twenty], "sum", False) == (Decimal("30"), True)
    assert explorer.combine([ten, twenty], "max", False) == (twenty, True)
    assert explorer.combine([ten, twenty], "min", False) == (ten, True)
    assert explorer.combine([ten, twenty, Decimal("1")], "average", False) == (Decimal("10.333333"), True)
    assert explorer.combine([ten, None], "none", False) == (ten, True)  # one value: nothing to combine
    for rule in ("weighted_average", "last", "none"):
        assert explorer.combine([ten, twenty], rule, False) == (None, False)
    assert explorer.combine(["một", "hai"], "none", True) == (None, False)


def test_a_figure_restated_under_the_new_unit_is_taken_as_it_is(world):
    with db.connection_context():
        put_figures([Figure("EX0101", world["ba"].id, "monthly", 2025, 6, "actual", "305")], source="test")
    page = ask(world["viewer"], indicator="EX0101", unit="44.BA")
    june = grid(page)[(RICE, JUNE)]
    assert june.value == Decimal("305") and june.notes == () and page.notes == []


def test_the_pivot_puts_the_chosen_dimensions_in_rows_and_columns(world):
    both = {"indicator": "EX0101", "unit": "44.BA", "kind": ["actual", "plan"]}
    page = ask(world["viewer"], **both)
    assert (page.pivot.row_dims, page.pivot.col_dims) == (["indicator"], ["period", "kind"])
    assert [[m.label for m in col] for col in page.pivot.cols] == [
        [JUNE, "Kế hoạch"], [JUNE, "Thực hiện"], [JULY, "Kế hoạch"], [JULY, "Thực hiện"]]
    assert [(m.label, span) for m, span in page.pivot.col_headers()[0]] == [(JUNE, 2), (JULY, 2)]
    assert [c.value for c in page.pivot.cells[0]] == [Decimal("90"), Decimal("300.5"), Decimal("320"), Decimal("310")]
    # Swapped: the periods in the rows, the kinds inside them; the indicator in the columns.
    swapped = ask(world["viewer"], **both, pos_indicator="c1", pos_period="r1", pos_kind="r2")
    pivot = swapped.pivot
    assert (pivot.row_dims, pivot.col_dims) == (["period", "kind"], ["indicator"])
    assert [[m.label for m in row] for row in pivot.rows] == [
        [JUNE, "Kế hoạch"], [JUNE, "Thực hiện"], [JULY, "Kế hoạch"], [JULY, "Thực hiện"]]
    assert [line[0].value for line in pivot.cells] == [Decimal("90"), Decimal("300.5"), Decimal("320"),
                                                       Decimal("310")]
    assert pivot.row_spans() == [[2, 1], [0, 1], [2, 1], [0, 1]]
    # The one unit is not a row nor a column: it is said above the table.
    assert [(d, m.label) for d, m in pivot.fixed] == [("unit", "Xã Ba")]
    assert explorer.Choice.from_params({"pos_indicator": "c1", "pos_period": "r1"}).swapped_positions() == {
        "indicator": "r1", "unit": "c2", "period": "c1", "kind": "r2"}


def test_every_option_or_the_totals_only(world):
    totals = ask(world["viewer"], indicator="EX0101", unit="44.BA")
    assert [m.label for (m,) in totals.pivot.rows] == [RICE]
    every = ask(world["viewer"], indicator="EX0101", unit="44.BA", options="all")
    assert [m.label for (m,) in every.pivot.rows] == [RICE, f"{RICE} – Đông xuân"]
    assert grid(every)[(f"{RICE} – Đông xuân", JUNE)].value == Decimal("130")


def test_empty_rows_are_hidden_on_request(world):
    page = ask(world["viewer"], indicator="EX0101", unit="44", scope="children", hide_empty="1")
    assert [row[0].label for row in page.pivot.rows] == ["Tỉnh Quảng Trị", "Xã Ba", "Xã Năm"]
    shown = ask(world["viewer"], indicator="EX0101", unit="44", scope="children")
    assert len(shown.pivot.rows) > 3


def test_units_are_those_the_person_may_see(world):
    commune = world["tree"].communes[0]
    page = ask(world["commune_user"], indicator="EX0101")
    assert [u.id for u in page.picker] == [commune.id] and page.root.id == commune.id
    assert ask(world["commune_user"], indicator="EX0101", unit="44.BA") is None
    assert ask(world["commune_user"], indicator="EX0101", unit="44") is None
    assert ask(world["viewer"], indicator="EX0101", unit="NO.SUCH") is None
    # The province's people see its former communes, on a date they were in force, through their successor.
    before = ask(world["viewer"], indicator="EX0101", unit="44.MOT", at="2025-06-30")
    assert before.root.code == "44.MOT"


def test_one_level_or_every_level_of_subordinates(world, make_user):
    with db.connection_context():
        district = Unit.create(code="44.DK", name="Huyện Đakrông", kind="district", parent=world["tree"].province)
        hamlet = Unit.create(code="44.DK.TA", name="Xã Tà Rụt", kind="commune", parent=district)
    children = ask(world["viewer"], indicator="EX0101", unit="44", scope="children")
    assert "44.DK" in [u.code for u in children.units] and "44.DK.TA" not in [u.code for u in children.units]
    every = ask(world["viewer"], indicator="EX0101", unit="44", scope="subtree")
    assert [u.code for u in every.units][:2] == ["44", "44.SNNMT"] and "44.DK.TA" in [u.code for u in every.units]
    # Someone who sees Xã Gio Linh and Xã Tà Rụt but not the district: Gio Linh's subordinates are none.
    both, _ = make_user(unit=world["tree"].communes[0], roles=("viewer",))
    with db.connection_context():
        Grant.create(user=both.id, role=Role.get(Role.code == "viewer"), unit=hamlet)
    mine = ask(both, indicator="EX0101", unit="44.GIOLINH", scope="subtree")
    assert [u.code for u in mine.units] == ["44.GIOLINH"]
    assert {u.code for u in mine.picker} == {"44.GIOLINH", "44.DK.TA"}


def test_a_unit_not_in_force_on_the_date_names_the_units_that_stood_for_it(world):
    page = ask(world["viewer"], indicator="EX0101", unit="44.MOT")
    assert page.pivot is None and page.not_in_force["units"] == ["Xã Ba"] and not page.not_in_force["later"]
    page = ask(world["viewer"], indicator="EX0101", unit="44.BA", at="2025-06-30")
    assert page.pivot is None and page.not_in_force["units"] == ["Xã Hai", "Xã Một"] and page.not_in_force["later"]


def test_a_question_larger_than_the_store_answers_is_refused_with_what_to_narrow(world, monkeypatch):
    monkeypatch.setattr(store, "MAX_FIGURES", 20)
    page = ask(world["viewer"], indicator=["EX0101", "EX0102"], unit="44", scope="children",
               kind=["actual", "plan"])
    assert page.pivot is None
    key, params = page.refused
    assert key == "explorer.refused.size"
    text = t(key, **params)
    assert "2 chỉ tiêu × 10 đơn vị" in text and "2 kỳ × 2 loại số liệu là 80 số liệu" in text
    assert "vượt mức tối đa 20 số liệu" in text and "Hãy chọn ít chỉ tiêu hơn" in text


def test_reading_the_choice_from_a_query_string(world):
    with db.connection_context():
        default = explorer.Choice.from_params({})
    # 20/03/2026 lies in April's window (15/03 – 14/04): twelve months up to April.
    assert (default.frequency, default.start, default.end) == ("monthly", (2025, 5), (2026, 4))
    assert default.kinds == ["actual"] and default.options == "total" and default.scope == "unit"
    assert default.axis("r") == ["indicator", "unit"] and default.axis("c") == ["period", "kind"]
    odd = explorer.Choice.from_params({"at": "2026-02-30", "from": "2026-3", "to": "2025-14", "frequency": "quarterly",
                                       "kind": ["nonsense", "plan"], "scope": "x", "options": "y",
                                       "pos_unit": "z9", "indicator": ["ex0101", "EX0101", ""]})
    assert odd.errors == {"at": "explorer.error.at"}
    assert (odd.start, odd.end) == ((2025, 4), (2026, 3))  # month 14 → the year's last quarter; in order
    assert odd.kinds == ["plan"] and odd.scope == "unit" and odd.options == "total"
    assert odd.positions["unit"] == "r2" and odd.codes == ["EX0101"]
    assert explorer.Choice.from_params({"at": "30/06/2025"}).at == dt.date(2025, 6, 30)


def test_the_excel_file_is_the_table_as_shown_with_numbers_as_numbers(world):
    page = ask(world["viewer"], indicator="EX0101", unit="44", scope="children", kind=["actual", "plan"],
               hide_empty="1")
    with db.connection_context():
        content = explorer.workbook(page, t, "vi", actor=User.get_by_id(world["viewer"].id))
    sheet = openpyxl.load_workbook(io.BytesIO(content)).active
    assert sheet.title == "Số liệu" and sheet["A1"].value == "Tra cứu số liệu"
    rows = [[c.value for c in row] for row in sheet.iter_rows()]
    labels = {row[0]: row[1] for row in rows if row and row[0]}
    assert labels["Cây đơn vị tại ngày"] == "20/03/2026"
    assert labels["Kỳ"] == f"{JUNE} – {JULY}"
    assert labels["Chỉ tiêu"] == "EX0101 Diện tích lúa gieo trồng (ha)"
    head = next(i for i, row in enumerate(rows) if row[0] == "Đơn vị" and row[1] == JUNE)
    assert rows[head][:5] == ["Đơn vị", JUNE, None, JULY, None]  # a period spans its two kinds
    assert rows[head + 1][:5] == [None, "Kế hoạch", "Thực hiện", "Kế hoạch", "Thực hiện"]
    assert {str(r) for r in sheet.merged_cells.ranges} >= {f"A{head + 1}:A{head + 2}", f"B{head + 1}:C{head + 1}"}
    body = {row[0]: row[1:5] for row in rows[head + 2:head + 5]}
    assert body["Xã Ba"] == [90, 300.5, 320, 310]
    assert body["Tỉnh Quảng Trị"] == [None, 9999, None, None]
    assert isinstance(body["Xã Ba"][1], float) and isinstance(body["Xã Ba"][3], int)
    ba_june = sheet.cell(row=head + 1 + 2 + list(body).index("Xã Ba"), column=3)
    assert ba_june.value == 300.5 and ba_june.data_type == "n" and ba_june.number_format == "#,##0.0"
    assert "Xã Hai, Xã Một" in ba_june.comment.text
    assert any(str(row[0]).startswith("(1) Xã Ba: gồm số liệu của Xã Hai, Xã Một") for row in rows if row[0])
