"""Plugins switched on or off per unit, inherited down the unit tree.

Resolution for a unit: its own setting, else the nearest ancestor's, else the
plugin's default (``enabled_by_default`` on its domain, overridable in
``[plugins.<name>] enabled_by_default``). A plugin that failed is never enabled.
"""

from __future__ import annotations

from core import audit
from core.db import Prepared, transaction
from core.errors import NotFound, ValidationError
from core.models import PluginActivation, Unit, User, utcnow
from core.units.tree import ancestor_ids, is_valid, subtree_ids


def default_enabled(registry, settings, plugin: str) -> bool:
    configured = settings.plugin(plugin).get("enabled_by_default")
    if isinstance(configured, bool):
        return configured
    return registry.domains[plugin].enabled_by_default


_ACTIVATIONS = Prepared(lambda p: PluginActivation.select(PluginActivation.unit, PluginActivation.plugin,
                                                          PluginActivation.enabled)
                        .where(PluginActivation.unit.in_(p.chain)).tuples())  # every request: compiled once


def enabled_plugins(unit_id: int | None, registry, settings, healthy, chain=None) -> frozenset[str]:
    """Names of the plugins enabled for ``unit_id`` (one query, whatever the tree's depth).
    ``chain``: the unit's ancestor ids when the caller has them already."""
    if unit_id is None:
        return _resolve(registry, settings, healthy, {}, ())
    if chain is None:
        return chain_and_plugins(unit_id, registry, settings, healthy)[1]
    return _resolve(registry, settings, healthy, chain, _ACTIVATIONS.run(chain=tuple(chain)))


def chain_and_plugins(unit_id: int, registry, settings, healthy) -> tuple[tuple[int, ...], frozenset[str]]:
    """The unit's ancestor ids (nearest first) and the plugins enabled for it, in one query: what
    every request reads about its person's unit (web.middleware)."""
    database = Unit._meta.database
    rows = database.execute_sql(
        """WITH RECURSIVE up(id, parent_id, depth) AS (
               SELECT id, parent_id, 0 FROM core_unit WHERE id = %(p)s
               UNION ALL
               SELECT u.id, u.parent_id, up.depth + 1 FROM core_unit u JOIN up ON u.id = up.parent_id
           ) SELECT up.id, a.plugin, a.enabled FROM up LEFT JOIN core_plugin_activation a ON a.unit_id = up.id
           ORDER BY up.depth""".replace("%(p)s", database.param), (unit_id,)).fetchall()  # nosec B608 — a placeholder
    chain = tuple(dict.fromkeys(row[0] for row in rows))  # in depth order, each unit once
    activations = [(unit, plugin, bool(enabled)) for unit, plugin, enabled in rows if plugin is not None]
    return chain, _resolve(registry, settings, healthy, chain, activations)


def _resolve(registry, settings, healthy, chain, activations) -> frozenset[str]:
    """Each plugin's nearest setting along ``chain`` (rows of unit, plugin, enabled), else its
    default; a plugin that failed is never enabled."""
    names = [n for n in registry.plugin_names() if n in healthy]
    rank = {uid: i for i, uid in enumerate(chain)}
    nearest: dict[str, tuple[int, bool]] = {}
    for row_unit, plugin, enabled in activations:
        depth = rank[row_unit]
        if plugin not in nearest or depth < nearest[plugin][0]:
            nearest[plugin] = (depth, enabled)
    return frozenset(n for n in names
                     if (nearest[n][1] if n in nearest else default_enabled(registry, settings, n)))


def explain(unit_id: int, plugin: str, registry, settings) -> tuple[bool, Unit | None]:
    """(enabled, the unit whose setting decides, or None for the default)."""
    for uid in ancestor_ids(unit_id):
        row = PluginActivation.get_or_none(unit=uid, plugin=plugin)
        if row is not None:
            return row.enabled, Unit.get_by_id(uid)
    return default_enabled(registry, settings, plugin), None


def set_activation(unit_id: int, plugin: str, state: str, actor: User, registry, *,
                   reset_subtree: bool = False) -> None:
    """Switch ``plugin`` for a unit: ``state`` is "on", "off" or "inherit".

    With ``reset_subtree`` the settings of units below are removed, so the
    whole subtree follows this unit.
    """
    if plugin not in registry.plugin_names():
        raise NotFound("error.not_found")
    if state not in ("on", "off", "inherit"):
        raise ValidationError({"state": "form.error.choice"})
    target = Unit.get_or_none(Unit.id == unit_id)
    if target is None or not is_valid(target):
        # A former unit (ended before today) takes no settings: it has no reports to make.
        raise NotFound("error.not_found")
    with transaction():
        if reset_subtree:
            below = [u for u in subtree_ids(unit_id) if u != unit_id]
            if below:
                PluginActivation.delete().where((PluginActivation.plugin == plugin)
                                                & PluginActivation.unit.in_(below)).execute()
        PluginActivation.delete().where((PluginActivation.plugin == plugin)
                                        & (PluginActivation.unit == unit_id)).execute()
        if state != "inherit":
            PluginActivation.create(unit=unit_id, plugin=plugin, enabled=(state == "on"),
                                    updated_by=actor, updated_at=utcnow())
        # Recorded in the same transaction: the switch and its record commit together.
        audit.record("plugin.switch", actor=actor, unit=unit_id, object_type="plugin", object_id=plugin,
                     details={"state": state, "reset_subtree": reset_subtree})


def overrides(plugin: str) -> dict[int, bool]:
    """unit id → explicit setting, for the activation screen."""
    return {r.unit_id: r.enabled for r in PluginActivation.select().where(PluginActivation.plugin == plugin)}


def enabled_units(plugin: str, unit_ids, registry=None, settings=None, healthy=None) -> set[int]:
    """Which of ``unit_ids`` have ``plugin`` switched on, by the rule of ``enabled_plugins`` (own
    setting, else the nearest ancestor's, else the default), for many units in two queries: what
    opening a plugin's regime asks for every reporting unit. Without ``registry`` (the core used
    with no plugin manager) the default is "on" and only the explicit settings count; with it, a
    plugin that is not installed or failed (not in ``healthy``) is on nowhere."""
    ids = list(unit_ids)
    if registry is not None:
        if plugin not in registry.plugin_names() or (healthy is not None and plugin not in healthy):
            return set()
        default = default_enabled(registry, settings, plugin)
    else:
        default = True
    settings_by_unit = overrides(plugin)
    if not settings_by_unit:
        return set(ids) if default else set()
    parents = dict(Unit.select(Unit.id, Unit.parent).tuples())
    out = set()
    for unit_id in ids:
        current, state, seen = unit_id, default, set()
        while current is not None and current not in seen:  # a cycle in the tree stops the walk
            if current in settings_by_unit:
                state = settings_by_unit[current]
                break
            seen.add(current)
            current = parents.get(current)
        if state:
            out.add(unit_id)
    return out
