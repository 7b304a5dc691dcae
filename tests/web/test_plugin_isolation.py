"""Failure isolation as a user and an administrator see it.

Each fixture plugin under tests/fixtures/plugins fails at one stage. Served
next to fx_good, it must show on /admin/plugins with its stage and a one-line
summary, while the home page, /healthz and fx_good's pages keep answering 200.
Request and contribution failures keep the plugin running: only that request
or that contribution is lost, and the error is recorded for the administrator.
"""

from __future__ import annotations

import contextlib
import html
import re
import types

import jinja2
import pytest
from starlette.testclient import TestClient

from core.db import db
from core.hookspecs import hookimpl
from core.i18n import core_catalog
from core.registry import Domain, MenuItem, Widget
from tests.conftest import HX
from tests.fixtures.plugins import FAILING, fx, log_in

ALL = ("fx_good", *FAILING, "fx_view_raises", "fx_menu_raises")


def t(key, **params):
    return core_catalog().gettext("vi", key, **params)


@pytest.fixture
def serve(make_app, make_user):
    """``serve(*plugin_names, admin=True)``: a running app with those plugins, a user logged in
    (a system administrator, a user without rights with admin=False, nobody with admin=None)."""
    with contextlib.ExitStack() as stack:
        def start(*names, admin=True, **kwargs):
            client = stack.enter_context(TestClient(make_app(builtins=fx(*names), **kwargs)))
            if admin is not None:
                user, password = make_user(is_admin=admin)
                log_in(client, user, password)
            return client

        yield start


def plugin_row(page_html: str, name: str) -> str:
    """The text of plugin ``name``'s row on /admin/plugins, entities decoded."""
    match = re.search(rf'<tr id="plugin-{re.escape(name)}"[^>]*>(.*?)</tr>', page_html, re.S)
    assert match, f"no row for {name}"
    return html.unescape(match.group(1))


def nav_links(page_html: str) -> list[str]:
    return re.findall(r'class="nav-link[^"]*" href="([^"]+)"', page_html)


def assert_core_and_neighbour_serve(client):
    home = client.get("/")
    assert home.status_code == 200 and "/p/fx_good/" in nav_links(home.text)
    health = client.get("/healthz")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    page = client.get("/p/fx_good/")
    assert page.status_code == 200 and 'id="fx_good-items"' in page.text and "Dân số trung bình" in page.text
    assert client.get("/static/fx_good/fx_good.css").status_code == 200
    assert client.get("/admin/plugins").status_code == 200


# -- each failing fixture next to fx_good ---------------------------------------------------------------


@pytest.mark.parametrize("name,stage", sorted(FAILING.items()))
def test_a_failed_plugin_is_shown_and_the_rest_keeps_serving(serve, name, stage):
    client = serve("fx_good", name)
    info = client.app.state.pm.infos[name]
    assert (info.status, info.stage) == ("failed", stage)

    page = client.get("/admin/plugins")
    assert page.status_code == 200 and "Traceback" not in page.text
    row = plugin_row(page.text, name)
    assert t("plugins.status.failed") in row and t(f"plugins.stage.{stage}") in row
    assert info.summary in row and "\n" not in info.summary
    assert t("plugins.status.ok") in plugin_row(page.text, "fx_good")
    # Failed plugins come first, where the administrator looks.
    assert page.text.index(f'id="plugin-{name}"') < page.text.index('id="plugin-fx_good"')

    detail = client.get(f"/admin/plugins/{name}")
    assert detail.status_code == 200 and info.summary in html.unescape(detail.text)

    assert_core_and_neighbour_serve(client)
    # Its own pages: 503 when it failed after being mounted, otherwise never mounted.
    expected = 503 if stage in ("migration", "startup") else 404
    assert client.get(f"/p/{name}/").status_code == expected


def test_all_fixtures_at_once(serve):
    client = serve(*ALL)
    infos = client.app.state.pm.infos
    assert {n: (i.status, i.stage) for n, i in infos.items()} == {
        **{n: ("failed", s) for n, s in FAILING.items()},
        "fx_good": ("ok", ""), "fx_view_raises": ("ok", ""), "fx_menu_raises": ("ok", "")}
    page = client.get("/admin/plugins")
    for name, stage in FAILING.items():
        assert t(f"plugins.stage.{stage}") in plugin_row(page.text, name)
    # Name, version, source and hooks of each plugin.
    good = plugin_row(page.text, "fx_good")
    assert "fx_good" in good and "Phân hệ mẫu" in good  # its name and its label
    assert infos["fx_good"].version in good and t("plugins.source.builtin") in good
    assert "dashboard_widgets, extra_template_vars, menu_items, register_domain" in good
    assert "register_domain, startup" in plugin_row(page.text, "fx_startup_fails")
    assert_core_and_neighbour_serve(client)
    assert client.get("/p/fx_view_raises/").status_code == 200
    assert client.get("/p/fx_menu_raises/").status_code == 200


# -- migration -------------------------------------------------------------------------------------------


def test_a_failed_migration_is_rolled_back_and_other_tables_exist(serve):
    client = serve("fx_good", "fx_bad_migration")
    info = client.app.state.pm.infos["fx_bad_migration"]
    assert (info.stage, info.summary) == ("migration", "RuntimeError: fx_bad_migration: step 0002 is broken")
    with db.connection_context():
        tables = set(db.get_tables())
        history = [r[0] for r in db.execute_sql("SELECT name FROM fx_bad_migration_migrations")]
    assert "fx_bad_migration_first" in tables  # 0001 succeeded and stays
    # 0002 ran in a transaction (DDL is transactional on SQLite and PostgreSQL): its table is gone.
    assert "fx_bad_migration_second" not in tables
    assert history == ["0001_first"]
    assert {"fx_good_item", "fx_good_migrations", "core_unit", "core_plugin_activation"} <= tables
    response = client.get("/p/fx_bad_migration/")
    assert response.status_code == 503 and t("error.plugin_unavailable") in html.unescape(response.text)


# -- startup -----------------------------------------------------------------------------------------------


def test_a_plugin_whose_startup_failed_answers_503(serve):
    client = serve("fx_good", "fx_startup_fails")
    info = client.app.state.pm.infos["fx_startup_fails"]
    assert (info.stage, info.summary) == ("startup", "ConnectionError: fx_startup_fails: licence server unreachable")
    page = client.get("/p/fx_startup_fails/")
    assert page.status_code == 503 and "<html" in page.text
    assert t("error.plugin_unavailable") in html.unescape(page.text)
    assert "licence server" not in page.text and "Traceback" not in page.text
    fragment = client.get("/p/fx_startup_fails/", headers=HX)
    assert fragment.status_code == 503 and "<html" not in fragment.text
    # Its menu entry is gone; fx_good's stays.
    links = nav_links(client.get("/").text)
    assert "/p/fx_startup_fails/" not in links and "/p/fx_good/" in links


# -- request -----------------------------------------------------------------------------------------------


def test_a_raising_view_gives_a_500_page_without_details(serve):
    client = serve("fx_good", "fx_view_raises")
    response = client.get("/p/fx_view_raises/boom")
    assert response.status_code == 500 and "<html" in response.text
    assert "secret detail" not in response.text and "Traceback" not in response.text
    assert "RuntimeError" not in response.text
    assert response.headers["X-Request-ID"] in response.text  # what the user tells the administrator
    fragment = client.get("/p/fx_view_raises/boom", headers=HX)
    assert fragment.status_code == 500 and "<html" not in fragment.text and "secret detail" not in fragment.text

    # The plugin keeps running: its other page, the neighbour and the core serve.
    info = client.app.state.pm.infos["fx_view_raises"]
    assert info.ok
    assert client.get("/p/fx_view_raises/").status_code == 200
    assert_core_and_neighbour_serve(client)

    # The administrator sees the errors, stage and summary.
    assert [(stage, summary) for stage, summary, _ in info.errors] == \
        [("request", "RuntimeError: fx_view_raises: secret detail 4242")] * 2
    assert t("plugins.recent_errors", count=2) in plugin_row(client.get("/admin/plugins").text, "fx_view_raises")
    detail = html.unescape(client.get("/admin/plugins/fx_view_raises").text)
    assert t("plugins.stage.request") in detail and "RuntimeError: fx_view_raises: secret detail 4242" in detail


# -- contribution ------------------------------------------------------------------------------------------


def test_raising_contributions_drop_only_that_plugins_contributions(serve):
    client = serve("fx_good", "fx_menu_raises")
    home = client.get("/")
    assert home.status_code == 200
    links = nav_links(home.text)
    # fx_good's static and dynamic entries, and fx_menu_raises's static one, are all there.
    assert {"/p/fx_good/", "/p/fx_good/items", "/p/fx_menu_raises/"} <= set(links)
    assert 'id="fx_good-widget"' in home.text and "Tiện ích mẫu của Tỉnh Quảng Trị" in home.text
    page = client.get("/p/fx_good/")
    assert page.status_code == 200 and "fx_good motto" in page.text  # fx_good's template variable

    info = client.app.state.pm.infos["fx_menu_raises"]
    assert info.ok and info.stage == ""
    stages = {stage for stage, _, _ in info.errors}
    summaries = " | ".join(summary for _, summary, _ in info.errors)
    assert stages == {"contribution"}
    for culprit in ("menu badge count", "widget data", "template variables"):
        assert culprit in summaries
    assert not client.app.state.pm.infos["fx_good"].errors
    assert t("plugins.recent_errors", count=len(info.errors)) in \
        plugin_row(client.get("/admin/plugins").text, "fx_menu_raises")


def test_a_menu_entry_pointing_nowhere_fails_its_plugin_at_declaration(serve):
    lost = types.ModuleType("fx_lost")
    lost.register_domain = hookimpl(
        lambda: Domain(name="fx_lost", label="", menu=(MenuItem("fx_lost.a", "", "fx_lost:nowhere"),)))
    lost.register_domain.__name__ = "register_domain"
    client = serve("fx_good", extra_plugins=[lost])
    info = client.app.state.pm.infos["fx_lost"]
    assert (info.status, info.stage) == ("failed", "declaration") and "fx_lost:nowhere" in info.summary
    assert_core_and_neighbour_serve(client)


# -- what core enforces for a healthy plugin ----------------------------------------------------------------


def test_routes_are_mounted_under_the_plugin_name(serve):
    client = serve("fx_good", admin=None)
    app = client.app
    assert app.url_path_for("fx_good:index") == "/p/fx_good/"
    assert app.url_path_for("fx_good:items") == "/p/fx_good/items"
    assert client.get("/fx_good/").status_code == 404 and client.get("/items").status_code == 404


def test_full_page_and_fragment(serve):
    client = serve("fx_good")
    page = client.get("/p/fx_good/")
    assert "<html" in page.text and 'href="/static/fx_good/fx_good.css?v=' in page.text
    assert page.headers["Vary"] == "HX-Request"
    fragment = client.get("/p/fx_good/", headers=HX)
    assert fragment.status_code == 200 and "<html" not in fragment.text
    assert fragment.text.lstrip().startswith('<div id="fx_good-items">')
    assert client.get("/p/fx_good/items").text.lstrip().startswith('<div id="fx_good-items">')


def test_plugin_forms_post_with_csrf(serve):
    client = serve("fx_good")
    token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', client.get("/p/fx_good/").text).group(1)
    assert client.post("/p/fx_good/items", data={"name": "Thu ngân sách"}).status_code == 403
    added = client.post("/p/fx_good/items", data={"name": "Thu ngân sách"}, headers={**HX, "X-CSRF-Token": token})
    assert added.status_code == 200 and "Thu ngân sách" in added.text and "<html" not in added.text
    empty = client.post("/p/fx_good/items", data={"name": " ", "csrf_token": token}, headers=HX)
    assert empty.status_code == 422 and "<html" not in empty.text and "Cần nhập tên." in empty.text
    full = client.post("/p/fx_good/items", data={"name": "Chi ngân sách", "csrf_token": token},
                       follow_redirects=False)
    assert full.status_code == 303 and full.headers["location"] == "/p/fx_good/"
    assert "Chi ngân sách" in client.get("/p/fx_good/").text


def test_plugin_pages_need_login(serve):
    anonymous = serve("fx_good", admin=None)
    response = anonymous.get("/p/fx_good/", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/login?next=/p/fx_good/")


def test_a_user_without_the_permission_gets_403_and_no_menu_entry(serve):
    client = serve("fx_good", admin=False)
    assert client.get("/p/fx_good/").status_code == 403
    assert client.get("/admin/plugins").status_code == 403
    links = nav_links(client.get("/").text)
    assert not [link for link in links if link.startswith("/p/fx_good")]
    assert "/admin/plugins" not in links


def test_a_failed_plugins_templates_are_never_loaded(serve):
    client = serve("fx_good", "fx_bad_namespace")
    env = client.app.state.templates.env
    with pytest.raises(jinja2.TemplateNotFound):
        env.get_template("layout.html")
    assert env.get_template("fx_good/page.html") is not None
    assert client.get("/static/fx_bad_namespace/x.css").status_code == 404


def test_a_failing_widget_is_dropped_and_the_home_page_still_renders(serve):
    """Widgets render one by one: a missing template, a template outside the plugin's folder
    and a widget claiming another plugin's id are each dropped and recorded."""
    shaky = types.ModuleType("fx_shaky")
    shaky.register_domain = hookimpl(lambda: Domain(name="fx_shaky", label=""))
    shaky.register_domain.__name__ = "register_domain"
    shaky.dashboard_widgets = hookimpl(lambda: [
        Widget("fx_shaky.missing", "", "fx_shaky/_nowhere.html"),
        Widget("fx_shaky.outside", "", "core/_menu.html"),
        Widget("fx_good.stolen", "", "fx_good/_widget.html"),
    ])
    shaky.dashboard_widgets.__name__ = "dashboard_widgets"
    client = serve("fx_good", extra_plugins=[shaky])
    home = client.get("/")
    assert home.status_code == 200
    assert 'id="fx_good-widget"' in home.text  # the healthy neighbour's widget is there
    assert "widget-fx_shaky" not in home.text and "widget-fx_good-stolen" not in home.text
    info = client.app.state.pm.infos["fx_shaky"]
    assert info.ok and len(info.errors) == 3
    assert {stage for stage, _, _ in info.errors} == {"contribution"}
    summaries = " | ".join(summary for _, summary, _ in info.errors)
    assert "TemplateNotFound" in summaries and "core/_menu.html" in summaries
