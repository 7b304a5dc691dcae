"""Issue 12, items 2 and 3, on the real demo in headless Chromium: figures typed on the entry page
are never lost and never make signing stale.

- Signing right after an autosave, and right after typing (the sign button saves first), without
  reloading the page: the sign form follows the page's own saves.
- Leaving the page with input not saved yet: the browser asks first (beforeunload), and the
  input is saved.
- One unreadable cell does not hold back the others: the good figures are stored, the bad cell
  is marked and keeps what was typed.

Each test fills another commune's monthly report as the administrator, so that the other browser
tests (which use Phường Đồng Hới and Cồn Cỏ) find theirs untouched."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

SECTIONS = {"ketqua": "Sản xuất ổn định.", "hanche": "Mưa lớn cuối tháng.", "nhiemvu": "Khắc phục hậu quả mưa lũ."}


def _open_report(session, unit_query: str, unit_name: str):
    session.goto(f"/inbox?status=not_started&unit={unit_query}")
    page = session.page
    page.locator("#core-queue tbody tr").filter(has_text=unit_name).first.get_by_role("link").first.click()
    expect(page.locator("#entry-grid")).to_be_visible()
    return page


def _type(page, selector: str, text: str) -> None:
    """Typed key by key, as a person does (a trusted input that also counts as user activation)."""
    field = page.locator(selector)
    field.click()
    field.press("Control+a")
    field.press_sequentially(text)


def test_signing_right_after_an_autosave_needs_no_reload(open_session, demo_certs):
    admin = open_session("autosave-sign")
    admin.login("quantri")
    page = _open_report(admin, "Gio Linh", "Gio Linh")
    report_path = re.search(r"/reports/\d+", page.url).group(0)
    for key, text in SECTIONS.items():
        _type(page, f"#s-{key}", text)
    _type(page, "#i-kx0401-cur", "15")
    expect(page.locator("#save-status")).to_contain_text("Đã lưu", timeout=15_000)  # the autosave
    # One more figure, and sign at once: the sign button saves it first, then signs that revision.
    _type(page, "#i-kx0402-cur", "6,5")
    provider = page.locator("#signing-pkcs12")
    if provider.get_attribute("open") is None:
        provider.locator("summary").click()
    provider.locator("input[type=file]").set_input_files(str(demo_certs.p12("quantri")))
    provider.locator("input[type=password]").fill(demo_certs.password)
    page.once("dialog", lambda dialog: dialog.accept())
    provider.get_by_role("button", name="Ký số và gửi").click()
    expect(page.get_by_text("Đã ký số và gửi báo cáo.").first).to_be_visible(timeout=20_000)
    assert report_path in page.url
    expect(page.get_by_text("Báo cáo vừa được lưu")).to_have_count(0)
    # The signed version holds both figures.
    expect(page.locator("#v-kx0401-cur")).to_have_text(re.compile(r"^\s*15(,0)?\s*$"))
    expect(page.locator("#v-kx0402-cur")).to_have_text(re.compile(r"^\s*6,5\s*$"))
    assert not admin.page_errors and not admin.csp_violations()


def test_leaving_with_unsaved_input_is_warned_and_the_input_saved(open_session):
    admin = open_session("autosave-leave")
    admin.login("quantri")
    page = _open_report(admin, "Bac Gianh", "Bắc Gianh")
    report_url = page.url
    dialogs = []

    def refuse(dialog):
        dialogs.append(dialog.type)
        dialog.dismiss()  # "stay on this page"

    page.on("dialog", refuse)
    _type(page, "#i-kx0401-cur", "42")
    # Within the autosave delay, the person follows a link away.
    page.locator("nav.breadcrumb a").first.click()
    page.wait_for_timeout(500)
    assert dialogs == ["beforeunload"]
    assert page.url == report_url
    expect(page.locator("#i-kx0401-cur")).to_have_value("42")
    expect(page.locator("#save-status")).to_contain_text("Đã lưu", timeout=15_000)
    # Saved: leaving now asks nothing, and the figure is there when the page is opened again.
    page.remove_listener("dialog", refuse)
    page.locator("nav.breadcrumb a").first.click()
    page.wait_for_url(re.compile(r"/reports$|/reports\?"))
    admin.goto(report_url[len(admin.demo.base_url):])
    expect(page.locator("#i-kx0401-cur")).to_have_value("42")
    assert dialogs == ["beforeunload"]
    assert not admin.page_errors and not admin.csp_violations()


def test_one_unreadable_cell_does_not_hold_back_the_others(open_session):
    admin = open_session("autosave-bad-cell")
    admin.login("quantri")
    page = _open_report(admin, "Ba Don", "Ba Đồn")
    report_url = page.url
    _type(page, "#i-kx0401-cur", "7")
    _type(page, "#i-kx0402-cur", "12abc")
    _type(page, "#i-kx0702-cur", "3")
    status = page.locator("#save-status")
    expect(status).to_contain_text("1 ô có lỗi chưa lưu", timeout=15_000)
    bad = page.locator("#i-kx0402-cur")
    expect(bad).to_have_attribute("aria-invalid", "true")
    expect(bad).to_have_value("12abc")  # what was typed stays, to be corrected
    expect(page.locator('td[data-cell="kx0402.cur"] .cell-error')).to_be_visible()
    # The good figures are stored: a second tab (no unsaved input of its own) finds them.
    other = admin.page.context.new_page()
    other.goto(report_url)
    expect(other.locator("#i-kx0401-cur")).to_have_value("7")
    expect(other.locator("#i-kx0702-cur")).to_have_value("3")
    expect(other.locator("#i-kx0402-cur")).to_have_value("")
    other.close()
    # Corrected, the last cell is saved too and the page has nothing left unsaved.
    _type(page, "#i-kx0402-cur", "12")
    expect(status).to_have_text(re.compile(r"^Đã lưu lúc \d\d:\d\d$"), timeout=15_000)
    expect(bad).not_to_have_attribute("aria-invalid", "true")
    assert not admin.page_errors and not admin.csp_violations()


def test_an_expired_session_keeps_the_input_and_saves_it_after_logging_in_again(open_session):
    """Item 3: the session ends while a figure is being typed (expired, or logged out in another
    tab). The page says so, keeps the figure, and saves it once the person has logged in again."""
    admin = open_session("autosave-expired")
    admin.login("quantri")
    page = _open_report(admin, "Vinh Linh", "Vĩnh Linh")
    report_url = page.url
    page.context.clear_cookies(name="baocao_session")  # the session is gone; the rest stays
    _type(page, "#i-kx0401-cur", "31")
    status = page.locator("#save-status")
    expect(status).to_contain_text("Phiên đăng nhập đã hết hạn", timeout=15_000)
    expect(page.locator("#i-kx0401-cur")).to_have_value("31")  # nothing typed is lost
    status.get_by_role("link", name="Đăng nhập lại").click()
    page.fill("#username", "quantri")
    page.fill("#password", admin.demo.logins["quantri"])
    with page.expect_navigation():
        page.click("form[action='/login'] button[type=submit]")
    page.wait_for_url(report_url)  # back on the report, where the kept figure is saved
    expect(page.locator("#save-status")).to_contain_text("Đã lưu", timeout=15_000)
    other = page.context.new_page()
    other.goto(report_url)
    expect(other.locator("#i-kx0401-cur")).to_have_value("31")
    other.close()
    assert not admin.page_errors and not admin.csp_violations()
