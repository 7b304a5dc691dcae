"""The department's own view of its sector reporting (issue 15, item 5): for a delegation that was
decided, the regimes issued under it (and the drafts the department prepares on its decision), each
with the numbers of its latest due period, and where to do the work — the core's own screens
(receiver's queue, review and return, completeness, consolidation, dashboard, figures explorer),
which check the person's rights again. Read-only: nothing here changes anything.

Who reads it: whoever may read the delegation (``delegation.can_read``): the operator; the
department's people holding ``chuyen_nganh.delegation.view`` there, also once the delegation has
ended, so the history stays readable after a revocation; and the administrators its decision names,
only while it stands, since their rights come from it (hook ``role_grants``). Everything comes
through ``core.api`` in a bounded number of queries, whatever the number of communes in the scope.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from core.api import (AuthorityRegime, NotFound, Unit, regime_period_counts, regimes_under_authority, today,
                      unit_chain)

from . import delegation as svc
from .models import Delegation

NAME = "chuyen_nganh"
EDIT_REGIMES = "core.regime.edit"


def reference(delegation: Delegation) -> str:
    """The name the core keeps on the regimes issued under ``delegation`` (``Regime.authority``)."""
    return f"{NAME}:{delegation.id}"


def open_sector(access, delegation_id) -> Delegation:
    """The delegation, if ``access`` may read it and it was ever decided (a delegation never in
    force has no regime); otherwise NotFound, its existence not told."""
    delegation = svc.get(access, delegation_id)
    if not delegation.decision_number:
        raise NotFound()
    return delegation


def sectors(access, day: dt.date | None = None) -> list[dict]:
    """The decided delegations ``access`` may read, newest change first, with their state."""
    day = day or today()
    rows = [d for d in svc.visible(access, day=day) if d.decision_number]
    units = {u.id: u for u in svc.units_named({d.department_unit_id for d in rows})}
    return [{"d": d, "department": units.get(d.department_unit_id), "status": svc.shown_status(d, day)}
            for d in rows]


@dataclass(frozen=True)
class SectorRegime:
    """A regime of the sector, with its latest due period and the numbers of it (None: no report
    opened yet, or a draft)."""

    regime: AuthorityRegime
    period: object = None  # core.api.regime_period_counts' period: start, end, key, label(lang)
    counts: object = None  # its counts: expected, on_time, late, not_submitted, overdue, accepted, returned


def standing(delegation: Delegation, day: dt.date) -> bool:
    """In force on ``day`` (the rule of ``delegation.in_force``, read from the row at hand)."""
    return (delegation.status == "approved" and delegation.valid_from is not None and delegation.valid_from <= day
            and (delegation.valid_to is None or delegation.valid_to >= day))


def sector_view(access, delegation_id, day: dt.date | None = None) -> dict:
    """What the sector's page shows (``open_sector`` decides who may read it)."""
    day = day or today()
    d = open_sector(access, delegation_id)
    department = Unit.get_or_none(Unit.id == d.department_unit_id)
    regimes = regimes_under_authority(reference(d), issuing_unit_id=d.department_unit_id,
                                      legal_number=d.decision_number)
    numbers = regime_period_counts([r.code for r in regimes if r.status != "draft"], today=day)
    rows = [SectorRegime(r, *numbers.get(r.code, (None, None))) for r in regimes]
    in_force = standing(d, day)
    return {"d": d, "department": department, "status": svc.shown_status(d, day), "in_force": in_force,
            "issued": [row for row in rows if row.regime.status != "draft"],
            "drafts": [row for row in rows if row.regime.status == "draft"],
            # A new regime is drafted on the core's screen, by whoever drafts regimes at the department.
            "can_draft": in_force and access.allowed(EDIT_REGIMES, unit_chain(d.department_unit_id))}
