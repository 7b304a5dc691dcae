"""Issue 15, "done when", on the real demo in headless Chromium: sector reporting delegated to a
department (Điều 6.3). The demo holds Sở Nông nghiệp và Môi trường's application (plugins/chuyen_nganh/
demo.py: sector "nn", five communes of the former Hướng Hóa district, Xã Khe Sanh among them and
Phường Đồng Hới not). By clicks, each person in a browser of their own:

a. the operator (``quantri``) opens the application and records the province's decision with its PDF;
b. the department's officer (``sonongnghiep``), named administrator by the decision, turns on
   two-factor login and logs in with it, keeps the sector's catalogue (a group, two indicators),
   designs a monthly form from them, and issues a monthly regime on the decision to the five
   communes, received by the department — issuing opens the current period;
c. Xã Khe Sanh's officer fills, signs and submits; Phường Đồng Hới sees nothing of it anywhere;
d. the department returns it with a reason, the commune corrects and sends again, the department
   accepts and consolidates, and sees the figures on its consolidated report and dashboard;
e. the operator revokes the delegation: the reports and figures stay readable (by the commune, and
   by the province), the administrator's delegated rights end with it, and the next period of the
   regime opens nothing.

The demo runs with ``require_admin_mfa`` off (core/cli.py: its administrators log in with a password
only), so nobody is *made* to set up two-factor login there; the department's administrator turns it
on from "Xác thực hai lớp" and logs in again with a code. That the delegated role demands it when the
setting is on is core.accounts.mfa's (tests/core/test_role_grants.py).

The next period cannot be reached from a browser (it starts on a later day; the core opens periods
hourly, or with ``baocao regimes open-due``, on the real date): a small script on the demo's own
settings file asks the core, at the next period's first day, which units would report and opens the
periods due for this regime (``core.reporting.opening``, as the command does) — before the revocation
for comparison, after it to show that nothing opens.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import os
import re
import struct
import subprocess
import sys
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import LOGIN_LINE
from tests.browser.test_submission_review import _sign_and_submit  # the .p12 way: its file and password

pytestmark = pytest.mark.browser

OPERATOR, DEPARTMENT_ADMIN, COMMUNE, OUTSIDE = "quantri", "sonongnghiep", "xakhesanh", "phuongdonghoi"
DEPARTMENT = "Sở Nông nghiệp và Môi trường"
SCOPE = ("Xã Khe Sanh", "Xã Hướng Lập", "Xã Hướng Phùng", "Xã Tân Lập", "Xã Lao Bảo")
DECISION = "125/QĐ-UBND"  # an illustrative number: the demo's decisions are not real ones
FORM_CODE, FORM_NAME = "NN-TT-THANG", "Biểu sản xuất trồng trọt hằng tháng cấp xã"
REGIME_CODE, REGIME = "NN-TT-THANG", "Báo cáo sản xuất trồng trọt hằng tháng của cấp xã"
INDICATORS = (("NN0101", "Diện tích lúa gieo cấy", "ha"), ("NN0102", "Sản lượng lúa", "tấn"))
RETURN_REASON = "Sản lượng lúa chưa khớp với diện tích gieo cấy, đề nghị xã kiểm tra lại."
REVOKE_REASON = "Bộ Nông nghiệp và Môi trường đã triển khai hệ thống báo cáo đến cấp xã."
PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"

# Run with the demo's settings file (its database, its secret key): the regime's next period, asked of
# the core as ``baocao regimes open-due`` would on that day. "check": the units that would report;
# "open": also open the periods due then, for this regime only (the demo's other regimes stay as the
# other browser tests expect them).
NEXT_PERIOD = """
import json, os, sys
os.environ["BAOCAO_SETTINGS"] = sys.argv[1]
from core import cli, clock
from core.db import db
from core.regimes.periods import windows
from core.regimes.regimes import Regime, work_calendar
from core.reporting import opening
from core.settings import load_settings

settings = load_settings()
clock.configure(settings.time_zone)
cli._prepare(settings)  # as every command: the database, the plugins and their hooks
with db.connection_context():
    regime = Regime.get((Regime.code == sys.argv[2]) & (Regime.status == "issued"))
    today = clock.today()
    ahead = [w for y in (today.year, today.year + 1) for w in windows(regime.frequency, y) if w.start > today]
    start = min(w.start for w in ahead)
    out = {"start": start.isoformat(), "units": sorted(u.name for u in opening.reporting_units(regime, start))}
    if sys.argv[3] == "open":
        result = opening.open_due_periods(start, regime_ids=[regime.id], calendar=work_calendar(settings))
        out.update(periods=result.periods, reports=result.reports)
print(json.dumps(out, ensure_ascii=False))
"""


@pytest.fixture
def logins(demo) -> dict[str, str]:
    """The demo's accounts beyond the three the session fixture waits for, read from its printout."""
    found = {m["username"]: m["password"] for m in map(LOGIN_LINE.match, demo.output) if m}
    missing = {DEPARTMENT_ADMIN, COMMUNE} - set(found)
    assert not missing, f"the demo printed no login for {sorted(missing)}:\n" + "\n".join(demo.output[-40:])
    for username, password in found.items():
        demo.logins.setdefault(username, password)
    return demo.logins


def _today() -> dt.date:
    return dt.datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")).date()


def _totp(secret: str, step: int) -> str:
    """RFC 6238 (SHA-1, 6 digits, 30 s): what an authenticator app shows for ``step``."""
    key = base64.b32decode(secret.replace(" ", "").upper() + "=" * (-len(secret.replace(" ", "")) % 8))
    digest = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    return f"{(struct.unpack('>I', digest[offset:offset + 4])[0] & 0x7FFFFFFF) % 1_000_000:06d}"


def _step() -> int:
    return int(time.time()) // 30


def _report_id(page) -> int:
    return int(re.search(r"/reports/(\d+)", page.url).group(1))


def _next_period(demo_certs, mode: str) -> dict:
    # The demo writes its settings beside its .p12 folder: demo.db.demo-certs → demo.db.toml on SQLite,
    # baocao-demo.demo-certs → baocao-demo.toml on PostgreSQL (core/cli.py cmd_demo).
    settings = Path(str(demo_certs.folder).removesuffix(".demo-certs") + ".toml")
    assert settings.exists(), settings
    env = {k: v for k, v in os.environ.items() if not k.startswith("BAOCAO_")}
    result = subprocess.run([sys.executable, "-c", NEXT_PERIOD, str(settings), REGIME_CODE, mode], env=env,
                            cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def _fill_and_save(page, cells: dict[str, str]) -> None:
    for cell, value in cells.items():
        page.fill(f"#i-{cell}", value)
    page.locator("#entry-save-button").click()
    expect(page.locator("#save-status")).to_contain_text("Đã lưu")


# -- the stages ---------------------------------------------------------------------------------------

def _operator_records_the_decision(operator, tmp_path) -> None:
    page = operator.page
    page.get_by_role("link", name="Hồ sơ ủy quyền báo cáo chuyên ngành").click()
    page.locator("tbody tr").filter(has_text=DEPARTMENT).get_by_role("link").first.click()
    expect(page.locator("#chuyen_nganh-scope-units li")).to_have_count(len(SCOPE))
    for name in SCOPE:
        expect(page.locator("#chuyen_nganh-scope-units")).to_contain_text(name)
    expect(page.locator("#chuyen_nganh-scope-units")).not_to_contain_text("Phường Đồng Hới")
    page.locator("#chuyen_nganh-decide summary").click()
    today = _today().isoformat()
    page.fill("#cn-decision_number", DECISION)
    page.fill("#cn-decision_date", today)
    page.fill("#cn-signer_name", "Hoàng Nam")
    page.fill("#cn-signer_title", "Phó Chủ tịch Ủy ban nhân dân tỉnh")
    page.fill("#cn-valid_from", today)
    pdf = tmp_path / "quyet-dinh-uy-quyen.pdf"
    pdf.write_bytes(PDF)
    page.set_input_files("#cn-file", str(pdf))
    page.locator("#chuyen_nganh-decide button[type=submit]").click()
    expect(page.locator("#chuyen_nganh-done")).to_contain_text("Đã ghi nhận quyết định.")
    expect(page.locator(".page-header")).to_contain_text("Đã có quyết định")
    expect(page.locator("#chuyen_nganh-in-force")).to_be_visible()
    expect(page.locator("#chuyen_nganh-decision")).to_contain_text(DECISION)
    operator.shot("sector-decision")


def _administrator_turns_on_two_factor(admin) -> None:
    """From "Xác thực hai lớp": the secret typed into an app (here: computed), a first code; then a
    new login asks for a code after the password."""
    page = admin.page
    page.get_by_role("link", name="Xác thực hai lớp").click()
    secret = page.locator("#mfa-secret").inner_text()
    enrolled_at = _step()
    page.fill("#mfa-code", _totp(secret, enrolled_at))
    page.get_by_role("button", name="Xác nhận và bật").click()
    expect(page.locator("#recovery-codes")).to_be_visible()
    expect(page.locator("#mfa-status")).to_have_text("Đang bật")
    with page.expect_navigation():
        page.locator("form[action='/logout'] button").first.click()
    admin.login(DEPARTMENT_ADMIN, admin.demo.logins[DEPARTMENT_ADMIN])  # the password: then a code is asked
    expect(page).to_have_url(re.compile(r"/login/verify"))
    # A code is good once: the next step's code (accepted one step ahead) if the clock has not moved on.
    page.fill("#code", _totp(secret, max(_step(), enrolled_at + 1)))
    with page.expect_navigation():
        page.locator("#code").press("Enter")
    expect(page).not_to_have_url(re.compile(r"/login"))
    admin.set_language("vi")


def _administrator_builds_the_catalogue_and_the_form(admin) -> None:
    page = admin.page
    page.get_by_role("link", name="Danh mục chỉ tiêu ngành").click()
    page.locator("tbody tr").filter(has_text="Nông nghiệp").get_by_role("link").first.click()
    page.get_by_role("link", name="Thêm nhóm").click()
    page.fill("#cn-code", "NN01")
    page.fill("#cn-name", "Trồng trọt")
    page.select_option("#cn-level", "commune")
    page.get_by_role("button", name="Lưu").click()
    expect(page.get_by_text("Đã thêm nhóm.").first).to_be_visible()
    for code, name, unit in INDICATORS:
        page.get_by_role("link", name="Thêm chỉ tiêu vào nhóm").click()
        page.fill("#cn-code", code)
        page.fill("#cn-name", name)
        page.fill("#cn-unit_of_measure", unit)
        page.get_by_role("button", name="Lưu").click()
        expect(page.get_by_text("Đã thêm chỉ tiêu.").first).to_be_visible()
    expect(page.get_by_text("1 nhóm, 2 chỉ tiêu.").first).to_be_visible()

    # The core's form designer: the rows from the sector's catalogue, the standard monthly columns.
    page.get_by_role("link", name="Biểu mẫu").click()
    page.get_by_role("link", name="Tạo biểu mẫu").click()
    page.fill("#fn-code", FORM_CODE)
    page.fill("#fn-name", FORM_NAME)
    expect(page.locator("#fn-owner option:checked")).to_contain_text(DEPARTMENT)
    page.select_option("#fn-frequency", "monthly")
    page.get_by_role("button", name="Tạo biểu mẫu").click()
    page.locator("#fd-ind-q").press_sequentially("NN01")
    results = page.locator("#fd-ind-results")
    expect(results.get_by_text("NN0102")).to_be_visible()
    for code, _, _ in INDICATORS:
        results.locator(f"input[value={code}]").check()
    page.get_by_role("button", name="Thêm các chỉ tiêu đã chọn").click()
    expect(page.locator("#designer table").first).to_contain_text("Sản lượng lúa")
    page.get_by_role("link", name=re.compile("^Cột")).first.click()
    page.get_by_role("button", name="Thêm bộ cột chuẩn (mẫu A)").click()
    expect(page.locator("#designer")).to_contain_text("so với cùng kỳ")
    admin.shot("sector-form-designer")
    page.get_by_role("link", name="Biểu mẫu").first.click()
    page.get_by_role("link", name=FORM_NAME).click()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Công bố bản nháp").click()
    expect(page.get_by_text("Đã công bố").first).to_be_visible()


def _administrator_issues_the_regime(admin) -> None:
    page = admin.page
    page.get_by_role("link", name="Chế độ báo cáo").first.click()
    page.get_by_role("link", name="Tạo chế độ báo cáo").click()
    page.fill("#rf-code", REGIME_CODE)
    page.select_option("#rf-issuing", label=DEPARTMENT)
    # The legal basis: the delegation's decision (core/regimes/authority.py).
    page.fill("#rf-legal-number", DECISION)
    page.fill("#rf-legal-date", _today().isoformat())
    page.fill("#rf-legal-issuer", DEPARTMENT)
    page.fill("#rf-name", REGIME)
    page.fill("#rf-content", "Diện tích gieo cấy và sản lượng lúa trong tháng của xã.")
    page.select_option("#rf-unit-list", label=list(SCOPE))
    page.select_option("#rf-receiving", label=DEPARTMENT)
    page.select_option("#rf-frequency", "monthly")
    page.select_option("#rf-form-id", label=f"{FORM_CODE} — {FORM_NAME}")
    page.locator("#regime-form button[type=submit]").last.click()
    expect(page.get_by_text("có thể ban hành").first).to_be_visible()
    main = page.locator("main")
    expect(main).to_contain_text("Hiện có 5 đơn vị thực hiện báo cáo")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Ban hành", exact=True).click()
    # Issuing opens the period in progress: one report for each commune of the delegation.
    expect(main).to_contain_text("Đang có hiệu lực")
    expect(main).to_contain_text(re.compile(r"Tháng \d{1,2} năm \d{4}\s+\S+ – \S+ · 5 báo cáo"))
    admin.shot("sector-regime-issued")


def _commune_fills_signs_and_submits(commune, certs) -> int:
    page = commune.page
    page.get_by_role("link", name="Báo cáo phải gửi, nhận").first.click()
    row = page.locator("tbody tr").filter(has_text=REGIME)
    expect(row).to_have_count(1)
    expect(row).to_contain_text(DEPARTMENT)  # received by the department, not by Sở Tài chính
    row.get_by_role("link").first.click()
    expect(page.locator("#entry-grid")).to_contain_text("Diện tích lúa gieo cấy")
    report_id = _report_id(page)
    _fill_and_save(page, {"nn0101-thang": "120,5", "nn0102-thang": "610"})
    commune.shot("sector-commune-entry")
    _sign_and_submit(commune, certs, COMMUNE)
    expect(page.get_by_text("Đã nộp").first).to_be_visible()
    return report_id


def _outside_commune_sees_nothing(outside, report_id: int) -> None:
    page = outside.page
    for path in ("/", "/reports", "/regimes", "/inbox", "/notifications"):
        outside.goto(path)
        expect(page.locator("main")).not_to_contain_text(REGIME)
        expect(page.locator("main")).not_to_contain_text(REGIME_CODE)
    outside.shot("sector-outside-commune-reports")
    assert outside.goto(f"/reports/{report_id}").status == 404


def _department_returns(admin, report_id: int) -> None:
    page = admin.page
    page.get_by_role("link", name="Báo cáo chờ tôi xử lý").click()
    queue = page.locator("#core-queue")
    expect(queue.locator("tbody tr")).to_have_count(1)
    expect(queue).to_contain_text(REGIME)
    queue.get_by_role("link", name="Xã Khe Sanh").click()
    expect(page.get_by_role("heading", name=re.compile("Xem xét báo cáo"))).to_be_visible()
    expect(page.get_by_text(re.compile("Chữ ký số hợp lệ: Phan Thị Hạnh")).first).to_be_visible()
    page.fill("#review-reason", RETURN_REASON)
    page.get_by_role("button", name="Trả lại báo cáo").click()
    expect(page.get_by_text("Đã trả lại báo cáo cho đơn vị.").first).to_be_visible()
    assert _report_id(page) == report_id


def _commune_corrects_and_resubmits(commune, certs, report_id: int) -> None:
    page = commune.page
    commune.goto("/")
    expect(page.locator("main")).to_contain_text(RETURN_REASON)  # the home page: returned, with why
    commune.shot("sector-commune-home-returned")
    commune.goto(f"/reports/{report_id}")
    expect(page.locator("#workflow")).to_contain_text(RETURN_REASON)
    _fill_and_save(page, {"nn0102-thang": "602"})
    _sign_and_submit(commune, certs, COMMUNE)


def _department_accepts_and_consolidates(admin, report_id: int) -> int:
    page = admin.page
    admin.goto(f"/reports/{report_id}/review")
    changes = page.locator("#review-changes")
    expect(changes).to_contain_text("610")
    expect(changes).to_contain_text("602")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Chấp nhận báo cáo").click()
    expect(page.get_by_text("Đã chấp nhận báo cáo.").first).to_be_visible()

    page.get_by_role("link", name="Báo cáo chuyên ngành", exact=True).click()  # the department's sector page
    row = page.locator("tbody tr").filter(has_text=REGIME)
    expect(row.locator("[data-count=accepted]")).to_have_text("1")
    row.locator("a[data-link=consolidation]").click()
    page.locator("tr").filter(has_text=REGIME).get_by_role("button", name="Lập báo cáo tổng hợp").first.click()
    expect(page.get_by_text("Đã lập báo cáo tổng hợp").first).to_be_visible()
    consolidated_id = _report_id(page)
    admin.goto(f"/reports/{consolidated_id}/consolidation")
    expect(page.locator('td[data-cell="nn0101.thang"]')).to_have_text(re.compile(r"^\s*120,5\s*$"))
    expect(page.locator('td[data-cell="nn0102.thang"]')).to_have_text(re.compile(r"^\s*602\s*$"))
    expect(page.locator("main")).to_contain_text("Xã Khe Sanh")
    admin.shot("sector-consolidated")
    # Its figures: the department's dashboard follows the sector's indicators as soon as they are accepted.
    page.get_by_role("link", name="Bảng điều hành").click()
    expect(page.locator("main")).to_contain_text("NN0102 Sản lượng lúa")
    return consolidated_id


def _operator_revokes(operator) -> None:
    page = operator.page
    operator.goto("/p/chuyen_nganh/queue?status=approved")
    page.locator("tbody tr").filter(has_text=DEPARTMENT).get_by_role("link").first.click()
    page.locator("#chuyen_nganh-revoke summary").click()
    page.fill("#cn-reason-revoke", REVOKE_REASON)
    page.locator("#chuyen_nganh-revoke button[type=submit]").click()
    expect(page.locator("#chuyen_nganh-done")).to_contain_text("Đã thu hồi")
    expect(page.locator("#chuyen_nganh-state")).to_contain_text("Các báo cáo và số liệu đã có vẫn được giữ nguyên")
    operator.shot("sector-revoked")


# -- the flow -----------------------------------------------------------------------------------------

def test_a_department_runs_its_sector_reporting_under_the_provinces_decision_until_it_is_revoked(
        open_session, logins, demo_certs, tmp_path):
    # a. The operator records the province's decision on the department's application.
    operator = open_session("operator")
    operator.login(OPERATOR)
    _operator_records_the_decision(operator, tmp_path)

    # b. The department's administrator: two-factor login, the catalogue, the form, the regime.
    admin = open_session("department")
    admin.login(DEPARTMENT_ADMIN)
    _administrator_turns_on_two_factor(admin)
    _administrator_builds_the_catalogue_and_the_form(admin)
    _administrator_issues_the_regime(admin)

    # c. A commune in the scope fills, signs and submits; one outside it sees nothing of it.
    commune = open_session("commune")
    commune.login(COMMUNE)
    report_id = _commune_fills_signs_and_submits(commune, demo_certs)
    outside = open_session("outside")
    outside.login(OUTSIDE)
    _outside_commune_sees_nothing(outside, report_id)

    # d. Returned with a reason, corrected, accepted, consolidated.
    _department_returns(admin, report_id)
    _commune_corrects_and_resubmits(commune, demo_certs, report_id)
    consolidated_id = _department_accepts_and_consolidates(admin, report_id)

    # e. Revocation: the next period would have opened for the five communes; after it, nothing opens.
    before = _next_period(demo_certs, "check")
    assert before["units"] == sorted(SCOPE), before
    _operator_revokes(operator)
    after = _next_period(demo_certs, "open")
    assert (after["start"], after["units"], after["periods"], after["reports"]) == (before["start"], [], 0, 0), after
    # Every report stays readable, with its figures: the commune's own, and both for the province.
    commune.goto(f"/reports/{report_id}")
    expect(commune.page.locator("main")).to_contain_text("Đã tiếp nhận")
    expect(commune.page.locator("#v-nn0102-thang")).to_have_text("602")
    expect(commune.page.locator("#v-nn0101-thang")).to_have_text("120,5")
    operator.goto(f"/reports/{consolidated_id}/consolidation")
    expect(operator.page.locator('td[data-cell="nn0102.thang"]')).to_contain_text("602")
    operator.goto(f"/reports/{report_id}")
    expect(operator.page.locator("main")).to_contain_text("Xã Khe Sanh")
    # The regime has still its one period: nothing was opened for the next one.
    operator.goto("/regimes")
    operator.page.get_by_role("link", name=REGIME).first.click()
    # (its communes' five reports and the department's consolidated one)
    expect(operator.page.get_by_text(re.compile(r"Tháng \d{1,2} năm \d{4}.*· \d+ báo cáo"))).to_have_count(1)
    # The department's administrator held these rights by the delegation only: they ended with it.
    assert admin.goto(f"/reports/{consolidated_id}").status == 404
    admin.goto("/")
    expect(admin.page.get_by_role("link", name="Danh mục chỉ tiêu ngành")).to_have_count(0)

    for tab in (operator, admin, commune, outside):
        assert not tab.page_errors and not tab.csp_violations(), (tab.name, tab.page_errors, tab.csp_violations())
