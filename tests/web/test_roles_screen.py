"""The roles screen ``/admin/roles`` through HTTP (issue 13 item 5).

A system administrator lists the built-in roles, a plugin's roles and the roles defined here;
defines, changes and deletes a role of their own; cannot change the others; cannot delete a role
still granted. A unit administrator neither sees the screen nor grants a defined role holding a
right they lack (ACL-04). Runs on SQLite and, with ``BAOCAO_TEST_DATABASE_URL``, on PostgreSQL.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from starlette.testclient import TestClient

from core.accounts import login as accounts
from core.accounts.access import Grant, Role
from core.audit import AuditEvent
from core.db import db
from core.models import Unit
from core.plugins import BUILTIN_PLUGINS
from tests.conftest import csrf_from
from tests.fixtures.plugins import fx, log_in


@pytest.fixture
def site(make_app):
    app = make_app(builtins=BUILTIN_PLUGINS + fx("fx_roles"), strict=True)
    with TestClient(app) as client:
        with db.connection_context():
            province = Unit.create(code="44", name="Tỉnh Quảng Trị", kind="province")
            commune = Unit.create(code="19255", name="Xã Gio Mỹ", kind="commune", parent=province)
            people = {}
            for username, unit, is_admin, role in (("quantri", province, True, None),
                                                   ("qt_xa", commune, False, "unit_admin"),
                                                   ("nv_xa", commune, False, "viewer")):
                password = accounts.random_password()
                user = accounts.create_user(username, f"Họ Tên {username}", password, unit, is_admin=is_admin)
                if role:
                    Grant.create(user=user, role=Role.get(Role.code == role), unit=unit)
                people[username] = (user, password)

        def login(username):
            client.cookies.clear()
            log_in(client, *people[username])
            return client

        yield SimpleNamespace(client=client, login=login, people=people, commune=commune)


def post(client, path, data, referer="/admin/roles"):
    token = csrf_from(client.get(referer).text)
    return client.post(path, data={**data, "csrf_token": token}, follow_redirects=False)


def role(code: str) -> Role | None:
    with db.connection_context():
        return Role.get_or_none(Role.code == code)


def codes(code: str) -> set[str]:
    with db.connection_context():
        return set(Role.get(Role.code == code).codes())


def test_the_list_shows_built_in_plugin_and_defined_roles_in_their_groups(site):
    client = site.login("quantri")
    home = client.get("/")
    assert 'href="/admin/roles"' in home.text  # the admin menu's entry
    page = client.get("/admin/roles")
    assert page.status_code == 200
    assert "Vai trò sẵn có của hệ thống" in page.text and "Xem số liệu" in page.text
    assert "Vai trò của phân hệ Phân hệ sổ mẫu" in page.text and "Người giữ sổ mẫu" in page.text
    assert "Vai trò định nghĩa tại đây" in page.text and "Chưa có vai trò nào." in page.text
    # The plugin's additions to a built-in role are listed with the role's permissions.
    assert "Xem sổ mẫu" in page.text and "Xem số liệu kinh tế - xã hội" in page.text


def test_the_form_groups_the_declared_permissions_by_plugin(site):
    client = site.login("quantri")
    form = client.get("/admin/roles/new")
    assert form.status_code == 200
    assert 'id="permissions-core"' in form.text and 'id="permissions-fx_roles"' in form.text
    assert 'value="fx_roles.ledger.edit"' in form.text and "Sửa sổ mẫu" in form.text
    assert 'value="core.role.admin"' not in form.text  # system administrators' own, in no role


def test_a_system_administrator_defines_changes_and_deletes_a_role(site):
    client = site.login("quantri")
    created = post(client, "/admin/roles/new", {"code": "thu_ky", "name": "Thư ký", "name_en": "Secretary",
                                                "permissions": ["core.unit.view", "fx_roles.ledger.view"]},
                   referer="/admin/roles/new")
    assert created.status_code == 303
    saved = role("thu_ky")
    assert saved.origin == "local" and codes("thu_ky") == {"core.unit.view", "fx_roles.ledger.view"}
    assert created.headers["location"] == f"/admin/roles/{saved.id}?done=created"
    page = client.get(created.headers["location"])
    assert "Đã tạo vai trò." in page.text and 'value="Secretary"' in page.text
    changed = post(client, f"/admin/roles/{saved.id}", {"code": "other", "name": "Thư ký đơn vị",
                                                        "permissions": ["core.report.submit"]},
                   referer=f"/admin/roles/{saved.id}")
    assert changed.status_code == 303
    assert role("thu_ky").name == "Thư ký đơn vị" and codes("thu_ky") == {"core.report.submit"}
    deleted = post(client, f"/admin/roles/{saved.id}/delete", {}, referer=f"/admin/roles/{saved.id}")
    assert deleted.status_code == 303 and role("thu_ky") is None
    with db.connection_context():
        actions = [e.action for e in AuditEvent.select().where(AuditEvent.object_type == "role")
                   .order_by(AuditEvent.id)]
    assert actions == ["role.create", "role.edit", "role.delete"]
    trail = client.get("/audit")
    assert "Tạo vai trò" in trail.text and "Xoá vai trò" in trail.text


def test_bad_input_comes_back_with_the_message_at_the_field(site):
    client = site.login("quantri")
    answer = post(client, "/admin/roles/new", {"code": "Thư ký", "name": "", "permissions": ["core.nothing"]},
                  referer="/admin/roles/new")
    assert answer.status_code == 422
    assert "Mã chỉ gồm chữ thường không dấu" in answer.text and 'id="err-name"' in answer.text
    assert 'id="err-permissions"' in answer.text and role("Thư ký") is None


def test_built_in_and_plugin_roles_are_read_only(site):
    client = site.login("quantri")
    for code in ("viewer", "fx_roles.keeper"):
        target = role(code)
        page = client.get(f"/admin/roles/{target.id}")
        assert page.status_code == 200 and 'id="role-readonly"' in page.text
        assert "Sao chép thành vai trò mới" in page.text
        before = codes(code)
        answer = post(client, f"/admin/roles/{target.id}", {"name": "Khác", "permissions": sorted(before)
                                                            + ["core.audit.view"]})
        assert answer.status_code == 403 and codes(code) == before
        assert post(client, f"/admin/roles/{target.id}/delete", {}).status_code == 403 and role(code)
    copy = client.get(f"/admin/roles/new?from={role('fx_roles.keeper').id}")
    assert 'value="fx_roles.ledger.edit" checked' in copy.text


def test_a_granted_role_is_not_deleted_and_the_page_says_why(site):
    client = site.login("quantri")
    post(client, "/admin/roles/new", {"code": "thu_ky", "name": "Thư ký", "permissions": ["core.unit.view"]},
         referer="/admin/roles/new")
    with db.connection_context():
        Grant.create(user=site.people["nv_xa"][0], role=role("thu_ky"), unit=site.commune)
    answer = post(client, f"/admin/roles/{role('thu_ky').id}/delete", {})
    assert answer.status_code == 409
    assert "Không xoá được: vai trò đang được cấp cho 1 lượt" in answer.text and role("thu_ky") is not None


def test_a_unit_administrator_has_no_roles_screen(site):
    client = site.login("qt_xa")
    assert 'href="/admin/roles"' not in client.get("/").text
    assert client.get("/admin/roles").status_code == 403
    assert post(client, "/admin/roles/new", {"code": "thu_ky", "name": "Thư ký",
                                             "permissions": ["core.unit.view"]}, referer="/").status_code == 403
    assert role("thu_ky") is None


def test_a_unit_administrator_cannot_grant_a_new_role_holding_a_right_they_lack(site):
    admin = site.login("quantri")
    for code, permissions in (("ban_hanh", ["core.unit.view", "core.regime.issue"]),
                              ("bao_cao", ["core.unit.view", "core.report.submit"])):
        post(admin, "/admin/roles/new", {"code": code, "name": code, "permissions": permissions},
             referer="/admin/roles/new")
    client = site.login("qt_xa")
    member = site.people["nv_xa"][0]
    detail = f"/users/{member.id}"
    above = post(client, f"{detail}/grants", {"role": "ban_hanh", "unit": str(site.commune.id)}, referer=detail)
    assert above.status_code == 422
    assert "Vai trò này có quyền mà chính bạn không có tại đơn vị đó" in above.text
    within = post(client, f"{detail}/grants", {"role": "bao_cao", "unit": str(site.commune.id)}, referer=detail)
    assert within.status_code == 303
    with db.connection_context():
        held = sorted(g.role.code for g in Grant.select().where(Grant.user == member.id))
    assert held == ["bao_cao", "viewer"]


def test_a_plugin_page_follows_the_permission_its_role_brings(site):
    client = site.login("nv_xa")  # a viewer: the plugin added its view permission to that role
    assert client.get("/p/fx_roles/").status_code == 200
    assert client.post("/p/fx_roles/edit", data={"csrf_token": csrf_from(client.get("/").text)}).status_code == 403
