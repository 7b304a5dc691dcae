"""Logging in and out, sessions, safe redirects and the password page, through HTTP."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from hypothesis import HealthCheck, given, settings as hyp_settings, strategies as st
from starlette.testclient import TestClient

from core.settings import with_overrides
from tests.conftest import HX, csrf_from

SESSION = "baocao_session"


def login_form(client, username, password, next_url=None):
    token = csrf_from(client.get("/login").text)
    data = {"username": username, "password": password, "csrf_token": token}
    if next_url is not None:
        data["next"] = next_url
    return client.post("/login", data=data, follow_redirects=False)


def set_cookies(response) -> dict[str, str]:
    """Set-Cookie headers by cookie name, as written (attributes included)."""
    return {h.split("=", 1)[0]: h for h in response.headers.get_list("set-cookie")}


def error_text(html: str) -> str:
    match = re.search(r'id="login-error">([^<]*)<', html)
    assert match, "no login error shown"
    return match.group(1).strip()


# -- the login page ----------------------------------------------------------------------------

def test_login_page_is_vietnamese_by_default(client):
    page = client.get("/login")
    assert page.status_code == 200
    assert '<html lang="vi">' in page.text
    assert "Đăng nhập" in page.text and "Tên đăng nhập" in page.text and "Mật khẩu" in page.text
    assert page.headers["content-type"] == "text/html; charset=utf-8"


def test_wrong_password_and_unknown_user_look_the_same(client, make_user):
    user, password = make_user()
    wrong = login_form(client, user.username, password + "x")
    unknown = login_form(client, "khong_co_ai", password)
    assert wrong.status_code == unknown.status_code == 422
    assert error_text(wrong.text) == error_text(unknown.text) == "Tên đăng nhập hoặc mật khẩu không đúng."
    assert SESSION not in set_cookies(wrong) and SESSION not in set_cookies(unknown)
    # The username is kept in the form; the password never comes back.
    assert f'value="{user.username}"' in wrong.text and password not in wrong.text


def test_empty_credentials_are_refused_the_same_way(client):
    response = login_form(client, "", "")
    assert response.status_code == 422
    assert error_text(response.text) == "Tên đăng nhập hoặc mật khẩu không đúng."


def test_login_sets_an_http_only_lax_session_cookie(client, make_user):
    user, password = make_user()
    response = login_form(client, user.username, password)
    assert response.status_code == 303 and response.headers["location"] == "/"
    cookie = set_cookies(response)[SESSION]
    attributes = [a.strip().lower() for a in cookie.split(";")[1:]]
    assert "httponly" in attributes and "samesite=lax" in attributes and "path=/" in attributes
    assert not any(a.startswith("domain") for a in attributes)
    assert "secure" not in attributes  # plain HTTP in development and tests
    value = cookie.split(";", 1)[0].split("=", 1)[1]
    assert len(value) >= 43
    assert client.get("/").status_code == 200


def test_production_cookie_is_host_prefixed_and_secure(make_app, make_settings, make_user):
    settings = with_overrides(make_settings(), mode="production", allowed_hosts=("testserver",))
    assert len(settings.secret_key) >= 40
    app = make_app(settings)
    with TestClient(app, base_url="https://testserver") as client:
        user, password = make_user()
        response = login_form(client, user.username, password)
        assert response.status_code == 303, response.text
        cookies = set_cookies(response)
        assert SESSION not in cookies
        cookie = cookies[f"__Host-{SESSION}"]
        attributes = [a.strip().lower() for a in cookie.split(";")[1:]]
        assert {"secure", "httponly", "samesite=lax", "path=/"} <= set(attributes)
        assert not any(a.startswith("domain") for a in attributes)
        # The CSRF cookie follows the same rules.
        assert "Secure" in cookies["__Host-baocao_csrf"]
        assert client.get("/").status_code == 200


def test_each_login_gets_a_new_session_id(client, make_user):
    user, password = make_user()
    first = login_form(client, user.username, password)
    first_id = client.cookies.get(SESSION)
    client.cookies.clear()
    second = login_form(client, user.username, password)
    assert first.status_code == second.status_code == 303
    assert client.cookies.get(SESSION) != first_id


def test_logging_in_again_ends_the_previous_session(client, make_user):
    user, password = make_user()
    login_form(client, user.username, password)
    old = client.cookies.get(SESSION)
    login_form(client, user.username, password)  # a logged-in browser logs in again
    new = client.cookies.get(SESSION)
    assert new and new != old
    client.cookies.clear()
    client.cookies.set(SESSION, old)
    assert client.get("/", follow_redirects=False).status_code == 303


def test_logout_ends_the_session_on_the_server(client, login):
    login()
    old = client.cookies.get(SESSION)
    page = client.get("/")
    response = client.post("/logout", data={"csrf_token": csrf_from(page.text)}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/login"
    assert "Max-Age=0" in set_cookies(response)[SESSION]
    # Replaying the old cookie no longer works.
    client.cookies.set(SESSION, old)
    replay = client.get("/", follow_redirects=False)
    assert replay.status_code == 303 and replay.headers["location"].startswith("/login")


def test_logout_is_post_only(client, login):
    login()
    assert client.get("/logout").status_code == 405
    assert client.get("/").status_code == 200


def test_anonymous_home_redirects_to_login(client):
    response = client.get("/", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/"


def test_anonymous_htmx_request_gets_hx_redirect(client):
    response = client.get("/admin/plugins", headers=HX, follow_redirects=False)
    assert response.status_code == 401
    assert response.headers["hx-redirect"] == "/login?next=/admin/plugins"


def test_next_is_followed_after_login(client, make_user):
    user, password = make_user(is_admin=True)
    anonymous = client.get("/admin/plugins", follow_redirects=False)
    assert anonymous.headers["location"] == "/login?next=/admin/plugins"
    page = client.get(anonymous.headers["location"])
    assert 'name="next" value="/admin/plugins"' in page.text
    response = login_form(client, user.username, password, next_url="/admin/plugins")
    assert response.headers["location"] == "/admin/plugins"


EVIL_NEXT = ["//evil.example", "//evil.example/", "https://evil.example", "http://evil.example/x",
             "/\\evil.example", "\\\\evil", "\\/evil.example", "/%2F%2Fevil", "javascript:alert(1)",
             "/\t/evil.example", "/\n/evil.example", " //evil.example", "evil.example", "https:evil.example"]


def _is_same_origin_path(location: str) -> bool:
    return (location.startswith("/") and location[1:2] not in ("/", "\\")
            and not any(ord(c) < 32 or c == "\\" for c in location))


@pytest.mark.parametrize("next_url", EVIL_NEXT)
def test_next_pointing_elsewhere_lands_on_a_same_origin_path(client, make_user, next_url):
    user, password = make_user()
    response = login_form(client, user.username, password, next_url=next_url)
    assert response.status_code == 303
    location = response.headers["location"]
    assert _is_same_origin_path(location)
    assert location in ("/", next_url)


@hyp_settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(next_url=st.lists(st.sampled_from(list("/\\:.%2Fevilhtps@ \t?#&=") + ["//", "\\\\", "%2F", "https:"]),
                         max_size=12).map("".join))
def test_next_never_leaves_the_site(client, login_once, next_url):
    # A logged-in visit to /login?next=... redirects at once: the same safe_next decides.
    response = client.get("/login", params={"next": next_url}, follow_redirects=False)
    assert response.status_code == 303
    location = response.headers["location"]
    # Either home, or the path asked for (percent-encoded in the header), which stays on this site.
    assert location == "/" or (_is_same_origin_path(location) and _is_same_origin_path(next_url))


@pytest.fixture
def login_once(login):
    return login()


# -- expiry ---------------------------------------------------------------------------------------

def test_an_expired_session_shows_the_message_on_the_login_page(client, login):
    from core.db import db
    from core.models import Session

    login()
    with db.connection_context():
        Session.update(last_seen_at=dt.datetime(2000, 1, 1)).execute()
    response = client.get("/admin/plugins", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=/admin/plugins")
    assert "Max-Age=0" in set_cookies(response)[SESSION]
    page = client.get(response.headers["location"])
    assert page.status_code == 200
    assert "Phiên làm việc đã hết hạn" in page.text
    # A plain visit to the login page says nothing about expiry.
    assert "Phiên làm việc đã hết hạn" not in client.get("/login").text


# -- forced password change ----------------------------------------------------------------------

@pytest.fixture
def must_change(client, make_user):
    from core.db import db
    from core.models import User

    user, password = make_user()
    with db.connection_context():
        User.update(must_change_password=True).where(User.id == user.id).execute()
    assert login_form(client, user.username, password).status_code == 303
    return user, password


def change_password(client, current, new, confirm=None, headers=None):
    page = client.get("/account/password")
    return client.post("/account/password", headers=headers, follow_redirects=False, data={
        "csrf_token": csrf_from(page.text), "current": current, "new": new,
        "confirm": new if confirm is None else confirm})


def test_must_change_password_is_sent_to_the_password_page(client, must_change):
    for path in ("/", "/admin/plugins"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"] == "/account/password"
    page = client.get("/account/password")
    assert page.status_code == 200
    assert "Bạn cần đặt mật khẩu mới" in page.text


def test_changing_the_password_releases_the_user(client, must_change):
    user, password = must_change
    response = change_password(client, password, "mật khẩu mới thật dài")
    assert response.status_code == 200
    assert "Đã đổi mật khẩu." in response.text
    assert client.get("/", follow_redirects=False).status_code == 200
    # The new password works, the old one does not.
    client.cookies.clear()
    assert login_form(client, user.username, password).status_code == 422
    assert login_form(client, user.username, "mật khẩu mới thật dài").status_code == 303


@pytest.mark.parametrize("current_ok, new, confirm, field, message", [
    (False, "mật khẩu mới thật dài", None, "current", "Mật khẩu hiện tại không đúng."),
    (True, "ngắn", None, "new", "Mật khẩu phải dài từ 8 đến 128 ký tự."),
    (True, "mật khẩu mới thật dài", "mật khẩu khác hẳn", "confirm", "Hai lần nhập mật khẩu mới không khớp."),
    (True, None, None, "new", "Mật khẩu mới phải khác mật khẩu hiện tại."),
])
def test_password_change_errors_re_render_with_422(client, must_change, current_ok, new, confirm, field, message):
    user, password = must_change
    current = password if current_ok else "không phải mật khẩu"
    response = change_password(client, current, new or password, confirm)
    assert response.status_code == 422
    assert f'id="pw-{field}-error">{message}<' in response.text
    assert re.search(rf'id="pw-{field}"[^>]*aria-invalid="true"', response.text, re.S)
    assert "<html" in response.text  # a full page without htmx
    # Nothing changed: still forced to change, old password still the one.
    assert client.get("/", follow_redirects=False).headers["location"] == "/account/password"


def test_password_change_through_htmx_returns_the_fragment(client, must_change):
    user, password = must_change
    bad = change_password(client, "sai", "mật khẩu mới thật dài", headers=HX)
    assert bad.status_code == 422
    assert bad.text.lstrip().startswith('<div id="core-password-form">') and "<html" not in bad.text
    assert "Mật khẩu hiện tại không đúng." in bad.text
    good = change_password(client, password, "mật khẩu mới thật dài", headers=HX)
    assert good.status_code == 200
    assert 'id="core-password-form"' in good.text and "<html" not in good.text
    assert "Đã đổi mật khẩu." in good.text


def test_the_password_page_needs_a_login(client):
    response = client.get("/account/password", follow_redirects=False)
    assert response.headers["location"] == "/login?next=/account/password"
