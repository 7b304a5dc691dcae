"""The application shell in a real browser: the demo as an operator starts it,
a civil servant's first steps in it, at desktop and at phone width.

Screenshots of every main step go to tests/browser/screenshots/ (not committed).
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PHONE

pytestmark = pytest.mark.browser

BUILTIN_PLUGINS = ("chuyen_nganh", "kinhte_xahoi", "national_link")
PLUGIN = "kinhte_xahoi"
# A commune nobody else in these tests logs in from: its plugin setting can change freely.
COMMUNE = "Xã Cồn Tiên"


def test_demo_redirects_to_login_in_vietnamese(session):
    page = session.page
    session.goto("/")
    expect(page).to_have_url(re.compile(r"/login\?next=/$"))
    expect(page.locator("html")).to_have_attribute("lang", "vi")
    expect(page.locator("h1")).to_have_text("Hệ thống thông tin báo cáo")
    expect(page.get_by_role("button", name="Đăng nhập")).to_be_visible()
    expect(page.get_by_label("Tên đăng nhập")).to_be_focused()
    session.shot("login")
    assert session.csp_violations() == []


def test_wrong_password_shows_the_generic_error(session):
    page = session.page
    session.login("quantri", "not-the-password")
    expect(page).to_have_url(re.compile(r"/login$"))
    error = page.locator("#login-error")
    expect(error).to_have_text("Tên đăng nhập hoặc mật khẩu không đúng.")
    expect(page.locator("#username")).to_have_value("quantri")
    expect(page.locator("#password")).to_have_value("")
    session.shot("login-error")
    # An unknown account gets exactly the same answer: nothing tells which accounts exist.
    session.login("khongtontai", "not-the-password")
    expect(page.locator("#login-error")).to_have_text("Tên đăng nhập hoặc mật khẩu không đúng.")


def test_administrator_walks_through_the_shell(session):
    page = session.page
    session.login("quantri")
    expect(page).to_have_url(session.demo.url("/"))
    expect(page.locator("h1")).to_have_text("Xin chào, Nguyễn Văn An")

    expect(page.get_by_role("navigation", name="Điều hướng chính")).to_be_visible()
    nav = page.locator("nav.sidebar")  # the same element whatever the language
    expect(nav.get_by_role("link", name="Trang chủ")).to_have_attribute("aria-current", "page")
    expect(nav).to_contain_text("Quản trị")
    expect(nav.get_by_role("link", name="Phân hệ (plugin)")).to_be_visible()
    expect(page.locator(".topbar-user")).to_contain_text("Nguyễn Văn An")
    session.shot("home")

    # English, with the language select (app.js submits it on change) ...
    session.set_language("en")
    expect(page).to_have_url(session.demo.url("/"))
    expect(page.get_by_role("button", name="Log out")).to_be_visible()
    expect(page.get_by_role("navigation", name="Main navigation")).to_be_visible()
    expect(nav.get_by_role("link", name="Home")).to_be_visible()
    expect(nav).to_contain_text("Administration")
    session.shot("home-en")

    # ... the plugins page in English ...
    nav.get_by_role("link", name="Plugins").click()
    expect(page).to_have_url(session.demo.url("/admin/plugins"))
    for name in BUILTIN_PLUGINS:
        expect(page.locator(f"#plugin-{name}")).to_contain_text("Working")
    session.shot("plugins-en")

    # ... and back to Vietnamese, on the same page.
    session.set_language("vi")
    expect(page).to_have_url(session.demo.url("/admin/plugins"))
    expect(page.locator("h1")).to_have_text("Phân hệ (plugin)")
    for name in BUILTIN_PLUGINS:
        expect(page.locator(f"#plugin-{name}")).to_contain_text("Hoạt động")
    expect(nav.get_by_role("link", name="Phân hệ (plugin)")).to_have_attribute("aria-current", "page")
    session.shot("plugins")

    page.locator(f"#plugin-{PLUGIN} a").first.click()
    expect(page).to_have_url(session.demo.url(f"/admin/plugins/{PLUGIN}"))
    expect(page.locator("h1")).to_have_text("Báo cáo kinh tế - xã hội")
    # The province, its 6 departments and its 78 communes.
    expect(page.locator("#core-activation tbody tr")).to_have_count(85)
    session.shot("plugin-detail", full_page=False)

    with page.expect_navigation():
        page.get_by_role("button", name="Đăng xuất").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    session.goto("/admin/plugins")
    expect(page).to_have_url(re.compile(r"/login\?next=/admin/plugins$"))
    assert session.csp_violations() == []
    assert session.page_errors == []


def test_switching_a_plugin_off_for_a_commune_updates_the_table_in_place(session):
    page = session.page
    session.login("quantri")
    session.goto(f"/admin/plugins/{PLUGIN}")
    rows = page.locator("#core-activation tbody tr")

    # The filter box finds the commune as typed on any keyboard: no diacritics needed.
    page.get_by_label("Tìm đơn vị").fill("con tien")
    expect(rows.locator("visible=true")).to_have_count(1)
    expect(page.locator("#activation-count")).to_have_text("Đang hiện 1/85 đơn vị")
    row = rows.filter(has_text=COMMUNE)
    expect(row).to_be_visible()
    expect(row.locator(".badge")).to_have_text("Bật")

    page.evaluate("window.__sameDocument = true")
    row.get_by_label(f"Thay đổi — {COMMUNE}").select_option("off")
    with page.expect_response(lambda r: r.request.method == "POST" and r.url.endswith("/activation")) as info:
        row.get_by_role("button", name="Lưu").click()
    response = info.value
    assert response.status == 200
    assert response.request.headers.get("hx-request") == "true"

    expect(page.locator("#core-activation .flash-ok")).to_have_text("Đã lưu.")
    expect(row).to_have_class(re.compile(r"\bis-changed\b"))
    expect(row.locator(".badge")).to_have_text("Tắt")
    expect(row).to_contain_text("tắt riêng")
    # Swapped in place: same document, and the filter still applies to the new rows.
    assert page.evaluate("window.__sameDocument") is True
    expect(rows.locator("visible=true")).to_have_count(1)
    expect(page).to_have_url(re.compile(rf"/admin/plugins/{PLUGIN}\?q=con\+tien$"))
    session.shot("plugin-activation-saved")

    # Switching the language keeps the filter (app.js keeps the address up to date).
    session.set_language("en")
    expect(page.locator("#activation-q")).to_have_value("con tien")
    expect(rows.locator("visible=true")).to_have_count(1)
    expect(page.locator("#activation-count")).to_have_text("Showing 1 of 85 units")
    session.set_language("vi")

    # Only the units where the plugin is off.
    page.get_by_label("Tìm đơn vị").fill("")
    page.get_by_label("Hiện", exact=True).select_option("off")
    expect(rows.locator("visible=true")).to_have_count(1)
    expect(rows.locator("visible=true")).to_contain_text(COMMUNE)

    # Back as it was (following the province), for the other tests.
    page.get_by_role("link", name="Bỏ lọc").click()
    expect(rows.locator("visible=true")).to_have_count(85)
    row.get_by_label(f"Thay đổi — {COMMUNE}").select_option("inherit")
    row.get_by_role("button", name="Lưu").click()
    expect(row.locator(".badge")).to_have_text("Bật")
    expect(row).to_contain_text("theo cấp trên / mặc định")
    assert session.csp_violations() == []
    assert session.page_errors == []


def test_the_filter_works_without_javascript(browser, demo):
    context = browser.new_context(viewport={"width": 1366, "height": 768}, java_script_enabled=False,
                                  extra_http_headers={"Accept-Language": "vi"})
    try:
        page = context.new_page()
        page.goto(demo.url("/login"))
        page.fill("#username", "quantri")
        page.fill("#password", demo.logins["quantri"])
        page.click("form[action='/login'] button[type=submit]")
        page.goto(demo.url(f"/admin/plugins/{PLUGIN}"))
        if page.get_attribute("html", "lang") != "vi":
            page.select_option("#lang-select", "vi")
            page.click("form[action='/lang'] button[type=submit]")  # the <noscript> button
        page.get_by_label("Tìm đơn vị").fill("Đồng Hới")
        page.get_by_role("button", name="Lọc", exact=True).click()
        expect(page).to_have_url(re.compile(r"\?q=%C4%90%E1%BB%93ng\+H%E1%BB%9Bi&show=all$"))
        visible = page.locator("#core-activation tbody tr:not([hidden])")
        expect(visible).to_have_count(1)
        expect(visible).to_contain_text("Phường Đồng Hới")
        expect(page.locator("#activation-count")).to_have_text("Đang hiện 1/85 đơn vị")
    finally:
        context.close()


def test_commune_user_does_not_see_the_administration(session):
    page = session.page
    session.login("phuongdonghoi")
    expect(page.locator("h1")).to_have_text("Xin chào, Lê Văn Cường")
    nav = page.get_by_role("navigation", name="Điều hướng chính")
    expect(nav.get_by_role("link", name="Trang chủ")).to_be_visible()
    expect(nav).not_to_contain_text("Quản trị")
    expect(nav.get_by_role("link", name="Phân hệ (plugin)")).to_have_count(0)
    expect(page.locator(".topbar-user")).to_contain_text("Phường Đồng Hới")
    session.shot("commune-home")

    response = session.goto("/admin/plugins")
    assert response.status == 403
    expect(page.locator("h1")).to_have_text("Không có quyền truy cập")
    session.shot("commune-403")
    assert session.csp_violations() == []


def test_error_page(session):
    page = session.page
    session.login("quantri")
    response = session.goto("/p/nothing")
    assert response.status == 404
    expect(page.locator(".error-code")).to_have_text("404")
    expect(page.locator("h1")).to_have_text("Không tìm thấy trang")
    expect(page.get_by_role("link", name="Về trang chủ")).to_be_visible()
    session.shot("error-404")
    session.set_language("en")
    expect(page.locator("h1")).to_have_text("Page not found")
    session.shot("error-404-en")
    session.set_language("vi")


def test_no_csp_violation_on_any_page(open_session):
    """Every main page, logged out and in: no inline script or style, nothing refused."""
    session = open_session("csp")
    session.goto("/login")
    session.login("quantri", "not-the-password")
    session.login("quantri")
    for path in ("/", "/admin/plugins", f"/admin/plugins/{PLUGIN}", "/account/password", "/p/nothing"):
        session.goto(path)
        session.page.wait_for_load_state("load")
    assert session.csp_violations() == []
    assert session.page_errors == []
    # The only errors are the expected statuses (422 wrong password, 404 page), not missing files.
    for text in session.console_errors():
        assert re.search(r"status of (422|404)", text), text
    assert sum("status of 404" in text for text in session.console_errors()) == 1, session.console_errors()


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_phone_width(open_session, lang):
    """At 390 px nothing needs sideways scrolling, and every page is still whole."""
    session = open_session(f"phone-{lang}", PHONE)
    page = session.page
    session.goto("/login")
    assert session.horizontal_overflow() == 0
    session.shot("login")
    session.login("quantri", lang=lang)
    pages = [("home", "/"), ("plugins", "/admin/plugins"), ("plugin-detail", f"/admin/plugins/{PLUGIN}"),
             ("password", "/account/password"), ("error-404", "/p/nothing")]
    for name, path in pages:
        session.goto(path)
        assert session.horizontal_overflow() == 0, name
        session.shot(name, full_page=name != "plugin-detail")
    # The long list of units, filtered down to a handful, as cards.
    session.goto(f"/admin/plugins/{PLUGIN}")
    page.locator("#activation-q").fill("dong")  # Đông Hà, Nam Đông Hà, Đồng Hới, Đồng Sơn, Đồng Thuận, ...
    expect(page.locator("#core-activation tbody tr").locator("visible=true")).to_have_count(7)
    assert session.horizontal_overflow() == 0
    session.shot("plugin-detail-filtered")
    nav = page.locator("nav.sidebar")
    expect(nav.get_by_role("link", name="Trang chủ" if lang == "vi" else "Home")).to_be_visible()
    if lang == "en":
        session.set_language("vi")
    assert session.csp_violations() == []


def test_desktop_screens_in_english(open_session):
    session = open_session("desktop-en")
    session.login("quantri", lang="en")
    page = session.page
    expect(page.get_by_role("button", name="Log out")).to_be_visible()
    for name, path in [("home", "/"), ("plugin-detail", f"/admin/plugins/{PLUGIN}"),
                       ("password", "/account/password")]:
        session.goto(path)
        assert session.horizontal_overflow() == 0, name
        session.shot(name, full_page=name != "plugin-detail")
    session.set_language("vi")
