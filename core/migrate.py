"""Schema migrations with ``playhouse.migrations``: one history per plugin, core first.

Each directory holds ``NNNN_<slug>.py`` scripts with ``up(migrator, db)`` and
``down(migrator, db)``, applied in numeric order inside a transaction where the
backend's DDL is transactional, and recorded in ``<name>_migrations``.
A failing plugin migration is rolled back and marks only that plugin failed.

Before any pending step touches a database that holds data, ``migrate_all`` (given the settings:
``baocao migrate``, every command, the server's and the worker's start) takes a backup with
core.backup into ``backup_dir`` (security.md DB-08; docs/backup.md). In production without a
backup key it refuses, unless told explicitly to go on without one (``--without-backup`` or the
setting ``migrate_without_backup``): that choice is logged and audited. Only the process holding
the start lock (core.startup) looks for pending steps, backs up and migrates; the others wait and
then find nothing to do.
"""

from __future__ import annotations

import logging
from pathlib import Path

from playhouse.migrations import Runner

from core.db import db
from core.errors import BaocaoError

log = logging.getLogger("baocao.migrate")
CORE_MIGRATIONS = Path(__file__).with_name("migrations")


class _Runner(Runner):
    """playhouse's runner, telling the parts that look at the schema once that it changed."""

    def _run(self, *args, **kwargs):
        try:
            return super()._run(*args, **kwargs)
        finally:
            from core import audit

            audit.forget_schema()


def runner(name: str, directory: Path) -> Runner:
    return _Runner(db.obj, directory=str(directory), table_name=f"{name}_migrations")


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


def pending(registry, pm) -> dict[str, list[str]]:
    """The steps not applied yet: the core's, and those of each healthy plugin."""
    histories = [("core", CORE_MIGRATIONS)]
    for name in plugin_order(registry):
        info = pm.infos.get(name)
        directory = registry.resource_dir(name, "migrations")
        if directory is not None and info is not None and info.ok:
            histories.append((name, directory))
    with db.connection_context():
        return {name: [m.name for m in runner(name, directory).status() if m.path and not m.applied]
                for name, directory in histories}


def holds_data() -> bool:
    """Whether the core's history has any step: a new database (nothing applied) has nothing to save."""
    with db.connection_context():
        return bool(runner("core", CORE_MIGRATIONS).applied())


def backup_before(settings, registry, pm, *, without_backup: bool = False) -> dict:
    """DB-08: what happens before pending steps run, as the details of the audit event that follows
    them. Nothing pending, or a new database: nothing to do. ``without_backup`` (``baocao migrate
    --without-backup``): none, by the operator's explicit word. Otherwise a backup
    (core.backup.create_backup, into ``backup_dir``) when a key is set; without one, the setting
    ``migrate_without_backup`` goes on, production refuses, and development and test carry on
    (their data is a developer's, and ``baocao demo`` rebuilds it)."""
    from core import backup

    if not any(pending(registry, pm).values()):
        return {}
    if not holds_data():
        return {"backup": "", "why": "new_database"}
    if without_backup:  # the operator's explicit word for this run, key or not
        log.warning("migrating without a backup: --without-backup")
        return {"backup": "", "why": "without_backup"}
    if settings.backup_key_file:
        archive = backup.create_backup(settings)
        return {"backup": archive.path.name, "sha256": archive.sha256}
    if settings.migrate_without_backup:
        log.warning("migrating without a backup: migrate_without_backup is set and there is no backup key")
        return {"backup": "", "why": "setting"}
    if settings.production:
        raise BaocaoError("migrate.error.backup_required")
    log.info("migrating without a backup: no backup_key_file (not required in %s mode)", settings.mode)
    return {"backup": "", "why": "not_production"}


def _apply_all(registry, pm) -> dict[str, list[str]]:
    result = {"core": migrate_core()}
    result.update(migrate_plugins(registry, pm))
    return result


def migrate_all(registry, pm, settings=None, *, without_backup: bool = False) -> dict[str, list[str]]:
    """Every pending step, the core's first. With ``settings``: under the start lock, after
    ``backup_before``, and audited (``migrate.applied``) when a step ran."""
    if settings is None:
        return _apply_all(registry, pm)
    from core.startup import one_start_at_a_time

    with one_start_at_a_time(settings.database_url):
        before = backup_before(settings, registry, pm, without_backup=without_backup)
        result = _apply_all(registry, pm)
        if any(result.values()):
            _audit_applied(result, before)
    return result


def _audit_applied(result: dict[str, list[str]], before: dict) -> None:
    from core import audit
    from core.db import transaction

    steps = {name: applied for name, applied in result.items() if applied}
    with db.connection_context(), transaction():
        audit.record("migrate.applied", object_type="migration", object_id=",".join(steps)[:64],
                     details={"steps": steps, **before})
