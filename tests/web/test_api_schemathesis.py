"""Schema-driven fuzzing of the JSON API (security.md API-02, TST-03; issue 17 item 4).

Schemathesis reads the OpenAPI 3.1 document the application serves (``/api/v1/openapi.json``, the
plugins' endpoints included), checks it is a valid OpenAPI 3.1 document, and generates requests
for every operation from it: values that fit the schema (positive) and values that break it
(negative), plus the ids of objects that really exist in the seeded world, so the handlers are
reached past their 404. Every answer must be below 500 and conform to the document: a status code
it lists, the content type it names, a body that validates against its schema, the headers it
declares. It runs twice: with a real personal access token of a user with data in scope (the
reporter of a commune whose report has figures; an administrator of the province), and anonymously
(401, never a 5xx).

Why ``from_dict`` and our TestClient instead of ``schemathesis.openapi.from_asgi(…, app)``:
schemathesis's ASGI transport starts the application's lifespan on its own event-loop thread and
keeps it for the rest of the process (``schemathesis.python.asgi._LIFESPANS``), while each test
here gets its own database and application; the document is fetched from the app, and every case
is sent through Starlette's TestClient (httpx2), whose responses ``case.validate_response`` takes.
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings as hsettings, strategies as st
from schemathesis import GenerationMode
from starlette.testclient import TestClient

from core.accounts import api_tokens
from core.db import db
from core.models import User

PLUGINS = ("plugins.kinhte_xahoi", "plugins.chuyen_nganh", "plugins.national_link")
# What "conforms" means here. Left out: the checks that send further requests of their own
# (ignored_auth, use_after_free, ensure_resource_availability, unsupported_method …) — they need
# schemathesis's transport — and positive_data_acceptance / negative_data_rejection, which judge the
# document's precision (e.g. a code in a path that exists) rather than the server's behaviour.
CHECKS = ("not_a_server_error", "status_code_conformance", "content_type_conformance",
          "response_schema_conformance", "response_headers_conformance")
# Examples per operation and generation mode: 15 operations × 2 modes × 2 tokens × 6 = 360 cases, and 135
# anonymous; ~28 ms a case (generation included), the budget of the whole fuzz set is 40 s.
EXAMPLES = 6
FUZZ = hsettings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                 phases=(Phase.explicit, Phase.generate),  # no shrinking: the failure names the request
                 suppress_health_check=list(HealthCheck))


def _checks():
    from schemathesis import checks

    return [getattr(checks, name) for name in CHECKS]


class Fuzzer:
    """Sends schemathesis' cases for every operation through ``client`` and collects what failed."""

    def __init__(self, client, schema, known: dict):
        self.client, self.schema, self.known = client, schema, known
        self.failures: list[str] = []
        self.cases = 0
        self.statuses: dict[int, int] = {}

    def strategy(self, operation, mode):
        # Half the cases name an object that exists (path parameters the world resolves), so the
        # handler runs past its lookup; the rest are whatever the schema allows or forbids.
        names = {p["name"] for p in operation.definition.raw.get("parameters", []) if p.get("in") == "path"}
        real = {name: value for name, value in self.known.items() if name in names}
        generated = operation.as_strategy(generation_mode=mode)
        if real and mode == GenerationMode.POSITIVE:
            return st.one_of(generated, operation.as_strategy(generation_mode=mode, path_parameters=real))
        return generated

    def send(self, case, headers: dict):
        kwargs = case.as_transport_kwargs(base_url="http://testserver")
        kwargs.pop("cookies", None)  # the client's own cookie jar (a session) or none
        if isinstance(kwargs.get("data"), (bytes, str)):  # requests' name for a raw body; httpx2 says content
            kwargs["content"] = kwargs.pop("data")
        kwargs["headers"] = {**(kwargs.get("headers") or {}), **headers}
        response = self.client.request(**kwargs)
        self.cases += 1
        self.statuses[response.status_code] = self.statuses.get(response.status_code, 0) + 1
        try:
            case.validate_response(response, checks=_checks())
        except BaseExceptionGroup as exc:  # schemathesis' FailureGroup; collected: one run reports them all
            self.failures.append(f"{kwargs['method']} {kwargs['url'][:160]} → {response.status_code}: "
                                 f"{str(exc)[:600]}")

    def run(self, headers: dict, *, examples: int = EXAMPLES):
        for result in self.schema.get_all_operations():
            operation = result.ok()
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                seen = len(self.failures)

                @hsettings(FUZZ, max_examples=examples)
                @given(case=self.strategy(operation, mode))
                def fuzz(case):
                    if len(self.failures) - seen < 3:  # a few per operation are enough to read
                        self.send(case, headers)

                fuzz()


def _world(make_app, open_report, unit_tree, make_user):
    """The app with the built-in plugins, the kit's regime issued with figures typed into the
    commune's report, and tokens: the commune's reporter (may write) and a province administrator."""
    app = make_app(builtins=PLUGINS)
    client = TestClient(app, follow_redirects=False)
    client.__enter__()
    open_report.log_in(client)
    open_report.fill(client, {"lua.cur": "12,5", "ngo.cur": "3"})
    client.cookies.clear()
    admin, _ = make_user(is_admin=True, unit=unit_tree.province)
    with db.connection_context():
        _, reporter_token = api_tokens.create_token(User.get_by_id(open_report.user.id), "fuzz", 30, can_write=True)
        _, admin_token = api_tokens.create_token(User.get_by_id(admin.id), "fuzz", 30)
    known = {"id": open_report.report.id, "code": open_report.regime.regime.code, "version": 1}
    return app, client, {"reporter": reporter_token, "admin": admin_token}, known


def _schema(client, token):
    document = client.get("/api/v1/openapi.json", headers={"Authorization": f"Bearer {token}"})
    assert document.status_code == 200, document.text[:300]
    schema = schemathesis.openapi.from_dict(document.json())
    schema.validate()  # a valid OpenAPI 3.1 document (schemathesis' meta-schema)
    return schema


def test_api_answers_every_generated_request_as_documented_never_5xx(make_app, open_report, unit_tree, make_user):
    app, client, tokens, known = _world(make_app, open_report, unit_tree, make_user)
    try:
        schema = _schema(client, tokens["admin"])
        operations = [r.ok() for r in schema.get_all_operations()]
        assert len(operations) >= 15 and {"GET /api/v1/reports/{id}/values", "PUT /api/v1/reports/{id}/values"} \
            <= {f"{o.method.upper()} {o.path}" for o in operations}
        fuzzer = Fuzzer(client, schema, known)
        for who in ("reporter", "admin"):
            fuzzer.run({"Authorization": f"Bearer {tokens[who]}"})
        print(f"\nschemathesis: {fuzzer.cases} cases over {len(operations)} operations, statuses {fuzzer.statuses}")
        assert not fuzzer.failures, "\n\n".join(fuzzer.failures)
        # The world was reached, not only refused: the figures were read back and some writes passed.
        assert fuzzer.statuses.get(200, 0) > fuzzer.cases // 10

        # Anonymously, and with a token that is none: the same cases, nothing served. Besides 401, only
        # what is refused before the authentication: 400 (a NUL), 403 (a PUT without a CSRF token),
        # 404 (a path no route matches), 405 (the read-only rule), 413.
        anonymous = Fuzzer(client, schema, known)
        anonymous.run({}, examples=EXAMPLES // 2)
        anonymous.run({"Authorization": "Bearer bc_not-a-token"}, examples=EXAMPLES // 4)
        print(f"schemathesis (anonymous): {anonymous.cases} cases, statuses {anonymous.statuses}")
        assert not anonymous.failures, "\n\n".join(anonymous.failures)
        assert set(anonymous.statuses) <= {400, 401, 403, 404, 405, 413}, anonymous.statuses
        assert anonymous.statuses.get(401, 0) > anonymous.cases // 2
    finally:
        client.__exit__(None, None, None)


# -- what the fuzzing found, fixed (regression tests) -------------------------------------------------

def test_the_document_lists_400_on_every_operation_and_405_413_on_the_values_put(client):
    from web.routes.api import openapi

    document = openapi()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            # A NUL in the query or an id past 2**63 - 1 is refused with 400 before any endpoint runs.
            assert "400" in operation["responses"], f"{method} {path}"
    put = document["paths"]["/api/v1/reports/{id}/values"]["put"]["responses"]
    assert {"405", "413"} <= set(put)
    assert client.get("/api/v1/units?q=%00").status_code == 400


def test_a_path_under_the_api_that_no_route_matches_gets_the_json_404_not_the_html_page(client):
    # A newline in a path segment: Starlette's mount pattern does not cross it, so no API route ran.
    response = client.get("/api/v1/indicators/%0A/versions/5")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["error"]["code"] == "not_found"


def test_an_api_write_refused_by_the_csrf_check_gets_the_json_error(client):
    response = client.put("/api/v1/reports/1/values", json={"values": {}})
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["error"]["code"] == "forbidden"
    # The pages keep their HTML refusal.
    page = client.post("/account/tokens", data={"name": "x"})
    assert page.status_code == 403 and page.headers["content-type"].startswith("text/html")


def test_a_values_put_whose_body_is_not_declared_json_is_refused_with_415(client, open_report):
    # security.md API-02: the content type is enforced; before, a text/plain body was read as JSON.
    from core.accounts import api_tokens
    from core.db import db
    from core.models import User

    with db.connection_context():
        _, token = api_tokens.create_token(User.get_by_id(open_report.user.id), "x", 30, can_write=True)
    url = f"/api/v1/reports/{open_report.report.id}/values"
    headers = {"Authorization": f"Bearer {token}"}
    for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
        sent = {**headers, **({"Content-Type": content_type} if content_type else {})}
        refused = client.put(url, content=b'{"values": {"lua.cur": "1"}}', headers=sent)
        assert refused.status_code == 415, (content_type, refused.text)
        assert refused.json()["error"]["code"] == "unsupported_media_type"
    accepted = client.put(url, content=b'{"values": {"lua.cur": "1"}}',
                          headers={**headers, "Content-Type": "application/json; charset=utf-8"})
    assert accepted.status_code == 200, accepted.text
    assert "415" in client.get("/api/v1/openapi.json", headers=headers).json()["paths"][
        "/api/v1/reports/{id}/values"]["put"]["responses"]
