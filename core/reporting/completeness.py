"""Completeness and timeliness of reporting ("Tình hình gửi báo cáo"): for a regime and a period,
or a regime over a year, how many reports each unit was expected to send, how many came on time,
late or not at all, how many were accepted or returned, and the reporting rates.

What a report counts as, read from ``core.reporting.opening.Report`` as it stands ``today``
(the same words the receiver's queue, ``core.reporting.queue``, uses for one report):

- expected: every unit report of the regime's code (every version) for the period. Consolidated
  reports are left out: a receiving unit opens its own when it starts consolidating, so nobody
  was ever "expected" to have one, and counting it would skew the rates of its level;
- submitted (Đã gửi): in the receiver's hands, waiting for review or accepted. On time or late as
  its latest submission was judged (``submitted_late``, set by the workflow against the deadline
  in the instance's time zone), as the queue shows it;
- accepted: part of the submitted ones;
- returned (Bị trả lại): sent back to the unit, which must send it again: not counted as submitted;
- not submitted (Chưa gửi): never sent (not started, or a draft);
- overdue (Quá hạn): still to be sent — not submitted or returned — the day after its deadline
  (the queue's "late" rule for a report not sent). These are the units a reminder goes to.

So expected = on time + late + returned + not submitted; the reporting rate is submitted /
expected, the timeliness rate on time / expected.

Who sees what: the reports one receives (``core.reporting.queue``'s rule: the receiver lies where
one holds ``core.report.receive``), and every report of the units where one holds
``core.unit.view`` (the unit and its subtree); a system administrator sees all. A regime or a unit
outside that answers ``NotFound``, as if it did not exist.

Every figure is counted in the database with grouped queries: a page costs the same handful of
queries for 4 units or 4,200 (the rights, the choices, the counts by level, one page of rows). Only
one unit's own reports (a few hundred at most) are counted from its rows.
"""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass, field, fields
from decimal import ROUND_HALF_UP, Decimal
from functools import reduce
from operator import or_

from peewee import SQL, Case, fn

from core import clock
from core.errors import NotFound
from core.i18n import fold, format_date, format_datetime
from core.models import UNIT_KINDS, Unit
from core.regimes.periods import FREQUENCIES, Window
from core.regimes.regimes import Regime
from core.reporting import queue as rq
from core.reporting.opening import Report, units_with
from core.safe_input import parse_int

UNIT_VIEW = "core.unit.view"
KIND = "unit"  # Report.kind of a unit's own report (not a consolidated one)
PAGE_SIZE = 100
SENT = ("submitted", "accepted")
NOT_SENT = ("not_started", "draft")
TO_SEND = NOT_SENT + ("returned",)
# The views one can filter the units by: each a part of the expected reports (they overlap:
# an accepted report is also on time or late; an overdue one is not submitted or returned).
STATES = ("on_time", "late", "not_submitted", "overdue", "accepted", "returned")
STATE_LABELS = {"on_time": "completeness.state.on_time", "late": "completeness.state.late",
                "not_submitted": "completeness.state.not_submitted", "overdue": "completeness.state.overdue",
                "accepted": "completeness.state.accepted", "returned": "completeness.state.returned"}
SORTS = ("unit", "code", "level", "status", "submitted", "deadline")
COUNT_FIELDS = ("expected",) + STATES


# -- the numbers -------------------------------------------------------------------------------

def _percent(part: int, whole: int) -> Decimal | None:
    if not whole:
        return None
    return (Decimal(part) * 100 / Decimal(whole)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


@dataclass
class Counts:
    """How many reports were expected and what became of them (see the module's words)."""

    expected: int = 0
    on_time: int = 0
    late: int = 0
    not_submitted: int = 0
    overdue: int = 0
    accepted: int = 0
    returned: int = 0

    @property
    def submitted(self) -> int:
        return self.on_time + self.late

    @property
    def submitted_rate(self) -> Decimal | None:
        """Reports in the receiver's hands per 100 expected (one decimal); None when none expected."""
        return _percent(self.submitted, self.expected)

    @property
    def on_time_rate(self) -> Decimal | None:
        return _percent(self.on_time, self.expected)

    @property
    def accepted_rate(self) -> Decimal | None:
        return _percent(self.accepted, self.expected)

    def of(self, state: str) -> int:
        """The reports in one of ``STATES`` ("" for every expected one)."""
        return getattr(self, state) if state in STATES else self.expected

    def add(self, other: "Counts") -> "Counts":
        return Counts(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    def as_dict(self) -> dict:
        """Counts and rates for the JSON API: rates as numbers (percent, one decimal) or null."""
        data = {name: getattr(self, name) for name in COUNT_FIELDS}
        data["submitted"] = self.submitted
        rates = {"submitted": self.submitted_rate, "on_time": self.on_time_rate, "accepted": self.accepted_rate}
        return {"counts": data, "rates": {k: (float(v) if v is not None else None) for k, v in rates.items()}}


def _when(condition):
    return fn.SUM(Case(None, [(condition, 1)], 0))


def _tally(today: dt.date) -> list:
    """The count columns of a grouped query over ``Report``, in ``COUNT_FIELDS`` order."""
    return [fn.COUNT(Report.id).alias("expected")] + [_when(_state_condition(state, today)).alias(state)
                                                      for state in COUNT_FIELDS[1:]]


def _counts(row) -> Counts:
    """A Counts from the ``_tally`` columns at the start of a row."""
    return Counts(*(int(v or 0) for v in row[:len(COUNT_FIELDS)]))


def state_of(status: str, submitted_late: bool) -> str:
    """The one word a unit's row shows: accepted, on_time / late (sent, waiting for review),
    returned or not_submitted — the Python twin of ``_tally``."""
    if status == "accepted":
        return "accepted"
    if status == "submitted":
        return "late" if submitted_late else "on_time"
    if status == "returned":
        return "returned"
    return "not_submitted"


def is_overdue(status: str, deadline: dt.date, today: dt.date) -> bool:
    return status in TO_SEND and deadline < today


def _state_condition(state: str, today: dt.date):
    """One of ``STATES`` as a condition on ``Report`` (what ``state_of`` and ``is_overdue`` say of a row)."""
    sent = Report.status.in_(list(SENT))
    return {"on_time": sent & (Report.submitted_late == False),  # noqa: E712
            "late": sent & (Report.submitted_late == True),  # noqa: E712
            "not_submitted": Report.status.in_(list(NOT_SENT)),
            "overdue": Report.status.in_(list(TO_SEND)) & (Report.deadline < today),
            "accepted": Report.status == "accepted",
            "returned": Report.status == "returned"}[state]


# -- who sees what -----------------------------------------------------------------------------

def scope(access):
    """The reports ``access`` may count, as a condition on ``Report``: None for every report (a
    system administrator), False for none. The reports received (the queue's own rule:
    ``core.reporting.queue.receiving_units``) and those of the units in the subtrees where
    ``core.unit.view`` is held (``core.reporting.opening.units_with``, as everywhere)."""
    viewed = units_with(access, UNIT_VIEW)
    received = rq.receiving_units(access)
    if viewed is None or received is None:
        return None  # a system administrator holds both everywhere
    conditions = [column.in_(_id_list(ids)) for column, ids in ((Report.receiver, received), (Report.unit, viewed))
                  if ids]
    if not conditions:
        return False
    return reduce(or_, conditions)


def _id_list(ids) -> SQL:
    """Unit ids written into the SQL as a literal list: a province's 4,200 units as bound parameters
    cost more to build and send than the query itself (and each query repeats them). They are
    integers read from the database, so nothing typed by a person ever reaches the SQL this way."""
    return SQL("(" + ",".join(str(int(i)) for i in sorted(ids)) + ")")


def _where(*conditions):
    """AND of the conditions that are not None (None: no restriction)."""
    kept = [c for c in conditions if c is not None]
    return reduce(lambda a, b: a & b, kept) if kept else (Report.id.is_null(False))


def _of_code(code: str):
    return Report.regime.in_(Regime.select(Regime.id).where(Regime.code == code))


# -- periods -----------------------------------------------------------------------------------

_SHORT = {"monthly": ("Tháng {i}", "{m}"), "quarterly": ("Quý {r}", "Q{i}"),
          "half_year": ("6 tháng {h}", "H{i}"), "nine_months": ("9 tháng", "9M"), "annual": ("Cả năm", "Year")}
_ROMAN = ("I", "II", "III", "IV")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True)
class Period:
    """One period of a regime's code, as the reports opened for it say."""

    start: dt.date
    end: dt.date
    frequency: str
    year: int
    index: int
    stored_label: str  # the Vietnamese label written when the period opened
    first_deadline: dt.date  # the deadlines of its levels: the earliest and the latest
    last_deadline: dt.date

    @property
    def key(self) -> str:
        return f"{self.start.isoformat()}/{self.end.isoformat()}"

    def label(self, lang: str = "vi") -> str:
        if self.frequency in FREQUENCIES and self.index:
            return Window(self.frequency, self.year, self.index, self.start, self.end).label(lang)
        return self.stored_label or f"{self.start:%d/%m/%Y} – {self.end:%d/%m/%Y}"

    def short_label(self, lang: str = "vi") -> str:
        """A column heading of the year view: "Tháng 3", "Quý II"; a request's own label otherwise."""
        shape = _SHORT.get(self.frequency)
        if shape is None or not self.index:
            return self.label(lang)
        i = self.index
        text = shape[0] if lang != "en" else shape[1]
        return text.format(i=i, r=_ROMAN[(i - 1) % 4], h="đầu" if i == 1 else "cuối", m=_MONTHS[(i - 1) % 12])

    def due(self, today: dt.date) -> bool:
        """Some unit's deadline for it has passed."""
        return self.first_deadline < today


def parse_period(text: str | None) -> tuple[dt.date, dt.date] | None:
    """"start/end" (ISO dates) → (start, end); None when it is not that."""
    try:
        start, end = (dt.date.fromisoformat(p) for p in str(text or "").strip().split("/", 1))
    except ValueError:
        return None
    return (start, end) if start <= end else None


def _periods(where) -> list[Period]:
    query = (Report.select(Report.period_start, Report.period_end, fn.MIN(Report.frequency),
                           fn.MIN(Report.year), fn.MIN(Report.period_index), fn.MIN(Report.label),
                           fn.MIN(Report.deadline), fn.MAX(Report.deadline))
             .where(where).group_by(Report.period_start, Report.period_end)
             .order_by(Report.period_start.desc(), Report.period_end.desc()))
    return [Period(*row) for row in query.tuples()]


def default_period(periods: list[Period], today: dt.date) -> Period | None:
    """The latest period whose deadline has passed; the latest one when none has yet."""
    return next((p for p in periods if p.due(today)), periods[0] if periods else None)


# -- regimes -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class RegimeInfo:
    code: str
    name: str  # the newest version's
    frequency: str | None


def _regimes(where) -> list[RegimeInfo]:
    """The regime codes with unit reports matching ``where``, named by their newest version."""
    query = (Regime.select(Regime.code, Regime.name, Regime.frequency, Regime.version)
             .where(Regime.id.in_(Report.select(Report.regime).where(where)))
             .order_by(Regime.code, Regime.version.desc()))
    found: dict[str, RegimeInfo] = {}
    for code, name, frequency, _ in query.tuples():
        found.setdefault(code, RegimeInfo(code, name, frequency))
    return sorted(found.values(), key=lambda r: (fold(r.name), r.code))


def regime_choices(access) -> list[RegimeInfo]:
    """The regimes whose reports ``access`` may count."""
    seen = scope(access)
    if seen is False:
        return []
    return _regimes(_where(Report.kind == KIND, seen))


@dataclass
class RegimeLine:
    """One regime in the overview: its latest due period and the numbers of it."""

    regime: RegimeInfo
    period: Period
    counts: Counts


def overview(access, *, today: dt.date | None = None) -> list[RegimeLine]:
    """Every regime ``access`` may count, with its default period (``default_period``) and the
    numbers of it: the reporting rate by regime. Three queries whatever the number of regimes."""
    today = today or clock.today()
    seen = scope(access)
    if seen is False:
        return []
    base = _where(Report.kind == KIND, seen)
    regimes = {r.code: r for r in _regimes(base)}
    if not regimes:
        return []
    numbers = _default_periods_counted(base, today)
    lines = [RegimeLine(regimes[code], period, counts) for code, (period, counts) in numbers.items()
             if code in regimes]
    return sorted(lines, key=lambda line: (fold(line.regime.name), line.regime.code))


def regime_period_counts(codes, *, today: dt.date | None = None) -> dict[str, tuple[Period, Counts]]:
    """Regime code → (its default period, the numbers of it): the latest period whose deadline has
    passed, else the latest opened (``default_period``, what ``/completeness?regime=`` shows first),
    counting every unit report of the code whoever may see it — the caller decides who reads them
    (a plugin's page: ``core.api.regime_period_counts``). A code with no report opened is left out.
    Two queries whatever the number of codes and units."""
    codes = sorted({str(c) for c in codes if c})
    if not codes:
        return {}
    base = _where(Report.kind == KIND, Report.regime.in_(Regime.select(Regime.id).where(Regime.code.in_(codes))))
    return _default_periods_counted(base, today or clock.today())


def _default_periods_counted(base, today: dt.date) -> dict[str, tuple[Period, Counts]]:
    """For the unit reports matching ``base``: each regime code's default period and its counts."""
    by_code: dict[str, list[Period]] = {}
    query = (Report.select(Regime.code, Report.period_start, Report.period_end, fn.MIN(Report.frequency),
                           fn.MIN(Report.year), fn.MIN(Report.period_index), fn.MIN(Report.label),
                           fn.MIN(Report.deadline), fn.MAX(Report.deadline))
             .join(Regime, on=(Report.regime == Regime.id)).where(base)
             .group_by(Regime.code, Report.period_start, Report.period_end)
             .order_by(Regime.code, Report.period_start.desc(), Report.period_end.desc()))
    for code, *rest in query.tuples():
        by_code.setdefault(code, []).append(Period(*rest))
    chosen = {code: default_period(periods, today) for code, periods in by_code.items()}
    if not chosen:
        return {}
    wanted = reduce(or_, [(Regime.code == code) & (Report.period_start == p.start) & (Report.period_end == p.end)
                          for code, p in chosen.items()])
    counts = {row[0]: _counts(row[1:]) for row in
              Report.select(Regime.code, *_tally(today)).join(Regime, on=(Report.regime == Regime.id))
              .where(base & wanted).group_by(Regime.code).tuples()}
    return {code: (period, counts.get(code, Counts())) for code, period in chosen.items()}


# -- a regime and a period: the units ----------------------------------------------------------

@dataclass
class Filters:
    """What the unit table shows: read from a query string, written back into links."""

    regime: str = ""  # regime code
    period: str = ""  # "start/end"
    status: str = ""  # one of STATES, or "" for every unit
    level: str = ""  # a unit kind
    q: str = ""  # words of the unit's name or code, diacritics ignored
    sort: str = "unit"  # one of SORTS, "-" before it for the other way
    page: int = 1
    year: int | None = None  # the year view's year

    @classmethod
    def from_params(cls, params) -> "Filters":
        def text(name, limit):
            return " ".join(str(params.get(name, "") or "").split())[:limit]

        status, level, sort = text("status", 20), text("level", 20), text("sort", 20) or "unit"
        return cls(regime=text("regime", 40), period=text("period", 25),
                   status=status if status in STATES else "", level=level if level in UNIT_KINDS else "",
                   q=text("q", 100), sort=sort if sort.lstrip("-") in SORTS else "unit",
                   page=parse_int(text("page", 10), maximum=99_999) or 1,
                   year=parse_int(text("year", 10), minimum=1990, maximum=2100))

    def params(self, **changes) -> dict:
        """The query parameters of this view with ``changes``, the defaults left out."""
        values = {"regime": self.regime, "period": self.period, "status": self.status, "level": self.level,
                  "q": self.q, "sort": self.sort if self.sort != "unit" else "",
                  "page": str(self.page) if self.page > 1 else "", "year": str(self.year or "")}
        values.update({k: "" if v is None else str(v) for k, v in changes.items()})
        return {k: v for k, v in values.items() if v}


@dataclass
class UnitRow:
    """One unit's report of the period."""

    report_id: int
    unit_id: int
    unit_code: str
    unit_name: str
    unit_kind: str
    status: str
    deadline: dt.date
    submitted_at: dt.datetime | None
    submitted_late: bool
    state: str  # state_of: the word shown
    overdue: bool

    @property
    def timeliness(self) -> str | None:
        """on_time / late for a report that was sent at least once (returned ones too), else None."""
        if self.submitted_at is None:
            return None
        return "late" if self.submitted_late else "on_time"


@dataclass
class PeriodView:
    regime: RegimeInfo
    period: Period
    periods: list[Period]
    totals: Counts  # every unit of the period the person may see
    levels: list[tuple[str, Counts]]  # by unit kind, in UNIT_KINDS order
    shown: Counts  # the units the level and name filters leave (the status tabs count these)
    rows: list[UnitRow]
    total: int  # rows matching every filter
    filters: Filters
    today: dt.date
    regimes: list[RegimeInfo] = field(default_factory=list)  # every regime the person may choose

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // PAGE_SIZE))


def _sorting(sort: str, today: dt.date) -> list:
    """ORDER BY for ``sort`` (one of SORTS, "-" before it for descending); the unit's name breaks ties.
    By status the most urgent first: overdue, not sent, returned, late, on time, accepted."""
    descending = sort.startswith("-")
    key = sort.lstrip("-")
    if key == "submitted":  # the reports never sent stay last either way
        moment = Report.submitted_at.desc() if descending else Report.submitted_at.asc()
        return [Report.submitted_at.is_null(), moment, Unit.name, Unit.code, Report.id]
    rank = Case(None, [(Report.status.in_(list(NOT_SENT)) & (Report.deadline < today), 0),
                       (Report.status.in_(list(NOT_SENT)), 1), (Report.status == "returned", 2),
                       ((Report.status == "submitted") & (Report.submitted_late == True), 3),  # noqa: E712
                       (Report.status == "submitted", 4)], 5)
    level = Case(None, [(Unit.kind == k, i) for i, k in enumerate(UNIT_KINDS)], len(UNIT_KINDS))
    column = {"unit": Unit.name, "code": Unit.code, "status": rank, "level": level, "deadline": Report.deadline}[key]
    return [column.desc() if descending else column.asc(), Unit.name, Unit.code, Report.id]


def _matching_units(where, words: list[str]) -> list[int]:
    """Units of ``where``'s reports whose name or code holds every word (diacritics ignored)."""
    query = Unit.select(Unit.id, Unit.name, Unit.code).where(Unit.id.in_(Report.select(Report.unit).where(where)))
    return [uid for uid, name, code in query.tuples()
            if all(w in fold(name) or w in code.lower() for w in words)]


def _chosen_regime(access, code: str) -> tuple[RegimeInfo, object, list[RegimeInfo]]:
    """The regime of ``code``, the condition on its reports ``access`` may count, and every regime
    to choose from (one query for both); ``NotFound`` when the regime is out of sight."""
    seen = scope(access)
    if seen is False or not code:
        raise NotFound()
    unit_reports = _where(Report.kind == KIND, seen)
    choices = _regimes(unit_reports)
    regime = next((r for r in choices if r.code == code), None)
    if regime is None:
        raise NotFound()  # a regime one may not see does not exist for them
    return regime, unit_reports & _of_code(code), choices


def _window(filters: Filters, limit: int | None, offset: int | None) -> tuple[int | None, int]:
    if limit is None:
        return None, 0
    return limit, (filters.page - 1) * limit if offset is None else offset


def period_view(access, filters: Filters, *, today: dt.date | None = None, limit: int | None = PAGE_SIZE,
                offset: int | None = None) -> PeriodView:
    """The units of a regime (``filters.regime``, a code) for a period (``filters.period``; the
    default period when empty): the totals, the counts by level, and ``limit`` unit rows from
    ``offset`` (by default ``filters.page``'s; every row with ``limit=None``: the Excel file).
    ``NotFound`` for a regime or a period outside what ``access`` may see."""
    today = today or clock.today()
    regime, base, choices = _chosen_regime(access, filters.regime)
    periods = _periods(base)
    if filters.period:
        wanted = parse_period(filters.period)
        period = next((p for p in periods if wanted and (p.start, p.end) == wanted), None)
        if period is None:
            raise NotFound()
    else:
        period = default_period(periods, today)
    base = base & (Report.period_start == period.start) & (Report.period_end == period.end)

    by_level = {kind: _counts(row) for kind, *row in
                Report.select(Unit.kind, *_tally(today)).join(Unit, on=(Report.unit == Unit.id))
                .where(base).group_by(Unit.kind).tuples()}
    levels = [(k, by_level[k]) for k in UNIT_KINDS if k in by_level]
    totals = reduce(Counts.add, by_level.values(), Counts())

    narrowed = base
    if filters.level:
        narrowed &= Report.unit.in_(Unit.select(Unit.id).where(Unit.kind == filters.level))
    if filters.q:
        ids = _matching_units(base, fold(filters.q).split())
        narrowed &= Report.unit.in_(ids) if ids else Report.id.is_null()  # no unit: no row
        row = Report.select(*_tally(today)).where(narrowed).tuples().first()
        shown = _counts(row) if row else Counts()
    else:
        shown = by_level.get(filters.level, Counts()) if filters.level else totals
    where = narrowed & _state_condition(filters.status, today) if filters.status else narrowed
    total = shown.of(filters.status)

    query = (Report.select(Report.id, Unit.id, Unit.code, Unit.name, Unit.kind, Report.status, Report.deadline,
                           Report.submitted_at, Report.submitted_late)
             .join(Unit, on=(Report.unit == Unit.id)).where(where).order_by(*_sorting(filters.sort, today)))
    limit, offset = _window(filters, limit, offset)
    if limit is not None:
        query = query.limit(limit).offset(offset)
    rows = [UnitRow(rid, uid, code, name, kind, status, deadline, submitted_at, bool(late),
                    state_of(status, bool(late)), is_overdue(status, deadline, today))
            for rid, uid, code, name, kind, status, deadline, submitted_at, late in query.tuples()]
    return PeriodView(regime, period, periods, totals, levels, shown, rows, total, filters, today, choices)


def overdue_units(access, regime_code: str, period: str, *, today: dt.date | None = None) -> list[UnitRow]:
    """The units of a regime and period still to send their report after its deadline (not sent,
    or returned): whom a reminder is for."""
    view = period_view(access, Filters(regime=regime_code, period=period, status="overdue"), today=today,
                       limit=None)
    return view.rows


# -- a regime over a year ----------------------------------------------------------------------

@dataclass
class YearCell:
    report_id: int
    state: str
    overdue: bool
    submitted_at: dt.datetime | None
    deadline: dt.date


@dataclass
class YearRow:
    unit_id: int
    unit_code: str
    unit_name: str
    unit_kind: str
    counts: Counts
    cells: dict[str, YearCell]  # period key → its report


@dataclass
class YearView:
    regime: RegimeInfo
    year: int
    years: list[int]
    periods: list[tuple[Period, Counts]]  # oldest first, each with its numbers
    totals: Counts
    rows: list[YearRow]
    total: int  # units matching the filters
    filters: Filters
    today: dt.date
    regimes: list[RegimeInfo] = field(default_factory=list)  # every regime the person may choose

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // PAGE_SIZE))


def year_view(access, filters: Filters, *, today: dt.date | None = None, limit: int | None = PAGE_SIZE,
              offset: int | None = None) -> YearView:
    """A regime's periods of one reporting year (``filters.year``; the default period's year when
    not given) as columns and the units as rows, each with its numbers over the year: the rate by
    unit. Per period and in total too. ``NotFound`` outside what ``access`` may see."""
    today = today or clock.today()
    regime, base, choices = _chosen_regime(access, filters.regime)
    every = _periods(base)
    years = sorted({p.year for p in every}, reverse=True)
    year = filters.year if filters.year is not None else default_period(every, today).year
    if year not in years:
        raise NotFound()
    base = base & (Report.year == year)

    periods = []
    query = (Report.select(Report.period_start, Report.period_end, fn.MIN(Report.frequency), fn.MIN(Report.year),
                           fn.MIN(Report.period_index), fn.MIN(Report.label), fn.MIN(Report.deadline),
                           fn.MAX(Report.deadline), *_tally(today))
             .where(base).group_by(Report.period_start, Report.period_end)
             .order_by(Report.period_start, Report.period_end))
    for row in query.tuples():
        periods.append((Period(*row[:8]), _counts(row[8:])))
    totals = reduce(Counts.add, (c for _, c in periods), Counts())

    narrowed = base
    if filters.level:
        narrowed &= Report.unit.in_(Unit.select(Unit.id).where(Unit.kind == filters.level))
    if filters.q:
        ids = _matching_units(base, fold(filters.q).split())
        narrowed &= Report.unit.in_(ids) if ids else Report.id.is_null()
    total = Report.select(fn.COUNT(fn.DISTINCT(Report.unit))).where(narrowed).scalar() or 0
    units = (Report.select(Unit.id, Unit.code, Unit.name, Unit.kind, *_tally(today))
             .join(Unit, on=(Report.unit == Unit.id)).where(narrowed)
             .group_by(Unit.id, Unit.code, Unit.name, Unit.kind).order_by(Unit.name, Unit.code, Unit.id))
    limit, offset = _window(filters, limit, offset)
    if limit is not None:
        units = units.limit(limit).offset(offset)
    rows = {uid: YearRow(uid, code, name, kind, _counts(rest), {}) for uid, code, name, kind, *rest in units.tuples()}
    if rows:
        cells = (Report.select(Report.id, Report.unit, Report.period_start, Report.period_end, Report.status,
                               Report.submitted_late, Report.deadline, Report.submitted_at)
                 .where(base & Report.unit.in_(list(rows))))
        for rid, uid, start, end, status, late, deadline, submitted_at in cells.tuples():
            rows[uid].cells[f"{start.isoformat()}/{end.isoformat()}"] = YearCell(
                rid, state_of(status, bool(late)), is_overdue(status, deadline, today),
                submitted_at, deadline)
    return YearView(regime, year, years, periods, totals, list(rows.values()), total, filters, today, choices)


# -- a unit: its reports -----------------------------------------------------------------------

@dataclass
class UnitReport:
    report_id: int
    regime: RegimeInfo
    period: Period
    status: str
    deadline: dt.date
    submitted_at: dt.datetime | None
    submitted_late: bool
    state: str
    overdue: bool

    @property
    def timeliness(self) -> str | None:
        if self.submitted_at is None:
            return None
        return "late" if self.submitted_late else "on_time"


@dataclass
class UnitView:
    unit: Unit
    reports: list[UnitReport]
    counts: Counts
    regimes: list[RegimeInfo]  # the regimes the unit reports under, to choose from
    regime: str  # the chosen code, "" for all
    year: int | None
    years: list[int]
    today: dt.date = field(default_factory=clock.today)


def unit_view(access, unit_id: int, *, regime: str = "", year: int | None = None,
              today: dt.date | None = None) -> UnitView:
    """A unit's reports (of ``regime``, in ``year`` when given), newest period first, each with its
    state, and their numbers. ``NotFound`` for a unit ``access`` may see nothing of."""
    today = today or clock.today()
    unit = Unit.get_or_none(Unit.id == unit_id)
    seen = scope(access)
    if unit is None or seen is False:
        raise NotFound()
    base = _where(Report.kind == KIND, seen, Report.unit == unit.id)
    regimes = _regimes(base)
    if not regimes and not access.allowed_at(UNIT_VIEW, unit.id):
        raise NotFound()  # nothing of it in sight: it does not exist for this person
    if regime:
        if regime not in {r.code for r in regimes}:
            raise NotFound()
        base &= _of_code(regime)
    years = [y for (y,) in Report.select(Report.year).where(base).distinct().order_by(Report.year.desc()).tuples()]
    if year is not None:
        base &= Report.year == year
    names = {r.code: r for r in regimes}
    query = (Report.select(Report.id, Regime.code, Report.period_start, Report.period_end, Report.frequency,
                           Report.year, Report.period_index, Report.label, Report.deadline, Report.status,
                           Report.submitted_at, Report.submitted_late)
             .join(Regime, on=(Report.regime == Regime.id)).where(base)
             .order_by(Report.period_start.desc(), Regime.code, Report.id))
    reports = []
    for rid, code, start, end, frequency, yr, index, label, deadline, status, submitted_at, late in query.tuples():
        reports.append(UnitReport(rid, names[code], Period(start, end, frequency, yr, index, label, deadline, deadline),
                                  status, deadline, submitted_at, bool(late),
                                  state_of(status, bool(late)), is_overdue(status, deadline, today)))
    counts = Counts()
    for r in reports:  # a unit's own reports: a few hundred at most, counted as the grouped queries do
        counts.expected += 1
        counts.on_time += r.status in SENT and not r.submitted_late
        counts.late += r.status in SENT and r.submitted_late
        counts.not_submitted += r.status in NOT_SENT
        counts.overdue += r.overdue
        counts.accepted += r.status == "accepted"
        counts.returned += r.status == "returned"
    return UnitView(unit, reports, counts, regimes, regime, year, years, today)


# -- Excel ---------------------------------------------------------------------------------------

XLSX_MEDIA = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_COUNT_HEADERS = (("expected", "completeness.col.expected"), ("submitted", "completeness.col.submitted"),
                  ("on_time", "completeness.col.on_time"), ("late", "completeness.col.late"),
                  ("returned", "completeness.col.returned"), ("not_submitted", "completeness.col.not_submitted"),
                  ("overdue", "completeness.col.overdue"), ("accepted", "completeness.col.accepted"))
_RATE_HEADERS = (("submitted", "completeness.col.submitted_rate"), ("on_time", "completeness.col.on_time_rate"),
                 ("accepted", "completeness.col.accepted_rate"))


def _fraction(part: int, whole: int):
    return part / whole if whole else None  # a rate cell: a number Excel shows as a percentage


def _count_cells(counts: Counts) -> list:
    return [getattr(counts, name) for name, _ in _COUNT_HEADERS]


def _rate_values(counts: Counts) -> list:
    return [_fraction(counts.submitted, counts.expected), _fraction(counts.on_time, counts.expected),
            _fraction(counts.accepted, counts.expected)]


class _Sheet:
    """A write-only sheet with the house styles: text kept as text (``core.export_safety``),
    rates as percentages, dates as dates."""

    def __init__(self, book, title: str, widths: list[int]):
        from openpyxl.utils import get_column_letter

        self.ws = book.create_sheet(title[:31])
        for i, width in enumerate(widths, start=1):
            self.ws.column_dimensions[get_column_letter(i)].width = width

    def cell(self, value, **style):
        from core.export_safety import write_only_cell

        return write_only_cell(self.ws, value, **style)

    def bold(self, value, **style):
        from openpyxl.styles import Font

        return self.cell(value, font=Font(bold=True), **style)

    def head(self, labels: list[str]) -> None:
        from openpyxl.styles import Alignment, PatternFill

        fill = PatternFill("solid", fgColor="DCE6F1")
        self.ws.append([self.bold(t, fill=fill, alignment=Alignment(wrap_text=True, vertical="top")) for t in labels])

    def rate(self, value):
        return self.cell(value, number_format="0.0%")

    def date(self, value):
        return self.cell(value, number_format="dd/mm/yyyy") if value is not None else None

    def moment(self, value):
        if value is None:
            return None
        return self.cell(clock.local(value).replace(tzinfo=None), number_format="dd/mm/yyyy hh:mm")

    def append(self, row) -> None:
        self.ws.append(row)


def _heading(sheet: _Sheet, t, lang: str, regime: RegimeInfo, what: str, actor, today: dt.date) -> None:
    from openpyxl.styles import Font

    sheet.append([sheet.cell(t("completeness.export.title"), font=Font(bold=True, size=14))])
    sheet.append([sheet.bold(t("completeness.export.regime")), sheet.cell(f"{regime.name} ({regime.code})")])
    sheet.append([sheet.bold(t("completeness.export.period")), sheet.cell(what)])
    sheet.append([sheet.bold(t("completeness.export.as_of")), sheet.date(today)])
    if actor is not None:
        sheet.append([sheet.bold(t("completeness.export.by")),
                      sheet.cell(f"{actor.full_name} ({actor.username})")])
    sheet.append([sheet.bold(t("completeness.export.at")),
                  sheet.cell(f"{format_datetime(clock.utcnow(), lang)} ({t('completeness.export.timezone')})")])
    sheet.append([])


def _summary_sheet(book, t, lang: str, regime: RegimeInfo, what: str, actor, today: dt.date,
                   first: str, lines: list[tuple[str, Counts]], totals: Counts) -> None:
    sheet = _Sheet(book, t("completeness.export.sheet_summary"), [34] + [13] * 11)
    _heading(sheet, t, lang, regime, what, actor, today)
    sheet.head([first] + [t(key) for _, key in _COUNT_HEADERS] + [t(key) for _, key in _RATE_HEADERS])
    for label, counts in lines + [(t("completeness.total"), totals)]:
        sheet.append([sheet.cell(label)] + _count_cells(counts) + [sheet.rate(v) for v in _rate_values(counts)])


def period_workbook(view: PeriodView, t, lang: str = "vi", *, actor=None) -> bytes:
    """The period view as an .xlsx file: the numbers by level and in total, then every unit.
    ``t(key, **params)``: the messages in the reader's language."""
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    what = f"{view.period.label(lang)} ({format_date(view.period.start, lang)} – {format_date(view.period.end, lang)})"
    _summary_sheet(book, t, lang, view.regime, what, actor, view.today, t("completeness.col.level"),
                   [(t(f"unit.kind.{kind}"), counts) for kind, counts in view.levels], view.totals)
    sheet = _Sheet(book, t("completeness.export.sheet_units"), [6, 16, 36, 16, 12, 18, 18, 14, 10])
    sheet.head([t("completeness.col.number"), t("completeness.col.unit_code"), t("completeness.col.unit"),
                t("completeness.col.level"), t("completeness.col.deadline"), t("completeness.col.submitted_at"),
                t("completeness.col.status"), t("completeness.col.timeliness"), t("completeness.col.overdue")])
    for n, row in enumerate(view.rows, start=1):
        sheet.append([n, sheet.cell(row.unit_code), sheet.cell(row.unit_name),
                      sheet.cell(t(f"unit.kind.{row.unit_kind}")),
                      sheet.date(row.deadline), sheet.moment(row.submitted_at), sheet.cell(t(STATE_LABELS[row.state])),
                      sheet.cell(t(STATE_LABELS[row.timeliness]) if row.timeliness else ""),
                      sheet.cell(t("completeness.yes") if row.overdue else "")])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def year_workbook(view: YearView, t, lang: str = "vi", *, actor=None) -> bytes:
    """The year view as an .xlsx file: the numbers of each period, then every unit with the state
    of each period's report and its numbers over the year."""
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    _summary_sheet(book, t, lang, view.regime, t("completeness.year.title", year=view.year), actor, view.today,
                   t("completeness.col.period"), [(p.label(lang), c) for p, c in view.periods], view.totals)
    sheet = _Sheet(book, t("completeness.export.sheet_units"),
                   [16, 36, 16] + [12] * len(view.periods) + [13] * 5)
    sheet.head([t("completeness.col.unit_code"), t("completeness.col.unit"), t("completeness.col.level")]
               + [p.short_label(lang) for p, _ in view.periods]
               + [t("completeness.col.expected"), t("completeness.col.submitted"), t("completeness.col.on_time"),
                  t("completeness.col.submitted_rate"), t("completeness.col.on_time_rate")])
    for row in view.rows:
        cells = []
        for p, _ in view.periods:
            cell = row.cells.get(p.key)
            word = "" if cell is None else t(STATE_LABELS[cell.state])
            if cell is not None and cell.overdue:
                word += f" ({t('completeness.state.overdue').lower()})"
            cells.append(sheet.cell(word))
        c = row.counts
        sheet.append([sheet.cell(row.unit_code), sheet.cell(row.unit_name), sheet.cell(t(f"unit.kind.{row.unit_kind}"))]
                     + cells + [c.expected, c.submitted, c.on_time, sheet.rate(_fraction(c.submitted, c.expected)),
                                sheet.rate(_fraction(c.on_time, c.expected))])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def export_filename(regime: RegimeInfo, what: str) -> str:
    """An ASCII file name: "tinh-hinh-gui-bao-cao_<code>_<period>.xlsx"."""
    safe = "".join(c if c.isascii() and (c.isalnum() or c in "-._") else "-" for c in fold(f"{regime.code}_{what}"))
    return f"tinh-hinh-gui-bao-cao_{safe[:80]}.xlsx"

