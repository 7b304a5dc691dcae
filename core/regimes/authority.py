"""Issuing authority a plugin grants (the seam of issue 15, "delegated issuer").

By the core's rules (``core.regimes.regimes.policy_errors`` and the ``[regimes]`` settings) only a
province issues periodic regimes, and every regime reports from the issuing unit's own subtree. The
provincial regulation (Điều 6.3) lets the province delegate a sector's reporting to a department:
the department then issues periodic regimes to units outside its subtree (the communes, the
sector's schools and health stations), within the delegation's scope, on the delegation's decision.
The core does not know delegations; a plugin does (``plugins/chuyen_nganh``), and answers the hook
``issuing_authorities(unit_id, day)`` with ``IssuingAuthority`` values.

An authority lifts the issuer and scope rules for a regime only when all of these hold:

- it is granted to the regime's issuing unit, by a plugin that is healthy and switched on there;
- the regime's legal basis (its decision number) is the authority's own;
- every reporting unit the regime chooses (listed, in its groups, or of its kinds) lies in the
  authority's units — kinds are then read within those units, not within the issuer's subtree.

An issued regime remembers the authority it relied on (``Regime.authority``, "plugin:key"). From
then on its reporting units are asked of that authority on each day a period opens: an authority
that has ended (revoked, expired, its plugin switched off at the issuing unit) opens nothing, and
the reports already opened stay as they are.

The administrator's per-unit switch of the authority's plugin also decides which reporting units
report (``core.reporting.opening.reporting_units``): a period opens no report for a unit where that
plugin is switched off (its own setting, else its nearest ancestor's, else the plugin's default),
whatever the authority's units say; the reports such a unit already has stay, readable. Switching
the plugin back on there opens its report from the next period that opens (or the one in progress,
when the hourly opening runs again).

Fail closed: a plugin that raises, or answers something that is not an ``IssuingAuthority`` for
the unit asked, grants nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

log = logging.getLogger("baocao.regimes")


@dataclass(frozen=True)
class IssuingAuthority:
    """A right to issue regimes beyond the core's rules: ``issuing_unit_id`` may issue regimes whose
    reporting units lie in ``unit_ids``, on the decision ``legal_number``. ``key`` is the plugin's
    own name for the grant (a delegation's id), kept on the regimes issued under it; ``label`` says
    it in words on the regime's page."""

    key: str
    issuing_unit_id: int
    unit_ids: frozenset
    legal_number: str
    label: str = ""

    def reference(self, plugin: str) -> str:
        return f"{plugin}:{self.key}"


def granted(unit_id: int | None, day: dt.date) -> list[tuple[str, IssuingAuthority]]:
    """(plugin, authority) pairs in force for ``unit_id`` on ``day``: asked of the plugins named for
    this request, command or task (``core.reporting.events.current``), those switched on at the
    unit. Without plugins (the core alone): none."""
    from core.activation import enabled_units
    from core.reporting import events

    context = events.current.get()
    if unit_id is None or context is None:
        return []
    from core.db import db

    pm, healthy = context.pm, set(context.pm.healthy)
    found = []
    for impl in reversed(pm.hook.issuing_authorities.get_hookimpls()):
        plugin = impl.plugin_name
        if plugin not in healthy or unit_id not in enabled_units(plugin, [unit_id], context.registry,
                                                                 context.settings, healthy):
            continue
        try:
            # A savepoint each: a plugin's failing query must not abort the caller's transaction
            # (a regime being saved or issued; on PostgreSQL the whole transaction would be lost).
            with db.atomic():
                answer = impl.function(*[{"unit_id": unit_id, "day": day}[a] for a in impl.argnames])
        except Exception as exc:  # noqa: BLE001 — fail closed: this plugin grants nothing
            pm.record_error(plugin, "contribution", exc)
            continue
        for authority in answer if isinstance(answer, (list, tuple)) else ():
            if isinstance(authority, IssuingAuthority) and authority.issuing_unit_id == unit_id and authority.key:
                found.append((plugin, authority))
            else:
                log.warning("plugin %s answered issuing_authorities with %r: ignored", plugin, authority)
    return found


def covering(unit_id: int | None, legal_number: str, chosen, day: dt.date) -> tuple[str, IssuingAuthority] | None:
    """The authority of ``unit_id`` on ``day`` whose decision is ``legal_number`` and whose units
    hold every unit ``chosen(authority_units)`` gives (a function: kinds are read within the
    authority's units); None when there is none, or when the choice is empty."""
    number = " ".join((legal_number or "").split())
    if not number:
        return None
    for plugin, authority in granted(unit_id, day):
        if " ".join(authority.legal_number.split()) != number:
            continue
        units = chosen(authority.unit_ids)
        if units and set(units) <= authority.unit_ids:
            return plugin, authority
    return None


def find(reference: str, unit_id: int | None, day: dt.date) -> IssuingAuthority | None:
    """The authority a regime relied on ("plugin:key"), if it is still in force on ``day``."""
    plugin, _, key = (reference or "").partition(":")
    return next((a for p, a in granted(unit_id, day) if p == plugin and a.key == key), None)
