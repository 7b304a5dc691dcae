"""Data quality for reviewers (issue 14 item 9): figures far from what is usual, and the values a
reviewer marks for follow-up ("Số liệu cần theo dõi"), as DHIS2's outlier analysis and follow-up do.

Which cells are judged: the period's own figure of each indicator row (the column the accepted
figures are published from, ``core.reporting.subscribers.figures.period_columns``) when the unit
types it (an input cell). Each is compared with two references:

- **its own history** — the unit's figures in the figures store (``core.catalogue.figures``, kind
  "actual", the same indicator and disaggregation option): the same period of the ``YEARS_BACK``
  past years when at least ``MIN_HISTORY`` of them are there (a seasonal figure is compared with
  its own season), otherwise those and the ``RECENT`` periods just before;
- **its peers** — the values of the same cell in the reports of the same regime (code) and
  period that the *other* units of the same kind sent (submitted or accepted): the level's usual
  range. At least ``MIN_PEERS`` such values are needed. The value judged is never among its own
  references, so a wild value cannot widen the range it is judged by.

The measure is robust, so one wild value in the references does not hide another: with m the
median of the reference values and MAD the median of |x − m|, the spread is s = 1.4826 × MAD (the
standard deviation it estimates for normal data). When MAD is 0 (half the values or more are the
same number) s = 1.2533 × the mean of |x − m| (the usual fallback of the modified z-score), and s
is never below ``RELATIVE_FLOOR`` × |m|, so a figure that has hardly moved is not flagged for a
change of a few percent. The expected range is m ± 3 × s, never below 0 when no reference value
is negative, widened outward to the decimals the cell shows; a value outside it is flagged, and
the range is shown beside it in the reader's number format. Fewer than ``MIN_HISTORY`` past
figures (or ``MIN_PEERS`` peer values) judge nothing: a short history never raises a flag.

Cost: a review page reads the unit's history in one grouped query and the peers' statistics in
one more (PostgreSQL computes the medians itself with ``percentile_cont``; SQLite hands the values
over), whatever the number of cells. The peers' statistics are kept per process while the group
of reports sent for that regime and period is unchanged (one small query tells: the reports, and
the newest of their versions — a report's values change only through a new submission). The
counts per unit read the level's values once and leave each unit out in turn in O(n log n)
(``spreads_without_each``).

Follow-ups: a receiver marks a value of a report they receive, with a note; it stays on the list
of every receiver of that report until one of them clears it. Marking and clearing are audited
(``followup.marked``, ``followup.cleared``). For anyone who does not receive the report a
follow-up does not exist (``NotFound``). ``flag_counts`` gives, for a regime and period, each
unit's flagged cells and open follow-ups (for the completeness view).
"""

from __future__ import annotations

import datetime as dt
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation

from peewee import (JOIN, CharField, DateTimeField, DecimalField, ForeignKeyField, IntegerField, IntegrityError,
                    TextField, Tuple, fn)

from core import audit
from core.catalogue.figures import IndicatorValue
from core.db import CoreModel, db, is_sqlite, transaction
from core.errors import BaocaoError, Forbidden, NotFound
from core.models import Unit, User, utcnow
from core.regimes.forms import FormVersion
from core.regimes.periods import FREQUENCIES, periods_per_year
from core.regimes.regimes import Regime
from core.reporting import data as rd
from core.reporting.opening import Report, units_with
from core.reporting.subscribers.figures import period_columns
from core.reporting.versions import ReportVersion, latest_version
from core.reporting.workflow import RECEIVE, can_receive

# -- the rule ----------------------------------------------------------------------------------
YEARS_BACK = 5  # the same period of this many past years
RECENT = 6  # and this many periods just before (at most a year's worth less one)
MIN_HISTORY = 3  # past figures needed to judge a value by its history
MIN_PEERS = 5  # values of the level needed to judge it by its peers
THRESHOLD = 3  # how many spreads from the median a value may lie
MAD_TO_SD = 1.4826
MEAN_AD_TO_SD = 1.2533
RELATIVE_FLOOR = 0.05  # the spread is at least this share of the median: ±15 % is never an outlier
SENT = ("submitted", "accepted")
UNIT_VIEW = "core.unit.view"

MAX_NOTE = 1000
PAGE_SIZE = 100
STATES = ("open", "cleared")
_BOUND = Decimal(10) ** 17  # what the value columns (24 digits, 6 decimals) hold


# -- follow-ups: the table -----------------------------------------------------------------------

class Followup(CoreModel):
    """A value marked for follow-up; open while ``cleared_at`` is empty. What the cell held and the
    ranges shown when it was marked are kept: the list reads the same after the report moves on."""

    report = ForeignKeyField(Report, on_delete="CASCADE", backref="+")
    row = CharField(max_length=40)
    column = CharField(max_length=40)
    label = CharField(max_length=600, default="")  # "row — column" as the review page named it
    version_number = IntegerField(null=True)
    value = DecimalField(max_digits=24, decimal_places=6, null=True)
    decimals = IntegerField(null=True)
    history_low = DecimalField(max_digits=24, decimal_places=6, null=True)
    history_high = DecimalField(max_digits=24, decimal_places=6, null=True)
    peers_low = DecimalField(max_digits=24, decimal_places=6, null=True)
    peers_high = DecimalField(max_digits=24, decimal_places=6, null=True)
    note = TextField(default="")
    created_by = ForeignKeyField(User, null=True, on_delete="SET NULL", backref="+")
    created_at = DateTimeField(default=utcnow)
    cleared_at = DateTimeField(null=True)
    cleared_by = ForeignKeyField(User, null=True, on_delete="SET NULL", backref="+")
    clear_note = TextField(default="")

    class Meta:
        indexes = ((("cleared_at", "created_at"), False),)

    @property
    def cell(self) -> str:
        return f"{self.row}.{self.column}"

    @property
    def is_open(self) -> bool:
        return self.cleared_at is None


# One open follow-up per cell: a double click, or two reviewers at once, mark it once.
Followup.add_index(Followup.index(Followup.report, Followup.row, Followup.column, unique=True,
                                  where=Followup.cleared_at.is_null(), name="core_followup_open_cell"))


# -- robust ranges -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Spread:
    """The statistics of a set of reference values (see the module's words)."""

    points: int
    median: float
    mad: float
    mean_ad: float
    smallest: float


def _median(ordered: list[float]) -> float:
    n = len(ordered)
    middle = n // 2
    return ordered[middle] if n % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def spread_of(values) -> Spread | None:
    """Median, MAD and mean absolute deviation of ``values`` (None when there are none)."""
    ordered = sorted(float(v) for v in values)
    if not ordered:
        return None
    median = _median(ordered)
    deviations = sorted(abs(x - median) for x in ordered)
    return Spread(len(ordered), median, _median(deviations), sum(deviations) / len(deviations), ordered[0])


def spreads_without_each(values: list) -> list:
    """For each of ``values``, the Spread of all the others (None when there are no others), in
    O(n log n): the median of n − 1 sorted values takes at most three values (the one left out lies
    below, in or above the middle), and for each the deviations are sorted once; leaving one out is
    then a shift of index. What ``spread_of`` would give for the list without that value."""
    n = len(values)
    if n < 2:
        return [None] * n
    order = sorted(range(n), key=lambda i: float(values[i]))
    xs = [float(values[i]) for i in order]
    rank = [0] * n
    for position, i in enumerate(order):
        rank[i] = position
    m = n - 1

    def median_of(pick) -> float:  # pick(j): the j-th smallest of the n − 1 values
        return pick(m // 2) if m % 2 else (pick(m // 2 - 1) + pick(m // 2)) / 2

    prepared: dict = {}

    def deviations(median: float):
        if median not in prepared:
            ordered = sorted((abs(x - median), position) for position, x in enumerate(xs))
            where = [0] * n
            for k, (_, position) in enumerate(ordered):
                where[position] = k
            prepared[median] = ([d for d, _ in ordered], where, sum(d for d, _ in ordered))
        return prepared[median]

    found = []
    for i in range(n):
        r = rank[i]
        median = median_of(lambda j: xs[j if j < r else j + 1])
        ds, where, total = deviations(median)
        k = where[r]
        mad = median_of(lambda j: ds[j if j < k else j + 1])
        found.append(Spread(m, median, mad, (total - ds[k]) / m, xs[1] if r == 0 else xs[0]))
    return found


@dataclass(frozen=True)
class Expected:
    """The range a value is expected in, with what it was drawn from; bounds as the cell shows them."""

    low: Decimal
    high: Decimal
    median: Decimal
    points: int
    basis: str  # "same_period", "recent" (the unit's history) or "peers"

    def outside(self, value: Decimal) -> bool:
        return value < self.low or value > self.high


def _places(decimals: int | None, high: float) -> int:
    if decimals is not None:
        return max(0, min(int(decimals), 6))
    return 0 if abs(high) >= 100 else 2


def expected_range(spread: Spread | None, *, minimum: int, basis: str, decimals: int | None = None) -> Expected | None:
    """m ± THRESHOLD × s (see the module's words), rounded outward to the cell's decimals; None
    when there are fewer than ``minimum`` reference values or the numbers are not finite."""
    if spread is None or spread.points < minimum:
        return None
    s = MAD_TO_SD * spread.mad if spread.mad > 0 else MEAN_AD_TO_SD * spread.mean_ad
    s = max(s, RELATIVE_FLOOR * abs(spread.median))
    low, high = spread.median - THRESHOLD * s, spread.median + THRESHOLD * s
    if spread.smallest >= 0:
        low = max(low, 0.0)
    if not all(math.isfinite(x) for x in (low, high, spread.median)):
        return None
    step = Decimal(1).scaleb(-_places(decimals, high))
    try:
        bounds = (Decimal(repr(low)).quantize(step, rounding=ROUND_FLOOR),
                  Decimal(repr(high)).quantize(step, rounding=ROUND_CEILING))
        median = Decimal(repr(spread.median)).quantize(step)
    except InvalidOperation:
        return None
    if any(abs(b) >= _BOUND for b in (*bounds, median)):
        return None
    return Expected(bounds[0], bounds[1], median, spread.points, basis)


# -- the unit's history ----------------------------------------------------------------------------

def history_periods(frequency: str, year: int, index: int) -> tuple[list, list]:
    """((year, index) of the same period in past years, those of the periods just before)."""
    if frequency not in FREQUENCIES or not index:
        return [], []
    same = [(year - k, index) for k in range(1, YEARS_BACK + 1)]
    count = periods_per_year(frequency)
    recent, y, i = [], year, index
    for _ in range(min(RECENT, count - 1)):
        i -= 1
        if i < 1:
            y, i = y - 1, count
        recent.append((y, i))
    return same, recent


def _history_rows(units, codes, options, frequency: str, periods: list) -> dict:
    """(unit, code, option) → {(year, index): float}: one query. ``units``: ids or a subquery."""
    if not codes or not periods:
        return {}
    iv = IndicatorValue
    query = (iv.select(iv.unit, iv.code, iv.option, iv.year, iv.index, iv.value)
             .where(iv.unit.in_(units) & iv.code.in_(sorted(codes)) & iv.option.in_(sorted(options))
                    & (iv.frequency == frequency) & (iv.kind == "actual") & iv.value.is_null(False)
                    & Tuple(iv.year, iv.index).in_(periods)).tuples())
    found: dict = {}
    for unit_id, code, option, year, index, value in query:
        found.setdefault((unit_id, code, option), {})[(year, index)] = float(value)
    return found


def history_expected(points: dict, same: list, recent: list, decimals: int | None) -> Expected | None:
    """The unit's expected range from its past figures ({(year, index): value})."""
    seasonal = [points[p] for p in same if p in points]
    if len(seasonal) >= MIN_HISTORY:
        return expected_range(spread_of(seasonal), minimum=MIN_HISTORY, basis="same_period", decimals=decimals)
    both = seasonal + [points[p] for p in recent if p in points]
    return expected_range(spread_of(both), minimum=MIN_HISTORY, basis="recent", decimals=decimals)


# -- the peers --------------------------------------------------------------------------------------

_PEERS: OrderedDict = OrderedDict()  # (database, code, start, end, kinds, cells) → (fingerprint, stats)
_PEERS_SIZE = 128
_PEERS_LOCK = threading.Lock()


def _group(regime_code: str, start: dt.date, end: dt.date, without: int | None = None):
    """The reports whose values are the peers of a regime and period: sent by a unit (not
    consolidated); ``without``: the report under review (its peers are the *other* units)."""
    where = ((Report.regime.in_(Regime.select(Regime.id).where(Regime.code == regime_code)))
             & (Report.period_start == start) & (Report.period_end == end) & (Report.kind == "unit")
             & Report.status.in_(list(SENT)))
    return where if without is None else where & (Report.id != without)


def _fingerprint(group) -> tuple:
    """What changes whenever the group's values do: which reports, and their newest version."""
    row = (Report.select(fn.COUNT(fn.DISTINCT(Report.id)), fn.SUM(ReportVersion.id), fn.MAX(ReportVersion.id))
           .join(ReportVersion, on=(ReportVersion.report == Report.id)).where(group).tuples().first())
    return tuple(int(v or 0) for v in row) if row else (0, 0, 0)


def _peer_values(group, kinds, rows, columns):
    """(kind, row, column, value, report id) of the group's stored values of those cells."""
    return (rd.ReportValue.select(Unit.kind.alias("k"), rd.ReportValue.row.alias("r"),
                                  rd.ReportValue.column.alias("c"), rd.ReportValue.value.alias("x"),
                                  Report.id.alias("rid"))
            .join(Report, on=(rd.ReportValue.report == Report.id)).join(Unit, on=(Report.unit == Unit.id))
            .where(group & Unit.kind.in_(sorted(kinds)) & rd.ReportValue.row.in_(sorted(rows))
                   & rd.ReportValue.column.in_(sorted(columns)) & rd.ReportValue.value.is_null(False)))


_PEERS_SQL = """WITH v AS ({values}),
m AS (SELECT k, r, c, COUNT(*) AS n, MIN(x) AS smallest,
             percentile_cont(0.5) WITHIN GROUP (ORDER BY x) AS med
        FROM v GROUP BY k, r, c HAVING COUNT(*) >= %s)
SELECT m.k, m.r, m.c, m.n, m.med, percentile_cont(0.5) WITHIN GROUP (ORDER BY abs(v.x - m.med)),
       AVG(abs(v.x - m.med)), m.smallest
  FROM v JOIN m ON v.k = m.k AND v.r = m.r AND v.c = m.c
 GROUP BY m.k, m.r, m.c, m.n, m.med, m.smallest"""


def _read_peers(group, kinds, cells) -> dict:
    """(kind, row, column) → Spread over the group's values: one query."""
    rows, columns = {r for r, _ in cells}, {c for _, c in cells}
    values = _peer_values(group, kinds, rows, columns)
    stats: dict = {}
    if is_sqlite():
        collected: dict = {}
        for kind, row, column, value, _ in values.tuples():
            if (row, column) in cells:
                collected.setdefault((kind, row, column), []).append(float(value))
        for key, found in collected.items():
            if len(found) >= MIN_PEERS:
                stats[key] = spread_of(found)
        return stats
    # PostgreSQL takes the medians itself: a province's thousands of values never leave the server.
    sql, params = values.sql()
    cursor = db.execute_sql(_PEERS_SQL.format(values=sql), [*params, MIN_PEERS])
    for kind, row, column, n, median, mad, mean_ad, smallest in cursor.fetchall():
        if (row, column) in cells:
            stats[(kind, row, column)] = Spread(int(n), float(median), float(mad or 0), float(mean_ad or 0),
                                                float(smallest))
    return stats


def peer_spreads(regime_code: str, start: dt.date, end: dt.date, kinds, cells, *, without: int | None = None) -> dict:
    """(kind, row, column) → Spread of the values sent for the regime and period by units of
    ``kinds``, for ``cells`` ((row, column) pairs), leaving out the report ``without``; kept per
    process while the group is unchanged."""
    kinds, cells = tuple(sorted(set(kinds))), frozenset(cells)
    if not kinds or not cells:
        return {}
    group = _group(regime_code, start, end, without)
    fingerprint = _fingerprint(group)
    key = (id(db.obj), getattr(db.obj, "database", None), regime_code, start, end, without, kinds, cells)
    with _PEERS_LOCK:
        hit = _PEERS.get(key)
    if hit is not None and hit[0] == fingerprint:
        return hit[1]
    stats = _read_peers(group, kinds, cells) if fingerprint[0] else {}
    with _PEERS_LOCK:
        _PEERS[key] = (fingerprint, stats)
        _PEERS.move_to_end(key)
        while len(_PEERS) > _PEERS_SIZE:
            _PEERS.popitem(last=False)
    return stats


# -- judging one report's cells ----------------------------------------------------------------------

@dataclass(frozen=True)
class Target:
    """A cell that is judged: the period's figure of an indicator row."""

    row: str
    column: str
    code: str
    option: str
    decimals: int | None

    @property
    def key(self) -> str:
        return f"{self.row}.{self.column}"


def targets_of(form, index: int | None = None) -> list[Target]:
    """The judged cells of a compiled form, in its order (see the module's words)."""
    columns = period_columns(form)
    shown = form.visible_columns(index) if index else form.columns
    found = []
    for row in form.rows:
        if row.kind != "indicator" or not row.indicator:
            continue
        for column in shown:
            if column.key in columns and form.cell_kind(row, column) == "input":
                decimals = column.decimals if column.decimals is not None else row.decimals
                found.append(Target(row.key, column.key, row.indicator, row.option or "", decimals))
    return found


@dataclass(frozen=True)
class CellCheck:
    """One judged cell: its value and the ranges it was compared with (None: not enough to judge)."""

    key: str
    value: Decimal
    decimals: int | None
    history: Expected | None
    peers: Expected | None

    @property
    def far_from_history(self) -> bool:
        return self.history is not None and self.history.outside(self.value)

    @property
    def far_from_peers(self) -> bool:
        return self.peers is not None and self.peers.outside(self.value)

    @property
    def flagged(self) -> bool:
        return self.far_from_history or self.far_from_peers


def _number(text) -> Decimal | None:
    if text is None or text == "":
        return None
    try:
        value = Decimal(str(text))
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def check_cells(report: Report, unit_kind: str, targets: list[Target], values: dict) -> dict[str, CellCheck]:
    """``values``: "row.col" → the value (canonical text or number). Two queries at most (and one
    small one that says whether the peers' statistics kept are still good), whatever the cells."""
    present = [(t, v) for t in targets if (v := _number(values.get(t.key))) is not None]
    if not present:
        return {}
    same, recent = history_periods(report.frequency, report.year, report.period_index)
    history = _history_rows([report.unit_id], {t.code for t, _ in present}, {t.option for t, _ in present},
                            report.frequency, same + recent)
    regime_code = report.regime.code
    peers = peer_spreads(regime_code, report.period_start, report.period_end, [unit_kind],
                         {(t.row, t.column) for t, _ in present}, without=report.id)
    checks = {}
    for target, value in present:
        points = history.get((report.unit_id, target.code, target.option), {})
        checks[target.key] = CellCheck(
            target.key, value, target.decimals, history_expected(points, same, recent, target.decimals),
            expected_range(peers.get((unit_kind, target.row, target.column)), minimum=MIN_PEERS, basis="peers",
                           decimals=target.decimals))
    return checks


@dataclass
class ReportQuality:
    """What the review page shows about a version's figures."""

    checks: dict[str, CellCheck]  # every judged cell with a value, by "row.col"
    followups: dict[str, Followup]  # the open follow-ups, by "row.col"
    unit_kind: str
    order: list[str] = field(default_factory=list)  # judged cells in the form's order

    @property
    def flags(self) -> list[CellCheck]:
        return [self.checks[k] for k in self.order if k in self.checks and self.checks[k].flagged]

    @property
    def judged(self) -> int:
        """Cells compared with at least one range."""
        return sum(1 for c in self.checks.values() if c.history is not None or c.peers is not None)


def open_followups_of(report_id: int) -> dict[str, Followup]:
    """The report's open follow-ups by "row.col", each with ``creator`` (who marked it): one query."""
    query = (Followup.select(Followup, User)
             .join(User, JOIN.LEFT_OUTER, on=(Followup.created_by == User.id), attr="creator")
             .where((Followup.report == report_id) & Followup.cleared_at.is_null())
             .order_by(Followup.created_at, Followup.id))
    return {f.cell: f for f in query}


def review_quality(report: Report, unit_kind: str, form, values: dict) -> ReportQuality:
    """The checks of a version's values (``values``: its canonical "row.col" → text) and the open
    follow-ups of the report: three queries (four when the peers changed), whatever the cells.
    ``report`` comes with its regime (``core.reporting.data.get_report``)."""
    targets = targets_of(form, report.period_index) if form is not None else []
    checks = check_cells(report, unit_kind, targets, values)
    return ReportQuality(checks, open_followups_of(report.id), unit_kind, [t.key for t in targets])


# -- marking and clearing ----------------------------------------------------------------------------

def _receivable(access, report_id: int) -> Report:
    """The report, for whoever receives it; a reader who does not receive it is refused (403), anyone
    else finds nothing (404), as on the review page."""
    report = rd.get_report(access, report_id)
    if not can_receive(access, report):
        raise Forbidden()
    return report


def _clean_note(note: str | None) -> str:
    text = (note or "").replace("\r\n", "\n").strip()
    if len(text) > MAX_NOTE:
        raise BaocaoError("quality.error.note_too_long", limit=MAX_NOTE)
    return text


def _stored(value: Decimal | None) -> Decimal | None:
    return value if value is not None and abs(value) < _BOUND else None


def mark(access, report_id: int, cell: str, note: str = "") -> Followup:
    """Mark a value of the report's latest version for follow-up, with a note. A cell already
    marked and not cleared keeps its follow-up (returned as it is)."""
    from core.reporting.diff import content_of, version_grid

    report = _receivable(access, report_id)
    note = _clean_note(note)
    version = latest_version(report.id)
    if version is None:
        raise BaocaoError("quality.error.never_sent")
    values = content_of(version).get("values") or {}
    cell = (cell or "").strip()
    value = _number(values.get(cell))
    if value is None:
        raise BaocaoError("quality.error.unknown_cell")
    existing = open_followups_of(report.id).get(cell)
    if existing is not None:
        return existing
    grid = version_grid(version)
    row_key, _, column_key = cell.partition(".")
    row = next((r for r in grid["rows"] if r["key"] == row_key), None)
    keys = [c["key"] for c in grid["columns"]]
    column_label = next((c["label"] for c in grid["columns"] if c["key"] == column_key), column_key)
    decimals = row["decimals"][keys.index(column_key)] if row is not None and column_key in keys else None
    label = f"{row['label'] if row else row_key} — {column_label}"[:600]
    unit_kind = Unit.get_by_id(report.unit_id).kind
    form = FormVersion.get_by_id(version.form_version_id).compiled()
    check = check_cells(report, unit_kind, targets_of(form, report.period_index), {cell: values[cell]}).get(cell)
    history = check.history if check else None
    peers = check.peers if check else None
    try:
        with transaction():
            followup = Followup.create(
                report=report.id, row=row_key, column=column_key, label=label, version_number=version.number,
                value=_stored(value), decimals=decimals,
                history_low=history.low if history else None, history_high=history.high if history else None,
                peers_low=peers.low if peers else None, peers_high=peers.high if peers else None,
                note=note, created_by=access.actor)
            audit.record("followup.marked", actor=access.actor, unit=report.unit_id, object_type="report",
                         object_id=report.id, details={"cell": cell, "version": version.number,
                                                       "reason": note[:200]})
    except IntegrityError:
        # Marked by someone else in the same moment: theirs stands.
        existing = open_followups_of(report.id).get(cell)
        if existing is None:
            raise
        return existing
    return followup


def _followup_of(access, followup_id: int) -> tuple[Followup, Report]:
    followup = Followup.get_or_none(Followup.id == followup_id)
    if followup is None:
        raise NotFound()
    report = Report.select(Report, Regime).join(Regime).where(Report.id == followup.report_id).first()
    if report is None or not can_receive(access, report):
        raise NotFound()  # a follow-up of a report one does not receive does not exist for them
    return followup, report


def clear(access, followup_id: int, note: str = "") -> Followup:
    """Clear an open follow-up (with an optional note): it leaves the list; the audit trail keeps it."""
    followup, report = _followup_of(access, followup_id)
    note = _clean_note(note)
    now = utcnow()
    with transaction():
        changed = (Followup.update(cleared_at=now, cleared_by=access.actor, clear_note=note)
                   .where((Followup.id == followup.id) & Followup.cleared_at.is_null()).execute())
        if changed != 1:
            raise BaocaoError("quality.error.already_cleared")
        audit.record("followup.cleared", actor=access.actor, unit=report.unit_id, object_type="report",
                     object_id=report.id, details={"cell": followup.cell, "reason": note[:200]})
    followup.cleared_at, followup.cleared_by_id, followup.clear_note = now, getattr(access.actor, "id", None), note
    return followup


# -- the list ----------------------------------------------------------------------------------------

@dataclass
class FollowupList:
    state: str
    rows: list  # Followup with .report (its regime and unit), .creator, .clearer
    total: int
    page: int
    counts: dict  # state → how many

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // PAGE_SIZE))


def _received(access):
    """The condition "a report this person receives", or None when they receive nothing."""
    units = units_with(access, RECEIVE)
    if units is None:
        return Report.receiver.is_null(False)
    return Report.receiver.in_(sorted(units)) if units else None


def followups(access, *, state: str = "open", page: int = 1) -> FollowupList:
    """The follow-ups of the reports ``access`` receives: open ones newest first (or the cleared
    ones, most recently cleared first), a page at a time: the counts and the page, two queries
    (after the units one receives from)."""
    state = state if state in STATES else "open"
    received = _received(access)
    if received is None:
        return FollowupList(state, [], 0, 1, {s: 0 for s in STATES})
    counts = {"open": 0, "cleared": 0}
    for is_open, n in (Followup.select(Followup.cleared_at.is_null(), fn.COUNT(Followup.id))
                       .join(Report, on=(Followup.report == Report.id)).where(received)
                       .group_by(Followup.cleared_at.is_null()).tuples()):
        counts["open" if is_open else "cleared"] += n
    total = counts[state]
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(max(1, page), pages)
    creator, clearer = User.alias(), User.alias()
    query = (Followup.select(Followup, Report, Regime, Unit, creator, clearer)
             .join(Report, on=(Followup.report == Report.id))
             .join(Regime, on=(Report.regime == Regime.id))
             .switch(Report).join(Unit, on=(Report.unit == Unit.id))
             .switch(Followup).join(creator, JOIN.LEFT_OUTER, on=(Followup.created_by == creator.id), attr="creator")
             .switch(Followup).join(clearer, JOIN.LEFT_OUTER, on=(Followup.cleared_by == clearer.id),
                                    attr="clearer")
             .where(received & (Followup.cleared_at.is_null() if state == "open" else Followup.cleared_at.is_null(False))))
    order = ([Followup.created_at.desc(), Followup.id.desc()] if state == "open"
             else [Followup.cleared_at.desc(), Followup.id.desc()])
    rows = list(query.order_by(*order).limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE))
    return FollowupList(state, rows, total, page, counts)


# -- counts per unit for a regime and period (the completeness view) -------------------------------

@dataclass(frozen=True)
class UnitFlags:
    """One unit's report of a regime and period: how many of its cells are far from the unit's history,
    from its peers, either (``flagged``), and its open follow-ups (counted for receivers only)."""

    report_id: int
    unit_id: int
    history: int = 0
    peers: int = 0
    flagged: int = 0
    followups: int = 0


def _period(period) -> tuple[dt.date, dt.date] | None:
    if isinstance(period, tuple) and len(period) == 2:
        return period
    try:
        start, end = (dt.date.fromisoformat(p) for p in str(period or "").strip().split("/", 1))
    except ValueError:
        return None
    return (start, end) if start <= end else None


def _counted(access):
    """The reports whose flags ``access`` may count: those received, and those of the units where
    ``core.unit.view`` is held (the completeness view's own rule). None: all; False: none."""
    viewed, received = units_with(access, UNIT_VIEW), units_with(access, RECEIVE)
    if viewed is None or received is None:
        return None
    conditions = [column.in_(sorted(ids)) for column, ids in ((Report.receiver, received), (Report.unit, viewed))
                  if ids]
    if not conditions:
        return False
    return conditions[0] if len(conditions) == 1 else conditions[0] | conditions[1]


def flag_counts(access, regime_code: str, period, *, unit_ids=None) -> dict[int, UnitFlags]:
    """Unit id → UnitFlags for the units' reports of regime ``regime_code`` and ``period`` ("start/end"
    ISO dates, or a (start, end) pair) that were sent (submitted or accepted) and that ``access`` may
    count; ``unit_ids`` narrows to a page of units. The values are the reports' stored inputs (what a
    sent report holds, the same as its latest version); each unit is compared with the others of its
    level, as on the review page. Six queries whatever the number of units and cells: the reports, their
    forms, the level's values (every unit of the level, the peers of those counted), the history, the
    open follow-ups."""
    window = _period(period)
    seen = _counted(access)
    if window is None or seen is False or not regime_code:
        return {}
    start, end = window
    group = _group(regime_code, start, end)
    where = group if seen is None else group & seen
    if unit_ids is not None:
        ids = sorted({int(u) for u in unit_ids})
        if not ids:
            return {}
        where &= Report.unit.in_(ids)
    reports = list(Report.select(Report.id, Report.unit, Report.frequency, Report.year, Report.period_index,
                                 Report.form_version, Report.receiver, Unit.kind)
                   .join(Unit, on=(Report.unit == Unit.id)).where(where).tuples())
    if not reports:
        return {}
    frequency, year, index = reports[0][2], reports[0][3], reports[0][4]  # one period: the same for all
    forms = {fv.id: fv.compiled() for fv in
             FormVersion.select().where(FormVersion.id.in_(sorted({r[5] for r in reports if r[5]})))}
    targets = {fid: {(t.row, t.column): t for t in targets_of(form, index)} for fid, form in forms.items()}
    cells = {cell for by_cell in targets.values() for cell in by_cell}
    if not cells:
        return {}
    # The level's values, every unit's (not only those counted): each is judged against the others.
    by_group: dict = {}
    for kind, row, column, value, report_id in _peer_values(group, {r[7] for r in reports}, {r for r, _ in cells},
                                                            {c for _, c in cells}).tuples():
        if (row, column) in cells:
            by_group.setdefault((kind, row, column), []).append((report_id, Decimal(value)))
    values, others = {}, {}
    for (kind, row, column), found in by_group.items():
        for (report_id, value), spread in zip(found, spreads_without_each([v for _, v in found])):
            values.setdefault(report_id, {})[(row, column)] = value
            others[(report_id, row, column)] = spread
    same, recent = history_periods(frequency, year, index)
    codes = {t.code for by_cell in targets.values() for t in by_cell.values()}
    options = {t.option for by_cell in targets.values() for t in by_cell.values()}
    history = _history_rows(Report.select(Report.unit).where(where), codes, options, frequency, same + recent)
    received = units_with(access, RECEIVE)
    open_counts = {}
    if received is None or received:
        open_counts = dict(Followup.select(Followup.report, fn.COUNT(Followup.id))
                           .where(Followup.report.in_(Report.select(Report.id).where(where))
                                  & Followup.cleared_at.is_null())
                           .group_by(Followup.report).tuples())
    found = {}
    for report_id, unit_id, _, _, _, form_id, receiver, kind in reports:
        far_history = far_peers = flagged = 0
        for cell, value in values.get(report_id, {}).items():
            target = targets.get(form_id, {}).get(cell)
            if target is None:
                continue
            check = CellCheck(target.key, value, target.decimals,
                              history_expected(history.get((unit_id, target.code, target.option), {}), same, recent,
                                               target.decimals),
                              expected_range(others.get((report_id, *cell)), minimum=MIN_PEERS, basis="peers",
                                             decimals=target.decimals))
            far_history += check.far_from_history
            far_peers += check.far_from_peers
            flagged += check.flagged
        receives = received is None or receiver in received
        found[unit_id] = UnitFlags(report_id, unit_id, far_history, far_peers, flagged,
                                   open_counts.get(report_id, 0) if receives else 0)
    return found
