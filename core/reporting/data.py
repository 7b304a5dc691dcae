"""What a report holds while it is filled: cell values, narrative sections, cell comments and
attachments — and the sheet every screen, file and API builds from them.

``load_sheet`` puts together, for one report, its form version (the one it was opened with),
the columns shown in its period with their labels, the values typed so far, the figures
pre-filled from the figures store (previous period, same period last year, year to date, plan),
every computed cell and the messages of the form's rules.

``save`` is the one way values and sections are written — from the screen, the Excel upload and
the JSON API alike: every new value is parsed first (a cell that is not a number, or not an input
cell, refuses the whole save, each error at its cell — except on the entry screen, which keeps
the valid cells and marks the refused ones); optimistic locking compares, per cell, the
value the person started from (``base``) with what is stored now, so two people typing into
different cells both keep their work and a real clash is shown with both values; nothing changes
unless everything can. A save that changes nothing writes nothing (uploading the same file twice
changes nothing the second time). Each save raises the report's ``revision``.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import threading
from collections import OrderedDict, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from peewee import JOIN, BigIntegerField, CharField, DateTimeField, DecimalField, ForeignKeyField, TextField, fn

from core import audit, generations
from core.db import CoreModel, Prepared, db, is_sqlite, transaction
from core.reporting import events
from core.errors import BaocaoError, Forbidden, NotFound
from core.regimes.form_engine import CellInputError, CompiledForm, Message, canonical, column_label, parse_number
from core.regimes.forms import Form, FormVersion, current_of, indicator_codes
from core.catalogue.figures import IndicatorValue
from core.catalogue.indicators import Indicator
from core.models import User, utcnow
from core.numbers import parse_canonical
from core.regimes.periods import FREQUENCIES, periods_per_year
from core.regimes.regimes import Regime
from core.reporting.opening import Report

EDITABLE = ("not_started", "draft", "returned")
SUBMIT, RECEIVE = "core.report.submit", "core.report.receive"
MAX_SECTION = 50_000
MAX_COMMENT = 2_000
MAX_ATTACHMENTS = 30
# Types a report's annex may have: extension → magic bytes at the start of the file. The file is
# checked against both, so a renamed program is not stored as a PDF.
ATTACHMENT_TYPES = {
    ".pdf": ("application/pdf", (b"%PDF-",)),
    ".docx": ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", (b"PK\x03\x04",)),
    ".xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", (b"PK\x03\x04",)),
    ".odt": ("application/vnd.oasis.opendocument.text", (b"PK\x03\x04",)),
    ".ods": ("application/vnd.oasis.opendocument.spreadsheet", (b"PK\x03\x04",)),
    ".doc": ("application/msword", (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",)),
    ".xls": ("application/vnd.ms-excel", (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",)),
    ".jpg": ("image/jpeg", (b"\xff\xd8\xff",)),
    ".jpeg": ("image/jpeg", (b"\xff\xd8\xff",)),
    ".png": ("image/png", (b"\x89PNG\r\n\x1a\n",)),
    ".zip": ("application/zip", (b"PK\x03\x04",)),
}


class ReportValue(CoreModel):
    report = ForeignKeyField(Report, on_delete="CASCADE")
    row = CharField(max_length=40)
    column = CharField(max_length=40)
    value = DecimalField(max_digits=24, decimal_places=6, null=True)
    updated_at = DateTimeField(default=utcnow)
    updated_by = ForeignKeyField(User, null=True, on_delete="SET NULL")

    class Meta:
        indexes = ((("report", "row", "column"), True),)


class ReportSection(CoreModel):
    report = ForeignKeyField(Report, on_delete="CASCADE")
    key = CharField(max_length=40)
    text = TextField(default="")
    updated_at = DateTimeField(default=utcnow)
    updated_by = ForeignKeyField(User, null=True, on_delete="SET NULL")

    class Meta:
        indexes = ((("report", "key"), True),)


class ReportComment(CoreModel):
    report = ForeignKeyField(Report, on_delete="CASCADE")
    row = CharField(max_length=40)
    column = CharField(max_length=40)
    author = ForeignKeyField(User, null=True, on_delete="SET NULL")
    text = TextField()
    created_at = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("report", "row", "column"), False),)


class ReportAttachment(CoreModel):
    report = ForeignKeyField(Report, on_delete="CASCADE")
    name = CharField(max_length=255)
    stored_name = CharField(max_length=80, unique=True)
    sha256 = CharField(max_length=64)
    size = BigIntegerField()
    content_type = CharField(max_length=120)
    uploaded_by = ForeignKeyField(User, null=True, on_delete="SET NULL")
    uploaded_at = DateTimeField(default=utcnow)


# -- who may do what --------------------------------------------------------------------------

def can_fill(access, report: Report) -> bool:
    return access.allowed_at(SUBMIT, report.unit_id)


def can_receive(access, report: Report) -> bool:
    receiver = report.receiver_id
    return receiver is not None and access.allowed_at(RECEIVE, receiver)  # the chain read once per request


def can_read(access, report: Report) -> bool:
    return can_fill(access, report) or can_receive(access, report)


# Compiled once (core.db.Prepared): every screen of a report, each autosave, reads these.
_REPORT = Prepared(lambda p: Report.select(Report, Regime).join(Regime).where(Report.id == p.report_id).limit(1))
_FORM_VERSION = Prepared(lambda p: FormVersion.select().where(FormVersion.id == p.version_id).limit(1))
# With its form: every screen of a sheet names the form's code (``sheet.version.form``).
_VERSION_AND_FORM = Prepared(lambda p: FormVersion.select(FormVersion, Form).join(Form)
                             .where(FormVersion.id == p.version_id).limit(1))


def get_report(access, report_id: int) -> Report:
    report = _REPORT.first(report_id=report_id)
    if report is None or not can_read(access, report):
        raise NotFound()  # a report the user may not read does not exist for them (ACL-02)
    return report


def _editable(access, report: Report) -> None:
    if not can_fill(access, report):
        raise Forbidden()
    if report.status not in EDITABLE:
        raise BaocaoError("report_data.error.not_editable", status=report.status)
    if report.form_version_id is None:
        raise BaocaoError("report_data.error.no_form")


# -- the sheet --------------------------------------------------------------------------------

@dataclass
class ShownColumn:
    key: str
    label: str
    kind: str
    decimals: int | None
    percent: bool


@dataclass
class Sheet:
    report: Report
    version: FormVersion
    form: CompiledForm
    columns: list[ShownColumn]
    kinds: dict  # (row, col) -> cell kind, shown columns only
    stored: dict  # (row, col) -> Decimal | None: input values as saved
    values: dict  # (row, col) -> Decimal | None: every shown cell
    messages: list[Message]
    sections: dict[str, str]
    comments: dict  # (row, col) -> [ReportComment]
    attachments: list
    editable: bool
    prefill: tuple = ({}, {})  # (pre-filled cells, year so far before this period): to compute another state
    catalogue: int | None = None  # the catalogue's change counter as read for the prefill (None: not read)

    @property
    def revision(self) -> int:
        return self.report.revision

    def by_severity(self) -> dict[str, list[Message]]:
        grouped: dict[str, list[Message]] = {s: [] for s in ("blocker", "error", "warning", "info")}
        for m in self.messages:
            grouped[m.severity].append(m)
        return grouped

    @property
    def blocked(self) -> bool:
        return any(m.severity == "blocker" for m in self.messages)

    def input_cells(self) -> list[tuple[str, str]]:
        return [cell for cell, kind in self.kinds.items() if kind == "input"]

    def indicator_names(self) -> dict[str, str]:
        """code → the catalogue's current name of the indicators the form's rows name (shared: only read)."""
        return indicator_names(self.version, self.form, self.catalogue)

    def grid(self, lang: str, inputs: bool = False) -> list:
        """(row, cells) as the grid prints them (core.reporting.grid)."""
        from core.reporting.grid import grid_rows

        return grid_rows(self, lang, inputs=inputs)


def load_sheet(access, report_id: int, *, overrides: dict | None = None, report: Report | None = None,
               saved: SaveResult | None = None, version: FormVersion | None = None) -> Sheet:
    """The report's sheet; ``overrides`` (cell → Decimal | None) replace stored inputs, for the live
    recalculation of what is typed but not saved yet. ``saved``: the state a save left (its inputs
    and sections, not read again), without comments and attachments — the answer to an autosave."""
    report = report or get_report(access, report_id)
    if report.form_version_id is None:
        raise BaocaoError("report_data.error.no_form")
    if version is None:
        version = _VERSION_AND_FORM.first(version_id=report.form_version_id)
        if version is None:
            raise FormVersion.DoesNotExist(f"form version {report.form_version_id}")
    form = version.compiled()
    index = report.period_index
    columns, kinds = _layout(form, report.frequency, report.year, index)
    stored = stored_values(report.id) if saved is None else saved.stored
    inputs = dict(stored)
    if overrides:
        inputs.update(overrides)
    prefill, prior, catalogue = _prefill(form, report)
    # Kept per process (computed_state): the page a person opens after an autosave, and the next
    # autosave's "before", are most often the state the last save computed.
    values, messages = computed_state(form, index, inputs, prefill, prior)
    editable = report.status in EDITABLE and can_fill(access, report)
    if saved is not None:
        return Sheet(report, version, form, columns, kinds, stored, values, messages, saved.sections, {}, [],
                     editable, (prefill, prior), catalogue)
    sections = dict(_SECTIONS.run(report_id=report.id))
    comments = defaultdict(list)
    for c in _COMMENTS.run(report_id=report.id):
        comments[(c.row, c.column)].append(c)
    attachments = list(_ATTACHMENTS.run(report_id=report.id))
    return Sheet(report, version, form, columns, kinds, stored, values, messages, sections, dict(comments),
                 attachments, editable, (prefill, prior), catalogue)


# Compiled once (core.db.Prepared): the page reads them at every visit. Who wrote a comment and who
# added an attachment come with them: the page names both.
_SECTIONS = Prepared(lambda p: ReportSection.select(ReportSection.key, ReportSection.text)
                     .where(ReportSection.report == p.report_id).tuples())
_COMMENTS = Prepared(lambda p: ReportComment.select(ReportComment, User)
                     .join(User, JOIN.LEFT_OUTER, on=(ReportComment.author == User.id))
                     .where(ReportComment.report == p.report_id).order_by(ReportComment.created_at))
_ATTACHMENTS = Prepared(lambda p: ReportAttachment.select(ReportAttachment, User)
                        .join(User, JOIN.LEFT_OUTER, on=(ReportAttachment.uploaded_by == User.id))
                        .where(ReportAttachment.report == p.report_id).order_by(ReportAttachment.uploaded_at))


def _layout(form: CompiledForm, frequency: str, year: int, index: int) -> tuple[list, dict]:
    """(the columns shown in the period with their labels, (row, col) → cell kind): the same for
    every sheet of a form and period, so built once per process (copies: the caller owns them)."""
    def make():
        shown = form.visible_columns(index)
        columns = [ShownColumn(c.key, column_label(c, frequency, year, index), c.kind, c.decimals, c.percent)
                   for c in shown]
        return columns, {(r.key, c.key): form.cell_kind(r, c) for r in form.rows for c in shown}

    columns, kinds = _derived(("layout", id(form), frequency, year, index), (form,), make)
    return list(columns), dict(kinds)


def input_cells(form: CompiledForm, index: int) -> tuple:
    """The form's input cells in period ``index``, in the form's order (``CompiledForm.input_cells``),
    kept per process: every save and every autosave answer needs them, and a compiled form does
    not change."""
    return _derived(("inputs", id(form), index), (form,), lambda: tuple(form.input_cells(index)))


def preview_sheet(version: FormVersion, frequency: str, year: int, index: int, *,
                  definition: dict | None = None) -> Sheet:
    """The designer's preview: the form for one period filled with sample numbers (never stored;
    the screen labels them as samples). ``definition``: an unsaved definition to preview instead."""
    from core.regimes.form_engine import compile_form, sample_inputs, sample_prefill

    form = compile_form(definition) if definition is not None else version.compiled()
    report = Report(frequency=frequency, year=year, period_index=index, revision=0, status="not_started",
                    label="", form_version=version.id if version is not None else None)
    shown = form.visible_columns(index)
    columns = [ShownColumn(c.key, column_label(c, frequency, year, index), c.kind, c.decimals, c.percent)
               for c in shown]
    kinds = {(r.key, c.key): form.cell_kind(r, c) for r in form.rows for c in shown}
    inputs = sample_inputs(form, index)
    values = form.compute(index, inputs, sample_prefill(form, index), {})
    return Sheet(report, version, form, columns, kinds, inputs, values, form.validate(index, values), {}, {}, [],
                 False)


_STORED_VALUES = Prepared(lambda p: ReportValue.select(ReportValue.row, ReportValue.column, ReportValue.value)
                          .where(ReportValue.report == p.report_id).tuples())


def stored_values(report_id: int) -> dict:
    # Tuples, not model objects: a sheet holds hundreds of values and every save reads them.
    return {(row, column): (None if value is None else Decimal(value))
            for row, column, value in _STORED_VALUES.run(report_id=report_id)}


_FIGURES: OrderedDict = OrderedDict()  # (database, unit, codes, year) → (generation, figures)
_FIGURES_SIZE = 512
# And at most this many figures in all (some 430 bytes each): a unit of the 60 × 13 bench form holds
# 1,300 (560 KB), so 512 such units alone would take a worker past its 150 MB (issue 17 item 5).
_FIGURES_HELD = 100_000
_FIGURES_LOCK = threading.Lock()


def _unit_figures(unit_id: int, codes: tuple, year: int, generation: int) -> dict:
    """The unit's figures for ``codes`` of last year, this year and next (read-only: shared).

    Every screen of a report needs them (the page, each recalculation, each autosave) and turning
    a thousand rows into numbers costs some 10 ms, so they are kept per process and read again only
    when the unit's figures changed: ``generation`` is its change counter (core.generations)."""

    def read() -> dict:
        figures: dict[tuple, Decimal] = {}
        query = (IndicatorValue.select(IndicatorValue.code, IndicatorValue.option, IndicatorValue.frequency,
                                       IndicatorValue.year, IndicatorValue.index, IndicatorValue.kind,
                                       IndicatorValue.value)
                 .where((IndicatorValue.unit == unit_id) & (IndicatorValue.code.in_(codes))
                        & (IndicatorValue.year.between(year - 1, year + 1))).tuples())
        for code, option, f, y, i, kind, value in query:
            if value is not None:
                figures[(code, option, f, y, i, kind)] = Decimal(value)
        return figures

    return _while_unchanged(_FIGURES, (unit_id, codes, year), generation, read, _FIGURES_SIZE,
                            weigh=lambda entry: len(entry[1]), most=_FIGURES_HELD)


def _while_unchanged(cache: OrderedDict, key: tuple, generation: int, make, size: int, **bound):
    """``make()``, kept per process and per database under ``key`` while ``generation`` (a change
    counter, core.generations) stays the same. The value is shared: whoever gets it only reads it.
    ``bound``: as for ``_remember``."""
    key = (id(db.obj), getattr(db.obj, "database", None), *key)
    with _FIGURES_LOCK:
        hit = cache.get(key)
    if hit is not None and hit[0] == generation:
        return hit[1]
    value = make()
    _remember(cache, key, (generation, value), size, **bound)
    return value


def _remember(cache: OrderedDict, key: tuple, entry: tuple, size: int, weigh=None, most: int = 0) -> None:
    """Keep ``entry`` as the newest of ``cache``, dropping the oldest past ``size`` entries, and past
    ``most`` in all by ``weigh(entry)`` when given (shared by threads). The newest always stays."""
    with _FIGURES_LOCK:
        cache[key] = entry
        cache.move_to_end(key)
        while len(cache) > size:
            cache.popitem(last=False)
        if weigh is not None:
            held = sum(weigh(e) for e in cache.values())
            while held > most and len(cache) > 1:
                held -= weigh(cache.popitem(last=False)[1])


_DERIVED: OrderedDict = OrderedDict()  # key → (anchors, value): see _derived
_DERIVED_SIZE = 256
_STATES: OrderedDict = OrderedDict()  # computed states (a few hundred KB each): fewer kept
_STATES_SIZE = 64


def _derived(key: tuple, anchors: tuple, make, cache: OrderedDict = _DERIVED, size: int = _DERIVED_SIZE):
    """``make()``, kept per process under ``key`` while the objects in ``anchors`` are the same ones
    (compared by identity; the entry holds them, so their ids are not reused). The value is shared:
    whoever gets it only reads it."""
    with _FIGURES_LOCK:
        hit = cache.get(key)
    if hit is not None and len(hit[0]) == len(anchors) and all(a is b for a, b in zip(hit[0], anchors)):
        return hit[1]
    value = make()
    _remember(cache, key, (anchors, value), size)
    return value


def _state_key(form: CompiledForm, index: int, inputs: dict, prefill: dict, prior: dict) -> tuple:
    # Inputs compared as numbers (5 and 5.000000 are one state), an empty cell as absent.
    return ("state", id(form), index, id(prefill), id(prior),
            frozenset((cell, value) for cell, value in inputs.items() if value is not None))


def computed_state(form: CompiledForm, index: int, inputs: dict, prefill: dict, prior: dict) -> tuple[dict, list]:
    """(every shown cell's value, the rules' messages) for these inputs, read-only, to compare with
    another state by ``canonical`` value: the state an autosave's page started from is most often
    the one the previous autosave left (``load_sheet`` keeps each state it computes), so it is not
    computed twice."""
    def make():
        values = form.compute(index, inputs, prefill, prior)
        return values, form.validate(index, values)

    return _derived(_state_key(form, index, inputs, prefill, prior), (form, prefill, prior), make, _STATES,
                    _STATES_SIZE)


_SUMMABLE = Prepared(lambda p: Indicator.select(Indicator.code).where(
    Indicator.code.in_(p.codes) & Indicator.valid_to.is_null() & (Indicator.aggregation == "sum")).tuples())
_SUMMED: OrderedDict = OrderedDict()  # (database, codes) → (catalogue generation, summed codes)
_SUMMED_SIZE = 256


def _summable(codes: tuple, generation: int) -> frozenset:
    """Which of ``codes`` add up over a year (aggregation "sum"), kept while the catalogue is unchanged."""
    return _while_unchanged(_SUMMED, (codes,), generation,
                            lambda: frozenset(code for code, in _SUMMABLE.run(codes=codes)), _SUMMED_SIZE)



def prefill_for(form: CompiledForm, report: Report) -> tuple[dict, dict]:
    """(pre-filled cells, year-so-far before this period per ``accumulate`` cell) from the figures
    store: one query for the unit's figures of last year, this year and next."""
    return _prefill(form, report)[:2]


def _prefill(form: CompiledForm, report: Report) -> tuple[dict, dict, int | None]:
    """``prefill_for``'s answer and the catalogue's change counter it read (None: none read)."""
    wanted = [r for r in form.rows if r.kind == "indicator" and r.indicator]
    if not wanted:
        return {}, {}, None
    freq, year, index = report.frequency, report.year, report.period_index
    codes = tuple(sorted({r.indicator for r in wanted}))
    # One primary-key read says whether the copies this process keeps are still good.
    figures_generation, catalogue_generation = generations.read(generations.figures_key(report.unit_id),
                                                                generations.CATALOGUE)
    figures = _unit_figures(report.unit_id, codes, year, figures_generation)
    summable = _summable(codes, catalogue_generation)
    # Derived from the shared figures alone: built again only when they (or the form) change.
    prefill, prior = _derived(("prefill", id(form), id(figures), freq, year, index, summable), (form, figures),
                              lambda: _prefill_cells(form, wanted, figures, summable, freq, year, index))
    return prefill, prior, catalogue_generation


_NAMES: OrderedDict = OrderedDict()  # (database, codes) → (catalogue generation, code → name)
_NAMES_SIZE = 256


def indicator_names(version: FormVersion, form: CompiledForm, catalogue: int | None = None) -> dict[str, str]:
    """code → the catalogue's current name, for every indicator ``version``'s rows name (``form``:
    its compiled form). Kept per process while the catalogue is unchanged: ``catalogue`` is its
    change counter when the caller read it already (``Sheet.catalogue``), else it is read here.
    The answer is shared: whoever gets it only reads it."""
    # The codes as current_indicators takes them, from the definition itself; a compiled form is
    # the one of a single definition text, so they are worked out once per form.
    codes = _derived(("indicator codes", id(form)), (form,), lambda: indicator_codes(version.data()))
    if not codes:
        return {}
    if catalogue is None:
        catalogue, = generations.read(generations.CATALOGUE)
    return _while_unchanged(_NAMES, ("names", codes), catalogue,
                            lambda: {code: i.name for code, i in current_of(codes).items()}, _NAMES_SIZE)


def _prefill_cells(form: CompiledForm, wanted: list, figures: dict, summable: frozenset, freq: str, year: int,
                   index: int) -> tuple[dict, dict]:
    periodic = freq in FREQUENCIES

    def one(row, f, y, i, kind):
        return figures.get((row.indicator, row.option, f, y, i, kind))

    def total(row, y, upto, kind):
        if row.indicator not in summable:
            return None
        parts = [one(row, freq, y, i, kind) for i in range(1, upto + 1)]
        parts = [p for p in parts if p is not None]
        return sum(parts, Decimal(0)) if parts else None

    prefill, prior = {}, {}
    count = periods_per_year(freq)
    for row in wanted:
        for col in form.columns:
            cell = (row.key, col.key)
            kind = col.value_kind
            if col.kind == "computed" and col.accumulate:
                prior[cell] = total(row, year, index - 1, kind) if periodic and index > 1 else None
                continue
            if col.kind != "prefill":
                continue
            p = col.period
            if p == "current":
                value = one(row, freq, year, index, kind)
            elif p == "previous" and periodic:
                value = one(row, freq, year, index - 1, kind) if index > 1 else one(row, freq, year - 1, count, kind)
            elif p == "same_last_year" and periodic:
                value = one(row, freq, year - 1, index, kind)
            elif p == "year_to_date" and periodic:
                value = total(row, year, index, kind)
            elif p == "year_to_date_last_year" and periodic:
                value = total(row, year - 1, index, kind)
            elif p == "year":
                value = one(row, "annual", year, 1, kind)
            elif p == "next_year":
                value = one(row, "annual", year + 1, 1, kind)
            else:
                value = None
            prefill[cell] = value
    return prefill, prior


# -- saving -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Conflict:
    """A cell (or section) someone else changed since the person started: both values kept."""

    where: str  # "row.col" or "section:<key>"
    yours: str
    theirs: str


class CellErrors(BaocaoError):
    """Input refused cell by cell: ``errors`` maps "row.col" (or "section:key") to an error."""

    key = "report_data.error.cells"

    def __init__(self, errors: dict[str, BaocaoError]):
        super().__init__(count=len(errors))
        self.errors = errors


class SaveConflict(BaocaoError):
    key = "report_data.error.conflict"

    def __init__(self, conflicts: list[Conflict], revision: int):
        super().__init__(count=len(conflicts))
        self.conflicts = conflicts
        self.revision = revision


@dataclass
class SaveResult:
    """What a save did. ``stored`` and ``sections``: the report's inputs and narrative at
    ``revision`` (what the screen shows after the save, and what signing that revision signs);
    ``errors``: the cells refused when the caller asked to keep the valid ones (``partial``)."""

    changed_cells: int = 0
    changed_sections: int = 0
    revision: int = 0
    errors: dict = field(default_factory=dict)
    stored: dict = field(default_factory=dict)
    sections: dict = field(default_factory=dict)
    # The report as the save left it (its revision and status) and its form version: the screen's
    # answer to an autosave builds on them without reading either again.
    report: Report | None = field(default=None, repr=False, compare=False)
    version: FormVersion | None = field(default=None, repr=False, compare=False)

    @property
    def changed(self) -> int:
        return self.changed_cells + self.changed_sections


def _cell_key(cell) -> str:
    return f"{cell[0]}.{cell[1]}"


def parse_cells(form: CompiledForm, index: int, cells: dict, lang: str = "vi") -> tuple[dict, dict]:
    """Parse new texts for input cells: (cell → (base Decimal|None|MISSING, new Decimal|None), errors).

    A new value is what a person gave: a text read the way ``lang`` writes numbers, or a number
    (``core.numbers.parse``). A base is what the program wrote itself (``canonical``), read the
    same in every language."""
    allowed = set(input_cells(form, index))
    parsed, errors = {}, {}
    for cell, (base, new) in cells.items():
        if cell not in allowed:
            errors[_cell_key(cell)] = BaocaoError("report_data.error.not_input", cell=_cell_key(cell))
            continue
        try:
            new_value = parse_number(new, lang)
        except CellInputError as exc:
            errors[_cell_key(cell)] = exc
            continue
        try:
            base_value = MISSING if base is MISSING else parse_canonical(base)
        except CellInputError:
            base_value = MISSING  # an unreadable base cannot prove a clash; the value is checked as typed
        parsed[cell] = (base_value, new_value)
    return parsed, errors


class _Missing:
    def __repr__(self):
        return "MISSING"


MISSING = _Missing()  # "no base given": the caller does not lock this cell


def save(access, report_id: int, cells: dict | None = None, sections: dict | None = None, *,
         expected_revision: int | None = None, source: str = "screen", lang: str = "vi",
         partial: bool = False) -> SaveResult:
    """Write values and sections of a report in one transaction.

    ``cells``: (row, col) → (base, new) texts or numbers; ``base`` is what the person saw when they
    started (MISSING: not compared). ``sections``: key → (base, text). ``expected_revision``: the
    API's whole-report lock. ``lang``: the language whose way of writing numbers typed texts
    follow (``core.numbers``). Raises CellErrors (nothing written), SaveConflict (nothing written,
    both values listed), Forbidden, or BaocaoError for a report that cannot be edited.
    ``partial`` (the entry screen): a cell or section that is refused does not hold back the others;
    the valid ones are written and the refused ones come back in ``SaveResult.errors``."""
    cells, sections = cells or {}, sections or {}
    report = get_report(access, report_id)
    _editable(access, report)
    version = _FORM_VERSION.first(version_id=report.form_version_id)
    if version is None:
        raise FormVersion.DoesNotExist(f"form version {report.form_version_id}")
    form = version.compiled()
    parsed, errors = parse_cells(form, report.period_index, cells, lang)
    outline = {s["key"] for s in form.outline}
    clean_sections = {}
    for key, (base, text) in sections.items():
        if key not in outline:
            errors[f"section:{key}"] = BaocaoError("report_data.error.unknown_section", key=key)
        elif len(text or "") > MAX_SECTION:
            errors[f"section:{key}"] = BaocaoError("report_data.error.section_too_long", limit=MAX_SECTION)
        else:
            clean_sections[key] = (base, (text or "").replace("\r\n", "\n"))
    if errors and not partial:
        raise CellErrors(errors)
    # Everything is read and decided before the write transaction, which then only checks that the
    # report is still at the revision read (compare-and-set) and writes: on SQLite the database is
    # locked for writing only that long. Another save in between: read and decide again.
    for attempt in range(SAVE_ATTEMPTS):
        # The first plan starts from the report just read (the write's compare-and-set catches
        # any save since); a later one reads it again.
        plan = _plan_save(report.id, parsed, clean_sections, expected_revision,
                          current=report if attempt == 0 else None)
        if not plan.writes and not plan.section_writes:
            return SaveResult(0, 0, plan.revision, errors, plan.stored, plan.sections, plan.report, version)
        try:
            _write(access, report, plan, source)
        except _RevisionMoved:
            continue
        return SaveResult(len(plan.writes), len(plan.section_writes), plan.revision + 1, errors,
                          plan.stored_after(), plan.sections_after(), report, version)
    raise SaveConflict([], Report.get_by_id(report.id).revision)  # saved by others all along: try again


SAVE_ATTEMPTS = 5


@dataclass
class _SavePlan:
    revision: int
    stored: dict
    sections: dict
    writes: dict
    section_writes: dict
    status: str = "draft"  # the report's status once written (a first save makes it a draft)
    report: Report | None = None  # the report as read for this plan

    def stored_after(self) -> dict:
        after = dict(self.stored)
        for cell, value in self.writes.items():
            if value is None:
                after.pop(cell, None)
            else:
                after[cell] = value
        return after

    def sections_after(self) -> dict:
        return {**self.sections, **self.section_writes}


class _RevisionMoved(Exception):
    """Another save committed between the reading and the writing: the transaction rolls back."""


_SECTIONS = Prepared(lambda p: ReportSection.select(ReportSection.key, ReportSection.text)
                    .where(ReportSection.report == p.report_id).tuples())


def _plan_save(report_id: int, parsed: dict, sections: dict, expected_revision: int | None, *,
               current: Report | None = None) -> _SavePlan:
    """Read the report as it is now (``current``: as just read) and decide what to write; raises on
    a clash or a status that no longer allows editing (nothing is locked: ``_write`` checks the
    revision read)."""
    current = current or Report.get_by_id(report_id)
    if current.status not in EDITABLE:
        raise BaocaoError("report_data.error.not_editable", status=current.status)
    if expected_revision is not None and expected_revision != current.revision:
        raise SaveConflict([], current.revision)
    stored = stored_values(report_id)
    conflicts, writes = [], {}
    for cell, (base, new) in parsed.items():
        now_value = stored.get(cell)
        if canonical(new) == canonical(now_value):
            continue
        if base is not MISSING and canonical(base) != canonical(now_value):
            conflicts.append(Conflict(_cell_key(cell), canonical(new), canonical(now_value)))
            continue
        writes[cell] = new
    saved_sections = dict(_SECTIONS.run(report_id=report_id))
    section_writes = {}
    for key, (base, text) in sections.items():
        now_text = saved_sections.get(key, "")
        if text == now_text:
            continue
        if base is not MISSING and base is not None and base.replace("\r\n", "\n") != now_text:
            conflicts.append(Conflict(f"section:{key}", text, now_text))
            continue
        section_writes[key] = text
    if conflicts:
        raise SaveConflict(conflicts, current.revision)
    return _SavePlan(current.revision, stored, saved_sections, writes, section_writes,
                     "draft" if current.status == "not_started" else current.status, current)


def _write(access, report: Report, plan: _SavePlan, source: str) -> None:
    """The write transaction of a save: the revision moves first (only from the one read, and
    only while the report may be edited), then the values, the sections and the audit entry."""
    actor = access.actor
    actor_id = getattr(actor, "id", None)
    now = utcnow()
    with transaction():
        if _MOVE_REVISION.execute(report=report.id, revision=plan.revision, now=now, actor=actor_id,
                                  status=plan.status) != 1:
            raise _RevisionMoved()
        gone = [cell for cell, value in plan.writes.items() if value is None]
        for row, col in gone:
            ReportValue.delete().where((ReportValue.report == report.id) & (ReportValue.row == row)
                                       & (ReportValue.column == col)).execute()
        cells = [(row, col, value) for (row, col), value in plan.writes.items() if value is not None]
        if cells:
            rows, columns, values = zip(*cells)
            # A few cells an autosave, compiled once per count; a whole grid at once built as it comes.
            put = _PUT_VALUES if len(cells) <= _PUT_COMPILED_UP_TO else Prepared(_put_values)
            put.execute(report=report.id, rows=rows, columns=columns, values=values, now=now, actor=actor_id)
        for key, text in plan.section_writes.items():
            (ReportSection.insert(report=report.id, key=key, text=text, updated_at=now, updated_by=actor_id)
             .on_conflict(conflict_target=[ReportSection.report, ReportSection.key],
                          update={ReportSection.text: text, ReportSection.updated_at: now,
                                  ReportSection.updated_by: actor_id})
             .execute())
        audit.record("report.saved", actor=actor, unit=report.unit_id, object_type="report", object_id=report.id,
                     details={"cells": len(plan.writes), "sections": len(plan.section_writes), "source": source,
                              "revision": plan.revision + 1})
        events.announce(report, "saved", actor=actor, at=now)
    # The report as written, for the caller's answer (SaveResult.report): not read again.
    report.revision, report.status, report.updated_at, report.updated_by_id = (
        plan.revision + 1, plan.status, now, actor_id)


# The save's two hot writes, compiled once: peewee building their SQL was ~7 % of a request's processor
# time. Values go to the driver as given (Prepared): ids, text, Decimal and naive UTC datetimes, as
# the fields would store them.
_MOVE_REVISION = Prepared(lambda p: Report.update(revision=Report.revision + 1, updated_at=p.now,
                                                  updated_by=p.actor, status=p.status)
                          .where((Report.id == p.report) & (Report.revision == p.revision)
                                 & Report.status.in_(EDITABLE)))


def _put_values(p):
    return (ReportValue.insert_many([{ReportValue.report: p.report, ReportValue.row: p.rows[i],
                                      ReportValue.column: p.columns[i], ReportValue.value: p.values[i],
                                      ReportValue.updated_at: p.now, ReportValue.updated_by: p.actor}
                                     for i in range(len(p.rows))])
            .on_conflict(conflict_target=[ReportValue.report, ReportValue.row, ReportValue.column],
                         update={ReportValue.value: _excluded("value"),
                                 ReportValue.updated_at: _excluded("updated_at"),
                                 ReportValue.updated_by: _excluded("updated_by_id")})
            .as_rowcount())


_PUT_VALUES = Prepared(_put_values)
_PUT_COMPILED_UP_TO = 32  # cells: one compiled text per count, so the kept texts stay few and small


def _excluded(column: str):
    from peewee import SQL

    return SQL(f'EXCLUDED."{column}"')


# -- comments ---------------------------------------------------------------------------------

def add_comment(access, report_id: int, row: str, column: str, text: str) -> ReportComment:
    """A comment on one cell, by whoever fills or receives the report."""
    report = get_report(access, report_id)
    if report.form_version_id is None:
        raise BaocaoError("report_data.error.no_form")
    form = FormVersion.get_by_id(report.form_version_id).compiled()
    if row not in form.row_index or column not in form.column_index:
        raise BaocaoError("report_data.error.unknown_cell", cell=f"{row}.{column}")
    text = (text or "").strip()
    if not text:
        raise BaocaoError("report_data.error.comment_empty")
    if len(text) > MAX_COMMENT:
        raise BaocaoError("report_data.error.comment_too_long", limit=MAX_COMMENT)
    with transaction():
        comment = ReportComment.create(report=report.id, row=row, column=column, author=access.actor, text=text)
        audit.record("report.comment_added", actor=access.actor, unit=report.unit_id, object_type="report",
                     object_id=report.id, details={"cell": f"{row}.{column}"})
    return comment


def comments_of(report_id: int, row: str, column: str) -> list[ReportComment]:
    return list(ReportComment.select(ReportComment, User).join(User, JOIN.LEFT_OUTER, on=(ReportComment.author == User.id))
                .where((ReportComment.report == report_id) & (ReportComment.row == row)
                       & (ReportComment.column == column)).order_by(ReportComment.created_at))


# -- attachments ------------------------------------------------------------------------------

def attachment_path(root: Path, stored_name: str) -> Path:
    return root / "attachments" / stored_name[:2] / stored_name


def add_attachment(access, report_id: int, filename: str, data: bytes, *, settings) -> ReportAttachment:
    """Store an annex under a generated name outside the web root, with its SHA-256. Refused:
    empty, too big, a type not on the list, content that does not match its extension."""
    report = get_report(access, report_id)
    _editable(access, report)
    name = os.path.basename((filename or "").replace("\\", "/")).strip()[:255]
    ext = os.path.splitext(name)[1].lower()
    limit = settings.attachment_max_mb * 1024 * 1024
    if not data:
        raise BaocaoError("report_data.error.file_empty")
    if len(data) > limit:
        raise BaocaoError("report_data.error.file_too_big", limit=settings.attachment_max_mb)
    if ext not in ATTACHMENT_TYPES:
        raise BaocaoError("report_data.error.file_type", allowed=", ".join(sorted(ATTACHMENT_TYPES)))
    content_type, magics = ATTACHMENT_TYPES[ext]
    if not any(data.startswith(m) for m in magics):
        raise BaocaoError("report_data.error.file_content", ext=ext)
    if ReportAttachment.select().where(ReportAttachment.report == report.id).count() >= MAX_ATTACHMENTS:
        raise BaocaoError("report_data.error.too_many_files", limit=MAX_ATTACHMENTS)
    digest = hashlib.sha256(data).hexdigest()
    stored_name = secrets.token_hex(16)
    path = attachment_path(settings.files_root(), stored_name)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_suffix(".part")
    temp.write_bytes(data)
    os.replace(temp, path)
    try:
        with transaction():
            # Counted again under a lock, so parallel uploads cannot pass the cap together: on
            # PostgreSQL the report's row is locked until commit; SQLite's transactions begin
            # IMMEDIATE (core.db) and so take turns already.
            if not is_sqlite():
                list(Report.select(Report.id).where(Report.id == report.id).for_update())
            if ReportAttachment.select().where(ReportAttachment.report == report.id).count() >= MAX_ATTACHMENTS:
                raise BaocaoError("report_data.error.too_many_files", limit=MAX_ATTACHMENTS)
            attachment = ReportAttachment.create(report=report.id, name=name, stored_name=stored_name, sha256=digest,
                                                 size=len(data), content_type=content_type,
                                                 uploaded_by=access.actor)
            audit.record("report.attachment_added", actor=access.actor, unit=report.unit_id, object_type="report",
                         object_id=report.id, details={"name": name, "sha256": digest, "size": len(data)})
    except Exception:
        path.unlink(missing_ok=True)  # no row, no file: nothing half-stored
        raise
    return attachment


def get_attachment(access, report_id: int, attachment_id: int, *, settings) -> tuple[ReportAttachment, bytes]:
    """The annex and its bytes, checked against the SHA-256 recorded when it was stored."""
    report = get_report(access, report_id)
    attachment = ReportAttachment.get_or_none((ReportAttachment.id == attachment_id)
                                              & (ReportAttachment.report == report.id))
    if attachment is None:
        raise NotFound()
    path = attachment_path(settings.files_root(), attachment.stored_name)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise BaocaoError("report_data.error.file_missing") from None
    if hashlib.sha256(data).hexdigest() != attachment.sha256:
        raise BaocaoError("report_data.error.file_changed")
    return attachment, data


def delete_attachment(access, report_id: int, attachment_id: int, *, settings) -> None:
    report = get_report(access, report_id)
    _editable(access, report)
    attachment = ReportAttachment.get_or_none((ReportAttachment.id == attachment_id)
                                              & (ReportAttachment.report == report.id))
    if attachment is None:
        raise NotFound()
    with transaction():
        attachment.delete_instance()
        audit.record("report.attachment_deleted", actor=access.actor, unit=report.unit_id, object_type="report",
                     object_id=report.id, details={"name": attachment.name, "sha256": attachment.sha256})
    attachment_path(settings.files_root(), attachment.stored_name).unlink(missing_ok=True)
