"""Issue 5, "done when", on the real demo in headless Chromium: the planning department designs a
monthly form with computed columns and rules and publishes it; a commune fills its monthly report
on screen (totals recalculate as it types, a blocker shows and goes, a bad number is refused at
its cell, the values survive a reload) and through Excel (the template downloaded, filled with
openpyxl, uploaded; a file with a bad cell refused cell by cell, nothing changed)."""

from __future__ import annotations

import re

import pytest
from openpyxl import load_workbook
from playwright.sync_api import expect

from tests.browser.conftest import MONTHLY

pytestmark = pytest.mark.browser


def test_the_planning_department_designs_and_publishes_a_monthly_form(session):
    page = session.page
    session.login("sotaichinh")
    session.goto("/forms")
    expect(page.get_by_text("KTXH-01-THANG").first).to_be_visible()  # the plugin's form, owned by Sở Tài chính
    session.goto("/forms/new")
    page.fill("#fn-code", "BM-XA-THANG")
    page.fill("#fn-name", "Biểu số liệu thương mại, du lịch cấp xã")
    page.select_option("#fn-frequency", "monthly")
    page.get_by_role("button", name="Tạo biểu mẫu").click()
    # Rows: indicators picked from the catalogue, found without diacritics.
    page.locator("#fd-ind-q").press_sequentially("du lich")  # searched as the person types
    results = page.locator("#fd-ind-results")
    expect(results.get_by_text("KX0305")).to_be_visible()
    results.locator("input[value=KX0304]").check()
    results.locator("input[value=KX0305]").check()
    page.get_by_role("button", name="Thêm các chỉ tiêu đã chọn").click()
    rows = page.locator("#designer table").first
    expect(rows).to_contain_text("Doanh thu du lịch")
    # Columns: the standard monthly set, with its computed ratio columns.
    page.get_by_role("link", name=re.compile("^Cột")).first.click()
    page.get_by_role("button", name="Thêm bộ cột chuẩn (mẫu A)").click()
    expect(page.locator("#designer")).to_contain_text("so với cùng kỳ")
    # Rules: a mistake is shown at its character as it is typed; the corrected rule is added.
    page.get_by_role("link", name=re.compile("^Quy tắc")).first.click()
    expect(page.locator("#fd-new-rule-key")).to_be_attached()  # the tab has loaded
    if not page.locator("#fd-new-rule-key").is_visible():  # open already while the form has no rule
        page.get_by_text("Thêm quy tắc kiểm tra").click()
    page.fill("#fd-new-rule-key", "KHONG_AM")
    page.select_option("#fd-new-rule-sev", "blocker")
    expression = page.locator("#fd-new-rule-expr")
    expression.press_sequentially("thang >= * 2")
    expect(page.get_by_text(re.compile("ký tự 10")).first).to_be_visible()
    expression.fill("")
    expression.press_sequentially("thang >= 0")
    page.locator("form:has(#fd-new-rule-key)").get_by_role("button", name="Thêm").click()
    expect(page.locator("#designer")).to_contain_text("KHONG_AM")
    session.shot("forms-designer-rules")
    # Preview with sample numbers, then publish.
    page.get_by_role("link", name=re.compile("^Xem trước")).first.click()
    expect(page.get_by_text("Số liệu mẫu").first).to_be_visible()
    session.shot("forms-designer-preview")
    session.goto("/forms")
    page.get_by_role("link", name="Biểu số liệu thương mại, du lịch cấp xã").click()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Công bố bản nháp").click()
    expect(page.get_by_text("Đã công bố").first).to_be_visible()
    expect(page.get_by_text("Đang dùng").first).to_be_visible()


def _open_monthly_report(session):
    session.login("phuongdonghoi")
    return session.open_report(MONTHLY)


def test_a_commune_fills_its_monthly_report_on_screen_and_through_excel(session, tmp_path):
    page = _open_monthly_report(session)
    grid = page.locator("#entry-grid")
    # The commune's own form: what a commune produces, not the province's indexes or exports.
    expect(grid).to_contain_text("Sản lượng thủy sản")
    expect(grid).not_to_contain_text("Chỉ số giá tiêu dùng")
    expect(grid).not_to_contain_text("Kim ngạch xuất khẩu")
    # Pre-filled from stored figures: the previous month of the demo commune.
    expect(page.locator("#v-kx0401-prev")).not_to_have_text("")
    # Computed cells change as the commune types, without a page load.
    year_to_date = page.locator("#v-kx0601-ytd").inner_text()
    page.fill("#i-kx0601-cur", "10,5")
    page.fill("#i-kx0602-cur", "4,5")
    expect(page.locator("#v-kx0601-ytd")).not_to_have_text(year_to_date)
    # The keyboard moves down the column, over the group heading to the next input cell.
    page.locator("#i-kx0602-cur").press("Enter")
    expect(page.locator("#i-kx0701-cur")).to_be_focused()
    page.locator("#i-kx0701-cur").press("ArrowUp")
    expect(page.locator("#i-kx0602-cur")).to_be_focused()
    # A negative figure is a blocker: the report could not be submitted ...
    page.fill("#i-kx0702-cur", "-3")
    expect(page.get_by_text("Lỗi chặn nộp").first).to_be_visible()
    expect(page.get_by_text("Số vụ tai nạn giao thông: số liệu không được âm.").first).to_be_visible()
    session.shot("entry-blocker")
    # ... until it is fixed.
    page.fill("#i-kx0702-cur", "3")
    expect(page.get_by_text("Số vụ tai nạn giao thông: số liệu không được âm.")).to_have_count(0)
    # Text that is not a number is refused at its cell; nothing is saved.
    page.fill("#i-kx0703-cur", "mười")
    page.locator("#entry-save-button").click()
    expect(page.locator("#e-kx0703-cur")).to_contain_text("không phải là một số")
    session.shot("entry-cell-error")
    page.fill("#i-kx0703-cur", "2")
    page.locator("#entry-save-button").click()
    expect(page.locator("#save-status")).to_contain_text("Đã lưu")
    page.reload()
    expect(page.locator("#i-kx0601-cur")).to_have_value("10,5")
    expect(page.locator("#i-kx0703-cur")).to_have_value("2")

    # Excel: the template of this very report, filled in by the test, uploaded.
    with page.expect_download() as download:
        page.get_by_role("link", name="Tải mẫu Excel").click()
    path = tmp_path / "mau.xlsx"
    download.value.save_as(path)
    book = load_workbook(path)
    sheet = book.worksheets[0]
    # This month's column, headed as on screen (the previous month's is locked: editing it is refused).
    _, column = _find_header(sheet, page.locator("#entry-grid th[data-col=cur]").inner_text().strip())
    row = _find_row(sheet, "Số lao động được giải quyết việc làm")
    sheet.cell(row=row, column=column).value = 215
    good = tmp_path / "da-dien.xlsx"
    book.save(good)
    page.set_input_files("#entry-excel-file", str(good))
    page.get_by_role("button", name="Nhập từ Excel").click()
    expect(page.get_by_text("Đã nhập 1 ô từ tệp Excel.").first).to_be_visible()
    expect(page.locator("#i-kx0701-cur")).to_have_value("215")
    expect(page.locator("#i-kx0601-cur")).to_have_value("10,5")  # what was typed on screen stays

    # A file with a word in a number cell is refused cell by cell; nothing changes.
    sheet.cell(row=row, column=column).value = "hai trăm"
    bad = tmp_path / "sai.xlsx"
    book.save(bad)
    page.set_input_files("#entry-excel-file", str(bad))
    page.get_by_role("button", name="Nhập từ Excel").click()
    address = f"{sheet.cell(row=row, column=column).column_letter}{row}"
    expect(page.get_by_text("Chưa có số liệu nào được lưu").first).to_be_visible()
    expect(page.locator("table").first).to_contain_text(address)
    session.shot("entry-excel-refused")
    page.get_by_role("link", name="Quay lại báo cáo").click()
    expect(page.locator("#i-kx0701-cur")).to_have_value("215")


def _find_header(sheet, title: str) -> tuple[int, int]:
    for row in sheet.iter_rows(min_row=1, max_row=30):
        for cell in row:
            if isinstance(cell.value, str) and " ".join(cell.value.split()) == " ".join(title.split()):
                return cell.row, cell.column
    raise AssertionError(f"no column headed {title!r} in the template")


def _find_row(sheet, label: str) -> int:
    for row in sheet.iter_rows(min_row=1, max_row=200):
        for cell in row:
            if isinstance(cell.value, str) and label in cell.value:
                return cell.row
    raise AssertionError(f"no row {label!r} in the template")
