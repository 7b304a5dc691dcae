"""Every route, every path parameter, the usual query and form parameters: hostile values
(ids past 2**63, "²", NUL, negative numbers, very long text, deep JSON) never give a 500 —
as an administrator and as an anonymous visitor, on SQLite and PostgreSQL (issue 12 item 12).

The routes are read from the app itself (``app.routes`` with the plugins' mounts), so a route
added later is walked too. Each hypothesis example sends one request per route and method.
tests/web/test_form_fuzz.py posts each form's own fields instead, and checks that a refusal wrote
nothing (docs/security_testing.md).
"""

from __future__ import annotations

import re
from urllib.parse import quote

from hypothesis import HealthCheck, Phase, given, settings, strategies as st
from starlette.convertors import IntegerConvertor
from starlette.testclient import TestClient

from tests.conftest import csrf_from
from tests.fixtures.world import endpoints

PLUGINS = ("plugins.kinhte_xahoi", "plugins.chuyen_nganh", "plugins.national_link")

# Numbers in every shape a form or a URL can carry them, and text that is not a number at all.
HOSTILE = ["9223372036854775808", "9223372036854775807", "99999999999999999999999999999", "-1", "-9223372036854775809",
           "0", "²", "١٢", "1_000", " 7 ", "1e309", "NaN", "\x00", "1\x00", "a" * 5000, "%00", "../../etc",
           "<script>", "null", "[]", "2026-02-30", "ＡＢＣ"]
# Path ids: a path parameter of an id route only matches digits.
HOSTILE_IDS = ["0", "1", "9223372036854775807", "9223372036854775808", "99999999999999999999999999999",
               "0000000000000000000001"]
# Query parameters the screens and the API read (grep "query_params.get" in web/ and plugins/).
QUERY_NAMES = ("against", "at", "cell", "code", "done", "expired", "format", "group", "imported", "index",
               "key", "level", "limit", "offset", "page", "period", "q", "regime", "role", "status", "tab",
               "type", "unit", "version", "year", "next", "from", "to", "kind", "indicator")
# Form fields the screens read: ids, numbers and free text.
FORM_NAMES = ("unit", "regime", "report", "revision", "version", "anchor", "periods", "against", "page", "index",
              "form_id", "unit_ids", "parent", "days", "code", "name", "q", "reason", "comment", "cell", "lang",
              "username", "password", "period", "year", "target", "owner_unit_id", "level", "key", "text")
# Routes that would end the session the rest of the walk relies on, or lock the account out.
SKIP = {("POST", "/logout"), ("POST", "/account/password"), ("POST", "/account/confirm"),
        ("POST", "/account/sessions/others/end")}
DEEP_JSON = b"[" * 100_000 + b"]" * 100_000


def walk(routes):
    for method, path, route in endpoints(routes):
        if (method, path) not in SKIP:
            yield method, path, route.param_convertors


def fill(path: str, convertors: dict, draw) -> str:
    def value(match):
        name = match.group(1)
        if isinstance(convertors.get(name), IntegerConvertor):
            return draw(st.sampled_from(HOSTILE_IDS))
        return quote(draw(st.sampled_from(HOSTILE)), safe="")

    return re.sub(r"{([a-zA-Z_][a-zA-Z0-9_]*)(?::[a-z]+)?}", value, path)


def send(client, method, path, convertors, data, csrf: str | None):
    url = fill(path, convertors, data.draw)
    hostile = data.draw(st.sampled_from(HOSTILE))
    params = {name: hostile for name in data.draw(st.lists(st.sampled_from(QUERY_NAMES), max_size=4, unique=True))}
    headers = {"X-CSRF-Token": csrf} if csrf else {}
    if method == "PUT":
        body = data.draw(st.sampled_from([DEEP_JSON, b'{"cells": {"a": "\\u0000"}}', hostile.encode()]))
        return client.request(method, url, params=params, content=body,
                              headers={**headers, "Content-Type": "application/json"}), url
    if method == "POST":
        form = {name: hostile for name in data.draw(st.lists(st.sampled_from(FORM_NAMES), max_size=6, unique=True))}
        return client.request(method, url, params=params, data=form, headers=headers), url
    return client.request(method, url, params=params), url


def _walk_all(client, app, data, csrf):
    failures = []
    for method, path, convertors in walk(app.routes):
        response, url = send(client, method, path, convertors, data, csrf)
        if response.status_code >= 500 and response.status_code != 503:
            failures.append(f"{method} {url[:120]} → {response.status_code}")
    assert not failures, "\n".join(failures)


# No shrinking: one example walks every route, and the failure message already names each
# request that failed; shrinking such a walk would take minutes.
FUZZ = settings(max_examples=2, deadline=None, database=None, phases=(Phase.explicit, Phase.generate),
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def test_no_route_answers_500_to_hostile_parameters_as_an_administrator(make_app, make_user):
    app = make_app(builtins=PLUGINS, strict=False)
    with TestClient(app, follow_redirects=False) as client:
        user, password = make_user(is_admin=True)
        page = client.get("/login")
        answer = client.post("/login", data={"username": user.username, "password": password,
                                             "csrf_token": csrf_from(page.text)})
        assert answer.status_code == 303
        csrf = csrf_from(client.get("/").text)

        @FUZZ
        @given(data=st.data())
        def walk_every_route(data):
            _walk_all(client, app, data, csrf)

        walk_every_route()
        # The walk ran logged in throughout: nothing it sent ended the session.
        assert client.get("/users").status_code == 200


def test_no_route_answers_500_to_hostile_parameters_anonymously(make_app):
    app = make_app(builtins=PLUGINS, strict=False)
    with TestClient(app, follow_redirects=False) as client:
        csrf = csrf_from(client.get("/login").text)

        @FUZZ
        @given(data=st.data())
        def walk_every_route(data):
            _walk_all(client, app, data, csrf)

        walk_every_route()
