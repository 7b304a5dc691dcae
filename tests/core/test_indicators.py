"""The indicator catalogue: versions, diacritics-insensitive search, the 7-column importer
(CSV and XLSX, dry run, whole-file refusal, idempotence) and the shipped reference data."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest

from core.catalogue import indicators as ind
from core.audit import AuditEvent
from core.errors import ValidationError
from core.catalogue.indicators import Indicator, IndicatorGroup

HEADER = ["STT", "Mã số", "Nhóm/tên chỉ tiêu", "Phân tổ chủ yếu", "Kỳ công bố",
          "Cơ quan chịu trách nhiệm thu thập/tổng hợp", "Mã số ở hệ thống cấp cao hơn"]
ROWS = [
    ["", "H01", "Đất đai, dân số và bình đẳng giới", "", "", "", ""],
    ["1", "H0101", "Diện tích và cơ cấu đất", "Loại đất", "Năm", "Phòng Tài nguyên và Môi trường", "T0101"],
    ["2", "H0102", "Dân số, mật độ dân số", "Giới tính; thành thị/nông thôn", "Năm", "Chi cục Thống kê", "T0102"],
]


def as_csv(rows, header=HEADER) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows([header, *rows])
    return out.getvalue().encode("utf-8-sig")


def as_xlsx(rows, header=HEADER) -> bytes:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["PHỤ LỤC II — HỆ THỐNG CHỈ TIÊU THỐNG KÊ CẤP HUYỆN"])  # a title above the header
    sheet.append([h.upper() for h in header])
    for row in rows:
        sheet.append([int(c) if c.isdigit() else (c or None) for c in row])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


@pytest.fixture
def group(db_session):
    return IndicatorGroup.create(code="T01", name="Đất đai, dân số", level="province")


# -- versions --------------------------------------------------------------------------------

def test_a_change_makes_a_new_version_and_the_old_stays_readable(group):
    v1 = ind.save_indicator({"code": "T0102", "name": "Dân số", "aggregation": "sum",
                             "valid_from": dt.date(2023, 4, 15)})
    assert (v1.version, v1.is_current, v1.group.code, v1.levels) == (1, True, "T01", "province")
    assert ind.save_indicator({"code": "T0102", "name": "Dân số"}).id == v1.id  # identical: no version
    assert Indicator.select().where(Indicator.code == "T0102").count() == 1

    v2 = ind.save_indicator({"code": "T0102", "name": "Dân số, mật độ dân số",
                             "valid_from": dt.date(2024, 1, 1)})
    assert v2.version == 2 and v2.is_current and v2.aggregation == "sum"  # unspecified fields carried over
    old = ind.get_version("T0102", 1)
    assert old.name == "Dân số" and not old.is_current and old.valid_to == dt.date(2024, 1, 1)
    assert ind.current("T0102").id == v2.id
    assert [i.version for i in ind.history("T0102")] == [1, 2]
    events = AuditEvent.select().where(AuditEvent.action == "indicator.change")
    assert events.count() == 2


def test_invalid_indicator_is_refused(group):
    with pytest.raises(ValidationError) as err:
        ind.save_indicator({"code": "T1", "name": "", "aggregation": "median", "value_type": "number"})
    assert set(err.value.errors) >= {"code", "name", "aggregation"}
    with pytest.raises(ValidationError) as err:
        ind.save_indicator({"code": "T0901", "name": "Không có nhóm"})
    assert err.value.errors == {"group": "indicators.error.group_unknown"}
    assert Indicator.select().count() == 0


def test_value_kinds_and_aggregations():
    assert ind.VALUE_KINDS == ("plan", "estimate", "actual", "official")
    assert set(ind.AGGREGATIONS) == {"sum", "average", "weighted_average", "min", "max", "last", "none"}
    from core.i18n import core_catalog

    assert core_catalog().gettext("vi", ind.VALUE_KIND_LABELS["estimate"]) == "Ước tính"


# -- search ----------------------------------------------------------------------------------

def test_search_ignores_diacritics_and_case(group):
    ind.save_indicator({"code": "T0102", "name": "Dân số, mật độ dân số"})
    ind.save_indicator({"code": "T0101", "name": "Diện tích và cơ cấu đất"})
    IndicatorGroup.create(code="H01", name="Đất đai", level="district")
    ind.save_indicator({"code": "H0101", "name": "Diện tích đất"})

    assert [i.code for i in ind.search("dan so")] == ["T0102"]
    assert [i.code for i in ind.search("DAN SO")] == ["T0102"]
    assert [i.name for i in ind.search("Dân Số")] == ["Dân số, mật độ dân số"]
    assert [i.code for i in ind.search("dat")] == ["H0101", "T0101"]
    assert [i.code for i in ind.search("đất", level="district")] == ["H0101"]
    assert [i.code for i in ind.search("dat", group="T01")] == ["T0101"]
    assert [i.code for i in ind.search("t0101")] == ["T0101"]
    assert ind.search("100%") == []
    ind.save_indicator({"code": "T0102", "name": "Quy mô dân số"})  # only current versions are found
    assert [i.version for i in ind.search("dan so")] == [2]


# -- the importer -------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_dry_run_then_apply_then_reimport(db_session, fmt):
    make, name = (as_csv, "bang.csv") if fmt == "csv" else (as_xlsx, "bang.xlsx")
    plan = ind.parse_table(make(ROWS), name)
    assert plan.errors == []
    assert plan.changes == [("H01", "new"), ("H0101", "new"), ("H0102", "new")]
    assert Indicator.select().count() == 0 and IndicatorGroup.select().count() == 0  # the dry run wrote nothing

    assert ind.apply_plan(plan) == {"new": 3, "changed": 0, "unchanged": 0}
    h0102 = ind.current("H0102")
    assert (h0102.higher_code, h0102.periodicity, h0102.agency, h0102.source_act, h0102.valid_from) == \
        ("T0102", "Năm", "Chi cục Thống kê", "QĐ 05/2023/QĐ-TTg", dt.date(2023, 4, 15))
    assert h0102.disaggregation == "Giới tính; thành thị/nông thôn" and h0102.levels == "district"

    changed = [r[:] for r in ROWS]
    changed[2][3] = "Giới tính"
    plan = ind.parse_table(make(changed), name)
    assert plan.changes == [("H01", "unchanged"), ("H0101", "unchanged"), ("H0102", "changed")]
    assert ind.apply_plan(plan) == {"new": 0, "changed": 1, "unchanged": 2}
    assert ind.current("H0102").version == 2 and ind.get_version("H0102", 1).disaggregation.startswith("Giới tính;")

    count = Indicator.select().count()
    plan = ind.parse_table(make(changed), name)
    assert plan.counts() == {"new": 0, "changed": 0, "unchanged": 3}
    assert ind.apply_plan(plan) == {"new": 0, "changed": 0, "unchanged": 3}
    assert Indicator.select().count() == count


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_one_bad_row_refuses_the_whole_file(db_session, fmt):
    make, name = (as_csv, "bang.csv") if fmt == "csv" else (as_xlsx, "bang.xlsx")
    bad = [*ROWS,
           ["3", "H01X3", "Mã sai", "", "", "", ""],
           ["4", "H0104", "", "", "", "", ""],
           ["5", "H0101", "Trùng mã", "", "", "", ""],
           ["6", "H0901", "Nhóm không có", "", "", "", ""],
           ["7", "H0105", "Mã cấp trên sai", "", "", "", "X0101"],
           ["8", "", "Không mã", "", "", "", ""]]
    plan = ind.parse_table(make(bad), name)
    header_row = 1 if fmt == "csv" else 2
    first = header_row + 1  # the first data row
    errors = {(row - first, fld, key) for row, fld, key, _ in plan.errors}
    assert errors == {
        (3, "code", "indicators.import.code_invalid"),
        (4, "name", "indicators.import.name_required"),
        (5, "code", "indicators.import.code_duplicate"),
        (6, "code", "indicators.import.group_unknown"),
        (7, "higher_code", "indicators.import.higher_code_invalid"),
        (8, "code", "indicators.import.code_required"),
    }
    dup = next(e for e in plan.errors if e[2] == "indicators.import.code_duplicate")
    assert dup[3] == {"code": "H0101", "first_row": first + 1}
    with pytest.raises(ValidationError) as err:
        ind.apply_plan(plan)
    assert err.value.errors == {"file": "indicators.import.has_errors"} and err.value.params["count"] == 6
    assert Indicator.select().count() == 0 and IndicatorGroup.select().count() == 0
    assert AuditEvent.select().where(AuditEvent.action.startswith("indicator.")).count() == 0


def test_group_known_in_the_database_and_header_tolerance(db_session):
    IndicatorGroup.create(code="H01", name="Đất đai, dân số và bình đẳng giới", level="district")
    header = ["stt", "MA SO", "Nhóm, tên chỉ tiêu", "phân tổ  chủ yếu", "Kỳ công bố",
              "Cơ quan chịu trách nhiệm thu thập, tổng hợp", "Mã số ở hệ thống chỉ tiêu cấp cao hơn"]
    plan = ind.parse_table(as_csv([ROWS[1]], header=header).replace(b",", b";"), "bang.csv")
    assert plan.errors == [] and plan.changes == [("H0101", "new")]
    assert plan.rows[0].data["higher_code"] == "T0101"
    assert ind.parse_table(as_csv([ROWS[1]], header=["a", "b"]), "x.csv").errors[0][2] == \
        "indicators.import.header_missing"
    with pytest.raises(ValidationError):
        ind.parse_table(b"", "bang.pdf")


# -- the shipped reference data --------------------------------------------------------------------

def _csv_rows(name):
    with (ind.REFERENCE_DIR / name).open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def test_load_reference_loads_the_shipped_groups_and_coded_rows(db_session):
    groups = _csv_rows("qd54_2016_groups.csv")
    coded = [r for name in ("qd54_2016_rows_with_codes.csv", "qd05_2023_district_partial.csv")
             for r in _csv_rows(name) if len(r["code"]) == 5]
    uncoded = [r for r in _csv_rows("qd05_2023_province_group01.csv") if not r["code"]]
    assert (len(groups), len(coded), len(uncoded)) == (26, 22, 17)

    result = ind.load_reference()
    assert result.groups == IndicatorGroup.select().count() == 26
    assert result.indicators == Indicator.select().count() == 22
    assert len(result.skipped) == 17
    assert {s[3] for s in result.skipped} == {"indicators.reference.no_code"}
    assert {g.level for g in IndicatorGroup.select()} == {"province", "district", "commune"}
    assert IndicatorGroup.get(IndicatorGroup.code == "T20").name == "Bảo vệ môi trường"
    assert IndicatorGroup.get(IndicatorGroup.code == "H03").name == "Xã hội, môi trường"
    h0102 = ind.current("H0102")
    assert (h0102.higher_code, h0102.source_act) == ("T0102", "QĐ 05/2023/QĐ-TTg")
    assert ind.current("H0205").higher_code is None  # no province code in the source
    assert ind.current("T0101").source_act == "QĐ 54/2016/QĐ-TTg"
    assert "H0102" in [i.code for i in ind.search("dan so")]

    again = ind.load_reference()  # idempotent
    assert again.indicators == 22 and Indicator.select().count() == 22


# -- disaggregations: categories and their options -----------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("Giới tính, thành thị/nông thôn", [("Giới tính", ()), ("thành thị/nông thôn", ())]),
    ("Giới tính; thành thị/nông thôn", [("Giới tính", ()), ("thành thị/nông thôn", ())]),
    ("Ngành kinh tế (cấp 1, cấp 2); Loại hình", [("Ngành kinh tế (cấp 1, cấp 2)", ()), ("Loại hình", ())]),
    ("Giới tính: Nam; Nữ\n\nNhóm tuổi: Dưới 15; 15-64; Từ 65 trở lên\nThành thị/nông thôn",
     [("Giới tính", ("Nam", "Nữ")), ("Nhóm tuổi", ("Dưới 15", "15-64", "Từ 65 trở lên")),
      ("Thành thị/nông thôn", ())]),
    ('[{"category": "Giới tính", "options": ["Nam", "Nữ"]}]', [("Giới tính", ("Nam", "Nữ"))]),
    ("", []),
    (None, []),
])
def test_disaggregation_text_is_read_in_every_form(text, expected):
    assert ind.parse_disaggregation(text) == expected
    stored = ind.format_disaggregation(expected)
    assert ind.parse_disaggregation(stored) == expected  # the stored form reads back the same
    assert ind.parse_disaggregation(ind.disaggregation_lines(stored)) == expected  # and so does the form's


@pytest.mark.parametrize("bad", ["Giới tính: Nam; nam", "Giới tính\ngiới tính", ": Nam", "[1, 2", '[{"category": ""}]',
                                 '[{"category": "A", "options": [""]}]',
                                 "x" * 201])
def test_a_bad_disaggregation_is_refused(group, bad):
    with pytest.raises(ValidationError) as err:
        ind.save_indicator({"code": "T0102", "name": "Dân số", "disaggregation": bad})
    assert err.value.errors == {"disaggregation": "indicators.error.disaggregation"}


def test_structured_disaggregation_is_stored_and_kept_by_a_categories_only_reimport(db_session):
    plan = ind.parse_table(as_csv(ROWS), "bang.csv")
    ind.apply_plan(plan)
    v2 = ind.save_indicator({"code": "H0102", "disaggregation": "Giới tính: Nam; Nữ\nThành thị/nông thôn: Thành thị; Nông thôn"})
    assert v2.version == 2
    assert v2.disaggregation_list == [("Giới tính", ("Nam", "Nữ")), ("Thành thị/nông thôn", ("Thành thị", "Nông thôn"))]
    # The official table names the same categories only: the options set here are kept.
    again = ind.parse_table(as_csv(ROWS), "bang.csv")
    assert dict(again.changes)["H0102"] == "unchanged"
    ind.apply_plan(again)
    assert ind.current("H0102").version == 2
    # A file naming other categories does change it.
    other = [r[:] for r in ROWS]
    other[2][3] = "Giới tính"
    assert dict(ind.parse_table(as_csv(other), "bang.csv").changes)["H0102"] == "changed"


# -- edit with optimistic concurrency, create, browse, history -------------------------------------------------

def test_edit_refuses_a_stale_version_and_an_earlier_date(group):
    ind.save_indicator({"code": "T0101", "name": "Diện tích", "valid_from": dt.date(2023, 4, 15)})
    saved, changed = ind.edit_indicator("T0101", {"name": "Diện tích", "valid_from": "2024-01-01"}, expected_version=1)
    assert (saved.version, changed) == (1, False)
    saved, changed = ind.edit_indicator("T0101", {"name": "Diện tích đất", "valid_from": "01/01/2024"},
                                        expected_version=1)
    assert (saved.version, changed, saved.valid_from) == (2, True, dt.date(2024, 1, 1))
    with pytest.raises(ind.StaleVersion) as err:
        ind.edit_indicator("T0101", {"name": "Khác"}, expected_version=1)
    assert err.value.current.version == 2 and err.value.errors == {"version": "indicators.error.stale"}
    with pytest.raises(ValidationError) as err:
        ind.edit_indicator("T0101", {"name": "Khác", "valid_from": "2023-12-31"}, expected_version=2)
    assert err.value.errors == {"valid_from": "indicators.error.valid_from_before"}
    with pytest.raises(ValidationError):
        ind.edit_indicator("T0101", {"name": "Khác", "valid_from": "31/02/2024"}, expected_version=2)
    assert [i.version for i in ind.history("T0101")] == [1, 2]


def test_create_refuses_an_existing_code_and_a_group_outside_the_code(group):
    ind.create_indicator({"code": "t0101", "name": "Diện tích"})
    with pytest.raises(ValidationError) as err:
        ind.create_indicator({"code": "T0101", "name": "Lần hai"})
    assert err.value.errors == {"code": "indicators.error.code_exists"}
    IndicatorGroup.create(code="T02", name="Lao động", level="province")
    with pytest.raises(ValidationError) as err:
        ind.save_indicator({"code": "T0102", "name": "Sai nhóm", "group": "T02"})
    assert err.value.errors == {"group": "indicators.error.group_mismatch"}


def test_browse_reads_one_page_with_counts_per_group_and_level(group):
    IndicatorGroup.create(code="H01", name="Đất đai", level="district")
    for number in range(1, 31):
        ind.save_indicator({"code": f"T01{number:02d}", "name": f"Dân số {number}"})
    ind.save_indicator({"code": "H0101", "name": "Dân số huyện"})
    page = ind.browse("dan so", offset=10, limit=10)
    assert page.total == 31 and [i.code for i in page.rows] == [f"T01{n:02d}" for n in range(10, 20)]
    assert [(g.code, n) for g, n in page.group_counts] == [("H01", 1), ("T01", 30)]
    assert page.level_counts == {"province": 30, "district": 1, "commune": 0}
    assert ind.browse("dan so", offset=10_000, limit=10).offset == 30  # past the end: the last page
    assert [i.code for i in ind.browse(level="district").rows] == ["H0101"]
    assert ind.browse(group="H01").total == 1 and not ind.browse().catalogue_empty


def test_version_history_lists_the_changed_fields_and_who_saved(group, db_session):
    from core.accounts import login as accounts
    from core.models import Unit

    unit = Unit.create(code="44", name="Tỉnh", kind="province")
    user = accounts.create_user("quantri", "Quản trị", accounts.random_password(), unit)
    ind.save_indicator({"code": "T0101", "name": "Diện tích", "unit_of_measure": "ha"}, actor=user)
    ind.save_indicator({"code": "T0101", "name": "Diện tích đất", "aggregation": "sum"}, actor=user)
    first, second = ind.version_history("T0101")
    assert first.changes == [] and first.actor_name == "quantri" and first.at is not None
    assert second.changes == [("name", "Diện tích", "Diện tích đất"), ("aggregation", "none", "sum")]


def test_the_rights_migration_gives_view_to_the_built_in_roles_and_edit_to_catalogue_admin(db_session):
    from core.accounts.access import Role

    for code in ("viewer", "reporter", "receiver", "unit_admin"):
        codes = Role.get(Role.code == code).codes()
        assert "core.indicator.view" in codes and "core.indicator.edit" not in codes
    role = Role.get(Role.code == "catalogue_admin")
    assert role.is_builtin and role.codes() == {"core.unit.view", "core.indicator.view", "core.indicator.edit"}


def test_a_row_stored_with_commas_is_not_changed_by_the_same_categories_with_semicolons(group):
    ind.save_indicator({"code": "T0102", "name": "Dân số"})
    Indicator.update(disaggregation="Giới tính, thành thị/nông thôn").execute()  # as stored before the parser
    same = ind.save_indicator({"code": "T0102", "disaggregation": "Giới tính\nthành thị/nông thôn"})
    assert same.version == 1
