"""The code mapping of plugins/national_link (codes.py, the /mapping screens): one connector's rows —
indicator and option ↔ data element and combo, unit ↔ org unit, regime ↔ data set — added, changed
and deleted one at a time, exported as CSV (no cell a formula) and replaced from a CSV file (a dry
run, then all or nothing), each refusal named at its field or line in both languages.

The world here (a connector, indicators with options, a mapping) is shared by the ADX and DHIS2
tests (test_national_link_adx.py, test_national_link_dhis2.py)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from types import SimpleNamespace

import pytest

from core.api import save_indicator, save_indicator_group
from core.audit import AuditEvent
from core.db import db
from core.settings import PluginSettings
from plugins.national_link import codes
from plugins.national_link.codes import CodeMap, MappingError
from tests.conftest import csrf_from

CONNECTOR = "yte"
TABLE = {"connectors": {CONNECTOR: {"kind": "dhis2", "label": "DHIS2 Sở Y tế", "url": "http://127.0.0.1:9",
                                    "token": "thu-nghiem"},
                        "khac": {"kind": "dhis2", "label": "DHIS2 khác", "url": "http://127.0.0.1:9",
                                 "token": "thu-nghiem"}}}
BASE = "/p/national_link/mapping"
EN = {"Accept-Language": "en"}
# What the health department's DHIS2 names: population by sex, rice area; two communes; one data set.
ROWS = [
    {"kind": "value", "local_code": "NL0101", "remote_code": "DE_DAN_SO"},
    {"kind": "value", "local_code": "NL0101", "local_option": "Nam", "remote_code": "DE_DAN_SO",
     "remote_option": "SEX_M", "remote_attributes": "GENDER=MLE"},
    {"kind": "value", "local_code": "NL0101", "local_option": "Nữ", "remote_code": "DE_DAN_SO",
     "remote_option": "SEX_F", "remote_attributes": "GENDER=FMLE"},
    {"kind": "value", "local_code": "NL0102", "remote_code": "DE_LUA"},
    {"kind": "unit", "local_code": "44.GIOLINH", "remote_code": "OU_GIOLINH"},
    {"kind": "unit", "local_code": "44.CAMLO", "remote_code": "OU_CAMLO"},
    {"kind": "data_set", "local_code": "nl.thang", "remote_code": "DS_DAN_SO"},
]


@pytest.fixture
def app(make_app, make_settings):
    settings = make_settings(plugins=PluginSettings(config={"national_link": TABLE}))
    return make_app(settings, strict=True)


def make_indicators():
    with db.connection_context():
        save_indicator_group("NL01", "Dân số và nông nghiệp", "commune")
        save_indicator({"code": "NL0101", "name": "Dân số trung bình", "group": "NL01", "levels": "commune",
                        "unit_of_measure": "người", "aggregation": "sum", "disaggregation": "Giới tính: Nam; Nữ"})
        save_indicator({"code": "NL0102", "name": "Diện tích lúa gieo trồng", "group": "NL01", "levels": "commune",
                        "unit_of_measure": "ha", "aggregation": "sum"})
        save_indicator({"code": "NL0103", "name": "Ghi chú tình hình", "group": "NL01", "levels": "commune",
                        "value_type": "text", "aggregation": "none"})


def map_rows(rows=ROWS, connector=CONNECTOR):
    with db.connection_context():
        for row in rows:
            codes.save_row(None, connector, row)


@pytest.fixture
def world(client, unit_tree, make_user):
    """Indicators NL0101 (by sex), NL0102, NL0103 (text); the mapping above; an operator of the national
    link at the province (the mapping right) and a commune's reporter (no right)."""
    make_indicators()
    map_rows()
    return SimpleNamespace(tree=unit_tree,
                           operator=make_user(unit=unit_tree.province, roles=("national_link.operator",)),
                           reporter=make_user(unit=unit_tree.communes[0], roles=("reporter",)))


def log_in(client, user_and_password):
    user, password = user_and_password
    client.cookies.clear()
    page = client.get("/login")
    response = client.post("/login", data={"username": user.username, "password": password,
                                           "csrf_token": csrf_from(page.text)}, follow_redirects=False)
    assert response.status_code == 303
    return user


def post(client, url, data, files=None, headers=None):
    token = csrf_from(client.get("/").text)
    return client.post(url, data={**data, "csrf_token": token}, files=files, headers=headers, follow_redirects=False)


def stored(connector=CONNECTOR):
    with db.connection_context():
        return [(r.kind, r.local_code, r.local_option, r.remote_code, r.remote_option, r.remote_attributes)
                for r in codes.rows(connector)]


def mapping_events():
    with db.connection_context():
        return [e.action for e in AuditEvent.select().where(AuditEvent.action.startswith("national_link.mapping."))
                .order_by(AuditEvent.id)]


def table(rows) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows([list(codes.CSV_HEADER), *rows])
    return out.getvalue().encode("utf-8")


# -- one row --------------------------------------------------------------------------------------------

def test_a_disaggregated_row_needs_both_forms_and_the_attributes_are_kept_in_one_order(world):
    with db.connection_context():
        with pytest.raises(MappingError) as refused:
            codes.save_row(None, CONNECTOR, {"kind": "value", "local_code": "NL0102", "local_option": "Nam",
                                             "remote_code": "DE_X"})
        assert refused.value.errors == {"local_option": "national_link.mapping.error.option",
                                        "remote_option": "national_link.mapping.error.combo_required",
                                        "remote_attributes": "national_link.mapping.error.attributes_required"}
        assert refused.value.field_params["local_option"]["options"] == "—"  # NL0102 has no option at all
        row = codes.save_row(None, "khac", {"kind": "value", "local_code": "NL0101", "local_option": "Nữ",
                                            "remote_code": "DE_POP", "remote_option": " F_15_49 ",
                                            "remote_attributes": " SEX = F ; AGE=Y15_49;"})
        assert (row.remote_attributes, row.remote_option) == ("AGE=Y15_49;SEX=F", "F_15_49")
        # DHIS2's default combo, by code or by its uid, is the total's: kept as "".
        total = codes.save_row(None, "khac", {"kind": "value", "local_code": "NL0101", "remote_code": "DE_POP",
                                              "remote_option": "HllvX50cXC0"})
        assert total.remote_option == ""
        with pytest.raises(MappingError) as refused:
            codes.save_row(None, "khac", {"kind": "value", "local_code": "NL0101", "local_option": "Nam",
                                          "remote_code": "DE_POP", "remote_option": "M",
                                          "remote_attributes": "value=M;1AGE=X"})
        assert refused.value.errors == {"remote_attributes": "national_link.mapping.error.attributes"}


def test_each_code_maps_one_way_only(world):
    with db.connection_context():
        with pytest.raises(MappingError) as refused:  # the same indicator and option twice
            codes.save_row(None, CONNECTOR, {"kind": "value", "local_code": "NL0102", "remote_code": "DE_OTHER"})
        assert refused.value.errors == {"local_code": "national_link.mapping.error.local_taken"}
        assert refused.value.field_params["local_code"] == {"remote": "DE_LUA"}
        with pytest.raises(MappingError) as refused:  # the same org unit for two units
            codes.save_row(None, CONNECTOR, {"kind": "unit", "local_code": "44", "remote_code": "OU_CAMLO"})
        assert refused.value.errors == {"remote_code": "national_link.mapping.error.remote_taken"}
        assert refused.value.field_params["remote_code"] == {"local": "44.CAMLO"}
        with pytest.raises(MappingError) as refused:
            codes.save_row(None, CONNECTOR, {"kind": "unit", "local_code": "44.NOWHERE", "remote_code": "OU_X",
                                             "remote_option": "x"})
        assert refused.value.errors == {"local_code": "national_link.mapping.error.unit",
                                        "remote_option": "national_link.mapping.error.not_for_kind"}
        # Another connector has its own mapping: the same codes are free there.
        codes.save_row(None, "khac", {"kind": "unit", "local_code": "44.CAMLO", "remote_code": "OU_CAMLO"})
    assert len(stored()) == len(ROWS)


def test_the_screens_add_change_and_delete_a_row_audited(world, client):
    log_in(client, world.operator)
    page = client.get(f"{BASE}/{CONNECTOR}")
    assert page.status_code == 200
    assert "DE_DAN_SO" in page.text and "GENDER=FMLE" in page.text and "OU_CAMLO" in page.text
    assert client.get(BASE).status_code == 200 and "DHIS2 Sở Y tế" in client.get(BASE).text

    response = post(client, f"{BASE}/{CONNECTOR}/new", {"kind": "unit", "local_code": "44", "remote_code": "OU_TINH"})
    assert response.status_code == 303
    row_id = int(re.search(r"#row-(\d+)", response.headers["location"]).group(1))
    assert "Đã lưu dòng của bảng mã." in client.get(response.headers["location"]).text

    response = post(client, f"{BASE}/{CONNECTOR}/{row_id}/edit", {"kind": "unit", "local_code": "44",
                                                                    "remote_code": "OU_QUANG_TRI"})
    assert response.status_code == 303
    response = post(client, f"{BASE}/{CONNECTOR}/{row_id}/edit", {"kind": "unit", "local_code": "44",
                                                                    "remote_code": "OU_CAMLO"}, headers=EN)
    assert response.status_code == 422
    assert "This remote code is already used for 44.CAMLO." in response.text
    assert 'value="OU_CAMLO"' in response.text  # what was typed comes back
    assert ("unit", "44", "", "OU_QUANG_TRI", "", "") in stored()

    assert post(client, f"{BASE}/{CONNECTOR}/{row_id}/delete", {}).status_code == 303
    assert ("unit", "44", "", "OU_QUANG_TRI", "", "") not in stored()
    assert mapping_events()[len(ROWS):] == ["national_link.mapping.save", "national_link.mapping.save",
                                            "national_link.mapping.delete"]  # after the world's own rows
    assert client.get(f"{BASE}/nowhere").status_code == 404  # a connector the settings do not declare
    assert client.get(f"{BASE}/khac/{row_id}/edit").status_code == 404


def test_a_refused_row_reads_in_both_languages(world, client):
    log_in(client, world.operator)
    form = {"kind": "value", "local_code": "NL0999", "remote_code": ""}
    vi = post(client, f"{BASE}/{CONNECTOR}/new", form)
    en = post(client, f"{BASE}/{CONNECTOR}/new", form, headers=EN)
    assert vi.status_code == en.status_code == 422
    assert "Không có chỉ tiêu mã NL0999 trong danh mục." in vi.text and "Cần nhập ô này." in vi.text
    assert "There is no indicator NL0999 in the catalogue." in en.text and "This field is required." in en.text
    assert len(stored()) == len(ROWS)


def test_the_mapping_screens_need_the_mapping_right(world, client):
    log_in(client, world.reporter)
    assert client.get(BASE).status_code == 403
    assert client.get(f"{BASE}/{CONNECTOR}").status_code == 403
    assert client.get(f"{BASE}/{CONNECTOR}/export.csv").status_code == 403
    response = post(client, f"{BASE}/{CONNECTOR}/new", {"kind": "unit", "local_code": "44", "remote_code": "OU"})
    assert response.status_code == 403
    assert len(stored()) == len(ROWS)


# -- the mapping as a CSV file ------------------------------------------------------------------------

def test_the_csv_export_reads_back_unchanged_and_is_formula_safe(world, client):
    map_rows([{"kind": "unit", "local_code": "44", "remote_code": "=HYPERLINK(\"http://x\")"}], "khac")
    log_in(client, world.operator)
    response = client.get(f"{BASE}/khac/export.csv")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    lines = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert lines == [list(codes.CSV_HEADER), ["unit", "44", "", "'=HYPERLINK(\"http://x\")", "", ""]]
    with db.connection_context():
        plan = codes.plan_csv("khac", response.content)
    assert (plan.counts, plan.errors) == ({"new": 0, "changed": 0, "removed": 0, "unchanged": 1}, [])

    exported = client.get(f"{BASE}/{CONNECTOR}/export.csv").content
    with db.connection_context():
        plan = codes.plan_csv(CONNECTOR, exported)
    assert plan.counts == {"new": 0, "changed": 0, "removed": 0, "unchanged": len(ROWS)}


def test_a_csv_file_replaces_the_mapping_after_its_dry_run(world, client):
    log_in(client, world.operator)
    exported = client.get(f"{BASE}/{CONNECTOR}/export.csv").content.decode("utf-8-sig")
    lines = list(csv.reader(io.StringIO(exported)))[1:]
    lines = [line for line in lines if line[1] != "44.CAMLO"]  # removed
    lines = [[*line[:3], "DE_RICE", *line[4:]] if line[1] == "NL0102" else line for line in lines]  # changed
    lines.append(["unit", "44", "", "OU_TINH", "", ""])  # new
    content = table(lines)

    preview = post(client, f"{BASE}/{CONNECTOR}/import", {}, files={"file": ("bang-ma.csv", content, "text/csv")})
    assert preview.status_code == 200
    assert re.search(r'data-change="changed".*?DE_LUA.*?DE_RICE', preview.text, re.S)
    assert 'data-change="removed"' in preview.text and 'data-change="new"' in preview.text
    assert stored() != [] and ("unit", "44.CAMLO", "", "OU_CAMLO", "", "") in stored()  # nothing written yet

    fields = dict(re.findall(r'name="(filename|digest|payload)" value="([^"]*)"', preview.text))
    response = post(client, f"{BASE}/{CONNECTOR}/import/apply", fields)
    assert response.status_code == 303
    assert "1 dòng mới, 1 dòng thay đổi, 1 dòng bỏ đi" in client.get(response.headers["location"]).text
    rows = stored()
    assert ("unit", "44.CAMLO", "", "OU_CAMLO", "", "") not in rows
    assert ("value", "NL0102", "", "DE_RICE", "", "") in rows and ("unit", "44", "", "OU_TINH", "", "") in rows
    assert mapping_events()[-1] == "national_link.mapping.import"

    # The same preview applied again would now do something else: shown again, nothing written.
    again = post(client, f"{BASE}/{CONNECTOR}/import/apply", fields)
    assert again.status_code == 409 and "đã thay đổi từ lúc xem trước" in again.text
    assert stored() == rows


def test_a_csv_file_with_a_mistake_changes_nothing_and_names_its_line(world, client):
    log_in(client, world.operator)
    content = table([["value", "NL0102", "", "DE_LUA", "", ""],
                     ["value", "NL0102", "", "DE_LUA_2", "", ""],  # the same indicator twice
                     ["value", "NL0101", "Nam", "DE_DAN_SO", "SEX_M", ""],  # no ADX attributes
                     ["region", "X", "", "Y", "", ""]])
    before = stored()
    preview = post(client, f"{BASE}/{CONNECTOR}/import", {}, files={"file": ("bang-ma.csv", content, "text/csv")},
                   headers=EN)
    assert preview.status_code == 422
    assert 'data-line="3"' in preview.text and "This code is already on line 2 of the file." in preview.text
    assert 'data-line="4"' in preview.text
    assert "A disaggregated indicator needs its ADX category attributes." in preview.text
    assert 'data-line="5"' in preview.text and "mapping-apply-form" not in preview.text
    with db.connection_context():
        plan = codes.plan_csv(CONNECTOR, content)
        assert codes.apply_csv(None, CONNECTOR, content, "bang-ma.csv", plan.digest)[0] is None
    assert stored() == before

    wrong = post(client, f"{BASE}/{CONNECTOR}/import", {}, files={"file": ("x.csv", b"ma,ten\n1,2\n", "text/csv")})
    assert wrong.status_code == 422
    assert "Dòng đầu của tệp phải là tên các cột: kind, local_code" in wrong.text
    assert post(client, f"{BASE}/{CONNECTOR}/import", {}).status_code == 422  # no file
    assert stored() == before


def test_the_unique_indexes_hold_in_the_database(world):
    # The service checks first; the indexes are what holds when two people save at the same moment.
    with db.connection_context():
        row = CodeMap.get((CodeMap.connector == CONNECTOR) & (CodeMap.local_code == "NL0102"))
        with pytest.raises(Exception):
            with db.atomic():
                CodeMap.create(connector=CONNECTOR, kind="value", local_code="NL0102", remote_code="DE_NEW")
        with pytest.raises(Exception):
            with db.atomic():
                CodeMap.create(connector=CONNECTOR, kind="value", local_code="NL0103", remote_code=row.remote_code)


# -- an accepted report: the figures the ADX and DHIS2 tests send and receive ---------------------------

# The regime "nl.thang" (the data set DS_DAN_SO): population, by sex, and rice area of each commune.
FORM = {"title": "Biểu số 01/NL: Dân số và diện tích lúa tháng {m}/{y}",
        "rows": [{"key": "dan_so", "kind": "indicator", "number": "1", "label": "Dân số", "indicator": "NL0101",
                  "decimals": 0},
                 {"key": "nam", "kind": "indicator", "number": "1.1", "label": "Nam", "indicator": "NL0101",
                  "option": "Nam", "decimals": 0},
                 {"key": "nu", "kind": "indicator", "number": "1.2", "label": "Nữ", "indicator": "NL0101",
                  "option": "Nữ", "decimals": 0},
                 {"key": "lua", "kind": "indicator", "number": "2", "label": "Lúa", "indicator": "NL0102",
                  "decimals": 1}],
        "columns": [{"key": "cur", "kind": "input", "label": "Tháng {m}/{y}"}]}
CELLS = {"dan_so.cur": "10230", "nam.cur": "5000", "nu.cur": "5230", "lua.cur": "120,5"}
JANUARY = ("monthly", 2026, 1)  # the window 15/12/2025 – 14/01/2026, open on 10/01/2026


def accept_report(client, make_user, regime, unit_tree, commune, cells=CELLS):
    """A reporter of ``commune`` fills and submits its report; the department's receiver accepts it.
    Returns the report (its figures are then in the store, as every accepted report's are)."""
    from web.testing import OpenReport

    report = regime.report_of(commune)
    user, password = make_user(unit=commune, roles=("reporter",))
    client.cookies.clear()
    reporter = OpenReport(report, user, password, regime)
    reporter.log_in(client)
    reporter.fill(client, cells)
    page = client.get(f"/reports/{report.id}").text
    revision = re.search(r'name="revision" value="(\d+)"', page).group(1)
    response = client.post(f"/reports/{report.id}/submit", data={"revision": revision, "csrf_token": csrf_from(page)},
                           follow_redirects=False)
    assert response.status_code == 303, response.text[:2000]
    log_in(client, make_user(unit=unit_tree.department, roles=("receiver",)))
    page = client.get(f"/reports/{report.id}").text
    response = client.post(f"/reports/{report.id}/accept", data={"csrf_token": csrf_from(page)},
                           follow_redirects=False)
    assert response.status_code == 303, response.text[:2000]
    return report


@pytest.fixture
def accepted(world, client, make_user, make_regime, unit_tree, frozen_clock):
    """The world, with January 2026's report of Xã Gio Linh accepted (``.report``, ``.regime``)."""
    frozen_clock(dt.datetime(2026, 1, 10, 3, 0))
    regime = make_regime("nl.thang", name="Báo cáo dân số và diện tích lúa hằng tháng", definition=FORM)
    world.regime = regime
    world.report = accept_report(client, make_user, regime, unit_tree, unit_tree.communes[0])
    log_in(client, world.operator)
    return world


def figures_of(unit, period=JANUARY):
    """{(code, option): value} of the unit's actual figures of the period, as the store holds them."""
    from core.api import figures

    with db.connection_context():
        return {(f.code, f.option): f.value for f in figures(["NL0101", "NL0102"], [unit.id], [period],
                                                              options="all")}
