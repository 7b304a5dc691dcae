"""Running a unit's accounts from the screens alone (issue 3): an administrator creates a
commune officer; the officer logs in with the temporary password, must change it, sees only
their commune, and is refused another commune's page typed into the address bar."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

COMMUNE = "Xã Cồn Tiên"
OTHER = "Phường Đồng Hới"


def unit_id(page, name: str) -> str:
    link = page.locator("#core-units-tree a", has_text=name).first
    return re.search(r"/units/(\d+)$", link.get_attribute("href")).group(1)


def test_an_administrator_issues_an_account_and_the_officer_starts_work(open_session):
    admin = open_session("accounts-admin")
    page = admin.page
    admin.login("quantri")
    admin.goto("/units")
    other_id = unit_id(page, OTHER)

    # The administrator issues the account from the screens.
    admin.goto("/users/new")
    username = f"canbo_{uuid.uuid4().hex[:6]}"
    page.fill("#nu-username", username)
    page.fill("#nu-full-name", "Phạm Thị Dung")
    value = page.locator("#nu-unit option", has_text=COMMUNE).first.get_attribute("value")
    page.select_option("#nu-unit", value)
    page.check("input[name=roles][value=reporter]")
    admin.shot("new-user-form")
    page.get_by_role("button", name=re.compile("Tạo tài khoản")).click()
    temp = page.locator("#temp-password strong").first
    expect(temp).to_be_visible()
    temporary_password = temp.inner_text().strip()
    assert len(temporary_password) >= 12
    admin.shot("new-user-created")

    # The officer, in their own browser, logs in with it and must choose a password first.
    officer = open_session("accounts-officer")
    page = officer.page
    officer.login(username, temporary_password)
    expect(page).to_have_url(re.compile(r"/account/password$"))
    officer.shot("must-change")
    page.fill("#pw-current", temporary_password)
    new_password = "Một câu dễ nhớ cho bản báo cáo tháng"
    page.fill("#pw-new", new_password)
    page.fill("#pw-confirm", new_password)
    page.get_by_role("button", name="Lưu mật khẩu mới").click()
    expect(page.locator("#core-password-form")).to_contain_text("Đã đổi mật khẩu.")

    # Only their commune is visible ...
    officer.goto("/units")
    links = page.locator("#core-units-tree tbody a")  # the tree's rows, not the export links above it
    expect(links).to_have_count(1)
    expect(links.first).to_have_text(COMMUNE)
    officer.shot("own-commune")
    # ... and another commune's page, typed into the address bar, is refused.
    response = officer.goto(f"/units/{other_id}")
    assert response.status == 404
    expect(page.locator("h1")).to_have_text("Không tìm thấy trang")
    expect(page.locator("main")).not_to_contain_text(OTHER)
    officer.shot("other-commune-refused")
    assert officer.csp_violations() == [] and admin.csp_violations() == []
