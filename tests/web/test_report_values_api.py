"""The JSON API for a report's values (issue 5): GET reads the grid as canonical strings with
the checks; PUT writes through the same validation as the screen, all or nothing (422 with each
cell's error), 409 on a stale revision; a token writes only when created with "may write"; a
session writes with the CSRF header. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.web.test_report_entry import log_in, stored


@pytest.fixture
def world(client):
    from core.db import db
    from tests.fixtures.forms import form_world

    with db.connection_context():
        return form_world()


def bearer(user, *, can_write=False) -> dict:
    from core.accounts import api_tokens
    from core.db import db

    with db.connection_context():
        _, secret = api_tokens.create_token(user, "máy nhập liệu", 30, can_write=can_write)
    return {"Authorization": f"Bearer {secret}"}


def url(world) -> str:
    return f"/api/v1/reports/{world.report.id}/values"


def test_get_reads_the_grid_with_canonical_values_and_checks(client, world):
    from core.reporting import data as rd
    from core.db import db
    from tests.fixtures.forms import access_of

    with db.connection_context():
        rd.save(access_of(world.users["reporter"]), world.report.id,
                {("banle", "cur"): ("", "1.234,50"), ("dulich", "cur"): ("", "-2")})
    response = client.get(url(world), headers=bearer(world.users["reporter"]))
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["report"]["id"] == world.report.id and data["report"]["unit"]["code"] == "AT"
    assert data["report"]["form"] == {"code": "BM-THANG", "version": 1}
    assert data["report"]["revision"] == 1 and data["report"]["status"] == "draft"
    assert [c["key"] for c in data["columns"]] == ["prev", "cur", "ytd", "same", "ratio"]
    assert data["values"]["banle.cur"] == "1234.5" and data["values"]["tong.cur"] == "1232.5"
    assert data["values"]["banle.same"] is None
    assert "h1.cur" not in data["values"]  # a heading's cells are greyed
    assert data["kinds"]["banle.cur"] == "input" and data["kinds"]["tong.cur"] == "computed"
    blocker = [m for m in data["messages"] if m["severity"] == "blocker"]
    assert blocker and blocker[0]["cell"] == "dulich.cur" and "không được âm" in blocker[0]["message"]["vi"]
    assert response.headers["cache-control"] == "private, no-store"
    # The receiver reads too; for another unit's reporter the report does not exist (ACL-02).
    assert client.get(url(world), headers=bearer(world.users["issuer"])).status_code == 200
    refused = client.get(url(world), headers=bearer(world.users["other"]))
    assert refused.status_code == 404 and refused.json()["error"]["code"] == "not_found"
    assert client.get("/api/v1/reports/999999/values", headers=bearer(world.users["other"])).status_code == 404


def test_put_with_a_writing_token_saves_and_raises_the_revision(client, world):
    auth = bearer(world.users["reporter"], can_write=True)
    response = client.put(url(world), json={"revision": 0, "values": {"banle.cur": "1.500", "dulich.cur": 25.5}},
                          headers=auth)
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["report"]["revision"] == 1 and data["changed"] == {"cells": 2, "sections": 0}
    assert data["values"]["tong.cur"] == "1525.5"
    assert stored(world.report.id) == {("banle", "cur"): Decimal("1500"), ("dulich", "cur"): Decimal("25.5")}
    # The same values again change nothing; null empties a cell.
    again = client.put(url(world), json={"values": {"banle.cur": "1500"}}, headers=auth)
    assert again.json()["changed"] == {"cells": 0, "sections": 0} and again.json()["report"]["revision"] == 1
    emptied = client.put(url(world), json={"values": {"dulich.cur": None}, "sections": {"ketqua": "Ổn định."}},
                         headers=auth)
    assert emptied.status_code == 200 and emptied.json()["sections"]["ketqua"] == "Ổn định."
    assert stored(world.report.id) == {("banle", "cur"): Decimal("1500")}


def test_put_refuses_bad_cells_all_or_nothing(client, world):
    auth = bearer(world.users["reporter"], can_write=True)
    response = client.put(url(world), json={"values": {"banle.cur": "12", "dulich.cur": "abc", "tong.cur": "5",
                                                       "nothere": "1"}}, headers=auth)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_values" and set(error["message"]) == {"vi", "en"}
    assert "nothere" in error["cells"]
    response = client.put(url(world), json={"values": {"banle.cur": "12", "dulich.cur": "abc", "tong.cur": "5"}},
                          headers=auth)
    error = response.json()["error"]
    assert set(error["cells"]) == {"dulich.cur", "tong.cur"}
    assert "không phải là một số" in error["cells"]["dulich.cur"]["vi"] and error["cells"]["dulich.cur"]["en"]
    assert stored(world.report.id) == {}
    bad = client.put(url(world), content=b"{not json", headers={**auth, "Content-Type": "application/json"})
    assert bad.status_code == 400 and "body" in bad.json()["error"]["fields"]
    bad = client.put(url(world), json={"values": ["x"], "revision": "1"}, headers=auth)
    assert bad.status_code == 400 and set(bad.json()["error"]["fields"]) == {"values", "revision"}


def test_put_with_a_stale_revision_is_409(client, world):
    auth = bearer(world.users["reporter"], can_write=True)
    assert client.put(url(world), json={"revision": 0, "values": {"banle.cur": "1"}}, headers=auth).status_code == 200
    stale = client.put(url(world), json={"revision": 0, "values": {"banle.cur": "2"}}, headers=auth)
    assert stale.status_code == 409
    assert stale.json()["error"]["code"] == "conflict" and stale.json()["error"]["revision"] == 1
    assert stored(world.report.id) == {("banle", "cur"): Decimal("1")}


def test_a_read_only_token_cannot_write_and_other_writes_are_refused(client, world):
    reading = bearer(world.users["reporter"])
    refused = client.put(url(world), json={"values": {"banle.cur": "1"}}, headers=reading)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "token_read_only"
    assert "Cho phép ghi số liệu báo cáo" in refused.json()["error"]["message"]["vi"]
    # A writing token of the receiver (may read, not fill): 403; of another unit's reporter: 404.
    for who, status in (("issuer", 403), ("other", 404)):
        response = client.put(url(world), json={"values": {"banle.cur": "1"}},
                              headers=bearer(world.users[who], can_write=True))
        assert response.status_code == status, (who, response.text)
    # PUT elsewhere in the API stays refused; POST on this path too.
    assert client.put("/api/v1/units", headers=reading).status_code == 405
    assert client.post(url(world), json={}, headers=bearer(world.users["reporter"], can_write=True)).status_code == 405
    assert stored(world.report.id) == {}


def test_a_session_writes_with_the_csrf_header_only(client, world):
    token = log_in(client, world.users["reporter"])
    assert client.get(url(world)).status_code == 200
    no_header = client.put(url(world), json={"values": {"banle.cur": "3"}})
    assert no_header.status_code == 403
    response = client.put(url(world), json={"values": {"banle.cur": "3"}}, headers={"X-CSRF-Token": token})
    assert response.status_code == 200, response.text
    assert stored(world.report.id) == {("banle", "cur"): Decimal("3")}


def test_a_submitted_report_is_409(client, world):
    from core.db import db
    from core.reporting.opening import Report

    with db.connection_context():
        Report.update(status="submitted").where(Report.id == world.report.id).execute()
    response = client.put(url(world), json={"values": {"banle.cur": "3"}},
                          headers=bearer(world.users["reporter"], can_write=True))
    assert response.status_code == 409 and response.json()["error"]["code"] == "not_editable"


def test_the_openapi_document_describes_get_and_put(client, world):
    data = client.get("/api/v1/openapi.json", headers=bearer(world.users["reporter"])).json()
    path = data["paths"]["/api/v1/reports/{id}/values"]
    assert set(path) == {"get", "put"}
    assert path["put"]["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("ReportValuesInput")
    assert {"409", "422"} <= set(path["put"]["responses"])


def test_the_token_form_offers_may_write(client, world):
    from core.accounts.api_tokens import ApiToken
    from core.db import db

    token = log_in(client, world.users["reporter"])
    page = client.get("/account/tokens")
    assert "Cho phép ghi số liệu báo cáo" in page.text
    created = client.post("/account/tokens", data={"name": "Máy nhập", "days": "30", "can_write": "1",
                                                   "csrf_token": token})
    assert created.status_code == 200, created.text[:500]
    assert "Được ghi" in created.text
    with db.connection_context():
        assert ApiToken.get(ApiToken.name == "Máy nhập").can_write is True
