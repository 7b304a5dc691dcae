"""Units with a history: merges, splits, renames, re-parenting, changes of level.

A unit row has a validity ``[valid_from, valid_to]`` (both inclusive, null = open).
A change (``UnitChange``) is an event with the first day the new state holds
(``effective_date``) and its legal basis; ``UnitChangeLink`` ties it to the units
it ended (role ``from``) and the units it produced or changed (role ``to``).

- merge: several ``from`` units end the day before; one ``to`` unit (new or
  existing) holds from the effective date. A merge of one is allowed (a unit
  that was "kept" but moved into the new structure under a new code).
- split: one ``from`` unit ends; several ``to`` units start.
- rename, reparent, level_change of the same row keep the row and store the old
  and new values on the change (``old_name``/``new_name``, ``old_parent``/
  ``new_parent``, ``old_kind``/``new_kind``); the unit is linked as ``to`` only.
  ``core.units.changes.past_values(day)`` undoes the later ones, so the tree as at a date shows
  what held then. A change of level that creates a new row (a district that
  becomes a special zone with a new code) is linked ``from``/``to`` like a merge.
- establish: a new unit, ``to`` only; dissolve: a unit ends, ``from`` only.

Every operation is one transaction with its audit record; bad input raises
``ValidationError`` with a field key and nothing is written.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from core import clock
from core import audit
from core.db import transaction
from core.errors import ValidationError
from core.i18n import fold
from core.models import UNIT_KINDS, Unit, utcnow
from core.units.changes import SAME_ROW_KINDS, UnitChange, UnitChangeLink
from core.units.tree import is_valid, sort_key, subtree_ids, valid_at

ONE_DAY = dt.timedelta(days=1)


def _linked(change_ids, role) -> dict[int, list[Unit]]:
    out: dict[int, list[Unit]] = defaultdict(list)
    if not change_ids:
        return out
    query = (UnitChangeLink.select(UnitChangeLink, Unit).join(Unit)
             .where(UnitChangeLink.change.in_(list(change_ids)) & (UnitChangeLink.role == role)))
    for link in query:
        out[link.change_id].append(link.unit)
    for units in out.values():
        units.sort(key=sort_key)
    return out


def successors(unit: Unit, at: dt.date | None = None) -> list[Unit]:
    """The unit(s) in force on ``at`` (default today) that this unit became, following the
    chain of changes forward. A unit in force that day is its own successor; a unit
    dissolved without successor has none."""
    day = at or clock.today()
    found: dict[int, Unit] = {}
    seen: set[int] = set()

    def walk(u: Unit):
        if u.id in seen:
            return
        seen.add(u.id)
        if is_valid(u, day):
            found[u.id] = u
            return
        if u.valid_from is not None and u.valid_from > day:
            return  # not yet in existence: it succeeds nothing on that day
        changes = [c for (c,) in UnitChangeLink.select(UnitChangeLink.change)
                   .where((UnitChangeLink.unit == u.id) & (UnitChangeLink.role == "from")).tuples()]
        for targets in _linked(changes, "to").values():
            for target in targets:
                if target.id != u.id:
                    walk(target)

    walk(unit)
    return sorted(found.values(), key=sort_key)


@dataclass
class Lineage:
    """One predecessor: the unit, the change that turned it into its successor, and its own
    predecessors."""

    unit: Unit
    change: UnitChange
    earlier: list["Lineage"] = field(default_factory=list)


def predecessors(unit: Unit, _seen: set[int] | None = None) -> list[Lineage]:
    """The ``from`` units of the changes that produced ``unit``, recursively (a lineage tree)."""
    seen = _seen if _seen is not None else {unit.id}
    changes = {c.id: c for c in UnitChange.select().join(UnitChangeLink)
               .where((UnitChangeLink.unit == unit.id) & (UnitChangeLink.role == "to")
                      & UnitChange.kind.not_in(SAME_ROW_KINDS))}
    out = []
    for change_id, sources in _linked(changes.keys(), "from").items():
        for source in sources:
            if source.id in seen:
                continue  # an absorbing merge lists the surviving unit on both sides
            seen.add(source.id)
            out.append(Lineage(source, changes[change_id], predecessors(source, seen)))
    out.sort(key=lambda item: (item.change.effective_date, sort_key(item.unit)))
    return out


@dataclass
class ChangeView:
    change: UnitChange
    role: str
    sources: list[Unit]
    targets: list[Unit]


def changes_of(unit: Unit) -> list[ChangeView]:
    """Every change the unit took part in, oldest first, with the units on each side."""
    links = list(UnitChangeLink.select(UnitChangeLink, UnitChange).join(UnitChange)
                 .where(UnitChangeLink.unit == unit.id)
                 .order_by(UnitChange.effective_date, UnitChange.id))
    ids = [link.change_id for link in links]
    sources, targets = _linked(ids, "from"), _linked(ids, "to")
    return [ChangeView(link.change, link.role, sources.get(link.change_id, []), targets.get(link.change_id, []))
            for link in links]


class Lineages:
    """Every unit's validity, parent and forward links in memory, for one request: which
    unit(s) of today a unit of any date leads to (its *anchors*)."""

    def __init__(self, today: dt.date | None = None):
        self.today = today or clock.today()
        self.units = {u.id: u for u in Unit.select(Unit.id, Unit.parent, Unit.valid_from, Unit.valid_to)}
        sides: dict[int, tuple[list[int], list[int]]] = defaultdict(lambda: ([], []))
        for change_id, unit_id, role in UnitChangeLink.select(
                UnitChangeLink.change, UnitChangeLink.unit, UnitChangeLink.role).tuples():
            sides[change_id][0 if role == "from" else 1].append(unit_id)
        self.forward: dict[int, set[int]] = defaultdict(set)
        for sources, targets in sides.values():
            for s in sources:
                self.forward[s].update(t for t in targets if t != s)
        self._anchors: dict[int, frozenset[int]] = {}

    def successors_today(self, unit_id: int, _seen=None) -> set[int]:
        seen = _seen if _seen is not None else set()
        if unit_id in seen or unit_id not in self.units:
            return set()
        seen.add(unit_id)
        if is_valid(self.units[unit_id], self.today):
            return {unit_id}
        out: set[int] = set()
        for target in self.forward.get(unit_id, ()):
            out |= self.successors_today(target, seen)
        return out

    def anchors(self, unit_id: int) -> frozenset[int]:
        """Today's unit itself; else its successors today; else (dissolved without successor,
        like a former district) the anchors of its parent."""
        if unit_id not in self._anchors:
            self._anchors[unit_id] = frozenset()  # guards a cycle in bad data
            found = self.successors_today(unit_id)
            if not found:
                parent = self.units[unit_id].parent_id if unit_id in self.units else None
                found = set(self.anchors(parent)) if parent else set()
            self._anchors[unit_id] = frozenset(found)
        return self._anchors[unit_id]


def visible_ids(roots: list[int] | None, lineages: Lineages) -> set[int] | None:
    """Units of any date a user may open: None means all. With grants at ``roots`` (units of
    today), a unit is visible when one of its anchors lies in one of those subtrees; for
    today's units this is the usual subtree rule."""
    if roots is None:
        return None
    allowed = {uid for root in roots for uid in subtree_ids(root)}
    return {uid for uid in lineages.units if lineages.anchors(uid) & allowed}


# -- changing the tree -------------------------------------------------------------------------

def _unit(value, key: str) -> Unit:
    if isinstance(value, Unit):
        value = value.id
    unit = Unit.get_or_none(Unit.id == value) if value is not None else None
    if unit is None:
        raise ValidationError({key: "units.history.error.unit_unknown"})
    return unit


def _check_common(effective_date, legal_basis) -> dict[str, str]:
    errors = {}
    if not isinstance(effective_date, dt.date):
        errors["effective_date"] = "units.history.error.date_required"
    if not (legal_basis or "").strip():
        errors["legal_basis"] = "units.history.error.legal_basis_required"
    return errors


def _check_ends(unit: Unit, day: dt.date, key: str, errors: dict) -> None:
    """``unit`` must be in force on the day before ``day`` and not have started on ``day``."""
    if unit.valid_to is not None and unit.valid_to < day - ONE_DAY:
        errors.setdefault(key, "units.history.error.unit_ended")
    elif unit.valid_from is not None and unit.valid_from > day - ONE_DAY:
        errors.setdefault(key, "units.history.error.date_outside_validity")


def _check_children(unit: Unit, day: dt.date, key: str, errors: dict, leaving: set[int]) -> None:
    """A unit cannot end while units under it stay in force (they would lose their parent)."""
    query = Unit.select(Unit.id).where((Unit.parent == unit.id) & valid_at(day))
    if any(child.id not in leaving for child in query):
        errors.setdefault(key, "units.history.error.children_still_valid")


def _check_new(data: dict, day: dt.date, errors: dict, prefix: str, codes: set[str]) -> None:
    code = (data.get("code") or "").strip()
    if not code:
        errors[f"{prefix}code"] = "units.history.error.code_required"
    elif code in codes or Unit.select().where(Unit.code == code).exists():
        errors[f"{prefix}code"] = "units.history.error.code_taken"
    codes.add(code)
    if not (data.get("name") or "").strip():
        errors[f"{prefix}name"] = "units.history.error.name_required"
    if data.get("kind") not in UNIT_KINDS:
        errors[f"{prefix}kind"] = "units.history.error.kind_invalid"
    parent = data.get("parent")
    if parent is not None:
        parent = _unit(parent, f"{prefix}parent")
        if not is_valid(parent, day):
            errors[f"{prefix}parent"] = "units.history.error.parent_not_valid"


def _create(data: dict, day: dt.date) -> Unit:
    parent = data.get("parent")
    return Unit.create(code=data["code"].strip(), name=data["name"].strip(), kind=data["kind"],
                       parent=getattr(parent, "id", parent), admin_code=data.get("admin_code") or None,
                       agency_code=data.get("agency_code") or None, valid_from=day)


def _record(change: UnitChange, sources: list[Unit], targets: list[Unit], actor) -> UnitChange:
    for u in sources:
        UnitChangeLink.create(change=change, unit=u, role="from")
    for u in targets:
        UnitChangeLink.create(change=change, unit=u, role="to")
    anchor = (targets or sources)[0]
    audit.record("unit.change", actor=actor, unit=anchor.id, object_type="unit_change", object_id=change.id,
                 details={"kind": change.kind, "effective_date": change.effective_date.isoformat(),
                          "legal_basis": change.legal_basis, "from": [u.code for u in sources],
                          "to": [u.code for u in targets]})
    return change


def _new_change(kind, effective_date, legal_basis, note, actor, **values) -> UnitChange:
    return UnitChange.create(kind=kind, effective_date=effective_date, legal_basis=legal_basis.strip(),
                             note=(note or "").strip() or None, created_by=getattr(actor, "id", actor),
                             created_at=utcnow(), **values)


def _replace(kind: str, sources, targets, effective_date, legal_basis, note, actor) -> UnitChange:
    """Merge, split and a change of level into a new row: ``sources`` end the day before,
    ``targets`` (existing units or dicts for new ones) hold from ``effective_date``."""
    with transaction():
        errors = _check_common(effective_date, legal_basis)
        if errors:
            raise ValidationError(errors)
        day = effective_date
        source_units = []
        for i, value in enumerate(sources):
            unit = _unit(value, "from")
            if unit.id in {u.id for u in source_units}:
                raise ValidationError({"from": "units.history.error.unit_twice"})
            _check_ends(unit, day, "from", errors)
            source_units.append(unit)
        if not source_units:
            errors["from"] = "units.history.error.need_from"
        codes: set[str] = set()
        plan = []
        for i, value in enumerate(targets):
            if isinstance(value, dict):
                _check_new(value, day, errors, f"to.{i}." if len(targets) > 1 else "", codes)
                plan.append(value)
            else:
                unit = _unit(value, "to")
                if unit.id in {u.id for u in source_units}:
                    errors.setdefault("to", "units.history.error.unit_twice")
                elif unit.valid_to is not None and unit.valid_to < day:
                    errors.setdefault("to", "units.history.error.unit_ended")
                elif unit.valid_from is not None and unit.valid_from < day and not is_valid(unit, day - ONE_DAY):
                    errors.setdefault("to", "units.history.error.date_outside_validity")
                plan.append(unit)
        if not targets:
            errors["to"] = "units.history.error.need_to"
        if kind == "split" and (len(source_units) != 1 or len(targets) < 2):
            errors.setdefault("to", "units.history.error.split_needs_two")
        leaving = {u.id for u in source_units}
        for unit in source_units:
            _check_children(unit, day, "from", errors, leaving)
        if errors:
            raise ValidationError(errors)
        target_units = []
        for value in plan:
            if isinstance(value, dict):
                target_units.append(_create(value, day))
            else:
                if value.valid_from is None or value.valid_from > day or not is_valid(value, day - ONE_DAY):
                    # The unit starts with the change (brief: to-unit valid_from = effective date),
                    # unless it was already in force and simply absorbs the others.
                    value.valid_from = day
                    value.save(only=[Unit.valid_from])
                target_units.append(value)
        for unit in source_units:
            unit.valid_to = day - ONE_DAY
            unit.save(only=[Unit.valid_to])
        change = _new_change(kind, day, legal_basis, note, actor)
        return _record(change, source_units, target_units, actor)


def merge(sources, into, *, effective_date: dt.date, legal_basis: str, note: str | None = None,
          actor=None) -> UnitChange:
    """``sources`` (units or ids) end on the day before ``effective_date``; ``into`` (a unit,
    an id, or a dict code/name/kind/parent for a new unit) holds from that day."""
    return _replace("merge", list(sources), [into], effective_date, legal_basis, note, actor)


def split(source, into, *, effective_date: dt.date, legal_basis: str, note: str | None = None,
          actor=None) -> UnitChange:
    return _replace("split", [source], list(into), effective_date, legal_basis, note, actor)


def change_level_into(source, into, *, effective_date: dt.date, legal_basis: str, note: str | None = None,
                      actor=None) -> UnitChange:
    """A unit replaced by one of another level under a new row (district → special zone)."""
    return _replace("level_change", [source], [into], effective_date, legal_basis, note, actor)


def establish(data: dict, *, effective_date: dt.date, legal_basis: str, note: str | None = None,
              actor=None) -> tuple[UnitChange, Unit]:
    with transaction():
        errors = _check_common(effective_date, legal_basis)
        if not errors:
            _check_new(data, effective_date, errors, "", set())
        if errors:
            raise ValidationError(errors)
        unit = _create(data, effective_date)
        change = _new_change("establish", effective_date, legal_basis, note, actor)
        return _record(change, [], [unit], actor), unit


def dissolve(unit, *, effective_date: dt.date, legal_basis: str, note: str | None = None,
             actor=None) -> UnitChange:
    with transaction():
        errors = _check_common(effective_date, legal_basis)
        target = _unit(unit, "unit")
        if not errors:
            _check_ends(target, effective_date, "effective_date", errors)
            _check_children(target, effective_date, "unit", errors, {target.id})
        if errors:
            raise ValidationError(errors)
        target.valid_to = effective_date - ONE_DAY
        target.save(only=[Unit.valid_to])
        change = _new_change("dissolve", effective_date, legal_basis, note, actor)
        return _record(change, [target], [], actor)


def _check_same_row(target: Unit, day: dt.date, errors: dict) -> None:
    """The unit is in force before and on ``day``, and ``day`` is after its last change of
    the same row (the past is rebuilt by undoing changes from the latest)."""
    if not is_valid(target, day) or (target.valid_from is not None and target.valid_from >= day):
        errors.setdefault("effective_date", "units.history.error.date_outside_validity")
    later = (UnitChange.select().join(UnitChangeLink)
             .where((UnitChangeLink.unit == target.id) & (UnitChange.effective_date >= day)
                    & UnitChange.kind.in_(SAME_ROW_KINDS)))
    if later.exists():
        errors.setdefault("effective_date", "units.history.error.not_after_last_change")


def _check_parent(target: Unit, parent, day: dt.date, errors: dict) -> Unit | None:
    if parent is None:
        return None
    new_parent = _unit(parent, "parent")
    if new_parent.id in subtree_ids(target.id):
        errors["parent"] = "units.history.error.cycle"
    elif not is_valid(new_parent, day):
        errors["parent"] = "units.history.error.parent_not_valid"
    return new_parent


def rename(unit, new_name: str, *, effective_date: dt.date, legal_basis: str, note: str | None = None,
           actor=None) -> UnitChange:
    with transaction():
        target = _unit(unit, "unit")
        errors = _check_common(effective_date, legal_basis)
        name = (new_name or "").strip()
        if not name:
            errors["name"] = "units.history.error.name_required"
        elif name == target.name:
            errors["name"] = "units.history.error.same_name"
        if "effective_date" not in errors:
            _check_same_row(target, effective_date, errors)
        if errors:
            raise ValidationError(errors)
        change = _new_change("rename", effective_date, legal_basis, note, actor, old_name=target.name, new_name=name)
        target.name = name
        target.save(only=[Unit.name])
        return _record(change, [], [target], actor)


def reparent(unit, new_parent, *, effective_date: dt.date, legal_basis: str, note: str | None = None,
             actor=None) -> UnitChange:
    """Move ``unit`` (and its subtree) under ``new_parent`` (None: make it a root)."""
    with transaction():
        target = _unit(unit, "unit")
        errors = _check_common(effective_date, legal_basis)
        parent = _check_parent(target, new_parent, effective_date, errors) if "effective_date" not in errors else None
        if not errors and getattr(parent, "id", None) == target.parent_id:
            errors["parent"] = "units.history.error.same_parent"
        if "effective_date" not in errors:
            _check_same_row(target, effective_date, errors)
        if errors:
            raise ValidationError(errors)
        change = _new_change("reparent", effective_date, legal_basis, note, actor,
                             old_parent=target.parent_id, new_parent=getattr(parent, "id", None))
        target.parent = parent
        target.save(only=[Unit.parent])
        return _record(change, [], [target], actor)


def change_level(unit, new_kind: str, *, effective_date: dt.date, legal_basis: str, new_parent=None,
                 note: str | None = None, actor=None) -> UnitChange:
    """The same unit becomes another kind (and, optionally, moves under ``new_parent``)."""
    with transaction():
        target = _unit(unit, "unit")
        errors = _check_common(effective_date, legal_basis)
        if new_kind not in UNIT_KINDS:
            errors["kind"] = "units.history.error.kind_invalid"
        elif new_kind == target.kind:
            errors["kind"] = "units.history.error.same_kind"
        parent = (_check_parent(target, new_parent, effective_date, errors)
                  if new_parent is not None and "effective_date" not in errors else None)
        if "effective_date" not in errors:
            _check_same_row(target, effective_date, errors)
        if errors:
            raise ValidationError(errors)
        parent_id = parent.id if parent is not None else target.parent_id
        change = _new_change("level_change", effective_date, legal_basis, note, actor,
                             old_kind=target.kind, new_kind=new_kind,
                             old_parent=target.parent_id, new_parent=parent_id)
        target.kind, target.parent = new_kind, parent_id
        target.save(only=[Unit.kind, Unit.parent])
        return _record(change, [], [target], actor)


# -- the Quảng Trị reference history -----------------------------------------------------------

DATA = Path(__file__).with_name("data") / "quang_tri_2025_communes.csv"
TWO_LEVEL_FROM = dt.date(2025, 7, 1)

# Legal bases, as far as /work/shared/reference/legal.md (§5) and core/units/data/README.md
# support them:
# - communes: NQ 1680/NQ-UBTVQH15 of 16/06/2025, Điều 1, in force 01/07/2025 (README, codes file).
# - districts: legal.md §5 cites NQ 203/2025/QH15 (constitutional amendment, verified) for two
#   levels of local government and the end of the district level, from 01/07/2025 (verified).
#   Luật Tổ chức chính quyền địa phương 72/2025/QH15 is only "partly" verified there: not cited.
# - provinces: legal.md gives the National Assembly resolution adopted 12/06/2025 (verified) but
#   marks its number 202/2025/QH15 "unverified"; the text says so.
COMMUNE_BASIS = "Nghị quyết 1680/NQ-UBTVQH15 ngày 16/06/2025 của Ủy ban Thường vụ Quốc hội, Điều 1"
DISTRICT_BASIS = ("Nghị quyết 203/2025/QH15 sửa đổi, bổ sung Hiến pháp: chính quyền địa phương hai cấp, "
                  "không còn đơn vị hành chính cấp huyện từ 01/07/2025")
PROVINCE_BASIS = ("Nghị quyết của Quốc hội về sắp xếp đơn vị hành chính cấp tỉnh, thông qua ngày 12/06/2025 "
                  "(số 202/2025/QH15, chưa đối chiếu văn bản gốc)")

# This instance's internal codes for former units (no official codes in the data; admin_code
# stays null except the provinces' 44 and 45): the former province, then the slug of the
# district, then the slug of the commune, e.g. "QB.tp-dong-hoi.p-dong-hai".
OLD_PROVINCES = {"Quảng Bình": ("QB", "Tỉnh Quảng Bình", "44"), "Quảng Trị": ("QT", "Tỉnh Quảng Trị", "45")}
PREFIXES = (("thành phố ", "tp-"), ("thị xã ", "tx-"), ("thị trấn ", "tt-"), ("huyện ", "h-"),
            ("đặc khu ", "dk-"), ("phường ", "p-"), ("xã ", "xa-"))
KEPT = re.compile(r"\s*\(không sắp xếp\)\s*$")


def slug(name: str) -> str:
    """"Thành phố Đồng Hới" → "tp-dong-hoi": the kind shortened, diacritics folded, hyphens."""
    lowered = name.strip().lower()
    head = ""
    for word, short in PREFIXES:
        if lowered.startswith(word):
            head, lowered = short, lowered[len(word):]
            break
    return head + re.sub(r"[^a-z0-9]+", "-", fold(lowered)).strip("-")


def former_structure(path: Path = DATA):
    """(province, district, [former communes], new commune code) per row of the data file.
    A row whose former unit is itself a district (Huyện Cồn Cỏ) has no former communes."""
    with path.open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            names = [KEPT.sub("", n).strip() for n in row["former_units"].split(";") if n.strip()]
            district = row["former_district"].strip()
            if len(names) == 1 and names[0].lower().startswith("huyện "):
                yield row["former_province"].strip(), names[0], [], row["code"], row
            else:
                yield row["former_province"].strip(), district, names, row["code"], row


def load_quang_tri_history(actor=None) -> dict[str, int]:
    """Former Quảng Bình and Quảng Trị (provinces, districts, communes), ended 30/06/2025 by
    the changes that made today's province "44" and its 78 communes. Needs the current tree
    (``core.demo.load_units``); does nothing when already loaded."""
    counts = {"provinces": 0, "districts": 0, "communes": 0, "changes": 0}
    with transaction():
        if Unit.select().where(Unit.code == "QB").exists():
            return counts
        province = Unit.get(Unit.code == "44")
        rows = list(former_structure())
        old = {}
        for label, (code, name, admin_code) in OLD_PROVINCES.items():
            old[label] = Unit.create(code=code, name=name, kind="province", admin_code=admin_code)
            counts["provinces"] += 1
        districts: dict[tuple[str, str], Unit] = {}
        plan = []
        for prov, district, communes, new_code, row in rows:
            key = (prov, district)
            if key not in districts:
                parent = old[prov]
                districts[key] = Unit.create(code=f"{parent.code}.{slug(district)}", name=district,
                                             kind="district", parent=parent)
                counts["districts"] += 1
            d = districts[key]
            members = [Unit.create(code=f"{d.code}.{slug(name)}", name=name, kind="commune", parent=d)
                       for name in communes]
            counts["communes"] += len(members)
            plan.append((d, members, Unit.get(Unit.code == new_code), row))
        for d, members, new_unit, row in plan:
            if not members:
                change_level_into(d, new_unit, effective_date=TWO_LEVEL_FROM, legal_basis=COMMUNE_BASIS,
                                  note=f"{d.name} → {new_unit.name}", actor=actor)
            else:
                note = ("Không sắp xếp: giữ nguyên, trực thuộc tỉnh, mã mới theo Công văn 1027/CTK-CSCL"
                        if "(không sắp xếp)" in row["former_units"] else None)
                merge(members, new_unit, effective_date=TWO_LEVEL_FROM, legal_basis=COMMUNE_BASIS,
                      note=note, actor=actor)
            counts["changes"] += 1
        for d in districts.values():
            if d.id not in {p[0].id for p in plan if not p[1]}:
                dissolve(d, effective_date=TWO_LEVEL_FROM, legal_basis=DISTRICT_BASIS, actor=actor)
                counts["changes"] += 1
        merge([old["Quảng Bình"], old["Quảng Trị"]], province, effective_date=TWO_LEVEL_FROM,
              legal_basis=PROVINCE_BASIS, actor=actor)
        counts["changes"] += 1
    return counts
