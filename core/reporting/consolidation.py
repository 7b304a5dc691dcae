"""Consolidated reports (báo cáo tổng hợp): a receiving unit's own report for a period, pre-filled
by aggregating the reports it received.

A consolidated report is an ordinary ``Report`` of kind "consolidated": the receiving unit's, with
the regime version, period window and form version of the reports it consolidates. It is filled on
the normal entry page, signed and submitted with the normal workflow and reviewed by its receiver:
the unit's parent (None at the top — the report then goes to the Government through the national
link). Its deadline is the regime's rule for the unit's kind, else the last (highest) rule's.

Sources: the reports of the same regime code and period whose receiver is the consolidating unit —
unit reports and lower consolidated reports alike, so a province consolidates its departments'
consolidated reports — that are accepted (and submitted ones too with ``include_submitted``, the
setting ``consolidate_submitted``); and, for a consolidating unit below whose consolidated report is
not accepted yet, its running figures (see below). A source's figures are those its latest version
froze (what was signed and accepted), never its live draft values.

Each input cell of the form is aggregated by the rule of its row's indicator (catalogue version in
force): ``sum``; ``average`` (the mean of the units that reported the cell); ``min``; ``max``;
``last`` — the end-of-period figure: across units of the same period these stocks are added, so it
sums; ``none`` and ``weighted_average`` are left to the unit (the catalogue has no weight
indicator, and a plain mean would be a wrong figure presented as a right one). A row without an
indicator, or with a code the catalogue no longer has, sums. A cell no unit reported stays empty,
not 0. Computed cells are recomputed by the form from the aggregated inputs, as on any report.

Live consolidation (issue 14): every acceptance, return and reopening keeps running aggregates
per consolidation — a regime code, a period and a receiving unit (a "scope") — in the same
transaction, by the built-in subscriber ``core.reporting.subscribers.consolidation`` (``follow``):
the receiver's scope counts the accepted version's figures (stored as rows when it is accepted,
never parsed again) or stops counting them, and the change climbs the chain of receivers, each
scope counted by the one above by its running figures ("live") until the unit's own consolidated
report is accepted there (then by that report's version). Sums and counts move by the difference;
a mean is the sum over the count; a minimum or maximum whose holder left is asked of the stored
rows of the others in one grouped query. The consolidated figures that changed go to the figures
store (source "consolidation") for the receiving unit — unless its own report of the period is
accepted, whose figures stand — with their provenance (``running``, ``provenance``: which units are
counted, by which version or live, which received reports are not). ``rebuild`` (``baocao
consolidation rebuild``) computes everything again from the accepted reports, aggregating in the
database: the same numbers.

The consolidated report's draft follows its running aggregates, with no refresh, while its unit
has not edited it: every change is written into it (revision raised, sources recorded) as long as
its revision is the one the consolidation last left (``Consolidation.followed_revision``). Once
its unit saves anything, it stays the unit's: changes show as before (``changes``), and
``refresh`` takes the running figures when the unit asks. Counting submitted reports too
(``include_submitted``, the setting ``consolidate_submitted``) stays a manual refresh from the
versions' JSON, as before; the running aggregates count accepted reports only.

``refresh`` writes the aggregates through ``core.reporting.data.save`` (history, audit, revision as
for any save): the unit's narrative sections and the cells left to it are kept; its manual changes
to aggregated cells are overwritten. It records the sources used (report and version number) and
the time. Staleness is computed, never stored: the report is stale when the eligible sources and
their latest version numbers now differ from what was recorded (a source returned or reopened, a
new version, a newly accepted report). ``ensure_fresh`` refuses to go on with a stale report.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from peewee import (BooleanField, CharField, DateField, DateTimeField, DecimalField, ForeignKeyField,
                    IntegerField, Tuple, fn)

from core import audit
from core.reporting import data as rd
from core.reporting import events
from core.db import CoreModel, Prepared, db, is_sqlite, transaction
from core.errors import BaocaoError, Forbidden, NotFound
from core.regimes.form_engine import MAX_DECIMALS, column_label, compile_form, rounded
from core.catalogue.figures import bulk_update, bulk_write
from core.catalogue.indicators import Indicator
from core.models import Unit, User, utcnow
from core.regimes.periods import CUSTOM, Window
from core.regimes.regimes import Regime
from core.reporting.opening import Report
from core.reporting.versions import ReportVersion

KIND = "consolidated"
SUMMING = ("sum", "last")
LEFT_TO_UNIT = ("none", "weighted_average")
RULE_LABELS = {"sum": "consolidation.rule.sum", "average": "consolidation.rule.average",
               "min": "consolidation.rule.min", "max": "consolidation.rule.max", "last": "consolidation.rule.last",
               "none": "consolidation.rule.none", "weighted_average": "consolidation.rule.weighted_average",
               "": "consolidation.rule.no_indicator"}
CHANGE_LABELS = {why: f"consolidation.change.{why}" for why in ("returned", "withdrawn", "new_version", "added")}


class Consolidation(CoreModel):
    """When a consolidated report was last refreshed, by whom, and whether submitted sources counted."""

    report = ForeignKeyField(Report, unique=True, on_delete="CASCADE")
    refreshed_at = DateTimeField(default=utcnow)
    refreshed_by = ForeignKeyField(User, null=True, on_delete="SET NULL")
    include_submitted = BooleanField(default=False)
    # The report's revision right after the consolidation last wrote it: while it is still at
    # that revision its unit has not edited it, and the running aggregates keep writing into it.
    followed_revision = IntegerField(null=True)


class ConsolidationSource(CoreModel):
    """One source report and the version of it the last refresh used."""

    consolidated = ForeignKeyField(Report, backref="consolidation_sources", on_delete="CASCADE")
    source = ForeignKeyField(Report, on_delete="CASCADE")
    version_number = IntegerField()
    at = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("consolidated", "source"), True),)


# -- reading sources --------------------------------------------------------------------------

def _statuses(include_submitted: bool) -> tuple[str, ...]:
    return ("accepted", "submitted") if include_submitted else ("accepted",)


_RECEIVED = Prepared(lambda p: Report.select(Report.id, Report.regime, Report.unit, Report.receiver, Report.kind,
                                             Report.status, Report.period_start, Report.period_end,
                                             Report.submitted_at, Report.submitted_late, Unit.id, Unit.code, Unit.name,
                                             Unit.parent)
                     .join(Unit).switch(Report).join(Regime)
                     .where((Regime.code == p.code) & (Report.period_start == p.start) & (Report.period_end == p.end)
                            & (Report.receiver == p.unit) & (Report.id != p.report))
                     .order_by(Unit.code))


def received_reports(report: Report) -> list[Report]:
    """Every report of the same regime code and period that the consolidated report's unit
    receives, by unit code: what a list of sources shows of it (its id, regime, unit with the
    unit's code, name and parent, receiver, kind, status, period and when it was sent), not its other
    fields — a province's page lists a hundred of them, and building each whole row (and the
    query) cost more than the rest of the page's reads."""
    return list(_RECEIVED.run(code=report.regime.code, start=report.period_start, end=report.period_end,
                              unit=report.unit_id, report=report.id))


def _latest_versions(report_ids: list[int]) -> dict[int, object]:
    latest: dict[int, object] = {}
    if not report_ids:
        return latest
    for v in (ReportVersion.select().where(ReportVersion.report.in_(report_ids))
              .order_by(ReportVersion.report, ReportVersion.number)):
        latest[v.report_id] = v
    return latest


_LATEST_NUMBERS = Prepared(lambda p: ReportVersion.select(ReportVersion.report, fn.MAX(ReportVersion.number))
                           .where(ReportVersion.report.in_(p.reports)).group_by(ReportVersion.report).tuples())


def _latest_numbers(report_ids: list[int]) -> dict[int, int]:
    """Each report's latest version number (its versions' texts left unread)."""
    return dict(_LATEST_NUMBERS.run(reports=tuple(report_ids))) if report_ids else {}


def eligible_sources(report: Report, *, include_submitted: bool = False) -> list[tuple[Report, object]]:
    """(source report, its latest version) for every report the consolidation counts now."""
    wanted = _statuses(include_submitted)
    rows = [r for r in received_reports(report) if r.status in wanted]
    latest = _latest_versions([r.id for r in rows])
    return [(r, latest[r.id]) for r in rows if r.id in latest]


def version_values(version) -> dict[tuple[str, str], Decimal]:
    """The figures a version froze: "row.col" → canonical decimal string, read back as Decimals."""
    try:
        values = json.loads(version.canonical).get("values") or {}
    except (ValueError, AttributeError):
        return {}
    out = {}
    for key, text in values.items():
        row, sep, col = key.partition(".")
        if sep and text not in (None, ""):
            try:
                out[(row, col)] = Decimal(text)
            except ArithmeticError:
                continue
    return out


# Built once per number of codes: peewee building a form's hundred-item IN list on every
# acceptance cost more than the database answering it.
_RULES = Prepared(lambda p: Indicator.select(Indicator.code, Indicator.aggregation)
                  .where(Indicator.code.in_(p.codes) & Indicator.valid_to.is_null()).tuples())


def rules_for(form) -> dict[str, str]:
    """Row key → aggregation of its indicator ("" for a row without one: summed)."""
    codes = tuple(sorted({r.indicator for r in form.rows if r.kind == "indicator" and r.indicator}))
    found = dict(_RULES.run(codes=codes)) if codes else {}
    return {r.key: (found.get(r.indicator, "") if r.indicator else "") for r in form.rows if r.kind == "indicator"}


def aggregate(rule: str, figures: list[Decimal]) -> Decimal | None:
    """One cell's consolidated figure from the units' figures (missing ones already left out)."""
    if not figures or rule in LEFT_TO_UNIT:
        return None
    if rule == "average":
        result = sum(figures, Decimal(0)) / len(figures)
    elif rule == "min":
        result = min(figures)
    elif rule == "max":
        result = max(figures)
    else:  # sum, last (stocks at the period's end add up across units), rows without an indicator
        result = sum(figures, Decimal(0))
    # What a stored value can hold: a mean such as 10/3 is cut to the form's largest precision.
    return rounded(result, MAX_DECIMALS).normalize()


def _form(report: Report):
    if report.form_version_id is None:
        raise BaocaoError("report_data.error.no_form")
    return rd.FormVersion.get_by_id(report.form_version_id).compiled()


def aggregated_cells(form, index: int) -> dict[tuple[str, str], str]:
    """Input cells the consolidation fills → their rule (cells left to the unit are not listed)."""
    rules = rules_for(form)
    return {cell: rules.get(cell[0], "") for cell in form.input_cells(index)
            if rules.get(cell[0], "") not in LEFT_TO_UNIT}


def compute(report: Report, sources: list[tuple[Report, object]]) -> dict[tuple[str, str], Decimal | None]:
    form = _form(report)
    frozen = [version_values(v) for _, v in sources]
    out = {}
    for cell, rule in aggregated_cells(form, report.period_index).items():
        out[cell] = aggregate(rule, [values[cell] for values in frozen if cell in values])
    return out


# -- who may ----------------------------------------------------------------------------------

def _may_prepare(access, unit_id: int) -> bool:
    return access.allowed_at(rd.SUBMIT, unit_id)  # read once per request


def get_consolidated(access, report_id: int) -> Report:
    report = rd.get_report(access, report_id)
    if report.kind != KIND:
        raise NotFound()
    return report


# -- the periods a unit consolidates ---------------------------------------------------------

@dataclass
class ReceivedPeriod:
    """The reports one unit received for one period of a regime, and its consolidated report."""

    regime: Regime
    unit: Unit
    start: dt.date
    end: dt.date
    label: str
    counts: dict  # status → number of received reports
    report: Report | None = None  # the unit's consolidated report, once opened
    changes: list = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.start.isoformat()}/{self.end.isoformat()}"

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def waiting(self) -> int:
        return self.total - self.counts.get("accepted", 0) - self.counts.get("submitted", 0)


def received_periods(access, *, regime_code: str = "", period: str = "", limit: int = 200) -> list[ReceivedPeriod]:
    """Per regime code, period and receiving unit where the person prepares reports: what was
    received, by status, and the unit's consolidated report if it exists (with what changed since
    its last refresh). Newest periods first."""
    from core.reporting.opening import units_with

    units = units_with(access, rd.SUBMIT)
    query = (Report.select(Report, Regime).join(Regime).where(Report.receiver.is_null(False)))
    if units is not None:
        if not units:
            return []
        query = query.where(Report.receiver.in_(list(units)))
    if regime_code:
        query = query.where(Regime.code == regime_code)
    if period:
        start, end = _period(period)
        query = query.where((Report.period_start == start) & (Report.period_end == end))
    groups: dict[tuple, ReceivedPeriod] = {}
    for r in query.order_by(Report.period_start.desc(), Regime.code, Regime.version.desc()):
        key = (r.regime.code, r.period_start, r.period_end, r.receiver_id)
        group = groups.get(key)
        if group is None:
            if len(groups) >= limit:
                continue
            group = groups[key] = ReceivedPeriod(r.regime, None, r.period_start, r.period_end, r.label, {})
        group.counts[r.status] = group.counts.get(r.status, 0) + 1
    if not groups:
        return []
    names = {u.id: u for u in Unit.select().where(Unit.id.in_(list({k[3] for k in groups})))}
    for (code, start, end, unit_id), group in groups.items():
        group.unit = names[unit_id]
        group.report = (Report.select(Report, Regime).join(Regime)
                        .where((Regime.code == code) & (Report.unit == unit_id) & (Report.period_start == start)
                               & (Report.period_end == end) & (Report.kind == KIND)).first())
        if group.report is not None:
            group.changes = changes(group.report)
    return list(groups.values())


# -- opening ----------------------------------------------------------------------------------

def _period(period: str) -> tuple[dt.date, dt.date]:
    try:
        start, end = (dt.date.fromisoformat(p) for p in (period or "").split("/", 1))
    except ValueError:
        raise BaocaoError("consolidation.error.period") from None
    return start, end


def _deadline(regime: Regime, source: Report, unit: Unit, calendar) -> tuple[str, dt.date, dt.date]:
    """(level, nominal, effective) for the consolidating unit: its kind's rule, else the last rule."""
    from core.reporting.opening import level_deadlines

    if not regime.rules or source.frequency == CUSTOM:
        # A request's deadline is the one its issuer set for everyone.
        return source.level, source.nominal_deadline, source.deadline
    window = Window(source.frequency, source.year, source.period_index, source.period_start, source.period_end)
    try:
        by_level = level_deadlines(regime, window, calendar)
    except BaocaoError:
        return source.level, source.nominal_deadline, source.deadline
    match = next((r for r in regime.rules if r.get("from_kind") == unit.kind), None) or regime.rules[-1]
    level = match.get("level") or str(regime.rules.index(match) + 1)
    if level not in by_level:
        level = list(by_level)[-1]
    nominal, effective = by_level[level]
    return level, nominal, effective


def consolidating_units(access, regime: Regime, start: dt.date, end: dt.date) -> list[Unit]:
    """Units that receive reports of this period and where the person prepares reports."""
    ids = {r.receiver_id for r in Report.select(Report.receiver).join(Regime)
           .where((Regime.code == regime.code) & (Report.period_start == start) & (Report.period_end == end)
                  & Report.receiver.is_null(False))}
    return [u for u in Unit.select().where(Unit.id.in_(list(ids))).order_by(Unit.code) if _may_prepare(access, u.id)]


def open_consolidated(access, regime_id: int, period: str, *, unit_id: int | None = None,
                      include_submitted: bool = False, calendar=None) -> Report:
    """The receiving unit's consolidated report for ``period`` ("start/end", ISO dates), opened and
    filled for the first time if it does not exist yet; the existing one otherwise (one per regime
    code, unit and period). ``unit_id``: the consolidating unit, when the person prepares reports
    for more than one receiving unit."""
    from core.regimes.workdays import work_calendar

    regime = Regime.get_or_none(Regime.id == regime_id)
    if regime is None:
        raise NotFound()
    start, end = _period(period)
    units = consolidating_units(access, regime, start, end)
    if unit_id is not None:
        units = [u for u in units if u.id == unit_id]
        if not units:
            if Unit.get_or_none(Unit.id == unit_id) is None:
                raise NotFound()
            raise Forbidden()
    if not units:
        raise Forbidden()
    if len(units) > 1:
        raise BaocaoError("consolidation.error.choose_unit")
    unit = units[0]
    with transaction():
        existing = (Report.select(Report, Regime).join(Regime)
                    .where((Regime.code == regime.code) & (Report.unit == unit.id)
                           & (Report.period_start == start) & (Report.period_end == end)).first())
        if existing is not None and existing.kind == KIND:
            return existing
        sources = (Report.select(Report, Regime).join(Regime)
                   .where((Regime.code == regime.code) & (Report.period_start == start) & (Report.period_end == end)
                          & (Report.receiver == unit.id))
                   .order_by(Regime.version.desc(), Report.id).first())
        if sources is None:
            raise BaocaoError("consolidation.error.nothing_received")
        if sources.form_version_id is None:
            raise BaocaoError("report_data.error.no_form")
        level, nominal, effective = _deadline(sources.regime, sources, unit, calendar or work_calendar())
        now = utcnow()
        if existing is not None:
            # The unit had its own report for the period (it also reports under this regime): that
            # report becomes its consolidated one, as long as it has not been sent.
            if existing.status not in rd.EDITABLE:
                raise BaocaoError("consolidation.error.own_report_sent")
            (Report.update(kind=KIND, receiver=unit.parent_id, level=level[:255], nominal_deadline=nominal,
                           deadline=effective)
             .where(Report.id == existing.id).execute())
            report_id = existing.id
        else:
            source = sources
            report_id = (Report.insert(regime=source.regime_id, unit=unit.id, frequency=source.frequency,
                                       year=source.year, period_index=source.period_index,
                                       period_start=start, period_end=end, label=source.label,
                                       level=level[:255], nominal_deadline=nominal, deadline=effective,
                                       status="not_started", opened_at=now, opened_by=access.actor,
                                       form_version=source.form_version_id, receiver=unit.parent_id, kind=KIND)
                         .on_conflict_ignore().execute())
            if not report_id:  # a second click committed first (PostgreSQL waits on the index): use its report
                return (Report.select(Report, Regime).join(Regime)
                        .where((Report.regime == source.regime_id) & (Report.unit == unit.id)
                               & (Report.period_start == start) & (Report.period_end == end)).get())
        audit.record("consolidation.opened", actor=access.actor, unit=unit.id, object_type="report",
                     object_id=report_id, details={"regime": regime.code, "period": f"{start}/{end}"})
        if existing is None:  # a unit's own report that becomes its consolidated one was opened already
            events.announce(Report.get_by_id(report_id), "opened", actor=access.actor, at=now)
        _refresh(access, report_id, include_submitted=include_submitted, action="")
    return Report.get_by_id(report_id)


# -- refreshing -------------------------------------------------------------------------------

def refresh(access, report_id: int, *, include_submitted: bool = False) -> rd.SaveResult:
    """Write the aggregates of the sources eligible now into the consolidated report (one
    transaction), and record them. Only while the report can be edited."""
    return _refresh(access, report_id, include_submitted=include_submitted, action="consolidation.refreshed")


def _refresh(access, report_id: int, *, include_submitted: bool, action: str) -> rd.SaveResult:
    report = get_consolidated(access, report_id)
    if not rd.can_fill(access, report):
        raise Forbidden()
    if report.status not in rd.EDITABLE:
        raise BaocaoError("report_data.error.not_editable", status=report.status)
    with transaction():
        last = last_refresh(report.id)
        # Opening, or a draft its unit has not edited since the consolidation last wrote it: it
        # keeps following the running aggregates after this refresh. Edited once, it stays the
        # unit's: a refresh is then a click, and the banner says what changed.
        following = not action or (last is not None and last.followed_revision == report.revision)
        if include_submitted:  # submitted reports count too: from their versions, as they were sent
            eligible = eligible_sources(report, include_submitted=True)
            sources = [(s.id, v.number) for s, v in eligible]
            figures = compute(report, eligible)
        else:
            forms = _Forms()
            scope = _refresh_scope(report, forms)
            counted = _scope_values(scope.id)
            figures = {cell: counted.get(cell) for cell in aggregated_cells(_form(report), report.period_index)}
            sources = sorted(_counted_versions(scope.id))
        cells = {cell: (rd.MISSING, value) for cell, value in figures.items()}
        try:
            result = rd.save(access, report.id, cells, source="consolidation")
        except rd.CellErrors as exc:  # a sum beyond what a cell holds
            where = next(iter(exc.errors))
            raise BaocaoError("consolidation.error.too_big", cell=where) from None
        now = utcnow()
        ConsolidationSource.delete().where(ConsolidationSource.consolidated == report.id).execute()
        if sources:
            ConsolidationSource.insert_many([dict(consolidated=report.id, source=sid, version_number=number, at=now)
                                             for sid, number in sources]).execute()
        followed = result.revision if following and not include_submitted else None
        (Consolidation.insert(report=report.id, refreshed_at=now, refreshed_by=getattr(access.actor, "id", None),
                              include_submitted=include_submitted, followed_revision=followed)
         .on_conflict(conflict_target=[Consolidation.report],
                      update={Consolidation.refreshed_at: now,
                              Consolidation.refreshed_by: getattr(access.actor, "id", None),
                              Consolidation.include_submitted: include_submitted,
                              Consolidation.followed_revision: followed})
         .execute())
        if action:
            audit.record(action, actor=access.actor, unit=report.unit_id, object_type="report", object_id=report.id,
                         details={"sources": len(sources), "cells": result.changed_cells})
        events.announce(report, "consolidated", actor=access.actor, at=now)
    return result


# -- staleness --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Change:
    """A source that differs from what the last refresh used: ``why`` is returned, reopened (not
    counted any more), new_version, or added (counted now, not then)."""

    report_id: int
    unit_name: str
    why: str

    @property
    def label(self) -> str:
        return CHANGE_LABELS[self.why]


# A consolidated report's pages read these several times each (the banner, the sources): built once.
_RECORDED = Prepared(lambda p: ConsolidationSource.select(ConsolidationSource.source,
                                                          ConsolidationSource.version_number)
                     .where(ConsolidationSource.consolidated == p.report).tuples())
_LAST_REFRESH = Prepared(lambda p: Consolidation.select().where(Consolidation.report == p.report).limit(1))
_USED_VERSIONS = Prepared(lambda p: ReportVersion.select(ReportVersion.id, ReportVersion.report, ReportVersion.number,
                                                         ReportVersion.submitted_at, ReportVersion.late)
                          .where(ReportVersion.report.in_(p.reports)))


def recorded(report_id: int) -> dict[int, int]:
    return dict(_RECORDED.run(report=report_id))


def last_refresh(report_id: int) -> Consolidation | None:
    return _LAST_REFRESH.first(report=report_id)


def changes(report: Report, *, include_submitted: bool | None = None, received: list | None = None,
            used: dict | None = None) -> list[Change]:
    """What changed among the sources since the last refresh (empty: up to date). Judged by the
    rule that refresh used (``include_submitted`` None), so changing the setting does not by
    itself turn every consolidated report stale. ``received``: ``received_reports(report)``, when
    the caller read them already (a page that also lists them); ``used``: ``recorded(report.id)``,
    likewise."""
    if include_submitted is None:
        last = last_refresh(report.id)
        include_submitted = bool(last and last.include_submitted)
    before = recorded(report.id) if used is None else used
    wanted = _statuses(include_submitted)
    sources = [r for r in (received_reports(report) if received is None else received) if r.status in wanted]
    latest = _latest_numbers([r.id for r in sources])
    now = {r.id: (r, latest[r.id]) for r in sources if r.id in latest}
    found = []
    gone = [sid for sid in before if sid not in now]
    names = {}
    if gone:
        names = {r.id: r for r in Report.select(Report, Unit).join(Unit).where(Report.id.in_(gone))}
    for sid in gone:
        source = names.get(sid)
        if source is None:
            continue
        why = "returned" if source.status == "returned" else "withdrawn"
        found.append(Change(sid, source.unit.name, why))
    for sid, (source, number) in now.items():
        if sid not in before:
            found.append(Change(sid, source.unit.name, "added"))
        elif before[sid] != number:
            found.append(Change(sid, source.unit.name, "new_version"))
    return sorted(found, key=lambda c: (c.unit_name, c.report_id))


def is_stale(report: Report) -> bool:
    return report.kind == KIND and bool(changes(report))


def ensure_fresh(report: Report) -> None:
    """Refuse to send a consolidated report whose sources changed since its last refresh (call it
    before submitting): the figures would not be those of the reports accepted now."""
    if report.kind == KIND and report.status in rd.EDITABLE:
        found = changes(report)
        if found:
            raise BaocaoError("consolidation.error.stale", units=", ".join(sorted({c.unit_name for c in found})))


# -- drill-down -------------------------------------------------------------------------------

@dataclass
class SourceFigure:
    report: Report
    value: Decimal | None
    version_number: int | None
    submitted_at: dt.datetime | None
    late: bool | None
    counted: bool
    can_open: bool
    version: object = None


@dataclass
class CellDetail:
    report: Report
    row: object
    column: object
    rule: str
    aggregated: bool
    result: Decimal | None  # the figure the consolidated report holds now
    figures: list[SourceFigure] = field(default_factory=list)  # counted in the last refresh
    others: list[SourceFigure] = field(default_factory=list)  # received but not counted (not sent, …)

    @property
    def column_label(self) -> str:
        """The column's heading for the report's period ("Thực hiện tháng 3/2026")."""
        r = self.report
        return column_label(self.column, r.frequency, r.year, r.period_index)

    @property
    def rule_label(self) -> str:
        return RULE_LABELS.get(self.rule, RULE_LABELS[""])


def sources_overview(access, report: Report, *, received: list | None = None, used: dict | None = None
                     ) -> tuple[list[SourceFigure], list[SourceFigure]]:
    """(reports counted in the last refresh, with the version used — its number, when and whether
    late it was sent, not its text; the other received reports). ``received``, ``used``: as for
    ``changes``."""
    used = recorded(report.id) if used is None else used
    counted, others = [], []
    wanted = {(sid, n) for sid, n in used.items()}
    versions = {}
    if wanted:
        for version in _USED_VERSIONS.run(reports=tuple(used)):
            if (version.report_id, version.number) in wanted:
                versions[version.report_id] = version
    sources = received_reports(report) if received is None else received
    openable = _openable(access, report, sources)
    for source in sources:
        v = versions.get(source.id)
        item = SourceFigure(source, None, v.number if v else None, v.submitted_at if v else None,
                            v.late if v else None, v is not None, openable[source.id], v)
        (counted if v is not None else others).append(item)
    return counted, others


def _openable(access, report: Report, sources: list[Report]) -> dict[int, bool]:
    """Source report id → whether the person may open it (``rd.can_read``: may fill it, or may
    receive at its receiver — the consolidating unit, the same for every source). A source
    unit's ancestors are the consolidating unit's with the unit in front when it is a child of
    it, so a province's hundred sources cost no tree query each."""
    above = access.ancestors(report.unit_id)
    if access.allowed(rd.RECEIVE, above):
        return {s.id: True for s in sources}
    return {s.id: access.allowed(rd.SUBMIT, (s.unit_id, *above) if s.unit.parent_id == report.unit_id
                                 else access.ancestors(s.unit_id)) for s in sources}


def cell_detail(access, report_id: int, row: str, column: str) -> CellDetail:
    report = get_consolidated(access, report_id)
    form = _form(report)
    if row not in form.row_index or column not in form.column_index:
        raise NotFound()
    cell = (row, column)
    cells = aggregated_cells(form, report.period_index)
    rule = rules_for(form).get(row, "")
    counted, others = sources_overview(access, report)
    texts = {v.id: v for v in ReportVersion.select(ReportVersion.id, ReportVersion.canonical)
             .where(ReportVersion.id.in_([item.version.id for item in counted]))} if counted else {}
    for item in counted:
        item.value = version_values(texts[item.version.id]).get(cell)
    stored = rd.stored_values(report.id).get(cell)
    return CellDetail(report, form.row_index[row], form.column_index[column], rule, cell in cells, stored,
                      counted, others)


def parse_cell(text: str) -> tuple[str, str]:
    row, sep, col = (text or "").partition(".")
    if not (sep and row and col):
        raise NotFound()
    return row, col



# == Live consolidation: running aggregates every acceptance keeps current ====================
#
# A scope is one consolidation kept current: a regime code, a period and a receiving unit. Its
# members are the units counted: a unit whose report the receiving unit accepted, by that
# version's figures (stored as rows, ``ConsolidationValue``, when it is accepted), and a
# consolidating unit below whose own consolidated report is not accepted (yet), by its scope's
# running aggregates ("live"). ``ConsolidationTotal`` keeps, per scope and cell, the sum and the
# number of units that reported the cell, the extremes for the cells whose rule needs them, and
# the consolidated figure by the rule. An acceptance, a return or a reopening changes one
# member of the receiver's scope; the change climbs the chain of receivers (each scope counted
# live by the one above) in the transition's transaction: sums and counts by the difference,
# a minimum or maximum whose holder left by one grouped query over the stored rows of the others.

LIVE_SOURCE = "consolidation"  # the figures store's ``source`` for consolidated figures
EXTREMES = ("min", "max")
MAX_CHAIN = 16  # levels of receivers followed at most (a loop of receivers stops there)
_BATCH = 1000  # rows per bulk statement: within SQLite's and PostgreSQL's parameter limits
_ZERO = Decimal(0)


class ConsolidationScope(CoreModel):
    """One consolidation kept current (see the section's comment); ``up``: the next unit up."""

    regime_code = CharField(max_length=40)
    period_start = DateField()
    period_end = DateField()
    unit = ForeignKeyField(Unit, on_delete="CASCADE", backref="+")
    up = ForeignKeyField(Unit, null=True, on_delete="SET NULL", backref="+")
    frequency = CharField(max_length=12)
    year = IntegerField()
    period_index = IntegerField(default=0)
    form_version = ForeignKeyField(rd.FormVersion, on_delete="CASCADE", backref="+")
    updated_at = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("regime_code", "period_start", "period_end", "unit"), True),
                   (("regime_code", "period_start", "period_end", "up"), False))

    @property
    def period(self) -> str:
        return f"{self.period_start.isoformat()}/{self.period_end.isoformat()}"


class ConsolidationMember(CoreModel):
    """A unit counted in a scope: by its accepted report's version, or live (``lower``)."""

    scope = ForeignKeyField(ConsolidationScope, on_delete="CASCADE", backref="+", index=False)
    unit = ForeignKeyField(Unit, on_delete="CASCADE", backref="+")
    report = ForeignKeyField(Report, null=True, on_delete="CASCADE", backref="+")
    version_number = IntegerField(null=True)
    lower = ForeignKeyField(ConsolidationScope, null=True, on_delete="CASCADE", backref="+")

    class Meta:
        indexes = ((("scope", "unit"), True), (("lower",), False))


class ConsolidationValue(CoreModel):
    """One figure of an accepted version counted in a scope."""

    scope = ForeignKeyField(ConsolidationScope, on_delete="CASCADE", backref="+", index=False)
    unit = ForeignKeyField(Unit, on_delete="CASCADE", backref="+", index=False)
    row = CharField(max_length=40)
    column = CharField(max_length=40)
    value = DecimalField(max_digits=24, decimal_places=6)

    class Meta:
        indexes = ((("scope", "unit", "row", "column"), True),)


class ConsolidationTotal(CoreModel):
    """The running aggregate of one cell of a scope."""

    scope = ForeignKeyField(ConsolidationScope, on_delete="CASCADE", backref="+", index=False)
    row = CharField(max_length=40)
    column = CharField(max_length=40)
    total = DecimalField(max_digits=30, decimal_places=6)
    reported = IntegerField()  # units whose figure for the cell is counted
    low = DecimalField(max_digits=30, decimal_places=6, null=True)  # kept for the rule "min" only
    high = DecimalField(max_digits=30, decimal_places=6, null=True)  # kept for the rule "max" only
    value = DecimalField(max_digits=30, decimal_places=6, null=True)  # the consolidated figure

    class Meta:
        indexes = ((("scope", "row", "column"), True),)


@dataclass(slots=True)
class _Cell:
    total: Decimal
    reported: int
    low: Decimal | None
    high: Decimal | None
    value: Decimal | None
    id: int | None = None  # its row's, when it is stored: written back by it


def _number(number) -> Decimal | None:
    """A number read back as a decimal: SQLite hands back an integer or a double, whose shortest
    text is the decimal written (at most 15 significant digits, ``core.numbers``)."""
    if number is None or isinstance(number, Decimal):
        return number
    return Decimal(str(number)) if isinstance(number, float) else Decimal(number)


def _exact(number) -> Decimal | None:
    """A sum the database computed, to 6 places (SQLite adds doubles: 0.1 + 0.2 is 0.30000000000000004)."""
    return None if number is None else _six(_number(number))


_SIXTH = Decimal(1).scaleb(-MAX_DECIMALS)


def _six(number: Decimal) -> Decimal:
    """``rounded(number, MAX_DECIMALS)``, its quantum made once: it runs for every cell of every
    scope an acceptance moves."""
    return number.quantize(_SIXTH, rounding=ROUND_HALF_UP)


def _figure(rule: str, cell: _Cell) -> Decimal | None:
    """The consolidated figure of a cell by its rule: ``aggregate`` over the counted figures,
    computed from the running sum, count and extremes."""
    if cell.reported <= 0 or rule in LEFT_TO_UNIT:
        return None
    if rule == "average":
        result = cell.total / cell.reported
    elif rule == "min":
        result = cell.low
    elif rule == "max":
        result = cell.high
    else:
        return cell.total  # a running total is kept to 6 places already
    return None if result is None else _six(result)


class _Forms:
    """Compiled forms and their rules, read once per operation."""

    def __init__(self):
        self._forms, self._rules = {}, {}

    def form(self, version_id: int):
        if version_id not in self._forms:
            definition = _FORM_DEFINITION.first(version_id=version_id)
            if definition is None:
                raise rd.FormVersion.DoesNotExist(version_id)
            self._forms[version_id] = compile_form(definition[0])
        return self._forms[version_id]

    def rules(self, version_id: int) -> dict[str, str]:
        if version_id not in self._rules:
            self._rules[version_id] = rules_for(self.form(version_id))
        return self._rules[version_id]

    def inputs(self, version_id: int, index: int) -> frozenset:
        key = (version_id, index)
        if key not in self._forms:
            self._forms[key] = frozenset(self.form(version_id).input_cells(index))
        return self._forms[key]

    def aggregated(self, version_id: int, index: int) -> frozenset:
        """``aggregated_cells`` of the form, from the rules read once."""
        rules = self.rules(version_id)
        return frozenset(c for c in self.inputs(version_id, index) if rules.get(c[0], "") not in LEFT_TO_UNIT)


def _version_cells(version, inputs: frozenset) -> dict[tuple[str, str], Decimal]:
    """The input cells' figures a version froze (its computed cells are the form's business)."""
    return {cell: value for cell, value in version_values(version).items() if cell in inputs}


def _sql(text: str) -> str:
    return text.replace("?", db.obj.param)


# The reads every acceptance makes, built once (peewee building them cost as much as running them).
_FORM_DEFINITION = Prepared(lambda p: rd.FormVersion.select(rd.FormVersion.definition)
                            .where(rd.FormVersion.id == p.version_id).limit(1).tuples())
_FOLLOWED_REPORT = Prepared(lambda p: Report.select(Report, Regime.code).join(Regime)
                            .where(Report.id == p.report_id).limit(1).objects())
_LATEST_VERSION = Prepared(lambda p: ReportVersion.select().where(ReportVersion.report == p.report_id)
                           .order_by(ReportVersion.number.desc()).limit(1))
_SCOPE = Prepared(lambda p: ConsolidationScope.select().where(
    (ConsolidationScope.regime_code == p.code) & (ConsolidationScope.period_start == p.start)
    & (ConsolidationScope.period_end == p.end) & (ConsolidationScope.unit == p.unit)).limit(1))
_MEMBERS = Prepared(lambda p: ConsolidationMember.select().where(
    ConsolidationMember.scope.in_(p.scopes) & ConsolidationMember.unit.in_(p.units)))
_MEMBER_COUNTS = Prepared(lambda p: ConsolidationMember.select(ConsolidationMember.scope,
                                                               fn.COUNT(ConsolidationMember.id))
                          .where(ConsolidationMember.scope.in_(p.scopes)).group_by(ConsolidationMember.scope).tuples())


# The chain of receivers above a unit, in one statement: a unit's next is the receiver of its own
# report of the regime and period (its consolidated one first), else — no report yet — its parent,
# where ``open_consolidated`` would send it. With each unit: whether its own report (kind "unit")
# is accepted — its own figures then stand in the store, not the consolidation's.
_CHAIN = """
WITH RECURSIVE chain(unit_id, depth) AS (
    SELECT CAST(? AS INTEGER), 1
    UNION ALL
    SELECT CASE WHEN EXISTS (SELECT 1 FROM core_report r JOIN core_regime g ON g.id = r.regime_id
                             WHERE g.code = ? AND r.unit_id = c.unit_id AND r.period_start = ?
                               AND r.period_end = ?)
                THEN (SELECT r.receiver_id FROM core_report r JOIN core_regime g ON g.id = r.regime_id
                      WHERE g.code = ? AND r.unit_id = c.unit_id AND r.period_start = ? AND r.period_end = ?
                      ORDER BY CASE WHEN r.kind = 'consolidated' THEN 0 ELSE 1 END, r.id LIMIT 1)
                ELSE u.parent_id END,
           c.depth + 1
    FROM chain c JOIN core_unit u ON u.id = c.unit_id
    WHERE c.depth < ?
)
SELECT c.unit_id, COALESCE((SELECT 1 FROM core_report r JOIN core_regime g ON g.id = r.regime_id
                             WHERE g.code = ? AND r.unit_id = c.unit_id AND r.period_start = ?
                               AND r.period_end = ? AND r.kind = 'unit' AND r.status = 'accepted' LIMIT 1), 0)
FROM chain c WHERE c.unit_id IS NOT NULL ORDER BY c.depth
"""
# The last column is a scalar subquery, not EXISTS: PostgreSQL, misjudging how many rows the
# recursion yields, answered an EXISTS by hashing every report of the period (4,200 rows, a
# few milliseconds on each acceptance) where an index finds the four it needs.


def _chain(code: str, start: dt.date, end: dt.date, unit_id: int) -> list[tuple[int, bool]]:
    """(unit, whether its consolidated figures go to the store) from ``unit_id`` up."""
    period = (code, start, end)
    rows = db.execute_sql(_sql(_CHAIN), (unit_id, *period, *period, MAX_CHAIN, *period)).fetchall()
    out, seen = [], set()
    for uid, own_accepted in rows:
        if uid in seen:  # a report received by its own unit, or a loop of receivers: the chain ends
            break
        seen.add(uid)
        out.append((uid, not own_accepted))
    return out


def _serialise() -> None:
    """Before any scope is locked, the audit chain's lock (PostgreSQL; SQLite has one writer).

    Every write of consolidated figures records an audit event (``put_values``), and an
    acceptance may have taken the audit lock already (the accepted figures subscriber) when it
    reaches its scopes: a writer holding scopes and then asking for the audit lock could wait for
    it in a cycle (a deadlock between two acceptances in one district at the deadline). Taking it
    first gives every writer one order — audit, then scopes — and serialises nothing more than the
    audit chain already does."""
    audit.lock_chain()


def _locked_scopes(p):
    query = (ConsolidationScope.select()
             .where((ConsolidationScope.regime_code == p.code) & (ConsolidationScope.period_start == p.start)
                    & (ConsolidationScope.period_end == p.end) & ConsolidationScope.unit.in_(p.units))
             .order_by(ConsolidationScope.id))
    return query if is_sqlite() else query.for_update()  # built per database type (``Prepared``)


_LOCKED_SCOPES = Prepared(_locked_scopes)


def _scopes(code: str, start: dt.date, end: dt.date, chain: list[int], origin) -> list[ConsolidationScope]:
    """The scopes of ``chain``'s units, created when missing (period and form from ``origin``, a
    report of the period), their ``up`` set to the next unit of the chain; locked on PostgreSQL
    (after ``_serialise``; in id order)."""
    _serialise()

    def read():
        return {s.unit_id: s for s in _LOCKED_SCOPES.run(code=code, start=start, end=end, units=tuple(chain))}

    found = read()
    missing = [u for u in chain if u not in found]
    if missing:
        (ConsolidationScope.insert_many([dict(regime_code=code, period_start=start, period_end=end, unit=u,
                                              up=None, frequency=origin.frequency, year=origin.year,
                                              period_index=origin.period_index,
                                              form_version=origin.form_version_id) for u in missing])
         .on_conflict_ignore().execute())
        found = read()
    scopes = [found[u] for u in chain]
    for n, scope in enumerate(scopes):
        up = chain[n + 1] if n + 1 < len(chain) else None
        if scope.up_id != up:
            ConsolidationScope.update(up=up).where(ConsolidationScope.id == scope.id).execute()
            scope.up_id = up
    return scopes


def _read(sql: str, params) -> list[tuple]:
    return db.execute_sql(_sql(sql), params).fetchall()


def _totals(scope_ids: list[int]) -> dict[int, dict[tuple[str, str], _Cell]]:
    out: dict[int, dict] = {sid: {} for sid in scope_ids}
    if not scope_ids:
        return out
    marks = ", ".join("?" * len(scope_ids))  # placeholders only: the ids are bound parameters (nosec B608)
    rows = _read('SELECT id, scope_id, "row", "column", total, reported, low, high, "value" '
                 f"FROM core_consolidation_total WHERE scope_id IN ({marks})", scope_ids)  # nosec B608
    if is_sqlite():  # doubles and integers, read as decimals
        for cid, sid, row, col, total, reported, low, high, value in rows:
            out[sid][(row, col)] = _Cell(_number(total), reported, _number(low), _number(high), _number(value), cid)
    else:  # numerics come back as decimals: four scopes of 300 cells each, no call per value
        for cid, sid, row, col, total, reported, low, high, value in rows:
            out[sid][(row, col)] = _Cell(total, reported, low, high, value, cid)
    return out


def _values(cells: dict) -> dict[tuple[str, str], Decimal]:
    """A scope's consolidated figures (cells with none left out): what it counts for above."""
    return {cell: c.value for cell, c in cells.items() if c.value is not None}


def _stored_values(scope_id: int, unit_id: int) -> dict[tuple[str, str], Decimal]:
    return {(row, col): _number(value) for row, col, value in _read(
        'SELECT "row", "column", "value" FROM core_consolidation_value WHERE scope_id = ? AND unit_id = ?',
        (scope_id, unit_id))}


def _extremes_without(scope_id: int, unit_id: int, cells: list[tuple[str, str]]) -> dict:
    """(min, max) of each cell over the scope's members other than ``unit_id``, in one grouped
    query over the stored rows: the accepted versions' figures and the live members' aggregates."""
    if not cells:
        return {}
    v, t, m = ConsolidationValue, ConsolidationTotal, ConsolidationMember
    rows = sorted({row for row, _ in cells})
    accepted = (v.select(v.row.alias("r"), v.column.alias("c"), v.value.alias("x"))
                .where((v.scope == scope_id) & (v.unit != unit_id) & v.row.in_(rows)))
    live = (t.select(t.row.alias("r"), t.column.alias("c"), t.value.alias("x"))
            .join(m, on=(m.lower == t.scope))
            .where((m.scope == scope_id) & (m.unit != unit_id) & t.value.is_null(False) & t.row.in_(rows)))
    union = accepted.union_all(live).alias("u")
    query = (ConsolidationTotal.select(union.c.r, union.c.c, fn.MIN(union.c.x), fn.MAX(union.c.x))
             .from_(union).group_by(union.c.r, union.c.c).tuples())
    wanted = set(cells)
    return {(r, c): (_number(low), _number(high)) for r, c, low, high in query if (r, c) in wanted}


def _extreme(kind: str, cell: _Cell, old: Decimal | None, new: Decimal | None) -> tuple[bool, Decimal | None]:
    """(known, the new extreme) after one unit's figure went from ``old`` to ``new``: unknown only
    when that figure held the extreme and the new one does not reach it (the others must be asked)."""
    current = cell.low if kind == "min" else cell.high
    better = min if kind == "min" else max
    others = cell.reported - (old is not None)
    if others > 0 and current is None:
        return False, None  # never kept (the rule changed since): ask the others
    if others == 0:
        return True, new
    if old is None or (old > current if kind == "min" else old < current):
        return True, better(x for x in (current, new) if x is not None)
    if new is not None and (new <= old if kind == "min" else new >= old):
        return True, new
    return False, None


def _adjust(scope, rules: dict, cells: dict, old: dict, new: dict, unit_id: int) -> tuple[dict, set]:
    """Apply one unit's contribution going from ``old`` to ``new`` to a scope's cells (``cells``,
    changed in place); returns ({cell: (figure before, figure after)} for the cells whose figure
    changed, the cells touched — to write). It runs for every cell of every scope an acceptance
    moves: None is told apart by identity before any comparison of numbers (a Decimal compared
    with None asks the abstract number classes, which cost more than the arithmetic)."""
    changed, touched, ask = {}, set(), {}
    for cell in old.keys() | new.keys():
        o, n = old.get(cell), new.get(cell)
        if o is None:
            if n is None:
                continue
        elif n is not None and o == n:
            continue
        before = cells.get(cell) or _EMPTY
        total, reported = before.total, before.reported
        if o is not None:
            total, reported = total - o, reported - 1
        if n is not None:
            total, reported = total + n, reported + 1
        after = _Cell(_six(total), reported, None, None, None, before.id)
        rule = rules.get(cell[0], "")
        touched.add(cell)
        if rule in EXTREMES:
            known, extreme = _extreme(rule, before, o, n)
            if not known:
                ask[cell] = (before, after, n, rule)
                continue
            if rule == "min":
                after.low = extreme
            else:
                after.high = extreme
        _settle(cell, rule, before, after, cells, changed)
    if ask:
        found = _extremes_without(scope.id, unit_id, list(ask))
        for cell, (before, after, n, rule) in ask.items():
            low, high = found.get(cell, (None, None))
            if rule == "min":
                after.low = min((x for x in (low, n) if x is not None), default=None)
            else:
                after.high = max((x for x in (high, n) if x is not None), default=None)
            _settle(cell, rule, before, after, cells, changed)
    return changed, touched


_EMPTY = _Cell(_ZERO, 0, None, None, None)  # a cell no unit reported yet (read, never changed)


def _settle(cell, rule: str, before: _Cell, after: _Cell, cells: dict, changed: dict) -> None:
    """``after``'s figure by the rule, kept in ``cells``; noted in ``changed`` when it moved."""
    after.value = figure = _figure(rule, after)
    cells[cell] = after
    was = before.value
    if (was is None) != (figure is None) or (was is not None and was != figure):
        changed[cell] = (was, figure)


def _write_totals(written: dict[int, dict], *, new: bool = False) -> None:
    """Write the touched cells of each scope ({scope id: {cell: _Cell}}): the stored ones updated
    by their row's id, the others upserted, and one delete for the cells no unit reports any
    more. ``new``: the scopes hold no cell yet (plain inserts)."""
    stored, rows, gone = [], [], []
    for sid in sorted(written):  # one order for every writer: two chains never wait in a cycle
        for (row, col), c in sorted(written[sid].items()):
            if c.reported <= 0:
                gone.append((sid, row, col))
            elif c.id is not None:
                stored.append((c.id, c.total, c.reported, c.low, c.high, c.value))
            else:
                rows.append((sid, row, col, c.total, c.reported, c.low, c.high, c.value))
    t = ConsolidationTotal
    stored.sort()  # by id: the rows locked in one order whoever writes
    bulk_update(t, ("total", "reported", "low", "high", "value"), stored)
    columns = ("scope_id", "row", "column", "total", "reported", "low", "high", "value")
    if new:
        bulk_write(t, columns, rows)
    else:
        bulk_write(t, columns, rows, conflict=("scope_id", "row", "column"),
                   update=("total", "reported", "low", "high", "value"))
    for start in range(0, len(gone), _BATCH):
        t.delete().where(Tuple(t.scope, t.row, t.column).in_(gone[start:start + _BATCH])).execute()


def _insert_values(scope_id: int, unit_id: int, figures: dict) -> None:
    bulk_write(ConsolidationValue, ("scope_id", "unit_id", "row", "column", "value"),
               [(scope_id, unit_id, row, col, value) for (row, col), value in sorted(figures.items())])


def _delete_values(scope_id: int, unit_id: int) -> None:
    ConsolidationValue.delete().where((ConsolidationValue.scope == scope_id)
                                      & (ConsolidationValue.unit == unit_id)).execute()


@dataclass
class _Climb:
    """What one change did along a chain: per scope, the figures that changed and the cells
    written; the scope where a member was added or removed (for the recorded sources)."""

    scopes: list
    publishes: dict  # scope id → whether its figures go to the store
    changed: dict = field(default_factory=dict)  # scope id → {cell: (before, after)}
    written: dict = field(default_factory=dict)  # scope id → {cell: _Cell}
    source: tuple | None = None  # (scope id, report id, version number | None): a version counted or not


def _climb(climb: _Climb, totals: dict, first: int, unit_id: int, old: dict, new: dict, counts: dict,
           members: dict, forms: _Forms, member_changed: bool, *, live_first: bool = False) -> None:
    """Carry one unit's contribution change from ``climb.scopes[first]`` up: each scope above
    counts the one below live unless that unit's own report is accepted there (then it stops).
    ``live_first``: the unit is the scope below ``first``, counted live there too (a refresh)."""
    below = unit_id
    for n in range(first, len(climb.scopes)):
        scope = climb.scopes[n]
        if n > first or live_first:
            lower = climb.scopes[n - 1]
            member = members.get((scope.id, below))
            if member is not None and member.lower_id is None:
                break  # counted there by its accepted report, not by its running aggregates
            has = counts.get(lower.id, 0) > 0
            member_changed = False
            if member is None and has:
                ConsolidationMember.insert(scope=scope.id, unit=below, lower=lower.id).execute()
                counts[scope.id] = counts.get(scope.id, 0) + 1
                member_changed = True
            elif member is not None and not has:
                ConsolidationMember.delete().where(ConsolidationMember.id == member.id).execute()
                counts[scope.id] = counts.get(scope.id, 0) - 1
                member_changed = True
            elif member is not None and member.lower_id != lower.id:
                ConsolidationMember.update(lower=lower.id).where(ConsolidationMember.id == member.id).execute()
        changed, touched = _adjust(scope, forms.rules(scope.form_version_id), totals[scope.id], old, new, below)
        if touched:
            climb.written.setdefault(scope.id, {}).update({c: totals[scope.id][c] for c in touched})
        if changed:
            climb.changed.setdefault(scope.id, {}).update(changed)
        if not changed and not member_changed:
            break
        old = {c: b for c, (b, a) in changed.items() if b is not None}
        new = {c: a for c, (b, a) in changed.items() if a is not None}
        below = scope.unit_id


def _member_counts(scope_ids: list[int]) -> dict[int, int]:
    return dict(_MEMBER_COUNTS.run(scopes=tuple(scope_ids)))


def _members(pairs: list[tuple[int, int]]) -> dict[tuple[int, int], ConsolidationMember]:
    """The members (scope, unit) of ``pairs``, by pair."""
    wanted = set(pairs)
    found = _MEMBERS.run(scopes=tuple({s for s, _ in pairs}), units=tuple({u for _, u in pairs}))
    return {(x.scope_id, x.unit_id): x for x in found if (x.scope_id, x.unit_id) in wanted}


def follow(report_id: int) -> None:
    """Keep the consolidations above a report current after it was accepted, returned or
    reopened (the built-in subscriber ``core.reporting.subscribers.consolidation`` calls it in the
    transition's transaction): the receiver's scope counts the report's accepted version, or no
    longer does (a consolidating unit's report not accepted counts by its own running
    aggregates), and the change climbs the chain; the figures that changed are published to the
    figures store and written into every consolidated draft that still follows them."""
    report = _FOLLOWED_REPORT.first(report_id=report_id)
    if report is None or report.receiver_id is None or report.receiver_id == report.unit_id:
        return
    code, start, end = report.code, report.period_start, report.period_end
    version = None
    if report.status == "accepted":
        version = _LATEST_VERSION.first(report_id=report.id)
    elif _SCOPE.first(code=code, start=start, end=end, unit=report.receiver_id) is None:
        return  # not counted now, and the receiver never counted anything it could lose
    chain = _chain(code, start, end, report.receiver_id)
    if not chain:
        return
    forms = _Forms()
    scopes = _scopes(code, start, end, [u for u, _ in chain], report)
    climb = _Climb(scopes, {s.id: publishes for s, (_, publishes) in zip(scopes, chain)})
    first = scopes[0]
    pairs = [(first.id, report.unit_id)] + [(scopes[n].id, scopes[n - 1].unit_id) for n in range(1, len(scopes))]
    m = ConsolidationMember
    members = _members(pairs)
    current = members.get((first.id, report.unit_id))
    lower = None
    if version is None:
        lower = _SCOPE.first(code=code, start=start, end=end, unit=report.unit_id)
        if lower is not None and not m.select().where(m.scope == lower.id).exists():
            lower = None
    # What the unit counted for before, and what it counts for now.
    if version is None and current is not None and current.lower_id is None and current.report_id != report.id:
        return  # the unit is counted by another report of the period (another version of the regime)
    if version is not None and current is not None and current.lower_id is None \
            and (current.report_id, current.version_number) == (report.id, version.number):
        return  # counted already
    if version is None and lower is None and current is None:
        return  # not counted before, nor now
    if version is None and lower is not None and current is not None and current.lower_id == lower.id:
        return  # counted live already
    totals = _totals([s.id for s in scopes] + ([current.lower_id] if current is not None and current.lower_id
                                              else []) + ([lower.id] if lower is not None else []))
    if current is None:
        old = {}
    elif current.lower_id is not None:
        old = _values(totals.get(current.lower_id, {}))
    else:
        old = _stored_values(first.id, report.unit_id)
    counts = _member_counts([s.id for s in scopes])
    if current is not None and current.lower_id is None:
        _delete_values(first.id, report.unit_id)
    if version is not None:
        new = _version_cells(version, forms.inputs(version.form_version_id, report.period_index))
        _insert_values(first.id, report.unit_id, new)
        fields = dict(report=report.id, version_number=version.number, lower=None)
        climb.source = (first.id, report.id, version.number)
    elif lower is not None:
        new = _values(totals.get(lower.id, {}))
        fields = dict(report=None, version_number=None, lower=lower.id)
        if current is not None and current.lower_id is None:
            climb.source = (first.id, current.report_id, None)
    else:
        new, fields = {}, None
        if current.lower_id is None:
            climb.source = (first.id, current.report_id, None)
    if fields is None:
        m.delete().where(m.id == current.id).execute()
        counts[first.id] = counts.get(first.id, 0) - 1
    elif current is None:
        m.insert(scope=first.id, unit=report.unit_id, **fields).execute()
        counts[first.id] = counts.get(first.id, 0) + 1
    else:
        m.update(**fields).where(m.id == current.id).execute()
    _climb(climb, totals, 0, report.unit_id, old, new, counts, members, forms,
           member_changed=fields is None or current is None)
    _write_totals(climb.written)
    _publish(climb, forms)
    _follow_drafts(climb, forms)


# -- publishing and the drafts that follow ----------------------------------------------------

def _period_columns(form) -> set[str]:
    """The columns holding a period's own figure — the rule of the accepted figures subscriber
    (``core.reporting.subscribers.figures.period_columns``), which this module may not import."""
    accumulated = {c.accumulate for c in form.columns if c.accumulate}
    if accumulated:
        return accumulated
    inputs = [c.key for c in form.columns if c.kind == "input" and c.value_kind == "actual"]
    return set(inputs) if len(inputs) == 1 else set()


def _scope_figures(scope, form, changed: dict) -> list:
    from core.catalogue.figures import Figure
    from core.regimes.periods import FREQUENCIES

    if scope.frequency not in FREQUENCIES:
        return []
    columns = _period_columns(form)
    rows = {r.key: r for r in form.rows if r.kind == "indicator" and r.indicator}
    return [Figure(rows[row].indicator, scope.unit_id, scope.frequency, scope.year, scope.period_index, "actual",
                   after, option=rows[row].option or "")
            for (row, col), (_, after) in sorted(changed.items()) if row in rows and col in columns]


def _put_figures(figures: list) -> None:
    """Write consolidated figures to the store; a figure it refuses (a sum past what a value
    holds, an indicator retired) is left out and logged, never failing the acceptance."""
    import logging

    from core.catalogue.figures import put_values
    from core.errors import ValidationError

    if not figures:
        return
    try:
        put_values(figures, source=LIVE_SOURCE)
    except ValidationError as exc:
        refused = {int(key.split(".", 1)[0]) for key in exc.errors}
        logging.getLogger("baocao.consolidation").warning("%d consolidated figures left out of the store: %s",
                                                          len(refused), exc.errors)
        kept = [f for n, f in enumerate(figures, start=1) if n not in refused]
        if kept:
            put_values(kept, source=LIVE_SOURCE)


def _publish(climb: _Climb, forms: _Forms) -> None:
    figures = []
    for scope in climb.scopes:
        if scope.id in climb.changed and climb.publishes.get(scope.id, True):
            figures += _scope_figures(scope, forms.form(scope.form_version_id), climb.changed[scope.id])
    _put_figures(figures)


def _storable(value: Decimal | None) -> bool:
    from core.numbers import NUMBER_LIMIT

    return value is None or abs(value) < NUMBER_LIMIT


_FOLLOWING_DRAFTS = Prepared(lambda p: Report.select(Report, Consolidation.followed_revision)
                             .join(Regime).switch(Report).join(Consolidation, on=(Consolidation.report == Report.id))
                             .where((Regime.code == p.code) & (Report.period_start == p.start)
                                    & (Report.period_end == p.end) & (Report.kind == KIND)
                                    & Report.unit.in_(p.units) & Report.status.in_(p.editable)
                                    & (Consolidation.include_submitted == False))  # noqa: E712 — SQL from ==
                             .objects())


def _follow_drafts(climb: _Climb, forms: _Forms) -> None:
    """Write the changed figures into each consolidated report of the chain that still follows
    its running aggregates: editable, counting accepted reports only, and not edited by its unit
    since the consolidation last wrote it (its revision is still the one recorded then)."""
    ids = [s for s in climb.changed] + ([climb.source[0]] if climb.source else [])
    if not ids:
        return
    by_unit = {s.unit_id: s for s in climb.scopes if s.id in ids}
    first = climb.scopes[0]
    query = _FOLLOWING_DRAFTS.run(code=first.regime_code, start=first.period_start, end=first.period_end,
                                  units=tuple(by_unit), editable=tuple(rd.EDITABLE))
    now = utcnow()
    for report in query:
        scope = by_unit[report.unit_id]
        if report.followed_revision != report.revision:
            continue  # its unit edited it: the banner says what changed since (``changes``)
        changed = climb.changed.get(scope.id, {})
        cells = forms.aggregated(report.form_version_id, report.period_index)
        writes = {cell: after for cell, (_, after) in changed.items() if cell in cells and _storable(after)}
        moved = (Report.update(revision=Report.revision + 1, updated_at=now, updated_by=None,
                               status="draft" if report.status == "not_started" and writes else report.status)
                 .where((Report.id == report.id) & (Report.revision == report.revision)).execute())
        if moved != 1:
            continue
        _write_draft(report.id, writes, now)
        (Consolidation.update(followed_revision=report.revision + 1, refreshed_at=now)
         .where(Consolidation.report == report.id).execute())
        if climb.source and climb.source[0] == scope.id:
            _, source_id, number = climb.source
            ConsolidationSource.delete().where((ConsolidationSource.consolidated == report.id)
                                               & (ConsolidationSource.source == source_id)).execute()
            if number is not None:
                ConsolidationSource.insert(consolidated=report.id, source=source_id, version_number=number,
                                           at=now).execute()


def _write_draft(report_id: int, writes: dict, now) -> None:
    v = rd.ReportValue
    gone = [(row, col) for (row, col), value in writes.items() if value is None]
    if gone:
        v.delete().where((v.report == report_id) & Tuple(v.row, v.column).in_(gone)).execute()
    rows = [(report_id, row, col, value, now, None) for (row, col), value in sorted(writes.items())
            if value is not None]
    bulk_write(v, ("report_id", "row", "column", "value", "updated_at", "updated_by_id"), rows,
               conflict=("report_id", "row", "column"), update=("value", "updated_at", "updated_by_id"))


# -- recomputing a scope from its sources (refresh, rebuild) ----------------------------------

def _received(scope) -> list[tuple]:
    """(report id, unit id, status) of the reports the scope's unit receives, oldest first."""
    return list(Report.select(Report.id, Report.unit, Report.status).join(Regime)
                .where((Regime.code == scope.regime_code) & (Report.period_start == scope.period_start)
                       & (Report.period_end == scope.period_end) & (Report.receiver == scope.unit_id)
                       & (Report.unit != scope.unit_id))
                .order_by(Report.id).tuples())


def _sync_members(scope, forms: _Forms, received: list[tuple] | None = None) -> None:
    """Make the scope's members what its sources give now: every received report accepted, by its
    latest version (its figures stored as rows, read from the version once), and every scope
    below that counts something and points here, live, for a unit whose report is not accepted."""
    m = ConsolidationMember
    received = _received(scope) if received is None else received
    accepted = {rid: uid for rid, uid, status in received if status == "accepted"}
    latest: dict[int, tuple[int, int, int]] = {}  # report → (version id, number, form version)
    if accepted:
        for vid, rid, number, form_id in (ReportVersion.select(ReportVersion.id, ReportVersion.report,
                                                               ReportVersion.number, ReportVersion.form_version)
                                          .where(ReportVersion.report.in_(list(accepted)))
                                          .order_by(ReportVersion.report, ReportVersion.number).tuples()):
            latest[rid] = (vid, number, form_id)
    desired: dict[int, tuple] = {}
    for rid, uid in accepted.items():
        if rid in latest:
            desired[uid] = ("version", rid, latest[rid])
    lower = (ConsolidationScope.select(ConsolidationScope.id, ConsolidationScope.unit)
             .where((ConsolidationScope.regime_code == scope.regime_code)
                    & (ConsolidationScope.period_start == scope.period_start)
                    & (ConsolidationScope.period_end == scope.period_end)
                    & (ConsolidationScope.up == scope.unit_id) & (ConsolidationScope.id != scope.id)
                    & fn.EXISTS(m.select(m.id).where(m.scope == ConsolidationScope.id)))
             .tuples())
    for lid, uid in lower:
        desired.setdefault(uid, ("live", lid))
    current = {x.unit_id: x for x in m.select().where(m.scope == scope.id)}
    stale, gone, added, moved, load = [], [], [], [], {}
    for uid in sorted(set(desired) | set(current)):
        want, have = desired.get(uid), current.get(uid)
        if have is not None and want is not None:
            if want[0] == "version" and have.lower_id is None \
                    and (have.report_id, have.version_number) == (want[1], want[2][1]):
                continue
            if want[0] == "live" and have.lower_id == want[1]:
                continue
        if have is not None and have.lower_id is None:
            stale.append(uid)
        if want is None:
            gone.append(have.id)
            continue
        if want[0] == "version":
            load[want[2][0]] = (uid, want[2][2])
            fields = (want[1], want[2][1], None)
        else:
            fields = (None, None, want[1])
        if have is None:
            added.append((scope.id, uid, *fields))
        else:
            moved.append((have.id, fields))
    # A few statements whatever the number of members (the rebuild goes through every scope).
    if stale:
        ConsolidationValue.delete().where((ConsolidationValue.scope == scope.id)
                                          & ConsolidationValue.unit.in_(stale)).execute()
    if gone:
        m.delete().where(m.id.in_(gone)).execute()
    for member_id, (report_id, number, lower_id) in moved:
        m.update(report=report_id, version_number=number, lower=lower_id).where(m.id == member_id).execute()
    bulk_write(m, ("scope_id", "unit_id", "report_id", "version_number", "lower_id"), added)
    rows = []
    ids = sorted(load)
    for start in range(0, len(ids), 200):  # the versions' texts, a bounded number at a time
        for version in ReportVersion.select(ReportVersion.id, ReportVersion.canonical).where(
                ReportVersion.id.in_(ids[start:start + 200])):
            uid, form_id = load[version.id]
            rows += [(scope.id, uid, row, col, value) for (row, col), value in
                     sorted(_version_cells(version, forms.inputs(form_id, scope.period_index)).items())]
            if len(rows) >= 20_000:
                bulk_write(ConsolidationValue, ("scope_id", "unit_id", "row", "column", "value"), rows)
                rows = []
    bulk_write(ConsolidationValue, ("scope_id", "unit_id", "row", "column", "value"), rows)


_GROUPED = """
SELECT u.r, u.c, SUM(u.x), COUNT(u.x), MIN(u.x), MAX(u.x) FROM (
    SELECT v."row" AS r, v."column" AS c, v."value" AS x FROM core_consolidation_value v WHERE v.scope_id = ?
    UNION ALL
    SELECT t."row", t."column", t."value" FROM core_consolidation_total t
    JOIN core_consolidation_member m ON m.lower_id = t.scope_id
    WHERE m.scope_id = ? AND t."value" IS NOT NULL
) u GROUP BY u.r, u.c
"""


def _recompute_totals(scope, forms: _Forms, before: dict) -> dict:
    """The scope's running aggregates computed again from the stored rows, in one grouped query
    (``before``: its cells as stored); written; returns {cell: (figure before, after)} changed."""
    rules = forms.rules(scope.form_version_id)
    cells: dict[tuple[str, str], _Cell] = {}
    for row, col, total, reported, low, high in db.execute_sql(_sql(_GROUPED), (scope.id, scope.id)).fetchall():
        rule = rules.get(row, "")
        was = before.get((row, col))
        cell = _Cell(_exact(total), reported, _exact(low) if rule == "min" else None,
                     _exact(high) if rule == "max" else None, None, was.id if was is not None else None)
        cell.value = _figure(rule, cell)
        cells[(row, col)] = cell
    gone = {c: _Cell(Decimal(0), 0, None, None, None) for c in before if c not in cells}
    _write_totals({scope.id: {**cells, **gone}}, new=not before)  # ``before`` read from the table
    changed = {}
    for cell in set(cells) | set(before):
        was = before[cell].value if cell in before else None
        now = cells[cell].value if cell in cells else None
        if was != now:
            changed[cell] = (was, now)
    before.clear()
    before.update(cells)
    return changed


def _refresh_scope(report: Report, forms: _Forms) -> ConsolidationScope:
    """The consolidated report's scope recomputed from its sources (a refresh), its change carried
    up the chain, published, and written into the drafts above that follow."""
    code, start, end = report.regime.code, report.period_start, report.period_end
    chain = _chain(code, start, end, report.unit_id)
    scopes = _scopes(code, start, end, [u for u, _ in chain], report)
    scope = scopes[0]
    ids = [s.id for s in scopes]
    totals = _totals(ids)
    counts_before = _member_counts(ids)
    _sync_members(scope, forms)
    changed = _recompute_totals(scope, forms, totals[scope.id])
    counts = _member_counts(ids)
    climb = _Climb(scopes, {s.id: publishes for s, (_, publishes) in zip(scopes, chain)})
    if changed:
        climb.changed[scope.id] = changed
    member_changed = (counts_before.get(scope.id, 0) > 0) != (counts.get(scope.id, 0) > 0)
    if len(scopes) > 1 and (changed or member_changed):
        m = ConsolidationMember
        pairs = [(scopes[n].id, scopes[n - 1].unit_id) for n in range(1, len(scopes))]
        members = _members(pairs)
        old = {c: b for c, (b, a) in changed.items() if b is not None}
        new = {c: a for c, (b, a) in changed.items() if a is not None}
        _climb(climb, totals, 1, scope.unit_id, old, new, counts, members, forms, member_changed, live_first=True)
        _write_totals(climb.written)
    _publish(climb, forms)
    climb.changed.pop(scope.id, None)  # its own draft is the refresh's to write
    _follow_drafts(climb, forms)
    return scope


def _scope_values(scope_id: int) -> dict[tuple[str, str], Decimal]:
    return {(row, col): _number(value) for row, col, value in _read(
        'SELECT "row", "column", "value" FROM core_consolidation_total WHERE scope_id = ? AND "value" IS NOT NULL',
        (scope_id,))}


def _counted_versions(scope_id: int) -> list[tuple[int, int]]:
    m = ConsolidationMember
    return list(m.select(m.report, m.version_number)
                .where((m.scope == scope_id) & m.lower.is_null() & m.report.is_null(False)).tuples())


# -- the full rebuild (repair) ----------------------------------------------------------------

@dataclass
class Rebuilt:
    """What ``rebuild`` did: consolidations (regime code and period), scopes, members counted."""

    periods: int = 0
    scopes: int = 0
    members: int = 0


def rebuild(*, regime_code: str | None = None, period: str | None = None,
            progress: Callable[[int, int], None] | None = None) -> Rebuilt:
    """Build every running aggregate again from the accepted reports (``baocao consolidation
    rebuild``: after an upgrade, and to repair). One transaction per regime code and period:
    the scopes are emptied, each accepted report's latest version is stored as rows in its
    receiver's scope, then every scope, lowest first, is aggregated in the database by one grouped
    query and counted live by the scope above it — the same numbers as the incremental path.
    The figures that changed are published; the drafts that follow are written. On PostgreSQL
    the tables are analysed afterwards (fresh statistics after a bulk load).

    ``progress(done, total)``, if given, is called with ``done=0`` before the first (regime code,
    period) and again after each one is committed, ``done`` counting up to ``total`` (a
    background job's progress bar: a province's year takes minutes)."""
    start = end = None
    if period:
        start, end = _period(period)
    keys = Report.select(Regime.code, Report.period_start, Report.period_end).join(Regime).where(
        Report.receiver.is_null(False))
    old = ConsolidationScope.select(ConsolidationScope.regime_code, ConsolidationScope.period_start,
                                    ConsolidationScope.period_end)
    if regime_code:
        keys = keys.where(Regime.code == regime_code)
        old = old.where(ConsolidationScope.regime_code == regime_code)
    if start is not None:
        keys = keys.where((Report.period_start == start) & (Report.period_end == end))
        old = old.where((ConsolidationScope.period_start == start) & (ConsolidationScope.period_end == end))
    found = sorted(set(keys.distinct().tuples()) | set(old.distinct().tuples()))
    result = Rebuilt()
    parents = dict(Unit.select(Unit.id, Unit.parent).tuples())
    if progress is not None:
        progress(0, len(found))
    for code, first, last in found:
        with transaction():
            _rebuild_one(code, first, last, parents, result)
        result.periods += 1
        if progress is not None:
            progress(result.periods, len(found))
    if not is_sqlite() and found:  # fresh statistics after a bulk load, for the planner
        from core.catalogue.figures import IndicatorValue

        for model in (ConsolidationScope, ConsolidationMember, ConsolidationValue, ConsolidationTotal,
                      IndicatorValue):
            db.execute_sql(f'ANALYZE "{model._meta.table_name}"')
    return result


def _rebuild_one(code: str, start: dt.date, end: dt.date, parents: dict, result: Rebuilt) -> None:
    _serialise()
    forms = _Forms()
    where = ((ConsolidationScope.regime_code == code) & (ConsolidationScope.period_start == start)
             & (ConsolidationScope.period_end == end))
    previous = {s.unit_id: s for s in ConsolidationScope.select().where(where)}
    before = {s.unit_id: _scope_values(s.id) for s in previous.values()}
    if previous:
        ids = [s.id for s in previous.values()]
        # Emptied in the order the rows point at each other (no reliance on cascades).
        ConsolidationValue.delete().where(ConsolidationValue.scope.in_(ids)).execute()
        ConsolidationTotal.delete().where(ConsolidationTotal.scope.in_(ids)).execute()
        ConsolidationMember.delete().where(ConsolidationMember.scope.in_(ids)).execute()
        ConsolidationScope.delete().where(ConsolidationScope.id.in_(ids)).execute()
    reports = list(Report.select(Report.id, Report.unit, Report.receiver, Report.kind, Report.status,
                                 Report.form_version, Report.frequency, Report.year, Report.period_index)
                   .join(Regime).where((Regime.code == code) & (Report.period_start == start)
                                       & (Report.period_end == end)).order_by(Report.id))
    next_of: dict[int, int | None] = {}
    for r in sorted(reports, key=lambda r: (r.kind != KIND, r.id)):  # as ``_chain``: consolidated first
        next_of.setdefault(r.unit_id, r.receiver_id)
    own_accepted = {r.unit_id for r in reports if r.kind == "unit" and r.status == "accepted"}

    def up_of(unit_id):
        return next_of[unit_id] if unit_id in next_of else parents.get(unit_id)

    # Every receiver of an accepted report and every unit above one, as ``_chain`` walks them.
    ups: dict[int, int | None] = {}
    for r in reports:
        if r.status != "accepted" or r.receiver_id is None or r.receiver_id == r.unit_id:
            continue
        walk, unit = [], r.receiver_id
        while unit is not None and unit not in walk and len(walk) < MAX_CHAIN:
            walk.append(unit)
            unit = up_of(unit)
        for n, unit in enumerate(walk):
            above = walk[n + 1] if n + 1 < len(walk) else None
            if unit not in ups or ups[unit] is None:
                ups[unit] = above
    depth: dict[int, int] = {}

    def depth_of(unit_id, seen=()):
        if unit_id not in depth:
            above = ups.get(unit_id)
            depth[unit_id] = 0 if above is None or above in seen else depth_of(above, seen + (unit_id,)) + 1
        return depth[unit_id]

    origin, received = {}, {}
    for r in reports:  # the form a scope's rules come from: its unit's own report's, else a source's
        origin.setdefault(r.unit_id, r)
        if r.receiver_id is not None and r.receiver_id != r.unit_id:
            received.setdefault(r.receiver_id, []).append((r.id, r.unit_id, r.status))
    scopes = []
    for unit_id in sorted(ups, key=lambda u: (-depth_of(u), u)):  # the lowest first: counted live above
        model = origin.get(unit_id) or next((r for r in reports if r.receiver_id == unit_id), reports[0])
        scope = ConsolidationScope.create(regime_code=code, period_start=start, period_end=end, unit=unit_id,
                                          up=ups[unit_id], frequency=model.frequency, year=model.year,
                                          period_index=model.period_index, form_version=model.form_version_id)
        _sync_members(scope, forms, received.get(unit_id, []))
        _recompute_totals(scope, forms, {})
        scopes.append(scope)
    result.scopes += len(scopes)
    result.members += ConsolidationMember.select().where(
        ConsolidationMember.scope.in_([s.id for s in scopes] or [0])).count()
    # What changed for the store and for the drafts that follow.
    climb = _Climb(scopes, {s.id: s.unit_id not in own_accepted for s in scopes})
    now_values = {s.unit_id: _scope_values(s.id) for s in scopes}
    for scope in scopes:
        was, now = before.get(scope.unit_id, {}), now_values[scope.unit_id]
        changed = {c: (was.get(c), now.get(c)) for c in set(was) | set(now) if was.get(c) != now.get(c)}
        if changed:
            climb.changed[scope.id] = changed
    _publish(climb, forms)
    for unit_id, was in before.items():  # a consolidation that counts nothing any more: emptied
        if unit_id not in now_values and was and unit_id not in own_accepted:
            gone = previous[unit_id]
            _put_figures(_scope_figures(gone, forms.form(gone.form_version_id),
                                        {c: (v, None) for c, v in was.items()}))
    _rewrite_drafts(code, start, end, {s.unit_id: s for s in scopes}, forms)


def _rewrite_drafts(code: str, start: dt.date, end: dt.date, scopes: dict, forms: _Forms) -> None:
    """Every consolidated draft of the period that follows: its aggregated cells set to its
    scope's figures (empty when nothing is counted) and its recorded sources to the versions
    counted."""
    query = (Report.select(Report, Consolidation.followed_revision)
             .join(Regime).switch(Report).join(Consolidation, on=(Consolidation.report == Report.id))
             .where((Regime.code == code) & (Report.period_start == start) & (Report.period_end == end)
                    & (Report.kind == KIND) & Report.status.in_(rd.EDITABLE)
                    & (Consolidation.include_submitted == False))  # noqa: E712 — peewee builds SQL from ==
             .objects())
    now = utcnow()
    for report in query:
        if report.followed_revision != report.revision:
            continue
        scope = scopes.get(report.unit_id)
        figures = _scope_values(scope.id) if scope is not None else {}
        stored = rd.stored_values(report.id)
        cells = forms.aggregated(report.form_version_id, report.period_index)
        writes = {c: figures.get(c) for c in cells
                  if figures.get(c) != stored.get(c) and _storable(figures.get(c))}
        counted = _counted_versions(scope.id) if scope is not None else []
        if not writes and sorted(counted) == sorted(recorded(report.id).items()):
            continue
        moved = (Report.update(revision=Report.revision + 1, updated_at=now, updated_by=None,
                               status="draft" if report.status == "not_started" and writes else report.status)
                 .where((Report.id == report.id) & (Report.revision == report.revision)).execute())
        if moved != 1:
            continue
        _write_draft(report.id, writes, now)
        (Consolidation.update(followed_revision=report.revision + 1, refreshed_at=now)
         .where(Consolidation.report == report.id).execute())
        ConsolidationSource.delete().where(ConsolidationSource.consolidated == report.id).execute()
        if counted:
            ConsolidationSource.insert_many([dict(consolidated=report.id, source=rid, version_number=n, at=now)
                                             for rid, n in counted]).execute()


# -- reading: a consolidation's figures and what they count -----------------------------------

@dataclass(frozen=True)
class CountedUnit:
    """A unit counted in a consolidation: by its accepted report's version, or ``live`` (a
    consolidating unit below, by its own running aggregates)."""

    unit_id: int
    unit_name: str
    report_id: int | None
    version_number: int | None
    live: bool


@dataclass(frozen=True)
class MissingUnit:
    """A report the consolidating unit receives that is not counted (not accepted yet)."""

    unit_id: int
    unit_name: str
    report_id: int
    status: str


@dataclass
class Running:
    """A consolidation as it stands: its figures ((row, column) → number) and their provenance."""

    scope: ConsolidationScope
    figures: dict
    counted: list
    missing: list


def running(regime_code: str, period: str, unit_id: int) -> Running | None:
    """The running consolidation of ``unit_id`` for a regime code and period ("start/end"), or
    None when nothing was ever counted there. Three indexed queries, whatever the number of
    units below: the figures, who is counted, which received reports are not."""
    start, end = _period(period)
    scope = ConsolidationScope.get_or_none((ConsolidationScope.regime_code == regime_code)
                                           & (ConsolidationScope.period_start == start)
                                           & (ConsolidationScope.period_end == end)
                                           & (ConsolidationScope.unit == unit_id))
    return None if scope is None else _running(scope)


def _running(scope) -> Running:
    m = ConsolidationMember
    counted = [CountedUnit(uid, name, rid, number, lower is not None) for uid, name, rid, number, lower in
               m.select(m.unit, Unit.name, m.report, m.version_number, m.lower).join(Unit, on=(m.unit == Unit.id))
               .where(m.scope == scope.id).order_by(Unit.code).tuples()]
    units = {c.unit_id for c in counted}
    missing = [MissingUnit(uid, name, rid, status) for rid, uid, name, status in
               Report.select(Report.id, Report.unit, Unit.name, Report.status).join(Unit, on=(Report.unit == Unit.id))
               .switch(Report).join(Regime)
               .where((Regime.code == scope.regime_code) & (Report.period_start == scope.period_start)
                      & (Report.period_end == scope.period_end) & (Report.receiver == scope.unit_id)
                      & (Report.unit != scope.unit_id))
               .order_by(Unit.code).tuples() if uid not in units]
    return Running(scope, _scope_values(scope.id), counted, missing)


def provenance(unit_id: int, frequency: str, year: int, index: int) -> list[Running]:
    """The consolidations behind a unit's consolidated figures in the store for one period
    (source "consolidation"): which units each counted, which received reports it did not."""
    return [_running(scope) for scope in ConsolidationScope.select().where(
        (ConsolidationScope.unit == unit_id) & (ConsolidationScope.frequency == frequency)
        & (ConsolidationScope.year == year) & (ConsolidationScope.period_index == index))
        .order_by(ConsolidationScope.regime_code)]
