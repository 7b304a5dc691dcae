"""Working days in Vietnam: Monday–Friday, less public holidays and Tết.

Public holidays come from the ``holidays`` package's Vietnamese calendar (Tết, Hùng Kings, 30/4,
1/5, National Day and the substituted days it knows). The Government also moves days every year
(extra days off bridged to a holiday, Saturdays worked in exchange): ``extra_days_off`` and
``make_up_days`` carry those, and a make-up day is a working day even on a weekend.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import holidays

ONE_DAY = dt.timedelta(days=1)


class WorkCalendar:
    def __init__(self, extra_days_off: Iterable[dt.date] = (), make_up_days: Iterable[dt.date] = ()):
        self.extra_days_off = frozenset(extra_days_off)
        self.make_up_days = frozenset(make_up_days)
        # expand=True (the default): asking about a day loads that day's year.
        self._holidays = holidays.country_holidays("VN")

    def _public_holiday(self, day: dt.date) -> bool:
        return day in self._holidays

    def holiday_name(self, day: dt.date) -> str | None:
        return self._holidays.get(day) if self._public_holiday(day) else None

    def is_working_day(self, day: dt.date) -> bool:
        if day in self.make_up_days:
            return True
        if day in self.extra_days_off or day.weekday() >= 5:
            return False
        return not self._public_holiday(day)

    def next_working_day(self, day: dt.date) -> dt.date:
        """``day`` itself when it is a working day, otherwise the first working day after it."""
        while not self.is_working_day(day):
            day += ONE_DAY
        return day

    def add_working_days(self, day: dt.date, n: int) -> dt.date:
        """The ``n``-th working day after ``day`` (the next working day after ``day`` is number 1).
        ``n == 0`` gives ``day`` itself."""
        if n < 0:
            raise ValueError("n must not be negative")
        while n:
            day += ONE_DAY
            if self.is_working_day(day):
                n -= 1
        return day

    def working_days_between(self, a: dt.date, b: dt.date) -> int:
        """Working days strictly after ``a`` up to and including ``b`` (0 when ``b <= a``)."""
        count, day = 0, a
        while day < b:
            day += ONE_DAY
            count += self.is_working_day(day)
        return count
