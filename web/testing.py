"""baocao's pytest plugin: the fixtures its own suite uses, shipped for plugin authors.

Installed with baocao (entry point ``pytest11``, name ``baocao.testing``), so any pytest run in an
environment where baocao is installed has them; ``pytest -p no:baocao.testing`` turns them off.
docs/writing_plugins.md ("Testing your plugin") shows them at work.

Each test gets a database of its own that holds the core schema and nothing else: a copy of a
SQLite file migrated once per test process, or, when ``BAOCAO_TEST_DATABASE_URL`` names a
PostgreSQL server, a new database created from a migrated template database (``CREATE DATABASE …
TEMPLATE``, a file copy on the server), one pair per pytest-xdist worker. Copying a migrated schema
costs a few milliseconds where migrating it again cost a third of a second per test on PostgreSQL.
A test that needs a database without any table is marked ``empty_database``. The PostgreSQL role
needs the CREATEDB right.

Password hashing uses cheap Argon2 parameters in tests (the stored PHC string names them, so
nothing else changes); a test of the production parameters is marked ``production_hashing``.

Fixtures: ``settings`` / ``make_settings(**changes)``, ``app`` / ``make_app(settings, …)``,
``client`` (a Starlette TestClient, started), ``db_session`` (a connection, for service tests),
``frozen_clock``, ``make_user(username, unit=…, roles=…)``, ``login(…)``, ``unit_tree``.
Helpers: ``HX`` (the header htmx sends), ``csrf_from(html)``.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from dataclasses import dataclass

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


class _Postgres:
    """The worker's template database and its test database on the server of ``url``."""

    def __init__(self, url: str):
        stem = (url.rsplit("/", 1)[-1].split("?")[0] or "baocao_test")[:40]
        self.template = f"{stem}_{WORKER}_tmpl"
        self.test = f"{stem}_{WORKER}"
        self.url = _replace_path(url, self.test)
        self.template_url = _replace_path(url, self.template)
        self._admin_url = _replace_path(url, "postgres")

    def _admin(self, *statements: str) -> None:
        import psycopg

        with psycopg.connect(self._admin_url, autocommit=True) as conn:
            for statement in statements:
                conn.execute(statement)

    def build_template(self) -> None:
        from core.db import close_db, init_db
        from core.migrate import migrate_core

        self._admin(f'DROP DATABASE IF EXISTS "{self.test}" WITH (FORCE)',
                    f'DROP DATABASE IF EXISTS "{self.template}" WITH (FORCE)',
                    f'CREATE DATABASE "{self.template}"')
        init_db(self.template_url)
        migrate_core()
        close_db()

    def fresh(self, *, empty: bool) -> str:
        # FORCE ends the previous test's connections (a pool left open by an app or a thread).
        source = "template0" if empty else self.template
        self._admin(f'DROP DATABASE IF EXISTS "{self.test}" WITH (FORCE)',
                    f'CREATE DATABASE "{self.test}" TEMPLATE "{source}" STRATEGY WAL_LOG')
        return self.url

    def drop(self) -> None:
        from core.db import close_db

        close_db()
        self._admin(f'DROP DATABASE IF EXISTS "{self.test}" WITH (FORCE)',
                    f'DROP DATABASE IF EXISTS "{self.template}" WITH (FORCE)')


@pytest.fixture(scope="session")
def _migrated_database(tmp_path_factory):
    """Migrate the core schema once per test process: a SQLite file to copy, or a template database."""
    url = _postgres_url()
    if url:
        server = _Postgres(url)
        server.build_template()
        yield server
        server.drop()
        return
    from core.db import close_db, init_db
    from core.migrate import migrate_core

    path = tmp_path_factory.mktemp("template") / "template.db"
    init_db(f"sqlite:///{path}")
    migrate_core()
    close_db()
    yield path


@pytest.fixture
def database_url(request, tmp_path, _migrated_database) -> str:
    empty = request.node.get_closest_marker("empty_database") is not None
    if isinstance(_migrated_database, _Postgres):
        return _migrated_database.fresh(empty=empty)
    target = tmp_path / "test.db"
    if not empty:
        shutil.copyfile(_migrated_database, target)
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
def make_settings(database_url, tmp_path):
    def make(**changes) -> Settings:
        plugins = changes.pop("plugins", PluginSettings())
        # Attachments go to the test's own folder, never beside the checkout (PostgreSQL has no
        # database file to put them next to).
        changes.setdefault("files_dir", str(tmp_path / "files"))
        # Off unless a test turns it on (tests/*/test_mfa*.py): the other tests log in as
        # administrators with a password only.
        changes.setdefault("require_admin_mfa", False)
        # Off unless a test turns it on (the signature tests): the workflow tests submit unsigned.
        changes.setdefault("require_signature", False)
        return Settings(mode="test", database_url=database_url, secret_key=TEST_SECRET,
                        allowed_hosts=("testserver", "127.0.0.1", "localhost"), plugins=plugins, **changes)

    return make


@pytest.fixture
def settings(make_settings) -> Settings:
    return make_settings()


@pytest.fixture
def make_app(make_settings):
    from web.app import create_app

    def make(settings=None, **kwargs):
        kwargs.setdefault("load_entrypoints", False)
        kwargs.setdefault("strict", False)
        return create_app(settings or make_settings(), **kwargs)

    return make


@pytest.fixture
def app(make_app):
    return make_app(strict=True)


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
