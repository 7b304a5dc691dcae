"""The leader's dashboard (/dashboard, issue 14 item 5): a unit's figures from the figures store as
charts — the course over 13 months with the plan and last year, the subordinate units in the latest
period, the plan attainment — each with its numbers in a table and an Excel file; the indicators a
person follows, remembered; 404 for a unit the person may not see; numbers in their language; a
plugin's home-page widget drawing a chart. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import io
import re
import textwrap

import pytest

from core.api import Figure, put_figures, save_indicator, save_indicator_group
from core.db import db
from web.testing import csrf_from

HOSTILE = '<script>alert("x")</script> Chỉ tiêu lạ'


@pytest.fixture
def world(app, unit_tree, frozen_clock):
    """20/03/2026 (the window of April 2026 is open): the province's monthly retail sales with a
    plan and last year's months, its communes' figures for April, a quarterly indicator, and one
    whose name is hostile."""
    frozen_clock(dt.datetime(2026, 3, 20, 3, 0))
    province, (gio_linh, cam_lo) = unit_tree.province, unit_tree.communes
    with db.connection_context():
        save_indicator_group("DB01", "Chỉ tiêu của bảng điều hành", "province")
        for code, name, uom, value_type in (("DB0101", "Tổng mức bán lẻ hàng hóa", "tỷ đồng", "number"),
                                            ("DB0102", "Tăng trưởng kinh tế (GRDP)", "%", "percent"),
                                            ("DB0103", HOSTILE, "ha", "number"),
                                            ("DB0104", "Số doanh nghiệp giải thể", "doanh nghiệp", "integer")):
            save_indicator({"code": code, "name": name, "group": "DB01", "levels": "province,commune",
                            "unit_of_measure": uom, "value_type": value_type, "aggregation": "sum"})
        figures = [Figure("DB0101", province.id, "monthly", 2025, m, "actual", 1000 + 10 * m) for m in range(1, 13)]
        figures += [Figure("DB0101", province.id, "monthly", 2026, m, "actual", v)
                    for m, v in ((1, "1234.5"), (2, "1300"), (3, "1410.25"))]
        figures += [Figure("DB0101", province.id, "monthly", 2026, 4, "estimate", "1500"),
                    Figure("DB0101", province.id, "monthly", 2026, 3, "plan", "1400"),
                    Figure("DB0101", province.id, "annual", 2026, 1, "plan", "18000"),
                    Figure("DB0101", gio_linh.id, "monthly", 2026, 4, "actual", "700"),
                    Figure("DB0101", cam_lo.id, "monthly", 2026, 4, "actual", "800")]
        figures += [Figure("DB0102", province.id, "quarterly", y, q, "actual", v)
                    for y, q, v in ((2025, 1, "7.1"), (2025, 2, "7.6"), (2025, 3, "7.9"), (2025, 4, "8.4"),
                                    (2026, 1, "7.8"))]
        figures += [Figure("DB0102", province.id, "quarterly", 2026, 1, "plan", "8")]
        figures += [Figure("DB0103", province.id, "monthly", 2026, 3, "actual", "5")]
        put_figures(figures, source="test")
    return unit_tree


def panel(html: str, code: str) -> str:
    match = re.search(rf'<section class="card dashboard-panel" id="panel-{code}".*?</section>', html, re.S)
    assert match, f"no panel {code}"
    return match.group(0)


def chart_of(section: str, kind: str) -> str:
    match = re.search(rf'<div class="dashboard-chart dashboard-chart-{kind}">.*?</figure>', section, re.S)
    assert match, f"no {kind} chart"
    return match.group(0)


def test_the_leaders_page_shows_the_units_figures_as_charts_with_their_numbers(client, login, world):
    login(unit=world.province, roles=("viewer",))
    page = client.get("/dashboard")
    assert page.status_code == 200
    html = page.text
    assert 'href="/dashboard"' in html and "Bảng điều hành" in html  # the menu entry
    assert "Tỉnh Quảng Trị" in html
    # Nothing chosen yet: the first indicators with figures at the unit (DB0104 has none).
    assert re.findall(r'id="panel-(DB\d+)"', html) == ["DB0101", "DB0102", "DB0103"]

    retail = panel(html, "DB0101")
    series = chart_of(retail, "series")
    assert "Diễn biến 13 tháng gần nhất" in series
    assert "<svg" in series and "Xem số liệu" in series
    # The table under the course: this year's figure, the plan, the same month last year.
    row = re.search(r"<th scope=\"row\">Tháng 3 năm 2026</th>(.*?)</tr>", series, re.S).group(1)
    assert re.findall(r'<td class="num">([^<]*)</td>', row) == ["1.410,25", "1.400,00", "1.030,00"]
    estimate = re.search(r"<th scope=\"row\">Tháng 4 năm 2026</th>(.*?)</tr>", series, re.S).group(1)
    assert "Thực hiện: ước tính" in estimate
    assert "Tháng 4 năm 2025" in series and "Tháng 3 năm 2025" not in series  # 13 months: 4/2025 to 4/2026

    units = chart_of(retail, "units")
    assert "Các đơn vị trực thuộc, Tháng 4 năm 2026" in units
    assert units.index("Xã Cam Lộ") < units.index("Xã Gio Linh")  # largest first
    assert 'href="/dashboard?unit=44.CAMLO"' in units  # each unit leads to its own dashboard

    plan = chart_of(retail, "plan")
    # The year's plan against the total since January (additive indicator): 5,444.75 / 18,000.
    assert "Đạt 30,2% kế hoạch" in plan
    assert "Lũy kế từ Tháng 1 năm 2026 đến Tháng 4 năm 2026 so với kế hoạch năm 2026" in plan

    growth = panel(html, "DB0102")
    assert "Diễn biến 5 quý gần nhất" in growth
    assert "Đạt 97,5% kế hoạch" in chart_of(growth, "plan")  # Q1 2026: 7.8 against its own plan 8
    assert "Chưa có số liệu của đơn vị trực thuộc" in chart_of(growth, "units")
    # Every chart that has numbers offers them in Excel.
    assert html.count("/dashboard/export?unit=44&amp;code=DB0101&amp;chart=") == 3
    ids = re.findall(r'\bid="([^"]+)"', html)
    assert len(ids) == len(set(ids))  # each chart's title and description are found by id: never twice
    assert 'id="chart-DB0101-series"' in html
    assert 'aria-labelledby="chart-DB0102-plan-title chart-DB0102-plan-desc"' in html


def test_names_stay_text_and_numbers_follow_the_language(client, login, world):
    login(unit=world.province, roles=("viewer",))
    html = client.get("/dashboard").text
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; Chỉ tiêu lạ" in html
    response = client.post("/lang", data={"lang": "en", "next": "/dashboard", "csrf_token": csrf_from(html)},
                           follow_redirects=False)
    assert response.status_code == 303
    english = client.get("/dashboard").text
    series = chart_of(panel(english, "DB0101"), "series")
    assert "1,410.25" in series and "1.410,25" not in series
    assert "The last 13 months" in series and "Show the numbers" in series
    assert "30.2% of the plan" in chart_of(panel(english, "DB0101"), "plan")


def test_a_unit_the_user_may_not_see_answers_404(client, login, world):
    login(unit=world.communes[0], roles=("viewer",))
    for path in ("/dashboard?unit=44", "/dashboard?unit=44.CAMLO", "/dashboard?unit=KHONG.CO",
                 "/dashboard/export?unit=44", "/dashboard/export?unit=44&code=DB0101&chart=series",
                 "/dashboard/indicators?unit=44"):
        assert client.get(path).status_code == 404, path
    own = client.get("/dashboard")
    assert own.status_code == 200
    assert "Xã Gio Linh" in own.text and "Tỉnh Quảng Trị" not in own.text.split("<main", 1)[1]
    # Its April figure, and no subordinate unit to compare.
    retail = panel(own.text, "DB0101")
    assert "700" in chart_of(retail, "series")
    assert "Đơn vị không có đơn vị trực thuộc" in chart_of(retail, "units")
    # The province's leader may open the commune's dashboard from there.
    client.post("/logout", data={"csrf_token": csrf_from(own.text)})
    login(unit=world.province, roles=("viewer",))
    assert client.get("/dashboard?unit=44.GIOLINH").status_code == 200


def test_the_excel_export_holds_the_charts_numbers(client, login, world):
    from openpyxl import load_workbook

    login(unit=world.province, roles=("viewer",))
    response = client.get("/dashboard/export?unit=44&code=DB0101&chart=series")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/vnd.openxmlformats")
    assert 'filename="bang-dieu-hanh-44-DB0101-' in response.headers["content-disposition"]
    book = load_workbook(io.BytesIO(response.content))
    assert len(book.worksheets) == 1
    rows = {r[0]: r[1:] for r in book.worksheets[0].iter_rows(values_only=True) if r and r[0]}
    assert rows["Tháng 3 năm 2026"][:3] == (1410.25, 1400, 1030)
    assert rows["Tháng 4 năm 2026"][0] == 1500 and rows["Tháng 4 năm 2026"][3] == "Thực hiện: ước tính"
    assert rows["Đơn vị"][0] == "Tỉnh Quảng Trị (44)"

    units = load_workbook(io.BytesIO(client.get("/dashboard/export?unit=44&code=DB0101&chart=units").content))
    values = [r[:2] for r in units.worksheets[0].iter_rows(values_only=True) if r and str(r[0]).startswith("Xã")]
    assert values == [("Xã Cam Lộ", 800), ("Xã Gio Linh", 700)]

    plan = load_workbook(io.BytesIO(client.get("/dashboard/export?unit=44&code=DB0101&chart=plan").content))
    row = next(r for r in plan.worksheets[0].iter_rows(values_only=True) if r and str(r[0]).startswith("Lũy kế"))
    assert row[1:4] == (5444.75, 18000, 30.2)

    whole = load_workbook(io.BytesIO(client.get("/dashboard/export?unit=44").content))
    # Every chart with numbers of every indicator shown: DB0101 ×3, DB0102 course and plan, DB0103 course.
    assert len(whole.worksheets) == 6
    assert client.get("/dashboard/export?unit=44&code=DB0104&chart=series").status_code == 404  # nothing to export
    assert client.get("/dashboard/export?unit=44&code=DB0101&chart=pie").status_code == 404


def test_the_chosen_indicators_are_remembered_for_the_person(client, login, world):
    login(unit=world.province, roles=("viewer",))
    form = client.get("/dashboard/indicators?unit=44")
    assert form.status_code == 200
    assert 'value="DB0101" checked' in form.text and 'value="DB0104"' not in form.text  # DB0104 has no figures
    token = csrf_from(form.text)
    saved = client.post("/dashboard/indicators", data={"csrf_token": token, "unit": "44",
                                                       "codes": ["DB0102", "ZZ9999", "DB0101"]},
                        follow_redirects=False)
    assert saved.status_code == 303 and saved.headers["location"] == "/dashboard?unit=44"
    html = client.get("/dashboard").text
    assert re.findall(r'id="panel-(DB\d+)"', html) == ["DB0102", "DB0101"]  # in the order chosen
    too_many = client.post("/dashboard/indicators", data={"csrf_token": token, "unit": "44",
                                                          "codes": [f"DB01{n:02d}" for n in range(1, 8)]})
    assert too_many.status_code == 422 and "tối đa 6 chỉ tiêu" in too_many.text
    assert re.findall(r'id="panel-(DB\d+)"', client.get("/dashboard").text) == ["DB0102", "DB0101"]
    # An indicator without figures says so in each of its charts.
    client.post("/dashboard/indicators", data={"csrf_token": token, "codes": ["DB0104"]}, follow_redirects=False)
    lonely = panel(client.get("/dashboard").text, "DB0104")
    assert lonely.count('<p class="chart-empty">Chưa có số liệu</p>') == 3 and "<svg" not in lonely
    assert "/dashboard/export" not in lonely
    # Nothing chosen: the page says so and offers the choice.
    client.post("/dashboard/indicators", data={"csrf_token": token}, follow_redirects=False)
    empty = client.get("/dashboard").text
    assert "Bạn chưa chọn chỉ tiêu nào để theo dõi." in empty and 'id="panel-' not in empty


def test_a_figure_written_to_the_store_shows_on_the_next_page_load(client, login, world):
    login(unit=world.province, roles=("viewer",))
    before = chart_of(panel(client.get("/dashboard").text, "DB0101"), "units")
    assert before.index("Xã Cam Lộ") < before.index("Xã Gio Linh")
    with db.connection_context():
        put_figures([Figure("DB0101", world.communes[0].id, "monthly", 2026, 4, "actual", "950")], source="test")
    after = chart_of(panel(client.get("/dashboard").text, "DB0101"), "units")
    assert after.index("Xã Gio Linh") < after.index("Xã Cam Lộ") and "950" in after


def test_a_unit_without_figures_says_so(client, login, unit_tree):
    login(unit=unit_tree.department, roles=("viewer",))
    html = client.get("/dashboard").text
    assert "Sở Nông nghiệp và Môi trường chưa có số liệu chỉ tiêu nào trong các kỳ gần đây." in html
    assert "<svg" not in html


PLUGIN = {
    "__init__.py": '''
        from core.api import Domain, Widget, hookimpl
        from web.api import ChartSeries, bar_chart, line_chart

        @hookimpl
        def register_domain(settings):
            return Domain(name="fx_chartwidget", label="fx_chartwidget.label")

        @hookimpl
        def dashboard_widgets(request, actor, unit):
            line = line_chart(["T1", "T2"], [ChartSeries("Lúa", (1, 2))], title="Tiến độ", lang=request.state.lang)
            return [Widget("fx_chartwidget.chart", "fx_chartwidget.widget", "fx_chartwidget/_chart.html",
                           context={"bar_chart": bar_chart, "line": line,
                                    "areas": [("Xã Cam Lộ", 980), ("Xã Gio Linh", 1234.5)]})]
    ''',
    "templates/fx_chartwidget/_chart.html": '''
        <div class="fx-chart">{{ bar_chart(areas, title="Diện tích lúa <b>", lang=lang, unit="ha") }}{{ line }}</div>
    ''',
    "locale/vi.json": '{"fx_chartwidget.label": "Biểu đồ thử", "fx_chartwidget.widget": "Diện tích lúa"}',
    "locale/en.json": '{"fx_chartwidget.label": "Chart test", "fx_chartwidget.widget": "Rice area"}',
}


def test_a_plugin_widget_draws_a_chart_with_the_plugin_api(make_app, make_settings, make_user, tmp_path,
                                                            monkeypatch):
    from starlette.testclient import TestClient

    from tests.fixtures.plugins import log_in

    for name, text in PLUGIN.items():
        path = tmp_path / "fx_chartwidget" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).strip() + "\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    app = make_app(make_settings(), builtins=("fx_chartwidget",), strict=True)
    with TestClient(app) as client:
        user, password = make_user(roles=("viewer",))
        log_in(client, user, password)
        home = client.get("/").text
    widget = re.search(r'<section class="card" id="widget-fx_chartwidget-chart">.*?</section>', home, re.S).group(0)
    assert widget.count("<svg") == 2 and widget.count("Xem số liệu") == 2
    assert "Diện tích lúa &lt;b&gt;" in widget and "Diện tích lúa <b>" not in widget
    bars = widget.split("<svg", 2)[1]
    assert bars.index("Xã Gio Linh") < bars.index("Xã Cam Lộ") and "1.234,5 ha" in bars


def test_the_completeness_gauge_counts_the_reports_of_the_unit_and_those_under_it(client, login, world,
                                                                                  issued_regime):
    from openpyxl import load_workbook

    from core.reporting.opening import Report

    gio_linh, cam_lo = world.communes
    with db.connection_context():
        Report.update(status="submitted", submitted_at=dt.datetime(2026, 3, 20, 2, 0), submitted_late=False).where(
            Report.id == issued_regime.report_of(gio_linh).id).execute()
    login(unit=world.province, roles=("viewer",))
    html = client.get("/dashboard").text
    section = re.search(r'<section class="card dashboard-completeness".*?</section>', html, re.S).group(0)
    assert "Tình hình gửi báo cáo" in section and "Báo cáo tiến độ gieo trồng hằng tháng" in section
    assert "50,0%" in section and "đã gửi 1/2 báo cáo" in section  # both communes' reports are due
    assert 'href="/completeness?regime=test.monthly&amp;period=' in section
    # Cam Lộ's own dashboard: its one report, not sent.
    assert "đã gửi 0/1 báo cáo" in client.get("/dashboard?unit=44.CAMLO").text
    export = client.get("/dashboard/export?unit=44&chart=completeness&regime=test.monthly")
    assert export.status_code == 200
    rows = [r for r in load_workbook(io.BytesIO(export.content)).worksheets[0].iter_rows(values_only=True)
            if r and r[1:4] == (1, 2, 50)]
    assert len(rows) == 1
    # A unit with no report due has no gauge.
    assert 'dashboard-completeness"' not in client.get("/dashboard?unit=44.SNNMT").text


def test_one_units_early_estimate_does_not_hide_the_month_every_unit_sent(client, login, world):
    gio_linh, cam_lo = world.communes
    with db.connection_context():
        put_figures([Figure("DB0101", gio_linh.id, "monthly", 2026, 5, "estimate", "750")], source="test")
    login(unit=world.province, roles=("viewer",))
    units = chart_of(panel(client.get("/dashboard").text, "DB0101"), "units")
    # April: both communes sent (700 and 800); May: Gio Linh's lone estimate.
    assert "Tháng 4 năm 2026" in units and "800" in units and "750" not in units
