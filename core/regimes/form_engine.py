"""The form engine: a form definition checked, compiled once, and run over a grid of cells.

A definition is one JSON document — rows, columns, greyed cells, rules, outline — see
``core.regimes.forms`` for what each part means to a designer. ``compile_form`` parses every formula
and rule once (``core.regimes.expressions``, never Python's eval), checks references and orders the
computed cells (a cycle is a design error pointing at a cell of it); the result is cached by the
definition's text, which a published version never changes. ``CompiledForm.compute`` fills a
period's grid from inputs, pre-filled figures and the year so far; ``CompiledForm.validate`` runs
the rules and anchors each failure at the cell it is about.

Names in formulas: a row key alone means that row in the current column; a column key alone
means that column in the current row; ``row.col`` is one cell. Row and column keys therefore share
one namespace. A computed column's formula wins over a computed row's in the cell where both meet
(a ratio column on a total row is the ratio of the totals).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from functools import cached_property, lru_cache

from core.regimes import expressions
from core.errors import BaocaoError
from core.catalogue.indicators import VALUE_KINDS, Indicator
from core.numbers import MAX_DECIMALS, parse
from core.numbers import NumberError as CellInputError  # one error for every number typed
from core.regimes.periods import periods_per_year

ROW_KINDS = ("indicator", "heading", "computed")
COLUMN_KINDS = ("input", "prefill", "computed")
CELL_KINDS = ("input", "prefill", "computed", "greyed")
PERIOD_OFFSETS = ("current", "previous", "same_last_year", "year_to_date", "year_to_date_last_year",
                  "year", "next_year")
SEVERITIES = ("blocker", "error", "warning", "info")
KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,30}$")
MAX_ROWS, MAX_COLUMNS, MAX_RULES, MAX_SECTIONS = 400, 40, 200, 40

# -- the definition ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Problem:
    """A design error: ``where`` names the place (``rows.r3.formula``, ``cell r3.c5``, ``rules.R1``)."""

    where: str
    key: str
    params: tuple = ()

    def message(self, lang: str = "vi") -> str:
        from core.i18n import core_catalog

        params = dict(self.params)
        for name, value in list(params.items()):
            if isinstance(value, BaocaoError):
                params[name] = value.message(lang)
        return core_catalog().gettext(lang, self.key, **params)


class FormDesignError(BaocaoError):
    """A definition that cannot be saved; ``problems`` lists every place."""

    key = "forms.error.design"

    def __init__(self, problems: list[Problem]):
        super().__init__(count=len(problems))
        self.problems = problems


def empty_definition() -> dict:
    return {"title": "", "rows": [], "columns": [], "greyed": [], "rules": [], "outline": []}


def clean_text(value, limit: int = 500) -> str:
    return str(value or "").strip()[:limit]


def _int_list(values) -> list[int]:
    out = []
    for v in values or []:
        try:
            out.append(int(v))
        except (TypeError, ValueError):
            continue
    return sorted(set(out))


def normalise(raw: dict) -> dict:
    """The definition with every field present and typed; unknown fields dropped."""
    d = empty_definition()
    d["title"] = clean_text(raw.get("title"), 255)
    for r in raw.get("rows") or []:
        d["rows"].append({
            "key": clean_text(r.get("key"), 40), "kind": clean_text(r.get("kind")) or "indicator",
            "number": clean_text(r.get("number"), 20), "label": clean_text(r.get("label"), 500),
            "indicator": clean_text(r.get("indicator"), 10), "option": clean_text(r.get("option"), 100),
            "unit": clean_text(r.get("unit"), 40), "formula": clean_text(r.get("formula"), 2000),
            "decimals": _decimals(r.get("decimals")), "indent": max(0, min(4, _small_int(r.get("indent")))),
        })
    for c in raw.get("columns") or []:
        d["columns"].append({
            "key": clean_text(c.get("key"), 40), "kind": clean_text(c.get("kind")) or "input",
            "label": clean_text(c.get("label"), 255), "value_kind": clean_text(c.get("value_kind")) or "actual",
            "period": clean_text(c.get("period")) or "current", "formula": clean_text(c.get("formula"), 2000),
            "accumulate": clean_text(c.get("accumulate"), 40), "periods": _int_list(c.get("periods")),
            "decimals": _decimals(c.get("decimals")), "percent": bool(c.get("percent")),
        })
    d["greyed"] = sorted({clean_text(g, 90) for g in raw.get("greyed") or [] if clean_text(g, 90)})
    for rule in raw.get("rules") or []:
        message = rule.get("message") or {}
        d["rules"].append({
            "key": clean_text(rule.get("key"), 40), "severity": clean_text(rule.get("severity")) or "error",
            "expression": clean_text(rule.get("expression"), 2000),
            "rows": [clean_text(x, 40) for x in rule.get("rows") or [] if clean_text(x, 40)],
            "columns": [clean_text(x, 40) for x in rule.get("columns") or [] if clean_text(x, 40)],
            "message": {"vi": clean_text(message.get("vi"), 500), "en": clean_text(message.get("en"), 500)},
        })
    for s in raw.get("outline") or []:
        d["outline"].append({"key": clean_text(s.get("key"), 40), "title": clean_text(s.get("title"), 255),
                             "guidance": clean_text(s.get("guidance"), 4000), "required": bool(s.get("required"))})
    return d


def _small_int(value) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _decimals(value) -> int | None:
    if value in (None, ""):
        return None
    return max(0, min(MAX_DECIMALS, _small_int(value)))


def _parse(text: str, where: str, problems: list[Problem], want: str):
    try:
        node = expressions.parse(text)
        kind = expressions.infer(node)
    except expressions.ExpressionError as exc:
        problems.append(Problem(where, "forms.error.expression", (("error", exc),)))
        return None
    if kind != want:
        problems.append(Problem(where, "forms.error.rule_not_bool" if want == "bool" else "forms.error.formula_not_number"))
        return None
    return node


def check_definition(definition: dict, *, indicators: dict[str, Indicator] | None = None,
                     publishing: bool = False) -> list[Problem]:
    """Every design error of a (normalised) definition, each pointing at its place; [] when sound.
    ``indicators``: code → current catalogue entry, to check indicator rows and their options
    (None: not checked, as when compiling a frozen version whose indicators may have changed since)."""
    problems = _compile(definition, indicators=indicators)[1]
    if publishing:
        # A draft may be empty while it is designed; a published form has rows and columns.
        if not definition["rows"]:
            problems.append(Problem("rows", "forms.error.no_rows"))
        if not definition["columns"]:
            problems.append(Problem("columns", "forms.error.no_columns"))
    return problems


# -- compiling --------------------------------------------------------------------------------

@dataclass
class Column:
    key: str
    kind: str
    label: str
    value_kind: str
    period: str
    periods: tuple[int, ...]
    decimals: int | None
    percent: bool
    formula: object = None
    accumulate: str = ""

    def shown_in(self, index: int) -> bool:
        return not self.periods or index in self.periods


@dataclass
class Row:
    key: str
    kind: str
    number: str
    label: str
    indicator: str
    option: str
    unit: str
    decimals: int | None
    indent: int
    formula: object = None


@dataclass
class Rule:
    key: str
    severity: str
    text: str
    node: object
    rows: tuple[str, ...]
    columns: tuple[str, ...]
    message: dict
    row_names: tuple[str, ...] = ()
    column_names: tuple[str, ...] = ()
    run: object = None
    refs: tuple = ()  # its references in reading order, found once (messages anchor at the first)


@dataclass(frozen=True)
class Message:
    """One rule (or input) failing at one cell."""

    severity: str
    rule: str
    row: str | None
    column: str | None
    text: dict  # lang -> message

    @property
    def cell(self) -> str | None:
        return f"{self.row}.{self.column}" if self.row and self.column else None


@dataclass
class CompiledForm:
    definition: dict
    title: str
    rows: list[Row]
    columns: list[Column]
    greyed: frozenset[str]
    rules: list[Rule]
    outline: list[dict]
    order: list[tuple[str, str]] = field(default_factory=list)  # computed cells, dependencies first
    programs: dict = field(default_factory=dict)  # (row, col) -> (evaluator, resolver kind)

    # Built once: a compiled form is cached and never changed, and every check and every
    # autosave looks rows and columns up by key.
    @cached_property
    def row_index(self) -> dict[str, Row]:
        return {r.key: r for r in self.rows}

    @cached_property
    def column_index(self) -> dict[str, Column]:
        return {c.key: c for c in self.columns}

    def visible_columns(self, index: int) -> list[Column]:
        return [c for c in self.columns if c.shown_in(index)]

    def cell_kind(self, row: Row, column: Column) -> str:
        if row.kind == "heading" or f"{row.key}.{column.key}" in self.greyed:
            return "greyed"
        if column.kind == "computed" or row.kind == "computed":
            return "computed"
        if column.kind == "prefill":
            return "prefill"
        return "input"

    def input_cells(self, index: int | None = None) -> list[tuple[str, str]]:
        cols = self.columns if index is None else self.visible_columns(index)
        return [(r.key, c.key) for r in self.rows for c in cols if self.cell_kind(r, c) == "input"]

    def compute(self, index: int, inputs: dict, prefill: dict | None = None,
                prior: dict | None = None) -> dict[tuple[str, str], Decimal | None]:
        """Every shown cell's value for period ``index``: inputs and pre-filled values as given,
        computed cells evaluated in dependency order (``prior``: the year so far before this
        period, per cell of an ``accumulate`` column)."""
        prefill, prior = prefill or {}, prior or {}
        shown = {c.key for c in self.visible_columns(index)}
        values: dict[tuple[str, str], Decimal | None] = {}
        for r in self.rows:
            for c in self.columns:
                if c.key not in shown:
                    continue
                kind = self.cell_kind(r, c)
                if kind == "input":
                    values[(r.key, c.key)] = inputs.get((r.key, c.key))
                elif kind == "prefill":
                    values[(r.key, c.key)] = prefill.get((r.key, c.key))
        get = values.get
        for cell in self.order:
            if cell[1] not in shown:
                continue
            program, context = self.programs[cell]
            if context == "accumulate":
                current = get((cell[0], program))
                before = prior.get(cell)
                # Decimal zero, not int 0: Decimal("0") is falsy, and a year to date of zeros is 0.
                values[cell] = (None if current is None and before is None
                                else (before or Decimal(0)) + (current or Decimal(0)))
                continue
            value = program(_resolver(self, cell, context, get))
            values[cell] = value if isinstance(value, Decimal) else None
        return values

    def validate(self, index: int, values: dict) -> list[Message]:
        """Every failing rule at every cell it is anchored to, in rule order."""
        shown = [c for c in self.visible_columns(index)]
        shown_keys = {c.key for c in shown}
        data_rows = [r for r in self.rows if r.kind != "heading"]
        get = values.get
        messages = []
        for rule in self.rules:
            rows = [self.row_index[k] for k in rule.rows] if rule.rows else data_rows
            cols = [self.column_index[k] for k in rule.columns if k in shown_keys] if rule.columns else shown
            row_ctx = rows if rule.column_names else [None]
            col_ctx = cols if rule.row_names else [None]
            for r in row_ctx:
                for c in col_ctx:
                    anchor = _anchor(rule, r, c)
                    if anchor and anchor[1] not in shown_keys:
                        continue
                    if anchor and self.cell_kind(self.row_index[anchor[0]], self.column_index[anchor[1]]) == "greyed":
                        continue
                    try:
                        result = rule.run(_rule_resolver(self, r, c, get))
                    except expressions.ExpressionError:
                        result = None  # an overflow leaves the rule unevaluated, like an empty cell
                    if result is False:
                        messages.append(Message(rule.severity, rule.key, anchor[0] if anchor else None,
                                                anchor[1] if anchor else None, self._ruleclean_text(rule, r, c)))
        return messages

    def _ruleclean_text(self, rule: Rule, row: Row | None, column: Column | None) -> dict:
        from core.i18n import core_catalog

        out = {}
        for lang in ("vi", "en"):
            template = rule.message.get(lang) or rule.message.get("vi")
            params = {"row": (row.label or row.indicator or row.key) if row else "",
                      "column": column.label if column else "",
                      "rule": rule.key, "expression": rule.text}
            if template:
                try:
                    out[lang] = template.format(**params)
                except (KeyError, IndexError, ValueError):
                    out[lang] = template
            else:
                out[lang] = core_catalog().gettext(lang, "forms.rule.default", **params)
        return out


def _anchor(rule: Rule, row: Row | None, column: Column | None) -> tuple[str, str] | None:
    """The cell a rule's message points at: its first reference in this context."""
    for ref in rule.refs:
        if ref.column:
            return ref.name, ref.column
        if row is not None and ref.name in rule.column_names:
            return row.key, ref.name
        if column is not None and ref.name in rule.row_names:
            return ref.name, column.key
    return None


def _resolver(form: CompiledForm, cell, context: str, get):
    row, col = cell
    rows = form._row_keys

    def resolve(ref):
        if ref.column:
            return get((ref.name, ref.column))
        if ref.name in rows:
            return get((ref.name, col))
        return get((row, ref.name))
    return resolve


def _rule_resolver(form: CompiledForm, row: Row | None, column: Column | None, get):
    rows = form._row_keys

    def resolve(ref):
        if ref.column:
            return get((ref.name, ref.column))
        if ref.name in rows:
            return get((ref.name, column.key)) if column is not None else None
        return get((row.key, ref.name)) if row is not None else None
    return resolve


def compile_form(definition: str | dict) -> CompiledForm:
    """The compiled form of a definition (JSON text or dict); raises FormDesignError."""
    text = definition if isinstance(definition, str) else json.dumps(definition, sort_keys=True, ensure_ascii=False)
    return _compile_cached(text)


@lru_cache(maxsize=256)
def _compile_cached(text: str) -> CompiledForm:
    # Published versions never change and drafts change as a whole: the text is the cache key.
    compiled, problems = _compile(normalise(json.loads(text)), indicators=None)
    if problems:
        raise FormDesignError(problems)
    return compiled


def _compile(d: dict, *, indicators=None) -> tuple[CompiledForm, list[Problem]]:
    problems: list[Problem] = []
    rows, columns, rules = [], [], []
    seen: dict[str, str] = {}
    reserved = expressions.RESERVED

    def check_key(key: str, where: str) -> bool:
        if not KEY_RE.match(key or "") or key.lower() in reserved:
            problems.append(Problem(where, "forms.error.key", (("key", key),)))
            return False
        if key in seen:
            problems.append(Problem(where, "forms.error.key_taken", (("key", key),)))
            return False
        seen[key] = where
        return True

    if len(d["rows"]) > MAX_ROWS or len(d["columns"]) > MAX_COLUMNS:
        problems.append(Problem("form", "forms.error.too_big", (("rows", MAX_ROWS), ("columns", MAX_COLUMNS))))
    if len(d["rules"]) > MAX_RULES or len(d["outline"]) > MAX_SECTIONS:
        problems.append(Problem("form", "forms.error.too_many", (("rules", MAX_RULES), ("sections", MAX_SECTIONS))))
    check_catalogue = indicators is not None
    for r in d["rows"]:
        where = f"rows.{r['key'] or '?'}"
        check_key(r["key"], where)
        if r["kind"] not in ROW_KINDS:
            problems.append(Problem(where, "forms.error.row_kind", (("kind", r["kind"]),)))
        if not r["label"] and not (r["kind"] == "indicator" and r["indicator"]):
            problems.append(Problem(where, "forms.error.row_label"))
        if r["kind"] == "indicator":
            if not r["indicator"]:
                problems.append(Problem(where, "forms.error.indicator_missing"))
            elif check_catalogue and r["indicator"] not in indicators:
                problems.append(Problem(where, "forms.error.indicator_unknown", (("code", r["indicator"]),)))
            elif check_catalogue and r["option"]:
                options = {o for _, opts in indicators[r["indicator"]].disaggregation_list for o in opts}
                if r["option"] not in options:
                    problems.append(Problem(where, "forms.error.option_unknown",
                                            (("code", r["indicator"]), ("option", r["option"]))))
        rows.append(Row(r["key"], r["kind"], r["number"], r["label"], r["indicator"], r["option"], r["unit"],
                        r["decimals"], r["indent"]))
    for c in d["columns"]:
        where = f"columns.{c['key'] or '?'}"
        check_key(c["key"], where)
        if c["kind"] not in COLUMN_KINDS:
            problems.append(Problem(where, "forms.error.column_kind", (("kind", c["kind"]),)))
        if c["value_kind"] not in VALUE_KINDS:
            problems.append(Problem(where, "forms.error.value_kind", (("kind", c["value_kind"]),)))
        if c["period"] not in PERIOD_OFFSETS:
            problems.append(Problem(where, "forms.error.period", (("period", c["period"]),)))
        if not c["label"]:
            problems.append(Problem(where, "forms.error.column_label"))
        columns.append(Column(c["key"], c["kind"], c["label"], c["value_kind"], c["period"], tuple(c["periods"]),
                              c["decimals"], c["percent"], accumulate=c["accumulate"]))
    row_keys = {r.key for r in rows}
    col_keys = {c.key for c in columns}

    def refs_ok(node, where: str, allowed_bare: set[str]) -> bool:
        ok = True
        for ref in expressions.references(node):
            if ref.column:
                if ref.name not in row_keys or ref.column not in col_keys:
                    problems.append(Problem(where, "forms.error.unknown_cell", (("cell", f"{ref.name}.{ref.column}"),)))
                    ok = False
            elif ref.name not in allowed_bare:
                problems.append(Problem(where, "forms.error.unknown_name", (("name", ref.name),)))
                ok = False
        return ok

    raw_rows = {r["key"]: r for r in d["rows"]}
    for row in rows:
        formula = raw_rows[row.key]["formula"]
        if row.kind == "computed":
            where = f"rows.{row.key}.formula"
            if not formula:
                problems.append(Problem(where, "forms.error.formula_missing"))
                continue
            node = _parse(formula, where, problems, "number")
            if node is not None and refs_ok(node, where, row_keys):
                row.formula = node
    raw_cols = {c["key"]: c for c in d["columns"]}
    for col in columns:
        raw = raw_cols[col.key]
        where = f"columns.{col.key}"
        if col.kind == "computed":
            if col.accumulate:
                if col.accumulate not in col_keys or raw_cols[col.accumulate]["kind"] == "computed" \
                        and not raw_cols[col.accumulate]["formula"]:
                    problems.append(Problem(where + ".accumulate", "forms.error.unknown_name", (("name", col.accumulate),)))
                continue
            if not raw["formula"]:
                problems.append(Problem(where + ".formula", "forms.error.formula_missing"))
                continue
            node = _parse(raw["formula"], where + ".formula", problems, "number")
            if node is not None and refs_ok(node, where + ".formula", col_keys):
                col.formula = node
    greyed = set()
    for cell in d["greyed"]:
        r, _, c = cell.partition(".")
        if r not in row_keys or c not in col_keys:
            problems.append(Problem(f"greyed.{cell}", "forms.error.unknown_cell", (("cell", cell),)))
        else:
            greyed.add(cell)
    for rule in d["rules"]:
        where = f"rules.{rule['key'] or '?'}"
        if not KEY_RE.match(rule["key"] or ""):
            problems.append(Problem(where, "forms.error.key", (("key", rule["key"]),)))
        if rule["severity"] not in SEVERITIES:
            problems.append(Problem(where, "forms.error.severity", (("severity", rule["severity"]),)))
        for k in rule["rows"]:
            if k not in row_keys:
                problems.append(Problem(where, "forms.error.unknown_name", (("name", k),)))
        for k in rule["columns"]:
            if k not in col_keys:
                problems.append(Problem(where, "forms.error.unknown_name", (("name", k),)))
        if not rule["expression"]:
            problems.append(Problem(where, "forms.error.formula_missing"))
            continue
        node = _parse(rule["expression"], where, problems, "bool")
        if node is None or not refs_ok(node, where, row_keys | col_keys):
            continue
        refs = expressions.references(node)
        rules.append(Rule(rule["key"], rule["severity"], rule["expression"], node, tuple(rule["rows"]),
                          tuple(rule["columns"]), rule["message"],
                          row_names=tuple(x.name for x in refs if not x.column and x.name in row_keys),
                          column_names=tuple(x.name for x in refs if not x.column and x.name in col_keys),
                          run=expressions.compile(node), refs=tuple(refs)))
    section_keys = set()
    for s in d["outline"]:
        where = f"outline.{s['key'] or '?'}"
        if not KEY_RE.match(s["key"] or "") or s["key"] in section_keys:
            problems.append(Problem(where, "forms.error.key", (("key", s["key"]),)))
        section_keys.add(s["key"])
        if not s["title"]:
            problems.append(Problem(where, "forms.error.section_title"))
    form = CompiledForm(d, d["title"], rows, columns, frozenset(greyed), rules, d["outline"])
    form._row_keys = row_keys
    _order(form, problems)  # formulas that did not parse are left out; a cycle among the rest still shows
    return form, problems


def _order(form: CompiledForm, problems: list[Problem]) -> None:
    """Topological order of the computed cells; a cycle is reported at one of its cells."""
    deps: dict[tuple[str, str], list[tuple[str, str]]] = {}
    row_keys = form._row_keys
    for r in form.rows:
        for c in form.columns:
            kind = form.cell_kind(r, c)
            if kind != "computed":
                continue
            cell = (r.key, c.key)
            if c.kind == "computed" and c.accumulate and not (r.kind == "computed" and r.formula is not None):
                # (On a computed row the row's formula adds up the rows' year-to-date figures instead.)
                form.programs[cell] = (c.accumulate, "accumulate")
                deps[cell] = [(r.key, c.accumulate)]
                continue
            node = c.formula if c.kind == "computed" and not c.accumulate else r.formula
            if node is None:
                continue
            edges = []
            for ref in expressions.references(node):
                if ref.column:
                    edges.append((ref.name, ref.column))
                elif ref.name in row_keys:
                    edges.append((ref.name, c.key))
                else:
                    edges.append((r.key, ref.name))
            deps[cell] = edges
            form.programs[cell] = (expressions.compile(node), "formula")
    state: dict = {}
    order: list = []
    for start in deps:
        if start in state:
            continue
        stack = [(start, iter(deps[start]))]
        state[start] = 1
        path = [start]
        while stack:
            cell, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                stack.pop()
                path.pop()
                state[cell] = 2
                order.append(cell)
                continue
            if nxt not in deps or state.get(nxt) == 2:
                continue
            if state.get(nxt) == 1:
                cycle = path[path.index(nxt):] + [nxt]
                problems.append(Problem(f"cell {cell[0]}.{cell[1]}", "forms.error.cycle",
                                        (("cycle", " → ".join(f"{a}.{b}" for a, b in cycle)),)))
                return
            state[nxt] = 1
            path.append(nxt)
            stack.append((nxt, iter(deps[nxt])))
    form.order = order


# -- numbers as people type them --------------------------------------------------------------

def parse_number(text, lang: str = "vi") -> Decimal | None:
    """A number as a person typed it in ``lang`` (``core.numbers.parse``); "" → None."""
    return parse(text, lang)


@lru_cache(maxsize=16384, typed=True)  # every autosave compares a few hundred cells by this text
def canonical(number: Decimal | None) -> str:
    """Stable text of a stored number (no exponent, no trailing zeros): what the locks compare."""
    if number is None:
        return ""
    text = format(number.normalize(), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def rounded(number: Decimal | None, decimals: int | None) -> Decimal | None:
    if number is None or decimals is None:
        return number
    return number.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)


# -- period labels ----------------------------------------------------------------------------

def column_label(column: Column, frequency: str, year: int, index: int) -> str:
    """A column's label for one period: {m} the period index, {m-1}, {y}, {y-1}, {y+1}."""
    count = periods_per_year(frequency)
    prev_index, prev_year = (index - 1, year) if index > 1 else (count, year - 1)
    values = {"{m}": str(index), "{m-1}": str(prev_index), "{y}": str(year), "{y-1}": str(year - 1),
              "{y+1}": str(year + 1), "{py}": str(prev_year)}
    text = column.label
    for placeholder, value in values.items():
        text = text.replace(placeholder, value)
    return text


def sample_inputs(form: CompiledForm, index: int) -> dict:
    """Deterministic sample numbers for the designer's preview (labelled as samples on screen)."""
    values = {}
    for n, (r, c) in enumerate(form.input_cells(index)):
        values[(r, c)] = Decimal(100 + (n * 37) % 900)
    return values


def sample_prefill(form: CompiledForm, index: int) -> dict:
    values = {}
    for n, r in enumerate(form.rows):
        for m, c in enumerate(form.visible_columns(index)):
            if form.cell_kind(r, c) == "prefill":
                # Different in every column, so the sample ratios are not all 100 %.
                values[(r.key, c.key)] = Decimal(90 + (n * 53 + m * 29) % 800)
    return values
