"""The home page as a work list (issue 14 item 2): a commune's reporter finds its report with the
working days left and, once returned, first with the reason; the department's receiver the report
to review and its notification; the late units after the deadline; each row one click from its
page; nobody another unit's items; empty parts say so; the account and the plugins stay below.
Built with the kit's fixtures (web/testing.py). Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import parse_qs, urlsplit

import pytest

from core.accounts.permissions import core_access
from core.db import db
from core.models import User
from core.reporting import data as rd
from core.reporting import workflow as wf
from tests.web.test_autosave_queries import QueryCounter
from web.testing import csrf_from

OPENED = dt.datetime(2026, 3, 2, 3, 0)  # March 2026's window (15/02 – 14/03) is open
DEADLINE = dt.date(2026, 3, 17)  # the kit's rule "2wd": two working days after 14/03


@pytest.fixture
def kit(frozen_clock, make_regime, unit_tree, make_user):
    frozen_clock(OPENED)
    issued = make_regime()
    users = {}
    for name, unit, roles in (("reporter", unit_tree.communes[0], ("reporter",)),
                              ("other", unit_tree.communes[1], ("reporter",)),
                              ("receiver", unit_tree.department, ("receiver",))):
        users[name] = make_user(unit=unit, roles=roles)
    return {"regime": issued, "tree": unit_tree, "users": users,
            "report": issued.report_of(unit_tree.communes[0]),
            "other_report": issued.report_of(unit_tree.communes[1])}


def log_in(client, credentials):
    user, password = credentials
    client.cookies.clear()
    page = client.get("/login")
    answer = client.post("/login", data={"username": user.username, "password": password,
                                         "csrf_token": csrf_from(page.text)}, follow_redirects=False)
    assert answer.status_code == 303, answer.text[:500]
    return user


def as_user(credentials):
    return core_access(User.get_by_id(credentials[0].id))


def send(credentials, report):
    with db.connection_context():
        who = as_user(credentials)
        saved = rd.save(who, report.id, {("lua", "cur"): (rd.MISSING, "12"), ("ngo", "cur"): (rd.MISSING, "3")})
        wf.submit(who, report.id, revision=saved.revision)


def give_back(credentials, report, reason):
    with db.connection_context():
        wf.return_report(as_user(credentials), report.id, reason)


def part(html: str, name: str) -> str:
    """The section of the work list with id ``work-<name>`` ("" when the page has none)."""
    match = re.search(rf'<section class="card" id="work-{name}".*?</section>', html, re.S)
    return match.group(0) if match else ""


def test_the_reporter_sees_its_report_with_the_working_days_left(client, kit, frozen_clock):
    frozen_clock(dt.datetime(2026, 3, 13, 2, 0))  # Friday 13/03, 09:00 in Vietnam
    log_in(client, kit["users"]["reporter"])
    page = client.get("/")
    assert page.status_code == 200
    to_send = part(page.text, "to-send")
    report = kit["report"]
    assert f'href="/reports/{report.id}"' in to_send
    assert "Báo cáo tiến độ gieo trồng hằng tháng" in to_send and "Xã Gio Linh" in to_send
    assert "Còn 2 ngày làm việc" in to_send and "Hạn nộp 17/03/2026" in to_send and "Chưa thực hiện" in to_send
    # Not its job: reviewing, watching other units. Nothing unread, said plainly.
    assert part(page.text, "to-review") == "" and part(page.text, "late") == ""
    assert "Không có thông báo mới." in part(page.text, "unread")
    # What the home page showed before stays, below the list.
    assert page.text.index('id="worklist"') < page.text.index("Tài khoản") < page.text.index("Phân hệ đang dùng")
    # Its few styles come in a file of their own, fingerprinted as every static file.
    stylesheet = re.search(r'href="(/static/core/home\.css\?v=[0-9a-f]{12})"', page.text)
    assert stylesheet and "#worklist" in client.get(stylesheet.group(1)).text
    # One click: the link opens the report's entry page.
    assert client.get(f"/reports/{report.id}").status_code == 200
    # On the day itself, and after it (days later: a new session, the idle one has expired).
    frozen_clock(dt.datetime(2026, 3, 17, 2, 0))
    log_in(client, kit["users"]["reporter"])
    assert "Hôm nay là hạn chót" in part(client.get("/").text, "to-send")
    frozen_clock(dt.datetime(2026, 3, 20, 2, 0))
    log_in(client, kit["users"]["reporter"])
    assert "Trễ hạn 3 ngày" in part(client.get("/").text, "to-send")


def test_after_a_return_the_report_comes_first_with_the_reason(client, kit, make_regime, unit_tree):
    second = make_regime("test.second", name="Báo cáo thứ hai")
    later = second.report_of(unit_tree.communes[0])
    send(kit["users"]["reporter"], later)
    log_in(client, kit["users"]["reporter"])
    to_send = part(client.get("/").text, "to-send")
    assert f'data-report="{later.id}"' not in to_send  # sent: nothing to do until the receiver answers
    give_back(kit["users"]["receiver"], later, "Thiếu số liệu diện tích ngô.")
    page = client.get("/").text
    to_send = part(page, "to-send")
    rows = re.findall(r'<li data-report="(\d+)"', to_send)
    assert rows == [str(later.id), str(kit["report"].id)]
    assert "Sở Nông nghiệp và Môi trường trả lại, lý do:" in to_send and "Thiếu số liệu diện tích ngô." in to_send
    assert "Bị trả lại" in to_send
    # The return is also an unread notification, which opens the report in one click (and is read).
    unread = part(page, "unread")
    assert "Thiếu số liệu diện tích ngô." in unread and 'href="/notifications"' in unread
    action = re.search(r'action="(/notifications/\d+/open)"', unread).group(1)
    opened = client.post(action, data={"csrf_token": csrf_from(page)}, follow_redirects=False)
    assert opened.status_code == 303 and opened.headers["location"] == f"/reports/{later.id}"
    assert "Không có thông báo mới." in part(client.get("/").text, "unread")


def test_the_department_receiver_sees_the_report_to_review(client, kit):
    log_in(client, kit["users"]["receiver"])
    page = client.get("/").text
    assert "Không có báo cáo nào chờ xem xét." in part(page, "to-review")
    assert part(page, "to-send") == ""  # the receiver sends nothing
    send(kit["users"]["reporter"], kit["report"])
    page = client.get("/").text
    to_review = part(page, "to-review")
    review_url = f'/reports/{kit["report"].id}/review'
    assert f'href="{review_url}"' in to_review and "Xã Gio Linh" in to_review
    assert 'href="/inbox"' in to_review
    assert client.get(review_url).status_code == 200
    assert "Xã Gio Linh đã gửi báo cáo" in part(page, "unread")
    # The other commune has not sent, but its deadline has not passed: nobody is late yet.
    assert "Không có đơn vị nào trễ hạn." in part(page, "late")


def test_late_units_appear_after_the_deadline(client, kit, frozen_clock):
    send(kit["users"]["reporter"], kit["report"])
    frozen_clock(dt.datetime(2026, 3, 17, 9, 0))  # the deadline's day (16:00 in Vietnam)
    log_in(client, kit["users"]["receiver"])
    assert "Không có đơn vị nào trễ hạn." in part(client.get("/").text, "late")
    frozen_clock(dt.datetime(2026, 3, 18, 2, 0))
    log_in(client, kit["users"]["receiver"])
    late = part(client.get("/").text, "late")
    assert "1 đơn vị chưa gửi" in late and "Xã Cam Lộ" in late and "Xã Gio Linh" not in late
    link = re.search(r'<a href="(/inbox\?[^"]+)"', late).group(1).replace("&amp;", "&")
    assert parse_qs(urlsplit(link).query) == {"regime": ["test.monthly"], "period": ["2026-02-15/2026-03-14"],
                                              "late": ["1"]}
    queue = client.get(link)
    assert queue.status_code == 200 and f'data-report="{kit["other_report"].id}"' in queue.text
    # The late commune's reporter sees its own report, late, among the reports to send.
    log_in(client, kit["users"]["other"])
    page = client.get("/").text
    assert "Trễ hạn 1 ngày" in part(page, "to-send") and part(page, "late") == ""


def test_nobody_sees_another_units_items(client, kit, frozen_clock):
    send(kit["users"]["reporter"], kit["report"])
    give_back(kit["users"]["receiver"], kit["report"], "Lý do riêng của Gio Linh.")
    frozen_clock(dt.datetime(2026, 3, 18, 2, 0))
    log_in(client, kit["users"]["other"])
    page = client.get("/").text
    assert f'data-report="{kit["report"].id}"' not in page and "Lý do riêng của Gio Linh." not in page
    assert f'data-report="{kit["other_report"].id}"' in part(page, "to-send")
    assert "Xã Gio Linh" not in page.split('id="worklist"', 1)[1].split("Tài khoản", 1)[0]


def test_empty_parts_say_there_is_nothing_to_do(client, kit):
    send(kit["users"]["reporter"], kit["report"])
    log_in(client, kit["users"]["reporter"])
    page = client.get("/").text
    assert "Không có báo cáo nào cần gửi." in part(page, "to-send")
    assert "Không có thông báo mới." in part(page, "unread")


def test_the_list_speaks_english_too(client, kit):
    log_in(client, kit["users"]["reporter"])
    page = client.get("/")
    client.post("/lang", data={"lang": "en", "next": "/", "csrf_token": csrf_from(page.text)})
    english = client.get("/").text
    assert "Reports to send" in english and "working days left" in english and "No new notification." in english


def test_the_home_page_of_a_department_receiving_from_80_communes_stays_cheap(client, frozen_clock, make_regime,
                                                                             unit_tree, make_user):
    """The whole page, counted: the work list's queries (the grant's subtree, the reports to
    review, the late units, the unread notifications and the two reads that word them) do not
    grow with the 80 communes, 40 of them late."""
    from core import clock
    from core.models import Unit
    from core.reporting.notifications import Notification
    from core.reporting.opening import Report

    frozen_clock(OPENED)
    with db.connection_context():
        for n in range(78):
            Unit.create(code=f"44.X{n:02d}", name=f"Xã Số {n:02d}", kind="commune", parent=unit_tree.province)
    issued = make_regime()
    credentials = make_user(unit=unit_tree.department, roles=("receiver",))
    with db.connection_context():
        reports = list(Report.select().where(Report.regime == issued.regime.id).order_by(Report.id))
        sent = [r.id for r in reports[:40]]
        Report.update(status="submitted", submitted_at=OPENED).where(Report.id.in_(sent)).execute()
        Notification.insert_many([{"user": credentials[0].id, "report": rid, "action": "submit"}
                                  for rid in sent]).execute()
    frozen_clock(dt.datetime(2026, 3, 18, 2, 0))
    log_in(client, credentials)
    client.get("/")  # the session's idle clock is written once; not in the count
    frozen_clock(clock.utcnow())
    with QueryCounter(db.obj) as counter:
        counter.start()
        page = client.get("/")
        statements = counter.stop()
    assert page.status_code == 200
    assert "40 đơn vị chưa gửi" in part(page.text, "late") and "Xem tất cả thông báo (40 chưa đọc)" in page.text
    # The request's own five (the session, the unit's ancestors, the plugins switched on, the grants, the
    # roles a delegation in force gives: chuyen_nganh's hook role_grants), the work list's six and the
    # feedback news' one; the page before the list made the five alone.
    listing = "\n".join(re.sub(r"\s+", " ", s)[:120] for s in statements)
    assert len(statements) <= 12, f"{len(statements)} queries\n{listing}"


def test_a_day_entered_on_the_calendar_is_counted_at_the_next_visit(client, kit, frozen_clock, make_user, unit_tree):
    """The stored days are kept per process (core.regimes.workdays.stored_days) while the calendar's
    change counter stays; the reports to send carry the counter, so the calendar table is read only
    after a change, and the next visit after one counts with it."""
    from core.regimes import workdays
    from core.reporting import calendar_changes

    frozen_clock(dt.datetime(2026, 3, 13, 2, 0))  # Friday 13/03: Monday 16 and Tuesday 17 left
    log_in(client, kit["users"]["reporter"])
    assert "Còn 2 ngày làm việc" in part(client.get("/").text, "to-send")
    with QueryCounter(db.obj) as counter:
        counter.start()
        assert "Còn 2 ngày làm việc" in part(client.get("/").text, "to-send")
        statements = counter.stop()
    assert not [s for s in statements if "core_calendar_day" in s], "the stored days were read again"
    admin, _ = make_user(unit=unit_tree.province, is_admin=True)
    with db.connection_context():
        access = core_access(User.get_by_id(admin.id))
        # Monday off: the report's deadline moves to Wednesday 18, still two working days away.
        calendar_changes.add_day(access, dt.date(2026, 3, 16), workdays.DAY_OFF, "Thông báo số 1/TB-VPCP")
        entry = workdays.CalendarDay.get(workdays.CalendarDay.day == dt.date(2026, 3, 16))
    to_send = part(client.get("/").text, "to-send")
    assert "Hạn nộp 18/03/2026" in to_send and "Còn 2 ngày làm việc" in to_send
    # A day off written behind the deadlines' back (the report keeps Tuesday 17): one day left.
    with db.connection_context():
        calendar_changes.remove_day(access, entry.id, "Thông báo đã được thay thế")
        assert "Còn 2 ngày làm việc" in part(client.get("/").text, "to-send")
        workdays.store_day(access, dt.date(2026, 3, 16), workdays.DAY_OFF, "Thông báo số 2/TB-VPCP")
    to_send = part(client.get("/").text, "to-send")
    assert "Hạn nộp 17/03/2026" in to_send and "Còn 1 ngày làm việc" in to_send
