"""The usage report (Điều 9.3c: each unit reports on its use of the system), per unit and month.

For each unit and each month of a range (at most ``MAX_MONTHS``), in the instance's time zone:

* **accounts**: the unit's accounts that are enabled now and were created before the month ended
  (an account's past enabled/disabled states are not kept apart from the audit trail, so a month
  long past counts the accounts as they stand today); **accounts_logged_in**: of those, how many
  logged in during the month;
* **logins**: successful logins during the month, from the audit trail (``auth.login``, counted
  under the unit the account belonged to then). A login with a second factor counts once, when the
  second factor is right: the password step's event (``second_factor: pending``) is left out;
* **due**: the unit's own reports whose deadline falls in the month (not its consolidated ones: a
  receiving unit opens those only when it starts consolidating, so nobody was "due" to have one —
  as the completeness report counts them);
  **on_time** / **late**: of those, sent on time or late, judged on the *first* submission (a report
  returned and sent again stays as its first sending was); **not_submitted**: never sent (yet);
  **returned**: sent back to the unit at least once (returned, or reopened after acceptance);
* **average_days**: calendar days from the end of the report's period to its first submission
  (the local day of sending minus the period's last day), averaged over the reports sent;
* **problems** / **proposals**: what the unit's people sent through "Phản ánh, góp ý" in the month
  (Điều 9.1c, 9.4; ``core.feedback.counts_by_unit_month``), under the unit of the sender then.

Everything is read with a handful of grouped queries whatever the number of units (the units, the
accounts, the logins per month, the logins over the range, the reports, the feedback); months are bucketed in SQL
by comparing with the months' bounds (UTC instants for logins and accounts, local dates for
deadlines), so a login at 23:30 UTC on the 31st counts in the next day's month in Vietnam.

Who sees what: a unit administrator (``core.unit.admin`` at a unit) the units of the subtrees they
administer; a system administrator every unit. A unit outside that is answered as missing.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from dataclasses import dataclass, field

from peewee import JOIN, SQL, Case, fn

from core import clock, export_safety, feedback
from core.accounts.access import ADMIN_CODE
from core.audit import AuditEvent
from core.db import db, is_sqlite
from core.errors import NotFound
from core.i18n import format_datetime
from core.models import UNIT_KINDS, Unit, User
from core.reporting.facade import CONSOLIDATED_KIND, Report, ReportEvent, ReportVersion
from core.units.tree import ancestor_ids, sort_key

PERMISSION = ADMIN_CODE
MAX_MONTHS = 12
LOGIN_ACTION = "auth.login"
PENDING_LOGIN = '"second_factor": "pending"'  # the password step of a two-factor login (core.accounts.login)
SENT_BACK = ("return", "reopen")  # ReportEvent actions that hand a report back to its unit
FIRST_YEAR = 2000
# The figures of a row, in the order every table and export shows them; the label is usage.col.<name>.
COLUMNS = ("accounts", "accounts_logged_in", "logins", "due", "on_time", "late", "not_submitted", "returned",
           "average_days", "problems", "proposals")


# -- months -------------------------------------------------------------------------------------

@dataclass(frozen=True, order=True)
class Month:
    year: int
    month: int

    @classmethod
    def of(cls, day: dt.date) -> "Month":
        return cls(day.year, day.month)

    @property
    def first(self) -> dt.date:
        return dt.date(self.year, self.month, 1)

    @property
    def next_first(self) -> dt.date:
        return self.shift(1).first

    @property
    def key(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    def label(self, lang: str) -> str:
        return f"{self.month:02d}/{self.year:04d}" if lang == "vi" else self.key

    def shift(self, months: int) -> "Month":
        index = self.year * 12 + self.month - 1 + months
        return Month(index // 12, index % 12 + 1)

    @property
    def utc_start(self) -> dt.datetime:
        return local_midnight_utc(self.first)

    @property
    def utc_end(self) -> dt.datetime:
        return local_midnight_utc(self.next_first)


def local_midnight_utc(day: dt.date) -> dt.datetime:
    """The start of ``day`` in the instance's time zone, as stored times are: naive UTC."""
    local = dt.datetime.combine(day, dt.time.min, tzinfo=clock.zone())
    return local.astimezone(dt.timezone.utc).replace(tzinfo=None)


# ASCII digits only ("\d" would take other scripts' digits too).
_MONTH_PATTERNS = (re.compile(r"([0-9]{4})-([0-9]{1,2})"), re.compile(r"([0-9]{1,2})/([0-9]{4})"))


def parse_month(text: str) -> Month | None:
    """``2025-03`` (what ``<input type="month">`` sends) or ``03/2025`` / ``3/2025`` (as written in
    Vietnam, and what a browser without a month picker lets people type); None if neither."""
    text = (text or "").strip()
    for number, pattern in enumerate(_MONTH_PATTERNS):
        match = pattern.fullmatch(text)
        if match:
            year, month = (int(match.group(1)), int(match.group(2))) if number == 0 else \
                (int(match.group(2)), int(match.group(1)))
            if 1 <= month <= 12 and FIRST_YEAR <= year <= 9998:
                return Month(year, month)
    return None


def last_month(today: dt.date | None = None) -> Month:
    """The default month: the last whole month."""
    return Month.of(today or clock.today()).shift(-1)


def month_span(last: Month, count: int) -> list[Month]:
    """``count`` months ending with ``last``, oldest first."""
    return [last.shift(i - count + 1) for i in range(count)]


# -- figures ------------------------------------------------------------------------------------

@dataclass
class Figures:
    accounts: int = 0
    accounts_logged_in: int = 0
    logins: int = 0
    due: int = 0
    on_time: int = 0
    late: int = 0
    returned: int = 0
    days_sum: int = 0
    days_count: int = 0
    problems: int = 0  # problems and proposals filed by the unit's people (core.feedback, Điều 9.1c, 9.4)
    proposals: int = 0

    @property
    def not_submitted(self) -> int:
        return self.due - self.on_time - self.late

    @property
    def average_days(self) -> float | None:
        return round(self.days_sum / self.days_count, 1) if self.days_count else None

    def add(self, other: "Figures") -> "Figures":
        for name in ("accounts", "accounts_logged_in", "logins", "due", "on_time", "late", "returned",
                     "days_sum", "days_count", "problems", "proposals"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        return self

    def values(self) -> list:
        """The figures in ``COLUMNS`` order (the average None when nothing was sent)."""
        return [getattr(self, name) for name in COLUMNS]

    def empty(self) -> bool:
        return not any((self.accounts, self.logins, self.due, self.problems, self.proposals))


@dataclass
class UnitUsage:
    unit: Unit
    depth: int
    months: list[Figures]
    total: Figures  # over the range: accounts at its end, accounts that logged in at least once in it


@dataclass
class KindUsage:
    kind: str
    units: int
    months: list[Figures]
    total: Figures


@dataclass
class Usage:
    months: list[Month]
    root: Unit | None  # the unit the report was narrowed to; None: every unit the reader sees
    everything: bool  # the reader sees every unit (a system administrator)
    units: list[UnitUsage]
    by_month: list[Figures] = field(default_factory=list)
    by_kind: list[KindUsage] = field(default_factory=list)
    total: Figures = field(default_factory=Figures)
    tops: list[Unit] = field(default_factory=list)  # the tops of the subtrees shown (not for everything)


# -- who sees which units -----------------------------------------------------------------------

def scope_roots(access, unit_id: int | None = None) -> list[int] | None:
    """The tops of the subtrees the report covers: ``unit_id``'s when given (NotFound unless the reader
    administers it), else the reader's (None: every unit, for a system administrator)."""
    if unit_id is not None:
        chain = ancestor_ids(unit_id) if isinstance(unit_id, int) else []
        if not chain or not access.allowed(PERMISSION, chain):  # no chain: no such unit
            raise NotFound()
        return [unit_id]
    return access.roots(PERMISSION)


def _units(roots: list[int] | None) -> list[Unit]:
    columns = "u.id, u.code, u.name, u.kind, u.parent_id, u.valid_from, u.valid_to"
    if roots is None:
        return list(Unit.raw(f"SELECT {columns} FROM core_unit u"))  # nosec B608 (columns: a constant)
    if not roots:
        return []
    param = db.param
    marks = ", ".join([param] * len(roots))
    # UNION, not UNION ALL: overlapping subtrees (grants at a unit and at its parent) come once. Only the
    # constant columns and the driver's placeholders are put into the SQL; the ids are bound (nosec B608).
    return list(Unit.raw(
        f"""WITH RECURSIVE down(id) AS (
                SELECT id FROM core_unit WHERE id IN ({marks})
                UNION
                SELECT c.id FROM core_unit c JOIN down ON c.parent_id = down.id
            ) SELECT {columns} FROM core_unit u JOIN down ON down.id = u.id""", *roots))  # nosec B608


# By the first two columns' positions: PostgreSQL does not see a month's CASE in GROUP BY as the
# same expression as in the SELECT list, each having its own parameters.
BY_UNIT_AND_MONTH = (SQL("1"), SQL("2"))


def _within(column, ids: list[int] | None):
    return SQL("1 = 1") if ids is None else column.in_(ids)


def _bucket(column, bounds: list):
    """The index of the month a value falls in: ``bounds`` are the months' exclusive ends, in order
    (the caller's WHERE keeps only values inside the range)."""
    return Case(None, [(column < end, index) for index, end in enumerate(bounds)], None)


# -- the grouped queries ------------------------------------------------------------------------

def _accounts(ids, months: list[Month]) -> dict[int, list[int]]:
    """unit → enabled accounts created before each month's end."""
    ends = [m.utc_end for m in months]
    # Created before the range: counted from its first month (index -1).
    bucket = Case(None, [(User.created_at < months[0].utc_start, -1)]
                  + [(User.created_at < end, index) for index, end in enumerate(ends)], None)
    query = (User.select(User.unit_id, bucket.alias("b"), fn.COUNT(User.id).alias("n"))
             .where((User.is_active == True) & (User.created_at < ends[-1]) & _within(User.unit_id, ids))  # noqa: E712
             .group_by(*BY_UNIT_AND_MONTH).tuples())
    found: dict[int, list[int]] = {}
    for unit_id, index, count in query:
        counts = found.setdefault(unit_id, [0] * len(months))
        for later in range(max(int(index), 0), len(months)):  # created then: counted in every month after
            counts[later] += count
    return found


def _login_filter(ids, start: dt.datetime, end: dt.datetime):
    event = AuditEvent
    return ((event.action == LOGIN_ACTION) & (event.result == "ok") & (event.at >= start) & (event.at < end)
            & ~event.details.contains(PENDING_LOGIN) & _within(event.unit_id, ids))


def _own_account():
    """The login's account is, today, an enabled account of the unit it logged in under."""
    return Case(None, [((User.is_active == True) & (User.unit == AuditEvent.unit_id), AuditEvent.actor_id)],  # noqa: E712
                None)


def _logins(ids, months: list[Month]) -> dict[tuple[int, int], tuple[int, int]]:
    """(unit, month index) → (logins, distinct accounts of the unit that logged in)."""
    bucket = _bucket(AuditEvent.at, [m.utc_end for m in months])
    query = (AuditEvent.select(AuditEvent.unit_id, bucket.alias("b"), fn.COUNT(AuditEvent.id),
                               fn.COUNT(fn.DISTINCT(_own_account())))
             .join(User, JOIN.LEFT_OUTER, on=(User.id == AuditEvent.actor_id))
             .where(_login_filter(ids, months[0].utc_start, months[-1].utc_end))
             .group_by(*BY_UNIT_AND_MONTH).tuples())
    return {(unit_id, int(index)): (logins, people) for unit_id, index, logins, people in query
            if unit_id is not None}


def _people_over_range(ids, months: list[Month]) -> dict[int, int]:
    """unit → distinct accounts of the unit that logged in at least once in the range."""
    query = (AuditEvent.select(AuditEvent.unit_id, fn.COUNT(fn.DISTINCT(_own_account())))
             .join(User, JOIN.LEFT_OUTER, on=(User.id == AuditEvent.actor_id))
             .where(_login_filter(ids, months[0].utc_start, months[-1].utc_end))
             .group_by(AuditEvent.unit_id).tuples())
    return {unit_id: people for unit_id, people in query if unit_id is not None}


def _local_date_sqlite(value) -> str | None:
    """SQLite has no time zones: the local day of a stored (UTC) time, computed here."""
    if value is None:
        return None
    try:
        stored = dt.datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return clock.local(stored).date().isoformat()


def _days_to_submit(version):
    """Local day of the first submission minus the period's last day, in whole days."""
    if is_sqlite():
        # Registered on the connection the query runs on (a call into the driver, no statement).
        db.connection().create_function("baocao_local_date", 1, _local_date_sqlite, deterministic=True)
        return fn.julianday(fn.baocao_local_date(version.submitted_at)) - fn.julianday(Report.period_end)
    local_day = fn.timezone(zone_name(), fn.timezone("UTC", version.submitted_at)).cast("date")
    return local_day - Report.period_end


def _reports(ids, months: list[Month]) -> dict[tuple[int, int], tuple]:
    """(unit, month index) → (due, on time, late, returned, days sum, days count)."""
    first = ReportVersion.alias()
    bucket = _bucket(Report.deadline, [m.next_first for m in months])
    sent = first.id.is_null(False)
    sent_back = fn.EXISTS(ReportEvent.select(SQL("1"))
                          .where((ReportEvent.report == Report.id) & ReportEvent.action.in_(SENT_BACK)))
    days = _days_to_submit(first)
    query = (Report.select(Report.unit_id, bucket.alias("b"), fn.COUNT(Report.id),
                           fn.SUM(Case(None, [(sent & (first.late == False), 1)], 0)),  # noqa: E712
                           fn.SUM(Case(None, [(sent & (first.late == True), 1)], 0)),  # noqa: E712
                           fn.SUM(Case(None, [(sent_back, 1)], 0)),
                           fn.SUM(days), fn.COUNT(days))
             .join(first, JOIN.LEFT_OUTER, on=((first.report == Report.id) & (first.number == 1)))
             .where((Report.deadline >= months[0].first) & (Report.deadline < months[-1].next_first)
                    & (Report.kind != CONSOLIDATED_KIND) & _within(Report.unit_id, ids))
             .group_by(*BY_UNIT_AND_MONTH).tuples())
    return {(unit_id, int(index)): (due, int(on_time or 0), int(late or 0), int(back or 0),
                                    int(round(days_sum or 0)), days_count)
            for unit_id, index, due, on_time, late, back, days_sum, days_count in query}


# -- the report ---------------------------------------------------------------------------------

def _tree_order(units: list[Unit]) -> list[tuple[Unit, int]]:
    """Parents before their children, siblings by kind then name (as the unit tree shows them)."""
    present = {u.id for u in units}
    children: dict[int | None, list[Unit]] = {}
    for unit in sorted(units, key=sort_key):
        children.setdefault(unit.parent_id if unit.parent_id in present else None, []).append(unit)
    ordered: list[tuple[Unit, int]] = []
    stack = [(u, 0) for u in reversed(children.get(None, []))]
    seen: set[int] = set()
    while stack:
        unit, depth = stack.pop()
        if unit.id in seen:
            continue
        seen.add(unit.id)
        ordered.append((unit, depth))
        stack.extend((c, depth + 1) for c in reversed(children.get(unit.id, [])))
    return ordered


def _in_range(unit: Unit, months: list[Month]) -> bool:
    start, end = months[0].first, months[-1].next_first - dt.timedelta(days=1)
    return (unit.valid_from is None or unit.valid_from <= end) and (unit.valid_to is None or unit.valid_to >= start)


def compute(access, last: Month, count: int = 1, *, unit_id: int | None = None) -> Usage:
    """The usage of every unit the reader administers (or of ``unit_id``'s subtree), for the ``count``
    months ending with ``last``. A unit that did not exist in the range is left out unless it has
    figures (nothing counted is ever dropped)."""
    count = max(1, min(int(count), MAX_MONTHS))
    months = month_span(last, count)
    roots = scope_roots(access, unit_id)
    units = _units(roots)
    ids = None if roots is None else [u.id for u in units]
    if ids == []:
        return Usage(months, None, False, [])
    accounts = _accounts(ids, months)
    logins = _logins(ids, months)
    people = _people_over_range(ids, months) if count > 1 else \
        {unit: seen for (unit, _), (_, seen) in logins.items()}
    reports = _reports(ids, months)
    filed = feedback.counts_by_unit_month(months[0].first, months[-1].next_first - dt.timedelta(days=1))

    rows = []
    for unit, depth in _tree_order(units):
        per_month = []
        for index in range(count):
            figures = Figures(accounts=accounts.get(unit.id, [0] * count)[index])
            figures.logins, figures.accounts_logged_in = logins.get((unit.id, index), (0, 0))
            (figures.due, figures.on_time, figures.late, figures.returned, figures.days_sum,
             figures.days_count) = reports.get((unit.id, index), (0, 0, 0, 0, 0, 0))
            counts = filed.get((unit.id, months[index].first))
            if counts is not None:
                figures.problems, figures.proposals = counts.problems, counts.proposals
            per_month.append(figures)
        total = Figures()
        for figures in per_month:
            total.add(figures)
        total.accounts = per_month[-1].accounts
        total.accounts_logged_in = people.get(unit.id, 0)
        if _in_range(unit, months) or not total.empty():
            rows.append(UnitUsage(unit, depth, per_month, total))

    by_month = [Figures() for _ in months]
    kinds: dict[str, KindUsage] = {}
    overall = Figures()
    for row in rows:
        kind = kinds.setdefault(row.unit.kind, KindUsage(row.unit.kind, 0, [Figures() for _ in months], Figures()))
        kind.units += 1
        for index, figures in enumerate(row.months):
            by_month[index].add(figures)
            kind.months[index].add(figures)
        kind.total.add(row.total)
        overall.add(row.total)
    order = {kind: i for i, kind in enumerate(UNIT_KINDS)}
    root = next((u for u in units if u.id == unit_id), None)
    inside = {u.id for u in units}
    # A grant inside another one's subtree is not a top of its own.
    tops = sorted((u for u in units if roots and u.id in roots and u.parent_id not in inside), key=sort_key)
    return Usage(months, root, roots is None, rows, by_month,
                 sorted(kinds.values(), key=lambda k: order.get(k.kind, len(order))), overall, tops)


# -- exports ------------------------------------------------------------------------------------

def _t(lang: str, key: str, **params) -> str:
    from core.i18n import core_catalog

    return core_catalog().gettext(lang, key, **params)


def column_labels(lang: str) -> list[str]:
    return [_t(lang, f"usage.col.{name}") for name in COLUMNS]


def kind_label(kind: str, lang: str) -> str:
    return _t(lang, f"unit.kind.{kind}")


def scope_label(usage: Usage, lang: str) -> str:
    if usage.root is not None:
        return _t(lang, "usage.scope.unit", name=usage.root.name)
    if usage.everything:
        return _t(lang, "usage.scope.all")
    names = ", ".join(unit.name for unit in usage.tops)
    return _t(lang, "usage.scope.units", names=names) if names else _t(lang, "usage.scope.none")


def range_label(usage: Usage, lang: str) -> str:
    first, last = usage.months[0], usage.months[-1]
    if first == last:
        return _t(lang, "usage.range.one", month=last.label(lang))
    return _t(lang, "usage.range.many", first=first.label(lang), last=last.label(lang))


def filename(usage: Usage, extension: str) -> str:
    first, last = usage.months[0], usage.months[-1]
    span = last.key if first == last else f"{first.key}_{last.key}"
    return f"tinh-hinh-su-dung-{span}.{extension}"


def _parent_names(usage: Usage) -> dict[int, str]:
    names = {row.unit.id: row.unit.name for row in usage.units}
    return {row.unit.id: names.get(row.unit.parent_id, "") for row in usage.units}


def workbook(usage: Usage, lang: str, *, scope: str, by: str, now: dt.datetime) -> bytes:
    """The report as an .xlsx: a summary sheet (by month, by level), then one sheet per month and,
    over several months, one for the whole range; every figure a number."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    bold, fill = Font(bold=True), PatternFill("solid", fgColor="DCE6F1")
    head = Alignment(wrap_text=True, vertical="top")
    labels = column_labels(lang)
    wb = Workbook(write_only=True)

    def cell(ws, value, **style):
        return export_safety.write_only_cell(ws, value, **style)

    def numbers(ws, figures: Figures, font=None) -> list:
        out = []
        for name, value in zip(COLUMNS, figures.values()):
            style = {"number_format": "0.0" if name == "average_days" else "#,##0"}
            if font is not None:
                style["font"] = font
            out.append(cell(ws, value, **style) if value is not None else None)
        return out

    def preamble(ws, title: str, widths: list[int]) -> None:
        for i, width in enumerate(widths, start=1):
            ws.column_dimensions[get_column_letter(i)].width = width
        ws.freeze_panes = "A8"  # before the first row: a write-only sheet writes its view with it
        ws.append([cell(ws, title, font=Font(bold=True, size=14))])
        ws.append([cell(ws, _t(lang, "usage.export.scope"), font=bold), cell(ws, scope)])
        ws.append([cell(ws, _t(lang, "usage.export.range"), font=bold), cell(ws, range_label(usage, lang))])
        ws.append([cell(ws, _t(lang, "usage.export.by"), font=bold), cell(ws, by)])
        ws.append([cell(ws, _t(lang, "usage.export.at"), font=bold),
                   cell(ws, f"{format_datetime(now, lang)} ({_t(lang, 'usage.export.timezone', zone=zone_name())})")])
        ws.append([])

    def header(ws, first: list[str]) -> None:
        ws.append([cell(ws, text, font=bold, fill=fill, alignment=head) for text in first + labels])

    # The summary: the scope month by month, then by level over the range.
    ws = wb.create_sheet(_t(lang, "usage.export.summary_sheet")[:31])
    preamble(ws, _t(lang, "usage.title"), [22, 16] + [14] * len(COLUMNS))
    header(ws, [_t(lang, "usage.col.month"), _t(lang, "usage.col.units")])
    for month, figures in zip(usage.months, usage.by_month):
        ws.append([cell(ws, month.label(lang)), len(usage.units)] + numbers(ws, figures))
    ws.append([])
    ws.append([cell(ws, _t(lang, "usage.by_kind.title"), font=bold)])
    header(ws, [_t(lang, "usage.col.kind"), _t(lang, "usage.col.units")])
    for kind in usage.by_kind:
        ws.append([cell(ws, kind_label(kind.kind, lang)), kind.units] + numbers(ws, kind.total))
    ws.append([cell(ws, _t(lang, "usage.total"), font=bold), cell(ws, len(usage.units), font=bold)]
              + numbers(ws, usage.total, bold))
    ws.append([])
    for line in _notes(lang):
        ws.append([cell(ws, line)])

    parents = _parent_names(usage)

    def unit_sheet(title: str, pick) -> None:
        sheet = wb.create_sheet(title[:31])
        preamble(sheet, _t(lang, "usage.title"), [6, 16, 36, 20, 30] + [14] * len(COLUMNS))
        header(sheet, [_t(lang, "usage.col.number"), _t(lang, "usage.col.code"), _t(lang, "usage.col.unit"),
                       _t(lang, "usage.col.kind"), _t(lang, "usage.col.parent")])
        for number, row in enumerate(usage.units, start=1):
            sheet.append([number, cell(sheet, row.unit.code), cell(sheet, row.unit.name),
                          cell(sheet, kind_label(row.unit.kind, lang)), cell(sheet, parents[row.unit.id])]
                         + numbers(sheet, pick(row)))
        totals = Figures()
        for row in usage.units:
            totals.add(pick(row))
        sheet.append([None, None, cell(sheet, _t(lang, "usage.total"), font=bold), None, None]
                     + numbers(sheet, totals, bold))

    for index, month in enumerate(usage.months):
        unit_sheet(_t(lang, "usage.export.month_sheet", month=month.key), lambda row, i=index: row.months[i])
    if len(usage.months) > 1:
        unit_sheet(_t(lang, "usage.export.range_sheet"), lambda row: row.total)
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


def csv_bytes(usage: Usage, lang: str) -> bytes:
    """One line per unit and month, figures as plain numbers (a dot before decimals), UTF-8 with a
    byte order mark so that Excel reads the Vietnamese letters."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([_t(lang, "usage.col.month"), _t(lang, "usage.col.code"), _t(lang, "usage.col.unit"),
                     _t(lang, "usage.col.kind")] + column_labels(lang))
    for index, month in enumerate(usage.months):
        for row in usage.units:
            values = ["" if v is None else v for v in row.months[index].values()]
            writer.writerow(export_safety.csv_row([month.key, row.unit.code, row.unit.name,
                                                   kind_label(row.unit.kind, lang)]) + values)
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def zone_name() -> str:
    return getattr(clock.zone(), "key", None) or str(clock.zone())


# The notes that say how each figure is counted (usage.note.<name>), on the screen and in the file.
NOTES = ("accounts", "logins", "due", "on_time", "returned", "average_days", "feedback", "time_zone")


def _notes(lang: str) -> list[str]:
    return [_t(lang, "usage.note.title")] + [_t(lang, f"usage.note.{name}", zone=zone_name()) for name in NOTES]
