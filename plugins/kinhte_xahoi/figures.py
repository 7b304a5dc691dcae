"""Demo figures of the socio-economic indicators for the province (source "demo").

They are illustrative, not official statistics: magnitudes are set for a province of about
1.85 million people (the new Quảng Trị) from the order of magnitude of the two former provinces'
published yearly totals, then spread over the months with a seasonal pattern (Tết lifts retail in
January and February and empties the factories, summer brings the tourists, public investment is
disbursed at the end of the year) and a small deterministic noise. A second year grows by a steady
rate, so "same period last year" comparisons read like a real report.

Which kind a month gets follows practice in the monthly socio-economic report: every closed
cut-off window has an actual figure (thực hiện), the window still open today an estimate (ước
tính), and each year of the additive indicators a plan (kế hoạch).
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

from core.api import Figure, period_windows

# code → (2025 monthly level, yearly growth, seasonal profile)
_SEASON_FLAT = (1.0,) * 12
_SEASON_RETAIL = (1.12, 1.10, 0.95, 0.96, 0.98, 0.99, 1.00, 1.00, 0.98, 0.99, 1.00, 1.05)
_SEASON_TOURISM = (0.75, 0.95, 0.80, 1.05, 1.20, 1.45, 1.55, 1.35, 0.85, 0.70, 0.65, 0.70)
_SEASON_INDUSTRY = (0.92, 0.80, 1.00, 1.02, 1.04, 1.05, 1.05, 1.04, 1.02, 1.00, 1.00, 1.06)
_SEASON_INVEST = (0.35, 0.45, 0.70, 0.80, 0.85, 0.95, 0.95, 1.00, 1.05, 1.15, 1.30, 2.45)
_SEASON_BUDGET = (1.10, 0.85, 0.95, 1.05, 0.95, 1.00, 0.95, 0.95, 0.95, 1.00, 1.05, 1.30)
_SEASON_FISH = (0.70, 0.75, 0.95, 1.10, 1.25, 1.30, 1.25, 1.15, 0.95, 0.85, 0.85, 0.90)
_SEASON_FOREST = (0.30, 0.40, 0.60, 0.70, 0.80, 1.00, 1.20, 1.60, 1.90, 1.70, 1.00, 0.80)

ADDITIVE = {
    "KX0202": (520.0, 0.06, _SEASON_INDUSTRY),      # triệu kWh (wind and hydro)
    "KX0301": (7150.0, 0.095, _SEASON_RETAIL),      # tỷ đồng
    "KX0302": (82.0, 0.11, _SEASON_INDUSTRY),       # triệu USD
    "KX0303": (51.0, 0.08, _SEASON_INDUSTRY),       # triệu USD
    "KX0304": (610.0, 0.10, _SEASON_TOURISM),       # nghìn lượt
    "KX0305": (1480.0, 0.13, _SEASON_TOURISM),      # tỷ đồng
    "KX0401": (960.0, 0.07, _SEASON_BUDGET),        # tỷ đồng
    "KX0402": (2450.0, 0.06, _SEASON_BUDGET),       # tỷ đồng
    "KX0403": (1020.0, 0.12, _SEASON_INVEST),       # tỷ đồng
    "KX0501": (128.0, 0.08, _SEASON_RETAIL),        # doanh nghiệp
    "KX0502": (1250.0, 0.10, _SEASON_RETAIL),       # tỷ đồng
    "KX0601": (10800.0, 0.03, _SEASON_FISH),        # tấn
    "KX0602": (1150.0, 0.02, _SEASON_FOREST),       # ha
    "KX0701": (2900.0, 0.04, _SEASON_RETAIL),       # người
    "KX0702": (21.0, -0.06, _SEASON_FLAT),          # vụ
    "KX0703": (12.0, -0.07, _SEASON_FLAT),          # người
}
INTEGER = {"KX0501", "KX0701", "KX0702", "KX0703"}
# code → (2025 level, yearly change, noise): indexes in % of the same period last year
INDEXES = {"KX0201": (108.2, 0.4, 2.5), "KX0306": (103.3, -0.2, 0.4)}
GRDP_GROWTH = {2025: (7.1, 7.6, 7.9, 8.4), 2026: (7.8, 8.1, 8.3, 8.6)}  # quarters, %
POVERTY_RATE = {2024: 4.65, 2025: 3.82, 2026: 3.05}


@dataclass(frozen=True)
class _Month:
    year: int
    index: int
    kind: str


def _months(today: dt.date, years: tuple[int, ...]) -> list[_Month]:
    """Closed windows get an actual figure, the window open today an estimate."""
    out = []
    for year in years:
        for window in period_windows("monthly", year):
            if window.end < today:
                out.append(_Month(year, window.index, "actual"))
            elif window.start <= today:
                out.append(_Month(year, window.index, "estimate"))
    return out


def _level(base: float, growth: float, year: int) -> float:
    return base * (1 + growth) ** (year - 2025)


def demo_figures(unit_id: int, today: dt.date, *, scale: float = 1.0) -> list[Figure]:
    """Every demo figure of the province for last year and this year up to ``today``; with
    ``scale`` < 1, a commune's share of the additive figures (indexes, GRDP and the poverty rate
    are the province's own)."""
    years = (today.year - 1, today.year)
    rng = random.Random(f"kinhte_xahoi-demo-{unit_id}")  # the same figures on every machine
    figures: list[Figure] = []

    def add(code, frequency, year, index, kind, value):
        figures.append(Figure(code=code, unit_id=unit_id, frequency=frequency, year=year, index=index,
                              kind=kind, value=value))

    months = _months(today, years)
    for code, (base, growth, season) in ADDITIVE.items():
        for year in years:
            plan = _level(base, growth, year) * 12 * (1.04 if growth > 0 else 0.95) * scale
            add(code, "annual", year, 1, "plan", _round(code, plan))
        for month in months:
            value = _level(base, growth, month.year) * season[month.index - 1] * rng.uniform(0.96, 1.04) * scale
            add(code, "monthly", month.year, month.index, month.kind, _round(code, value))
    if scale != 1.0:
        return figures
    for code, (level, change, noise) in INDEXES.items():
        for month in months:
            value = level + change * (month.year - 2025) + rng.uniform(-noise, noise)
            add(code, "monthly", month.year, month.index, month.kind, f"{value:.2f}")
    for year in years:
        for quarter, growth in enumerate(GRDP_GROWTH.get(year, GRDP_GROWTH[2026]), start=1):
            window = period_windows("quarterly", year)[quarter - 1]
            if window.end < today:
                add("KX0101", "quarterly", year, quarter, "actual", f"{growth:.2f}")
            elif window.start <= today:
                add("KX0101", "quarterly", year, quarter, "estimate", f"{growth:.2f}")
        add("KX0101", "annual", year, 1, "plan", "8.00")
        add("KX0102", "annual", year, 1, "plan", _round("KX0102", 118_500 * 1.11 ** (year - 2025)))
        if year < today.year:
            add("KX0102", "annual", year, 1, "actual", _round("KX0102", 117_900 * 1.11 ** (year - 2025)))
            add("KX0704", "annual", year, 1, "actual", f"{POVERTY_RATE.get(year, 3.0):.2f}")
        add("KX0704", "annual", year, 1, "plan", f"{POVERTY_RATE.get(year, 3.0) - 0.5:.2f}")
    return figures


def _round(code: str, value: float) -> str:
    return str(round(value)) if code in INTEGER else f"{value:.1f}"
