"""The sector's catalogue (issue 15, item 2): the indicator groups and indicators a department keeps
for its sector while a delegation is in force — ordinary rows of the province's catalogue, with codes
in the sector's own namespace, written through ``core.api`` only (docs/sector_catalogue.md).

The namespace. A sector owns two capital letters, the owner part of the catalogue's local codes
(``NN01`` a group, ``NN0101`` one of its indicators; national codes are T, H or X and a digit, so
they can never be one). The letters are proposed from the sector's code — the code itself when it is
two letters (``nn`` → NN), else the initials of its first two words (``nong_nghiep`` → NN), else its
first two letters — and claimed by the sector's first write (a group, an import). A proposal already
taken (another sector's, or letters the catalogue already uses: a plugin's ``KX``, the province's
own) is refused, and the department's administrator then chooses other letters. A claim is a row of
``chuyen_nganh_sector_namespace``, unique by sector and unique by letters, so two sectors can never
share them, even claiming at the same moment; it outlives every delegation of the sector, so a new
delegation of the same sector finds its indicators again.

Rights. A delegation's catalogue is read by whoever may read the delegation (its department's
``VIEW``, its administrators, the operator) or holds ``CATALOGUE`` at the department, and changed
only by a holder of ``CATALOGUE`` there — both only while the delegation is in force: before its
decision, suspended, revoked or expired, every screen answers a ``Refusal`` (403) saying so. Others
get ``NotFound``. Each write is one transaction that checks all of this again, and is audited.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass

from peewee import CharField, DateTimeField, IntegerField, IntegrityError

from core.api import (INDICATOR_LEVELS, Forbidden, NotFound, Unit, ValidationError, apply_indicator_plan,
                      audit_record, create_indicator, current_indicator, describe_indicator_plan, edit_indicator,
                      export_indicator_table, fold, indicator_groups_of, parse_indicator_table,
                      save_indicator_group, search_indicators, today, transaction, unit_chain, utcnow)

from . import delegation as svc
from .models import Base, Delegation
from .rights import CATALOGUE

PREFIX = re.compile(r"[A-Z]{2}\Z")
NATIONAL_CODE = re.compile(r"[THX]\d{2}(\d{2})?\Z")  # the catalogue's CODE_RE: a QĐ 05/2023 row
NAME_MAX = 255  # a group's name (core_indicatorgroup.name)
EXPORT_FORMATS = ("xlsx", "csv")
AUDIT_TYPE = "chuyen_nganh.catalogue"


class SectorNamespace(Base):  # chuyen_nganh_sector_namespace: the letters each sector owns
    sector = CharField(max_length=20, unique=True)
    prefix = CharField(max_length=2, unique=True)
    delegation_id = IntegerField()  # the delegation under which the letters were claimed
    claimed_at = DateTimeField(default=utcnow)
    claimed_by = IntegerField(null=True)


class Refusal(Forbidden):
    """The catalogue of a delegation that does not stand today, or a change asked by a reader only:
    403 with why (``key``: ``chuyen_nganh.catalogue.refused.<why>``), nothing changed."""


class Refused(svc.Refused):
    """Bad input: ``errors`` maps a field to a message key, ``field_params`` its parameters."""


# -- whose catalogue, and whether it stands ---------------------------------------------------------

def standing(delegation: Delegation, day: dt.date | None = None) -> str:
    """``in_force``; ``not_yet`` (no decision yet, or a decision that starts later); ``suspended``;
    ``ended`` (revoked, or past its end date)."""
    shown = svc.shown_status(delegation, day)
    if shown == "approved":
        return "in_force" if delegation.valid_from and delegation.valid_from <= (day or today()) else "not_yet"
    return {"applied": "not_yet", "returned": "not_yet", "suspended": "suspended"}.get(shown, "ended")


def can_edit(access, delegation: Delegation) -> bool:
    return access.allowed(CATALOGUE, unit_chain(delegation.department_unit_id))


def can_see(access, delegation: Delegation) -> bool:
    return can_edit(access, delegation) or svc.can_read(access, delegation)


def open_delegation(access, delegation_id, *, edit: bool = False, day: dt.date | None = None) -> Delegation:
    """The delegation whose catalogue ``access`` reads (``edit``: changes) today; ``NotFound`` when
    ``access`` may not know of it, ``Refusal`` when it does not stand or only reading is allowed."""
    delegation = Delegation.get_or_none(Delegation.id == (svc.parse_id(delegation_id) or 0))
    if delegation is None or not can_see(access, delegation):
        raise NotFound()
    state = standing(delegation, day)
    if state != "in_force":
        raise Refusal(f"chuyen_nganh.catalogue.refused.{state}", sector=delegation.sector_name,
                      number=delegation.decision_number or "—")
    if edit and not can_edit(access, delegation):
        raise Refusal("chuyen_nganh.catalogue.refused.read_only", sector=delegation.sector_name,
                      number=delegation.decision_number or "—")
    return delegation


def delegations(access, day: dt.date | None = None) -> list[dict]:
    """Every decided delegation whose catalogue ``access`` may see, newest first, with how it stands."""
    rows = Delegation.select().where(Delegation.decision_number != "").order_by(Delegation.valid_from.desc(),
                                                                                 Delegation.id.desc())
    rows = [d for d in rows if can_see(access, d)]
    units = {u.id: u for u in svc.units_named({d.department_unit_id for d in rows})}
    return [{"d": d, "department": units.get(d.department_unit_id), "state": standing(d, day),
             "prefix": namespace(d.sector), "can_edit": can_edit(access, d)} for d in rows]


# -- the namespace ----------------------------------------------------------------------------------

def namespace(sector: str) -> str | None:
    """The letters ``sector`` has claimed, or None."""
    row = SectorNamespace.get_or_none(SectorNamespace.sector == sector)
    return row.prefix if row else None


def proposal(sector: str) -> str:
    """The letters proposed for ``sector`` (see the module's docstring); "" when it has too few letters."""
    words = [w for w in sector.split("_") if w]
    if len(words) >= 2 and words[0][0].isalpha() and words[1][0].isalpha():
        letters = words[0][0] + words[1][0]
    else:
        letters = "".join(c for c in sector if c.isalpha())[:2]
    return letters.upper() if len(letters) == 2 else ""


def _sector_name(sector: str) -> str:
    latest = Delegation.select().where(Delegation.sector == sector).order_by(Delegation.id.desc()).first()
    return f"{latest.sector_name} ({sector})" if latest else sector


def prefix_problem(prefix: str, sector: str) -> tuple[str, dict] | None:
    """Why ``sector`` cannot have ``prefix`` (a message key and its parameters), or None."""
    if not PREFIX.match(prefix or ""):
        return "chuyen_nganh.catalogue.error.prefix_shape", {}
    owner = SectorNamespace.get_or_none(SectorNamespace.prefix == prefix)
    if owner is not None and owner.sector != sector:
        return "chuyen_nganh.catalogue.error.prefix_sector", {"prefix": prefix, "sector": _sector_name(owner.sector)}
    if owner is None and indicator_groups_of(prefix):
        # Letters the catalogue uses already: a plugin's (KX of kinhte_xahoi) or the province's own.
        return "chuyen_nganh.catalogue.error.prefix_used", {"prefix": prefix}
    return None


@dataclass
class Namespace:
    """What a screen says of a sector's letters: claimed, or proposed (and whether they are free)."""

    prefix: str | None
    proposal: str
    problem: tuple[str, dict] | None  # why the proposal cannot be used

    @property
    def letters(self) -> str | None:
        """The letters the next write uses: the claimed ones, else a free proposal."""
        return self.prefix or (self.proposal if self.proposal and self.problem is None else None)


def namespace_of(delegation: Delegation) -> Namespace:
    claimed = namespace(delegation.sector)
    if claimed:
        return Namespace(claimed, claimed, None)
    proposed = proposal(delegation.sector)
    problem = (prefix_problem(proposed, delegation.sector) if proposed
               else ("chuyen_nganh.catalogue.error.no_proposal", {}))
    return Namespace(None, proposed, problem)


def _claim(access, delegation: Delegation, prefix: str) -> str:
    """Inside the caller's transaction: ``prefix`` becomes the sector's, audited."""
    problem = prefix_problem(prefix, delegation.sector)
    if problem:
        raise Refused({"prefix": problem[0]}, {"prefix": problem[1]})
    try:
        with transaction():  # a savepoint: a claim lost to another request leaves the caller's open
            SectorNamespace.create(sector=delegation.sector, prefix=prefix, delegation_id=delegation.id,
                                   claimed_at=utcnow(), claimed_by=getattr(access.actor, "id", None))
    except IntegrityError:
        raise Refused({"prefix": "chuyen_nganh.catalogue.error.prefix_race"}, {"prefix": {"prefix": prefix}}) from None
    _audit(access, delegation, "namespace", prefix, details={"prefix": prefix})
    return prefix


def _letters(access, delegation: Delegation) -> str:
    """Inside a write's transaction: the sector's letters, claiming the proposal on the first write."""
    space = namespace_of(delegation)
    if space.prefix:
        return space.prefix
    if space.letters is None:
        raise Refused({"prefix": "chuyen_nganh.catalogue.error.no_namespace"}, {"prefix": {"prefix": space.proposal}})
    return _claim(access, delegation, space.letters)


def choose_prefix(access, delegation_id, prefix: str) -> str:
    """The department's administrator chooses the sector's letters (when the proposal is taken)."""
    prefix = str(prefix or "").strip().upper()[:10]
    with transaction():
        delegation = open_delegation(access, delegation_id, edit=True)
        claimed = namespace(delegation.sector)
        if claimed:
            raise Refused({"prefix": "chuyen_nganh.catalogue.error.prefix_claimed"}, {"prefix": {"prefix": claimed}})
        return _claim(access, delegation, prefix)


def _audit(access, delegation: Delegation, what: str, code: str, *, details: dict) -> None:
    # The delegation is named by its decision: what gave the department the right to the change.
    audit_record(f"chuyen_nganh.catalogue.{what}", actor=access.actor, unit=delegation.department_unit_id,
                 object_type=AUDIT_TYPE, object_id=code,
                 details={"sector": delegation.sector, "decision_number": delegation.decision_number, **details})


# -- reading ----------------------------------------------------------------------------------------

def _matches(words: list[str], code: str, name: str) -> bool:
    text = f"{fold(code)} {fold(name)}"
    return all(word in text for word in words)


def listing(prefix: str | None, q: str = "") -> list[dict]:
    """The sector's groups, each with its current indicators, in code order; with ``q`` (every word,
    ignoring case and diacritics, in a code or a name), the indicators found and the groups found."""
    if not prefix:
        return []
    found: dict[int, list] = {}
    for item in search_indicators(q, prefix=prefix):
        found.setdefault(item.group_id, []).append(item)  # by id: no query per row for its group
    words = fold(q or "").split()
    return [{"group": g, "items": found.get(g.id, [])} for g in indicator_groups_of(prefix)
            if not words or g.id in found or _matches(words, g.code, g.name)]


def sector_group(prefix: str | None, code: str):
    """The group ``code`` of the sector, or NotFound (another owner's code is never opened here)."""
    code = str(code or "").upper()
    if not prefix or not re.fullmatch(prefix + r"\d{2}", code):
        raise NotFound()
    group = next((g for g in indicator_groups_of(prefix) if g.code == code), None)
    if group is None:
        raise NotFound()
    return group


def sector_indicator(prefix: str | None, code: str):
    """The current version of the sector's indicator ``code``, or NotFound."""
    code = str(code or "").upper()
    if not prefix or not re.fullmatch(prefix + r"\d{4}", code):
        raise NotFound()
    item = current_indicator(code)
    if item is None:
        raise NotFound()
    return item


def linked(codes) -> dict[str, str]:
    """The names of the higher-level (QĐ 05/2023) indicators the sector's rows link to, where known."""
    names = {}
    for code in sorted({c for c in codes if c}):
        item = current_indicator(code)
        if item is not None:
            names[code] = item.name
    return names


# -- groups -----------------------------------------------------------------------------------------

def _group_name(value, errors: dict) -> str:
    name = " ".join(str(value or "").split())
    if not name:
        errors["name"] = "chuyen_nganh.catalogue.error.required"
    elif len(name) > NAME_MAX:
        errors["name"] = "chuyen_nganh.catalogue.error.too_long"
    return name


def create_group(access, delegation_id, code: str, name: str, level: str):
    """A new group of the sector: ``<letters><2 digits>``, a name and the one level it serves."""
    errors: dict[str, str] = {}
    params: dict[str, dict] = {}
    code = str(code or "").strip().upper()
    name = _group_name(name, errors)
    if level not in INDICATOR_LEVELS:
        errors["level"] = "chuyen_nganh.catalogue.error.level"
    with transaction():
        delegation = open_delegation(access, delegation_id, edit=True)
        prefix = _letters(access, delegation) if not errors else namespace_of(delegation).letters
        if not prefix or not re.fullmatch(prefix + r"\d{2}", code):
            errors["code"] = "chuyen_nganh.catalogue.error.group_code"
            params["code"] = {"prefix": prefix or "??"}
        elif any(g.code == code for g in indicator_groups_of(prefix)):
            errors["code"] = "chuyen_nganh.catalogue.error.group_exists"
            params["code"] = {"code": code}
        if errors:
            raise Refused(errors, params)
        group, _ = save_indicator_group(code, name, level)
        _audit(access, delegation, "group", code, details={"state": "new", "name": name})
    return group


def rename_group(access, delegation_id, code: str, name: str):
    """A new name for a group of the sector (its code and level stay: indicators and forms use them)."""
    errors: dict[str, str] = {}
    name = _group_name(name, errors)
    with transaction():
        delegation = open_delegation(access, delegation_id, edit=True)
        group = sector_group(namespace(delegation.sector), code)
        if errors:
            raise Refused(errors)
        before = group.name
        group, change = save_indicator_group(group.code, name, group.level)
        if change != "unchanged":
            _audit(access, delegation, "group", group.code, details={"state": change, "name": name, "before": before})
    return group, change


# -- indicators -------------------------------------------------------------------------------------

# What the indicator form sends, beyond the code and the levels.
INDICATOR_FIELDS = ("name", "group", "unit_of_measure", "value_type", "aggregation", "disaggregation",
                    "periodicity", "agency", "higher_code", "source_act")


def _indicator_data(prefix: str, form: dict, errors: dict, params: dict) -> dict:
    """The fields for the core, after the namespace's own checks (the core checks the rest)."""
    data = {name: form.get(name) for name in INDICATOR_FIELDS}
    if not str(data["name"] or "").strip():
        errors["name"] = "chuyen_nganh.catalogue.error.required"  # said with the namespace's own refusals
    group_code = str(form.get("group") or "").upper()
    group = next((g for g in indicator_groups_of(prefix) if g.code == group_code), None)
    if group is None:
        errors["group"] = "chuyen_nganh.catalogue.error.group_required"
    data["group"] = group_code
    levels = [lv for lv in form.get("levels") or () if lv]
    if not levels and group is not None:
        levels = [group.level]  # by default, the level its group serves
    data["levels"] = ",".join(levels)
    data["higher_code"] = str(form.get("higher_code") or "").strip().upper()
    return data


def create(access, delegation_id, form: dict):
    """A new indicator of the sector: ``<group code><2 digits>`` in one of its groups (version 1)."""
    errors: dict[str, str] = {}
    params: dict[str, dict] = {}
    code = str(form.get("code") or "").strip().upper()
    with transaction():
        delegation = open_delegation(access, delegation_id, edit=True)
        prefix = namespace(delegation.sector)
        if not prefix:
            raise Refused({"group": "chuyen_nganh.catalogue.error.no_group"})
        data = _indicator_data(prefix, form, errors, params)
        if not re.fullmatch(prefix + r"\d{4}", code):
            errors["code"] = "chuyen_nganh.catalogue.error.indicator_code"
            params["code"] = {"prefix": prefix}
        elif "group" not in errors and code[:-2] != data["group"]:
            errors["code"] = "chuyen_nganh.catalogue.error.group_mismatch"
            params["code"] = {"group": data["group"]}
        if errors:
            raise Refused(errors, params)
        try:
            item = create_indicator({**data, "code": code}, actor=access.actor)
        except ValidationError as exc:
            raise Refused(exc.errors, {name: exc.params for name in exc.errors}) from None
        _audit(access, delegation, "indicator", code, details={"state": "new", "version": item.version})
    return item


def edit(access, delegation_id, code: str, form: dict, expected_version) -> tuple[object, bool]:
    """Save an edit made on version ``expected_version``: a new version when anything differs (the
    core keeps the old one, which forms and reports made with it still use)."""
    errors: dict[str, str] = {}
    params: dict[str, dict] = {}
    with transaction():
        delegation = open_delegation(access, delegation_id, edit=True)
        prefix = namespace(delegation.sector)
        item = sector_indicator(prefix, code)
        data = _indicator_data(prefix, form, errors, params)
        if "group" not in errors and data["group"] != item.group.code:
            errors["group"] = "chuyen_nganh.catalogue.error.group_fixed"  # the code names its group
        if errors:
            raise Refused(errors, params)
        if expected_version is None:
            raise Refused({"version": "indicators.error.stale"}, {"version": {"version": item.version}})
        try:
            saved, changed = edit_indicator(item.code, data, expected_version=expected_version, actor=access.actor)
        except ValidationError as exc:
            raise Refused(exc.errors, {name: exc.params for name in exc.errors}) from None
        if changed:
            _audit(access, delegation, "indicator", item.code, details={"state": "changed", "version": saved.version})
    return saved, changed


# -- the 7-column table: import and export ----------------------------------------------------------

def _outside(code: str, prefix: str) -> tuple[str, dict]:
    """Why a row's code is not the sector's, naming its owner where one is known."""
    if NATIONAL_CODE.match(code):
        return "chuyen_nganh.catalogue.import.national", {"code": code, "prefix": prefix}
    owner = SectorNamespace.get_or_none(SectorNamespace.prefix == code[:2])
    if owner is not None:
        return "chuyen_nganh.catalogue.import.other_sector", {"code": code, "prefix": prefix,
                                                             "sector": _sector_name(owner.sector)}
    if indicator_groups_of(code[:2]):
        return "chuyen_nganh.catalogue.import.taken", {"code": code, "prefix": prefix}
    return "chuyen_nganh.catalogue.import.outside", {"code": code, "prefix": prefix}


@dataclass
class Preview:
    """The dry run of a file: the core's plan, its lines, and a digest of what it would do."""

    plan: object
    lines: list
    prefix: str
    digest: str

    @property
    def counts(self) -> dict[str, int]:
        return self.plan.counts()


def _dry_run(prefix: str, content: bytes, filename: str) -> Preview:
    plan = parse_indicator_table(content, filename, prefix=prefix, source_act=None, valid_from=None)
    plan.errors = [(row, field, *_outside(params["code"], prefix)) if key == "indicators.import.code_outside_prefix"
                   else (row, field, key, params) for row, field, key, params in plan.errors]
    lines = describe_indicator_plan(plan)
    # What the person saw: each row's change with the old and new values, so an edit made meanwhile
    # (another value replaced) makes the preview show again rather than apply blindly.
    seen = [(line.code, line.change, line.fields) for line in lines]
    digest = hashlib.sha256(repr((prefix, hashlib.sha256(content).hexdigest(), seen)).encode()).hexdigest()
    return Preview(plan, lines, prefix, digest[:32])


def preview(access, delegation_id, content: bytes, filename: str) -> Preview:
    """What importing the file would do (writes nothing); ``Refused`` when the sector has no letters
    yet and its proposal is taken. A file the importer cannot read raises the core's error."""
    delegation = open_delegation(access, delegation_id, edit=True)
    prefix = namespace_of(delegation).letters
    if prefix is None:
        raise Refused({"prefix": "chuyen_nganh.catalogue.error.no_namespace"},
                      {"prefix": {"prefix": namespace_of(delegation).proposal}})
    return _dry_run(prefix, content, filename)


def import_file(access, delegation_id, content: bytes, filename: str, digest: str) -> tuple[dict | None, Preview]:
    """Apply the file the person previewed, all or nothing, in one transaction. (counts, preview) when
    written; (None, preview) when the file now has errors or would do something else than the preview
    showed (the catalogue changed meanwhile): nothing is written, the new preview is shown."""
    with transaction():
        delegation = open_delegation(access, delegation_id, edit=True)
        prefix = namespace_of(delegation).letters
        if prefix is None:
            raise Refused({"prefix": "chuyen_nganh.catalogue.error.no_namespace"},
                          {"prefix": {"prefix": namespace_of(delegation).proposal}})
        shown = _dry_run(prefix, content, filename)
        if shown.plan.errors or shown.digest != digest:
            return None, shown
        _letters(access, delegation)
        counts = apply_indicator_plan(shown.plan, actor=access.actor)
        _audit(access, delegation, "import", prefix, details={"file": filename[:200], "new": counts["new"],
                                                              "changed": counts["changed"],
                                                              "unchanged": counts["unchanged"]})
    return counts, shown


def export(access, delegation_id, fmt: str) -> tuple[str, bytes]:
    """The sector's groups and indicators as the 7-column table (and the catalogue's own columns), in
    ``fmt`` (xlsx or csv); audited. NotFound when the sector has no letters yet (nothing to export)."""
    if fmt not in EXPORT_FORMATS:
        raise NotFound()
    with transaction():
        delegation = open_delegation(access, delegation_id)
        prefix = namespace(delegation.sector)
        if not prefix:
            raise NotFound()
        content = export_indicator_table(prefix, fmt)
        _audit(access, delegation, "export", prefix, details={"format": fmt})
    return f"chi-tieu-{delegation.sector}-{today():%Y%m%d}.{fmt}", content


def department_of(delegation: Delegation) -> Unit | None:
    return Unit.get_or_none(Unit.id == delegation.department_unit_id)
