"""Two-factor authentication and re-authentication through HTTP (issue 3).

security.md AUTH-08 (a password alone no longer logs in once 2FA is on; administrators must
set it up; replayed codes are refused), SESS-02 (a new session token after the second factor
and after re-authenticating; the old one is dead), SESS-06 (sensitive actions need a recent
login or re-authentication). The server uses the real clock here, so codes are computed with
pyotp for now, and enrollment uses the code of the step before so that now's is still unused.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest
from starlette.requests import Request
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from core.accounts import login as accounts
from core.accounts import mfa
from core.accounts.access import Grant, Role
from core.audit import AuditEvent
from core.db import db
from core.models import Session, Unit, User, utcnow
from tests.conftest import HX, TEST_SECRET, csrf_from
from tests.web.test_auth_flow import SESSION, login_form

STEP = dt.timedelta(seconds=30)


def code_at(secret: str, when: dt.datetime) -> str:
    return pyotp.TOTP(secret).at(when.replace(tzinfo=dt.timezone.utc))


def now_code(secret: str) -> str:
    return code_at(secret, utcnow())


def enroll(user) -> tuple[str, list[str]]:
    with db.connection_context():
        secret, _ = mfa.begin_enrollment(user, TEST_SECRET)
        earlier = utcnow() - 2 * STEP
        return secret, mfa.confirm_enrollment(user, code_at(secret, earlier), TEST_SECRET, now=earlier)


def wrong_code(secret: str) -> str:
    now = utcnow()
    accepted = {code_at(secret, now + k * STEP) for k in (-2, -1, 0, 1, 2)}
    return next(c for c in ("418263", "527394", "639475", "748596") if c not in accepted)


def post(client, path, data=None, *, page=None, headers=None):
    token = csrf_from(client.get(page or "/login").text) if page != "" else ""
    return client.post(path, data={**(data or {}), "csrf_token": token}, headers=headers or {},
                       follow_redirects=False)


def verify(client, code, next_url=""):
    token = csrf_from(client.get("/login/verify").text)
    return client.post("/login/verify", data={"code": code, "csrf_token": token, "next": next_url},
                       follow_redirects=False)


def events(action: str) -> list[AuditEvent]:
    with db.connection_context():
        return list(AuditEvent.select().where(AuditEvent.action == action).order_by(AuditEvent.id))


def age_reauth(client, minutes: int = 10) -> None:
    """Make this browser's last login or confirmation ``minutes`` old."""
    with db.connection_context():
        Session.update(reauth_at=utcnow() - dt.timedelta(minutes=minutes)).where(
            Session.token_hash == accounts._digest(client.cookies.get(SESSION))).execute()


@pytest.fixture
def mfa_app(make_app, make_settings):
    return make_app(make_settings(require_admin_mfa=True))


@pytest.fixture
def web(mfa_app):
    with TestClient(mfa_app) as client:
        yield client


@pytest.fixture
def person(mfa_app, make_user):
    def make(**kwargs):
        user, password = make_user(**kwargs)
        return SimpleNamespace(user=user, password=password)

    return make


# -- AUTH-08, SESS-02: logging in with the second factor --------------------------------------------

def test_auth08_sess02_with_2fa_on_the_password_alone_does_not_log_in(web, person):
    who = person()
    secret, _ = enroll(who.user)
    first = login_form(web, who.user.username, who.password, next_url="/account/password")
    assert first.status_code == 303
    assert first.headers["location"] == "/login/verify?next=/account/password"
    pending = web.cookies.get(SESSION)
    assert pending
    # Pending: logged out everywhere but the page that asks for the code.
    home = web.get("/", follow_redirects=False)
    assert home.status_code == 303 and home.headers["location"].startswith("/login")
    page = web.get("/login/verify?next=/account/password")
    assert page.status_code == 200
    assert "Xác thực hai lớp" in page.text and "Google Authenticator" in page.text
    assert 'autocomplete="one-time-code"' in page.text
    wrong = verify(web, wrong_code(secret), "/account/password")
    assert wrong.status_code == 422 and "Mã không đúng" in wrong.text
    right = verify(web, now_code(secret), "/account/password")
    assert right.status_code == 303 and right.headers["location"] == "/account/password"
    session = web.cookies.get(SESSION)
    assert session and session != pending  # SESS-02: a new token after the second factor
    assert web.get("/account/password").status_code == 200
    # The pending token is dead.
    other = TestClient(web.app)
    other.cookies.set(SESSION, pending)
    assert other.get("/", follow_redirects=False).status_code == 303
    assert other.get("/login/verify", follow_redirects=False).headers["location"].startswith("/login")
    with db.connection_context():
        assert Session.select().where(Session.user == who.user.id).count() == 1
        assert Session.get(Session.user == who.user.id).reauth_at is not None


def test_auth08_a_replayed_code_is_refused_at_the_next_login(web, person):
    who = person()
    secret, _ = enroll(who.user)
    code = now_code(secret)
    login_form(web, who.user.username, who.password)
    assert verify(web, code).status_code == 303
    web.post("/logout", data={"csrf_token": csrf_from(web.get("/").text)})
    login_form(web, who.user.username, who.password)
    again = verify(web, code)
    assert again.status_code == 422
    assert web.get("/", follow_redirects=False).status_code == 303


def test_a_recovery_code_logs_in_once(web, person):
    who = person()
    _, codes = enroll(who.user)
    login_form(web, who.user.username, who.password)
    assert verify(web, codes[0].upper()).status_code == 303
    assert web.get("/", follow_redirects=False).status_code == 200
    web.cookies.clear()
    login_form(web, who.user.username, who.password)
    assert verify(web, codes[0]).status_code == 422
    steps = [json.loads(e.details) for e in events("auth.login")]
    assert steps == [{"second_factor": "pending"}, {"second_factor": "recovery", "recovery_codes_left": 9},
                     {"second_factor": "pending"}]


def test_auth06_wrong_codes_lock_the_account_like_wrong_passwords(make_app, make_settings, person):
    app = make_app(make_settings(require_admin_mfa=True, lockout_threshold=3))
    with TestClient(app) as web:
        who = person()
        secret, _ = enroll(who.user)
        login_form(web, who.user.username, who.password)
        for _ in range(3):
            assert verify(web, wrong_code(secret)).status_code == 422
        refused = verify(web, now_code(secret))
        assert refused.status_code == 422  # locked now, even with the right code
        assert "tạm khóa" in refused.text  # the lockout hint
    assert [e.result for e in events("auth.mfa_failed")] == ["failed", "failed", "failed", "denied"]
    assert len(events("auth.locked")) == 1


def _pages(app):
    """Every GET page with its path parameters filled in, and every POST action."""
    def walk(routes, prefix=""):
        for route in routes:
            if isinstance(route, Mount):
                if route.name != "static":
                    yield from walk(route.routes, prefix + route.path)
            elif isinstance(route, Route):
                yield prefix + route.path, route

    for path, route in walk(app.routes):
        if getattr(route.endpoint, "__baocao_permission__", None) == "public":
            continue
        filled = re.sub(r"\{[^}:]+:int\}", "1", re.sub(r"\{[^}:]+(:(str|path))?\}", "x", path))
        for method in sorted(route.methods or ()):
            if method in ("GET", "POST"):
                yield method, filled


def test_auth08_a_pending_session_opens_no_guarded_page(web, person, make_user):
    admin = person(is_admin=True)
    enroll(admin.user)
    login_form(web, admin.user.username, admin.password)
    token = csrf_from(web.get("/login/verify").text)
    checked = 0
    for method, path in _pages(web.app):
        response = web.request(method, path, data={"csrf_token": token} if method == "POST" else None,
                               follow_redirects=False)
        if path.startswith("/api/v1/"):  # the JSON API never redirects: 401 (GET), 405 (anything else)
            assert response.status_code == (401 if method == "GET" else 405), (method, path, response.status_code)
            checked += 1
            continue
        if path == "/notifications/bell":  # the header's bell: empty to anyone not fully logged in
            assert (response.status_code, response.content) == (204, b""), (method, path)
            checked += 1
            continue
        assert response.status_code in (303, 404), (method, path, response.status_code)
        if response.status_code == 303:
            assert response.headers["location"].startswith("/login"), (method, path)
        checked += 1
    assert checked > 25
    htmx = web.get("/units", headers=HX, follow_redirects=False)
    assert htmx.status_code == 401 and htmx.headers["HX-Redirect"].startswith("/login")
    with db.connection_context():  # nothing was changed by any of those requests
        assert Session.select().where(Session.user == admin.user.id).count() == 1
        assert mfa.is_enrolled(admin.user)


# -- AUTH-08: administrators must set it up ----------------------------------------------------------

def test_auth08_an_administrator_without_2fa_is_sent_to_set_it_up(web, person):
    admin = person(is_admin=True)
    assert login_form(web, admin.user.username, admin.password).status_code == 303
    for path in ("/", "/units", "/users", "/audit", "/admin/plugins"):
        response = web.get(path, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"] == "/account/2fa", path
    htmx = web.get("/units", headers=HX, follow_redirects=False)
    assert htmx.headers["HX-Redirect"] == "/account/2fa"
    assert web.get("/account/password").status_code == 200  # still reachable
    page = web.get("/account/2fa")
    assert page.status_code == 200
    assert 'id="mfa-required"' in page.text and "Tài khoản quản trị phải bật xác thực hai lớp" in page.text
    # The QR code is inline SVG without style attributes (CSP), and the key is grouped for typing.
    assert "<svg" in page.text and "style=" not in page.text
    assert "'unsafe-inline'" not in page.headers["content-security-policy"]
    secret = re.search(r'id="mfa-secret">([A-Z2-7 ]+)<', page.text).group(1).replace(" ", "")
    assert len(secret) == 32 and re.search(r'id="mfa-secret">[A-Z2-7]{4} [A-Z2-7]{4} ', page.text)
    done = post(web, "/account/2fa/enable", {"code": now_code(secret)}, page="/account/2fa")
    assert done.status_code == 200
    codes = re.findall(r"<li>([a-z2-9]{4}-[a-z2-9]{4})</li>", done.text)
    assert len(codes) == 10 and "chỉ hiện một lần" in done.text
    assert web.get("/", follow_redirects=False).status_code == 200  # now the admin may work
    again = web.get("/account/2fa")
    assert codes[0] not in again.text  # shown once
    assert 'id="mfa-status">Đang bật' in again.text and "mfa_disable" not in again.text
    # Required: turning it off is refused.
    refused = post(web, "/account/2fa/disable", page="/account/2fa")
    assert refused.status_code == 403
    with db.connection_context():
        assert mfa.is_enrolled(admin.user)


def test_a_unit_administrator_must_too_and_a_clerk_need_not(web, person):
    unit_admin, clerk = person(), person()
    with db.connection_context():
        province = Unit.get(Unit.code == "ROOT")
        Grant.create(user=unit_admin.user, role=Role.get(Role.code == "unit_admin"), unit=province)
        Grant.create(user=clerk.user, role=Role.get(Role.code == "viewer"), unit=province)
    login_form(web, unit_admin.user.username, unit_admin.password)
    assert web.get("/", follow_redirects=False).headers["location"] == "/account/2fa"
    web.cookies.clear()
    login_form(web, clerk.user.username, clerk.password)
    assert web.get("/", follow_redirects=False).status_code == 200
    page = web.get("/account/2fa")
    assert 'id="mfa-required"' not in page.text and "Chưa bật" in page.text
    assert 'href="/account/2fa"' in web.get("/").text  # in the menu


def test_the_setting_off_lets_administrators_in_with_a_password(client, login):
    login(is_admin=True)
    assert client.get("/", follow_redirects=False).status_code == 200


def test_a_user_turns_2fa_on_and_off(web, person):
    who = person()
    login_form(web, who.user.username, who.password)
    page = web.get("/account/2fa")
    secret = re.search(r'id="mfa-secret">([A-Z2-7 ]+)<', page.text).group(1).replace(" ", "")
    wrong = post(web, "/account/2fa/enable", {"code": wrong_code(secret)}, page="/account/2fa")
    assert wrong.status_code == 422 and "Mã không đúng" in wrong.text
    assert post(web, "/account/2fa/enable", {"code": now_code(secret)}, page="/account/2fa").status_code == 200
    off = post(web, "/account/2fa/disable", page="/account/2fa")
    assert off.status_code == 303 and off.headers["location"] == "/account/2fa?done=disabled"
    assert "Đã tắt xác thực hai lớp" in web.get(off.headers["location"]).text
    with db.connection_context():
        assert not mfa.is_enrolled(who.user)
    assert [len(events(a)) for a in ("auth.mfa_enabled", "auth.mfa_disabled")] == [1, 1]


# -- SESS-06: re-authentication before sensitive actions -----------------------------------------------

def test_sess06_an_old_login_must_confirm_before_a_2fa_action_then_it_works(web, person):
    who = person()
    secret, codes = enroll(who.user)
    login_form(web, who.user.username, who.password)
    verify(web, now_code(secret))
    age_reauth(web)
    before = web.cookies.get(SESSION)
    token = csrf_from(web.get("/account/2fa").text)
    sent = web.post("/account/2fa/recovery-codes", data={"csrf_token": token},
                    headers={"Referer": "http://testserver/account/2fa"}, follow_redirects=False)
    assert sent.status_code == 303 and sent.headers["location"] == "/account/confirm?next=/account/2fa"
    page = web.get(sent.headers["location"])
    assert page.status_code == 200 and 'name="code"' in page.text and "gửi lại biểu mẫu" in page.text
    token = csrf_from(page.text)
    bad = web.post("/account/confirm", data={"password": "sai mật khẩu", "code": "", "next": "/account/2fa",
                                             "csrf_token": token}, follow_redirects=False)
    assert bad.status_code == 422 and "Mật khẩu không đúng" in bad.text
    no_code = web.post("/account/confirm", data={"password": who.password, "code": "", "next": "/account/2fa",
                                                 "csrf_token": token}, follow_redirects=False)
    assert no_code.status_code == 422
    # The code used to log in a moment ago is spent; the next step's is not.
    code = code_at(secret, utcnow() + STEP)
    done = web.post("/account/confirm", data={"password": who.password, "code": code, "next": "/account/2fa",
                                              "csrf_token": token}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/account/2fa"
    after = web.cookies.get(SESSION)
    assert after != before  # SESS-02: a new token on re-authentication
    stale = TestClient(web.app)
    stale.cookies.set(SESSION, before)
    assert stale.get("/", follow_redirects=False).status_code == 303
    # Sent again, the action is carried out.
    again = post(web, "/account/2fa/recovery-codes", page="/account/2fa")
    assert again.status_code == 200 and len(re.findall(r"<li>([a-z2-9]{4}-[a-z2-9]{4})</li>", again.text)) == 10
    assert [e.result for e in events("auth.reauth")] == ["failed", "ok"]
    assert len(events("auth.mfa_recovery_codes")) == 1


def test_sess06_a_post_from_another_site_returns_home_and_htmx_is_told_where_to_go(web, person):
    who = person()
    login_form(web, who.user.username, who.password)
    age_reauth(web)
    token = csrf_from(web.get("/account/2fa").text)
    foreign = web.post("/account/2fa/disable", data={"csrf_token": token},
                       headers={"Referer": "https://evil.example/account/2fa"}, follow_redirects=False)
    assert foreign.headers["location"] == "/account/confirm?next=/"
    htmx = web.post("/account/2fa/disable", data={"csrf_token": token}, headers={**HX, "Referer": "x"},
                    follow_redirects=False)
    assert htmx.status_code == 401 and htmx.headers["HX-Redirect"] == "/account/confirm?next=/"
    # next= on the confirm page is same-origin only.
    page = web.get("/account/confirm?next=//evil.example/x")
    assert 'name="next" value="/"' in page.text
    done = web.post("/account/confirm", data={"password": who.password, "next": "https://evil.example/",
                                              "csrf_token": csrf_from(page.text)}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/"


def test_sess06_a_get_goes_to_the_confirm_page_and_back_to_itself():
    from web.guards import reauth_redirect

    scope = {"type": "http", "method": "GET", "path": "/users/7", "query_string": b"tab=roles", "headers": [],
             "scheme": "http", "server": ("testserver", 80), "state": {"htmx": None}}
    response = reauth_redirect(Request(scope))
    assert response.status_code == 303
    assert response.headers["location"] == "/account/confirm?next=/users/7%3Ftab%3Droles"
    assert parse_qs(urlsplit(response.headers["location"]).query)["next"] == ["/users/7?tab=roles"]


def test_sess06_a_password_change_from_an_old_login_confirms_first_even_with_a_temporary_password(web, person):
    who = person()
    with db.connection_context():  # a temporary password: every other page leads to the password form
        User.update(must_change_password=True).where(User.id == who.user.id).execute()
    login_form(web, who.user.username, who.password)
    age_reauth(web)
    new = "Một câu mật khẩu mới rất dài 2026"
    data = {"current": who.password, "new": new, "confirm": new}
    refused = web.post("/account/password", data={**data, "csrf_token": csrf_from(web.get("/account/password").text)},
                       headers={"Referer": "http://testserver/account/password"}, follow_redirects=False)
    assert refused.status_code == 303 and refused.headers["location"] == "/account/confirm?next=/account/password"
    with db.connection_context():
        assert accounts.passwords.verify_password(who.password, User.get_by_id(who.user.id).password_hash)
    page = web.get(refused.headers["location"], follow_redirects=False)
    assert page.status_code == 200  # the confirm page, not sent back to the password form in a loop
    done = web.post("/account/confirm", data={"password": who.password, "next": "/account/password",
                                              "csrf_token": csrf_from(page.text)}, follow_redirects=False)
    assert done.headers["location"] == "/account/password"
    changed = web.post("/account/password", data={**data, "csrf_token": csrf_from(web.get("/account/password").text)})
    assert changed.status_code == 200
    with db.connection_context():
        assert not User.get_by_id(who.user.id).must_change_password
        reauth_at = Session.get(Session.user == who.user.id).reauth_at
    assert reauth_at > utcnow() - dt.timedelta(minutes=1)


def test_sess06_granting_and_revoking_a_role_need_a_recent_login(web, person):
    admin = person(is_admin=True)
    enroll(admin.user)  # required for administrators here, and the confirm page then asks for a code
    member = person()
    with db.connection_context():
        province = Unit.get(Unit.code == "ROOT")
        secret = mfa.decrypt_secret(mfa.Totp.get(mfa.Totp.user == admin.user.id).secret, TEST_SECRET)
    login_form(web, admin.user.username, admin.password)
    assert verify(web, now_code(secret)).status_code == 303
    age_reauth(web)
    detail = f"/users/{member.user.id}"
    token = csrf_from(web.get(detail).text)
    data = {"role": "viewer", "unit": str(province.id), "csrf_token": token}
    refused = web.post(f"{detail}/grants", data=data, headers={"Referer": f"http://testserver{detail}"},
                       follow_redirects=False)
    assert refused.status_code == 303 and refused.headers["location"] == f"/account/confirm?next={detail}"
    with db.connection_context():
        assert Grant.select().where(Grant.user == member.user.id).count() == 0
    page = web.get(refused.headers["location"])
    done = web.post("/account/confirm", data={"password": admin.password, "code": code_at(secret, utcnow() + STEP),
                                              "next": detail, "csrf_token": csrf_from(page.text)},
                    follow_redirects=False)
    assert done.headers["location"] == detail
    granted = web.post(f"{detail}/grants", data={**data, "csrf_token": csrf_from(web.get(detail).text)},
                       follow_redirects=False)
    assert granted.status_code == 303
    with db.connection_context():
        grant = Grant.get(Grant.user == member.user.id)
    age_reauth(web)
    revoke = f"{detail}/grants/{grant.id}/revoke"
    refused = web.post(revoke, data={"csrf_token": csrf_from(web.get(detail).text)}, follow_redirects=False)
    assert refused.status_code == 303 and refused.headers["location"].startswith("/account/confirm")
    with db.connection_context():
        assert Grant.select().where(Grant.user == member.user.id).count() == 1


def test_no_totp_secret_code_or_recovery_code_in_the_audit_table(web, person):
    who = person()
    secret, codes = enroll(who.user)
    used = now_code(secret)
    login_form(web, who.user.username, who.password)
    verify(web, wrong_code(secret))
    verify(web, used)
    web.cookies.clear()
    login_form(web, who.user.username, who.password)
    verify(web, codes[0])
    regenerated = post(web, "/account/2fa/recovery-codes", page="/account/2fa")
    fresh = re.findall(r"<li>([a-z2-9]{4}-[a-z2-9]{4})</li>", regenerated.text)
    assert len(fresh) == 10
    with db.connection_context():
        columns = [c for c in AuditEvent.CHAINED if c != "at"]
        rows = db.execute_sql(f"SELECT {', '.join(columns)} FROM core_audit_event").fetchall()
    text = json.dumps([list(r) for r in rows], default=str, ensure_ascii=False)
    assert len(rows) >= 5
    for value in [secret, mfa.group_secret(secret), used, wrong_code(secret), *codes, *fresh,
                  *(c.replace("-", "") for c in codes + fresh)]:
        assert value not in text, value


def test_an_administrator_turns_off_the_2fa_of_someone_who_lost_their_phone(web, person):
    """The only way back for a person who lost both the phone and the recovery codes:
    the button asks for a recent login (SESS-06) and is recorded with its administrator."""
    admin = person(is_admin=True)
    enroll(admin.user)
    member = person()
    enroll(member.user)
    with db.connection_context():
        secret = mfa.decrypt_secret(mfa.Totp.get(mfa.Totp.user == admin.user.id).secret, TEST_SECRET)
    login_form(web, admin.user.username, admin.password)
    assert verify(web, now_code(secret)).status_code == 303
    detail = f"/users/{member.user.id}"
    page = web.get(detail)
    assert f"{detail}/mfa/reset" in page.text
    done = web.post(f"{detail}/mfa/reset", data={"csrf_token": csrf_from(page.text)}, follow_redirects=False)
    assert done.status_code == 303
    with db.connection_context():
        assert not mfa.is_enrolled(member.user.id)
        event = events("auth.mfa_disabled")[-1]
        assert event.actor_id == admin.user.id and event.object_id == str(member.user.id)
    assert f"{detail}/mfa/reset" not in web.get(detail).text  # nothing left to turn off
