"""What a report is about, read-only, for plugins that forward it: its regime, unit, receiver, period
and form, without the values (``core.reporting.accepted`` gives those of the accepted version).

A national connector names the reporting and receiving units by their electronic codes (mã định
danh, QCVN 102), the period by its window and its place in the year, and each cell of the frozen
values by the form's rows and columns; this is where it reads them. ``report_overview(report_id)``
checks nothing about the caller (subscribers and jobs have none); a view passes ``access`` and a
report the user may not read is ``NotFound``.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from core.models import Unit
from core.reporting import data as rd
from core.reporting.opening import Report
from core.regimes.forms import FormVersion


@dataclass(frozen=True)
class UnitRef:
    id: int
    code: str
    name: str
    kind: str
    agency_code: str  # mã định danh điện tử; "" when the unit has none recorded


@dataclass(frozen=True)
class ReportOverview:
    id: int
    kind: str  # "unit" or "consolidated"
    status: str
    regime_id: int
    regime_code: str
    regime_version: int
    regime_name: str
    unit: UnitRef
    receiver: UnitRef | None  # None: no receiver inside the system (the top of the tree)
    frequency: str
    year: int
    index: int
    period_start: dt.date
    period_end: dt.date
    deadline: dt.date
    form_code: str
    form_version: int | None
    form: dict  # the form version's definition: title, rows, columns, rules, outline


def _ref(unit: Unit | None) -> UnitRef | None:
    if unit is None:
        return None
    return UnitRef(id=unit.id, code=unit.code, name=unit.name, kind=unit.kind, agency_code=unit.agency_code or "")


def report_overview(report_id: int, *, access=None) -> ReportOverview | None:
    """The report's overview, or None when there is no such report. With ``access``, a report that
    caller may not read raises ``NotFound``."""
    report = rd.get_report(access, report_id) if access is not None else Report.get_or_none(Report.id == report_id)
    if report is None:
        return None
    regime = report.regime
    version = FormVersion.get_or_none(FormVersion.id == report.form_version_id) if report.form_version_id else None
    receiver = Unit.get_or_none(Unit.id == report.receiver_id) if report.receiver_id else None
    return ReportOverview(
        id=report.id, kind=report.kind, status=report.status, regime_id=regime.id, regime_code=regime.code,
        regime_version=regime.version, regime_name=regime.name, unit=_ref(Unit.get_by_id(report.unit_id)),
        receiver=_ref(receiver), frequency=report.frequency, year=report.year, index=report.period_index,
        period_start=report.period_start, period_end=report.period_end, deadline=report.deadline,
        form_code=version.form.code if version else "", form_version=version.version if version else None,
        form=json.loads(version.definition or "{}") if version else {})
