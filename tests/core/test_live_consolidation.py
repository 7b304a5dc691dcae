"""Live consolidation (issue 14 item 1): an accepted, returned or reopened report adjusts the
running aggregates of every consolidation above it in the same transaction, by each indicator's
rule; the consolidated figures reach the figures store with their provenance and the consolidated
drafts that still follow them, with no refresh; a draft its unit edited keeps showing what changed;
the full rebuild gives the same numbers as the incremental path; the figures store writes a batch
in one statement. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

import pytest

from core.accounts import login as accounts
from core.accounts.permissions import core_access
from core.catalogue.figures import Figure, IndicatorValue, put_values
from core.catalogue.indicators import Indicator
from core.db import db
from core.models import Unit
from core.reporting import consolidation as cs
from core.reporting import data as rd
from core.reporting import workflow as wf
from core.reporting.opening import Report
from tests.fixtures.forms import access_of, form_world

PERIOD = ("monthly", 2026, 3)  # form_world's open period: March 2026


@pytest.fixture
def w(db_session):
    world = form_world()
    world.period = f"{world.report.period_start.isoformat()}/{world.report.period_end.isoformat()}"
    world.admin = core_access(accounts.create_user("quantri_tonghop", "Quản trị", accounts.random_password(),
                                                   world.u["province"], is_admin=True))
    world.province = access_of(accounts.create_user("tinh", "tinh", accounts.random_password(), world.u["province"]))
    from core.accounts.access import Grant, Role

    Grant.create(user=world.province.actor, role=Role.get(Role.code == "reporter"), unit=world.u["province"])
    world.province = access_of(world.province.actor)
    return world


def add_commune(w, code, name, parent, receiver=None) -> Report:
    """A commune under ``parent`` with its report of the period (receiver: ``receiver`` or ``parent``)."""
    unit = Unit.create(code=code, name=name, kind="commune", parent=parent)
    fields = ("regime", "frequency", "year", "period_index", "period_start", "period_end", "label", "level",
              "nominal_deadline", "deadline", "form_version")
    return Report.create(**{f: getattr(w.report, f) for f in fields}, unit=unit,
                         receiver=receiver or parent)


def send(w, report_id, banle="", dulich="", *, access=None):
    access = access or w.admin
    cells = {("banle", "cur"): (rd.MISSING, banle), ("dulich", "cur"): (rd.MISSING, dulich)}
    saved = rd.save(access, report_id, cells, {"ketqua": (rd.MISSING, "Số liệu trong tháng.")})
    return wf.submit(access, report_id, revision=saved.revision)


def accept(w, report_id):
    wf.accept(w.admin, report_id)


def stored(unit, code="KX0301"):
    row = IndicatorValue.get_or_none((IndicatorValue.unit == getattr(unit, "id", unit)) & (IndicatorValue.code == code)
                                     & (IndicatorValue.frequency == PERIOD[0]) & (IndicatorValue.year == PERIOD[1])
                                     & (IndicatorValue.index == PERIOD[2]) & (IndicatorValue.kind == "actual"))
    return None if row is None else row.value


def draft(report_id):
    """The consolidated report's "this month" inputs as saved (what its page shows)."""
    values = rd.stored_values(report_id)
    return values.get(("banle", "cur")), values.get(("dulich", "cur"))


def figures(w, unit):
    found = cs.running("KTXH.THANG", w.period, getattr(unit, "id", unit))
    return None if found is None else (found.figures.get(("banle", "cur")), found.figures.get(("dulich", "cur")))


# -- one level --------------------------------------------------------------------------------

def test_accepting_publishes_the_sum_and_the_draft_follows_without_a_refresh(w):
    send(w, w.report.id, "10", "5")
    accept(w, w.report.id)
    # The province's figure is in the store at once: no consolidated report was even opened.
    assert stored(w.u["province"]) == Decimal(10) and stored(w.u["province"], "KX0305") == Decimal(5)
    report = cs.open_consolidated(w.province, w.regime.id, w.period)
    assert draft(report.id) == (Decimal(10), Decimal(5))
    send(w, w.other_report.id, "20,5", "7")
    assert draft(report.id) == (Decimal(10), Decimal(5))  # submitted, not accepted: not counted
    accept(w, w.other_report.id)
    assert stored(w.u["province"]) == Decimal("30.5")
    assert draft(report.id) == (Decimal("30.5"), Decimal(12))  # no refresh
    fresh = Report.get_by_id(report.id)
    assert cs.changes(fresh) == [] and not cs.is_stale(fresh)
    assert cs.recorded(report.id) == {w.report.id: 1, w.other_report.id: 1}
    cs.ensure_fresh(fresh)  # it may be sent as it is
    sheet = rd.load_sheet(w.province, report.id)
    assert sheet.values[("tong", "cur")] == Decimal("42.5")  # computed from what followed
    # Provenance: who is counted, who is missing.
    running = cs.running("KTXH.THANG", w.period, w.u["province"].id)
    assert [(c.unit_name, c.version_number, c.live) for c in running.counted] == [
        ("Xã Ái Tử", 1, False), ("Xã Cam Lộ", 1, False)]
    assert running.missing == []
    assert [r.scope.unit_id for r in cs.provenance(w.u["province"].id, *PERIOD)] == [w.u["province"].id]
    assert IndicatorValue.get((IndicatorValue.unit == w.u["province"]) & (IndicatorValue.code == "KX0301")).source \
        == cs.LIVE_SOURCE

    # Reopened: its figures leave the sum, the store and the draft at once.
    wf.reopen(w.admin, w.report.id, "Số bán lẻ chưa đúng")
    assert stored(w.u["province"]) == Decimal("20.5") and draft(report.id) == (Decimal("20.5"), Decimal(7))
    assert cs.recorded(report.id) == {w.other_report.id: 1} and cs.changes(Report.get_by_id(report.id)) == []
    running = cs.running("KTXH.THANG", w.period, w.u["province"].id)
    assert [(m.unit_name, m.status) for m in running.missing] == [("Xã Ái Tử", "returned")]
    # Sent again and returned: never counted meanwhile.
    send(w, w.report.id, "11", "1")
    wf.return_report(w.admin, w.report.id, "Thiếu thuyết minh")
    assert stored(w.u["province"]) == Decimal("20.5") and draft(report.id) == (Decimal("20.5"), Decimal(7))
    # The last one reopened: nothing counted, the figures are empty (not 0).
    wf.reopen(w.admin, w.other_report.id, "Kiểm tra lại")
    assert stored(w.u["province"]) is None and draft(report.id) == (None, None)
    assert cs.running("KTXH.THANG", w.period, w.u["province"].id).counted == []


def test_a_draft_its_unit_edited_keeps_showing_what_changed(w):
    send(w, w.report.id, "10", "5")
    accept(w, w.report.id)
    report = cs.open_consolidated(w.province, w.regime.id, w.period)
    rd.save(w.province, report.id, {("banle", "cur"): (rd.MISSING, "999")}, {"ketqua": (rd.MISSING, "Toàn tỉnh.")})
    send(w, w.other_report.id, "20", "7")
    accept(w, w.other_report.id)
    # The figures store follows the acceptance; the edited draft does not.
    assert stored(w.u["province"]) == Decimal(30)
    assert draft(report.id) == (Decimal(999), Decimal(5))
    assert [(c.unit_name, c.why) for c in cs.changes(Report.get_by_id(report.id))] == [("Xã Cam Lộ", "added")]
    # A refresh takes the running figures; the draft stays its unit's (the next change shows again).
    cs.refresh(w.province, report.id)
    assert draft(report.id) == (Decimal(30), Decimal(12)) and not cs.is_stale(Report.get_by_id(report.id))
    wf.reopen(w.admin, w.report.id, "Kiểm tra lại")
    assert draft(report.id) == (Decimal(30), Decimal(12))
    assert [(c.unit_name, c.why) for c in cs.changes(Report.get_by_id(report.id))] == [("Xã Ái Tử", "returned")]


def test_a_draft_sent_does_not_move_and_counting_submitted_reports_stays_manual(w):
    send(w, w.report.id, "10", "5")
    accept(w, w.report.id)
    report = cs.open_consolidated(w.province, w.regime.id, w.period, include_submitted=True)
    send(w, w.other_report.id, "20", "7")
    accept(w, w.other_report.id)
    assert draft(report.id) == (Decimal(10), Decimal(5))  # the setting counts submitted ones: by refresh
    assert stored(w.u["province"]) == Decimal(30)  # the store counts accepted ones, always
    cs.refresh(w.province, report.id)
    saved = rd.save(w.province, report.id, {}, {"ketqua": (rd.MISSING, "Toàn tỉnh.")})
    wf.submit(w.province, report.id, revision=saved.revision)
    revision = Report.get_by_id(report.id).revision
    wf.reopen(w.admin, w.report.id, "Kiểm tra lại")
    assert Report.get_by_id(report.id).revision == revision and draft(report.id) == (Decimal(30), Decimal(12))


# -- rules --------------------------------------------------------------------------------------

@pytest.mark.parametrize("rule", ["max", "min", "average"])
def test_extremes_and_means_are_recomputed_from_the_stored_rows(w, rule):
    Indicator.update(aggregation=rule).where(Indicator.code == "KX0301").execute()
    reports = [w.report, w.other_report] + [add_commune(w, f"X{n}", f"Xã Thêm {n}", w.u["province"])
                                            for n in range(3)]
    numbers = ["40", "10", "40", "25", "7"]  # two units hold the maximum, one the minimum
    for report, number in zip(reports, numbers):
        send(w, report.id, number, "1")
        accept(w, report.id)
    opened = cs.open_consolidated(w.province, w.regime.id, w.period)

    def expect(counted):
        figure = cs.aggregate(rule, [Decimal(n) for n in counted])
        assert stored(w.u["province"]) == figure and draft(opened.id)[0] == figure
        assert figures(w, w.u["province"])[0] == figure

    expect(numbers)
    for gone in (0, 2, 4):  # a holder of the maximum, the other one, the minimum
        wf.reopen(w.admin, reports[gone].id, "Kiểm tra lại")
        expect([n for i, n in enumerate(numbers) if i > gone or (i < gone and i not in (0, 2, 4))])
    send(w, reports[0].id, "3", "1")  # back, lower than every other
    accept(w, reports[0].id)
    expect(["3", "10", "25"])
    assert cs.aggregate(rule, [Decimal(n) for n in ("3", "10", "25")]) == stored(w.u["province"])


# -- three levels -------------------------------------------------------------------------------

def district_world(w):
    """Two district-like units under the province, each with two communes reporting to it; Ái Tử
    and Cam Lộ keep reporting to the province directly."""
    w.u["d1"] = Unit.create(code="D1", name="Huyện Một", kind="district", parent=w.u["province"])
    w.u["d2"] = Unit.create(code="D2", name="Huyện Hai", kind="district", parent=w.u["province"])
    w.communes = [add_commune(w, f"D{d}.{n}", f"Xã {d}-{n}", w.u[f"d{d}"]) for d in (1, 2) for n in (1, 2)]
    return w


def test_three_levels_every_level_moves_at_once(w):
    district_world(w)
    c11, c12, c21, c22 = w.communes
    send(w, c11.id, "10", "1")
    accept(w, c11.id)
    # The district and, through it, the province: no consolidated report opened anywhere.
    assert stored(w.u["d1"]) == Decimal(10) and stored(w.u["province"]) == Decimal(10)
    province = cs.running("KTXH.THANG", w.period, w.u["province"].id)
    assert [(c.unit_name, c.live) for c in province.counted] == [("Huyện Một", True)]
    district = cs.open_consolidated(w.admin, w.regime.id, w.period, unit_id=w.u["d1"].id)
    assert district.receiver_id == w.u["province"].id and draft(district.id) == (Decimal(10), Decimal(1))
    top = cs.open_consolidated(w.admin, w.regime.id, w.period, unit_id=w.u["province"].id)
    assert draft(top.id) == (Decimal(10), Decimal(1))
    for report, banle in ((c12, "5"), (c21, "100"), (w.report, "1000")):
        send(w, report.id, banle, "1")
        accept(w, report.id)
    assert (stored(w.u["d1"]), stored(w.u["d2"]), stored(w.u["province"])) == (Decimal(15), Decimal(100),
                                                                               Decimal(1115))
    assert draft(district.id) == (Decimal(15), Decimal(2)) and draft(top.id) == (Decimal(1115), Decimal(4))
    # A commune reopened: both levels above lose it.
    wf.reopen(w.admin, c11.id, "Kiểm tra lại")
    assert (stored(w.u["d1"]), stored(w.u["province"])) == (Decimal(5), Decimal(1105))
    assert draft(district.id) == (Decimal(5), Decimal(1)) and draft(top.id) == (Decimal(1105), Decimal(3))
    assert cs.changes(Report.get_by_id(top.id)) == [] and cs.changes(Report.get_by_id(district.id)) == []
    # The district sends its consolidated report and the province accepts it: the province now
    # counts what the district sent, not its running figures.
    saved = rd.save(w.admin, district.id, {("banle", "cur"): (rd.MISSING, "6")}, {"ketqua": (rd.MISSING, "Huyện.")})
    wf.submit(w.admin, district.id, revision=saved.revision)
    accept(w, district.id)
    assert stored(w.u["province"]) == Decimal(1106) and draft(top.id) == (Decimal(1106), Decimal(3))
    assert cs.recorded(top.id) == {district.id: 1, w.report.id: 1}
    province = cs.running("KTXH.THANG", w.period, w.u["province"].id)
    assert [(c.unit_name, c.version_number, c.live) for c in province.counted] == [
        ("Xã Ái Tử", 1, False), ("Huyện Một", 1, False), ("Huyện Hai", None, True)]
    assert [(m.unit_name, m.status) for m in province.missing] == [("Xã Cam Lộ", "not_started")]
    # Below an accepted report, a change stays at the district (and shows there as changed).
    send(w, c11.id, "50", "1")
    accept(w, c11.id)
    assert stored(w.u["d1"]) == Decimal(55) and stored(w.u["province"]) == Decimal(1106)
    # Reopened by the province: the district's running figures count again.
    wf.reopen(w.admin, district.id, "Bổ sung")
    assert stored(w.u["province"]) == Decimal(1155) and draft(top.id) == (Decimal(1155), Decimal(4))


def test_the_sources_each_person_may_open_from_the_consolidation(w):
    """The consolidation page links each source its viewer may read, as the report page decides
    (``data.can_read``): a district's preparer opens its own communes' reports but not that of a
    commune elsewhere that sends to the district; someone who receives at the district opens all."""
    from core.accounts.access import Grant, Role

    district_world(w)
    stray = add_commune(w, "D2.9", "Xã Gửi Sang", w.u["d2"], receiver=w.u["d1"])
    for report in (w.communes[0], stray):
        send(w, report.id, "4", "1")
        accept(w, report.id)
    district = cs.open_consolidated(w.admin, w.regime.id, w.period, unit_id=w.u["d1"].id)

    def opens(role):
        user = accounts.create_user(f"huyen_{role}", role, accounts.random_password(), w.u["d1"])
        Grant.create(user=user, role=Role.get(Role.code == role), unit=w.u["d1"])
        access = access_of(user)
        counted, others = cs.sources_overview(access, Report.get_by_id(district.id))
        found = {s.report.unit.name: s.can_open for s in counted + others}
        assert all(s.can_open == rd.can_read(access, Report.get_by_id(s.report.id)) for s in counted + others)
        return found

    assert opens("reporter") == {"Xã 1-1": True, "Xã 1-2": True, "Xã Gửi Sang": False}
    assert opens("receiver") == {"Xã 1-1": True, "Xã 1-2": True, "Xã Gửi Sang": True}


def test_a_units_own_accepted_figures_are_not_overwritten_by_a_consolidation(w):
    """A unit that reports its own figures and also receives some: its accepted report stands in
    the store; what it receives is counted above it, not published as its figure."""
    w.u["d1"] = Unit.create(code="D1", name="Huyện Một", kind="district", parent=w.u["province"])
    own = add_commune(w, "D1.X", "tạm", w.u["province"])
    Report.update(unit=w.u["d1"]).where(Report.id == own.id).execute()  # the district's own report
    below = add_commune(w, "D1.1", "Xã Dưới", w.u["d1"])
    send(w, own.id, "7", "1")
    accept(w, own.id)
    send(w, below.id, "3", "1")
    accept(w, below.id)
    assert stored(w.u["d1"]) == Decimal(7)  # its own accepted figure, from the accepted figures subscriber
    assert figures(w, w.u["d1"]) == (Decimal(3), Decimal(1))  # its running consolidation
    assert stored(w.u["province"]) == Decimal(7)  # the province counts the district's accepted report


# -- the rebuild ----------------------------------------------------------------------------------

def snapshot():
    """Every scope's cells and members, by unit (ids of scopes change with a rebuild)."""
    scopes = {s.id: s for s in cs.ConsolidationScope.select()}
    cells, members = {}, {}
    for t in cs.ConsolidationTotal.select():
        unit = scopes[t.scope_id].unit_id
        cells[(unit, t.row, t.column)] = (Decimal(str(t.total)), t.reported, t.value if t.value is None
                                          else Decimal(str(t.value)))
    for m in cs.ConsolidationMember.select():
        members[(scopes[m.scope_id].unit_id, m.unit_id)] = (
            m.report_id, m.version_number, scopes[m.lower_id].unit_id if m.lower_id else None)
    values = {(scopes[v.scope_id].unit_id, v.unit_id, v.row, v.column): Decimal(str(v.value))
              for v in cs.ConsolidationValue.select()}
    return cells, members, values


def store():
    return {(v.unit_id, v.code): v.value
            for v in IndicatorValue.select().where(IndicatorValue.source == cs.LIVE_SOURCE)}


def check_rules(rules, state) -> None:
    """Every scope's figure is its rule applied to what it counts: the accepted versions' figures
    and, for a unit counted live, that unit's own consolidated figure."""
    cells, members, values = state
    for (unit, row, column), (_, reported, value) in cells.items():
        rule = {"banle": rules[0], "dulich": rules[1]}[row]
        counted = [v for (u, _, r, c), v in values.items() if u == unit and (r, c) == (row, column)]
        live = [cell[2] for (u, r, c), cell in cells.items()
                if (r, c) == (row, column) and cell[2] is not None and members.get((unit, u), (0, 0, None))[2] == u]
        assert reported == len(counted) + len(live), (unit, row, column)
        assert value == cs.aggregate(rule, counted + live), (unit, row, column)


@pytest.mark.parametrize("rules, seed", [(("sum", "average"), 1), (("max", "min"), 2), (("sum", "max"), 3),
                                         (("min", "average"), 4)])
def test_the_rebuild_gives_the_numbers_of_the_incremental_path(w, rules, seed):
    Indicator.update(aggregation=rules[0]).where(Indicator.code == "KX0301").execute()
    Indicator.update(aggregation=rules[1]).where(Indicator.code == "KX0305").execute()
    district_world(w)
    w.communes += [add_commune(w, f"D1.{n}", f"Xã 1-{n}", w.u["d1"]) for n in (3, 4)]
    reports = [w.report, w.other_report, *w.communes]
    rng = random.Random(seed)
    opened, seen = {}, {"live": 0, "district sent": 0, "levels": 0}
    for step in range(1, 91):
        if step == 20:  # the districts start consolidating: their drafts follow from now on
            for d in ("d1", "d2"):
                opened[d] = cs.open_consolidated(w.admin, w.regime.id, w.period, unit_id=w.u[d].id)
            opened["province"] = cs.open_consolidated(w.admin, w.regime.id, w.period, unit_id=w.u["province"].id)
        candidates = reports + [opened[d] for d in ("d1", "d2") if d in opened]
        report = Report.get_by_id(rng.choice(candidates).id)
        if report.status in rd.EDITABLE:
            if report.kind == cs.KIND:
                if cs.changes(report):
                    cs.refresh(w.admin, report.id)
                saved = rd.save(w.admin, report.id, {}, {"ketqua": (rd.MISSING, f"Lần {step}.")})
                wf.submit(w.admin, report.id, revision=saved.revision)
            else:
                banle = rng.choice(["", "0", "1.5", "12", "40", "40", "3", "7.25"])
                dulich = rng.choice(["", "2", "2", "9.125", "100"])
                send(w, report.id, banle, dulich)
        elif report.status == "submitted":
            (accept(w, report.id) if rng.random() < 0.75 else
             wf.return_report(w.admin, report.id, "Trả lại"))
        elif rng.random() < 0.4:
            wf.reopen(w.admin, report.id, "Mở lại")
        if step % 10:
            continue
        # A checkpoint: rebuilt from scratch, the same numbers; the incremental path goes on
        # from the rebuilt state.
        incremental, published = snapshot(), store()
        drafts = {k: (rd.stored_values(r.id), Report.get_by_id(r.id).revision) for k, r in opened.items()}
        check_rules(rules, incremental)
        districts = {w.u["d1"].id, w.u["d2"].id}
        seen["live"] += any(lower is not None for _, _, lower in incremental[1].values())
        seen["district sent"] += any(unit in districts and lower is None for (_, unit), (_, _, lower)
                                     in incremental[1].items())
        seen["levels"] += len({unit for unit, _, _ in incremental[0]}) >= 2 and len(incremental[1]) >= 4
        result = cs.rebuild(regime_code="KTXH.THANG", period=w.period)
        assert result.periods == 1 and result.members == len(incremental[1])
        assert snapshot() == incremental, step
        assert store() == published
        # The drafts that followed were right already: the rebuild wrote nothing into them.
        assert {k: (rd.stored_values(r.id), Report.get_by_id(r.id).revision) for k, r in opened.items()} == drafts
    # The sequence went through the cases that matter: a level counted live, a district's accepted
    # consolidated report counted instead, several units at several levels.
    assert all(seen.values()), seen


def test_the_rebuild_repairs_what_was_lost_and_fills_from_before_the_upgrade(w):
    send(w, w.report.id, "10", "5")
    accept(w, w.report.id)
    send(w, w.other_report.id, "20", "7")
    accept(w, w.other_report.id)
    before = snapshot()
    # As after an upgrade (or a repair): nothing kept.
    for model in (cs.ConsolidationValue, cs.ConsolidationTotal, cs.ConsolidationMember, cs.ConsolidationScope):
        model.delete().execute()
    IndicatorValue.update(value=Decimal(1)).where(IndicatorValue.source == cs.LIVE_SOURCE).execute()
    result = cs.rebuild()
    assert (result.periods, result.scopes, result.members) == (1, 1, 2)
    assert snapshot() == before and stored(w.u["province"]) == Decimal(30)
    assert cs.rebuild(period=w.period).scopes == 1 and snapshot() == before  # running it again changes nothing
    # A report un-accepted behind the services' back (a restored backup, hand-written SQL): the
    # rebuild takes it out, and the province's figures with it once nothing is counted.
    Report.update(status="returned").where(Report.id == w.other_report.id).execute()
    cs.rebuild(regime_code="KTXH.THANG")
    assert stored(w.u["province"]) == Decimal(10)
    Report.update(status="returned").where(Report.id == w.report.id).execute()
    assert cs.rebuild(regime_code="KTXH.THANG").scopes == 0
    assert stored(w.u["province"]) is None and snapshot() == ({}, {}, {})


def test_the_rebuild_tells_its_progress_after_each_period_it_commits(w):
    """``rebuild(progress=…)`` feeds a background job's progress bar: called with 0 before the
    first consolidation period, then once each period is committed, counting up to the total."""
    send(w, w.report.id, "10", "5")
    accept(w, w.report.id)
    # A second period of the regime: the rebuild goes through two.
    fields = ("regime", "frequency", "year", "level", "nominal_deadline", "deadline", "form_version", "unit",
              "receiver")
    Report.create(**{f: getattr(w.report, f) for f in fields}, period_index=w.report.period_index + 1,
                  period_start=w.report.period_end + dt.timedelta(days=1),
                  period_end=w.report.period_end + dt.timedelta(days=28), label="Kỳ sau")
    cs.ConsolidationScope.delete().execute()
    calls = []
    result = cs.rebuild(progress=lambda done, total: calls.append((done, total, db.in_transaction())))
    assert result.periods == 2
    assert calls == [(0, 2, False), (1, 2, False), (2, 2, False)]  # each after its period's commit
    assert stored(w.u["province"]) == Decimal(10) and figures(w, w.u["province"]) == (Decimal(10), Decimal(5))
    # Nothing to rebuild: the bar still starts, and is full at once.
    calls.clear()
    assert cs.rebuild(regime_code="KHÔNG.CÓ", progress=lambda done, total: calls.append((done, total))).periods == 0
    assert calls == [(0, 0)]
    # Without a callable it works as before.
    assert cs.rebuild(period=w.period).periods == 1


def test_the_rebuild_command(w, database_url, tmp_path):
    from tests.core.test_cli import run  # the console script, run as an operator runs it

    send(w, w.report.id, "10", "5")
    accept(w, w.report.id)
    before = snapshot()
    cs.ConsolidationScope.delete().execute()
    result = run("consolidation", "rebuild", "--regime", "KTXH.THANG", "--period", w.period, cwd=tmp_path,
                 BAOCAO_DATABASE_URL=database_url)
    assert result.returncode == 0, result.stderr
    assert "Rebuilt 1 consolidation periods: 1 consolidating units, 1 units counted." in result.stdout
    assert snapshot() == before
    bad = run("consolidation", "rebuild", "--period", "không phải kỳ", cwd=tmp_path, BAOCAO_DATABASE_URL=database_url)
    assert bad.returncode != 0 and "Kỳ báo cáo không đúng." in bad.stderr + bad.stdout


# -- the figures store writes a batch in one statement ----------------------------------------------

class Statements:
    def __enter__(self):
        self.count, self.texts = 0, []
        self.database = db.obj
        original = self.database.execute_sql

        def counted(sql, params=None, *args, **kwargs):
            self.count += 1
            self.texts.append(sql)
            return original(sql, params, *args, **kwargs)

        self.database.execute_sql = counted
        return self

    def __exit__(self, *exc):
        del self.database.execute_sql


def test_put_values_writes_a_batch_in_one_statement(w):
    unit = w.u["aitu"].id

    def batch(n, value, year=2025):
        return [Figure("KX0301" if i % 2 else "KX0305", unit, "monthly", year, i // 2 + 1, "actual", value)
                for i in range(n)]

    with Statements() as few:
        assert put_values(batch(2, "1.5", 2024), source="test") == 2
    with Statements() as many:
        assert put_values(batch(24, "1.5"), source="test") == 24
    assert many.count == few.count + 0  # the same statements, whatever the number of figures
    assert sum("INSERT INTO" in t and "core_indicator_value" in t for t in many.texts) == 1
    # Writing the same batch again changes nothing, and says so (1.500000 is 1.5).
    assert put_values(batch(24, "1.500000"), source="test") == 0
    # One figure changed: one row changed; the same key twice in a batch: the last one wins.
    changed = batch(24, "1.5")
    changed[3] = Figure("KX0301", unit, "monthly", 2025, 2, "actual", "9")
    assert put_values(changed + [Figure("KX0301", unit, "monthly", 2025, 2, "actual", "8")], source="test") == 1
    assert IndicatorValue.get((IndicatorValue.unit == unit) & (IndicatorValue.code == "KX0301")
                              & (IndicatorValue.year == 2025) & (IndicatorValue.index == 2)).value == Decimal(8)


def test_an_acceptance_runs_a_bounded_number_of_statements(w):
    """Figures and running aggregates are written in bulk: an acceptance with two levels above it
    costs a few dozen statements whatever the number of cells (before issue 14 a 150-row form's
    acceptance alone cost ~175, two a figure; see bench/consolidation.py)."""
    district_world(w)
    c11 = w.communes[0]
    send(w, c11.id, "10", "1")
    with Statements() as counted:
        accept(w, c11.id)
    assert counted.count <= 60, counted.texts
