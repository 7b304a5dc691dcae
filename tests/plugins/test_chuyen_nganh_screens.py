"""The delegation screens at /p/chuyen_nganh/: every route for each kind of person (allowed, refused,
outside the department), the whole lifecycle through the forms, the overlap refusal, and bad input
coming back with what was typed (422) without changing anything."""

from __future__ import annotations

import datetime as dt
import re
from types import SimpleNamespace

import pytest

from core.db import db
from core.models import Unit
from core.regimes import regimes as rg
from plugins.chuyen_nganh.models import Delegation, DelegationStep
from tests.conftest import csrf_from

PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
BASE = "/p/chuyen_nganh"


@pytest.fixture
def people(client, unit_tree, make_user, frozen_clock):
    frozen_clock(dt.datetime(2026, 11, 26, 3, 0))
    with db.connection_context():
        education = Unit.create(code="44.SGDDT", name="Sở Giáo dục và Đào tạo", kind="department",
                                parent=unit_tree.province)
    return SimpleNamespace(
        tree=unit_tree, education=education,
        operator=make_user(unit=unit_tree.province, is_admin=True),
        applicant=make_user(unit=unit_tree.department, roles=("chuyen_nganh.sector_admin",)),
        deputy=make_user(unit=unit_tree.department),
        teacher=make_user(unit=education, roles=("chuyen_nganh.sector_admin",)),
        commune=make_user(unit=unit_tree.communes[0], roles=("viewer", "reporter")))


def log_in(client, person):
    user, password = person
    client.cookies.clear()
    page = client.get("/login")
    response = client.post("/login", data={"username": user.username, "password": password,
                                           "csrf_token": csrf_from(page.text)}, follow_redirects=False)
    assert response.status_code == 303, response.text[:500]
    return user


def post(client, url, data, page_url=None, files=None):
    page = client.get(page_url or url)
    return client.post(url, data={**data, "csrf_token": csrf_from(page.text)}, files=files, follow_redirects=False)


def apply_form(p, **changes):
    data = {"department_unit_id": str(p.tree.department.id), "sector": "nn", "sector_name": "Nông nghiệp",
            "scope_unit_ids": [str(c.id) for c in p.tree.communes], "purpose": "Báo cáo sản xuất nông nghiệp",
            "administrator_ids": [str(p.deputy[0].id)]}
    data.update(changes)
    return data


def decision_form(**changes):
    data = {"decision_number": "123/QĐ-UBND", "decision_date": "2026-11-20", "signer_name": "Nguyễn Văn A",
            "signer_title": "Phó Chủ tịch UBND tỉnh", "valid_from": "2026-12-01", "valid_to": ""}
    data.update(changes)
    return data


def applied(client, p, **changes) -> int:
    log_in(client, p.applicant)
    response = post(client, f"{BASE}/apply", apply_form(p, **changes))
    assert response.status_code == 303, response.text[:3000]
    return int(re.search(r"/p/chuyen_nganh/(\d+)\?done=apply", response.headers["location"]).group(1))


def decided(client, p, delegation_id):
    log_in(client, p.operator)
    response = post(client, f"{BASE}/{delegation_id}/decide", decision_form(), f"{BASE}/{delegation_id}",
                    files={"file": ("QĐ 123.pdf", PDF, "application/pdf")})
    assert response.status_code == 303, response.text[:3000]


def state(delegation_id):
    with db.connection_context():
        d = Delegation.get_by_id(delegation_id)
        return d.status, DelegationStep.select().where(DelegationStep.delegation_id == delegation_id).count()


def test_the_whole_lifecycle_through_the_screens(client, people):
    p = people
    delegation_id = applied(client, p)
    page = client.get(f"{BASE}/{delegation_id}").text
    assert "Gửi hồ sơ" in page and "Chờ xét" in page and "Xã Gio Linh" in page and "Xã Cam Lộ" in page
    assert client.get(f"{BASE}/").text.count(f"delegation-{delegation_id}") == 1

    # The operator sees it waiting: on the home page, in the menu and in the queue.
    log_in(client, p.operator)
    home = client.get("/").text
    assert "Có 1 hồ sơ đăng ký báo cáo chuyên ngành đang chờ xét." in home
    assert "Hồ sơ ủy quyền báo cáo chuyên ngành" in home  # the menu entry
    assert f"delegation-{delegation_id}" in client.get(f"{BASE}/queue").text
    response = post(client, f"{BASE}/{delegation_id}/return", {"reason": "Bổ sung danh sách xã"}, f"{BASE}/{delegation_id}")
    assert response.status_code == 303

    # The department learns of it on its home page and changes the application.
    log_in(client, p.applicant)
    assert "Hồ sơ được trả lại để bổ sung" in client.get("/").text
    change = client.get(f"{BASE}/{delegation_id}/change")
    assert change.status_code == 200 and "Bổ sung danh sách xã" in change.text
    response = post(client, f"{BASE}/{delegation_id}/change",
                    apply_form(p, scope_unit_ids=[], scope_kinds=["commune"], purpose="Tiến độ sản xuất hằng tháng"))
    assert response.status_code == 303, response.text[:3000]

    decided(client, p, delegation_id)
    page = client.get(f"{BASE}/{delegation_id}").text
    assert "123/QĐ-UBND" in page and "Phó Chủ tịch UBND tỉnh" in page and "01/12/2026" in page
    pdf = client.get(f"{BASE}/{delegation_id}/decision.pdf")
    assert pdf.status_code == 200 and pdf.content == PDF and pdf.headers["content-type"] == "application/pdf"

    for action, reason in (("suspend", "Chưa bố trí cán bộ"), ("resume", "Đã bố trí cán bộ"),
                           ("revoke", "Bộ đã triển khai hệ thống ngành")):
        response = post(client, f"{BASE}/{delegation_id}/{action}", {"reason": reason}, f"{BASE}/{delegation_id}")
        assert response.status_code == 303, (action, response.text[:3000])
    page = client.get(f"{BASE}/{delegation_id}").text
    assert "Đã thu hồi" in page and "Bộ đã triển khai hệ thống ngành" in page
    assert 'id="chuyen_nganh-actions"' not in page  # nothing left to do
    history = re.findall(r'data-action="(\w+)"', page)
    assert history == ["apply", "return", "change", "decide", "suspend", "resume", "revoke"]

    # A requested administrator still needs the view right at their unit to open the screens
    # (granting the department's administrators their rights is the next step of issue 15).
    log_in(client, p.deputy)
    assert client.get(f"{BASE}/{delegation_id}").status_code == 403


def test_an_overlapping_application_is_refused_naming_the_other(client, people):
    p = people
    first = applied(client, p, scope_unit_ids=[str(p.tree.communes[0].id)])
    decided(client, p, first)
    log_in(client, p.applicant)
    before = state(first)
    response = post(client, f"{BASE}/apply", apply_form(p, sector_name="Nông nghiệp (mới)", scope_unit_ids=[],
                                                         scope_kinds=["commune"]))
    assert response.status_code == 422
    assert "Đã có ủy quyền số 123/QĐ-UBND (Sở Nông nghiệp và Môi trường) cho lĩnh vực Nông nghiệp (nn) trùng đơn vị: Xã Gio Linh." in response.text
    assert 'value="Nông nghiệp (mới)"' in response.text  # what was typed stays
    with db.connection_context():
        assert Delegation.select().count() == 1
    assert state(first) == before


def test_a_scope_by_unit_group_through_the_screens(client, people):
    p = people
    gio_linh, cam_lo = p.tree.communes
    with db.connection_context():
        group = rg.write_group(None, "XA_NN", "Các xã Sở Nông nghiệp theo dõi", [gio_linh.id], allowed=None)
    log_in(client, p.applicant)
    form = client.get(f"{BASE}/apply").text
    assert f'name="scope_group_ids" value="{group.id}"' in form and "Các xã Sở Nông nghiệp theo dõi" in form

    # A group that is not one comes back refused, the groups chosen still ticked.
    response = post(client, f"{BASE}/apply",
                    apply_form(p, scope_unit_ids=[], scope_group_ids=[str(group.id), "999999"]))
    assert response.status_code == 422 and "Có nhóm đơn vị không tồn tại hoặc đã bị xóa." in response.text
    assert f'name="scope_group_ids" value="{group.id}" checked' in response.text

    delegation_id = applied(client, p, scope_unit_ids=[], scope_group_ids=[str(group.id)])
    page = client.get(f"{BASE}/{delegation_id}").text
    assert "Theo nhóm đơn vị: Các xã Sở Nông nghiệp theo dõi" in page
    assert "Hôm nay phạm vi gồm 1 đơn vị:" in page and "Xã Cam Lộ" not in page
    with db.connection_context():
        rg.write_group(group.id, "XA_NN", group.name, [gio_linh.id, cam_lo.id], allowed=None)
    page = client.get(f"{BASE}/{delegation_id}").text
    assert "Hôm nay phạm vi gồm 2 đơn vị:" in page and "Xã Cam Lộ" in page

    # Returned, the change form keeps the group ticked.
    log_in(client, p.operator)
    post(client, f"{BASE}/{delegation_id}/return", {"reason": "Bổ sung mục đích"}, f"{BASE}/{delegation_id}")
    log_in(client, p.applicant)
    change = client.get(f"{BASE}/{delegation_id}/change").text
    assert f'name="scope_group_ids" value="{group.id}" checked' in change

    # A group deleted since is named as such.
    with db.connection_context():
        rg.delete_group(group.id, allowed=None)
    page = client.get(f"{BASE}/{delegation_id}", headers={"Accept-Language": "en"}).text
    assert f"group #{group.id} (deleted)" in page


def test_bad_input_comes_back_with_what_was_typed(client, people):
    p = people
    log_in(client, p.applicant)
    response = post(client, f"{BASE}/apply", apply_form(p, sector="Nông Nghiệp!", scope_unit_ids=["999999"],
                                                         purpose=""))
    assert response.status_code == 422
    assert "Mã lĩnh vực gồm chữ thường" in response.text and "Có đơn vị không tồn tại" in response.text
    assert "Chưa nhập." in response.text and 'value="Nông Nghiệp!"' in response.text
    with db.connection_context():
        assert Delegation.select().count() == 0

    delegation_id = applied(client, p)
    log_in(client, p.operator)
    before = state(delegation_id)
    response = post(client, f"{BASE}/{delegation_id}/decide", decision_form(decision_date="2026-12-24", valid_to="2026-11-01"),
                    f"{BASE}/{delegation_id}", files={"file": ("qd.pdf", b"<html>not a pdf</html>", "application/pdf")})
    assert response.status_code == 422
    assert "Ngày quyết định không được sau hôm nay." in response.text
    assert "Ngày hết hiệu lực phải từ ngày bắt đầu hiệu lực trở đi." in response.text
    assert "Tệp không phải PDF." in response.text and 'value="123/QĐ-UBND"' in response.text
    response = post(client, f"{BASE}/{delegation_id}/return", {"reason": "  "}, f"{BASE}/{delegation_id}")
    assert response.status_code == 422 and "Chưa nhập." in response.text
    # A step that no longer fits the state (someone acted meanwhile) is a conflict.
    response = post(client, f"{BASE}/{delegation_id}/resume", {"reason": "Tiếp tục"}, f"{BASE}/{delegation_id}")
    assert response.status_code == 409 and "Hồ sơ đã thay đổi trạng thái" in response.text
    assert state(delegation_id) == before


def test_the_english_screens_read_in_english(client, people):
    p = people
    delegation_id = applied(client, p)
    page = client.get(f"{BASE}/{delegation_id}", headers={"Accept-Language": "en"})
    assert page.status_code == 200 and "Waiting for review" in page.text and "Applied" in page.text


# Every route for each kind of person: the status they get, and nothing changes when refused.
GETS = ("/", "/apply", "/queue", "/{id}", "/{id}/change", "/{id}/decision.pdf")
POSTS = ("/apply", "/{id}/change", "/{id}/decide", "/{id}/return", "/{id}/suspend", "/{id}/resume", "/{id}/revoke")
EXPECTED = {
    # person: GET statuses in GETS order, POST statuses in POSTS order
    "commune": ((403,) * 6, (403,) * 7),  # no right of the plugin at all
    "teacher": ((200, 200, 403, 404, 404, 404), (403, 404, 403, 403, 403, 403, 403)),  # another department
    "applicant": ((200, 200, 403, 200, 404, 200), (422, 409, 403, 403, 403, 403, 403)),
}


@pytest.mark.parametrize("person", sorted(EXPECTED))
def test_every_route_answers_each_person_and_refusals_change_nothing(client, people, person):
    p = people
    delegation_id = applied(client, p)
    decided(client, p, delegation_id)
    before = state(delegation_id)
    log_in(client, getattr(p, person))
    gets, posts = EXPECTED[person]
    for path, expected in zip(GETS, gets):
        url = BASE + path.replace("{id}", str(delegation_id))
        assert client.get(url, follow_redirects=False).status_code == expected, url
    token = csrf_from(client.get("/").text)
    for path, expected in zip(POSTS, posts):
        url = BASE + path.replace("{id}", str(delegation_id))
        data = {"csrf_token": token, "reason": "x", **apply_form(p), **decision_form()}
        files = {"file": ("qd.pdf", PDF, "application/pdf")} if path.endswith("decide") else None
        response = client.post(url, data=data, files=files, follow_redirects=False)
        assert response.status_code == expected, (url, response.status_code)
    assert state(delegation_id) == before
    with db.connection_context():
        assert Delegation.select().count() == 1


def test_anonymous_visitors_are_sent_to_the_login(client, people):
    delegation_id = applied(client, people)
    client.cookies.clear()
    for path in GETS:
        response = client.get(BASE + path.replace("{id}", str(delegation_id)), follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"].startswith("/login"), path


def test_the_operator_queue_filters(client, people):
    p = people
    first = applied(client, p, scope_unit_ids=[str(p.tree.communes[0].id)])
    second = applied(client, p, sector="gd", sector_name="Giáo dục")
    decided(client, p, first)
    queue = client.get(f"{BASE}/queue").text  # by default: what waits
    assert f"delegation-{second}" in queue and f"delegation-{first}" not in queue
    queue = client.get(f"{BASE}/queue", params={"status": "approved"}).text
    assert f"delegation-{first}" in queue and f"delegation-{second}" not in queue
    queue = client.get(f"{BASE}/queue", params={"status": "", "sector": "gd"}).text
    assert f"delegation-{second}" in queue and f"delegation-{first}" not in queue
    queue = client.get(f"{BASE}/queue", params={"status": "", "department": str(p.education.id)}).text
    assert "Không có hồ sơ nào phù hợp." in queue
