"""The Excel routes of a report (issue 5): the template and the filled report download with a
proper file name to whoever may read the report, a filled template uploads for whoever fills it
(303 back to the report with the count), and a refused upload answers a page (422) listing each
cell with its reason, in the person's language, with nothing saved. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import re
from decimal import Decimal

import openpyxl
import pytest
from starlette.testclient import TestClient

from core.accounts import passwords
from core.reporting import data as rd
from core.db import db
from core.models import User
from tests.conftest import csrf_from
from tests.fixtures.forms import form_world
from tests.fixtures.plugins import log_in

PASSWORD = "Mật-khẩu-thử-4815-tháng-ba"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@pytest.fixture
def site(make_app):
    app = make_app()
    with TestClient(app) as client:
        with db.connection_context():
            w = form_world()
            User.update(password_hash=passwords.hash_password(PASSWORD)).execute()

        def as_user(name):
            client.cookies.clear()
            log_in(client, w.users[name], PASSWORD)
            return client

        yield as_user, w


def filled(data: bytes, values: dict) -> bytes:
    book = openpyxl.load_workbook(io.BytesIO(data))
    for address, value in values.items():
        book["Biểu"][address] = value
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def post_file(client, report_id: int, data: bytes, name: str = "bao-cao.xlsx"):
    token = csrf_from(client.get("/").text)
    return client.post(f"/reports/{report_id}/upload", data={"csrf_token": token},
                       files={"file": (name, data, XLSX)}, follow_redirects=False)


def stored(w) -> dict:
    with db.connection_context():
        return rd.stored_values(w.report.id)


def test_download_fill_and_upload_a_template(site):
    as_user, w = site
    client = as_user("reporter")
    response = client.get(f"/reports/{w.report.id}/template.xlsx")
    assert response.status_code == 200 and response.headers["content-type"] == XLSX
    assert response.headers["content-disposition"] == (
        "attachment; filename=\"BM-BM-THANG-AT-2026-03.xlsx\"; filename*=UTF-8''BM-BM-THANG-AT-2026-03.xlsx")
    upload = post_file(client, w.report.id, filled(response.content, {"E13": 120.5, "E14": "1.234,5"}))
    assert upload.status_code == 303 and upload.headers["location"] == f"/reports/{w.report.id}?imported=2"
    assert stored(w) == {("banle", "cur"): Decimal("120.5"), ("dulich", "cur"): Decimal("1234.5")}
    again = post_file(client, w.report.id, filled(response.content, {"E13": 120.5, "E14": "1.234,5"}))
    assert again.headers["location"] == f"/reports/{w.report.id}?imported=0"


def test_a_refused_upload_lists_each_cell_and_saves_nothing(site):
    as_user, w = site
    client = as_user("reporter")
    template = client.get(f"/reports/{w.report.id}/template.xlsx").content
    response = post_file(client, w.report.id, filled(template, {"E13": "mười hai", "E14": 5, "D13": 7}))
    assert response.status_code == 422
    html = response.text
    assert "Không nhập được tệp bao-cao.xlsx." in html
    assert "Tệp có 2 ô không hợp lệ. Chưa có số liệu nào được lưu." in html
    rows = re.findall(r'<tr><td class="mono">(\w+)</td>', html)
    assert rows == ["D13", "E13"]
    assert "Ô D13 (1 Tổng mức bán lẻ hàng hóa / Tháng 2/2026) bị khóa nhưng đã bị sửa." in html
    assert f'href="/reports/{w.report.id}"' in html and f'href="/reports/{w.report.id}/template.xlsx"' in html
    assert stored(w) == {}
    # The same page in English.
    client.post("/lang", data={"lang": "en", "csrf_token": csrf_from(client.get("/").text)})
    english = post_file(client, w.report.id, filled(template, {"E13": "mười hai"})).text
    assert "Cell E13 (1 Tổng mức bán lẻ hàng hóa / Thực hiện tháng 3/2026):" in english


@pytest.mark.parametrize("content, message", [
    (b"not a spreadsheet", "Tệp không phải tệp Excel (.xlsx)."),
    (b"", "Tệp trống."),
])
def test_a_file_that_is_not_a_template_is_refused_with_the_reason(site, content, message):
    as_user, w = site
    response = post_file(as_user("reporter"), w.report.id, content, name="ghi-chu.txt")
    assert response.status_code == 422 and message in response.text


def test_a_file_over_the_limit_is_refused_unread(site):
    as_user, w = site
    response = post_file(as_user("reporter"), w.report.id, b"PK\x03\x04" + b"0" * (6 * 1024 * 1024))
    assert response.status_code == 422 and "Tệp quá lớn (tối đa 5 MB)." in response.text
    assert stored(w) == {}


def test_a_post_without_a_file_is_refused(site):
    as_user, w = site
    client = as_user("reporter")
    token = csrf_from(client.get("/").text)
    response = client.post(f"/reports/{w.report.id}/upload", data={"csrf_token": token}, follow_redirects=False)
    assert response.status_code == 422 and "Hãy chọn tệp Excel để tải lên." in response.text


def test_the_template_of_another_report_is_refused(site):
    as_user, w = site
    other = as_user("other").get(f"/reports/{w.other_report.id}/template.xlsx").content
    response = post_file(as_user("reporter"), w.report.id, filled(other, {"E13": 1}))
    assert response.status_code == 422
    assert "Tệp này là mẫu của báo cáo khác: Xã Cam Lộ — Tháng 3 năm 2026 — BM-THANG." in response.text


def test_the_export_downloads_for_reader_and_filler(site):
    as_user, w = site
    with db.connection_context():
        rd.save(w.p["reporter"], w.report.id, cells={("banle", "cur"): (rd.MISSING, "10")})
    for who in ("reporter", "issuer"):
        response = as_user(who).get(f"/reports/{w.report.id}/export.xlsx")
        assert response.status_code == 200, who
        assert "BC-BM-THANG-AT-2026-03.xlsx" in response.headers["content-disposition"]
        book = openpyxl.load_workbook(io.BytesIO(response.content))
        assert book["Biểu"]["E13"].value == 10


def test_rights_read_for_downloads_fill_for_upload(site):
    as_user, w = site
    viewer = as_user("viewer")
    # A report the user may not read does not exist for them (ACL-02).
    for path in ("template.xlsx", "export.xlsx"):
        assert viewer.get(f"/reports/{w.report.id}/{path}").status_code == 404
    assert as_user("other").get(f"/reports/{w.report.id}/template.xlsx").status_code == 404
    assert as_user("reporter").get("/reports/999999/template.xlsx").status_code == 404
    template = as_user("reporter").get(f"/reports/{w.report.id}/template.xlsx").content
    # The receiver reads the report but does not fill it.
    assert post_file(as_user("issuer"), w.report.id, filled(template, {"E13": 1})).status_code == 403
    assert post_file(as_user("other"), w.report.id, filled(template, {"E13": 1})).status_code == 404
    assert stored(w) == {}


def test_anonymous_requests_go_to_the_login_page(site):
    as_user, w = site
    client = as_user("reporter")
    client.cookies.clear()
    response = client.get(f"/reports/{w.report.id}/template.xlsx", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/login")
