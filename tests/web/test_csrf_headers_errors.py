"""CSRF protection, security headers on every response, error pages and the health check."""

from __future__ import annotations

import re

import pytest
from starlette.testclient import TestClient

from core.settings import with_overrides
from tests.conftest import HX, csrf_from

CSRF_TEXT = "Trang đã mở quá lâu hoặc được gửi từ nơi khác"


@pytest.fixture
def admin(client, login):
    """A logged-in administrator; returns a fresh CSRF token of that session."""
    login(is_admin=True)
    return csrf_from(client.get("/").text)


def unit_id():
    from core.db import db
    from core.models import Unit

    with db.connection_context():
        return Unit.get(Unit.code == "ROOT").id


def post_routes():
    """Every state-changing route of the core, with a body that would otherwise succeed."""
    return {
        "/login": {"username": "x", "password": "y"},
        "/logout": {},
        "/lang": {"lang": "en", "next": "/"},
        "/account/password": {"current": "a", "new": "b", "confirm": "b"},
        "/admin/plugins/kinhte_xahoi/activation": {"unit": str(unit_id()), "state": "off"},
        "/admin/plugins/kinhte_xahoi/failures/clear": {},
        "/users/new": {"username": "moi_tao", "full_name": "Người mới", "unit": str(unit_id()), "roles": "viewer"},
        "/users/{id:int}/disable": {}, "/users/{id:int}/enable": {}, "/users/{id:int}/reset-password": {},
        "/users/{id:int}/unlock": {}, "/users/{id:int}/mfa/reset": {},
        "/users/{id:int}/grants": {"role": "viewer", "unit": str(unit_id())},
        "/users/{id:int}/grants/{grant_id:int}/revoke": {}, "/users/{id:int}/sessions/end": {},
        "/users/{id:int}/sessions/{session_id:int}/end": {},
        "/account/sessions/others/end": {}, "/account/sessions/{session_id:int}/end": {},
        # Two-factor authentication and re-authentication (issue 3).
        "/login/verify": {"code": "123456"}, "/account/2fa/enable": {"code": "123456"},
        "/account/2fa/recovery-codes": {}, "/account/2fa/disable": {}, "/account/confirm": {"password": "x"},
        # The indicator catalogue (issue 4).
        "/indicators/new": {"code": "T0101", "name": "Diện tích"}, "/indicators/import": {},
        "/indicators/import/apply": {"payload": "", "sig": ""},
        "/units/import": {}, "/units/import/confirm": {"filename": "x.csv", "payload": "", "signature": ""}, "/indicators/{code}/edit": {"name": "x", "version": "1"},
        # API access tokens (issue 4): the CSRF check comes before the token is even looked up.
        "/account/tokens": {"name": "x", "days": "30"}, "/account/tokens/{token_id:int}/revoke": {},
        # Reporting regimes (issue 4): the CSRF check comes before the regime is looked up.
        "/regimes/new": {"code": "X.1", "name": "Báo cáo"}, "/regimes/{id:int}/edit": {"name": "Báo cáo"},
        "/regimes/{id:int}/issue": {}, "/regimes/{id:int}/suspend": {"reason": "x"}, "/regimes/{id:int}/resume": {},
        "/regimes/{id:int}/retire": {"reason": "x"}, "/regimes/{id:int}/new-version": {},
        "/regimes/{id:int}/request": {"window_start": "2026-03-01", "window_end": "2026-03-10",
                                      "deadline": "2026-03-20"},
        # Recording a unit change (issue 4): the CSRF check comes before the unit is looked up.
        "/units/{unit_id}/change": {"kind": "rename", "effective_date": "01/01/2027", "basis_number": "NQ 1",
                                    "rename_name": "Tên mới"},
        "/units/{unit_id}/change/form": {"kind": "rename"}, "/units/{unit_id}/change/preview": {"kind": "rename"},
        # Unit groups for choosing reporting units (issue 4).
        "/unit-groups/new": {"code": "NHOM", "name": "Nhóm", "unit_ids": str(unit_id()), "action": "save"},
        "/unit-groups/{id:int}": {"code": "NHOM", "name": "Nhóm", "unit_ids": str(unit_id()), "action": "save"},
        "/unit-groups/{id:int}/delete": {},
        # The form designer (issue 5): the CSRF check comes before the form is looked up.
        "/forms/new": {"code": "BM-1", "name": "Biểu"}, "/forms/{id:int}/publish": {},
        "/forms/{id:int}/new-version": {}, "/forms/{id:int}/copy": {"code": "BM-2", "name": "Bản sao"},
        "/forms/{id:int}/design/{action}": {"title": "Biểu số 01"},
        "/reports/{id:int}/upload": {},
        # The report entry page (issue 5): the CSRF check comes before the report is looked up.
        "/reports/{id:int}/calc": {"cell.r.c": "1"}, "/reports/{id:int}/save": {"cell.r.c": "1"},
        "/reports/{id:int}/comments": {"text": "x"}, "/reports/{id:int}/attachments": {},
        "/reports/{id:int}/attachments/{aid:int}/delete": {},
        "/reports/{id:int}/submit": {"revision": "0"}, "/reports/{id:int}/accept": {},
        "/reports/{id:int}/return": {"reason": "x"}, "/reports/{id:int}/reopen": {"reason": "x"},
        # The receiver's queue and review (issue 6): the CSRF check comes before anything is looked up.
        "/inbox/accept": {"report": "1"}, "/reports/{id:int}/review/return": {"reason": "x"},
        # Consolidated reports (issue 6): the CSRF check comes before the regime or report is looked up.
        "/consolidation/open": {"regime": "1", "period": "2026-02-15/2026-03-14"},
        "/reports/{id:int}/consolidation/refresh": {},
        # Follow-ups of unusual values (issue 14): the CSRF check comes before the report is looked up.
        "/reports/{id:int}/followups": {"cell": "lua.cur", "note": "Kiểm tra lại"},
        "/followups/{id:int}/clear": {"note": "Đã xác minh"},
        # Notifications (issue 6): the CSRF check comes before the notification is looked up.
        "/notifications/{id:int}/open": {}, "/notifications/{id:int}/read": {}, "/notifications/read-all": {},
        "/notifications/email": {"email": "ten@quangtri.gov.vn"},
        # The dashboard's chosen indicators (issue 14): the CSRF check comes before the unit is looked up.
        "/dashboard/indicators": {"unit": "", "codes": "DB0101"},
        # Feedback and incidents (issue 14): the CSRF check comes before the item is looked up.
        "/feedback": {"kind": "problem", "title": "Lỗi", "description": "Mô tả"},
        "/feedback/{id:int}/reply": {"text": "Trả lời"}, "/admin/feedback/{id:int}/assign": {"assignee": ""},
        # Signing (issue 6): the CSRF check comes before the report, version or unit is looked up.
        "/reports/{id:int}/signing/prepare": {"revision": "0"},
        "/completeness/remind": {"regime": "x", "period": "2026-02-15/2026-03-14", "message": ""},
        "/admin/consolidation/rebuild": {"regime": "", "period": ""},
        "/regimes/{id:int}/reminders": {"days_before": "3", "enabled": "on"},
        "/reports/{id:int}/versions/{number:int}/recheck": {},
        "/units/{id:int}/seal/install": {"password": "x"}, "/units/{id:int}/seal/retire": {},
        # Signature trust (issue 6): the CSRF check comes before any file is read or row looked up.
        "/admin/trust/anchors": {"name": "CA"}, "/admin/trust/anchors/{anchor_id:int}/deactivate": {},
        "/admin/trust/crls": {}, "/admin/trust/sources": {"url": "http://ca.example.vn/ca.crl"},
        "/admin/trust/sources/{source_id:int}/remove": {}, "/admin/trust/refresh": {},
        "/account/certificates": {}, "/account/certificates/{certificate_id:int}/deactivate": {},
        "/users/{id:int}/certificates/{certificate_id:int}/deactivate": {},
        # Proof of possession and the identity number (issue 12), the working-day calendar.
        "/account/certificates/challenge": {}, "/users/{id:int}/identity-number": {"identity_number": "001"},
        "/admin/calendar": {"day": "2026-12-26", "kind": "make_up", "reason": "x"},
        # The outbox and the role editor (issue 13): the CSRF check comes before any row is looked up.
        "/admin/outbox/{id:int}/retry": {}, "/admin/outbox/{id:int}/cancel": {},
        "/admin/roles/new": {"name": "Vai trò", "code": "vai_tro", "permissions": "core.unit.view"},
        "/admin/roles/{role_id:int}": {"name": "Vai trò"}, "/admin/roles/{role_id:int}/delete": {},
        "/admin/calendar/{entry_id:int}/remove": {"reason": "x"},
    }


def concrete(path: str) -> str:
    """The account routes' paths with a real account, one of its grants and one of its sessions."""
    if "{" not in path:
        return path
    from core.accounts import login as accounts
    from core.accounts.access import Grant, Role
    from core.db import db
    from core.models import Session, Unit, User

    with db.connection_context():
        target = User.get_or_none(User.username == "dich_csrf") or accounts.create_user(
            "dich_csrf", "Người dùng đích", accounts.random_password(), Unit.get(Unit.code == "ROOT"))
        grant = Grant.get_or_none(user=target) or Grant.create(user=target, role=Role.get(code="viewer"),
                                                               unit=target.unit_id)
        accounts.start_session(target)
        session = Session.select().where(Session.user == target).first()
    return (path.replace("{id:int}", str(target.id)).replace("{grant_id:int}", str(grant.id))
            .replace("{session_id:int}", str(session.id)).replace("{code}", "T0101")
            .replace("{token_id:int}", "1").replace("{unit_id}", str(target.unit_id))
            .replace("{aid:int}", "1").replace("{entry_id:int}", "1").replace("{role_id:int}", "1"))


def assert_refused(response):
    assert response.status_code == 403, (response.status_code, response.text[:300])
    assert CSRF_TEXT in response.text


def session_alive(client) -> bool:
    return client.get("/", follow_redirects=False).status_code == 200


POST_PATHS = ["/login", "/logout", "/lang", "/account/password", "/admin/plugins/kinhte_xahoi/activation",
              "/admin/plugins/kinhte_xahoi/failures/clear",  # plugin failures the worker recorded (issue 13)
              # The account administration screens (issue 3) and the user's own sessions.
              "/users/new", "/users/{id:int}/disable", "/users/{id:int}/enable", "/users/{id:int}/reset-password",
              "/users/{id:int}/unlock", "/users/{id:int}/mfa/reset", "/users/{id:int}/grants", "/users/{id:int}/grants/{grant_id:int}/revoke",
              "/users/{id:int}/sessions/end", "/users/{id:int}/sessions/{session_id:int}/end",
              "/account/sessions/others/end", "/account/sessions/{session_id:int}/end",
              "/login/verify", "/account/2fa/enable", "/account/2fa/recovery-codes", "/account/2fa/disable",
              "/account/confirm",
              # The indicator catalogue screens (issue 4).
              "/indicators/new", "/indicators/import", "/indicators/import/apply", "/indicators/{code}/edit",
              # Unit import (issue 4, units with history).
              "/units/import", "/units/import/confirm",
              # Personal access tokens for the JSON API (issue 4, API).
              "/account/tokens", "/account/tokens/{token_id:int}/revoke",
              # Reporting regimes (issue 4).
              "/regimes/new", "/regimes/{id:int}/edit", "/regimes/{id:int}/issue", "/regimes/{id:int}/suspend",
              "/regimes/{id:int}/resume", "/regimes/{id:int}/retire", "/regimes/{id:int}/new-version",
              "/regimes/{id:int}/request",
              # Recording a unit change (issue 4).
              "/units/{unit_id}/change", "/units/{unit_id}/change/form", "/units/{unit_id}/change/preview",
              # Unit groups (issue 4).
              "/unit-groups/new", "/unit-groups/{id:int}", "/unit-groups/{id:int}/delete",
              # The form designer (issue 5).
              "/forms/new", "/forms/{id:int}/publish", "/forms/{id:int}/new-version", "/forms/{id:int}/copy",
              "/forms/{id:int}/design/{action}",
              # Excel upload of a filled report template (issue 5).
              "/reports/{id:int}/upload",
              # The report entry page (issue 5).
              "/reports/{id:int}/calc", "/reports/{id:int}/save", "/reports/{id:int}/comments",
              "/reports/{id:int}/attachments", "/reports/{id:int}/attachments/{aid:int}/delete",
              # Submitting, returning, accepting and reopening a report (issue 6).
              "/reports/{id:int}/submit", "/reports/{id:int}/accept", "/reports/{id:int}/return",
              "/reports/{id:int}/reopen",
              # The receiver's queue (bulk accept) and the review page's return (issue 6).
              "/inbox/accept", "/reports/{id:int}/review/return",
              # Consolidated reports (issue 6).
              "/consolidation/open", "/reports/{id:int}/consolidation/refresh",
              # Follow-ups of unusual values (issue 14).
              "/reports/{id:int}/followups", "/followups/{id:int}/clear",
              # Notifications (issue 6).
              "/notifications/{id:int}/open", "/notifications/{id:int}/read", "/notifications/read-all",
              "/notifications/email",
              "/dashboard/indicators",  # the dashboard's chosen indicators (issue 14)
              # Feedback and incidents (issue 14).
              "/feedback", "/feedback/{id:int}/reply", "/admin/feedback/{id:int}/assign",
              # Signing a report and the unit's seal (issue 6).
              "/reports/{id:int}/signing/prepare", "/reports/{id:int}/versions/{number:int}/recheck",
              "/completeness/remind",  # the receiver's "Đôn đốc" (issue 14)
              "/units/{id:int}/seal/install", "/units/{id:int}/seal/retire",
              # Signature trust: anchors, CRLs, sources; one's own signing certificates (issue 6).
              "/admin/trust/anchors", "/admin/trust/anchors/{anchor_id:int}/deactivate", "/admin/trust/crls",
              "/admin/trust/sources", "/admin/trust/sources/{source_id:int}/remove", "/admin/trust/refresh",
              "/account/certificates", "/account/certificates/{certificate_id:int}/deactivate",
              "/users/{id:int}/certificates/{certificate_id:int}/deactivate",
              # Proof of possession and the identity number; the working-day calendar (issue 12).
              "/account/certificates/challenge", "/users/{id:int}/identity-number",
              "/admin/calendar", "/admin/calendar/{entry_id:int}/remove",
              # The outbox and the role editor (issue 13).
              "/admin/outbox/{id:int}/retry", "/admin/outbox/{id:int}/cancel", "/admin/roles/new",
              "/admin/roles/{role_id:int}", "/admin/roles/{role_id:int}/delete",
              "/admin/consolidation/rebuild", "/regimes/{id:int}/reminders"]  # rebuilding live consolidation, a background job (issue 14)


def test_the_list_covers_every_core_post_route(app):
    from starlette.routing import Route

    posts = {r.path for r in app.routes if isinstance(r, Route) and "POST" in (r.methods or ())}
    assert posts == {p.replace("kinhte_xahoi", "{name}") for p in POST_PATHS}


@pytest.mark.parametrize("path", POST_PATHS)
def test_post_without_a_token_is_refused(client, admin, path):
    response = client.post(concrete(path), data=post_routes()[path], follow_redirects=False)
    assert_refused(response)
    assert session_alive(client)  # not even logout happened
    assert "baocao_lang" not in client.cookies


@pytest.mark.parametrize("path", POST_PATHS)
def test_post_with_a_wrong_token_is_refused(client, admin, path):
    wrong = ("0" if admin[0] != "0" else "1") + admin[1:]
    response = client.post(concrete(path), data={**post_routes()[path], "csrf_token": wrong}, follow_redirects=False)
    assert_refused(response)
    header = client.post(concrete(path), data=post_routes()[path], headers={"X-CSRF-Token": wrong},
                         follow_redirects=False)
    assert_refused(header)


def test_a_token_from_another_browser_is_refused(app, client, admin):
    with TestClient(app) as other:
        foreign = csrf_from(other.get("/login").text)
    assert foreign != admin
    assert_refused(client.post("/lang", data={"lang": "en", "csrf_token": foreign}, follow_redirects=False))


def test_the_token_works_as_a_form_field_or_a_header(client, admin):
    field = client.post("/lang", data={"lang": "en", "next": "/", "csrf_token": admin}, follow_redirects=False)
    assert field.status_code == 303
    header = client.post("/lang", data={"lang": "vi", "next": "/"}, headers={"X-CSRF-Token": admin},
                         follow_redirects=False)
    assert header.status_code == 303
    logout = client.post("/logout", headers={"X-CSRF-Token": admin, **HX}, follow_redirects=False)
    assert logout.status_code == 303
    assert not session_alive(client)


def test_a_valid_token_from_another_origin_is_refused(client, admin):
    evil = client.post("/lang", data={"lang": "en", "csrf_token": admin}, headers={"Origin": "https://evil.example"},
                       follow_redirects=False)
    assert_refused(evil)
    same = client.post("/lang", data={"lang": "en", "csrf_token": admin}, headers={"Origin": "http://testserver"},
                       follow_redirects=False)
    assert same.status_code == 303


@pytest.mark.parametrize("site", ["cross-site", "same-site"])
def test_cross_site_fetch_metadata_is_refused(client, admin, site):
    response = client.post("/logout", data={"csrf_token": admin}, headers={"Sec-Fetch-Site": site},
                           follow_redirects=False)
    assert_refused(response)
    assert session_alive(client)


def test_same_origin_fetch_metadata_is_accepted(client, admin):
    response = client.post("/lang", data={"lang": "en", "csrf_token": admin},
                           headers={"Sec-Fetch-Site": "same-origin"}, follow_redirects=False)
    assert response.status_code == 303


def test_a_refusal_for_htmx_is_a_fragment(client, admin):
    response = client.post("/lang", data={"lang": "en"}, headers=HX)
    assert response.status_code == 403
    assert "<html" not in response.text and "flash-error" in response.text


def test_the_token_changes_at_login(client, make_user):
    user, password = make_user()
    before = csrf_from(client.get("/login").text)
    client.post("/login", data={"username": user.username, "password": password, "csrf_token": before})
    after = csrf_from(client.get("/").text)
    assert after != before
    assert_refused(client.post("/lang", data={"lang": "en", "csrf_token": before}, follow_redirects=False))


# -- security headers --------------------------------------------------------------------------

def assert_security_headers(response):
    headers = response.headers
    csp = headers.get("content-security-policy", "")
    directives = {d.strip().split(" ", 1)[0]: d.strip() for d in csp.split(";") if d.strip()}
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp, csp
    assert directives.get("frame-ancestors") == "frame-ancestors 'none'", csp
    assert directives.get("object-src") == "object-src 'none'", csp
    assert directives.get("base-uri") == "base-uri 'none'", csp
    assert directives.get("script-src") == "script-src 'self'", csp
    assert headers.get("x-content-type-options") == "nosniff"
    assert headers.get("x-frame-options") == "DENY"
    assert headers.get("referrer-policy") in ("same-origin", "no-referrer", "strict-origin-when-cross-origin")
    assert re.fullmatch(r"[0-9a-f]{12}", headers.get("x-request-id", ""))


def test_security_headers_on_every_kind_of_response(client, login):
    from web import assets

    anonymous = {
        "login page": client.get("/login"),
        "redirect": client.get("/", follow_redirects=False),
        "404": client.get("/no/such/page"),
        "static": client.get("/static/core/app.css"),
        "htmx file": client.get(f"/static/{assets.HTMX_FILE}"),
        "static 404": client.get("/static/core/nope.js"),
        "healthz": client.get("/healthz"),
        "405": client.get("/logout"),
        "csrf 403": client.post("/lang", data={"lang": "en"}),
        "bad host": client.get("/login", headers={"Host": "evil.example"}),
    }
    login()
    logged_in = {"home": client.get("/"), "password page": client.get("/account/password"),
                 "403": client.get("/admin/plugins")}
    for name, response in {**anonymous, **logged_in}.items():
        try:
            assert_security_headers(response)
        except AssertionError as exc:
            raise AssertionError(f"{name} ({response.status_code}): {exc}") from None
    assert anonymous["static"].status_code == 200 and anonymous["static 404"].status_code == 404
    assert logged_in["403"].status_code == 403


def test_security_headers_on_a_500_page(client, login, monkeypatch):
    login()
    break_home(monkeypatch)
    response = client.get("/")
    assert response.status_code == 500
    assert_security_headers(response)
    assert response.headers["cache-control"] == "no-store"  # the page shows who is logged in


def test_authenticated_pages_are_not_cached(client, login):
    login(is_admin=True)
    for path in ("/", "/admin/plugins", "/admin/plugins/kinhte_xahoi", "/account/password", "/nope"):
        response = client.get(path)
        assert response.headers.get("cache-control") == "no-store", path


def test_hsts_only_in_production(client, make_app, make_settings):
    assert "strict-transport-security" not in client.get("/login").headers
    production = with_overrides(make_settings(), mode="production", allowed_hosts=("testserver",))
    with TestClient(make_app(production), base_url="https://testserver") as secure:
        for path in ("/login", "/healthz", "/static/core/app.css", "/nope"):
            hsts = secure.get(path).headers.get("strict-transport-security", "")
            max_age = re.search(r"max-age=(\d+)", hsts)
            assert max_age and int(max_age.group(1)) >= 31536000 and "includeSubDomains" in hsts, path


def test_html_is_served_with_a_charset(client):
    assert client.get("/login").headers["content-type"] == "text/html; charset=utf-8"


# -- error pages ---------------------------------------------------------------------------------

def break_home(monkeypatch):
    import web.routes.home as home

    def boom(*args, **kwargs):
        raise RuntimeError("SELECT secret_column FROM core_user -- internal detail")

    monkeypatch.setattr(home, "render", boom)


def assert_clean_error_page(response, status, title):
    assert response.status_code == status
    text = response.text
    assert "<html" in text and title in text
    for leak in ("Traceback", "RuntimeError", "secret_column", 'File "', "starlette", "peewee"):
        assert leak not in text, leak
    request_id = response.headers["x-request-id"]
    assert f'<span class="mono">{request_id}</span>' in text


def test_404_page(client):
    assert_clean_error_page(client.get("/no/such/page"), 404, "Không tìm thấy trang")


def test_403_page(client, login):
    login()  # not an administrator
    assert_clean_error_page(client.get("/admin/plugins"), 403, "Không có quyền truy cập")


def test_500_page_when_a_view_fails(client, login, monkeypatch, caplog):
    login()
    break_home(monkeypatch)
    response = client.get("/")
    assert_clean_error_page(response, 500, "Lỗi hệ thống")
    # The operator's log has what the page hides, under the same request id.
    logged = [r for r in caplog.records if r.levelname == "ERROR" and r.exc_info]
    assert logged and response.headers["x-request-id"] in logged[-1].getMessage()


def test_500_page_when_a_core_service_fails_before_the_view(client, login, monkeypatch):
    import web.middleware

    login()

    def boom(*args, **kwargs):
        raise RuntimeError("SELECT secret_column FROM core_plugin_activation")

    monkeypatch.setattr(web.middleware, "chain_and_plugins", boom)
    assert_clean_error_page(client.get("/"), 500, "Lỗi hệ thống")


def test_the_app_keeps_serving_after_a_500(client, login, monkeypatch):
    login()
    break_home(monkeypatch)
    assert client.get("/").status_code == 500
    monkeypatch.undo()
    assert client.get("/").status_code == 200


def test_the_app_is_never_in_debug_mode(app):
    assert app.debug is False


def test_404_for_htmx_is_a_fragment(client):
    response = client.get("/no/such/page", headers=HX)
    assert response.status_code == 404
    assert "<html" not in response.text and "<body" not in response.text
    assert "Không tìm thấy trang" in response.text
    assert response.headers["x-request-id"] in response.text


def test_a_boosted_htmx_navigation_gets_the_full_page(client):
    response = client.get("/no/such/page", headers={**HX, "HX-Boosted": "true"})
    assert response.status_code == 404 and "<html" in response.text


def test_english_error_page(client):
    response = client.get("/no/such/page", headers={"Accept-Language": "en"})
    assert response.status_code == 404 and '<html lang="en">' in response.text
    assert "Không tìm thấy" not in response.text


def test_a_bad_host_header_is_refused(client):
    response = client.get("/login", headers={"Host": "evil.example"})
    assert response.status_code == 400
    assert "Đăng nhập" not in response.text


# -- health check ----------------------------------------------------------------------------------

def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["cache-control"] == "no-store"
    assert "set-cookie" not in response.headers  # no session, no CSRF cookie for probes


def test_healthz_answers_503_when_the_database_is_unreachable(make_app, make_settings):
    unreachable = with_overrides(make_settings(), database_url="postgresql://nobody@127.0.0.1:1/x")
    app = make_app(unreachable, migrate=False)
    with TestClient(app) as client:
        response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["status"] != "ok"
    assert "nobody" not in response.text and "127.0.0.1" not in response.text


def test_a_token_with_non_ascii_characters_is_refused_not_a_server_error(client, admin):
    # hmac.compare_digest raises on a str holding non-ASCII characters: compared as bytes, it is a refusal.
    for token in ("Đ" * len(admin), "é" + admin[1:]):
        assert_refused(client.post("/logout", data={"csrf_token": token}, follow_redirects=False))
    header = client.post("/logout", headers={"X-CSRF-Token": ("é" + admin[1:]).encode("latin-1")},
                         follow_redirects=False)
    assert_refused(header)
