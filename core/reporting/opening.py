"""Reports (báo cáo) and opening reporting periods.

One ``Report`` per reporting unit and period of a regime, pointing at the exact regime version it
was opened with. Its deadline is the effective deadline of the level rule that applies to the
unit's kind (the rule whose ``from_kind`` is the unit's kind, otherwise the first, lowest level).
Each report also names its receiver (the unit that reviews it: what the regime's receiving rule
gave for that unit when the period opened — the named unit, the unit's parent or a group's owner)
and its kind: a unit's report, or a receiving unit's consolidated report
(core.reporting.consolidation). The workflow is in core.reporting.workflow.

A plugin's regime (``Regime.plugin``), and a regime issued on a plugin's issuing authority
(``Regime.authority``, core.regimes.authority), opens reports only for the reporting units where
that plugin is switched on (``core.activation``, with the plugin manager the context names:
``core.reporting.events.current``). Switching it off stops new reports there; the reports already
opened stay, readable, with their data.

``open_due_periods`` (the hourly job ``core.open_periods``, and right after a periodic regime is
issued: ``issue_and_open``) opens, for every issued periodic regime, each window that has started —
from the window in progress when the regime took effect onwards, at most ``CATCH_UP_DAYS`` back —
and creates the missing reports: one transaction and one audit event per regime and period. A unit
that already has a report for that period under any version of the regime gets none, so running it
twice, or after a new version is issued, creates nothing new.

Thematic and ad-hoc requests are opened by their issuer with ``open_request``: a window and a
deadline leaving at least one working day after the window's end (Art. 8 cl. 5).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from peewee import JOIN, BooleanField, CharField, DateField, DateTimeField, ForeignKeyField, IntegerField, chunked, fn

from core import clock
from core import audit
from core.activation import enabled_units
from core.db import CoreModel, transaction
from core.reporting import events
from core.regimes.deadlines import DeadlineAfterFirstError, DeadlineRuleError, check_chain
from core.errors import BaocaoError, Forbidden, ValidationError
from core.regimes.forms import FormVersion, latest_published
from core.models import Unit, User, utcnow
from core.regimes.periods import CUSTOM, FREQUENCIES, Window, custom_window, windows
from core.regimes.regimes import (AD_HOC, ISSUED, PERIODIC, THEMATIC, Regime, can_edit, can_issue,
                                  fixed_receiver_id, get_regime, issue, receiver_of, resolve_units)
from core.units.tree import subtree_ids
from core.regimes.workdays import WorkCalendar, work_calendar

log = logging.getLogger("baocao.reports")

STATUSES = ("not_started", "draft", "submitted", "returned", "accepted")
STATUS_LABELS = {"not_started": "reports.status.not_started", "draft": "reports.status.draft",
                 "submitted": "reports.status.submitted", "returned": "reports.status.returned",
                 "accepted": "reports.status.accepted"}
CATCH_UP_DAYS = 400  # a window that ended longer ago than this is never opened late
OPEN_BATCH = 500  # reports a statement inserts (17 values each)


class Report(CoreModel):
    regime = ForeignKeyField(Regime, backref="reports", on_delete="RESTRICT")
    unit = ForeignKeyField(Unit, on_delete="RESTRICT")
    frequency = CharField(max_length=12)
    year = IntegerField()
    period_index = IntegerField(default=0)
    period_start = DateField()
    period_end = DateField()
    label = CharField(max_length=255, default="")
    level = CharField(max_length=255, default="")
    nominal_deadline = DateField()
    deadline = DateField(index=True)
    status = CharField(max_length=12, default="not_started")
    opened_at = DateTimeField(default=utcnow)
    opened_by = ForeignKeyField(User, null=True, on_delete="SET NULL")
    # The form version the report is filled with, fixed when it is opened (a later version of the
    # form does not change it), and the revision every save raises (optimistic locking).
    form_version = ForeignKeyField(FormVersion, null=True, on_delete="RESTRICT")
    revision = IntegerField(default=0)
    updated_at = DateTimeField(null=True)
    updated_by = ForeignKeyField(User, null=True, on_delete="SET NULL", backref="updated_reports")
    # The latest submission (core.reporting.workflow): when, and whether after the deadline.
    submitted_at = DateTimeField(null=True)
    submitted_late = BooleanField(default=False)
    # The unit that reviews it: the regime's receiving unit for a unit's report, the next level up
    # for a consolidated report (kind "consolidated": a receiving unit's own report built from the
    # reports it received). None: no receiver inside the system (sent on to the Government).
    receiver = ForeignKeyField(Unit, null=True, on_delete="RESTRICT", backref="received_reports")
    kind = CharField(max_length=12, default="unit")

    class Meta:
        indexes = ((("regime", "unit", "period_start", "period_end"), True), (("unit", "deadline"), False))

    def late(self, today: dt.date | None = None) -> bool:
        return self.status in ("not_started", "draft", "returned") and (today or clock.today()) > self.deadline


@dataclass
class OpenResult:
    periods: int = 0
    reports: int = 0


def due_windows(regime: Regime, today: dt.date) -> list[Window]:
    """The windows of a periodic regime that have started by ``today``, from the one in progress on
    its ``valid_from`` (and never ending more than CATCH_UP_DAYS ago)."""
    if regime.frequency not in FREQUENCIES:
        return []
    since = max(regime.valid_from or today, today - dt.timedelta(days=CATCH_UP_DAYS))
    found = []
    for year in range(since.year, today.year + 2):
        for w in windows(regime.frequency, year):
            if w.start <= today and w.end >= since and (regime.valid_to is None or w.start < regime.valid_to):
                found.append(w)
    return found


def level_for(rules: list[dict], kind: str) -> str | None:
    """The level whose deadline applies to a unit of ``kind``."""
    if not rules:
        return None
    match = next((r for r in rules if r.get("from_kind") == kind), None) or rules[0]
    return match.get("level") or str(rules.index(match) + 1)


def level_deadlines(regime: Regime, window: Window, calendar: WorkCalendar) -> dict[str, tuple[dt.date, dt.date]]:
    """level → (nominal, effective). Art. 8 was checked at issue; a calendar changed since then
    still gives every report a deadline (and a warning in the log)."""
    rules = regime.rules_by_level()
    try:
        levels = check_chain(window, rules, calendar)
    except (DeadlineRuleError, DeadlineAfterFirstError):
        raise
    except ValidationError:
        log.warning("regime %s: %s breaks Art. 8 cl. 5 with the current calendar", regime, window.interval_text())
        levels = check_chain(window, rules, calendar, strict=False)
    return {lv.level: (lv.nominal, lv.deadline) for lv in levels}


def _existing_unit_ids(regime: Regime, window: Window) -> set[int]:
    """Units that have a report for this window under any version of the regime."""
    query = (Report.select(Report.unit).join(Regime)
             .where((Regime.code == regime.code) & (Report.period_start == window.start)
                    & (Report.period_end == window.end)))
    return {r.unit_id for r in query}


def _open_window(regime: Regime, window: Window, units: list[Unit], calendar: WorkCalendar, *, actor=None,
                 deadlines: dict | None = None, label: str | None = None) -> int:
    with transaction():
        have = _existing_unit_ids(regime, window)
        missing = [u for u in units if u.id not in have]
        if not missing:
            return 0
        by_level = deadlines if deadlines is not None else level_deadlines(regime, window, calendar)
        # The form version in force now stays the report's, whatever later versions change.
        form_version = latest_published(regime.form_id) if regime.form_id else None
        fixed = fixed_receiver_id(regime)  # read once: a group's owner as it is when the period opens
        now = utcnow()
        rows = []
        for unit in missing:
            level = level_for(regime.rules, unit.kind) if deadlines is None else ""
            nominal, effective = by_level.get(level) or next(iter(by_level.values()))
            rows.append(dict(regime=regime.id, unit=unit.id, frequency=window.frequency, year=window.year,
                             period_index=window.index, period_start=window.start, period_end=window.end,
                             label=(label or window.label("vi"))[:255], level=(level or "")[:255],
                             nominal_deadline=nominal, deadline=effective, status="not_started",
                             opened_at=now, opened_by=getattr(actor, "id", None),
                             receiver=receiver_of(regime, unit, fixed),
                             form_version=getattr(form_version, "id", None)))
        # Two workers opening the same period at once: the UNIQUE constraint keeps one row each. In
        # batches: a province-wide period (4,200 units × 17 columns) is more values than one
        # statement may carry (65,535 on PostgreSQL, 32,766 on SQLite).
        for batch in chunked(rows, OPEN_BATCH):
            Report.insert_many(batch).on_conflict_ignore().execute()
        if events.heard("opened"):
            # The rows this call inserted (another opener's, ignored above, carry another time).
            for report in Report.select().where((Report.regime == regime.id) & (Report.period_start == window.start)
                                                & (Report.period_end == window.end) & (Report.opened_at == now)
                                                & Report.unit.in_([u.id for u in missing])):
                events.announce(report, "opened", actor=actor, at=now)
        audit.record("regime.period_open", actor=actor, unit=regime.issuing_unit_id, object_type="regime",
                     object_id=regime.id, details={"code": regime.code, "version": regime.version,
                                                   "period": window.iso_interval, "reports": len(rows)})
    return len(rows)


def reporting_units(regime: Regime, day: dt.date) -> list[Unit]:
    """The units that get a report of ``regime`` opened on ``day``: its reporting units
    (``resolve_units``), and only those where the plugin it belongs to is switched on — the plugin
    that shipped it (``Regime.plugin``) and the plugin whose issuing authority it was issued under
    (``Regime.authority``, "plugin:key"): the administrator's per-unit switch decides which units
    report on a delegated sector's regimes."""
    units = resolve_units(regime, day)
    authority_plugin = (regime.authority or "").partition(":")[0]
    for plugin in dict.fromkeys(p for p in (regime.plugin, authority_plugin) if p):
        if not units:
            break
        on = _switched_on(plugin, [u.id for u in units])
        units = [u for u in units if u.id in on]
    return units


def _switched_on(plugin: str, unit_ids: list[int]) -> set[int]:
    """Which of ``unit_ids`` have ``plugin`` on, with the plugins the context names (without a
    context: only the explicit settings count)."""
    context = events.current.get()
    if context is None:
        return enabled_units(plugin, unit_ids)
    return enabled_units(plugin, unit_ids, context.registry, context.settings, set(context.pm.healthy))


def open_due_periods(today: dt.date | None = None, *, regime_ids=None, calendar: WorkCalendar | None = None
                     ) -> OpenResult:
    """Open every started period of every issued periodic regime (or of ``regime_ids``); idempotent."""
    today = today or clock.today()
    calendar = calendar or work_calendar()
    result = OpenResult()
    query = Regime.select().where((Regime.status == ISSUED) & (Regime.regime_type == PERIODIC))
    if regime_ids is not None:
        query = query.where(Regime.id.in_(list(regime_ids)))
    for regime in query.order_by(Regime.id):
        due = due_windows(regime, today)
        if not due:
            continue
        units = reporting_units(regime, today)
        for window in due:
            # A unit that came into being after a window ended (a commune a merge established, a
            # school opened mid-year) reports from its first period on, not for one before it existed.
            present = [u for u in units if u.valid_from is None or u.valid_from <= window.end]
            try:
                created = _open_window(regime, window, present, calendar)
            except BaocaoError as exc:
                log.error("regime %s, %s: not opened: %s", regime, window.interval_text(), exc)
                continue
            if created:
                result.periods += 1
                result.reports += created
    return result


def issue_and_open(access, regime_id: int, *, calendar: WorkCalendar | None = None, today: dt.date | None = None,
                   policy=None, valid_from: dt.date | None = None) -> tuple[Regime, OpenResult | None]:
    """Issue a draft regime (``core.regimes.regimes.issue``: rights, policy, Art. 7 and Art. 8
    checks) and open a periodic one's started periods at once, with the same calendar and day.
    Returns (regime, OpenResult | None)."""
    calendar = calendar or work_calendar()
    today = today or clock.today()
    regime = issue(access, regime_id, calendar=calendar, today=today, policy=policy, valid_from=valid_from)
    opened = None
    if regime.regime_type == PERIODIC:
        opened = open_due_periods(today, regime_ids=[regime.id], calendar=calendar)
    return regime, opened


def open_request(access, regime_id: int, start, end, deadline, *, label: str = "",
                 calendar: WorkCalendar | None = None, today: dt.date | None = None) -> int:
    """Open a thematic or ad-hoc request: one report per recipient, with the window and deadline
    the issuer sets (Art. 8 cl. 5: at least one working day after the window's end)."""
    calendar = calendar or work_calendar()
    today = today or clock.today()
    regime = get_regime(access, regime_id)
    if not can_issue(access, regime):
        raise Forbidden("regimes.error.no_issue_right")
    if regime.regime_type not in (THEMATIC, AD_HOC) or regime.status != ISSUED:
        raise Forbidden("regimes.error.request_not_open")
    errors: dict[str, str] = {}
    for name, value in (("window_start", start), ("window_end", end), ("deadline", deadline)):
        if not isinstance(value, dt.date):
            errors[name] = "regimes.error.date"
    if not errors and end < start:
        errors["window_end"] = "regimes.error.window_order"
    if not errors and calendar.working_days_between(end, deadline) < 1:
        errors["deadline"] = "regimes.error.request_deadline"
    units = reporting_units(regime, today)
    if not units:
        errors["units"] = "regimes.error.no_recipients"
    if errors:
        raise ValidationError(errors)
    label = " ".join((label or "").split())[:200] or f"{start:%d/%m/%Y} – {end:%d/%m/%Y}"
    window = custom_window(start, end, label)
    if _existing_unit_ids(regime, window):
        raise ValidationError({"window_start": "regimes.error.request_exists"})
    count = Report.select(Report.period_start).join(Regime).where(Regime.code == regime.code).distinct().count()
    window = Window(CUSTOM, end.year, count + 1, start, end, window.custom_labels)
    effective = calendar.next_working_day(deadline)
    return _open_window(regime, window, units, calendar, actor=access.actor, deadlines={"": (deadline, effective)},
                        label=label)


# -- reading ----------------------------------------------------------------------------------------

def regime_reports(regime: Regime, *, period: str = "", unit_id: int | None = None, all_versions: bool = True,
                   access=None):
    """Reports of a regime (every version of its code by default), by period then unit. With
    ``access``, only those the person may see (``regime_scope``): a commune its own, a receiver
    those it receives, the regime's drafters and issuers all."""
    receiver = Unit.alias()
    # The receiving unit comes in the same query: the list shows it on every row.
    query = (Report.select(Report, Unit, Regime, receiver).join(Unit).switch(Report).join(Regime)
             .switch(Report).join(receiver, JOIN.LEFT_OUTER, on=(Report.receiver == receiver.id), attr="receiver"))
    query = query.where(Regime.code == regime.code) if all_versions else query.where(Report.regime == regime)
    if access is not None:
        scope = regime_scope(access, regime)
        if scope is False:
            return []
        if scope is not None:
            query = query.where(scope)
    if period:
        try:
            start, end = (dt.date.fromisoformat(p) for p in period.split("/", 1))
        except ValueError:
            start = end = None
        if start:
            query = query.where((Report.period_start == start) & (Report.period_end == end))
    if unit_id:
        query = query.where(Report.unit == unit_id)
    rows = list(query.order_by(Report.period_start.desc(), Report.period_end.desc(), Unit.code))
    return rows


def regime_scope(access, regime: Regime):
    """Which of a regime's reports ``access`` may see, as a condition on ``Report``: None for all
    (who drafts or issues the regime), False for none, else those ``readable`` gives."""
    if can_edit(access, regime) or can_issue(access, regime):
        return None
    return readable(access)


def regime_periods(regime: Regime, *, access) -> list[dict]:
    """The periods opened for a regime's code: start, end, label, count — newest first, counting
    only the reports ``access`` may see (``regime_scope``)."""
    query = (Report.select(Report.period_start, Report.period_end, fn.MIN(Report.label).alias("label"),
                           fn.COUNT(Report.id).alias("count"))
             .join(Regime).where(Regime.code == regime.code))
    scope = regime_scope(access, regime)
    if scope is False:
        return []
    if scope is not None:
        query = query.where(scope)
    query = (query
             .group_by(Report.period_start, Report.period_end)
             .order_by(Report.period_start.desc(), Report.period_end.desc()))
    return [{"start": r.period_start, "end": r.period_end, "label": r.label, "count": r.count,
             "key": f"{r.period_start.isoformat()}/{r.period_end.isoformat()}"} for r in query]


def units_with(access, code: str) -> set[int] | None:
    """The units where the person holds ``code`` (a grant's unit and its subtree); None: every unit."""
    roots = access.roots(code)
    if roots is None:
        return None
    return {uid for root in roots for uid in subtree_ids(root)}


def readable(access, *, role: str = ""):
    """The reports ``access`` may read, as a condition on ``Report`` (the SQL form of
    ``core.reporting.data.can_read``): its units send them (``core.report.submit``) or receive them
    (``core.report.receive``); ``role`` "send" or "receive" narrows to one. None: every report;
    False: none."""
    conditions = []
    for wanted, code, column in (("send", "core.report.submit", Report.unit),
                                 ("receive", "core.report.receive", Report.receiver)):
        if role not in ("", wanted):
            continue
        ids = units_with(access, code)
        if ids is None:
            return None
        if ids:
            conditions.append(column.in_(list(ids)))
    if not conditions:
        return False
    where = conditions[0]
    for condition in conditions[1:]:
        where = where | condition
    return where


def reports_for(access, *, role: str = "", limit: int = 500):
    """Reports the actor's units must send (``core.report.submit``) or receive
    (``core.report.receive``), soonest deadline first. ``role``: "send", "receive" or both."""
    receiver = Unit.alias()
    # The receiving unit comes in the same query: the list shows it on every row.
    query = (Report.select(Report, Unit, Regime, receiver).join(Unit).switch(Report).join(Regime)
             .switch(Report).join(receiver, JOIN.LEFT_OUTER, on=(Report.receiver == receiver.id), attr="receiver"))
    where = readable(access, role=role)
    if where is False:
        return []
    if where is not None:
        query = query.where(where)
    return list(query.order_by(Report.deadline, Unit.code).limit(limit))
