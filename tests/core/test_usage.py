"""The usage report (issue 14 item 7, Điều 9.3c): per unit and month, accounts, logins, reports due,
sent on time or late, returned and the average days to send; months in the instance's time zone;
a unit administrator's subtree only; a handful of grouped queries whatever the number of units.
Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from core import audit, clock, usage
from core.accounts import login as accounts
from core.accounts.permissions import core_access
from core.db import db
from core.errors import NotFound
from core.models import Unit, User
from core.reporting import data as rd
from core.reporting import workflow as wf
from core.reporting.opening import Report
from core.reporting.versions import ReportEvent, ReportVersion

JAN, FEB, MAR = usage.Month(2026, 1), usage.Month(2026, 2), usage.Month(2026, 3)


@pytest.fixture
def conn(app):
    with db.connection_context():
        yield db


def at(text: str) -> dt.datetime:
    """A stored time: naive UTC."""
    return dt.datetime.fromisoformat(text)


def user_at(unit, name: str, *, created: str = "2025-06-01 00:00", active: bool = True) -> User:
    return User.create(username=name, full_name=f"Người dùng {name}", password_hash="x", unit=unit,
                       is_active=active, created_at=at(created))


def log_in_at(user: User, when: str, **details) -> None:
    """A successful login recorded at ``when`` (UTC), as core.accounts.login records it."""
    with clock.freeze(at(when)):
        audit.record("auth.login", actor=user, object_type="user", object_id=user.id, details=details or None)


def add_report(regime, unit, period_end: dt.date, deadline: dt.date, *, sent: str | None = None, late=False,
               resent_late=False, sent_back: str | None = None, kind="unit") -> Report:
    source = regime.reports[0]
    report = Report.create(regime=regime.regime.id, unit=unit, frequency="monthly", year=period_end.year,
                           period_index=period_end.month, period_start=period_end.replace(day=1),
                           period_end=period_end, nominal_deadline=deadline, deadline=deadline,
                           status="submitted" if sent else "not_started", form_version=source.form_version_id,
                           kind=kind)
    if sent:
        ReportVersion.create(report=report, number=1, form_version=source.form_version_id, revision=1,
                             submitted_at=at(sent), deadline=deadline, late=late, canonical="{}", sha256="0" * 64)
        if resent_late:  # sent again after a return, past the deadline: the first sending counts
            ReportVersion.create(report=report, number=2, form_version=source.form_version_id, revision=3,
                                 submitted_at=at(sent) + dt.timedelta(days=30), deadline=deadline, late=True,
                                 canonical="{}", sha256="1" * 64)
    if sent_back:
        ReportEvent.create(report=report, action=sent_back, reason="Số liệu chưa khớp")
    return report


def admin() -> object:
    """The operator: a system administrator (their own account dates from long after the months read)."""
    user = User.get_or_none(User.username == "vanhanh") or User.create(
        username="vanhanh", full_name="Quản trị hệ thống", password_hash="x",
        unit=Unit.select().order_by(Unit.id).first(), is_admin=True, created_at=at("2030-01-01 00:00"))
    return core_access(user)


def row_of(report: usage.Usage, unit) -> usage.UnitUsage:
    return next(r for r in report.units if r.unit.id == unit.id)


# -- months ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, month", [("2026-03", MAR), ("03/2026", MAR), ("3/2026", MAR), (" 2026-3 ", MAR),
                                         ("2026-13", None), ("13/2026", None), ("1999-12", None), ("", None),
                                         ("²/2026", None), ("2026-03-01", None), ("a" * 5000, None)])
def test_a_month_is_read_as_a_browser_sends_it_or_as_written_in_vietnam(text, month):
    assert usage.parse_month(text) == month


def test_the_default_month_is_last_month_in_the_instances_time_zone(frozen_clock):
    frozen_clock(at("2026-03-31 17:30"))  # 00:30 on 1 April in Vietnam: March is last month
    assert usage.last_month() == MAR
    frozen_clock(at("2026-03-31 16:30"))  # still 31 March in Vietnam
    assert usage.last_month() == FEB
    assert usage.month_span(FEB, 3) == [usage.Month(2025, 12), JAN, FEB]
    assert JAN.utc_start == at("2025-12-31 17:00") and JAN.utc_end == at("2026-01-31 17:00")


# -- accounts and logins -------------------------------------------------------------------------

def test_logins_count_in_the_local_month_and_the_second_factor_step_counts_once(conn, unit_tree):
    commune = unit_tree.communes[0]
    lan = user_at(commune, "lan")
    log_in_at(lan, "2026-01-31 16:59")  # 23:59 on 31 January in Vietnam: January
    log_in_at(lan, "2026-01-31 23:30")  # 06:30 on 1 February in Vietnam: February, not January
    log_in_at(lan, "2026-02-10 01:00", second_factor="pending")  # the password step of a 2FA login...
    log_in_at(lan, "2026-02-10 01:01", second_factor="totp")  # ...and the login: one
    with clock.freeze(at("2026-02-11 01:00")):
        audit.record("auth.login_failed", result="failed", unit=commune.id, object_type="user", object_id=lan.id)
    report = usage.compute(admin(), FEB, 2)
    row = row_of(report, commune)
    assert [m.logins for m in row.months] == [1, 2]
    assert [m.accounts_logged_in for m in row.months] == [1, 1]
    assert row.total.logins == 3 and row.total.accounts_logged_in == 1  # one person over the two months
    assert row_of(usage.compute(admin(), JAN), commune).total.logins == 1


def test_accounts_are_the_enabled_ones_created_before_the_months_end(conn, unit_tree):
    commune = unit_tree.communes[1]
    old = user_at(commune, "cu", created="2025-05-01 00:00")
    user_at(commune, "tat", created="2025-05-01 00:00", active=False)  # disabled: not counted
    user_at(commune, "moi", created="2026-01-31 18:00")  # 1 February in Vietnam: from February on
    log_in_at(old, "2026-01-05 02:00")
    log_in_at(old, "2026-01-06 02:00")
    report = usage.compute(admin(), FEB, 2)
    row = row_of(report, commune)
    assert [m.accounts for m in row.months] == [1, 2]
    assert [(m.logins, m.accounts_logged_in) for m in row.months] == [(2, 1), (0, 0)]
    assert row.total.accounts == 2  # as at the end of the range


def test_a_login_of_an_account_moved_or_disabled_since_stays_with_the_unit_it_was_made_in(conn, unit_tree):
    gio_linh, cam_lo = unit_tree.communes
    moved = user_at(gio_linh, "chuyen")
    log_in_at(moved, "2026-01-10 02:00")
    User.update(unit=cam_lo).where(User.id == moved.id).execute()
    row = row_of(usage.compute(admin(), JAN), gio_linh)
    # The login happened at Gio Linh; the account is no longer one of its accounts.
    assert (row.total.logins, row.total.accounts_logged_in, row.total.accounts) == (1, 0, 0)


# -- reports -------------------------------------------------------------------------------------

def test_reports_due_on_time_late_returned_and_average_days(conn, unit_tree, issued_regime):
    commune = unit_tree.communes[0]
    # Due in January 2026 (deadlines 5 and 20 January), December's and a mid-month period.
    add_report(issued_regime, commune, dt.date(2025, 12, 31), dt.date(2026, 1, 5),
               sent="2026-01-02 03:00", late=False, sent_back="return", resent_late=True)  # 2 days
    add_report(issued_regime, commune, dt.date(2025, 11, 30), dt.date(2026, 1, 20),
               sent="2025-12-04 18:00", late=False)  # 01:00 on 5 December in Vietnam: 5 days
    add_report(issued_regime, commune, dt.date(2025, 10, 31), dt.date(2026, 1, 31),
               sent="2026-02-02 01:00", late=True, sent_back="reopen")  # 94 days, late
    add_report(issued_regime, commune, dt.date(2025, 9, 30), dt.date(2026, 1, 31))  # never sent
    # Not due in January: February's deadline, and a consolidated report.
    add_report(issued_regime, commune, dt.date(2026, 1, 31), dt.date(2026, 2, 1), sent="2026-01-31 20:00")
    add_report(issued_regime, commune, dt.date(2025, 8, 31), dt.date(2026, 1, 10), kind="consolidated")
    report = usage.compute(admin(), FEB, 2)
    january, february = row_of(report, commune).months
    assert (january.due, january.on_time, january.late, january.not_submitted, january.returned) == (4, 2, 1, 1, 2)
    assert january.average_days == round((2 + 5 + 94) / 3, 1)
    # Sent at 03:00 on 1 February in Vietnam for a period ending 31 January: 1 day, on time.
    assert (february.due, february.on_time, february.average_days) == (1, 1, 1.0)
    assert report.total.due == 5 and report.total.days_count == 4


def test_the_workflow_records_what_the_report_reads(conn, unit_tree, issued_regime, make_user, frozen_clock):
    commune = unit_tree.communes[0]
    report = issued_regime.report_of(commune)
    reporter, _ = make_user(unit=commune, roles=("reporter",))
    receiver, _ = make_user(unit=unit_tree.department, roles=("receiver",))
    frozen_clock(local_noon(report.deadline + dt.timedelta(days=1)))
    saved = rd.save(core_access(reporter), report.id, {("lua", "cur"): (rd.MISSING, "10"),
                                                        ("ngo", "cur"): (rd.MISSING, "2")})
    wf.submit(core_access(reporter), report.id, revision=saved.revision)
    wf.return_report(core_access(receiver), report.id, "Thiếu số liệu ngô")
    figures = row_of(usage.compute(admin(), usage.Month.of(report.deadline)), commune).total
    assert (figures.due, figures.on_time, figures.late, figures.returned) == (1, 0, 1, 1)
    assert figures.average_days == (report.deadline - report.period_end).days + 1


def local_noon(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(12), tzinfo=clock.zone()).astimezone(dt.timezone.utc).replace(tzinfo=None)


# -- who sees what -------------------------------------------------------------------------------

def test_a_unit_administrator_sees_only_their_subtree(conn, unit_tree, make_user):
    department_admin, _ = make_user(unit=unit_tree.department, roles=("unit_admin",))
    access = core_access(department_admin)
    report = usage.compute(access, JAN)
    assert [r.unit.id for r in report.units] == [unit_tree.department.id] and not report.everything
    for other in (unit_tree.province, unit_tree.communes[0]):
        with pytest.raises(NotFound):
            usage.compute(access, JAN, unit_id=other.id)
    with pytest.raises(NotFound):
        usage.compute(access, JAN, unit_id=10 ** 9)
    province_admin, _ = make_user(unit=unit_tree.province, roles=("unit_admin",))
    everyone = usage.compute(core_access(province_admin), JAN)
    # Parents before children, siblings by kind then name.
    assert [r.unit.code for r in everyone.units] == ["44", "44.SNNMT", "44.CAMLO", "44.GIOLINH"]
    assert [r.depth for r in everyone.units] == [0, 1, 1, 1]
    narrowed = usage.compute(core_access(province_admin), JAN, unit_id=unit_tree.department.id)
    assert narrowed.root.id == unit_tree.department.id and len(narrowed.units) == 1


def test_grants_at_a_unit_and_below_it_show_each_unit_once(conn, unit_tree, make_user):
    from core.accounts.access import Grant, Role

    person, _ = make_user(unit=unit_tree.province, roles=("unit_admin",))
    Grant.create(user=person, role=Role.get(Role.code == "unit_admin"), unit=unit_tree.department)
    report = usage.compute(core_access(person), JAN)
    assert sorted(r.unit.id for r in report.units) == sorted(u.id for u in unit_tree.all)
    assert [u.id for u in report.tops] == [unit_tree.province.id]
    assert usage.scope_label(report, "vi") == "Tỉnh Quảng Trị và các đơn vị trực thuộc"


def test_the_operator_sees_every_unit_with_totals_by_level(conn, unit_tree):
    other = Unit.create(code="45", name="Tỉnh Khác", kind="province")
    user_at(other, "khac")
    for commune in unit_tree.communes:
        user_at(commune, f"xa{commune.id}")
    report = usage.compute(admin(), JAN)
    assert report.everything and {r.unit.code for r in report.units} >= {"44", "45", "44.GIOLINH"}
    by_kind = {k.kind: (k.units, k.total.accounts) for k in report.by_kind}
    assert by_kind["commune"] == (2, 2) and by_kind["province"][0] == 2
    assert [k.kind for k in report.by_kind] == ["province", "department", "commune"]
    assert report.total.accounts == sum(k.total.accounts for k in report.by_kind)


def test_a_unit_that_no_longer_existed_shows_only_with_figures(conn, unit_tree):
    gone = Unit.create(code="44.CU", name="Xã Cũ", kind="commune", parent=unit_tree.province,
                       valid_to=dt.date(2025, 6, 30))
    ended = Unit.create(code="44.CU2", name="Xã Cũ 2", kind="commune", parent=unit_tree.province,
                        valid_to=dt.date(2025, 6, 30))
    log_in_at(user_at(ended, "cu2", active=False), "2026-01-03 02:00")
    codes = {r.unit.code for r in usage.compute(admin(), JAN).units}
    assert gone.code not in codes and ended.code in codes


# -- cost ----------------------------------------------------------------------------------------

class Statements:
    """Counts the statements the database runs (every peewee query goes through ``execute_sql``)."""

    def __init__(self):
        self.sql: list[str] = []
        self._lock = threading.Lock()

    def __enter__(self):
        original = db.obj.execute_sql

        def counted(sql, params=None, *args, **kwargs):
            with self._lock:
                self.sql.append(sql)
            return original(sql, params, *args, **kwargs)

        db.obj.execute_sql = counted
        return self

    def __exit__(self, *exc):
        del db.obj.execute_sql


def test_a_hundred_units_cost_a_handful_of_queries(conn, unit_tree, issued_regime, make_user):
    communes = [Unit.create(code=f"44.X{i:03d}", name=f"Xã số {i}", kind="commune", parent=unit_tree.province)
                for i in range(96)]
    units = unit_tree.all + communes
    assert len(units) == 100
    for i, unit in enumerate(units):
        person = user_at(unit, f"nd{i:03d}")
        log_in_at(person, "2026-01-15 02:00")
        add_report(issued_regime, unit, dt.date(2025, 12, 31), dt.date(2026, 1, 6), sent="2026-01-03 02:00")
    province_admin, _ = make_user(unit=unit_tree.province, roles=("unit_admin",))
    access = core_access(province_admin)
    for months, budget in ((1, 5), (12, 6)):
        with Statements() as counted:
            report = usage.compute(access, JAN, months)
        # The units, the accounts, the logins by month, (over several months: the people over the
        # range,) the reports, the problems and proposals sent.
        assert len(counted.sql) <= budget, counted.sql
        assert len(report.units) == 100 and report.total.logins == 100 and report.total.due == 100
    with Statements() as counted:
        narrowed = usage.compute(access, JAN, unit_id=unit_tree.province.id)
    # Narrowed to a unit: its ancestors first (the right is held there, and it exists).
    assert len(counted.sql) <= 6 and len(narrowed.units) == 100


# -- exports -------------------------------------------------------------------------------------

def test_the_excel_file_holds_numbers_under_vietnamese_headers(conn, unit_tree, issued_regime):
    import io

    from openpyxl import load_workbook

    commune = unit_tree.communes[0]
    log_in_at(user_at(commune, "xuat"), "2026-01-15 02:00")
    add_report(issued_regime, commune, dt.date(2025, 12, 31), dt.date(2026, 1, 6), sent="2026-01-03 02:00")
    add_report(issued_regime, commune, dt.date(2025, 11, 30), dt.date(2026, 1, 6))
    report = usage.compute(admin(), FEB, 2, unit_id=commune.id)
    book = load_workbook(io.BytesIO(usage.workbook(report, "vi", scope="Tất cả các đơn vị", by="Quản trị",
                                                   now=at("2026-03-02 03:00"))))
    assert book.sheetnames == ["Tổng hợp", "Tháng 2026-01", "Tháng 2026-02", "Cả thời gian"]
    sheet = book["Tháng 2026-01"]
    rows = list(sheet.iter_rows(values_only=True))
    header = next(r for r in rows if r and r[0] == "STT")
    assert list(header[5:]) == ["Tài khoản đang hoạt động", "Trong đó: có đăng nhập", "Lượt đăng nhập",
                                "Báo cáo đến hạn", "Gửi đúng hạn", "Gửi trễ hạn", "Chưa gửi", "Bị trả lại",
                                "Số ngày gửi bình quân", "Phản ánh lỗi, sự cố", "Góp ý, đề xuất"]
    line = next(r for r in rows if r and r[1] == commune.code)
    assert list(line[5:]) == [1, 1, 1, 2, 1, 0, 1, 0, 3, 0, 0]
    assert all(isinstance(v, int) for v in line[5:13]) and isinstance(line[13], (int, float))
    total = next(r for r in rows if r and r[2] == "Tổng cộng")
    assert total[5:] == (1, 1, 1, 2, 1, 0, 1, 0, 3, 0, 0)
    summary = list(book["Tổng hợp"].iter_rows(values_only=True))
    assert any(r and r[0] == "01/2026" and r[1:6] == (1, 1, 1, 1, 2) for r in summary)
    assert any(r and r[0] == "02/2026" and r[1:6] == (1, 1, 0, 0, 0) for r in summary)
    assert any(r and r[0] == "Xã, phường, đặc khu" and r[1] == 1 for r in summary)


def test_the_csv_file_has_one_line_per_unit_and_month(conn, unit_tree):
    Unit.update(name="=HYPERLINK(\"x\")").where(Unit.id == unit_tree.communes[0].id).execute()
    text = usage.csv_bytes(usage.compute(admin(), FEB, 2), "vi").decode("utf-8")
    lines = text.lstrip("\ufeff").splitlines()
    assert lines[0].startswith("Tháng,Mã đơn vị,Đơn vị,Cấp đơn vị,Tài khoản đang hoạt động,")
    assert len(lines) == 1 + 2 * 4
    assert sum('"\'=HYPERLINK(""x"")"' in line for line in lines) == 2  # kept as text, never a formula


def test_problems_and_proposals_sent_by_the_units_people_are_counted_per_local_month(conn, unit_tree, settings):
    """Điều 9.3c: the usage report carries what each unit's people sent through "Phản ánh, góp ý"."""
    from core import feedback

    commune = unit_tree.communes[0]
    lan = user_at(commune, "lan")
    for when, kind in (("2026-01-31 16:30", "problem"),  # 23:30 on 31 January in Vietnam
                       ("2026-01-31 17:30", "problem"),  # 00:30 on 1 February in Vietnam
                       ("2026-02-12 02:00", "proposal")):
        with clock.freeze(at(when)):
            feedback.submit(core_access(lan), kind=kind, title="Tiêu đề", description="Nội dung", settings=settings)
    report = usage.compute(admin(), FEB, 2)
    january, february = row_of(report, commune).months
    assert (january.problems, january.proposals) == (1, 0)
    assert (february.problems, february.proposals) == (1, 1)
    assert (row_of(report, commune).total.problems, report.total.proposals) == (2, 1)
    assert usage.COLUMNS[-2:] == ("problems", "proposals")
