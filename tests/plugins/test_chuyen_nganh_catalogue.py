"""The sector's catalogue at /p/chuyen_nganh/catalogue/ (issue 15, item 2): groups and indicators in the
sector's namespace, the import of the 7-column table (dry run, then all or nothing), its export, and the
refusals: a code outside the namespace, another sector's row in a file, another department, a reader,
a delegation suspended or revoked — each in both languages, with nothing changed."""

from __future__ import annotations

import base64
import csv
import datetime as dt
import io
import json
import re
import zlib
from types import SimpleNamespace

import openpyxl
import pytest

from core.audit import AuditEvent
from core.catalogue.indicators import Indicator, IndicatorGroup, save_group
from core.db import db
from core.models import Unit
from plugins.chuyen_nganh.catalogue import SectorNamespace, prefix_problem, proposal
from plugins.chuyen_nganh.models import Delegation
from tests.conftest import csrf_from
from tests.web.test_report_entry import log_in

BASE = "/p/chuyen_nganh/catalogue"
EN = {"Accept-Language": "en"}
HEADER = ["STT", "Mã số", "Nhóm/tên chỉ tiêu", "Phân tổ chủ yếu", "Kỳ công bố",
          "Cơ quan chịu trách nhiệm thu thập/tổng hợp", "Mã số ở hệ thống cấp cao hơn", "Đơn vị tính",
          "Loại giá trị", "Cách tổng hợp", "Cấp"]
ROWS = [["", "NN01", "Trồng trọt", "", "", "", "", "", "", "", "commune"],
        ["1", "NN0101", "Diện tích lúa gieo trồng", "Loại lúa", "Tháng", "Phòng Kinh tế xã", "X0101", "ha",
         "number", "sum", "commune"],
        ["2", "NN0102", "Sản lượng lúa", "", "Tháng", "", "", "tấn", "number", "sum", "commune"]]


def table(rows, header=HEADER) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows([header, *rows])
    return out.getvalue().encode("utf-8")


def make_delegation(p, department, sector, name, **changes) -> Delegation:
    values = {"department_unit_id": department.id, "sector": sector, "sector_name": name,
              "scope": json.dumps({"kinds": ["commune"]}), "purpose": "Báo cáo ngành", "status": "approved",
              "applicant_id": p.operator[0].id, "decision_number": f"{department.id}/QĐ-UBND",
              "decision_date": dt.date(2026, 10, 20), "signer_name": "Nguyễn Văn A",
              "signer_title": "Phó Chủ tịch UBND tỉnh", "valid_from": dt.date(2026, 11, 1)}
    values.update(changes)
    with db.connection_context():
        return Delegation.create(**values)


@pytest.fixture
def people(client, unit_tree, make_user, frozen_clock):
    frozen_clock(dt.datetime(2026, 11, 26, 3, 0))
    with db.connection_context():
        education = Unit.create(code="44.SGDDT", name="Sở Giáo dục và Đào tạo", kind="department",
                                parent=unit_tree.province)
    p = SimpleNamespace(tree=unit_tree, education=education,
                        operator=make_user(unit=unit_tree.province, is_admin=True),
                        admin=make_user(unit=unit_tree.department, roles=("chuyen_nganh.delegated_admin",)),
                        reader=make_user(unit=unit_tree.department, roles=("unit_admin",)),
                        teacher=make_user(unit=education, roles=("chuyen_nganh.delegated_admin",)),
                        province=make_user(unit=unit_tree.province, roles=("viewer",)))
    p.nn = make_delegation(p, unit_tree.department, "nn", "Nông nghiệp")
    p.gd = make_delegation(p, education, "gd", "Giáo dục")
    return p


def post(client, url, data, files=None, headers=None):
    token = csrf_from(client.get("/").text)
    return client.post(url, data={**data, "csrf_token": token}, files=files, headers=headers,
                       follow_redirects=False)


def group_form(**changes):
    return {"code": "NN01", "name": "Trồng trọt", "level": "commune", **changes}


def indicator_form(**changes):
    data = {"code": "NN0101", "group": "NN01", "name": "Diện tích lúa gieo trồng", "unit_of_measure": "ha",
            "value_type": "number", "aggregation": "sum", "disaggregation": "Giới tính: Nam; Nữ",
            "periodicity": "Tháng", "agency": "Phòng Kinh tế xã", "higher_code": "X0101", "source_act": ""}
    data.update(changes)
    return data


def catalogue_rows():
    with db.connection_context():
        groups = [g.code for g in IndicatorGroup.select().where(IndicatorGroup.code.startswith("NN"))]
        items = [(i.code, i.version) for i in Indicator.select().where(Indicator.code.startswith("NN"))
                 .order_by(Indicator.code, Indicator.version)]
    return sorted(groups), items


def catalogue_events():
    with db.connection_context():
        return [e.action for e in AuditEvent.select().where(AuditEvent.action.startswith("chuyen_nganh.catalogue."))
                .order_by(AuditEvent.id)]


def preview(client, delegation_id, content, name="chi-tieu.csv"):
    return post(client, f"{BASE}/{delegation_id}/import", {}, files={"file": (name, content, "text/csv")})


def apply_preview(client, delegation_id, page: str):
    fields = dict(re.findall(r'name="(filename|digest|payload)" value="([^"]*)"', page))
    return post(client, f"{BASE}/{delegation_id}/import/apply", fields)


# -- the namespace ----------------------------------------------------------------------------------

def test_the_sectors_letters_are_proposed_from_its_code_and_never_shared(people):
    assert [proposal(s) for s in ("nn", "nong_nghiep", "giao_duc", "y_te", "nn2", "x2")] == \
        ["NN", "NN", "GD", "YT", "NN", ""]
    with db.connection_context():
        assert prefix_problem("NN", "nn") is None
        SectorNamespace.create(sector="gd", prefix="GD", delegation_id=people.gd.id)
        assert prefix_problem("GD", "nn") == ("chuyen_nganh.catalogue.error.prefix_sector",
                                              {"prefix": "GD", "sector": "Giáo dục (gd)"})
        assert prefix_problem("GD", "gd") is None  # its own
        save_group("KX01", "Tăng trưởng kinh tế", "province")  # a plugin's letters (kinhte_xahoi)
        assert prefix_problem("KX", "nn")[0] == "chuyen_nganh.catalogue.error.prefix_used"
        assert prefix_problem("N1", "nn")[0] == "chuyen_nganh.catalogue.error.prefix_shape"


def test_a_taken_proposal_asks_for_other_letters(client, people):
    with db.connection_context():
        save_group("NN01", "Nhóm riêng của tỉnh", "province")  # the province's own NN codes
    log_in(client, people.admin[0])
    page = client.get(f"{BASE}/{people.nn.id}")
    assert page.status_code == 200 and "Danh mục chỉ tiêu đã có nhóm mã NN" in page.text
    assert 'id="catalogue-prefix-form"' in page.text
    response = post(client, f"{BASE}/{people.nn.id}/groups/new", group_form(code="NN02"))
    assert response.status_code == 422 and "Lĩnh vực chưa có tiền tố mã chỉ tiêu" in response.text

    with db.connection_context():
        SectorNamespace.create(sector="gd", prefix="GD", delegation_id=people.gd.id)
    response = post(client, f"{BASE}/{people.nn.id}/namespace", {"prefix": "gd"})
    assert response.status_code == 422 and "Tiền tố GD đã thuộc lĩnh vực Giáo dục (gd)." in response.text
    response = post(client, f"{BASE}/{people.nn.id}/namespace", {"prefix": "NA"})
    assert response.status_code == 303
    response = post(client, f"{BASE}/{people.nn.id}/groups/new", group_form(code="NA01"))
    assert response.status_code == 303, response.text[:2000]
    with db.connection_context():
        assert SectorNamespace.get(SectorNamespace.sector == "nn").prefix == "NA"
        assert IndicatorGroup.get(IndicatorGroup.code == "NA01").level == "commune"
    assert catalogue_events() == ["chuyen_nganh.catalogue.namespace", "chuyen_nganh.catalogue.group"]


# -- groups and indicators --------------------------------------------------------------------------

def test_a_group_and_an_indicator_in_the_namespace_then_a_new_version(client, people):
    log_in(client, people.admin[0])
    index = client.get(BASE).text
    assert f'id="catalogue-{people.nn.id}"' in index and f'id="catalogue-{people.gd.id}"' not in index
    page = client.get(f"{BASE}/{people.nn.id}").text
    assert "Mã của lĩnh vực sẽ bắt đầu bằng NN" in page

    assert post(client, f"{BASE}/{people.nn.id}/groups/new", group_form()).status_code == 303
    response = post(client, f"{BASE}/{people.nn.id}/indicators/new", indicator_form())
    assert response.status_code == 303, response.text[:3000]
    assert response.headers["location"].endswith("done=created#indicator-NN0101")
    page = client.get(f"{BASE}/{people.nn.id}").text
    assert "Mã của lĩnh vực bắt đầu bằng NN" in page and 'id="indicator-NN0101"' in page
    assert "Giới tính: Nam; Nữ" in page and "X0101" in page
    found = client.get(f"{BASE}/{people.nn.id}", params={"q": "dien tich LUA"}).text
    assert 'id="indicator-NN0101"' in found
    none = client.get(f"{BASE}/{people.nn.id}", params={"q": "chăn nuôi bò"}).text
    assert "Không có chỉ tiêu nào khớp với “chăn nuôi bò”." in none and 'id="indicator-NN0101"' not in none
    with db.connection_context():
        item = Indicator.get(Indicator.code == "NN0101")
        assert (item.group.code, item.levels, item.higher_code, item.aggregation) == ("NN01", "commune", "X0101", "sum")

    edit = client.get(f"{BASE}/{people.nn.id}/indicators/NN0101/edit").text
    assert 'name="version" value="1"' in edit
    response = post(client, f"{BASE}/{people.nn.id}/indicators/NN0101/edit",
                    {**indicator_form(name="Diện tích lúa gieo cấy"), "version": "1", "levels": ["commune"]})
    assert response.status_code == 303 and "done=saved" in response.headers["location"]
    # Someone else saved version 2 since version 1 was opened: refused, nothing overwritten.
    response = post(client, f"{BASE}/{people.nn.id}/indicators/NN0101/edit",
                    {**indicator_form(name="Tên khác"), "version": "1"})
    assert response.status_code == 409 and "Đã có phiên bản mới hơn (2)" in response.text
    renamed = post(client, f"{BASE}/{people.nn.id}/groups/NN01/edit", {"name": "Trồng trọt và chăn nuôi"})
    assert renamed.status_code == 303
    assert catalogue_rows() == (["NN01"], [("NN0101", 1), ("NN0101", 2)])
    assert catalogue_events() == ["chuyen_nganh.catalogue.namespace", "chuyen_nganh.catalogue.group",
                                  "chuyen_nganh.catalogue.indicator", "chuyen_nganh.catalogue.indicator",
                                  "chuyen_nganh.catalogue.group"]
    with db.connection_context():
        event = AuditEvent.select().where(AuditEvent.action == "chuyen_nganh.catalogue.indicator").first()
        assert (event.object_id, event.unit_id) == ("NN0101", people.tree.department.id)
        assert AuditEvent.select().where((AuditEvent.action == "indicator.change")
                                         & (AuditEvent.object_id == "NN0101")).count() == 2  # the core's own


def test_a_code_outside_the_namespace_is_refused_in_both_languages(client, people):
    log_in(client, people.admin[0])
    for code in ("T01", "GD01", "KX01", "NN1"):
        response = post(client, f"{BASE}/{people.nn.id}/groups/new", group_form(code=code))
        assert response.status_code == 422 and "Mã nhóm phải là NN và 2 chữ số, ví dụ NN01" in response.text, code
        assert f'value="{code}"' in response.text  # what was typed stays
    response = post(client, f"{BASE}/{people.nn.id}/groups/new", group_form(code="GD01"), headers=EN)
    assert "A group code is NN and 2 digits, e.g. NN01: only the sector&#39;s codes can be used." in response.text
    assert catalogue_rows() == ([], [])

    assert post(client, f"{BASE}/{people.nn.id}/groups/new", group_form()).status_code == 303
    for code in ("T0101", "GD0101", "NN01011"):
        response = post(client, f"{BASE}/{people.nn.id}/indicators/new", indicator_form(code=code))
        assert response.status_code == 422 and "Mã chỉ tiêu phải là NN, 2 chữ số của nhóm" in response.text, code
    response = post(client, f"{BASE}/{people.nn.id}/indicators/new", indicator_form(code="GD0101"), headers=EN)
    assert "An indicator code is NN, the group&#39;s 2 digits and 2 digits" in response.text
    response = post(client, f"{BASE}/{people.nn.id}/indicators/new", indicator_form(group="GD01"))
    assert response.status_code == 422 and "Chọn một nhóm của lĩnh vực." in response.text
    response = post(client, f"{BASE}/{people.nn.id}/indicators/new", indicator_form(higher_code="ABC"))
    assert response.status_code == 422 and "Mã số ở hệ thống cấp cao hơn không đúng dạng." in response.text
    # Another owner's rows are never opened here.
    with db.connection_context():
        save_group("GD01", "Học sinh", "commune")
    assert client.get(f"{BASE}/{people.nn.id}/groups/GD01/edit").status_code == 404
    assert client.get(f"{BASE}/{people.nn.id}/indicators/T0101/edit").status_code == 404
    assert catalogue_rows() == (["NN01"], [])


# -- import and export ------------------------------------------------------------------------------

def test_import_shows_the_dry_run_then_applies_the_whole_file(client, people):
    log_in(client, people.admin[0])
    page = preview(client, people.nn.id, table(ROWS))
    assert page.status_code == 200, page.text[:3000]
    assert page.text.count('data-change="new"') == 3 and 'id="catalogue-apply-form"' in page.text
    assert catalogue_rows() == ([], [])  # the dry run wrote nothing
    with db.connection_context():
        assert SectorNamespace.select().count() == 0

    response = apply_preview(client, people.nn.id, page.text)
    assert response.status_code == 303, response.text[:3000]
    assert "done=imported" in response.headers["location"] and "new=3" in response.headers["location"]
    assert "Đã nhập tệp: 3 mới, 0 thay đổi, 0 không đổi." in client.get(response.headers["location"]).text
    assert catalogue_rows() == (["NN01"], [("NN0101", 1), ("NN0102", 1)])
    with db.connection_context():
        assert Indicator.get(Indicator.code == "NN0101").higher_code == "X0101"
        assert SectorNamespace.get(SectorNamespace.sector == "nn").prefix == "NN"
    assert catalogue_events() == ["chuyen_nganh.catalogue.namespace", "chuyen_nganh.catalogue.import"]

    # A preview applied after the catalogue changed is shown again, not applied.
    changed = [r[:] for r in ROWS]
    changed[2][2] = "Sản lượng lúa cả năm"
    page = preview(client, people.nn.id, table(changed)).text
    assert 'data-code="NN0102" data-change="changed"' in page
    with db.connection_context():
        save_group("NN02", "Chăn nuôi", "commune")
        Indicator.update(name="Đổi bởi người khác").where(Indicator.code == "NN0102").execute()
    response = apply_preview(client, people.nn.id, page)
    assert response.status_code == 409 and 'id="catalogue-import-moved"' in response.text
    # A payload edited in the page is only another file: refused when unreadable, nothing written.
    response = post(client, f"{BASE}/{people.nn.id}/import/apply",
                    {"filename": "chi-tieu.csv", "digest": "x", "payload": "not base64!"})
    assert response.status_code == 400 and "không đọc được" in response.text
    assert catalogue_rows() == (["NN01", "NN02"], [("NN0101", 1), ("NN0102", 1)])


def test_a_row_with_another_sectors_code_is_refused_with_its_line(client, people):
    with db.connection_context():
        SectorNamespace.create(sector="gd", prefix="GD", delegation_id=people.gd.id)
        save_group("KX01", "Tăng trưởng kinh tế", "province")
    rows = [*ROWS, ["3", "GD0101", "Số học sinh", "", "", "", "", "", "", "", "commune"],
            ["4", "T0101", "Diện tích đất", "", "", "", "", "", "", "", "province"],
            ["5", "KX0101", "Tốc độ tăng GRDP", "", "", "", "", "", "", "", "province"],
            ["6", "AB0101", "Không của ai", "", "", "", "", "", "", "", "commune"]]
    log_in(client, people.admin[0])
    page = preview(client, people.nn.id, table(rows))
    assert page.status_code == 422 and 'id="catalogue-apply-form"' not in page.text
    errors = dict(re.findall(r'<tr data-row="(\d+)"><td class="nowrap">\d+</td><td>[^<]*</td><td>([^<]*)</td>',
                             page.text))
    assert errors == {
        "5": "Mã GD0101 thuộc lĩnh vực Giáo dục (gd), không phải của lĩnh vực này: chỉ nhập được mã bắt đầu bằng NN.",
        "6": "Mã T0101 là mã chỉ tiêu của tỉnh theo Quyết định 05/2023/QĐ-TTg, không phải của lĩnh vực: "
             "chỉ nhập được mã bắt đầu bằng NN.",
        "7": "Mã KX0101 thuộc danh mục chỉ tiêu riêng của tỉnh hoặc của một phân hệ khác: "
             "chỉ nhập được mã bắt đầu bằng NN.",
        "8": "Mã AB0101 không thuộc lĩnh vực này: chỉ nhập được mã bắt đầu bằng NN.",
    }
    english = post(client, f"{BASE}/{people.nn.id}/import", {}, files={"file": ("t.csv", table(rows), "text/csv")},
                   headers=EN).text
    assert "Code GD0101 belongs to the sector Giáo dục (gd), not to this one" in english
    # Applying it anyway (the fields of a good preview, the bad file's bytes) writes nothing.
    good = preview(client, people.nn.id, table(ROWS)).text
    fields = dict(re.findall(r'name="(filename|digest|payload)" value="([^"]*)"', good))
    fields["payload"] = base64.b64encode(zlib.compress(table(rows))).decode()
    response = post(client, f"{BASE}/{people.nn.id}/import/apply", fields)
    assert response.status_code == 422 and 'data-row="5"' in response.text
    assert catalogue_rows() == ([], [])
    with db.connection_context():
        assert SectorNamespace.select().where(SectorNamespace.sector == "nn").count() == 0


def test_the_export_round_trips_and_keeps_formulas_as_text(client, people):
    log_in(client, people.admin[0])
    assert post(client, f"{BASE}/{people.nn.id}/groups/new", group_form()).status_code == 303
    assert post(client, f"{BASE}/{people.nn.id}/indicators/new", indicator_form()).status_code == 303
    assert post(client, f"{BASE}/{people.nn.id}/indicators/new",
                indicator_form(code="NN0102", name="=HYPERLINK(\"http://x\")", disaggregation="", higher_code="",
                               levels=["province", "commune"])).status_code == 303
    before = catalogue_rows()

    exported = client.get(f"{BASE}/{people.nn.id}/export.csv")
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    assert "chi-tieu-nn-20261126.csv" in exported.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert rows[0][:7] == HEADER[:7] and [r[1] for r in rows[1:]] == ["NN01", "NN0101", "NN0102"]
    assert rows[3][2] == "'=HYPERLINK(\"http://x\")"  # a formula stays text in a spreadsheet
    workbook = client.get(f"{BASE}/{people.nn.id}/export.xlsx")
    sheet = openpyxl.load_workbook(io.BytesIO(workbook.content)).active
    cell = sheet["C4"]
    assert (cell.value, cell.data_type, cell.quotePrefix) == ("=HYPERLINK(\"http://x\")", "s", True)

    for name, content in (("export.csv", exported.content), ("export.xlsx", workbook.content)):
        page = preview(client, people.nn.id, content, name)
        assert page.status_code == 200, page.text[:3000]
        assert "Tệp giống hệt danh mục hiện có: không có gì để áp dụng." in page.text, name
        assert 'data-change="' not in page.text
    assert catalogue_rows() == before
    assert catalogue_events().count("chuyen_nganh.catalogue.export") == 2
    assert client.get(f"{BASE}/{people.nn.id}/export.pdf").status_code == 404


# -- who may, and when ------------------------------------------------------------------------------

def test_another_department_gets_not_found_and_changes_nothing(client, people):
    log_in(client, people.teacher[0])
    assert f'id="catalogue-{people.nn.id}"' not in client.get(BASE).text
    for url in ("", "/groups/new", "/indicators/new", "/import", "/export.csv"):
        assert client.get(f"{BASE}/{people.nn.id}{url}").status_code == 404, url
    for url, data in (("/groups/new", group_form()), ("/namespace", {"prefix": "NN"}),
                      ("/indicators/new", indicator_form())):
        assert post(client, f"{BASE}/{people.nn.id}{url}", data).status_code == 404, url
    assert preview(client, people.nn.id, table(ROWS)).status_code == 404
    assert client.get(f"{BASE}/999999").status_code == 404
    assert catalogue_rows() == ([], []) and catalogue_events() == []


def test_a_reader_sees_the_catalogue_and_may_not_change_it(client, people):
    log_in(client, people.admin[0])
    assert post(client, f"{BASE}/{people.nn.id}/groups/new", group_form()).status_code == 303
    log_in(client, people.reader[0])
    page = client.get(f"{BASE}/{people.nn.id}")
    assert page.status_code == 200 and 'id="group-NN01"' in page.text
    assert 'id="catalogue-group-new-link"' not in page.text and 'id="catalogue-export-csv"' in page.text
    response = post(client, f"{BASE}/{people.nn.id}/groups/new", group_form(code="NN02"))
    assert response.status_code == 403
    assert "Bạn chỉ được xem danh mục chỉ tiêu của lĩnh vực Nông nghiệp" in response.text
    assert client.get(f"{BASE}/{people.nn.id}/import").status_code == 403
    assert catalogue_rows() == (["NN01"], [])


@pytest.mark.parametrize("changes, vi, en", [
    ({"status": "suspended"}, "Ủy quyền đang tạm dừng (lĩnh vực Nông nghiệp", "The delegation is suspended"),
    ({"status": "revoked"}, "Ủy quyền đã hết hiệu lực (lĩnh vực Nông nghiệp", "The delegation has ended"),
    ({"valid_to": dt.date(2026, 11, 25)}, "Ủy quyền đã hết hiệu lực", "The delegation has ended"),
    ({"valid_from": dt.date(2026, 12, 1)}, "Ủy quyền chưa có hiệu lực", "The delegation is not in force yet"),
])
def test_a_delegation_that_does_not_stand_is_refused_clearly(client, people, changes, vi, en):
    log_in(client, people.admin[0])
    assert post(client, f"{BASE}/{people.nn.id}/groups/new", group_form()).status_code == 303
    with db.connection_context():
        Delegation.update(**changes).where(Delegation.id == people.nn.id).execute()
    before, events = catalogue_rows(), catalogue_events()
    page = client.get(f"{BASE}/{people.nn.id}")
    assert page.status_code == 403 and vi in page.text and "Không có gì được thay đổi." in page.text
    assert en in client.get(f"{BASE}/{people.nn.id}", headers=EN).text
    for url, data in (("/groups/new", group_form(code="NN02")), ("/groups/NN01/edit", {"name": "Tên mới"}),
                      ("/indicators/new", indicator_form())):
        response = post(client, f"{BASE}/{people.nn.id}{url}", data)
        assert response.status_code == 403 and vi in response.text, url
    assert preview(client, people.nn.id, table(ROWS)).status_code == 403
    assert client.get(f"{BASE}/{people.nn.id}/export.xlsx").status_code == 403
    assert catalogue_rows() == before and catalogue_events() == events
    with db.connection_context():
        assert AuditEvent.select().where((AuditEvent.action == "access.denied")
                                         & (AuditEvent.object_id.startswith(BASE))).count() >= 5
    row = re.search(rf'<tr id="catalogue-{people.nn.id}" data-standing="(\w+)"', client.get(BASE).text)
    assert row and row.group(1) in ("suspended", "ended", "not_yet")


def test_the_provinces_catalogue_screens_list_the_sectors_indicators(client, people):
    log_in(client, people.admin[0])
    assert post(client, f"{BASE}/{people.nn.id}/groups/new", group_form()).status_code == 303
    assert post(client, f"{BASE}/{people.nn.id}/indicators/new", indicator_form()).status_code == 303
    log_in(client, people.province[0])
    page = client.get("/indicators", params={"q": "lua gieo trong"})
    assert page.status_code == 200 and 'id="indicator-NN0101"' in page.text and "NN01 · Trồng trọt" in page.text


def test_the_administrators_a_decision_names_keep_the_catalogue_until_it_ends(client, people, make_user):
    """Without any role granted by hand: the delegation in force gives them the right (hook role_grants),
    and once it is revoked they are told so rather than shown a bare refusal."""
    named = make_user(unit=people.tree.department)
    with db.connection_context():
        Delegation.update(administrators=json.dumps([named[0].id])).where(Delegation.id == people.nn.id).execute()
    log_in(client, named[0])
    assert post(client, f"{BASE}/{people.nn.id}/groups/new", group_form()).status_code == 303
    with db.connection_context():
        Delegation.update(status="revoked").where(Delegation.id == people.nn.id).execute()
    log_in(client, named[0])
    page = client.get(f"{BASE}/{people.nn.id}")
    assert page.status_code == 403 and "Ủy quyền đã hết hiệu lực" in page.text
    response = post(client, f"{BASE}/{people.nn.id}/groups/new", group_form(code="NN02"))
    assert response.status_code == 403 and "Ủy quyền đã hết hiệu lực" in response.text
    assert catalogue_rows() == (["NN01"], [])
