"""What a process does with its plugins before it serves or works, in this order: the roles plugins
declare (and their permissions added to built-in roles), each plugin's ``startup`` hook (loading
its indicators, say), then the regimes plugins ship, loaded as drafts.

One sequence for the web application's lifespan and for the commands that act on regimes
(``baocao regimes open-due``): loaded before the start-up hooks, a regime's form would name
indicators not in the catalogue yet, and the draft it left stays so (an existing code is never
loaded again, so that an administrator's edits stay).
"""

from __future__ import annotations

import inspect
import logging

import anyio.to_thread

log = logging.getLogger(__name__)


async def start_plugins(pm, registry, settings) -> None:
    """Run the sequence above; a plugin whose start-up hook fails is marked failed at stage
    "startup" (its pages answer 503) and the others go on."""
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
