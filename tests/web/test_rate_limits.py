"""Per-caller budgets on the API and the exports (security.md API-04, web.rate_limits): a burst gets
429 with Retry-After past the threshold, in the caller's language, and the budget is whole again in
the next minute. The clock is frozen and moved; nothing sleeps."""

from __future__ import annotations

import datetime as dt

import pytest
from starlette.testclient import TestClient

from core.accounts import api_tokens
from core.accounts import login as accounts
from core.audit import AuditEvent
from core.db import db
from core.rate_limits import RateLimitWindow
from web.rate_limits import RateLimits

T0 = dt.datetime(2026, 3, 2, 8, 0, 45)  # 15 seconds before its minute ends
API, EXPORT = 3, 2


@pytest.fixture
def settings(make_settings):
    return make_settings(api_requests_per_minute=API, exports_per_minute=EXPORT)


@pytest.fixture
def at(frozen_clock):
    frozen_clock(T0)
    return lambda seconds: frozen_clock(T0 + dt.timedelta(seconds=seconds))


@pytest.fixture
def token(make_user):
    def make(*, lang=None):
        user, _ = make_user(is_admin=True)
        with db.connection_context():
            if lang:
                accounts.set_language(user, lang)
            return api_tokens.create_token(user, "máy thống kê", 30)[1]

    return make


def call(client, secret, path="/api/v1/units"):
    return client.get(path, headers={"Authorization": f"Bearer {secret}"})


def audit_count() -> int:
    with db.connection_context():
        return AuditEvent.select().count()


def test_api04_an_api_burst_gets_429_with_retry_after_and_the_json_error_in_both_languages(client, token, at):
    secret = token()
    assert [call(client, secret).status_code for _ in range(API)] == [200] * API
    refused = call(client, secret)
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "15"
    assert refused.headers["content-type"].startswith("application/json")
    error = refused.json()["error"]
    assert error["code"] == "rate_limited"
    assert error["message"] == {
        "vi": "Mỗi phút chỉ được gọi API 3 lần. Hãy thử lại sau 15 giây.",
        "en": "The API may be called 3 times a minute. Try again in 15 seconds."}
    at(10)
    assert call(client, secret).headers["retry-after"] == "5"


def test_api04_the_api_budget_is_whole_again_in_the_next_minute(client, token, at):
    secret = token()
    for _ in range(API + 2):
        call(client, secret)
    assert call(client, secret).status_code == 429
    at(15)  # 08:01:00
    assert [call(client, secret).status_code for _ in range(API)] == [200] * API
    assert call(client, secret).status_code == 429


def test_api04_two_callers_have_separate_budgets(client, token, login, at):
    first, second = token(), token()
    for _ in range(API):
        call(client, first)
    assert call(client, first).status_code == 429
    assert call(client, second).status_code == 200
    login(is_admin=True)  # the session of a person: a budget of its own
    assert client.get("/api/v1/units").status_code == 200
    with db.connection_context():
        assert sorted(w.caller[:2] for w in RateLimitWindow.select()) == ["t:", "t:", "u:"]


def test_api04_a_plugins_api_counts_in_the_api_bucket(client, token, at):
    secret = token()
    for _ in range(API):
        call(client, secret)
    assert call(client, secret, "/api/v1/p/kinhte_xahoi/anything").status_code == 429


@pytest.mark.parametrize("lang, title, reason", [
    ("vi", "Quá nhiều yêu cầu", "Mỗi phút chỉ được tải 2 tệp kết xuất. Hãy thử lại sau 15 giây."),
    ("en", "Too many requests", "Exports may be downloaded 2 times a minute. Try again in 15 seconds."),
])
def test_api04_an_export_burst_gets_the_429_page_in_the_persons_language(client, login, at, lang, title, reason):
    user = login(is_admin=True)
    with db.connection_context():
        accounts.set_language(user, lang)
    assert [client.get("/units/export").status_code for _ in range(EXPORT)] == [200] * EXPORT
    refused = client.get("/units/export")
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "15"
    assert refused.headers["content-type"].startswith("text/html")
    assert title in refused.text and reason in refused.text
    at(15)
    assert client.get("/units/export").status_code == 200


def test_api04_a_refused_request_writes_nothing_else(client, login, at):
    login(is_admin=True)
    before = audit_count()
    for _ in range(EXPORT):
        assert client.get("/units/export").status_code == 200
    assert audit_count() == before + EXPORT  # each export is audited (unit.export)...
    assert client.get("/units/export").status_code == 429
    assert audit_count() == before + EXPORT  # ...the refused one is not, nor recorded as denied
    with db.connection_context():
        assert [w.hits for w in RateLimitWindow.select()] == [EXPORT + 1]


def test_api04_a_setting_of_0_turns_a_bucket_off(make_app, make_settings, make_user, frozen_clock):
    frozen_clock(T0)
    app = make_app(make_settings(api_requests_per_minute=0, exports_per_minute=EXPORT))
    with TestClient(app) as client:
        user, _ = make_user(is_admin=True)
        with db.connection_context():
            secret = api_tokens.create_token(user, "máy thống kê", 30)[1]
        assert {call(client, secret).status_code for _ in range(API * 3)} == {200}
        with db.connection_context():
            assert RateLimitWindow.select().count() == 0


def test_api04_pages_health_and_static_files_are_never_counted(client, login, at):
    login(is_admin=True)
    for path in ("/", "/units", "/healthz", "/login", "/static/core/missing.css", "/api"):
        for _ in range(API + 1):
            client.get(path)
    with db.connection_context():
        assert RateLimitWindow.select().count() == 0


def test_api04_the_export_bucket_holds_every_export_route_the_plugins_too(app, settings):
    limits = RateLimits(None, settings, app.routes)
    exports = ["/audit/export.xlsx", "/units/export", "/reports/7/export.xlsx", "/figures/export.xlsx",
               "/dashboard/export", "/admin/usage/export.xlsx", "/admin/usage/export.csv",
               "/completeness/export.xlsx", "/completeness/year/export.xlsx",
               "/p/chuyen_nganh/catalogue/5/export.csv", "/p/national_link/interop/export"]
    assert [limits.bucket(path) for path in exports] == ["export"] * len(exports)
    assert [limits.bucket(p) for p in ("/units", "/reports/7", "/healthz", "/metrics", "/static/core/app.css",
                                       "/api", "/reports/x/export.xlsx")] == [None] * 7
    assert limits.bucket("/api/v1/units") == limits.bucket("/api/v1/p/any/thing") == "api"


def test_api04_the_openapi_document_lists_429_on_every_operation(client, login):
    login(is_admin=True)
    document = client.get("/api/v1/openapi.json").json()
    operations = [op for path in document["paths"].values() for op in path.values()]
    assert operations and all("429" in op["responses"] for op in operations)
