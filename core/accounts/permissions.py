"""Deciding whether an actor holds a permission at a unit.

A grant gives a user a role (a named set of permission codes) at a unit, and
applies to that unit's whole subtree. A permission is held at unit U when some
grant of the actor sits at U or at one of U's ancestors and its role carries
the code. System administrators (``User.is_admin``) hold every permission; a
permission of scope "system" only they hold, whatever a role says.
Whatever the grants say, a permission that nobody declared, or that belongs to
a plugin disabled for the actor's unit (or failed), grants nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

Grants = tuple[tuple[int, frozenset[str]], ...]  # (unit id, codes) for each grant


def allowed(actor, code: str, registry, enabled: frozenset[str], grants: Grants = (),
            chain: tuple[int, ...] | list[int] = ()) -> bool:
    """``chain``: the target unit and its ancestors (``core.units.tree.ancestor_ids``)."""
    if actor is None or not getattr(actor, "is_active", False):
        return False
    permission = registry.permissions.get(code)
    if permission is None:
        return False  # deny what nobody declared, never guess
    if permission.plugin != "core" and permission.plugin not in enabled:
        return False
    if actor.is_admin:
        return True
    if permission.scope == "system":
        return False
    if permission.scope == "global":
        return any(code in codes for _, codes in grants)
    above = set(chain)
    return any(unit_id in above and code in codes for unit_id, codes in grants)


@dataclass(frozen=True)
class Access:
    """One request's view of what its actor may do; built once per request."""

    actor: object | None
    registry: object
    enabled: frozenset[str] = frozenset()
    grants: Grants = ()
    chain: tuple[int, ...] = ()  # the actor's own unit and its ancestors
    _cache: dict = field(default_factory=dict, compare=False, repr=False)
    _chains: dict = field(default_factory=dict, compare=False, repr=False)  # unit id → its ancestor chain

    def __post_init__(self):
        if self.chain:
            self._chains[self.chain[0]] = tuple(self.chain)

    def ancestors(self, unit_id: int) -> tuple[int, ...]:
        """The unit and its ancestors, nearest first (``core.units.tree.ancestor_ids``), read once per
        Access: one request checks rights at the same unit several times (an autosave: reading the
        report, editing it, the answer), and the actor's own unit is known already."""
        chain = self._chains.get(unit_id)
        if chain is None:
            # An ancestor of a unit read already: its chain is that one's tail (a commune's reporter
            # asks for the district that receives its report).
            known = next((c for c in self._chains.values() if unit_id in c), None)
            if known is not None:
                chain = known[known.index(unit_id):]
            else:
                from core.units.tree import ancestor_ids

                chain = tuple(ancestor_ids(unit_id))
            self._chains[unit_id] = chain
        return chain

    def allowed(self, code: str, chain: tuple[int, ...] | list[int] | None = None) -> bool:
        """At the actor's own unit, or at the unit whose ancestor chain is given."""
        key = (code, tuple(chain) if chain is not None else None)
        if key not in self._cache:
            self._cache[key] = allowed(self.actor, code, self.registry, self.enabled, self.grants,
                                       self.chain if chain is None else chain)
        return self._cache[key]

    def allowed_at(self, code: str, unit_id: int) -> bool:
        """``allowed`` at ``unit_id``. The unit's chain is read only when some grant of the actor
        carries ``code`` (or the actor is an administrator): a commune's reporter asked whether they
        receive their own report reads no chain of the receiving department."""
        actor = self.actor
        if not (actor is not None and actor.is_admin) and not any(code in codes for _, codes in self.grants):
            return False  # what ``allowed`` answers whatever the chain
        return self.allowed(code, self.ancestors(unit_id))

    def roots(self, code: str) -> list[int] | None:
        """Units at the top of the subtrees where the actor holds ``code``; None means everywhere."""
        if self.actor is not None and self.actor.is_admin and self.allowed(code):
            return None
        return sorted({unit_id for unit_id, codes in self.grants if code in codes})

    def codes_at(self, chain) -> set[str]:
        """Every permission code the actor holds at the unit with this ancestor chain."""
        if self.actor is not None and self.actor.is_admin:
            return {c for c in self.registry.permissions if self.allowed(c, chain)}
        above = set(chain)
        held = {c for unit_id, codes in self.grants if unit_id in above for c in codes}
        return {c for c in held if self.allowed(c, chain)}


def core_access(user) -> Access:
    """A user's rights over the core's permissions, outside a request: for the demo seed, the
    bench and tests, which act as a person without going through the web stack (plugins'
    permissions are not known here, so a plugin's right is never held this way)."""
    from types import SimpleNamespace

    from core.accounts.access import grants_of
    from core.registry import CORE_DOMAIN
    from core.units.tree import ancestor_ids

    registry = SimpleNamespace(permissions={p.code: p for p in CORE_DOMAIN.permissions})
    return Access(actor=user, registry=registry, grants=grants_of(user.id), chain=tuple(ancestor_ids(user.unit_id)))
