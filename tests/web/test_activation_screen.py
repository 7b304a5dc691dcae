"""The activation screen: an administrator switches a plugin for a unit and its subtree,
and users of that subtree lose its menu entries, its pages and its permissions.

Tree: Tỉnh Quảng Trị → (Huyện Cam Lộ → Xã Cam Hiếu, Huyện Gio Linh → Xã Gio Mỹ).
"""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
from starlette.testclient import TestClient

from core.accounts import login as accounts
from core.activation import enabled_plugins, overrides
from core.accounts.access import Grant, Role, RolePermission, grants_of
from core.db import db
from core.i18n import core_catalog
from core.models import Unit
from core.units.tree import ancestor_ids
from core.accounts.permissions import allowed
from tests.conftest import HX
from tests.fixtures.plugins import fx, log_in


@pytest.fixture
def site(make_app):
    app = make_app(builtins=fx("fx_good", "fx_broken_import"), strict=False)
    with TestClient(app) as client:
        with db.connection_context():
            province = Unit.create(code="44", name="Tỉnh Quảng Trị", kind="province")
            gio_linh = Unit.create(code="464", name="Huyện Gio Linh", kind="district", parent=province)
            gio_my = Unit.create(code="19255", name="Xã Gio Mỹ", kind="commune", parent=gio_linh)
            cam_lo = Unit.create(code="465", name="Huyện Cam Lộ", kind="district", parent=province)
            cam_hieu = Unit.create(code="19366", name="Xã Cam Hiếu", kind="commune", parent=cam_lo)
            passwords = {}

            unit_admin = Role.get(Role.code == "unit_admin")
            # The plugin's own rights, for the unit-level users to exercise its pages.
            worker = Role.create(code="fx_good_worker", name="fx_good worker")
            for code in ("fx_good.item.view", "fx_good.item.edit"):
                RolePermission.create(role=worker, code=code)

            def user(username, unit, admin="unit"):
                """A system administrator, a unit administrator (granted at their unit), or a clerk."""
                passwords[username] = accounts.random_password()
                created = accounts.create_user(username, username, passwords[username], unit,
                                               is_admin=(admin == "system"))
                if admin == "unit":
                    Grant.create(user=created, role=unit_admin, unit=unit)
                    Grant.create(user=created, role=worker, unit=unit)
                return created

            users = SimpleNamespace(province=user("qt_tinh", province, "system"),
                                    district=user("qt_giolinh", gio_linh), commune=user("qt_giomy", gio_my),
                                    other=user("qt_camlo", cam_lo), clerk=user("canbo", province, None))

        def login(who):
            client.cookies.clear()
            log_in(client, who, passwords[who.username])
            return client

        yield SimpleNamespace(client=client, app=app, login=login, users=users, province=province,
                              gio_linh=gio_linh, gio_my=gio_my, cam_lo=cam_lo, cam_hieu=cam_hieu)


def token(client, path="/admin/plugins/fx_good"):
    return re.search(r'name="csrf_token" value="([0-9a-f]+)"', client.get(path).text).group(1)


def switch(client, unit, state, *, reset_subtree=False, headers=None, plugin="fx_good", csrf=True):
    data = {"unit": str(unit.id if hasattr(unit, "id") else unit), "state": state}
    if reset_subtree:
        data["reset_subtree"] = "1"
    if csrf:
        data["csrf_token"] = token(client)
    return client.post(f"/admin/plugins/{plugin}/activation", data=data, headers=headers or {},
                       follow_redirects=False)


def unit_rows(page_html):
    """unit id → data-state of its row, in page order."""
    return {int(uid): state for uid, state in
            re.findall(r'<tr id="unit-(\d+)"[^>]*?data-state="(on|off)"', page_html)}


def t(key, **params):
    return core_catalog().gettext("vi", key, **params)


def current(site):
    with db.connection_context():
        return overrides("fx_good")


def nav_links(page_html):
    return re.findall(r'class="nav-link[^"]*" href="([^"]+)"', page_html)


# -- the screen ------------------------------------------------------------------------------------------


def test_the_screen_lists_the_admins_subtree_in_tree_order(site):
    client = site.login(site.users.province)
    page = client.get("/admin/plugins/fx_good")
    assert page.status_code == 200
    rows = unit_rows(page.text)
    assert list(rows) == [site.province.id, site.cam_lo.id, site.cam_hieu.id, site.gio_linh.id, site.gio_my.id]
    assert set(rows.values()) == {"on"}  # fx_good is on by default

    client = site.login(site.users.district)
    assert list(unit_rows(client.get("/admin/plugins/fx_good").text)) == [site.gio_linh.id, site.gio_my.id]


def test_full_page_post_switches_a_unit_and_redirects(site):
    client = site.login(site.users.province)
    response = switch(client, site.gio_linh, "off")
    assert response.status_code == 303
    assert response.headers["location"] == f"/admin/plugins/fx_good#unit-{site.gio_linh.id}"
    assert current(site) == {site.gio_linh.id: False}
    rows = unit_rows(client.get("/admin/plugins/fx_good").text)
    assert rows == {site.province.id: "on", site.cam_lo.id: "on", site.cam_hieu.id: "on",
                    site.gio_linh.id: "off", site.gio_my.id: "off"}


def test_htmx_post_answers_with_the_table_fragment(site):
    client = site.login(site.users.province)
    response = switch(client, site.gio_linh, "off", headers=HX)
    assert response.status_code == 200
    assert 'id="core-activation"' in response.text and "<html" not in response.text
    rows = unit_rows(response.text)
    assert rows[site.gio_linh.id] == "off" and rows[site.gio_my.id] == "off" and rows[site.province.id] == "on"
    back = switch(client, site.gio_linh, "inherit", headers=HX)
    assert back.status_code == 200 and set(unit_rows(back.text).values()) == {"on"}
    assert current(site) == {}


def test_a_setting_below_survives_unless_the_subtree_is_reset(site):
    client = site.login(site.users.province)
    assert switch(client, site.gio_my, "on").status_code == 303
    assert switch(client, site.province, "off").status_code == 303
    rows = unit_rows(client.get("/admin/plugins/fx_good").text)
    assert rows[site.gio_linh.id] == "off" and rows[site.gio_my.id] == "on"
    assert switch(client, site.province, "off", reset_subtree=True).status_code == 303
    assert current(site) == {site.province.id: False}
    assert set(unit_rows(client.get("/admin/plugins/fx_good").text).values()) == {"off"}


@pytest.mark.parametrize("target", ["province", "cam_lo", "cam_hieu", 987654])
def test_a_unit_outside_the_admins_subtree_is_refused(site, target):
    client = site.login(site.users.district)
    unit = getattr(site, target) if isinstance(target, str) else target
    assert switch(client, unit, "off").status_code == 404
    assert current(site) == {}


@pytest.mark.parametrize("data,status", [
    ({"state": "disabled"}, 400), ({"state": ""}, 400), ({"unit": "abc"}, 400), ({"unit": ""}, 400),
])
def test_bad_input_is_refused(site, data, status):
    client = site.login(site.users.province)
    form = {"unit": str(site.gio_linh.id), "state": "off", "csrf_token": token(client), **data}
    assert client.post("/admin/plugins/fx_good/activation", data=form).status_code == status
    assert current(site) == {}


def test_without_the_csrf_token_nothing_changes(site):
    client = site.login(site.users.province)
    assert switch(client, site.gio_linh, "off", csrf=False).status_code == 403
    assert current(site) == {}


def test_a_user_without_core_plugin_admin_gets_403(site):
    client = site.login(site.users.clerk)
    assert client.get("/admin/plugins/fx_good").status_code == 403
    assert switch(client, site.gio_linh, "off", csrf=False, headers={"X-CSRF-Token": token(client, "/")}) \
        .status_code == 403
    assert current(site) == {}


def test_unknown_or_failed_plugins_cannot_be_switched(site):
    client = site.login(site.users.province)
    assert client.get("/admin/plugins/fx_nothing").status_code == 404
    assert switch(client, site.gio_linh, "off", plugin="fx_nothing").status_code == 404
    detail = client.get("/admin/plugins/fx_broken_import")
    assert detail.status_code == 200 and 'id="core-activation"' not in detail.text
    assert switch(client, site.gio_linh, "off", plugin="fx_broken_import").status_code == 404
    with db.connection_context():
        assert overrides("fx_broken_import") == {}


# -- what "off" means for the users of the subtree ---------------------------------------------------------------


def test_switched_off_for_a_unit_means_no_menu_no_pages_no_permissions(site):
    client = site.login(site.users.province)
    assert switch(client, site.gio_my, "off").status_code == 303
    registry, settings, pm = site.app.state.registry, site.app.state.settings, site.app.state.pm

    # A user of the commune: no menu entry, no widget, 404 on its pages, its permissions grant nothing.
    client = site.login(site.users.commune)
    home = client.get("/")
    assert home.status_code == 200
    assert not [link for link in nav_links(home.text) if link.startswith("/p/fx_good")]
    assert 'id="fx_good-widget"' not in home.text
    for path in ("/p/fx_good/", "/p/fx_good/items", "/p/fx_good/nonexistent"):
        assert client.get(path).status_code == 404
    assert client.get("/p/fx_good/", headers=HX).status_code == 404
    assert client.post("/p/fx_good/items", data={"name": "x"},
                       headers={"X-CSRF-Token": token(client, "/")}).status_code == 404
    with db.connection_context():
        at_commune = enabled_plugins(site.gio_my.id, registry, settings, set(pm.healthy))
        at_district = enabled_plugins(site.gio_linh.id, registry, settings, set(pm.healthy))
        commune_grants, commune_chain = grants_of(site.users.commune.id), ancestor_ids(site.gio_my.id)
        district_grants, district_chain = grants_of(site.users.district.id), ancestor_ids(site.gio_linh.id)
    # Granted, yet switched off at the commune: the grant gives nothing there.
    assert not allowed(site.users.commune, "fx_good.item.view", registry, at_commune, commune_grants,
                       commune_chain)

    # A user of the district above (and of a sibling district) keeps everything.
    assert allowed(site.users.district, "fx_good.item.view", registry, at_district, district_grants,
                   district_chain)
    for who in (site.users.district, site.users.other):
        client = site.login(who)
        home = client.get("/")
        assert "/p/fx_good/" in nav_links(home.text) and 'id="fx_good-widget"' in home.text
        assert client.get("/p/fx_good/").status_code == 200

    # Switching back takes effect at the next request.
    client = site.login(site.users.province)
    assert switch(client, site.gio_my, "inherit").status_code == 303
    client = site.login(site.users.commune)
    assert client.get("/p/fx_good/").status_code == 200
    assert "/p/fx_good/" in nav_links(client.get("/").text)


def test_switching_a_district_off_reaches_its_communes(site):
    client = site.login(site.users.province)
    assert switch(client, site.gio_linh, "off", headers=HX).status_code == 200
    client = site.login(site.users.commune)
    assert client.get("/p/fx_good/").status_code == 404
    client = site.login(site.users.other)
    assert client.get("/p/fx_good/").status_code == 200


def test_the_plugins_page_shows_whether_it_is_on_at_the_admins_unit(site):
    def fx_good_row(client):
        page = client.get("/admin/plugins").text
        return re.search(r'<tr id="plugin-fx_good"[^>]*>(.*?)</tr>', page, re.S).group(1)

    client = site.login(site.users.province)
    switch(client, site.gio_my, "off")
    row = fx_good_row(client)
    assert t("plugins.status.ok") in row and t("plugins.on") in row and t("plugins.off") not in row
    row = fx_good_row(site.login(site.users.commune))
    assert t("plugins.status.ok") in row and t("plugins.off") in row and t("plugins.on") not in row
