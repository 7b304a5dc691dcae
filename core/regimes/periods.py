"""Data cut-off windows of Decree 09/2019/NĐ-CP, Art. 12 (see docs: legal reference §1.4).

Pure functions, no database. A window runs from the 15th of one month to the 14th of a later
month, both days included:

- monthly (cl. 1): 15th of the previous month → 14th of the reporting month;
- quarterly (cl. 2): 15th of the month before the quarter → 14th of the quarter's last month;
- half-year (cl. 3): H1 15/12 of the previous year → 14/06; H2 15/06 → 14/12;
- annual (cl. 4): 15/12 of the previous year → 14/12;
- nine months (a provincial extension, e.g. Khánh Hòa QĐ 01/2023): 15/12 of the previous year → 14/09.

So "January 2026" starts on 15/12/2025, and the half-year, nine-month and annual windows are
cumulative: they overlap the monthly and quarterly ones. Thematic and ad-hoc requests set their own
window (Art. 8 cl. 5): ``custom_window``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from core.errors import BaocaoError

MONTHLY, QUARTERLY, HALF_YEAR, NINE_MONTHS, ANNUAL, CUSTOM = (
    "monthly", "quarterly", "half_year", "nine_months", "annual", "custom")
FREQUENCIES = (MONTHLY, QUARTERLY, HALF_YEAR, NINE_MONTHS, ANNUAL)

# frequency → (number of windows in a year, months per window)
_SHAPE = {MONTHLY: (12, 1), QUARTERLY: (4, 3), HALF_YEAR: (2, 6), NINE_MONTHS: (1, 9), ANNUAL: (1, 12)}
CUT_OFF_DAY = 14  # the window ends on the 14th; the next one starts on the 15th

_MONTHS_EN = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
              "October", "November", "December")
_ROMAN = ("I", "II", "III", "IV")
MIN_YEAR, MAX_YEAR = 1990, 2100


def _month_start(year: int, month: int) -> tuple[int, int]:
    """(year, month) of the month before ``month``, where a window starts on the 15th."""
    return (year - 1, 12) if month == 1 else (year, month - 1)


@dataclass(frozen=True)
class Window:
    """One cut-off window; ``start`` and ``end`` are both included (``end`` is the cut-off day)."""

    frequency: str
    year: int
    index: int
    start: dt.date
    end: dt.date
    custom_labels: tuple[tuple[str, str], ...] = field(default=(), compare=False)

    def label(self, lang: str = "vi") -> str:
        y, i = self.year, self.index
        vi = lang != "en"
        if self.frequency == CUSTOM:
            labels = dict(self.custom_labels)
            return labels.get(lang) or labels.get("vi") or next(iter(labels.values()), self.interval_text())
        if self.frequency == MONTHLY:
            return f"Tháng {i} năm {y}" if vi else f"{_MONTHS_EN[i - 1]} {y}"
        if self.frequency == QUARTERLY:
            return f"Quý {_ROMAN[i - 1]} năm {y}" if vi else f"Q{i} {y}"
        if self.frequency == HALF_YEAR:
            if vi:
                return f"6 tháng {'đầu' if i == 1 else 'cuối'} năm {y}"
            return f"{'First' if i == 1 else 'Second'} half of {y}"
        if self.frequency == NINE_MONTHS:
            return f"9 tháng năm {y}" if vi else f"Nine months of {y}"
        return f"Năm {y}" if vi else f"Year {y}"

    @property
    def iso_interval(self) -> str:
        """ISO 8601 interval: start and duration (``2025-12-15/P1M``); a custom window start/end."""
        if self.frequency == CUSTOM:
            return f"{self.start.isoformat()}/{self.end.isoformat()}"
        months = _SHAPE[self.frequency][1]
        return f"{self.start.isoformat()}/{'P1Y' if months == 12 else f'P{months}M'}"

    def interval_text(self) -> str:
        return f"{self.start:%d/%m/%Y} – {self.end:%d/%m/%Y}"

    def __contains__(self, day: dt.date) -> bool:
        return self.start <= day <= self.end


def check_frequency(frequency: str) -> str:
    if frequency not in FREQUENCIES:
        raise BaocaoError("periods.error.frequency", value=frequency, choices=", ".join(FREQUENCIES))
    return frequency


def check_year(year: int) -> int:
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise BaocaoError("periods.error.year", value=year, low=MIN_YEAR, high=MAX_YEAR)
    return year


def window(frequency: str, year: int, index: int) -> Window:
    check_frequency(frequency)
    check_year(year)
    count, months = _SHAPE[frequency]
    if not 1 <= index <= count:
        raise BaocaoError("periods.error.index", value=index, high=count)
    last_month = 9 if frequency == NINE_MONTHS else months * index
    first_month = last_month - months + 1  # the window starts on the 15th of the month before this one
    sy, sm = _month_start(year, first_month)
    return Window(frequency, year, index, dt.date(sy, sm, CUT_OFF_DAY + 1), dt.date(year, last_month, CUT_OFF_DAY))


def periods_per_year(frequency: str | None) -> int:
    """How many windows a year has (12 for monthly); 1 for a custom window or no frequency."""
    return _SHAPE[frequency][0] if frequency in _SHAPE else 1


def windows(frequency: str, year: int) -> list[Window]:
    """The windows of ``frequency`` for reporting year ``year``, in order."""
    check_frequency(frequency)
    return [window(frequency, year, i) for i in range(1, _SHAPE[frequency][0] + 1)]


def custom_window(start: dt.date, end: dt.date, label: str | dict[str, str]) -> Window:
    """A window set by the requesting body (thematic and ad-hoc reports, Art. 8 cl. 5)."""
    if end < start:
        raise BaocaoError("periods.error.custom_window", start=f"{start:%d/%m/%Y}", end=f"{end:%d/%m/%Y}")
    labels = {"vi": label} if isinstance(label, str) else dict(label)
    return Window(CUSTOM, end.year, 0, start, end, tuple(sorted(labels.items())))
