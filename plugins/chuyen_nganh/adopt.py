"""Adopting a shipped sector regime template (issue 15, item 6; docs/sector_templates.md).

The templates are off by default: nothing of them is in anyone's database until a department's
delegated administrator presses "Dùng mẫu này". Then, in ONE transaction:

1. the template's groups and indicators go into the sector's namespace, through the sector's
   catalogue services (catalogue.py: the same rights, checks and audit as typed on its screens); an
   indicator already there with the same code is kept as it is, never overwritten;
2. its data form is created and published, and a DRAFT regime is made for the department
   (``core.api.create_regime_draft``: the regime screen's rights and policy): the department issues,
   receives and prepares it, its reporting units are the template's kind within the delegation's
   scope, its legal basis is the delegation's decision — so it can be issued under the delegation's
   authority once the person completes it on the core's regime screens;
3. the adoption is recorded (``chuyen_nganh_template_adoption``, unique by department and template:
   a second adoption is refused, naming the draft the first one made) and audited.

Who: whoever holds, at the department, the sector's catalogue right (``CATALOGUE``, given by a
delegation in force) and ``core.regime.edit``, for a template of the delegation's own sector.
"""

from __future__ import annotations

import datetime as dt
import re

from peewee import CharField, DateTimeField, IntegerField, IntegrityError

from core.api import (BaocaoError, NotFound, RegimeSpec, Unit, ValidationError, audit_record, create_regime_draft,
                      current_indicator, indicator_groups_of, today, transaction, unit_chain, utcnow)

from . import catalogue as cat
from . import delegation as svc
from .models import Base, Delegation
from .templates_data import Template, for_sector, templates

REGIME_EDIT = "core.regime.edit"
AUDIT_TYPE = "chuyen_nganh.template"
FORM_CODE_PART = re.compile(r"[^A-Z0-9._-]")


class TemplateAdoption(Base):  # chuyen_nganh_template_adoption: which department adopted which template
    department_unit_id = IntegerField()
    template = CharField(max_length=40)
    sector = CharField(max_length=20)
    delegation_id = IntegerField()
    regime_id = IntegerField()
    adopted_at = DateTimeField(default=utcnow)
    adopted_by = IntegerField(null=True)

    class Meta:
        indexes = ((("department_unit_id", "template"), True),)


class Refusal(cat.Refusal):
    """The template cannot be adopted under this delegation today (403 with why, nothing changed):
    ``key`` is ``chuyen_nganh.shipped.refused.<why>``."""


class Refused(svc.Refused):
    """Adoption refused for a reason the page shows at its place (409/422); ``field_params`` carries
    the link's target (the draft already made, the catalogue page)."""


def _may_draft(access, delegation: Delegation) -> bool:
    return access.allowed(REGIME_EDIT, unit_chain(delegation.department_unit_id))


def _may_adopt(access, delegation: Delegation) -> bool:
    return cat.can_edit(access, delegation) and _may_draft(access, delegation)


def adoption_of(department_unit_id: int, key: str) -> TemplateAdoption | None:
    return TemplateAdoption.get_or_none((TemplateAdoption.department_unit_id == department_unit_id)
                                        & (TemplateAdoption.template == key))


def offers(access, day: dt.date | None = None) -> list[dict]:
    """For each delegation in force where ``access`` may adopt (its catalogue right and
    ``core.regime.edit`` at the department), the templates of its sector, each with the adoption
    already made, if any."""
    day = day or today()
    rows = []
    for d in Delegation.select().where(Delegation.decision_number != "").order_by(Delegation.id):
        if cat.standing(d, day) != "in_force" or not _may_adopt(access, d):
            continue
        shipped = for_sector(d.sector)
        if not shipped:
            continue
        rows.append({"d": d, "department": cat.department_of(d), "letters": cat.namespace_of(d).letters,
                     "templates": [{"t": t, "adoption": adoption_of(d.department_unit_id, t.key)} for t in shipped]})
    return rows


def _open(access, delegation_id, key: str) -> tuple[Delegation, Template]:
    """The delegation and template to adopt, or why not (NotFound when ``access`` may not know of
    them; Refusal when the delegation does not stand or the person may not draft regimes)."""
    template = templates().get(str(key))
    try:
        delegation = cat.open_delegation(access, delegation_id, edit=True)
    except cat.Refusal as exc:
        why = exc.key.rsplit(".", 1)[-1]
        raise Refusal(f"chuyen_nganh.shipped.refused.{why}", **exc.params) from None
    if template is None or template.sector != delegation.sector:
        raise NotFound()
    if not _may_draft(access, delegation):
        raise Refusal("chuyen_nganh.shipped.refused.read_only", sector=delegation.sector_name,
                      number=delegation.decision_number)
    return delegation, template


def _form_code(template: Template, letters: str, department: Unit) -> str:
    # NN-SX-THANG-44.SNN: the sector's letters, the template's form, the department (one form each).
    code = f"{letters}-{template.form['code']}-{FORM_CODE_PART.sub('-', department.code.upper())}"
    return code[:40]


def spec(template: Template, delegation: Delegation, department: Unit, letters: str) -> RegimeSpec:
    """The draft regime the template makes for the department under ``delegation``."""
    regime = template.regime
    issuer = ", ".join(p for p in (delegation.signer_title, delegation.signer_name) if p)
    return RegimeSpec(
        code=f"{delegation.sector}.{template.key}.{department.id}"[:40], name=regime["name"],
        regime_type=regime.get("type", "periodic"), frequency=regime.get("frequency"),
        content=regime.get("content", ""), content_type=regime.get("content_type", "both"),
        reporting_kinds=(template.reporting_kind,),
        deadline_rules=tuple({"level": r.get("level", ""), "from_kind": r.get("from_kind", ""), "rule": r["rule"]}
                             for r in regime.get("deadline_rules", ())),
        sending_methods=tuple(regime.get("sending_methods", ("system",))),
        cutoff_rule=regime.get("cutoff_rule", "decree"), outline=regime.get("outline", "").strip(),
        data_forms=regime.get("data_forms", ""), guidance=regime.get("guidance", ""),
        legal_number=delegation.decision_number, legal_date=delegation.decision_date, legal_issuer=issuer,
        issuing_unit_code=department.code, receiving_unit_code=department.code,
        preparing_unit_code=department.code,
        form={"code": _form_code(template, letters, department), "name": template.form["name"],
              "definition": template.form_definition(letters)})


def _indicator_form(template: Template, item: dict, letters: str, level: str) -> dict:
    return {"code": letters + item["code"], "name": item["name"], "group": letters + item["code"][:2],
            "levels": [level], "unit_of_measure": item.get("unit_of_measure", ""),
            "value_type": item.get("value_type", "number"), "aggregation": item.get("aggregation", "sum"),
            "disaggregation": item.get("disaggregation", ""), "periodicity": item.get("periodicity", ""),
            "agency": item.get("agency", ""), "higher_code": item.get("higher_code", ""),
            "source_act": f"Mẫu {template.key} (plugin chuyen_nganh)"}


def _catalogue(access, delegation: Delegation, template: Template, letters: str) -> dict[str, int]:
    """The template's groups and indicators the sector lacks, through the catalogue's services."""
    groups = {g.code for g in indicator_groups_of(letters)}
    levels = {}
    for group in template.groups:
        code = letters + group["code"]
        levels[group["code"]] = group["level"]
        if code not in groups:
            cat.create_group(access, delegation.id, code, group["name"], group["level"])
    counts = {"new": 0, "kept": 0}
    for item in template.indicators:
        if current_indicator(letters + item["code"]) is not None:
            counts["kept"] += 1  # the sector's own version stays: forms and reports may use it
            continue
        cat.create(access, delegation.id, _indicator_form(template, item, letters, levels[item["code"][:2]]))
        counts["new"] += 1
    return counts


def _scope_has_kind(delegation: Delegation, kind: str) -> bool:
    ids = svc.scope_units(delegation)
    return bool(ids) and Unit.select().where(Unit.id.in_(ids) & (Unit.kind == kind)).exists()


def adopt(access, delegation_id, key: str) -> TemplateAdoption:
    """Adopt the template ``key`` for the department of ``delegation_id`` (see the module's
    docstring). Refusals change nothing: ``NotFound``, ``Refusal`` (403), ``Refused`` (the draft
    already made; no letters for the sector; no unit of the template's kind in the scope; the
    core's refusal of the form or the regime)."""
    with transaction():
        delegation, template = _open(access, delegation_id, key)
        done = adoption_of(delegation.department_unit_id, template.key)
        if done is not None:
            raise Refused({"form": "chuyen_nganh.shipped.error.adopted"}, {"form": {"regime_id": done.regime_id}})
        space = cat.namespace_of(delegation)
        if space.letters is None:
            raise Refused({"form": "chuyen_nganh.shipped.error.no_letters"},
                          {"form": {"delegation_id": delegation.id, "prefix": space.proposal}})
        if not _scope_has_kind(delegation, template.reporting_kind):
            raise Refused({"form": "chuyen_nganh.shipped.error.no_units"},
                          {"form": {"kind": template.reporting_kind}})
        department = cat.department_of(delegation)
        counts = _catalogue(access, delegation, template, space.letters)
        letters = cat.namespace(delegation.sector)  # claimed by the first group if it was not yet
        try:
            regime_id = create_regime_draft(access, spec(template, delegation, department, letters))
        except ValidationError as exc:
            # The regime screen's own refusal (its policy, a code taken): said with the core's messages.
            raise Refused({"form": "chuyen_nganh.shipped.error.core"},
                          {"form": {"keys": sorted(set(exc.errors.values()))}}) from None
        except BaocaoError as exc:
            if exc.status is not None:  # Forbidden, NotFound: answered as such
                raise
            # The form's definition refused against the catalogue as it is (FormDesignError), or a
            # unit code gone (RegimeSpecError): said in both languages, nothing written.
            raise Refused({"form": "chuyen_nganh.shipped.error.core_message"}, {"form": {"message": str(exc)}}) from None
        try:
            with transaction():  # a savepoint: another request adopting at the same moment loses here
                adoption = TemplateAdoption.create(
                    department_unit_id=delegation.department_unit_id, template=template.key,
                    sector=delegation.sector, delegation_id=delegation.id, regime_id=regime_id,
                    adopted_at=utcnow(), adopted_by=getattr(access.actor, "id", None))
        except IntegrityError:
            raise Refused({"form": "chuyen_nganh.shipped.error.race"}) from None
        audit_record("chuyen_nganh.template.adopt", actor=access.actor, unit=delegation.department_unit_id,
                     object_type=AUDIT_TYPE, object_id=template.key,
                     details={"sector": delegation.sector, "decision_number": delegation.decision_number,
                              "regime_id": regime_id, "prefix": letters, "indicators_new": counts["new"],
                              "indicators_kept": counts["kept"]})
    return adoption
