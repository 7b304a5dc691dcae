"""The unit pages show exactly the subtrees where the user holds ``core.unit.view``
(security.md ACL-02): another unit's page answers 404, like one that does not exist."""

from __future__ import annotations

import re

import pytest
from starlette.testclient import TestClient

from core.accounts import login as accounts
from core.accounts.access import Grant, Role
from core.db import db
from core.models import Unit
from tests.conftest import HX
from tests.fixtures.plugins import log_in


@pytest.fixture
def tree(make_app):
    app = make_app()
    with TestClient(app) as client:
        with db.connection_context():
            province = Unit.create(code="44", name="Tỉnh Quảng Trị", kind="province")
            department = Unit.create(code="QT.STC", name="Sở Tài chính", kind="department", parent=province)
            dong_hoi = Unit.create(code="18880", name="Phường Đồng Hới", kind="commune", parent=province)
            con_tien = Unit.create(code="19195", name="Xã Cồn Tiên", kind="commune", parent=province)
            reporter = Role.get(Role.code == "reporter")
            passwords = {}

            def person(username, unit, *, is_admin=False, grant=True):
                passwords[username] = accounts.random_password()
                user = accounts.create_user(username, username, passwords[username], unit, is_admin=is_admin)
                if grant:
                    Grant.create(user=user, role=reporter, unit=unit)
                return user

            people = {"admin": person("quantri", province, is_admin=True, grant=False),
                      "commune": person("phuongdonghoi", dong_hoi),
                      "department": person("sotaichinh", department),
                      "nobody": person("khongquyen", con_tien, grant=False)}

        def as_user(key):
            client.cookies.clear()
            log_in(client, people[key], passwords[people[key].username])
            return client

        yield as_user, {"province": province, "department": department, "dong_hoi": dong_hoi,
                        "con_tien": con_tien}


def unit_links(html):
    return set(re.findall(r'href="/units/(\d+)"', html))


@pytest.mark.parametrize("who, visible", [
    ("admin", {"province", "department", "dong_hoi", "con_tien"}),
    ("commune", {"dong_hoi"}),
    ("department", {"department"}),
])
def test_acl_02_each_user_sees_and_opens_only_their_subtree(tree, who, visible):
    as_user, units = tree
    client = as_user(who)
    listing = client.get("/units")
    assert listing.status_code == 200
    assert unit_links(listing.text) == {str(units[k].id) for k in visible}
    for key, unit in units.items():
        page = client.get(f"/units/{unit.id}")
        if key in visible:
            assert page.status_code == 200 and unit.name in page.text
        else:
            assert page.status_code == 404 and unit.name not in page.text


def test_acl_02_a_user_without_the_right_gets_403_and_a_missing_unit_404(tree):
    as_user, units = tree
    client = as_user("nobody")
    assert client.get("/units").status_code == 403
    assert client.get(f"/units/{units['con_tien'].id}").status_code == 403
    client = as_user("admin")
    assert client.get("/units/999999").status_code == 404
    assert client.get("/units/abc").status_code == 404


def test_the_search_ignores_diacritics_and_answers_htmx_with_the_fragment(tree):
    as_user, units = tree
    client = as_user("admin")
    page = client.get("/units", params={"q": "dong hoi"}, headers=HX)
    assert page.status_code == 200 and "<html" not in page.text and 'id="core-units-tree"' in page.text
    assert unit_links(page.text) == {str(units["dong_hoi"].id)}


def test_the_unit_page_links_only_the_ancestors_the_user_may_open(tree):
    as_user, units = tree
    page = as_user("commune").get(f"/units/{units['dong_hoi'].id}").text
    assert "Tỉnh Quảng Trị" in page  # named in the breadcrumb
    assert f'href="/units/{units["province"].id}"' not in page  # but not a link


def test_a_unit_that_ended_leaves_today_s_list_but_stays_in_the_list_as_at_its_last_day(tree):
    import datetime as dt

    as_user, units = tree
    with db.connection_context():
        Unit.update(valid_to=dt.date(2025, 6, 30)).where(Unit.id == units["con_tien"].id).execute()
    client = as_user("admin")
    assert str(units["con_tien"].id) not in unit_links(client.get("/units").text)
    past = client.get("/units", params={"at": "30/06/2025"})
    assert str(units["con_tien"].id) in unit_links(past.text) and "units-asat-past" in past.text


def test_a_national_tree_shows_a_page_of_rows_and_asks_for_a_search(tree):
    from web.routes.units import MAX_ROWS

    as_user, units = tree
    with db.connection_context():
        Unit.insert_many([{"code": f"T{i:05d}", "name": f"Xã Thử Nghiệm {i:05d}", "kind": "commune",
                           "parent": units["province"].id} for i in range(MAX_ROWS + 20)]).execute()
    client = as_user("admin")
    page = client.get("/units")
    assert len(unit_links(page.text)) == MAX_ROWS
    assert f"Chỉ hiện {MAX_ROWS} đơn vị đầu tiên trong {MAX_ROWS + 24}" in page.text
    found = client.get("/units", params={"q": "thu nghiem 00007"})
    assert len(unit_links(found.text)) == 1 and "Chỉ hiện" not in found.text
