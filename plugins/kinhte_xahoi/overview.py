"""The monthly socio-economic overview: one row per indicator, in the column layout of the
monthly reports in use (scheme A of the reference forms): this month, the same month last year,
the change, the total from the start of the year against last year's, and the share of the year's
plan.

Only additive indicators (aggregation "sum") have a year-to-date total and a plan share; for an
index (IIP, CPI — already "% of the same period last year") the month's figure is shown as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from core.api import figures_table, indicator_groups_of

PLUGIN_GROUP_PREFIX = "KX"


@dataclass
class Row:
    code: str
    name: str
    unit_of_measure: str
    is_heading: bool = False
    decimals: int = 1                # 0 for counts (doanh nghiệp, người, vụ)
    kind: str | None = None          # "actual" or "estimate" for this month
    month: Decimal | None = None
    month_last_year: Decimal | None = None
    month_change: Decimal | None = None  # % of the same month last year
    ytd: Decimal | None = None
    ytd_last_year: Decimal | None = None
    ytd_change: Decimal | None = None
    plan: Decimal | None = None
    plan_share: Decimal | None = None    # year to date, % of the year's plan


def _pick(kinds: dict | None) -> tuple[str | None, Decimal | None]:
    """The best figure of a period: official, then actual, then estimate."""
    for kind in ("official", "actual", "estimate"):
        if kinds and kinds.get(kind) is not None:
            return kind, Decimal(kinds[kind])
    return None, None


def _ratio(a: Decimal | None, b: Decimal | None) -> Decimal | None:
    if a is None or not b:
        return None
    return (a / b * 100).quantize(Decimal("0.1"))


def monthly_overview(unit_id: int, year: int, month: int) -> list[Row]:
    months = {(y, i): figures_table(unit_id, "monthly", y, i) for y in (year, year - 1) for i in range(1, month + 1)}
    plans = figures_table(unit_id, "annual", year, 1)
    rows: list[Row] = []
    for group in indicator_groups_of(PLUGIN_GROUP_PREFIX):
        members = [i for i in group.indicators if i.is_current]
        monthly = [i for i in members if "Tháng" in (i.periodicity or "")]
        if not monthly:
            continue
        rows.append(Row(group.code, group.name, "", is_heading=True))
        for indicator in sorted(monthly, key=lambda i: i.code):
            row = Row(indicator.code, indicator.name, indicator.unit_of_measure or "",
                      decimals=0 if indicator.value_type == "integer" else 1)
            row.kind, row.month = _pick(months[(year, month)].get(indicator.code))
            _, row.month_last_year = _pick(months[(year - 1, month)].get(indicator.code))
            if indicator.aggregation == "sum":
                row.month_change = _ratio(row.month, row.month_last_year)
                this = [_pick(months[(year, i)].get(indicator.code))[1] for i in range(1, month + 1)]
                last = [_pick(months[(year - 1, i)].get(indicator.code))[1] for i in range(1, month + 1)]
                row.ytd = sum(this) if None not in this else None
                row.ytd_last_year = sum(last) if None not in last else None
                row.ytd_change = _ratio(row.ytd, row.ytd_last_year)
                _, row.plan = _pick({"actual": (plans.get(indicator.code) or {}).get("plan")})
                row.plan_share = _ratio(row.ytd, row.plan)
            rows.append(row)
    return rows
