"""The receiver's "Đôn đốc" button on the completeness page (issue 14 item 4): it reminds exactly
the late units of the regime and period, each once, with the receiver's message; each of them
finds the reminder among their notifications; pressing again the same day reminds nobody twice;
the e-mail goes into the outbox; someone who does not receive from those units is refused (403 /
404) and sees no button. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest

from core.db import db
from core.models import Unit
from core.outbox import OutboxMessage
from core.reporting import notifications as nt
from tests.core.test_completeness import CODE, MARCH, build_world
from tests.web.test_report_entry import log_in
from web.testing import csrf_from

MESSAGE = "Đề nghị gửi trước 16 giờ chiều nay."


@pytest.fixture
def world(client, frozen_clock, make_regime, unit_tree, make_user):
    built = build_world(frozen_clock, make_regime, unit_tree, make_user)
    # The district Đakrông has not started; its reporter is the third late unit's person.
    built["users"]["dakrong"] = make_user(unit=built["units"]["dakrong"], roles=("reporter",))[0]
    return built


def urges_of(user) -> list:
    with db.connection_context():
        return list(nt.Notification.select().where((nt.Notification.user == user.id)
                                                   & (nt.Notification.action == "urge")))


def page(client):
    return client.get("/completeness", params={"regime": CODE, "period": MARCH})


def press(client, message=MESSAGE, **extra):
    token = csrf_from(page(client).text)
    data = {"csrf_token": token, "regime": CODE, "period": MARCH, "message": message, **extra}
    return client.post("/completeness/remind", data=data, follow_redirects=False)


def test_the_receiver_reminds_exactly_the_late_units_once(client, world):
    users = world["users"]
    log_in(client, users["receiver"])
    shown = page(client)
    assert 'id="completeness-remind"' in shown.text and "Đôn đốc (3)" in shown.text
    assert 'action="/completeness/remind"' in shown.text and 'name="message"' in shown.text

    response = press(client)
    assert response.status_code == 303
    assert response.headers["location"].startswith(f"/completeness?regime={CODE}&period=")
    after = client.get(response.headers["location"])
    assert "Đã đôn đốc 3 đơn vị." in after.text

    # The three late units (Cam Lộ returned, Hướng Hiệp a draft, Đakrông not started) each find one.
    for name in ("cam", "huonghiep", "dakrong"):
        found = urges_of(users[name])
        assert len(found) == 1, name
        assert found[0].report_id == world["reports"][name].id and found[0].reason == MESSAGE
    for name in ("gio", "balong"):  # accepted; sent (late, but sent)
        assert urges_of(users[name]) == [], name

    log_in(client, users["cam"])
    inbox = client.get("/notifications").text
    assert "Đơn vị nhận đôn đốc: Sở Nông nghiệp và Môi trường đề nghị Xã Cam Lộ gửi ngay báo cáo " \
           "Tháng 3 năm 2026" in inbox
    assert f"Lời nhắn: {MESSAGE}" in inbox
    assert "Người dùng" in inbox  # who pressed the button

    log_in(client, users["receiver"])
    again = press(client)
    text = client.get(again.headers["location"]).text
    assert "Đã đôn đốc 0 đơn vị." in text and "3 đơn vị đã được đôn đốc hôm nay nên không nhắc lại." in text
    for name in ("cam", "huonghiep", "dakrong"):
        assert len(urges_of(users[name])) == 1, name


def test_the_reminder_is_e_mailed_through_the_outbox_once(make_app, make_settings, world, frozen_clock):
    from starlette.testclient import TestClient

    from core.models import User

    users = world["users"]
    with db.connection_context():
        nt.set_email(User.get_by_id(users["cam"].id), "camlo@example.vn")
    # A mail server nobody listens on: the message stays queued (and retried) in the outbox.
    app = make_app(make_settings(smtp_host="127.0.0.1", smtp_port=9, public_url="https://baocao.example.vn"))
    with TestClient(app) as mail_client:
        log_in(mail_client, users["receiver"])
        assert press(mail_client).status_code == 303
        assert press(mail_client).status_code == 303
    with db.connection_context():
        to_cam = [json.loads(m.payload) for m in OutboxMessage.select()
                  if json.loads(m.payload).get("to") == "camlo@example.vn"]
    assert len(to_cam) == 1
    assert to_cam[0]["subject"].startswith("Đôn đốc gửi báo cáo Tháng 3 năm 2026")
    assert MESSAGE in to_cam[0]["body"]


def test_someone_who_does_not_receive_from_them_is_refused(client, world, make_user):
    users = world["users"]
    # A viewer of the province sees the page, but receives nothing: no button, and 403.
    log_in(client, users["viewer"])
    assert page(client).status_code == 200 and 'id="completeness-remind"' not in page(client).text
    assert press(client).status_code == 403
    # A commune's reporter sees its own unit only: no button, and 403.
    log_in(client, users["balong"])
    assert 'id="completeness-remind"' not in page(client).text
    token = csrf_from(client.get("/").text)
    refused = client.post("/completeness/remind", data={"csrf_token": token, "regime": CODE, "period": MARCH})
    assert refused.status_code == 403
    # A receiver of another province does not see the regime at all: 404.
    with db.connection_context():
        other = Unit.create(code="45", name="Tỉnh Quảng Bình", kind="province")
    stranger = make_user(unit=other, roles=("receiver",))[0]
    log_in(client, stranger)
    token = csrf_from(client.get("/").text)
    assert client.post("/completeness/remind", data={"csrf_token": token, "regime": CODE,
                                                     "period": MARCH}).status_code == 404
    for name in ("cam", "huonghiep", "dakrong"):
        assert urges_of(users[name]) == [], name


def test_a_message_too_long_is_said_plainly_and_an_unknown_period_is_a_404(client, world):
    log_in(client, world["users"]["receiver"])
    long = press(client, message="x" * 501)
    assert "Lời nhắn dài quá 500 ký tự." in client.get(long.headers["location"]).text
    assert urges_of(world["users"]["cam"]) == []
    # The year view has no period to remind: no button there.
    year = client.get("/completeness/year", params={"regime": CODE})
    assert 'id="completeness-remind"' not in year.text
    # A period that was never opened does not exist.
    token = csrf_from(page(client).text)
    response = client.post("/completeness/remind", data={"csrf_token": token, "regime": CODE,
                                                         "period": "2026-03-15/2026-04-14"}, follow_redirects=False)
    assert response.status_code == 404


def test_the_issuer_chooses_a_regimes_reminders_on_its_page(client, world, make_user):
    from core.reporting import reminders

    regime = world["regime"].regime
    issuer = world["regime"].issuer
    log_in(client, issuer)
    page = client.get(f"/regimes/{regime.id}").text
    assert 'id="rd-reminders"' in page and "2 ngày làm việc trước hạn" in page  # the setting's default
    token = csrf_from(page)
    saved = client.post(f"/regimes/{regime.id}/reminders", data={"csrf_token": token, "days_before": "5",
                                                                "enabled": "on"}, follow_redirects=False)
    assert saved.status_code == 303
    shown = client.get(saved.headers["location"]).text
    assert "Đã lưu cách nhắc hạn của chế độ báo cáo." in shown and "5 ngày làm việc trước hạn" in shown
    with db.connection_context():
        assert reminders.policy_of(regime.code) == reminders.Policy(5, True)
    off = client.post(f"/regimes/{regime.id}/reminders", data={"csrf_token": token, "days_before": "0"})
    assert "Không tự động nhắc hạn với chế độ này" in off.text
    with db.connection_context():
        assert reminders.policy_of(regime.code) == reminders.Policy(0, False)
    bad = client.post(f"/regimes/{regime.id}/reminders", data={"csrf_token": token, "days_before": "11",
                                                              "enabled": "on"})
    assert bad.status_code == 422 and "Số ngày làm việc nhắc trước phải từ 0 đến 10." in bad.text
    with db.connection_context():
        assert reminders.policy_of(regime.code) == reminders.Policy(0, False)  # nothing changed

    # A receiver sees the choice but may not change it.
    log_in(client, world["users"]["receiver"])
    page = client.get(f"/regimes/{regime.id}").text
    assert 'id="rd-reminders"' in page and 'name="days_before"' not in page
    refused = client.post(f"/regimes/{regime.id}/reminders", data={"csrf_token": csrf_from(page), "days_before": "3",
                                                                  "enabled": "on"})
    assert refused.status_code == 403


def test_after_reminding_the_receiver_is_back_on_the_list_they_acted_on(client, world):
    log_in(client, world["users"]["receiver"])
    shown = client.get("/completeness", params={"regime": CODE, "period": MARCH, "status": "overdue"}).text
    assert '<input type="hidden" name="status" value="overdue">' in shown
    response = press(client, status="overdue")
    assert response.status_code == 303 and "status=overdue" in response.headers["location"]
    assert "Đã đôn đốc 3 đơn vị." in client.get(response.headers["location"]).text
