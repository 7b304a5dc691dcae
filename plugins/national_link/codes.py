"""The code mapping with a vertical system (a DHIS2 instance, any ADX consumer), per connector, and
the figures that travel through it: kept here, used by adx.py and dhis2.py (docs/national_link_interop.md).

One table, ``national_link_code_map``, one row per correspondence, of three kinds:

- ``value``: an indicator (``local_code``) and one of its disaggregation options (``local_option``,
  "" = the total) ↔ a data element (``remote_code``) and its disaggregation, written in the two forms
  the two formats need: ``remote_option`` the DHIS2 category option combo (its code or uid, whichever
  the remote's id scheme uses; "" = the default combo), ``remote_attributes`` the ADX category
  attributes (``AGE=AGE0_14;GENDER=FMLE``, categories sorted). A row with an option needs both; a
  total needs neither (the element's default).
- ``unit``: a unit's code ↔ an org unit.
- ``data_set``: a regime's code ↔ a data set.

Each way a code maps to at most one: unique per (connector, kind, local_code, local_option), per
(connector, kind, remote_code, remote_option) and per (connector, kind, remote_code,
remote_attributes), so neither an export nor an import ever has two answers.

The mapping is edited one row at a time or replaced whole from a CSV file (a dry run of what is new,
changed and removed, then all or nothing). Figures go out only through it and come in only through
it: a figure whose code has no row is never dropped in silence — an export names it and refuses,
an import's dry run lists it with its place in the file and the import refuses.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from peewee import CharField, DateTimeField, IntegerField, IntegrityError, fn

from core.api import (BaocaoError, Figure, FiguresQueryError, NotFound, Unit, ValidationError, audit_record,
                      current_indicator, figures, plugin_base, put_figures, transaction, unit_chain, utcnow)

from .periods import period_label
from .rights import MAPPING

Base = plugin_base("national_link")

KINDS = ("value", "unit", "data_set")
KIND_LABELS = {"value": "national_link.mapping.kind.value", "unit": "national_link.mapping.kind.unit",
               "data_set": "national_link.mapping.kind.data_set"}
FIELDS = ("kind", "local_code", "local_option", "remote_code", "remote_option", "remote_attributes")
SIZES = {"kind": 10, "local_code": 40, "local_option": 100, "remote_code": 100, "remote_option": 100,
         "remote_attributes": 255}
CSV_HEADER = FIELDS  # the file's columns: identifiers, the same in every language
CSV_MAX = 1024 * 1024  # bytes of a mapping file: some thousands of rows
REGIME_CODE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{1,39}\Z")  # the core's regime codes
# An ADX category is an XML attribute name of the dataValue: letters, digits and "_", not starting
# with a digit, and none of the attributes ADX itself gives the element.
CATEGORY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,49}\Z")
CATEGORY_OPTION_RE = re.compile(r"[^\s;=\"'<>&]{1,100}\Z")
RESERVED_ATTRIBUTES = frozenset({"dataelement", "value", "orgunit", "period", "dataset", "categoryoptioncombo",
                                 "attributeoptioncombo", "exported", "completedate"})
AUDIT_TYPE = "national_link.code_map"
# Spreadsheets read a text starting with one of these as a formula: an export writes it after a quote
# (as the core's exports do, OWASP's advice), the import takes the quote off again.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
PLACES_SHOWN = 5  # places listed for one unmapped code; the rest are counted
# DHIS2's default category option combo, by code and by uid (the same uid in every DHIS2 instance):
# what a data value without disaggregation names. The mapping writes it "".
DEFAULT_COMBOS = ("default", "HllvX50cXC0")


class CodeMap(Base):  # national_link_code_map
    connector = CharField(max_length=40)
    kind = CharField(max_length=10)
    local_code = CharField(max_length=40)
    local_option = CharField(max_length=100, default="")
    remote_code = CharField(max_length=100)
    remote_option = CharField(max_length=100, default="")
    remote_attributes = CharField(max_length=255, default="")
    updated_at = DateTimeField(default=utcnow)
    updated_by = IntegerField(null=True)  # the account's id: the row outlives the account

    class Meta:
        indexes = ((("connector", "kind", "local_code", "local_option"), True),
                   (("connector", "kind", "remote_code", "remote_option"), True),
                   (("connector", "kind", "remote_code", "remote_attributes"), True))

    def values(self) -> dict:
        return {name: getattr(self, name) for name in FIELDS}


class MappingError(ValidationError):
    """A row refused: ``errors`` maps a field to a message key, ``field_params`` its parameters."""

    def __init__(self, errors: dict[str, str], field_params: dict[str, dict] | None = None):
        super().__init__(errors)
        self.field_params = field_params or {}


class FileRefused(BaocaoError):
    """A file refused whole, before anything in it is read (too big, not UTF-8, a DOCTYPE, not the
    format it claims), or an export with nothing to put in one: the message key says why."""


UPLOAD_BYTES = 4 * 1024 * 1024  # a province's monthly figures from every commune is well under 1 MB


def uploaded_text(content: bytes) -> str:
    """An uploaded figures file (ADX or DHIS2 JSON) as text, refused first when it cannot be one:
    too big, empty, or not UTF-8."""
    if len(content) > UPLOAD_BYTES:
        raise FileRefused("national_link.interop.error.too_big", size=UPLOAD_BYTES // (1024 * 1024))
    if not content.strip():
        raise FileRefused("national_link.interop.error.empty_file")
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise FileRefused("national_link.interop.error.encoding") from None


class MappingGap(BaocaoError):
    """Figures to send whose codes have no row in the connector's mapping: ``codes`` names them all."""

    def __init__(self, connector: str, codes: list[str]):
        super().__init__("national_link.interop.error.unmapped", connector=connector, codes=", ".join(codes))
        self.codes = codes


# -- one row ----------------------------------------------------------------------------------------

def _clean(value, size: int) -> tuple[str, bool]:
    """(text, fits): spaces around taken off, control characters refused as not fitting."""
    text = str(value if value is not None else "").strip()
    return text, len(text) <= size and not any(ord(c) < 32 or ord(c) == 127 for c in text)


def canonical_attributes(text: str) -> str | None:
    """``AGE=AGE0_14;GENDER=FMLE`` from the same pairs in any order (spaces, a trailing ";" allowed);
    "" for none; None when it cannot be ADX category attributes (see CATEGORY_RE)."""
    pairs = {}
    for part in (p.strip() for p in str(text or "").split(";")):
        if not part:
            continue
        category, sep, option = (s.strip() for s in part.partition("="))
        if not sep or not CATEGORY_RE.match(category) or category.lower() in RESERVED_ATTRIBUTES \
                or category.lower().startswith("xml") or not CATEGORY_OPTION_RE.match(option) or category in pairs:
            return None
        pairs[category] = option
    return ";".join(f"{c}={pairs[c]}" for c in sorted(pairs))


def attribute_pairs(text: str) -> list[tuple[str, str]]:
    """The (category, option) pairs of canonical attributes."""
    return [tuple(part.split("=", 1)) for part in text.split(";") if part]


def combo_of(value) -> str:
    """A category option combo as the mapping keeps it: DHIS2's default combo is ""."""
    text = str(value or "").strip()
    return "" if text in DEFAULT_COMBOS else text


def indicator_options(indicator) -> list[str]:
    return [option for _, options in indicator.disaggregation_list for option in options]


def check_row(data: dict) -> tuple[dict, dict[str, str], dict[str, dict]]:
    """(values, errors, field_params) of one row as typed: every field cleaned, each problem at its
    field. Checks the codes against the catalogue and the units, not against other rows."""
    values, errors, params = {}, {}, {}
    for name in FIELDS:
        values[name], fits = _clean(data.get(name), SIZES[name])
        if not fits:
            errors[name], params[name] = "national_link.mapping.error.too_long", {"size": SIZES[name]}
    kind = values["kind"]
    if kind not in KINDS:
        errors["kind"] = "national_link.mapping.error.kind"
        return values, errors, params
    for name in ("local_code", "remote_code"):
        if not values[name] and name not in errors:
            errors[name] = "national_link.mapping.error.required"
    local, option = values["local_code"], values["local_option"]
    if kind == "value" and local and "local_code" not in errors:
        indicator = current_indicator(local)
        if indicator is None:
            errors["local_code"], params["local_code"] = "national_link.mapping.error.indicator", {"code": local}
        elif option and option not in indicator_options(indicator):
            errors["local_option"] = "national_link.mapping.error.option"
            params["local_option"] = {"option": option, "code": local,
                                      "options": "; ".join(indicator_options(indicator)) or "—"}
    elif kind == "unit" and local and "local_code" not in errors:
        if Unit.get_or_none(Unit.code == local) is None:
            errors["local_code"], params["local_code"] = "national_link.mapping.error.unit", {"code": local}
    elif kind == "data_set" and local and not REGIME_CODE_RE.match(local):
        errors["local_code"], params["local_code"] = "national_link.mapping.error.regime_code", {"code": local}
    values["remote_option"] = combo_of(values["remote_option"])
    attributes = canonical_attributes(values["remote_attributes"])
    if attributes is None:
        errors.setdefault("remote_attributes", "national_link.mapping.error.attributes")
    else:
        values["remote_attributes"] = attributes
    if kind == "value":
        if option and not values["remote_option"]:
            errors.setdefault("remote_option", "national_link.mapping.error.combo_required")
        if option and not values["remote_attributes"]:
            errors.setdefault("remote_attributes", "national_link.mapping.error.attributes_required")
    else:  # a unit or a data set has no disaggregation on either side
        for name in ("local_option", "remote_option", "remote_attributes"):
            if values[name]:
                errors.setdefault(name, "national_link.mapping.error.not_for_kind")
    return values, errors, params


def _clashes(connector: str, values: dict, row_id: int | None) -> tuple[dict[str, str], dict[str, dict]]:
    """The other rows of the connector a row would collide with, at the field that collides."""
    errors, params = {}, {}
    same = (CodeMap.connector == connector) & (CodeMap.kind == values["kind"])
    if row_id is not None:
        same &= CodeMap.id != row_id
    local = CodeMap.get_or_none(same & (CodeMap.local_code == values["local_code"])
                                & (CodeMap.local_option == values["local_option"]))
    if local is not None:
        errors["local_code"] = "national_link.mapping.error.local_taken"
        params["local_code"] = {"remote": _remote_text(local)}
    for column in ("remote_option", "remote_attributes"):
        other = CodeMap.get_or_none(same & (CodeMap.remote_code == values["remote_code"])
                                    & (getattr(CodeMap, column) == values[column]))
        if other is not None:
            errors["remote_code"] = "national_link.mapping.error.remote_taken"
            params["remote_code"] = {"local": _local_text(other)}
            break
    return errors, params


def _local_text(row) -> str:
    return f"{row.local_code} ({row.local_option})" if row.local_option else row.local_code


def _remote_text(row) -> str:
    """A row's remote side as people read it: ``DE_DAN_SO (SEX_F GENDER=FMLE)``; "" for no row."""
    if row is None:
        return ""
    extra = " ".join(p for p in (row.remote_option, row.remote_attributes) if p)
    return f"{row.remote_code} ({extra})" if extra else row.remote_code


def rows(connector: str, kind: str | None = None) -> list[CodeMap]:
    """The connector's rows, by kind, then local code and option."""
    query = CodeMap.select().where(CodeMap.connector == connector)
    if kind in KINDS:
        query = query.where(CodeMap.kind == kind)
    order = {k: n for n, k in enumerate(KINDS)}
    return sorted(query, key=lambda r: (order.get(r.kind, 9), r.local_code, r.local_option))


def counts(connectors) -> dict[str, dict[str, int]]:
    """connector → kind → number of rows."""
    found = {name: dict.fromkeys(KINDS, 0) for name in connectors}
    for connector, kind, number in (CodeMap.select(CodeMap.connector, CodeMap.kind, fn.COUNT(CodeMap.id))
                                    .where(CodeMap.connector.in_(list(found)))
                                    .group_by(CodeMap.connector, CodeMap.kind).tuples()):
        found[connector][kind] = number
    return found


def get_row(connector: str, row_id) -> CodeMap:
    row = CodeMap.get_or_none((CodeMap.id == row_id) & (CodeMap.connector == connector))
    if row is None:
        raise NotFound()
    return row


def _audit(access, action: str, connector: str, details: dict, object_id="") -> None:
    audit_record(f"national_link.mapping.{action}", actor=getattr(access, "actor", None), object_type=AUDIT_TYPE,
                 object_id=object_id, details={"channel": connector, **details})


def save_row(access, connector: str, data: dict, row_id: int | None = None) -> CodeMap:
    """Add a row (``row_id`` None) or change one, in one transaction, audited. MappingError names
    each field's problem, a clash with another row included; NotFound for a row of another connector."""
    values, errors, params = check_row(data)
    with transaction():
        row = get_row(connector, row_id) if row_id is not None else None
        if not errors:
            clash_errors, clash_params = _clashes(connector, values, row_id)
            errors.update(clash_errors)
            params.update(clash_params)
        if errors:
            raise MappingError(errors, params)
        actor_id = getattr(getattr(access, "actor", None), "id", None)
        before = _remote_text(row)
        try:
            with transaction():  # a savepoint: a row written meanwhile by someone else is a clash too
                if row is None:
                    row = CodeMap.create(connector=connector, updated_by=actor_id, **values)
                else:
                    CodeMap.update(updated_at=utcnow(), updated_by=actor_id, **values).where(
                        CodeMap.id == row.id).execute()
                    row = CodeMap.get_by_id(row.id)
        except IntegrityError:
            raise MappingError({"remote_code": "national_link.mapping.error.taken"}) from None
        _audit(access, "save", connector, {"kind": values["kind"], "code": _local_text(row), "to": _remote_text(row),
                                           "before": before}, row.id)
    return row


def delete_row(access, connector: str, row_id) -> None:
    with transaction():
        row = get_row(connector, row_id)
        row.delete_instance()
        _audit(access, "delete", connector, {"kind": row.kind, "code": _local_text(row), "to": _remote_text(row)},
               row.id)


# -- the mapping as a CSV file ------------------------------------------------------------------------

def _csv_cell(value: str) -> str:
    return "'" + value if value[:1] in FORMULA_TRIGGERS and value else value


def _csv_uncell(value: str) -> str:
    return value[1:] if value[:1] == "'" and value[1:2] in FORMULA_TRIGGERS and value[1:2] else value


def export_csv(connector: str) -> bytes:
    """The connector's rows as a UTF-8 CSV under ``CSV_HEADER`` (no cell a formula); what
    ``plan_csv`` reads back as unchanged."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for row in rows(connector):
        writer.writerow([_csv_cell(getattr(row, name)) for name in FIELDS])
    return out.getvalue().encode("utf-8-sig")


@dataclass
class CsvPlan:
    """The dry run of a mapping file: the file replaces the connector's whole mapping."""

    new: list[dict] = field(default_factory=list)
    changed: list[tuple[CodeMap, dict]] = field(default_factory=list)
    removed: list[CodeMap] = field(default_factory=list)
    unchanged: int = 0
    errors: list[tuple[int, str, str, dict]] = field(default_factory=list)  # (line, field, key, params)
    digest: str = ""

    @property
    def counts(self) -> dict[str, int]:
        return {"new": len(self.new), "changed": len(self.changed), "removed": len(self.removed),
                "unchanged": self.unchanged}


def _csv_lines(content: bytes) -> list[list[str]]:
    if len(content) > CSV_MAX:
        raise FileRefused("national_link.mapping.csv.too_big", size=CSV_MAX // 1024)
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise FileRefused("national_link.mapping.csv.encoding") from None
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    try:
        return [[_csv_uncell(cell) for cell in line] for line in csv.reader(io.StringIO(text), dialect)]
    except csv.Error:
        raise FileRefused("national_link.mapping.csv.unreadable") from None


def plan_csv(connector: str, content: bytes) -> CsvPlan:
    """What replacing the connector's mapping by the file would do (writes nothing). FileRefused when
    the file cannot be read as the mapping's CSV at all."""
    lines = _csv_lines(content)
    header = [cell.strip().lower() for cell in lines[0]] if lines else []
    if tuple(header[:len(CSV_HEADER)]) != CSV_HEADER:
        raise FileRefused("national_link.mapping.csv.header", columns=", ".join(CSV_HEADER))
    plan = CsvPlan()
    wanted: dict[tuple, dict] = {}
    remote_keys: dict[tuple, int] = {}
    for number, line in enumerate(lines[1:], start=2):
        if not any(cell.strip() for cell in line):
            continue
        values, errors, params = check_row(dict(zip(FIELDS, line)))
        for name, key in errors.items():
            plan.errors.append((number, name, key, params.get(name, {})))
        if errors:
            continue
        local = (values["kind"], values["local_code"], values["local_option"])
        if local in wanted:
            plan.errors.append((number, "local_code", "national_link.mapping.csv.twice",
                                {"line": wanted[local]["line"]}))
            continue
        clash = next((remote_keys[k] for k in ((values["kind"], values["remote_code"], "o", values["remote_option"]),
                                               (values["kind"], values["remote_code"], "a",
                                                values["remote_attributes"])) if k in remote_keys), None)
        if clash is not None:
            plan.errors.append((number, "remote_code", "national_link.mapping.csv.remote_twice", {"line": clash}))
            continue
        wanted[local] = {**values, "line": number}
        remote_keys[(values["kind"], values["remote_code"], "o", values["remote_option"])] = number
        remote_keys[(values["kind"], values["remote_code"], "a", values["remote_attributes"])] = number
    for row in rows(connector):
        values = wanted.pop((row.kind, row.local_code, row.local_option), None)
        if values is None:
            plan.removed.append(row)
        elif all(values[name] == getattr(row, name) for name in FIELDS):
            plan.unchanged += 1
        else:
            plan.changed.append((row, values))
    plan.new = sorted(wanted.values(), key=lambda v: v["line"])
    seen = ([sorted(v.items()) for v in plan.new], [(r.id, sorted(v.items())) for r, v in plan.changed],
            [r.id for r in plan.removed], plan.unchanged)
    plan.digest = hashlib.sha256(repr((connector, hashlib.sha256(content).hexdigest(), seen)).encode()).hexdigest()[:32]
    return plan


def apply_csv(access, connector: str, content: bytes, filename: str, digest: str) -> tuple[dict | None, CsvPlan]:
    """Replace the mapping by the file the person previewed, all or nothing, in one transaction.
    (counts, plan) when written; (None, plan) when the file has errors, or would now do something
    else than the preview showed (the mapping changed meanwhile): nothing written."""
    with transaction():
        plan = plan_csv(connector, content)
        if plan.errors or plan.digest != digest:
            return None, plan
        actor_id = getattr(getattr(access, "actor", None), "id", None)
        # Rows that go or change are taken out first, so a file that swaps two remote codes never
        # meets the unique indexes half-way.
        gone = [r.id for r in plan.removed] + [r.id for r, _ in plan.changed]
        if gone:
            CodeMap.delete().where(CodeMap.id.in_(gone)).execute()
        for values in [v for _, v in plan.changed] + plan.new:
            CodeMap.create(connector=connector, updated_by=actor_id, **{n: values[n] for n in FIELDS})
        _audit(access, "import", connector, {"file": filename[:200], **plan.counts})
    return plan.counts, plan


# -- the mapping as lookups ---------------------------------------------------------------------------

@dataclass
class Mapping:
    """One connector's rows as the lookups an export or an import needs, both ways."""

    connector: str
    values: dict[tuple[str, str], CodeMap]  # (indicator, option) → row
    by_combo: dict[tuple[str, str], CodeMap]  # (data element, category option combo) → row
    by_attributes: dict[tuple[str, str], CodeMap]  # (data element, ADX attributes) → row
    elements: set[str]  # every data element mapped
    units: dict[str, str]  # unit code → org unit
    org_units: dict[str, str]  # org unit → unit code
    data_sets: dict[str, str]  # regime code → data set
    regimes: dict[str, str]  # data set → regime code


def load(connector: str) -> Mapping:
    m = Mapping(connector, {}, {}, {}, set(), {}, {}, {}, {})
    for row in CodeMap.select().where(CodeMap.connector == connector):
        if row.kind == "value":
            m.values[(row.local_code, row.local_option)] = row
            m.by_combo[(row.remote_code, row.remote_option)] = row
            m.by_attributes[(row.remote_code, row.remote_attributes)] = row
            m.elements.add(row.remote_code)
        elif row.kind == "unit":
            m.units[row.local_code] = row.remote_code
            m.org_units[row.remote_code] = row.local_code
        elif row.kind == "data_set":
            m.data_sets[row.local_code] = row.remote_code
            m.regimes[row.remote_code] = row.local_code
    return m


def source_of(fmt: str, connector: str) -> str:
    """The figures store's ``source`` of an import: ``adx:<connector>``, ``dhis2:<connector>`` (cut to
    the column's 40 characters)."""
    return f"{fmt}:{connector}"[:40]


# -- figures going out --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Outgoing:
    """One accepted figure and its remote names."""

    unit_id: int
    org_unit: str
    period: tuple[str, int, int]
    code: str
    option: str
    data_element: str
    combo: str
    attributes: str
    value: object  # Decimal, or the text of a text indicator


def accepted_figures(connector: str, data_set: str, unit_ids, periods_) -> tuple[str, list[Outgoing]]:
    """(the data set's remote code, the accepted figures of ``unit_ids`` × ``periods_`` with their remote
    codes): every figure of the indicators the connector maps, totals and options. MappingGap names
    whatever has no row (the data set, a unit, a disaggregation option of a mapped indicator); a
    FileRefused says there is nothing to send; FiguresQueryError, a question too large."""
    mapping = load(connector)
    unit_ids = list(dict.fromkeys(int(u) for u in unit_ids))
    periods_ = list(dict.fromkeys(tuple(p) for p in periods_))
    units = {u.id: u for u in Unit.select(Unit.id, Unit.code, Unit.name).where(Unit.id.in_(unit_ids))}
    gaps = [] if data_set in mapping.data_sets else [data_set]
    gaps += [units[u].code for u in unit_ids if u in units and units[u].code not in mapping.units]
    codes = sorted({code for code, _ in mapping.values})
    if not codes:
        raise FileRefused("national_link.interop.error.no_values_mapped", connector=connector)
    # A question the store refuses (too large, a period that does not exist) raises its own
    # FiguresQueryError, which words itself in both languages.
    found = figures(codes, [u for u in unit_ids if u in units], periods_, kinds=("actual",), options="all")
    out = []
    for f in found:
        row = mapping.values.get((f.code, f.option))
        if row is None:
            gaps.append(f"{f.code} ({f.option})" if f.option else f.code)
            continue
        if f.value is None:
            continue
        out.append(Outgoing(f.unit_id, mapping.units.get(units[f.unit_id].code, ""), (f.frequency, f.year, f.index),
                            f.code, f.option, row.remote_code, row.remote_option, row.remote_attributes, f.value))
    if gaps:
        raise MappingGap(connector, list(dict.fromkeys(gaps)))
    if not out:
        raise FileRefused("national_link.interop.error.nothing")
    return mapping.data_sets[data_set], out


def value_text(value) -> str:
    """A figure as both formats write it: a number in plain digits (``1234.5``, never ``1.2345E+3``)."""
    if isinstance(value, Decimal):
        text = format(value.normalize(), "f")
        return "0" if text in ("-0", "") else text
    return str(value)


# -- figures coming in: the dry run and the import ------------------------------------------------------

@dataclass(frozen=True)
class Place:
    """Where something is in the file: ADX group n and its dataValue m; DHIS2 dataValue m; the file's head."""

    group: int | None = None
    value: int | None = None

    @property
    def message(self) -> tuple[str, dict]:
        if self.group and self.value:
            return "national_link.interop.place.group_value", {"group": self.group, "value": self.value}
        if self.group:
            return "national_link.interop.place.group", {"group": self.group}
        if self.value:
            return "national_link.interop.place.value", {"value": self.value}
        return "national_link.interop.place.head", {}


@dataclass(frozen=True)
class Incoming:
    """One value as a file gives it, its period already read (None: ``period_problem`` says why)."""

    place: Place
    data_set: str | None  # None: the format did not name one (DHIS2 may not)
    data_set_place: Place
    org_unit: str
    org_unit_place: Place
    period: tuple[str, int, int] | None
    period_problem: tuple[str, dict] | None
    data_element: str
    combo: str | None  # a DHIS2 category option combo ("" = the default); None in ADX
    attributes: str | None  # ADX category attributes, canonical; None in DHIS2
    value: str


@dataclass(frozen=True)
class Problem:
    place: Place
    key: str
    params: dict


@dataclass
class Unmapped:
    """A remote code with no row: ``what`` (data_element, category_option, category_option_combo,
    org_unit, data_set), the code, the data element it qualifies, and every place it stands."""

    what: str
    code: str
    element: str
    places: list[Place] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"national_link.interop.unmapped.{self.what}"

    @property
    def shown_places(self) -> list[Place]:
        return self.places[:PLACES_SHOWN]

    @property
    def more(self) -> int:
        return max(0, len(self.places) - PLACES_SHOWN)


@dataclass(frozen=True)
class Change:
    unit_id: int
    unit_name: str
    period: tuple[str, int, int]
    code: str
    name: str
    option: str
    old: object  # None: no figure yet
    new: object
    numeric: bool

    def period_label(self, lang: str) -> str:
        return period_label(*self.period, lang)


@dataclass
class ImportPlan:
    """The dry run of a file of figures: what would change (old → new), how many stay, every unmapped
    code with its places, every other problem with its place. An import applies only a plan with
    neither unmapped codes nor problems, whole."""

    connector: str
    fmt: str
    changes: list[Change] = field(default_factory=list)
    unchanged: int = 0
    unmapped: list[Unmapped] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    places: list[Place] = field(default_factory=list)  # each figure's place, for the store's refusals
    digest: str = ""

    @property
    def ok(self) -> bool:
        return not self.unmapped and not self.problems

    @property
    def counts(self) -> dict[str, int]:
        return {"figures": len(self.figures), "changed": len(self.changes), "unchanged": self.unchanged}


def _number(text: str) -> Decimal | None:
    """A value as a number, written as both formats write numbers (``-12.5``); None otherwise."""
    if not re.fullmatch(r"-?\d{1,30}(\.\d{1,30})?", text):
        return None
    try:
        return Decimal(text)
    except InvalidOperation:
        return None


def _may_write(access, unit_id: int) -> bool:
    return access is None or access.allowed(MAPPING, unit_chain(unit_id))


def plan_import(connector: str, fmt: str, content: bytes, incoming: list[Incoming], problems: list[Problem],
                access=None) -> ImportPlan:
    """The dry run of ``incoming`` (read from ``content`` by adx.py or dhis2.py, with the problems the
    reading found): writes nothing. ``access``: the figures of a unit go in only where that person
    holds the mapping right; None (a job) checks nothing."""
    mapping = load(connector)
    plan = ImportPlan(connector, fmt, problems=list(problems))
    unmapped: dict[tuple[str, str, str], Unmapped] = {}

    def missing(what: str, code: str, place: Place, element: str = "") -> None:
        entry = unmapped.setdefault((what, code, element), Unmapped(what, code, element))
        if place not in entry.places:
            entry.places.append(place)

    def problem(place: Place, key: str, params: dict) -> None:
        # Once per place: a group's org unit is checked with each of its values.
        if Problem(place, key, params) not in plan.problems:
            plan.problems.append(Problem(place, key, params))

    unit_codes = {mapping.org_units[v.org_unit] for v in incoming if v.org_unit in mapping.org_units}
    units = {u.code: u for u in Unit.select(Unit.id, Unit.code, Unit.name).where(Unit.code.in_(sorted(unit_codes)))}
    resolved = []  # (value, unit, period, code, option)
    for v in incoming:
        if v.data_set is not None and v.data_set not in mapping.regimes:
            missing("data_set", v.data_set, v.data_set_place)
        unit = None
        if v.org_unit not in mapping.org_units:
            missing("org_unit", v.org_unit, v.org_unit_place)
        else:
            unit = units.get(mapping.org_units[v.org_unit])
            if unit is None:
                problem(v.org_unit_place, "national_link.interop.error.unit_gone",
                        {"code": mapping.org_units[v.org_unit]})
        if v.period_problem is not None:
            problem(v.place, *v.period_problem)
        if v.data_element not in mapping.elements:
            missing("data_element", v.data_element, v.place)
            continue
        if v.combo is not None:
            row = mapping.by_combo.get((v.data_element, v.combo))
            if row is None:
                missing("category_option_combo", v.combo or "default", v.place, v.data_element)
                continue
        else:
            row = mapping.by_attributes.get((v.data_element, v.attributes or ""))
            if row is None:
                missing("category_option", v.attributes or "—", v.place, v.data_element)
                continue
        if unit is not None and v.period is not None:
            if not _may_write(access, unit.id):
                problem(v.org_unit_place, "national_link.interop.error.unit_rights", {"unit": unit.name})
                continue
            resolved.append((v, unit, v.period, row.local_code, row.local_option))
    plan.unmapped = list(unmapped.values())
    indicators = {code: current_indicator(code) for code in {r[3] for r in resolved}}
    seen: set[tuple] = set()
    wanted = []
    for v, unit, period, code, option in resolved:
        indicator = indicators[code]
        if indicator is None:
            plan.problems.append(Problem(v.place, "national_link.interop.error.indicator_gone", {"code": code}))
            continue
        key = (unit.id, period, code, option)
        if key in seen:
            plan.problems.append(Problem(v.place, "national_link.interop.error.twice", {"code": code}))
            continue
        seen.add(key)
        if not v.value.strip():
            plan.problems.append(Problem(v.place, "national_link.interop.error.no_value", {"code": code}))
            continue
        if indicator.value_type == "text":
            value = v.value
        else:
            value = _number(v.value.strip())
            if value is None:
                plan.problems.append(Problem(v.place, "national_link.interop.error.value",
                                             {"value": v.value[:40], "code": code}))
                continue
        wanted.append((v.place, unit, period, code, option, indicator, value))
    if not incoming and not plan.problems:
        plan.problems.append(Problem(Place(), "national_link.interop.error.empty", {}))
    stored = _stored(wanted, plan)
    for place, unit, period, code, option, indicator, value in wanted:
        old = stored.get((code, unit.id, period, option))
        numeric = indicator.value_type != "text"
        plan.figures.append(Figure(code, unit.id, *period, "actual", value, option=option))
        plan.places.append(place)
        if old is not None and (old == value if numeric else str(old) == value):
            plan.unchanged += 1
        else:
            plan.changes.append(Change(unit.id, unit.name, period, code, indicator.name, option, old, value, numeric))
    seen_changes = [(c.unit_id, c.period, c.code, c.option, str(c.old), str(c.new)) for c in plan.changes]
    shown = (seen_changes, plan.unchanged, sorted((u.what, u.code, u.element) for u in plan.unmapped),
             [(p.place, p.key) for p in plan.problems])
    plan.digest = hashlib.sha256(repr((connector, fmt, hashlib.sha256(content).hexdigest(), shown))
                                 .encode()).hexdigest()[:32]
    return plan


def _stored(wanted, plan: ImportPlan) -> dict[tuple, object]:
    """(code, unit, period, option) → the figure stored now (kind "actual"), for the values wanted."""
    if not wanted:
        return {}
    codes = sorted({w[3] for w in wanted})
    unit_ids = sorted({w[1].id for w in wanted})
    periods_ = sorted({w[2] for w in wanted})
    try:
        rows_ = figures(codes, unit_ids, periods_, kinds=("actual",), options="all")
    except FiguresQueryError as exc:  # too large a file at once: the store's own words say so
        plan.problems.append(Problem(Place(), exc.key, exc.params))
        return {}
    return {(r.code, r.unit_id, (r.frequency, r.year, r.index), r.option): r.value for r in rows_}


def apply_import(access, connector: str, fmt: str, content: bytes, read, filename: str,
                 digest: str) -> tuple[dict | None, ImportPlan]:
    """Import the file the person previewed, all or nothing, in one transaction, audited. ``read``:
    content → (incoming, problems), the format's reader. (counts, plan) when written; (None, plan)
    when the file has unmapped codes or problems now, or would do something else than the preview
    showed (the figures or the mapping changed meanwhile): nothing written."""
    with transaction():
        incoming, problems = read(content)
        plan = plan_import(connector, fmt, content, incoming, problems, access)
        if not plan.ok or plan.digest != digest:
            return None, plan
        try:
            with transaction():
                changed = put_figures(plan.figures, source=source_of(fmt, connector),
                                      actor=getattr(access, "actor", None))
        except ValidationError as exc:  # a value the store cannot hold exactly (too many digits)
            for key in exc.errors:
                number = int(key.split(".", 1)[0]) - 1
                plan.problems.append(Problem(plan.places[number], "national_link.interop.error.stored",
                                             {"code": plan.figures[number].code}))
            return None, plan
        audit_record("national_link.interop.import", actor=getattr(access, "actor", None),
                     object_type="national_link.interop", object_id=connector,
                     details={"channel": connector, "format": fmt, "file": filename[:200],
                              "figures": len(plan.figures), "changed": changed, "unchanged": plan.unchanged})
    return plan.counts, plan
