"""Units from and to CSV and Excel files.

Columns: code, name, kind, parent_code, admin_code, agency_code, valid_from, valid_to.
Dates are read as dd/mm/yyyy or ISO (yyyy-mm-dd) and written as ISO. CSV may carry a
UTF-8 byte order mark. ``parse`` is the dry run: it writes nothing and returns the plan
(create, update or unchanged per code) and the errors per row and column; ``apply``
writes a plan without errors in one transaction, or nothing. Importing a file just
exported changes nothing.

An import edits unit records (their current attributes and validity). Events with a legal
basis (merge, split, rename...) are made with ``core.units.history``, not by a file.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from dataclasses import dataclass, field

from core import audit, export_safety
from core.db import transaction
from core.errors import ValidationError
from core.models import UNIT_KINDS, Unit
from core.units.tree import flatten, tree

COLUMNS = ("code", "name", "kind", "parent_code", "admin_code", "agency_code", "valid_from", "valid_to")
REQUIRED = ("code", "name", "kind")
FIELDS = ("name", "kind", "parent_code", "admin_code", "agency_code", "valid_from", "valid_to")
MAX_ROWS = 20000
MAX_LENGTH = {"code": 40, "name": 255, "admin_code": 20, "agency_code": 40}
ISO = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
VN = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")


@dataclass
class RowError:
    row: int       # the line in the file (header = 1)
    column: str
    key: str       # message key, topic "units"
    params: dict = field(default_factory=dict)


@dataclass
class PlannedRow:
    row: int
    code: str
    action: str    # "create", "update" or "unchanged"
    values: dict
    changed: list[str] = field(default_factory=list)


@dataclass
class Plan:
    rows: list[PlannedRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def counts(self) -> dict[str, int]:
        out = {"create": 0, "update": 0, "unchanged": 0}
        for row in self.rows:
            out[row.action] += 1
        return out


def read_rows(content: bytes, filename: str) -> list[list]:
    """The file's rows as lists of cells (strings, dates or numbers)."""
    name = (filename or "").lower()
    if name.endswith((".xlsx", ".xlsm")):
        import openpyxl

        try:
            book = openpyxl.load_workbook(io.BytesIO(content), read_only=True, data_only=True)
        except Exception:  # noqa: BLE001 — any unreadable workbook is the same message to the user
            raise ValidationError({"file": "units.io.error.unreadable"}) from None
        try:
            return [list(row) for row in book.worksheets[0].iter_rows(values_only=True)]
        finally:
            book.close()
    if name.endswith((".csv", ".txt")):
        try:
            text = content.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ValidationError({"file": "units.io.error.encoding"}) from None
        try:
            dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
        except csv.Error:
            dialect = csv.excel
        # The quote an export put before "=", "+"... goes again, so an export read back changes nothing.
        return [[export_safety.unquote(c) for c in row] for row in csv.reader(io.StringIO(text), dialect)]
    raise ValidationError({"file": "units.io.error.file_type"})


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, dt.datetime):
        value = value.date()
    if isinstance(value, dt.date):
        return value.isoformat()
    return " ".join(str(value).split())


def parse_date(text: str) -> dt.date | None:
    """ISO or dd/mm/yyyy; ``ValueError`` for anything else or a day that does not exist."""
    if not text:
        return None
    match = ISO.match(text)
    if match:
        year, month, day = (int(g) for g in match.groups())
    else:
        match = VN.match(text)
        if not match:
            raise ValueError(text)
        day, month, year = (int(g) for g in match.groups())
    return dt.date(year, month, day)


def _stored(unit: Unit, parent_codes: dict[int, str]) -> dict:
    return {"name": unit.name, "kind": unit.kind, "parent_code": parent_codes.get(unit.parent_id, ""),
            "admin_code": unit.admin_code or "", "agency_code": unit.agency_code or "",
            "valid_from": unit.valid_from, "valid_to": unit.valid_to}


def parse(content: bytes, filename: str, *, allowed_ids: set[int] | None = None) -> Plan:
    """The dry run. ``allowed_ids``: the units the person may change (None: all); a row that
    would change or create a unit outside them is an error."""
    plan = Plan()
    try:
        raw = read_rows(content, filename)
    except ValidationError as error:
        plan.errors.append(RowError(0, "file", error.errors["file"]))
        return plan
    while raw and not any(_text(c) for c in raw[0]):
        raw.pop(0)
    if not raw:
        plan.errors.append(RowError(1, "file", "units.io.error.empty"))
        return plan
    header = [_text(c).lower().lstrip("\ufeff") for c in raw[0]]
    for position, name in enumerate(header):
        if name and name not in COLUMNS:
            plan.errors.append(RowError(1, name, "units.io.error.column_unknown", {"column": name}))
        elif name and header.index(name) != position:
            plan.errors.append(RowError(1, name, "units.io.error.column_twice", {"column": name}))
    for name in REQUIRED:
        if name not in header:
            plan.errors.append(RowError(1, name, "units.io.error.column_missing", {"column": name}))
    if plan.errors:
        return plan
    columns = {name: header.index(name) for name in COLUMNS if name in header}
    if len(raw) - 1 > MAX_ROWS:
        plan.errors.append(RowError(1, "file", "units.io.error.too_many_rows", {"limit": MAX_ROWS}))
        return plan

    existing = {u.code: u for u in Unit.select()}
    codes_by_id = {u.id: u.code for u in existing.values()}
    seen: dict[str, int] = {}
    parsed: list[tuple[int, str, dict]] = []
    for index, cells in enumerate(raw[1:], start=2):
        values = {name: _text(cells[pos]) if pos < len(cells) else "" for name, pos in columns.items()}
        if not any(values.values()):
            continue
        errors = []
        code = values["code"]
        if not code:
            errors.append(("code", "units.io.error.code_missing", {}))
        elif code in seen:
            errors.append(("code", "units.io.error.code_duplicate", {"code": code, "first_row": seen[code]}))
        else:
            seen[code] = index
        for name, limit in MAX_LENGTH.items():
            if len(values.get(name, "")) > limit:
                errors.append((name, "units.io.error.too_long", {"limit": limit}))
        if not values["name"]:
            errors.append(("name", "units.io.error.name_missing", {}))
        if values["kind"] not in UNIT_KINDS:
            errors.append(("kind", "units.io.error.kind_unknown",
                           {"value": values["kind"], "kinds": ", ".join(UNIT_KINDS)}))
        dates = {}
        for name in ("valid_from", "valid_to"):
            if name in values:
                try:
                    dates[name] = parse_date(values[name])
                except ValueError:
                    errors.append((name, "units.io.error.date_invalid", {"value": values[name]}))
        if dates.get("valid_from") and dates.get("valid_to") and dates["valid_to"] < dates["valid_from"]:
            errors.append(("valid_to", "units.io.error.date_order", {}))
        if values.get("parent_code") and values["parent_code"] == code:
            errors.append(("parent_code", "units.io.error.cycle", {}))
        for column, key, params in errors:
            plan.errors.append(RowError(index, column, key, params))
        if not errors:
            values.update(dates)
            parsed.append((index, code, values))

    # Parents: in the file or already in the database; then no unit may end up under itself.
    file_parent = {code: values.get("parent_code", None) for _, code, values in parsed}
    bad_parent = set()
    for index, code, values in parsed:
        parent = values.get("parent_code")
        if parent and parent not in file_parent and parent not in existing and parent not in seen:
            plan.errors.append(RowError(index, "parent_code", "units.io.error.parent_unknown", {"code": parent}))
            bad_parent.add(code)

    def parent_of(code: str) -> str | None:
        if code in file_parent and file_parent[code] is not None:
            return file_parent[code] or None
        unit = existing.get(code)
        return codes_by_id.get(unit.parent_id) if unit is not None and unit.parent_id else None

    for index, code, values in parsed:
        if code in bad_parent:
            continue
        walk, current = {code}, parent_of(code)
        while current:
            if current == code:
                plan.errors.append(RowError(index, "parent_code", "units.io.error.cycle", {}))
                break
            if current in walk:
                break  # a loop higher up, reported on its own rows
            walk.add(current)
            current = parent_of(current)

    for index, code, values in parsed:
        unit = existing.get(code)
        if unit is None:
            target = {"name": "", "kind": "", "parent_code": "", "admin_code": "", "agency_code": "",
                      "valid_from": None, "valid_to": None}
        else:
            target = _stored(unit, codes_by_id)
        new = {name: values[name] if name in values else target[name] for name in FIELDS}
        if unit is not None and new["valid_from"] and new["valid_to"] and new["valid_to"] < new["valid_from"]:
            plan.errors.append(RowError(index, "valid_to", "units.io.error.date_order", {}))
            continue
        changed = [name for name in FIELDS if new[name] != target[name]] if unit is not None else list(FIELDS)
        action = "create" if unit is None else ("update" if changed else "unchanged")
        if allowed_ids is not None and action != "unchanged":
            # Someone holding the right on part of the tree changes units inside it only, and
            # only under parents inside it (a parent created by the same file is checked on its row).
            parent = existing.get(new["parent_code"]) if new["parent_code"] else None
            inside = (unit is None or unit.id in allowed_ids) and (
                (parent is not None and parent.id in allowed_ids)
                or (parent is None and new["parent_code"] in file_parent and new["parent_code"] not in existing))
            if not inside:
                plan.errors.append(RowError(index, "code", "units.io.error.outside_scope", {"code": code}))
                continue
        plan.rows.append(PlannedRow(index, code, action, new, changed if action == "update" else []))
    plan.errors.sort(key=lambda e: (e.row, COLUMNS.index(e.column) if e.column in COLUMNS else -1))
    return plan


def apply(plan: Plan, *, actor=None, filename: str = "") -> dict[str, int]:
    """Write the plan in one transaction; a plan with any error is refused whole."""
    if plan.errors:
        raise ValidationError({"file": "units.io.error.has_errors"}, count=len(plan.errors))
    with transaction():
        by_code = {u.code: u for u in Unit.select().where(Unit.code.in_([r.code for r in plan.rows]))} \
            if plan.rows else {}
        pending_parent = []
        for row in plan.rows:
            if row.action == "unchanged":
                continue
            v = row.values
            unit = by_code.get(row.code) or Unit(code=row.code)
            unit.name, unit.kind = v["name"], v["kind"]
            unit.admin_code, unit.agency_code = v["admin_code"] or None, v["agency_code"] or None
            unit.valid_from, unit.valid_to = v["valid_from"], v["valid_to"]
            if unit.id is None:
                unit.parent = None
            unit.save()
            by_code[row.code] = unit
            pending_parent.append((unit, v["parent_code"]))
        # Parents last: a row may name a parent that comes later in the file.
        for unit, parent_code in pending_parent:
            parent = (by_code.get(parent_code) or Unit.get(Unit.code == parent_code)) if parent_code else None
            if unit.parent_id != getattr(parent, "id", None):
                unit.parent = parent
                unit.save(only=[Unit.parent])
        counts = plan.counts()
        audit.record("unit.import", actor=actor, object_type="unit", object_id="",
                     details={"file": filename[:200], **counts,
                              "codes": [r.code for r in plan.rows if r.action != "unchanged"][:200]})
    return counts


# -- export -----------------------------------------------------------------------------------

def export_rows(at: dt.date | None = None, only: set[int] | None = None) -> list[list[str]]:
    """The header and one row per unit in force on ``at`` (default today), in tree order,
    limited to the ids in ``only`` (None: all). Rows carry the units' stored attributes, so
    importing the file back changes nothing."""
    nodes = [n for n in flatten(tree(at=at)) if only is None or n.unit.id in only]
    units = {u.id: u for u in Unit.select().where(Unit.id.in_([n.unit.id for n in nodes]))} if nodes else {}
    parents = {u.id: u.code for u in Unit.select(Unit.id, Unit.code).where(
        Unit.id.in_({u.parent_id for u in units.values() if u.parent_id}))} if units else {}
    rows = [list(COLUMNS)]
    for node in nodes:
        unit = units[node.unit.id]
        rows.append([unit.code, unit.name, unit.kind, parents.get(unit.parent_id, ""), unit.admin_code or "",
                     unit.agency_code or "", unit.valid_from.isoformat() if unit.valid_from else "",
                     unit.valid_to.isoformat() if unit.valid_to else ""])
    return rows


def to_csv(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    for row in rows:
        writer.writerow(export_safety.csv_row(row))  # a name like "=2+5+cmd|..." goes out as text
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def to_xlsx(rows: list[list[str]]) -> bytes:
    import openpyxl

    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("units")
    for row in rows:
        sheet.append([export_safety.write_only_cell(sheet, str(c)) for c in row])  # never a live formula
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
