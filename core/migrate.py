"""Schema migrations with ``playhouse.migrations``: one history per plugin, core first.

Each directory holds ``NNNN_<slug>.py`` scripts with ``up(migrator, db)`` and
``down(migrator, db)``, applied in numeric order inside a transaction where the
backend's DDL is transactional, and recorded in ``<name>_migrations``.
A failing plugin migration is rolled back and marks only that plugin failed.
"""

from __future__ import annotations

import logging
from pathlib import Path

from playhouse.migrations import Runner

from core.db import db

log = logging.getLogger("baocao.migrate")
CORE_MIGRATIONS = Path(__file__).with_name("migrations")


def runner(name: str, directory: Path) -> Runner:
    return Runner(db.obj, directory=str(directory), table_name=f"{name}_migrations")


def migrate_core() -> list[str]:
    with db.connection_context():
        applied = runner("core", CORE_MIGRATIONS).up()
    for step in applied:
        log.info("core: applied %s", step)
    return applied


def plugin_order(registry) -> list[str]:
    """Plugins in dependency order (``depends_on`` first), otherwise as registered."""
    ordered: list[str] = []

    def visit(name, trail=()):
        if name in ordered or name not in registry.domains or name in trail:
            return
        for dep in registry.domains[name].depends_on:
            visit(dep, trail + (name,))
        ordered.append(name)

    for name in registry.plugin_names():
        visit(name)
    return ordered


def migrate_plugins(registry, pm) -> dict[str, list[str]]:
    """Apply every healthy plugin's pending migrations; a failure marks that plugin failed."""
    done: dict[str, list[str]] = {}
    for name in plugin_order(registry):
        info = pm.infos.get(name)
        directory = registry.resource_dir(name, "migrations")
        if directory is None or info is None or not info.ok:
            continue
        try:
            with db.connection_context():
                done[name] = runner(name, directory).up()
        except Exception as exc:  # noqa: BLE001 — any migration failure is this plugin's
            pm.fail(name, "migration", exc)
            continue
        for step in done[name]:
            log.info("%s: applied %s", name, step)
    return done


def migrate_all(registry, pm) -> dict[str, list[str]]:
    result = {"core": migrate_core()}
    result.update(migrate_plugins(registry, pm))
    return result
