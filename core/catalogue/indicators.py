"""The indicator catalogue: groups, versioned indicators, search, the reference data and
the importer for the official 7-column table of QĐ 05/2023/QĐ-TTg.

Versions. ``core_indicator`` holds one row per (code, version). ``save_indicator`` creates
version 1, or — when any catalogue field differs from the current version — version n+1;
the previous row then gets ``valid_to`` (= the new version's ``valid_from``, so validity is
the half-open interval [valid_from, valid_to)) and ``is_current`` false. Rows are never
updated in place otherwise, so a report or form pointing at an indicator row keeps the
version it used; ``get_version(code, version)`` reads any of them. Fields not given to
``save_indicator`` keep the current version's value (the official table has no unit,
value type or aggregation: re-importing it does not reset what an administrator set).

Value kinds. Every indicator and period carries up to four figures: plan (kế hoạch),
estimate (ước tính), actual (thực hiện) and official (chính thức) — ``VALUE_KINDS``, a fixed
list, the same ids 1–4 as the provincial data warehouse API.

Search ignores case and Vietnamese diacritics: the name is stored folded (``name_folded``)
and every word of the query must occur in it or in the code ("dan so" finds "Dân số").

Importer. ``parse_table`` reads CSV or XLSX with the 7 official columns (STT, Mã số,
Nhóm/tên chỉ tiêu, Phân tổ chủ yếu, Kỳ công bố, Cơ quan chịu trách nhiệm thu thập/tổng hợp,
Mã số ở hệ thống cấp cao hơn); headers are matched ignoring case, diacritics, spacing and
punctuation. A 3-character code (T01) is a group row, a 5-character code (T0101) an
indicator of group T01; the letter gives the level (T province, H district, X commune).
It writes nothing: the returned ``ImportPlan`` is the dry run (changes per code, errors per
row). ``apply_plan`` writes the whole plan in one transaction and refuses any plan with an
error, so a file is taken whole or not at all.

Reference data (``core/catalogue/data/indicators``, see its README). ``load_reference`` loads:
  * the 26 groups of QĐ 54/2016 (20 province, 3 district, 3 commune). The source gives the
    code only for T01 and H03; the others are derived from the level and the group number
    stated in the source ("cấp tỉnh (group 02 of 20)" → T02), following the code scheme;
  * the coded rows: T0101, H0301, H0302 (QĐ 54/2016) and H0101–H0212 (QĐ 05/2023);
  * NOT the 17 province rows of group 01 under QĐ 05/2023: the source shows no codes, and
    a code is never guessed. They are returned in ``LoadResult.skipped`` with the reason
    ``indicators.reference.no_code``; the complete lists come through the importer.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from peewee import (BooleanField, CharField, Check, DateField, ForeignKeyField, IntegerField, IntegrityError,
                    TextField, fn)

from core import clock
from core import audit, export_safety, generations
from core.db import CoreModel, transaction
from core.errors import ValidationError
from core.i18n import fold

LEVELS = ("province", "district", "commune")
LEVEL_BY_LETTER = {"T": "province", "H": "district", "X": "commune"}
LETTER_BY_LEVEL = {v: k for k, v in LEVEL_BY_LETTER.items()}
VALUE_TYPES = ("number", "integer", "percent", "text")
AGGREGATIONS = ("sum", "average", "weighted_average", "min", "max", "last", "none")
VALUE_KINDS = ("plan", "estimate", "actual", "official")
VALUE_KIND_LABELS = {kind: f"indicators.value_kind.{kind}" for kind in VALUE_KINDS}
VALUE_KIND_IDS = {"plan": 1, "estimate": 2, "actual": 3, "official": 4}  # the warehouse API's ids
AGGREGATION_LABELS = {a: f"indicators.aggregation.{a}" for a in AGGREGATIONS}

CODE_RE = re.compile(r"^[THX]\d{2}(\d{2})?$")
# A province's or a sector's own indicators (not rows of the national system): two capital letters
# naming the owner, then group and number, e.g. KX0301 in group KX03 (plugin kinhte_xahoi). Their
# level comes from the group, not from the code.
LOCAL_CODE_RE = re.compile(r"^(?![THX]\d)[A-Z]{2}\d{2}(\d{2})?$")
QD05_2023 = "QĐ 05/2023/QĐ-TTg"
QD05_2023_IN_FORCE = dt.date(2023, 4, 15)
QD54_2016 = "QĐ 54/2016/QĐ-TTg"
QD54_2016_IN_FORCE = dt.date(2017, 2, 5)
REFERENCE_DIR = Path(__file__).parent / "data" / "indicators"

# The catalogue fields a version consists of (a difference in any of them = a new version).
VERSIONED_FIELDS = ("name", "group", "unit_of_measure", "value_type", "aggregation", "disaggregation",
                    "levels", "periodicity", "agency", "higher_code", "source_act")


def _in(column, values):
    return Check(f"{column} IN (%s)" % ", ".join(f"'{v}'" for v in values))


class IndicatorGroup(CoreModel):
    code = CharField(max_length=10, unique=True)
    name = CharField(max_length=255)
    level = CharField(max_length=20, constraints=[_in("level", LEVELS)])

    def __str__(self):
        return f"{self.code} {self.name}"


class Indicator(CoreModel):
    """One version of an indicator; (code, version) is unique."""

    code = CharField(max_length=10)
    version = IntegerField()
    name = TextField()
    name_folded = TextField()
    group = ForeignKeyField(IndicatorGroup, backref="indicators", on_delete="RESTRICT")
    unit_of_measure = CharField(max_length=100, null=True)
    value_type = CharField(max_length=20, default="number", constraints=[_in("value_type", VALUE_TYPES)])
    aggregation = CharField(max_length=20, default="none", constraints=[_in("aggregation", AGGREGATIONS)])
    disaggregation = TextField(null=True)
    levels = CharField(max_length=100)  # comma list of LEVELS
    periodicity = TextField(null=True)
    agency = TextField(null=True)
    higher_code = CharField(max_length=20, null=True)
    source_act = TextField(null=True)
    valid_from = DateField(null=True)
    valid_to = DateField(null=True)
    is_current = BooleanField(default=True)

    class Meta:
        indexes = ((("code", "version"), True), (("is_current", "code"), False))

    @property
    def level_list(self) -> list[str]:
        return [lv for lv in (self.levels or "").split(",") if lv]

    @property
    def disaggregation_list(self) -> list[tuple[str, tuple[str, ...]]]:
        """The categories and their options (a row stored before validation: shown as it is)."""
        try:
            return parse_disaggregation(self.disaggregation)
        except ValidationError:
            return [(self.disaggregation, ())]

    def __str__(self):
        return f"{self.code} {self.name} (v{self.version})"


# -- reading --------------------------------------------------------------------------------

def current(code: str) -> Indicator | None:
    return Indicator.get_or_none((Indicator.code == code) & (Indicator.is_current == True))  # noqa: E712


def _current_with_groups(codes: list[str]) -> dict[str, Indicator]:
    """Code → current version, with its group read in the same query: a plan compares every row of
    a table (a plugin's catalogue is compared at each start) in a few queries, not two per row."""
    found = {}
    for start in range(0, len(codes), 500):  # well under any database's limit of bound parameters
        query = (Indicator.select(Indicator, IndicatorGroup).join(IndicatorGroup)
                 .where(Indicator.code.in_(codes[start:start + 500]) & (Indicator.is_current == True)))  # noqa: E712
        found.update((indicator.code, indicator) for indicator in query)
    return found


def get_version(code: str, version: int) -> Indicator | None:
    return Indicator.get_or_none((Indicator.code == code) & (Indicator.version == version))


def history(code: str) -> list[Indicator]:
    return list(Indicator.select().where(Indicator.code == code).order_by(Indicator.version))


def search(q: str = "", *, level: str | None = None, group=None, prefix: str | None = None) -> list[Indicator]:
    """Current versions whose folded name or code contains every word of ``q``; ``prefix``: only
    codes starting with it (an owner's own indicators, ``KX``)."""
    query = Indicator.select().where(Indicator.is_current == True)  # noqa: E712
    if prefix:
        query = query.where(Indicator.code.startswith(prefix))
    for word in fold(q or "").split():
        # ``contains`` escapes LIKE wildcards and is case-insensitive on both backends.
        query = query.where(Indicator.name_folded.contains(word) | Indicator.code.contains(word))
    if level:
        query = query.where(Indicator.levels.contains(level))
    if group is not None:
        code = getattr(group, "code", group)
        query = query.join(IndicatorGroup).where(IndicatorGroup.code == code)
    return list(query.order_by(Indicator.code))


# -- writing --------------------------------------------------------------------------------

def _clean(value):
    if value is None:
        return None
    value = re.sub(r"\s+", " ", str(value)).strip()
    return value or None


# -- disaggregations (phân tổ): categories, each with its options ------------------------------
#
# Stored in ``disaggregation`` as text, in one of two forms, both read by
# ``parse_disaggregation``:
#   * categories only, as the official table's "Phân tổ chủ yếu" column names them:
#     "Giới tính; thành thị/nông thôn" (commas or semicolons; a comma inside brackets
#     does not split);
#   * categories with options, as JSON: [{"category": "Giới tính", "options": ["Nam", "Nữ"]}].
# On a form they are edited as lines, one category a line: "Giới tính: Nam; Nữ".

DISAGGREGATION_MAX_CATEGORIES = 30
DISAGGREGATION_MAX_OPTIONS = 500
DISAGGREGATION_NAME_MAX = 200


def _split_top(text: str, separators: str) -> list[str]:
    """Split on ``separators`` outside brackets; parts cleaned, empty ones dropped."""
    parts, depth, buf = [], 0, []
    for ch in text:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth = max(0, depth - 1)
        if ch in separators and depth == 0:
            parts.append("".join(buf))
            buf = []
        else:
            buf.append(ch)
    parts.append("".join(buf))
    return [p for p in (_clean(x) for x in parts) if p]


def _bad_disaggregation():
    return ValidationError({"disaggregation": "indicators.error.disaggregation"})


def parse_disaggregation(value) -> list[tuple[str, tuple[str, ...]]]:
    """(category, options) pairs from the stored text, form lines or a list; raises
    ValidationError (field ``disaggregation``) for a duplicate, an empty or too long name."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        items = list(value)
    else:
        text = str(value).strip()
        if not text:
            return []
        if text.startswith("["):
            try:
                items = json.loads(text)
            except ValueError:
                raise _bad_disaggregation() from None
            if not isinstance(items, list):
                raise _bad_disaggregation()
        else:
            items = []
            for line in text.splitlines():
                if not line.strip():
                    continue
                if ":" in line:
                    name, _, rest = line.partition(":")
                    items.append((name, _split_top(rest, ";")))
                else:
                    items.extend((name, ()) for name in _split_top(line, ",;"))
    result: list[tuple[str, tuple[str, ...]]] = []
    seen: set[str] = set()
    for item in items:
        if isinstance(item, dict):
            name, options = item.get("category"), item.get("options") or []
        elif isinstance(item, (list, tuple)) and len(item) == 2:
            name, options = item
        elif isinstance(item, str):
            name, options = item, []
        else:
            raise _bad_disaggregation()
        name = _clean(name)
        if not name or len(name) > DISAGGREGATION_NAME_MAX or fold(name) in seen \
                or not isinstance(options, (list, tuple)) or len(options) > DISAGGREGATION_MAX_OPTIONS:
            raise _bad_disaggregation()
        seen.add(fold(name))
        cleaned, seen_options = [], set()
        for option in options:
            option = _clean(option)
            if not option or len(option) > DISAGGREGATION_NAME_MAX or fold(option) in seen_options:
                raise _bad_disaggregation()
            seen_options.add(fold(option))
            cleaned.append(option)
        result.append((name, tuple(cleaned)))
    if len(result) > DISAGGREGATION_MAX_CATEGORIES:
        raise _bad_disaggregation()
    return result


def format_disaggregation(categories) -> str | None:
    """The stored text: "A; B" when no category has options, else JSON."""
    if not categories:
        return None
    if not any(options for _, options in categories):
        return "; ".join(name for name, _ in categories)
    return json.dumps([{"category": name, "options": list(options)} for name, options in categories],
                      ensure_ascii=False)


def disaggregation_lines(value) -> str:
    """The form's text: one category a line, "Giới tính: Nam; Nữ"."""
    try:
        categories = parse_disaggregation(value)
    except ValidationError:
        return str(value or "")
    return "\n".join(f"{name}: {'; '.join(options)}" if options else name for name, options in categories)


def _higher_code_ok(code: str, higher: str) -> bool:
    """A national code (4 digits) or the code of a higher level (H → T; X → T or H). A local code
    (``KX0301``, a sector's ``NN0101``) links to a national code or to any QĐ 05/2023 row (T, H, X)."""
    if re.fullmatch(r"\d{4}", higher):
        return True
    if LOCAL_CODE_RE.match(code):
        return bool(re.fullmatch(r"[THX]\d{4}", higher))
    allowed = {"T": "", "H": "T", "X": "TH"}.get(code[:1], "")
    return bool(re.fullmatch(r"[THX]\d{4}", higher)) and higher[0] in allowed


def _group_code(value) -> str | None:
    return getattr(value, "code", value)


def _normalise(data: dict, existing: Indicator | None, *, keep_options: bool = False) -> tuple[dict, dict]:
    """The full field set of the version ``data`` describes, and the errors (field → key).

    ``keep_options`` (the importer): the official table names categories only, so a row
    naming the same categories as the current version keeps the options set here."""
    errors: dict[str, str] = {}
    code = _clean(data.get("code")) or ""
    if not code:
        errors["code"] = "indicators.error.code_required"
    elif not is_indicator_code(code):
        errors["code"] = "indicators.error.code_invalid"
    out = {"code": code}
    for name in VERSIONED_FIELDS:
        if name == "disaggregation" and name in data:
            try:
                categories = parse_disaggregation(data[name])
            except ValidationError as exc:
                errors.update(exc.errors)
                categories = []
            value = format_disaggregation(categories)
            if keep_options and existing is not None and existing.disaggregation and categories \
                    and not any(options for _, options in categories):
                before = existing.disaggregation_list
                if any(options for _, options in before) and \
                        [fold(n) for n, _ in before] == [fold(n) for n, _ in categories]:
                    value = existing.disaggregation
        elif name in data:
            value = _group_code(data[name]) if name == "group" else _clean(data[name])
        elif existing is not None:
            value = existing.group.code if name == "group" else getattr(existing, name)
        else:
            value = None
        out[name] = value
    if not out["group"] and "code" not in errors:
        out["group"] = _group_prefix(code)
    elif out["group"] and code and "code" not in errors and out["group"] != _group_prefix(code):
        errors["group"] = "indicators.error.group_mismatch"  # the code scheme: group code + number
    if not out["levels"] and CODE_RE.match(code):
        out["levels"] = LEVEL_BY_LETTER[code[0]]
    elif not out["levels"] and out["group"]:  # a local code's level is its group's (TS0101 is not "T")
        group = IndicatorGroup.get_or_none(IndicatorGroup.code == out["group"])
        out["levels"] = group.level if group is not None else None
    out["value_type"] = out["value_type"] or "number"
    out["aggregation"] = out["aggregation"] or "none"
    if not out["name"]:
        errors["name"] = "indicators.error.name_required"
    if out["value_type"] not in VALUE_TYPES:
        errors["value_type"] = "indicators.error.value_type"
    if out["aggregation"] not in AGGREGATIONS:
        errors["aggregation"] = "indicators.error.aggregation"
    levels = [lv.strip() for lv in (out["levels"] or "").split(",") if lv.strip()]
    if not levels or any(lv not in LEVELS for lv in levels):
        errors["levels"] = "indicators.error.levels"
    out["levels"] = ",".join(lv for lv in LEVELS if lv in levels)  # canonical order
    if out["higher_code"] and code and not _higher_code_ok(code, out["higher_code"]):
        errors["higher_code"] = "indicators.error.higher_code_invalid"
    for name, limit in FIELD_MAX.items():
        if name not in errors and out[name] and len(out[name]) > limit:
            errors[name] = "indicators.error.too_long"
    return out, errors


FIELD_MAX = {"name": 1000, "unit_of_measure": 100, "periodicity": 1000, "agency": 1000, "source_act": 1000}


def _same_disaggregation(old, new) -> bool:
    """Equal as categories and options: a row stored as "A, B" equals "A; B" (no new version)."""
    if old == new:
        return True
    try:
        return parse_disaggregation(old) == parse_disaggregation(new)
    except ValidationError:
        return False


def _changed_fields(existing: Indicator, values: dict) -> list[str]:
    return [name for name in VERSIONED_FIELDS
            if not (_same_disaggregation(existing.disaggregation, values[name]) if name == "disaggregation"
                    else (existing.group.code if name == "group" else getattr(existing, name)) == values[name])]


def save_indicator(data: dict, *, actor=None, keep_options: bool = False) -> Indicator:
    """Create version 1 or, when anything differs from the current version, a new version.

    ``data``: ``code`` and any of VERSIONED_FIELDS (``group`` as a code or an
    IndicatorGroup; default: the code's first 3 characters), optionally ``valid_from``
    (default: today; never before the current version's). Returns the current version
    (unchanged when nothing differs). ``keep_options``: see ``_normalise``.
    """
    with transaction():
        code = _clean(data.get("code")) or ""
        existing = current(code) if code else None
        values, errors = _normalise(data, existing, keep_options=keep_options)
        group = IndicatorGroup.get_or_none(IndicatorGroup.code == values["group"]) if values["group"] else None
        if group is None and "group" not in errors:
            errors["group"] = "indicators.error.group_unknown"
        if errors:
            raise ValidationError(errors)
        if existing is not None:
            changed = _changed_fields(existing, values)
            if not changed:
                return existing
        else:
            changed = list(VERSIONED_FIELDS)
        valid_from = data.get("valid_from") or clock.today()
        if existing is not None and existing.valid_from and valid_from < existing.valid_from:
            valid_from = existing.valid_from  # validity intervals never overlap
        if existing is not None:
            existing.valid_to = valid_from
            existing.is_current = False
            existing.save()
        fields = {k: v for k, v in values.items() if k != "group"}
        indicator = Indicator.create(**fields, group=group, name_folded=fold(values["name"]),
                                     version=(existing.version + 1) if existing else 1,
                                     valid_from=valid_from, valid_to=None, is_current=True)
        generations.bump(generations.CATALOGUE)  # summed indicators are kept per process (core.reporting.data)
        audit.record("indicator.change", actor=actor, object_type="indicator", object_id=code,
                     details={"version": indicator.version, "changed": changed})
        return indicator


def value_text(name: str, value) -> str:
    """A catalogue field's value as people read it (an import's old → new): a disaggregation as
    "Giới tính: Nam; Nữ · …", nothing as an empty text."""
    if name == "disaggregation":
        return disaggregation_lines(value).replace("\n", " · ")
    return "" if value is None else str(value)


def is_indicator_code(code: str) -> bool:
    """An indicator's code (not a group's): a QĐ 05/2023 row (``T0101``) or a local one (``KX0301``)."""
    return (bool(CODE_RE.match(code)) and len(code) == 5) or (bool(LOCAL_CODE_RE.match(code)) and len(code) == 6)


def _group_prefix(code: str) -> str:
    """The group part of an indicator code: T01 of T0101, KX03 of KX0301."""
    return code[:-2]


def save_group(code: str, name: str, level: str | None = None) -> tuple[IndicatorGroup, str]:
    """Create or rename a group; returns it and "new", "changed" or "unchanged". A national group's
    level is its letter's; a local group (``KX03``) names its ``level``."""
    group = IndicatorGroup.get_or_none(IndicatorGroup.code == code)
    if group is None:
        if LOCAL_CODE_RE.match(code) and len(code) == 4:
            if level not in LEVELS:
                raise ValidationError({"level": "indicators.error.levels"})
        elif not (CODE_RE.match(code) and len(code) == 3):
            raise ValidationError({"code": "indicators.error.code_invalid"})
        return IndicatorGroup.create(code=code, name=name, level=level or LEVEL_BY_LETTER[code[0]]), "new"
    if group.name == name:
        return group, "unchanged"
    group.name = name
    group.save()
    return group, "changed"


class StaleVersion(ValidationError):
    """Someone else saved a newer version after the form was opened; ``current`` is it."""

    def __init__(self, latest: Indicator):
        super().__init__({"version": "indicators.error.stale"}, version=latest.version)
        self.current = latest


def _parse_date(value) -> dt.date | None:
    if value is None or isinstance(value, dt.date):
        return value
    text = str(value).strip()
    if not text:
        return None
    for fmt in ("%Y-%m-%d", "%d/%m/%Y", "%d-%m-%Y"):
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise ValidationError({"valid_from": "indicators.error.valid_from"})


def edit_indicator(code: str, data: dict, *, expected_version: int, actor=None) -> tuple[Indicator, bool]:
    """Save an edit made on version ``expected_version``; (current version, whether a new one
    was made). Refused with ``StaleVersion`` when a newer version exists meanwhile."""
    from core.errors import NotFound

    valid_from = data.get("valid_from")
    data = {k: v for k, v in data.items() if k in VERSIONED_FIELDS}
    try:
        with transaction():
            latest = current(code)
            if latest is None:
                raise NotFound()
            if latest.version != expected_version:
                raise StaleVersion(latest)
            valid_from = _parse_date(valid_from)
            if valid_from and latest.valid_from and valid_from < latest.valid_from:
                raise ValidationError({"valid_from": "indicators.error.valid_from_before"})
            saved = save_indicator({**data, "code": code, "valid_from": valid_from}, actor=actor)
            return saved, saved.id != latest.id
    except IntegrityError:
        # Another request inserted the same version number first (PostgreSQL, concurrent saves).
        raise StaleVersion(current(code)) from None


def create_indicator(data: dict, *, actor=None) -> Indicator:
    """Version 1 of a new indicator; an existing code is refused."""
    code = (_clean(data.get("code")) or "").upper()
    with transaction():
        if code and Indicator.select().where(Indicator.code == code).exists():
            raise ValidationError({"code": "indicators.error.code_exists"})
        valid_from = _parse_date(data.get("valid_from"))
        fields = {k: v for k, v in data.items() if k in VERSIONED_FIELDS}
        return save_indicator({**fields, "code": code, "valid_from": valid_from}, actor=actor)


# -- browsing ------------------------------------------------------------------------------------

@dataclass
class Browse:
    rows: list  # Indicator (current versions), with .group loaded
    total: int
    offset: int
    limit: int
    group_counts: list  # (IndicatorGroup, count) of the groups with results, in code order
    level_counts: dict  # level → count for the query text alone
    catalogue_empty: bool


def _filtered(query, q: str, level: str | None, group_id: int | None):
    query = query.where(Indicator.is_current == True)  # noqa: E712
    for word in fold(q or "").split():
        query = query.where(Indicator.name_folded.contains(word) | Indicator.code.contains(word))
    if level:
        query = query.where(Indicator.levels.contains(level))
    if group_id is not None:
        query = query.where(Indicator.group == group_id)
    return query


def browse(q: str = "", *, level: str | None = None, group: str | None = None, offset: int = 0,
           limit: int = 50) -> Browse:
    """One page of current versions, with counts per group and per level: a page of a
    5,000-row catalogue reads ``limit`` rows, not all of them."""
    level = level if level in LEVELS else None
    group_obj = IndicatorGroup.get_or_none(IndicatorGroup.code == group) if group else None
    group_id = group_obj.id if group_obj else None
    total = _filtered(Indicator.select(), q, level, group_id).count()
    offset = max(0, min(offset, max(0, total - 1) // limit * limit))
    rows = list(_filtered(Indicator.select(Indicator, IndicatorGroup).join(IndicatorGroup), q, level, group_id)
                .order_by(Indicator.code).limit(limit).offset(offset))
    counts = dict(_filtered(Indicator.select(Indicator.group, fn.COUNT(Indicator.id)), q, level, group_id)
                  .group_by(Indicator.group).tuples())
    groups = list(IndicatorGroup.select().where(IndicatorGroup.id.in_(list(counts))).order_by(IndicatorGroup.code)) \
        if counts else []
    level_counts = {lv: _filtered(Indicator.select(), q, lv, None).count() for lv in LEVELS}
    empty = not Indicator.select().exists() and not IndicatorGroup.select().exists()
    return Browse(rows, total, offset, limit, [(g, counts[g.id]) for g in groups], level_counts, empty)


def groups(level: str | None = None) -> list[IndicatorGroup]:
    query = IndicatorGroup.select().order_by(IndicatorGroup.code)
    return list(query.where(IndicatorGroup.level == level) if level in LEVELS else query)


@dataclass
class VersionInfo:
    indicator: Indicator
    changes: list  # (field, old value, new value); empty for version 1
    actor_name: str = ""
    at: dt.datetime | None = None


def _field_value(indicator: Indicator, name: str):
    return indicator.group.code if name == "group" else getattr(indicator, name)


def version_history(code: str) -> list[VersionInfo]:
    """Every version, oldest first, with the fields it changed and who saved it (audit log)."""
    versions = list(Indicator.select(Indicator, IndicatorGroup).join(IndicatorGroup)
                    .where(Indicator.code == code).order_by(Indicator.version))
    saved_by: dict[int, audit.AuditEvent] = {}
    for event in audit.AuditEvent.select().where((audit.AuditEvent.action == "indicator.change")
                                                 & (audit.AuditEvent.object_type == "indicator")
                                                 & (audit.AuditEvent.object_id == code)):
        try:
            saved_by[int(json.loads(event.details or "{}").get("version"))] = event
        except (TypeError, ValueError):
            continue
    result, previous = [], None
    for version in versions:
        changes = [] if previous is None else [
            (name, _field_value(previous, name), _field_value(version, name)) for name in VERSIONED_FIELDS
            if _field_value(previous, name) != _field_value(version, name)]
        event = saved_by.get(version.version)
        result.append(VersionInfo(version, changes, event.actor_name if event else "", event.at if event else None))
        previous = version
    return result


# -- the importer -----------------------------------------------------------------------------

# Normalised header (folded, letters and digits only) → field. Checked in order, by prefix.
HEADERS = (
    ("stt", "stt"),
    ("masoohethong", "higher_code"),
    ("masocapcaohon", "higher_code"),
    ("masochitieucapcaohon", "higher_code"),
    ("maso", "code"),
    ("nhomtenchitieu", "name"),
    ("tenchitieu", "name"),
    ("nhomchitieu", "name"),
    ("phanto", "disaggregation"),
    ("kycongbo", "periodicity"),
    ("coquan", "agency"),
    # Beyond the official 7 columns, what a province's or a plugin's own table may add (the catalogue
    # fields the official table lacks); "cap" last, as the shortest prefix.
    ("donvitinh", "unit_of_measure"),
    ("loaigiatri", "value_type"),
    ("cachtonghop", "aggregation"),
    ("vanban", "source_act"),
    ("cap", "levels"),
)
REQUIRED_COLUMNS = ("code", "name")
FIELD_LABELS = {"code": "Mã số", "name": "Nhóm/tên chỉ tiêu", "disaggregation": "Phân tổ chủ yếu",
                "periodicity": "Kỳ công bố", "agency": "Cơ quan chịu trách nhiệm thu thập/tổng hợp",
                "higher_code": "Mã số ở hệ thống cấp cao hơn", "unit_of_measure": "Đơn vị tính",
                "value_type": "Loại giá trị", "aggregation": "Cách tổng hợp", "levels": "Cấp",
                "source_act": "Văn bản quy định"}
EXTRA_COLUMNS = ("unit_of_measure", "value_type", "aggregation", "levels", "source_act")
EMPTY_MARKS = {"-", "–", "—", "x"}


def _header_field(cell) -> str | None:
    key = re.sub(r"[^a-z0-9]", "", fold(str(cell or "")))
    if not key:
        return None
    for prefix, name in HEADERS:
        if key == prefix or (key.startswith(prefix) and prefix != "maso" and prefix != "stt"):
            return name
    return None


@dataclass
class ImportRow:
    row_number: int
    kind: str  # "group" or "indicator"
    code: str
    data: dict


@dataclass
class ImportPlan:
    rows: list[ImportRow] = field(default_factory=list)
    errors: list[tuple[int, str, str, dict]] = field(default_factory=list)  # (row, field, key, params)
    changes: list[tuple[str, str]] = field(default_factory=list)  # (code, "new"|"changed"|"unchanged")
    source_act: str = QD05_2023
    valid_from: dt.date | None = QD05_2023_IN_FORCE

    @property
    def ok(self) -> bool:
        return not self.errors

    def counts(self) -> dict[str, int]:
        result = {"new": 0, "changed": 0, "unchanged": 0}
        for _, change in self.changes:
            result[change] += 1
        return result


def _read_rows(source, filename: str) -> list[list]:
    name = (filename or "").lower()
    if isinstance(source, (str, Path)):
        source = Path(source).read_bytes()
    if name.endswith((".xlsx", ".xlsm")):
        import openpyxl

        book = openpyxl.load_workbook(io.BytesIO(source), read_only=True, data_only=True)
        try:
            sheet = book.worksheets[0]
            return [list(row) for row in sheet.iter_rows(values_only=True)]
        finally:
            book.close()
    if name.endswith((".csv", ".txt")):
        text = source.decode("utf-8-sig")
        try:
            dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
        except csv.Error:
            dialect = csv.excel
        # The quote an export puts before "=", "+"... (core.export_safety) goes again.
        return [[export_safety.unquote(c) for c in row] for row in csv.reader(io.StringIO(text), dialect)]
    raise ValidationError({"file": "indicators.import.file_type"}, filename=filename)


def _cell(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = _clean(value)
    return None if text is None or text in EMPTY_MARKS else text


def _is_group_code(code: str) -> bool:
    return (bool(CODE_RE.match(code)) and len(code) == 3) or (bool(LOCAL_CODE_RE.match(code)) and len(code) == 4)


def _extra_errors(values: dict, is_group: bool, local: bool) -> list[tuple[str, str, dict]]:
    """The optional columns beyond the official seven: each value one the catalogue knows."""
    errors = []
    for name, allowed in (("value_type", VALUE_TYPES), ("aggregation", AGGREGATIONS)):
        if values.get(name) and values[name] not in allowed:
            errors.append((name, "indicators.import.choice", {"value": values[name], "choices": ", ".join(allowed)}))
    levels = [lv.strip() for lv in (values.get("levels") or "").split(",") if lv.strip()]
    if any(lv not in LEVELS for lv in levels) or (is_group and len(levels) > 1) \
            or (is_group and local and not levels):
        # A local group names its one level (a national group's is its letter's).
        errors.append(("levels", "indicators.import.levels", {"value": values.get("levels") or "",
                                                              "choices": ", ".join(LEVELS)}))
    return errors


def parse_table(source, filename: str, *, source_act: str = QD05_2023,
                valid_from: dt.date | None = QD05_2023_IN_FORCE, local_codes: bool = False,
                compare: bool = True, prefix: str | None = None) -> ImportPlan:
    """Read the official table (a path or bytes); write nothing. The plan is the dry run.

    ``local_codes``: the table may also hold a province's or plugin's own codes (``KX03`` a group,
    ``KX0301`` an indicator, see ``LOCAL_CODE_RE``) — a plugin's data file. Optional columns beyond
    the official seven (``EXTRA_COLUMNS``: Đơn vị tính, Loại giá trị, Cách tổng hợp, Cấp, Văn bản
    quy định) give the catalogue fields the official table lacks. ``compare=False``: the file alone,
    without the database (its rows as they read, no changes, no check of groups the file lacks).
    ``prefix`` (two capital letters, implies ``local_codes``): only that owner's codes — a sector's
    own catalogue; every other row (a national code, another owner's) is refused with its line
    (``indicators.import.code_outside_prefix``, parameters ``code`` and ``prefix``).
    With ``compare``, each row is also checked as ``save_indicator`` would check it, so that a plan
    without errors applies."""
    if prefix is not None and not re.fullmatch(r"[A-Z]{2}", prefix):
        raise ValueError(f"an indicator code prefix is two capital letters, not {prefix!r}")
    local_codes = local_codes or prefix is not None
    plan = ImportPlan(source_act=source_act, valid_from=valid_from)
    raw = _read_rows(source, filename)
    header_at, columns = None, {}
    for index, row in enumerate(raw[:30]):
        found = {}
        for position, cell in enumerate(row):
            name = _header_field(cell)
            if name and name not in found:
                found[name] = position
        if all(c in found for c in REQUIRED_COLUMNS):
            header_at, columns = index, found
            break
    if header_at is None:
        plan.errors.append((1, "header", "indicators.import.header_missing",
                            {"columns": ", ".join(FIELD_LABELS[c] for c in REQUIRED_COLUMNS)}))
        return plan

    seen: dict[str, int] = {}
    file_groups: set[str] = set()
    pending: list[ImportRow] = []
    for index in range(header_at + 1, len(raw)):
        row = raw[index]
        row_number = index + 1
        values = {name: _cell(row[pos]) if pos < len(row) else None for name, pos in columns.items()}
        if not any(v for k, v in values.items() if k != "stt"):
            continue  # blank line
        code, name = (values.get("code") or "").upper(), values.get("name")
        row_errors = []
        if not code:
            row_errors.append(("code", "indicators.import.code_required", {}))
        elif not (CODE_RE.match(code) or (local_codes and LOCAL_CODE_RE.match(code))):
            row_errors.append(("code", "indicators.import.code_invalid", {"code": code}))
        elif prefix is not None and not code.startswith(prefix):
            row_errors.append(("code", "indicators.import.code_outside_prefix", {"code": code, "prefix": prefix}))
        if not name:
            row_errors.append(("name", "indicators.import.name_required", {}))
        higher = values.get("higher_code")
        local = bool(local_codes and LOCAL_CODE_RE.match(code))
        if higher and code and (CODE_RE.match(code) or local) \
                and (_is_group_code(code) or not _higher_code_ok(code, higher)):
            row_errors.append(("higher_code", "indicators.import.higher_code_invalid", {"code": higher}))
        row_errors += _extra_errors(values, _is_group_code(code), local)
        if code and code in seen:
            row_errors.append(("code", "indicators.import.code_duplicate", {"code": code, "first_row": seen[code]}))
        elif code:
            seen[code] = row_number
        for field_name, key, params in row_errors:
            plan.errors.append((row_number, field_name, key, params))
        if row_errors:
            continue
        if _is_group_code(code):
            file_groups.add(code)
            group_data = {"code": code, "name": name}
            if values.get("levels"):
                group_data["level"] = values["levels"].strip()
            pending.append(ImportRow(row_number, "group", code, group_data))
        else:
            data = {"code": code, "name": name, "group": _group_prefix(code), "higher_code": higher,
                    "disaggregation": values.get("disaggregation"), "periodicity": values.get("periodicity"),
                    "agency": values.get("agency"), "source_act": values.get("source_act") or source_act,
                    **{k: values.get(k) for k in EXTRA_COLUMNS if k != "source_act"}}
            data = {k: v for k, v in data.items() if k in columns or k in ("code", "group", "source_act")}
            pending.append(ImportRow(row_number, "indicator", code, data))
    if not compare:
        plan.rows = pending
        plan.errors.sort(key=lambda e: e[0])
        return plan

    known_groups = {g.code: g for g in IndicatorGroup.select().where(IndicatorGroup.code.in_(
        sorted({r.code if r.kind == "group" else _group_prefix(r.code) for r in pending})))} if pending else {}
    current_of = _current_with_groups([r.code for r in pending if r.kind == "indicator"])
    for item in pending:
        if item.kind == "group":
            group = known_groups.get(item.code)
            change = "new" if group is None else ("unchanged" if group.name == item.data["name"] else "changed")
        else:
            if item.data["group"] not in file_groups and item.data["group"] not in known_groups:
                plan.errors.append((item.row_number, "code", "indicators.import.group_unknown",
                                    {"code": item.code, "group": item.data["group"]}))
                continue
            existing = current_of.get(item.code)
            values, problems = _normalise(item.data, existing, keep_options=True)
            if problems:
                # What save_indicator would refuse (a disaggregation it cannot read, no level for a
                # new local code...) is refused here with its line: a plan without errors applies.
                plan.errors += [(item.row_number, name, key, {}) for name, key in problems.items()]
                continue
            change = "new" if existing is None else ("changed" if _changed_fields(existing, values) else "unchanged")
        plan.rows.append(item)
        plan.changes.append((item.code, change))
    plan.errors.sort(key=lambda e: e[0])
    return plan


def apply_plan(plan: ImportPlan, *, actor=None) -> dict[str, int]:
    """Write the whole plan in one transaction; a plan with any error is refused whole."""
    if plan.errors:
        raise ValidationError({"file": "indicators.import.has_errors"}, count=len(plan.errors))
    counts = {"new": 0, "changed": 0, "unchanged": 0}
    with transaction():
        for item in plan.rows:
            if item.kind == "group":
                _, change = save_group(item.code, item.data["name"], item.data.get("level"))
            else:
                before = current(item.code)
                after = save_indicator({**item.data, "valid_from": plan.valid_from or clock.today()}, actor=actor,
                                       keep_options=True)
                change = "new" if before is None else ("unchanged" if after.id == before.id else "changed")
            counts[change] += 1
        audit.record("indicator.import", actor=actor, object_type="indicator", object_id="",
                     details={"source_act": plan.source_act, "rows": len(plan.rows), **counts})
    return counts


@dataclass
class PlanLine:
    row_number: int
    kind: str  # "group" or "indicator"
    code: str
    name: str
    change: str  # "new", "changed", "unchanged"
    fields: list  # (field, old, new) of a changed row


def describe_plan(plan: ImportPlan) -> list[PlanLine]:
    """The preview's table: per code what the plan would do, old → new for changed fields."""
    change_of = dict(plan.changes)
    known = {g.code: g for g in IndicatorGroup.select().where(IndicatorGroup.code.in_(
        [r.code for r in plan.rows if r.kind == "group"] or [""]))}
    lines = []
    for item in plan.rows:
        change, fields = change_of.get(item.code, "unchanged"), []
        if item.kind == "group":
            if change == "changed":
                fields = [("name", known[item.code].name, item.data["name"])]
        elif change == "changed":
            existing = current(item.code)
            values, _ = _normalise(item.data, existing, keep_options=True)
            fields = [(name, _field_value(existing, name), values[name]) for name in _changed_fields(existing, values)]
        lines.append(PlanLine(item.row_number, item.kind, item.code, item.data.get("name") or "", change, fields))
    return lines


OFFICIAL_HEADER = ("STT", "Mã số", "Nhóm/tên chỉ tiêu", "Phân tổ chủ yếu", "Kỳ công bố",
                   "Cơ quan chịu trách nhiệm thu thập/tổng hợp", "Mã số ở hệ thống cấp cao hơn")


def template_xlsx() -> bytes:
    """An empty workbook with the 7 official column headers, for the importer."""
    import openpyxl
    from openpyxl.styles import Font

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Chỉ tiêu"
    sheet.append(list(OFFICIAL_HEADER))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for letter, width in zip("ABCDEFG", (6, 10, 50, 30, 14, 36, 16)):
        sheet.column_dimensions[letter].width = width
    sheet.freeze_panes = "A2"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


# The official seven columns, then the catalogue's own (``EXTRA_COLUMNS``), which the importer reads.
EXPORT_HEADER = OFFICIAL_HEADER + tuple(FIELD_LABELS[name] for name in EXTRA_COLUMNS)


def table_rows(prefix: str) -> list[list]:
    """An owner's groups (codes starting with ``prefix``) and their current indicators as rows of
    ``EXPORT_HEADER``, in code order: what ``parse_table(prefix=prefix)`` reads back unchanged."""
    if not re.fullmatch(r"[A-Z]{2}", prefix or ""):
        raise ValueError(f"an indicator code prefix is two capital letters, not {prefix!r}")
    rows, number = [], 0
    for group in groups_with_prefix(prefix):
        rows.append(["", group.code, group.name, "", "", "", "", "", "", "", group.level, ""])
        items = Indicator.select().where((Indicator.group == group) & (Indicator.is_current == True))  # noqa: E712
        for item in items.order_by(Indicator.code):
            number += 1
            rows.append([number, item.code, item.name, item.disaggregation or "", item.periodicity or "",
                         item.agency or "", item.higher_code or "", item.unit_of_measure or "", item.value_type,
                         item.aggregation, item.levels, item.source_act or ""])
    return rows


def export_table(prefix: str, fmt: str = "xlsx") -> bytes:
    """``table_rows(prefix)`` under ``EXPORT_HEADER`` as an Excel workbook (``xlsx``) or a UTF-8 CSV
    (``csv``), every text kept as text (``core.export_safety``: no cell becomes a formula)."""
    rows = table_rows(prefix)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(EXPORT_HEADER)
        writer.writerows(export_safety.csv_row(row) for row in rows)
        return out.getvalue().encode("utf-8-sig")
    if fmt != "xlsx":
        raise ValueError(f"an export is xlsx or csv, not {fmt!r}")
    import openpyxl
    from openpyxl.styles import Font

    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("Chỉ tiêu")
    for letter, width in zip("ABCDEFGHIJKL", (6, 10, 50, 30, 14, 36, 16, 12, 12, 14, 18, 30)):
        sheet.column_dimensions[letter].width = width
    sheet.freeze_panes = "A2"
    bold = Font(bold=True)
    sheet.append([export_safety.write_only_cell(sheet, name, font=bold) for name in EXPORT_HEADER])
    for row in rows:
        sheet.append([export_safety.write_only_cell(sheet, value) for value in row])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def sample_csv() -> bytes:
    """The shipped district rows of QĐ 05/2023 as a filled-in 7-column CSV (an example)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(OFFICIAL_HEADER)
    groups_seen, number = set(), 0
    with (REFERENCE_DIR / "qd05_2023_district_partial.csv").open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            if row["group_code"] not in groups_seen:
                groups_seen.add(row["group_code"])
                writer.writerow(export_safety.csv_row(["", row["group_code"], row["group_name"], "", "", "", ""]))
            number += 1
            writer.writerow(export_safety.csv_row([number, row["code"], row["name"], "", "", "",
                                                   row.get("higher_code") or ""]))
    return out.getvalue().encode("utf-8-sig")


# -- the shipped reference rows ----------------------------------------------------------------

@dataclass
class LoadResult:
    groups: int = 0
    indicators: int = 0
    skipped: list[tuple[str, int, str, str]] = field(default_factory=list)  # (file, line, name, reason)


_GROUP_ORDINAL = re.compile(r"cấp (tỉnh|huyện|xã) \(group (\d+) of \d+\)")
_LEVEL_WORD = {"tỉnh": "T", "huyện": "H", "xã": "X"}
_SOURCE_ACTS = {"qd54_2016": (QD54_2016, QD54_2016_IN_FORCE), "qd05_2023": (QD05_2023, QD05_2023_IN_FORCE)}


def _reference_files():
    return sorted(REFERENCE_DIR.glob("*.csv"))


def reference_groups() -> list[tuple[str, str]]:
    """(code, name) of the shipped groups; see the module docstring for the derived codes."""
    groups: dict[str, str] = {}
    for path in _reference_files():
        with path.open(encoding="utf-8", newline="") as f:
            for row in csv.DictReader(f):
                code = (row.get("code") or "").strip()
                match = _GROUP_ORDINAL.search(row.get("group_name") or "")
                if match and not code:
                    code = f"{_LEVEL_WORD[match.group(1)]}{int(match.group(2)):02d}"
                if len(code) == 3:
                    groups.setdefault(code, row["name"].strip())
                elif (row.get("group_code") or "").strip():
                    groups.setdefault(row["group_code"].strip(), row["group_name"].strip())
    return sorted(groups.items())


def load_reference(*, actor=None) -> LoadResult:
    """Load the shipped groups and coded rows (idempotent: a second run changes nothing)."""
    result = LoadResult()
    with transaction():
        for code, name in reference_groups():
            save_group(code, name)
            result.groups += 1
        for path in _reference_files():
            act, in_force = _SOURCE_ACTS[path.stem[:9]]
            with path.open(encoding="utf-8", newline="") as f:
                for line, row in enumerate(csv.DictReader(f), start=2):
                    code = (row.get("code") or "").strip()
                    if not code:
                        if not _GROUP_ORDINAL.search(row.get("group_name") or ""):
                            result.skipped.append((path.name, line, row["name"], "indicators.reference.no_code"))
                        continue
                    if len(code) != 5:
                        continue  # a group row
                    data = {"code": code, "name": row["name"], "group": code[:3], "source_act": act,
                            "valid_from": in_force}
                    for name in ("disaggregation", "agency", "higher_code"):
                        if _clean(row.get(name)):
                            data[name] = row[name]
                    if _clean(row.get("period")):
                        data["periodicity"] = row["period"]
                    save_indicator(data, actor=actor)
                    result.indicators += 1
    return result


def groups_with_prefix(prefix: str) -> list[IndicatorGroup]:
    """The groups whose code starts with ``prefix`` (a plugin's own: ``KX``), in code order."""
    return list(IndicatorGroup.select().where(IndicatorGroup.code.startswith(prefix)).order_by(IndicatorGroup.code))
