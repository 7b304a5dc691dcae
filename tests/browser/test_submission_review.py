"""Issue 6, "done when", on the real demo in headless Chromium: a commune signs and submits its
monthly report with its .p12 file, the planning department (which receives the monthly
socio-economic reports in the demo) returns it with a reason and a comment on a cell, the commune
corrects and resubmits, the department sees what changed and accepts, and its consolidated report
sums what it accepted — with drill-down to each unit's figure — and carries a valid signature
once the department signs and sends it up to the province. A second unit's report (sent by the
administrator) makes the sums real sums."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import MONTHLY

pytestmark = pytest.mark.browser

SECTIONS = {"ketqua": "Thương mại, dịch vụ tăng khá so với tháng trước.",
            "hanche": "Xuất khẩu còn phụ thuộc vào một số mặt hàng.",
            "nhiemvu": "Đẩy mạnh xúc tiến thương mại trong tháng tới."}


def _fill_and_save(page, cells: dict[str, str]) -> None:
    for cell, value in cells.items():
        page.fill(f"#i-{cell}", value)
    for key, text in SECTIONS.items():
        page.fill(f"#s-{key}", text)
    page.locator("#entry-save-button").click()
    expect(page.locator("#save-status")).to_contain_text("Đã lưu")


def _sign_and_submit(session, certs, username: str) -> None:
    """The .p12 way: the file and its password, used for this one signing."""
    page = session.page
    page.reload()  # the card's revision is the one just saved
    provider = page.locator("#signing-pkcs12")
    if provider.get_attribute("open") is None:
        provider.locator("summary").click()
    provider.locator("input[type=file]").set_input_files(str(certs.p12(username)))
    provider.locator("input[type=password]").fill(certs.password)
    page.once("dialog", lambda dialog: dialog.accept())
    provider.get_by_role("button", name="Ký số và gửi").click()
    expect(page.get_by_text("Đã ký số và gửi báo cáo.").first).to_be_visible()
    expect(page.get_by_text(re.compile("Chữ ký số hợp lệ: ")).first).to_be_visible()


def _report_id(page) -> int:
    return int(re.search(r"/reports/(\d+)", page.url).group(1))


def test_sign_return_resubmit_accept_and_consolidate(open_session, demo_certs):
    # The administrator fills and signs Đặc khu Cồn Cỏ's report: a second figure to add up.
    admin = open_session("admin")
    admin.login("quantri")
    admin.goto("/inbox?status=not_started&unit=Con Co")
    admin.page.locator("#core-queue tbody tr").filter(has_text="Cồn Cỏ").first.get_by_role("link").first.click()
    _fill_and_save(admin.page, {"kx0601-cur": "20", "kx0602-cur": "5"})
    _sign_and_submit(admin, demo_certs, "quantri")

    # The commune fills its report and signs it with its own certificate.
    commune = open_session("commune")
    commune.login("phuongdonghoi")
    commune.open_report(MONTHLY)  # this month's (last month's was accepted: core.demo_daily)
    report_id = _report_id(commune.page)
    _fill_and_save(commune.page, {"kx0601-cur": "10,5", "kx0602-cur": "4,5", "kx0702-cur": "3"})
    _sign_and_submit(commune, demo_certs, "phuongdonghoi")
    expect(commune.page.get_by_text("Đã nộp").first).to_be_visible()
    commune.shot("submission-signed")

    # The department finds it waiting, and returns it with a reason and a comment on one cell.
    department = open_session("department")
    department.login("sotaichinh")
    department.goto("/inbox")
    queue = department.page.locator("#core-queue")
    expect(queue).to_contain_text("Phường Đồng Hới")
    expect(queue).to_contain_text("Cồn Cỏ")
    department.shot("submission-queue")
    queue.get_by_role("link", name="Phường Đồng Hới").click()
    page = department.page
    expect(page.get_by_role("heading", name=re.compile("Xem xét báo cáo"))).to_be_visible()
    expect(page.get_by_text(re.compile("Chữ ký số hợp lệ: Lê Văn Cường")).first).to_be_visible()
    page.fill("#review-reason", "Sản lượng thủy sản chưa khớp với số liệu của Sở Nông nghiệp và Môi trường, đề nghị kiểm tra lại.")
    page.select_option("#review-cell-0", "kx0601.cur")
    page.fill("#review-text-0", "Hải quan ghi nhận 12 tỷ đồng.")
    page.get_by_role("button", name="Trả lại báo cáo").click()
    expect(page.get_by_text("Đã trả lại báo cáo cho đơn vị.").first).to_be_visible()

    # The commune is told, reads the reason and the comment, corrects and signs again.
    commune.goto("/notifications")
    expect(commune.page.get_by_text(re.compile("trả lại")).first).to_be_visible()
    commune.goto(f"/reports/{report_id}")
    card = commune.page.locator("#workflow")
    expect(card).to_contain_text("Sản lượng thủy sản chưa khớp")
    expect(commune.page.locator("#i-kx0601-cur")).to_be_editable()
    _fill_and_save(commune.page, {"kx0601-cur": "12"})
    _sign_and_submit(commune, demo_certs, "phuongdonghoi")

    # The department sees what changed between the two versions, then accepts.
    department.goto(f"/reports/{report_id}/review")
    changes = page.locator("#review-changes")
    expect(changes).to_contain_text("10,5")
    expect(changes).to_contain_text("12")
    department.shot("submission-review-changes")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Chấp nhận báo cáo").click()
    expect(page.get_by_text("Đã chấp nhận báo cáo.").first).to_be_visible()
    # Cồn Cỏ's report is accepted from the queue, ticked.
    department.goto("/inbox")
    row = page.locator("#core-queue tbody tr").filter(has_text="Cồn Cỏ")
    row.locator("input[type=checkbox]").check()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Chấp nhận các báo cáo đã chọn").click()
    expect(page.locator("#queue-result")).to_contain_text("Đã chấp nhận 1 báo cáo")

    # The consolidated report: the accepted figures added up, each cell opening to the units.
    department.goto("/consolidation")
    # The communes' monthly regime (the departments' has its own form and its own consolidation).
    page.locator("tr").filter(has_text="hằng tháng của cấp xã").get_by_role("button", name="Lập báo cáo tổng hợp").first.click()
    expect(page.get_by_text("Đã lập báo cáo tổng hợp").first).to_be_visible()
    consolidated_id = _report_id(page)
    department.goto(f"/reports/{consolidated_id}/consolidation")
    exports = page.locator('td[data-cell="kx0601.cur"]')
    expect(exports).to_have_text(re.compile(r"^\s*32(,0)?\s*$"))  # 12 + 20
    expect(page.locator('td[data-cell="kx0602.cur"]')).to_contain_text("9,5")  # 4,5 + 5
    exports.get_by_role("link").click()
    # The drill-down names the cell by its row and column, as the grid shows them.
    expect(page.locator("#consolidation-cell-detail h2")).to_contain_text("Sản lượng thủy sản — Thực hiện tháng")
    panel = page.locator("table").filter(has_text="Phường Đồng Hới").last
    expect(panel).to_contain_text("12")
    expect(panel).to_contain_text("Cồn Cỏ")
    expect(panel).to_contain_text("20")
    department.shot("submission-consolidated-drilldown")

    # The department adds its narrative, signs and sends it up to the province.
    department.goto(f"/reports/{consolidated_id}")
    expect(page.locator("#v-kx0601-cur, #i-kx0601-cur").first).to_be_visible()
    _fill_and_save(page, {})
    _sign_and_submit(department, demo_certs, "sotaichinh")
    department.shot("submission-consolidated-signed")
    for tab in (admin, commune, department):
        assert not tab.page_errors and not tab.csp_violations()
