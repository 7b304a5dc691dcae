"""The system administrator's repair of live consolidation (issue 14 items 1 and 10): which
regimes and periods have reports sent up a chain, and a rebuild of their running aggregates,
recorded in the audit trail.

``baocao consolidation rebuild`` does the same from the command line; the screen runs it as a
background job with a bar that moves once per regime and period (``core.background``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from peewee import fn

from core import audit
from core.errors import ValidationError
from core.regimes.regimes import Regime
from core.reporting import consolidation
from core.reporting.opening import Report

PERMISSION = "core.consolidation.admin"
CHOICES = 60  # the newest periods listed; older ones are rebuilt with "all"


@dataclass(frozen=True)
class Choice:
    regime_code: str
    regime_name: str
    start: dt.date
    end: dt.date
    label: str
    reports: int

    @property
    def period(self) -> str:
        return f"{self.start.isoformat()}/{self.end.isoformat()}"


def choices(limit: int = CHOICES) -> list[Choice]:
    """The regimes and periods whose reports go up a chain, newest period first."""
    rows = (Report.select(Regime.code, fn.MAX(Regime.name).alias("name"), Report.period_start, Report.period_end,
                          fn.MAX(Report.label).alias("label"), fn.COUNT(Report.id).alias("reports"))
            .join(Regime).where(Report.receiver.is_null(False))
            .group_by(Regime.code, Report.period_start, Report.period_end)
            .order_by(Report.period_end.desc(), Regime.code).limit(limit).tuples())
    return [Choice(code, name, start, end, label or "", count) for code, name, start, end, label, count in rows]


def rebuild(access, *, regime_code: str = "", period: str = "", progress=None) -> consolidation.Rebuilt:
    """Rebuild one regime's period, one regime, or everything (both empty); ``progress(done,
    total)`` hears of each regime and period committed. Only the codes and periods that exist
    are accepted: a typed-in value that matches nothing is refused, not taken for "nothing to do"."""
    regime_code = (regime_code or "").strip()[:40]
    period = (period or "").strip()[:25]
    if regime_code and not Regime.select().where(Regime.code == regime_code).exists():
        raise ValidationError({"regime": "repair.error.regime"})
    if period:
        try:
            start, end = (dt.date.fromisoformat(p) for p in period.split("/", 1))
        except ValueError:
            raise ValidationError({"period": "repair.error.period"}) from None
        if not Report.select().where((Report.period_start == start) & (Report.period_end == end)).exists():
            raise ValidationError({"period": "repair.error.period"})
    result = consolidation.rebuild(regime_code=regime_code or None, period=period or None, progress=progress)
    audit.record("consolidation.rebuild", actor=access.actor, object_type="regime", object_id=regime_code or "*",
                 details={"period": period or "*", "periods": result.periods, "scopes": result.scopes,
                          "members": result.members})
    return result
