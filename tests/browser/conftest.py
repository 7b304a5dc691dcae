"""Browser tests: the real ``baocao demo`` server, driven by headless Chromium (on a SQLite file, or
on the empty PostgreSQL database named by BAOCAO_BROWSER_DATABASE_URL).

One demo server and one browser for the whole session (starting them is the
slow part); each test gets a fresh browser context, so no cookies leak from
one test to the next. The Chromium is the system one (/usr/bin/chromium):
Playwright's own browser downloads are never used.
"""

from __future__ import annotations

import os
import queue
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SCREENSHOTS = Path(__file__).parent / "screenshots"
DESKTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}
# cmd_demo prints each demo account as f"  {username:<15} {password}  {full name} — ..."
LOGIN_LINE = re.compile(r"^  (?P<username>[a-z0-9._-]{3,64}) +(?P<password>\S+)  \S")
DEMO_USERS = ("quantri", "sotaichinh", "phuongdonghoi")
MONTHLY = "Báo cáo tình hình kinh tế - xã hội hằng tháng"  # the demo's regime in force
START_TIMEOUT = 60.0
NATIONAL_SETTINGS = """
[plugins.national_link]
test_server = "127.0.0.1:{port}"

[plugins.national_link.connectors.chinhphu]
kind = "qcvn125"
label = "Hệ thống báo cáo Chính phủ (máy chủ thử nghiệm)"
url = "http://127.0.0.1:{port}"
agency_code = "000.00.00.H00"
timeout = 10
"""


@dataclass
class Demo:
    base_url: str
    logins: dict[str, str]
    output: list[str] = field(default_factory=list)
    national_url: str = ""  # the national test server the demo started (plugins/national_link)

    def url(self, path: str) -> str:
        return self.base_url.rstrip("/") + path


def _baocao_executable() -> Path:
    for candidate in (Path(sys.prefix) / "bin" / "baocao", Path(sys.executable).parent / "baocao"):
        if candidate.exists():
            return candidate
    pytest.fail(f"the baocao command is not installed in {sys.prefix} (pip install -e .)")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _pump(stream, lines: queue.Queue, output: list[str]) -> None:
    """Read the server's output to the end: keeps the pipe from filling up and blocking it."""
    for line in stream:
        line = line.rstrip("\n")
        output.append(line)
        lines.put(line)
    lines.put(None)


def stop(process: subprocess.Popen) -> None:
    """End a server started for the tests: politely, then for sure."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def _wait_healthy(url: str, process: subprocess.Popen, deadline: float, output: list[str]) -> None:
    while True:
        if process.poll() is not None:
            pytest.fail("the demo server stopped:\n" + "\n".join(output[-40:]))
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"{url} did not answer 200 in time:\n" + "\n".join(output[-40:]))
        time.sleep(0.1)


@pytest.fixture(scope="session")
def demo(tmp_path_factory) -> Demo:
    """``baocao demo`` in a subprocess, as an operator would run it; stopped at the end."""
    workdir = tmp_path_factory.mktemp("demo")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BAOCAO_")}
    env.update(PYTHONUNBUFFERED="1", PYTHONIOENCODING="utf-8",
               # Every browser session logs in from 127.0.0.1: the per-address limit (20 a minute)
               # would otherwise refuse the later tests' logins when the suite runs fast.
               BAOCAO_LOGIN_RATE_PER_MINUTE="1000")
    # BAOCAO_BROWSER_DATABASE_URL (an empty PostgreSQL database): .ci/test runs the browser tests
    # once on the demo's SQLite file and once on PostgreSQL.
    database = os.environ.get("BAOCAO_BROWSER_DATABASE_URL") or str(workdir / "demo.db")
    # The demo as asked with the national link (plugins/national_link/demo.toml), its national test
    # server on a free port of its own: the two demos of a CI run (SQLite, PostgreSQL) run side by side.
    national_port = _free_port()
    settings_file = workdir / "national.toml"
    settings_file.write_text(NATIONAL_SETTINGS.format(port=national_port), encoding="utf-8")
    command = [str(_baocao_executable()), "--settings", str(settings_file), "demo", "--database", database,
               "--port", str(port)]
    process = subprocess.Popen(command, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, text=True, encoding="utf-8", errors="replace")
    output: list[str] = []
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=_pump, args=(process.stdout, lines, output), daemon=True).start()
    try:
        deadline = time.monotonic() + START_TIMEOUT
        logins: dict[str, str] = {}
        while len(logins) < len(DEMO_USERS):
            try:
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail("the demo printed no logins in time:\n" + "\n".join(output[-40:]))
            if line is None:
                pytest.fail(f"the demo exited ({process.wait()}) before printing its logins:\n"
                            + "\n".join(output[-40:]))
            match = LOGIN_LINE.match(line)
            if match:
                logins[match["username"]] = match["password"]
        assert set(logins) == set(DEMO_USERS), logins.keys()
        base_url = f"http://127.0.0.1:{port}"
        _wait_healthy(base_url + "/healthz", process, deadline, output)
        yield Demo(base_url, logins, output, national_url=f"http://127.0.0.1:{national_port}")
    finally:
        stop(process)


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        # A failure, not a skip: a run that silently drops the browser tests is not green.
        pytest.fail(f"{CHROMIUM} is missing: run `bash .ci/setup --browser` (apt-get install chromium)")

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


class Session:
    """One browser tab with what it printed to the console, and a few shortcuts."""

    def __init__(self, page, demo: Demo, name: str):
        self.page, self.demo, self.name = page, demo, name
        self.console: list[tuple[str, str]] = []
        self.page_errors: list[str] = []
        page.on("console", lambda message: self.console.append((message.type, message.text)))
        page.on("pageerror", lambda error: self.page_errors.append(str(error)))

    def goto(self, path: str):
        return self.page.goto(self.demo.url(path))

    def login(self, username: str, password: str | None = None, lang: str = "vi") -> None:
        page = self.page
        self.goto("/login")
        page.fill("#username", username)
        page.fill("#password", self.demo.logins[username] if password is None else password)
        with page.expect_navigation():
            page.click("form[action='/login'] button[type=submit]")
        if password is None:
            # A refused login (wrong password, lockout, rate limit) fails here, not three steps later.
            assert "/login" not in page.url, f"{username} could not log in: {page.url}"
            # The language is remembered per account, and another test may have changed it.
            self.set_language(lang)

    def set_language(self, lang: str) -> None:
        page = self.page
        if page.get_attribute("html", "lang") == lang:
            return
        with page.expect_navigation():
            page.select_option("#lang-select", lang)  # app.js submits the form on change
        assert page.get_attribute("html", "lang") == lang

    def open_report(self, regime: str = MONTHLY):
        """Open, from the list of one's reports, the newest report of ``regime`` (its entry page)."""
        from playwright.sync_api import expect

        self.goto("/reports")
        # The list has the soonest deadline first: the newest report is the last of the regime's rows
        # (the demo's commune also has last month's, accepted: core.demo_daily).
        self.page.locator("tbody tr").filter(has_text=regime).last.get_by_role("link").first.click()
        expect(self.page.locator("#entry-grid")).to_be_visible()
        return self.page

    def shot(self, name: str, *, full_page: bool = True) -> Path:
        SCREENSHOTS.mkdir(exist_ok=True)
        path = SCREENSHOTS / f"{self.name}-{name}.png"
        self.page.screenshot(path=str(path), full_page=full_page)
        return path

    def console_errors(self) -> list[str]:
        return [text for kind, text in self.console if kind == "error"]

    def csp_violations(self) -> list[str]:
        return [text for text in self.console_errors() if "Content Security Policy" in text]

    def horizontal_overflow(self) -> int:
        """How many pixels the page is wider than the window (0: no sideways scrolling)."""
        return self.page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")


@pytest.fixture
def open_session(browser, demo):
    """Open a fresh browser context: ``open_session("desktop")`` or ``open_session("phone", PHONE)``."""
    contexts = []

    def open_(name: str = "desktop", viewport: dict | None = None, locale: str = "vi-VN") -> Session:
        context = browser.new_context(viewport=viewport or DESKTOP, locale=locale,
                                      extra_http_headers={"Accept-Language": locale})
        context.set_default_timeout(10_000)
        contexts.append(context)
        return Session(context.new_page(), demo, name)

    yield open_
    for context in contexts:
        context.close()


@pytest.fixture
def session(open_session) -> Session:
    return open_session("desktop")


# core/demo_pki.py prints where the demo accounts' .p12 files are and their password.
CERTS_LINE = re.compile(r"^Chữ ký số demo / demo signing certificates: (?P<folder>.+?)  "
                        r"\(mật khẩu / password: (?P<password>\S+)\)$")


@dataclass
class DemoCerts:
    folder: Path
    password: str

    def p12(self, username: str) -> Path:
        return self.folder / f"{username}.p12"


@pytest.fixture(scope="session")
def demo_certs(demo) -> DemoCerts:
    for line in demo.output:
        match = CERTS_LINE.match(line)
        if match:
            return DemoCerts(Path(match["folder"]), match["password"])
    pytest.fail("the demo printed no signing certificates:\n" + "\n".join(demo.output[-40:]))
