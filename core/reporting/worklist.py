"""A person's work list, as the home page shows it: what to do next, in four parts.

- **Reports to send**: the open reports (not started, draft, returned) of the units where the person
  holds ``core.report.submit`` — the rule of the /reports page (``opening.readable(role="send")``).
  Returned ones come first, with the receiver's reason (the latest return or reopen event); then by
  deadline. Each carries the working days left before its deadline, counted with the working-day
  calendar every deadline is computed with (``core.regimes.workdays.work_calendar``), or the days
  it is late.
- **Reports to review**: the submitted reports whose receiver lies where the person holds
  ``core.report.receive`` — the rule and the order of the receiver's queue (``queue.queue``): the
  oldest submission first.
- **Late units**: reports past their deadline and not sent, of the units below where the person
  holds ``core.unit.view`` or received where they hold ``core.report.receive``, counted per regime
  and period with the names of the first few units. The person's own reports (where they hold
  ``core.report.submit``) are left out: they are in the first part already, with their days late.
- **Unread notifications**: how many, and the newest few, worded as on the notifications page.

Rights are read as everywhere: a grant covers its unit and that unit's subtree. A system
administrator holds every right without a grant, but has work here only through a grant, as
notifications reach them (``core.reporting.notifications``): the operator is not asked to send or
review every report of the province.

Cheap by construction: each part is one query, whatever the number of reports (a window function
counts what is not shown); the subtrees of the person's grants are read once for all parts. A
department receiving from 80 communes costs six queries: its grant's subtree, the reports to review,
the late units, the unread notifications and the two reads that word them (tests/core/test_worklist.py
counts them; the whole home page, ten). A unit's reporter, who watches no unit beyond the ones they
send for and receives from none, costs two: the reports to send walk the grants' subtrees in their
own query, and the unread notifications. The reports to send also carry the working-day calendar's
change counter (``core.regimes.workdays.GENERATION``): its stored days are kept per process and
read again only after a change, with no query of their own.

Cheap to run, too: the home page asks for it at every visit. Each query is built and compiled by
peewee once (``core.db.Prepared``) and reads only the columns the list shows of the units, regimes
and people around a report (a regime row carries its whole form).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from peewee import JOIN, Case, Value, fn

from core import clock
from core.db import Prepared
from core.generations import Generation
from core.models import Unit, User
from core.regimes.regimes import Regime
from core.regimes.workdays import GENERATION as CALENDAR_GENERATION
from core.regimes.workdays import StoredCalendar, WorkCalendar, work_calendar
from core.reporting.data import EDITABLE, RECEIVE, SUBMIT
from core.reporting.notifications import Notification, link_of, report_names, text
from core.reporting.opening import Report
from core.reporting.queue import Filters as QueueFilters
from core.reporting.versions import ReportEvent, ReportVersion
from core.units.tree import subtree_ids

VIEW = "core.unit.view"
LIMIT = 10  # rows shown in each part; the rest is one click away (the /reports page, the queue …)
LATE_NAMES = 5  # units named under each late regime and period
LATE_GROUPS = 10  # late regimes and periods shown
UNREAD_SHOWN = 5


@dataclass
class Part:
    """One part of the list: the rows shown, how many there are in all, and whether the part is the
    person's job at all (``applies`` False: they hold the right nowhere, and the page leaves it out)."""

    items: list = field(default_factory=list)
    total: int = 0
    applies: bool = True
    more: bool = False  # late units: more regimes and periods than shown

    @property
    def hidden(self) -> int:
        return max(0, self.total - len(self.items))


@dataclass
class ToSend:
    report: Report  # with .unit, .regime and .receiver (None: no receiver in the system): of those,
    # the id, code and name (and the regime's version) only
    reason: str  # the receiver's reason, for a returned report
    working_days_left: int | None  # working days after today up to the deadline; None once late
    days_late: int  # calendar days since the deadline (0 while on time)

    @property
    def returned(self) -> bool:
        return self.report.status == "returned"

    @property
    def late(self) -> bool:
        return self.days_late > 0


@dataclass
class ToReview:
    report: Report  # with .unit and .regime: their id, code and name (and the regime's version) only
    version_number: int | None  # the submission's number: 2 and more is a report sent again


@dataclass
class LateGroup:
    """The units late with one regime's report for one period."""

    regime_code: str
    regime_name: str
    period_start: dt.date
    period_end: dt.date
    label: str
    deadline: dt.date  # the earliest deadline of the group (levels may have their own)
    count: int  # units late
    units: list[str]  # the first LATE_NAMES of them, by name
    received: int  # how many of them the person receives (the queue shows those)

    @property
    def period_key(self) -> str:
        return f"{self.period_start.isoformat()}/{self.period_end.isoformat()}"

    def queue_params(self) -> dict:
        """The receiver's queue showing these late reports (every status, late only)."""
        return QueueFilters(status="", regime=self.regime_code, period=self.period_key, late=True).params()


@dataclass
class WorkList:
    to_send: Part
    to_review: Part
    late: Part
    unread: Part
    today: dt.date

    @property
    def empty(self) -> bool:
        return not (self.to_send.total or self.to_review.total or self.late.total or self.unread.total)


class _Scope:
    """The units where the person holds a right: each grant's unit and its subtree (the rule of
    ``opening.units_with``), every subtree read once for the whole list."""

    def __init__(self, access):
        self.access = access
        self._subtrees: dict[int, list[int]] = {}

    def roots(self, code: str) -> list[int]:
        roots = self.access.roots(code)
        if roots is None:  # an administrator: work only through a grant (see the module's docstring)
            roots = sorted({unit_id for unit_id, codes in self.access.grants if code in codes})
        return roots

    def units(self, code: str) -> set[int]:
        found: set[int] = set()
        for root in self.roots(code):
            if root not in self._subtrees:
                self._subtrees[root] = subtree_ids(root)
            found.update(self._subtrees[root])
        return found


# -- reports to send --------------------------------------------------------------------------------

def _shown() -> list:
    """The columns the list shows of a report's unit and regime."""
    return [Unit.id, Unit.code, Unit.name, Regime.id, Regime.code, Regime.version, Regime.name]


def _to_send_query(p, below: bool):
    """``p.units``; ``below``: the units of ``p.roots`` and everything below them, walked in the same
    query (as ``core.units.tree.subtree_ids`` walks them), saving their read."""
    receiver = Unit.alias()
    # The reason in the same query, looked up for returned rows only (CASE: not for every open report).
    last_return = (ReportEvent.select(ReportEvent.reason)
                   .where((ReportEvent.report == Report.id) & ReportEvent.action.in_(("return", "reopen")))
                   .order_by(ReportEvent.id.desc()).limit(1))
    reason = Case(None, [(Report.status == "returned", last_return)], None)
    returned_first = Case(None, [(Report.status == "returned", 0)], 1)
    # The calendar's change counter on the way (NULL: never raised), saving the calendar a read.
    calendar = Generation.select(Generation.value).where(Generation.key == CALENDAR_GENERATION)
    query = (Report.select(Report, *_shown(), receiver.id, receiver.code, receiver.name,
                           reason.alias("return_reason"), fn.COUNT(Report.id).over().alias("total"),
                           calendar.alias("calendar_generation"))
             .join(Unit, on=(Report.unit == Unit.id)).switch(Report)
             .join(Regime, on=(Report.regime == Regime.id)).switch(Report)
             .join(receiver, JOIN.LEFT_OUTER, on=(Report.receiver == receiver.id), attr="receiver"))
    if below:
        top, child = Unit.alias("top"), Unit.alias("child")
        down = top.select(top.id).where(top.id.in_(p.roots)).cte("down", recursive=True, columns=("id",))
        down = down.union_all(child.select(child.id).join(down, on=(child.parent == down.c.id)))
        units = Report.unit.in_(down.select_from(down.c.id))  # the WITH goes inside the IN
    else:
        units = Report.unit.in_(p.units)
    return (query.where(units & Report.status.in_(list(EDITABLE)))
            .order_by(returned_first, Report.deadline, Unit.name, Report.id)
            .limit(p.limit))


_TO_SEND = Prepared(lambda p: _to_send_query(p, below=False))
_TO_SEND_BELOW = Prepared(lambda p: _to_send_query(p, below=True))


def reports_to_send(units: set[int], *, today: dt.date, calendar: WorkCalendar, limit: int = LIMIT) -> Part:
    """The open reports of ``units``: returned first (with the reason), then the nearest deadline."""
    if not units:
        return Part(applies=False)
    return _to_send_part(list(_TO_SEND.run(units=tuple(sorted(units)), limit=limit)), today, calendar)


def _reports_to_send_below(roots: list[int], *, today: dt.date, calendar: WorkCalendar,
                           limit: int = LIMIT) -> Part:
    """``reports_to_send`` of the units of ``roots`` and their subtrees, walked in the same query."""
    if not roots:
        return Part(applies=False)
    return _to_send_part(list(_TO_SEND_BELOW.run(roots=tuple(roots), limit=limit)), today, calendar)


def _to_send_part(rows: list, today: dt.date, calendar: WorkCalendar) -> Part:
    if rows and isinstance(calendar, StoredCalendar):
        calendar.known_generation(rows[0].calendar_generation or 0)
    left: dict[dt.date, int] = {}  # reports share deadlines: each counted once
    items = []
    for r in rows:
        if today > r.deadline:
            items.append(ToSend(r, r.return_reason or "", None, (today - r.deadline).days))
            continue
        if r.deadline not in left:
            left[r.deadline] = calendar.working_days_between(today, r.deadline)
        items.append(ToSend(r, r.return_reason or "", left[r.deadline], 0))
    return Part(items, rows[0].total if rows else 0)


# -- reports to review ------------------------------------------------------------------------------

def _to_review_query(p):
    latest = ReportVersion.select(fn.MAX(ReportVersion.number)).where(ReportVersion.report == Report.id)
    return (Report.select(Report, *_shown(), latest.alias("version_number"),
                          fn.COUNT(Report.id).over().alias("total"))
            .join(Unit, on=(Report.unit == Unit.id)).switch(Report)
            .join(Regime, on=(Report.regime == Regime.id)).switch(Report)
            .where(Report.receiver.in_(p.units) & (Report.status == "submitted"))
            .order_by(Report.submitted_at, Report.deadline, Unit.name, Report.id)
            .limit(p.limit))


_TO_REVIEW = Prepared(_to_review_query)


def reports_to_review(units: set[int], *, limit: int = LIMIT) -> Part:
    """Submitted reports received by ``units``, the oldest submission first (as the queue)."""
    if not units:
        return Part(applies=False)
    rows = list(_TO_REVIEW.run(units=tuple(sorted(units)), limit=limit))
    return Part([ToReview(r, r.version_number) for r in rows], rows[0].total if rows else 0)


# -- late units -------------------------------------------------------------------------------------

def late_units(view: set[int], receive: set[int], own: set[int], *, today: dt.date,
               names: int = LATE_NAMES, groups: int = LATE_GROUPS) -> Part:
    """Reports past their deadline and not sent, of the units in ``view`` or received by ``receive``,
    but not of ``own`` (the person's to send), per regime code and period, oldest period first.

    One query: window functions number the units of each group (only the first ``names`` come
    back) and count them, and rank the groups (one more than ``groups`` tells there are more)."""
    watched = view - own
    if not watched and not receive:
        return Part(applies=False)
    conditions = []
    if watched:
        conditions.append(Report.unit.in_(sorted(watched)))
    if receive:
        conditions.append(Report.receiver.in_(sorted(receive)))
    where = conditions[0] if len(conditions) == 1 else conditions[0] | conditions[1]
    if own:
        where &= Report.unit.not_in(sorted(own))
    where &= Report.status.in_(list(EDITABLE)) & (Report.deadline < today)
    received = Case(None, [(Report.receiver.in_(sorted(receive)), 1)], 0) if receive else Value(0)
    group = [Report.period_start, Report.period_end, Regime.code]  # ranked in this order: oldest period first
    inner = (Report.select(Regime.code.alias("code"), Regime.name.alias("regime_name"),
                           Regime.version.alias("version"), Report.period_start.alias("period_start"),
                           Report.period_end.alias("period_end"), Report.label.alias("label"),
                           Unit.name.alias("unit_name"),
                           fn.ROW_NUMBER().over(partition_by=group, order_by=[Unit.name, Report.id]).alias("n"),
                           fn.DENSE_RANK().over(order_by=group).alias("g"),
                           fn.COUNT(Report.id).over(partition_by=group).alias("late_count"),
                           fn.MIN(Report.deadline).over(partition_by=group).alias("deadline"),
                           fn.SUM(received).over(partition_by=group).alias("received"))
             .join(Unit, on=(Report.unit == Unit.id)).switch(Report)
             .join(Regime, on=(Report.regime == Regime.id))
             .where(where)).alias("late")
    query = (Report.select(inner.c.code, inner.c.regime_name, inner.c.version, inner.c.period_start,
                           inner.c.period_end, inner.c.label, inner.c.unit_name, inner.c.g, inner.c.late_count,
                           inner.c.deadline, inner.c.received)
             .from_(inner).where((inner.c.n <= names) & (inner.c.g <= groups + 1))
             .order_by(inner.c.g, inner.c.n).dicts())
    found: dict[int, LateGroup] = {}
    versions: dict[int, int] = {}
    for row in query:
        g = row["g"]
        group_row = found.get(g)
        if group_row is None:
            group_row = found[g] = LateGroup(row["code"], row["regime_name"], _date(row["period_start"]),
                                             _date(row["period_end"]), row["label"], _date(row["deadline"]),
                                             int(row["late_count"]), [], int(row["received"] or 0))
            versions[g] = row["version"]
        elif row["version"] > versions[g]:  # the newest version names the regime
            group_row.regime_name, versions[g] = row["regime_name"], row["version"]
        group_row.units.append(row["unit_name"])
    shown = [found[g] for g in sorted(found)]
    return Part(shown[:groups], sum(g.count for g in shown[:groups]), more=len(shown) > groups)


def _date(value) -> dt.date:
    """A date column read through a subquery: SQLite hands back its text."""
    return dt.date.fromisoformat(value) if isinstance(value, str) else value


# -- unread notifications ---------------------------------------------------------------------------

def _unread_query(p):
    actor = User.alias()
    return (Notification.select(Notification, actor.id, actor.full_name,
                                fn.COUNT(Notification.id).over().alias("total"))
            .join(actor, JOIN.LEFT_OUTER, on=(Notification.actor == actor.id))
            .where((Notification.user == p.user) & Notification.read_at.is_null())
            .order_by(Notification.created_at.desc(), Notification.id.desc()).limit(p.limit))


_UNREAD = Prepared(_unread_query)


def unread_notifications(user_id: int, lang: str, *, limit: int = UNREAD_SHOWN) -> Part:
    """The person's unread notifications, newest first, worded in ``lang`` (as the inbox words them)."""
    rows = list(_UNREAD.run(user=user_id, limit=limit))
    names = report_names({n.report_id for n in rows} - {None})
    items = [{"id": n.id, "text": text(n, names.get(n.report_id, {}), lang), "at": n.created_at,
              "report_id": n.report_id, "action": n.action, "link": link_of(n),
              "actor": n.actor.full_name if n.actor_id is not None else ""} for n in rows]
    return Part(items, rows[0].total if rows else 0)


# -- the whole list ---------------------------------------------------------------------------------

def work_list(access, *, lang: str = "vi", today: dt.date | None = None, settings=None,
              calendar: WorkCalendar | None = None) -> WorkList:
    """The four parts for the person of ``access``; ``settings``' calendar counts the working days
    (``calendar`` given: that one)."""
    today = today or clock.today()
    scope = _Scope(access)
    # The stored calendar reads its days only when first asked: no query when nothing is to send.
    calendar = calendar or work_calendar(settings)
    receive = scope.units(RECEIVE)
    if receive or not set(scope.roots(VIEW)) <= set(scope.roots(SUBMIT)):
        send, view = scope.units(SUBMIT), scope.units(VIEW)  # the late units need them by id
        to_send = reports_to_send(send, today=today, calendar=calendar)
    else:
        # What the person watches lies within what they send (a unit's reporter, most often): no
        # late unit is left to show, and the query walks the subtrees itself, saving their read.
        send, view = set(), set()
        to_send = _reports_to_send_below(scope.roots(SUBMIT), today=today, calendar=calendar)
    return WorkList(to_send=to_send,
                    to_review=reports_to_review(receive),
                    late=late_units(view, receive, send, today=today),
                    unread=unread_notifications(access.actor.id, lang),
                    today=today)
