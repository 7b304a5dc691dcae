"""The read-only JSON API (/api/v1): who may call it (session or bearer token), what each
caller sees (their core.unit.view subtrees), JSON errors in both languages, pagination,
the periods calculator, and an OpenAPI document that matches the routes exactly."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from core.accounts import login as accounts
from core.accounts import api_tokens
from core.accounts.access import Grant, Role
from core.audit import AuditEvent
from core.db import db
from core.models import Unit, User
from tests.conftest import HX, csrf_from
from tests.fixtures.plugins import log_in


def assert_error(response, status, code=None):
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert set(error["message"]) == {"vi", "en"} and all(error["message"].values())
    assert error["message"]["vi"] != error["message"]["en"]
    if code:
        assert error["code"] == code
    return error


@pytest.fixture
def world(make_app):
    """A province with a department and two communes (one abolished on 30/06/2025), people with
    the viewer role at different units, and a small indicator catalogue."""
    from core.catalogue import indicators

    app = make_app(builtins=())  # the core alone: no plugin adds its own indicators or regimes
    with TestClient(app) as client:
        with db.connection_context():
            province = Unit.create(code="44", name="Tỉnh Quảng Trị", kind="province", admin_code="44")
            department = Unit.create(code="QT.STC", name="Sở Tài chính", kind="department", parent=province)
            dong_hoi = Unit.create(code="18880", name="Phường Đồng Hới", kind="commune", parent=province,
                                   valid_from=dt.date(2025, 7, 1))
            old = Unit.create(code="19000", name="Xã Đức Ninh", kind="commune", parent=province,
                              valid_to=dt.date(2025, 6, 30))
            viewer = Role.get(Role.code == "viewer")
            passwords, people = {}, {}

            def person(key, unit, *, is_admin=False, role=viewer):
                passwords[key] = accounts.random_password()
                user = accounts.create_user(f"u_{key}", f"Người {key}", passwords[key], unit, is_admin=is_admin)
                if role is not None:
                    Grant.create(user=user, role=role, unit=unit)
                people[key] = user

            person("admin", province, is_admin=True, role=None)
            person("province", province)
            person("commune", dong_hoi)
            person("department", department)
            person("nobody", dong_hoi, role=None)
            indicators.save_group("T01", "Dân số và lao động")
            indicators.save_group("X01", "Chỉ tiêu cấp xã")
            indicators.save_indicator({"code": "T0101", "name": "Dân số trung bình", "unit_of_measure": "Người"})
            indicators.save_indicator({"code": "T0101", "name": "Dân số trung bình phân theo giới tính",
                                       "unit_of_measure": "Người"})
            indicators.save_indicator({"code": "T0102", "name": "Lực lượng lao động"})
            indicators.save_indicator({"code": "X0101", "name": "Số hộ dân cư"})

        def as_user(key):
            client.cookies.clear()
            log_in(client, people[key], passwords[key])
            return client

        def bearer(key, days=30):
            with db.connection_context():
                return api_tokens.create_token(people[key], "test", days)[1]

        def anonymous():
            client.cookies.clear()
            return client

        yield {"as_user": as_user, "bearer": bearer, "anonymous": anonymous, "people": people, "app": app,
               "units": {"province": province, "department": department, "dong_hoi": dong_hoi, "old": old}}


def codes(response):
    assert response.status_code == 200, response.text
    return [u["code"] for u in response.json()["items"]]


# -- authentication ----------------------------------------------------------------------------

def test_without_a_session_or_token_the_api_answers_401_json_not_a_redirect(world):
    client = world["anonymous"]()
    response = client.get("/api/v1/units", follow_redirects=False)
    assert_error(response, 401, "unauthenticated")
    assert "Bearer" in response.headers["www-authenticate"]
    for path in ("/api/v1/indicators", "/api/v1/periods?frequency=monthly", "/api/v1/openapi.json"):
        assert_error(client.get(path, follow_redirects=False), 401)


def test_a_bearer_token_acts_as_its_user(world):
    token = world["bearer"]("province")
    client = world["anonymous"]()
    response = client.get("/api/v1/units", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.json()["total"] == 3  # valid today: province, department, Đồng Hới
    assert "set-cookie" not in response.headers  # a machine gets no session or CSRF cookie
    assert response.headers["cache-control"] == "private, no-store"


@pytest.mark.parametrize("header", [
    "Bearer bc_" + "x" * 43,  # well formed, unknown
    "Bearer not-a-token",
    "Bearer ",
    "Basic dXNlcjpwYXNz",
])
def test_a_wrong_authorization_header_is_401_even_with_a_valid_session(world, header):
    client = world["as_user"]("province")
    assert client.get("/api/v1/units").status_code == 200  # the cookie alone works
    assert_error(client.get("/api/v1/units", headers={"Authorization": header}), 401, "unauthenticated")


def test_a_revoked_an_expired_token_and_a_disabled_account_stop_working(world):
    people = world["people"]
    client = world["anonymous"]()
    token = world["bearer"]("province")
    auth = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/units", headers=auth).status_code == 200
    with db.connection_context():
        row = api_tokens.ApiToken.get(api_tokens.ApiToken.token_hash == api_tokens.digest(token))
        api_tokens.revoke(people["province"], row.id)
    assert_error(client.get("/api/v1/units", headers=auth), 401)

    token = world["bearer"]("province")
    auth = {"Authorization": f"Bearer {token}"}
    with db.connection_context():
        api_tokens.ApiToken.update(expires_at=dt.datetime(2020, 1, 1)).where(
            api_tokens.ApiToken.token_hash == api_tokens.digest(token)).execute()
    assert_error(client.get("/api/v1/units", headers=auth), 401)

    token = world["bearer"]("province")
    auth = {"Authorization": f"Bearer {token}"}
    with db.connection_context():
        User.update(is_active=False).where(User.id == people["province"].id).execute()
    assert_error(client.get("/api/v1/units", headers=auth), 401)


def test_a_token_is_not_accepted_outside_the_api(world):
    token = world["bearer"]("admin")
    client = world["anonymous"]()
    response = client.get("/users", headers={"Authorization": f"Bearer {token}"}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/login")


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
def test_the_api_is_read_only(world, method):
    token = world["bearer"]("admin")
    client = world["anonymous"]()
    for path in ("/api/v1/units", "/api/v1/indicators/T0101", "/api/v1/nothing-here"):
        response = client.request(method, path, headers={"Authorization": f"Bearer {token}"})
        assert_error(response, 405, "method_not_allowed")
        assert response.headers["allow"] == "GET, HEAD"


def test_head_is_served(world):
    client = world["as_user"]("province")
    assert client.head("/api/v1/units").status_code == 200


# -- permissions and scope ----------------------------------------------------------------------

def test_without_the_right_403_json_and_the_refusal_is_audited(world):
    client = world["as_user"]("nobody")
    error = assert_error(client.get("/api/v1/units"), 403, "forbidden")
    assert "quyền" in error["message"]["vi"]
    assert_error(client.get("/api/v1/indicators"), 403)
    assert client.get("/api/v1/periods?frequency=annual&year=2026").status_code == 200  # any logged-in user
    with db.connection_context():
        assert AuditEvent.select().where((AuditEvent.action == "access.denied")
                                         & (AuditEvent.object_id == "/api/v1/units")).count() == 1


@pytest.mark.parametrize("who, visible", [
    ("admin", ["44", "QT.STC", "18880"]),
    ("province", ["44", "QT.STC", "18880"]),
    ("commune", ["18880"]),
    ("department", ["QT.STC"]),
])
def test_each_caller_sees_only_their_subtree(world, who, visible):
    client = world["anonymous"]()
    auth = {"Authorization": f"Bearer {world['bearer'](who)}"}
    assert sorted(codes(client.get("/api/v1/units", headers=auth))) == sorted(visible)
    for code in ("44", "QT.STC", "18880"):
        response = client.get(f"/api/v1/units/{code}", headers=auth)
        if code in visible:
            assert response.json()["code"] == code
        else:
            assert_error(response, 404, "not_found")  # exactly like a unit that does not exist
    assert_error(client.get("/api/v1/units/NO-SUCH", headers=auth), 404, "not_found")


def test_a_unit_carries_its_fields_and_children(world):
    client = world["as_user"]("province")
    data = client.get("/api/v1/units/44").json()
    assert data["name"] == "Tỉnh Quảng Trị" and data["kind"] == "province" and data["admin_code"] == "44"
    assert data["parent_code"] is None and data["valid_at"] is True
    assert sorted(c["code"] for c in data["children"]) == ["18880", "QT.STC"]
    item = next(u for u in client.get("/api/v1/units").json()["items"] if u["code"] == "18880")
    assert item == {"code": "18880", "name": "Phường Đồng Hới", "kind": "commune", "parent_code": "44",
                    "admin_code": None, "agency_code": None, "valid_from": "2025-07-01", "valid_to": None}


def test_units_as_at_a_date(world):
    client = world["as_user"]("province")
    before = client.get("/api/v1/units?at=2025-06-30").json()
    assert before["at"] == "2025-06-30"
    assert sorted(u["code"] for u in before["items"]) == ["19000", "44", "QT.STC"]
    after = client.get("/api/v1/units?at=2025-07-01").json()
    assert sorted(u["code"] for u in after["items"]) == ["18880", "44", "QT.STC"]
    children = client.get("/api/v1/units/44?at=2025-06-30").json()["children"]
    assert sorted(c["code"] for c in children) == ["19000", "QT.STC"]
    error = assert_error(client.get("/api/v1/units?at=30/06/2025"), 400, "invalid_parameters")
    assert set(error["fields"]) == {"at"} and "30/06/2025" in error["fields"]["at"]["en"]


def test_unit_filters_parent_kind_and_search(world):
    client = world["as_user"]("province")
    assert sorted(codes(client.get("/api/v1/units?parent=44"))) == ["18880", "QT.STC"]
    assert codes(client.get("/api/v1/units?kind=department")) == ["QT.STC"]
    assert codes(client.get("/api/v1/units?q=dong hoi")) == ["18880"]  # diacritics ignored
    assert codes(client.get("/api/v1/units?q=%C4%90%E1%BB%93ng")) == ["18880"]
    assert_error(client.get("/api/v1/units?kind=galaxy"), 400, "invalid_parameters")
    commune = world["as_user"]("commune")
    assert_error(commune.get("/api/v1/units?parent=QT.STC"), 404)  # a parent outside the scope


def test_pagination_limit_offset_and_total(world):
    client = world["as_user"]("admin")
    full = client.get("/api/v1/units").json()
    assert full["total"] == 3 and full["limit"] == 100 and full["offset"] == 0
    first = client.get("/api/v1/units?limit=2").json()
    second = client.get("/api/v1/units?limit=2&offset=2").json()
    assert first["total"] == second["total"] == 3
    assert [u["code"] for u in first["items"] + second["items"]] == [u["code"] for u in full["items"]]
    assert client.get("/api/v1/units?offset=99").json()["items"] == []
    for bad in ("limit=0", "limit=501", "limit=ten", "offset=-1"):
        error = assert_error(client.get(f"/api/v1/units?{bad}"), 400, "invalid_parameters")
        assert set(error["fields"]) == {bad.split("=")[0]}
    assert client.get("/api/v1/units?limit=500").status_code == 200


# -- indicators -------------------------------------------------------------------------------

def test_indicator_search_ignores_diacritics_and_pages(world):
    client = world["anonymous"]()
    auth = {"Authorization": f"Bearer {world['bearer']('commune')}"}
    found = client.get("/api/v1/indicators?q=dan so", headers=auth).json()
    # every word, in any order: "Dân số trung bình" and "Số hộ dân cư"
    assert [i["code"] for i in found["items"]] == ["T0101", "X0101"] and found["total"] == 2
    found = client.get("/api/v1/indicators?q=DAN SO trung", headers=auth).json()
    assert [i["code"] for i in found["items"]] == ["T0101"] and found["total"] == 1
    item = found["items"][0]
    assert item["version"] == 2 and item["group"] == "T01" and item["levels"] == ["province"]
    assert item["is_current"] is True and item["unit_of_measure"] == "Người"
    assert [i["code"] for i in client.get("/api/v1/indicators?level=commune", headers=auth).json()["items"]] \
        == ["X0101"]
    assert [i["code"] for i in client.get("/api/v1/indicators?group=T01&limit=1&offset=1",
                                          headers=auth).json()["items"]] == ["T0102"]
    assert_error(client.get("/api/v1/indicators?level=planet", headers=auth), 400, "invalid_parameters")


def test_an_indicator_its_versions_and_the_groups(world):
    client = world["as_user"]("province")
    data = client.get("/api/v1/indicators/T0101").json()
    assert data["version"] == 2 and [v["version"] for v in data["versions"]] == [1, 2]
    assert [v["is_current"] for v in data["versions"]] == [False, True]
    first = client.get("/api/v1/indicators/T0101/versions/1").json()
    assert first["name"] == "Dân số trung bình" and first["is_current"] is False
    assert_error(client.get("/api/v1/indicators/T0101/versions/9"), 404)
    assert_error(client.get("/api/v1/indicators/T9999"), 404)
    assert_error(client.get("/api/v1/indicators/T0101/versions/first"), 404)
    groups = client.get("/api/v1/indicator-groups").json()
    assert {g["code"]: g["indicators"] for g in groups["items"]} == {"T01": 2, "X01": 1}
    assert [g["code"] for g in client.get("/api/v1/indicator-groups?level=commune").json()["items"]] == ["X01"]


# -- periods ----------------------------------------------------------------------------------

def test_periods_are_the_windows_of_baocao_periods(world):
    from core.regimes.deadlines import DeadlineRule, deadline_for
    from core.regimes.periods import windows
    from core.regimes.workdays import WorkCalendar

    client = world["as_user"]("nobody")
    data = client.get("/api/v1/periods?frequency=monthly&year=2026&deadline=2wd").json()
    assert data["total"] == 12
    first = data["items"][0]
    assert first["label"] == {"vi": "Tháng 1 năm 2026", "en": "January 2026"}
    assert (first["start"], first["end"], first["iso_interval"]) == ("2025-12-15", "2026-01-14", "2025-12-15/P1M")
    calendar = WorkCalendar()
    assert [p["deadline"] for p in data["items"]] == [
        deadline_for(w, DeadlineRule.parse("2wd"), calendar).isoformat() for w in windows("monthly", 2026)]
    assert all(p["nominal_deadline"] and p["deadline_rule"] == "2wd" for p in data["items"])
    plain = client.get("/api/v1/periods?frequency=quarterly&year=2026").json()["items"]
    assert len(plain) == 4 and plain[0]["deadline"] is None


@pytest.mark.parametrize("query, fields", [
    ("frequency=weekly&year=2026", {"frequency"}),
    ("year=2026", {"frequency"}),
    ("frequency=monthly&year=twenty", {"year"}),
    ("frequency=monthly&year=1800", {"year"}),
    ("frequency=monthly&year=2026&deadline=soon", {"deadline"}),
    ("frequency=fortnightly&year=3000&deadline=day:99", {"frequency", "year", "deadline"}),
    ("frequency=monthly&year=2026&deadline=day:10", {"deadline"}),  # before the cut-off: Art. 8
])
def test_bad_period_parameters_get_400_with_a_message_per_parameter(world, query, fields):
    client = world["as_user"]("province")
    error = assert_error(client.get(f"/api/v1/periods?{query}"), 400, "invalid_parameters")
    assert set(error["fields"]) == fields
    for messages in error["fields"].values():
        assert set(messages) == {"vi", "en"} and all(messages.values())


def test_a_merged_commune_its_history_and_who_sees_it_as_at_a_date(world):
    from core.units import history as unit_history

    with db.connection_context():
        former = Unit.create(code="19111", name="Xã Lộc Ninh", kind="commune", parent=world["units"]["province"])
        unit_history.merge([former], world["units"]["dong_hoi"], effective_date=dt.date(2025, 7, 1),
                           legal_basis="Nghị quyết 1680/NQ-UBTVQH15")
    commune = world["anonymous"]()
    auth = {"Authorization": f"Bearer {world['bearer']('commune')}"}
    # the commune's user sees the former commune merged into theirs, as the tree stood then
    assert codes(commune.get("/api/v1/units?at=2025-06-30", headers=auth)) == ["19111"]
    assert codes(commune.get("/api/v1/units", headers=auth)) == ["18880"]
    old = commune.get("/api/v1/units/19111?at=2025-06-30", headers=auth).json()
    assert old["valid_to"] == "2025-06-30" and old["valid_at"] is True
    assert [u["code"] for u in old["history"]["successors"]] == ["18880"]
    assert commune.get("/api/v1/units/19111", headers=auth).json()["valid_at"] is False  # not in force today
    new = commune.get("/api/v1/units/18880", headers=auth).json()
    lineage = new["history"]["predecessors"]
    assert [(p["code"], p["change"]["kind"], p["change"]["effective_date"]) for p in lineage] == [
        ("19111", "merge", "2025-07-01")]
    assert new["history"]["changes"][0]["from"] == ["19111"] and new["history"]["changes"][0]["to"] == ["18880"]
    department = world["as_user"]("department")
    assert_error(department.get("/api/v1/units/19111"), 404)
    assert codes(department.get("/api/v1/units?at=2025-06-30")) == ["QT.STC"]


# -- regimes ----------------------------------------------------------------------------------

@pytest.fixture
def regimes(world):
    from core.regimes.regimes import Regime

    province = world["units"]["province"]
    with db.connection_context():
        Regime.create(code="KTXH-THANG", version=1, regime_type="periodic", name="Báo cáo kinh tế - xã hội tháng",
                      status="issued", frequency="monthly", issuing_unit=province, receiving_unit=province,
                      units_selector='{"kinds": ["department", "commune"]}',
                      deadline_rules='[{"level": "commune", "rule": "2wd"}]', sending_methods='["system"]',
                      legal_number="01/2025/QĐ-UBND", valid_from=dt.date(2025, 7, 1))
        Regime.create(code="KTXH-THANG", version=2, regime_type="periodic", name="Báo cáo KT-XH tháng (sửa đổi)",
                      status="draft", frequency="monthly", issuing_unit=province, receiving_unit=province)
        Regime.create(code="KTXH-QUY", version=1, regime_type="periodic", name="Báo cáo quý", status="draft",
                      frequency="quarterly", issuing_unit=province, receiving_unit=province)
        Regime.create(code="SO-NGANH", version=1, regime_type="periodic", name="Báo cáo của các sở", status="issued",
                      frequency="annual", issuing_unit=province, receiving_unit=province,
                      units_selector='{"kinds": ["department"]}')
    return world


def test_regimes_issued_for_viewers_drafts_only_for_editors(regimes):
    viewer = regimes["as_user"]("province")
    listed = viewer.get("/api/v1/regimes").json()
    assert [(r["code"], r["version"], r["status"]) for r in listed["items"]] == [("KTXH-THANG", 1, "issued"),
                                                                               ("SO-NGANH", 1, "issued")]
    assert listed["total"] == 2 and listed["items"][0]["issuing_unit"] == "44"
    assert (listed["items"][0]["receiving_rule"], listed["items"][0]["receiving_group"]) == ("unit", None)
    detail = viewer.get("/api/v1/regimes/KTXH-THANG").json()
    assert detail["version"] == 1 and detail["frequency"] == "monthly" and detail["sending_methods"] == ["system"]
    assert detail["reporting_units"]["kinds"] == ["department", "commune"]
    assert detail["deadline_rules"] == [{"level": "commune", "rule": "2wd"}]
    assert detail["legal_basis"]["number"] == "01/2025/QĐ-UBND"
    assert [v["version"] for v in detail["versions"]] == [1]
    assert_error(viewer.get("/api/v1/regimes/KTXH-QUY"), 404)  # a draft: not for a viewer
    admin = regimes["as_user"]("admin")
    assert admin.get("/api/v1/regimes").json()["total"] == 4
    assert [r["code"] for r in admin.get("/api/v1/regimes?status=draft").json()["items"]] == ["KTXH-THANG", "KTXH-QUY"]  # monthly first, as on the screen
    both = admin.get("/api/v1/regimes/KTXH-THANG").json()
    assert both["version"] == 1 and [v["version"] for v in both["versions"]] == [2, 1]  # the one in force
    assert_error(admin.get("/api/v1/regimes?status=lost"), 400, "invalid_parameters")
    assert_error(admin.get("/api/v1/regimes/NOPE"), 404)


def test_a_regime_says_who_receives_its_reports(regimes):
    """The receiving rule travels with the regime: a reader of the API knows that each commune's
    report goes to the owner of a unit group, not to the unit named in receiving_unit."""
    from core.regimes.regimes import RECEIVING_RULES, Regime, UnitGroup

    province = regimes["units"]["province"]
    with db.connection_context():
        group = UnitGroup.create(code="NHOM-NN", name="Các xã nông nghiệp", owner=province)
        Regime.create(code="NN-THANG", version=1, regime_type="periodic", name="Báo cáo nông nghiệp tháng",
                      status="issued", frequency="monthly", issuing_unit=province, receiving_rule="group_owner",
                      receiving_group=group, units_selector='{"kinds": ["commune"]}')
    viewer = regimes["as_user"]("province")
    detail = viewer.get("/api/v1/regimes/NN-THANG").json()
    assert (detail["receiving_rule"], detail["receiving_group"], detail["receiving_unit"]) == (
        "group_owner", "NHOM-NN", None)
    listed = {r["code"]: r for r in viewer.get("/api/v1/regimes").json()["items"]}
    assert (listed["NN-THANG"]["receiving_rule"], listed["NN-THANG"]["receiving_group"]) == ("group_owner", "NHOM-NN")
    schema = viewer.get("/api/v1/openapi.json").json()["components"]["schemas"]["Regime"]["properties"]
    assert schema["receiving_rule"]["enum"] == list(RECEIVING_RULES)


def test_a_commune_sees_the_regimes_it_reports_under_only(regimes):
    commune = regimes["as_user"]("commune")
    assert [r["code"] for r in commune.get("/api/v1/regimes").json()["items"]] == ["KTXH-THANG"]
    assert commune.get("/api/v1/regimes/KTXH-THANG").json()["version"] == 1
    assert_error(commune.get("/api/v1/regimes/SO-NGANH"), 404)  # the departments report under it, not communes
    assert_error(commune.get("/api/v1/regimes/KTXH-QUY"), 404)
    assert_error(regimes["as_user"]("nobody").get("/api/v1/regimes"), 403)


# -- errors, OpenAPI, documentation -----------------------------------------------------------

def test_an_unknown_api_path_is_a_json_404(world):
    client = world["as_user"]("province")
    assert_error(client.get("/api/v1/nothing-here"), 404, "not_found")


def test_openapi_document_matches_the_routes_both_ways(world):
    from web.routes.api import BASE

    client = world["as_user"]("province")
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/json")
    doc = response.json()
    assert doc["openapi"].startswith("3.1") and doc["info"]["title"] and doc["info"]["version"]
    assert set(doc["components"]["securitySchemes"]) == {"bearer", "cookie"}
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert "Error" in doc["components"]["schemas"]

    def routes(app_routes, prefix=""):
        for route in app_routes:
            if isinstance(route, Mount):
                yield from routes(route.routes, prefix + route.path)
            elif isinstance(route, Route):
                yield prefix + re.sub(r":\w+}", "}", route.path), route

    served = {}  # path → methods: a report's values are read (GET) and written (PUT, issue 5) on one path
    for path, route in routes(world["app"].routes):
        if path.startswith(BASE + "/"):
            served.setdefault(path, set()).update(route.methods)
    assert set(served) == set(doc["paths"])
    schemas = doc["components"]["schemas"]
    for path, item in doc["paths"].items():
        assert set(item) in ({"get"}, {"get", "put"})
        assert served[path] == {"GET", "HEAD"} | ({"PUT"} if "put" in item else set())
        op = item["get"]
        assert op["operationId"] and op["summary"] and not op["summary"].startswith("api.")
        names = {p["name"] for p in op["parameters"] if p["in"] == "path"}
        assert names == set(re.findall(r"{(\w+)}", path))
        for p in op["parameters"]:
            assert p["in"] in ("query", "path") and p["description"] and "type" in p["schema"]
        for status, answer in op["responses"].items():
            ref = answer["content"]["application/json"]["schema"]["$ref"]
            assert ref.split("/")[-1] in schemas, ref
            assert not answer["description"].startswith("api."), status
    # every $ref anywhere points at a schema that exists
    for ref in re.findall(r'"\$ref": "#/components/schemas/(\w+)"', response.text):
        assert ref in schemas
    etag = response.headers["etag"]
    assert client.get("/api/v1/openapi.json", headers={"If-None-Match": etag}).status_code == 304


def test_openapi_is_in_the_callers_language(world):
    client = world["as_user"]("province")
    vi = client.get("/api/v1/openapi.json").json()
    client.post("/lang", data={"lang": "en", "next": "/", "csrf_token": csrf_from(client.get("/").text)})
    en = client.get("/api/v1/openapi.json").json()
    assert vi["info"]["title"] != en["info"]["title"]
    op = en["paths"]["/api/v1/units"]["get"]
    assert op["x-summary"]["en"] == op["summary"]


def test_the_documentation_page_lists_every_endpoint(world):
    client = world["as_user"]("commune")
    page = client.get("/api")
    assert page.status_code == 200
    doc = client.get("/api/v1/openapi.json").json()
    for path in doc["paths"]:
        assert path in page.text
    assert 'href="/account/tokens"' in page.text and 'href="/api/v1/openapi.json"' in page.text
    assert world["anonymous"]().get("/api", follow_redirects=False).status_code == 303


# -- the tokens screen -------------------------------------------------------------------------

def test_create_a_token_on_the_account_page_shown_once_then_use_and_revoke_it(world):
    client = world["as_user"]("commune")
    page = client.get("/account/tokens")
    assert page.status_code == 200 and 'id="core-api-tokens"' in page.text
    response = client.post("/account/tokens", data={"name": "Kho dữ liệu", "days": "30",
                                                    "csrf_token": csrf_from(page.text)})
    assert response.status_code == 200 and response.headers["cache-control"] == "no-store"
    secret = re.search(r'id="api-token-secret"[^>]*value="(bc_[^"]+)"', response.text).group(1)
    with db.connection_context():
        row = api_tokens.ApiToken.get(api_tokens.ApiToken.user == world["people"]["commune"].id)
        assert row.token_hash == api_tokens.digest(secret) and secret not in (row.shown_prefix, row.token_hash)
        assert AuditEvent.select().where(AuditEvent.action == "api_token.create").count() == 1
    again = client.get("/account/tokens")
    assert secret not in again.text and row.shown_prefix in again.text  # shown once
    assert "Chưa dùng" in again.text

    machine = TestClient(world["app"])
    assert codes(machine.get("/api/v1/units", headers={"Authorization": f"Bearer {secret}"})) == ["18880"]
    listed = client.get("/account/tokens").text
    assert "Chưa dùng" not in listed  # the last use shows

    revoked = client.post(f"/account/tokens/{row.id}/revoke", data={"csrf_token": csrf_from(listed)}, headers=HX)
    assert revoked.status_code == 200 and "<html" not in revoked.text and "Đã thu hồi" in revoked.text
    assert_error(machine.get("/api/v1/units", headers={"Authorization": f"Bearer {secret}"}), 401)


def test_a_bad_token_form_is_422_with_field_messages_and_nothing_written(world):
    client = world["as_user"]("commune")
    page = client.get("/account/tokens")
    response = client.post("/account/tokens", data={"name": " ", "days": "999", "csrf_token": csrf_from(page.text)},
                           headers=HX)
    assert response.status_code == 422 and 'id="tk-name-error"' in response.text
    assert 'id="tk-days-error"' in response.text and "<html" not in response.text
    with db.connection_context():
        assert api_tokens.ApiToken.select().count() == 0


def test_nobody_revokes_someone_elses_token(world):
    with db.connection_context():
        token, _ = api_tokens.create_token(world["people"]["province"], "theirs", 30)
    client = world["as_user"]("commune")
    page = client.get("/account/tokens")
    response = client.post(f"/account/tokens/{token.id}/revoke", data={"csrf_token": csrf_from(page.text)})
    assert response.status_code == 404
    with db.connection_context():
        assert api_tokens.ApiToken.get_by_id(token.id).revoked_at is None


def test_the_menu_offers_the_tokens_page(world):
    client = world["as_user"]("nobody")
    assert 'href="/account/tokens"' in client.get("/").text


def test_a_renamed_unit_shows_the_name_it_had_on_the_date(world):
    from core.units import history as unit_history

    with db.connection_context():
        unit_history.rename(world["units"]["department"], "Sở Tài chính - Kế hoạch", effective_date=dt.date(2026, 1, 1),
                            legal_basis="Quyết định 1/QĐ-UBND")
    client = world["as_user"]("province")
    assert client.get("/api/v1/units/QT.STC?at=2025-12-31").json()["name"] == "Sở Tài chính"
    assert client.get("/api/v1/units/QT.STC?at=2026-01-01").json()["name"] == "Sở Tài chính - Kế hoạch"
    listed = client.get("/api/v1/units?at=2025-12-31&kind=department").json()["items"]
    assert [u["name"] for u in listed] == ["Sở Tài chính"]
    changes = client.get("/api/v1/units/QT.STC").json()["history"]["changes"]
    assert [(c["kind"], c["old_name"], c["new_name"]) for c in changes] == [
        ("rename", "Sở Tài chính", "Sở Tài chính - Kế hoạch")]


def test_an_account_that_must_first_change_its_password_gets_403_not_a_redirect(world):
    token = world["bearer"]("province")
    with db.connection_context():
        User.update(must_change_password=True).where(User.id == world["people"]["province"].id).execute()
    response = world["anonymous"]().get("/api/v1/units", headers={"Authorization": f"Bearer {token}"},
                                        follow_redirects=False)
    assert_error(response, 403, "account_action_required")


# -- issue 12: value strings follow the caller's language; what cannot be stored exactly is refused --

@pytest.fixture
def values_world(client):
    from core.db import db
    from tests.fixtures.forms import form_world

    with db.connection_context():
        return form_world()


def _put(client, world, values, language=None, headers=None):
    from core.db import db
    from core.models import User
    from tests.web.test_report_values_api import bearer, url

    user = world.users["reporter"]
    with db.connection_context():
        User.update(language=language).where(User.id == user.id).execute()
    return client.put(url(world), json={"values": values}, headers={**bearer(user, can_write=True), **(headers or {})})


def test_value_strings_are_read_the_way_the_token_owners_language_writes_numbers(client, values_world):
    from tests.web.test_report_entry import stored

    assert _put(client, values_world, {"banle.cur": "1,250.5"}, "en").status_code == 200
    assert _put(client, values_world, {"dulich.cur": "2.500,5"}, "vi").status_code == 200
    assert _put(client, values_world, {"dulich.cur": "2.500"}, "vi").status_code == 200  # Vietnamese thousands
    assert stored(values_world.report.id) == {("banle", "cur"): Decimal("1250.5"), ("dulich", "cur"): Decimal(2500)}
    # No language on the account: the request's Accept-Language.
    response = _put(client, values_world, {"banle.cur": "1.250"}, None, {"Accept-Language": "en"})
    assert response.status_code == 422
    assert "1.25" in response.json()["error"]["cells"]["banle.cur"]["en"]


def test_an_ambiguous_string_is_refused_naming_both_readings(client, values_world):
    from tests.web.test_report_entry import stored

    response = _put(client, values_world, {"banle.cur": "1,250", "dulich.cur": 3}, "en")
    assert response.status_code == 422, response.text
    message = response.json()["error"]["cells"]["banle.cur"]
    assert "1250" in message["en"] and "1.25" in message["en"] and "1250" in message["vi"] and "1,25" in message["vi"]
    assert stored(values_world.report.id) == {}


@pytest.mark.parametrize("body", [b'"99999999999.999999"', b"99999999999.999999"])
def test_a_value_the_column_cannot_store_exactly_is_refused(client, values_world, body):
    # As a JSON number too: read as a double it would already be 100000000000, stored without a word.
    from tests.web.test_report_entry import stored
    from tests.web.test_report_values_api import bearer, url

    headers = {**bearer(values_world.users["reporter"], can_write=True), "Content-Type": "application/json"}
    response = client.put(url(values_world), content=b'{"values": {"banle.cur": ' + body + b"}}", headers=headers)
    assert response.status_code == 422, response.text
    assert "15" in response.json()["error"]["cells"]["banle.cur"]["en"]
    assert stored(values_world.report.id) == {}
