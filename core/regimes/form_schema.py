"""The form file: a form definition (``core.regimes.form_engine``) with its code and name, as a plugin
ships it in ``data/forms/*.json`` — its JSON Schema and the validator that names the place of every
mistake.

Two steps, each naming places as JSON paths (``rows[3].formula``, ``columns[0].kind``; indexes from
0, the document itself is ``$``):
1. the shape (``SCHEMA``, published as ``docs/form.schema.json``): types, required and unknown
   fields, choices, lengths — checked by the small validator below, which knows only the keywords
   the schema uses (``KEYWORDS``) and refuses any other, so the schema cannot say more than is checked;
2. when the shape is right, the engine's own checks (``check_definition``): keys, formulas,
   references, cycles — their places (``rows.tong.formula``) turned into the same JSON paths.

The schema is built from the engine's constants (kinds, periods, severities, limits), so it cannot
drift from what the engine accepts; ``python -m core.regimes.form_schema`` prints it, and a test
checks that ``docs/form.schema.json`` is that print.
"""

from __future__ import annotations

import json
import re

from core.catalogue.indicators import VALUE_KINDS
from core.numbers import MAX_DECIMALS
from core.regimes.form_engine import (COLUMN_KINDS, MAX_COLUMNS, MAX_ROWS, MAX_RULES, MAX_SECTIONS, PERIOD_OFFSETS,
                                      ROW_KINDS, SEVERITIES, Problem, check_definition, normalise)
from core.regimes.periods import FREQUENCIES

SCHEMA_ID = "https://baocao.invalid/schemas/form.schema.json"  # an identifier, not fetched
KEY_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,30}$"  # form_engine.KEY_RE
FORM_CODE_PATTERN = r"^[A-Z0-9][A-Z0-9._-]{0,39}$"  # forms.CODE_RE
CELL_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,30}\.[A-Za-z_][A-Za-z0-9_]{0,30}$"


def _text(limit: int, description: str, *, required: bool = False) -> dict:
    out = {"type": "string", "maxLength": limit, "description": description}
    if required:
        out["minLength"] = 1
    return out


# What a pattern means, said in both languages: pattern → (message key, name of the value's parameter).
PATTERN_MESSAGES = {KEY_PATTERN: ("forms.error.key", "key"), FORM_CODE_PATTERN: ("forms.error.code", "value"),
                    CELL_PATTERN: ("plugin_data.schema.cell", "value")}


def _key(description: str) -> dict:
    return {"type": "string", "pattern": KEY_PATTERN, "description": description}


def _object(properties: dict, required: tuple[str, ...], description: str) -> dict:
    return {"type": "object", "description": description, "properties": properties,
            "required": list(required), "additionalProperties": False}


def _decimals() -> dict:
    return {"type": "integer", "minimum": 0, "maximum": MAX_DECIMALS,
            "description": "Digits shown after the decimal point (default: as typed)."}


def _keys(description: str) -> dict:
    return {"type": "array", "items": _key("A row or column key."), "description": description}


def build_schema() -> dict:
    row = _object({
        "key": _key("Unique key of the row; rows and columns share one set of keys. Used in formulas."),
        "kind": {"enum": list(ROW_KINDS), "description": "indicator: a catalogue indicator; heading: a greyed "
                                                         "title row; computed: a formula over other rows."},
        "number": _text(20, "What the first column shows (STT): 1, 2, I, a) ..."),
        "label": _text(500, "The row's name; an indicator row may leave it out (the indicator's name is used)."),
        "indicator": _text(10, "indicator rows: the catalogue code (T0101, KX0301)."),
        "option": _text(100, "indicator rows: a disaggregation option of the indicator; empty = the total."),
        "unit": _text(40, "Unit of measure shown on the row."),
        "formula": _text(2000, "computed rows: a formula over row keys, computed in each column (kx0302 + kx0303)."),
        "decimals": _decimals(),
        "indent": {"type": "integer", "minimum": 0, "maximum": 4, "description": "Indentation of the label (0-4)."},
    }, ("key", "kind"), "A row of the form.")
    column = _object({
        "key": _key("Unique key of the column; used in formulas and rules."),
        "kind": {"enum": list(COLUMN_KINDS), "description": "input: typed in; prefill: read-only, from stored "
                                                            "figures; computed: a formula or an accumulation."},
        "label": _text(255, "Column heading; may use {m} {m-1} {y} {y-1} {y+1} {py}.", required=True),
        "value_kind": {"enum": list(VALUE_KINDS), "description": "Which figure the column holds (default actual)."},
        "period": {"enum": list(PERIOD_OFFSETS), "description": "Which period the column's figure is for "
                                                               "(default current)."},
        "formula": _text(2000, "computed columns: a formula over column keys, computed on each row "
                               "(cur / prev * 100)."),
        "accumulate": _key("computed columns: the key of the column added up from the start of the year."),
        "periods": {"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": 12},
                    "description": "Show the column only in these period indexes (month 5, quarter 2); "
                                   "empty or absent = always."},
        "decimals": _decimals(),
        "percent": {"type": "boolean", "description": "Show the value with a % sign."},
    }, ("key", "kind", "label"), "A column of the form.")
    rule = _object({
        "key": _key("The rule's code, shown with its message."),
        "severity": {"enum": list(SEVERITIES), "description": "blocker stops submission; error, warning and "
                                                             "info are shown (default error)."},
        "expression": _text(2000, "A true/false condition; with column keys it is checked on every row, with "
                                  "row keys on every column.", required=True),
        "rows": _keys("Check only these rows (default: every data row)."),
        "columns": _keys("Check only these columns (default: every column shown)."),
        "message": _object({"vi": _text(500, "Vietnamese; may use {row} and {column}."),
                            "en": _text(500, "English; may use {row} and {column}.")},
                           (), "The message shown where the rule fails."),
    }, ("key", "expression"), "A validation rule.")
    section = _object({
        "key": _key("Unique key of the section."),
        "title": _text(255, "Section title (I. Tình hình ...).", required=True),
        "guidance": _text(4000, "What to write in it."),
        "required": {"type": "boolean", "description": "The section must be written before submitting."},
    }, ("key", "title"), "A section of the narrative outline (đề cương).")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "baocao form file",
        "description": "A data form (biểu mẫu) a plugin ships in data/forms/*.json; see docs/forms.md.",
        "type": "object",
        "properties": {
            "$schema": {"type": "string", "description": "Optional: this schema's location, for editors."},
            "code": {"type": "string", "pattern": FORM_CODE_PATTERN,
                     "description": "The form's code: capital letters, digits, . _ - (up to 40). A regime names "
                                    "its form by this code."},
            "name": _text(255, "The form's name (Biểu số 01/...).", required=True),
            "frequency": {"enum": ["", *FREQUENCIES], "description": "The period kind the form is made for; "
                                                                    "empty or absent = any."},
            "title": _text(255, "The title printed above the table."),
            "rows": {"type": "array", "maxItems": MAX_ROWS, "items": {"$ref": "#/$defs/row"}},
            "columns": {"type": "array", "maxItems": MAX_COLUMNS, "items": {"$ref": "#/$defs/column"}},
            "greyed": {"type": "array", "items": {"type": "string", "pattern": CELL_PATTERN},
                       "description": "Cells not used, as row.column (kx0201.ytd)."},
            "rules": {"type": "array", "maxItems": MAX_RULES, "items": {"$ref": "#/$defs/rule"}},
            "outline": {"type": "array", "maxItems": MAX_SECTIONS, "items": {"$ref": "#/$defs/section"}},
        },
        "required": ["code", "name", "rows", "columns"],
        "additionalProperties": False,
        "$defs": {"row": row, "column": column, "rule": rule, "section": section},
    }


SCHEMA = build_schema()

# -- the validator of the subset ------------------------------------------------------------------

# Annotations (ignored when validating) and the assertions this validator implements.
ANNOTATIONS = frozenset({"$schema", "$id", "$comment", "title", "description", "$defs"})
KEYWORDS = frozenset({"type", "properties", "required", "additionalProperties", "items", "enum", "pattern",
                      "minLength", "maxLength", "minimum", "maximum", "maxItems", "$ref"}) | ANNOTATIONS


def unsupported_keywords(schema, path: str = "$") -> list[str]:
    """Keywords of ``schema`` this validator does not implement (a test keeps the list empty)."""
    found = []
    if isinstance(schema, dict):
        for name, value in schema.items():
            if name not in KEYWORDS:
                found.append(f"{path}.{name}")
            if name in ("properties", "$defs"):
                for child, sub in value.items():
                    found += unsupported_keywords(sub, f"{path}.{name}.{child}")
            elif name == "items":
                found += unsupported_keywords(value, f"{path}.items")
            elif name == "additionalProperties" and value is not False:
                found.append(f"{path}.additionalProperties (only false)")
    return found


def _join(path: str, name) -> str:
    if isinstance(name, int):
        return f"{path}[{name}]"
    return name if path == "$" else f"{path}.{name}"


_TYPE_CHECKS = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    # JSON has one number type: 2.0 is an integer to JSON Schema, and True is never a number.
    "integer": lambda v: not isinstance(v, bool) and (isinstance(v, int) or (isinstance(v, float) and v.is_integer())),
    "number": lambda v: not isinstance(v, bool) and isinstance(v, (int, float)),
    "boolean": lambda v: isinstance(v, bool),
}


def _shown(value) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def validate(instance, schema: dict | None = None) -> list[Problem]:
    """Every place where ``instance`` breaks ``schema`` (default: the form file's), in document order."""
    root = schema or SCHEMA
    problems: list[Problem] = []

    def resolve(ref: str) -> dict:
        if not ref.startswith("#/$defs/"):
            raise ValueError(f"only local references to $defs are supported: {ref}")
        return root["$defs"][ref.removeprefix("#/$defs/")]

    def check(value, sub: dict, path: str) -> None:
        if "$ref" in sub:
            sub = resolve(sub["$ref"])
        expected = sub.get("type")
        if expected and not _TYPE_CHECKS[expected](value):
            problems.append(Problem(path, f"plugin_data.schema.type.{expected}"))
            return
        if "enum" in sub and value not in sub["enum"]:
            problems.append(Problem(path, "plugin_data.schema.enum",
                                          (("value", _shown(value)), ("choices", ", ".join(map(_shown, sub["enum"]))))))
            return
        if isinstance(value, str):
            if "minLength" in sub and len(value) < sub["minLength"]:
                problems.append(Problem(path, "plugin_data.schema.empty"))
            if "maxLength" in sub and len(value) > sub["maxLength"]:
                problems.append(Problem(path, "plugin_data.schema.too_long", (("limit", sub["maxLength"]),)))
            if "pattern" in sub and not re.search(sub["pattern"], value):
                key, name = PATTERN_MESSAGES.get(sub["pattern"], ("plugin_data.schema.pattern", "value"))
                problems.append(Problem(path, key, ((name, value if name == "key" else _shown(value)),
                                                          ("pattern", sub["pattern"]))))
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if "minimum" in sub and value < sub["minimum"]:
                problems.append(Problem(path, "plugin_data.schema.minimum", (("limit", sub["minimum"]),)))
            if "maximum" in sub and value > sub["maximum"]:
                problems.append(Problem(path, "plugin_data.schema.maximum", (("limit", sub["maximum"]),)))
        if isinstance(value, list):
            if "maxItems" in sub and len(value) > sub["maxItems"]:
                problems.append(Problem(path, "plugin_data.schema.max_items", (("limit", sub["maxItems"]),)))
            if "items" in sub:
                for index, item in enumerate(value):
                    check(item, sub["items"], _join(path, index))
        if isinstance(value, dict):
            properties = sub.get("properties", {})
            for name in sub.get("required", ()):
                if name not in value:
                    problems.append(Problem(path, "plugin_data.schema.required", (("name", name),)))
            for name, item in value.items():
                if name in properties:
                    check(item, properties[name], _join(path, name))
                elif sub.get("additionalProperties") is False:
                    problems.append(Problem(_join(path, name), "plugin_data.schema.unknown", (("name", name),)))

    check(instance, root, "$")
    return problems


# -- the whole check of a form file -----------------------------------------------------------------

DEFINITION_FIELDS = ("title", "rows", "columns", "greyed", "rules", "outline")


def definition_of(document: dict) -> dict:
    """The form definition in a (valid) form file: the file without its code, name and frequency."""
    return {name: document[name] for name in DEFINITION_FIELDS if name in document}


def json_path(document: dict, where: str, occurrence: int = 0) -> str:
    """The engine's place (``rows.tong.formula``, ``greyed.kx01.ytd``, ``cell tong.cur``, ``form``) as
    a JSON path into the file (``rows[7].formula``); ``occurrence``: which of the items sharing that
    key (a key used twice is named where it repeats)."""
    def index_of(part: str, key: str) -> int | None:
        items = document.get(part) or []
        found = [index for index, item in enumerate(items)
                 if (item if part == "greyed" else item.get("key")) == key]
        return found[min(occurrence, len(found) - 1)] if found else None

    if where in ("form", ""):
        return "$"
    if where.startswith("cell "):
        # A cycle: the formula that makes the cell computed — the column's, else the row's.
        row, _, column = where[5:].partition(".")
        col_index = index_of("columns", column)
        if col_index is not None and document["columns"][col_index].get("kind") == "computed":
            field = "accumulate" if document["columns"][col_index].get("accumulate") else "formula"
            return f"columns[{col_index}].{field}"
        row_index = index_of("rows", row)
        return f"rows[{row_index}].formula" if row_index is not None else "$"
    part, _, rest = where.partition(".")
    if part not in ("rows", "columns", "rules", "outline", "greyed") or not rest:
        return where
    if part == "greyed":
        index = index_of(part, rest)
        return f"greyed[{index}]" if index is not None else "greyed"
    key, _, field = rest.partition(".")
    index = index_of(part, key)
    if index is None:
        return part
    return f"{part}[{index}]" + (f".{field}" if field else "")


def check_form_file(document) -> list[Problem]:
    """Every mistake of a form file as (JSON path, message): its shape first, then — when the shape
    is right — the engine's checks of the definition, as ``install_form`` runs them when publishing
    (indicator codes are checked against the catalogue when the form is installed)."""
    problems = validate(document)
    if problems:
        return problems
    definition = normalise(definition_of(document))
    out, repeats = [], {}
    for p in check_definition(definition, publishing=True):
        occurrence = 0
        if p.key == "forms.error.key_taken":
            occurrence = repeats[p.where] = repeats.get(p.where, 0) + 1
        out.append(Problem(json_path(document, p.where, occurrence), p.key, p.params))
    return out


if __name__ == "__main__":  # python -m core.regimes.form_schema > docs/form.schema.json
    print(json.dumps(SCHEMA, ensure_ascii=False, indent=2))
