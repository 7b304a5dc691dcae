"""Opening reporting periods (issue 4): issuing opens the current period with one report per
reporting unit; the job (``open_due_periods``) is idempotent; new versions keep old reports;
thematic and ad-hoc requests open with the window and deadline their issuer sets.
Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest

from core.regimes import regimes as rg
from core.reporting import opening as rp
from core.audit import AuditEvent
from core.errors import Forbidden, ValidationError
from core.regimes.workdays import WorkCalendar
from tests.core.test_regimes import CAL, TODAY, periodic, thematic, world  # noqa: F401 — the fixture

D = dt.date


def issued(world, **changes):
    regime = rg.save_draft(world.p["editor"], periodic(world, **changes))
    regime, opened = rp.issue_and_open(world.p["issuer"], regime.id, calendar=CAL, today=TODAY)
    return regime, opened


def test_issuing_opens_the_current_period_with_one_report_per_reporting_unit(world):
    regime, opened = issued(world)
    reports = list(rp.Report.select().order_by(rp.Report.id))
    units = {r.unit.code for r in reports}
    assert units == {"STC", "SYT", "GM", "AT", "CL"}
    assert (opened.periods, opened.reports) == (1, 5)
    assert {(r.period_start, r.period_end, r.label) for r in reports} == {(D(2026, 2, 15), D(2026, 3, 14), "Tháng 3 năm 2026")}
    by_code = {r.unit.code: r for r in reports}
    # cut-off Sat 14/03/2026: communes 2wd → Tue 17/03; departments +1wd → Wed 18/03
    assert by_code["AT"].deadline == D(2026, 3, 17) and by_code["AT"].level == "Xã → tỉnh"
    assert by_code["STC"].deadline == D(2026, 3, 18) and by_code["STC"].level == "Sở → tỉnh"
    assert all(r.status == "not_started" and r.regime_id == regime.id for r in reports)
    # Each unit's report goes to the regime's receiving unit, to be reviewed there.
    assert {(r.kind, r.receiver_id) for r in reports} == {("unit", regime.receiving_unit_id)}
    # One audit event per period, not per report.
    assert AuditEvent.select().where(AuditEvent.action == "regime.period_open").count() == 1


def test_running_the_job_twice_creates_nothing_new(world):
    issued(world)
    before = rp.Report.select().count()
    assert rp.open_due_periods(TODAY, calendar=CAL) == rp.OpenResult(0, 0)
    assert rp.open_due_periods(TODAY, calendar=CAL) == rp.OpenResult(0, 0)
    assert rp.Report.select().count() == before


def test_the_job_opens_each_new_period_when_it_starts(world):
    issued(world)
    assert rp.open_due_periods(D(2026, 3, 14), calendar=CAL).reports == 0
    result = rp.open_due_periods(D(2026, 3, 15), calendar=CAL)  # April's window starts on 15/03
    assert (result.periods, result.reports) == (1, 5)
    # A worker that was down for a while catches up on every period it missed.
    assert rp.open_due_periods(D(2026, 6, 20), calendar=CAL).periods == 3
    assert rp.open_due_periods(D(2026, 6, 20), calendar=CAL).periods == 0


def test_a_unit_that_came_into_being_later_reports_from_its_first_period_only(world):
    issued(world)
    # A commune established on 20/05/2026 (a merge's successor): the job, catching up on 20/06,
    # opens for it the windows of 15/05–14/06 and 15/06–14/07, never those that ended before it existed.
    new = rp.Unit.create(code="MOI", name="Xã Mới", kind="commune", parent=world.u["province"],
                         valid_from=D(2026, 5, 20))
    rp.open_due_periods(D(2026, 6, 20), calendar=CAL)
    opened = {r.period_start for r in rp.Report.select().where(rp.Report.unit == new.id)}
    assert opened == {D(2026, 5, 15), D(2026, 6, 15)}
    assert rp.Report.select().where((rp.Report.unit == world.u["aitu"].id)).count() == 5  # every window since March


def test_suspended_and_draft_regimes_open_nothing(world):
    regime, _ = issued(world)
    rg.suspend(world.p["issuer"], regime.id, "Tạm dừng để sửa")
    assert rp.open_due_periods(D(2026, 4, 20), calendar=CAL).reports == 0
    rg.save_draft(world.p["editor"], periodic(world, code="KHAC"))
    assert rp.open_due_periods(D(2026, 4, 20), calendar=CAL).reports == 0


def test_a_new_version_keeps_the_old_reports_on_the_old_version(world):
    regime, _ = issued(world)
    draft = rg.new_version(world.p["editor"], regime.id)
    rules = [{"level": "Mọi đơn vị → tỉnh", "from_kind": "", "rule": "3wd"}]
    rg.save_draft(world.p["editor"], periodic(world, deadline_rules=rules), regime_id=draft.id)
    later = D(2026, 3, 20)
    new, opened = rp.issue_and_open(world.p["issuer"], draft.id, calendar=CAL, today=later)
    march = rp.Report.select().where(rp.Report.period_end == D(2026, 3, 14))
    assert {r.regime_id for r in march} == {regime.id} and march.count() == 5
    april = list(rp.Report.select().where(rp.Report.period_end == D(2026, 4, 14)))
    assert {r.regime_id for r in april} == {new.id} and len(april) == 5
    assert opened.reports == 5  # April only: March was already open under version 1
    assert rp.open_due_periods(later, calendar=CAL).reports == 0
    # The regime's reports page lists both versions' reports.
    assert len(rp.regime_reports(new)) == 10
    assert len(rp.regime_reports(new, period="2026-02-15/2026-03-14")) == 5


def test_configured_days_off_move_deadlines():
    calendar = WorkCalendar(extra_days_off=[D(2026, 3, 16)])
    from core.regimes.periods import window

    assert rp.check_chain(window("monthly", 2026, 3), {"x": "2wd"}, calendar)[0].deadline == D(2026, 3, 18)


def test_a_thematic_request_opens_with_its_window_and_deadline(world):
    regime = rg.save_draft(world.p["district"], thematic(world, "district", unit_ids=[world.u["giomy"].id],
                                                         kinds=["commune"]))
    rg.issue(world.p["district"], regime.id, calendar=CAL, today=TODAY)
    count = rp.open_request(world.p["district"], regime.id, D(2026, 3, 1), D(2026, 3, 10), D(2026, 3, 14),
                            label="Đợt 1", calendar=CAL, today=TODAY)
    assert count == 1
    report = rp.Report.get()
    assert (report.unit.code, report.frequency, report.label) == ("GM", "custom", "Đợt 1")
    assert report.receiver_id == regime.receiving_unit_id
    assert (report.nominal_deadline, report.deadline) == (D(2026, 3, 14), D(2026, 3, 16))  # Sat → Mon
    with pytest.raises(ValidationError) as exc:
        rp.open_request(world.p["district"], regime.id, D(2026, 3, 1), D(2026, 3, 10), D(2026, 3, 14), calendar=CAL)
    assert exc.value.errors == {"window_start": "regimes.error.request_exists"}


def test_a_request_deadline_must_leave_a_working_day(world):
    regime = rg.save_draft(world.p["district"], thematic(world, "district", kinds=["commune"]))
    rg.issue(world.p["district"], regime.id, calendar=CAL, today=TODAY)
    with pytest.raises(ValidationError) as exc:  # Fri 13/03 → Sat 14/03: no working day
        rp.open_request(world.p["district"], regime.id, D(2026, 3, 1), D(2026, 3, 13), D(2026, 3, 14), calendar=CAL)
    assert exc.value.errors == {"deadline": "regimes.error.request_deadline"}
    with pytest.raises(ValidationError) as exc:
        rp.open_request(world.p["district"], regime.id, D(2026, 3, 10), D(2026, 3, 1), D(2026, 3, 20), calendar=CAL)
    assert exc.value.errors == {"window_end": "regimes.error.window_order"}
    assert not rp.Report.select().exists()


def test_only_the_issuer_opens_requests_and_only_for_requests(world):
    regime = rg.save_draft(world.p["district"], thematic(world, "district", kinds=["commune"]))
    with pytest.raises(Forbidden):  # not issued yet
        rp.open_request(world.p["district"], regime.id, D(2026, 3, 1), D(2026, 3, 10), D(2026, 3, 20), calendar=CAL)
    rg.issue(world.p["district"], regime.id, calendar=CAL, today=TODAY)
    with pytest.raises(Exception) as exc:
        rp.open_request(world.p["editor"], regime.id, D(2026, 3, 1), D(2026, 3, 10), D(2026, 3, 20), calendar=CAL)
    assert type(exc.value).__name__ in ("NotFound", "Forbidden")
    periodic_regime, _ = issued(world)
    with pytest.raises(Forbidden):
        rp.open_request(world.p["issuer"], periodic_regime.id, D(2026, 3, 1), D(2026, 3, 10), D(2026, 3, 20),
                        calendar=CAL)


def test_reports_to_send_and_to_receive(world):
    from core.accounts import login as accounts
    from core.accounts.access import Grant, Role
    from tests.core.test_regimes import access_of

    issued(world)
    clerk = accounts.create_user("clerk", "Văn thư xã", accounts.random_password(), world.u["aitu"])
    Grant.create(user=clerk, role=Role.get(Role.code == "reporter"), unit=world.u["aitu"])
    receiver = accounts.create_user("receiver", "Tiếp nhận", accounts.random_password(), world.u["province"])
    Grant.create(user=receiver, role=Role.get(Role.code == "receiver"), unit=world.u["province"])
    assert [r.unit.code for r in rp.reports_for(access_of(clerk))] == ["AT"]
    assert len(rp.reports_for(access_of(receiver))) == 5
    assert rp.reports_for(access_of(receiver), role="send") == []
    assert rp.reports_for(world.p["nobody"]) == []


def test_a_period_of_a_national_size_opens_in_one_go(world):
    """4,000 communes × 17 columns is more values than one INSERT may carry on PostgreSQL (65,535)
    or SQLite (32,766): the reports are inserted in batches, every unit gets its report."""
    from core.models import Unit

    Unit.insert_many([dict(code=f"X{i:04d}", name=f"Xã thử nghiệm {i}", kind="commune",
                           parent=world.u["province"].id) for i in range(4000)]).execute()
    regime, opened = issued(world)
    assert opened.reports == 4000 + 5
    assert rp.Report.select().where(rp.Report.regime == regime.id).count() == 4005
