"""The feedback screens (issue 14 item 8, Điều 9.1c, 9.4): a commune's user reports a problem with a
screenshot from any page; a bad file is refused with a clear message and the typed text kept; the
operator's queue, assignment, reply and closing; the reporter told and reading the answer; nobody
else sees the item. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from starlette.testclient import TestClient

from core import clock
from core import feedback as fb
from core.audit import AuditEvent
from core.db import db
from core.feedback import Feedback
from tests.conftest import csrf_from

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 64
TYPED = {"kind": "problem", "title": "Không nộp được báo cáo tháng 3",
         "description": "Bấm “Nộp báo cáo” thì trang báo lỗi máy chủ.", "page": "/reports/7"}


@pytest.fixture
def settings(make_settings):
    # A 1 MB attachment limit, so "too big" is a small file here.
    return make_settings(attachment_max_mb=1)


@pytest.fixture
def people(app, unit_tree, make_user):
    reporter = make_user("canbo_giolinh", unit=unit_tree.communes[0], roles=("reporter",))
    neighbour = make_user("canbo_camlo", unit=unit_tree.communes[1], roles=("reporter",))
    operator = make_user("quantri_he_thong", unit=unit_tree.province, is_admin=True)
    return type("People", (), {"reporter": reporter, "neighbour": neighbour, "operator": operator})


def log_in(client, person):
    user, password = person
    page = client.get("/login")
    response = client.post("/login", data={"username": user.username, "password": password,
                                           "csrf_token": csrf_from(page.text)}, follow_redirects=False)
    assert response.status_code == 303, response.text
    return user


def send(client, data=None, files=None):
    token = csrf_from(client.get("/feedback").text)
    return client.post("/feedback", data={**(data if data is not None else TYPED), "csrf_token": token},
                       files=files if files is not None else {"screenshot": ("man-hinh.png", PNG, "image/png")},
                       follow_redirects=False)


def post(client, path, data):
    token = csrf_from(client.get("/feedback").text)
    return client.post(path, data={**data, "csrf_token": token}, follow_redirects=False)


def field_value(html: str, name: str) -> str:
    match = re.search(rf'<input[^>]*name="{name}"[^>]*value="([^"]*)"', html)
    assert match, f"no input {name}"
    return match.group(1)


def test_the_link_is_in_every_menu_and_the_page_comes_prefilled(client, people):
    log_in(client, people.reporter)
    assert 'href="/feedback"' in client.get("/").text and 'href="/admin/feedback"' not in client.get("/").text
    assert field_value(client.get("/feedback", headers={"Referer": "http://testserver/reports/7?tab=a"}).text,
                       "page") == "/reports/7?tab=a"
    # ``from`` first; another site's address, and the feedback pages themselves, are never kept.
    assert field_value(client.get("/feedback?from=/units", headers={"Referer": "http://testserver/reports/7"}).text,
                       "page") == "/units"
    assert field_value(client.get("/feedback", headers={"Referer": "https://evil.example/reports/7"}).text,
                       "page") == ""
    assert field_value(client.get("/feedback?from=//evil.example/x").text, "page") == ""
    assert field_value(client.get("/feedback", headers={"Referer": "http://testserver/feedback/3"}).text,
                       "page") == ""
    malformed = client.get("/feedback?from=http://[::1", headers={"Referer": "http://[bad"})
    assert malformed.status_code == 200 and field_value(malformed.text, "page") == ""


def test_a_commune_user_files_a_problem_with_a_screenshot(client, people, unit_tree):
    log_in(client, people.reporter)
    response = send(client)
    assert response.status_code == 303
    location = response.headers["location"]
    item_id = int(re.fullmatch(r"/feedback/(\d+)\?done=created", location).group(1))
    page = client.get(location).text
    assert "Đã gửi phản ánh." in page and TYPED["title"] in page and 'href="/reports/7"' in page
    assert f'src="/feedback/{item_id}/screenshot"' in page and 'data-status="new"' in page
    image = client.get(f"/feedback/{item_id}/screenshot")
    assert image.status_code == 200 and image.content == PNG
    assert image.headers["content-type"] == "image/png" and image.headers["x-content-type-options"] == "nosniff"
    mine = client.get("/feedback").text
    assert f'id="feedback-{item_id}"' in mine and "Mới" in mine
    with db.connection_context():
        item = Feedback.get_by_id(item_id)
        assert (item.unit_id, item.page, item.screenshot_name) == (unit_tree.communes[0].id, "/reports/7", "man-hinh.png")
        # The usage report counts it, for the commune and this month.
        today = clock.today()
        counts = fb.counts_by_unit_month(today.replace(day=1), today)
        assert counts[(unit_tree.communes[0].id, today.replace(day=1))].problems == 1


@pytest.mark.parametrize("name, data, message", [
    ("man-hinh.png", b"<html>khong phai anh</html>", "không phải là ảnh .png thật"),
    ("man-hinh.png", PNG + b"\x00" * (1024 * 1024), "Ảnh lớn quá 1 MB"),
    ("bao-cao.pdf", b"%PDF-1.7", "Chỉ nhận ảnh .jpeg, .jpg, .png"),
])
def test_a_bad_file_is_refused_with_a_clear_message_and_the_typed_text_comes_back(client, people, name, data,
                                                                                   message):
    log_in(client, people.reporter)
    response = send(client, files={"screenshot": (name, data, "image/png")})
    assert response.status_code == 422
    html = response.text
    assert message in html and "Ảnh chụp màn hình cần chọn lại." in html
    assert field_value(html, "title") == TYPED["title"] and field_value(html, "page") == TYPED["page"]
    assert "Bấm “Nộp báo cáo” thì trang báo lỗi máy chủ.</textarea>" in html
    assert re.search(r'value="problem"\s+checked', html)
    with db.connection_context():
        assert Feedback.select().count() == 0


def test_missing_text_and_a_foreign_page_are_named_at_their_fields(client, people):
    log_in(client, people.reporter)
    response = send(client, data={**TYPED, "title": "", "page": "https://evil.example/x"}, files={})
    assert response.status_code == 422
    assert "Hãy nhập tiêu đề." in response.text and "Trang liên quan phải là một trang trong hệ thống này" in response.text
    assert field_value(response.text, "page") == "https://evil.example/x"
    # A full address of this very site is kept as its path.
    ok = send(client, data={**TYPED, "page": "http://testserver/reports/9?tab=b"}, files={})
    assert ok.status_code == 303
    with db.connection_context():
        assert Feedback.get().page == "/reports/9?tab=b"


def test_the_operator_assigns_replies_and_closes_and_the_reporter_sees_it(app, client, people):
    log_in(client, people.reporter)
    item_id = int(send(client).headers["location"].split("/")[2].split("?")[0])

    with TestClient(app) as desk:
        log_in(desk, people.operator)
        assert 'href="/admin/feedback"' in desk.get("/").text  # the operator's menu
        queue = desk.get("/admin/feedback").text
        assert f'id="feedback-{item_id}"' in queue and "Xã Gio Linh" in queue
        assert f'id="feedback-{item_id}"' not in desk.get("/admin/feedback?status=done").text
        assert f'id="feedback-{item_id}"' in desk.get("/admin/feedback?kind=problem&assignee=none").text
        operator_id = people.operator[0].id
        assert post(desk, f"/admin/feedback/{item_id}/assign", {"assignee": str(operator_id)}).status_code == 303
        assert post(desk, f"/feedback/{item_id}/reply", {"text": "Đã sửa lỗi, mời anh nộp lại.", "status": "done"}) \
            .status_code == 303
        page = desk.get(f"/feedback/{item_id}").text
        assert 'data-status="done"' in page and "Người dùng quantri_he_thong" in page
        assert f'id="feedback-{item_id}"' in desk.get("/admin/feedback?status=done&assignee=me").text

    mine = client.get("/feedback").text
    assert "Có 2 cập nhật mới về phản ánh của bạn" in mine
    assert "Người dùng quantri_he_thong đã trả lời phản ánh “Không nộp được báo cáo tháng 3” và chuyển sang “Đã xong”." \
        in mine
    page = client.get(f"/feedback/{item_id}").text
    assert "Đã sửa lỗi, mời anh nộp lại." in page and "Đã xong" in page
    assert 'id="feedback-reply"' not in page and "Phản ánh này đã đóng." in page  # closed: no more replies
    assert "cập nhật mới" not in client.get("/feedback").text  # opening the item read the news
    refused = post(client, f"/feedback/{item_id}/reply", {"text": "Vẫn lỗi"})
    assert refused.status_code == 409 and "không trả lời thêm được" in refused.text and "Vẫn lỗi</textarea>" in refused.text
    with db.connection_context():
        actions = [e.action for e in AuditEvent.select().where(AuditEvent.action.startswith("feedback."))
                   .order_by(AuditEvent.id)]
    assert actions == ["feedback.created", "feedback.assigned", "feedback.status_changed", "feedback.replied",
                       "feedback.status_changed"]


def test_the_reporter_answers_back_while_the_item_is_open(app, client, people):
    log_in(client, people.reporter)
    item_id = int(send(client, files={}).headers["location"].split("/")[2].split("?")[0])
    empty = post(client, f"/feedback/{item_id}/reply", {"text": "  "})
    assert empty.status_code == 422 and "Hãy viết nội dung trả lời." in empty.text
    assert 'name="status"' not in empty.text  # the status is the operator's to set
    assert post(client, f"/feedback/{item_id}/reply", {"text": "Bổ sung: lỗi xảy ra lúc 8 giờ."}).status_code == 303
    with TestClient(app) as desk:
        log_in(desk, people.operator)
        assert "Chờ trả lời" in desk.get("/admin/feedback").text
        assert "Bổ sung: lỗi xảy ra lúc 8 giờ." in desk.get(f"/feedback/{item_id}").text
        bad = post(desk, f"/admin/feedback/{item_id}/assign", {"assignee": str(people.reporter[0].id)})
        assert bad.status_code == 422 and "phải là một quản trị hệ thống đang hoạt động" in bad.text


def test_another_ordinary_user_cannot_see_the_item(app, client, people):
    log_in(client, people.reporter)
    item_id = int(send(client).headers["location"].split("/")[2].split("?")[0])
    with TestClient(app) as other:
        log_in(other, people.neighbour)
        assert other.get(f"/feedback/{item_id}").status_code == 404
        assert other.get(f"/feedback/{item_id}/screenshot").status_code == 404
        assert post(other, f"/feedback/{item_id}/reply", {"text": "Xem trộm"}).status_code == 404
        assert other.get("/admin/feedback").status_code == 403
        assert post(other, f"/admin/feedback/{item_id}/assign", {"assignee": ""}).status_code == 403
        assert f'id="feedback-{item_id}"' not in other.get("/feedback").text
    with db.connection_context():
        assert fb.thread(item_id) == []


def test_times_are_shown_in_the_instances_time_zone(client, people, frozen_clock):
    frozen_clock(dt.datetime(2026, 3, 2, 1, 30))  # UTC: 08:30 in Hà Nội
    log_in(client, people.reporter)
    send(client, files={})
    assert "08:30 02/03/2026" in client.get("/feedback").text


def test_the_work_list_tells_the_operator_and_the_reporter_of_each_others_steps(app, client, people):
    log_in(client, people.reporter)
    item_id = int(send(client, files={}).headers["location"].split("/")[2].split("?")[0])
    assert 'id="work-feedback"' not in client.get("/").text  # nothing new for the reporter yet

    with TestClient(app) as desk:
        log_in(desk, people.operator)
        home = desk.get("/").text
        assert "1 phản ánh, góp ý mới chưa có người xử lý" in home
        assert 'href="/admin/feedback?status=new&amp;assignee=none"' in home
        assert post(desk, f"/feedback/{item_id}/reply", {"text": "Anh gửi thêm ảnh màn hình nhé."}).status_code == 303

    home = client.get("/").text
    assert 'id="work-feedback"' in home and f'href="/feedback/{item_id}"' in home
    assert "Người dùng quantri_he_thong đã trả lời phản ánh “Không nộp được báo cáo tháng 3”." in home
    client.get(f"/feedback/{item_id}")  # read
    assert 'id="work-feedback"' not in client.get("/").text
    # The reporter answers: nobody has taken the item, so every operator is told.
    assert post(client, f"/feedback/{item_id}/reply", {"text": "Ảnh đã gửi kèm."}).status_code == 303
    with TestClient(app) as desk:
        log_in(desk, people.operator)
        home = desk.get("/").text
        assert "Người dùng canbo_giolinh đã trả lời phản ánh “Không nộp được báo cáo tháng 3”." in home
        desk.get(f"/feedback/{item_id}")
        assert "đã trả lời phản ánh" not in desk.get("/").text  # opening the item read it
