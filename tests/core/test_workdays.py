"""The working-day calendar's yearly moves (issue 12 item 21): the Government's extra days off and
make-up working Saturdays, from the settings and from what an administrator stores, are used by
every deadline; adding or removing one is audited and moves the deadlines of reports not yet sent."""

from __future__ import annotations

import datetime as dt

import pytest

from core.regimes import workdays
from core.reporting import calendar_changes
from core.errors import Forbidden, NotFound, SettingsError, ValidationError
from core.settings import load_settings

D = dt.date
BASIS = "Thông báo của Bộ Nội vụ về lịch nghỉ Tết Âm lịch"


def _toml(tmp_path, text: str):
    path = tmp_path / "baocao.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_settings_loader_accepts_the_calendar_keys(tmp_path):
    path = _toml(tmp_path, 'extra_days_off = [2026-02-16, "2026-02-20"]\nmake_up_days = [2026-02-07]\n')
    settings = load_settings(path, env={})
    assert settings.extra_days_off == (D(2026, 2, 16), D(2026, 2, 20))
    assert settings.make_up_days == (D(2026, 2, 7),)
    from_env = load_settings(env={"BAOCAO_MAKE_UP_DAYS": "2026-10-17, 2026-01-10"})
    assert from_env.make_up_days == (D(2026, 1, 10), D(2026, 10, 17))


@pytest.mark.parametrize("text, setting", [
    ('extra_days_off = ["16/02/2026"]\n', "extra_days_off"),
    ("make_up_days = 2026-02-07\n", "make_up_days"),
    ("extra_days_off = [2026-02-07]\nmake_up_days = [2026-02-07]\n", "make_up_days"),
])
def test_a_bad_calendar_setting_is_refused_naming_it(tmp_path, text, setting):
    with pytest.raises(SettingsError) as caught:
        load_settings(_toml(tmp_path, text), env={})
    assert caught.value.params["setting"] == setting


def test_the_regimes_calendar_uses_the_settings(make_settings, db_session):
    """core.regimes.regimes.work_calendar read keys the loader refused: the settings' days were never used."""
    from core.regimes.regimes import work_calendar

    settings = make_settings(extra_days_off=(D(2026, 10, 16),), make_up_days=(D(2026, 10, 17),))
    calendar = work_calendar(settings)
    assert not calendar.is_working_day(D(2026, 10, 16))  # a Friday given off
    assert calendar.is_working_day(D(2026, 10, 17))  # a Saturday worked


@pytest.fixture
def world(db_session):
    from tests.fixtures.forms import form_world

    return form_world()


def test_stored_days_count_in_every_deadline(world, settings):
    from core.accounts import login as accounts
    from core.models import Unit
    from core.accounts.permissions import core_access

    root = Unit.get(Unit.code == "44")
    sysadmin = accounts.create_user("quantri", "Quản trị", accounts.random_password(), root, is_admin=True)
    access = core_access(sysadmin)
    saturday = calendar_changes.add_day(access, D(2026, 10, 17), workdays.MAKE_UP, BASIS)
    friday = calendar_changes.add_day(access, D(2026, 10, 16), workdays.DAY_OFF, BASIS)
    calendar = workdays.work_calendar(settings)
    assert calendar.is_working_day(saturday.day) and not calendar.is_working_day(friday.day)
    # Working days after a Wednesday 14/10 cut-off: Thu 15 (1), [Fri 16 off], Sat 17 (2).
    assert calendar.add_working_days(D(2026, 10, 14), 2) == D(2026, 10, 17)

    from core.audit import AuditEvent

    actions = [e.action for e in AuditEvent.select().order_by(AuditEvent.id)]
    assert actions.count("calendar.add") == 2
    event = AuditEvent.select().where(AuditEvent.action == "calendar.add").order_by(AuditEvent.id.desc()).first()
    assert "2026-10-16" in event.details and BASIS in event.details

    calendar_changes.remove_day(access, friday.id, "Nhập nhầm")
    assert workdays.work_calendar(settings).is_working_day(D(2026, 10, 16))
    removed = AuditEvent.select().where(AuditEvent.action == "calendar.remove").first()
    assert "Nhập nhầm" in removed.details


def test_adding_and_removing_is_refused_with_reasons(world):
    from core.accounts import login as accounts
    from core.models import Unit
    from core.accounts.permissions import core_access

    root = Unit.get(Unit.code == "44")
    plain = core_access(accounts.create_user("thuong", "Người thường", accounts.random_password(), root))
    with pytest.raises(Forbidden):
        calendar_changes.add_day(plain, D(2026, 10, 16), workdays.DAY_OFF, BASIS)
    access = core_access(accounts.create_user("quantri1", "Quản trị", accounts.random_password(), root, is_admin=True))
    cases = [
        ((D(2026, 10, 16), workdays.DAY_OFF, "  "), "reason"),
        ((D(2026, 10, 17), workdays.DAY_OFF, BASIS), "day"),  # a Saturday is off already
        ((D(2026, 10, 16), workdays.MAKE_UP, BASIS), "day"),  # a Friday is a working day already
        ((D(2026, 10, 16), "holiday", BASIS), "kind"),
        ((None, workdays.DAY_OFF, BASIS), "day"),
    ]
    for args, field in cases:
        with pytest.raises(ValidationError) as caught:
            calendar_changes.add_day(access, *args)
        assert field in caught.value.errors, args
    calendar_changes.add_day(access, D(2026, 10, 16), workdays.DAY_OFF, BASIS)
    with pytest.raises(ValidationError) as caught:
        calendar_changes.add_day(access, D(2026, 10, 16), workdays.DAY_OFF, BASIS)
    assert caught.value.errors == {"day": "calendar.error.exists"}
    with pytest.raises(NotFound):
        calendar_changes.remove_day(access, 999999, "không có")


def test_a_stored_day_moves_the_deadline_of_reports_not_yet_sent(world, settings):
    """Reports opened before the notice was entered get the deadline the new calendar gives."""
    from core.accounts import login as accounts
    from core.models import Unit
    from core.accounts.permissions import core_access
    from core.reporting.opening import Report

    report = Report.select().order_by(Report.id).first()
    assert report is not None
    old = report.deadline
    root = Unit.get(Unit.code == "44")
    access = core_access(accounts.create_user("quantri2", "Quản trị", accounts.random_password(), root, is_admin=True))
    day = old if workdays.WorkCalendar().is_working_day(old) else None
    assert day is not None
    calendar_changes.add_day(access, day, workdays.DAY_OFF, BASIS)
    moved = Report.get_by_id(report.id)
    assert moved.deadline > old and workdays.work_calendar().is_working_day(moved.deadline)
    entry = workdays.CalendarDay.get(workdays.CalendarDay.day == day)
    calendar_changes.remove_day(access, entry.id, "Thông báo đã được thay thế")
    assert Report.get_by_id(report.id).deadline == old
