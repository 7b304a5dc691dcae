"""The delegation of sector reporting (Điều 6.3 of the provincial regulation): a department applies
to run reporting for its sector over a scope of units, the operator reviews the application, the
province's decision is recorded, and the delegation is then in force between its validity dates
until it is suspended, resumed, revoked or it expires.

Each service is one transaction, audited, with a step in the delegation's history. A refusal is a
``Refused`` (field → message key, the form comes back with them) or ``NotFound``/``Forbidden``;
nothing changes on a refusal. Later steps (sector regimes) ask ``in_force`` and ``scope_units``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass

from core.api import (Forbidden, IssuingAuthority, NotFound, Prepared, RoleGrant, Unit, UnitGroupInfo, User,
                      ValidationError, audit_record, notify, today, transaction, unit_chain, unit_group_members,
                      unit_groups, utcnow)

from .models import Delegation, DelegationFile, DelegationStep, load_scope

from .rights import ADMIN, APPLY, DELEGATED_ROLE, VIEW  # noqa: F401 — the routes import them from here

SECTOR_CODE = re.compile(r"[a-z][a-z0-9_]{1,19}\Z")
# Kinds a scope may name as a whole ("every commune"); a province or a department is named one by one.
SCOPE_KINDS = ("commune", "agency", "organisation")
# Units that can apply: a department (sở, ngành) or an agency of the province.
APPLICANT_KINDS = ("department", "agency")
LIVE = ("applied", "returned", "approved", "suspended")  # may still be (or become) in force
MAX_FILE_BYTES = 10 * 1024 * 1024
PDF_MAGIC = b"%PDF-"
TEXT_CAP = {"sector_name": 255, "purpose": 4000, "reason": 2000, "decision_number": 60,
            "signer_name": 255, "signer_title": 255}
UNITS_NAMED = 5  # units named in an overlap refusal; the rest are counted


class Refused(ValidationError):
    """Bad input: ``errors`` maps a field to a message key of the plugin, ``field_params`` its
    parameters (the overlap names the other delegation)."""

    def __init__(self, errors: dict[str, str], field_params: dict[str, dict] | None = None):
        super().__init__(errors)
        self.field_params = field_params or {}


# -- reading ----------------------------------------------------------------------------------------

def shown_status(delegation: Delegation, day: dt.date | None = None) -> str:
    """The stored status, or ``expired`` once an approved or suspended delegation is past valid_to."""
    day = day or today()
    if delegation.status in ("approved", "suspended") and delegation.valid_to and delegation.valid_to < day:
        return "expired"
    return delegation.status


def _units_on(day: dt.date):
    return Unit.select().where((Unit.valid_from.is_null() | (Unit.valid_from <= day))
                               & (Unit.valid_to.is_null() | (Unit.valid_to >= day)))


def resolve_scope(scope: dict, day: dt.date | None = None) -> set[int]:
    """The concrete unit ids a scope names on ``day``: the units listed, the members of the groups
    chosen as the groups stand that day, and every unit of the kinds chosen, among the units in
    existence that day."""
    day = day or today()
    kinds, listed = set(scope.get("kinds", ())), set(scope.get("unit_ids", ()))
    for group_id in scope.get("group_ids", ()):
        listed |= unit_group_members(group_id, day)
    if not kinds and not listed:
        return set()
    return {u.id for u in _units_on(day).select(Unit.id, Unit.kind)
            if u.id in listed or u.kind in kinds}


def scope_units(delegation: Delegation, day: dt.date | None = None) -> list[int]:
    """The ids of the units within ``delegation``'s scope on ``day``, sorted."""
    return sorted(resolve_scope(delegation.scope_selector, day))


def in_force(department_unit_id: int, sector: str, day: dt.date | None = None) -> Delegation | None:
    """The delegation giving ``department_unit_id`` the sector ``sector`` on ``day``, or None: approved
    (not suspended, not revoked) and ``valid_from`` ≤ day ≤ ``valid_to`` (open end allowed)."""
    day = day or today()
    return (Delegation.select()
            .where((Delegation.department_unit_id == department_unit_id) & (Delegation.sector == sector)
                   & _standing(day))
            .order_by(Delegation.valid_from.desc(), Delegation.id.desc()).first())


def _standing(day: dt.date):
    """In force on ``day``: approved (not suspended, not revoked) and ``valid_from`` ≤ day ≤ ``valid_to``."""
    return ((Delegation.status == "approved") & (Delegation.valid_from <= day)
            & (Delegation.valid_to.is_null() | (Delegation.valid_to >= day)))


def authorities(department_unit_id: int, day: dt.date | None = None) -> list[IssuingAuthority]:
    """What the department may issue on ``day`` (the core's hook ``issuing_authorities``): one
    authority per delegation in force, over its scope's units, on its decision's number. A
    suspended, revoked or expired delegation grants nothing: its regimes open no new period."""
    day = day or today()
    rows = (Delegation.select().where((Delegation.department_unit_id == department_unit_id) & _standing(day))
            .order_by(Delegation.id))
    return [IssuingAuthority(key=str(d.id), issuing_unit_id=department_unit_id,
                             unit_ids=frozenset(scope_units(d, day)), legal_number=d.decision_number,
                             label=f"{d.decision_number} — {d.sector_name}")
            for d in rows if d.decision_number]


# Asked on every request of every user: compiled once. The stored list is JSON ("[12, 5]"): the
# text filter keeps the query small, the parsed list decides.
_NAMING = Prepared(lambda p: Delegation.select(Delegation.department_unit_id, Delegation.administrators)
                   .where(_standing(p.day) & Delegation.administrators.contains(p.user_text)))


def role_grants(user_id: int, day: dt.date | None = None) -> list[RoleGrant]:
    """The roles the delegations give ``user_id`` on ``day`` (the core's hook ``role_grants``): the
    delegated administrator's role at the department of each delegation in force that names the user
    among its administrators. One query, asked on each of the user's requests; a delegation
    suspended, revoked or expired gives nothing, so ending it ends the role with nothing to clean up."""
    rows = _NAMING.run(day=day or today(), user_text=str(int(user_id)))
    departments = {d.department_unit_id for d in rows if user_id in d.administrator_ids}
    return [RoleGrant(unit_id, DELEGATED_ROLE) for unit_id in sorted(departments)]


def is_operator(access) -> bool:
    return access.allowed(ADMIN)


def can_read(access, delegation: Delegation) -> bool:
    if is_operator(access):
        return True
    actor_id = getattr(access.actor, "id", None)
    if actor_id is not None and (actor_id == delegation.applicant_id or actor_id in delegation.administrator_ids):
        return True
    chain = unit_chain(delegation.department_unit_id)
    return access.allowed(VIEW, chain) or access.allowed(APPLY, chain)


def can_change(access, delegation: Delegation) -> bool:
    """The department's side: change and send again a returned application."""
    return access.allowed(APPLY, unit_chain(delegation.department_unit_id))


def get(access, delegation_id) -> Delegation:
    """The delegation, if ``access`` may read it; otherwise NotFound (its existence is not told)."""
    try:
        delegation = Delegation.get_or_none(Delegation.id == int(delegation_id))
    except (TypeError, ValueError):
        delegation = None
    if delegation is None or not can_read(access, delegation):
        raise NotFound()
    return delegation


def visible(access, *, status: str = "", sector: str = "", department_id: int | None = None,
            day: dt.date | None = None) -> list[Delegation]:
    """The delegations ``access`` may read, newest change first, filtered."""
    day = day or today()
    query = Delegation.select().order_by(Delegation.updated_at.desc(), Delegation.id.desc())
    if sector:
        query = query.where(Delegation.sector == sector)
    if department_id:
        query = query.where(Delegation.department_unit_id == department_id)
    return [d for d in query if can_read(access, d) and (not status or shown_status(d, day) == status)]


def allowed_actions(access, delegation: Delegation, day: dt.date | None = None) -> list[str]:
    """What ``access`` may do now on ``delegation``, in the order the page shows them."""
    status = shown_status(delegation, day)
    actions = []
    if status == "returned" and can_change(access, delegation):
        actions.append("change")
    if is_operator(access):
        actions += {"applied": ["decide", "return", "revoke"], "returned": ["revoke"],
                    "approved": ["suspend", "revoke"], "suspended": ["resume", "revoke"]}.get(status, [])
    return actions


def history(delegation: Delegation) -> list[DelegationStep]:
    return list(DelegationStep.select().where(DelegationStep.delegation_id == delegation.id)
                .order_by(DelegationStep.at, DelegationStep.id))


def decision_file(delegation: Delegation) -> DelegationFile | None:
    return (DelegationFile.select().where(DelegationFile.delegation_id == delegation.id)
            .order_by(DelegationFile.id.desc()).first())


def units_named(unit_ids) -> list[Unit]:
    ids = list(unit_ids)
    return list(Unit.select().where(Unit.id.in_(ids)).order_by(Unit.name)) if ids else []


def groups_named(group_ids) -> list[tuple[int, UnitGroupInfo | None]]:
    """Each group id with its group, by name; None for a group deleted since (its id stays in the
    scope, and it has no member)."""
    groups = {g.id: g for g in unit_groups()}
    ids = sorted(set(group_ids), key=lambda i: (i not in groups, groups[i].name if i in groups else "", i))
    return [(i, groups.get(i)) for i in ids]


def users_named(user_ids) -> list[User]:
    ids = list(user_ids)
    return list(User.select().where(User.id.in_(ids)).order_by(User.full_name)) if ids else []


def applicant_units(access) -> list[Unit]:
    """The departments and agencies for which ``access`` may apply."""
    return [u for u in _units_on(today()).where(Unit.kind.in_(APPLICANT_KINDS)).order_by(Unit.name)
            if access.allowed(APPLY, unit_chain(u.id))]


def scope_choices() -> list[Unit]:
    """Units a scope may list one by one: everything in existence but the province itself."""
    return list(_units_on(today()).where(Unit.kind != "province").order_by(Unit.kind, Unit.name))


def administrator_choices(department_ids) -> list[User]:
    """Active accounts of the given departments (and their units below), for "requested administrators"."""
    wanted = set(department_ids)
    return [u for u in User.select().where(User.is_active == True).order_by(User.full_name)  # noqa: E712
            if wanted & set(unit_chain(u.unit_id))]


# -- input ------------------------------------------------------------------------------------------

@dataclass
class Application:
    """What the department types: every field as the form sends it (text, lists of text)."""

    department_unit_id: str = ""
    sector: str = ""
    sector_name: str = ""
    scope_unit_ids: tuple = ()
    scope_kinds: tuple = ()
    scope_group_ids: tuple = ()
    purpose: str = ""
    administrator_ids: tuple = ()


def parse_id(value) -> int | None:
    """An id typed or sent by a form, or None."""
    text = str(value).strip()
    # isascii: "²".isdigit() is true but int("²") raises.
    return int(text) if text.isascii() and text.isdigit() and len(text) < 12 else None


def _ids(values) -> list[int] | None:
    """The ids given, or None when one is not an id at all."""
    out = [parse_id(v) for v in values if str(v).strip()]
    return None if None in out else sorted(set(out))


def _text(value, field: str, errors: dict, required: bool = True) -> str:
    text = " ".join(str(value or "").split()) if field != "purpose" else str(value or "").strip()
    if required and not text:
        errors[field] = "chuyen_nganh.error.required"
    elif len(text) > TEXT_CAP[field]:
        errors[field] = "chuyen_nganh.error.too_long"
    return text


def parse_date(value, field: str, errors: dict, required: bool = True) -> dt.date | None:
    """A date as a browser's date field sends it (2026-03-05) or as people write it (05/03/2026)."""
    if isinstance(value, dt.date):
        return value
    text = str(value or "").strip()
    if not text:
        if required:
            errors[field] = "chuyen_nganh.error.required"
        return None
    for pattern in ("%Y-%m-%d", "%d/%m/%Y"):
        try:
            return dt.datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    errors[field] = "chuyen_nganh.error.date"
    return None


def _clean_application(form: Application, errors: dict) -> dict:
    values = {"sector": str(form.sector or "").strip().lower(),
              "sector_name": _text(form.sector_name, "sector_name", errors),
              "purpose": _text(form.purpose, "purpose", errors)}
    if not SECTOR_CODE.match(values["sector"]):
        errors["sector"] = "chuyen_nganh.error.sector_code"
    department_id = parse_id(form.department_unit_id)
    # A department that exists today (not one merged away) and may apply.
    department = _units_on(today()).where((Unit.id == (department_id or 0)) & Unit.kind.in_(APPLICANT_KINDS)).first()
    if department is None:
        errors["department_unit_id"] = "chuyen_nganh.error.department"
    values["department_unit_id"] = department_id
    unit_ids, kinds = _ids(form.scope_unit_ids), [str(k) for k in form.scope_kinds if str(k).strip()]
    group_ids = _ids(form.scope_group_ids)
    known = {u.id for u in _units_on(today()).where(Unit.id.in_(unit_ids or [0]))}
    if unit_ids is None or set(unit_ids) - known:
        errors["scope"] = "chuyen_nganh.error.unknown_unit"
    elif set(kinds) - set(SCOPE_KINDS):
        errors["scope"] = "chuyen_nganh.error.unknown_kind"
    elif group_ids is None or set(group_ids) - {g.id for g in unit_groups()}:
        errors["scope"] = "chuyen_nganh.error.unknown_group"
    elif not unit_ids and not kinds and not group_ids:
        errors["scope"] = "chuyen_nganh.error.empty_scope"
    # A group is kept by id, not by its members: the scope follows the group as it changes.
    values["scope"] = {"unit_ids": unit_ids or [], "kinds": sorted(set(kinds)), "group_ids": group_ids or []}
    admin_ids = _ids(form.administrator_ids)
    if admin_ids is None:
        errors["administrators"] = "chuyen_nganh.error.unknown_user"
    elif not admin_ids:
        errors["administrators"] = "chuyen_nganh.error.no_administrator"
    elif department is not None:
        users = {u.id: u for u in User.select().where(User.id.in_(admin_ids) & (User.is_active == True))}  # noqa: E712
        if set(admin_ids) - set(users) or any(department.id not in unit_chain(u.unit_id) for u in users.values()):
            errors["administrators"] = "chuyen_nganh.error.unknown_user"
    values["administrators"] = admin_ids or []
    return values


# -- the overlap rule -------------------------------------------------------------------------------

def _overlap_refusal(sector: str, units: set[int], start: dt.date, end: dt.date | None,
                     exclude_id: int | None, field: str = "scope") -> Refused | None:
    """Two delegations of one sector sharing a unit at the same time are refused, naming the other.
    An application not yet decided counts from today with no end."""
    day = today()
    others = Delegation.select().where((Delegation.sector == sector) & Delegation.status.in_(LIVE))
    for other in others.order_by(Delegation.id):
        if other.id == exclude_id or shown_status(other, day) == "expired":
            continue
        other_start, other_end = other.valid_from or day, other.valid_to
        if (end is not None and end < other_start) or (other_end is not None and other_end < start):
            continue
        shared = units & resolve_scope(other.scope_selector, max(start, other_start, day))
        if not shared:
            continue
        names = [u.name for u in units_named(shared)]
        listed = ", ".join(names[:UNITS_NAMED]) + (f" (+{len(names) - UNITS_NAMED})" if len(names) > UNITS_NAMED else "")
        department = Unit.get_or_none(Unit.id == other.department_unit_id)
        params = {"number": other.decision_number, "id": other.id, "sector": f"{other.sector_name} ({other.sector})",
                  "units": listed, "department": department.name if department else ""}
        key = "chuyen_nganh.error.overlap_decided" if other.decision_number else "chuyen_nganh.error.overlap_applied"
        return Refused({field: key}, {field: params})
    return None


# -- the steps --------------------------------------------------------------------------------------

def _tell(access, delegation: Delegation, action: str, reason: str = "") -> None:
    """The people concerned hear of a step in their notifications (and e-mail): the operators of an
    application sent or sent again; the applicant and the administrators it names of the rest."""
    if action in ("apply", "change"):
        people = [u for (u,) in User.select(User.id).where(User.is_admin == True).tuples()]  # noqa: E712
    else:
        people = [delegation.applicant_id, *delegation.administrator_ids]
    department = Unit.get_or_none(Unit.id == delegation.department_unit_id)
    notify(access, people, f"chuyen_nganh.notice.{action}",
           {"sector": delegation.sector_name, "department": department.name if department else "",
            "number": delegation.decision_number or f"#{delegation.id}"},
           link=f"/p/chuyen_nganh/{delegation.id}", reason=reason)


def _step(access, delegation: Delegation, action: str, reason: str = "", details: dict | None = None) -> None:
    """One step: its row of the history, its audit event, and the people told (``_tell``)."""
    actor = access.actor
    DelegationStep.create(delegation_id=delegation.id, at=utcnow(), actor_id=getattr(actor, "id", None),
                          actor_name=getattr(actor, "full_name", "") or getattr(actor, "username", "") or "",
                          action=action, reason=reason,
                          details=json.dumps(details or {}, ensure_ascii=False, sort_keys=True, default=str))
    audit_record(f"chuyen_nganh.delegation.{action}", actor=actor, unit=delegation.department_unit_id,
                 object_type="chuyen_nganh.delegation", object_id=delegation.id,
                 details={"sector": delegation.sector, "status": delegation.status, **({"reason": reason} if reason else {}),
                          **(details or {})})
    _tell(access, delegation, action, reason)


def _move(delegation: Delegation, allowed_from: tuple[str, ...], **changes) -> None:
    """Change the row only if it is still in one of ``allowed_from`` (two operators acting at once:
    the second is refused, nothing is overwritten)."""
    changes.setdefault("updated_at", utcnow())
    count = (Delegation.update(**changes)
             .where((Delegation.id == delegation.id) & Delegation.status.in_(allowed_from)).execute())
    if count != 1:
        raise Refused({"form": "chuyen_nganh.error.state"})
    for name, value in changes.items():
        setattr(delegation, name, value)


def _require_state(delegation: Delegation, states: tuple[str, ...]) -> None:
    if shown_status(delegation) not in states:
        raise Refused({"form": "chuyen_nganh.error.state"})


def apply(access, form: Application) -> Delegation:
    """A department applies (``APPLY`` at the department's unit)."""
    errors: dict[str, str] = {}
    values = _clean_application(form, errors)
    if "department_unit_id" not in errors and not access.allowed(APPLY, unit_chain(values["department_unit_id"])):
        raise Forbidden()
    if errors:
        raise Refused(errors)
    with transaction():
        refusal = _overlap_refusal(values["sector"], resolve_scope(values["scope"]), today(), None, None)
        if refusal:
            raise refusal
        delegation = Delegation.create(
            department_unit_id=values["department_unit_id"], sector=values["sector"],
            sector_name=values["sector_name"], purpose=values["purpose"],
            scope=json.dumps(values["scope"], sort_keys=True), administrators=json.dumps(values["administrators"]),
            status="applied", applicant_id=access.actor.id, applied_at=utcnow(), updated_at=utcnow())
        _step(access, delegation, "apply", details={"scope": values["scope"],
                                                          "administrators": values["administrators"]})
    return delegation


def change(access, delegation_id, form: Application) -> Delegation:
    """The department changes a returned application and sends it again (it is ``applied`` again)."""
    delegation = get(access, delegation_id)
    if not can_change(access, delegation):
        raise Forbidden()
    _require_state(delegation, ("returned",))
    errors: dict[str, str] = {}
    form.department_unit_id = str(delegation.department_unit_id)  # the applicant does not change
    values = _clean_application(form, errors)
    if errors:
        raise Refused(errors)
    with transaction():
        refusal = _overlap_refusal(values["sector"], resolve_scope(values["scope"]), today(), None, delegation.id)
        if refusal:
            raise refusal
        _move(delegation, ("returned",), status="applied", sector=values["sector"], sector_name=values["sector_name"],
              purpose=values["purpose"], scope=json.dumps(values["scope"], sort_keys=True),
              administrators=json.dumps(values["administrators"]))
        _step(access, delegation, "change", details={"scope": values["scope"],
                                                           "administrators": values["administrators"]})
    return delegation


def _operator_step(access, delegation_id, reason, states: tuple[str, ...], action: str, **changes) -> Delegation:
    if not is_operator(access):
        raise Forbidden()
    delegation = get(access, delegation_id)
    errors: dict[str, str] = {}
    reason = _text(reason, "reason", errors)
    if errors:
        raise Refused(errors)
    _require_state(delegation, states)
    with transaction():
        _move(delegation, states, status_reason=reason, **changes)
        _step(access, delegation, action, reason)
    return delegation


def return_for_changes(access, delegation_id, reason: str) -> Delegation:
    """The operator asks the department to change its application, saying why."""
    return _operator_step(access, delegation_id, reason, ("applied",), "return", status="returned",
                          return_reason=" ".join(str(reason or "").split())[:TEXT_CAP["reason"]])


def suspend(access, delegation_id, reason: str) -> Delegation:
    return _operator_step(access, delegation_id, reason, ("approved",), "suspend", status="suspended")


def resume(access, delegation_id, reason: str) -> Delegation:
    return _operator_step(access, delegation_id, reason, ("suspended",), "resume", status="approved")


def revoke(access, delegation_id, reason: str) -> Delegation:
    """Ends the delegation (or a file still under review) for good; what was reported under it stays."""
    return _operator_step(access, delegation_id, reason, ("applied", "returned", "approved", "suspended"), "revoke",
                          status="revoked")


@dataclass
class Decision:
    number: str = ""
    date: object = ""
    signer_name: str = ""
    signer_title: str = ""
    valid_from: object = ""
    valid_to: object = ""
    file: tuple | None = None  # (filename, bytes)


def _check_file(file, errors: dict) -> tuple[str, bytes] | None:
    if not file or not file[1]:
        errors["file"] = "chuyen_nganh.error.file_required"
        return None
    name, content = file
    if len(content) > MAX_FILE_BYTES:
        errors["file"] = "chuyen_nganh.error.file_size"
    elif not content.startswith(PDF_MAGIC):
        errors["file"] = "chuyen_nganh.error.file_type"
    name = str(name or "").replace("\\", "/").rsplit("/", 1)[-1].strip()[:200] or "quyet-dinh.pdf"
    return name, content


def record_decision(access, delegation_id, decision: Decision) -> Delegation:
    """The operator records the province's decision: the delegation is in force from ``valid_from``."""
    if not is_operator(access):
        raise Forbidden()
    delegation = get(access, delegation_id)
    errors: dict[str, str] = {}
    number = _text(decision.number, "decision_number", errors)
    signer_name = _text(decision.signer_name, "signer_name", errors)
    signer_title = _text(decision.signer_title, "signer_title", errors)
    date = parse_date(decision.date, "decision_date", errors)
    if date and date > today():
        errors["decision_date"] = "chuyen_nganh.error.future_date"
    valid_from = parse_date(decision.valid_from, "valid_from", errors)
    valid_to = parse_date(decision.valid_to, "valid_to", errors, required=False)
    if valid_from and valid_to and valid_to < valid_from:
        errors["valid_to"] = "chuyen_nganh.error.valid_to"
    file = _check_file(decision.file, errors)
    if errors:
        raise Refused(errors)
    _require_state(delegation, ("applied",))
    with transaction():
        refusal = _overlap_refusal(delegation.sector, resolve_scope(delegation.scope_selector, max(valid_from, today())),
                                   valid_from, valid_to, delegation.id, field="form")
        if refusal:
            raise refusal
        _move(delegation, ("applied",), status="approved", decision_number=number, decision_date=date,
              signer_name=signer_name, signer_title=signer_title, valid_from=valid_from, valid_to=valid_to,
              return_reason="")
        DelegationFile.create(delegation_id=delegation.id, filename=file[0], size=len(file[1]),
                              sha256=hashlib.sha256(file[1]).hexdigest(), content=file[1], uploaded_at=utcnow(),
                              uploaded_by=access.actor.id)
        _step(access, delegation, "decide",
              details={"decision_number": number, "decision_date": date, "signer": f"{signer_name}, {signer_title}",
                       "valid_from": valid_from, "valid_to": valid_to, "file_sha256": hashlib.sha256(file[1]).hexdigest()})
    return delegation


# -- what people need to know -----------------------------------------------------------------------

RECENT_DAYS = 14


def news_for(access, day: dt.date | None = None, limit: int = 8) -> dict:
    """The home widget: for the operator, applications waiting; for the department's people, their
    delegations needing action (returned) and those changed lately."""
    if not is_operator(access) and not access.roots(VIEW):
        # Most people hold no right over delegations: their home page asks nothing more.
        return {"waiting": [], "waiting_count": 0, "to_change": [], "recent": [], "operator": False}
    day = day or today()
    since = utcnow() - dt.timedelta(days=RECENT_DAYS)
    rows = visible(access, day=day)
    waiting = [d for d in rows if d.status == "applied"] if is_operator(access) else []
    to_change = [d for d in rows if d.status == "returned" and can_change(access, d)]
    recent = [d for d in rows if d.updated_at >= since and d not in waiting and d not in to_change]
    return {"waiting": waiting[:limit], "waiting_count": len(waiting), "to_change": to_change[:limit],
            "recent": recent[:limit], "operator": is_operator(access)}
