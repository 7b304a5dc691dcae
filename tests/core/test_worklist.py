"""A person's work list (issue 14 item 2, core.reporting.worklist): reports to send with their
working days left, returned ones first with the reason; reports to review; late units per regime
and period; unread notifications; nobody sees another unit's items; and the cost, counted, for a
department receiving from 80 communes. Built with the kit's fixtures (web/testing.py). Runs on
SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from core.accounts.permissions import core_access
from core.db import db
from core.models import Unit, User
from core.regimes.workdays import WorkCalendar
from core.reporting import data as rd
from core.reporting import workflow as wf
from core.reporting import worklist as wl
from core.reporting.opening import Report
from tests.web.test_autosave_queries import QueryCounter

# March 2026's window runs 15/02 – 14/03 (Decree 09); the kit's rule "2wd" puts the deadline two
# working days after its end: Tuesday 17/03/2026.
OPENED = dt.datetime(2026, 3, 2, 3, 0)
DEADLINE = dt.date(2026, 3, 17)
CALENDAR = WorkCalendar()


@pytest.fixture
def kit(frozen_clock, make_regime, unit_tree, make_user):
    frozen_clock(OPENED)
    issued = make_regime()
    reporter, _ = make_user(unit=unit_tree.communes[0], roles=("reporter",))
    other, _ = make_user(unit=unit_tree.communes[1], roles=("reporter",))
    receiver, _ = make_user(unit=unit_tree.department, roles=("receiver",))
    viewer, _ = make_user(unit=unit_tree.province, roles=("viewer",))
    with db.connection_context():
        yield {"regime": issued, "tree": unit_tree, "reporter": reporter, "other": other, "receiver": receiver,
               "viewer": viewer, "report": issued.report_of(unit_tree.communes[0]),
               "other_report": issued.report_of(unit_tree.communes[1])}


def access(user):
    return core_access(User.get_by_id(user.id))


def listing(user, today, **kwargs):
    return wl.work_list(access(user), today=today, calendar=CALENDAR, **kwargs)


def send(user, report):
    who = access(user)
    saved = rd.save(who, report.id, {("lua", "cur"): (rd.MISSING, "12"), ("ngo", "cur"): (rd.MISSING, "3")})
    return wf.submit(who, report.id, revision=saved.revision)


def sent_ids(part):
    return [item.report.id for item in part.items]


def test_the_commune_reporter_sees_its_report_with_the_working_days_left(kit):
    assert kit["report"].deadline == DEADLINE
    friday = dt.date(2026, 3, 13)
    mine = listing(kit["reporter"], friday)
    assert sent_ids(mine.to_send) == [kit["report"].id] and mine.to_send.total == 1
    item = mine.to_send.items[0]
    # Monday 16 and Tuesday 17: two working days after Friday up to the deadline, the weekend not counted.
    assert (item.working_days_left, item.days_late, item.late, item.returned) == (2, 0, False, False)
    assert item.report.regime.name == kit["regime"].regime.name and item.report.receiver.name.startswith("Sở")
    assert listing(kit["reporter"], DEADLINE).to_send.items[0].working_days_left == 0  # the last day
    # A day off the calendar adds moves the count as it moves deadlines.
    holiday = WorkCalendar(extra_days_off=[dt.date(2026, 3, 16)])
    assert wl.work_list(access(kit["reporter"]), today=friday, calendar=holiday).to_send.items[0].working_days_left == 1
    # A commune reporter reviews nothing and watches no other unit: those parts are not its job.
    assert (mine.to_review.applies, mine.late.applies) == (False, False)
    assert mine.unread.total == 0 and mine.unread.applies


def test_a_late_report_counts_its_days_late(kit):
    item = listing(kit["reporter"], DEADLINE + dt.timedelta(days=4)).to_send.items[0]
    assert (item.working_days_left, item.days_late, item.late) == (None, 4, True)


def test_a_returned_report_comes_first_with_the_receivers_reason(kit, make_regime, unit_tree, frozen_clock):
    second = make_regime("test.second", name="Báo cáo thứ hai")
    later = second.report_of(unit_tree.communes[0])
    send(kit["reporter"], later)
    before = listing(kit["reporter"], dt.date(2026, 3, 5))
    assert sent_ids(before.to_send) == [kit["report"].id]  # a submitted report is no longer to send
    wf.return_report(access(kit["receiver"]), later.id, "Thiếu số liệu diện tích ngô.")
    after = listing(kit["reporter"], dt.date(2026, 3, 5))
    assert sent_ids(after.to_send) == [later.id, kit["report"].id] and after.to_send.total == 2
    first = after.to_send.items[0]
    assert first.returned and first.reason == "Thiếu số liệu diện tích ngô."
    assert after.to_send.items[1].reason == ""
    # Told of it, too: the return is an unread notification.
    assert after.unread.total == 1 and "Thiếu số liệu diện tích ngô." in after.unread.items[0]["text"]
    # Accepted, then reopened with another reason: the newest reason is the one shown.
    send(kit["reporter"], later)
    wf.accept(access(kit["receiver"]), later.id)
    wf.reopen(access(kit["receiver"]), later.id, "Sửa lại số liệu lúa.")
    again = listing(kit["reporter"], dt.date(2026, 3, 5))
    assert again.to_send.items[0].report.id == later.id and again.to_send.items[0].reason == "Sửa lại số liệu lúa."


def test_the_department_receiver_sees_the_submitted_report_to_review(kit):
    receiver = kit["receiver"]
    nothing = listing(receiver, dt.date(2026, 3, 5))
    assert nothing.to_review.applies and nothing.to_review.items == [] and nothing.to_review.total == 0
    assert not nothing.to_send.applies  # the receiver sends nothing
    send(kit["reporter"], kit["report"])
    mine = listing(receiver, dt.date(2026, 3, 5), lang="vi")
    assert [r.report.id for r in mine.to_review.items] == [kit["report"].id] and mine.to_review.total == 1
    assert mine.to_review.items[0].version_number == 1
    assert mine.to_review.items[0].report.unit.name == "Xã Gio Linh"
    assert mine.unread.total == 1 and mine.unread.items[0]["text"].startswith("Xã Gio Linh đã gửi báo cáo")
    english = listing(receiver, dt.date(2026, 3, 5), lang="en")
    assert english.unread.items[0]["text"].startswith("Xã Gio Linh submitted")
    # Once accepted, nothing waits any more.
    wf.accept(access(receiver), kit["report"].id)
    assert listing(receiver, dt.date(2026, 3, 5)).to_review.total == 0


def test_late_units_appear_after_the_deadline_per_regime_and_period(kit):
    send(kit["reporter"], kit["report"])
    assert listing(kit["receiver"], DEADLINE).late.items == []  # on the deadline nobody is late yet
    after = DEADLINE + dt.timedelta(days=1)
    late = listing(kit["receiver"], after).late
    assert late.applies and len(late.items) == 1 and late.total == 1
    group = late.items[0]
    assert (group.regime_code, group.count, group.units, group.received) == ("test.monthly", 1, ["Xã Cam Lộ"], 1)
    assert (group.period_start, group.period_end, group.deadline) == (dt.date(2026, 2, 15), dt.date(2026, 3, 14),
                                                                      DEADLINE)
    assert group.queue_params() == {"status": "", "regime": "test.monthly", "period": "2026-02-15/2026-03-14",
                                    "late": "1"}
    # The province's viewer watches every unit below it (it receives none of them).
    watched = listing(kit["viewer"], after).late.items
    assert [(g.count, g.units, g.received) for g in watched] == [(1, ["Xã Cam Lộ"], 0)]
    # The late commune's own reporter finds it among the reports to send, not among "late units".
    own = listing(kit["other"], after)
    assert own.to_send.items[0].late and not own.late.applies
    # A returned report still unsent after the deadline is late too; a submitted one no longer is.
    send(kit["other"], kit["other_report"])
    assert listing(kit["receiver"], after).late.items == []
    wf.return_report(access(kit["receiver"]), kit["other_report"].id, "Số liệu chưa khớp.")
    assert [g.count for g in listing(kit["receiver"], after).late.items] == [1]


def test_late_units_are_named_a_few_and_counted_all(kit, unit_tree, make_regime):
    second = make_regime("test.second", name="Báo cáo thứ hai")
    late = wl.late_units(set(), {unit_tree.department.id}, set(), today=DEADLINE + dt.timedelta(days=1), names=1)
    assert [(g.regime_code, g.count, g.units) for g in late.items] == [("test.monthly", 2, ["Xã Cam Lộ"]),
                                                                      ("test.second", 2, ["Xã Cam Lộ"])]
    assert second.regime.code == "test.second"
    capped = wl.late_units(set(), {unit_tree.department.id}, set(), today=DEADLINE + dt.timedelta(days=1), groups=1)
    assert [g.regime_code for g in capped.items] == ["test.monthly"] and capped.more and capped.total == 2


def test_nobody_sees_another_units_items(kit, make_user):
    send(kit["reporter"], kit["report"])
    after = DEADLINE + dt.timedelta(days=1)
    # The other commune's reporter: its own report only, and nothing of Gio Linh's.
    other = listing(kit["other"], after)
    assert sent_ids(other.to_send) == [kit["other_report"].id]
    assert not other.to_review.applies and not other.late.applies and other.unread.total == 0
    # A receiver and a viewer of another province: nothing at all.
    elsewhere = Unit.create(code="45", name="Tỉnh Khác", kind="province")
    stranger, _ = make_user(unit=elsewhere, roles=("receiver", "reporter"))
    theirs = listing(stranger, after)
    assert (theirs.to_send.items, theirs.to_review.items, theirs.late.items, theirs.unread.items) == ([], [], [], [])
    assert theirs.empty
    # A system administrator holds every right, but has work only through a grant.
    admin, _ = make_user(unit=kit["tree"].province, is_admin=True)
    mine = listing(admin, after)
    assert not (mine.to_send.applies or mine.to_review.applies or mine.late.applies)
    # The reporter of Gio Linh does not see what the department receives from Cam Lộ.
    reporter = listing(kit["reporter"], after)
    assert reporter.to_send.items == [] and not reporter.late.applies


def test_parts_are_cut_to_their_limit_with_the_total(kit, make_user, unit_tree):
    leader, _ = make_user(unit=unit_tree.province, roles=("reporter",))  # may fill both communes' reports
    mine = wl.work_list(access(leader), today=dt.date(2026, 3, 5), calendar=CALENDAR)
    assert mine.to_send.total == 2  # both, counted
    part = wl.reports_to_send({c.id for c in unit_tree.communes}, today=dt.date(2026, 3, 5), calendar=CALENDAR,
                              limit=1)
    assert len(part.items) == 1 and part.total == 2 and part.hidden == 1


def test_a_department_receiving_from_80_communes_costs_a_handful_of_queries(frozen_clock, make_regime, unit_tree,
                                                                            make_user):
    """The measure the issue asks for: 80 communes report to the department; 40 have sent (each a
    notification to the receiver), the others are late. The list costs the same whatever the number
    of reports: the grant's subtree, the reports to review, the late units, the unread notifications
    and the two reads that word them."""
    frozen_clock(OPENED)
    with db.connection_context():
        for n in range(78):  # with the kit's two, 80
            Unit.create(code=f"44.X{n:02d}", name=f"Xã Số {n:02d}", kind="commune", parent=unit_tree.province)
    issued = make_regime()
    receiver, _ = make_user(unit=unit_tree.department, roles=("receiver",))
    with db.connection_context():
        reports = list(Report.select().where(Report.regime == issued.regime.id).order_by(Report.id))
        assert len(reports) == 80
        sent = [r.id for r in reports[:40]]
        Report.update(status="submitted", submitted_at=OPENED).where(Report.id.in_(sent)).execute()
        from core.reporting.notifications import Notification

        Notification.insert_many([{"user": receiver.id, "report": rid, "action": "submit"} for rid in sent]).execute()
        who = access(receiver)
        with QueryCounter(db.obj) as counter:
            counter.start()
            mine = wl.work_list(who, today=DEADLINE + dt.timedelta(days=1), settings=None)
            statements = counter.stop()
    assert mine.to_review.total == 40 and len(mine.to_review.items) == wl.LIMIT
    assert mine.late.items[0].count == 40 and len(mine.late.items[0].units) == wl.LATE_NAMES
    assert mine.unread.total == 40 and len(mine.unread.items) == wl.UNREAD_SHOWN
    listing_text = "\n".join(re.sub(r"\s+", " ", s)[:160] for s in statements)
    assert len(statements) == 6, f"{len(statements)} queries\n{listing_text}"


def test_a_commune_reporter_costs_two_queries(kit):
    """What the reporter watches lies within the commune they send for: the reports to send walk
    the grant's subtree in their own query, and the unread notifications are the other."""
    who = access(kit["reporter"])
    with QueryCounter(db.obj) as counter:
        counter.start()
        mine = wl.work_list(who, today=dt.date(2026, 3, 13), calendar=CALENDAR)
        statements = counter.stop()
    assert sent_ids(mine.to_send) == [kit["report"].id] and mine.to_send.items[0].working_days_left == 2
    assert (mine.to_review.applies, mine.late.applies) == (False, False)
    assert len(statements) == 2, "\n".join(re.sub(r"\s+", " ", s)[:160] for s in statements)
