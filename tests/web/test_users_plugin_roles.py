"""The accounts and roles screens and the roles a plugin gives (issue 15 follow-up), through HTTP.

The delegated administrator's role (chuyen_nganh) is not in the role picker of an account's page
nor of the new-account form, and a grant of it sent anyway answers 422 with the message and saves
nothing; the roles screen says it is not granted by hand. An account's page lists, read-only, the
roles a delegation in force gives it, with where and from which plugin, at one statement more. The
department's unit administrator sees no way to take control of the delegated administrator, nor to
change their roles, and is refused (403) if they try, until the delegation is revoked. Runs on
SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest
from starlette.testclient import TestClient

from core.accounts.access import Grant, Role
from core.db import db
from core.models import User
from plugins.chuyen_nganh import delegation as svc
from plugins.chuyen_nganh.rights import DELEGATED_ROLE, SECTOR_ADMIN_ROLE
from tests.fixtures.plugins import log_in
from tests.plugins.test_chuyen_nganh_delegation import application, decision, world  # noqa: F401 — fixture
from tests.web.test_autosave_queries import QueryCounter
from web.testing import csrf_from

FIRST_DAY = dt.datetime(2026, 12, 1, 3, 0)  # decision() puts the delegation in force from 1/12/2026
GIVEN = ("Quản trị lĩnh vực được ủy quyền — tại Sở Nông nghiệp và Môi trường "
         "(theo phân hệ Báo cáo chuyên ngành)")


@pytest.fixture
def org(world, client, make_user, frozen_clock):  # noqa: F811 — the delegation tests' fixture
    """The delegation tests' world, decided (in force from 1/12/2026), with a system administrator
    and the department's unit administrator who log in here; the deputy the decision names holds
    ``viewer`` at the department, granted by hand."""
    system = make_user(unit=world.tree.province, is_admin=True)
    unit_admin = make_user(unit=world.tree.department, roles=("unit_admin",))
    d = svc.apply(world.applicant, application(world))
    svc.record_decision(world.operator, d.id, decision())
    viewer = Grant.create(user=world.deputy.id, role=Role.get(Role.code == "viewer"), unit=world.tree.department)

    def browser(who):
        """A new browser logged in as ``who`` now (after the clock moved, an old session has expired)."""
        other = TestClient(client.app)
        log_in(other, *who)
        return other

    return SimpleNamespace(w=world, id=d.id, system=system, unit_admin=unit_admin, viewer=viewer, browser=browser,
                           deputy=world.deputy, department=world.tree.department, clock=frozen_clock)


def post(client, path, data=None):
    token = csrf_from(client.get("/account/sessions").text)
    return client.post(path, data={**(data or {}), "csrf_token": token}, follow_redirects=False)


def grants(user_id) -> list[str]:
    with db.connection_context():
        return sorted(g.role.code for g in Grant.select().where(Grant.user == user_id))


def section(html: str, element_id: str) -> str:
    return html.split(f'id="{element_id}"', 1)[1].split("</section>", 1)[0] if f'id="{element_id}"' in html else ""


def test_the_role_pickers_never_offer_the_delegated_role_and_a_grant_of_it_is_refused(org):
    system = org.browser(org.system)
    page = system.get(f"/users/{org.deputy.id}")
    assert page.status_code == 200
    assert f'value="{SECTOR_ADMIN_ROLE}"' in page.text and f'value="{DELEGATED_ROLE}"' not in page.text
    new = system.get("/users/new")
    assert f'value="{SECTOR_ADMIN_ROLE}"' in new.text and f'value="{DELEGATED_ROLE}"' not in new.text

    refused = post(system, f"/users/{org.deputy.id}/grants", {"role": DELEGATED_ROLE, "unit": str(org.department.id)})
    assert refused.status_code == 422
    assert "Vai trò này không cấp tay được" in refused.text and 'id="grant-role-error"' in refused.text
    assert grants(org.deputy.id) == ["viewer"]
    created = post(system, "/users/new", {"username": "qt_uyquyen", "full_name": "Quản trị được ủy quyền",
                                          "unit": str(org.department.id), "roles": [DELEGATED_ROLE]})
    assert created.status_code == 422 and "Vai trò này không cấp tay được" in created.text
    with db.connection_context():
        assert User.get_or_none(User.username == "qt_uyquyen") is None


def test_the_refusal_reads_in_english_too(org):
    system = org.browser(org.system)
    switched = system.post("/lang", data={"lang": "en", "next": "/", "csrf_token": csrf_from(system.get("/").text)},
                           follow_redirects=False)
    assert switched.status_code == 303
    refused = post(system, f"/users/{org.deputy.id}/grants", {"role": DELEGATED_ROLE, "unit": str(org.department.id)})
    assert refused.status_code == 422 and "This role cannot be granted by hand" in refused.text


def test_the_roles_screen_says_the_delegated_role_is_not_granted_by_hand(org):
    system = org.browser(org.system)
    page = system.get("/admin/roles").text
    row = page.split(f'id="role-{DELEGATED_ROLE}"', 1)[1].split("</tr>", 1)[0]
    assert "Không cấp tay" in row
    assert "Không cấp tay" not in page.split(f'id="role-{SECTOR_ADMIN_ROLE}"', 1)[1].split("</tr>", 1)[0]
    with db.connection_context():
        role_id = Role.get(Role.code == DELEGATED_ROLE).id
    assert 'id="role-not-assignable"' in system.get(f"/admin/roles/{role_id}").text


def test_an_accounts_page_lists_the_roles_a_delegation_gives_while_it_is_in_force(org):
    def roles_shown():
        text = org.browser(org.system).get(f"/users/{org.deputy.id}").text
        return section(text, "user-grants")

    before = roles_shown()  # decided, not yet in force
    assert "Quyền do phân hệ cấp" not in before and "Xem số liệu" in before
    org.clock(FIRST_DAY)
    in_force = roles_shown()
    assert "Quyền do phân hệ cấp" in in_force and GIVEN in in_force
    # Read-only: no revoke button of its own; the grant made by hand keeps its own.
    plugin_list = in_force.split('id="user-plugin-roles"', 1)[1].split("</ul>", 1)[0]
    assert "<form" not in plugin_list and f"/grants/{org.viewer.id}/revoke" in in_force
    svc.revoke(org.w.operator, org.id, "Bộ đã triển khai hệ thống ngành")
    assert "Quyền do phân hệ cấp" not in roles_shown()


def test_the_page_asks_one_statement_more_for_the_roles_a_delegation_gives(org):
    def statements():
        browser = org.browser(org.system)
        with QueryCounter(db.obj) as counter:
            counter.start()
            page = browser.get(f"/users/{org.deputy.id}")
            found = counter.stop()
        assert page.status_code == 200
        return found, page.text

    before, text = statements()  # the plugin is asked already; it gives nothing yet
    assert GIVEN not in text
    org.clock(FIRST_DAY)
    after, text = statements()
    assert GIVEN in text
    assert len(after) - len(before) == 1, after  # the names of the units where the roles are held


def test_the_departments_unit_administrator_cannot_take_control_until_the_delegation_is_revoked(org):
    org.clock(FIRST_DAY)
    unit_admin = org.browser(org.unit_admin)
    page = unit_admin.get(f"/users/{org.deputy.id}")
    assert page.status_code == 200
    assert GIVEN in page.text and "Bạn không thay đổi được tài khoản này" in page.text
    assert 'id="user-grants-locked"' in page.text and 'id="grant-form"' not in page.text
    for action in ("reset-password", "disable", "unlock", "mfa/reset", "sessions/end"):
        assert f"/users/{org.deputy.id}/{action}" not in page.text, action
    assert f"/grants/{org.viewer.id}/revoke" not in page.text

    department = str(org.department.id)
    for path, data in (("reset-password", None), ("disable", None), ("sessions/end", None),
                       ("grants", {"role": "reporter", "unit": department}),
                       (f"grants/{org.viewer.id}/revoke", None)):
        assert post(unit_admin, f"/users/{org.deputy.id}/{path}", data).status_code == 403, path
    with db.connection_context():
        assert User.get_by_id(org.deputy.id).is_active and not User.get_by_id(org.deputy.id).must_change_password
    assert grants(org.deputy.id) == ["viewer"]

    svc.revoke(org.w.operator, org.id, "Bộ đã triển khai hệ thống ngành")
    page = unit_admin.get(f"/users/{org.deputy.id}")
    assert GIVEN not in page.text and 'id="grant-form"' in page.text
    assert f"/users/{org.deputy.id}/reset-password" in page.text
    assert post(unit_admin, f"/users/{org.deputy.id}/grants", {"role": "reporter", "unit": department}).status_code == 303
    assert grants(org.deputy.id) == ["reporter", "viewer"]
    assert post(unit_admin, f"/users/{org.deputy.id}/disable").status_code == 303
    with db.connection_context():
        assert not User.get_by_id(org.deputy.id).is_active
