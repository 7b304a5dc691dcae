"""Our periods as other systems name them: ISO 8601 intervals (ADX) and DHIS2 period ids, both ways.

A period of ours is ``(frequency, year, index)``, its cut-off window given by ``core.api.period_window``
(Decree 09/2019 Art. 12: "Tháng 1/2026" runs from 15/12/2025 to 14/01/2026). So:

- ADX carries the window itself, start and duration: ``2025-12-15/P1M``, ``2025-12-15/P3M`` (Quý I),
  ``2025-12-15/P6M`` (6 tháng đầu năm), ``2025-12-15/P9M`` (9 tháng), ``2025-12-15/P1Y`` (Năm 2026).
  Reading one back, a window of ours is that period; a calendar-aligned month, quarter, half-year or
  year (``2026-01-01/P1M``, what DHIS2 writes) is the period of the same *name* (Tháng 1/2026). An
  interval given as start/end (``2025-12-15/2026-01-14``) is read the same way. Anything else is
  refused with its value: a window that is neither would put a figure in a period it does not cover.
- DHIS2 knows only calendar periods, so a period goes there by its name: Tháng 1/2026 → ``202601``,
  Quý I → ``2026Q1``, 6 tháng đầu năm → ``2026S1``, Năm → ``2026``. Nine months has no DHIS2 period
  type: refused with a message saying so.

Refusals are ``PeriodError`` (a ``BaocaoError``: a message key of the plugin and its parameters).
"""

from __future__ import annotations

import datetime as dt
import re

from core.api import BaocaoError, period_window

# frequency → months in one period (the ADX duration), as core.regimes.periods shapes them
MONTHS = {"monthly": 1, "quarterly": 3, "half_year": 6, "nine_months": 9, "annual": 12}
BY_MONTHS = {months: frequency for frequency, months in MONTHS.items()}
TEXT_MAX = 40  # a period string longer than this is no period; it is cut in the message

_DURATION = re.compile(r"P(?:(\d{1,2})M|1Y)\Z")
_DHIS2 = (
    (re.compile(r"(\d{4})\Z"), "annual"),
    (re.compile(r"(\d{4})(\d{2})\Z"), "monthly"),
    (re.compile(r"(\d{4})Q(\d)\Z"), "quarterly"),
    (re.compile(r"(\d{4})S(\d)\Z"), "half_year"),
)


class PeriodError(BaocaoError):
    """A period another system cannot take, or a period string we cannot read (``value``)."""


def _shown(text) -> str:
    text = str(text)
    return text if len(text) <= TEXT_MAX else text[:TEXT_MAX] + "…"


def _window(frequency: str, year: int, index: int):
    """The window, or PeriodError naming the period (a year out of range, an index too high)."""
    try:
        return period_window(frequency, year, index)
    except BaocaoError:
        raise PeriodError("national_link.period.unknown", value=f"{frequency} {year}/{index}") from None


def adx_interval(frequency: str, year: int, index: int) -> str:
    """The period's window as ADX writes it: ``2025-12-15/P1M`` for Tháng 1/2026."""
    return _window(frequency, year, index).iso_interval


def dhis2_period(frequency: str, year: int, index: int) -> str:
    """The DHIS2 period id of the period of the same name: ``202601``, ``2026Q1``, ``2026S1``, ``2026``."""
    window = _window(frequency, year, index)
    if frequency == "monthly":
        return f"{year}{index:02d}"
    if frequency == "quarterly":
        return f"{year}Q{index}"
    if frequency == "half_year":
        return f"{year}S{index}"
    if frequency == "annual":
        return str(year)
    raise PeriodError("national_link.period.no_dhis2", year=window.year)  # nine months


def parse_dhis2(text: str) -> tuple[str, int, int]:
    """(frequency, year, index) of a DHIS2 period id of a type we have; PeriodError otherwise."""
    text = str(text or "").strip()
    for pattern, frequency in _DHIS2:
        match = pattern.match(text)
        if match:
            year = int(match.group(1))
            index = int(match.group(2)) if frequency != "annual" else 1
            try:
                period_window(frequency, year, index)
            except BaocaoError:
                break
            return frequency, year, index
    raise PeriodError("national_link.period.bad_dhis2", value=_shown(text))


def _date(text: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text) if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text) else None
    except ValueError:
        return None


def _add_months(day: dt.date, months: int) -> dt.date:
    month = day.month - 1 + months
    return day.replace(year=day.year + month // 12, month=month % 12 + 1)


def _period_of(start: dt.date, months: int) -> tuple[str, int, int] | None:
    """The period whose window is ``start``/P``months``M, or whose calendar namesake is (a month,
    quarter, half-year or year starting on the 1st); None when neither."""
    frequency = BY_MONTHS.get(months)
    if frequency is None or (start.day == 1 and frequency == "nine_months"):
        return None
    last = _add_months(start, months) - dt.timedelta(days=1)  # the reporting period's last month
    if (last.month != 9) if frequency == "nine_months" else (last.month % months):
        return None
    index = last.month // months if frequency not in ("nine_months", "annual") else 1
    try:
        window = period_window(frequency, last.year, index)
    except BaocaoError:
        return None
    if start.day == 15 and (window.start, window.end) != (start, last):
        return None
    return frequency, last.year, index


def parse_adx(text: str) -> tuple[str, int, int]:
    """(frequency, year, index) of an ADX period (see the module's docstring); PeriodError otherwise."""
    raw = str(text or "").strip()
    first, _, second = raw.partition("/")
    start, found = _date(first), None
    # Only the 1st (a calendar period) or the 15th (a window) can start a period: other days are
    # refused before any month arithmetic (31 January plus one month is no date).
    if start is not None and start.day in (1, 15) and 1900 < start.year < 9000:
        duration, end = _DURATION.match(second), _date(second)
        if duration:
            found = _period_of(start, int(duration.group(1)) if duration.group(1) else 12)
        elif end is not None:  # start/end: the duration whose last day is ``end``
            months = next((m for m in BY_MONTHS if _add_months(start, m) - dt.timedelta(days=1) == end), None)
            found = _period_of(start, months) if months else None
    if found is None:
        raise PeriodError("national_link.period.bad_adx", value=_shown(raw))
    return found


def period_label(frequency: str, year: int, index: int, lang: str = "vi") -> str:
    """The period as people write it (Tháng 1 năm 2026)."""
    return _window(frequency, year, index).label(lang)
