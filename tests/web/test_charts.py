"""Charts drawn on the server (web/charts.py, issue 14 item 5): well-formed, scalable SVG with a title,
a description and ARIA; everything typed by people escaped; numbers in the reader's language; a
chart without numbers saying so; every chart's numbers in a table and in an Excel file."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from decimal import Decimal

import pytest
from markupsafe import Markup, escape

from web import api as web_api, charts
from web.charts import (ChartTable, Series, attainment_chart, bar_chart, chart_workbook, gauge_chart, line_chart,
                        nice_ticks)

SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = '<script>alert("x")</script> & Co'
MONTHS = ["T1/2026", "T2/2026", "T3/2026", "T4/2026"]
LONG = ["Tháng 1 năm 2026", "Tháng 2 năm 2026", "Tháng 3 năm 2026", "Tháng 4 năm 2026"]


def _line(lang="vi", name="Thực hiện", **kwargs):
    return line_chart(MONTHS, [Series(name, (Decimal("1234.5"), Decimal("1300"), None, Decimal("1410.25")), "actual",
                                      ("", "", "", "ước tính")),
                               Series("Kế hoạch", (1200, 1250, 1300, 1350), "plan"),
                               Series("Cùng kỳ năm trước", (None, None, None, None), "last_year")],
                      title=kwargs.pop("title", "Diễn biến 4 tháng"), lang=lang, unit="tỷ đồng",
                      category_labels=LONG, **kwargs)


def every_chart(lang="vi", label=HOSTILE):
    return {
        "line": _line(lang, name=label, title=label),
        "bars": bar_chart([(label, 12), ("Xã Cam Lộ", Decimal("1234.5")), ("Xã Gio Linh", -3)], title=label,
                          lang=lang, unit="ha"),
        "attainment": attainment_chart(Decimal("853"), 1000, title=label, lang=lang, period=label),
        "gauge": gauge_chart(41, 50, title=label, lang=lang, row_label=label),
    }


def parse(svg) -> ET.Element:
    return ET.fromstring(str(svg))


@pytest.mark.parametrize("kind", ["line", "bars", "attainment", "gauge"])
def test_each_chart_is_well_formed_scalable_svg_with_a_title_a_description_and_aria(kind):
    chart = every_chart()[kind]
    root = parse(chart.svg)
    assert root.tag == f"{SVG}svg"
    assert root.get("role") == "img" and root.get("viewBox", "").startswith("0 0 ")
    assert root.get("height") is None and root.get("width") == "100%"  # it takes its box's width
    title, desc = root.find(f"{SVG}title"), root.find(f"{SVG}desc")
    assert title is not None and desc is not None and desc.text
    assert root.get("aria-labelledby") == f"{title.get('id')} {desc.get('id')}"
    assert "style=" not in str(chart.svg)  # the pages' CSP allows no inline style: attributes only
    # The whole figure (drawing, caption, table of numbers) is well-formed too.
    figure = ET.fromstring(str(chart))
    assert figure.tag == "figure"
    details = figure.find("details")
    assert details.find("summary").text == "Xem số liệu"
    table = details.find(".//table")
    assert table.find("caption") is not None
    assert all(th.get("scope") == "col" for th in table.find("thead").iter("th"))
    assert all(row.find("th").get("scope") == "row" for row in table.find("tbody").iter("tr"))


@pytest.mark.parametrize("kind", ["line", "bars", "attainment", "gauge"])
def test_names_and_labels_stay_text(kind):
    chart = every_chart()[kind]
    html = str(chart)
    assert "<script>" not in html and "<script" not in str(chart.svg)
    assert str(escape(HOSTILE)) in html
    root = parse(chart.svg)
    assert root.find(f"{SVG}title").text == HOSTILE  # the parser reads back exactly what was given
    assert isinstance(Markup(chart), Markup)  # a template renders it as it is ({{ chart }})


def test_a_chart_without_numbers_says_so_and_draws_no_frame():
    nothing = [
        line_chart(MONTHS, [Series("Thực hiện", (None,) * 4)], title="Diễn biến"),
        line_chart([], [], title="Diễn biến"),
        bar_chart([("Xã Cam Lộ", None), ("Xã Gio Linh", "")], title="Theo đơn vị"),
        attainment_chart(None, 100, title="Kế hoạch"),
        gauge_chart(0, 0, title="Đủ báo cáo"),
    ]
    for chart in nothing:
        assert chart.is_empty and chart.svg is None
        html = str(chart)
        assert "<svg" not in html and "<table" not in html
        assert '<p class="chart-empty">Chưa có số liệu</p>' in html
        ET.fromstring(html)
    english = bar_chart([], title="By unit", lang="en")
    assert "No data yet" in str(english)
    no_plan = attainment_chart(12, None, title="Kế hoạch")
    assert no_plan.is_empty and "Chưa có số liệu kế hoạch" in str(no_plan)
    own_words = line_chart([], [], title="x", empty="Chưa có số liệu của đơn vị trực thuộc")
    assert "Chưa có số liệu của đơn vị trực thuộc" in str(own_words)


def test_numbers_are_written_in_the_readers_language():
    vi, en = _line("vi"), _line("en")
    assert "1.234,50" in str(vi.svg) and "1.234,50" in str(vi)  # tooltip and table; two decimals shown
    assert "1,234.50" in str(en.svg) and "1,234.50" in str(en)
    assert "1,234.50" not in str(vi) and "1.234,50" not in str(en)
    ticks_vi = [t.text for t in parse(vi.svg).iter(f"{SVG}text")]
    assert "1.500" in ticks_vi or "1.400" in ticks_vi  # axis labels too
    bars_vi, bars_en = bar_chart([("A", 12345)], title="x"), bar_chart([("A", 12345)], title="x", lang="en")
    assert ">12.345 " not in str(bars_vi.svg) and ">12.345<" in str(bars_vi.svg)
    assert ">12,345<" in str(bars_en.svg)
    gauge = gauge_chart(41, 50, title="x")
    assert "82,0%" in str(gauge.svg) and "82.0%" in str(gauge_chart(41, 50, title="x", lang="en").svg)
    plan = attainment_chart(Decimal("853.5"), 1000, title="x")
    assert "Đạt 85,4% kế hoạch" in str(plan.svg)  # rounded half up, as statistical tables are


def test_the_line_draws_gaps_estimates_and_leaves_out_an_empty_series():
    chart = _line()
    root = parse(chart.svg)
    groups = {g.get("class"): g for g in root.iter(f"{SVG}g") if "series" in (g.get("class") or "")}
    assert set(groups) == {"series series-actual", "series series-plan"}  # last year had no figure
    actual = groups["series series-actual"]
    assert len(list(actual.iter(f"{SVG}path"))) == 1  # T1–T2 joined; T4 stands alone after the gap
    points = list(actual.iter(f"{SVG}circle"))
    assert len(points) == 3
    assert [p.get("fill") for p in points] == ["#0b4f8a", "#0b4f8a", "#ffffff"]  # the estimate is hollow
    assert "(ước tính)" in points[-1].find(f"{SVG}title").text
    rows = chart.table.rows
    assert [r[0] for r in rows] == LONG
    assert rows[2][1] == (None, Decimal(1300)) and rows[3][2] == "Thực hiện: ước tính"
    assert "<td class=\"num\">—</td>" in chart.table.html("vi")  # a missing figure reads as a dash


def test_bars_are_sorted_largest_first_and_units_without_a_figure_are_named():
    chart = bar_chart([("Xã A", 5), ("Xã B", None), ("Xã C", 12), ("Xã D", 7, "/dashboard?unit=D")], title="x")
    labels = [t.text for t in parse(chart.svg).iter(f"{SVG}text") if (t.text or "").startswith("Xã")]
    assert labels == ["Xã C", "Xã D", "Xã A"]
    assert [r[0] for r in chart.table.rows] == ["Xã C", "Xã D", "Xã A", "Xã B"]
    assert "Chưa có số liệu (1): Xã B" in str(chart)
    links = [a.get("href") for a in parse(chart.svg).iter(f"{SVG}a")]
    assert links == ["/dashboard?unit=D"]  # a unit's bar leads to its own dashboard
    many = bar_chart([(f"Xã {n}", None) for n in range(12)] + [("Xã Z", 1)], title="x", missing_shown=3)
    assert "Chưa có số liệu (12): Xã 0, Xã 1, Xã 2 và 9 đơn vị khác" in str(many)


def test_a_long_unit_name_is_wrapped_on_its_own_lines_not_cut():
    name = "Ủy ban nhân dân xã Hướng Lập thuộc khu vực miền núi phía Tây tỉnh Quảng Trị và rất dài nữa"
    chart = bar_chart([(name, 10), ("Xã B", 3)], title="x")
    lines = [t.text for t in parse(chart.svg).iter(f"{SVG}text") if t.get("x") == "8"]
    assert " ".join(lines[:-1]) == name and len(lines) > 2
    assert all(len(line) * charts.CHAR <= charts.WIDTH - 2 * charts.PAD for line in lines)


def test_the_attainment_shows_the_plan_mark_and_the_share():
    chart = attainment_chart(Decimal("1200"), Decimal("1000"), title="x", unit="tấn", period="Tháng 3 năm 2026")
    svg = str(chart.svg)
    assert "Đạt 120,0% kế hoạch" in svg and "Kế hoạch: 1.000 tấn" in svg and "Thực hiện: 1.200 tấn" in svg
    assert "Thực hiện: 8,6%" in str(attainment_chart(Decimal("8.6"), 8, title="x", unit="%").svg)  # no space before %
    label, values, _ = chart.table.rows[0]
    assert label == "Tháng 3 năm 2026" and values == (Decimal(1200), Decimal(1000), Decimal("120.0"))


def test_nice_ticks_cover_the_range_with_round_steps():
    assert nice_ticks(Decimal(0), Decimal(1410)) == [Decimal(v) for v in (0, 500, 1000, 1500)]
    assert nice_ticks(Decimal("101.2"), Decimal("108.9"))[0] <= Decimal("101.2")
    assert nice_ticks(Decimal(5), Decimal(5)) != []


def test_the_excel_export_holds_the_tables_numbers_as_numbers():
    from openpyxl import load_workbook

    charts = every_chart(label="=HYPERLINK(\"http://x\")")
    content = chart_workbook([c.table for c in charts.values()], title="Bảng điều hành",
                             lines=[("Đơn vị", "Tỉnh Quảng Trị")])
    book = load_workbook(io.BytesIO(content))
    assert len(book.sheetnames) == 4
    bars = book.worksheets[1]
    rows = [[c.value for c in row] for row in bars.iter_rows()]
    assert rows[0][0] == "Bảng điều hành" and ["Đơn vị", "Tỉnh Quảng Trị"] in rows
    data = {r[0]: r[1] for r in rows if len(r) > 1 and r[0] and r[0].startswith(("Xã", "=HYPER"))}
    assert data == {"Xã Cam Lộ": 1234.5, "=HYPERLINK(\"http://x\")": 12, "Xã Gio Linh": -3}
    formula_cell = next(c for row in bars.iter_rows() for c in row if c.value == "=HYPERLINK(\"http://x\")")
    assert formula_cell.data_type == "s"  # text stays text (core.export_safety)
    number_cell = next(row[1] for row in bars.iter_rows() if row[0].value == "Xã Cam Lộ")
    assert number_cell.data_type == "n" and number_cell.number_format == "#,##0.0"
    line = book.worksheets[0]
    values = {r[0].value: [c.value for c in r[1:]] for r in line.iter_rows() if r[0].value in LONG}
    assert values["Tháng 1 năm 2026"][:2] == [1234.5, 1200]
    assert values["Tháng 3 năm 2026"][:2] == [None, 1300]


def test_a_table_of_numbers_can_be_made_and_exported_on_its_own():
    table = ChartTable("Số liệu", ("Đơn vị", "Diện tích (ha)"), (("Xã A", (Decimal("12.5"),), ""),), 1)
    assert "12,5" in table.html("vi") and "12.5" in table.html("en")
    assert chart_workbook([table])[:2] == b"PK"


def test_the_chart_functions_are_part_of_the_plugin_api():
    for name in ("line_chart", "bar_chart", "attainment_chart", "gauge_chart", "ChartSeries", "ChartTable", "Chart",
                 "chart_workbook"):
        assert name in web_api.__all__ and hasattr(web_api, name)
    assert web_api.ChartSeries is Series


def test_axis_labels_never_overlap_and_the_latest_period_is_always_labelled():
    from web.charts import CHAR, PAD, WIDTH

    months = [f"T{m}/2025" for m in range(12, 13)] + [f"T{m}/2026" for m in range(1, 13)]
    chart = line_chart(months, [Series("Thực hiện", tuple(range(1, 14)))], title="x")
    labels = [t for t in parse(chart.svg).iter(f"{SVG}text") if t.text in months]
    assert labels[-1].text == "T12/2026"
    spans = []
    for t in labels:
        x, width = float(t.get("x")), len(t.text) * CHAR
        anchor = t.get("text-anchor", "start")
        start = x - width / 2 if anchor == "middle" else x - width if anchor == "end" else x
        spans.append((start, start + width))
    assert all(PAD - 0.1 <= a and b <= WIDTH - PAD + 0.1 for a, b in spans)
    assert all(spans[i][1] < spans[i + 1][0] for i in range(len(spans) - 1))
