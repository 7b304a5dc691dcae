"""The indicator catalogue: versions, diacritics-insensitive search, the 7-column importer
(CSV and XLSX, dry run, whole-file refusal, idempotence) and the shipped reference data."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest

from core import indicators as ind
from core.audit import AuditEvent
from core.errors import ValidationError
from core.indicators import Indicator, IndicatorGroup

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
