"""The ``baocao`` console script, run as an operator runs it: a subprocess with a
clean environment. And the worker's periodic job, run through huey."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from core.accounts import login as accounts
from core.migrate import CORE_MIGRATIONS
from core.db import close_db, db, init_db
from core.models import Session, Unit, User

SCRIPT = shutil.which("baocao", path=str(Path(sys.executable).parent)) or str(Path(sys.executable).with_name("baocao"))


def run(*args, cwd, **env) -> subprocess.CompletedProcess:
    clean = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(cwd), "LANG": "C.UTF-8", **env}
    return subprocess.run([SCRIPT, *args], cwd=cwd, env=clean, capture_output=True, text=True, encoding="utf-8",
                          timeout=120)


@pytest.fixture
def cli(database_url, tmp_path):
    """Run the script against the test database (a tmp SQLite file, or the PostgreSQL test database)."""
    yield lambda *args, **env: run(*args, cwd=tmp_path, **{"BAOCAO_DATABASE_URL": database_url, **env})
    close_db()


def with_db(url, fn):
    init_db(url)
    try:
        with db.connection_context():
            return fn()
    finally:
        close_db()


def test_the_console_script_is_installed():
    assert Path(SCRIPT).is_file() and os.access(SCRIPT, os.X_OK)


def test_version_and_help(tmp_path):
    assert re.fullmatch(r"baocao \d+\.\d+\.\d+\s*", run("--version", cwd=tmp_path).stdout)
    help_text = run("--help", cwd=tmp_path).stdout
    for command in ("init", "serve", "demo", "migrate", "plugins", "worker"):
        assert command in help_text


def _admin_password(stdout: str) -> tuple[str, str]:
    match = re.search(r":\s*(\S+)\s+mật khẩu tạm:\s*(\S+)", stdout)
    assert match, stdout
    return match.group(1), match.group(2)


def test_init_creates_an_admin_who_can_log_in_and_must_change_the_password(cli, database_url):
    result = cli("init")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    username, password = _admin_password(result.stdout)
    assert username == "quantri"
    assert len(password) >= 12
    assert result.stdout.count(password) == 2  # the same line in Vietnamese and English, nowhere else

    def check():
        user = accounts.authenticate(username, password)
        assert user is not None and user.is_admin and user.must_change_password
        assert accounts.authenticate(username, password + "x") is None
        assert Unit.get_by_id(user.unit_id).name == "Tỉnh Quảng Trị"
        assert password not in User.get_by_id(user.id).password_hash

    with_db(database_url, check)


def test_init_twice_creates_no_second_admin(cli, database_url):
    first = cli("init")
    assert first.returncode == 0
    _, password = _admin_password(first.stdout)
    second = cli("init")
    assert second.returncode == 0, second.stderr
    assert "mật khẩu tạm" not in second.stdout and "already" in second.stdout
    assert with_db(database_url, lambda: User.select().count()) == 1
    # The first password is still the one.
    assert with_db(database_url, lambda: accounts.authenticate("quantri", password)) is not None


@pytest.mark.empty_database
def test_migrate_is_idempotent(cli, database_url):
    first = cli("migrate")
    assert first.returncode == 0, first.stderr
    steps = sorted(p.stem for p in CORE_MIGRATIONS.glob("[0-9]*.py"))
    assert f"core: applied {len(steps)} steps ({', '.join(steps)})" in first.stdout
    second = cli("migrate")
    assert second.returncode == 0, second.stderr
    assert "core: applied 0 steps" in second.stdout
    history = with_db(database_url, lambda: db.execute_sql("SELECT name FROM core_migrations").fetchall())
    assert sorted(name for name, in history) == steps


def test_regimes_open_due_first_loads_what_the_plugins_regimes_need(cli, database_url):
    """Run before the web application ever started: the plugins' start-up hooks load their
    indicators before their regimes are loaded, so each draft gets its data form (a draft left
    without one would stay so: a loaded code is never loaded again)."""
    from core.regimes.regimes import Regime

    with_db(database_url, lambda: Unit.create(code="44", name="Tỉnh Quảng Trị", kind="province"))
    result = cli("regimes", "open-due")
    assert result.returncode == 0, result.stderr
    assert "Opened 0 periods, created 0 reports." in result.stdout  # drafts open nothing

    def drafts():
        return {r.code: r.form_id is not None for r in Regime.select().where(Regime.plugin == "kinhte_xahoi")}
    loaded = with_db(database_url, drafts)
    assert len(loaded) == 10 and all(loaded.values()), loaded


def test_plugins_lists_the_builtins(cli):
    result = cli("plugins")
    assert result.returncode == 0, result.stderr
    for name in ("kinhte_xahoi", "chuyen_nganh", "national_link"):
        assert re.search(rf"^{name}\s+\S+\s+builtin\s+ok\b", result.stdout, re.M), result.stdout


DEMO_LOGINS = ["quantri", "sotaichinh", "phuongdonghoi",
               "lanhdaotinh", "xakhesanh", "xaminhhoa", "xacuatung",  # these four: core.demo_daily
               "sonongnghiep"]  # plugins/chuyen_nganh: the department applying for sector reporting


def test_demo_prints_its_logins_that_work(tmp_path):
    database = tmp_path / "x.db"
    result = run("demo", "--no-serve", "--database", str(database), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    logins = re.findall(r"^  (\S+)\s+(\S+)\s+(.+?) — (.+) \((.+)\)$", result.stdout, re.M)
    assert [login[0] for login in logins] == DEMO_LOGINS
    assert not re.search(r"\bdemo\.role\.", result.stdout)  # roles are translated, not raw keys
    url = f"sqlite:///{database}"

    def check():
        for username, password, *_ in logins:
            user = accounts.authenticate(username, password)
            assert user is not None, username
            assert not user.must_change_password
        # Today's 78 communes, and the 264 former ones kept as history (issue 4).
        assert Unit.select().where((Unit.kind == "commune") & Unit.valid_to.is_null()).count() == 78
        assert Unit.select().where((Unit.kind == "commune") & Unit.valid_to.is_null(False)).count() == 264

    with_db(url, check)
    # Each account's signing certificate as a .p12 file beside the database, with its password.
    certs = tmp_path / "x.db.demo-certs"
    assert sorted(p.name for p in certs.glob("*.p12")) == sorted(f"{name}.p12" for name in DEMO_LOGINS)
    password = re.search(r"mật khẩu / password: (\S+)\)", result.stdout).group(1)
    assert password in (certs / "README.txt").read_text(encoding="utf-8")


def test_the_demo_never_writes_over_a_used_postgresql_database(tmp_path, database_url):
    """On PostgreSQL, a database with tables is refused; a SQLite demo file is made anew."""
    def leave_a_table():
        db.execute_sql("CREATE TABLE leftover (id integer)")

    with_db(database_url, leave_a_table)
    target = database_url if database_url.startswith("postgres") else database_url[len("sqlite:///"):]
    result = run("demo", "--no-serve", "--database", target, cwd=tmp_path)
    if database_url.startswith("postgres"):
        assert result.returncode == 2 and "Traceback" not in result.stderr
        assert "đã có bảng" in result.stderr and "already has tables" in result.stderr
        assert "leftover" in with_db(database_url, db.get_tables)
    else:
        assert result.returncode == 0, result.stderr
        assert "leftover" not in with_db(database_url, db.get_tables)


@pytest.mark.parametrize("case, args, env, culprit", [
    ("unknown variable", ["migrate"], {"BAOCAO_DATABSE_URL": "sqlite:///x.db"}, "BAOCAO_DATABSE_URL"),
    ("malformed URL", ["migrate"], {"BAOCAO_DATABASE_URL": "mysql://baocao:hunter22@db/x"}, "mysql://baocao:***@db/x"),
    ("missing settings", ["--settings", "nope.toml", "migrate"], {}, "nope.toml"),
    ("production without secret", ["init"], {"BAOCAO_MODE": "production"}, "BAOCAO_SECRET_KEY"),
    ("bad number", ["init"], {"BAOCAO_SESSION_IDLE_MINUTES": "soon"}, "BAOCAO_SESSION_IDLE_MINUTES"),
])
def test_operator_mistakes_end_in_one_line(tmp_path, case, args, env, culprit):
    result = run(*args, cwd=tmp_path, **env)
    assert result.returncode == 2, (case, result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert culprit in lines[0]
    assert " / " in lines[0]  # Vietnamese and English
    assert "Traceback" not in result.stderr + result.stdout
    assert "hunter22" not in result.stderr
    assert not list(tmp_path.glob("*.db"))  # nothing was created


# -- the worker's periodic job ------------------------------------------------------------------------

def sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def test_the_periodic_purge_removes_expired_sessions(settings, db_session):
    from core.jobs import make_huey

    unit = Unit.create(code="44", name="Tỉnh Quảng Trị", kind="province")
    user = accounts.create_user("canbo", "Cán bộ", "mật khẩu đủ dài", unit)
    live = accounts.start_session(user)
    expired = accounts.start_session(user)
    old = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) - dt.timedelta(minutes=settings.session_idle_minutes + 5)
    Session.update(last_seen_at=old).where(Session.token_hash == sha256(expired)).execute()

    huey = make_huey(settings, immediate=True)
    # Scheduled every 30 minutes (beside the outbox's delivery, every minute).
    at = {minute: [t.name for t in huey.read_periodic(dt.datetime(2026, 1, 5, 8, minute))
                   if t.name != "core.deliver_outbox"] for minute in (0, 15, 30)}
    assert at == {0: ["core.purge_expired_sessions"], 15: [], 30: ["core.purge_expired_sessions"]}
    task = huey.read_periodic(dt.datetime(2026, 1, 5, 8, 0))[0]
    assert huey.execute(task) == 1

    remaining = [s.token_hash for s in Session.select()]
    assert remaining == [sha256(live)]
    assert huey.execute(huey.read_periodic(dt.datetime(2026, 1, 5, 8, 30))[0]) == 0
