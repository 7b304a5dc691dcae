"""Issue 14, "done when", on the real demo in headless Chromium: what leaders and receivers do every
day. The province's leader opens the dashboard; in another session the planning department accepts
a commune's report of last month, and on the leader's next page load — no refresh anywhere — the
chart's figure for that month and the province's total since January have grown by the commune's
figure. The department sees three communes late with last month's report, presses "Đôn đốc", and
each of them finds exactly one reminder. A commune reports a problem; the operator answers it and
the commune reads the answer.

The demo's last month (core.demo_daily): every commune's report accepted but Phường Đông Hà's,
waiting for review, and those of Xã Khe Sanh, Xã Minh Hóa and Xã Cửa Tùng, never sent; the
leader ``lanhdaotinh`` follows Sản lượng thủy sản (KX0601) first on the dashboard.
"""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import LOGIN_LINE

pytestmark = pytest.mark.browser

LEADER, RECEIVER, OPERATOR = "lanhdaotinh", "sotaichinh", "quantri"
LATE = {"xakhesanh": "Xã Khe Sanh", "xaminhhoa": "Xã Minh Hóa", "xacuatung": "Xã Cửa Tùng"}
WAITING = "Phường Đông Hà"
COMMUNE_REGIME = "Báo cáo tình hình kinh tế - xã hội hằng tháng của cấp xã"
INDICATOR = "KX0601"  # Sản lượng thủy sản (tấn), on the communes' form and the leader's dashboard
MONTH = re.compile(r"Tháng \d{1,2} năm \d{4}")
PROBLEM = "Không thấy nút gửi báo cáo tháng trước"
ANSWER = "Nút \"Ký số và gửi\" ở cuối trang báo cáo, dưới phần thuyết minh; báo cáo quá hạn vẫn gửi được."


@pytest.fixture
def logins(demo) -> dict[str, str]:
    """The demo's accounts beyond the three the session fixture waits for, read from its printout."""
    found = {m["username"]: m["password"] for m in map(LOGIN_LINE.match, demo.output) if m}
    missing = {LEADER, *LATE} - set(found)
    assert not missing, f"the demo printed no login for {sorted(missing)}:\n" + "\n".join(demo.output[-40:])
    for username, password in found.items():
        demo.logins.setdefault(username, password)
    return demo.logins


def number(text: str) -> Decimal:
    """A figure as the Vietnamese screens write it ("8.809,4 tấn") as a number."""
    digits = re.search(r"-?[\d.]+(,\d+)?", text).group(0)
    return Decimal(digits.replace(".", "").replace(",", "."))


def _dashboard_figures(page, month: str) -> tuple[Decimal, Decimal, str]:
    """(the province's figure of ``month`` in the chart's table, its total since January, the year of
    that total) as the dashboard shows them."""
    series = page.locator(f"#chart-{INDICATOR}-series")
    series.locator("summary").click()  # "Xem số liệu": the chart's numbers
    row = series.locator("tbody tr").filter(has=page.get_by_role("rowheader", name=month, exact=True))
    expect(row).to_have_count(1)
    plan = page.locator(f"#chart-{INDICATOR}-plan")
    # The attainment chart's legend, drawn in the SVG: "Lũy kế thực hiện: 133.728,6 tấn".
    total = plan.locator("svg text").filter(has_text="Lũy kế thực hiện:")
    expect(total).to_be_visible()
    year = re.search(r"kế hoạch năm (\d{4})", plan.locator("svg desc").text_content()).group(1)
    return number(row.locator("td").first.inner_text()), number(total.text_content()), year


def test_an_acceptance_reaches_the_leaders_chart_and_province_total_on_the_next_load(open_session, logins):
    # The department opens the commune's report waiting for it: the month and the figure it holds.
    receiver = open_session("department")
    receiver.login(RECEIVER)
    receiver.goto("/inbox")
    receiver.page.locator("#core-queue").get_by_role("link", name=WAITING).click()
    review = receiver.page
    expect(review.get_by_role("heading", name=re.compile("Xem xét báo cáo"))).to_be_visible()
    month = MONTH.search(review.locator("main").get_by_text(COMMUNE_REGIME).first.inner_text()).group(0)
    figure = number(review.locator(f"#cell-{INDICATOR.lower()}-cur").inner_text())
    assert figure > 0

    # The leader's dashboard before: the province's figure of that month, and its total this year.
    leader = open_session("leader")
    leader.login(LEADER)
    leader.goto("/dashboard")
    page = leader.page
    expect(page.locator("h1")).to_contain_text("Tỉnh Quảng Trị")
    expect(page.locator(f"#panel-{INDICATOR}")).to_contain_text("Sản lượng thủy sản")
    month_before, total_before, year = _dashboard_figures(page, month)
    leader.shot("daily-dashboard-before")

    # Accepted in the other session ...
    review.once("dialog", lambda dialog: dialog.accept())
    review.get_by_role("button", name="Chấp nhận báo cáo").click()
    expect(review.get_by_text("Đã chấp nhận báo cáo.").first).to_be_visible()

    # ... and on the leader's next page load both have grown by the commune's figure.
    page.reload()
    month_after, total_after, _ = _dashboard_figures(page, month)
    assert month_after == month_before + figure, (month_before, figure, month_after)
    # The total runs from January: last month counts in it unless it closed last year (in January).
    grown = figure if month.endswith(year) else 0
    assert total_after == total_before + grown, (total_before, figure, total_after)
    leader.shot("daily-dashboard-after")
    for tab in (receiver, leader):
        assert not tab.page_errors and not tab.csp_violations()


def test_the_receiver_urges_the_three_late_communes_and_each_finds_one_reminder(open_session, logins):
    receiver = open_session("department")
    receiver.login(RECEIVER)
    receiver.goto("/completeness")
    page = receiver.page
    page.get_by_role("link", name=COMMUNE_REGIME, exact=True).click()
    # The latest period whose deadline has passed: last month, three communes still to send it.
    expect(page.locator("h1")).to_contain_text(COMMUNE_REGIME)
    month = MONTH.search(page.locator("main").inner_text()).group(0)
    page.locator("#completeness-units a.tab[data-status=overdue]").click()
    rows = page.locator("#completeness-units tbody tr")
    expect(rows).to_have_count(3)
    for name in LATE.values():
        expect(rows.filter(has_text=name)).to_have_count(1)
    receiver.shot("daily-completeness-late")

    page.locator("#completeness-remind summary").click()
    page.fill("#remind-message", "Đề nghị các xã gửi ngay báo cáo tháng trước để Sở Tài chính tổng hợp báo cáo tỉnh.")
    page.locator("#remind-submit").click()
    expect(page.locator("#remind-result")).to_contain_text("Đã đôn đốc 3 đơn vị.")
    receiver.shot("daily-completeness-reminded")

    for username, commune in LATE.items():
        officer = open_session(username)
        officer.login(username)
        officer.goto("/notifications")
        # One notification about last month's report: the reminder, with the department's message.
        reminder = officer.page.locator("#notify-table tbody tr").filter(has_text=month)
        expect(reminder).to_have_count(1)
        expect(reminder).to_contain_text(f"Sở Tài chính đề nghị {commune} gửi ngay báo cáo {month}")
        expect(reminder).to_contain_text("Đề nghị các xã gửi ngay báo cáo tháng trước")
        if username == next(iter(LATE)):
            officer.shot("daily-reminder")
        assert not officer.page_errors and not officer.csp_violations()
    # A commune that sent its report on time is not reminded.
    on_time = open_session("phuongdonghoi")
    on_time.login("phuongdonghoi")
    on_time.goto("/notifications")
    expect(on_time.page.locator("main").get_by_text("đôn đốc")).to_have_count(0)
    assert not receiver.page_errors and not receiver.csp_violations()


def test_the_operator_answers_a_problem_report(open_session, logins, tmp_path):
    # A late commune's officer cannot find where to send last month's report, and says so from there.
    commune = open_session("commune")
    commune.login("xaminhhoa")
    commune.goto("/reports")
    commune.page.locator("tbody tr").filter(has_text=COMMUNE_REGIME).first.get_by_role("link").first.click()
    report_path = re.sub(r"^https?://[^/]+", "", commune.page.url)
    screenshot = tmp_path / "bao-cao-thang-truoc.png"
    commune.page.screenshot(path=str(screenshot))
    commune.page.get_by_role("link", name="Phản ánh, góp ý").first.click()
    page = commune.page
    expect(page.locator("#fb-page")).to_have_value(report_path)  # the page it came from
    page.get_by_label("Báo lỗi / sự cố").check()
    page.fill("#fb-title", PROBLEM)
    page.fill("#fb-description", "Xã đã nhập số liệu nhưng không thấy nút gửi báo cáo đã quá hạn. Đề nghị hướng dẫn.")
    page.set_input_files("#fb-screenshot", str(screenshot))
    page.get_by_role("button", name="Gửi phản ánh").click()
    expect(page.locator("#feedback-status")).to_have_attribute("data-status", "new")
    item_url = re.sub(r"\?.*$", "", page.url)
    expect(page.locator("#feedback-screenshot img")).to_be_visible()

    # The operator finds it in the queue and answers, closing it.
    operator = open_session("operator")
    operator.login(OPERATOR)
    operator.goto("/admin/feedback")
    operator.page.locator("#feedback-queue").get_by_role("link", name=PROBLEM).click()
    desk = operator.page
    expect(desk.locator("#feedback-description")).to_contain_text("Đề nghị hướng dẫn")
    expect(desk.locator("#feedback-page-link")).to_have_text(report_path)
    desk.fill("#fb-reply", ANSWER)
    desk.select_option("#fb-status", "done")
    desk.locator("#feedback-reply").get_by_role("button", name="Gửi", exact=True).click()
    expect(desk.locator("#feedback-status")).to_have_attribute("data-status", "done")
    operator.shot("daily-feedback-answer")

    # The commune is told, and reads the answer.
    commune.goto("/feedback")
    news = page.locator("#feedback-news")
    expect(news).to_be_visible()
    news.get_by_role("link").first.click()
    expect(page).to_have_url(re.compile(re.escape(item_url)))
    expect(page.locator("#feedback-thread")).to_contain_text(ANSWER)
    expect(page.locator("#feedback-status")).to_have_attribute("data-status", "done")
    commune.shot("daily-feedback-answered")
    for tab in (commune, operator):
        assert not tab.page_errors and not tab.csp_violations()
