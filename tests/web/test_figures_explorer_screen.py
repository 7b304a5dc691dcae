"""The figures explorer screen (/figures, "Tra cứu số liệu", issue 14 item 6): a GET form that works
without JavaScript, the pivot table with the merges of 01/07/2025 counted into the successor and a
note naming the former communes, rows and columns swapped, the Excel file with numbers as numbers
and Vietnamese headers, 404 for a unit out of the person's sight, the store's size limit said in
plain words, the htmx answer that refreshes the result in place. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import io
import re
from html.parser import HTMLParser

import openpyxl
import pytest

from core.api import Figure, put_figures, save_indicator, save_indicator_group
from core.catalogue import figures as store
from core.db import db
from core.models import Unit
from core.units import history as uh
from web.testing import HX, csrf_from

MERGE = dt.date(2025, 7, 1)
BASIS = "Nghị quyết 1680/NQ-UBTVQH15 ngày 16/06/2025 của Ủy ban Thường vụ Quốc hội"
HOSTILE = '<script>alert("x")</script> Chỉ tiêu lạ'
RANGE = {"frequency": "monthly", "from": "2025-6", "to": "2025-7"}


@pytest.fixture
def world(app, unit_tree, frozen_clock):
    """20/03/2026; Xã Một and Xã Hai merged into Xã Ba on 01/07/2025 (recorded with
    core.units.history.merge); rice area figures for June (the former communes) and July (Xã Ba)."""
    frozen_clock(dt.datetime(2026, 3, 20, 3, 0))
    province = unit_tree.province
    with db.connection_context():
        mot = Unit.create(code="44.MOT", name="Xã Một", kind="commune", parent=province)
        hai = Unit.create(code="44.HAI", name="Xã Hai", kind="commune", parent=province)
        uh.merge([mot, hai], {"code": "44.BA", "name": "Xã Ba", "kind": "commune", "parent": province},
                 effective_date=MERGE, legal_basis=BASIS)
        ba = Unit.get(Unit.code == "44.BA")
        save_indicator_group("EX01", "Chỉ tiêu thử của màn hình tra cứu", "commune")
        save_indicator({"code": "EX0101", "name": "Diện tích lúa gieo trồng", "group": "EX01", "levels": "commune",
                        "unit_of_measure": "ha", "aggregation": "sum"})
        save_indicator({"code": "EX0102", "name": HOSTILE, "group": "EX01", "levels": "commune",
                        "unit_of_measure": "ha", "value_type": "text", "aggregation": "none"})
        put_figures([Figure("EX0101", mot.id, "monthly", 2025, 6, "actual", "1234.5"),
                     Figure("EX0101", hai.id, "monthly", 2025, 6, "actual", "200"),
                     Figure("EX0101", ba.id, "monthly", 2025, 7, "actual", "1500"),
                     Figure("EX0101", ba.id, "monthly", 2025, 7, "plan", "1600"),
                     Figure("EX0102", ba.id, "monthly", 2025, 7, "actual", "=1+1")], source="test")
    return {"tree": unit_tree, "ba": ba}


class _Table(HTMLParser):
    """The explorer's table as lines of cell texts (a rowspan/colspan counted once, where it starts)."""

    def __init__(self):
        super().__init__()
        self.inside, self.lines, self.cell = False, [], None

    def handle_starttag(self, tag, attrs):
        if tag == "table" and ("id", "explorer-table") in attrs:
            self.inside = True
        elif self.inside and tag == "tr":
            self.lines.append([])
        elif self.inside and tag in ("td", "th"):
            self.cell = []

    def handle_endtag(self, tag):
        if tag == "table":
            self.inside = False
        elif self.inside and tag in ("td", "th") and self.cell is not None:
            self.lines[-1].append(" ".join("".join(self.cell).split()))
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)


def table(html: str) -> list[list[str]]:
    parser = _Table()
    parser.feed(html)
    assert parser.lines, "no table on the page"
    return parser.lines


def viewer(login, unit_tree):
    return login(unit=unit_tree.province, roles=("viewer",))


def test_the_menu_leads_to_the_page_and_its_form_is_a_plain_get_form(client, login, world):
    viewer(login, world["tree"])
    home = client.get("/")
    assert 'href="/figures"' in home.text and "Tra cứu số liệu" in home.text
    page = client.get("/figures")
    assert page.status_code == 200
    form = re.search(r'<form id="explorer-form"[^>]*>', page.text).group(0)
    assert 'method="get"' in form and 'action="/figures"' in form and 'hx-target="#explorer-result"' in form
    for name in ("q", "unit", "at", "scope", "frequency", "from", "to", "kind", "options", "pos_indicator",
                 "pos_period"):
        assert f'name="{name}"' in page.text, name
    assert "Hãy tìm và đánh dấu ít nhất một chỉ tiêu" in page.text


def test_the_search_box_lists_the_catalogues_matches_to_tick(client, login, world):
    viewer(login, world["tree"])
    page = client.get("/figures", params={"q": "lua gieo"})
    matches = re.search(r'<ul class="indicator-picks" id="explorer-matches">.*?</ul>', page.text, re.S).group(0)
    assert 'name="indicator" value="EX0101"' in matches and "EX0102" not in matches
    assert "Tìm thấy 1 chỉ tiêu." in page.text
    chosen = client.get("/figures", params={"q": "lua gieo", "indicator": "EX0101", **RANGE})
    assert re.search(r'name="indicator" value="EX0101" checked', chosen.text)
    assert 'id="explorer-matches"' not in chosen.text  # the one match is ticked already


def test_merged_communes_are_counted_into_their_successor_with_a_note(client, login, world):
    viewer(login, world["tree"])
    page = client.get("/figures", params={"indicator": "EX0101", "unit": "44.BA", **RANGE})
    assert page.status_code == 200
    lines = table(page.text)
    assert lines[0] == ["Chỉ tiêu", "Tháng 6 năm 2025", "Tháng 7 năm 2025"]
    assert lines[1] == ["EX0101 Diện tích lúa gieo trồng (ha)", "1.434,51", "1.500"]  # 1.434,5 and its note 1
    notes = re.search(r'<ol class="compact-list" id="explorer-notes">.*?</ol>', page.text, re.S).group(0)
    assert "Xã Ba: gồm số liệu của Xã Hai, Xã Một (đã sáp nhập từ ngày 01/07/2025)" in notes
    assert 'href="#explorer-note-1"' in page.text
    # Before the merge, the former communes are there as they were.
    before = client.get("/figures", params={"indicator": "EX0101", "unit": "44", "scope": "children",
                                            "at": "2025-06-30", **RANGE})
    rows = {line[0]: line[1:] for line in table(before.text)[1:]}
    assert rows["Xã Một 44.MOT"] == ["1.234,5", ""] and rows["Xã Hai 44.HAI"] == ["200", ""]
    assert "Xã Ba 44.BA" not in rows and 'id="explorer-notes"' not in before.text
    # Xã Ba asked for on a day before it existed: the page says which units stood for it then.
    early = client.get("/figures", params={"indicator": "EX0101", "unit": "44.BA", "at": "30/06/2025", **RANGE})
    assert early.status_code == 200 and 'id="explorer-table"' not in early.text
    warning = re.search(r'id="explorer-not-in-force">(.*?)</div>', early.text, re.S).group(1)
    assert "Xã Ba không có trên cây đơn vị vào ngày 30/06/2025." in warning
    assert "chưa được thành lập; số liệu khi đó thuộc về: Xã Hai, Xã Một." in warning


def test_rows_and_columns_swap(client, login, world):
    viewer(login, world["tree"])
    chosen = {"indicator": "EX0101", "unit": "44.BA", **RANGE}
    page = client.get("/figures", params=chosen)
    swap = re.search(r'<a class="btn btn-link" href="([^"]+)">Đổi hàng ↔ cột</a>', page.text).group(1)
    swapped = client.get(swap.replace("&amp;", "&"))
    lines = table(swapped.text)
    assert lines[0] == ["Kỳ", "EX0101 Diện tích lúa gieo trồng (ha)"]
    assert lines[1:] == [["Tháng 6 năm 2025", "1.434,51"], ["Tháng 7 năm 2025", "1.500"]]
    # Chosen in the form as well: the periods in the rows, the kinds in the columns.
    kinds = client.get("/figures", params={**chosen, "kind": ["actual", "plan"], "pos_period": "r1",
                                           "pos_kind": "c1", "pos_indicator": "c2"})
    assert table(kinds.text)[0] == ["Kỳ", "Kế hoạch", "Thực hiện"]
    assert table(kinds.text)[2] == ["Tháng 7 năm 2025", "1.600", "1.500"]


def test_the_excel_file_has_the_pivot_with_numbers_as_numbers_and_vietnamese_headers(client, login, world):
    viewer(login, world["tree"])
    params = {"indicator": ["EX0101", "EX0102"], "unit": "44.BA", **RANGE}
    page = client.get("/figures", params=params)
    href = re.search(r'<a class="btn" href="([^"]+)">Tải về Excel</a>', page.text).group(1)
    answer = client.get(href.replace("&amp;", "&"))
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/vnd.openxmlformats-officedocument.spreadsheetml")
    assert 'filename="tra-cuu-so-lieu_44.BA_2025-6_2025-7.xlsx"' in answer.headers["content-disposition"]
    sheet = openpyxl.load_workbook(io.BytesIO(answer.content)).active
    rows = [[c.value for c in row] for row in sheet.iter_rows()]
    head = next(i for i, row in enumerate(rows) if row[0] == "Chỉ tiêu")
    assert rows[head][:3] == ["Chỉ tiêu", "Tháng 6 năm 2025", "Tháng 7 năm 2025"]
    assert rows[head + 1][:3] == ["EX0101 Diện tích lúa gieo trồng (ha)", 1434.5, 1500]
    number = sheet.cell(row=head + 2, column=2)
    assert number.data_type == "n" and number.number_format == "#,##0.0"
    # A text stays text: the hostile figure is not a formula, the hostile name not markup.
    hostile = sheet.cell(row=head + 3, column=3)
    assert rows[head + 2][0] == f"EX0102 {HOSTILE} (ha)" and hostile.value == "=1+1" and hostile.data_type == "s"
    assert any(str(row[0]).startswith("(1) Xã Ba: gồm số liệu của Xã Hai, Xã Một") for row in rows if row[0])
    info = {row[0]: row[1] for row in rows[:head] if row[0]}
    assert info["Đơn vị"] == "Xã Ba (Chỉ đơn vị này)" and info["Cây đơn vị tại ngày"] == "20/03/2026"


def test_hostile_text_is_escaped_on_the_page(client, login, world):
    viewer(login, world["tree"])
    page = client.get("/figures", params={"indicator": "EX0102", "unit": "44.BA", "q": "chi tieu la", **RANGE})
    assert "<script>alert" not in page.text and "&lt;script&gt;" in page.text


def test_a_unit_out_of_sight_or_unknown_answers_404(client, login, world):
    gio_linh, cam_lo = world["tree"].communes
    login(unit=gio_linh, roles=("viewer",))
    assert client.get("/figures", params={"indicator": "EX0101", "unit": cam_lo.code}).status_code == 404
    assert client.get("/figures", params={"indicator": "EX0101", "unit": "44.BA"}).status_code == 404
    assert client.get("/figures", params={"indicator": "EX0101", "unit": "NO.SUCH"}).status_code == 404
    assert client.get("/figures/export.xlsx", params={"indicator": "EX0101", "unit": "44"}).status_code == 404
    own = client.get("/figures", params={"indicator": "EX0101"})
    units = re.search(r'<select id="explorer-unit" name="unit">.*?</select>', own.text, re.S).group(0)
    assert "Xã Gio Linh" in units and "Xã Cam Lộ" not in units and "Xã Ba" not in units


def test_without_the_catalogue_right_the_page_is_refused(client, login, world):
    login(unit=world["tree"].province, roles=())
    assert client.get("/figures").status_code == 403
    assert 'href="/figures"' not in client.get("/").text


def test_a_choice_too_large_for_the_store_is_refused_with_what_to_narrow(client, login, world, monkeypatch):
    monkeypatch.setattr(store, "MAX_FIGURES", 5)
    viewer(login, world["tree"])
    page = client.get("/figures", params={"indicator": ["EX0101", "EX0102"], "unit": "44", "scope": "children",
                                          **RANGE})
    assert page.status_code == 200 and 'id="explorer-table"' not in page.text
    refused = re.search(r'<div class="flash flash-error" role="alert" id="explorer-refused">(.*?)</div>',
                        page.text, re.S).group(1)
    assert "Lựa chọn quá lớn nên chưa lấy số liệu" in refused and "vượt mức tối đa 5 số liệu" in refused
    assert "Hãy chọn ít chỉ tiêu hơn, ít đơn vị hơn" in refused
    # No file either: back to the page, which says why.
    export = client.get("/figures/export.xlsx", params={"indicator": "EX0101", "unit": "44", "scope": "children",
                                                        **RANGE}, follow_redirects=False)
    assert export.status_code == 303 and export.headers["location"].startswith("/figures?")


def test_htmx_refreshes_the_result_in_place(client, login, world):
    viewer(login, world["tree"])
    answer = client.get("/figures", params={"indicator": "EX0101", "unit": "44.BA", "frequency": "quarterly",
                                            "from": "2025-2", "to": "2025-3"}, headers=HX)
    assert answer.status_code == 200 and "<html" not in answer.text and "explorer-form" not in answer.text
    assert '<section id="explorer-result"' in answer.text
    assert table(answer.text)[0] == ["Chỉ tiêu", "Quý II năm 2025", "Quý III năm 2025"]
    # The lists the form changed come along, out of band: the periods of the new frequency.
    periods = answer.text[answer.text.index('<div class="filter-bar" id="explorer-periods" hx-swap-oob="true">'):]
    assert '<option value="2025-3" selected>Quý III năm 2025</option>' in periods
    assert 'id="explorer-picks" hx-swap-oob="true"' in answer.text


def test_english_speakers_read_the_same_table_in_english(client, login, world):
    viewer(login, world["tree"])
    client.post("/lang", data={"lang": "en", "next": "/", "csrf_token": csrf_from(client.get("/").text)})
    page = client.get("/figures", params={"indicator": "EX0101", "unit": "44.BA", **RANGE})
    assert table(page.text)[0] == ["Indicator", "June 2025", "July 2025"]
    assert table(page.text)[1][1:] == ["1,434.51", "1,500"]


def test_a_table_too_large_for_the_screen_is_offered_as_a_file(client, login, world, monkeypatch):
    from core.catalogue import explorer

    monkeypatch.setattr(explorer, "SCREEN_CELLS", 3)
    viewer(login, world["tree"])
    page = client.get("/figures", params={"indicator": "EX0101", "unit": "44", "scope": "children", **RANGE})
    assert 'id="explorer-table"' not in page.text
    warning = re.search(r'id="explorer-too-big">(.*?)</div>', page.text, re.S).group(1)
    assert "Bảng có 10 ô, quá nhiều để hiện trên màn hình (tối đa 3 ô)" in warning
    href = re.search(r'<a class="btn" href="([^"]+)">Tải về Excel</a>', page.text).group(1)
    sheet = openpyxl.load_workbook(io.BytesIO(client.get(href.replace("&amp;", "&")).content)).active
    assert any(row[0] == "Xã Ba" and row[1] == 1434.5 for row in sheet.iter_rows(values_only=True))
