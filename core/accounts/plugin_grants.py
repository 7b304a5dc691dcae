"""Roles a plugin grants a user because of its own records (hook ``role_grants``, issue 15).

The province delegates a sector's reporting to a department (Điều 6.3); the decision names the
department's administrators, who then hold the plugin's role at the department while the delegation
is in force. The core does not know delegations; the plugin answers ``role_grants(user_id, day)``
with ``RoleGrant`` values, and the core adds them to the request's ``Access`` beside the user's
own grants, so every check (guards, menus, the units a screen offers, two-factor login) sees them.

Fail closed, as ``core.regimes.authority.granted``:

- only plugins that are healthy and switched on at the user's own unit are asked (a plugin
  switched off there grants nothing to that user, as its permissions would grant nothing);
- only a role the answering plugin declares itself (``Domain.roles``) counts, with the permission
  codes of its ``RoleSpec`` (a plugin's role is not editable on the roles screen); anything else
  is ignored and recorded against the plugin;
- only at a unit where the plugin is switched on too;
- an implementation that raises grants nothing; its failed query never aborts the caller's
  transaction (a savepoint each, when there is one).
"""

from __future__ import annotations

import datetime as dt
from contextlib import nullcontext
from dataclasses import dataclass, field

from core import clock
from core.accounts.access import grants_of
from core.accounts.permissions import Access
from core.activation import chain_and_plugins
from core.db import db


@dataclass(frozen=True)
class RoleGrant:
    """The role ``role`` (``<plugin>.<role>``, declared by the plugin) held at ``unit_id`` and its
    subtree, on the day asked."""

    unit_id: int
    role: str


class PluginGrant(tuple):
    """One entry of ``Access.grants``, the (unit id, codes) pair every grant is, given by a plugin:
    it also names the plugin and the role, so two-factor login (``core.accounts.mfa``) and a page
    saying where a right comes from can tell it from a grant an administrator made."""

    def __new__(cls, unit_id: int, codes: frozenset, plugin: str, role: str):
        self = super().__new__(cls, (unit_id, codes))
        self.plugin, self.role = plugin, role
        return self


def request_access(user, chain, enabled, pm, registry, settings):
    """The request's ``Access`` for ``user`` (or None) whose unit has the ancestor ``chain`` and the
    plugins ``enabled``: the user's own grants and the roles the plugins give (``granted``)."""
    grants = ()
    if user is not None:
        grants = grants_of(user.id) + granted(user, pm, registry, settings, enabled, chain)
    return Access(actor=user, registry=registry, enabled=enabled, grants=grants, chain=chain)


@dataclass(frozen=True)
class PluginRights:
    """The app's plugin manager, registry and settings, to ask the plugins about any account, not
    only the request's own: an administrator's screens must see what a plugin gives the account
    they act on (``core.accounts.admin.control_refusal``). The web layer makes one per request;
    the answer for an account is kept for that request."""

    pm: object
    registry: object
    settings: object
    _answers: dict = field(default_factory=dict, compare=False, repr=False)

    def of(self, user) -> tuple[PluginGrant, ...]:
        """The roles the plugins give ``user`` today — for a disabled account, what it would hold
        once enabled again (enabling it is taking control of it too)."""
        if user.id not in self._answers:
            chain, enabled = chain_and_plugins(user.unit_id, self.registry, self.settings, set(self.pm.healthy))
            self._answers[user.id] = granted(user, self.pm, self.registry, self.settings, enabled, chain,
                                             even_inactive=True)
        return self._answers[user.id]


def from_plugins(grants) -> list[PluginGrant]:
    """The entries of ``grants`` (an ``Access.grants``) that a plugin gave."""
    return [g for g in grants if isinstance(g, PluginGrant)]


def granted(user, pm, registry, settings, enabled, chain, day: dt.date | None = None, *,
            even_inactive: bool = False) -> tuple[PluginGrant, ...]:
    """The roles the plugins grant ``user`` on ``day`` (today by default), as ``Access.grants``
    entries. ``enabled``: the plugins switched on at the user's unit (``core.activation``), whose
    ancestor chain is ``chain``. No query at all when none of them implements the hook. A disabled
    account holds nothing, unless ``even_inactive`` asks what it would hold if enabled."""
    if user is None or pm is None or not (even_inactive or getattr(user, "is_active", False)):
        return ()
    impls = [impl for impl in reversed(pm.hook.role_grants.get_hookimpls()) if impl.plugin_name in enabled]
    if not impls:
        return ()
    day = day or clock.today()
    healthy = set(pm.healthy)
    switched_on: dict[int, frozenset[str]] = {chain[0]: frozenset(enabled)} if chain else {}
    found: list[PluginGrant] = []
    for impl in impls:
        plugin = impl.plugin_name
        try:
            # Inside a transaction, a savepoint: a plugin's failing query must not abort the caller's
            # (on PostgreSQL the whole transaction would be lost). Outside one (a request being set
            # up) each statement stands alone, and a transaction would only add round trips (and on
            # SQLite take the write lock for a read).
            with db.atomic() if db.in_transaction() else nullcontext():
                answer = impl.function(*[{"user_id": user.id, "day": day}[a] for a in impl.argnames])
        except Exception as exc:  # noqa: BLE001 — fail closed: this plugin grants nothing
            pm.record_error(plugin, "contribution", exc)
            continue
        roles = {r.code: r for r in registry.domains[plugin].roles} if plugin in registry.domains else {}
        for grant in _answers(answer):
            spec = roles.get(getattr(grant, "role", None)) if isinstance(grant, RoleGrant) else None
            if spec is None or not _unit_id(grant.unit_id):
                pm.record_error(plugin, "contribution", ValueError(
                    f"role_grants answered {grant!r}: not a RoleGrant of a role {plugin} declares"))
                continue
            if grant.unit_id not in switched_on:
                switched_on[grant.unit_id] = _enabled_at(grant.unit_id, registry, settings, healthy)
            if plugin in switched_on[grant.unit_id]:
                found.append(PluginGrant(grant.unit_id, frozenset(spec.permissions), plugin, spec.code))
    return tuple(found)


def _answers(answer) -> list:
    if answer is None:
        return []
    return list(answer) if isinstance(answer, (list, tuple, set, frozenset)) else [answer]


def _unit_id(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _enabled_at(unit_id: int, registry, settings, healthy) -> frozenset[str]:
    """The plugins switched on at a unit other than the user's own (none for a unit that does not
    exist)."""
    chain, enabled = chain_and_plugins(unit_id, registry, settings, healthy)
    return enabled if chain else frozenset()
