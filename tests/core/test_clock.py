"""The one clock (issue 12 item 6): the server runs on UTC, people live in the instance's time zone.

At 18:30 UTC on 6 December 2026 it is already 01:30 on 7 December in Vietnam: every "today" of the
system is the 7th, while stored times stay UTC.
"""

from __future__ import annotations

import datetime as dt

import pytest

from core import clock
from core.errors import SettingsError
from core.i18n import format_date, format_datetime
from core.settings import load_settings

VN_NIGHT = dt.datetime(2026, 12, 6, 18, 30)  # UTC = 01:30 on 07/12/2026 in Vietnam
VN_EVENING = dt.datetime(2026, 12, 6, 16, 0)  # UTC = 23:00 on 06/12/2026 in Vietnam


def test_today_is_the_vietnamese_date_and_stored_times_stay_utc(frozen_clock):
    frozen_clock(VN_NIGHT)
    assert clock.today() == dt.date(2026, 12, 7)
    assert clock.now().replace(tzinfo=None) == dt.datetime(2026, 12, 7, 1, 30)
    assert clock.utcnow() == VN_NIGHT  # what the database gets
    assert clock.now_utc() == VN_NIGHT.replace(tzinfo=dt.timezone.utc)
    from core.models import utcnow

    assert utcnow() == VN_NIGHT  # every column default goes through the one clock


def test_the_core_api_gives_plugins_the_same_clock(frozen_clock):
    from core import api

    frozen_clock(VN_NIGHT)
    assert api.today() == dt.date(2026, 12, 7) and api.now() == clock.now()


def test_a_stored_time_is_shown_in_the_instance_time_zone(frozen_clock):
    frozen_clock(VN_NIGHT)
    stored = clock.utcnow()
    assert format_datetime(stored, "vi") == "01:30 07/12/2026"
    assert format_datetime(stored, "en") == "2026-12-07 01:30"
    # A stored time shown as a date is the day it was in Vietnam, not the UTC day.
    assert format_date(stored, "vi") == "07/12/2026"
    assert format_date(dt.date(2026, 12, 6), "vi") == "06/12/2026"  # a plain date is never shifted


def test_the_time_zone_setting_moves_the_day(frozen_clock):
    frozen_clock(VN_NIGHT)
    settings = load_settings(env={"BAOCAO_TIME_ZONE": "Europe/Paris"})
    assert settings.time_zone == "Europe/Paris"
    clock.configure(settings.time_zone)
    assert clock.today() == dt.date(2026, 12, 6)
    assert format_datetime(VN_NIGHT, "vi") == "19:30 06/12/2026"
    assert load_settings(env={}).time_zone == "Asia/Ho_Chi_Minh"


@pytest.mark.parametrize("value", ["Mars/Olympus", "", "Asia/Ho_Chi_Minh ", "../etc/passwd"])
def test_an_unknown_time_zone_is_refused_naming_the_setting(value):
    with pytest.raises(SettingsError) as caught:
        load_settings(env={"BAOCAO_TIME_ZONE": value})
    assert caught.value.params["setting"] == "time_zone"


def test_freeze_stops_the_clock_for_a_block_only():
    from core.api import freeze_clock  # what a plugin's tests use (docs/writing_plugins.md)

    with freeze_clock(VN_NIGHT):
        assert clock.today() == dt.date(2026, 12, 7)
    assert clock.utcnow() != VN_NIGHT  # running again


def test_a_report_is_late_by_the_vietnamese_date(frozen_clock, db_session):
    """A deadline computed "today": 06/12/2026 has passed once it is 07/12 in Vietnam, whatever
    the server's UTC date says; it has not at 23:00 on the 6th."""
    from core.reporting.workflow import is_late
    from core.reporting.opening import Report

    report = Report(status="draft", deadline=dt.date(2026, 12, 6))
    frozen_clock(VN_EVENING)
    assert not report.late() and not is_late(clock.utcnow(), report.deadline)
    frozen_clock(VN_NIGHT)
    assert report.late() and is_late(clock.utcnow(), report.deadline)
