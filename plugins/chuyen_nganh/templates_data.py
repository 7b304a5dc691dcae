"""The sector regime templates the plugin ships as data (issue 15, item 6; docs/sector_templates.md):
``data/templates/<key>.toml`` (the regime, its indicator groups and indicators) and the data form
it names (``data/templates/<key>.form.json``, a form file as docs/forms.md describes it).

Nothing here touches the database: a template is only read and checked. It becomes a department's
indicators, form and draft regime when a delegated administrator adopts it (adopt.py).

Codes are RELATIVE to the sector's letters: a group "01", an indicator "0101", and the form's rows
name "0101"; adopted by a sector whose letters are NN they become NN01 and NN0101. They are the
plugin's own local codes, never an official one; ``higher_code`` names a QĐ 05/2023 code only where
a real one is known.
"""

from __future__ import annotations

import copy
import functools
import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from core.api import INDICATOR_AGGREGATIONS, INDICATOR_LEVELS, INDICATOR_VALUE_TYPES

FOLDER = Path(__file__).resolve().parent / "data" / "templates"
KEY = re.compile(r"[a-z][a-z0-9_]{1,23}\Z")
GROUP_CODE = re.compile(r"\d{2}\Z")
INDICATOR_CODE = re.compile(r"\d{4}\Z")
FORM_CODE = re.compile(r"[A-Z0-9][A-Z0-9._-]{0,19}\Z")  # room left for the letters and the department
NATIONAL_CODE = re.compile(r"([THX]\d{4}|\d{4})\Z")  # a QĐ 05/2023 row, or a national 4-digit code
# The kinds of unit a template may ask to report: communes, and the sector's own units outside the
# administrative tree (schools are "organisation" units, core/models.py UNIT_KINDS), or agencies.
REPORTING_KINDS = ("commune", "agency", "organisation")
TOP_KEYS = {"key", "sector", "title", "department", "sources", "illustrative", "reporting_kind", "form", "regime",
            "groups", "indicators"}
REGIME_KEYS = {"type", "name", "content", "content_type", "sending_methods", "frequency", "cutoff_rule", "outline",
               "data_forms", "guidance", "deadline_rules"}
GROUP_KEYS = {"code", "name", "level"}
INDICATOR_KEYS = {"code", "name", "unit_of_measure", "value_type", "aggregation", "disaggregation", "periodicity",
                  "agency", "higher_code"}


class TemplateError(Exception):
    """The plugin's template files hold mistakes: ``problems`` lists each as "file: place: what"."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Template:
    key: str
    sector: str  # the delegations' sector code it is for ("nn")
    title: str
    department: str  # the kind of department it is meant for, in words
    sources: tuple[str, ...]  # the acts and forms it is modelled on
    illustrative: bool  # "minh họa": the official table was not in hand
    reporting_kind: str
    regime: dict
    groups: tuple[dict, ...]
    indicators: tuple[dict, ...]
    form: dict  # the form file: code, name, frequency and the definition's fields

    def codes(self, letters: str) -> dict[str, str]:
        """Relative code → the sector's code."""
        return {item["code"]: letters + item["code"] for item in (*self.groups, *self.indicators)}

    def form_definition(self, letters: str) -> dict:
        """The form's definition with every indicator row naming the sector's code."""
        definition = {k: copy.deepcopy(v) for k, v in self.form.items() if k not in ("code", "name", "frequency")}
        for row in definition.get("rows", []):
            if row.get("kind") == "indicator":
                row["indicator"] = letters + row["indicator"]
        return definition


def _check(path: Path, doc: dict, form: dict | None) -> list[str]:
    name = f"data/templates/{path.name}"
    out = []

    def problem(where: str, what: str) -> None:
        out.append(f"{name}: {where}: {what}")

    for key in sorted(set(doc) - TOP_KEYS):
        problem(key, "unknown key")
    for key in ("key", "sector", "title", "reporting_kind", "form", "regime"):
        if key not in doc:
            problem(key, "required")
    if out:
        return out
    if not KEY.match(str(doc["key"])) or path.name != f"{doc['key']}.toml":
        problem("key", "lower-case letters, digits and _, and the file's name")
    if doc["reporting_kind"] not in REPORTING_KINDS:
        problem("reporting_kind", f"one of {', '.join(REPORTING_KINDS)}")
    for key in sorted(set(doc["regime"]) - REGIME_KEYS):
        problem(f"regime.{key}", "unknown key")
    if not doc["regime"].get("name"):
        problem("regime.name", "required")
    def entry(where: str, item: dict, allowed: set, shape: re.Pattern, seen, shape_words: str) -> str | None:
        """The item's code when it has the right keys' shape and is not seen before (else None)."""
        for key in sorted(set(item) - allowed):
            problem(f"{where}.{key}", "unknown key")
        if not item.get("name"):
            problem(f"{where}.name", "required")
        code = str(item.get("code", ""))
        if not shape.match(code):
            problem(f"{where}.code", f"{shape_words} (a code relative to the sector's letters)")
        elif code in seen:
            problem(f"{where}.code", f"{code} twice")
        else:
            return code
        return None

    groups = {}
    for i, group in enumerate(doc.get("groups", [])):
        code = entry(f"groups[{i}]", group, GROUP_KEYS, GROUP_CODE, groups, "two digits")
        if group.get("level") not in INDICATOR_LEVELS:
            problem(f"groups[{i}].level", f"one of {', '.join(INDICATOR_LEVELS)}")
        if code:
            groups[code] = group
    indicators = set()
    for i, item in enumerate(doc.get("indicators", [])):
        code = entry(f"indicators[{i}]", item, INDICATOR_KEYS, INDICATOR_CODE, indicators, "four digits")
        if code and code[:2] not in groups:
            problem(f"indicators[{i}].code", f"no group {code[:2]} in the template")
        indicators.add(code)
        if item.get("value_type", "number") not in INDICATOR_VALUE_TYPES:
            problem(f"indicators[{i}].value_type", f"one of {', '.join(INDICATOR_VALUE_TYPES)}")
        if item.get("aggregation", "sum") not in INDICATOR_AGGREGATIONS:
            problem(f"indicators[{i}].aggregation", f"one of {', '.join(INDICATOR_AGGREGATIONS)}")
        if item.get("higher_code") and not NATIONAL_CODE.match(item["higher_code"]):
            problem(f"indicators[{i}].higher_code", "a QĐ 05/2023 code (T0101) or a national 4-digit code")
    if form is None:
        problem("form", f"no file {doc['form']}")
        return out
    if not FORM_CODE.match(str(form.get("code", ""))):
        problem("form", "the form's code: capital letters, digits, . _ -, up to 20")
    if form.get("frequency") and form["frequency"] != doc["regime"].get("frequency"):
        problem("form", "the form's frequency is not the regime's")
    for i, row in enumerate(form.get("rows", [])):
        if row.get("kind") == "indicator" and row.get("indicator") not in indicators:
            problem(f"{doc['form']}: rows[{i}].indicator", f"{row.get('indicator')!r} is not an indicator of the template")
    return out


def _read(path: Path) -> tuple[dict | None, dict | None, list[str]]:
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        return None, None, [f"data/templates/{path.name}: $: {exc}"]
    form_path = FOLDER / str(doc.get("form", ""))
    form = None
    if doc.get("form") and form_path.is_file() and form_path.parent == FOLDER:
        try:
            form = json.loads(form_path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            return doc, None, [f"data/templates/{form_path.name}: $: {exc}"]
    return doc, form, _check(path, doc, form)


@functools.cache
def templates() -> dict[str, Template]:
    """Every template, by key, in file-name order; ``TemplateError`` naming every mistake."""
    found, problems = {}, []
    for path in sorted(FOLDER.glob("*.toml")):
        doc, form, mistakes = _read(path)
        problems += mistakes
        if mistakes:
            continue
        found[doc["key"]] = Template(
            key=doc["key"], sector=doc["sector"], title=doc["title"], department=doc.get("department", ""),
            sources=tuple(doc.get("sources", ())), illustrative=bool(doc.get("illustrative", True)),
            reporting_kind=doc["reporting_kind"], regime=doc["regime"], groups=tuple(doc.get("groups", ())),
            indicators=tuple(doc.get("indicators", ())), form=form)
    if problems:
        raise TemplateError(problems)
    return found


def for_sector(sector: str) -> list[Template]:
    return [t for t in templates().values() if t.sector == sector]
