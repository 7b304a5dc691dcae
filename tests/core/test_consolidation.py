"""Consolidated reports (issue 6): a receiving unit's own report pre-filled from the reports it
received — accepted ones only unless configured — by each indicator's aggregation, computed rows
recomputed, stale when a source changes after consolidation until refreshed, two levels, the
drill-down of a cell, and who may open and refresh. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

from decimal import Decimal

import pytest

from core.reporting import consolidation as cs
from core.reporting import data as rd
from core.reporting import workflow as wf
from core.accounts.access import Grant, Role
from core.audit import AuditEvent
from core.errors import BaocaoError, Forbidden, NotFound
from core.catalogue.indicators import Indicator
from core.reporting.opening import Report
from tests.fixtures.forms import access_of, form_world


@pytest.fixture
def w(db_session):
    world = form_world()
    world.period = f"{world.report.period_start.isoformat()}/{world.report.period_end.isoformat()}"
    world.other_report = Report.get((Report.unit == world.u["camlo"]) & (Report.regime == world.regime)
                                    & (Report.period_start == world.report.period_start))
    world.p["province"] = person(world, "tinh", "province", "reporter")
    return world


def person(w, name, unit, *roles):
    from core.accounts import login as accounts

    user = accounts.create_user(name, name, accounts.random_password(), w.u[unit])
    for role in roles:
        Grant.create(user=user, role=Role.get(Role.code == role), unit=w.u[unit])
    return access_of(user)


def send(access, report_id, banle="", dulich="", *, section="Số liệu trong tháng."):
    cells = {("banle", "cur"): (rd.MISSING, banle), ("dulich", "cur"): (rd.MISSING, dulich)}
    saved = rd.save(access, report_id, cells, {"ketqua": (rd.MISSING, section)})
    return wf.submit(access, report_id, revision=saved.revision)


def values(w, report_id):
    """The report's "this month" column as its page shows it (the province's reporter reads all)."""
    sheet = rd.load_sheet(w.p["province"], report_id)
    return {f"{r}.{c}": v for (r, c), v in sheet.values.items() if c == "cur"}


def test_open_sums_the_accepted_reports_only_and_recomputes_the_total(w):
    send(w.p["reporter"], w.report.id, "10", "5")
    wf.accept(w.p["issuer"], w.report.id)
    send(w.p["other"], w.other_report.id, "20,5", "7")  # submitted, not reviewed yet
    report = cs.open_consolidated(w.p["province"], w.regime.id, w.period)
    assert (report.kind, report.unit_id, report.receiver_id) == ("consolidated", w.u["province"].id, None)
    assert (report.regime_id, report.form_version_id, report.period_start, report.period_end) == (
        w.report.regime_id, w.report.form_version_id, w.report.period_start, w.report.period_end)
    got = values(w, report.id)
    assert (got["banle.cur"], got["dulich.cur"], got["tong.cur"]) == (Decimal(10), Decimal(5), Decimal(15))
    assert cs.recorded(report.id) == {w.report.id: 1}
    # Opening again gives the same report: one per regime, unit and period.
    assert cs.open_consolidated(w.p["province"], w.regime.id, w.period).id == report.id
    assert Report.select().where(Report.kind == "consolidated").count() == 1
    assert AuditEvent.select().where(AuditEvent.action == "consolidation.opened").count() == 1
    # Configured to count submitted reports too.
    cs.refresh(w.p["province"], report.id, include_submitted=True)
    got = values(w, report.id)
    assert (got["banle.cur"], got["dulich.cur"], got["tong.cur"]) == (Decimal("30.5"), Decimal(12), Decimal("42.5"))
    assert AuditEvent.select().where(AuditEvent.action == "consolidation.refreshed").count() == 1


def test_figures_come_from_the_version_sent_not_from_later_drafts(w):
    send(w.p["reporter"], w.report.id, "10", "5")
    wf.accept(w.p["issuer"], w.report.id)
    wf.reopen(w.p["issuer"], w.report.id, "Kiểm tra lại")
    rd.save(w.p["reporter"], w.report.id, {("banle", "cur"): (rd.MISSING, "99")})
    send(w.p["other"], w.other_report.id, "1", "1")
    report = cs.open_consolidated(w.p["province"], w.regime.id, w.period, include_submitted=True)
    # Ái Tử's report is being corrected (returned): its draft 99 is not counted.
    assert values(w, report.id)["banle.cur"] == Decimal(1)


@pytest.mark.parametrize("rule, figures, expected", [
    ("sum", ["1", "2.5", "3"], "6.5"),
    ("average", ["10", "20", "40"], "23.333333"),
    ("min", ["4", "-1", "7"], "-1"),
    ("max", ["4", "-1", "7"], "7"),
    ("last", ["100", "50"], "150"),
    ("", ["1", "2"], "3"),
    ("none", ["1", "2"], None),
    ("weighted_average", ["1", "2"], None),
    ("sum", [], None),
    ("average", [], None),
])
def test_each_aggregation_rule(rule, figures, expected):
    result = cs.aggregate(rule, [Decimal(f) for f in figures])
    assert result == (None if expected is None else Decimal(expected))


def test_rules_follow_the_indicators_and_a_cell_nobody_reported_stays_empty(w):
    Indicator.update(aggregation="none").where(Indicator.code == "KX0301").execute()
    Indicator.update(aggregation="average").where(Indicator.code == "KX0305").execute()
    send(w.p["reporter"], w.report.id, "10", "")
    send(w.p["other"], w.other_report.id, "20", "")
    for r in (w.report, w.other_report):
        wf.accept(w.p["issuer"], r.id)
    report = cs.open_consolidated(w.p["province"], w.regime.id, w.period)
    got = values(w, report.id)
    assert got["banle.cur"] is None and got["dulich.cur"] is None  # not 0
    # A cell left to the unit keeps what the unit typed across refreshes.
    rd.save(w.p["province"], report.id, {("banle", "cur"): (rd.MISSING, "123")})
    wf.reopen(w.p["issuer"], w.other_report.id, "Bổ sung du lịch")
    rd.save(w.p["other"], w.other_report.id, {("dulich", "cur"): (rd.MISSING, "8")})
    wf.submit(w.p["other"], w.other_report.id, revision=Report.get_by_id(w.other_report.id).revision)
    wf.accept(w.p["issuer"], w.other_report.id)
    cs.refresh(w.p["province"], report.id)
    got = values(w, report.id)
    assert got["banle.cur"] == Decimal(123) and got["dulich.cur"] == Decimal(8)  # the mean of who reported


def test_a_source_returned_after_consolidation_makes_it_stale_until_refreshed(w):
    send(w.p["reporter"], w.report.id, "10", "5")
    send(w.p["other"], w.other_report.id, "20", "7")
    for r in (w.report, w.other_report):
        wf.accept(w.p["issuer"], r.id)
    report = cs.open_consolidated(w.p["province"], w.regime.id, w.period)
    rd.save(w.p["province"], report.id, {("banle", "cur"): (rd.MISSING, "999")},
            {"ketqua": (rd.MISSING, "Toàn tỉnh tăng khá.")})
    assert cs.changes(report) == [] and not cs.is_stale(report)
    wf.reopen(w.p["issuer"], w.report.id, "Số bán lẻ chưa đúng")
    found = cs.changes(Report.get_by_id(report.id))
    assert [(c.unit_name, c.why) for c in found] == [("Xã Ái Tử", "returned")]
    with pytest.raises(BaocaoError) as exc:
        cs.ensure_fresh(Report.get_by_id(report.id))
    assert "Xã Ái Tử" in exc.value.message("vi")
    cs.refresh(w.p["province"], report.id)
    fresh = Report.get_by_id(report.id)
    assert not cs.is_stale(fresh)
    got = values(w, report.id)
    assert got["banle.cur"] == Decimal(20)  # the hand-typed 999 is replaced
    assert rd.load_sheet(w.p["province"], report.id).sections["ketqua"] == "Toàn tỉnh tăng khá."  # kept
    # Sent again and accepted: a new version to count.
    saved = rd.save(w.p["reporter"], w.report.id, {("banle", "cur"): (rd.MISSING, "11")})
    wf.submit(w.p["reporter"], w.report.id, revision=saved.revision)
    wf.accept(w.p["issuer"], w.report.id)
    assert [(c.unit_name, c.why) for c in cs.changes(fresh)] == [("Xã Ái Tử", "added")]
    cs.refresh(w.p["province"], report.id)
    assert values(w, report.id)["banle.cur"] == Decimal(31)
    assert cs.recorded(report.id) == {w.report.id: 2, w.other_report.id: 1}


def test_two_levels_communes_to_department_to_province(w):
    # The communes report to the department this time; the department reports to the province.
    Report.update(receiver=w.u["stc"]).where(Report.unit.in_([w.u["aitu"], w.u["camlo"]])).execute()
    stc = person(w, "so_tc", "stc", "reporter", "receiver")
    send(w.p["reporter"], w.report.id, "10", "5")
    send(w.p["other"], w.other_report.id, "20", "7")
    for r in (w.report, w.other_report):
        wf.accept(stc, r.id)
    department = cs.open_consolidated(stc, w.regime.id, w.period)
    assert department.receiver_id == w.u["province"].id and department.unit_id == w.u["stc"].id
    with pytest.raises(NotFound):  # a commune does not read the department's report
        cs.get_consolidated(w.p["reporter"], department.id)
    # Signed and submitted like any report (the signature is the workflow's), reviewed by the province.
    saved = rd.save(stc, department.id, {}, {"ketqua": (rd.MISSING, "Sở tổng hợp hai xã.")})
    wf.submit(stc, department.id, revision=saved.revision)
    assert wf.can_receive(w.p["issuer"], Report.get_by_id(department.id))
    assert not wf.can_receive(stc, Report.get_by_id(department.id))
    with pytest.raises(Forbidden):  # the reviewer reads it but does not prepare it
        cs.refresh(w.p["issuer"], department.id)
    # The reviewer drills down to the communes' figures behind the department's total.
    detail = cs.cell_detail(w.p["issuer"], department.id, "banle", "cur")
    assert [(f.report.unit.name, f.value) for f in detail.figures] == [("Xã Ái Tử", Decimal(10)),
                                                                     ("Xã Cam Lộ", Decimal(20))]
    wf.accept(w.p["issuer"], department.id)
    # The province's people may prepare the department's report too (their grant covers it): they
    # say which unit's consolidation they open.
    with pytest.raises(BaocaoError) as exc:
        cs.open_consolidated(w.p["province"], w.regime.id, w.period)
    assert exc.value.key == "consolidation.error.choose_unit"
    province = cs.open_consolidated(w.p["province"], w.regime.id, w.period, unit_id=w.u["province"].id)
    assert cs.recorded(province.id) == {department.id: 1}
    got = values(w, province.id)
    assert (got["banle.cur"], got["dulich.cur"], got["tong.cur"]) == (Decimal(30), Decimal(12), Decimal(42))


def test_drill_down_lists_each_units_figure_and_who_has_not_sent(w):
    send(w.p["reporter"], w.report.id, "10", "5")
    wf.accept(w.p["issuer"], w.report.id)
    report = cs.open_consolidated(w.p["province"], w.regime.id, w.period)
    detail = cs.cell_detail(w.p["province"], report.id, "banle", "cur")
    assert detail.rule == "sum" and detail.aggregated and detail.result == Decimal(10)
    assert [(f.report.unit.name, f.value, f.version_number, f.late) for f in detail.figures] == [
        ("Xã Ái Tử", Decimal(10), 1, True)]  # March 2026 is long past
    assert [(f.report.unit.name, f.report.status) for f in detail.others] == [("Xã Cam Lộ", "not_started")]
    with pytest.raises(NotFound):
        cs.cell_detail(w.p["province"], report.id, "nope", "cur")
    with pytest.raises(NotFound):  # a unit's report has no consolidation
        cs.cell_detail(w.p["reporter"], w.report.id, "banle", "cur")


def test_only_the_receiving_units_people_open_and_refresh(w):
    send(w.p["reporter"], w.report.id, "10", "5")
    wf.accept(w.p["issuer"], w.report.id)
    with pytest.raises(Forbidden):  # a commune prepares no consolidation of these reports
        cs.open_consolidated(w.p["reporter"], w.regime.id, w.period)
    with pytest.raises(Forbidden):  # receiving is not preparing the unit's own report
        cs.open_consolidated(w.p["issuer"], w.regime.id, w.period)
    report = cs.open_consolidated(w.p["province"], w.regime.id, w.period)
    with pytest.raises(NotFound):
        cs.refresh(w.p["other"], report.id)
    with pytest.raises(NotFound):  # nobody receives the province's report inside the system
        cs.refresh(w.p["issuer"], report.id)
    # Sent: no refresh until it comes back.
    saved = rd.save(w.p["province"], report.id, {}, {"ketqua": (rd.MISSING, "Tổng hợp.")})
    wf.submit(w.p["province"], report.id, revision=saved.revision)
    with pytest.raises(BaocaoError) as exc:
        cs.refresh(w.p["province"], report.id)
    assert exc.value.key == "report_data.error.not_editable"


def test_the_deadline_is_the_rule_for_the_units_level(w):
    import json

    from core.regimes.regimes import Regime

    rules = [{"level": "Xã → tỉnh", "from_kind": "commune", "rule": "2wd"},
             {"level": "Tỉnh → Trung ương", "from_kind": "province", "rule": "+3wd"}]
    Regime.update(deadline_rules=json.dumps(rules, ensure_ascii=False)).where(Regime.id == w.regime.id).execute()
    send(w.p["reporter"], w.report.id, "10", "5")
    wf.accept(w.p["issuer"], w.report.id)
    report = cs.open_consolidated(w.p["province"], w.regime.id, w.period)
    assert report.level == "Tỉnh → Trung ương" and report.deadline > w.report.deadline


def test_a_day_off_entered_later_moves_the_consolidated_reports_deadline_too(w):
    """The working-day calendar (issue 12 item 21) is used by every deadline: an extra day off
    entered on the consolidated report's deadline moves it to the next working day, and back."""
    from core.accounts import login as accounts
    from core.regimes import workdays
    from core.accounts.permissions import core_access
    from core.reporting import calendar_changes

    send(w.p["reporter"], w.report.id, "10", "5")
    wf.accept(w.p["issuer"], w.report.id)
    report = cs.open_consolidated(w.p["province"], w.regime.id, w.period)
    before = report.deadline
    admin = core_access(accounts.create_user("quantri_lich", "Quản trị", accounts.random_password(),
                                             w.u["province"], is_admin=True))
    calendar_changes.add_day(admin, before, workdays.DAY_OFF, "Thông báo số 1/TB-BNV về ngày nghỉ bù")
    moved = Report.get_by_id(report.id).deadline
    assert moved > before and workdays.work_calendar().is_working_day(moved)
    entry = workdays.CalendarDay.get(workdays.CalendarDay.day == before)
    calendar_changes.remove_day(admin, entry.id, "Thông báo đã được thay thế")
    assert Report.get_by_id(report.id).deadline == before


def test_a_receiving_units_own_unsent_report_becomes_its_consolidated_report(w):
    own = Report.create(**{f: getattr(w.report, f) for f in (
        "regime", "frequency", "year", "period_index", "period_start", "period_end", "label", "level",
        "nominal_deadline", "deadline", "form_version")}, unit=w.u["province"], receiver=w.u["province"])
    send(w.p["reporter"], w.report.id, "10", "5")
    wf.accept(w.p["issuer"], w.report.id)
    report = cs.open_consolidated(w.p["province"], w.regime.id, w.period)
    assert report.id == own.id and (report.kind, report.receiver_id) == ("consolidated", None)
    assert values(w, report.id)["banle.cur"] == Decimal(10)
