"""The figures explorer (issue 14 item 6): the figures store seen as a pivot table.

A question (``Choice``) names indicators, a unit with none, one or every level of its
subordinates, a range of periods of one frequency, value kinds (plan, estimate, actual,
official), totals only or every disaggregation option, and the date the unit tree is taken at.
The answer (``explore``) reads the figures through the public query only
(``core.catalogue.figures.query``, bounded by its ``MAX_FIGURES``) and lays them out on the four
dimensions indicator (with its option), unit, period and value kind, each put in the rows or the
columns by the person.

Units as at a date. The tree is the one in force on the chosen day (``core.units.tree``): before
the 2025 merges the former communes appear as they were; after them a figure stored under a
former unit is shown under the unit it became on that day (``successors``, following the change
links forward), combined by the indicator's aggregation rule when several merged into one, and a
note names the units counted. A combined figure is never invented: an indicator whose rule cannot
combine several values (a ratio, "last", text) leaves the cell empty with a note; a unit split
among several successors cannot be divided, so its figures are left out with a note; a figure
stored under the successor itself for a period before it existed (restated for the new unit) is
taken as it is, without adding its predecessors again.

Who sees what: a unit is shown when the person holds ``core.unit.view`` at its chain of today's
parents; a former unit also when the unit it leads to today is visible
(``core.units.history.visible_ids``' rule), so a province's people see its former communes.
"""

from __future__ import annotations

import datetime as dt
import io
import itertools
import re
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from core import clock
from core.catalogue import figures as store
from core.catalogue import indicators as ind
from core.export_safety import text_cell
from core.i18n import fold, format_date, format_datetime, format_number
from core.models import Unit
from core.regimes import periods
from core.units.history import Lineages
from core.units.tree import flatten, is_valid, tree

VIEW_UNITS = "core.unit.view"
DIMENSIONS = ("indicator", "unit", "period", "kind")
DIMENSION_LABELS = {d: f"explorer.dim.{d}" for d in DIMENSIONS}
SCOPES = ("unit", "children", "subtree")  # the unit alone, with its direct subordinates, with all of them
SCOPE_LABELS = {s: f"explorer.scope.{s}" for s in SCOPES}
OPTION_CHOICES = ("total", "all")
OPTION_LABELS = {o: f"explorer.options.{o}" for o in OPTION_CHOICES}
LEVELS = 4  # an axis nests at most the four dimensions
POSITIONS = tuple(f"{axis}{n}" for axis in "rc" for n in range(1, LEVELS + 1))
DEFAULT_POSITIONS = {"indicator": "r1", "unit": "r2", "period": "c1", "kind": "c2"}
# Periods shown when none is chosen: about a year back from the current one.
DEFAULT_SPAN = {periods.MONTHLY: 12, periods.QUARTERLY: 4, periods.HALF_YEAR: 2, periods.NINE_MONTHS: 3,
                periods.ANNUAL: 5}
MAX_CODES = 200  # indicators in one question
SEARCH_SHOWN = 100  # catalogue matches listed under the search box
SCREEN_CELLS = 20_000  # a larger table is offered as an Excel file only
QUERY_MAX = 100  # characters of the search text
_PERIOD_KEY = re.compile(r"^(\d{4})-(\d{1,2})$")
_DATE_VN = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")
XLSX_MEDIA = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _getlist(params, name: str) -> list[str]:
    if hasattr(params, "getlist"):
        values = params.getlist(name)
    else:
        value = params.get(name, [])
        values = value if isinstance(value, (list, tuple)) else [value]
    return [str(v) for v in values]


def _get(params, name: str, limit: int) -> str:
    values = _getlist(params, name)
    return " ".join((values[-1] if values else "").split())[:limit]


def _parse_date(text: str) -> dt.date | None:
    """ISO (what a date field sends) or dd/mm/yyyy (what people type)."""
    try:
        if _DATE_VN.match(text):
            day, month, year = (int(p) for p in _DATE_VN.match(text).groups())
            value = dt.date(year, month, day)
        else:
            value = dt.date.fromisoformat(text)
    except ValueError:
        return None
    return value if periods.MIN_YEAR <= value.year <= periods.MAX_YEAR else None


def current_period(frequency: str, day: dt.date) -> tuple[int, int]:
    """(year, index) of the latest window of ``frequency`` that has started on ``day``."""
    year = min(max(day.year + 1, periods.MIN_YEAR), periods.MAX_YEAR)
    while year >= periods.MIN_YEAR:
        for window in reversed(periods.windows(frequency, year)):
            if window.start <= day:
                return year, window.index
        year -= 1
    return periods.MIN_YEAR, 1


def shift(frequency: str, period: tuple[int, int], steps: int) -> tuple[int, int]:
    """The period ``steps`` periods after (negative: before) ``period``, kept within the years known."""
    count = periods.periods_per_year(frequency)
    ordinal = period[0] * count + period[1] - 1 + steps
    ordinal = min(max(ordinal, periods.MIN_YEAR * count), periods.MAX_YEAR * count + count - 1)
    return ordinal // count, ordinal % count + 1


def _period(text: str, frequency: str) -> tuple[int, int] | None:
    match = _PERIOD_KEY.match(text)
    if not match:
        return None
    year, index = int(match.group(1)), int(match.group(2))
    if not periods.MIN_YEAR <= year <= periods.MAX_YEAR or index < 1:
        return None
    # A period chosen under another frequency (month 12, then quarterly): its last one of the year.
    return year, min(index, periods.periods_per_year(frequency))


def period_key(period: tuple[int, int]) -> str:
    return f"{period[0]}-{period[1]}"


@dataclass
class Choice:
    """What the person asked for, read from a query string and written back into links."""

    codes: list[str] = field(default_factory=list)
    q: str = ""
    unit: str = ""  # a unit code; "" = the person's own unit (or the first they may see)
    scope: str = "unit"
    at: dt.date | None = None  # the date of the unit tree; None = today
    frequency: str = periods.MONTHLY
    start: tuple[int, int] | None = None
    end: tuple[int, int] | None = None
    kinds: list[str] = field(default_factory=lambda: ["actual"])
    options: str = "total"
    positions: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_POSITIONS))
    hide_empty: bool = False
    errors: dict[str, str] = field(default_factory=dict)  # parameter → message key

    @classmethod
    def from_params(cls, params, today: dt.date | None = None) -> "Choice":
        today = today or clock.today()
        choice = cls()
        codes = []
        for raw in _getlist(params, "indicator"):
            code = raw.strip().upper()[:10]
            if code and code not in codes:
                codes.append(code)
        choice.codes = codes[:MAX_CODES]
        if len(codes) > MAX_CODES:
            choice.errors["indicator"] = "explorer.error.too_many_codes"
        choice.q = _get(params, "q", QUERY_MAX)
        choice.unit = _get(params, "unit", 40)
        scope = _get(params, "scope", 20)
        choice.scope = scope if scope in SCOPES else "unit"
        at = _get(params, "at", 20)
        choice.at = _parse_date(at) if at else None
        if at and choice.at is None:
            choice.errors["at"] = "explorer.error.at"
        choice.at = choice.at or today
        frequency = _get(params, "frequency", 20)
        choice.frequency = frequency if frequency in periods.FREQUENCIES else periods.MONTHLY
        end = _period(_get(params, "to", 10), choice.frequency)
        start = _period(_get(params, "from", 10), choice.frequency)
        choice.end = end or (shift(choice.frequency, start, DEFAULT_SPAN[choice.frequency] - 1) if start
                             else current_period(choice.frequency, today))
        choice.start = start or shift(choice.frequency, choice.end, 1 - DEFAULT_SPAN[choice.frequency])
        if choice.start > choice.end:
            choice.start, choice.end = choice.end, choice.start
        kinds = [k for k in ind.VALUE_KINDS if k in {v.strip() for v in _getlist(params, "kind")}]
        choice.kinds = kinds or ["actual"]
        options = _get(params, "options", 10)
        choice.options = options if options in OPTION_CHOICES else "total"
        for dim in DIMENSIONS:
            position = _get(params, f"pos_{dim}", 4)
            if position in POSITIONS:
                choice.positions[dim] = position
        choice.hide_empty = _get(params, "hide_empty", 5) == "1"
        return choice

    # -- the layout ------------------------------------------------------------------------------

    def axis(self, letter: str) -> list[str]:
        """The dimensions on the rows ("r") or the columns ("c"), outermost first."""
        placed = [d for d in DIMENSIONS if self.positions[d][0] == letter]
        return sorted(placed, key=lambda d: (int(self.positions[d][1:]), DIMENSIONS.index(d)))

    def swapped_positions(self) -> dict[str, str]:
        return {d: ("c" if p[0] == "r" else "r") + p[1:] for d, p in self.positions.items()}

    def params(self, *, positions: dict[str, str] | None = None, **changes) -> list[tuple[str, str]]:
        """The query parameters of this question (for ``urlencode(..., doseq)``), with ``changes``."""
        values = {"q": self.q, "unit": self.unit, "scope": self.scope, "at": self.at.isoformat() if self.at else "",
                  "frequency": self.frequency, "from": period_key(self.start) if self.start else "",
                  "to": period_key(self.end) if self.end else "", "options": self.options,
                  "hide_empty": "1" if self.hide_empty else ""}
        values.update({k: "" if v is None else str(v) for k, v in changes.items()})
        out = [("indicator", code) for code in self.codes]
        out += [(k, v) for k, v in values.items() if v]
        out += [("kind", kind) for kind in self.kinds]
        out += [(f"pos_{d}", p) for d, p in (positions or self.positions).items()]
        return out


# -- units as at a date, and the people who may see them -----------------------------------------

@dataclass(frozen=True)
class UnitRow:
    """A unit as it stood on the chosen day (its name and parent then)."""

    id: int
    code: str
    name: str
    kind: str
    depth: int
    parent_id: int | None


class UnitHistory:
    """Every unit's validity, today's parent and the forward links of the unit changes, in memory
    for one request (``core.units.history.Lineages``): who may see a unit, and what a unit of any
    date became on another."""

    def __init__(self, today: dt.date | None = None):
        self.lineages = Lineages(today or clock.today())
        self.units = self.lineages.units

    def chain(self, unit_id: int) -> tuple[int, ...]:
        """The unit and its parents of today, nearest first (``ancestor_ids``, without a query)."""
        out, seen = [], set()
        current = unit_id
        while current is not None and current in self.units and current not in seen:
            seen.add(current)
            out.append(current)
            current = self.units[current].parent_id
        return tuple(out)

    def visible(self, access, unit_id: int) -> bool:
        if access.allowed(VIEW_UNITS, self.chain(unit_id)):
            return True
        unit = self.units.get(unit_id)
        if unit is None or is_valid(unit, self.lineages.today):
            return False
        return any(access.allowed(VIEW_UNITS, self.chain(anchor)) for anchor in self.lineages.anchors(unit_id))

    def successors(self, unit_id: int, day: dt.date, _seen: set | None = None) -> set[int]:
        """The units in force on ``day`` that this one became (itself when in force then; none when
        it did not exist yet, or ended without successor): ``core.units.history.successors``."""
        seen = _seen if _seen is not None else set()
        if unit_id in seen or unit_id not in self.units:
            return set()
        seen.add(unit_id)
        unit = self.units[unit_id]
        if is_valid(unit, day):
            return {unit_id}
        if unit.valid_from is not None and unit.valid_from > day:
            return set()
        out: set[int] = set()
        for target in self.lineages.forward.get(unit_id, ()):
            out |= self.successors(target, day, seen)
        return out

    def predecessors_at(self, unit_id: int, day: dt.date) -> set[int]:
        """The units in force on ``day`` that later became this one (following the links backward)."""
        backward: dict[int, set[int]] = defaultdict(set)
        for source, targets in self.lineages.forward.items():
            for target in targets:
                backward[target].add(source)
        found, seen, todo = set(), {unit_id}, [unit_id]
        while todo:
            for source in backward.get(todo.pop(), ()):
                if source in seen or source not in self.units:
                    continue
                seen.add(source)
                if is_valid(self.units[source], day):
                    found.add(source)
                else:
                    todo.append(source)
        return found

    def sources(self, shown: set[int], day: dt.date) -> tuple[dict[int, int], dict[int, set[int]]]:
        """({stored unit: the shown unit its figures count into}, {split unit: its successors}):
        the shown units themselves, the former units that became exactly one of them, and those
        split among several (whose figures cannot be divided)."""
        counted = {unit_id: unit_id for unit_id in shown}
        split: dict[int, set[int]] = {}
        for unit_id in self.lineages.forward:  # only a unit a change ended leads anywhere
            unit = self.units.get(unit_id)
            if unit_id in shown or unit is None or is_valid(unit, day):
                continue  # shown itself, or in force that day under a unit not shown
            found = self.successors(unit_id, day)
            if len(found) == 1 and found <= shown:
                counted[unit_id] = next(iter(found))
            elif len(found) > 1 and found & shown:
                split[unit_id] = found
        return counted, split


def visible_units(access, history: UnitHistory, day: dt.date) -> tuple[list[UnitRow], dict[int, int | None]]:
    """The units in force on ``day`` the person may see, in tree order, as they were named then;
    and the parent of every unit in force that day (seen or not), as it stood."""
    out, parents = [], {}
    for node in flatten(tree(at=day)):
        u = node.unit
        parents[u.id] = u.parent_id
        if history.visible(access, u.id):
            out.append(UnitRow(u.id, u.code, u.name, u.kind, node.depth, u.parent_id))
    return out, parents


def _shown_units(picker: list[UnitRow], parents: dict, root: UnitRow, scope: str) -> list[UnitRow]:
    """The root and, by ``scope``, its visible subordinates as the tree stood that day, in tree
    order; every level below counts units under one the person may not see too."""
    if scope == "unit":
        return [root]
    if scope == "children":
        return [root] + [row for row in picker if row.parent_id == root.id]
    below = {root.id}
    for unit_id, parent_id in parents.items():  # tree order: a parent comes before its children
        if parent_id in below:
            below.add(unit_id)
    return [row for row in picker if row.id in below]


# -- the figures, counted into the units shown --------------------------------------------------

@dataclass
class Cell:
    value: Decimal | str | None = None
    notes: tuple[int, ...] = ()
    blocked: bool = False  # several values the indicator's rule cannot combine

    @property
    def number(self) -> bool:
        return isinstance(self.value, Decimal)


@dataclass
class Note:
    number: int
    key: str
    params: dict

    def text(self, t, lang: str) -> str:
        params = {k: format_date(v, lang) if isinstance(v, dt.date) else v for k, v in self.params.items()}
        return t(self.key, **params)


def combine(values: list, aggregation: str, is_text: bool) -> tuple[object, bool]:
    """(value, combined) of several units' figures by the indicator's rule; (None, False) when the
    rule cannot combine them (a weighted average without its weights, "last", "none", text)."""
    values = [v for v in values if v is not None]
    if len(values) <= 1:
        return (values[0] if values else None), True
    if is_text or not all(isinstance(v, Decimal) for v in values):
        return None, False
    if aggregation == "sum":
        return sum(values, Decimal(0)), True
    if aggregation == "min":
        return min(values), True
    if aggregation == "max":
        return max(values), True
    if aggregation == "average":
        mean = sum(values, Decimal(0)) / len(values)
        return mean.quantize(Decimal(1).scaleb(-store.DECIMALS)).normalize(), True
    return None, False


@dataclass(frozen=True)
class Member:
    key: object
    label: str
    code: str = ""  # shown apart from the label (an indicator's or a unit's code)


@dataclass
class Pivot:
    row_dims: list[str]
    col_dims: list[str]
    fixed: list[tuple[str, Member]]  # dimensions with one member, said above the table
    rows: list[tuple[Member, ...]]
    cols: list[tuple[Member, ...]]
    cells: list[list[Cell]]

    def col_headers(self) -> list[list[tuple[Member, int]]]:
        """One header line per column dimension: (member, columns it spans)."""
        lines = []
        for level in range(len(self.col_dims)):
            line: list[tuple[Member, int]] = []
            previous = None
            for col in self.cols:
                prefix = col[:level + 1]
                if prefix == previous:
                    line[-1] = (line[-1][0], line[-1][1] + 1)
                else:
                    line.append((col[level], 1))
                previous = prefix
            lines.append(line)
        return lines

    def row_spans(self) -> list[list[int]]:
        """For each row and row dimension: how many rows its label spans (0: under the one above)."""
        spans = [[0] * len(self.row_dims) for _ in self.rows]
        for level in range(len(self.row_dims)):
            start = 0
            for i in range(1, len(self.rows) + 1):
                if i == len(self.rows) or self.rows[i][:level + 1] != self.rows[start][:level + 1]:
                    spans[start][level] = i - start
                    start = i
        return spans

    @property
    def size(self) -> int:
        return len(self.rows) * len(self.cols)


@dataclass
class Page:
    """What the screen shows: the choices offered and, when indicators are chosen, the result."""

    choice: Choice
    picker: list[UnitRow]
    root: UnitRow | None
    units: list[UnitRow]
    chosen: list  # Indicator (current versions) in the order chosen
    matches: list  # the search's Indicators, at most SEARCH_SHOWN
    match_count: int
    years: list[int]
    unknown_codes: list[str]
    not_in_force: dict | None = None  # the unit asked for is not in force on the date: who stood for it
    windows: list = field(default_factory=list)
    pivot: Pivot | None = None
    notes: list[Note] = field(default_factory=list)
    refused: tuple[str, dict] | None = None  # (message key, params): the question is too large
    figure_count: int = 0  # stored figures read

    @property
    def too_large_for_screen(self) -> bool:
        return self.pivot is not None and self.pivot.size > SCREEN_CELLS


def period_choices(frequency: str, years: list[int], lang: str) -> list[tuple[str, str]]:
    """(key, label) of every period of ``frequency`` in ``years``, for the range's two lists."""
    return [(period_key((w.year, w.index)), w.label(lang)) for y in years for w in periods.windows(frequency, y)]


def _indicators(codes: list[str]) -> dict[str, ind.Indicator]:
    if not codes:
        return {}
    model = ind.Indicator
    query = model.select().where(model.code.in_(codes) & (model.is_current == True))  # noqa: E712
    return {i.code: i for i in query}


def explore(access, choice: Choice, t, lang: str = "vi") -> Page | None:
    """The page for ``choice`` as seen by ``access``; None when the unit asked for does not exist or
    the person may not see it (the screen answers 404). ``t(key, **params)`` names things."""
    today = clock.today()
    history = UnitHistory(today)
    day = choice.at or today
    picker, parents = visible_units(access, history, day)
    root, not_in_force = None, None
    if choice.unit:
        unit = Unit.get_or_none(Unit.code == choice.unit)
        if unit is None or not history.visible(access, unit.id):
            return None
        root = next((row for row in picker if row.id == unit.id), None)
        if root is None:
            # Not in force that day: the units that stood for it then (what it became, or what it was made of).
            stood = history.successors(unit.id, day) or history.predecessors_at(unit.id, day)
            not_in_force = {"unit": unit.name, "date": day, "units": [row.name for row in picker if row.id in stood],
                            "later": unit.valid_from is not None and unit.valid_from > day}
    else:
        own = access.actor.unit_id if access.actor is not None else None
        root = next((row for row in picker if row.id == own), None) or (picker[0] if picker else None)
    units = _shown_units(picker, parents, root, choice.scope) if root is not None else []
    found = _indicators(choice.codes)
    chosen = [found[c] for c in choice.codes if c in found]
    unknown = [c for c in choice.codes if c not in found]
    matches, match_count = [], 0
    if choice.q:
        every = ind.search(choice.q)
        match_count = len(every)
        matches = every[:SEARCH_SHOWN]
    first_year = min(choice.start[0], today.year - 10)
    last_year = max(choice.end[0], today.year + 5)
    years = list(range(max(first_year, periods.MIN_YEAR), min(last_year, periods.MAX_YEAR) + 1))
    page = Page(choice, picker, root, units, chosen, matches, match_count, years, unknown, not_in_force)
    if chosen and units:
        _answer(page, history, day, t, lang)
    return page


def _windows(choice: Choice) -> list:
    out = []
    period = choice.start
    while period <= choice.end:
        out.append(periods.window(choice.frequency, *period))
        nxt = shift(choice.frequency, period, 1)
        if nxt == period:
            break
        period = nxt
    return out


def _answer(page: Page, history: UnitHistory, day: dt.date, t, lang: str) -> None:
    choice = page.choice
    windows = page.windows = _windows(choice)
    shown = {u.id for u in page.units}
    counted, split = history.sources(shown, day)
    stored = sorted(set(counted) | set(split))
    codes = [i.code for i in page.chosen]
    size_params = {"codes": len(codes), "units": len(stored), "periods": len(windows), "kinds": len(choice.kinds)}
    try:
        rows = store.query(codes, stored, [(w.frequency, w.year, w.index) for w in windows], choice.kinds,
                           options=store.ALL_OPTIONS if choice.options == "all" else None)
    except store.FiguresQueryError as exc:
        # The store's own bound: said with what the person chose, and what to do about it.
        if exc.key == "figures.query.list_too_long":
            key, params = "explorer.refused.list", {**size_params, "limit": store.MAX_LIST}
        elif "options" in exc.errors:  # every option listed: more rows than the bound
            key, params = "explorer.refused.rows", {"limit": exc.params.get("limit", store.MAX_FIGURES)}
        else:
            key, params = "explorer.refused.size", {**size_params, "size": exc.params.get("size", 0),
                                                    "limit": exc.params.get("limit", store.MAX_FIGURES)}
        page.refused = (key, {k: format_number(v, lang) for k, v in params.items()})
        return
    page.figure_count = len(rows)
    indicators = {i.code: i for i in page.chosen}
    window_of = {(w.year, w.index): w for w in windows}
    # key (code, option, shown unit, (year, index), kind) → [(stored unit, value)]
    gathered: dict[tuple, list[tuple[int, object]]] = defaultdict(list)
    split_seen: dict[int, int] = {}  # split unit → its figures left out
    options_found: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        options_found[row.code].add(row.option)
        if row.unit_id in split:
            split_seen[row.unit_id] = split_seen.get(row.unit_id, 0) + 1
            continue
        target = counted[row.unit_id]
        # 1234.500000 as PostgreSQL gives it, 1234.5 as SQLite does: the same number, shown the same.
        value = row.value.normalize() if isinstance(row.value, Decimal) else row.value
        gathered[(row.code, row.option, target, (row.year, row.index), row.kind)].append((row.unit_id, value))
    former_of: dict[int, set[int]] = defaultdict(set)  # shown unit → the former units counted into it
    for unit_id, target in counted.items():
        if unit_id != target:
            former_of[target].add(unit_id)
    # shown unit → the (counted, missing) sets of former units of its cells, in the order met
    merged: dict[int, dict[tuple, None]] = defaultdict(dict)
    blocked: set[tuple[int, str]] = set()  # (shown unit, code) with values no rule combines
    cells: dict[tuple, Cell] = {}
    marks: dict[tuple, list[tuple]] = {}  # cell key → the notes it refers to, numbered below
    for key, contributions in gathered.items():
        code, _option, target, period, _kind = key
        own = [v for u, v in contributions if u == target]
        others = [(u, v) for u, v in contributions if u != target and v is not None]
        unit = history.units.get(target)
        window = window_of[period]
        if not others or (own and unit is not None and unit.valid_from is not None and unit.valid_from > window.end):
            # No former unit counts here, or a figure restated under the new unit for a period
            # before it existed: taken as it is, its predecessors are not added again.
            cells[key] = Cell(own[0] if own else None)
            continue
        indicator = indicators[code]
        value, combined = combine([*own, *(v for _, v in others)], indicator.aggregation,
                                  indicator.value_type == "text")
        # A former unit in force during the period whose figure is missing: the total is partial.
        expected = {u for u in former_of[target] if _in_force_during(history.units[u], window)}
        sources = (frozenset(u for u, _ in others), frozenset(expected - {u for u, _ in others}))
        merged[target][sources] = None
        marks[key] = [("merged", target, sources)]
        if not combined:
            blocked.add((target, code))
            marks[key].append(("blocked", target, code))
        cells[key] = Cell(value if combined else None, blocked=not combined)
    page.notes, numbers = _notes(page, history, day, merged, blocked, split_seen, split, indicators, t)
    for key, refs in marks.items():
        cells[key].notes = tuple(numbers[ref] for ref in refs)
    page.pivot = _pivot(page, cells, options_found, t, lang)


def _in_force_during(unit, window) -> bool:
    return ((unit.valid_from is None or unit.valid_from <= window.end)
            and (unit.valid_to is None or unit.valid_to >= window.start))


def _notes(page: Page, history: UnitHistory, day: dt.date, merged: dict, blocked: set, split_seen: dict,
           split: dict, indicators: dict, t) -> tuple[list[Note], dict]:
    """The notes under the table, in the order of the units shown, and their numbers by reference."""
    ids = set(merged) | {u for sets in merged.values() for pair in sets for side in pair for u in side}
    ids |= set(split_seen)
    ids |= {u for unit_id in split_seen for u in split[unit_id]}
    names = {u.id: u.name for u in Unit.select(Unit.id, Unit.name).where(Unit.id.in_(sorted(ids)))} if ids else {}
    names.update({u.id: u.name for u in page.units})  # the units shown, as named on the date
    notes: list[Note] = []
    numbers: dict[tuple, int] = {}

    def add(ref, key, params):
        notes.append(Note(len(notes) + 1, key, params))
        numbers[ref] = len(notes)

    def listed(ids) -> str:
        return ", ".join(names.get(u, "") for u in sorted(ids, key=lambda u: (fold(names.get(u, "")), u)))

    for shown in page.units:
        # The complete ones first, then those with a former unit missing.
        ordered = sorted(merged.get(shown.id, {}), key=lambda pair: (len(pair[1]), listed(pair[0]), listed(pair[1])))
        for sources in ordered:
            former, missing = sources
            ended = [history.units[u].valid_to for u in former if history.units[u].valid_to is not None]
            params = {"unit": shown.name, "former": listed(former),
                      "date": max(ended) + dt.timedelta(days=1) if ended else day}
            if missing:
                add(("merged", shown.id, sources), "explorer.note.merged_partial",
                    {**params, "missing": listed(missing)})
            else:
                add(("merged", shown.id, sources), "explorer.note.merged", params)
        for indicator in page.chosen:
            if (shown.id, indicator.code) in blocked:
                rule = ("explorer.rule.text" if indicator.value_type == "text"
                        else ind.AGGREGATION_LABELS.get(indicator.aggregation, "explorer.rule.text"))
                add(("blocked", shown.id, indicator.code), "explorer.note.blocked",
                    {"unit": shown.name, "indicator": f"{indicator.code} {indicator.name}", "rule": t(rule)})
    for unit_id in sorted(split_seen, key=lambda u: (fold(names.get(u, "")), u)):
        targets = sorted(split[unit_id], key=lambda u: (fold(names.get(u, "")), u))
        add(("split", unit_id), "explorer.note.split",
            {"unit": names.get(unit_id, ""), "count": split_seen[unit_id],
             "successors": ", ".join(names.get(u, "") for u in targets)})
    return notes, numbers


def _indicator_label(indicator) -> str:
    unit = f" ({indicator.unit_of_measure})" if indicator.unit_of_measure else ""
    return f"{indicator.name}{unit}"


def _pivot(page: Page, cells: dict, options_found: dict, t, lang: str) -> Pivot:
    choice = page.choice
    indicator_members = []
    for indicator in page.chosen:
        label = _indicator_label(indicator)
        indicator_members.append(Member((indicator.code, ""), label, indicator.code))
        if choice.options == "all":
            for option in sorted(options_found.get(indicator.code, set()) - {""}, key=lambda o: (fold(o), o)):
                indicator_members.append(Member((indicator.code, option),
                                                t("explorer.option_of", indicator=label, option=option),
                                                indicator.code))
    members = {
        "indicator": indicator_members,
        "unit": [Member(u.id, u.name, u.code) for u in page.units],
        "period": [Member((w.year, w.index), w.label(lang)) for w in page.windows],
        "kind": [Member(k, t(ind.VALUE_KIND_LABELS[k])) for k in ind.VALUE_KINDS if k in choice.kinds],
    }
    axes = {}
    for letter in "rc":
        placed = choice.axis(letter)
        kept = [d for d in placed if len(members[d]) > 1]
        axes[letter] = kept or placed[:1]
    fixed = [(d, members[d][0]) for d in DIMENSIONS
             if d not in axes["r"] and d not in axes["c"] and members[d]]
    rows = list(itertools.product(*(members[d] for d in axes["r"])))
    cols = list(itertools.product(*(members[d] for d in axes["c"])))
    single = {d: m for d, m in fixed}

    def cell(row, col) -> Cell:
        at = dict(single)
        at.update(zip(axes["r"], row))
        at.update(zip(axes["c"], col))
        code, option = at["indicator"].key
        return cells.get((code, option, at["unit"].key, at["period"].key, at["kind"].key)) or Cell()

    grid = [[cell(row, col) for col in cols] for row in rows]
    if choice.hide_empty:
        kept_rows = [(row, line) for row, line in zip(rows, grid) if any(c.value is not None or c.notes for c in line)]
        rows, grid = [r for r, _ in kept_rows], [line for _, line in kept_rows]
    return Pivot(axes["r"], axes["c"], fixed, rows, cols, grid)


# -- Excel ------------------------------------------------------------------------------------

def excel_number(value: Decimal):
    """A Decimal as the number Excel keeps (a whole number as an int)."""
    return int(value) if value == value.to_integral_value() else float(value)


def _number_format(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    decimals = len(text.split(".")[1]) if "." in text else 0
    return "#,##0" + ("." + "0" * min(decimals, store.DECIMALS) if decimals else "")


def describe(page: Page, t, lang: str) -> list[tuple[str, str]]:
    """(label, text) lines that say what the table holds: above the table and the Excel sheet."""
    choice = page.choice
    first, last = page.windows[0], page.windows[-1]
    scope = t(SCOPE_LABELS[choice.scope])
    lines = [(t("explorer.export.unit"), f"{page.root.name} ({scope})"),
             (t("explorer.export.at"), format_date(choice.at, lang)),
             (t("explorer.export.periods"), first.label(lang) if first == last
              else f"{first.label(lang)} – {last.label(lang)}"),
             (t("explorer.export.kinds"), ", ".join(t(ind.VALUE_KIND_LABELS[k]) for k in choice.kinds)),
             (t("explorer.export.options"), t(OPTION_LABELS[choice.options]))]
    # A lone indicator is said here; a lone unit is the one named first, a lone period or kind above.
    lines += [(t(DIMENSION_LABELS[dim]), f"{member.code} {member.label}") for dim, member in page.pivot.fixed
              if dim == "indicator"]
    return lines


def workbook(page: Page, t, lang: str = "vi", *, actor=None) -> bytes:
    """The table as shown, as an .xlsx file: the same rows and columns, numbers as numbers, texts
    kept as text (``core.export_safety``), the notes under the table and on the cells they mark."""
    from openpyxl import Workbook
    from openpyxl.comments import Comment
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    pivot = page.pivot
    book = Workbook()
    sheet = book.active
    sheet.title = t("explorer.export.sheet")[:31]
    bold = Font(bold=True)
    fill = PatternFill("solid", fgColor="DCE6F1")

    def put(row, column, value, **style):
        target = sheet.cell(row=row, column=column, value=value)
        text_cell(target)
        for name, setting in style.items():
            setattr(target, name, setting)
        return target

    put(1, 1, t("explorer.title"), font=Font(bold=True, size=14))
    line = 2
    for label, text in describe(page, t, lang):
        put(line, 1, label, font=bold)
        put(line, 2, text)
        line += 1
    if actor is not None:
        put(line, 1, t("explorer.export.by"), font=bold)
        put(line, 2, f"{actor.full_name} ({actor.username})")
        line += 1
    put(line, 1, t("explorer.export.made"), font=bold)
    put(line, 2, f"{format_datetime(clock.utcnow(), lang)} ({t('explorer.export.timezone', zone=str(clock.zone()))})")
    line += 2
    heads = max(len(pivot.col_dims), 1)
    lead = max(len(pivot.row_dims), 1)
    top = line
    head_style = {"font": bold, "fill": fill, "alignment": Alignment(wrap_text=True, vertical="top")}
    for i, dim in enumerate(pivot.row_dims or [None]):
        put(top, i + 1, t(DIMENSION_LABELS[dim]) if dim else "", **head_style)
        if heads > 1:
            sheet.merge_cells(start_row=top, start_column=i + 1, end_row=top + heads - 1, end_column=i + 1)
    if pivot.col_dims:
        for level, headers in enumerate(pivot.col_headers()):
            column = lead + 1
            for member, span in headers:
                put(top + level, column, _member_text(pivot.col_dims[level], member), **head_style)
                if span > 1:
                    sheet.merge_cells(start_row=top + level, start_column=column, end_row=top + level,
                                      end_column=column + span - 1)
                column += span
    else:
        put(top, lead + 1, t("explorer.value"), **head_style)
    line = top + heads
    for row, cells in zip(pivot.rows, pivot.cells):
        for i, member in enumerate(row):
            put(line, i + 1, _member_text(pivot.row_dims[i], member))
        if not row:
            put(line, 1, t("explorer.value"))
        for j, c in enumerate(cells):
            column = lead + 1 + j
            if c.number:
                target = sheet.cell(row=line, column=column, value=excel_number(c.value))
                target.number_format = _number_format(c.value)
            elif c.value is not None:
                target = put(line, column, c.value)
            else:
                target = sheet.cell(row=line, column=column)
            if c.notes:
                target.comment = Comment("\n".join(f"({n}) {page.notes[n - 1].text(t, lang)}" for n in c.notes),
                                         t("app.short"))
        line += 1
    if page.notes:
        line += 1
        put(line, 1, t("explorer.notes"), font=bold)
        for note in page.notes:
            line += 1
            put(line, 1, f"({note.number}) {note.text(t, lang)}")
    for i in range(1, lead + 1):
        sheet.column_dimensions[get_column_letter(i)].width = 40 if i == 1 else 28
    for j in range(len(pivot.cols)):
        sheet.column_dimensions[get_column_letter(lead + 1 + j)].width = 16
    sheet.freeze_panes = sheet.cell(row=top + heads, column=lead + 1)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _member_text(dim: str, member: Member) -> str:
    return f"{member.code} {member.label}" if dim == "indicator" else member.label


def filename(page: Page) -> str:
    """An ASCII file name: "tra-cuu-so-lieu_<unit code>_<from>_<to>.xlsx"."""
    what = f"{page.root.code}_{period_key(page.choice.start)}_{period_key(page.choice.end)}"
    safe = "".join(c if c.isascii() and (c.isalnum() or c in "-._") else "-" for c in what)
    return f"tra-cuu-so-lieu_{safe[:80]}.xlsx"
