"""A regime as a ``RegimeSpec``: the inverse of ``draft_from_spec``, for plugins that send a regime
to another system (a QCVN 125 regime packet) or offer it elsewhere.

Units and groups are named by code, as a plugin names them when it ships a regime, so the spec
means the same thing in another instance that has those codes. The form is the regime's latest
published version (``{"code", "name", "definition"}``), or None when the regime has no form or
its form was never published. Checks nothing about the caller: a view shows it only to people who
may read the regime.
"""

from __future__ import annotations

import json

from core.models import Unit
from core.regimes.forms import Form, latest_published
from core.regimes.regimes import GROUP_OWNER_RULE, UNIT_RULE, Regime, RegimeSpec, UnitGroup


def _code(unit_id: int | None) -> str | None:
    if not unit_id:
        return None
    unit = Unit.get_or_none(Unit.id == unit_id)
    return unit.code if unit else None


def _group_code(group_id: int | None) -> str | None:
    if not group_id:
        return None
    group = UnitGroup.get_or_none(UnitGroup.id == group_id)
    return group.code if group else None


def regime_spec(regime_id: int) -> RegimeSpec | None:
    """The regime version ``regime_id`` as a spec, or None when there is no such regime."""
    regime = Regime.get_or_none(Regime.id == regime_id)
    if regime is None:
        return None
    selector = regime.selector
    rule = regime.receiving_rule or UNIT_RULE
    unit_codes = sorted(code for code in (_code(u) for u in selector.get("unit_ids") or ()) if code)
    groups = [code for code in (_group_code(g) for g in selector.get("group_ids") or ()) if code]
    form = None
    if regime.form_id:
        version = latest_published(regime.form_id)
        if version is not None:
            owner = Form.get_by_id(regime.form_id)
            form = {"code": owner.code, "name": owner.name, "definition": json.loads(version.definition or "{}")}
    return RegimeSpec(
        code=regime.code, name=regime.name, regime_type=regime.regime_type, frequency=regime.frequency,
        content=regime.content or "", content_type=regime.content_type,
        reporting_kinds=tuple(selector.get("kinds") or ()),
        deadline_rules=tuple({"level": r.get("level", ""), "from_kind": r.get("from_kind", "") or "",
                              "rule": r.get("rule", "")} for r in regime.rules),
        sending_methods=tuple(regime.methods), cutoff_rule=regime.cutoff_rule, outline=regime.outline or "",
        data_forms=regime.data_forms or "", guidance=regime.guidance or "", legal_number=regime.legal_number or "",
        legal_date=regime.legal_date, legal_issuer=regime.legal_issuer or "",
        issuing_unit_code=_code(regime.issuing_unit_id),
        receiving_rule=rule,
        receiving_unit_code=_code(regime.receiving_unit_id) if rule == UNIT_RULE else None,
        receiving_group=_group_code(regime.receiving_group_id) if rule == GROUP_OWNER_RULE else None,
        reporting_group=groups[0] if groups else None, reporting_codes=tuple(unit_codes),
        preparing_unit_code=_code(regime.preparing_unit_id), form=form)


def regime_by_code(code: str) -> int | None:
    """The id of the newest version of the regime ``code`` (any status), or None."""
    row = Regime.select(Regime.id).where(Regime.code == code).order_by(Regime.version.desc()).first()
    return row.id if row else None
