"""Proposals: what a remote sent down that would change the province's data, shown to the
administrator (what is new, what changed) and applied in one transaction, or rejected with a reason.

- A **regime** (periodic, thematic, or an ad-hoc request): it becomes a draft regime of the unit it
  was addressed to — that unit issues it and receives its reports (the national system's own units
  are not in our tree), with its legal basis and its form as sent; the administrator completes and
  issues it on the regime screen. Its reports go back up through the same connector (a route is
  added). A code the province already has is refused: the regime screen makes its next version.
- An **indicator catalogue**: the official 7-column table the catalogue's own import reads, so the
  preview is the import's dry run (new, changed old → new, unchanged, every row refused with its
  reason) and applying is that import, all or nothing.
- **Indicator groups**: created or renamed.
- A **period catalogue**: compared with the windows Decree 09/2019 Art. 12 gives (which are law, and
  which the province computes itself); applying records that it agrees, and a catalogue that
  differs is refused with each difference.
Each application writes the audit trail; a refusal leaves nothing applied.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

from core.api import (BaocaoError, Forbidden, NotFound, ValidationError, RegimeSpec, Unit, apply_indicator_plan, audit_record,
                      create_regime_draft, current_indicator, describe_indicator_plan, indicator_groups_of, parse_indicator_table,
                      period_windows, regime_by_code, regime_spec, save_indicator_group, transaction, utcnow)

from .models import Exchange, Proposal, Route
from .rights import APPLY

MAX_REASON = 1000


@dataclasses.dataclass
class Preview:
    proposal: Proposal
    exchange: Exchange
    body: dict
    kind: str
    lines: list  # what is new / changed, per kind
    errors: list  # (place, message key, params): why it cannot be applied as it is
    spec: RegimeSpec | None = None
    plan: object = None  # an indicator catalogue's import plan: the dry run shown is the one applied


def _body(exchange: Exchange) -> tuple[str, dict]:
    from . import packets

    checked = packets.read(exchange.document.encode("utf-8"))
    return checked.packet_type, checked.body or {}


def get(proposal_id: int) -> tuple[Proposal, Exchange]:
    proposal = Proposal.get_or_none(Proposal.id == proposal_id)
    if proposal is None:
        raise NotFound()
    return proposal, Exchange.get_by_id(proposal.exchange_id)


def listing(state: str = "") -> list[tuple[Proposal, Exchange]]:
    query = Proposal.select().order_by(Proposal.created_at.desc(), Proposal.id.desc())
    if state:
        query = query.where(Proposal.state == state)
    rows = list(query.limit(200))
    exchanges = {e.id: e for e in Exchange.select().where(Exchange.id.in_([p.exchange_id for p in rows] or [0]))}
    return [(p, exchanges.get(p.exchange_id)) for p in rows]


def _addressee(exchange: Exchange) -> Unit:
    unit = Unit.get_or_none(Unit.id == exchange.unit_id) if exchange.unit_id else None
    if unit is None:
        raise BaocaoError("national_link.proposal.error.no_addressee")
    return unit


def _regime_spec(body: dict, unit: Unit) -> RegimeSpec:
    """The regime as the province makes it its own: issued and received by the addressed unit,
    reported by the kinds of unit it names (units and groups named by codes of another system are
    not ours: dropped)."""
    from . import packets

    spec = packets.regime_spec_of(body)
    return dataclasses.replace(spec, issuing_unit_code=unit.code, issuing_unit_kind=unit.kind, receiving_rule="unit",
                               receiving_unit_code=unit.code, receiving_unit_kind=None, receiving_group=None,
                               preparing_unit_code=None, reporting_group=None, reporting_codes=())


REGIME_FIELDS = ("name", "regime_type", "frequency", "content", "legal_number", "legal_issuer", "reporting_kinds",
                 "deadline_rules", "outline", "guidance")


def _regime_preview(body: dict, unit: Unit) -> tuple[RegimeSpec, list, list]:
    """Lines (field, old, new) — old None for a new regime — and what stops applying it."""
    spec = _regime_spec(body, unit)
    errors = []
    existing_id = regime_by_code(spec.code)
    existing = regime_spec(existing_id) if existing_id else None
    lines = [(name, getattr(existing, name) if existing else None, getattr(spec, name)) for name in REGIME_FIELDS
             if existing is None or getattr(existing, name) != getattr(spec, name)]
    if existing is not None:
        errors.append(("code", "national_link.proposal.error.regime_exists", {"code": spec.code, "id": existing_id}))
    rows = ((spec.form or {}).get("definition") or {}).get("rows") or []
    codes = sorted({r.get("indicator") for r in rows if isinstance(r, dict) and r.get("indicator")})
    unknown = [c for c in codes if current_indicator(c) is None]
    if unknown:
        errors.append(("form", "national_link.proposal.error.unknown_indicators",
                       {"codes": ", ".join(unknown[:20]) + (" …" if len(unknown) > 20 else "")}))
    return spec, lines, errors


def _catalogue_plan(body: dict):
    from . import packets

    # The packet states each indicator's legal act (an empty one is none, not QĐ 05/2023), and what it
    # changes is in force from the day it is applied.
    return parse_indicator_table(packets.indicator_table_of(body), "national-catalogue.csv", local_codes=True,
                                 source_act="", valid_from=None)


def _groups(body: dict) -> list[dict]:
    return [g for g in body.get("groups") or () if isinstance(g, dict) and g.get("code")]


def _period_differences(body: dict) -> list[tuple]:
    """(frequency, year, index, theirs, ours) for every period whose window differs from ours."""
    from . import packets

    differences = []
    entries = packets.period_catalogue_of(body)
    ours: dict = {}
    for entry in entries:
        key = (entry["frequency"], entry["year"])
        if key not in ours:
            try:
                ours[key] = {w.index: w for w in period_windows(*key)}
            except BaocaoError:
                ours[key] = {}
        mine = ours[key].get(entry["index"])
        theirs = (entry["start"], entry["end"])
        if mine is None or (mine.start, mine.end) != theirs:
            differences.append((entry["frequency"], entry["year"], entry["index"], theirs,
                                (mine.start, mine.end) if mine else None))
    return differences


def preview(proposal_id: int) -> Preview:
    proposal, exchange = get(proposal_id)
    kind, body = _body(exchange)
    lines, errors, spec, plan = [], [], None, None
    if kind == "regime":
        spec, lines, errors = _regime_preview(body, _addressee(exchange))
    elif kind == "indicator_catalogue":
        plan = _catalogue_plan(body)
        lines = describe_indicator_plan(plan)
        errors = [(f"row {row}", key, {**params, "field": name}) for row, name, key, params in plan.errors]
    elif kind == "indicator_groups":
        known = {g.code: g for g in indicator_groups_of("")}
        for group in _groups(body):
            old = known.get(group["code"])
            change = "new" if old is None else ("unchanged" if old.name == group.get("name") else "changed")
            lines.append((group["code"], old.name if old else None, group.get("name", ""), change))
    elif kind == "period_catalogue":
        lines = _period_differences(body)
        errors = [("periods", "national_link.proposal.error.periods_differ", {"count": len(lines)})] if lines else []
    return Preview(proposal, exchange, body, kind, lines, errors, spec, plan if kind == "indicator_catalogue" else None)


def _check(access, proposal: Proposal) -> None:
    if not access.allowed(APPLY):
        raise Forbidden()
    if proposal.state != "open":
        raise BaocaoError("national_link.proposal.error.decided", state=proposal.state)


def _decide(proposal: Proposal, state: str, actor_id, reason: str = "", result: dict | None = None) -> None:
    changed = (Proposal.update(state=state, decided_by=actor_id, decided_at=utcnow(), reason=reason,
                               result=json.dumps(result or {}, ensure_ascii=False, default=str))
               .where((Proposal.id == proposal.id) & (Proposal.state == "open")).execute())
    if changed != 1:
        raise BaocaoError("national_link.proposal.error.decided", state="?")
    Exchange.update(state="applied" if state == "applied" else "rejected", updated_at=utcnow())\
        .where(Exchange.id == proposal.exchange_id).execute()


def apply(access, proposal_id: int) -> dict:
    """Apply the proposal in one transaction; returns what was made. A refusal changes nothing."""
    with transaction():
        seen = preview(proposal_id)
        proposal = seen.proposal
        _check(access, proposal)
        if seen.errors:
            place, key, params = seen.errors[0]
            raise BaocaoError(key, **params)
        result: dict = {}
        if seen.kind == "regime":
            try:
                result["regime_id"] = create_regime_draft(access, seen.spec)
            except ValidationError as exc:
                # Said by its field's own message (a form code the province uses already, say).
                field, key = next(iter(exc.errors.items()))
                raise BaocaoError("national_link.proposal.error.regime_refused", field=field,
                                  reason=key, **exc.params) from None
            Route.insert(connector=proposal.connector, regime_code=seen.spec.code,
                         added_by=access.actor.id).on_conflict_ignore().execute()
        elif seen.kind == "indicator_catalogue":
            result.update(apply_indicator_plan(seen.plan, actor=access.actor))
        elif seen.kind == "indicator_groups":
            for group in _groups(seen.body):
                save_indicator_group(group["code"], group.get("name", ""), group.get("level"))
            result["groups"] = len(_groups(seen.body))
        elif seen.kind == "period_catalogue":
            result["periods"] = "agree"
        _decide(proposal, "applied", access.actor.id, result=result)
        audit_record("national_link.proposal.applied", actor=access.actor, unit=seen.exchange.unit_id,
                     object_type="national_link_proposal", object_id=proposal.id,
                     details={"packet": seen.kind, "message_id": seen.exchange.message_id, **result})
    return result


def reject(access, proposal_id: int, reason: str) -> None:
    reason = (reason or "").strip()
    if not reason:
        raise BaocaoError("national_link.proposal.error.reason_required")
    if len(reason) > MAX_REASON:
        raise BaocaoError("national_link.proposal.error.reason_too_long", limit=MAX_REASON)
    with transaction():
        proposal, exchange = get(proposal_id)
        _check(access, proposal)
        _decide(proposal, "rejected", access.actor.id, reason=reason)
        audit_record("national_link.proposal.rejected", actor=access.actor, unit=exchange.unit_id,
                     object_type="national_link_proposal", object_id=proposal.id,
                     details={"packet": proposal.packet_type, "message_id": exchange.message_id,
                              "reason": reason[:200]})
