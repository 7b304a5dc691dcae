"""Issue 16, "done when": the exchange log after a failure and a retry, on the real demo in headless
Chromium. The demo runs with the national link asked for (tests/browser/conftest.py: its national
test server on a port of its own, plugins/national_link/demo.toml), so the province is switched on
for the Government's connector. By clicks, as the province's administrator:

1. the connectors page shows the connector, the province sending through it and its regimes;
2. the test server is told to fail the next post (as a remote that is down); the administrator sends
   the province's indicator catalogue: it is queued and tried at once, and the log shows it waiting
   with one try and the server's answer (HTTP 503);
3. "Gửi lại ngay": the log shows it acknowledged, with the server's receipt; the server holds the
   packet once, after two posts;
4. the packet's page shows what was sent and its acknowledgement.
"""

from __future__ import annotations

import json
import urllib.request

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

ADMIN = "quantri"


def control(demo, action: str, **data) -> dict:
    request = urllib.request.Request(f"{demo.national_url}/control/{action}", data=json.dumps(data).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def received(demo) -> list[dict]:
    with urllib.request.urlopen(f"{demo.national_url}/received", timeout=10) as response:
        answer = json.loads(response.read())
    return answer


def test_the_exchange_log_shows_a_failure_then_the_retry_acknowledged(session, demo):
    page = session.page
    session.login(ADMIN)
    session.goto("/p/national_link/connectors")
    card = page.locator("#connector-chinhphu")
    expect(card).to_contain_text("Hệ thống báo cáo Chính phủ (máy chủ thử nghiệm)")
    expect(page.locator("#connector-chinhphu-units")).to_contain_text("Tỉnh Quảng Trị")
    expect(page.locator("#connector-chinhphu-routes")).to_contain_text("kinhte_xahoi.monthly")
    session.shot("national-connectors")

    before = len(received(demo))
    control(demo, "fail", count=1, status=503)
    send = page.locator("#connector-chinhphu-send")
    send.locator("select[name=packet_type]").select_option("indicator_catalogue")
    with page.expect_navigation():
        send.get_by_role("button", name="Gửi").click()
    expect(page.locator("#national-link-done")).to_be_visible()
    row = page.locator("#national-link-log tbody tr").first
    expect(row).to_have_attribute("data-state", "pending")
    expect(row).to_contain_text("Danh mục chỉ tiêu")
    expect(row).to_contain_text("Đã thử 1 lần")
    expect(row).to_contain_text("503")
    session.shot("national-log-failed")

    with page.expect_navigation():
        row.get_by_role("button", name="Gửi lại ngay").click()
    expect(page.locator("#national-link-done")).to_contain_text("Đã gửi lại")
    row = page.locator("#national-link-log tbody tr").first
    expect(row).to_have_attribute("data-state", "acknowledged")
    expect(row).to_contain_text("Đã được xác nhận")
    expect(row).to_contain_text("số biên nhận")
    session.shot("national-log-retried")
    got = received(demo)
    assert len(got) == before + 1
    assert got[-1]["packet_type"] == "indicator_catalogue" and got[-1]["attempts"] == 2

    row.get_by_role("link", name="Danh mục chỉ tiêu").click()
    expect(page.locator("#national-link-packet-facts")).to_contain_text("Đã được xác nhận")
    expect(page.locator("#national-link-packet")).to_contain_text("indicator_catalogue")
    assert session.horizontal_overflow() == 0
    assert session.csp_violations() == [] and session.page_errors == []
    session.shot("national-packet")
