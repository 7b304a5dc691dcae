"""Reminders and escalation (issue 14 item 4, core.reporting.reminders): N working days before the
deadline and on its day to the unit's reporters, after it to the unit's administrator and the
receivers; each sent once, even when the job runs twice or dies midway and runs again; the e-mail
queued in the outbox once; the regime's policy; the worker's task in office hours of the
instance's day. Built with the kit's fixtures (web/testing.py). Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import types

import pytest

from core import mailer
from core.accounts.permissions import core_access
from core.db import db
from core.errors import Forbidden
from core.models import User
from core.outbox import OutboxMessage
from core.reporting import notifications as nt
from core.reporting import reminders as rm
from tests.core.test_completeness import send

# The kit's March window (15/02 – 14/03/2026) is due two working days after its end: Tuesday 17/03.
OPENED = dt.datetime(2026, 3, 2, 3, 0)
DEADLINE = dt.date(2026, 3, 17)
CODE = "test.monthly"


def at(day: int, hour_utc: int = 1) -> dt.datetime:
    return dt.datetime(2026, 3, day, hour_utc, 0)  # 08:00 in Vietnam by default


def access(user):
    return core_access(User.get_by_id(user.id))


def reminders_of(user, action=None) -> list:
    query = nt.Notification.select().where(nt.Notification.user == user.id)
    if action:
        query = query.where(nt.Notification.action == action)
    else:
        query = query.where(nt.Notification.action.in_(list(nt.REMINDER_ACTIONS)))
    return list(query.order_by(nt.Notification.id))


def texts(user, lang="vi") -> list[str]:
    return [item["text"] for item in nt.inbox(user.id, lang) if item["action"] in nt.REMINDER_ACTIONS]


@pytest.fixture
def world(frozen_clock, make_regime, unit_tree, make_user):
    frozen_clock(OPENED)
    issued = make_regime()
    gio, cam = unit_tree.communes
    people = {"gio": make_user(unit=gio, roles=("reporter",))[0],
              "cam": make_user(unit=cam, roles=("reporter",))[0],
              "gio_admin": make_user(unit=gio, roles=("unit_admin",))[0],
              "receiver": make_user(unit=unit_tree.department, roles=("receiver",))[0],
              "province_reporter": make_user(unit=unit_tree.province, roles=("reporter",))[0]}
    with db.connection_context():
        assert {r.deadline for r in issued.reports} == {DEADLINE}
        yield types.SimpleNamespace(regime=issued, people=people, gio=issued.report_of(gio),
                                    cam=issued.report_of(cam), tree=unit_tree)


def run(frozen_clock, moment, **kwargs):
    frozen_clock(moment)
    return rm.send_due(**kwargs)


def test_before_the_deadline_and_on_its_day_the_reporters_are_reminded_once(world, frozen_clock):
    p = world.people
    assert run(frozen_clock, at(12)).total == 0  # Thursday: three working days left, not yet
    first = run(frozen_clock, at(13))  # Friday: Monday and Tuesday left
    assert first.sent["before"] == 2 and first.total == 2
    assert [n.report_id for n in reminders_of(p["gio"])] == [world.gio.id]
    assert [n.report_id for n in reminders_of(p["cam"])] == [world.cam.id]
    assert texts(p["gio"]) == ["Còn 2 ngày làm việc đến hạn gửi báo cáo Tháng 3 năm 2026 — Báo cáo tiến độ gieo "
                               "trồng hằng tháng của Xã Gio Linh (hạn 17/03/2026)."]
    assert texts(p["gio"], "en")[0].startswith("2 working days left to send the report")
    # The province's reporter may fill every commune's report, but is not told of each of them;
    # neither is the unit's administrator nor the receiver before the deadline.
    for who in ("province_reporter", "gio_admin", "receiver"):
        assert reminders_of(p[who]) == [], who
    again = run(frozen_clock, at(13, 5))
    assert again.total == 0 and again.already == 2
    assert run(frozen_clock, at(16)).total == 0  # Monday: one day left, the reminder was sent Friday
    assert len(reminders_of(p["gio"])) == 1

    due = run(frozen_clock, at(17))
    assert due.sent["due"] == 2 and due.total == 2
    assert texts(p["cam"])[0] == ("Hôm nay (17/03/2026) là hạn gửi báo cáo Tháng 3 năm 2026 — Báo cáo tiến độ gieo "
                                  "trồng hằng tháng của Xã Cam Lộ.")
    assert run(frozen_clock, at(17, 8)).total == 0
    assert [n.action for n in reminders_of(p["cam"])] == ["due_soon", "due_today"]


def test_a_report_sent_in_time_is_not_reminded(world, frozen_clock):
    send(frozen_clock, at(12), world.people["gio"], world.gio)
    assert run(frozen_clock, at(13)).sent["before"] == 1
    assert reminders_of(world.people["gio"]) == [] and len(reminders_of(world.people["cam"])) == 1
    assert run(frozen_clock, at(18)).sent["escalation"] == 1  # only Cam Lộ's is overdue


def test_after_the_deadline_the_unit_admin_and_the_receiver_are_told_once(world, frozen_clock):
    p = world.people
    result = run(frozen_clock, at(18))  # Wednesday, the day after the deadline
    assert result.sent["escalation"] == 2 and result.total == 2
    assert [n.report_id for n in reminders_of(p["gio_admin"], "overdue")] == [world.gio.id]
    # Cam Lộ has no administrator of its own: the province's would be the nearest; there is none.
    assert sorted(n.report_id for n in reminders_of(p["receiver"], "overdue")) == sorted([world.gio.id, world.cam.id])
    assert reminders_of(p["gio"], "overdue") == []  # the reporters had their reminders before
    assert "Báo cáo Tháng 3 năm 2026 — Báo cáo tiến độ gieo trồng hằng tháng của Xã Gio Linh đã quá hạn " \
           "(hạn 17/03/2026) mà chưa gửi." in texts(p["receiver"])
    assert run(frozen_clock, at(18, 6)).total == 0
    assert run(frozen_clock, at(19)).total == 0  # escalated once, not every day
    assert len(reminders_of(p["receiver"])) == 2


def test_no_escalation_on_a_day_off_it_waits_for_the_next_working_day(world, frozen_clock):
    # The worker was down from the deadline to the weekend: Saturday sends nothing, Monday does.
    assert run(frozen_clock, at(21)).total == 0
    assert run(frozen_clock, at(23)).sent["escalation"] == 2


def test_a_job_killed_midway_resumes_without_sending_twice(world, frozen_clock, monkeypatch):
    p = world.people
    real = nt.Notification.create
    calls = []

    def dying(**fields):
        calls.append(fields["report"])
        if len(set(calls)) == 2:  # the second report's first notification: the process dies here
            raise RuntimeError("killed")
        return real(**fields)

    monkeypatch.setattr(rm, "Notification", types.SimpleNamespace(create=dying))
    frozen_clock(at(18))
    with pytest.raises(RuntimeError):
        rm.send_due()
    first = calls[0]
    assert rm.Reminder.select().count() == 1  # the second report's row went with its transaction
    assert nt.Notification.select().where(nt.Notification.action == "overdue").count() == calls.count(first)

    monkeypatch.setattr(rm, "Notification", nt.Notification)
    resumed = rm.send_due()
    assert resumed.sent["escalation"] == 1 and resumed.already == 1
    told = [n.report_id for n in reminders_of(p["receiver"], "overdue")]
    assert sorted(told) == sorted([world.gio.id, world.cam.id]) and told[0] == first
    assert [n.report_id for n in reminders_of(p["gio_admin"], "overdue")] == [world.gio.id]
    assert rm.send_due().total == 0


def test_the_email_is_queued_in_the_outbox_once(world, frozen_clock, settings):
    nt.set_email(User.get_by_id(world.people["gio"].id), "gio@example.vn")
    mail = dataclasses.replace(settings, smtp_host="mail.example.vn", public_url="https://baocao.example.vn")
    for hour in (1, 2):
        frozen_clock(at(13, hour))
        with mailer.sending(mail):
            rm.send_due(settings=mail)
    messages = [json.loads(m.payload) for m in OutboxMessage.select()]
    to_gio = [m for m in messages if m["to"] == "gio@example.vn"]
    assert len(to_gio) == 1
    assert "Còn 2 ngày làm việc đến hạn gửi báo cáo Tháng 3 năm 2026" in to_gio[0]["body"]
    assert f"https://baocao.example.vn/reports/{world.gio.id}" in to_gio[0]["body"]
    assert to_gio[0]["subject"].startswith("Sắp đến hạn gửi báo cáo Tháng 3 năm 2026 / ")


def test_the_regime_s_policy_and_the_setting_s_default(world, frozen_clock):
    issuer = world.regime.issuer
    # The setting moves the default: three working days before, on Thursday.
    three = types.SimpleNamespace(reminder_days_before=3, extra_days_off=(), make_up_days=())
    result = run(frozen_clock, at(12), settings=three)
    assert result.sent["before"] == 2 and [n.version_number for n in reminders_of(world.people["gio"])] == [3]
    # The regime's own policy: no reminder before, only on the day; then none at all.
    assert rm.set_policy(access(issuer), CODE, days_before=0) == rm.Policy(0, True)
    assert run(frozen_clock, at(13, 2)).total == 0
    rm.set_policy(access(issuer), CODE, days_before=2, enabled=False)
    assert run(frozen_clock, at(17)).total == 0 and run(frozen_clock, at(18)).total == 0
    with pytest.raises(Forbidden):
        rm.set_policy(access(world.people["gio"]), CODE, days_before=1)


def test_the_worker_sends_in_office_hours_of_the_instance_s_day(world, frozen_clock, settings):
    from core.jobs import make_huey

    huey = make_huey(settings, immediate=True)
    night = dt.datetime(2026, 3, 12, 23, 10)  # 06:10 on Friday 13/03 in Vietnam
    task = next(t for t in huey.read_periodic(night) if t.name == "core.send_reminders")
    frozen_clock(night)
    assert huey.execute(task) == 0 and rm.Reminder.select().count() == 0
    morning = dt.datetime(2026, 3, 13, 0, 10)  # 07:10
    assert any(t.name == "core.send_reminders" for t in huey.read_periodic(morning))
    frozen_clock(morning)
    assert huey.execute(task) == 2
    frozen_clock(morning + dt.timedelta(hours=1))
    assert huey.execute(task) == 0


def test_the_command_sends_what_is_due(world, frozen_clock, settings, monkeypatch, capsys):
    from core import cli

    monkeypatch.setenv("BAOCAO_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("BAOCAO_SECRET_KEY", settings.secret_key)
    monkeypatch.delenv("BAOCAO_SETTINGS", raising=False)
    monkeypatch.setattr(cli.clock, "configure", lambda zone: None)  # keep the frozen clock
    # In this process, on the test's open database: migrating and loading plugins are the other
    # commands' business (tests/core/test_cli.py runs the script itself).
    monkeypatch.setattr(cli, "_prepare", lambda settings, **kwargs: (None, None, {}))
    frozen_clock(at(13))
    assert cli.main(["reminders", "send"]) == 0
    assert "Đã gửi 2 lời nhắc trước hạn" in capsys.readouterr().out
    assert cli.main(["reminders", "send"]) == 0
    assert "2 lời nhắc đã gửi từ trước" in capsys.readouterr().out
    assert len(reminders_of(world.people["gio"])) == 1
