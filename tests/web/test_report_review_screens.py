"""The receiver's review page and the version differences page (issue 6): the figures as sent,
the changes since the previous version, accept, and return with a reason and comments on cells
(all or nothing, 422 with the form as typed when refused); the unit then finds the comments on
its cells. The differences page shows "Cell / Before / After" and the sections with <del>/<ins>,
for whoever may read the report and nobody else. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from tests.web.test_report_entry import log_in
from tests.web.test_report_workflow_screens import report_now


@pytest.fixture
def world(client):
    from core.db import db
    from tests.fixtures.forms import form_world

    with db.connection_context():
        return form_world()


def send(world, dulich="15", ketqua="Tăng trưởng khá."):
    from core.reporting import data as rd
    from core.reporting import workflow as wf
    from core.db import db
    from tests.fixtures.forms import access_of

    with db.connection_context():
        access = access_of(world.users["reporter"])
        saved = rd.save(access, world.report.id,
                        {("banle", "cur"): (rd.MISSING, "1234,5"), ("dulich", "cur"): (rd.MISSING, dulich)},
                        {"ketqua": (rd.MISSING, ketqua)})
        wf.submit(access, world.report.id, revision=saved.revision)


def give_back(world):
    from core.reporting import workflow as wf
    from core.db import db
    from tests.fixtures.forms import access_of

    with db.connection_context():
        wf.return_report(access_of(world.users["issuer"]), world.report.id, "Sửa số du lịch")


def stored_comments(world):
    from core.reporting import data as rd
    from core.db import db

    with db.connection_context():
        return sorted((c.row, c.column, c.text) for c in
                      rd.ReportComment.select().where(rd.ReportComment.report == world.report.id))


def test_the_receiver_reviews_the_figures_and_the_changes(client, world):
    send(world)
    give_back(world)
    send(world, dulich="16,5", ketqua="Tăng trưởng khá nhờ du lịch.")
    log_in(client, world.users["issuer"])
    page = client.get(f"/reports/{world.report.id}/review")
    assert page.status_code == 200
    assert "Số liệu đã nộp (phiên bản 2" in page.text
    assert "Không có chữ ký số" in page.text  # the signature line, as on the report page (sent unsigned here)
    assert 'data-cell="banle.cur">1.234,5<' in page.text  # the Vietnamese way
    assert "Thay đổi so với phiên bản 1" in page.text
    assert "<del>15,0</del>" in page.text and "<ins>16,5</ins>" in page.text  # as the grid shows it
    assert "<ins> nhờ du lịch</ins>" in page.text
    assert 'action="/reports/%d/accept"' % world.report.id in page.text
    assert 'action="/reports/%d/review/return"' % world.report.id in page.text
    assert '<option value="dulich.cur">2. Doanh thu du lịch — Thực hiện tháng 3/2026</option>' in page.text
    assert page.text.count('name="comment"') == 3


def test_return_with_two_cell_comments_and_the_unit_sees_them(client, world):
    send(world)
    token = log_in(client, world.users["issuer"])
    answer = client.post(f"/reports/{world.report.id}/review/return", follow_redirects=False, data={
        "csrf_token": token, "reason": "Kiểm tra lại số liệu", "action": "return",
        "cell": ["banle.cur", "dulich.cur", ""], "comment": ["Cao bất thường", "Thiếu khách lẻ", ""]})
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/reports/{world.report.id}?done=returned#workflow"
    assert report_now(world).status == "returned"
    assert stored_comments(world) == [("banle", "cur", "Cao bất thường"), ("dulich", "cur", "Thiếu khách lẻ")]
    log_in(client, world.users["reporter"])
    page = client.get(f"/reports/{world.report.id}")
    assert '<span class="note-count" id="n-banle-cur">1</span>' in page.text
    assert "Kiểm tra lại số liệu" in page.text
    panel = client.get(f"/reports/{world.report.id}/comments?cell=dulich.cur")
    assert "Thiếu khách lẻ" in panel.text
    # Sent again, the receiver sees on the review page which cells carry comments.
    send(world, dulich="16")
    log_in(client, world.users["issuer"])
    page = client.get(f"/reports/{world.report.id}/review")
    assert f'href="/reports/{world.report.id}/comments?cell=banle.cur">(1 ý kiến)</a>' in page.text


def test_a_return_without_a_reason_saves_nothing_and_keeps_what_was_typed(client, world):
    send(world)
    token = log_in(client, world.users["issuer"])
    answer = client.post(f"/reports/{world.report.id}/review/return", data={
        "csrf_token": token, "reason": " ", "action": "return",
        "cell": ["banle.cur", "", ""], "comment": ["Cao bất thường", "Ô nào?", ""]})
    assert answer.status_code == 422
    assert "Ghi rõ lý do để đơn vị biết cần sửa gì." in answer.text
    assert "Chọn ô số liệu cho ý kiến này." in answer.text  # the comment with no cell
    assert "Cao bất thường</textarea>" in answer.text
    assert '<option value="banle.cur" selected>' in answer.text
    assert stored_comments(world) == [] and report_now(world).status == "submitted"


def test_more_comment_lines_save_nothing(client, world):
    send(world)
    token = log_in(client, world.users["issuer"])
    answer = client.post(f"/reports/{world.report.id}/review/return", data={
        "csrf_token": token, "reason": "Lý do", "action": "more",
        "cell": ["banle.cur", "", ""], "comment": ["Một", "", ""]})
    assert answer.status_code == 200 and answer.text.count('name="comment"') == 6
    assert "Một</textarea>" in answer.text and ">Lý do</textarea>" in answer.text
    assert stored_comments(world) == [] and report_now(world).status == "submitted"


def test_who_may_open_the_review_page(client, world):
    send(world)
    log_in(client, world.users["reporter"])  # reads the report, does not receive it
    assert client.get(f"/reports/{world.report.id}/review").status_code == 403
    log_in(client, world.users["other"])  # another commune: the report does not exist for it
    assert client.get(f"/reports/{world.report.id}/review").status_code == 404


def test_the_differences_page_for_readers_only(client, world):
    send(world)
    give_back(world)
    send(world, dulich="16,5", ketqua="Tăng trưởng khá nhờ du lịch.")
    log_in(client, world.users["reporter"])
    page = client.get(f"/reports/{world.report.id}/versions/2/diff")
    assert page.status_code == 200
    assert "So sánh phiên bản 2 với phiên bản 1" in page.text
    assert ">Ô</th>" in page.text and ">Trước</th>" in page.text and ">Sau</th>" in page.text
    assert "<del>15,0</del>" in page.text and "<ins>16,5</ins>" in page.text  # as the grid shows it
    assert "Tệp đính kèm không thay đổi." in page.text
    same = client.get(f"/reports/{world.report.id}/versions/1/diff?against=2")
    assert same.status_code == 200 and "<del>16,5</del>" in same.text
    first = client.get(f"/reports/{world.report.id}/versions/1/diff")
    assert first.status_code == 200 and "Đây là phiên bản đầu tiên" in first.text
    assert client.get(f"/reports/{world.report.id}/versions/3/diff").status_code == 404
    assert client.get(f"/reports/{world.report.id}/versions/2/diff?against=9").status_code == 404
    log_in(client, world.users["other"])
    assert client.get(f"/reports/{world.report.id}/versions/2/diff").status_code == 404


@pytest.mark.parametrize("lang, review, diff", [("vi", "Xem xét báo cáo", "Trước"), ("en", "Review the report", "Before")])
def test_the_pages_read_in_both_languages(client, world, lang, review, diff):
    send(world)
    give_back(world)
    send(world, dulich="16,5")
    log_in(client, world.users["issuer"])
    headers = {"Accept-Language": lang}
    page = client.get(f"/reports/{world.report.id}/review", headers=headers)
    assert page.status_code == 200 and f"<h1>{review}</h1>" in page.text and "review." not in page.text
    assert ("<ins>16,5</ins>" if lang == "vi" else "<ins>16.5</ins>") in page.text
    other = client.get(f"/reports/{world.report.id}/versions/2/diff", headers=headers)
    assert other.status_code == 200 and f">{diff}</th>" in other.text and "review." not in other.text
