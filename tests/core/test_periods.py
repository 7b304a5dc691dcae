"""Cut-off windows of Decree 09/2019 Art. 12 and the working-day calendar."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, strategies as st

from core.errors import BaocaoError
from core.regimes.periods import FREQUENCIES, custom_window, window, windows
from core.regimes.workdays import WorkCalendar

D = dt.date
years = st.integers(min_value=1991, max_value=2099)


# The worked examples of the legal reference, §1.4.
@pytest.mark.parametrize("frequency, index, start, end, iso, vi, en", [
    ("monthly", 1, D(2025, 12, 15), D(2026, 1, 14), "2025-12-15/P1M", "Tháng 1 năm 2026", "January 2026"),
    ("monthly", 3, D(2026, 2, 15), D(2026, 3, 14), "2026-02-15/P1M", "Tháng 3 năm 2026", "March 2026"),
    ("quarterly", 1, D(2025, 12, 15), D(2026, 3, 14), "2025-12-15/P3M", "Quý I năm 2026", "Q1 2026"),
    ("quarterly", 2, D(2026, 3, 15), D(2026, 6, 14), "2026-03-15/P3M", "Quý II năm 2026", "Q2 2026"),
    ("quarterly", 3, D(2026, 6, 15), D(2026, 9, 14), "2026-06-15/P3M", "Quý III năm 2026", "Q3 2026"),
    ("quarterly", 4, D(2026, 9, 15), D(2026, 12, 14), "2026-09-15/P3M", "Quý IV năm 2026", "Q4 2026"),
    ("half_year", 1, D(2025, 12, 15), D(2026, 6, 14), "2025-12-15/P6M", "6 tháng đầu năm 2026",
     "First half of 2026"),
    ("half_year", 2, D(2026, 6, 15), D(2026, 12, 14), "2026-06-15/P6M", "6 tháng cuối năm 2026",
     "Second half of 2026"),
    ("nine_months", 1, D(2025, 12, 15), D(2026, 9, 14), "2025-12-15/P9M", "9 tháng năm 2026",
     "Nine months of 2026"),
    ("annual", 1, D(2025, 12, 15), D(2026, 12, 14), "2025-12-15/P1Y", "Năm 2026", "Year 2026"),
])
def test_worked_examples(frequency, index, start, end, iso, vi, en):
    w = window(frequency, 2026, index)
    assert (w.start, w.end, w.iso_interval, w.label("vi"), w.label("en")) == (start, end, iso, vi, en)
    assert w.label() == vi


def test_number_of_windows():
    assert [len(windows(f, 2026)) for f in FREQUENCIES] == [12, 4, 2, 1, 1]


@pytest.mark.parametrize("call", [lambda: windows("weekly", 2026), lambda: window("monthly", 2026, 13),
                                  lambda: windows("annual", 1800)])
def test_bad_frequency_index_or_year_is_refused(call):
    with pytest.raises(BaocaoError) as exc:
        call()
    assert exc.value.message("vi") != exc.value.key and exc.value.message("en") != exc.value.key


def test_custom_window():
    w = custom_window(D(2026, 3, 1), D(2026, 5, 10), {"vi": "Chuyên đề phòng chống lụt bão",
                                                      "en": "Flood prevention"})
    assert (w.label("vi"), w.label("en"), w.iso_interval) == (
        "Chuyên đề phòng chống lụt bão", "Flood prevention", "2026-03-01/2026-05-10")
    assert custom_window(D(2026, 3, 1), D(2026, 3, 1), "Đột xuất").label("en") == "Đột xuất"
    with pytest.raises(BaocaoError):
        custom_window(D(2026, 3, 2), D(2026, 3, 1), "x")


def _days(w) -> set[dt.date]:
    return {w.start + dt.timedelta(days=i) for i in range((w.end - w.start).days + 1)}


@given(years)
def test_monthly_windows_tile_the_year_without_gap_or_overlap(year):
    months = windows("monthly", year)
    year_window = window("annual", year, 1)
    assert months[0].start == year_window.start and months[-1].end == year_window.end
    for before, after in zip(months, months[1:]):
        assert after.start == before.end + dt.timedelta(days=1)
    assert sum(len(_days(m)) for m in months) == len(_days(year_window))


@given(years)
def test_quarters_and_halves_tile_the_year_too(year):
    for frequency in ("quarterly", "half_year"):
        ws = windows(frequency, year)
        assert ws[0].start == D(year - 1, 12, 15) and ws[-1].end == D(year, 12, 14)
        assert all(b.start == a.end + dt.timedelta(days=1) for a, b in zip(ws, ws[1:]))


@given(years)
def test_cumulative_windows_nest_as_the_decree_says(year):
    months, quarters = windows("monthly", year), windows("quarterly", year)
    h1, h2 = windows("half_year", year)
    nine, annual = window("nine_months", year, 1), window("annual", year, 1)
    # Every month lies in exactly one quarter; the quarter is made of its three months.
    for q, quarter in enumerate(quarters):
        assert _days(quarter) == set().union(*(_days(m) for m in months[3 * q:3 * q + 3]))
    # H1 = Q1 + Q2, H2 = Q3 + Q4, nine months = Q1 + Q2 + Q3, the year = H1 + H2; all cumulative
    # windows start with the year, on 15/12 of the year before.
    assert _days(h1) == _days(quarters[0]) | _days(quarters[1])
    assert _days(h2) == _days(quarters[2]) | _days(quarters[3])
    assert _days(nine) == _days(h1) | _days(quarters[2])
    assert _days(annual) == _days(h1) | _days(h2)
    assert h1.start == nine.start == annual.start == quarters[0].start == months[0].start
    assert (h1.end, nine.end, annual.end) == (quarters[1].end, quarters[2].end, quarters[3].end)


# -- working days -------------------------------------------------------------------------------

def test_weekends_holidays_and_tet_are_not_working_days():
    cal = WorkCalendar()
    assert cal.is_working_day(D(2026, 3, 16))  # Monday
    assert not cal.is_working_day(D(2026, 3, 14))  # Saturday
    assert not cal.is_working_day(D(2026, 3, 15))  # Sunday
    assert not any(cal.is_working_day(D(2026, 2, d)) for d in range(16, 21))  # Tết 2026
    assert not cal.is_working_day(D(2026, 9, 2))  # National Day
    assert not cal.is_working_day(D(2026, 4, 30))


def test_extra_days_off_and_make_up_days():
    cal = WorkCalendar(extra_days_off=[D(2026, 1, 2)], make_up_days=[D(2026, 1, 10)])
    assert not cal.is_working_day(D(2026, 1, 2)) and cal.is_working_day(D(2026, 1, 10))
    # Friday 09/01: working day 1 is the make-up Saturday 10/01, working day 2 Monday 12/01.
    assert cal.add_working_days(D(2026, 1, 9), 1) == D(2026, 1, 10)
    assert cal.add_working_days(D(2026, 1, 9), 2) == D(2026, 1, 12)
    assert WorkCalendar().add_working_days(D(2026, 1, 9), 1) == D(2026, 1, 12)
    # Thursday 01/01 is New Year's Day, 02/01 the extra day off: the first working day is Monday 05/01.
    assert cal.add_working_days(D(2025, 12, 31), 1) == D(2026, 1, 5)


def test_add_working_days_counts_the_day_after_as_day_one():
    cal = WorkCalendar()
    assert cal.add_working_days(D(2026, 11, 14), 1) == D(2026, 11, 16)  # Sat → Mon
    assert cal.add_working_days(D(2026, 10, 14), 2) == D(2026, 10, 16)  # Wed → Fri
    assert cal.add_working_days(D(2026, 2, 13), 1) == D(2026, 2, 23)  # Friday before Tết → after Tết
    assert cal.add_working_days(D(2026, 3, 16), 0) == D(2026, 3, 16)


def test_working_days_between_is_strictly_after_up_to_and_including():
    cal = WorkCalendar()
    assert cal.working_days_between(D(2026, 11, 14), D(2026, 11, 15)) == 0  # Sat → Sun
    assert cal.working_days_between(D(2026, 11, 14), D(2026, 11, 16)) == 1
    assert cal.working_days_between(D(2026, 10, 14), D(2026, 10, 14)) == 0
    assert cal.working_days_between(D(2026, 10, 14), D(2026, 10, 13)) == 0
    assert cal.working_days_between(D(2026, 10, 12), D(2026, 10, 16)) == 4


@given(st.dates(min_value=D(1995, 1, 1), max_value=D(2095, 12, 31)), st.integers(min_value=1, max_value=30))
def test_add_and_count_working_days_agree(day, n):
    cal = WorkCalendar()
    later = cal.add_working_days(day, n)
    assert cal.is_working_day(later)
    assert cal.working_days_between(day, later) == n
    assert cal.working_days_between(day, later - dt.timedelta(days=1)) == n - 1
