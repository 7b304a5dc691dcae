"""Issue 13, "done when", in headless Chromium: the vendor plugin of docs/writing_plugins.md
(tests/fixtures/vendor/baocao-nongnghiep) on a demo server of its own. The administrator switches
it on for the department of agriculture and two communes, and issues its regime, which opens
reports for those two communes only; a commune fills and submits its crop-progress report; the
department accepts it; the plugin's screen shows the figure; and its outbox file holds exactly one
message even after the administrator retries it from /admin/outbox.

The shared demo server (conftest.py) runs without the plugin, so the other browser tests see the
demo as it ships; this module starts ``baocao demo --no-serve`` and ``baocao serve`` with the
package "installed" into a folder on PYTHONPATH and allow-listed in a settings file, on a SQLite
file or — when BAOCAO_BROWSER_DATABASE_URL names a PostgreSQL database — on a database of its own
beside it. The worker's outbox delivery is played by a subprocess (``baocao worker`` would deliver
only at its next minute).
"""

from __future__ import annotations

import json
import os
import queue
import re
import secrets
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import (DESKTOP, LOGIN_LINE, START_TIMEOUT, Demo, Session, _baocao_executable, stop,
                                    _free_port, _pump, _wait_healthy)
from tests.fixtures.vendor import install_nongnghiep

pytestmark = pytest.mark.browser

REGIME = "Báo cáo tiến độ sản xuất nông nghiệp hằng tháng"
DEPARTMENT = "QT.SNNMT"  # Sở Nông nghiệp và Môi trường in the demo
COMMUNES = ("Phường Đồng Hới", "Đặc khu Cồn Cỏ")  # switched on; every other commune stays off
RECEIVER = "nhanbaocaonn"

# Run in a subprocess with the server's environment: the department's receiving account (the demo
# has no receiver there: its account sonongnghiep only applies for sector reporting), and the worker's
# delivery of the outbox.
ADD_RECEIVER = """
import sys
from core.accounts import login as accounts
from core.accounts.access import Grant, Role
from core.db import db, init_db
from core.models import Unit
from core.settings import load_settings

init_db(load_settings().database_url)
with db.connection_context(), db.atomic():
    unit = Unit.get(Unit.code == sys.argv[1])
    user = accounts.create_user(sys.argv[2], "Phạm Thị Dung", sys.argv[3], unit)
    Grant.create(user=user, role=Role.get(Role.code == "receiver"), unit=unit)
"""
DELIVER = """
import dataclasses, sys
from core import outbox
from core.db import db, init_db
from core.plugins import build_plugin_manager
from core.settings import load_settings

settings = load_settings()
init_db(settings.database_url)
known = outbox.configure(build_plugin_manager(settings, strict=True), settings)
if sys.argv[1] == "lose-the-answer":
    # The file is written, then the worker loses the answer (it dies, a timeout): the message stays
    # pending with the error, although the line is in the file.
    channel = known["nongnghiep.file"]

    def deliver(message, settings):
        channel.deliver(message, settings)
        raise ConnectionError("the worker lost the answer after writing")

    known = {**known, "nongnghiep.file": dataclasses.replace(channel, deliver=deliver)}
with db.connection_context():
    result = outbox.deliver_due(settings, names=["nongnghiep.file"], known=known)
print(f"sent={result.sent} failed={result.failed}")
"""


def _postgres_database(url: str, suffix: str):
    """A new empty database named after ``url``'s on the same server; returns (url, drop)."""
    import psycopg

    base, _, name = url.rpartition("/")
    name = f"{name.split('?')[0][:40]}_{suffix}"
    admin = f"{base}/postgres"

    def run(statement):
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(statement)

    run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    run(f'CREATE DATABASE "{name}"')
    return f"{base}/{name}", lambda: run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class VendorDemo(Demo):
    outbox_file: Path
    env: dict

    def run(self, script: str, *args: str) -> str:
        result = subprocess.run([sys.executable, "-c", script, *args], env=self.env, capture_output=True,
                                text=True, timeout=120)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
        return result.stdout

    def outbox_lines(self) -> list[dict]:
        text = self.outbox_file.read_text(encoding="utf-8") if self.outbox_file.exists() else ""
        return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def vendor_demo(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("vendor-demo")
    site = install_nongnghiep(workdir / "site-packages")
    outbox_file = workdir / "outbox" / "nongnghiep.jsonl"
    outbox_file.parent.mkdir()
    settings_file = workdir / "baocao.toml"
    settings_file.write_text(
        '[plugins]\nallow_external = ["nongnghiep"]\n\n'
        f'[plugins.nongnghiep]\ndepartment = "{DEPARTMENT}"\noutbox_file = {json.dumps(str(outbox_file))}\n',
        encoding="utf-8")
    drop = None
    database = os.environ.get("BAOCAO_BROWSER_DATABASE_URL")
    if database:
        database, drop = _postgres_database(database, "nongnghiep")
        database_url = database
    else:
        database = str(workdir / "demo.db")
        database_url = f"sqlite:///{database}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("BAOCAO_")}
    env.update(PYTHONUNBUFFERED="1", PYTHONIOENCODING="utf-8", PYTHONPATH=str(site), PYTHONDONTWRITEBYTECODE="1",
               BAOCAO_SETTINGS=str(settings_file), BAOCAO_SECRET_KEY=secrets.token_urlsafe(48),
               BAOCAO_MODE="development", BAOCAO_REQUIRE_ADMIN_MFA="false", BAOCAO_SESSION_IDLE_MINUTES="120",
               # Submitted unsigned: signing has its own browser tests (test_submission_review.py).
               BAOCAO_REQUIRE_SIGNATURE="false", BAOCAO_LOGIN_RATE_PER_MINUTE="1000")
    baocao = str(_baocao_executable())
    built = subprocess.run([baocao, "demo", "--no-serve", "--database", database], cwd=workdir, env=env,
                           capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    logins = {m["username"]: m["password"] for m in map(LOGIN_LINE.match, built.stdout.splitlines()) if m}
    env["BAOCAO_DATABASE_URL"] = database_url
    logins[RECEIVER] = secrets.token_urlsafe(12)
    port = _free_port()
    demo = VendorDemo(f"http://127.0.0.1:{port}", logins)
    demo.outbox_file, demo.env = outbox_file, env
    demo.run(ADD_RECEIVER, DEPARTMENT, RECEIVER, logins[RECEIVER])
    process = subprocess.Popen([baocao, "serve", "--port", str(port)], cwd=workdir, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True, encoding="utf-8",
                               errors="replace")
    threading.Thread(target=_pump, args=(process.stdout, queue.Queue(), demo.output), daemon=True).start()
    try:
        _wait_healthy(demo.url("/healthz"), process, time.monotonic() + START_TIMEOUT, demo.output)
        yield demo
    finally:
        stop(process)
        if drop:
            drop()


@pytest.fixture
def open_vendor_session(browser, vendor_demo):
    contexts = []

    def open_(name: str) -> Session:
        context = browser.new_context(viewport=DESKTOP, locale="vi-VN", extra_http_headers={"Accept-Language": "vi-VN"})
        context.set_default_timeout(10_000)
        contexts.append(context)
        return Session(context.new_page(), vendor_demo, f"vendor-{name}")

    yield open_
    for context in contexts:
        context.close()


def _switch_on(page, unit_text: str) -> None:
    row = page.locator("#core-activation tbody tr").filter(has_text=unit_text).first
    row.locator("select[name=state]").select_option("on")
    row.get_by_role("button", name="Lưu").click()
    row = page.locator("#core-activation tbody tr").filter(has_text=unit_text).first  # swapped by htmx
    expect(row.locator(".badge-ok")).to_have_text("Bật")
    expect(row).to_contain_text("bật riêng")


def test_the_sector_plugin_from_activation_to_its_outbox_file(open_vendor_session, vendor_demo):
    admin = open_vendor_session("admin")
    admin.login("quantri")
    page = admin.page

    # The administrator switches the plugin on for the department and two communes (it is off by default).
    admin.goto("/admin/plugins")
    page.locator("#plugin-nongnghiep").get_by_role("link").first.click()
    expect(page.locator("h1")).to_have_text("Tiến độ sản xuất nông nghiệp")
    for unit in (DEPARTMENT, *COMMUNES):
        _switch_on(page, unit)
    admin.shot("activation")

    # ... then issues the regime the plugin shipped: reports open for the two communes only.
    admin.goto("/regimes")
    page.get_by_role("link", name=REGIME).first.click()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Ban hành").click()
    expect(page.get_by_text("Đang có hiệu lực").first).to_be_visible()
    expect(page.get_by_text("Sở Nông nghiệp và Môi trường").first).to_be_visible()  # the receiving unit
    page.get_by_role("link", name="Báo cáo đã mở").first.click()
    rows = page.locator("table tbody tr")
    for commune in COMMUNES:
        expect(rows.filter(has_text=commune).first).to_be_visible()
    expect(rows).to_have_count(len(COMMUNES))

    # A commune fills its report — the form adds up the total — and submits it.
    commune = open_vendor_session("commune")
    commune.login("phuongdonghoi")
    entry = commune.open_report(REGIME)
    report_path = re.search(r"/reports/\d+", entry.url).group(0)
    entry.fill("#i-lua-cur", "120,5")
    entry.fill("#i-ngo-cur", "30")
    entry.fill("#i-thuhoach-cur", "80")
    entry.locator("#entry-save-button").click()
    expect(entry.locator("#save-status")).to_contain_text("Đã lưu")
    entry.reload()
    expect(entry.locator("#entry-grid")).to_contain_text("150,5")  # Cộng diện tích gieo trồng
    entry.once("dialog", lambda dialog: dialog.accept())
    # Signing is not required on this server; the commune, which holds a certificate, sends unsigned.
    entry.get_by_role("button", name=re.compile("^(Nộp báo cáo|Gửi không ký số)$")).click()
    expect(entry.get_by_text("Đã nộp").first).to_be_visible()
    commune.shot("submitted")

    # The department accepts it.
    department = open_vendor_session("department")
    department.login(RECEIVER)
    department.goto(report_path)
    department.page.once("dialog", lambda dialog: dialog.accept())
    department.page.get_by_role("button", name="Chấp nhận").click()
    expect(department.page.get_by_text("Đã chấp nhận báo cáo.").first).to_be_visible()

    # The plugin's screen shows the accepted figure, and its widget counts the report.
    department.goto("/p/nongnghiep/")
    table = department.page.locator("#nongnghiep-progress")
    expect(table).to_contain_text("Phường Đồng Hới")
    expect(table).to_contain_text("120,5")
    department.shot("progress")
    department.goto("/")
    expect(department.page.get_by_text("Đã chấp nhận 1 báo cáo tiến độ nông nghiệp.")).to_be_visible()

    # The worker writes the line, then loses the answer: the message waits with the error ...
    assert vendor_demo.outbox_lines() == []  # nothing leaves before the worker runs
    assert "sent=0 failed=1" in vendor_demo.run(DELIVER, "lose-the-answer")
    assert len(vendor_demo.outbox_lines()) == 1
    admin.goto("/admin/outbox?channel=nongnghiep.file")
    message = page.locator("#outbox-messages tbody tr").filter(has_text="lost the answer").first
    expect(message).to_contain_text("Đang chờ gửi")
    # ... the administrator retries it now, and the worker delivers it: the file still holds one line.
    message.get_by_role("button", name=re.compile("Gửi lại ngay")).click()
    expect(page.get_by_text("Đã đưa thư vào hàng gửi ngay.")).to_be_visible()
    assert "sent=1 failed=0" in vendor_demo.run(DELIVER, "deliver")
    admin.goto("/admin/outbox?channel=nongnghiep.file")
    expect(page.locator("tr[data-state=sent]")).to_have_count(1)
    admin.shot("outbox")
    (line,) = vendor_demo.outbox_lines()
    report_id = int(report_path.rsplit("/", 1)[1])
    assert (line["key"], line["report"], line["version"]) == (f"accepted-{report_id}-1", report_id, 1)

    for session in (admin, commune, department):
        assert session.csp_violations() == [] and session.page_errors == []
