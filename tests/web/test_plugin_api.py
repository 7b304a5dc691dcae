"""The web half of the public API for plugins (issue 13 item 8), through the fixture plugin fx_api:
its settings in views, JSON endpoints and widgets (``web.api.plugin_settings``), widgets shown only
to holders of their permission, and JSON endpoints at /api/v1/p/<plugin>/ that authenticate and
answer like the core API and appear in its OpenAPI document. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

from decimal import Decimal

import pytest
from starlette.testclient import TestClient

from core import activation
from core.accounts import api_tokens
from core.catalogue.figures import Figure, put_values
from core.catalogue.indicators import IndicatorGroup, save_indicator
from core.db import db
from core.models import User
from core.settings import PluginSettings
from tests.fixtures.plugins import fx

GREETING = "Xin chào từ thiết lập"


@pytest.fixture
def app(make_app, make_settings):
    settings = make_settings(plugins=PluginSettings(config={"fx_api": {"greeting": GREETING}}))
    return make_app(settings, builtins=fx("fx_api"), strict=True)


def bearer(user) -> dict:
    with db.connection_context():
        _, secret = api_tokens.create_token(User.get_by_id(user.id), "máy", 30)
    return {"Authorization": f"Bearer {secret}"}


def assert_error(response, status, code):
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == code and set(error["message"]) == {"vi", "en"}
    return error


def test_a_view_an_endpoint_and_a_widget_read_the_plugins_settings(client, login):
    login(roles=("fx_api.analyst",))
    assert client.get("/p/fx_api/").text == f"greeting={GREETING}"
    assert client.get("/api/v1/p/fx_api/settings").json() == {"settings": {"greeting": GREETING}}
    home = client.get("/").text
    # The hook read it with the helper, the widget's template got the same table.
    assert f"hook={GREETING} template={GREETING}" in home


def test_the_settings_helper_refuses_outside_a_plugins_request(app):
    from starlette.requests import Request

    from core.errors import PluginError
    from web.api import plugin_settings

    request = Request({"type": "http", "app": app, "state": {}, "headers": []})
    with pytest.raises(PluginError):
        plugin_settings(request)


def test_a_widget_with_a_permission_shows_only_to_its_holders(client, login, unit_tree):
    login(unit=unit_tree.province)
    home = client.get("/").text
    assert "fx-api-open" in home and "fx-api-secret" not in home
    client.post("/logout", data={"csrf_token": client.cookies.get("baocao_csrf", "")})
    client.cookies.clear()
    login(unit=unit_tree.communes[0], roles=("fx_api.analyst",))
    home = client.get("/").text
    assert "fx-api-open" in home and "fx_api.secret for holders only" in home


def test_a_widget_guarded_by_another_plugins_permission_is_dropped_and_recorded(make_app, make_settings, make_user):
    settings = make_settings(plugins=PluginSettings(config={"fx_api": {"bad_widget": True}}))
    app = make_app(settings, builtins=fx("fx_api", "fx_good"), strict=True)
    with TestClient(app) as client:
        from tests.fixtures.plugins import log_in

        user, password = make_user(is_admin=True)  # holds every permission: only the namespace refuses it
        log_in(client, user, password)
        home = client.get("/")
        assert home.status_code == 200
        assert "fx_api.secret for holders only" in home.text and "fx_api.foreign" not in home.text
        errors = app.state.pm.infos["fx_api"].errors
        assert errors and errors[0][0] == "contribution" and "fx_good.item.view" in errors[0][1]
        assert app.state.pm.infos["fx_api"].ok  # one dropped contribution, the plugin keeps serving


def test_a_plugin_endpoint_answers_with_a_token_or_a_session_and_refuses_without_the_permission(
        client, login, make_user, unit_tree):
    with db.connection_context():
        IndicatorGroup.create(code="T01", name="Đất đai, dân số", level="province")
        save_indicator({"code": "T0101", "name": "Diện tích gieo trồng"})
        put_values([Figure("T0101", unit_tree.communes[0].id, "monthly", 2026, m, "actual", Decimal(m) + Decimal("0.5"))
                    for m in (1, 2)], source="test")
    analyst, _ = make_user(unit=unit_tree.communes[0], roles=("fx_api.analyst",))
    other, _ = make_user(unit=unit_tree.communes[0])
    anonymous = client.get("/api/v1/p/fx_api/figures?code=T0101")
    assert_error(anonymous, 401, "unauthenticated")
    response = client.get("/api/v1/p/fx_api/figures?code=T0101", headers=bearer(analyst))
    assert response.status_code == 200, response.text
    assert response.json() == {"items": [{"month": 1, "value": "1.5"}, {"month": 2, "value": "2.5"}]}
    assert response.headers["cache-control"] == "private, no-store"
    assert_error(client.get("/api/v1/p/fx_api/figures?code=T0101", headers=bearer(other)), 403, "forbidden")
    # The core's refusals and a bad question, in the core API's shape.
    assert_error(client.get("/api/v1/p/fx_api/figures?code=none", headers=bearer(analyst)), 404, "not_found")
    bad = assert_error(client.get("/api/v1/p/fx_api/figures?code=T0101&kind=forecast", headers=bearer(analyst)),
                       400, "bad_request")
    assert "forecast" in bad["message"]["en"] and "kinds" in bad["fields"]
    assert_error(client.get("/api/v1/p/fx_api/nothing", headers=bearer(analyst)), 404, "not_found")
    # Read-only like the core API.
    assert client.post("/api/v1/p/fx_api/figures", headers=bearer(analyst)).status_code == 405
    # A session works too.
    login(unit=unit_tree.communes[0], roles=("fx_api.analyst",))
    assert client.get("/api/v1/p/fx_api/figures?code=T0101").json()["items"][0]["month"] == 1
    assert "/api/v1/p/fx_api/figures" in client.get("/api").text  # the documentation page lists it


def test_plugin_endpoints_are_in_the_openapi_document_only_where_the_plugin_is_on(client, make_user, unit_tree):
    user, _ = make_user(unit=unit_tree.communes[0], roles=("fx_api.analyst",))
    doc = client.get("/api/v1/openapi.json", headers=bearer(user)).json()
    operation = doc["paths"]["/api/v1/p/fx_api/figures"]["get"]
    assert operation["x-permission"] == "fx_api.figures.view" and operation["tags"] == ["fx_api"]
    assert operation["summary"] == "Số liệu thực hiện theo tháng"
    assert [p["name"] for p in operation["parameters"]] == ["code"]
    assert operation["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/fx_api.figures"}
    assert doc["components"]["schemas"]["fx_api.figures"]["properties"]["items"] == {"type": "array"}
    assert doc["paths"]["/api/v1/p/fx_api/settings"]["get"]["operationId"] == "fx_api.settings_json"
    assert any(tag["name"] == "fx_api" for tag in doc["tags"])
    # Switched off for the commune: gone from its document, and its endpoints answer 404.
    with db.connection_context():
        admin = User.create(username="qt", full_name="Quản trị", password_hash="x", unit=unit_tree.province,
                            is_admin=True)
        activation.set_activation(unit_tree.communes[0].id, "fx_api", "off", admin, client.app.state.registry)
    headers = bearer(user)
    assert "/api/v1/p/fx_api/figures" not in client.get("/api/v1/openapi.json", headers=headers).json()["paths"]
    assert_error(client.get("/api/v1/p/fx_api/figures?code=T0101", headers=headers), 404, "not_found")


def test_a_json_route_is_checked_like_other_declarations(make_app):
    from core.errors import PluginError
    from tests.fixtures.plugins.fx_api import settings_json
    from web.api import json_route
    from web.routes.plugin_api import check

    registry = make_app(builtins=fx("fx_api", "fx_good")).state.registry

    def refusal(route):
        with pytest.raises(PluginError) as refused:
            check("fx_api", (route,), registry)
        return refused.value.key

    # Another plugin's permission, an undeclared one, a path without "/", a summary of another namespace.
    assert refusal(json_route("/x", settings_json, summary="fx_api.api.settings",
                              permission="fx_good.item.view")) == "plugin.error.api_permission"
    assert refusal(json_route("/x", settings_json, summary="fx_api.api.settings",
                              permission="fx_api.nothing.view")) == "plugin.error.api_permission"
    assert refusal(json_route("x", settings_json, summary="fx_api.api.settings",
                              permission=None)) == "plugin.error.api_route"
    assert refusal(json_route("/x", settings_json, summary="fx_good.label",
                              permission=None)) == "plugin.error.label_missing"
    check("fx_api", (json_route("/x", settings_json, summary="fx_api.api.settings", permission="core.unit.view"),),
          registry)  # the core's permission: accepted
