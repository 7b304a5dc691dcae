"""Load test of the real server (issue 17 item 2): N reporters of N communes at once, on PostgreSQL and SQLite.

    .venv/bin/python bench/load.py [--users 50] [--seconds 60] [--max-requests 200000] [--workers 2]
                                   [--only postgres|sqlite] [--postgres postgresql://postgres@127.0.0.1:5432/postgres]

For each database, not timed: a fresh database (PostgreSQL: a throw-away database on the server
of ``--postgres``, created and dropped; skipped with a note when unreachable; SQLite: a file in a
temporary folder) built by ``baocao demo --no-serve``; then bench/load_seed.py picks the issued
regime that has N open reports with the most input cells (for more than 5 users, the demo's
monthly commune regime of 78 communes: 8 to 24 input cells, as its estimate columns show only in
some months; the table's title says how many), creates one reporter per report's unit for N of them
and receivers at the receiving unit, all with random passwords, and fills each report once (cells
and the required narrative) so that a submission is not refused. Then ``baocao serve --workers W`` starts on a free
loopback port in mode "production" (the settings an installation runs with: secure ``__Host-``
cookies, which a client sends only over HTTPS, so the bench keeps each session's cookies itself and
sends the Cookie header over plain HTTP on loopback), and the bench waits for /healthz.

Each virtual user logs in through the login form (before the clock starts: Argon2id logins are
not the steady state), then loops without pause until ``--seconds`` have passed or
``--max-requests`` requests have been sent (a hard cap over all users): GET its report's entry
page; POST the grid as grid.js autosaves it (every field of the page, a few cells changed to
new random values) and remember each cell's last saved value; every 5th iteration GET its home
page (worklist); every 20th submit (unsigned: ``require_signature = false``), after which a
receiver's session opens the review page and returns the report with a reason, so the reporter
goes on. Each request's latency is recorded by kind.

At the end the server stops, bench/load_seed.py reads every report's stored values, and each
cell is compared with what its client last saved (a save that got no answer accepts the old or
the new value). Errors: any 5xx, connection error, timeout, or a status the scenario does not
expect (a 409 or a "conflict" save outcome included: one user per report). Printed per database:
requests, errors, lost writes, p50/p95/max per kind and overall (and the server's own time, from
its access log), saves/s, requests/s, the peak RSS of the server's processes (VmRSS sampled every
second), the CPU they, the bench and the machine's PostgreSQL used and the time left idle (the
bench runs on the same cores), each number
beside its target: 0 errors, 0 lost writes, p95 ≤ 300 ms, ≥ 100 saves/s on 2 cores.

Loopback only: the bench refuses any address that is not 127.0.0.1, ::1 or localhost, so it never
loads somebody else's server.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import html
import http.cookiejar
import ipaddress
import json
import os
import random
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from load_seed import random_value  # noqa: E402
from run import percentile  # noqa: E402

PYTHON, BAOCAO = sys.executable, str(Path(sys.executable).with_name("baocao"))
TARGETS = {"errors": 0, "lost": 0, "p95_ms": 300, "saves_per_s": 100}
CELLS_PER_SAVE = 3
HOME_EVERY, SUBMIT_EVERY = 5, 20
REQUEST_TIMEOUT = 15.0  # seconds; a request slower than this counts as an error
ACCESS_MS = re.compile(r" baocao\.access: (?!\S+ /(?:healthz|login) )\S+ \S+ \d{3} (\d+(?:\.\d+)?)ms ")
KINDS = ("page", "save", "home", "submit", "review page", "return")  # login is timed apart


def require_loopback(url: str) -> str:
    """The bench's only guard against loading a server that is not ours: loopback addresses only."""
    host = urllib.parse.urlsplit(url).hostname or ""
    if host != "localhost":
        try:
            if not ipaddress.ip_address(host).is_loopback:
                raise ValueError
        except ValueError:
            raise SystemExit(f"refused: {url} is not a loopback address (127.0.0.1, ::1, localhost)") from None
    return url


class _NoCookies(http.cookiejar.DefaultCookiePolicy):
    """The client's own cookie jar stays empty: each session keeps its cookies itself (secure
    cookies over plain HTTP on loopback) and one jar must never mix two people's sessions."""

    def set_ok(self, cookie, request):
        return False


# The entry form's fields, as a browser posts them. Regular expressions, not html.parser: the bench
# shares the cores with the server, and parsing a 50 kB page with html.parser costs some 8 ms of them.
ENTRY_FORM = re.compile(r'<form id="entry-form".*?</form>', re.S)
INPUT = re.compile(r'<input\b[^>]*?\bname="([^"]+)"[^>]*?\bvalue="([^"]*)"')
TEXTAREA = re.compile(r'<textarea\b[^>]*?\bname="([^"]+)"[^>]*>(.*?)</textarea>', re.S)


def entry_fields(page: str) -> dict[str, str]:
    found = ENTRY_FORM.search(page)
    form = found.group(0) if found else ""
    return {name: html.unescape(value) for name, value in (*INPUT.findall(form), *TEXTAREA.findall(form))}


def csrf_of(page: str) -> str | None:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    return match.group(1) if match else None


class Stop(Exception):
    """The time or the request budget is spent."""


@dataclass
class Stats:
    deadline: float
    max_requests: int
    sent: int = 0
    latencies: dict = field(default_factory=lambda: {k: [] for k in ("login", *KINDS)})
    errors: list = field(default_factory=list)
    saves: int = 0
    client_cpu: float = 0.0  # the bench process's CPU time over the run, in cores
    capped: bool = False  # --max-requests ended the run before --seconds

    def take(self):
        if self.sent >= self.max_requests or time.monotonic() >= self.deadline:
            raise Stop
        self.sent += 1
        self.capped = self.sent >= self.max_requests

    def error(self, kind: str, what: str):
        self.errors.append((kind, re.sub(r"/\d+", "/{id}", what[:300])))  # grouped by route when printed


class Session:
    """One person's browser: its own connection and cookies, one request at a time."""

    def __init__(self, base_url: str, stats: Stats):
        self.client_args = {"base_url": require_loopback(base_url), "timeout": REQUEST_TIMEOUT,
                            "cookies": http.cookiejar.CookieJar(policy=_NoCookies())}
        self.stats, self.cookies, self.token = stats, {}, None

    async def __aenter__(self):
        import httpx2

        self.client = httpx2.AsyncClient(**self.client_args)
        return self

    async def __aexit__(self, *exc):
        await self.client.aclose()

    async def call(self, kind: str, method: str, path: str, *, expect=(200,), data=None, htmx=False):
        """The response, or None after recording an error; raises Stop when the budget is spent."""
        import httpx2

        if kind != "login":
            self.stats.take()
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())} if self.cookies else {}
        if htmx:
            headers.update({"HX-Request": "true", "X-CSRF-Token": self.token or ""})
        start = time.perf_counter()
        try:
            response = await self.client.request(method, path, data=data, headers=headers, follow_redirects=False)
        except httpx2.HTTPError as exc:
            self.stats.latencies[kind].append((time.perf_counter() - start) * 1000)
            self.stats.error(kind, f"{type(exc).__name__} {method} {path}")
            return None
        self.stats.latencies[kind].append((time.perf_counter() - start) * 1000)
        for header in response.headers.get_list("set-cookie"):
            name, _, rest = header.partition("=")
            value = rest.split(";", 1)[0]
            if "max-age=0" in rest.lower():
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value
        if response.status_code not in expect:
            self.stats.error(kind, f"{response.status_code} {method} {path}: {_gist(response.text)}")
            return None
        return response

    async def login(self, username: str, password: str) -> bool:
        page = await self.call("login", "GET", "/login")
        if page is None:
            return False
        done = await self.call("login", "POST", "/login", expect=(303,),
                               data={"username": username, "password": password, "csrf_token": csrf_of(page.text)})
        return done is not None


def _gist(text: str) -> str:
    """A refusal's message in one line (the page's error text, not its markup)."""
    words = re.sub(r"<[^>]+>", " ", text)
    return " ".join(words.split())[:200]


@dataclass
class Reporter:
    username: str
    password: str
    report: int
    cells: list
    expected: dict  # cell → the values the stored one may be (one, or two after an unanswered save)


async def reporter_loop(person: Reporter, session: Session, receivers: list, rng: random.Random):
    report, iteration, revision = person.report, 0, None
    path = f"/reports/{report}"
    try:
        while True:
            iteration += 1
            page = await session.call("page", "GET", path)
            if page is None:
                continue
            fields, session.token = entry_fields(page.text), csrf_of(page.text)
            if not any(name.startswith("cell.") for name in fields):
                session.stats.error("page", f"GET {path}: no editable cell (report not editable?)")
                await asyncio.sleep(0.5)
                continue
            changed = {cell: random_value(rng) for cell in rng.sample(person.cells, CELLS_PER_SAVE)}
            data = dict(fields, **{f"cell.{cell}": value for cell, value in changed.items()})
            saved = await session.call("save", "POST", f"{path}/save", data=data, htmx=True)
            outcome = re.search(r'data-outcome="(\w+)"', saved.text) if saved is not None else None
            if saved is not None and outcome and outcome.group(1) == "saved":
                session.stats.saves += 1
                for cell, value in changed.items():
                    person.expected[cell] = {Decimal(value)}
                found = re.search(r'data-revision="(\d+)"', saved.text)
                revision = found.group(1) if found else revision
            else:  # refused, partly saved, or no answer: each cell may hold the old value or the new one
                if saved is not None:
                    session.stats.error("save", f"POST {path}/save: outcome {outcome.group(1) if outcome else '?'}: "
                                                f"{_gist(saved.text)}")
                for cell, value in changed.items():
                    person.expected[cell] = person.expected[cell] | {Decimal(value)}
            if iteration % HOME_EVERY == 0:
                await session.call("home", "GET", "/")
            if iteration % SUBMIT_EVERY == 0 and revision is not None:
                sent = await session.call("submit", "POST", f"{path}/submit", expect=(303,),
                                          data={"csrf_token": session.token, "revision": revision})
                if sent is not None:
                    await review(receivers[iteration // SUBMIT_EVERY % len(receivers)], report)
    except Stop:
        return


async def review(receiver: Session, report: int):
    """The receiver opens the report's review and returns it with a reason."""
    page = await receiver.call("review page", "GET", f"/reports/{report}/review")
    if page is None:
        return
    await receiver.call("return", "POST", f"/reports/{report}/review/return", expect=(303,),
                        data={"csrf_token": csrf_of(page.text), "reason": "Thử tải: trả lại để nhập tiếp."})


async def run_load(base_url: str, seeded: dict, seconds: float, max_requests: int, on_clock=lambda: None):
    stats = Stats(deadline=float("inf"), max_requests=max_requests)
    rng = random.Random()
    people = [Reporter(r["username"], r["password"], r["report"], list(r["values"]),
                       {cell: {Decimal(v)} for cell, v in r["values"].items()}) for r in seeded["reporters"]]
    async with contextlib.AsyncExitStack() as stack:
        sessions = [await stack.enter_async_context(Session(base_url, stats)) for _ in people]
        receivers = [await stack.enter_async_context(Session(base_url, stats)) for _ in seeded["receivers"]]
        logged = await asyncio.gather(*(s.login(p.username, p.password) for s, p in zip(sessions, people)),
                                      *(s.login(r["username"], r["password"])
                                        for s, r in zip(receivers, seeded["receivers"])))
        if not all(logged):
            raise SystemExit(f"{logged.count(False)} logins failed: {stats.errors[:3]}")
        on_clock()
        start, cpu = time.monotonic(), time.process_time()
        stats.deadline = start + seconds
        tasks = [reporter_loop(p, s, receivers, random.Random(rng.random())) for p, s in zip(people, sessions)]
        # Bounded even if the server hangs: every request has its timeout, and this is the last resort.
        await asyncio.wait_for(asyncio.gather(*tasks), seconds + 4 * REQUEST_TIMEOUT)
        elapsed = time.monotonic() - start
        # The bench shares the machine's cores with the server: what it took of them is printed.
        stats.client_cpu = (time.process_time() - cpu) / elapsed
        on_clock()
    return stats, elapsed, people


class RssSampler(threading.Thread):
    """Peak VmRSS of the server's processes (the uvicorn supervisor and its workers), once a second."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.peaks, self.peak_total, self.done = pid, {}, 0, threading.Event()
        self.names: dict[int, str] = {}
        self.marks: list = []

    def processes(self) -> list[int]:
        # fields[1]: /proc/<pid>/stat's fourth field, the parent's id
        return [self.pid, *(pid for pid, _, fields in _proc_stats() if int(fields[1]) == self.pid)]

    def name(self, pid: int) -> str:
        if pid == self.pid:
            return "supervisor"
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            return "?"
        # uvicorn's workers are multiprocessing "spawn" children; Python adds a resource tracker.
        return "resource tracker" if "resource_tracker" in command else "worker"

    def mark(self):
        """Note each server process's CPU time so far (user and system, /proc/<pid>/stat): called
        when the clock starts and when it stops."""
        ticks = {}
        for pid in self.processes():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            ticks[pid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
        self.marks.append((time.monotonic(), ticks, _postgres_cpu(), _idle_cpu()))

    def cpu(self) -> dict[int, float]:
        """Cores each server process used between the two marks."""
        (t0, before, *_), (t1, after, *_) = self.marks[0], self.marks[-1]
        return {pid: (after[pid] - before.get(pid, 0.0)) / (t1 - t0) for pid in after} if t1 > t0 else {}

    def machine(self) -> tuple[float, float]:
        """Cores the PostgreSQL processes of this machine used between the two marks, and cores idle:
        with the server's and the bench's, where the machine's time went."""
        (t0, _, pg0, idle0), (t1, _, pg1, idle1) = self.marks[0], self.marks[-1]
        return ((pg1 - pg0) / (t1 - t0), (idle1 - idle0) / (t1 - t0)) if t1 > t0 else (0.0, 0.0)

    def summary(self) -> str:
        parts = [f"{self.names[pid]} {kib / 1024:.0f}" for pid, kib in
                 sorted(self.peaks.items(), key=lambda item: (self.names[item[0]] != "worker", item[0]))]
        return f"{self.peak_total / 1024:.0f} MB in all ({', '.join(parts)} MB)"

    def run(self):
        while not self.done.wait(1.0):
            total = 0
            for pid in self.processes():
                try:
                    status = Path(f"/proc/{pid}/status").read_text()
                except OSError:
                    continue
                kib = int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) if "VmRSS" in status else 0
                self.peaks[pid] = max(self.peaks.get(pid, 0), kib)
                self.names.setdefault(pid, self.name(pid))
                total += kib
            self.peak_total = max(self.peak_total, total)


def _proc_stats():
    """(pid, name, the fields after the name) of every process of this machine (/proc/<pid>/stat)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:  # ended meanwhile
                continue
            name, _, rest = stat.partition("(")[2].rpartition(")")
            yield int(entry.name), name, rest.split()


def _postgres_cpu() -> float:
    """CPU seconds so far of every process of this machine named postgres (its backends among them;
    a backend that ended since the first mark takes its time with it, and the server's are pooled)."""
    tick = os.sysconf("SC_CLK_TCK")
    # fields[11], fields[12]: utime and stime
    return sum((int(f[11]) + int(f[12])) / tick for _, name, f in _proc_stats() if name == "postgres")


def _idle_cpu() -> float:
    """CPU seconds the machine has been idle (/proc/stat: idle and iowait over every core)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    return (int(fields[4]) + int(fields[5])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BAOCAO_")}  # only the bench's settings
    env.update(extra)
    return env


def prepare(database_url: str, tmp: Path, users: int, receivers: int) -> tuple[Path, dict]:
    """The demo database, the bench accounts and reports, and the server's settings file."""
    secret = secrets.token_urlsafe(48)
    built = subprocess.run([BAOCAO, "demo", "--no-serve", "--database", database_url.removeprefix("sqlite:///")],
                           cwd=tmp, env=_env(BAOCAO_SECRET_KEY=secret), capture_output=True, text=True)
    if built.returncode:
        raise SystemExit(f"baocao demo failed:\n{built.stderr[-2000:]}")
    settings = tmp / "bench.toml"
    settings.write_text("\n".join([
        "# bench/load.py: a production server on loopback",
        'mode = "production"',
        f"database_url = {json.dumps(database_url)}",
        f"secret_key = {json.dumps(secret)}",  # the demo's: the unit seal is encrypted under it
        'allowed_hosts = ["127.0.0.1"]',
        "require_signature = false",  # the reporters submit unsigned (no .p12 per virtual user)
        "login_rate_per_minute = 1000000",  # every virtual user logs in from 127.0.0.1 at once
        "session_idle_minutes = 120",
        f"files_dir = {json.dumps(str(tmp / 'files'))}",
    ]) + "\n", encoding="utf-8")
    seeded = subprocess.run([PYTHON, str(ROOT / "bench" / "load_seed.py"), "seed", "--users", str(users),
                             "--receivers", str(receivers)], cwd=ROOT, env=_env(BAOCAO_SETTINGS=str(settings)),
                            capture_output=True, text=True)
    if seeded.returncode:
        raise SystemExit(f"bench/load_seed.py seed failed:\n{seeded.stderr[-2000:]}")
    return settings, json.loads(seeded.stdout)


def serve(settings: Path, port: int, workers: int, log: Path) -> subprocess.Popen:
    with log.open("w") as out:
        server = subprocess.Popen([BAOCAO, "--settings", str(settings), "serve", "--host", "127.0.0.1",
                                   "--port", str(port), "--workers", str(workers)],
                                  cwd=ROOT, env=_env(), stdout=out, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    import httpx2

    url = require_loopback(f"http://127.0.0.1:{port}")
    until = time.monotonic() + 90
    while time.monotonic() < until:
        if server.poll() is not None:
            raise SystemExit(f"the server stopped (exit {server.returncode}):\n{log.read_text()[-2000:]}")
        try:
            if httpx2.get(f"{url}/healthz", timeout=2).status_code == 200:
                return server
        except httpx2.HTTPError:
            pass
        time.sleep(0.3)
    stop(server)
    raise SystemExit(f"the server did not answer /healthz in 90 s:\n{log.read_text()[-2000:]}")


def stop(server: subprocess.Popen) -> None:
    server.send_signal(signal.SIGINT)  # uvicorn's supervisor stops its workers, then itself
    try:
        server.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)  # the group this bench started (start_new_session)
        server.wait()


def check_writes(settings: Path, people: list) -> tuple[int, int, list]:
    read = subprocess.run([PYTHON, str(ROOT / "bench" / "load_seed.py"), "read"], cwd=ROOT,
                          env=_env(BAOCAO_SETTINGS=str(settings)), capture_output=True, text=True)
    if read.returncode:
        raise SystemExit(f"bench/load_seed.py read failed:\n{read.stderr[-2000:]}")
    stored = json.loads(read.stdout)
    checked, lost, examples = 0, 0, []
    for person in people:
        values = stored[str(person.report)]
        for cell, allowed in person.expected.items():
            checked += 1
            value = values.get(cell)
            if value is None or Decimal(value) not in allowed:
                lost += 1
                examples.append(f"report {person.report} {cell}: stored {value}, last saved "
                                + " or ".join(str(v) for v in sorted(allowed)))
    return checked, lost, examples


def run_backend(label: str, database_url: str, tmp: Path, args) -> dict:
    print(f"{label}: building the demo database and {args.users} reporters …", file=sys.stderr)
    settings, seeded = prepare(database_url, tmp, args.users, args.receivers)
    port, log = free_port(), tmp / "server.log"
    server = serve(settings, port, args.workers, log)
    sampler = RssSampler(server.pid)
    sampler.start()
    print(f"{label}: {len(seeded['reporters'])} users on {seeded['regime']} ({len(seeded['cells'])} input cells "
          f"per report) for {args.seconds} s …", file=sys.stderr)
    try:
        stats, elapsed, people = asyncio.run(run_load(f"http://127.0.0.1:{port}", seeded, args.seconds,
                                                      args.max_requests, sampler.mark))
    finally:
        sampler.done.set()
        sampler.join()
        stop(server)
    checked, lost, examples = check_writes(settings, people)
    lines = log.read_text(errors="replace").splitlines()
    # The server's own time of each request (its access log: route, status, duration), to tell it
    # from the client's: the bench runs on the same cores as the server.
    server_ms = [float(m.group(1)) for line in lines if (m := ACCESS_MS.search(line))]
    return {"stats": stats, "elapsed": elapsed, "checked": checked, "lost": lost, "examples": examples,
            "rss": sampler, "regime": seeded["regime"], "cells": len(seeded["cells"]),
            "users": len(seeded["reporters"]), "receivers": len(seeded["receivers"]), "server_ms": server_ms,
            "log_errors": sum(1 for line in lines if " ERROR " in line or line.startswith("Traceback")),
            "log_warnings": sum(1 for line in lines if " WARNING " in line)}


def _mark(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def report(label: str, r: dict, args) -> None:
    stats, elapsed = r["stats"], r["elapsed"]
    timed = [ms for kind in KINDS for ms in stats.latencies[kind]]
    requests = len(timed)
    saves_per_s = stats.saves / elapsed if elapsed else 0.0
    errors = len(stats.errors)
    p95 = percentile(timed, 0.95) if timed else float("nan")
    print(f"\n{label}: {r['users']} reporters + {r['receivers']} receivers, `baocao serve --workers {args.workers}`, "
          f"{elapsed:.1f} s{' (stopped by --max-requests)' if stats.capped else ''}, regime {r['regime']} "
          f"({r['cells']} input cells per report)")
    print("mode production, as installed: its secure __Host- cookies are kept by the bench and sent over HTTP "
          "on loopback")
    print(f"{'request':<16}{'count':>8}{'p50 ms':>10}{'p95 ms':>10}{'max ms':>10}")
    print("-" * 54)
    for kind in ("login", *KINDS, "overall"):
        samples = timed if kind == "overall" else stats.latencies[kind]
        if not samples:
            continue
        name = "overall*" if kind == "overall" else kind
        print(f"{name:<16}{len(samples):>8}{percentile(samples, 0.5):>10.1f}{percentile(samples, 0.95):>10.1f}"
              f"{max(samples):>10.1f}")
    if r["server_ms"]:
        server = r["server_ms"]
        print(f"{'  server time':<16}{len(server):>8}{percentile(server, 0.5):>10.1f}{percentile(server, 0.95):>10.1f}"
              f"{max(server):>10.1f}")
    print("* without the logins, which happen before the clock starts; server time: the access log's")
    print(f"{'requests':<28}{requests:>10}   {requests / elapsed:.1f}/s")
    print(f"{'errors':<28}{errors:>10}   target {TARGETS['errors']}: {_mark(errors <= TARGETS['errors'])}")
    print(f"{'lost writes':<28}{r['lost']:>10}   of {r['checked']} cells checked; target {TARGETS['lost']}: "
          f"{_mark(r['lost'] <= TARGETS['lost'])}")
    print(f"{'p95 overall':<28}{p95:>10.1f}   ms; target ≤ {TARGETS['p95_ms']}: {_mark(p95 <= TARGETS['p95_ms'])}")
    print(f"{'saves/s':<28}{saves_per_s:>10.1f}   ({stats.saves} saves); target ≥ {TARGETS['saves_per_s']}: "
          f"{_mark(saves_per_s >= TARGETS['saves_per_s'])}")
    print(f"{'peak RSS (server)':<28}{r['rss'].summary()}")
    cpu, names = r["rss"].cpu(), r["rss"].names
    busy = ", ".join(f"{names.get(pid, '?')} {cores:.2f}" for pid, cores in sorted(cpu.items()) if cores >= 0.01)
    print(f"{'CPU used, server':<28}{sum(cpu.values()):>10.2f}   cores ({busy}); the bench client "
          f"{stats.client_cpu:.2f} (same machine, {os.cpu_count()} cores)")
    postgres, idle = r["rss"].machine()
    print(f"{'CPU, rest of the machine':<28}{postgres:>10.2f}   cores PostgreSQL (every postgres process here); "
          f"{idle:.2f} idle")
    print(f"{'server log':<28}{r['log_errors']:>10}   errors, {r['log_warnings']} warnings")
    for (kind, what), count in collections.Counter(stats.errors).most_common(10):
        print(f"  error ({kind}) × {count}: {what}")
    for line in r["examples"][:10]:
        print(f"  lost: {line}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50, help="reporters, one per commune (at most 78 in the demo)")
    parser.add_argument("--receivers", type=int, default=0, help="receiver sessions (default: one per 10 users)")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--max-requests", type=int, default=200_000, help="hard cap over all users")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--only", choices=("postgres", "sqlite"))
    parser.add_argument("--postgres", default=os.environ.get("BAOCAO_BENCH_POSTGRES",
                                                             "postgresql://postgres@127.0.0.1:5432/postgres"))
    args = parser.parse_args()
    args.receivers = args.receivers or max(1, args.users // 10)
    if args.users < 1 or args.seconds <= 0 or args.max_requests < 1:
        parser.error("--users, --seconds and --max-requests must be positive")

    results = {}
    if args.only != "sqlite":
        results["PostgreSQL"] = run_postgres(args)
    if args.only != "postgres":
        with tempfile.TemporaryDirectory(prefix="baocao-load-") as tmp:
            results["SQLite"] = run_backend("SQLite", f"sqlite:///{Path(tmp) / 'load.db'}", Path(tmp), args)
    for label, result in results.items():
        if result is not None:
            report(label, result, args)
    print(f"\nload average: {Path('/proc/loadavg').read_text().strip()}")


def run_postgres(args):
    name = f"baocao_h_load_{uuid.uuid4().hex[:8]}"
    admin = re.sub(r"^postgres(ql)?://", "postgresql://", args.postgres)
    try:
        import psycopg

        with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except Exception as exc:  # noqa: BLE001 — a bench without PostgreSQL still reports SQLite
        print(f"PostgreSQL skipped: {type(exc).__name__}: {exc}".splitlines()[0], file=sys.stderr)
        return None
    try:
        with tempfile.TemporaryDirectory(prefix="baocao-load-") as tmp:
            return run_backend("PostgreSQL", admin.rsplit("/", 1)[0] + f"/{name}", Path(tmp), args)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
