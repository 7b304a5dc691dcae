"""The working-day calendar screen /admin/calendar (issue 12 item 21): an administrator enters the
Government's extra days off and make-up Saturdays with their legal basis, per year; the deadlines a
regime shows follow at once; the days from the settings are listed read-only; others get 403."""

from __future__ import annotations

import datetime as dt
import re

from tests.conftest import csrf_from
from tests.web.test_regime_screens import _units, create

BASIS = "Thông báo số 01/TB-BNV của Bộ Nội vụ"


def _october_deadlines(html: str) -> list[str]:
    """The deadlines per level in the regime calendar's row of October 2026 (window 15/09–14/10)."""
    row = re.search(r"<tr[^>]*>\s*<td>Tháng 10 năm 2026</td>(.*?)</tr>", html, re.S)
    assert row, "no October row"
    cells = re.findall(r'<td class="nowrap">(\d\d/\d\d/\d{4})', row.group(1))
    return cells[1:]  # the first one is the window's start


def _add(client, token, day: str, kind: str, reason: str = BASIS, **extra):
    return client.post("/admin/calendar", data={"day": day, "kind": kind, "reason": reason, "csrf_token": token,
                                                **extra}, follow_redirects=False)


def test_make_up_saturday_and_extra_day_off_move_the_deadlines_shown(client, login):
    login(is_admin=True)
    units = _units()
    token = csrf_from(client.get("/regimes").text)
    regime_id = create(client, units, token)  # communes 2wd after the cut-off, departments +1wd
    detail = f"/regimes/{regime_id}?year=2026"
    # Cut-off Wednesday 14/10/2026: Thu 15 (1), Fri 16 (2) → 16/10; then +1 → Monday 19/10.
    assert _october_deadlines(client.get(detail).text) == ["16/10/2026", "19/10/2026"]

    page = client.get("/admin/calendar?year=2026")
    assert page.status_code == 200 and "Lịch ngày làm việc năm 2026" in page.text
    assert "Tết Nguyên Đán" in page.text  # the public holidays, for reference
    response = _add(client, token, "2026-10-17", "make_up")
    assert response.status_code == 303 and "year=2026" in response.headers["location"]
    # A make-up Saturday counts as a working day: the department's +1wd falls on it.
    assert _october_deadlines(client.get(detail).text) == ["16/10/2026", "17/10/2026"]
    assert _add(client, token, "2026-10-16", "day_off").status_code == 303
    # An extra day off does not count: Thu 15 (1), Sat 17 (2, made up); then Monday 19/10.
    assert _october_deadlines(client.get(detail).text) == ["17/10/2026", "19/10/2026"]

    listing = client.get("/admin/calendar?year=2026&done=added").text
    assert "Đã thêm ngày vào lịch" in listing
    assert 'data-day="2026-10-16" data-kind="day_off"' in listing and BASIS in listing
    assert 'data-day="2026-10-17" data-kind="make_up"' in listing
    assert "2026-10-16" not in client.get("/admin/calendar?year=2027").text  # listed per year

    day_id = re.search(r'id="day-(\d+)" data-day="2026-10-16"', listing).group(1)
    refused = client.post(f"/admin/calendar/{day_id}/remove", data={"reason": " ", "csrf_token": token,
                                                                      "year": "2026"})
    assert refused.status_code == 422 and "Hãy ghi căn cứ hoặc lý do" in refused.text
    removed = client.post(f"/admin/calendar/{day_id}/remove", data={"reason": "Nhập nhầm", "csrf_token": token},
                          follow_redirects=False)
    assert removed.status_code == 303
    assert _october_deadlines(client.get(detail).text) == ["16/10/2026", "17/10/2026"]
    assert client.post("/admin/calendar/9223372036854775808/remove",
                       data={"reason": "x", "csrf_token": token}).status_code in (400, 404)  # never a 500

    from core.audit import AuditEvent
    from core.db import db

    with db.connection_context():
        actions = [e.action for e in AuditEvent.select().where(AuditEvent.action.startswith("calendar."))]
    assert actions == ["calendar.add", "calendar.add", "calendar.remove"]


def test_bad_input_gets_a_message_in_both_languages(client, login):
    login(is_admin=True)
    token = csrf_from(client.get("/admin/calendar").text)
    page = _add(client, token, "2026-10-17", "day_off")  # a Saturday is a day off already
    assert page.status_code == 422 and "vốn đã là ngày nghỉ" in page.text
    assert _add(client, token, "17/10/2026", "make_up").status_code == 422
    assert _add(client, token, "2026-10-17", "make_up", reason="").status_code == 422
    client.post("/lang", data={"lang": "en", "next": "/", "csrf_token": token})
    english = _add(client, token, "2026-10-16", "make_up")
    assert english.status_code == 422 and "already a working day" in english.text


def test_days_from_the_settings_are_listed_and_counted(make_app, make_settings, make_user):
    from starlette.testclient import TestClient

    settings = make_settings(extra_days_off=(dt.date(2026, 10, 16),), make_up_days=(dt.date(2026, 10, 17),))
    with TestClient(make_app(settings)) as client:
        user, password = make_user_in(client, make_user)
        page = client.get("/admin/calendar?year=2026").text
        assert 'id="setting-2026-10-16"' in page and "Trong tệp cấu hình" in page
        token = csrf_from(page)
        refused = _add(client, token, "2026-10-16", "day_off")
        assert refused.status_code == 422 and "đã được ghi trong tệp cấu hình" in refused.text
        units = _units()
        regime_id = create(client, units, token)
        assert _october_deadlines(client.get(f"/regimes/{regime_id}?year=2026").text) == ["17/10/2026", "19/10/2026"]


def make_user_in(client, make_user):
    user, password = make_user(is_admin=True)
    page = client.get("/login")
    response = client.post("/login", data={"username": user.username, "password": password,
                                           "csrf_token": csrf_from(page.text)}, follow_redirects=False)
    assert response.status_code == 303
    return user, password


def test_only_calendar_administrators_reach_the_screen(client, login):
    login()  # no role
    assert client.get("/admin/calendar").status_code == 403
    token = csrf_from(client.get("/").text)
    assert _add(client, token, "2026-10-16", "day_off").status_code == 403
    assert "/admin/calendar" not in client.get("/").text  # no menu entry either
