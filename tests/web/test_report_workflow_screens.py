"""The workflow card of the report page (issue 6, "Workflow"): the reporter submits (refused while a
blocker or an empty required section remains; a double click makes one version), the receiver
accepts, returns or reopens with a required reason, the history lists versions and events, and
nobody acts beyond their rights. Plain forms: every step is a POST answered by a 303 or a 422.
Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import re

import pytest

from tests.web.test_report_entry import log_in


@pytest.fixture
def app(make_app, make_settings, tmp_path):
    return make_app(make_settings(files_dir=str(tmp_path / "files")), strict=True)


@pytest.fixture
def world(client):
    from core.db import db
    from tests.fixtures.forms import form_world

    with db.connection_context():
        return form_world()


def fill(world, banle="120", dulich="15", ketqua="Tăng trưởng khá."):
    """The reporter's figures and the required section, saved as the grid would."""
    from core.reporting import data as rd
    from core.db import db
    from tests.fixtures.forms import access_of

    with db.connection_context():
        rd.save(access_of(world.users["reporter"]), world.report.id,
                {("banle", "cur"): (rd.MISSING, banle), ("dulich", "cur"): (rd.MISSING, dulich)},
                {"ketqua": (rd.MISSING, ketqua)} if ketqua else {})


def report_now(world):
    from core.db import db
    from core.reporting.opening import Report

    with db.connection_context():
        return Report.get_by_id(world.report.id)


def versions(world):
    from core.reporting import workflow as wf
    from core.db import db

    with db.connection_context():
        return wf.versions(world.report.id)


def events(world):
    from core.reporting import workflow as wf
    from core.db import db

    with db.connection_context():
        return [(e.action, e.reason) for e in wf.events(world.report.id)]


def shown_revision(page_text: str) -> str:
    match = re.search(r'name="revision" value="(\d+)"', page_text)
    assert match, "no submit form on the page"
    return match.group(1)


def submit(client, world, token):
    page = client.get(f"/reports/{world.report.id}")
    return client.post(f"/reports/{world.report.id}/submit",
                       data={"csrf_token": token, "revision": shown_revision(page.text)}, follow_redirects=False)


def test_the_reporter_submits_and_sees_when(client, world):
    fill(world)
    token = log_in(client, world.users["reporter"])
    page = client.get(f"/reports/{world.report.id}")
    assert "Nộp báo cáo" in page.text and 'action="/reports/%d/submit"' % world.report.id in page.text
    assert "data-confirm=" in page.text and "Hạn nộp:" in page.text
    answer = submit(client, world, token)
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/reports/{world.report.id}?done=submitted#workflow"
    page = client.get(answer.headers["location"])
    assert "Đã nộp báo cáo." in page.text
    assert re.search(r"Đã nộp lúc \d\d:\d\d \d\d/\d\d/\d{4}", page.text)
    assert report_now(world).status == "submitted"
    found = versions(world)
    assert [v.number for v in found] == [1]
    # The history shows the version with its short hash, the full one in a title.
    assert f'title="{found[0].sha256}">{found[0].sha256[:12]}<' in page.text
    assert ("Trễ hạn" if found[0].late else "Đúng hạn") in page.text
    # Submitted: no second submit button, the grid is read-only, the list shows the badge.
    assert 'name="revision"' not in page.text and 'name="cell.banle.cur"' not in page.text
    assert ("Trễ hạn" if found[0].late else "Đúng hạn") in client.get("/reports").text


def test_a_submission_with_a_blocker_is_refused_and_lists_why(client, world):
    fill(world, dulich="-5", ketqua="")
    token = log_in(client, world.users["reporter"])
    revision_before = report_now(world).revision
    answer = submit(client, world, token)
    assert answer.status_code == 422
    assert "Chưa nộp được: còn 2 lỗi" in answer.text
    assert 'data-cell="dulich.cur">Doanh thu du lịch: số liệu không được âm.' in answer.text
    assert 'data-cell="section:ketqua">Mục “Kết quả thực hiện”' in answer.text
    now = report_now(world)
    assert now.status == "draft" and now.revision == revision_before
    assert versions(world) == [] and events(world) == []


def test_a_double_click_makes_one_version(client, world):
    fill(world)
    token = log_in(client, world.users["reporter"])
    revision = shown_revision(client.get(f"/reports/{world.report.id}").text)
    for _ in range(2):
        answer = client.post(f"/reports/{world.report.id}/submit", data={"csrf_token": token, "revision": revision},
                             follow_redirects=False)
        assert answer.status_code == 303
    assert [v.number for v in versions(world)] == [1]
    assert events(world) == [("submit", "")]


def test_a_stale_revision_is_refused(client, world):
    fill(world)
    token = log_in(client, world.users["reporter"])
    revision = int(shown_revision(client.get(f"/reports/{world.report.id}").text))
    answer = client.post(f"/reports/{world.report.id}/submit",
                         data={"csrf_token": token, "revision": str(revision - 1)}, follow_redirects=False)
    assert answer.status_code == 422 and "Báo cáo vừa được lưu hoặc thay đổi" in answer.text
    assert report_now(world).status == "draft" and versions(world) == []


def test_return_needs_a_reason_then_the_unit_resubmits_version_2(client, world):
    fill(world)
    token = log_in(client, world.users["reporter"])
    assert submit(client, world, token).status_code == 303

    token = log_in(client, world.users["issuer"])
    page = client.get(f"/reports/{world.report.id}")
    assert "Chấp nhận" in page.text and "Trả lại" in page.text and 'name="reason"' in page.text
    answer = client.post(f"/reports/{world.report.id}/return", data={"csrf_token": token, "reason": "   "},
                         follow_redirects=False)
    assert answer.status_code == 422
    assert 'id="workflow-return-error"' in answer.text and "Ghi rõ lý do" in answer.text
    assert report_now(world).status == "submitted" and events(world) == [("submit", "")]

    answer = client.post(f"/reports/{world.report.id}/return",
                         data={"csrf_token": token, "reason": "Số liệu du lịch chưa khớp"}, follow_redirects=False)
    assert answer.status_code == 303 and "done=returned" in answer.headers["location"]
    assert report_now(world).status == "returned"
    page = client.get(answer.headers["location"])
    assert "Đã trả lại báo cáo cho đơn vị." in page.text and "Số liệu du lịch chưa khớp" in page.text

    token = log_in(client, world.users["reporter"])
    page = client.get(f"/reports/{world.report.id}")
    assert "Lý do: Số liệu du lịch chưa khớp" in page.text
    assert 'name="cell.banle.cur"' in page.text  # editable again
    fill(world, dulich="16")
    assert submit(client, world, token).status_code == 303
    assert [v.number for v in versions(world)] == [2, 1]
    assert [a for a, _ in events(world)] == ["submit", "return", "submit"]
    page = client.get(f"/reports/{world.report.id}")
    assert "Nộp báo cáo (lần 2)" in page.text and "Nộp báo cáo (lần 1)" in page.text


def test_accept_then_reopen_with_a_reason(client, world):
    fill(world)
    token = log_in(client, world.users["reporter"])
    assert submit(client, world, token).status_code == 303

    token = log_in(client, world.users["issuer"])
    answer = client.post(f"/reports/{world.report.id}/accept", data={"csrf_token": token}, follow_redirects=False)
    assert answer.status_code == 303 and "done=accepted" in answer.headers["location"]
    assert report_now(world).status == "accepted"
    page = client.get(answer.headers["location"])
    assert "Đã chấp nhận báo cáo." in page.text and "Mở lại" in page.text
    assert 'action="/reports/%d/accept"' % world.report.id not in page.text
    # Accepting twice: refused, nothing changes.
    again = client.post(f"/reports/{world.report.id}/accept", data={"csrf_token": token}, follow_redirects=False)
    assert again.status_code == 422 and report_now(world).status == "accepted"

    answer = client.post(f"/reports/{world.report.id}/reopen", data={"csrf_token": token, "reason": ""},
                         follow_redirects=False)
    assert answer.status_code == 422 and 'id="workflow-reopen-error"' in answer.text
    assert report_now(world).status == "accepted"
    answer = client.post(f"/reports/{world.report.id}/reopen",
                         data={"csrf_token": token, "reason": "Phát hiện sai sót"}, follow_redirects=False)
    assert answer.status_code == 303 and "done=reopened" in answer.headers["location"]
    assert report_now(world).status == "returned"
    assert events(world) == [("submit", ""), ("accept", ""), ("reopen", "Phát hiện sai sót")]


def test_rights(client, world):
    fill(world)
    token = log_in(client, world.users["reporter"])
    page = client.get(f"/reports/{world.report.id}")
    assert 'action="/reports/%d/accept"' % world.report.id not in page.text
    assert submit(client, world, token).status_code == 303
    # The reporter cannot accept or return their own report.
    answer = client.post(f"/reports/{world.report.id}/accept", data={"csrf_token": token}, follow_redirects=False)
    assert answer.status_code == 403
    answer = client.post(f"/reports/{world.report.id}/return", data={"csrf_token": token, "reason": "x"},
                         follow_redirects=False)
    assert answer.status_code == 403
    # Another commune does not even see it.
    token = log_in(client, world.users["other"])
    assert client.get(f"/reports/{world.report.id}").status_code == 404
    for action, data in (("submit", {"revision": "0"}), ("accept", {}), ("return", {"reason": "x"}),
                         ("reopen", {"reason": "x"})):
        answer = client.post(f"/reports/{world.report.id}/{action}", data={"csrf_token": token, **data},
                             follow_redirects=False)
        assert answer.status_code == 404, action
    # The receiver cannot submit for the unit.
    token = log_in(client, world.users["issuer"])
    answer = client.post(f"/reports/{world.report.id}/submit", data={"csrf_token": token, "revision": "0"},
                         follow_redirects=False)
    assert answer.status_code == 403
    assert report_now(world).status == "submitted" and len(versions(world)) == 1
