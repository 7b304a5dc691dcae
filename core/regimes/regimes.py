"""Reporting regimes (chế độ báo cáo): Decree 09/2019/NĐ-CP Art. 4, 7, 8, 11–13.

A regime carries the components of Art. 7 — 1 name, 2 required content (text, data or both),
3 reporting units, 4 receiving unit, 5 sending methods, 6 deadline (one rule per reporting level),
7 frequency, 8 cut-off rule, 9 outline template, 10 data forms, 11 procedure guidance (item 11 is
unverified in the legal reference) — plus its type (periodic, thematic, ad hoc: Art. 4), legal
basis, issuing and preparing units, owning plugin, status and version.

Versions. ``core_regime`` holds one row per (code, version). A draft is edited in place (it is not
a version yet). Editing an issued regime starts a new draft version (``new_version``: same code,
version + 1); issuing it retires the version in force (status ``retired``, ``valid_to``). Reports
keep the exact version they were opened with.

Who may do what is decided here, on the server (``can_view``/``can_edit``/``can_issue`` and the
policy of the ``[regimes]`` settings section): ``core.regime.edit`` at the preparing or issuing
unit drafts, ``core.regime.issue`` at the issuing unit issues, suspends, retires and opens
requests. By default (Art. 11 and the 2025 two-level government) only a province issues periodic
regimes, prepared by one of its departments; provinces, departments, districts and communes issue
thematic and ad-hoc requests to units of their own subtree and to organisations and individuals.

Reporting units (component 3) are chosen by kind, by unit group and by a list of units, all within
a scope (default: the issuing unit's subtree), among the units valid on the day asked.

The receiving unit (component 4) is a rule (``receiving_rule``): "unit", one named unit (the
regime's ``receiving_unit``); "parent", each reporting unit's parent; "group_owner", the owner unit
of a unit group (``receiving_group``), read when a period opens. Each report stores the receiver
the rule gave it (``receiver_of``), so the queues and consolidation never re-read the rule.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from dataclasses import dataclass, field

from peewee import CharField, DateField, DateTimeField, ForeignKeyField, IntegerField, TextField, fn

from core import clock
from core import audit
from core.db import CoreModel, transaction
from core.regimes.deadlines import (DeadlineAfterFirstError, DeadlineChainError, DeadlineRule, DeadlineRuleError,
                            LevelDeadline, check_chain)
from core.errors import BaocaoError, Forbidden, NotFound, ValidationError
from core.regimes import authority
from core.regimes.forms import Form, create_form, install_form, latest_published
from core.regimes.forms import publish as publish_form
from core.regimes.forms import can_view as can_view_form
from core.i18n import fold
from core.models import UNIT_KINDS, Unit, User, utcnow
from core.regimes.periods import CUSTOM, FREQUENCIES, Window, windows
from core.safe_input import parse_id
from core.settings import RegimeSettings
from core.units.tree import ancestor_ids, sort_key, subtree_ids
from core.regimes.workdays import WorkCalendar, work_calendar

log = logging.getLogger("baocao.regimes")

PERIODIC, THEMATIC, AD_HOC = "periodic", "thematic", "ad_hoc"
REGIME_TYPES = (PERIODIC, THEMATIC, AD_HOC)
CONTENT_TYPES = ("text", "data", "both")
DRAFT, ISSUED, SUSPENDED, RETIRED = "draft", "issued", "suspended", "retired"
STATUSES = (DRAFT, ISSUED, SUSPENDED, RETIRED)
# Art. 8 cl. 4 (legal reference §1.6): direct delivery, postal service, fax, e-mail, the specialised
# reporting software system, other methods allowed by law.
SENDING_METHODS = ("system", "email", "postal", "fax", "direct", "other")
CUTOFF_RULES = ("decree", "custom")  # "decree": the windows of Art. 12; "custom": set by the requester
REGIME_FREQUENCIES = FREQUENCIES + (CUSTOM,)
OUTSIDE_KINDS = ("organisation", "individual")
# Component 4 as a rule: one named unit, each reporting unit's parent, a unit group's owner.
UNIT_RULE, PARENT_RULE, GROUP_OWNER_RULE = "unit", "parent", "group_owner"
RECEIVING_RULES = (UNIT_RULE, PARENT_RULE, GROUP_OWNER_RULE)

VIEW, EDIT, ISSUE = "core.regime.view", "core.regime.edit", "core.regime.issue"
CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{1,39}\Z")
MAX_LEVELS = 6

TYPE_LABELS = {"periodic": "regimes.type.periodic", "thematic": "regimes.type.thematic",
               "ad_hoc": "regimes.type.ad_hoc"}
STATUS_LABELS = {"draft": "regimes.status.draft", "issued": "regimes.status.issued",
                 "suspended": "regimes.status.suspended", "retired": "regimes.status.retired"}
CONTENT_TYPE_LABELS = {"text": "regimes.content_type.text", "data": "regimes.content_type.data",
                       "both": "regimes.content_type.both"}
METHOD_LABELS = {"system": "regimes.method.system", "email": "regimes.method.email",
                 "postal": "regimes.method.postal", "fax": "regimes.method.fax",
                 "direct": "regimes.method.direct", "other": "regimes.method.other"}
FREQUENCY_LABELS = {"monthly": "regimes.frequency.monthly", "quarterly": "regimes.frequency.quarterly",
                    "half_year": "regimes.frequency.half_year", "nine_months": "regimes.frequency.nine_months",
                    "annual": "regimes.frequency.annual", "custom": "regimes.frequency.custom"}
CUTOFF_LABELS = {"decree": "regimes.cutoff.decree", "custom": "regimes.cutoff.custom"}
RECEIVING_RULE_LABELS = {"unit": "regimes.receiving_rule.unit", "parent": "regimes.receiving_rule.parent",
                         "group_owner": "regimes.receiving_rule.group_owner"}

# Art. 7 components: number → (field, message key, Vietnamese name for messages in both languages).
COMPONENTS = (
    (1, "name", "regimes.component.name", "Tên báo cáo"),
    (2, "content", "regimes.component.content", "Nội dung yêu cầu báo cáo"),
    (3, "units", "regimes.component.units", "Đối tượng thực hiện báo cáo"),
    (4, "receiving_unit", "regimes.component.receiving_unit", "Cơ quan nhận báo cáo"),
    (5, "sending_methods", "regimes.component.sending_methods", "Phương thức gửi, nhận báo cáo"),
    (6, "deadline_rules", "regimes.component.deadline_rules", "Thời hạn gửi báo cáo"),
    (7, "frequency", "regimes.component.frequency", "Tần suất thực hiện báo cáo"),
    (8, "cutoff_rule", "regimes.component.cutoff_rule", "Thời gian chốt số liệu báo cáo"),
    (9, "outline", "regimes.component.outline", "Mẫu đề cương báo cáo"),
    (10, "data_forms", "regimes.component.data_forms", "Biểu mẫu số liệu báo cáo"),
    (11, "guidance", "regimes.component.guidance", "Hướng dẫn quy trình thực hiện báo cáo"),
)
COMPONENT_LABELS = {"name": "regimes.component.name", "content": "regimes.component.content",
                    "units": "regimes.component.units", "receiving_unit": "regimes.component.receiving_unit",
                    "sending_methods": "regimes.component.sending_methods",
                    "deadline_rules": "regimes.component.deadline_rules",
                    "frequency": "regimes.component.frequency", "cutoff_rule": "regimes.component.cutoff_rule",
                    "outline": "regimes.component.outline", "data_forms": "regimes.component.data_forms",
                    "guidance": "regimes.component.guidance"}


# -- models ---------------------------------------------------------------------------------------

class UnitGroup(CoreModel):
    """A named set of units, for choosing reporting units ("Các sở, ban, ngành", "UBND cấp xã")."""

    code = CharField(max_length=40, unique=True)
    name = CharField(max_length=255)
    # The unit the group answers to: a regime whose receiving rule is "group_owner" sends the
    # members' reports there (a department owns "the communes it follows").
    owner = ForeignKeyField(Unit, null=True, on_delete="SET NULL")

    def __str__(self):
        return self.name


class UnitGroupMember(CoreModel):
    group = ForeignKeyField(UnitGroup, backref="members", on_delete="CASCADE")
    unit = ForeignKeyField(Unit, on_delete="CASCADE")

    class Meta:
        indexes = ((("group", "unit"), True),)


class Regime(CoreModel):
    """One version of a reporting regime; (code, version) is unique."""

    code = CharField(max_length=40)
    version = IntegerField()
    regime_type = CharField(max_length=10)
    name = TextField()  # 1
    content = TextField(default="")  # 2
    content_type = CharField(max_length=5, default="both")
    units_selector = TextField(default="{}")  # 3, JSON: kinds, unit_ids, group_ids, scope_unit_id
    receiving_unit = ForeignKeyField(Unit, null=True, on_delete="RESTRICT")  # 4, rule "unit"
    receiving_rule = CharField(max_length=12, default=UNIT_RULE)  # 4: RECEIVING_RULES
    receiving_group = ForeignKeyField(UnitGroup, null=True, on_delete="RESTRICT")  # 4, rule "group_owner"
    sending_methods = TextField(default="[]")  # 5, JSON list of SENDING_METHODS
    deadline_rules = TextField(default="[]")  # 6, JSON list of {level, from_kind, rule}, lowest level first
    frequency = CharField(max_length=12, null=True)  # 7
    cutoff_rule = CharField(max_length=10, default="decree")  # 8
    outline = TextField(default="")  # 9
    data_forms = TextField(default="")  # 10, in words; the form itself is ``form``
    form = ForeignKeyField(Form, null=True, on_delete="RESTRICT")  # 9 and 10: rows, columns, rules, outline
    guidance = TextField(default="")  # 11
    legal_number = CharField(max_length=100, default="")
    legal_date = DateField(null=True)
    legal_issuer = CharField(max_length=255, default="")
    issuing_unit = ForeignKeyField(Unit, null=True, on_delete="RESTRICT")
    preparing_unit = ForeignKeyField(Unit, null=True, on_delete="RESTRICT")
    plugin = CharField(max_length=40, null=True)
    # The plugin's issuing authority it was issued under ("plugin:key", core.regimes.authority): its
    # reporting units are asked of that authority each time a period opens.
    authority = CharField(max_length=120, null=True)
    status = CharField(max_length=10, default=DRAFT)
    valid_from = DateField(null=True)
    valid_to = DateField(null=True)
    issued_at = DateTimeField(null=True)
    issued_by = ForeignKeyField(User, null=True, on_delete="SET NULL")
    created_at = DateTimeField(default=utcnow)
    created_by = ForeignKeyField(User, null=True, on_delete="SET NULL")
    updated_at = DateTimeField(default=utcnow)
    updated_by = ForeignKeyField(User, null=True, on_delete="SET NULL")

    class Meta:
        indexes = ((("code", "version"), True), (("status",), False))

    def __str__(self):
        return f"{self.code} v{self.version}"

    @property
    def selector(self) -> dict:
        return _load_selector(self.units_selector)

    @property
    def methods(self) -> list[str]:
        return _json_list(self.sending_methods)

    @property
    def rules(self) -> list[dict]:
        return [r for r in _json_list(self.deadline_rules) if isinstance(r, dict)]

    @property
    def is_request(self) -> bool:
        return self.regime_type in (THEMATIC, AD_HOC)

    def rules_by_level(self) -> dict[str, str]:
        return {r.get("level") or f"{i + 1}": r.get("rule", "") for i, r in enumerate(self.rules)}


def _json_list(text) -> list:
    try:
        value = json.loads(text or "[]")
    except ValueError:
        return []
    return value if isinstance(value, list) else []


def _load_selector(text) -> dict:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        value = {}
    if not isinstance(value, dict):
        value = {}
    ints = lambda v: [n for x in v if (n := parse_id(x)) is not None] if isinstance(v, list) else []  # noqa: E731
    scope = value.get("scope_unit_id")
    return {"kinds": [k for k in value.get("kinds", []) if k in UNIT_KINDS] if isinstance(value.get("kinds"), list) else [],
            "unit_ids": ints(value.get("unit_ids")), "group_ids": ints(value.get("group_ids")),
            "scope_unit_id": parse_id(scope)}


def _dump(value) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


# -- unit groups ----------------------------------------------------------------------------------

def save_group(code: str, name: str, unit_ids, *, owner_id: int | None = None, actor=None) -> UnitGroup:
    """Create or replace a unit group's members (and its owner unit)."""
    with transaction():
        group = UnitGroup.get_or_none(UnitGroup.code == code)
        if group is None:
            group = UnitGroup.create(code=code, name=name, owner=owner_id)
        else:
            group.name, group.owner = name, owner_id
            group.save()
            UnitGroupMember.delete().where(UnitGroupMember.group == group).execute()
        for unit_id in sorted(set(unit_ids)):
            UnitGroupMember.create(group=group, unit=unit_id)
        audit.record("regime.group", actor=actor, object_type="unit_group", object_id=code,
                     details={"members": len(set(unit_ids))})
    return group


def groups() -> list[UnitGroup]:
    return list(UnitGroup.select().order_by(UnitGroup.name))


# Managing groups from the screen (issue 4): who may put which units in a group is given by the
# caller as ``allowed`` (the unit ids the actor may see; None: every unit, a system administrator).

GROUP_NAME_MAX = 255


def group_members(group_id: int) -> list[Unit]:
    """The member units of a group, in tree order (kind, then name)."""
    query = Unit.select().join(UnitGroupMember, on=(UnitGroupMember.unit == Unit.id)).where(
        UnitGroupMember.group == group_id)
    return sorted(query, key=sort_key)


def group_member_ids() -> dict[int, set[int]]:
    """Every group's member unit ids."""
    out: dict[int, set[int]] = {}
    for group_id, unit_id in UnitGroupMember.select(UnitGroupMember.group, UnitGroupMember.unit).tuples():
        out.setdefault(group_id, set()).add(unit_id)
    return out


def group_usage() -> dict[int, list[Regime]]:
    """Group id → the regime versions (any status) whose reporting units or receiving rule name the group."""
    out: dict[int, list[Regime]] = {}
    for regime in Regime.select().order_by(Regime.code, Regime.version):
        for group_id in set(regime.selector["group_ids"]) | ({regime.receiving_group_id} - {None}):
            out.setdefault(group_id, []).append(regime)
    return out


def group_manageable(member_ids: set[int], allowed: set[int] | None) -> bool:
    """A group may be changed only by someone who sees every one of its members; an empty group
    (its units all deleted) only by a system administrator."""
    if allowed is None:
        return True
    return bool(member_ids) and member_ids <= allowed


def _clean_group(group_id: int | None, code, name, unit_ids, allowed: set[int] | None, owner=None):
    errors: dict[str, str] = {}
    owner_id = None
    owner_code = str(owner or "").strip()
    if owner_code:
        found = valid_units(clock.today()).where(Unit.code == owner_code).order_by(Unit.id).first()
        owner_id = found.id if found else None
        if found is None:
            errors["owner"] = "groups.error.owner_unknown"
        elif allowed is not None and owner_id not in allowed and not (
                group_id is not None and UnitGroup.select().where((UnitGroup.id == group_id)
                                                                  & (UnitGroup.owner == owner_id)).exists()):
            errors["owner"] = "groups.error.owner_outside"  # an owner set by someone who sees it may stay
    code = str(code or "").strip()
    name = " ".join(str(name or "").split())
    if not code:
        errors["code"] = "groups.error.code_required"
    elif not CODE_RE.match(code):
        errors["code"] = "groups.error.code_format"
    else:
        same = UnitGroup.get_or_none(fn.LOWER(UnitGroup.code) == code.lower())
        if same is not None and same.id != group_id:
            errors["code"] = "groups.error.code_taken"
    if not name:
        errors["name"] = "groups.error.name_required"
    elif len(name) > GROUP_NAME_MAX:
        errors["name"] = "groups.error.name_long"
    ids = set()
    for value in unit_ids or []:
        text = str(value).strip()
        number = parse_id(text)
        if number is None:
            errors["members"] = "groups.error.member_unknown"
            break
        ids.add(number)
    if "members" not in errors:
        if not ids:
            errors["members"] = "groups.error.members_required"
        else:
            today = clock.today()
            current = {u.id for u in valid_units(today).where(Unit.id.in_(sorted(ids)))}
            if current != ids:
                errors["members"] = "groups.error.member_not_current"
            elif allowed is not None and not ids <= allowed:
                errors["members"] = "groups.error.member_outside"
    if errors:
        raise ValidationError(errors)
    return code, name, ids, owner_id


def write_group(group_id: int | None, code, name, unit_ids, *, allowed: set[int] | None, owner=None,
                actor=None) -> UnitGroup:
    """Create (``group_id`` None) or change a group from the screen; checks everything first and
    writes nothing on bad input (ValidationError with per-field keys). NotFound when the group does
    not exist or has a member the actor may not see. ``owner``: the owner unit's code, as typed
    (optional; a unit in existence that the actor sees)."""
    with transaction():
        before: set[int] = set()
        group = None
        if group_id is not None:
            group = UnitGroup.get_or_none(UnitGroup.id == group_id)
            before = {m.unit_id for m in UnitGroupMember.select().where(UnitGroupMember.group == group_id)}
            if group is None or not group_manageable(before, allowed):
                raise NotFound("groups.error.not_found")
        code, name, ids, owner_id = _clean_group(group_id, code, name, unit_ids, allowed, owner)
        old = {"code": group.code, "name": group.name} if group else {}
        if group is not None and group.owner_id != owner_id:
            old["owner"] = group.owner_id
        if group is None:
            group = UnitGroup.create(code=code, name=name, owner=owner_id)
        else:
            group.code, group.name, group.owner = code, name, owner_id
            group.save()
            UnitGroupMember.delete().where(UnitGroupMember.group == group).execute()
        for unit_id in sorted(ids):
            UnitGroupMember.create(group=group, unit=unit_id)
        details = {"code": code, "name": name, "members": len(ids),
                   "added": sorted(ids - before), "removed": sorted(before - ids)}
        if owner_id is not None or "owner" in old:
            details["owner"] = owner_id
        if old:
            details["before"] = old
        audit.record("regime.group", actor=actor, object_type="unit_group", object_id=str(group.id), details=details)
    return group


def delete_group(group_id: int, *, allowed: set[int] | None, actor=None) -> UnitGroup:
    """Delete a group no regime names (any version, any status: a retired version keeps its record)."""
    with transaction():
        group = UnitGroup.get_or_none(UnitGroup.id == group_id)
        members = {m.unit_id for m in UnitGroupMember.select().where(UnitGroupMember.group == group_id)}
        if group is None or not group_manageable(members, allowed):
            raise NotFound("groups.error.not_found")
        used = group_usage().get(group.id, [])
        if used:
            raise ValidationError({"delete": "groups.error.in_use"},
                                  regimes=", ".join(f"{r.name} ({r.code} v{r.version})" for r in used[:5]))
        UnitGroupMember.delete().where(UnitGroupMember.group == group).execute()
        group.delete_instance()
        audit.record("regime.group_delete", actor=actor, object_type="unit_group", object_id=str(group_id),
                     details={"code": group.code, "name": group.name, "members": sorted(members)})
    return group


# -- units valid on a day, and the reporting units of a regime -------------------------------------

def valid_units(day: dt.date):
    """Units in existence on ``day`` (``valid_from`` ≤ day ≤ ``valid_to``, open ends allowed)."""
    return Unit.select().where((Unit.valid_from.is_null() | (Unit.valid_from <= day))
                               & (Unit.valid_to.is_null() | (Unit.valid_to >= day)))


def _group_unit_ids(group_ids) -> set[int]:
    if not group_ids:
        return set()
    return {m.unit_id for m in UnitGroupMember.select().where(UnitGroupMember.group.in_(list(group_ids)))}


def group_owner_id(group_id: int | None) -> int | None:
    """The owner unit of a unit group (None: no group, or a group without owner)."""
    if not group_id:
        return None
    return UnitGroup.select(UnitGroup.owner).where(UnitGroup.id == group_id).scalar()


def _rule(regime) -> str:
    return getattr(regime, "receiving_rule", None) or UNIT_RULE


def fixed_receiver_id(regime) -> int | None:
    """The one unit that receives every report of ``regime`` under the rules "unit" and
    "group_owner" (today's owner of the group); None under "parent" (each unit's parent)."""
    rule = _rule(regime)
    if rule == PARENT_RULE:
        return None
    if rule == GROUP_OWNER_RULE:
        return group_owner_id(regime.receiving_group_id)
    return regime.receiving_unit_id


def receiver_of(regime, unit: Unit, fixed: int | None = None) -> int | None:
    """The unit that receives ``unit``'s report under ``regime``'s receiving rule (``fixed``: what
    ``fixed_receiver_id`` gave, read once per period by the caller)."""
    if _rule(regime) == PARENT_RULE:
        return unit.parent_id
    return fixed


def resolve_units(regime, day: dt.date | None = None) -> list[Unit]:
    """The reporting units of ``regime`` (a Regime or anything with ``selector``, ``issuing_unit_id``
    and the receiving rule) on ``day``: units of the chosen kinds inside the scope, plus the units
    listed and the members of the groups chosen — the union. The receiving unit never reports to
    itself."""
    day = day or clock.today()
    selector = regime.selector
    scope = selector["scope_unit_id"] or regime.issuing_unit_id
    scope_ids = set(subtree_ids(scope)) if scope else set()
    listed = set(selector["unit_ids"]) | _group_unit_ids(selector["group_ids"])
    granted = _authority_units(regime, day)
    if granted is not None:  # a plugin's authority (core.regimes.authority): its units, and only them
        scope_ids, listed = set(granted), listed & granted
    kinds = set(selector["kinds"])
    receiver = fixed_receiver_id(regime)
    found = []
    for unit in valid_units(day):
        if receiver is not None and unit.id == receiver:
            continue
        if (unit.kind in kinds and unit.id in scope_ids) or unit.id in listed:
            found.append(unit)
    return sorted(found, key=sort_key)


def _authority_units(regime, day: dt.date) -> frozenset | None:
    """The units of the authority a regime relies on: the one it was issued under, asked again for
    ``day`` (ended: no unit at all); for a draft, the one its legal basis names, if any. None: the
    regime relies on none (the core's rules hold)."""
    reference = getattr(regime, "authority", None)
    if reference:
        found = authority.find(reference, regime.issuing_unit_id, day)
        return found.unit_ids if found is not None else frozenset()
    if getattr(regime, "status", DRAFT) != DRAFT:
        return None
    match = authority.covering(regime.issuing_unit_id, getattr(regime, "legal_number", ""),
                               lambda ids: _chosen(regime.selector, ids, day), day)
    return match[1].unit_ids if match else None


def _chosen(selector: dict, scope_ids, day: dt.date) -> set[int]:
    """The units a selector picks when its kinds are read within ``scope_ids``."""
    listed = set(selector["unit_ids"]) | _group_unit_ids(selector["group_ids"])
    kinds = set(selector["kinds"])
    return {u.id for u in valid_units(day) if (u.kind in kinds and u.id in scope_ids) or u.id in listed}


# -- rights and the issuing policy ----------------------------------------------------------------

def _held(access, code: str, unit_id) -> bool:
    return unit_id is not None and access.allowed(code, ancestor_ids(unit_id))


def can_edit(access, regime) -> bool:
    return _held(access, EDIT, regime.preparing_unit_id) or _held(access, EDIT, regime.issuing_unit_id)


def can_issue(access, regime) -> bool:
    return _held(access, ISSUE, regime.issuing_unit_id)


def can_view(access, regime) -> bool:
    if regime.issuing_unit_id is None and regime.preparing_unit_id is None:
        # A plugin's regime not yet given an issuing unit: only system administrators see it.
        return access.actor is not None and getattr(access.actor, "is_admin", False) and access.allowed(VIEW)
    return (any(_held(access, VIEW, u) for u in (regime.issuing_unit_id, regime.preparing_unit_id,
                                                fixed_receiver_id(regime)))
            or can_edit(access, regime) or can_issue(access, regime) or _reports_under(access, regime))


def _reports_under(access, regime) -> bool:
    """The actor sees a regime one of their units must report under (its outline and guidance)."""
    if regime.status == DRAFT:
        return False
    roots = access.roots(VIEW)
    if not roots:
        return False
    mine = {uid for root in roots for uid in subtree_ids(root)}
    return any(u.id in mine for u in resolve_units(regime))


_FREQUENCY_ORDER = {f: i for i, f in enumerate(REGIME_FREQUENCIES)}


def visible_regimes(access, *, regime_type: str | None = None, status: str | None = None, q: str = ""):
    """The regimes ``access`` may see, newest version of each code first."""
    query = Regime.select()
    if regime_type in REGIME_TYPES:
        query = query.where(Regime.regime_type == regime_type)
    if status in STATUSES:
        query = query.where(Regime.status == status)
    rows = list(query.order_by(Regime.code, Regime.version.desc()))
    if q:
        # As everywhere: "bao cao thang" finds "Báo cáo … hằng tháng" (case and diacritics ignored).
        words = fold(q).split()
        rows = [r for r in rows if all(w in fold(r.name) or w in r.code.lower() for w in words)]
    # Periodic regimes first, by period length (monthly … annual), then requests; the versions of
    # one regime stay together, newest first.
    rows.sort(key=lambda r: (REGIME_TYPES.index(r.regime_type), _FREQUENCY_ORDER.get(r.frequency, 99),
                             r.code, -r.version))
    if access.actor is not None and access.actor.is_admin and access.allowed(VIEW):
        return rows
    if not any(access.roots(code) for code in (VIEW, EDIT, ISSUE)):
        return []
    return [r for r in rows if can_view(access, r)]


def get_regime(access, regime_id: int) -> Regime:
    """The regime, or NotFound when it does not exist or lies outside what ``access`` may see."""
    regime = Regime.get_or_none(Regime.id == regime_id)
    if regime is None or not can_view(access, regime):
        raise NotFound()
    return regime


# What an issuing authority lifts: who may issue, and where the reporting units may be.
AUTHORITY_LIFTS = frozenset({"issuing_unit", "preparing_unit", "scope_unit", "units"})


def policy_errors(values, policy, day: dt.date | None = None) -> dict[str, str]:
    """What the ``[regimes]`` policy refuses in a regime (or its form values): field → message key.
    A plugin's issuing authority (``core.regimes.authority``) lifts the issuer and scope rules for
    a regime on its decision whose reporting units all lie in its units."""
    errors = _policy_errors(values, policy)
    if not errors or not set(errors) <= AUTHORITY_LIFTS:
        return errors
    day = day or clock.today()
    grants = authority.granted(values.issuing_unit_id, day)
    if not grants:
        return errors
    if authority_reference(values, day):
        return {}
    number = " ".join((values.legal_number or "").split())
    if not any(" ".join(a.legal_number.split()) == number for _, a in grants):
        return {**errors, "legal_number": "regimes.error.authority_basis"}
    return {**{k: v for k, v in errors.items() if k not in ("issuing_unit", "preparing_unit")},
            "units": "regimes.error.outside_authority"}


def authority_reference(values, day: dt.date | None = None) -> str | None:
    """"plugin:key" of the authority that covers the regime (its issuer, its decision, every unit
    it chooses), or None."""
    day = day or clock.today()
    match = authority.covering(values.issuing_unit_id, values.legal_number,
                               lambda ids: _chosen(values.selector, ids, day), day)
    return match[1].reference(match[0]) if match else None


def _policy_errors(values, policy) -> dict[str, str]:
    errors: dict[str, str] = {}
    issuer = Unit.get_or_none(Unit.id == values.issuing_unit_id) if values.issuing_unit_id else None
    if issuer is None:
        return errors
    if values.regime_type == PERIODIC:
        if issuer.kind not in policy.periodic_issuer_kinds:
            errors["issuing_unit"] = "regimes.error.periodic_issuer"
        if values.preparing_unit_id:
            preparer = Unit.get_or_none(Unit.id == values.preparing_unit_id)
            if preparer is None or preparer.kind not in policy.periodic_preparer_kinds \
                    or issuer.id not in ancestor_ids(preparer.id):
                errors["preparing_unit"] = "regimes.error.preparer"
    elif issuer.kind not in policy.request_issuer_kinds:
        errors["issuing_unit"] = "regimes.error.request_issuer"
    if policy.request_recipients == "subtree" or values.regime_type == PERIODIC:
        own = set(subtree_ids(issuer.id))
        selector = values.selector
        if selector["scope_unit_id"] and selector["scope_unit_id"] not in own:
            errors["scope_unit"] = "regimes.error.scope_outside"
        listed = set(selector["unit_ids"]) | _group_unit_ids(selector["group_ids"])
        outside = [u for u in Unit.select().where(Unit.id.in_(list(listed - own)))] if listed - own else []
        if any(not (values.regime_type != PERIODIC and u.kind in OUTSIDE_KINDS) for u in outside):
            errors["units"] = "regimes.error.recipients_outside"
    return errors


# -- drafts ----------------------------------------------------------------------------------------

@dataclass
class RegimeValues:
    """A regime as a form sends it, cleaned; also what the calendar preview reads."""

    code: str = ""
    name: str = ""
    regime_type: str = PERIODIC
    content: str = ""
    content_type: str = "both"
    selector: dict = field(default_factory=lambda: _load_selector("{}"))
    receiving_unit_id: int | None = None
    receiving_rule: str = UNIT_RULE
    receiving_group_id: int | None = None
    sending_methods: list = field(default_factory=list)
    deadline_rules: list = field(default_factory=list)
    frequency: str | None = None
    cutoff_rule: str = "decree"
    outline: str = ""
    data_forms: str = ""
    guidance: str = ""
    legal_number: str = ""
    legal_date: dt.date | None = None
    legal_issuer: str = ""
    issuing_unit_id: int | None = None
    preparing_unit_id: int | None = None
    form_id: int | None = None

    @property
    def rules(self) -> list[dict]:
        return self.deadline_rules

    def rules_by_level(self) -> dict[str, str]:
        return {r.get("level") or f"{i + 1}": r.get("rule", "") for i, r in enumerate(self.deadline_rules)}

    @classmethod
    def of(cls, regime: Regime) -> "RegimeValues":
        return cls(code=regime.code, name=regime.name, regime_type=regime.regime_type, content=regime.content,
                   content_type=regime.content_type, selector=regime.selector,
                   receiving_unit_id=regime.receiving_unit_id, receiving_rule=regime.receiving_rule,
                   receiving_group_id=regime.receiving_group_id, sending_methods=regime.methods,
                   deadline_rules=regime.rules, frequency=regime.frequency, cutoff_rule=regime.cutoff_rule,
                   outline=regime.outline, data_forms=regime.data_forms, guidance=regime.guidance,
                   legal_number=regime.legal_number, legal_date=regime.legal_date,
                   legal_issuer=regime.legal_issuer, issuing_unit_id=regime.issuing_unit_id,
                   preparing_unit_id=regime.preparing_unit_id, form_id=regime.form_id)


def _text(value, limit: int = 20000) -> str:
    return re.sub(r"[ \t]+\n", "\n", str(value or "")).strip()[:limit]


def _int(value) -> int | None:
    return parse_id(str(value).strip())


def _date(value) -> dt.date | None:
    if isinstance(value, dt.date):
        return value
    text = str(value or "").strip()
    if not text:
        return None
    for fmt in ("%Y-%m-%d", "%d/%m/%Y"):
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise ValueError(text)


def clean(data: dict) -> tuple[RegimeValues, dict[str, str]]:
    """Form data → values and per-field errors (message keys). Drafts may be incomplete."""
    errors: dict[str, str] = {}
    v = RegimeValues()
    v.code = _text(data.get("code"), 40)
    v.name = re.sub(r"\s+", " ", _text(data.get("name"), 500))
    v.regime_type = str(data.get("regime_type") or PERIODIC)
    if v.regime_type not in REGIME_TYPES:
        errors["regime_type"] = "regimes.error.choice"
        v.regime_type = PERIODIC
    v.content = _text(data.get("content"))
    v.content_type = str(data.get("content_type") or "both")
    if v.content_type not in CONTENT_TYPES:
        errors["content_type"] = "regimes.error.choice"
        v.content_type = "both"
    kinds = [k for k in data.get("kinds", []) if k]
    if any(k not in UNIT_KINDS for k in kinds):
        errors["units"] = "regimes.error.choice"
    v.selector = {"kinds": [k for k in UNIT_KINDS if k in kinds],
                  "unit_ids": sorted({i for i in map(_int, data.get("unit_ids", [])) if i}),
                  "group_ids": sorted({i for i in map(_int, data.get("group_ids", [])) if i}),
                  "scope_unit_id": _int(data.get("scope_unit_id"))}
    v.receiving_unit_id = _int(data.get("receiving_unit_id"))
    v.receiving_rule = str(data.get("receiving_rule") or UNIT_RULE)
    if v.receiving_rule not in RECEIVING_RULES:
        errors["receiving_rule"] = "regimes.error.choice"
        v.receiving_rule = UNIT_RULE
    v.receiving_group_id = _int(data.get("receiving_group_id"))
    # One meaning per rule: what another rule would use is dropped, not kept unseen.
    if v.receiving_rule != UNIT_RULE:
        v.receiving_unit_id = None
    if v.receiving_rule != GROUP_OWNER_RULE:
        v.receiving_group_id = None
    elif v.receiving_group_id is None:
        errors["receiving_group"] = "regimes.error.receiving_group_required"
    elif not UnitGroup.select().where(UnitGroup.id == v.receiving_group_id).exists():
        errors["receiving_group"] = "regimes.error.unit_unknown"
    methods = [m for m in data.get("sending_methods", []) if m]
    if any(m not in SENDING_METHODS for m in methods):
        errors["sending_methods"] = "regimes.error.choice"
    v.sending_methods = [m for m in SENDING_METHODS if m in methods]
    rules = []
    for i, row in enumerate(data.get("deadline_rules", [])[:MAX_LEVELS]):
        level = re.sub(r"\s+", " ", _text(row.get("level"), 120))
        rule = _text(row.get("rule"), 20)
        from_kind = str(row.get("from_kind") or "")
        if not (level or rule):
            continue
        if from_kind and from_kind not in UNIT_KINDS:
            errors[f"deadline_rules.{i}"] = "regimes.error.choice"
        try:
            parsed = DeadlineRule.parse(rule)
            if parsed.after_previous and not rules:
                errors[f"deadline_rules.{i}"] = "regimes.error.rule_after_first"
            rule = str(parsed)
        except DeadlineRuleError:
            errors[f"deadline_rules.{i}"] = "regimes.error.rule_invalid"
        if not level:
            level = str(len(rules) + 1)
        if any(r["level"] == level for r in rules):
            errors[f"deadline_rules.{i}"] = "regimes.error.level_twice"
        rules.append({"level": level, "from_kind": from_kind, "rule": rule})
    v.deadline_rules = rules
    frequency = str(data.get("frequency") or "")
    if frequency and frequency not in REGIME_FREQUENCIES:
        errors["frequency"] = "regimes.error.choice"
        frequency = ""
    v.frequency = frequency or None
    v.cutoff_rule = str(data.get("cutoff_rule") or "decree")
    if v.cutoff_rule not in CUTOFF_RULES:
        errors["cutoff_rule"] = "regimes.error.choice"
        v.cutoff_rule = "decree"
    if v.regime_type != PERIODIC:
        v.frequency, v.cutoff_rule = CUSTOM, "custom"
    elif v.frequency == CUSTOM:
        errors["frequency"] = "regimes.error.periodic_frequency"
    v.outline = _text(data.get("outline"))
    v.data_forms = _text(data.get("data_forms"))
    v.guidance = _text(data.get("guidance"))
    v.legal_number = _text(data.get("legal_number"), 100)
    v.legal_issuer = _text(data.get("legal_issuer"), 255)
    try:
        v.legal_date = _date(data.get("legal_date"))
    except ValueError:
        errors["legal_date"] = "regimes.error.date"
    v.issuing_unit_id = _int(data.get("issuing_unit_id"))
    v.preparing_unit_id = _int(data.get("preparing_unit_id"))
    v.form_id = _int(data.get("form_id"))
    if v.form_id:
        form = Form.get_or_none(Form.id == v.form_id)
        if form is None:
            errors["form"] = "regimes.error.form_unknown"
        elif form.frequency and v.regime_type == PERIODIC and form.frequency != v.frequency:
            errors["form"] = "regimes.error.form_frequency"
    if not v.name:
        errors["name"] = "regimes.error.name_required"
    if not v.issuing_unit_id:
        errors["issuing_unit"] = "regimes.error.issuing_unit_required"
    for name, unit_id in (("issuing_unit", v.issuing_unit_id), ("preparing_unit", v.preparing_unit_id),
                          ("receiving_unit", v.receiving_unit_id), ("scope_unit", v.selector["scope_unit_id"])):
        if unit_id and Unit.get_or_none(Unit.id == unit_id) is None:
            errors[name] = "regimes.error.unit_unknown"
    listed = v.selector["unit_ids"]
    if listed and Unit.select().where(Unit.id.in_(listed)).count() != len(listed):
        errors["units"] = "regimes.error.unit_unknown"
    group_ids = v.selector["group_ids"]
    if group_ids and UnitGroup.select().where(UnitGroup.id.in_(group_ids)).count() != len(group_ids):
        errors["units"] = "regimes.error.unit_unknown"
    return v, errors


def _fields(v: RegimeValues) -> dict:
    return dict(name=v.name, regime_type=v.regime_type, content=v.content, content_type=v.content_type,
                units_selector=_dump(v.selector), receiving_unit=v.receiving_unit_id,
                receiving_rule=v.receiving_rule, receiving_group=v.receiving_group_id,
                sending_methods=_dump(v.sending_methods), deadline_rules=_dump(v.deadline_rules),
                frequency=v.frequency, cutoff_rule=v.cutoff_rule, outline=v.outline, data_forms=v.data_forms,
                guidance=v.guidance, legal_number=v.legal_number, legal_date=v.legal_date,
                legal_issuer=v.legal_issuer, issuing_unit=v.issuing_unit_id, preparing_unit=v.preparing_unit_id,
                form=v.form_id)


def save_draft(access, data: dict, *, regime_id: int | None = None, policy=None) -> Regime:
    """Create a draft (``regime_id`` None) or change a draft in place. Needs ``core.regime.edit`` at
    the preparing or the issuing unit, before and after the change."""
    policy = policy or RegimeSettings()
    actor = access.actor
    with transaction():
        existing = None
        if regime_id is not None:
            existing = get_regime(access, regime_id)
            if not can_edit(access, existing):
                raise Forbidden("regimes.error.no_edit_right")
            if existing.status != DRAFT:
                raise Forbidden("regimes.error.not_draft")
            data = {**data, "code": existing.code}
        values, errors = clean(data)
        if existing is None:
            if not values.code:
                errors["code"] = "regimes.error.code_required"
            elif not CODE_RE.match(values.code):
                errors["code"] = "regimes.error.code_invalid"
            elif Regime.select().where(Regime.code == values.code).exists():
                errors["code"] = "regimes.error.code_taken"
        if "issuing_unit" not in errors and "preparing_unit" not in errors:
            errors.update({k: v for k, v in policy_errors(values, policy).items() if k not in errors})
        if values.issuing_unit_id and not errors.get("issuing_unit") and not can_edit(access, values):
            errors["issuing_unit"] = "regimes.error.no_edit_right"
        if errors:
            raise ValidationError(errors)
        now = utcnow()
        if existing is None:
            regime = Regime.create(code=values.code, version=1, status=DRAFT, created_by=actor, updated_by=actor,
                                   created_at=now, updated_at=now, **_fields(values))
            action = "regime.create"
        else:
            regime = existing
            for name, value in _fields(values).items():
                setattr(regime, name, value)
            regime.updated_at, regime.updated_by = now, actor
            regime.save()
            action = "regime.edit"
        audit.record(action, actor=actor, unit=regime.issuing_unit_id, object_type="regime",
                     object_id=regime.id, details={"code": regime.code, "version": regime.version})
    return regime


def new_version(access, regime_id: int) -> Regime:
    """A new draft version of an issued (or suspended) regime, to edit; the existing draft of the
    code when there is one already."""
    regime = get_regime(access, regime_id)
    if not (can_edit(access, regime) or can_issue(access, regime)):
        raise Forbidden("regimes.error.no_edit_right")
    with transaction():
        draft = Regime.get_or_none((Regime.code == regime.code) & (Regime.status == DRAFT))
        if draft is not None:
            return draft
        if regime.status not in (ISSUED, SUSPENDED):
            raise Forbidden("regimes.error.version_from_issued")
        top = Regime.select(fn.MAX(Regime.version)).where(Regime.code == regime.code).scalar()
        now = utcnow()
        copy = Regime.create(code=regime.code, version=top + 1, status=DRAFT, plugin=regime.plugin,
                             created_by=access.actor, updated_by=access.actor, created_at=now, updated_at=now,
                             **_fields(RegimeValues.of(regime)))
        audit.record("regime.new_version", actor=access.actor, unit=regime.issuing_unit_id, object_type="regime",
                     object_id=copy.id, details={"code": copy.code, "version": copy.version, "from": regime.version})
    return copy


def versions(code: str) -> list[Regime]:
    return list(Regime.select().where(Regime.code == code).order_by(Regime.version.desc()))


def using_form(form: Form) -> list[Regime]:
    """Regimes that use the form (a published version cannot be deleted while used)."""
    return list(Regime.select().where(Regime.form == form))


# -- the calendar and the checks before issuing ----------------------------------------------------

@dataclass(frozen=True)
class CalendarRow:
    window: Window
    levels: tuple[LevelDeadline, ...] = ()
    error: BaocaoError | None = None


def calendar_rows(values, year: int, calendar: WorkCalendar) -> list[CalendarRow]:
    """Each window of ``year`` with its deadline per level and the Art. 8 cl. 5 result."""
    if values.frequency not in FREQUENCIES:
        return []
    rules = values.rules_by_level()
    rows = []
    for w in windows(values.frequency, year):
        if not rules:
            rows.append(CalendarRow(w))
            continue
        try:
            rows.append(CalendarRow(w, tuple(check_chain(w, rules, calendar))))
        except DeadlineChainError as exc:
            rows.append(CalendarRow(w, tuple(check_chain(w, rules, calendar, strict=False)), exc))
        except (DeadlineRuleError, DeadlineAfterFirstError) as exc:
            rows.append(CalendarRow(w, (), exc))
    return rows


def _filled(values, name: str) -> bool:
    if name == "units":
        s = values.selector
        return bool(s["kinds"] or s["unit_ids"] or s["group_ids"])
    if name == "receiving_unit":
        rule = values.receiving_rule or UNIT_RULE
        return rule == PARENT_RULE or bool(values.receiving_group_id if rule == GROUP_OWNER_RULE
                                           else values.receiving_unit_id)
    if name == "sending_methods":
        return bool(values.sending_methods if isinstance(values, RegimeValues) else values.methods)
    if name == "deadline_rules":
        return bool(values.rules)
    if name == "cutoff_rule":
        return bool(values.cutoff_rule)
    if name in ("outline", "data_forms") and getattr(values, "form_id", None):
        return True  # the linked form carries the outline and the data forms
    return bool((getattr(values, name) or "").strip()) if name != "frequency" else bool(values.frequency)


def missing_components(regime) -> list[tuple[int, str, str]]:
    """The Art. 7 components a regime still lacks before it may be issued: (number, key, name).
    Periodic: 1–9 (Art. 11); thematic and ad hoc: name, content, reporting units, receiving unit."""
    needed = range(1, 10) if regime.regime_type == PERIODIC else (1, 2, 3, 4)
    return [(n, key, vi) for n, name, key, vi in COMPONENTS if n in needed and not _filled(regime, name)]


def issue_problems(regime, calendar: WorkCalendar, today: dt.date, policy=None) -> list[BaocaoError]:
    """Everything that stops ``regime`` from being issued, as translatable errors (empty: ready)."""
    problems: list[BaocaoError] = []
    missing = missing_components(regime)
    if missing:
        problems.append(BaocaoError("regimes.error.missing_components",
                                    missing="; ".join(f"{n}. {vi}" for n, _, vi in missing)))
    if regime.regime_type == PERIODIC and not (regime.legal_number and regime.legal_date and regime.legal_issuer):
        problems.append(BaocaoError("regimes.error.legal_basis"))
    if regime.issuing_unit_id is None:
        problems.append(BaocaoError("regimes.error.issuing_unit_required"))
    if regime.receiving_rule == GROUP_OWNER_RULE and regime.receiving_group_id \
            and group_owner_id(regime.receiving_group_id) is None:
        problems.append(BaocaoError("regimes.error.group_no_owner"))
    for key in policy_errors(regime, policy or RegimeSettings()).values():
        problems.append(BaocaoError(key))
    if regime.form_id and latest_published(regime.form_id) is None:
        # Reports are opened with the form's published version: there must be one.
        problems.append(BaocaoError("regimes.error.form_unpublished"))
    if regime.regime_type == PERIODIC and regime.frequency in FREQUENCIES and regime.rules:
        for year in (today.year, today.year + 1):
            bad = next((row.error for row in calendar_rows(regime, year, calendar) if row.error), None)
            if bad is not None:
                problems.append(bad)
                break
    return problems


def link_request_form(access, regime_id: int, form_id: int | None) -> None:
    """The data form of a thematic or ad-hoc request, chosen by its issuer when opening it (the
    reports opened then take the form's published version). Audited as an edit of the regime."""
    regime = get_regime(access, regime_id)
    if not (regime.is_request and can_issue(access, regime)):
        raise Forbidden("regimes.error.no_issue_right")
    if form_id == regime.form_id:
        return
    if form_id is not None:
        chosen = Form.get_or_none(Form.id == form_id)
        if chosen is None or not can_view_form(access, chosen):
            raise ValidationError({"form": "regimes.error.form_unknown"})
        if latest_published(form_id) is None:
            raise ValidationError({"form": "regimes.error.form_unpublished"})
    with transaction():
        Regime.update(form=form_id).where(Regime.id == regime.id).execute()
        audit.record("regime.edit", actor=access.actor, unit=regime.issuing_unit_id, object_type="regime",
                     object_id=regime.id, details={"form_id": form_id})


def _lifecycle(access, regime_id: int, action: str, *, reason: str = "") -> Regime:
    regime = get_regime(access, regime_id)
    if not can_issue(access, regime):
        raise Forbidden("regimes.error.no_issue_right")
    reason = re.sub(r"\s+", " ", reason or "").strip()[:500]
    if action in ("suspend", "retire") and not reason:
        raise ValidationError({"reason": "regimes.error.reason_required"})
    allowed_from = {"suspend": (ISSUED,), "resume": (SUSPENDED,), "retire": (ISSUED, SUSPENDED)}[action]
    if regime.status not in allowed_from:
        raise Forbidden("regimes.error.wrong_status")
    with transaction():
        regime = Regime.get_by_id(regime.id)
        regime.status = {"suspend": SUSPENDED, "resume": ISSUED, "retire": RETIRED}[action]
        if action == "retire":
            regime.valid_to = clock.today()
        regime.updated_at, regime.updated_by = utcnow(), access.actor
        regime.save()
        audit.record(f"regime.{action}", actor=access.actor, unit=regime.issuing_unit_id, object_type="regime",
                     object_id=regime.id, details={"code": regime.code, "version": regime.version, "reason": reason})
    return regime


def suspend(access, regime_id: int, reason: str) -> Regime:
    return _lifecycle(access, regime_id, "suspend", reason=reason)


def resume(access, regime_id: int) -> Regime:
    return _lifecycle(access, regime_id, "resume")


def retire(access, regime_id: int, reason: str) -> Regime:
    return _lifecycle(access, regime_id, "retire", reason=reason)


def issue(access, regime_id: int, *, calendar: WorkCalendar | None = None, today: dt.date | None = None,
          policy=None, valid_from: dt.date | None = None):
    """Issue a draft: needs ``core.regime.issue`` at the issuing unit, the policy, every component
    the regime type needs and deadlines that pass Art. 8 cl. 5. The version in force (if any) is
    retired. Returns the issued regime. Opening its current period at once is the reports' side:
    the screens, the demo and the tests call ``core.reporting.opening.issue_and_open``."""
    policy = policy or RegimeSettings()
    calendar = calendar or work_calendar()
    today = today or clock.today()
    regime = get_regime(access, regime_id)
    if not can_issue(access, regime):
        raise Forbidden("regimes.error.no_issue_right")
    if regime.status != DRAFT:
        raise Forbidden("regimes.error.not_draft")
    problems = issue_problems(regime, calendar, today, policy)
    if problems:
        first = problems[0]
        exc = ValidationError({"issue": first.key}, **first.params)
        exc.key = first.key
        exc.problems = problems
        raise exc
    with transaction():
        start = max(valid_from or today, today)
        previous = list(Regime.select().where((Regime.code == regime.code) & (Regime.id != regime.id)
                                              & (Regime.status.in_([ISSUED, SUSPENDED]))))
        for old in previous:
            old.status, old.valid_to = RETIRED, start
            old.updated_at, old.updated_by = utcnow(), access.actor
            old.save()
        regime = Regime.get_by_id(regime.id)
        # Issued beyond the core's rules on a plugin's authority: remembered, so that its periods
        # open only while that authority stands.
        regime.authority = authority_reference(regime, today) if _policy_errors(regime, policy) else None
        regime.status, regime.valid_from, regime.valid_to = ISSUED, start, None
        regime.issued_at, regime.issued_by = utcnow(), access.actor
        regime.updated_at, regime.updated_by = regime.issued_at, access.actor
        regime.save()
        audit.record("regime.issue", actor=access.actor, unit=regime.issuing_unit_id, object_type="regime",
                     object_id=regime.id, details={"code": regime.code, "version": regime.version,
                                                   "supersedes": [o.version for o in previous]})
    return regime


# -- regimes shipped by plugins ------------------------------------------------------------------

@dataclass(frozen=True)
class RegimeSpec:
    """A regime a plugin ships (hook ``register_regimes``). Loaded once as a DRAFT owned by the
    plugin when no regime with its ``code`` exists; never changed afterwards by the core."""

    code: str  # "<plugin>.<name>", stable across versions
    name: str
    regime_type: str = PERIODIC
    frequency: str | None = None
    content: str = ""
    content_type: str = "both"
    reporting_kinds: tuple[str, ...] = ()
    deadline_rules: tuple = ()  # ({"level": ..., "from_kind": ..., "rule": ...}, ...) or (level, from_kind, rule)
    sending_methods: tuple[str, ...] = ("system",)
    cutoff_rule: str = "decree"
    outline: str = ""
    data_forms: str = ""
    guidance: str = ""
    legal_number: str = ""
    legal_date: dt.date | None = None
    legal_issuer: str = ""
    issuing_unit_kind: str = "province"  # the root unit of this kind issues it
    issuing_unit_code: str | None = None  # or this unit (its code); wins over the kind
    # Component 4: "unit" (``receiving_unit_code``, or the root unit of ``receiving_unit_kind``, or
    # the issuing unit), "parent" (each reporting unit's parent), "group_owner" (the owner of the
    # unit group ``receiving_group``). None: "unit".
    receiving_rule: str | None = None
    receiving_unit_kind: str | None = None  # default: the issuing unit
    receiving_unit_code: str | None = None
    receiving_group: str | None = None  # a unit group's code
    # Component 3 besides ``reporting_kinds``: a unit group's members and units by code (the union).
    reporting_group: str | None = None
    reporting_codes: tuple[str, ...] = ()
    preparing_unit_code: str | None = None  # the drafting department's unit code, when the plugin knows it
    #                                         (e.g. from its [plugins.<name>] settings)
    form: dict | None = None  # {"code", "name", "definition"}: installed as the form's published version 1


class RegimeSpecError(BaocaoError):
    """A plugin's regime names a unit or a unit group that does not exist: the message names the
    regime, the RegimeSpec field and the code."""


def spec_problems(spec: RegimeSpec) -> list[tuple[str, str, str]]:
    """(field, message key, code) for every unit or group code of ``spec`` that names nothing
    (units: those in existence today). Reads the database only for the codes the spec names."""
    today = clock.today()
    problems = []
    unit_codes = [("issuing_unit_code", spec.issuing_unit_code), ("receiving_unit_code", spec.receiving_unit_code)]
    unit_codes += [("reporting_codes", code) for code in spec.reporting_codes]
    wanted = {code for _, code in unit_codes if code}
    known = {c for (c,) in valid_units(today).select(Unit.code).where(Unit.code.in_(sorted(wanted))).tuples()} \
        if wanted else set()
    problems += [(name, "regimes.error.spec_unit_unknown", code) for name, code in unit_codes
                 if code and code not in known]
    for name, code in (("receiving_group", spec.receiving_group), ("reporting_group", spec.reporting_group)):
        if code and not UnitGroup.select().where(UnitGroup.code == code).exists():
            problems.append((name, "regimes.error.spec_group_unknown", code))
    return problems


def describe_deadline_rule(rule: str, gettext, frequency: str | None = None) -> str:
    """A deadline rule in plain words, the one way every screen shows it ("1wd" → "1 ngày làm việc
    sau ngày chốt số liệu", "day:25" → "ngày 25 hằng tháng"); the codes stay for the input field
    and the command line. ``gettext(key, **params)`` is the caller's translation (a template's
    ``_``). A rule that cannot be read is shown as typed, so a mistake stays visible."""
    try:
        parsed = DeadlineRule.parse(rule)
    except DeadlineRuleError:
        return rule or ""
    if parsed.kind == "day":
        return gettext("deadlines.describe.day_monthly" if frequency == "monthly" else "deadlines.describe.day",
                       day=parsed.n)
    key = "deadlines.describe.after" if parsed.kind == "after" else "deadlines.describe.working_days"
    return gettext(key + ("_one" if parsed.n == 1 else ""), n=parsed.n)


def _root_of_kind(kind: str) -> Unit | None:
    today = clock.today()
    return valid_units(today).where((Unit.kind == kind) & Unit.parent.is_null()).order_by(Unit.id).first() \
        or valid_units(today).where(Unit.kind == kind).order_by(Unit.id).first()


def _spec_data(spec: RegimeSpec) -> tuple[dict, Unit | None, Unit | None]:
    """The regime screen's form data for ``spec`` (units and groups named by code resolved to ids, as
    on ``today``), with its issuing and preparing units. The codes must exist (``spec_problems``)."""
    today = clock.today()

    def unit_by_code(code: str) -> Unit:
        return valid_units(today).where(Unit.code == code).order_by(Unit.id).first()

    def group_id(code: str | None) -> int | None:
        return UnitGroup.get(UnitGroup.code == code).id if code else None

    issuer = unit_by_code(spec.issuing_unit_code) if spec.issuing_unit_code else _root_of_kind(spec.issuing_unit_kind)
    rule = spec.receiving_rule or UNIT_RULE
    receiver = None
    if rule == UNIT_RULE:
        receiver = (unit_by_code(spec.receiving_unit_code) if spec.receiving_unit_code
                    else _root_of_kind(spec.receiving_unit_kind) if spec.receiving_unit_kind else issuer)
    preparer = Unit.get_or_none(Unit.code == spec.preparing_unit_code) if spec.preparing_unit_code else None
    rules = [r if isinstance(r, dict) else {"level": r[0], "from_kind": r[1] or "", "rule": r[2]}
             for r in spec.deadline_rules]
    data = {"code": spec.code, "name": spec.name, "regime_type": spec.regime_type, "content": spec.content,
            "content_type": spec.content_type, "kinds": list(spec.reporting_kinds),
            "unit_ids": sorted({unit_by_code(code).id for code in spec.reporting_codes}),
            "group_ids": [group_id(spec.reporting_group)] if spec.reporting_group else [],
            "receiving_rule": rule, "receiving_group_id": group_id(spec.receiving_group),
            "receiving_unit_id": receiver.id if receiver else None, "sending_methods": list(spec.sending_methods),
            "deadline_rules": rules, "frequency": spec.frequency, "cutoff_rule": spec.cutoff_rule,
            "outline": spec.outline, "data_forms": spec.data_forms, "guidance": spec.guidance,
            "legal_number": spec.legal_number, "legal_date": spec.legal_date, "legal_issuer": spec.legal_issuer,
            "issuing_unit_id": issuer.id if issuer else None, "preparing_unit_id": preparer.id if preparer else None}
    return data, issuer, preparer


def load_spec(plugin: str, spec) -> Regime | None:
    """Create the plugin's regime as a draft unless its code exists (administrators' edits stay)."""
    if isinstance(spec, dict):
        spec = RegimeSpec(**spec)
    if not isinstance(spec, RegimeSpec):
        raise TypeError("register_regimes must return RegimeSpec objects")
    if not spec.code.startswith(plugin + ".") or not CODE_RE.match(spec.code):
        raise ValueError(f"regime code {spec.code!r} must start with {plugin + '.'!r}")
    if Regime.select().where(Regime.code == spec.code).exists():
        return None
    problems = spec_problems(spec)
    if problems:
        name, key, code = problems[0]
        raise RegimeSpecError(key, regime=spec.code, field=name, code=code)
    data, issuer, preparer = _spec_data(spec)
    values, errors = clean(data)
    errors.pop("issuing_unit", None)  # no unit tree yet: an administrator chooses it later
    if errors:
        raise ValidationError(errors)
    with transaction():
        owner = preparer or issuer
        if spec.form and owner is not None:
            values.form_id = install_form(spec.form["code"], spec.form["name"], owner.id, spec.form["definition"],
                                          frequency=spec.frequency or "").id
        regime = Regime.create(code=spec.code, version=1, status=DRAFT, plugin=plugin, **_fields(values))
        audit.record("regime.create", object_type="regime", object_id=regime.id,
                     details={"code": regime.code, "version": 1, "plugin": plugin})
    return regime


def _current_policy() -> RegimeSettings:
    """The ``[regimes]`` policy of the application serving this request, command or task."""
    from core.reporting import events

    context = events.current.get()
    return getattr(getattr(context, "settings", None), "regimes", None) or RegimeSettings()


def draft_from_spec(access, spec: RegimeSpec, *, policy=None) -> int:
    """The id of ``spec`` made a draft by the person of ``access`` (``core.api.create_regime_draft``): a plugin
    offers a regime, someone takes it up. Its units and groups named by code are resolved as at
    start-up (``load_spec``); its form (``spec.form``) is created by that person, owned by the preparing
    unit (else the issuing unit), and published as version 1 (``forms.create_form`` and ``publish``:
    the form designer's checks and rights); the draft is saved by ``save_draft``, so it passes the
    rights and the issuing policy a draft typed on the regime screen passes (an issuing authority
    included). Unlike ``load_spec`` the draft belongs to its units, not to a plugin (``plugin`` empty):
    no plugin switch governs its reports. One transaction: a refusal leaves nothing, form included.
    Refusals: ``ValidationError`` (the screen's field keys; ``form`` for the form's code or name),
    ``FormDesignError`` (the form's definition), ``RegimeSpecError`` (a code naming no unit or group),
    ``Forbidden``."""
    if not isinstance(spec, RegimeSpec):
        raise TypeError("create_regime_draft takes a RegimeSpec")
    problems = spec_problems(spec)
    if problems:
        name, key, code = problems[0]
        raise RegimeSpecError(key, regime=spec.code, field=name, code=code)
    policy = policy or _current_policy()
    with transaction():
        data, issuer, preparer = _spec_data(spec)
        owner = preparer or issuer
        if spec.form:
            if owner is None:
                raise ValidationError({"issuing_unit": "regimes.error.issuing_unit_required"})
            try:
                form = create_form(access, spec.form["code"], spec.form["name"], owner.id,
                                   frequency=spec.frequency or "", definition=spec.form["definition"])
            except ValidationError as exc:
                # The form's own fields (its code taken, say) are said at the regime's "form" field.
                raise ValidationError({"form": next(iter(exc.errors.values()))}) from None
            publish_form(access, form.id)
            data["form_id"] = form.id
        regime = save_draft(access, data, policy=policy)
    return regime.id


def load_plugin_regimes(pm, settings=None) -> dict[str, list[str]]:
    """Call ``register_regimes`` of every healthy plugin and load what it ships (see ``load_spec``).
    A bad spec is recorded against its plugin and skipped; the others load."""
    created: dict[str, list[str]] = {}
    for name, specs in pm.call_each("register_regimes", stage="contribution", settings=settings):
        for spec in specs or ():
            try:
                regime = load_spec(name, spec)
            except Exception as exc:  # noqa: BLE001 — one bad spec drops only itself
                pm.record_error(name, "contribution", exc)
                continue
            if regime is not None:
                created.setdefault(name, []).append(regime.code)
                log.info("%s: loaded regime %s as a draft", name, regime.code)
    return created
