"""The audit screens: the administrator's subtree, filters, paging, the Excel export, each
user's own history, denied requests recorded, and no secret in the trail
(security.md §2.6 LOG-01..LOG-04, §2.3 ACL-02 and ACL-05).

Tree: Tỉnh Quảng Trị → (Huyện Gio Linh → Xã Gio Mỹ, Huyện Cam Lộ → Xã Cam Hiếu).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import re
from types import SimpleNamespace

import openpyxl
import pytest
from starlette.testclient import TestClient

from core import audit
from core.accounts import login as accounts
from core.accounts.access import Grant, Role
from core.audit import AuditEvent
from core.db import db
from core.models import Unit
from tests.conftest import HX
from tests.fixtures.plugins import fx, log_in


@pytest.fixture
def site(make_app):
    app = make_app(builtins=fx("fx_good"), strict=False)
    with TestClient(app) as client:
        with db.connection_context():
            province = Unit.create(code="44", name="Tỉnh Quảng Trị", kind="province")
            gio_linh = Unit.create(code="464", name="Huyện Gio Linh", kind="district", parent=province)
            gio_my = Unit.create(code="19255", name="Xã Gio Mỹ", kind="commune", parent=gio_linh)
            cam_lo = Unit.create(code="465", name="Huyện Cam Lộ", kind="district", parent=province)
            cam_hieu = Unit.create(code="19366", name="Xã Cam Hiếu", kind="commune", parent=cam_lo)
            unit_admin = Role.get(Role.code == "unit_admin")
            viewer = Role.get(Role.code == "viewer")
            passwords = {}

            def user(username, unit, role=None, system=False):
                passwords[username] = accounts.random_password()
                created = accounts.create_user(username, f"Ông {username}", passwords[username], unit,
                                               is_admin=system)
                if role is not None:
                    Grant.create(user=created, role=role, unit=unit)
                return created

            users = SimpleNamespace(root=user("qt_tinh", province, system=True),
                                    gio_linh=user("qt_giolinh", gio_linh, unit_admin),
                                    cam_lo=user("qt_camlo", cam_lo, unit_admin),
                                    clerk=user("canbo_giomy", gio_my, viewer),
                                    other=user("canbo_camhieu", cam_hieu, viewer))

        def login(who):
            client.cookies.clear()
            log_in(client, who, passwords[who.username])
            return client

        yield SimpleNamespace(client=client, app=app, login=login, users=users, passwords=passwords,
                              province=province, gio_linh=gio_linh, gio_my=gio_my, cam_lo=cam_lo,
                              cam_hieu=cam_hieu)


def rec(action, actor=None, unit=None, **kwargs):
    with db.connection_context():
        return audit.record(action, actor=actor, unit=unit, **kwargs)


def event_ids(html) -> list[int]:
    return [int(i) for i in re.findall(r'<tr id="event-(\d+)"', html)]


def events(**where) -> list[AuditEvent]:
    with db.connection_context():
        query = AuditEvent.select().order_by(AuditEvent.id)
        for name, value in where.items():
            query = query.where(getattr(AuditEvent, name) == value)
        return list(query)


def units_of(ids) -> set[int | None]:
    with db.connection_context():
        return {e.unit_id for e in AuditEvent.select().where(AuditEvent.id.in_(list(ids)))}


def token(client, path="/"):
    return re.search(r'name="csrf_token" value="([0-9a-f]+)"', client.get(path).text).group(1)


@pytest.fixture
def spread(site):
    """One event in each unit of the tree, by that unit's people."""
    u = site.users
    return {
        "province": rec("user.create", u.root, site.province, object_type="user", object_id=u.root.id),
        "gio_linh": rec("grant.add", u.gio_linh, site.gio_linh, object_type="grant", object_id=1),
        "gio_my": rec("auth.login", u.clerk, site.gio_my),
        "cam_lo": rec("grant.remove", u.cam_lo, site.cam_lo, object_type="grant", object_id=2),
        "cam_hieu": rec("auth.login", u.other, site.cam_hieu),
        "nowhere": rec("auth.login_failed", None, None, result="failed", details={"username": "khongco"}),
    }


# -- ACL-02: who sees what ------------------------------------------------------------------------------

def test_acl02_a_district_admin_sees_their_subtree_only(site, spread):
    client = site.login(site.users.gio_linh)
    page = client.get("/audit")
    assert page.status_code == 200
    shown = set(event_ids(page.text))
    assert {spread["gio_linh"].id, spread["gio_my"].id} <= shown
    assert not shown & {spread[k].id for k in ("province", "cam_lo", "cam_hieu", "nowhere")}
    assert units_of(shown) <= {site.gio_linh.id, site.gio_my.id}  # whatever else the trail holds
    assert "Huyện Gio Linh và các đơn vị trực thuộc" in page.text
    # The unit choice lists the subtree only.
    options = re.findall(r'<option value="(\d+)"', page.text.split('id="audit-unit"')[1].split("</select>")[0])
    assert sorted(map(int, options)) == sorted([site.gio_linh.id, site.gio_my.id])


def test_acl02_a_sibling_unit_cannot_be_asked_for(site, spread):
    client = site.login(site.users.gio_linh)
    page = client.get(f"/audit?unit={site.cam_lo.id}")
    assert page.status_code == 422
    assert not set(event_ids(page.text))
    export = client.get(f"/audit/export.xlsx?unit={site.cam_lo.id}")
    assert export.status_code == 422 and "spreadsheet" not in export.headers["content-type"]


def test_acl02_a_system_administrator_sees_everything(site, spread):
    client = site.login(site.users.root)
    shown = set(event_ids(client.get("/audit").text))
    assert {e.id for e in spread.values()} <= shown
    assert "Toàn hệ thống" in client.get("/audit").text


def test_acl05_without_core_audit_view_the_screen_is_refused_and_the_refusal_recorded(site):
    client = site.login(site.users.clerk)
    response = client.get("/audit?q=x")
    assert response.status_code == 403
    assert client.get("/audit/export.xlsx").status_code == 403
    denied = events(action="access.denied")
    assert [e.object_id for e in denied] == ["/audit", "/audit/export.xlsx"]
    first = denied[0]
    assert (first.actor_id, first.result, first.object_type, first.unit_id) == \
        (site.users.clerk.id, "denied", "route", site.gio_my.id)
    assert first.request_id == response.headers["x-request-id"] and first.client_address == "testclient"
    assert "x" not in first.object_id and '"method": "GET"' in first.details  # the path only, no query
    assert audit.verify().ok


def test_acl05_an_anonymous_visitor_is_sent_to_log_in_and_nothing_is_recorded(site):
    site.client.cookies.clear()
    response = site.client.get("/audit", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/login")
    assert events(action="access.denied") == []


def test_acl05_a_failing_audit_store_does_not_break_the_403_page(site, monkeypatch):
    client = site.login(site.users.clerk)

    def broken(*args, **kwargs):
        raise RuntimeError("audit store down")

    monkeypatch.setattr(audit, "record", broken)
    response = client.get("/audit")
    assert response.status_code == 403 and "Không có quyền truy cập" in response.text


def test_the_menu_offers_the_trail_to_those_who_may_read_it(site):
    assert "/audit" in site.login(site.users.gio_linh).get("/").text
    home = site.login(site.users.clerk).get("/").text
    assert 'href="/audit"' not in home and 'href="/account/history"' in home


# -- filters and paging -----------------------------------------------------------------------------

def test_filters_by_action_result_actor_unit_and_text(site, spread):
    client = site.login(site.users.root)
    known = {e.id for e in spread.values()}  # the trail also holds the test's own logins

    def ids(query):
        page = client.get(f"/audit?{query}")
        assert page.status_code == 200, (query, page.text[:500])
        return set(event_ids(page.text)) & known

    assert ids("action=auth.login") == {spread["gio_my"].id, spread["cam_hieu"].id}
    assert ids("result=failed") == {spread["nowhere"].id}
    assert ids("actor=QT_CAMLO") == {spread["cam_lo"].id}
    assert ids(f"unit={site.cam_lo.id}") == {spread["cam_lo"].id, spread["cam_hieu"].id}
    assert ids(f"unit={site.cam_lo.id}&action=auth.login") == {spread["cam_hieu"].id}
    # Free text: any column, unit names and action words without diacritics.
    assert ids("q=khongco") == {spread["nowhere"].id}
    assert ids("q=cam+hieu") == {spread["cam_hieu"].id}
    assert ids("q=dang+nhap+khong") == {spread["nowhere"].id}
    assert ids("q=ong+qt_camlo") == {spread["cam_lo"].id}  # the person's full name
    assert ids("q=100%25") == set()  # LIKE wildcards are taken literally


def test_filters_by_vietnam_dates_written_either_way(site, monkeypatch):
    u = site.users
    times = iter([dt.datetime(2026, 5, 1, 16, 30), dt.datetime(2026, 5, 1, 17, 30), dt.datetime(2026, 5, 3, 1)])
    monkeypatch.setattr(audit, "utcnow", lambda: next(times))
    first, second, third = (rec("auth.login", u.clerk) for _ in range(3))
    monkeypatch.undo()
    client = site.login(u.root)  # a login of today, after all three
    assert set(event_ids(client.get("/audit?from=02/05/2026&to=02/05/2026").text)) == {second.id}
    assert set(event_ids(client.get("/audit?from=2026-05-02&to=2026-05-02").text)) == {second.id}
    assert set(event_ids(client.get("/audit?to=1/5/2026").text)) == {first.id}
    page = client.get("/audit?from=03/05/2026&action=auth.login")
    assert set(event_ids(page.text)) & {first.id, second.id, third.id} == {third.id}
    assert 'value="2026-05-03"' in page.text  # shown back in the form as the date input wants it
    # LOG-04: 17:30 UTC on 1 May is 00:30 on 2 May in Vietnam.
    assert "00:30 02/05/2026" in client.get("/audit?from=02/05/2026&to=02/05/2026").text


@pytest.mark.parametrize("query, message", [
    ("from=31/02/2026", "Ngày không hợp lệ"),
    ("to=hôm+qua", "Ngày không hợp lệ"),
    ("from=05/05/2026&to=01/05/2026", "Ngày kết thúc phải sau ngày bắt đầu"),
    ("action=drop.table", "Lựa chọn không hợp lệ"),
    ("result=maybe", "Lựa chọn không hợp lệ"),
    ("unit=abc", "Lựa chọn không hợp lệ"),
])
def test_a_bad_filter_is_reported_not_ignored(site, spread, query, message):
    client = site.login(site.users.root)
    page = client.get(f"/audit?{query}")
    assert page.status_code == 422 and message in page.text
    assert event_ids(page.text) == []  # never an unfiltered list shown as a filtered one
    fragment = client.get(f"/audit?{query}", headers=HX)
    assert fragment.status_code == 422 and message in fragment.text
    assert fragment.text.lstrip().startswith('<div id="core-audit-table">')


def test_fifty_per_page_newest_first_and_htmx_gets_the_table_only(site):
    actor = site.users.root
    with db.connection_context():
        made = [audit.record("plugin.switch", actor=actor, object_type="plugin", object_id=f"p{i}").id
                for i in range(120)]
    client = site.login(actor)
    first = client.get("/audit?action=plugin.switch")
    assert event_ids(first.text) == made[::-1][:50]
    assert 'method="get" action="/audit"' in first.text  # works without JavaScript
    assert 'hx-get="/audit" hx-target="#core-audit-table"' in first.text
    assert 'href="/audit?action=plugin.switch&amp;page=2"' in first.text
    last = client.get("/audit?action=plugin.switch&page=3", headers=HX)
    assert last.status_code == 200 and event_ids(last.text) == made[::-1][100:]
    assert last.text.lstrip().startswith('<div id="core-audit-table">') and "<html" not in last.text
    assert "Vary" in last.headers and "HX-Request" in last.headers["vary"]
    assert 'href="/audit?action=plugin.switch&amp;page=2"' in last.text and "page=4" not in last.text
    assert event_ids(client.get("/audit?action=plugin.switch&page=99").text) == made[::-1][100:]
    assert client.get("/audit?page=x").status_code == 200


def test_the_page_escapes_what_events_carry(site):
    rec("user.create", site.users.root, object_type="user", object_id="<script>x</script>",
        details={"full_name": "<img src=x onerror=alert(1)>"})
    text = site.login(site.users.root).get("/audit").text
    assert "<script>x" not in text and "<img src=x" not in text
    assert "&lt;script&gt;x" in text


# -- the Excel export ---------------------------------------------------------------------------------

def workbook(response):
    assert response.status_code == 200, response.text[:300]
    assert response.headers["content-type"].startswith(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    assert re.match(r'attachment; filename="nhat-ky-he-thong-\d{8}-\d{4}\.xlsx"',
                    response.headers["content-disposition"])
    return openpyxl.load_workbook(io.BytesIO(response.content)).active


def data_rows(sheet):
    rows = list(sheet.iter_rows(values_only=True))
    head = next(i for i, row in enumerate(rows) if row and row[0] == "Số thứ tự sự kiện")
    return rows[head], rows[head + 1:], head + 1


def test_log01_the_export_opens_in_excel_with_the_rows_of_the_subtree(site, spread):
    client = site.login(site.users.gio_linh)
    sheet = workbook(client.get("/audit/export.xlsx"))
    header, rows, head_row = data_rows(sheet)
    assert sheet["A1"].value == "Nhật ký hệ thống"
    block = {row[0]: row[1] for row in sheet.iter_rows(min_row=2, max_row=head_row - 1, values_only=True) if row[0]}
    assert block["Phạm vi"] == "Huyện Gio Linh và các đơn vị trực thuộc"
    assert block["Điều kiện lọc"] == "Không lọc"
    assert block["Người xuất"] == "Ông qt_giolinh (qt_giolinh)"
    assert sheet.freeze_panes == f"A{head_row + 1}"
    assert sheet.column_dimensions["B"].width >= 18
    assert "Thời gian (giờ Việt Nam)" in header and "Mã băm (SHA-256)" in header
    exported = {r[0] for r in rows}
    assert exported & {e.id for e in spread.values()} == {spread["gio_linh"].id, spread["gio_my"].id}
    assert units_of(exported) <= {site.gio_linh.id, site.gio_my.id}
    assert [r[0] for r in rows] == sorted((r[0] for r in rows), reverse=True)
    cell = sheet.cell(row=head_row + 1, column=2)
    assert isinstance(cell.value, dt.datetime) and cell.is_date
    # The export is itself recorded, after the rows were read.
    export = events(action="audit.export")
    assert len(export) == 1 and export[0].actor_id == site.users.gio_linh.id
    assert f'"rows": {len(rows)}' in export[0].details and export[0].unit_id == site.gio_linh.id
    assert audit.verify().ok


def test_log01_the_export_follows_the_filters_and_says_which(site, spread):
    client = site.login(site.users.root)
    sheet = workbook(client.get("/audit/export.xlsx?action=auth.login&from=01/01/2020"))
    _, rows, head_row = data_rows(sheet)
    assert {r[0] for r in rows} & {e.id for e in spread.values()} == {spread["gio_my"].id, spread["cam_hieu"].id}
    assert {r[6] for r in rows} == {"auth.login"}
    block = {row[0]: row[1] for row in sheet.iter_rows(min_row=2, max_row=head_row - 1, values_only=True) if row[0]}
    assert "Thao tác: Đăng nhập" in block["Điều kiện lọc"] and "Từ ngày: 01/01/2020" in block["Điều kiện lọc"]
    assert "auth.login" in (events(action="audit.export")[0].details)


def test_the_export_keeps_text_as_text(site):
    rec("user.create", site.users.root, object_type="user", object_id='=HYPERLINK("http://evil","x")')
    sheet = workbook(site.login(site.users.root).get("/audit/export.xlsx?action=user.create"))
    _, rows, head_row = data_rows(sheet)
    cell = sheet.cell(row=head_row + 1, column=9)
    assert cell.value.startswith("=HYPERLINK") and cell.data_type == "s"


def test_the_export_is_bounded(site, monkeypatch):
    from web.routes import audit as audit_routes

    monkeypatch.setattr(audit_routes, "EXPORT_LIMIT", 5)
    with db.connection_context():
        for i in range(8):
            audit.record("plugin.switch", actor=site.users.root, object_id=f"p{i}")
    sheet = workbook(site.login(site.users.root).get("/audit/export.xlsx?action=plugin.switch"))
    _, rows, _ = data_rows(sheet)
    assert len(rows) == 5
    assert any("Chỉ gồm 5 sự kiện mới nhất" in str(c) for row in sheet.iter_rows(max_row=8, values_only=True)
               for c in row)
    assert '"truncated": true' in events(action="audit.export")[0].details


# -- each user's own history -----------------------------------------------------------------------------

def test_a_user_sees_their_own_history_only(site, spread):
    u = site.users
    about_me = rec("user.password_reset", u.gio_linh, site.gio_my, object_type="user", object_id=u.clerk.id)
    client = site.login(u.clerk)
    page = client.get("/account/history")
    assert page.status_code == 200 and "Lịch sử hoạt động của tôi" in page.text
    shown = set(event_ids(page.text))
    assert {spread["gio_my"].id, about_me.id} <= shown
    assert not shown & {spread[k].id for k in ("province", "gio_linh", "cam_lo", "cam_hieu", "nowhere")}
    assert 'id="audit-unit"' not in page.text and 'id="audit-actor"' not in page.text
    assert "export.xlsx" not in page.text
    # Another user's id in the query changes nothing.
    again = client.get(f"/account/history?actor=qt_camlo&unit={site.cam_lo.id}")
    assert set(event_ids(again.text)) == shown
    fragment = client.get("/account/history?action=auth.login", headers=HX)
    assert fragment.text.lstrip().startswith('<div id="core-audit-table">')
    assert spread["gio_my"].id in set(event_ids(fragment.text))
    # Everything shown is the clerk's doing or about the clerk's account, whatever else the trail holds.
    with db.connection_context():
        for event in AuditEvent.select().where(AuditEvent.id.in_(list(shown))):
            assert event.actor_id == u.clerk.id or (event.object_type, event.object_id) == ("user", str(u.clerk.id))


# -- LOG-01 / LOG-03: events written during a request --------------------------------------------------

def test_log01_an_event_written_during_a_request_carries_its_id_and_address(site):
    client = site.login(site.users.gio_linh)
    response = client.post("/admin/plugins/fx_good/activation", follow_redirects=False, data={
        "unit": str(site.gio_my.id), "state": "off", "csrf_token": token(client, "/admin/plugins/fx_good")})
    assert response.status_code == 303
    (event,) = events(action="plugin.switch")
    assert event.request_id == response.headers["x-request-id"] and event.client_address == "testclient"
    assert (event.actor_id, event.unit_id, event.object_id) == (site.users.gio_linh.id, site.gio_my.id, "fx_good")
    page = client.get("/audit?action=plugin.switch").text
    assert response.headers["x-request-id"] in page and "testclient" in page and "Bật/tắt phân hệ" in page


def test_log03_no_password_token_or_session_id_reaches_the_trail(site, make_app):
    """Log in, switch a plugin, change the password, log out, fail a login; then search every
    column of every audit row for the secrets of that flow."""
    u, client = site.users, site.client
    client.cookies.clear()
    old_password = site.passwords[u.gio_linh.username]
    log_in(client, u.gio_linh, old_password)
    cookies = dict(client.cookies)
    csrf = token(client, "/admin/plugins/fx_good")
    client.post("/admin/plugins/fx_good/activation", data={"unit": str(site.gio_my.id), "state": "off",
                                                           "csrf_token": csrf})
    new_password = accounts.random_password()
    changed = client.post("/account/password", data={"current": old_password, "new": new_password,
                                                     "confirm": new_password, "csrf_token": token(client)})
    assert changed.status_code == 200
    client.get("/audit/export.xlsx")
    site.login(u.clerk).get("/audit")  # a denial, with another session
    cookies.update({f"clerk:{k}": v for k, v in client.cookies.items()})
    client.post("/logout", data={"csrf_token": token(client)})
    wrong = "Sai-mat-khau-" + accounts.random_password()
    client.post("/login", data={"username": u.gio_linh.username, "password": wrong,
                                "csrf_token": token(client, "/login")})

    secrets = {old_password, new_password, wrong, csrf, *cookies.values()}
    secrets |= {hashlib.sha256(v.encode()).hexdigest() for v in cookies.values()}  # the stored session hash
    secrets = {s for s in secrets if s and len(s) >= 8}
    assert len(secrets) >= 6
    with db.connection_context():
        cursor = db.execute_sql("SELECT * FROM core_audit_event")
        rows = cursor.fetchall()
        columns = [c[0] for c in cursor.description]
    actions = {row[columns.index("action")] for row in rows}
    assert {"plugin.switch", "audit.export", "access.denied"} <= actions  # and the sign-ins once recorded
    dump = "\n".join(str(value) for row in rows for value in row)
    leaked = [s[:6] + "…" for s in secrets if s in dump]
    assert leaked == []
