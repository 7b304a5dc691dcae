"""The demo is the province as it is since 01/07/2025, and says so: two levels today (the former
districts only in the history), communes asked only for what communes produce, and a printout that
ends with where to go and how to log in (issues 12.20 and 12.22)."""

from __future__ import annotations

import datetime as dt
import os
import re
import socket
import subprocess
import sys
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest

from core import demo_daily
from core.units import tree as units
from core.demo import DEMO_REGIMES, issue_demo_regimes, seed_demo
from core.regimes.forms import FormVersion
from core.catalogue.indicators import Indicator
from core.models import Unit
from core.regimes.regimes import Regime
from core.reporting.opening import Report

TODAY = dt.date(2026, 11, 26)
PROVINCE_ONLY = ("KX0201", "KX0306", "KX0302", "KX0303", "KX0101", "KX0301")  # IIP, CPI, exports, GRDP, retail
BAOCAO = Path(sys.executable).parent / "baocao"


@pytest.fixture
def demo(db_session, settings, tmp_path):
    from core.plugins import build_plugin_manager

    pm = build_plugin_manager(settings)
    data = seed_demo(settings, tmp_path / "certs")
    list(pm.call_each("seed_demo", stage="contribution", settings=settings, today=TODAY))
    opened = issue_demo_regimes(pm, settings, TODAY)
    return data, opened


def _kinds(nodes) -> set[str]:
    return {node.unit.kind for node in units.flatten(nodes)}


def test_todays_tree_has_two_levels_and_the_districts_ended_on_30_june_2025(demo):
    districts = list(Unit.select().where(Unit.kind == "district"))
    assert len(districts) == 18
    assert {d.valid_to for d in districts} == {dt.date(2025, 6, 30)}
    today = units.tree(at=TODAY)
    assert "district" not in _kinds(today)
    assert [n.unit.name for n in today] == ["Tỉnh Quảng Trị"]
    communes = [n for n in today[0].children if n.unit.kind == "commune"]
    assert len(communes) == 78 and all(not n.children for n in communes)  # directly under the province
    # The three-level tree is still there as it stood before the merger.
    assert "district" in _kinds(units.tree(at=dt.date(2025, 6, 30)))


def _indicators(report: Report) -> set[str]:
    form = FormVersion.get_by_id(report.form_version_id).compiled()
    return {r.indicator for r in form.rows if r.kind == "indicator"}


def test_communes_are_asked_only_for_what_a_commune_produces(demo):
    _, opened = demo
    reports = list(Report.select().join(Regime).where(Regime.code.in_(DEMO_REGIMES)))
    # This month: 78 communes and the 5 departments other than the receiver; and the communes'
    # last month (core.demo_daily).
    assert opened == len(reports) == 83 + 78
    commune_reports = [r for r in reports if r.unit.kind == "commune"]
    assert len(commune_reports) == 2 * 78
    asked = set().union(*(_indicators(r) for r in commune_reports))
    assert asked and not asked & set(PROVINCE_ONLY)
    levels = {i.code: i.levels.split(",") for i in Indicator.select().where(Indicator.code.in_(sorted(asked)) & Indicator.valid_to.is_null())}
    assert all("commune" in levels[code] for code in asked)  # each exists at commune level
    departments = [r for r in reports if r.unit.kind == "department"]
    assert departments and all(set(PROVINCE_ONLY) - {"KX0101"} <= _indicators(r) for r in departments)


def test_every_socio_economic_regime_of_the_demo_has_a_data_form(demo):
    regimes = list(Regime.select().where(Regime.code.startswith("kinhte_xahoi.")))
    assert len(regimes) == 10
    assert all(r.form_id is not None for r in regimes), [r.code for r in regimes if r.form_id is None]


def test_the_readme_says_exactly_what_the_demo_holds(demo):
    from core.settings import Settings

    _, opened = demo
    readme = " ".join((Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8").split())
    regimes = list(Regime.select().where(Regime.code.startswith("kinhte_xahoi.")))
    issued = [r for r in regimes if r.status == "issued"]
    drafts = [r for r in regimes if r.status == "draft"]
    assert (len(regimes), len(issued), len(drafts)) == (10, 2, 8)
    assert "ten socio-economic reporting regimes" in readme and "mười chế độ báo cáo kinh tế - xã hội" in readme
    reports = list(Report.select().join(Regime).where(Regime.code.in_(DEMO_REGIMES)))
    this_month = sum(r.period_end >= TODAY for r in reports)
    assert opened == len(reports)
    assert f"The two monthly regimes are issued and in force, with {this_month} reports open" in readme
    assert f"Hai chế độ hằng tháng đã ban hành, đang có hiệu lực, với {this_month} báo cáo đang mở" in readme
    last_month = Counter(r.status for r in reports if r.period_end < TODAY)
    assert last_month == {"accepted": 74, "submitted": 1, "not_started": 3}
    assert "74 accepted, one waiting for review and three late" in readme
    assert "74 báo cáo đã được chấp nhận, một báo cáo chờ xem xét và ba xã trễ hạn" in readme
    assert "the other eight are drafts" in readme and "tám chế độ còn lại là bản dự thảo" in readme
    assert "as drafts" not in readme and "ở dạng dự thảo" not in readme
    assert "rebuilt from scratch on each run" in readme and "tạo lại từ đầu mỗi lần chạy" in readme
    idle = Settings().admin_session_idle_minutes
    assert f"logged out after **{idle} idle minutes**" in readme and f"sau **{idle} phút**" in readme
    for username in ("quantri", "sotaichinh", "phuongdonghoi", *(p.username for p in demo_daily.PEOPLE)):
        assert f"| `{username}` |" in readme


# -- the last month (core.demo_daily) --------------------------------------------------------------

def test_last_month_is_accepted_but_one_report_waiting_and_three_communes_late(demo):
    from core.catalogue import figures
    from core.reporting.versions import ReportVersion

    reports = list(Report.select().join(Regime).where((Regime.code == demo_daily.REGIME) & (Report.period_end < TODAY)))
    assert len(reports) == 78 and len({(r.period_start, r.period_end) for r in reports}) == 1
    by_status = {}
    for report in reports:
        by_status.setdefault(report.status, set()).add(report.unit.name)
    assert by_status["not_started"] == {p.unit_name for p in demo_daily.LATE}
    assert by_status["submitted"] == {demo_daily.WAITING}
    assert len(by_status["accepted"]) == 74
    assert all(r.deadline < TODAY for r in reports)
    sent = [r for r in reports if r.status != "not_started"]
    assert not any(r.submitted_late for r in sent)  # sent on time, by the deadline
    # The province's figure of that month is what live consolidation made of the accepted reports.
    report = sent[0]
    period = [(report.frequency, report.year, report.period_index)]
    province = Unit.get(Unit.code == demo_daily.PROVINCE)
    accepted = [r.unit_id for r in reports if r.status == "accepted"]
    communes = sum(Decimal(str(f.value)) for f in figures.query(["KX0601"], accepted, period))
    (total,) = figures.query(["KX0601"], [province.id], period)
    assert communes > 0 and Decimal(str(total.value)) == communes
    assert ReportVersion.select().where(ReportVersion.report.in_([r.id for r in sent])).count() == 75


def test_the_demo_people_of_the_daily_screens(demo):
    from core.accounts.permissions import core_access
    from core.dashboard import chosen
    from core.models import User

    leader = User.get(User.username == demo_daily.LEADER.username)
    province = Unit.get(Unit.code == demo_daily.PROVINCE)
    access = core_access(leader)
    assert access.allowed("core.unit.view", access.ancestors(province.id))
    assert not access.allowed("core.report.receive", access.ancestors(province.id))
    assert chosen(leader.id)[0] == "KX0601"
    for person in demo_daily.LATE:
        officer = User.get(User.username == person.username)
        assert officer.unit.name == person.unit_name
        access = core_access(officer)
        assert access.allowed("core.report.submit", access.ancestors(officer.unit_id))


# -- the printout ---------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _demo_env(cwd: Path) -> dict:
    """A clean environment, as a newcomer's shell (no BAOCAO_* settings)."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(cwd), "LANG": "C.UTF-8"}


def test_no_serve_says_the_database_is_built_and_how_to_serve_it(tmp_path):
    database = tmp_path / "x.db"
    result = subprocess.run([str(BAOCAO), "demo", "--no-serve", "--database", str(database)], cwd=tmp_path,
                            capture_output=True, text=True, env=_demo_env(tmp_path), timeout=300)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Demo ready" not in out and "sẵn sàng tại" not in out and "is running" not in out
    assert f"The demo database is built: {database}" in out
    settings_file = Path(f"{database}.toml")
    assert f"baocao --settings {settings_file} serve" in out
    assert oct(settings_file.stat().st_mode & 0o777) == "0o600"  # it holds the demo's secret key
    assert "rebuilt from scratch on each run" in out and "tạo lại từ đầu mỗi lần chạy" in out
    assert "logged out after 5 idle minutes" in out
    assert re.search(r"demo signing certificates: .+x\.db\.demo-certs  \(mật khẩu / password: \S+\)", out)
    assert not re.search(r"\bapplied\b", out + result.stderr)  # no migration log
    # The database it built is served by that command, with the demo's own secret key.
    from core.settings import load_settings

    loaded = load_settings(settings_file, env={})
    assert loaded.database_url == f"sqlite:///{database}" and loaded.secret_key


def test_the_served_demo_ends_its_printout_with_the_logins_not_the_migration_log(tmp_path):
    port = _free_port()
    process = subprocess.Popen([str(BAOCAO), "demo", "--database", str(tmp_path / "x.db"), "--port", str(port)],
                               cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env=_demo_env(tmp_path))
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 240
        rules = 0
        while rules < 2 and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line.rstrip("\n"))
            rules += line.startswith("=" * 20)
    finally:
        process.terminate()
        process.wait(timeout=30)
    text = "\n".join(lines)
    assert rules == 2, text
    before_block = text.split("=" * 20, 1)[0]
    assert before_block.strip() == "", before_block  # nothing ahead of the block: no migration log
    block = text.split("=" * 20, 1)[1]
    assert f"open http://127.0.0.1:{port}/ in a browser" in block
    assert re.search(r"^  quantri +\S+  .+ — Tỉnh Quảng Trị \(.*system administrator\)$", block, re.M)
    assert re.search(r"^  phuongdonghoi +\S+  .+ — Phường Đồng Hới \(", block, re.M)
    assert "logged out after 5 idle minutes" in block
