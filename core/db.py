"""The database: one ``DatabaseProxy`` chosen by URL, base models, running queries.

SQLite (the default, a file next to the instance) is opened in WAL mode with
foreign keys on and a busy timeout, and every transaction begins IMMEDIATE:
a read-then-write transaction begun DEFERRED fails at once with "database is
locked" when another connection writes, whatever the busy timeout
(security.md F14). PostgreSQL is used in production and in CI.

Views never touch the database on the event loop: ``run_db`` runs a service
function in a worker thread inside ``connection_context()``, so a connection is
opened and closed on the thread that uses it.
"""

from __future__ import annotations

import logging
import re
import select
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, urlsplit

import anyio.to_thread
import peewee
from peewee import DatabaseProxy, Model
from playhouse.pool import PooledPostgresqlDatabase, PooledSqliteDatabase

from core.errors import SettingsError

log = logging.getLogger("baocao.db")


class _Reading(threading.local):
    database = None  # this thread's replica while inside ``reading_from_replica``; a class default:
    # a missing thread-local attribute would cost an exception at every query


_reading = _Reading()


class RoutedProxy(DatabaseProxy):
    """The models' database: the primary, or — for a thread inside ``reading_from_replica()`` —
    the read-only replica. Per thread, not per class binding (peewee's ``bind_ctx``), because
    requests on other threads keep writing to the primary meanwhile."""

    __slots__ = ("_primary",)

    @property
    def obj(self):
        replica = _reading.database
        return self._primary if replica is None else replica

    @obj.setter
    def obj(self, value):
        self._primary = value

    def __setattr__(self, attr, value):  # peewee's Proxy allows only its own slots
        object.__setattr__(self, attr, value)


db = RoutedProxy()

POOL_SIZE = 32  # connections per process: worker threads plus headroom
POOL_STALE_SECONDS = 300
POOL_WAIT_SECONDS = 20

SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "foreign_keys": 1,
    "busy_timeout": 10000,
    "synchronous": "normal",
}


@dataclass(frozen=True)
class DatabaseURL:
    backend: str  # "sqlite" or "postgresql"
    database: str
    user: str | None = None
    password: str | None = None
    host: str | None = None
    port: int | None = None
    options: tuple = ()

    @property
    def is_memory(self) -> bool:
        return self.backend == "sqlite" and self.database in (":memory:", "")

    def connect_kwargs(self) -> dict:
        """A PostgreSQL URL's connection parameters as psycopg takes them (the URL's query options
        included, the ones it does not name left out): the pool's, and a plain connection's."""
        params = dict(dbname=self.database, user=self.user, password=self.password, host=self.host,
                      port=self.port, **dict(self.options))
        return {key: value for key, value in params.items() if value is not None}


def parse_database_url(url: str) -> DatabaseURL:
    """``sqlite:///relative.db``, ``sqlite:////abs/path.db``, ``sqlite:///:memory:``,
    ``postgresql://user:pass@host:5432/name``. Anything else is refused by name."""
    if not isinstance(url, str) or "://" not in url:
        raise SettingsError("settings.error.database_url", url=_safe(url))
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "sqlite":
        if parts.netloc:
            raise SettingsError("settings.error.database_url", url=_safe(url))
        path = unquote(parts.path[1:]) if parts.path.startswith("/") else ""
        if not path:
            raise SettingsError("settings.error.database_url", url=_safe(url))
        return DatabaseURL("sqlite", path)
    if scheme in ("postgres", "postgresql"):
        name = unquote(parts.path.lstrip("/"))
        try:
            port = parts.port
        except ValueError:
            raise SettingsError("settings.error.database_url", url=_safe(url)) from None
        if not name or "/" in name:
            raise SettingsError("settings.error.database_url", url=_safe(url))
        return DatabaseURL("postgresql", name, unquote(parts.username) if parts.username else None,
                           unquote(parts.password) if parts.password else None,
                           parts.hostname, port, tuple(parse_qsl(parts.query)))
    raise SettingsError("settings.error.database_url", url=_safe(url))


def _safe(url) -> str:
    """The URL without its password, for messages."""
    # Up to the last "@" before the path: a password written with a raw "@" is hidden whole.
    return re.sub(r"//([^:/@]+):[^/]*@", r"//\1:***@", str(url))[:120]


def make_database(url: str) -> peewee.Database:
    """A pooled database: ``connection_context()`` per request then hands connections
    back instead of paying a new connection (and, on SQLite, its pragmas) each time."""
    spec = parse_database_url(url)
    if spec.backend == "sqlite":
        if spec.is_memory:  # one connection per thread would mean one database per thread
            return peewee.SqliteDatabase(spec.database, pragmas=SQLITE_PRAGMAS, lock_type="IMMEDIATE")
        return PooledSqliteDatabase(spec.database, pragmas=SQLITE_PRAGMAS, lock_type="IMMEDIATE",
                                    check_same_thread=False, max_connections=POOL_SIZE,
                                    stale_timeout=POOL_STALE_SECONDS, timeout=POOL_WAIT_SECONDS)
    try:
        import psycopg  # noqa: F401
    except ImportError:
        raise SettingsError("settings.error.postgres_driver") from None
    kwargs = spec.connect_kwargs()
    database = kwargs.pop("dbname")
    # Statements run often on a connection are prepared on the server (psycopg's default: at the
    # fifth run), which spares PostgreSQL parsing them again: a fifth to a quarter of its time per
    # page. plan_cache_mode=force_custom_plan keeps what prepare_threshold=None used to guard: a
    # plan made for each run's values. With PostgreSQL's default a prepared statement may switch
    # to a generic plan blind to the values, and the figures queries (IN lists of codes, units and
    # periods) went from 20 ms to 300 ms after a dozen runs on a national-size store
    # (bench/figures_scale.py, docs/topology.md).
    with_option(kwargs, "-c plan_cache_mode=force_custom_plan")
    return _PostgresPool(database, max_connections=POOL_SIZE, stale_timeout=POOL_STALE_SECONDS,
                         timeout=POOL_WAIT_SECONDS, prefer_psycopg3=True, **kwargs)


def with_option(params: dict, option: str) -> None:
    """Add a server setting (``-c name=value``) to a connection's ``options``, after any the
    database URL gave."""
    params["options"] = f"{params.get('options', '')} {option}".strip()


class _PostgresPool(PooledPostgresqlDatabase):
    def _is_closed(self, conn):
        """Whether a pooled connection is gone, without a round trip. peewee asks the server
        (``SELECT 1``) at every checkout: two or three per page. An idle connection receives
        nothing unless the server ends it (a restart, ``pg_terminate_backend``, an idle timeout:
        an error message, then the end of the stream), so a socket with something to read means
        the connection is gone; it is dropped and a new one opened, as after a failed SELECT 1.
        A machine that vanished without closing its end goes unseen here as it did there (the
        SELECT 1 waited on TCP's timeout too); its first statement fails and the request answers
        503 (docs/operations_faults.md)."""
        from psycopg.pq import TransactionStatus  # the driver is imported only for PostgreSQL

        if conn.closed or conn.info.transaction_status == TransactionStatus.UNKNOWN:
            return True
        if conn.info.transaction_status != TransactionStatus.IDLE:
            return self._adapter.is_connection_closed(conn)  # rolls back what was left open
        try:
            poller = select.poll()
            poller.register(conn.pgconn.socket, select.POLLIN | select.POLLERR | select.POLLHUP)
            return bool(poller.poll(0))
        except Exception:  # noqa: BLE001 — no socket to look at: as gone
            return True


# -- the read-only replica (setting database_replica_url, docs/topology.md) -----------------------------

REPLICA_RETRY_SECONDS = 30  # a replica found down is not tried again before this: no connect wait per page
REPLICA_CONNECT_TIMEOUT = 3  # seconds; past it the page reads the primary
_replicas: dict[str, peewee.Database] = {}
_replica_down_until: dict[str, float] = {}
_replica_lock = threading.Lock()


def _replica_database(url: str) -> peewee.Database:
    with _replica_lock:
        database = _replicas.get(url)
        if database is None:
            spec = parse_database_url(url)
            if spec.backend == "sqlite":
                # query_only: a write through the replica fails instead of landing in the wrong database.
                database = PooledSqliteDatabase(spec.database, pragmas={**SQLITE_PRAGMAS, "query_only": 1},
                                                check_same_thread=False, max_connections=POOL_SIZE,
                                                stale_timeout=POOL_STALE_SECONDS, timeout=POOL_WAIT_SECONDS)
            else:
                database = make_database(url)
                # A hot standby refuses writes anyway; this says so on any replica (a logical one too).
                with_option(database.connect_params, "-c default_transaction_read_only=on")
                database.connect_params.setdefault("connect_timeout", REPLICA_CONNECT_TIMEOUT)
            _replicas[url] = database
        return database


@contextmanager
def reading_from_replica(url: str):
    """Run the block's queries, on this thread, against the replica named by ``url`` — for pages
    and files that only read, and may be seconds behind (the leaders' dashboard, the figures
    explorer, their exports). Yields True when the replica is used; with ``url`` empty, or the
    replica down (logged once, then tried again after ``REPLICA_RETRY_SECONDS``), the block reads
    the primary as everything else does and it yields False."""
    if not url or time.monotonic() < _replica_down_until.get(url, 0.0):
        yield False
        return
    database = _replica_database(url)
    try:
        database.connect(reuse_if_open=True)
    except (peewee.OperationalError, peewee.InterfaceError, ValueError) as exc:  # ValueError: pool exhausted
        if url not in _replica_down_until:
            log.warning("the replica %s does not answer, reading from the primary: %s", _safe(url), exc)
        _replica_down_until[url] = time.monotonic() + REPLICA_RETRY_SECONDS
        database = None
    if database is None:  # outside the except clause: the block's own errors are not chained to it
        yield False
        return
    if _replica_down_until.pop(url, None) is not None:
        log.info("the replica %s answers again", _safe(url))
    previous = _reading.database
    _reading.database = database
    try:
        with database.connection_context():  # closes (hands back) the connection opened above
            yield True
    finally:
        _reading.database = previous


async def run_db_reading(replica_url: str, fn, *args, **kwargs):
    """``run_db`` for a read-only page: the function reads from the replica when one is set and up."""

    def call():
        with reading_from_replica(replica_url), db.connection_context():
            return fn(*args, **kwargs)

    return await anyio.to_thread.run_sync(call)


def close_replicas() -> None:
    with _replica_lock:
        for database in _replicas.values():
            database.close_all()
        _replicas.clear()
        _replica_down_until.clear()


def init_db(url: str) -> peewee.Database:
    """Point the proxy at the database named by ``url`` (closing a previous one)."""
    close_db()
    database = make_database(url)
    db.initialize(database)
    return database


def close_db() -> None:
    """Close this thread's connection and every pooled one."""
    if db.obj is None:
        return
    if not db.obj.is_closed():
        db.obj.close()
    if hasattr(db.obj, "close_all"):
        db.obj.close_all()


def is_sqlite() -> bool:
    return isinstance(db.obj, peewee.SqliteDatabase)


# SQLite lets one transaction write at a time, and a writer that finds the database taken polls
# for it (busy_timeout: sleeps growing to 100 ms), so a newcomer often takes it before writers that
# have waited long. With 50 people saving at once through two workers some saves waited past the
# 10 s timeout. In one process the writers queue here instead, blocked on a lock rather than
# polling; only one writer per process then competes for the database.
_SQLITE_WRITERS = threading.Lock()


@contextmanager
def transaction():
    """One business operation = one transaction (IMMEDIATE on SQLite by construction)."""
    if db.in_transaction() or not is_sqlite():
        with db.atomic():
            yield
        return
    with _SQLITE_WRITERS, db.atomic():
        yield


async def run_db(fn, *args, **kwargs):
    """Run a synchronous service function in a worker thread with its own connection."""

    def call():
        with db.connection_context():
            return fn(*args, **kwargs)

    return await anyio.to_thread.run_sync(call)


class BaseModel(Model):
    class Meta:
        database = db
        legacy_table_names = False


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def core_table(model_class) -> str:
    return f"core_{_snake(model_class.__name__)}"


class CoreModel(BaseModel):
    class Meta:
        table_function = core_table


def plugin_base(name: str) -> type[BaseModel]:
    """A base model whose subclasses get tables named ``<plugin>_<entity>``."""

    def table_function(model_class):
        return f"{name}_{_snake(model_class.__name__)}"

    meta = type("Meta", (), {"table_function": staticmethod(table_function)})
    return type(f"{name}_Base", (BaseModel,), {"Meta": meta, "__module__": __name__})


class _Slot(peewee.Node):
    """A parameter of a ``Prepared`` query: compiled as a placeholder, filled at each run."""

    def __init__(self, name: str, position: int | None = None):
        self.name, self.position = name, position

    def __sql__(self, ctx):
        # The converter the comparison would apply (the field's db_value) runs at each run instead.
        return ctx.value(_Marker(self.name, self.position, ctx.state.converter), converter=False)


class _SlotList(peewee.Node):
    """``(?, ?, …)`` for a tuple value of a ``Prepared`` query (``field.in_(p.codes)``); ``p.codes[i]``
    is its i-th item alone and ``len(p.codes)`` their number (the rows of an ``insert_many``)."""

    def __init__(self, name: str, size: int):
        self.name, self.size = name, size

    def __len__(self):
        return self.size

    def __getitem__(self, position: int):
        if not 0 <= position < self.size:
            raise IndexError(position)
        return _Slot(self.name, position)

    def __sql__(self, ctx):
        return ctx.sql(peewee.EnclosedNodeList([_Slot(self.name, i) for i in range(self.size)]))


@dataclass(frozen=True)
class _Marker:
    name: str
    position: int | None
    converter: object


class _Slots:
    def __init__(self, values: dict):
        self._values = values

    def __getattr__(self, name):
        value = self._values[name]
        return _SlotList(name, len(value)) if isinstance(value, (tuple, list, frozenset, set)) else _Slot(name)


class Prepared:
    """A query built and compiled by peewee once, then run with new values.

    Building the SQL of a query is pure Python and not cheap (the report with its regime: some 60
    columns, about 1 ms); the hot paths (every autosave, every request's session) ran the same
    few queries again and again. ``build(p)`` returns the peewee query with ``p.name`` where a
    value goes (a tuple value gives one placeholder per item); ``run(**values)`` returns the rows
    of a SELECT as peewee would have (models, tuples…), ``execute(**values)`` the number of rows an
    UPDATE, INSERT or DELETE touched. One compiled text per database type and tuple sizes.

    A value in an UPDATE's SET or an INSERT's VALUES goes to the driver as given (peewee converts
    only a value it compares with a field): give it as the column stores it.
    """

    def __init__(self, build):
        self.build, self._compiled, self._lock = build, {}, threading.Lock()
        self._readers: dict = {}  # compiled key → what peewee's cursor wrapper worked out at its first run

    def _compile(self, database, values: dict):
        key = (type(database), database.param, database.quote,
               tuple(len(v) if isinstance(v, (tuple, list, frozenset, set)) else None for v in values.values()),
               tuple(values))
        hit = self._compiled.get(key)
        if hit is None:
            query = self.build(_Slots(values))
            sql, params = database.get_sql_context().sql(query).query()
            hit = (query, sql, tuple(params), key)
            with self._lock:
                self._compiled[key] = hit
        return hit

    def _reader(self, key, wrapper):
        """``wrapper`` made ready to read rows. Peewee's wrapper works out, from the cursor's column
        description, which column goes to which model and field and how each value converts; for
        one compiled text the answer never changes, yet it was worked out again at every run (~9 %
        of a request's processor time, with psycopg building the description each time). Worked
        out at the first run and copied after: the wrappers only read it."""
        ready = self._readers.get(key)
        if ready is None:
            before = set(vars(wrapper))
            wrapper.initialize()
            ready = {name: value for name, value in vars(wrapper).items() if name not in before}
            with self._lock:
                self._readers[key] = ready
        else:
            vars(wrapper).update(ready)
        wrapper.initialized = True
        return wrapper

    def _execute(self, values: dict):
        database = db.obj
        query, sql, template, key = self._compile(database, values)
        values = {k: tuple(v) if isinstance(v, (list, frozenset, set)) else v for k, v in values.items()}
        params = []
        for param in template:
            if isinstance(param, _Marker):
                value = values[param.name]
                if param.position is not None:
                    value = value[param.position]
                params.append(param.converter(value) if param.converter else value)
            else:
                params.append(param)
        return query, key, database.execute_sql(sql, params)

    def run(self, **values):
        query, key, cursor = self._execute(values)
        return self._reader(key, query._get_cursor_wrapper(cursor))

    def execute(self, **values) -> int:
        """Run a compiled UPDATE, INSERT or DELETE; the number of rows it touched."""
        return self._execute(values)[2].rowcount

    def first(self, **values):
        """The first row or None (the query itself says ``.limit(1)`` where it wants one row)."""
        rows = list(self.run(**values))  # read to the end: the cursor is closed
        return rows[0] if rows else None
