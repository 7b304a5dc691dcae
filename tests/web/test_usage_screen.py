"""The usage report screen (issue 14 item 7, Điều 9.3c): /admin/usage for unit administrators and the
operator, its Excel and CSV files; months in the instance's time zone; a unit outside the reader's
subtree answers 404. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re

from core.db import db
from tests.conftest import HX
from tests.core.test_usage import add_report, at, log_in_at, user_at

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def figures(html: str, row_id: str) -> dict[str, str]:
    """The figures of one table row (``id="<row_id>"``), by column, as shown."""
    row = re.search(rf'<tr id="{row_id}"[^>]*>(.*?)</tr>', html, re.S)
    assert row, f"no row {row_id}"
    return dict(re.findall(r'<td class="num" data-col="([a-z_]+)">([^<]*)</td>', row.group(1)))


def test_a_login_late_at_night_utc_counts_in_the_next_local_month(client, login, unit_tree, frozen_clock):
    commune = unit_tree.communes[0]
    frozen_clock(at("2026-01-31 23:30"))  # 06:30 on 1 February in Vietnam
    login(unit=commune)  # through the login form
    frozen_clock(at("2026-02-28 17:30"))  # 00:30 on 1 March in Vietnam: last month is February
    login(is_admin=True, unit=unit_tree.province)
    page = client.get("/admin/usage")
    assert page.status_code == 200
    assert "Tình hình sử dụng hệ thống" in page.text and 'id="usage-range">Tháng 02/2026<' in page.text
    assert figures(page.text, f"usage-unit-{commune.id}") == {
        "accounts": "1", "accounts_logged_in": "1", "logins": "1", "due": "0", "on_time": "0", "late": "0",
        "not_submitted": "0", "returned": "0", "average_days": "—", "problems": "0", "proposals": "0"}
    january = client.get("/admin/usage", params={"month": "01/2026"})
    assert figures(january.text, f"usage-unit-{commune.id}")["logins"] == "0"
    # The operator's own login, at 00:30 on 1 March in Vietnam, is March's.
    assert figures(page.text, f"usage-unit-{unit_tree.province.id}")["logins"] == "0"
    march = client.get("/admin/usage", params={"month": "2026-03"})
    assert figures(march.text, f"usage-unit-{unit_tree.province.id}")["logins"] == "1"


def test_the_operator_sees_every_unit_totals_by_level_and_months_side_by_side(client, login, unit_tree,
                                                                            issued_regime, frozen_clock):
    frozen_clock(at("2026-03-10 03:00"))
    with db.connection_context():
        for number, commune in enumerate(unit_tree.communes):
            person = user_at(commune, f"xa{number}")
            log_in_at(person, "2026-01-10 02:00")
            log_in_at(person, "2026-02-10 02:00")
        add_report(issued_regime, unit_tree.communes[0], dt.date(2025, 12, 31), dt.date(2026, 1, 6),
                   sent="2026-01-08 02:00", late=True, sent_back="return")
    login(is_admin=True, unit=unit_tree.province)
    page = client.get("/admin/usage", params={"month": "2026-02", "months": "2"})
    assert page.status_code == 200, page.text[:300]
    assert '<strong id="usage-scope">Tất cả các đơn vị</strong>' in page.text
    assert "Từ tháng 01/2026 đến tháng 02/2026" in page.text
    for unit in unit_tree.all:
        assert f'id="usage-unit-{unit.id}"' in page.text
    communes = re.search(r'<tr data-kind="commune">(.*?)</tr>', page.text, re.S).group(1)
    assert "Xã, phường, đặc khu" in communes and "(2 đơn vị)" in communes
    assert dict(re.findall(r'data-col="([a-z_]+)">([^<]*)<', communes)) == {
        "accounts": "2", "accounts_logged_in": "2", "logins": "4", "due": "1", "on_time": "0", "late": "1",
        "not_submitted": "0", "returned": "1", "average_days": "8,0", "problems": "0", "proposals": "0"}
    by_month = re.search(r'id="usage-by-month".*?</table>', page.text, re.S).group(0)
    assert '<tr data-month="2026-01"><th scope="row">01/2026</th>' in by_month and 'data-month="2026-02"' in by_month
    # The menu leads here; the export links keep the choice.
    assert 'href="/admin/usage"' in page.text
    assert 'href="/admin/usage/export.xlsx?month=2026-02&amp;months=2"' in page.text
    # A commune's parent is a link into its subtree.
    assert f'unit={unit_tree.province.id}"' in page.text


def test_a_unit_administrator_sees_only_their_subtree_and_other_units_are_404(client, login, unit_tree):
    department = unit_tree.department
    login(unit=department, roles=("unit_admin",))
    page = client.get("/admin/usage")
    assert page.status_code == 200
    assert f'id="usage-unit-{department.id}"' in page.text
    for other in (unit_tree.province, *unit_tree.communes):
        assert f'id="usage-unit-{other.id}"' not in page.text
        assert client.get("/admin/usage", params={"unit": other.id}).status_code == 404
        assert client.get("/admin/usage/export.xlsx", params={"unit": other.id}).status_code == 404
        assert client.get("/admin/usage/export.csv", params={"unit": other.id}).status_code == 404
    for hostile in ("9223372036854775808", "abc", "-1", "0"):
        assert client.get("/admin/usage", params={"unit": hostile}).status_code == 404
    own = client.get("/admin/usage", params={"unit": department.id})
    assert own.status_code == 200 and "Sở Nông nghiệp và Môi trường và các đơn vị trực thuộc" in own.text
    # Its parent is not theirs: "up" leads back to their whole scope.
    assert '<a class="btn btn-small btn-link" href="/admin/usage?month=' in own.text and "Về toàn bộ phạm vi" in own.text


def test_the_operator_goes_down_into_a_unit_and_back_up(client, login, unit_tree):
    login(is_admin=True, unit=unit_tree.province)
    province, department = unit_tree.province, unit_tree.department
    down = client.get("/admin/usage", params={"month": "2026-01", "unit": department.id})
    assert down.status_code == 200 and [f'id="usage-unit-{department.id}"'] == \
        re.findall(r'id="usage-unit-\d+"', down.text)
    assert f'href="/admin/usage?month=2026-01&amp;months=1&amp;unit={province.id}" id="usage-up">↑ Về đơn vị cấp trên' \
        in down.text
    assert f'<input type="hidden" name="unit" value="{department.id}">' in down.text  # the form keeps it
    top = client.get("/admin/usage", params={"month": "2026-01", "unit": province.id})
    assert 'href="/admin/usage?month=2026-01&amp;months=1" id="usage-up">↑ Về toàn bộ phạm vi' in top.text
    assert len(re.findall(r'id="usage-unit-\d+"', top.text)) == 4


def test_only_administrators_open_it(client, login, unit_tree):
    login(unit=unit_tree.communes[0], roles=("reporter",))
    assert client.get("/admin/usage").status_code == 403
    assert client.get("/admin/usage/export.xlsx").status_code == 403
    assert 'href="/admin/usage"' not in client.get("/").text


def test_a_wrong_or_future_month_is_said_so(client, login, unit_tree, frozen_clock):
    frozen_clock(at("2026-03-10 03:00"))
    login(is_admin=True, unit=unit_tree.province)
    wrong = client.get("/admin/usage", params={"month": "13/2026"})
    assert wrong.status_code == 422 and "Tháng chưa đúng" in wrong.text and 'value="13/2026"' in wrong.text
    future = client.get("/admin/usage", params={"month": "2026-04"})
    assert future.status_code == 422 and "Tháng này chưa đến." in future.text
    too_many = client.get("/admin/usage", params={"months": "13"})
    assert too_many.status_code == 422 and "Số tháng phải từ 1 đến 12." in too_many.text
    assert client.get("/admin/usage/export.xlsx", params={"month": "x"}).status_code == 422
    # The current month so far may be looked at.
    assert client.get("/admin/usage", params={"month": "03/2026"}).status_code == 200


def test_htmx_gets_only_the_results(client, login, unit_tree):
    login(is_admin=True, unit=unit_tree.province)
    part = client.get("/admin/usage", headers=HX)
    assert part.status_code == 200 and part.text.lstrip().startswith('<div id="core-usage-results">')
    assert "<html" not in part.text


def test_the_excel_export_holds_the_numbers(client, login, unit_tree, issued_regime, frozen_clock):
    from openpyxl import load_workbook

    frozen_clock(at("2026-03-10 03:00"))
    commune = unit_tree.communes[1]
    with db.connection_context():
        log_in_at(user_at(commune, "camlo"), "2026-01-20 03:00")
        add_report(issued_regime, commune, dt.date(2025, 12, 31), dt.date(2026, 1, 6), sent="2026-01-02 03:00")
        add_report(issued_regime, commune, dt.date(2025, 11, 30), dt.date(2026, 1, 6), sent="2026-01-09 03:00",
                   late=True)
        add_report(issued_regime, commune, dt.date(2025, 10, 31), dt.date(2026, 1, 6))
    login(unit=unit_tree.province, roles=("unit_admin",))
    response = client.get("/admin/usage/export.xlsx", params={"month": "2026-01", "unit": commune.id})
    assert response.status_code == 200 and response.headers["content-type"] == XLSX
    assert 'filename="tinh-hinh-su-dung-2026-01.xlsx"' in response.headers["content-disposition"]
    book = load_workbook(io.BytesIO(response.content))
    assert book.sheetnames == ["Tổng hợp", "Tháng 2026-01"]
    rows = list(book["Tháng 2026-01"].iter_rows(values_only=True))
    assert rows[0][0] == "Tình hình sử dụng hệ thống"
    assert rows[1][:2] == ("Phạm vi", "Xã Cam Lộ và các đơn vị trực thuộc")
    header = next(r for r in rows if r and r[0] == "STT")
    assert header[:5] == ("STT", "Mã đơn vị", "Đơn vị", "Cấp đơn vị", "Đơn vị cấp trên")
    line = next(r for r in rows if r and r[1] == "44.CAMLO")
    # 1 account, who logged in once; 3 reports due: 1 on time, 1 late, 1 not sent; (2 + 40) / 2 days.
    assert line[5:] == (1, 1, 1, 3, 1, 1, 1, 0, 21, 0, 0)
    assert all(isinstance(value, (int, float)) for value in line[5:])


def test_the_csv_export(client, login, unit_tree):
    login(is_admin=True, unit=unit_tree.province)
    with db.connection_context():
        user_at(unit_tree.communes[0], "csv")
    response = client.get("/admin/usage/export.csv", params={"months": "3"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    text = response.content.decode("utf-8")
    assert text.startswith("\ufeffTháng,Mã đơn vị,Đơn vị,Cấp đơn vị,Tài khoản đang hoạt động,")
    lines = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert len(lines) == 1 + 3 * 4
    gio_linh = [cells for cells in lines if cells[1] == "44.GIOLINH"]
    assert [cells[3] for cells in gio_linh] == ["Xã, phường, đặc khu"] * 3
    assert [cells[4] for cells in gio_linh] == ["1", "1", "1"] and gio_linh[0][-3] == ""  # no average: nothing sent


def test_the_units_are_paged_and_the_totals_cover_them_all(client, login, unit_tree, monkeypatch):
    from web.routes import usage as usage_routes

    monkeypatch.setattr(usage_routes, "PER_PAGE", 3)
    with db.connection_context():
        for commune in unit_tree.communes:
            user_at(commune, f"trang{commune.id}")
    login(is_admin=True, unit=unit_tree.province)
    first = client.get("/admin/usage", params={"month": "2026-01"})
    shown = re.findall(r'id="usage-unit-(\d+)"', first.text)
    assert len(shown) == 3 and "Trang 1/2" in first.text
    assert figures(first.text, "usage-total")["accounts"] == "2"  # both communes, one of them on page 2
    assert 'href="/admin/usage?month=2026-01&amp;months=1&amp;page=2" rel="next"' in first.text
    second = client.get("/admin/usage", params={"month": "2026-01", "page": "2"})
    rest = re.findall(r'id="usage-unit-(\d+)"', second.text)
    assert len(rest) == 1 and set(shown + rest) == {str(u.id) for u in unit_tree.all}
    assert client.get("/admin/usage", params={"month": "2026-01", "page": "99"}).status_code == 200


def test_the_page_costs_the_same_queries_for_4_units_as_for_100(client, login, unit_tree, issued_regime):
    from core.models import Unit
    from tests.core.test_usage import Statements

    login(is_admin=True, unit=unit_tree.province)

    def statements(params) -> int:
        client.get("/admin/usage", params=params)
        with Statements() as counted:
            assert client.get("/admin/usage", params=params).status_code == 200
        return len(counted.sql)

    choices = ({"month": "2026-01"}, {"month": "2026-01", "months": "12"},
               {"month": "2026-01", "unit": unit_tree.province.id})
    few = [statements(params) for params in choices]
    with db.connection_context():
        communes = [Unit.create(code=f"44.X{i:03d}", name=f"Xã số {i}", kind="commune", parent=unit_tree.province)
                    for i in range(96)]
        for i, unit in enumerate(unit_tree.all + communes):
            log_in_at(user_at(unit, f"nd{i:03d}"), "2026-01-15 02:00")
            add_report(issued_regime, unit, dt.date(2025, 12, 31), dt.date(2026, 1, 6), sent="2026-01-03 02:00")
    many = [statements(params) for params in choices]
    # Not one query per unit: the report's own budget is counted in tests/core/test_usage.py.
    assert many == few


def test_hostile_parameters_never_break_it(client, login, unit_tree):
    login(is_admin=True, unit=unit_tree.province)
    for value in ("9223372036854775808", "²", "١٢/٢٠٢٦", "\x00", "a" * 5000, "-1", "0", "2026-02-30", "1e309"):
        for name in ("month", "months", "page", "unit"):
            for path in ("/admin/usage", "/admin/usage/export.xlsx", "/admin/usage/export.csv"):
                response = client.get(path, params={name: value})
                assert response.status_code in (200, 400, 404, 422), (path, name, value, response.status_code)
