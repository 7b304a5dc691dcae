"""Completeness and timeliness of reporting (issue 14 item 3, core.reporting.completeness): the
numbers of a regime and period by unit, level and regime; on time or late judged against the
deadline in the instance's time zone; returned and accepted reports; the default period; the year
view; a unit's reports; who sees what; and the cost in queries, whatever the number of units.
Built with the kit's fixtures (web/testing.py). Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal

import pytest

from core.accounts.permissions import core_access
from core.db import db
from core.errors import NotFound
from core.models import Unit, User
from core.reporting import completeness as cp
from core.reporting import data as rd
from core.reporting import workflow as wf
from core.reporting.opening import Report, open_due_periods
from tests.web.test_autosave_queries import QueryCounter

# March 2026's window runs 15/02 – 14/03 (Decree 09); the kit's rule "2wd" puts the deadline two
# working days after its end: Tuesday 17/03/2026.
OPENED = dt.datetime(2026, 3, 2, 3, 0)
DEADLINE = dt.date(2026, 3, 17)
MARCH = "2026-02-15/2026-03-14"
APRIL = "2026-03-15/2026-04-14"
AFTER = dt.date(2026, 3, 20)
CODE = "test.monthly"


def access(user):
    return core_access(User.get_by_id(user.id))


def send(frozen_clock, at, reporter, report):
    """Fill and submit ``report`` as ``reporter`` with the clock at ``at`` (UTC)."""
    frozen_clock(at)
    who = access(reporter)
    saved = rd.save(who, report.id, {("lua", "cur"): (rd.MISSING, "12"), ("ngo", "cur"): (rd.MISSING, "3")})
    wf.submit(who, report.id, revision=saved.revision)


def build_world(frozen_clock, make_regime, unit_tree, make_user) -> dict:
    """Five units report to the department: Gio Linh sends at 23:30 on the deadline day (Vietnam
    time) and is accepted, Cam Lộ sends early and is returned, Ba Lòng sends 30 minutes after
    midnight (late), Hướng Hiệp keeps a draft, and the district Đakrông has not started. The clock
    is left at 20/03/2026, three days after the deadline."""
    frozen_clock(OPENED)
    with db.connection_context():
        balong = Unit.create(code="44.BALONG", name="Xã Ba Lòng", kind="commune", parent=unit_tree.province)
        huonghiep = Unit.create(code="44.HUONGHIEP", name="Xã Hướng Hiệp", kind="commune", parent=unit_tree.province)
        dakrong = Unit.create(code="44.DAKRONG", name="Huyện Đakrông", kind="district", parent=unit_tree.province)
    issued = make_regime(kinds=("commune", "district"))
    gio, cam = unit_tree.communes
    users = {"receiver": make_user(unit=unit_tree.department, roles=("receiver",))[0],
             "viewer": make_user(unit=unit_tree.province, roles=("viewer",))[0],
             "gio": make_user(unit=gio, roles=("reporter",))[0],
             "cam": make_user(unit=cam, roles=("reporter",))[0],
             "balong": make_user(unit=balong, roles=("reporter",))[0],
             "huonghiep": make_user(unit=huonghiep, roles=("reporter",))[0],
             "admin": make_user(is_admin=True)[0]}
    with db.connection_context():
        reports = {name: issued.report_of(unit) for name, unit in
                   (("gio", gio), ("cam", cam), ("balong", balong), ("huonghiep", huonghiep), ("dakrong", dakrong))}
        assert {r.deadline for r in reports.values()} == {DEADLINE}
        send(frozen_clock, dt.datetime(2026, 3, 17, 16, 30), users["gio"], reports["gio"])  # 23:30 on the 17th
        send(frozen_clock, dt.datetime(2026, 3, 10, 2, 0), users["cam"], reports["cam"])
        send(frozen_clock, dt.datetime(2026, 3, 17, 17, 30), users["balong"], reports["balong"])  # 00:30 on the 18th
        frozen_clock(dt.datetime(2026, 3, 18, 2, 0))
        rd.save(access(users["huonghiep"]), reports["huonghiep"].id, {("lua", "cur"): (rd.MISSING, "1")})
        wf.accept(access(users["receiver"]), reports["gio"].id)
        wf.return_report(access(users["receiver"]), reports["cam"].id, "Thiếu số liệu ngô")
        frozen_clock(dt.datetime(2026, 3, 20, 2, 0))
    return {"regime": issued, "tree": unit_tree, "users": users, "reports": reports,
            "units": {"balong": balong, "huonghiep": huonghiep, "dakrong": dakrong, "gio": gio, "cam": cam}}


@pytest.fixture
def world(frozen_clock, make_regime, unit_tree, make_user):
    built = build_world(frozen_clock, make_regime, unit_tree, make_user)
    with db.connection_context():
        yield built


def view(who, today=AFTER, **filters):
    filters.setdefault("regime", CODE)
    return cp.period_view(access(who), cp.Filters(**filters), today=today)


def test_on_time_late_not_sent_returned_and_accepted_by_the_deadline(world):
    v = view(world["users"]["receiver"])
    assert v.period.key == MARCH
    t = v.totals
    assert (t.expected, t.on_time, t.late, t.returned, t.not_submitted, t.overdue, t.accepted) == (5, 1, 1, 1, 2, 3, 1)
    assert t.submitted == 2 and t.expected == t.on_time + t.late + t.returned + t.not_submitted
    assert (t.submitted_rate, t.on_time_rate, t.accepted_rate) == (Decimal("40.0"), Decimal("20.0"), Decimal("20.0"))
    states = {r.unit_code: (r.state, r.overdue, r.timeliness) for r in v.rows}
    assert states == {"44.GIOLINH": ("accepted", False, "on_time"),  # 23:30 on the deadline day: on time
                      "44.CAMLO": ("returned", True, "on_time"),  # sent back: to send again, now past the deadline
                      "44.BALONG": ("late", False, "late"),  # 00:30 the next day in Vietnam: late
                      "44.HUONGHIEP": ("not_submitted", True, None),
                      "44.DAKRONG": ("not_submitted", True, None)}


def test_before_the_deadline_nothing_is_overdue(world):
    before = view(world["users"]["receiver"], today=DEADLINE, period=MARCH)
    assert before.totals.overdue == 0 and not any(r.overdue for r in before.rows)
    assert before.totals.not_submitted == 2  # still not sent, but not late yet


def test_by_level_and_the_rows_agree_with_the_grouped_counts(world):
    v = view(world["users"]["receiver"])
    levels = dict(v.levels)
    assert list(levels) == ["district", "commune"]  # in the order of the unit kinds
    assert (levels["commune"].expected, levels["commune"].submitted, levels["commune"].overdue) == (4, 2, 2)
    assert (levels["district"].expected, levels["district"].not_submitted, levels["district"].submitted_rate) == (
        1, 1, Decimal("0.0"))
    # The word each row shows (counted in Python) and the grouped query (counted in SQL) agree.
    for state in cp.STATES:
        rows = view(world["users"]["receiver"], status=state).rows
        assert len(rows) == v.totals.of(state), state
        assert all(state in (r.state, "overdue" if r.overdue else "", r.timeliness if r.state == "accepted" else "")
                   for r in rows), state


def test_filters_sort_and_pages(world, monkeypatch):
    receiver = world["users"]["receiver"]
    assert [r.unit_code for r in view(receiver, status="overdue", sort="unit").rows] == [
        "44.DAKRONG", "44.CAMLO", "44.HUONGHIEP"]
    district = view(receiver, level="district")
    assert [r.unit_code for r in district.rows] == ["44.DAKRONG"] and district.shown.expected == 1
    assert district.totals.expected == 5  # the summary stays the period's
    found = view(receiver, q="huong hiep")  # diacritics ignored
    assert [r.unit_code for r in found.rows] == ["44.HUONGHIEP"] and found.shown.not_submitted == 1
    assert view(receiver, q="không có xã này").rows == []
    # The most urgent first: overdue and never sent, returned, late, on time, accepted.
    by_status = [r.unit_code for r in view(receiver, sort="status").rows]
    assert by_status[:2] == ["44.DAKRONG", "44.HUONGHIEP"] and by_status[2:] == ["44.CAMLO", "44.BALONG", "44.GIOLINH"]
    assert [r.unit_code for r in view(receiver, sort="-status").rows][0] == "44.GIOLINH"
    sent = [r.unit_code for r in view(receiver, sort="submitted").rows]
    assert sent[:3] == ["44.CAMLO", "44.GIOLINH", "44.BALONG"]  # the never sent last
    assert [r.unit_code for r in view(receiver, sort="-submitted").rows][:3] == ["44.BALONG", "44.GIOLINH", "44.CAMLO"]
    monkeypatch.setattr(cp, "PAGE_SIZE", 2)
    pages = [cp.period_view(access(receiver), cp.Filters(regime=CODE, page=n), today=AFTER, limit=2) for n in (1, 2, 3)]
    assert [len(p.rows) for p in pages] == [2, 2, 1] and pages[0].pages == 3 and pages[0].total == 5
    assert len({r.unit_code for p in pages for r in p.rows}) == 5


def test_filters_read_from_a_query_string():
    f = cp.Filters.from_params({"regime": " test.monthly ", "status": "bogus", "level": "commune", "sort": "-status",
                                "page": "²", "year": "20266", "q": "  Ba   Lòng "})
    assert (f.regime, f.status, f.level, f.sort, f.page, f.year, f.q) == (
        "test.monthly", "", "commune", "-status", 1, None, "Ba Lòng")
    assert cp.Filters.from_params({"sort": "drop table"}).sort == "unit"
    assert f.params(page=2) == {"regime": "test.monthly", "level": "commune", "q": "Ba Lòng", "sort": "-status",
                                "page": "2"}
    assert cp.parse_period("2026-03-15/2026-04-14") == (dt.date(2026, 3, 15), dt.date(2026, 4, 14))
    assert cp.parse_period("2026-04-14/2026-03-15") is None and cp.parse_period("x") is None


def test_the_default_period_is_the_latest_whose_deadline_has_passed(world, frozen_clock):
    frozen_clock(dt.datetime(2026, 3, 20, 2, 0))
    opened = open_due_periods(dt.date(2026, 3, 20))
    assert opened.reports == 5  # April's window (15/03 – 14/04) has started
    receiver = world["users"]["receiver"]
    v = view(receiver)
    assert v.period.key == MARCH and [p.key for p in v.periods] == [APRIL, MARCH]
    assert view(receiver, today=dt.date(2026, 4, 30)).period.key == APRIL
    assert view(receiver, period=APRIL).totals.expected == 5
    # No period due yet at all: the latest one.
    assert cp.default_period(v.periods, dt.date(2026, 1, 1)).key == APRIL


def test_the_year_view_counts_each_unit_over_its_periods(world, frozen_clock):
    frozen_clock(dt.datetime(2026, 3, 20, 2, 0))
    open_due_periods(dt.date(2026, 3, 20))
    receiver = world["users"]["receiver"]
    y = cp.year_view(access(receiver), cp.Filters(regime=CODE), today=dt.date(2026, 4, 30))
    assert y.year == 2026 and y.years == [2026]
    assert [p.key for p, _ in y.periods] == [MARCH, APRIL]
    march, april = (c for _, c in y.periods)
    assert (march.expected, march.submitted, april.expected, april.submitted, april.overdue) == (5, 2, 5, 0, 5)
    assert (y.totals.expected, y.totals.submitted, y.totals.submitted_rate) == (10, 2, Decimal("20.0"))
    rows = {r.unit_code: r for r in y.rows}
    assert y.total == 5 and rows["44.GIOLINH"].counts.submitted_rate == Decimal("50.0")
    assert rows["44.GIOLINH"].cells[MARCH].state == "accepted" and rows["44.GIOLINH"].cells[APRIL].overdue
    assert rows["44.DAKRONG"].counts.submitted == 0
    assert y.periods[0][0].short_label("vi") == "Tháng 3" and y.periods[1][0].short_label("en") == "Apr"
    only = cp.year_view(access(receiver), cp.Filters(regime=CODE, year=2026, level="district"), today=AFTER)
    assert [r.unit_code for r in only.rows] == ["44.DAKRONG"] and only.total == 1
    with pytest.raises(NotFound):
        cp.year_view(access(receiver), cp.Filters(regime=CODE, year=2020), today=AFTER)


def test_the_overview_gives_each_regime_its_due_period(world, make_regime, unit_tree, frozen_clock):
    frozen_clock(dt.datetime(2026, 3, 20, 2, 0))
    open_due_periods(dt.date(2026, 3, 20))
    lines = cp.overview(access(world["users"]["receiver"]), today=AFTER)
    assert [(line.regime.code, line.period.key, line.counts.expected, line.counts.submitted) for line in lines] == [
        (CODE, MARCH, 5, 2)]
    assert lines[0].regime.name == world["regime"].regime.name


def test_a_unit_and_its_reports(world):
    receiver = world["users"]["receiver"]
    u = cp.unit_view(access(receiver), world["units"]["gio"].id, today=AFTER)
    assert [r.report_id for r in u.reports] == [world["reports"]["gio"].id]
    assert (u.counts.expected, u.counts.accepted, u.counts.on_time) == (1, 1, 1)
    assert [r.code for r in u.regimes] == [CODE] and u.years == [2026]
    assert cp.unit_view(access(receiver), world["units"]["gio"].id, regime=CODE, year=2026, today=AFTER).reports
    with pytest.raises(NotFound):
        cp.unit_view(access(receiver), world["units"]["gio"].id, regime="other.code")
    with pytest.raises(NotFound):
        cp.unit_view(access(receiver), 999_999)


def test_who_sees_what(world, make_regime, make_user, unit_tree):
    users = world["users"]
    # The province's viewer (core.unit.view over the province) counts every unit under it.
    assert view(users["viewer"]).totals.expected == 5
    # A commune's reporter sees its own unit only.
    own = view(users["balong"])
    assert [r.unit_code for r in own.rows] == ["44.BALONG"] and own.totals.expected == 1
    with pytest.raises(NotFound):
        cp.unit_view(access(users["balong"]), world["units"]["gio"].id)
    # The administrator sees everything.
    assert view(users["admin"]).totals.expected == 5
    # Another province sees nothing: the regime does not exist for it.
    with db.connection_context():
        other = Unit.create(code="45", name="Tỉnh Khác", kind="province")
    outsider, _ = make_user(unit=other, roles=("receiver", "viewer"))
    with pytest.raises(NotFound):
        view(outsider)
    assert cp.overview(access(outsider)) == [] and cp.regime_choices(access(outsider)) == []
    with pytest.raises(NotFound):
        cp.unit_view(access(outsider), world["units"]["gio"].id)
    # A receiver sees what it receives, not what another unit receives: a regime the province
    # receives is out of the department receiver's sight (it views only its own subtree).
    make_regime("test.province", name="Báo cáo gửi tỉnh", receiver=unit_tree.province)
    with pytest.raises(NotFound):
        view(users["receiver"], regime="test.province")
    assert [r.code for r in cp.regime_choices(access(users["receiver"]))] == [CODE]
    assert {r.code for r in cp.regime_choices(access(users["viewer"]))} == {CODE, "test.province"}
    # core.report.receive alone counts what is received below the grant (the queue's rule): at the
    # province, both regimes (the department lies under it); at an office receiving nothing, none.
    from core.accounts.access import Grant, Role, RolePermission

    with db.connection_context():
        office = Unit.create(code="44.VP", name="Văn phòng", kind="agency", parent=unit_tree.province)
        role = Role.create(code="receive_only", name="Chỉ tiếp nhận")
        RolePermission.create(role=role, code="core.report.receive")
    clerk, _ = make_user(unit=office)
    office_clerk, _ = make_user(unit=office)
    with db.connection_context():
        Grant.create(user=clerk, role=role, unit=unit_tree.province)
        Grant.create(user=office_clerk, role=role, unit=office)
    assert view(clerk, regime="test.province").totals.expected == 4  # the four communes report to the province
    assert view(clerk).totals.expected == 5
    for code in (CODE, "test.province"):
        with pytest.raises(NotFound):
            view(office_clerk, regime=code)


def test_overdue_units_are_those_a_reminder_is_for(world):
    late = cp.overdue_units(access(world["users"]["receiver"]), CODE, MARCH, today=AFTER)
    assert sorted(r.unit_code for r in late) == ["44.CAMLO", "44.DAKRONG", "44.HUONGHIEP"]


def test_the_workbook_holds_numbers_as_numbers(world):
    import openpyxl

    from core.i18n import core_catalog

    catalog = core_catalog()
    v = cp.period_view(access(world["users"]["receiver"]), cp.Filters(regime=CODE), today=AFTER, limit=None)
    data = cp.period_workbook(v, lambda key, **p: catalog.gettext("vi", key, **p), "vi")
    book = openpyxl.load_workbook(io.BytesIO(data))
    summary, units = book["Tổng hợp"], book["Đơn vị"]
    rows = [[c.value for c in row] for row in summary.iter_rows()]
    head = next(i for i, row in enumerate(rows) if row[1] == "Phải gửi")
    assert rows[head][:4] == ["Cấp", "Phải gửi", "Đã gửi", "Đúng hạn"]
    total = next(row for row in rows if row[0] == "Tổng cộng")
    assert total[1:9] == [5, 2, 1, 1, 1, 2, 3, 1]
    assert total[9] == pytest.approx(0.4) and summary.cell(head + 3, 10).number_format == "0.0%"
    lines = [[c.value for c in row] for row in units.iter_rows()]
    assert lines[0][:3] == ["STT", "Mã đơn vị", "Đơn vị"]
    assert {row[1]: row[6] for row in lines[1:]}["44.BALONG"] == "Trễ hạn"
    assert isinstance(lines[1][4], dt.datetime) and lines[1][4].date() == DEADLINE  # a date, not a text


def test_a_period_page_costs_the_same_few_queries_for_100_units(frozen_clock, make_regime, unit_tree, make_user):
    frozen_clock(OPENED)
    with db.connection_context():
        for n in range(98):  # with the kit's two, 100
            Unit.create(code=f"44.X{n:02d}", name=f"Xã Số {n:02d}", kind="commune", parent=unit_tree.province)
    issued = make_regime()
    receiver, _ = make_user(unit=unit_tree.department, roles=("receiver",))
    with db.connection_context():
        reports = list(Report.select().where(Report.regime == issued.regime.id).order_by(Report.id))
        assert len(reports) == 100
        sent = [r.id for r in reports[:40]]
        Report.update(status="submitted", submitted_at=OPENED).where(Report.id.in_(sent)).execute()
        who = access(receiver)
        with QueryCounter(db.obj) as counter:
            counter.start()
            v = cp.period_view(who, cp.Filters(regime=CODE), today=AFTER)
            statements = counter.stop()
        assert v.totals.submitted == 40 and v.totals.overdue == 60 and len(v.rows) == 100
        # The subtrees of the two rights, the regime, its periods, the counts by level, the rows; the
        # year reads its periods once, then counts per period, the units, their counts and their cells.
        assert len(statements) == 6, "\n".join(statements)
        with QueryCounter(db.obj) as counter:
            counter.start()
            y = cp.year_view(who, cp.Filters(regime=CODE), today=AFTER)
            year_statements = counter.stop()
        assert y.total == 100 and len(year_statements) == 8, "\n".join(year_statements)
