"""An owner's own part of the indicator catalogue (a delegated sector's ``NN``, a plugin's ``KX``):
the importer limited to a prefix refuses every other row with its line, the dry run refuses what the
save would, a local code links to a QĐ 05/2023 row, the search and the export take a prefix, and the
export reads back unchanged — through ``core.api``, as a plugin calls them."""

from __future__ import annotations

import csv
import io

import openpyxl
import pytest

from core.api import (apply_indicator_plan, create_indicator, describe_indicator_plan, export_indicator_table,
                      parse_indicator_table, save_indicator, save_indicator_group, search_indicators)
from core.catalogue.indicators import EXPORT_HEADER, Indicator, IndicatorGroup
from core.errors import ValidationError

HEADER = ["STT", "Mã số", "Nhóm/tên chỉ tiêu", "Phân tổ chủ yếu", "Kỳ công bố",
          "Cơ quan chịu trách nhiệm thu thập/tổng hợp", "Mã số ở hệ thống cấp cao hơn", "Cấp"]


def as_csv(rows) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows([HEADER, *rows])
    return out.getvalue().encode("utf-8")


def test_a_prefix_takes_only_its_own_codes_and_names_every_other_line(db_session):
    save_indicator_group("KX01", "Tăng trưởng kinh tế", "province")
    rows = [["", "NN01", "Trồng trọt", "", "", "", "", "commune"],
            ["1", "NN0101", "Diện tích lúa", "", "Tháng", "", "X0101", "commune"],
            ["2", "T0101", "Diện tích đất", "", "", "", "", "province"],
            ["3", "KX0101", "Tốc độ tăng GRDP", "", "", "", "", "province"],
            ["", "GD01", "Học sinh", "", "", "", "", "commune"]]
    plan = parse_indicator_table(as_csv(rows), "bang.csv", prefix="NN", source_act=None, valid_from=None)
    assert [(line, field, key, params) for line, field, key, params in plan.errors] == [
        (4, "code", "indicators.import.code_outside_prefix", {"code": "T0101", "prefix": "NN"}),
        (5, "code", "indicators.import.code_outside_prefix", {"code": "KX0101", "prefix": "NN"}),
        (6, "code", "indicators.import.code_outside_prefix", {"code": "GD01", "prefix": "NN"}),
    ]
    with pytest.raises(ValidationError):
        apply_indicator_plan(plan)
    assert not IndicatorGroup.select().where(IndicatorGroup.code == "NN01").exists()

    plan = parse_indicator_table(as_csv(rows[:2]), "bang.csv", prefix="NN", source_act=None, valid_from=None)
    assert plan.errors == [] and plan.changes == [("NN01", "new"), ("NN0101", "new")]
    assert apply_indicator_plan(plan) == {"new": 2, "changed": 0, "unchanged": 0}
    item = Indicator.get(Indicator.code == "NN0101")
    assert (item.group.code, item.levels, item.higher_code, item.source_act) == ("NN01", "commune", "X0101", None)
    with pytest.raises(ValueError):
        parse_indicator_table(as_csv(rows), "bang.csv", prefix="nn")


def test_the_dry_run_refuses_what_the_save_would_with_its_line(db_session):
    rows = [["", "NN01", "Trồng trọt", "", "", "", "", "commune"],
            ["1", "NN0101", "Diện tích lúa", '[{"category": "Loại lúa"', "", "", "", "commune"],
            ["2", "NN0102", "Sản lượng lúa", "", "", "", "", ""]]
    plan = parse_indicator_table(as_csv(rows), "bang.csv", prefix="NN")
    assert [(line, field, key) for line, field, key, _ in plan.errors] == [
        (3, "disaggregation", "indicators.error.disaggregation"), (4, "levels", "indicators.error.levels")]
    assert plan.changes == [("NN01", "new")]


def test_a_local_code_links_to_a_national_row_of_any_level(db_session):
    save_indicator_group("TS01", "Thủy sản", "commune")  # a local code may start with T, H or X
    for higher in ("T0101", "H0201", "X0101", "0101"):
        assert save_indicator({"code": "TS0101", "name": f"Sản lượng {higher}", "higher_code": higher,
                               "levels": "commune"}).higher_code == higher
    for bad in ("KX0101", "T01", "ABC"):
        with pytest.raises(ValidationError) as err:
            save_indicator({"code": "TS0101", "name": "Sản lượng", "higher_code": bad})
        assert err.value.errors == {"higher_code": "indicators.error.higher_code_invalid"}


def test_search_takes_a_prefix(db_session):
    for code, name in (("NN01", "Trồng trọt"), ("KX01", "Kinh tế")):
        save_indicator_group(code, name, "commune")
    create_indicator({"code": "NN0101", "name": "Diện tích lúa", "levels": "commune"})
    create_indicator({"code": "KX0101", "name": "Diện tích lúa của tỉnh", "levels": "commune"})
    assert [i.code for i in search_indicators("dien tich lua")] == ["KX0101", "NN0101"]
    assert [i.code for i in search_indicators("dien tich lua", prefix="NN")] == ["NN0101"]


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_the_export_of_a_prefix_reads_back_unchanged(db_session, fmt):
    save_indicator_group("NN01", "Trồng trọt", "commune")
    save_indicator_group("KX01", "Kinh tế", "province")
    create_indicator({"code": "NN0101", "name": "=1+2", "levels": "province,commune", "unit_of_measure": "ha",
                      "disaggregation": "Giới tính: Nam; Nữ\nThành thị/nông thôn", "aggregation": "sum",
                      "higher_code": "X0101", "periodicity": "Tháng, năm", "agency": "Phòng Kinh tế",
                      "source_act": "QĐ 12/2026/QĐ-UBND"})
    create_indicator({"code": "NN0102", "name": "Sản lượng lúa", "levels": "commune", "value_type": "integer"})
    create_indicator({"code": "KX0101", "name": "Tốc độ tăng GRDP", "levels": "province"})
    content = export_indicator_table("NN", fmt)
    if fmt == "csv":
        rows = list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))
        assert tuple(rows[0]) == EXPORT_HEADER and rows[2][2] == "'=1+2"
    else:
        sheet = openpyxl.load_workbook(io.BytesIO(content)).active
        rows = [[c.value for c in row] for row in sheet.iter_rows()]
        assert tuple(rows[0]) == EXPORT_HEADER and (sheet["C3"].value, sheet["C3"].data_type) == ("=1+2", "s")
    assert [r[1] for r in rows[1:]] == ["NN01", "NN0101", "NN0102"]  # another owner's rows stay out

    plan = parse_indicator_table(content, f"export.{fmt}", prefix="NN", source_act=None, valid_from=None)
    assert plan.errors == [] and plan.counts() == {"new": 0, "changed": 0, "unchanged": 3}
    assert [line.change for line in describe_indicator_plan(plan)] == ["unchanged"] * 3
    # Into an empty catalogue the same file makes the same rows (options of the disaggregation kept).
    Indicator.delete().execute()
    IndicatorGroup.delete().where(IndicatorGroup.code == "NN01").execute()
    plan = parse_indicator_table(content, f"export.{fmt}", prefix="NN", source_act=None, valid_from=None)
    assert apply_indicator_plan(plan) == {"new": 3, "changed": 0, "unchanged": 0}
    item = Indicator.get(Indicator.code == "NN0101")
    assert (item.name, item.levels, item.source_act, item.disaggregation_list) == \
        ("=1+2", "province,commune", "QĐ 12/2026/QĐ-UBND", [("Giới tính", ("Nam", "Nữ")), ("Thành thị/nông thôn", ())])
    with pytest.raises(ValueError):
        export_indicator_table("N", fmt)
