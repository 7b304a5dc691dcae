"""Hostile or unlucky input gets a clear refusal, never a 500 (issue 12 items 7, 12, 13 and 23):
NUL characters, "²" where digits are expected, ids past 2**63, a huge offset, deeply nested or
oversized JSON, bodies larger than their route's limit (with or without Content-Length), the
documented 20 MB attachment limit for plain-form uploads, and a database still locked after
the busy wait (503 with Retry-After). Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import pytest

from tests.conftest import HX, csrf_from

HUGE = "9223372036854775808"  # 2**63: one past the largest id either database stores
MB = 1024 * 1024


@pytest.fixture
def world(client):
    from core.db import db
    from tests.fixtures.forms import form_world

    with db.connection_context():
        return form_world()


def log_in(client, user) -> str:
    from core.accounts import login as accounts
    from core.db import db
    from core.models import utcnow

    with db.connection_context():
        token = accounts.start_session(user, reauth_at=utcnow())
    client.cookies.clear()
    client.cookies.set("baocao_session", token)
    page = client.get("/")
    assert page.status_code == 200, page.text[:300]
    return csrf_from(page.text)


def admin(client, make_user) -> str:
    user, _ = make_user(is_admin=True)
    return log_in(client, user)


# -- NUL --------------------------------------------------------------------------------------------

def test_a_nul_in_the_login_form_is_a_400_with_a_message_in_both_languages(client):
    csrf = csrf_from(client.get("/login").text)
    answer = client.post("/login", data={"username": "ad\x00min", "password": "x", "csrf_token": csrf})
    assert answer.status_code == 400
    assert "ký tự rỗng" in answer.text
    english = client.post("/login", data={"username": "ad\x00min", "password": "x", "csrf_token": csrf},
                          headers={"Accept-Language": "en"})
    assert english.status_code == 400 and "null character" in english.text


def test_a_nul_in_a_query_string_or_a_path_is_a_400(client, make_user):
    admin(client, make_user)
    for url in ("/units?q=a%00b", "/users?q=%00", "/units/%00"):
        answer = client.get(url)
        assert answer.status_code == 400, url
        assert "ký tự rỗng" in answer.text


def test_a_nul_in_a_multipart_field_is_refused_not_a_500(client, world):
    token = log_in(client, world.users["reporter"])
    answer = client.post(f"/reports/{world.report.id}/comments", data={"cell": "banle.cur", "text": "a\x00b"},
                         files={"unused": ("a.txt", b"x")}, headers={"X-CSRF-Token": token})
    assert answer.status_code < 500


# -- numbers ----------------------------------------------------------------------------------------

def test_superscript_and_other_script_digits_are_no_numbers(client, make_user, world):
    admin(client, make_user)
    for url in ("/audit?unit=²", f"/reports/{world.report.id}?imported=²", "/audit?unit=١٢",
                f"/reports/{world.report.id}/versions/1/diff?against=²", "/inbox?page=²"):
        assert client.get(url).status_code < 500, url
    token = log_in(client, world.users["reporter"])
    answer = client.post(f"/reports/{world.report.id}/submit", data={"revision": "²"},
                         headers={"X-CSRF-Token": token})
    assert answer.status_code < 500
    for form in ({"revision": "²"}, {"revision": "١"}):
        answer = client.post(f"/reports/{world.report.id}/signing/prepare", data=form,
                             headers={"X-CSRF-Token": token})
        assert answer.status_code < 500


def test_safe_input_reads_ascii_digits_only_within_range():
    from core.safe_input import MAX_ID, parse_id, parse_int

    assert parse_int("42") == 42 and parse_id(str(MAX_ID)) == MAX_ID
    for text in ("²", "١٢", " 7", "1_000", "+1", HUGE, "9" * 5000, "", "0", "-1", None, True, "1.0"):
        assert parse_id(text) is None, text
    assert parse_int("-3", minimum=-5) == -3 and parse_int("0", minimum=0) == 0


def test_a_setting_written_with_superscript_digits_is_refused_by_name():
    from core.errors import SettingsError
    from core.settings import load_settings

    with pytest.raises(SettingsError) as refused:
        load_settings(env={"BAOCAO_SESSION_IDLE_MINUTES": "²"})
    assert "BAOCAO_SESSION_IDLE_MINUTES" in str(refused.value)
    assert load_settings(env={"BAOCAO_SESSION_IDLE_MINUTES": "15"}).session_idle_minutes == 15


def test_an_id_past_2_63_in_a_path_is_a_400_with_a_message(client, make_user, world):
    admin(client, make_user)
    for url in (f"/users/{HUGE}", f"/reports/{HUGE}", f"/regimes/{HUGE}/reports", f"/units/{HUGE}/seal",
                f"/reports/1/attachments/{HUGE}", f"/units/{HUGE}/change", "/users/" + "9" * 5000):
        answer = client.get(url)
        assert answer.status_code in (400, 404), (url, answer.status_code)
        if answer.status_code == 400:
            assert "quá lớn" in answer.text
    assert client.get(f"/users/{HUGE}").status_code == 400
    api = client.get(f"/api/v1/reports/{HUGE}/values")
    assert api.status_code == 400
    message = api.json()["error"]["message"]
    assert "quá lớn" in message["vi"] and "too large" in message["en"]


def test_a_huge_offset_is_a_400_naming_the_parameter(client, make_user):
    admin(client, make_user)
    answer = client.get(f"/api/v1/units?offset={HUGE}")
    assert answer.status_code == 400
    assert set(answer.json()["error"]["fields"]) == {"offset"}
    for value in ("²", "-1", "1e3"):
        assert client.get(f"/api/v1/units?offset={value}").status_code == 400
    assert client.get("/api/v1/units?offset=9223372036854775807").status_code == 200


# -- JSON and body size -----------------------------------------------------------------------------

def test_a_100000_deep_json_body_is_a_400(client, world):
    token = log_in(client, world.users["reporter"])
    url = f"/api/v1/reports/{world.report.id}/values"
    deep = b"[" * 100_000 + b"]" * 100_000
    answer = client.put(url, content=deep, headers={"X-CSRF-Token": token, "Content-Type": "application/json"})
    assert answer.status_code == 400
    body = answer.json()["error"]["fields"]["body"]
    assert "quá nhiều tầng" in body["vi"] and "too deeply" in body["en"]
    nul = client.put(url, content=b'{"values": {"banle.cur": "1\\u0000"}}',
                     headers={"X-CSRF-Token": token, "Content-Type": "application/json"})
    assert nul.status_code == 400


def test_a_body_past_its_limit_is_a_413_as_it_streams(client, world):
    token = log_in(client, world.users["reporter"])
    url = f"/api/v1/reports/{world.report.id}/values"
    big = b'{"values": {"banle.cur": "' + b"1" * (6 * MB) + b'"}}'
    headers = {"X-CSRF-Token": token, "Content-Type": "application/json"}
    declared = client.put(url, content=big, headers=headers)
    assert declared.status_code == 413
    assert "MB" in declared.json()["error"]["message"]["vi"]

    def chunks():  # no Content-Length: counted while it arrives
        for start in range(0, len(big), MB):
            yield big[start:start + MB]

    streamed = client.put(url, content=chunks(), headers=headers)
    assert streamed.status_code == 413
    # A plain form larger than the default limit (10 MB) is refused with the limit named.
    page = client.post(f"/reports/{world.report.id}/comments", data={"text": "x" * (12 * MB)},
                       headers={"X-CSRF-Token": token})
    assert page.status_code == 413 and "10 MB" in page.text
    assert stored_nothing(world.report.id)


def stored_nothing(report_id) -> bool:
    from core.db import db
    from core.reporting.data import stored_values

    with db.connection_context():
        return stored_values(report_id) == {}


# -- uploads: the documented limit holds for plain forms --------------------------------------------

def test_a_15_mb_attachment_by_plain_form_is_stored_and_21_mb_refused(client, world):
    from core.db import db
    from core.reporting.data import ReportAttachment as Attachment

    token = log_in(client, world.users["reporter"])
    url = f"/reports/{world.report.id}/attachments"
    # A browser without JavaScript: the token travels in the multipart body, no X-CSRF-Token.
    pdf = b"%PDF-1.7\n"
    answer = client.post(url, data={"csrf_token": token}, files={"file": ("bang-ke.pdf", pdf + b"0" * (15 * MB))},
                         follow_redirects=False)
    assert answer.status_code == 303, answer.text[:500]
    with db.connection_context():
        assert Attachment.select().where(Attachment.report == world.report.id).count() == 1
    refused = client.post(url, data={"csrf_token": token}, files={"file": ("lon.pdf", pdf + b"0" * (21 * MB))},
                          follow_redirects=False)
    assert refused.status_code in (413, 422)
    assert "20 MB" in refused.text
    with db.connection_context():
        assert Attachment.select().where(Attachment.report == world.report.id).count() == 1


# -- a busy database --------------------------------------------------------------------------------

def test_a_database_still_locked_after_the_busy_wait_is_a_503_with_retry_after(client, world, monkeypatch):
    import peewee

    from core.reporting import facade

    token = log_in(client, world.users["reporter"])

    def locked(*args, **kwargs):
        raise peewee.OperationalError("database is locked")

    monkeypatch.setattr(facade, "save", locked)  # what the screen and the API call
    answer = client.post(f"/reports/{world.report.id}/save", data={"cell.banle.cur": "5"},
                         headers={**HX, "X-CSRF-Token": token})
    assert answer.status_code == 503
    assert answer.headers["Retry-After"].isdigit()
    assert "đang bận" in answer.text and "<html" not in answer.text
    api = client.put(f"/api/v1/reports/{world.report.id}/values", json={"values": {"banle.cur": "5"}},
                     headers={"X-CSRF-Token": token})
    assert api.status_code == 503 and "Retry-After" in api.headers
    assert "busy" in api.json()["error"]["message"]["en"]


def test_a_database_connection_ended_by_the_server_is_a_503_saying_it_reconnects(client, world, monkeypatch):
    """What psycopg raises when PostgreSQL restarts under a request (tests/faults has the real one):
    a 503 with Retry-After, not a 500 — nothing is wrong with the request."""
    import peewee

    from core.reporting import facade

    token = log_in(client, world.users["reporter"])

    def ended(*args, **kwargs):
        raise peewee.OperationalError("terminating connection due to administrator command\n"
                                      "server closed the connection unexpectedly")

    monkeypatch.setattr(facade, "save", ended)
    answer = client.post(f"/reports/{world.report.id}/save", data={"cell.banle.cur": "5"},
                         headers={**HX, "X-CSRF-Token": token})
    assert answer.status_code == 503 and answer.headers["Retry-After"].isdigit()
    assert "kết nối lại" in answer.text
    api = client.put(f"/api/v1/reports/{world.report.id}/values", json={"values": {"banle.cur": "5"}},
                     headers={"X-CSRF-Token": token})
    assert api.status_code == 503 and "reconnecting" in api.json()["error"]["message"]["en"]


def test_sqlite_transactions_begin_immediate_with_a_busy_timeout(tmp_path):
    from core.db import SQLITE_PRAGMAS, make_database

    database = make_database(f"sqlite:///{tmp_path / 'x.db'}")
    assert database._lock_type == "IMMEDIATE"
    assert SQLITE_PRAGMAS["busy_timeout"] >= 5000
    database.connect()
    try:
        assert database.execute_sql("PRAGMA busy_timeout").fetchone()[0] == SQLITE_PRAGMAS["busy_timeout"]
    finally:
        database.close()
