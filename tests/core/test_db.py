"""The database layer on both backends: connection settings, transactions that
wait instead of failing, table naming, migrations and run_db.

The ``database_url`` fixture picks SQLite (a fresh file) or PostgreSQL
(``BAOCAO_TEST_DATABASE_URL``). Where the two genuinely differ the SQLite
assertion is guarded by ``is_sqlite()`` and the PostgreSQL equivalent is
asserted instead; everything else runs unchanged on both.
"""

from __future__ import annotations

import threading
from pathlib import Path

import anyio
import peewee
import pytest
from peewee import IntegerField

from core import db as dbmod
from core.db import db, init_db, is_sqlite, plugin_base, run_db, transaction
from core.migrate import CORE_MIGRATIONS, migrate_core, runner
from core.models import CORE_MODELS, Unit, User


@pytest.fixture
def fresh_db(database_url):
    """The database (empty and unmigrated where the test is marked so), no connection held."""
    init_db(database_url)
    yield db
    dbmod.close_db()


@pytest.fixture
def counter(db_session):
    """A one-row table to read-modify-write, in a plugin's namespace."""
    Base = plugin_base("dbtest")

    class Counter(Base):
        value = IntegerField(default=0)

    db.create_tables([Counter])
    Counter.create(value=0)
    return Counter


# -- connection settings ------------------------------------------------------------

def test_sqlite_pragmas_or_the_postgresql_equivalent(db_session):
    if is_sqlite():
        assert db.execute_sql("PRAGMA journal_mode").fetchone()[0].lower() == "wal"
        assert db.execute_sql("PRAGMA foreign_keys").fetchone()[0] == 1
        assert db.execute_sql("PRAGMA busy_timeout").fetchone()[0] > 0
    else:
        # PostgreSQL always enforces foreign keys (tested below on both) and lets
        # readers and writers work side by side (MVCC); what the connection itself
        # must get right is the encoding, or Vietnamese text is mangled or refused.
        assert isinstance(db.obj, peewee.PostgresqlDatabase)
        assert db.execute_sql("SHOW server_encoding").fetchone()[0] == "UTF8"
        assert db.execute_sql("SHOW client_encoding").fetchone()[0] == "UTF8"


def test_vietnamese_text_round_trips(db_session):
    name = "Phường Đồng Hới — Ủy ban nhân dân"
    Unit.create(code="VN", name=name, kind="commune")
    assert Unit.get(Unit.code == "VN").name == name
    assert Unit.select().where(Unit.name == name).count() == 1


def test_foreign_keys_are_enforced(db_session):
    with pytest.raises(peewee.IntegrityError):
        with transaction():
            User.create(username="mo_coi", full_name="Mồ côi", password_hash="x", unit=987654)


def test_check_constraints_are_enforced(db_session):
    with pytest.raises(peewee.IntegrityError):
        with transaction():
            Unit.create(code="X1", name="Sai loại", kind="galaxy")


def test_every_pooled_connection_gets_the_pragmas(db_session):
    # A second thread gets a second connection from the pool: it must be set up the same way.
    seen = {}

    def other():
        with db.connection_context():
            if is_sqlite():
                seen["setup"] = (db.execute_sql("PRAGMA foreign_keys").fetchone()[0],
                                 db.execute_sql("PRAGMA journal_mode").fetchone()[0].lower(),
                                 db.execute_sql("PRAGMA busy_timeout").fetchone()[0] > 0)
            else:
                seen["setup"] = db.execute_sql("SHOW client_encoding").fetchone()[0]
            seen["conn"] = id(db.connection())

    thread = threading.Thread(target=other)
    thread.start()
    thread.join()
    assert seen["conn"] != id(db.connection())
    assert seen["setup"] == ((1, "wal", True) if is_sqlite() else "UTF8")


# -- transactions -------------------------------------------------------------------------

def test_transactions_begin_immediate_on_sqlite(db_session):
    conn = db.connection()
    if is_sqlite():
        statements: list[str] = []
        conn.set_trace_callback(statements.append)
        try:
            with transaction():
                Unit.select().count()
            with db.atomic():
                Unit.select().count()
        finally:
            conn.set_trace_callback(None)
        begins = [s.strip().upper() for s in statements if s.strip().upper().startswith("BEGIN")]
        assert begins == ["BEGIN IMMEDIATE", "BEGIN IMMEDIATE"]
    else:
        # PostgreSQL has no lock types on BEGIN; the equivalent guarantee is that
        # the block really is one transaction on the server.
        from psycopg.pq import TransactionStatus

        with transaction():
            Unit.select().count()
            assert conn.info.transaction_status == TransactionStatus.INTRANS
        assert conn.info.transaction_status == TransactionStatus.IDLE


def test_a_second_read_modify_write_waits_instead_of_failing(counter):
    """security.md F14: begun DEFERRED, the second transaction would fail at once
    with "database is locked"; begun IMMEDIATE (SQLite) or blocked on the row lock
    (PostgreSQL) it waits for the first to commit, and no update is lost."""
    errors: list[BaseException] = []
    ready = threading.Event()

    def second():
        try:
            with db.connection_context():
                ready.set()
                with transaction():
                    counter.get().value  # read ...
                    counter.update(value=counter.value + 1).execute()  # ... then write
        except BaseException as exc:  # noqa: BLE001 — reported by the assertion below
            errors.append(exc)

    thread = threading.Thread(target=second)
    with transaction():
        counter.get().value
        counter.update(value=counter.value + 1).execute()
        thread.start()
        assert ready.wait(10)
        thread.join(0.5)  # give the second transaction time to run into our lock
    thread.join(30)
    assert not thread.is_alive()
    assert errors == []
    assert counter.get().value == 2


def test_many_writers_at_once_queue_instead_of_timing_out(counter):
    """Many people saving at once through one worker. On SQLite every writer but one waits for the
    database, and SQLite's own wait (busy_timeout) polls: a newcomer could take the database before
    writers that had waited long, some past the timeout (503 under the load bench). In one process
    writers queue on a lock instead (core.db.transaction): with a busy timeout far shorter than the
    writers take together, none fails and no update is lost. (PostgreSQL: the row lock queues them.)"""
    import time

    writers = 12
    errors: list[BaseException] = []
    start = threading.Barrier(writers)

    def writer():
        try:
            with db.connection_context():
                if is_sqlite():
                    db.execute_sql("PRAGMA busy_timeout = 50")  # 12 × 20 ms of writing: far past it
                try:
                    start.wait(10)
                    with transaction():
                        counter.get().value
                        time.sleep(0.02)  # a save's work inside its transaction
                        counter.update(value=counter.value + 1).execute()
                finally:
                    if is_sqlite():  # the connection goes back to the pool as it came
                        db.execute_sql(f"PRAGMA busy_timeout = {dbmod.SQLITE_PRAGMAS['busy_timeout']}")
        except BaseException as exc:  # noqa: BLE001 — reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=writer) for _ in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert counter.get().value == writers


def test_an_uncommitted_write_is_invisible_to_other_connections(db_session):
    seen = []

    def count_elsewhere():
        with db.connection_context():
            seen.append(Unit.select().count())

    with transaction():
        Unit.create(code="T1", name="Tạm", kind="province")
        reader = threading.Thread(target=count_elsewhere)
        reader.start()
        reader.join(30)  # a reader is never blocked by the open write transaction
    assert not reader.is_alive()
    after = threading.Thread(target=count_elsewhere)
    after.start()
    after.join(30)
    assert seen == [0, 1]


def test_a_failed_business_operation_leaves_nothing_behind(db_session):
    with pytest.raises(RuntimeError):
        with transaction():
            Unit.create(code="T2", name="Sẽ hủy", kind="province")
            raise RuntimeError("boom")
    assert Unit.select().where(Unit.code == "T2").count() == 0


# -- table names ------------------------------------------------------------------------

def test_plugin_base_prefixes_tables_with_the_plugin_name(db_session):
    Base = plugin_base("abc")

    class ReportLine(Base):
        amount = IntegerField(null=True)

    class Item(Base):
        pass

    assert ReportLine._meta.table_name == "abc_report_line"
    assert Item._meta.table_name == "abc_item"
    db.create_tables([ReportLine, Item])
    assert {"abc_report_line", "abc_item"} <= set(db.get_tables())


def all_core_models():
    """Every model of the core, wherever its module (models, access, audit, ...)."""
    import importlib
    import pkgutil

    import core
    from core.db import CoreModel

    for module in pkgutil.walk_packages(core.__path__, "core."):  # the packages' modules too
        importlib.import_module(module.name)
    found, todo = [], list(CoreModel.__subclasses__())
    while todo:
        model = todo.pop()
        found.append(model)
        todo.extend(model.__subclasses__())
    return found


def test_core_tables_are_core_prefixed_and_match_the_migration(db_session):
    # A test database is migrated as an application starts: the built-in plugins' tables are there
    # too, each under its plugin's prefix.
    from core.plugins import BUILTIN_PLUGINS

    plugin_prefixes = tuple(name.rsplit(".", 1)[-1] + "_" for name in BUILTIN_PLUGINS)
    everything = set(db.get_tables())
    tables = {t for t in everything if not t.startswith(plugin_prefixes)}
    assert tables and all(t.startswith("core_") for t in tables), tables
    models = all_core_models()
    assert CORE_MODELS[0] in models
    assert {m._meta.table_name for m in models} | {"core_migrations"} == tables
    # The models the services use match the schema the migrations created.
    for model in models:
        columns = {c.name for c in db.get_columns(model._meta.table_name)}
        assert columns == {f.column_name for f in model._meta.sorted_fields}, model.__name__


# -- migrations -----------------------------------------------------------------------------

CORE_STEPS = sorted(p.stem for p in Path(CORE_MIGRATIONS).glob("[0-9]*.py"))


@pytest.mark.empty_database
def test_migration_history_and_idempotence(fresh_db):
    assert migrate_core() == CORE_STEPS and CORE_STEPS[0] == "0001_core"
    with db.connection_context():
        assert "core_migrations" in db.get_tables()
        names = [r[0] for r in db.execute_sql("SELECT name FROM core_migrations").fetchall()]
    assert sorted(names) == CORE_STEPS
    assert migrate_core() == []  # the second run applies nothing
    with db.connection_context():
        assert db.execute_sql("SELECT COUNT(*) FROM core_migrations").fetchone()[0] == len(CORE_STEPS)


@pytest.mark.empty_database
def test_each_plugin_has_its_own_history(fresh_db, tmp_path):
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    (migrations / "0001_first.py").write_text(
        "def up(migrator, db):\n    db.execute_sql('CREATE TABLE abc_thing (id INTEGER PRIMARY KEY)')\n"
        "def down(migrator, db):\n    db.execute_sql('DROP TABLE abc_thing')\n", encoding="utf-8")
    migrate_core()
    with db.connection_context():
        assert runner("abc", migrations).up() == ["0001_first"]
        assert runner("abc", migrations).up() == []
        tables = set(db.get_tables())
        assert {"abc_migrations", "abc_thing", "core_migrations"} <= tables
        assert db.execute_sql("SELECT name FROM abc_migrations").fetchall() == [("0001_first",)]
        assert sorted(n for n, in db.execute_sql("SELECT name FROM core_migrations").fetchall()) == CORE_STEPS


def test_the_core_migrations_directory_is_packaged():
    from core.migrate import CORE_MIGRATIONS

    assert sorted(p.name for p in Path(CORE_MIGRATIONS).glob("0*.py"))[0] == "0001_core.py"


# -- run_db ------------------------------------------------------------------------------------

def on_event_loop(async_fn, *args):
    """Run ``async_fn`` on a new event loop in its own thread, like a server would
    (and whatever loop an earlier test left running in the main thread)."""
    outcome = {}

    def target():
        try:
            outcome["value"] = anyio.run(async_fn, *args)
        except BaseException as exc:  # noqa: BLE001 — re-raised in the test's thread
            outcome["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(60)
    assert not thread.is_alive()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def test_run_db_runs_in_a_worker_thread_with_its_own_connection(db_session):
    test_conn = id(db.connection())  # held open by this thread meanwhile

    def probe():
        return threading.get_ident(), id(db.connection()), db.execute_sql("SELECT 1").fetchone()[0]

    async def call():
        return threading.get_ident(), await run_db(probe)

    loop_thread, (worker_thread, conn, one) = on_event_loop(call)
    assert worker_thread != loop_thread  # the event loop never waits on the database
    assert conn != test_conn
    assert one == 1


def test_concurrent_run_db_calls_use_separate_connections(db_session):
    barrier = threading.Barrier(2, timeout=10)

    def probe():
        conn = id(db.connection())
        barrier.wait()  # both calls hold their connection at the same time
        return conn

    async def both():
        results = []

        async def one():
            results.append(await run_db(probe))

        async with anyio.create_task_group() as tg:
            tg.start_soon(one)
            tg.start_soon(one)
        return results

    first, second = on_event_loop(both)
    assert first != second


def test_run_db_hands_its_connection_back(db_session):
    # More calls than the pool holds: a leaked connection would exhaust it.
    async def many():
        return [await run_db(lambda: Unit.select().count()) for _ in range(dbmod.POOL_SIZE + 5)]

    assert on_event_loop(many) == [0] * (dbmod.POOL_SIZE + 5)


def test_run_db_commits_what_the_service_wrote(db_session):
    def service():
        with transaction():
            Unit.create(code="RUN", name="Từ luồng phụ", kind="province")

    on_event_loop(run_db, service)
    assert Unit.get(Unit.code == "RUN").name == "Từ luồng phụ"
