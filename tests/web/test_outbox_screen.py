"""The outbox screen (/admin/outbox): only a system administrator sees it; each message's state,
attempts, last error and next attempt in the instance's time zone; filters; retry now and cancel
(POST with the CSRF token, audited); an unknown id is a 404 page."""

from __future__ import annotations

import datetime as dt

import pytest

from core import outbox
from core.audit import AuditEvent
from core.db import db
from core.outbox import OutboxMessage
from tests.conftest import csrf_from


def post(client, path, data=None):
    token = csrf_from(client.get("/admin/outbox").text)
    return client.post(path, data={**(data or {}), "csrf_token": token}, follow_redirects=False)


@pytest.fixture
def messages(app):
    """A waiting e-mail whose last attempt failed, one given up, one sent."""
    with db.connection_context():
        waiting = outbox.enqueue("smtp", {"to": "a@quangtri.gov.vn", "subject": "S", "body": "B"}, key="mail-a")
        failed = outbox.enqueue("smtp", {"to": "b@quangtri.gov.vn", "subject": "S", "body": "B"}, key="mail-b")
        sent = outbox.enqueue("smtp", {"to": "c@quangtri.gov.vn", "subject": "S", "body": "B"}, key="mail-c")
        at = dt.datetime(2026, 3, 2, 1, 30)  # UTC: 08:30 in Hà Nội
        OutboxMessage.update(attempts=2, last_error="ConnectionRefusedError: máy chủ từ chối",
                             next_attempt_at=at).where(OutboxMessage.id == waiting.id).execute()
        OutboxMessage.update(state="failed", attempts=8, last_error="SMTPRecipientsRefused: không có hộp thư") \
            .where(OutboxMessage.id == failed.id).execute()
        OutboxMessage.update(state="sent", sent_at=at).where(OutboxMessage.id == sent.id).execute()
    return type("Messages", (), {"waiting": waiting.id, "failed": failed.id, "sent": sent.id})


def test_the_administrator_sees_each_message_with_its_state_attempts_and_error(client, login, messages):
    login(is_admin=True)
    assert 'href="/admin/outbox"' in client.get("/").text  # in the menu
    page = client.get("/admin/outbox")
    assert page.status_code == 200
    html = page.text
    assert "Hộp thư đi" in html and "Thư điện tử" in html
    assert "ConnectionRefusedError: máy chủ từ chối" in html and "SMTPRecipientsRefused: không có hộp thư" in html
    assert "08:30 02/03/2026" in html  # the next attempt, in the instance's time zone
    assert 'data-state="pending"' in html and 'data-state="failed"' in html and 'data-state="sent"' in html
    # The sent message offers no action; the others offer both.
    assert f"/admin/outbox/{messages.sent}/retry" not in html
    assert f"/admin/outbox/{messages.failed}/retry" in html and f"/admin/outbox/{messages.waiting}/cancel" in html
    failed_only = client.get("/admin/outbox?state=failed").text
    assert f'id="message-{messages.failed}"' in failed_only and f'id="message-{messages.waiting}"' not in failed_only
    assert 'id="message-' not in client.get("/admin/outbox?channel=fx.nothing").text
    assert "Không có thư nào khớp điều kiện lọc." in client.get("/admin/outbox?channel=fx.nothing").text


def test_retry_now_and_cancel_change_the_message_and_are_audited(client, login, messages):
    login(is_admin=True)
    response = post(client, f"/admin/outbox/{messages.failed}/retry?state=failed")
    assert response.status_code == 303 and response.headers["location"] == "/admin/outbox?done=retried&state=failed"
    assert "Đã đưa thư vào hàng gửi ngay." in client.get(response.headers["location"]).text
    response = post(client, f"/admin/outbox/{messages.waiting}/cancel")
    assert response.status_code == 303
    with db.connection_context():
        states = {m.id: (m.state, m.attempts) for m in OutboxMessage.select()}
        actions = [(e.action, e.object_id) for e in AuditEvent.select().where(AuditEvent.action.startswith("outbox."))
                   .order_by(AuditEvent.id)]
    assert states[messages.failed] == ("pending", 0) and states[messages.waiting] == ("cancelled", 2)
    assert actions == [("outbox.retry", str(messages.failed)), ("outbox.cancel", str(messages.waiting))]
    # A message that went out cannot be retried: the page says why, nothing changes.
    refused = post(client, f"/admin/outbox/{messages.sent}/retry")
    assert refused.status_code == 409 and "Không gửi lại được thư này" in refused.text
    with db.connection_context():
        assert OutboxMessage.get_by_id(messages.sent).state == "sent"


def test_a_post_without_the_csrf_token_changes_nothing(client, login, messages):
    login(is_admin=True)
    response = client.post(f"/admin/outbox/{messages.waiting}/cancel", follow_redirects=False)
    assert response.status_code == 403
    with db.connection_context():
        assert OutboxMessage.get_by_id(messages.waiting).state == "pending"


def test_an_unknown_message_is_a_404_page_not_a_trace(client, login, messages):
    login(is_admin=True)
    for action in ("retry", "cancel"):
        response = post(client, f"/admin/outbox/{messages.sent + 1000}/{action}")
        assert response.status_code == 404
        assert "Traceback" not in response.text and "<html" in response.text.lower()


def test_only_a_system_administrator_sees_or_acts(client, login, messages):
    from core.accounts.access import Grant, Role

    user = login()  # a unit administrator of the province, not a system administrator
    with db.connection_context():
        Grant.create(user=user, role=Role.get(Role.code == "unit_admin"), unit=user.unit_id)
    assert client.get("/admin/outbox").status_code == 403
    assert 'href="/admin/outbox"' not in client.get("/").text
    token = csrf_from(client.get("/").text)
    for action in ("retry", "cancel"):
        response = client.post(f"/admin/outbox/{messages.failed}/{action}", data={"csrf_token": token},
                               follow_redirects=False)
        assert response.status_code == 403
    with db.connection_context():
        assert OutboxMessage.get_by_id(messages.failed).state == "failed"
