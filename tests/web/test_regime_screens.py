"""Reporting regime screens (issue 4): an administrator previews a regime's calendar with its
deadlines, issues it, and finds the reports it opened for each unit; refusals answer 403/404/422."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from tests.conftest import HX, csrf_from


def _units():
    from core.db import db
    from core.models import Unit

    with db.connection_context():
        root = Unit.get(Unit.code == "ROOT")
        made = {}
        for code, name, kind in (("STC", "Sở Tài chính", "department"), ("SYT", "Sở Y tế", "department"),
                                 ("AT", "Xã Ái Tử", "commune"), ("CL", "Xã Cam Lộ", "commune")):
            made[code] = (Unit.get_or_none(Unit.code == code) or Unit.create(code=code, name=name, kind=kind,
                                                                             parent=root)).id
        made["ROOT"] = root.id
        other = Unit.get_or_none(Unit.code == "KHAC") or Unit.create(code="KHAC", name="Tỉnh Khác", kind="province")
        made["KHAC"] = other.id
    return made


def grant(user, role: str, unit_code: str):
    from core.accounts.access import Grant, Role
    from core.db import db
    from core.models import Unit

    with db.connection_context():
        Grant.create(user=user.id, role=Role.get(Role.code == role), unit=Unit.get(Unit.code == unit_code))


def form_for(units: dict, **changes) -> dict:
    data = {
        "code": "KTXH.THANG", "name": "Báo cáo tình hình kinh tế - xã hội hằng tháng", "regime_type": "periodic",
        "content": "Tình hình trong tháng", "content_type": "both", "kinds": ["department", "commune"],
        "receiving_unit_id": str(units["ROOT"]), "sending_methods": ["system", "email"],
        "level_0": "Xã → tỉnh", "from_kind_0": "commune", "rule_0": "2wd",
        "level_1": "Sở → tỉnh", "from_kind_1": "department", "rule_1": "+1wd",
        "frequency": "monthly", "cutoff_rule": "decree", "outline": "# I. Kinh tế\n# II. Xã hội",
        "legal_number": "12/2025/QĐ-UBND", "legal_date": "2025-08-01", "legal_issuer": "UBND tỉnh Quảng Trị",
        "issuing_unit_id": str(units["ROOT"]), "preparing_unit_id": str(units["STC"]),
    }
    data.update(changes)
    return data


@pytest.fixture
def admin(client, login):
    login(is_admin=True)
    units = _units()
    return units, csrf_from(client.get("/regimes").text)


def create(client, units, token, **changes) -> int:
    response = client.post("/regimes/new", data={**form_for(units, **changes), "csrf_token": token},
                           follow_redirects=False)
    assert response.status_code == 303, response.text[:2000]
    return int(re.search(r"/regimes/(\d+)", response.headers["location"]).group(1))


def test_an_administrator_previews_issues_and_finds_the_reports(client, admin):
    units, token = admin
    assert "Tạo chế độ báo cáo" in client.get("/regimes").text
    page = client.get("/regimes/new")
    assert page.status_code == 200 and "Điều 7" in page.text and 'id="regime-preview"' in page.text
    # The live preview: each window, its ISO interval and the per-level deadlines.
    year = dt.date.today().year
    preview = client.get("/regimes/preview", params={**form_for(units), "year": "2026"}, headers=HX)
    assert preview.status_code == 200 and "<html" not in preview.text
    assert "Tháng 10 năm 2026" in preview.text and "15/09/2026 – 14/10/2026" in preview.text
    # The rules in words, never as codes or an ISO 8601 interval (issue 12.19).
    assert "2 ngày làm việc sau ngày chốt số liệu" in preview.text
    assert "1 ngày làm việc sau thời hạn của cấp liền trước" in preview.text
    assert "2026-09-15/P1M" not in preview.text and "ISO 8601" not in preview.text
    assert "16/10/2026" in preview.text and "19/10/2026" in preview.text  # 2wd, then +1wd
    regime_id = create(client, units, token)
    detail = client.get(f"/regimes/{regime_id}")
    assert "Dự thảo" in detail.text and f"Lịch kỳ báo cáo năm {year}" in detail.text
    issued = client.post(f"/regimes/{regime_id}/issue", data={"csrf_token": token}, follow_redirects=False)
    assert issued.status_code == 303
    page = client.get(issued.headers["location"])
    assert "Đang có hiệu lực" in page.text and "Đã ban hành" in page.text
    reports = client.get(f"/regimes/{regime_id}/reports")
    assert reports.status_code == 200
    for name in ("Sở Tài chính", "Sở Y tế", "Xã Ái Tử", "Xã Cam Lộ"):
        assert name in reports.text
    assert "4 báo cáo" in reports.text
    one_unit = client.get(f"/regimes/{regime_id}/reports", params={"unit": units["AT"]}, headers=HX)
    assert "Xã Ái Tử" in one_unit.text and "Sở Y tế" not in one_unit.text and "<html" not in one_unit.text


def test_the_calendar_of_another_year_and_the_art8_check(client, admin):
    units, token = admin
    regime_id = create(client, units, token, level_1="", rule_1="", from_kind_1="", rule_0="day:15")
    page = client.get(f"/regimes/{regime_id}", params={"year": "2026"})
    assert "Không đạt" in page.text and "Điều 8 khoản 5" in page.text
    fragment = client.get(f"/regimes/{regime_id}", params={"year": "2027"}, headers=HX)
    assert "Tháng 1 năm 2027" in fragment.text and "<html" not in fragment.text
    refused = client.post(f"/regimes/{regime_id}/issue", data={"csrf_token": token})
    assert refused.status_code == 422 and "Điều 8 khoản 5" in refused.text


def test_issuing_is_refused_listing_the_missing_components(client, admin):
    units, token = admin
    regime_id = create(client, units, token, content="", outline="", sending_methods=[])
    page = client.get(f"/regimes/{regime_id}")
    assert "2. Nội dung yêu cầu báo cáo" in page.text and "9. Mẫu đề cương báo cáo" in page.text
    refused = client.post(f"/regimes/{regime_id}/issue", data={"csrf_token": token})
    assert refused.status_code == 422
    assert "5. Phương thức gửi, nhận báo cáo" in refused.text


def test_the_form_comes_back_with_field_messages(client, admin):
    units, token = admin
    response = client.post("/regimes/new", data={**form_for(units, name="", rule_1="soon"), "csrf_token": token})
    assert response.status_code == 422
    assert "Nhập tên báo cáo." in response.text and "Quy tắc không hợp lệ" in response.text


def test_edit_a_draft_then_a_new_version(client, admin):
    units, token = admin
    regime_id = create(client, units, token)
    edited = client.post(f"/regimes/{regime_id}/edit", data={**form_for(units, name="Tên mới"), "csrf_token": token},
                         follow_redirects=False)
    assert edited.status_code == 303
    assert "Tên mới" in client.get(f"/regimes/{regime_id}").text
    client.post(f"/regimes/{regime_id}/issue", data={"csrf_token": token})
    assert client.get(f"/regimes/{regime_id}/edit").status_code == 403
    version = client.post(f"/regimes/{regime_id}/new-version", data={"csrf_token": token}, follow_redirects=False)
    assert version.status_code == 303 and f"/regimes/{regime_id}?" not in version.headers["location"]
    assert "Phiên bản 2" in client.get(version.headers["location"]).text


def test_suspend_needs_a_reason(client, admin):
    units, token = admin
    regime_id = create(client, units, token)
    client.post(f"/regimes/{regime_id}/issue", data={"csrf_token": token})
    refused = client.post(f"/regimes/{regime_id}/suspend", data={"csrf_token": token, "reason": ""})
    assert refused.status_code == 422 and "Nhập lý do." in refused.text
    done = client.post(f"/regimes/{regime_id}/suspend", data={"csrf_token": token, "reason": "Sửa đổi"})
    assert done.status_code == 200 and "Đã tạm dừng" in done.text


def test_a_thematic_request_is_opened_with_a_window_and_deadline(client, admin):
    units, token = admin
    regime_id = create(client, units, token, code="CD.1", regime_type="thematic", kinds=["commune"],
                       legal_number="", legal_issuer="", legal_date="", frequency="", outline="")
    client.post(f"/regimes/{regime_id}/issue", data={"csrf_token": token})
    form = client.get(f"/regimes/{regime_id}/request")
    assert form.status_code == 200 and "2 đơn vị" in form.text
    bad = client.post(f"/regimes/{regime_id}/request", data={"csrf_token": token, "window_start": "2026-03-01",
                                                             "window_end": "2026-03-13", "deadline": "2026-03-14"})
    assert bad.status_code == 422 and "Điều 8 khoản 5" in bad.text
    ok = client.post(f"/regimes/{regime_id}/request", data={"csrf_token": token, "window_start": "2026-03-01",
                                                            "window_end": "2026-03-10", "deadline": "2026-03-16",
                                                            "label": "Đợt 1"}, follow_redirects=False)
    assert ok.status_code == 303
    page = client.get(ok.headers["location"])
    assert "Xã Ái Tử" in page.text and "Xã Cam Lộ" in page.text and "Đợt 1" in page.text and "16/03/2026" in page.text


def test_rights_on_the_screens(client, make_user):
    def log_in(user, password):
        client.cookies.clear()
        page = client.get("/login")
        response = client.post("/login", data={"username": user.username, "password": password,
                                               "csrf_token": csrf_from(page.text)}, follow_redirects=False)
        assert response.status_code == 303
        return csrf_from(client.get("/").text)

    admin_user, admin_pw = make_user(is_admin=True)
    units = _units()
    editor, editor_pw = make_user(unit_code="STC")
    grant(editor, "regime_editor", "STC")
    viewer, viewer_pw = make_user(unit_code="SYT")
    grant(viewer, "viewer", "SYT")
    outsider, outsider_pw = make_user(unit_code="KHAC")
    grant(outsider, "viewer", "KHAC")
    nobody, nobody_pw = make_user(unit_code="CL")

    token = log_in(editor, editor_pw)
    regime_id = create(client, units, token)  # the department drafts for the province
    assert client.post(f"/regimes/{regime_id}/issue", data={"csrf_token": token}).status_code == 403

    token = log_in(viewer, viewer_pw)
    assert client.get("/regimes").status_code == 200
    assert client.get(f"/regimes/{regime_id}").status_code == 404  # a draft: only those drafting or issuing see it
    assert client.get("/regimes/new").status_code == 403
    assert client.get(f"/regimes/{regime_id}/edit").status_code == 404
    assert client.post(f"/regimes/{regime_id}/issue", data={"csrf_token": token}).status_code == 404

    token = log_in(outsider, outsider_pw)
    assert client.get(f"/regimes/{regime_id}").status_code == 404
    assert client.get(f"/regimes/{regime_id}/reports").status_code == 404
    assert client.post(f"/regimes/{regime_id}/issue", data={"csrf_token": token}).status_code == 404
    assert client.get("/regimes/999999").status_code == 404
    assert "KTXH.THANG" not in client.get("/regimes").text

    log_in(nobody, nobody_pw)
    assert client.get("/regimes").status_code == 403
    assert client.get("/reports").status_code == 200

    log_in(admin_user, admin_pw)
    assert client.get(f"/regimes/{regime_id}").status_code == 200


def test_reports_list_shows_what_a_unit_must_send(client, make_user):
    admin_user, admin_pw = make_user(is_admin=True)
    units = _units()
    page = client.get("/login")
    client.post("/login", data={"username": admin_user.username, "password": admin_pw,
                                "csrf_token": csrf_from(page.text)})
    token = csrf_from(client.get("/").text)
    regime_id = create(client, units, token)
    client.post(f"/regimes/{regime_id}/issue", data={"csrf_token": token})
    clerk, clerk_pw = make_user(unit_code="AT")
    grant(clerk, "reporter", "AT")
    client.cookies.clear()
    page = client.get("/login")
    client.post("/login", data={"username": clerk.username, "password": clerk_pw, "csrf_token": csrf_from(page.text)})
    listing = client.get("/reports")
    assert listing.status_code == 200
    assert "Báo cáo tình hình kinh tế - xã hội hằng tháng" in listing.text and "Xã Ái Tử" in listing.text
    assert "Xã Cam Lộ" not in listing.text
    # The unit that must report sees the issued regime (its outline and guidance), not another's draft.
    assert client.get(f"/regimes/{regime_id}").status_code == 200
