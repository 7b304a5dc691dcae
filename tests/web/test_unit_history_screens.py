"""The unit tree as at a date, a unit's history, and import and export of units (issue 4):
an administrator sees the Quảng Trị tree before and after 01/07/2025."""

from __future__ import annotations

import base64
import io
import re

import openpyxl
import pytest
from starlette.testclient import TestClient

from core.accounts import login as accounts
from core.accounts.access import Grant, Role
from core.db import db
from core.demo import load_units
from core.models import Unit
from tests.conftest import HX, csrf_from
from tests.fixtures.plugins import log_in

HEADER = "code,name,kind,parent_code,admin_code,agency_code,valid_from,valid_to\n"


@pytest.fixture
def site(make_app):
    app = make_app()
    with TestClient(app) as client:
        with db.connection_context():
            province = load_units()
            ids = {u.code: u.id for u in Unit.select(Unit.id, Unit.code)}
            passwords, people = {}, {}
            for key, username, code, is_admin, role in (
                    ("admin", "quantri", "44", True, None), ("commune", "phuongdonghoi", "18880", False, "reporter"),
                    ("department", "sotaichinh", "QT.STC", False, "viewer")):
                passwords[key] = accounts.random_password()
                user = accounts.create_user(username, username, passwords[key], Unit.get_by_id(ids[code]),
                                            is_admin=is_admin)
                if role:
                    Grant.create(user=user, role=Role.get(Role.code == role), unit=user.unit_id)
                people[key] = user
        assert province.code == "44"

        def as_user(key):
            client.cookies.clear()
            log_in(client, people[key], passwords[key])
            return client

        yield as_user, ids


def unit_links(html):
    return set(re.findall(r'href="/units/(\d+)"', html))


def test_an_administrator_sees_the_tree_before_and_after_01_07_2025(site):
    as_user, ids = site
    client = as_user("admin")
    today = client.get("/units")
    assert today.status_code == 200
    assert "Tỉnh Quảng Bình" not in today.text and "Phường Đồng Hới" in today.text
    assert len(unit_links(today.text)) == 85
    for at in ("2025-06-30", "30/06/2025"):
        past = client.get("/units", params={"at": at})
        assert past.status_code == 200
        assert "30/06/2025" in past.text and "units-asat-past" in past.text
        assert "Tỉnh Quảng Bình" in past.text and "Thành phố Đồng Hới" in past.text
        assert "Phường Đồng Hải" in past.text and "Phường Đồng Hới" not in past.text
        assert len(unit_links(past.text)) == 2 + 18 + 264
    after = client.get("/units", params={"at": "2025-07-01"})
    assert unit_links(after.text) == unit_links(today.text) and "Tỉnh Quảng Bình" not in after.text


def test_the_as_at_date_updates_in_place_with_htmx_and_refuses_an_impossible_date(site):
    as_user, ids = site
    client = as_user("admin")
    partial = client.get("/units", params={"at": "2025-06-30", "q": "dong hai"}, headers=HX)
    assert partial.status_code == 200 and "<html" not in partial.text
    assert 'id="core-units-tree"' in partial.text and "units-asat-past" in partial.text
    assert unit_links(partial.text) == {str(ids["QB.tp-dong-hoi.p-dong-hai"])}
    bad = client.get("/units", params={"at": "31/02/2025"})
    assert bad.status_code == 422 and "30/06/2025" in bad.text and 'aria-invalid="true"' in bad.text
    client.post("/lang", data={"lang": "en", "next": "/", "csrf_token": csrf_from(bad.text)})
    assert "Not a valid date" in client.get("/units", params={"at": "2025-13-01"}).text


def test_the_history_of_phuong_dong_hoi_lists_its_eight_predecessors_and_the_legal_basis(site):
    as_user, ids = site
    client = as_user("admin")
    for path in (f"/units/{ids['18880']}", f"/units/{ids['18880']}/history"):
        page = client.get(path)
        assert page.status_code == 200
        assert "Lịch sử" in page.text and "1680/NQ-UBTVQH15" in page.text and "01/07/2025" in page.text
        for code in ("QB.tp-dong-hoi.p-dong-hai", "QB.tp-dong-hoi.xa-bao-ninh", "QB.tp-dong-hoi.xa-duc-ninh"):
            assert f'href="/units/{ids[code]}"' in page.text
    former = client.get(f"/units/{ids['QB.tp-dong-hoi.p-dong-hai']}")
    assert former.status_code == 200 and "Đơn vị cũ" in former.text and "30/06/2025" in former.text
    assert f'href="/units/{ids["18880"]}"' in former.text  # what it is today
    district = client.get(f"/units/{ids['QB.tp-dong-hoi']}")
    assert "Giải thể" in district.text and "203/2025/QH15" in district.text
    assert "Phường Đồng Hải" in district.text  # its communes on its last day


def test_a_commune_user_sees_its_own_predecessors_only(site):
    as_user, ids = site
    client = as_user("commune")
    past = client.get("/units", params={"at": "2025-06-30"})
    assert past.status_code == 200
    assert len(unit_links(past.text)) == 8 and str(ids["QB.tp-dong-hoi.p-dong-hai"]) in unit_links(past.text)
    assert "Tỉnh Quảng Bình" not in past.text
    assert client.get(f"/units/{ids['QB.tp-dong-hoi.p-dong-hai']}").status_code == 200
    # Xã Lộc Ninh became Phường Đồng Thuận, another commune: 404 like any unit outside the scope.
    assert client.get(f"/units/{ids['QB.tp-dong-hoi.xa-loc-ninh']}").status_code == 404
    assert client.get(f"/units/{ids['QB']}").status_code == 404
    assert client.get(f"/units/{ids['QB.tp-dong-hoi']}/history").status_code == 404


def test_a_department_user_opens_no_former_unit(site):
    as_user, ids = site
    client = as_user("department")
    assert client.get("/units", params={"at": "2025-06-30"}).status_code == 200
    assert unit_links(client.get("/units", params={"at": "2025-06-30"}).text) == set()
    assert client.get(f"/units/{ids['QB.tp-dong-hoi.p-dong-hai']}").status_code == 404


def test_export_as_at_a_date_in_csv_and_excel_is_limited_to_what_the_user_sees(site):
    as_user, ids = site
    client = as_user("admin")
    csv_file = client.get("/units/export", params={"at": "2025-06-30", "format": "csv"})
    assert csv_file.status_code == 200 and csv_file.headers["content-type"].startswith("text/csv")
    lines = csv_file.content.decode("utf-8-sig").splitlines()
    assert lines[0] == HEADER.strip() and len(lines) == 1 + 284
    xlsx = client.get("/units/export", params={"format": "xlsx"})
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx.content)).worksheets[0]
    assert sheet.max_row == 1 + 85
    commune = as_user("commune")
    lines = commune.get("/units/export", params={"format": "csv"}).content.decode("utf-8-sig").splitlines()
    assert [line.split(",")[0] for line in lines[1:]] == ["18880"]
    assert commune.get("/units/export", params={"format": "pdf"}).status_code == 404


def upload(client, content: bytes, name="units.csv"):
    page = client.get("/units/import")
    return client.post("/units/import", data={"csrf_token": csrf_from(page.text)},
                       files={"file": (name, content, "text/csv")})


def test_import_previews_then_writes_on_confirmation(site):
    as_user, ids = site
    client = as_user("admin")
    content = (HEADER + "N1,Xã Thử Nghiệm,commune,44,,,01/01/2030,\n").encode()
    preview = upload(client, content)
    assert preview.status_code == 200 and "N1" in preview.text and "Xã Thử Nghiệm" in preview.text
    assert "1 đơn vị mới, 0 đơn vị cập nhật" in preview.text
    with db.connection_context():
        assert not Unit.select().where(Unit.code == "N1").exists()
    fields = dict(re.findall(r'name="(filename|payload|signature)" value="([^"]*)"', preview.text))
    confirm = client.post("/units/import/confirm", data={"csrf_token": csrf_from(preview.text), **fields},
                          follow_redirects=False)
    assert confirm.status_code == 303
    done = client.get(confirm.headers["location"])
    assert "1 đơn vị mới" in done.text
    with db.connection_context():
        assert Unit.get(Unit.code == "N1").parent_id == ids["44"]


def test_a_tampered_confirmation_is_refused_and_writes_nothing(site):
    as_user, ids = site
    client = as_user("admin")
    preview = upload(client, (HEADER + "N1,Xã A,commune,44,,,,\n").encode())
    fields = dict(re.findall(r'name="(filename|payload|signature)" value="([^"]*)"', preview.text))
    fields["payload"] = base64.b64encode((HEADER + "N1,Xã A,commune,,,,,\n").encode()).decode()
    refused = client.post("/units/import/confirm", data={"csrf_token": csrf_from(preview.text), **fields})
    assert refused.status_code == 400 and "tải tệp lên lại" in refused.text
    with db.connection_context():
        assert not Unit.select().where(Unit.code == "N1").exists()


def test_a_bad_file_is_listed_row_by_row_and_has_no_confirm_button(site):
    as_user, ids = site
    client = as_user("admin")
    bad = upload(client, (HEADER + "N1,Xã A,hamlet,44,,,,\nN1,Xã B,commune,44,,,31/02/2025,\n").encode())
    assert bad.status_code == 422
    assert "hamlet" in bad.text and "31/02/2025" in bad.text and "dòng 2" in bad.text
    assert "/units/import/confirm" not in bad.text
    assert upload(client, b"%PDF", "x.pdf").status_code == 422


def test_import_needs_the_edit_right(site):
    as_user, ids = site
    client = as_user("commune")
    assert client.get("/units/import").status_code == 403
    assert "/units/import" not in client.get("/units").text
    page = client.get("/units")
    response = client.post("/units/import", data={"csrf_token": csrf_from(page.text)},
                           files={"file": ("u.csv", HEADER.encode(), "text/csv")})
    assert response.status_code == 403


def test_a_long_import_is_followed_on_its_page_and_is_still_one_transaction(site, monkeypatch):
    """Past a second the confirmed import goes on in the background (issue 14 item 10): the page
    follows it, and the units appear all at once when it ends."""
    import threading

    from core import background
    from core.units import files as unit_io
    from web import background as web_background

    as_user, ids = site
    client = as_user("admin")
    content = (HEADER + "N1,Xã Thử Nghiệm,commune,44,,,01/01/2030,\nN2,Xã Thứ Hai,commune,44,,,01/01/2030,\n").encode()
    preview = upload(client, content)
    fields = dict(re.findall(r'name="(filename|payload|signature)" value="([^"]*)"', preview.text))
    gate, real = threading.Event(), unit_io.apply
    monkeypatch.setattr(unit_io, "apply", lambda *a, **k: (gate.wait(10), real(*a, **k))[1])
    monkeypatch.setattr(web_background, "FOLLOW_AFTER", 0.0)
    confirm = client.post("/units/import/confirm", data={"csrf_token": csrf_from(preview.text), **fields},
                          follow_redirects=False)
    assert re.fullmatch(r"/jobs/\d+", confirm.headers["location"])
    from tests.web.test_background_screens import page_once

    running = page_once(client, confirm.headers["location"], "Đang lưu…")
    assert "Nhập danh mục đơn vị từ tệp" in running and "Đang lưu…" in running
    with db.connection_context():
        assert not Unit.select().where(Unit.code.in_(["N1", "N2"])).exists()
    gate.set()
    background.wait_all()
    done = client.get(confirm.headers["location"]).text
    assert "Đã nhập xong: 2 đơn vị mới, 0 đơn vị cập nhật, 0 không đổi." in done
    assert 'id="job-result" href="/units/import?created=2' in done
    with db.connection_context():
        assert Unit.select().where(Unit.code.in_(["N1", "N2"])).count() == 2
