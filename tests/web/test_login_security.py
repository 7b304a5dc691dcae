"""Login security through HTTP (issue 3): lockout and the per-address rate limit (AUTH-06), one
answer for every refusal (AUTH-07), the password rules on the password page (AUTH-03, AUTH-04),
and the administrators' 5-minute idle timeout with the way back to the page (SESS-04)."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from starlette.testclient import TestClient

from core.accounts import login as accounts
from core.db import db
from core.models import Session, User, utcnow
from tests.conftest import csrf_from
from tests.web.test_auth_flow import SESSION, change_password, error_text, login_form, set_cookies

HINT_VI = "Sau 5 lần nhập sai liên tiếp, tài khoản bị tạm khóa 30 phút"


def lock(client, user, count=5):
    for _ in range(count):
        assert login_form(client, user.username, "không phải mật khẩu").status_code == 422


def row(user) -> User:
    with db.connection_context():
        return User.get_by_id(user.id)


# -- lockout (AUTH-06) and the same answer (AUTH-07) ------------------------------------------------------

def test_auth06_the_6th_attempt_with_the_right_password_looks_like_a_wrong_one(client, make_user):
    user, password = make_user()
    wrong_before = login_form(client, user.username, "không phải mật khẩu")
    lock(client, user, 4)
    assert row(user).locked_until is not None
    right = login_form(client, user.username, password)
    wrong = login_form(client, user.username, "không phải mật khẩu")
    assert right.status_code == wrong.status_code == wrong_before.status_code == 422
    # Byte for byte the page a wrong password gets, before and during the lock.
    assert right.text == wrong.text == wrong_before.text
    assert SESSION not in set_cookies(right)
    assert client.get("/", follow_redirects=False).status_code == 303
    assert row(user).last_login_at is None


def test_auth07_unknown_disabled_and_locked_accounts_answer_like_a_wrong_password(client, make_user):
    user, password = make_user()
    disabled, disabled_password = make_user()
    locked, locked_password = make_user()
    with db.connection_context():
        User.update(is_active=False).where(User.id == disabled.id).execute()
    lock(client, locked)
    answers = {
        "wrong": login_form(client, user.username, password + "x"),
        "unknown": login_form(client, "khong_co_ai", password),
        "disabled": login_form(client, disabled.username, disabled_password),
        "locked": login_form(client, locked.username, locked_password),
    }
    assert {r.status_code for r in answers.values()} == {422}
    assert {error_text(r.text) for r in answers.values()} == {"Tên đăng nhập hoặc mật khẩu không đúng."}
    # The pages differ only by the username typed, which is shown again.
    normalised = {re.sub(r'name="username" value="[^"]*"', "", r.text) for r in answers.values()}
    assert len(normalised) == 1
    assert not any(SESSION in set_cookies(r) for r in answers.values())


def test_auth06_everyone_is_told_how_the_lockout_works(client, make_user):
    # Told to all, locked or not, so it tells nobody which account is locked.
    user, _ = make_user()
    for response in (login_form(client, "khong_co_ai", "bất kỳ"), login_form(client, user.username, "sai")):
        assert HINT_VI in response.text and "quản trị viên của đơn vị" in response.text
    assert HINT_VI not in client.get("/login").text


def test_auth06_the_hint_follows_the_settings_and_the_language(make_app, make_settings, make_user):
    app = make_app(make_settings(lockout_threshold=3, lockout_minutes=720))
    with TestClient(app) as client:
        client.cookies.set("baocao_lang", "en")
        response = login_form(client, "khong_co_ai", "whatever")
        assert "After 3 failed attempts in a row the account is locked for 720 minutes" in response.text
        user, password = make_user()
        lock(client, user, 3)
        assert login_form(client, user.username, password).status_code == 422


def test_auth06_past_the_lock_the_user_logs_in(client, make_user):
    user, password = make_user()
    lock(client, user)
    assert login_form(client, user.username, password).status_code == 422
    with db.connection_context():  # the web uses the wall clock: move the lock into the past
        User.update(locked_until=utcnow() - dt.timedelta(seconds=1)).where(User.id == user.id).execute()
    response = login_form(client, user.username, password)
    assert response.status_code == 303 and SESSION in set_cookies(response)
    assert row(user).failed_logins == 0 and row(user).locked_until is None


def test_auth06_an_administrators_unlock_lets_the_user_in(client, make_user):
    user, password = make_user()
    lock(client, user)
    with db.connection_context():
        accounts.unlock(user)
    assert login_form(client, user.username, password).status_code == 303


def test_auth06_a_disabled_users_session_is_refused(client, login):
    user = login()
    assert client.get("/", follow_redirects=False).status_code == 200
    with db.connection_context():
        User.update(is_active=False).where(User.id == user.id).execute()
    assert client.get("/", follow_redirects=False).status_code == 303


# -- the per-address rate limit (AUTH-06) --------------------------------------------------------------

@pytest.fixture
def limited(make_app, make_settings):
    app = make_app(make_settings(login_rate_per_minute=3))
    with TestClient(app) as client:
        yield app, client


def test_auth06_too_many_attempts_from_one_address_get_429_with_retry_after(limited, make_user):
    app, client = limited
    user, password = make_user()
    for _ in range(3):
        assert login_form(client, "khong_co_ai", "sai").status_code == 422
    page = client.get("/login?next=/admin/plugins")
    response = client.post("/login", follow_redirects=False, data={
        "username": user.username, "password": password, "next": "/admin/plugins",
        "csrf_token": csrf_from(page.text)})
    assert response.status_code == 429
    assert 1 <= int(response.headers["retry-after"]) <= 60
    assert "Quá nhiều lần đăng nhập" in response.text
    assert f"đợi {response.headers['retry-after']} giây" in response.text
    assert SESSION not in set_cookies(response)
    # Still the login form, with the page the user was going to.
    assert 'name="next" value="/admin/plugins"' in response.text and 'name="password"' in response.text
    assert row(user).failed_logins == 0  # refused before the password was looked at


def test_auth06_another_address_still_logs_in(limited, make_user):
    app, client = limited
    user, password = make_user()
    for _ in range(3):
        login_form(client, "khong_co_ai", "sai")
    assert login_form(client, user.username, password).status_code == 429
    other = TestClient(app, client=("203.0.113.7", 50000))  # the app is already started by `client`
    assert login_form(other, user.username, password).status_code == 303


def test_auth06_the_rate_limit_page_in_english(limited):
    app, client = limited
    client.cookies.set("baocao_lang", "en")
    for _ in range(3):
        login_form(client, "khong_co_ai", "sai")
    response = login_form(client, "khong_co_ai", "sai")
    assert response.status_code == 429
    assert "Too many login attempts from this network address" in response.text


def test_auth06_x_forwarded_for_is_not_trusted(limited, make_user):
    # A client cannot dodge the limit by claiming another address.
    app, client = limited
    for n in range(3):
        client.post("/login", headers={"X-Forwarded-For": f"198.51.100.{n}"}, data={
            "username": "khong_co_ai", "password": "sai", "csrf_token": csrf_from(client.get("/login").text)})
    response = client.post("/login", headers={"X-Forwarded-For": "198.51.100.99"}, data={
        "username": "khong_co_ai", "password": "sai", "csrf_token": csrf_from(client.get("/login").text)})
    assert response.status_code == 429


# -- the password page (AUTH-03, AUTH-04) -----------------------------------------------------------------

@pytest.fixture
def logged_in(client, make_user):
    user, password = make_user("tran.thi.binh")
    assert login_form(client, user.username, password).status_code == 303
    return user, password


@pytest.mark.parametrize("new, message", [
    ("matkhau123", "Mật khẩu này nằm trong danh sách mật khẩu phổ biến"),
    ("Password1!", "Mật khẩu này nằm trong danh sách mật khẩu phổ biến"),
    ("Anh yêu em 2025", "Mật khẩu này nằm trong danh sách mật khẩu phổ biến"),
    ("QuangTri2025!", "Mật khẩu không được dựa trên tên đăng nhập"),
    ("Quảng Trị 123", "Mật khẩu không được dựa trên tên đăng nhập"),
    ("tran.thi.binh2025", "Mật khẩu không được dựa trên tên đăng nhập"),
])
def test_auth04_the_password_page_refuses_common_and_context_passwords(client, logged_in, new, message):
    user, password = logged_in
    response = change_password(client, password, new)
    assert response.status_code == 422
    assert re.search(r'id="pw-new-error">' + re.escape(message), response.text)
    assert "Hãy dùng một câu dễ nhớ" in response.text
    client.cookies.clear()
    assert login_form(client, user.username, password).status_code == 303  # unchanged


def test_auth03_the_password_page_accepts_a_long_vietnamese_sentence(client, logged_in):
    user, password = logged_in
    new = "Chiều thứ bảy đạp xe qua cầu Hiền Lương"
    assert change_password(client, password, new).status_code == 200
    client.cookies.clear()
    assert login_form(client, user.username, new).status_code == 303


def test_auth04_the_rules_are_shown_in_english_too(client, logged_in):
    user, password = logged_in
    client.cookies.set("baocao_lang", "en")
    response = change_password(client, password, "Password1!")
    assert "This password is on the list of common passwords" in response.text


# -- administrators' idle timeout (SESS-04) ---------------------------------------------------------------

def idle_for(user, minutes, seconds=0):
    with db.connection_context():
        Session.update(last_seen_at=utcnow() - dt.timedelta(minutes=minutes, seconds=seconds)).where(
            Session.user == user.id).execute()


def test_sess04_an_administrator_idle_5_minutes_logs_in_again_and_returns_to_the_page(client, make_user):
    admin, password = make_user(is_admin=True)
    assert login_form(client, admin.username, password).status_code == 303
    assert client.get("/admin/plugins", follow_redirects=False).status_code == 200
    idle_for(admin, 5, 5)
    response = client.get("/admin/plugins", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/admin/plugins&expired=1"
    page = client.get(response.headers["location"])
    assert "Phiên làm việc đã hết hạn" in page.text
    assert 'name="next" value="/admin/plugins"' in page.text
    # A wrong password first: ``next`` survives the refusal too.
    wrong = login_form(client, admin.username, "sai", next_url="/admin/plugins")
    assert 'name="next" value="/admin/plugins"' in wrong.text
    back = login_form(client, admin.username, password, next_url="/admin/plugins")
    assert back.status_code == 303 and back.headers["location"] == "/admin/plugins"


def test_sess04_a_user_idle_5_minutes_is_still_logged_in_but_not_after_15(client, make_user):
    user, password = make_user()
    assert login_form(client, user.username, password).status_code == 303
    idle_for(user, 6)
    assert client.get("/", follow_redirects=False).status_code == 200
    idle_for(user, 15, 5)
    response = client.get("/", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/login?next=/&expired=1"


def test_sess04_an_administrator_idle_4_minutes_is_still_logged_in(client, make_user):
    admin, password = make_user(is_admin=True)
    assert login_form(client, admin.username, password).status_code == 303
    idle_for(admin, 4)
    assert client.get("/admin/plugins", follow_redirects=False).status_code == 200
