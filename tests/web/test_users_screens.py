"""The account administration screens and "my sessions", through HTTP (issue 3).

Tree: Tỉnh Quảng Trị → Huyện Gio Linh (→ Xã Gio Mỹ, Xã Gio Hải), Huyện Cam Lộ (→ Xã Cam Hiếu,
Xã Cam Thành); one unit administrator (``unit_admin`` at the unit) and one member (``viewer`` at
the unit) per unit, a system administrator and a clerk at the province. security.md ids: ACL-02
(the authorisation matrix), ACL-03 (extra form fields), AUTH-05 (temporary passwords),
AUTH-10 and SESS-05 (disabling, revoking and ending sessions take effect at the next request).
Runs on SQLite and, with ``BAOCAO_TEST_DATABASE_URL``, on PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import re
from types import SimpleNamespace

import pytest
from starlette.testclient import TestClient

from core.accounts import login as accounts
from core.accounts.access import Grant, Role, RolePermission
from core.db import db
from core.models import Session, Unit, User, utcnow
from tests.conftest import HX, csrf_from
from tests.web.test_auth_flow import login_form

NODES = ("province", "giolinh", "giomy", "giohai", "camlo", "camhieu", "camthanh")
PARENT = {"province": None, "giolinh": "province", "camlo": "province", "giomy": "giolinh", "giohai": "giolinh",
          "camhieu": "camlo", "camthanh": "camlo"}
INSTRUCTION = ("Gửi mật khẩu tạm này cho người dùng bằng kênh an toàn; mật khẩu hết hạn sau 72 giờ "
               "và phải đổi ở lần đăng nhập đầu")


def below(node: str) -> set[str]:
    """The node and everything under it, from the map above (not from core.units.tree)."""
    def chain(n):
        while n is not None:
            yield n
            n = PARENT[n]
    return {n for n in NODES if node in set(chain(n))}


@pytest.fixture
def org(make_app):
    app = make_app()
    with TestClient(app) as client:
        with db.connection_context():
            units = {}
            for name, (code, label, kind) in {
                "province": ("44", "Tỉnh Quảng Trị", "province"), "giolinh": ("464", "Huyện Gio Linh", "district"),
                "camlo": ("465", "Huyện Cam Lộ", "district"), "giomy": ("19255", "Xã Gio Mỹ", "commune"),
                "giohai": ("19258", "Xã Gio Hải", "commune"), "camhieu": ("19366", "Xã Cam Hiếu", "commune"),
                "camthanh": ("19369", "Xã Cam Thành", "commune"),
            }.items():
                parent = units[PARENT[name]] if PARENT[name] else None
                units[name] = Unit.create(code=code, name=label, kind=kind, parent=parent)
            roles = {r.code: r for r in Role.select()}
            passwords = {}

            def user(username, unit, *role_codes, **kwargs):
                passwords[username] = accounts.random_password()
                created = accounts.create_user(username, f"Họ Tên {username}", passwords[username], unit, **kwargs)
                for code in role_codes:
                    Grant.create(user=created, role=roles[code], unit=unit)
                return created

            admins = {n: user(f"qt_{n}", units[n], "unit_admin") for n in NODES}
            members = {n: user(f"nv_{n}", units[n], "viewer") for n in NODES}
            system = user("qt_hethong", units["province"], is_admin=True)
            clerk = user("canbo", units["province"], "viewer")

        def login(who, into=None):
            target = into or client
            target.cookies.clear()
            response = login_form(target, who.username, passwords[who.username])
            assert response.status_code == 303, response.text
            return target

        yield SimpleNamespace(app=app, client=client, units=units, roles=roles, admins=admins, members=members,
                              system=system, clerk=clerk, passwords=passwords, login=login)


def token(client, path="/") -> str:
    return csrf_from(client.get(path).text)


def post(client, path, data=None, headers=None, csrf=None):
    return client.post(path, data={**(data or {}), "csrf_token": csrf or token(client)}, headers=headers or {},
                       follow_redirects=False)


def fresh(user) -> User:
    with db.connection_context():
        return User.get_by_id(user.id)


def grants(user) -> list[tuple[str, int]]:
    with db.connection_context():
        return sorted((g.role.code, g.unit_id) for g in Grant.select().where(Grant.user == user.id))


def logged_in(client) -> bool:
    return client.get("/", follow_redirects=False).status_code == 200


def second_browser(org, who) -> TestClient:
    """Another browser of the same person (its own cookie jar, its own session)."""
    other = TestClient(org.app)
    org.login(who, into=other)
    return other


def temp_password(html: str) -> str:
    match = re.search(r'<dd class="mono"><strong>([^<]+)</strong></dd>', html)
    assert match, "no temporary password shown"
    return match.group(1)


# -- ACL-02: the authorisation matrix ------------------------------------------------------------------------

def test_acl02_every_user_admin_route_answers_exactly_inside_the_administrators_subtree(org):
    """ACL-02 over the whole tree: for each administrator (one per unit, the system administrator
    and a clerk) and each member of each unit, every account route (detail, disable, enable,
    password reset, grant, revoke) is allowed exactly when the member's unit lies in the
    administrator's subtree; otherwise the answer is 403 (no right at all) or 404, shows nothing
    of the account and changes nothing. The list shows exactly the subtree's accounts."""
    wrong = []
    actors = [(n, a) for n, a in org.admins.items()] + [("system", org.system), ("clerk", org.clerk)]
    for name, actor in actors:
        client = org.login(actor)
        csrf = token(client)
        scope = set(NODES) if name == "system" else (set() if name == "clerk" else below(name))
        refused = {403} if name == "clerk" else {404}

        listing = client.get("/users")
        if name == "clerk":
            if listing.status_code != 403:
                wrong.append((name, "list", listing.status_code))
        else:
            shown = {n for n in NODES if f"nv_{n}<" in listing.text}
            if listing.status_code != 200 or shown != scope:
                wrong.append((name, "list", listing.status_code, sorted(shown ^ scope)))

        for node, target in org.members.items():
            inside = node in scope
            before = (fresh(target).password_hash, fresh(target).is_active, grants(target))
            answers = {"detail": client.get(f"/users/{target.id}")}
            answers["disable"] = post(client, f"/users/{target.id}/disable", csrf=csrf)
            answers["enable"] = post(client, f"/users/{target.id}/enable", csrf=csrf)
            answers["reset"] = post(client, f"/users/{target.id}/reset-password", csrf=csrf)
            answers["grant"] = post(client, f"/users/{target.id}/grants",
                                    {"role": "reporter" if name == "system" else "viewer",
                                     "unit": str(org.units[node].id)}, csrf=csrf)
            with db.connection_context():
                if inside and name == "system":
                    grant_id = Grant.get(Grant.user == target.id, Grant.role == org.roles["reporter"].id).id
                else:
                    grant_id = Grant.get(Grant.user == target.id, Grant.role == org.roles["viewer"].id).id
            answers["revoke"] = post(client, f"/users/{target.id}/grants/{grant_id}/revoke", csrf=csrf)
            for route, response in answers.items():
                expected = {200, 303} if inside else refused
                if response.status_code not in expected:
                    wrong.append((name, node, route, response.status_code))
                if not inside and (target.username in response.text or target.full_name in response.text):
                    wrong.append((name, node, route, "shows the account"))
            if inside:
                after = fresh(target)
                if after.password_hash == before[0] or not after.is_active:
                    wrong.append((name, node, "not reset or left disabled"))
                if name == "system" and grants(target) != before[2]:
                    wrong.append((name, node, "grants changed", grants(target)))
                if name != "system" and grants(target) != []:  # the viewer grant was granted again, then revoked
                    wrong.append((name, node, "grants", grants(target)))
                # Put the member back as it was for the next administrator.
                with db.connection_context():
                    Grant.delete().where(Grant.user == target.id).execute()
                    Grant.create(user=target, role=org.roles["viewer"], unit=org.units[node])
            elif (fresh(target).password_hash, fresh(target).is_active, grants(target)) != before:
                wrong.append((name, node, "changed from outside the subtree"))
    assert wrong == []


def test_acl02_creating_an_account_is_allowed_exactly_at_the_units_of_the_subtree(org):
    wrong = []
    for name, actor in [*org.admins.items(), ("system", org.system), ("clerk", org.clerk)]:
        client = org.login(actor)
        csrf = token(client)
        scope = set(NODES) if name == "system" else (set() if name == "clerk" else below(name))
        for node in NODES:
            username = f"moi_{name}_{node}"
            response = post(client, "/users/new", {"username": username, "full_name": "Người Mới",
                                                   "unit": str(org.units[node].id), "roles": "viewer"}, csrf=csrf)
            with db.connection_context():
                created = User.get_or_none(User.username == username)
            if node in scope:
                if response.status_code != 200 or created is None or created.unit_id != org.units[node].id:
                    wrong.append((name, node, response.status_code))
            elif response.status_code != (403 if name == "clerk" else 404) or created is not None:
                wrong.append((name, node, response.status_code, created is not None))
    assert wrong == []


def test_acl02_the_new_account_form_offers_only_the_subtree(org):
    client = org.login(org.admins["giolinh"])
    page = client.get("/users/new")
    assert page.status_code == 200
    offered = re.findall(r'<option value="(\d+)"', page.text)
    assert offered == [str(org.units[n].id) for n in ("giolinh", "giohai", "giomy")]  # tree order


def test_acl02_a_session_of_an_account_outside_the_subtree_cannot_be_ended(org):
    target = org.members["camhieu"]
    other = second_browser(org, target)
    with db.connection_context():
        session_id = Session.get(Session.user == target.id).id
        mine = org.members["giomy"]
    client = org.login(org.admins["giolinh"])
    # Neither through an account outside the subtree, nor by pairing it with one inside.
    assert post(client, f"/users/{target.id}/sessions/{session_id}/end").status_code == 404
    assert post(client, f"/users/{mine.id}/sessions/{session_id}/end").status_code == 404
    assert post(client, f"/users/{target.id}/sessions/end").status_code == 404
    assert logged_in(other)


# -- ACL-03: fields a form may not set ------------------------------------------------------------------------

def test_acl03_extra_fields_on_the_new_account_form_are_ignored(org):
    client = org.login(org.admins["giolinh"])
    response = post(client, "/users/new", {"username": "lanh_dao", "full_name": "Lãnh Đạo",
                                           "unit": str(org.units["giomy"].id), "is_admin": "1",
                                           "must_change_password": "0", "is_active": "0", "unit_id":
                                           str(org.units["province"].id), "password": "mật khẩu tự chọn"})
    assert response.status_code == 200
    with db.connection_context():
        created = User.get(User.username == "lanh_dao")
    assert not created.is_admin and created.must_change_password and created.is_active
    assert created.unit_id == org.units["giomy"].id
    assert login_form(TestClient(org.app), "lanh_dao", "mật khẩu tự chọn").status_code == 422


def test_acl03_a_grant_at_a_unit_outside_the_subtree_is_refused_and_changes_nothing(org):
    client = org.login(org.admins["giolinh"])
    target = org.members["giomy"]
    before = grants(target)
    outside = post(client, f"/users/{target.id}/grants", {"role": "viewer", "unit": str(org.units["camlo"].id)})
    assert outside.status_code == 422
    assert "Đơn vị này không thuộc phạm vi bạn quản trị." in outside.text
    assert grants(target) == before
    # A second unit under another name is ignored: only "unit" is read, and checked.
    extra = post(client, f"/users/{target.id}/grants", {"role": "unit_admin", "unit": str(org.units["giomy"].id),
                                                        "unit_id": str(org.units["province"].id),
                                                        "user_id": str(org.members["camlo"].id)})
    assert extra.status_code == 303
    assert grants(target) == sorted(before + [("unit_admin", org.units["giomy"].id)])
    assert grants(org.members["camlo"]) == [("viewer", org.units["camlo"].id)]


def test_acl03_an_action_acts_on_the_account_of_the_path_only(org):
    client = org.login(org.admins["giolinh"])
    inside, outside = org.members["giomy"], org.members["camlo"]
    response = post(client, f"/users/{inside.id}/disable", {"user_id": str(outside.id), "id": str(outside.id)})
    assert response.status_code == 303
    assert not fresh(inside).is_active and fresh(outside).is_active


def test_acl04_an_administrator_cannot_grant_themselves_or_a_role_above_their_own(org):
    me = org.admins["giomy"]
    client = org.login(me)
    own = post(client, f"/users/{me.id}/grants", {"role": "viewer", "unit": str(org.units["giomy"].id)})
    assert own.status_code == 422 and grants(me) == [("unit_admin", org.units["giomy"].id)]
    # Editing regimes is not delegable and this administrator does not hold it.
    with db.connection_context():
        editor = Role.create(code="ktxh_regime_editor", name="Soạn chế độ báo cáo KT-XH")
        RolePermission.create(role=editor, code="kinhte_xahoi.regime.edit")
    above = post(client, f"/users/{org.members['giomy'].id}/grants",
                 {"role": "ktxh_regime_editor", "unit": str(org.units["giomy"].id)})
    assert above.status_code == 422
    assert "Vai trò này có quyền mà chính bạn không có tại đơn vị đó" in above.text
    assert grants(org.members["giomy"]) == [("viewer", org.units["giomy"].id)]


def test_a_unit_administrator_cannot_take_over_a_system_administrator_or_a_peer(org):
    client = org.login(org.admins["province"])
    page = client.get(f"/users/{org.system.id}")
    assert page.status_code == 200 and "reset-password" not in page.text
    assert post(client, f"/users/{org.system.id}/reset-password").status_code == 403
    assert post(client, f"/users/{org.system.id}/disable").status_code == 403
    assert fresh(org.system).is_active
    # The province's own account: their own, not through this screen.
    mine = client.get(f"/users/{org.admins['province'].id}")
    assert "Đây là tài khoản của bạn" in mine.text and "/disable" not in mine.text
    assert post(client, f"/users/{org.admins['province'].id}/disable").status_code == 403


# -- AUTH-10, SESS-05: disabling and revoking take effect at once ------------------------------------------

@pytest.mark.parametrize("action", ["disable", "revoke", "reset-password", "end-all"])
def test_auth10_sess05_the_target_is_logged_out_at_their_next_request(org, action):
    target = org.members["giomy"]
    browser = second_browser(org, target)
    assert logged_in(browser)
    client = org.login(org.admins["giolinh"])
    with db.connection_context():
        grant_id = Grant.get(Grant.user == target.id).id
    path = {"disable": f"/users/{target.id}/disable", "revoke": f"/users/{target.id}/grants/{grant_id}/revoke",
            "reset-password": f"/users/{target.id}/reset-password",
            "end-all": f"/users/{target.id}/sessions/end"}[action]
    assert post(client, path).status_code in (200, 303)
    response = browser.get("/", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/login")
    assert browser.get("/", headers=HX, follow_redirects=False).headers.get("HX-Redirect", "").startswith("/login")


def _api_token(user, can_write=False) -> str:
    from core.accounts import api_tokens

    with db.connection_context():
        return api_tokens.create_token(user, "Máy chủ thống kê", 30, can_write=can_write)[1]


def _api_works(org, token) -> bool:
    answer = TestClient(org.app).get("/api/v1/units", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code in (200, 401)
    return answer.status_code == 200


def test_auth05_a_password_change_logs_out_the_other_browsers_and_stops_the_api_tokens(org):
    me = org.members["camhieu"]
    other = second_browser(org, me)
    tokens = [_api_token(me), _api_token(me, can_write=True)]
    assert all(_api_works(org, t) for t in tokens)
    client = org.login(me)
    new = "Một câu mật khẩu mới rất dài 2026"
    changed = post(client, "/account/password", {"current": org.passwords[me.username], "new": new, "confirm": new},
                   csrf=token(client, "/account/password"))
    assert changed.status_code == 200
    assert logged_in(client)  # the browser that made the change stays in
    assert not logged_in(other)
    assert not any(_api_works(org, t) for t in tokens)


def test_auth05_a_reset_logs_out_everywhere_and_the_tokens_stay_dead_after_the_new_password(org):
    target = org.members["camthanh"]
    browser = second_browser(org, target)
    api = _api_token(target, can_write=True)
    client = org.login(org.admins["camlo"])
    temporary = temp_password(post(client, f"/users/{target.id}/reset-password").text)
    assert not logged_in(browser) and not _api_works(org, api)
    browser.cookies.clear()
    assert login_form(browser, target.username, temporary).status_code == 303
    new = "Một câu mật khẩu mới rất dài 2026"
    assert post(browser, "/account/password", {"current": temporary, "new": new, "confirm": new},
                csrf=token(browser, "/account/password")).status_code == 200
    assert logged_in(browser) and not _api_works(org, api)


def test_auth10_a_disabled_account_cannot_log_in_until_enabled(org):
    target = org.members["giohai"]
    client = org.login(org.admins["giolinh"])
    assert post(client, f"/users/{target.id}/disable").headers["location"] == f"/users/{target.id}?done=disabled"
    page = client.get(f"/users/{target.id}?done=disabled")
    assert "Đã khóa tài khoản. Mọi phiên đăng nhập của người này đã kết thúc." in page.text
    assert "Mở lại tài khoản" in page.text and "data-confirm=" in page.text
    assert login_form(TestClient(org.app), target.username, org.passwords[target.username]).status_code == 422
    assert post(client, f"/users/{target.id}/enable").status_code == 303
    assert login_form(TestClient(org.app), target.username, org.passwords[target.username]).status_code == 303


def test_an_administrator_ends_one_session_of_an_account(org):
    target = org.members["giomy"]
    first, second = second_browser(org, target), second_browser(org, target)
    client = org.login(org.admins["giolinh"])
    page = client.get(f"/users/{target.id}")
    ends = re.findall(rf'action="(/users/{target.id}/sessions/\d+/end)"', page.text)
    assert len(ends) == 2
    assert post(client, ends[0]).status_code == 303
    assert sorted([logged_in(first), logged_in(second)]) == [False, True]


def test_unlock_appears_only_for_a_locked_account_and_lifts_the_lock(org):
    target = org.members["giomy"]
    client = org.login(org.admins["giolinh"])
    assert "/unlock" not in client.get(f"/users/{target.id}").text
    with db.connection_context():
        User.update(failed_logins=5, locked_until=utcnow() + dt.timedelta(minutes=30)).where(
            User.id == target.id).execute()
    page = client.get(f"/users/{target.id}")
    assert "/unlock" in page.text and "Tạm khóa do nhập sai" in page.text
    assert post(client, f"/users/{target.id}/unlock").status_code == 303
    assert fresh(target).locked_until is None
    assert login_form(TestClient(org.app), target.username, org.passwords[target.username]).status_code == 303


# -- AUTH-05: the temporary password -----------------------------------------------------------------------

def test_auth05_a_new_accounts_temporary_password_is_shown_once_logs_in_once_and_forces_a_change(org):
    client = org.login(org.admins["giolinh"])
    response = post(client, "/users/new", {"username": "nguyenvana", "full_name": "Nguyễn Văn A",
                                           "unit": str(org.units["giomy"].id), "roles": "viewer"})
    assert response.status_code == 200 and INSTRUCTION in response.text
    password = temp_password(response.text)
    assert "location" not in response.headers  # shown in this answer, never carried in a URL
    with db.connection_context():
        user = User.get(User.username == "nguyenvana")
    assert password not in client.get(f"/users/{user.id}").text  # never shown again
    assert password not in client.get("/users").text

    browser = TestClient(org.app)
    assert login_form(browser, "nguyenvana", password).status_code == 303
    forced = browser.get("/", follow_redirects=False)
    assert forced.status_code == 303 and forced.headers["location"] == "/account/password"
    assert browser.get("/account/sessions", follow_redirects=False).headers["location"] == "/account/password"
    new = "Sông Hiếu chảy qua Đông Hà mùa nước lên"
    changed = post(browser, "/account/password", {"current": password, "new": new, "confirm": new},
                   csrf=token(browser, "/account/password"))
    assert changed.status_code == 200 and logged_in(browser)
    assert 'href="/account/sessions"' in changed.text  # SESS-05: offered to end the other sessions
    after = fresh(user)
    assert not after.must_change_password and after.password_expires_at is None
    assert login_form(TestClient(org.app), "nguyenvana", password).status_code == 422  # once only
    assert login_form(TestClient(org.app), "nguyenvana", new).status_code == 303


def test_auth05_an_expired_temporary_password_does_not_log_in(org):
    client = org.login(org.admins["giolinh"])
    target = org.members["giomy"]
    response = post(client, f"/users/{target.id}/reset-password")
    assert response.status_code == 200 and INSTRUCTION in response.text
    assert "Đã cấp mật khẩu tạm mới" in response.text
    password = temp_password(response.text)
    assert login_form(TestClient(org.app), target.username, org.passwords[target.username]).status_code == 422
    with db.connection_context():
        User.update(password_expires_at=utcnow() - dt.timedelta(seconds=1)).where(User.id == target.id).execute()
    assert login_form(TestClient(org.app), target.username, password).status_code == 422
    assert "Mật khẩu tạm đã hết hạn" in client.get(f"/users/{target.id}").text


def test_the_temporary_password_hours_follow_the_settings(make_app, make_settings, make_user):
    app = make_app(make_settings(temp_password_hours=24))
    with TestClient(app) as client:
        user, password = make_user(is_admin=True)
        assert login_form(client, user.username, password).status_code == 303
        with db.connection_context():
            unit_id = Unit.get(Unit.code == "ROOT").id
        response = post(client, "/users/new", {"username": "hai_bon", "full_name": "Hai Bốn", "unit": str(unit_id)})
        assert "mật khẩu hết hạn sau 24 giờ" in response.text
        with db.connection_context():
            created = User.get(User.username == "hai_bon")
        assert dt.timedelta(hours=23, minutes=59) < created.password_expires_at - utcnow() <= dt.timedelta(hours=24)


# -- the screens: forms, 422, htmx, menu ------------------------------------------------------------------

def test_an_invalid_new_account_is_shown_again_with_field_messages(org):
    client = org.login(org.admins["giolinh"])
    response = post(client, "/users/new", {"username": "a b", "full_name": "", "unit": "",
                                           "roles": "viewer"})
    assert response.status_code == 422
    assert 'name="csrf_token"' in response.text and 'aria-invalid="true"' in response.text
    assert "Chưa lưu được. Hãy sửa các mục có thông báo bên dưới." in response.text
    assert "Không được để trống." in response.text
    with_unit = post(client, "/users/new", {"username": "a b", "full_name": "Tên", "unit": str(org.units["giomy"].id),
                                            "roles": "viewer"})
    assert with_unit.status_code == 422 and "Tên đăng nhập gồm 3–64 ký tự" in with_unit.text
    assert re.search(rf'<option value="{org.units["giomy"].id}" selected>', with_unit.text)
    assert 'value="viewer" checked' in with_unit.text and 'value="Tên"' in with_unit.text
    partial = post(client, "/users/new", {"username": "", "full_name": "", "unit": ""}, headers=HX)
    assert partial.status_code == 422 and "<html" not in partial.text and 'id="core-user-form"' in partial.text


def test_the_list_filters_on_the_server_and_as_an_htmx_fragment(org):
    with db.connection_context():
        User.update(full_name="Nguyễn Thị Đào").where(User.id == org.members["giomy"].id).execute()
    client = org.login(org.system)
    page = client.get("/users?q=nguyen+thi+dao")
    assert page.status_code == 200 and 'id="core-users-table"' in page.text and "<html" in page.text
    assert "nv_giomy" in page.text and "nv_giohai" not in page.text
    fragment = client.get("/users", params={"unit": org.units["camlo"].id}, headers=HX)
    assert fragment.status_code == 200 and "<html" not in fragment.text
    assert 'id="core-users-table"' in fragment.text
    assert "nv_camhieu" in fragment.text and "nv_giomy" not in fragment.text
    disabled = client.get("/users?status=disabled")
    assert "Không có tài khoản nào khớp với điều kiện lọc." in disabled.text
    # The form names every filter, so it works without JavaScript.
    assert 'method="get"' in page.text and 'name="q"' in page.text and 'name="status"' in page.text


def test_an_action_with_htmx_answers_with_the_account_panel(org):
    client = org.login(org.admins["giolinh"])
    target = org.members["giomy"]
    response = post(client, f"/users/{target.id}/disable", headers=HX)
    assert response.status_code == 200 and "<html" not in response.text
    assert 'id="core-user-detail"' in response.text and "Đã khóa tài khoản" in response.text
    invalid = post(client, f"/users/{target.id}/grants", {"role": "", "unit": ""}, headers=HX)
    assert invalid.status_code == 422 and 'id="grant-role-error"' in invalid.text


def test_every_form_on_the_account_pages_carries_the_csrf_field(org):
    client = org.login(org.system)
    target = org.members["giomy"]
    second_browser(org, target)
    with db.connection_context():
        User.update(locked_until=utcnow() + dt.timedelta(minutes=5)).where(User.id == target.id).execute()
    for path in ("/users", "/users/new", f"/users/{target.id}", "/account/sessions"):
        html = client.get(path).text
        for form in re.findall(r"<form\b.*?</form>", html, flags=re.S):
            if 'method="post"' in form:
                assert 'name="csrf_token"' in form, (path, form[:200])


def test_the_menu_shows_the_accounts_to_administrators_and_my_sessions_to_everyone(org):
    client = org.login(org.admins["camlo"])
    home = client.get("/").text
    assert 'href="/users"' in home and "Tài khoản người dùng" in home
    assert 'href="/account/sessions"' in home and "Phiên đăng nhập của tôi" in home
    client = org.login(org.clerk)
    home = client.get("/").text
    assert 'href="/users"' not in home and 'href="/account/sessions"' in home
    assert client.get("/users").status_code == 403


def test_the_screens_read_in_english_too(org):
    client = org.login(org.admins["giolinh"])
    post(client, "/lang", {"lang": "en", "next": "/"})
    assert "User accounts" in client.get("/users").text
    response = post(client, f"/users/{org.members['giomy'].id}/reset-password")
    assert "Send this temporary password to the user through a secure channel" in response.text


# -- my sessions (SESS-05) -------------------------------------------------------------------------------

def test_sess05_a_user_sees_their_sessions_and_ends_the_others(org):
    me = org.members["giomy"]
    laptop = second_browser(org, me)
    phone = TestClient(org.app, headers={"User-Agent": "Mozilla/5.0 (Linux; Android 14) Chrome/126.0 Mobile"})
    org.login(me, into=phone)
    desk = org.login(me)
    page = desk.get("/account/sessions")
    assert page.status_code == 200
    assert page.text.count('<tr id="session-') == 3
    assert page.text.count("Phiên đang dùng") == 1 and "Chrome · Android" in page.text
    ends = re.findall(r'action="(/account/sessions/\d+/end)"', page.text)
    assert len(ends) == 2  # not for the session in use
    response = post(desk, "/account/sessions/others/end")
    assert response.status_code == 303 and response.headers["location"] == "/account/sessions?done=others"
    assert not logged_in(laptop) and not logged_in(phone) and logged_in(desk)
    after = desk.get("/account/sessions?done=others").text
    assert "Bạn chỉ đang đăng nhập ở đây." in after and "Đã kết thúc mọi phiên đăng nhập khác" in after


def test_sess05_a_user_ends_one_other_session_with_htmx(org):
    me = org.members["giomy"]
    laptop = second_browser(org, me)
    desk = org.login(me)
    end = re.findall(r'action="(/account/sessions/\d+/end)"', desk.get("/account/sessions").text)
    response = post(desk, end[0], headers=HX)
    assert response.status_code == 200 and "<html" not in response.text and 'id="core-my-sessions"' in response.text
    assert not logged_in(laptop) and logged_in(desk)


def test_sess05_nobody_ends_another_persons_session_from_their_own_page(org):
    victim = org.members["camlo"]
    browser = second_browser(org, victim)
    with db.connection_context():
        session_id = Session.get(Session.user == victim.id).id
    client = org.login(org.members["giomy"])
    assert post(client, f"/account/sessions/{session_id}/end").status_code == 404
    assert logged_in(browser)
