"""Changing the working-day calendar (``/admin/calendar``), and what a change does to reports.

An administrator enters a day the Government moved (an extra day off, a Saturday worked in
exchange) or takes one back. The calendar itself (``core.regimes.workdays``) checks and stores the
day; here, in the same transaction, the reports still to be sent whose deadline that day can move
get it computed again, and one audit event tells both. The calendar sits below the reports and
never reaches up to them: this module is what the screen calls.
"""

from __future__ import annotations

import datetime as dt

from core import audit
from core.db import transaction
from core.errors import ValidationError
from core.regimes.deadlines import DeadlineRuleError
from core.regimes.periods import CUSTOM, window
from core.regimes.workdays import CalendarDay, WorkCalendar, delete_day, store_day, work_calendar
from core.reporting.opening import Report, level_deadlines


def add_day(access, day, kind: str, reason: str, *, settings=None) -> CalendarDay:
    """Store an extra day off or a make-up working day, with its legal basis, and move the
    deadlines it changes; audited."""
    with transaction():
        row = store_day(access, day, kind, reason, settings=settings)
        moved = _refresh_deadlines(day, work_calendar(settings))
        audit.record("calendar.add", actor=access.actor, object_type="calendar_day", object_id=row.id,
                     details={"day": day.isoformat(), "kind": kind, "reason": row.reason, "deadlines_moved": moved})
    return row


def remove_day(access, entry_id: int, reason: str, *, settings=None) -> CalendarDay:
    """Take a stored day back (a notice withdrawn or entered by mistake), saying why, and move the
    deadlines it changes; audited."""
    with transaction():
        row, reason = delete_day(access, entry_id, reason)
        moved = _refresh_deadlines(row.day, work_calendar(settings))
        audit.record("calendar.remove", actor=access.actor, object_type="calendar_day", object_id=row.id,
                     details={"day": row.day.isoformat(), "kind": row.kind, "reason": reason,
                              "basis": row.reason, "deadlines_moved": moved})
    return row


def _refresh_deadlines(day: dt.date, calendar: WorkCalendar) -> int:
    """Reports still to be sent whose deadline the changed ``day`` can move (after their cut-off, by
    their deadline) get it computed again with ``calendar``; returns how many changed."""
    moved = 0
    # A unit's report and a receiving unit's consolidated report alike: both keep the deadline of
    # their level (Report.level) under the regime's rules.
    query = Report.select().where((Report.status.in_(("not_started", "draft", "returned")))
                                  & (Report.kind.in_(("unit", "consolidated"))) & (Report.period_end < day)
                                  & (Report.nominal_deadline >= day - dt.timedelta(days=400)))
    computed: dict[tuple, dict | None] = {}  # one computation per regime and window, not per report
    for report in query:
        if report.frequency == CUSTOM:  # a request: the issuer set the day, only its move off a day off
            nominal, effective = report.nominal_deadline, calendar.next_working_day(report.nominal_deadline)
        else:
            key = (report.regime_id, report.frequency, report.year, report.period_index)
            if key not in computed:
                try:
                    computed[key] = level_deadlines(report.regime, window(*key[1:]), calendar)
                except (DeadlineRuleError, ValidationError, ValueError):
                    computed[key] = None
            by_level = computed[key]
            if not by_level:
                continue
            nominal, effective = by_level.get(report.level) or next(iter(by_level.values()))
        if day > max(effective, report.deadline):
            continue
        if (nominal, effective) != (report.nominal_deadline, report.deadline):
            Report.update(nominal_deadline=nominal, deadline=effective).where(Report.id == report.id).execute()
            moved += 1
    return moved
