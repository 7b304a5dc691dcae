"""Deciding whether an actor holds a permission at a unit.

Until roles and grants arrive (the access-control issue), system administrators
hold every registered permission and other users hold none; what is already
final is the rule that a permission of a plugin disabled for the unit, failed,
or never registered grants nothing.
"""

from __future__ import annotations


def allowed(actor, code: str, registry, enabled: frozenset[str]) -> bool:
    if actor is None or not getattr(actor, "is_active", False):
        return False
    permission = registry.permissions.get(code)
    if permission is None:
        return False  # deny what nobody declared, never guess
    if permission.plugin != "core" and permission.plugin not in enabled:
        return False
    return bool(actor.is_admin)
