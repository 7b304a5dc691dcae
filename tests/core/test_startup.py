"""Processes starting together on one database (``baocao serve --workers N``, several machines on
one PostgreSQL) run the start sequence one after the other (core.startup): the second finds what
the first loaded instead of inserting it again and marking the plugin failed. SQLite and PostgreSQL."""

from __future__ import annotations

import threading

import anyio

from core.db import db
from core.plugins import build_plugin_manager
from core.registry import build_registry
from core.regimes.regimes import Regime
from core.startup import one_start_at_a_time, start_plugins


def _start(settings) -> object:
    pm = build_plugin_manager(settings, load_entrypoints=False)
    anyio.run(start_plugins, pm, build_registry(pm, settings), settings)
    return pm


def _plugin_regimes() -> int:
    with db.connection_context():
        return Regime.select().where(Regime.plugin == "kinhte_xahoi").count()


def test_a_start_waits_for_the_one_under_way_then_finds_its_work_done(db_session, settings):
    assert _plugin_regimes() == 0  # a new database: migrated, never started
    first = one_start_at_a_time(settings.database_url)  # another process, in the middle of its start
    outcome = {}
    second = threading.Thread(target=lambda: outcome.update(pm=_start(settings)))
    second.start()
    second.join(0.5)
    assert second.is_alive() and _plugin_regimes() == 0  # waits: it loads nothing meanwhile
    first.close()
    second.join(60)
    assert not second.is_alive()
    assert _plugin_regimes() > 0
    loaded = _plugin_regimes()
    again = _start(settings)  # the next process to start: nothing is loaded twice, nobody fails
    assert _plugin_regimes() == loaded
    for pm in (outcome["pm"], again):
        assert not [name for name, info in pm.infos.items() if not info.ok]


def test_starts_in_parallel_both_succeed_and_load_each_regime_once(db_session, settings):
    managers, threads = [], []
    for _ in range(3):
        thread = threading.Thread(target=lambda: managers.append(_start(settings)))
        threads.append(thread)
        thread.start()
    for thread in threads:
        thread.join(120)
    assert len(managers) == 3
    for pm in managers:
        assert not [name for name, info in pm.infos.items() if not info.ok]
    with db.connection_context():
        codes = [r.code for r in Regime.select().where(Regime.plugin == "kinhte_xahoi")]
    assert codes and len(codes) == len(set(codes))
