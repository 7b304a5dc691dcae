"""The notifications page and the bell (issue 6): a submission made on the report page shows in the
receiver's notifications, newest first and unread until opened; the bell counts what is unread;
with a mail server set, the e-mail is in the receiver's mailbox as soon as the submitting request
has answered. Runs on SQLite and PostgreSQL, against a real SMTP server on 127.0.0.1."""

from __future__ import annotations

import re

import pytest

from tests.conftest import HX
from tests.core.test_notifications import SMTPServer
from tests.web.test_report_entry import log_in
from tests.web.test_report_workflow_screens import fill, submit


@pytest.fixture
def smtp():
    with SMTPServer() as server:
        yield server


@pytest.fixture
def app(make_app, make_settings, smtp):
    return make_app(make_settings(smtp_host="127.0.0.1", smtp_port=smtp.port, smtp_from="baocao@quangtri.gov.vn",
                                  public_url="https://baocao.quangtri.gov.vn"), strict=True)


@pytest.fixture
def world(client):
    from core.db import db
    from tests.fixtures.forms import form_world

    with db.connection_context():
        return form_world()


def bell_count(client) -> int:
    fragment = client.get("/notifications/bell", headers=HX)
    assert fragment.status_code == 200 and 'id="notify-bell"' in fragment.text and "<html" not in fragment.text
    match = re.search(r'data-unread="(\d+)"', fragment.text)
    return int(match.group(1)) if match else 0


def set_email(client, token, address):
    return client.post("/notifications/email", data={"csrf_token": token, "email": address}, follow_redirects=False)


def notification_ids(page_text: str) -> list[int]:
    return [int(i) for i in re.findall(r'<tr id="notify-(\d+)"', page_text)]


def test_a_submission_reaches_the_receiver_in_the_app_and_by_email(client, world, smtp):
    token = log_in(client, world.users["issuer"])
    assert set_email(client, token, "issuer@quangtri.gov.vn").status_code == 303
    assert bell_count(client) == 0
    assert "Chưa có thông báo nào." in client.get("/notifications").text

    fill(world)
    token = log_in(client, world.users["reporter"])
    assert submit(client, world, token).status_code == 303
    # Delivered right after the submitting request, not a minute later by the worker.
    [mail] = smtp.inbox.messages
    assert mail["to"] == ["issuer@quangtri.gov.vn"]
    assert mail["subject"].startswith("Xã Ái Tử đã gửi báo cáo ")
    assert f"https://baocao.quangtri.gov.vn/reports/{world.report.id}" in mail["body"]
    assert bell_count(client) == 0  # the reporter is not told of their own submission

    token = log_in(client, world.users["issuer"])
    home = client.get("/")
    assert 'hx-get="/notifications/bell"' in home.text  # the header loads the bell on every page
    assert bell_count(client) == 1
    page = client.get("/notifications")
    assert page.status_code == 200
    assert "Xã Ái Tử đã gửi báo cáo" in page.text and "Báo cáo tình hình kinh tế - xã hội hằng tháng" in page.text
    [nid] = notification_ids(page.text)
    assert f'<tr id="notify-{nid}" class="row-current notify-unread">' in page.text
    opened = client.post(f"/notifications/{nid}/open", data={"csrf_token": token}, follow_redirects=False)
    assert opened.status_code == 303 and opened.headers["location"] == f"/reports/{world.report.id}"
    assert bell_count(client) == 0
    assert f'<tr id="notify-{nid}" class="notify-read">' in client.get("/notifications").text


def test_a_return_shows_with_its_reason_in_the_readers_language(client, world):
    fill(world)
    submit(client, world, log_in(client, world.users["reporter"]))
    token = log_in(client, world.users["issuer"])
    client.post(f"/reports/{world.report.id}/return", data={"csrf_token": token, "reason": "Thiếu số liệu du lịch"})
    token = log_in(client, world.users["reporter"])
    page = client.get("/notifications").text
    assert "Tỉnh Quảng Trị đã trả lại báo cáo" in page and "Lý do: Thiếu số liệu du lịch" in page
    client.post("/lang", data={"csrf_token": token, "lang": "en", "next": "/notifications"})
    english = client.get("/notifications").text
    assert "Tỉnh Quảng Trị returned the report" in english and "Reason: Thiếu số liệu du lịch" in english


def test_mark_one_and_all_read(client, world):
    fill(world)
    submit(client, world, log_in(client, world.users["reporter"]))
    token = log_in(client, world.users["issuer"])
    client.post(f"/reports/{world.report.id}/return", data={"csrf_token": token, "reason": "Thiếu số liệu"})
    fill(world, dulich="16")
    submit(client, world, log_in(client, world.users["reporter"]))
    token = log_in(client, world.users["issuer"])
    page = client.get("/notifications").text
    newest, oldest = notification_ids(page)
    assert newest > oldest and "(lần nộp thứ 2)" in page  # newest first
    assert bell_count(client) == 2
    partial = client.post(f"/notifications/{oldest}/read", data={"csrf_token": token}, headers=HX)
    assert partial.status_code == 200 and "<html" not in partial.text
    assert "Đã đánh dấu thông báo là đã đọc." in partial.text
    assert f'<tr id="notify-{oldest}" class="notify-read">' in partial.text and bell_count(client) == 1
    done = client.post("/notifications/read-all", data={"csrf_token": token}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/notifications?done=all_read"
    assert bell_count(client) == 0
    assert "Đã đánh dấu tất cả thông báo là đã đọc." in client.get(done.headers["location"]).text


def test_nobody_opens_another_persons_notification(client, world):
    fill(world)
    submit(client, world, log_in(client, world.users["reporter"]))
    token = log_in(client, world.users["issuer"])
    [nid] = notification_ids(client.get("/notifications").text)
    token = log_in(client, world.users["viewer"])
    assert client.post(f"/notifications/{nid}/open", data={"csrf_token": token},
                       follow_redirects=False).status_code == 404
    assert client.post(f"/notifications/{nid}/read", data={"csrf_token": token},
                       follow_redirects=False).status_code == 404


def test_a_wrong_email_address_is_refused_at_its_field(client, world):
    token = log_in(client, world.users["reporter"])
    refused = set_email(client, token, "ai tu@")
    assert refused.status_code == 422
    assert "Địa chỉ thư điện tử không đúng dạng" in refused.text and 'aria-invalid="true"' in refused.text
    assert 'value="ai tu@"' in refused.text  # what was typed stays to be corrected
    saved = client.post("/notifications/email", data={"csrf_token": token, "email": "aitu@quangtri.gov.vn"},
                        headers=HX)
    assert saved.status_code == 200 and "Đã lưu địa chỉ thư điện tử nhận thông báo." in saved.text
    assert 'value="aitu@quangtri.gov.vn"' in client.get("/notifications").text


def test_without_a_login_there_is_no_bell_and_no_page(client):
    assert client.get("/notifications/bell", headers=HX).status_code == 204
    page = client.get("/notifications", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"].startswith("/login")


def test_a_mail_server_that_is_down_does_not_break_the_submission(make_app, make_settings, world_free_port):
    from starlette.testclient import TestClient

    from core.db import db
    from core.outbox import OutboxMessage
    from tests.fixtures.forms import form_world

    app = make_app(make_settings(smtp_host="127.0.0.1", smtp_port=world_free_port), strict=True)
    with TestClient(app) as client:
        with db.connection_context():
            world = form_world()
            from core.reporting.notifications import EmailAddress

            EmailAddress.create(user=world.users["issuer"], address="issuer@quangtri.gov.vn")
        fill(world)
        response = submit(client, world, log_in(client, world.users["reporter"]))
        assert response.status_code == 303 and response.headers["location"].endswith("?done=submitted#workflow")
        with db.connection_context():
            [mail] = OutboxMessage.select()
        assert mail.channel == "smtp" and mail.state == "pending" and mail.attempts == 1 and mail.last_error


@pytest.fixture
def world_free_port():
    from tests.core.test_notifications import free_port

    return free_port()
