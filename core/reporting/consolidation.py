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
setting ``consolidate_submitted``). A source's figures are read from its latest version's canonical
JSON (what was signed and accepted), never from its live draft values.

Each input cell of the form is aggregated by the rule of its row's indicator (catalogue version in
force): ``sum``; ``average`` (the mean of the units that reported the cell); ``min``; ``max``;
``last`` — the end-of-period figure: across units of the same period these stocks are added, so it
sums; ``none`` and ``weighted_average`` are left to the unit (the catalogue has no weight
indicator, and a plain mean would be a wrong figure presented as a right one). A row without an
indicator, or with a code the catalogue no longer has, sums. A cell no unit reported stays empty,
not 0. Computed cells are recomputed by the form from the aggregated inputs, as on any report.

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
from dataclasses import dataclass, field
from decimal import Decimal

from peewee import BooleanField, DateTimeField, ForeignKeyField, IntegerField

from core import audit
from core.reporting import data as rd
from core.reporting import events
from core.db import CoreModel, transaction
from core.errors import BaocaoError, Forbidden, NotFound
from core.regimes.form_engine import MAX_DECIMALS, column_label, rounded
from core.catalogue.indicators import Indicator
from core.models import Unit, User, utcnow
from core.regimes.periods import CUSTOM, Window
from core.regimes.regimes import Regime
from core.reporting.opening import Report
from core.reporting.versions import ReportVersion
from core.units.tree import ancestor_ids

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


def received_reports(report: Report) -> list[Report]:
    """Every report of the same regime code and period that the consolidated report's unit receives."""
    code = report.regime.code
    return list(Report.select(Report, Unit).join(Unit).switch(Report).join(Regime)
                .where((Regime.code == code) & (Report.period_start == report.period_start)
                       & (Report.period_end == report.period_end) & (Report.receiver == report.unit_id)
                       & (Report.id != report.id))
                .order_by(Unit.code))


def _latest_versions(report_ids: list[int]) -> dict[int, object]:
    latest: dict[int, object] = {}
    if not report_ids:
        return latest
    for v in (ReportVersion.select().where(ReportVersion.report.in_(report_ids))
              .order_by(ReportVersion.report, ReportVersion.number)):
        latest[v.report_id] = v
    return latest


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


def rules_for(form) -> dict[str, str]:
    """Row key → aggregation of its indicator ("" for a row without one: summed)."""
    codes = sorted({r.indicator for r in form.rows if r.kind == "indicator" and r.indicator})
    found = {}
    if codes:
        found = {i.code: i.aggregation for i in Indicator.select(Indicator.code, Indicator.aggregation)
                 .where(Indicator.code.in_(codes) & Indicator.valid_to.is_null())}
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
    return access.allowed(rd.SUBMIT, ancestor_ids(unit_id))


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
        sources = eligible_sources(report, include_submitted=include_submitted)
        figures = compute(report, sources)
        cells = {cell: (rd.MISSING, value) for cell, value in figures.items()}
        try:
            result = rd.save(access, report.id, cells, source="consolidation")
        except rd.CellErrors as exc:  # a sum beyond what a cell holds
            where = next(iter(exc.errors))
            raise BaocaoError("consolidation.error.too_big", cell=where) from None
        now = utcnow()
        ConsolidationSource.delete().where(ConsolidationSource.consolidated == report.id).execute()
        if sources:
            ConsolidationSource.insert_many([dict(consolidated=report.id, source=s.id, version_number=v.number, at=now)
                                             for s, v in sources]).execute()
        (Consolidation.insert(report=report.id, refreshed_at=now, refreshed_by=getattr(access.actor, "id", None),
                              include_submitted=include_submitted)
         .on_conflict(conflict_target=[Consolidation.report],
                      update={Consolidation.refreshed_at: now,
                              Consolidation.refreshed_by: getattr(access.actor, "id", None),
                              Consolidation.include_submitted: include_submitted})
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


def recorded(report_id: int) -> dict[int, int]:
    return {s.source_id: s.version_number
            for s in ConsolidationSource.select().where(ConsolidationSource.consolidated == report_id)}


def last_refresh(report_id: int) -> Consolidation | None:
    return Consolidation.get_or_none(Consolidation.report == report_id)


def changes(report: Report, *, include_submitted: bool | None = None) -> list[Change]:
    """What changed among the sources since the last refresh (empty: up to date). Judged by the
    rule that refresh used (``include_submitted`` None), so changing the setting does not by
    itself turn every consolidated report stale."""
    if include_submitted is None:
        last = last_refresh(report.id)
        include_submitted = bool(last and last.include_submitted)
    before = recorded(report.id)
    now = {s.id: (s, v) for s, v in eligible_sources(report, include_submitted=include_submitted)}
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
    for sid, (source, version) in now.items():
        if sid not in before:
            found.append(Change(sid, source.unit.name, "added"))
        elif before[sid] != version.number:
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


def sources_overview(access, report: Report) -> tuple[list[SourceFigure], list[SourceFigure]]:
    """(reports counted in the last refresh, with the version used; the other received reports)."""
    used = recorded(report.id)
    counted, others = [], []
    wanted = {(sid, n) for sid, n in used.items()}
    versions = {}
    if wanted:
        for v in ReportVersion.select().where(ReportVersion.report.in_(list(used))):
            if (v.report_id, v.number) in wanted:
                versions[v.report_id] = v
    for source in received_reports(report):
        v = versions.get(source.id)
        item = SourceFigure(source, None, v.number if v else None, v.submitted_at if v else None,
                            v.late if v else None, v is not None, rd.can_read(access, source), v)
        (counted if v is not None else others).append(item)
    return counted, others


def cell_detail(access, report_id: int, row: str, column: str) -> CellDetail:
    report = get_consolidated(access, report_id)
    form = _form(report)
    if row not in form.row_index or column not in form.column_index:
        raise NotFound()
    cell = (row, column)
    cells = aggregated_cells(form, report.period_index)
    rule = rules_for(form).get(row, "")
    counted, others = sources_overview(access, report)
    for item in counted:
        item.value = version_values(item.version).get(cell)
    stored = rd.stored_values(report.id).get(cell)
    return CellDetail(report, form.row_index[row], form.column_index[column], rule, cell in cells, stored,
                      counted, others)


def parse_cell(text: str) -> tuple[str, str]:
    row, sep, col = (text or "").partition(".")
    if not (sep and row and col):
        raise NotFound()
    return row, col

