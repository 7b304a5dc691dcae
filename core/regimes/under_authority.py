"""The regimes a plugin's issuing authority stands behind, read-only (``core.api.regimes_under_authority``).

A department's sector page (plugins/chuyen_nganh) lists the regimes issued under its delegation —
those that remember the authority (``Regime.authority`` = "plugin:key", core.regimes.authority) —
and the drafts it prepares on the same decision (a draft remembers no authority until it is
issued: it is found by its issuing unit and its legal basis). One row per regime code, with what
its screens need: the version to open, the indicators its form names (the figures explorer's
filter). Two queries whatever the number of regimes.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from core.regimes.forms import PUBLISHED, FormVersion
from core.regimes.regimes import DRAFT, ISSUED, RETIRED, SUSPENDED, Regime

# Which version of a code the row opens: the one in force before a suspended one, then the newest.
_RANK = {ISSUED: 0, SUSPENDED: 1, RETIRED: 2}


@dataclass(frozen=True)
class AuthorityRegime:
    """One regime code under an authority: ``id`` and ``status`` of the version in force (issued or
    suspended; else the newest retired one; a draft never issued: the draft), ``draft_id`` of a
    draft being prepared (a new version, or the first one), ``indicator_codes`` those the form
    names (its newest published version)."""

    id: int
    code: str
    version: int
    name: str
    regime_type: str
    frequency: str | None
    status: str
    valid_from: dt.date | None
    receiving_unit_id: int | None
    draft_id: int | None
    indicator_codes: tuple[str, ...]


def regimes_under_authority(reference: str, *, issuing_unit_id: int | None = None,
                            legal_number: str = "") -> list[AuthorityRegime]:
    """The regimes issued under ``reference`` ("plugin:key"), with the drafts ``issuing_unit_id``
    prepares on the decision ``legal_number`` (spaces ignored), one per code, by name."""
    condition = Regime.authority == reference
    number = " ".join((legal_number or "").split())
    if issuing_unit_id is not None and number:
        condition |= ((Regime.status == DRAFT) & (Regime.issuing_unit == issuing_unit_id)
                      & (Regime.legal_number == number))
    by_code: dict[str, list[Regime]] = {}
    for regime in Regime.select().where(condition).order_by(Regime.code, Regime.version.desc()):
        by_code.setdefault(regime.code, []).append(regime)
    forms = _form_indicators({r.form_id for versions in by_code.values() for r in versions if r.form_id})
    rows = []
    for code, versions in by_code.items():
        kept = [r for r in versions if r.status != DRAFT]
        shown = min(kept, key=lambda r: (_RANK.get(r.status, 3), -r.version)) if kept else versions[0]
        draft = next((r for r in versions if r.status == DRAFT), None)
        rows.append(AuthorityRegime(shown.id, code, shown.version, shown.name, shown.regime_type, shown.frequency,
                                    shown.status, shown.valid_from, shown.receiving_unit_id,
                                    draft.id if draft is not None and draft is not shown else None,
                                    forms.get(shown.form_id, ())))
    return sorted(rows, key=lambda r: (r.name.casefold(), r.code))


def _form_indicators(form_ids: set[int]) -> dict[int, tuple[str, ...]]:
    """form id → the indicator codes its newest published version's rows name, in row order."""
    if not form_ids:
        return {}
    found: dict[int, tuple[str, ...]] = {}
    query = (FormVersion.select(FormVersion.form, FormVersion.definition)
             .where(FormVersion.form.in_(sorted(form_ids)) & (FormVersion.status == PUBLISHED))
             .order_by(FormVersion.form, FormVersion.version.desc()))
    for form_id, definition in query.tuples():
        if form_id in found:
            continue
        try:
            rows = json.loads(definition or "{}").get("rows") or []
        except (ValueError, AttributeError):
            rows = []
        codes = [r.get("indicator") for r in rows if isinstance(r, dict) and r.get("indicator")]
        found[form_id] = tuple(dict.fromkeys(codes))
    return found
