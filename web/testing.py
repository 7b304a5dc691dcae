"""baocao's pytest plugin: the fixtures its own suite uses, shipped for plugin authors.

Installed with baocao (entry point ``pytest11``, name ``baocao.testing``), so any pytest run in an
environment where baocao is installed has them; ``pytest -p no:baocao.testing`` turns them off.
docs/writing_plugins.md ("Testing your plugin") shows them at work.

Each test gets a database migrated as its application would migrate it at start (the core, the
built-in plugins and ``plugins_under_test``), with no other row than the migrations' — or, for a
test that uses ``app``, as that start leaves it (``_Template``): a copy of a SQLite file made once
per test process and template, or, when ``BAOCAO_TEST_DATABASE_URL`` names a PostgreSQL server, a
database copied once per pytest-xdist worker from a template database and put back to the
template's rows before each test (``_Postgres``). A test that needs a database without any table is marked ``empty_database``. The PostgreSQL role needs the CREATEDB right and owns what it creates.

Password hashing uses cheap Argon2 parameters in tests (the stored PHC string names them, so
nothing else changes); a test of the production parameters is marked ``production_hashing``.

Fixtures: ``settings`` / ``make_settings(**changes)``, ``app`` / ``make_app(settings, …)``,
``client`` (a Starlette TestClient, started), ``db_session`` (a connection, for service tests),
``frozen_clock``, ``make_user(username, unit=…, roles=…)``, ``login(…)``, ``unit_tree``,
``plugins_under_test`` (override it with your plugin's name: the app then loads it, installed),
``make_regime(…)`` / ``issued_regime`` (a regime in force and its current period's reports),
``open_report`` (a commune's report open for input and its reporter: ``.log_in(client)``,
``.fill(client, {"lua.cur": "12"})``, ``.url``).
Helpers: ``HX`` (the header htmx sends), ``csrf_from(html)``, ``entry_form_data(html)``.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from dataclasses import dataclass

import anyio
import pytest

from core.settings import PluginSettings, Settings

HX = {"HX-Request": "true"}
TEST_SECRET = "test-secret-" + "x" * 40
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")


def pytest_configure(config):
    config.addinivalue_line("markers", "empty_database: the test starts from a database without any table "
                                       "(not the migrated copy)")
    config.addinivalue_line("markers", "production_hashing: the test hashes passwords with the production "
                                       "Argon2 parameters")


def _postgres_url() -> str | None:
    return os.environ.get("BAOCAO_TEST_DATABASE_URL") or None


def _replace_path(url: str, name: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(re.sub(r"^postgres(ql)?://", "postgresql://", url))
    return urlunsplit(parts._replace(path="/" + name))


def _migrate_schema(url: str, plugins: tuple[str, ...], *, started: bool = False) -> None:
    """Migrate the database of ``url`` as a test application does at start: the core, the built-in
    plugins and the installed ``plugins`` under test. A test's application then finds nothing to
    migrate, so its database keeps the template's schema and is put back by rows, not copied again
    (on PostgreSQL a copy costs ~200 ms, a row reset a few).

    ``started``: and what the application's start writes after that (core.startup: the declared
    roles, the plugins' catalogues, their regimes as drafts), for the tests that start an
    application (``_Template``)."""
    from core.db import close_db, init_db
    from core.migrate import migrate_all
    from core.plugins import build_plugin_manager
    from core.registry import build_registry
    from core.startup import start_plugins

    settings = Settings(mode="test", database_url=url, secret_key=TEST_SECRET,
                        plugins=PluginSettings(allow_external=plugins))
    init_db(url)
    try:
        pm = build_plugin_manager(settings, load_entrypoints=bool(plugins))
        registry = build_registry(pm, settings)
        migrate_all(registry, pm)
        if started:
            anyio.run(start_plugins, pm, registry, settings)
    finally:
        close_db()


# The shape of a database: every relation and column outside the system schemas, functions,
# triggers (and whether they are enabled) and extensions. A test that changed it (a plugin's
# migration, an empty-database test) leaves a database the row reset cannot restore.
_SCHEMA_FINGERPRINT = """
SELECT md5(coalesce((SELECT string_agg(n.nspname || '.' || c.relname || ':' || c.relkind::text || ':' || coalesce(
          (SELECT string_agg(a.attname || ' ' || a.atttypid::text || ' ' || a.attnotnull::text, ','
                             ORDER BY a.attnum)
             FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), ''),
          ';' ORDER BY n.nspname, c.relname)
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_to%'
      AND n.nspname NOT LIKE 'pg\\_temp%'), '')
 || coalesce((SELECT string_agg(n.nspname || '.' || p.proname, ',' ORDER BY n.nspname, p.proname)
                FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
               WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')), '')
 || coalesce((SELECT string_agg(t.tgname || t.tgenabled::text, ',' ORDER BY t.tgname)
                FROM pg_trigger t WHERE NOT t.tgisinternal), '')
 || coalesce((SELECT string_agg(extname, ',' ORDER BY extname) FROM pg_extension), ''))
"""


@dataclass(frozen=True)
class _Template:
    """Which template a test's database is a copy of: the plugin set under test, and whether the
    application's start has run on it.

    A test that starts an application (it uses the ``app`` fixture) gets a started template: its
    application then finds the plugins' catalogues and regimes loaded, as a restarted server does,
    and its start costs a third of a first start (~35 ms instead of ~100 on SQLite; the suite starts
    ~3,000 applications per database). A service test (``db_session``) gets the database as the
    migrations leave it, with no row a start would add."""

    plugins: tuple[str, ...]
    started: bool = False


@dataclass
class _CleanState:
    """What a test database holds right after it was copied from the template, read once per worker."""

    fingerprint: str
    delete_order: list  # every table, those that reference others before those they reference
    trigger_tables: list  # tables with triggers of their own (the audit chain refuses DELETE)
    seed: dict  # table -> (columns, rows) of the rows the migrations put there
    sequences: list  # (name, value, is_called) for setval


def _delete_order(tables: list, references: list) -> list:
    """Tables ordered so that each comes before every table it references (a self-reference is
    checked at the end of its own DELETE, so it does not count)."""
    pointing_at = {table: set() for table in tables}  # referenced -> the tables referencing it
    for child, parent in references:
        if child != parent:
            pointing_at[parent].add(child)
    ordered, placed = [], set()
    while len(ordered) < len(tables):
        ready = [t for t in tables if t not in placed and pointing_at[t] <= placed]
        if not ready:
            raise RuntimeError(f"foreign keys in a cycle among {sorted(set(tables) - placed)}")
        ordered += ready
        placed.update(ready)
    return ordered


class _Postgres:
    """The worker's template databases (one per plugin set under test, migrated by
    ``_migrate_schema``) and its test database on the server of ``url``.

    The test database is copied from the template of the test's plugin set when that set differs
    from the previous test's; between tests its rows are put back as the template holds them (every table emptied, the migrations' rows inserted again, every sequence
    set back) in one transaction of a few milliseconds. Copying a database for each test cost
    ~180 ms of server CPU (``CREATE DATABASE`` writes the whole copy, catalogues included, to the
    write-ahead log), as much as the average test itself. A test that changed the schema, and one
    marked ``empty_database``, gets a new copy instead."""

    def __init__(self, url: str):
        self._stem = (url.rsplit("/", 1)[-1].split("?")[0] or "baocao_test")[:40]
        self._server_url = url
        self.test = f"{self._stem}_{WORKER}"
        self.url = _replace_path(url, self.test)
        self._admin_url = _replace_path(url, "postgres")
        self._templates: dict[_Template, str] = {}  # template -> its database
        self._clean: dict[_Template, _CleanState] = {}
        self._copied: _Template | None = None  # the template whose schema the test database has
        self._rows: _Template | None = None  # the template whose rows it was last put back to
        self._state = "none"  # "copied": as the template holds it; "used": a test ran; "other": not a copy

    def _admin(self, *statements: str) -> None:
        import psycopg

        with psycopg.connect(self._admin_url, autocommit=True) as conn:
            for statement in statements:
                conn.execute(statement)

    def _template(self, template: _Template) -> str:
        name = self._templates.get(template)
        if name is None:
            name = f"{self._stem}_{WORKER}_tmpl{len(self._templates)}"
            self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"')
            url = _replace_path(self._server_url, name)
            _migrate_schema(url, template.plugins, started=template.started)
            self._templates[template] = name
            self._clean[template] = self._read_clean_state(url)
        return name

    def build_template(self, plugins: tuple[str, ...] = ()) -> None:
        self._admin(f'DROP DATABASE IF EXISTS "{self.test}" WITH (FORCE)')
        self._copy(_Template(plugins))

    def _copy(self, template: _Template | None) -> None:
        """A new test database: a copy of ``template``, or empty (``None``)."""
        source = "template0" if template is None else self._template(template)
        # FORCE ends the previous test's connections (a pool left open by an app or a thread).
        self._admin(f'DROP DATABASE IF EXISTS "{self.test}" WITH (FORCE)',
                    f'CREATE DATABASE "{self.test}" TEMPLATE "{source}" STRATEGY WAL_LOG')
        self._copied = self._rows = template
        self._state = "other" if template is None else "copied"

    @staticmethod
    def _read_clean_state(url: str) -> _CleanState:
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            tables = [row[0] for row in conn.execute(
                "SELECT c.relname FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace "
                "AND c.relkind IN ('r', 'p') ORDER BY c.relname")]
            references = conn.execute(
                "SELECT conrelid::regclass::text, confrelid::regclass::text FROM pg_constraint "
                "WHERE contype = 'f' AND connamespace = 'public'::regnamespace").fetchall()
            trigger_tables = [row[0] for row in conn.execute(
                "SELECT DISTINCT tgrelid::regclass::text FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1")]
            seed = {}
            for table in tables:  # names read from pg_class just above, never from a test's input
                cursor = conn.execute(f'SELECT * FROM "{table}"')  # nosec B608
                rows = cursor.fetchall()
                if rows:
                    seed[table] = ([column.name for column in cursor.description], rows)
            sequences = conn.execute(
                "SELECT quote_ident(schemaname) || '.' || quote_ident(sequencename), "
                "coalesce(last_value, start_value), last_value IS NOT NULL FROM pg_sequences "
                "WHERE schemaname = 'public'").fetchall()
            fingerprint = conn.execute(_SCHEMA_FINGERPRINT).fetchone()[0]
        return _CleanState(fingerprint, _delete_order(tables, references), trigger_tables, seed, sequences)

    def _reset_rows(self, template: _Template) -> bool:
        """Put the test database's rows back as ``template`` holds them; False when its schema
        differs from the template's (then only a new copy restores it). The started and the
        migrated template of a plugin set differ only by rows, so one becomes the other here."""
        import psycopg

        clean = self._clean[template]
        with psycopg.connect(self.url, autocommit=True) as conn:
            # As DROP … WITH (FORCE) did: connections a test left open (a pool, a thread) end here.
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                         "WHERE datname = current_database() AND pid <> pg_backend_pid()")
            if conn.execute(_SCHEMA_FINGERPRINT).fetchone()[0] != clean.fingerprint:
                return False
            with conn.transaction():
                for table in clean.trigger_tables:  # the audit chain's append-only trigger
                    conn.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
                for table in clean.delete_order:  # the same catalogue names
                    conn.execute(f'DELETE FROM "{table}"')  # nosec B608
                for table in clean.trigger_tables:
                    conn.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")
                for table in reversed(clean.delete_order):  # a referenced table's rows first
                    if table not in clean.seed:
                        continue
                    columns, rows = clean.seed[table]
                    names = ", ".join(f'"{name}"' for name in columns)
                    with conn.cursor().copy(f'COPY "{table}" ({names}) FROM STDIN') as copy:
                        for row in rows:
                            copy.write_row(row)
                if clean.sequences:
                    conn.cursor().executemany("SELECT setval(%s::regclass, %s, %s)", clean.sequences)
        self._rows = template
        return True

    def fresh(self, *, empty: bool, plugins: tuple[str, ...] = (), started: bool = False) -> str:
        template = _Template(plugins, started)
        if empty:
            self._copy(None)
        elif self._state == "other" or self._copied is None or self._copied.plugins != plugins:
            self._copy(template)
        elif self._state == "copied" and self._rows == template:
            pass  # nothing ran on it since it was copied
        else:
            self._template(template)  # made (and its rows read) on first use
            if not self._reset_rows(template):
                self._copy(template)
        self._state = "other" if empty else "used"
        return self.url

    def drop(self) -> None:
        from core.db import close_db

        close_db()
        self._admin(f'DROP DATABASE IF EXISTS "{self.test}" WITH (FORCE)',
                    *(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)' for name in self._templates.values()))


class _SqliteTemplates:
    """Migrated SQLite files, one per ``_Template``, made on first use."""

    def __init__(self, directory):
        self._directory = directory
        self._paths: dict[_Template, object] = {}

    def path(self, template: _Template):
        path = self._paths.get(template)
        if path is None:
            path = self._directory / f"template{len(self._paths)}.db"
            _migrate_schema(f"sqlite:///{path}", template.plugins, started=template.started)
            self._paths[template] = path
        return path


@pytest.fixture(scope="session")
def _migrated_database(tmp_path_factory):
    """The migrated schemas to copy, once per test process: SQLite files or template databases."""
    url = _postgres_url()
    if url:
        server = _Postgres(url)
        yield server
        server.drop()
        return
    yield _SqliteTemplates(tmp_path_factory.mktemp("template"))


@pytest.fixture
def database_url(request, tmp_path, _migrated_database, plugins_under_test) -> str:
    empty = request.node.get_closest_marker("empty_database") is not None
    # A test that starts the ``app`` fixture's application gets the template its start has run on.
    template = _Template(tuple(plugins_under_test), started="app" in request.fixturenames)
    if isinstance(_migrated_database, _Postgres):
        return _migrated_database.fresh(empty=empty, plugins=template.plugins, started=template.started)
    target = tmp_path / "test.db"
    if not empty:
        shutil.copyfile(_migrated_database.path(template), target)
    return f"sqlite:///{target}"


@pytest.fixture(autouse=True)
def _fast_password_hashing(request, monkeypatch):
    if request.node.get_closest_marker("production_hashing") is None:
        from core.accounts import passwords

        # Argon2's smallest cost: a login in a test is then microseconds, not 40 ms of CPU.
        monkeypatch.setattr(passwords, "MEMORY_KIB", 8)
        monkeypatch.setattr(passwords, "ITERATIONS", 1)
        monkeypatch.setattr(passwords, "_DUMMY", None)


@pytest.fixture
def plugins_under_test() -> tuple[str, ...]:
    """The installed plugins (entry points, by name) the test application loads: none here. A plugin's
    own tests override this fixture with its name; ``settings`` then allow-lists it and ``app`` loads
    the installed entry points."""
    return ()


@pytest.fixture
def make_settings(database_url, tmp_path, plugins_under_test):
    def make(**changes) -> Settings:
        plugins = changes.pop("plugins", PluginSettings(allow_external=tuple(plugins_under_test)))
        # Attachments go to the test's own folder, never beside the checkout (PostgreSQL has no
        # database file to put them next to).
        changes.setdefault("files_dir", str(tmp_path / "files"))
        # Off unless a test turns it on (tests/*/test_mfa*.py): the other tests log in as
        # administrators with a password only.
        changes.setdefault("require_admin_mfa", False)
        # Off unless a test turns it on (the signature tests): the workflow tests submit unsigned.
        changes.setdefault("require_signature", False)
        # Off unless a test turns them on (tests/*/test_rate_limits.py): a test calls the API and the
        # exports faster than any person, and one test's budget would decide another assertion.
        changes.setdefault("api_requests_per_minute", 0)
        changes.setdefault("exports_per_minute", 0)
        return Settings(mode="test", database_url=database_url, secret_key=TEST_SECRET,
                        allowed_hosts=("testserver", "127.0.0.1", "localhost"), plugins=plugins, **changes)

    return make


@pytest.fixture
def settings(make_settings) -> Settings:
    return make_settings()


@pytest.fixture
def make_app(make_settings, plugins_under_test):
    from web.app import create_app

    def make(settings=None, **kwargs):
        kwargs.setdefault("load_entrypoints", bool(plugins_under_test))
        kwargs.setdefault("strict", False)
        return create_app(settings or make_settings(), **kwargs)

    return make


@pytest.fixture
def app(make_app, settings):
    """The application of ``settings``; strict: a plugin that fails fails the test."""
    return make_app(settings, strict=True)


@pytest.fixture
def client(app):
    from starlette.testclient import TestClient

    with TestClient(app) as client:
        yield client


@pytest.fixture
def frozen_clock():
    """``freeze(at)`` stops the one clock (core.clock) at ``at`` (naive = UTC) for the rest of the
    test; the clock runs and the time zone is the default again afterwards."""
    from core import clock

    yield clock.set_frozen
    clock.set_frozen(None)
    clock.configure(clock.DEFAULT_TIME_ZONE)


@pytest.fixture
def db_session(settings):
    """A migrated database with an open connection, for service tests."""
    from core.db import db, init_db
    from core.migrate import migrate_core

    init_db(settings.database_url)
    migrate_core()
    with db.connection_context():
        yield db


def csrf_from(html: str) -> str:
    match = re.search(r'name="csrf-token" content="([0-9a-f]+)"', html) or \
        re.search(r'name="csrf_token" value="([0-9a-f]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


@pytest.fixture
def make_user(app):
    """Create a user (and, unless ``unit`` is given, a unit to hold it); return (user, password).

    ``roles``: role codes ("reporter", "receiver", "unit_admin", a plugin's "<plugin>.<role>" …)
    granted at the user's unit, which the grant covers with its whole subtree."""
    from core.accounts import login as accounts
    from core.accounts.access import Grant, Role
    from core.db import db
    from core.models import Unit

    def make(username=None, *, unit=None, roles=(), unit_code="ROOT", unit_name="Tỉnh Quảng Trị",
             kind="province", parent=None, is_admin=False, password=None):
        username = username or f"u{uuid.uuid4().hex[:8]}"
        password = password or accounts.random_password()
        with db.connection_context():
            if unit is None:
                unit = Unit.get_or_none(Unit.code == unit_code) or Unit.create(
                    code=unit_code, name=unit_name, kind=kind, parent=parent)
            user = accounts.create_user(username, f"Người dùng {username}", password, unit, is_admin=is_admin)
            for code in roles:
                role = Role.get_or_none(Role.code == code)
                assert role is not None, f"no role {code!r}: the core's, a plugin's (switched on) or one made here"
                Grant.create(user=user, role=role, unit=unit)
        return user, password

    return make


@dataclass
class UnitTree:
    """A province with a department and two communes under it (the shape most reports travel)."""

    province: object
    department: object
    communes: list

    @property
    def all(self) -> list:
        return [self.province, self.department, *self.communes]


@pytest.fixture
def unit_tree(app) -> UnitTree:
    """Tỉnh Quảng Trị (``44``), Sở Nông nghiệp và Môi trường (``44.SNNMT``), and the communes
    Gio Linh (``44.GIOLINH``) and Cam Lộ (``44.CAMLO``) under the province."""
    from core.db import db
    from core.models import Unit

    with db.connection_context():
        province = Unit.create(code="44", name="Tỉnh Quảng Trị", kind="province")
        department = Unit.create(code="44.SNNMT", name="Sở Nông nghiệp và Môi trường", kind="department",
                                 parent=province)
        communes = [Unit.create(code="44.GIOLINH", name="Xã Gio Linh", kind="commune", parent=province),
                    Unit.create(code="44.CAMLO", name="Xã Cam Lộ", kind="commune", parent=province)]
    return UnitTree(province, department, communes)


@pytest.fixture
def login(client, make_user):
    """Log a (new) user in through the login form; return the user."""

    def do(username=None, **kwargs):
        user, password = make_user(username, **kwargs)
        page = client.get("/login")
        response = client.post("/login", data={"username": user.username, "password": password,
                                               "csrf_token": csrf_from(page.text)}, follow_redirects=False)
        assert response.status_code == 303, response.text
        return user

    return do


# -- an issued regime and an open report -------------------------------------------------------------

KIT_GROUP = ("KB01", "Chỉ tiêu của bộ thử nghiệm")
KIT_INDICATORS = (("KB0101", "Diện tích lúa gieo trồng", "ha"), ("KB0102", "Diện tích ngô gieo trồng", "ha"))


def kit_form_definition() -> dict:
    """The kit's form: two input rows (indicators ``KB0101``, ``KB0102``) and their computed total."""
    return {
        "title": "Biểu số 01/TN: Tiến độ gieo trồng",
        "rows": [
            {"key": "lua", "kind": "indicator", "number": "1", "label": "Lúa", "indicator": "KB0101",
             "unit": "ha", "decimals": 1},
            {"key": "ngo", "kind": "indicator", "number": "2", "label": "Ngô", "indicator": "KB0102",
             "unit": "ha", "decimals": 1},
            {"key": "tong", "kind": "computed", "number": "", "label": "Cộng", "formula": "lua + ngo",
             "decimals": 1},
        ],
        "columns": [{"key": "cur", "kind": "input", "label": "Thực hiện tháng {m}/{y}"}],
    }


def _kit_indicators() -> None:
    from core.catalogue import indicators

    indicators.save_group(*KIT_GROUP, "commune")
    for code, name, unit in KIT_INDICATORS:
        if indicators.current(code) is None:
            indicators.save_indicator({"code": code, "name": name, "group": KIT_GROUP[0], "levels": "commune",
                                       "unit_of_measure": unit, "aggregation": "sum"})


@dataclass
class IssuedRegime:
    """A regime in force and the reports its current period opened."""

    regime: object  # core.regimes.regimes.Regime, status "issued"
    issuer: object  # the user (regime editor and issuer at the issuing unit) who issued it
    reports: list  # the current period's reports, one a reporting unit

    @property
    def form(self):
        return self.regime.form

    def report_of(self, unit):
        """The current period's report of ``unit`` (a Unit or its id)."""
        unit_id = getattr(unit, "id", unit)
        found = [r for r in self.reports if r.unit_id == unit_id]
        assert found, f"no report for unit {unit_id} in regime {self.regime.code}"
        return found[0]


@pytest.fixture
def make_regime(app, unit_tree, make_user):
    """``make_regime(code="test.monthly", …)``: issue a regime and open its current period (today,
    core.clock: freeze it first to choose the period). Returns an ``IssuedRegime``.

    - By default the kit's regime: monthly, from the communes of ``unit_tree`` to its department
      (``receiver``), issued by the province, with the form of ``kit_form_definition()``
      (``definition=`` another; its indicators must be in the catalogue). ``kinds`` or ``units``
      choose the reporting units; ``frequency``, ``name``, ``rule`` (the deadline) the rest.
    - ``data=`` a plugin's ``plugin_data(NAME, __file__)``: its indicators loaded, then its regime
      ``code`` (else its first) loaded as the core loads a plugin's regime (unless the app's start
      loaded it already), then issued. ``spec=`` a ``RegimeSpec`` with ``plugin=`` its plugin's name
      does the same for a spec written in Python (the indicators its form names must be loaded).
    - ``code=`` of a draft that exists (a plugin's regime the app's start loaded): issued as it is.
    """
    from core import clock
    from core.accounts.permissions import core_access
    from core.db import db
    from core.models import User
    from core.regimes import regimes as rg
    from core.regimes.forms import install_form
    from core.reporting import events
    from core.reporting.opening import Report, issue_and_open

    def issue(regime):
        issuer_unit = regime.issuing_unit or unit_tree.province
        issuer, _ = make_user(unit=issuer_unit, roles=("regime_editor", "regime_issuer"))
        # As the issue screen does: with the app's plugins named, a plugin's regime opens reports only
        # where that plugin is switched on, and the plugins hear the reports opened.
        with events.using(app.state.pm, app.state.registry, app.state.settings):
            regime, _ = issue_and_open(core_access(User.get_by_id(issuer.id)), regime.id, today=clock.today(),
                                       policy=app.state.settings.regimes)
        reports = list(Report.select().where(Report.regime == regime.id).order_by(Report.unit))
        return IssuedRegime(rg.Regime.get_by_id(regime.id), issuer, reports)

    def make(code="test.monthly", *, data=None, spec=None, plugin=None,
             name="Báo cáo tiến độ gieo trồng hằng tháng", frequency="monthly", kinds=("commune",), units=None,
             receiver=None, definition=None, rule="2wd"):
        with db.connection_context():
            if data is not None:
                data.load_indicators()  # what the plugin's start-up hook does: the form names them
                specs = data.regimes()
                spec = next((s for s in specs if s.code == code), None) or specs[0]
                plugin = data.name
            if spec is not None:
                assert plugin, "make_regime(spec=…) needs plugin= (the plugin's name)"
                # The app's start loads a plugin's regimes as drafts; one loaded before ``unit_tree``
                # existed names no issuing unit: loaded again now, as the start would load it today.
                rg.Regime.delete().where((rg.Regime.code == spec.code) & (rg.Regime.status == rg.DRAFT)
                                         & rg.Regime.issuing_unit.is_null()).execute()
                regime = rg.load_spec(plugin, spec) or rg.Regime.get((rg.Regime.code == spec.code)
                                                                     & (rg.Regime.status == rg.DRAFT))
                return issue(regime)
            draft = rg.Regime.get_or_none((rg.Regime.code == code) & (rg.Regime.status == rg.DRAFT))
            if draft is not None:
                return issue(draft)
            editor, _ = make_user(unit=unit_tree.province, roles=("regime_editor", "regime_issuer"))
            if definition is None:
                _kit_indicators()
                definition = kit_form_definition()
            form = install_form(code.upper().replace(".", "-")[:40], name, unit_tree.department.id, definition,
                                frequency=frequency)
            receiver = receiver or unit_tree.department
            regime = rg.save_draft(core_access(User.get_by_id(editor.id)), {
                "code": code, "name": name, "regime_type": "periodic", "content": "Số liệu trong kỳ.",
                "content_type": "data", "kinds": list(kinds) if units is None else [],
                "unit_ids": [getattr(u, "id", u) for u in units or ()],
                "receiving_unit_id": receiver.id, "sending_methods": ["system"],
                "deadline_rules": [{"level": f"→ {receiver.name}", "from_kind": "", "rule": rule}],
                "frequency": frequency, "cutoff_rule": "decree", "form_id": form.id,
                "legal_number": "01/2026/QĐ-UBND", "legal_date": "2026-01-05", "legal_issuer": "UBND tỉnh",
                "issuing_unit_id": unit_tree.province.id, "preparing_unit_id": unit_tree.department.id,
            })
            return issue(regime)

    return make


@pytest.fixture
def issued_regime(make_regime) -> IssuedRegime:
    """The kit's monthly regime ``test.monthly``, issued: the communes of ``unit_tree`` report to the
    department (Sở Nông nghiệp và Môi trường) on a form of two input rows (lúa, ngô; indicators
    ``KB0101``, ``KB0102``) and their computed total (``tong``); the current period is open."""
    return make_regime()


@dataclass
class OpenReport:
    """A report open for input, and a reporter of its unit."""

    report: object  # core.reporting.opening.Report, status "not_started"
    user: object
    password: str
    regime: IssuedRegime

    @property
    def url(self) -> str:
        return f"/reports/{self.report.id}"

    def log_in(self, client) -> object:
        """Log the reporter into ``client`` through the login form; return the user."""
        page = client.get("/login")
        response = client.post("/login", data={"username": self.user.username, "password": self.password,
                                               "csrf_token": csrf_from(page.text)}, follow_redirects=False)
        assert response.status_code == 303, response.text
        return self.user

    def fill(self, client, cells: dict) -> None:
        """Type ``cells`` ({"<row>.<column>": "12,5", …}) into the report's grid and save it, as the
        entry page's form does (the logged-in user must be able to); fails on a refused save."""
        page = client.get(self.url)
        assert page.status_code == 200, page.text[:500]
        data = entry_form_data(page.text.split('id="entry-form"', 1)[1].split("</form>", 1)[0])
        data.update({f"cell.{key}": str(value) for key, value in cells.items()})
        response = client.post(f"{self.url}/save", data=data, follow_redirects=False)
        assert response.status_code == 303, response.text[:2000]


def entry_form_data(html: str) -> dict:
    """A form's fields as a browser would post them: every input (but files) and textarea by name."""
    data = {}
    for match in re.finditer(r'<input[^>]*\bname="([^"]+)"[^>]*>', html):
        if 'type="file"' not in match.group(0):
            value = re.search(r'\bvalue="([^"]*)"', match.group(0))
            data[match.group(1)] = value.group(1) if value else ""
    for match in re.finditer(r'<textarea[^>]*\bname="([^"]+)"[^>]*>(.*?)</textarea>', html, re.S):
        data[match.group(1)] = match.group(2)
    return data


@pytest.fixture
def open_report(issued_regime, unit_tree, make_user) -> OpenReport:
    """The current period's report of Xã Gio Linh (the first commune) in ``issued_regime``, and a new
    user holding "reporter" there: ``open_report.log_in(client)``, then ``client.get(open_report.url)``."""
    commune = unit_tree.communes[0]
    user, password = make_user(unit=commune, roles=("reporter",))
    return OpenReport(issued_regime.report_of(commune), user, password, issued_regime)
