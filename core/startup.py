"""What a process does with its plugins before it serves or works, in this order: the roles plugins
declare (and their permissions added to built-in roles), each plugin's ``startup`` hook (loading
its indicators, say), then the regimes plugins ship, loaded as drafts.

One sequence for the web application's lifespan and for the commands that act on regimes
(``baocao regimes open-due``): loaded before the start-up hooks, a regime's form would name
indicators not in the catalogue yet, and the draft it left stays so (an existing code is never
loaded again, so that an administrator's edits stay).
"""

from __future__ import annotations

import contextlib
import inspect
import logging

import anyio.to_thread

log = logging.getLogger(__name__)

# The PostgreSQL advisory lock the start sequence holds (core.audit and core.accounts use others).
START_LOCK = 4242010


async def start_plugins(pm, registry, settings) -> None:
    """Run the sequence above; a plugin whose start-up hook fails is marked failed at stage
    "startup" (its pages answer 503) and the others go on. Processes starting together run it one
    after the other (``one_start_at_a_time``)."""
    lock = await anyio.to_thread.run_sync(lambda: one_start_at_a_time(getattr(settings, "database_url", "")))
    try:
        await anyio.to_thread.run_sync(lambda: _sync_roles(registry))
        for name, result in pm.call_each("startup", stage="startup", settings=settings, registry=registry):
            try:
                if callable(result):
                    result = result()
                if inspect.isawaitable(result):
                    await result
            except Exception as exc:  # noqa: BLE001
                pm.fail(name, "startup", exc)
        await anyio.to_thread.run_sync(lambda: _load_plugin_regimes(pm, settings))
    finally:
        await anyio.to_thread.run_sync(lock.close)


def one_start_at_a_time(url: str) -> contextlib.ExitStack:
    """Hold the start lock of the database of ``url`` until the returned stack is closed.

    Several processes start at once on one database (``baocao serve --workers N``, machines behind a
    load balancer, a worker beside them): each would find a plugin's regime or indicator missing and
    insert it, and all but one would fail on the unique code and mark that plugin failed in their
    process. One after the other, each finds what the one before loaded. PostgreSQL: a session
    advisory lock on a connection of its own (released by the server if the process dies); SQLite:
    an exclusive lock on a file beside the database (released by the kernel likewise)."""
    from core.db import parse_database_url

    stack = contextlib.ExitStack()
    try:
        spec = parse_database_url(url)
    except Exception:  # noqa: BLE001 — no usable URL: the start's own steps say what is wrong
        return stack
    if spec.backend == "postgresql":
        import psycopg

        # A plain connection, not the pool's: those are per thread, and the lock is released from
        # whichever thread ends the start. Closing the connection releases the lock.
        try:
            connection = psycopg.connect(autocommit=True, **spec.connect_kwargs())
        except Exception:  # noqa: BLE001 — the server is down: the start's own steps log that
            log.warning("start lock not taken: the database does not answer")
            return stack
        stack.callback(connection.close)
        connection.execute("SELECT pg_advisory_lock(%s)", (START_LOCK,))
    elif not spec.is_memory:
        import fcntl

        try:
            handle = open(f"{spec.database}.start-lock", "a")
        except OSError:  # a read-only folder: nobody else can write this database either
            return stack
        stack.callback(handle.close)
        fcntl.flock(handle, fcntl.LOCK_EX)
    return stack


def _sync_roles(registry) -> None:
    from core.accounts.roles import sync_declared
    from core.db import db

    try:
        with db.connection_context():
            sync_declared(registry)
    except Exception:  # noqa: BLE001 — no role table yet (an app built with migrate=False): nothing to sync
        log.exception("declared roles not synced")


def _load_plugin_regimes(pm, settings) -> None:
    from core.db import db
    from core.regimes.regimes import load_plugin_regimes

    try:
        with db.connection_context():
            load_plugin_regimes(pm, settings)
    except Exception:  # noqa: BLE001 — no regime table yet (an app built with migrate=False): nothing to load
        log.exception("plugin regimes not loaded")
