"""Shared fixtures.

The database is a fresh SQLite file per test, or, when ``BAOCAO_TEST_DATABASE_URL``
names a PostgreSQL server, a fresh schema-less database emptied before each
test (the same suite runs on both; .ci/run does it twice).
"""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path

import pytest

from core.settings import PluginSettings, Settings

FIXTURES = Path(__file__).parent / "fixtures"
HX = {"HX-Request": "true"}
TEST_SECRET = "test-secret-" + "x" * 40


def _postgres_url() -> str | None:
    return os.environ.get("BAOCAO_TEST_DATABASE_URL") or None


def _reset_postgres(url: str) -> None:
    """Drop every table so each test starts from an empty database, like a new SQLite file."""
    import psycopg

    conninfo = re.sub(r"^postgres(ql)?://", "postgresql://", url)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")


@pytest.fixture
def database_url(tmp_path) -> str:
    url = _postgres_url()
    if url:
        _reset_postgres(url)
        return url
    return f"sqlite:///{tmp_path / 'test.db'}"


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
    """Create a unit (or reuse one) and a user in it; return (user, password)."""
    from core import accounts
    from core.db import db
    from core.models import Unit

    def make(username=None, *, unit_code="ROOT", unit_name="Tỉnh Quảng Trị", kind="province", parent=None,
             is_admin=False, password=None):
        username = username or f"u{uuid.uuid4().hex[:8]}"
        password = password or accounts.random_password()
        with db.connection_context():
            unit = Unit.get_or_none(Unit.code == unit_code) or Unit.create(
                code=unit_code, name=unit_name, kind=kind, parent=parent)
            user = accounts.create_user(username, f"Người dùng {username}", password, unit, is_admin=is_admin)
        return user, password

    return make


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
