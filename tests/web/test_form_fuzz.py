"""Every HTML form handler, its own fields, hypothesis-generated values (security.md TST-01; issue 17
item 4): never a 5xx, and a refused post — a 4xx, or the page shown again with an error — wrote
nothing (the hash of every table's rows is unchanged; tests/fixtures/world.py lists the tables that
record the attempt itself and why they are left out).

How it differs from test_route_fuzz.py: that walk sends the same fixed names ("unit", "code",
"reason" …) and a few constant hostile strings to every route and only asks for no 500. Here each
POST route gets the fields its form really has — read from the page that renders the form (the
route's own GET, or the page above it whose ``<form action>`` is this route), else from the
handler's ``form.get("…")`` / ``data.get("…")`` calls in its source — with generated values (text
with control characters, huge and odd numbers, empty, several values for one name), as a person who
may use it: the reporter of a commune for the report routes, an administrator of the province for
the rest, on objects of the seeded world that exist (tests/fixtures/world.py), so the handlers run
past their lookups and their validation is what answers.
"""

from __future__ import annotations

import html
import inspect
import re

from hypothesis import HealthCheck, Phase, given, settings, strategies as st

from tests.fixtures.world import changed_tables, endpoints, seeded_world, table_hashes
from web.testing import csrf_from
from tests.web.test_authorization_matrix import _targets, walk
from web.guards import PUBLIC

# Routes left out, and why: they end the session the walk relies on, or lock the person out.
SKIP = {"/logout": "ends the session", "/account/password": "changes the password the walk logged in with",
        "/account/confirm": "re-authentication: failures count towards the lockout",
        "/account/sessions/others/end": "ends the walk's other sessions",
        "/account/sessions/{session_id:int}/end": "could end the walk's own session",
        "/login": "the login form is fuzzed by tests/web/test_auth_flow.py; failures lock the account out",
        "/login/verify": "as /login"}
# Writes a refusal may make, per route, and why (the page shown again does what its GET does).
REFUSAL_WRITES = {
    "/account/2fa/": ({"core_totp"}, "the 2FA page shown again with its error begins an enrolment (a pending "
                                     "secret for the QR code), as GET /account/2fa does"),
}
# A page shown again with an error says so with one of these (web/templates).
ERROR_MARKS = re.compile(r'flash-error|field-error|aria-invalid="true"|save-status-bad|row-error')
FIELD = re.compile(r'<(input|select|textarea)\b([^>]*)>', re.S)
SOURCE_FIELD = re.compile(r'\b(?:form|data)\.get(?:list)?\(\s*["\']([\w.\-]+)["\']|\b(?:form|data)\[\s*["\']([\w.\-]+)["\']')

NUMBERS = ["9223372036854775808", "99999999999999999999999999999", "-1", "0", "1e309", "NaN", "-0", "1,5",
           "12.345.678,9", "²", "١٢", " 7 "]
VALUE = st.one_of(
    st.text(st.characters(exclude_categories=("Cs",)), max_size=40),  # control characters, NUL included
    st.sampled_from(NUMBERS),
    st.just(""),
    st.text("abc \t\r\n\x00\x1f\u200b<>&\"'%", min_size=1, max_size=3000),
)


def _page_fields(page_html: str, action: str) -> dict:
    """Field names (and their values) of the forms of ``page_html`` that post to ``action``: by their
    action, a button or field in them that sends them elsewhere (htmx, formaction), or an htmx element
    that posts to ``action`` including them (``hx-include="#form-id"``)."""
    def posts_here(text):
        return action in {html.unescape(t).split("?")[0] for t in re.findall(r'\b(?:action|hx-post|formaction)="([^"]*)"',
                                                                              text)}

    included = {m.group(2) for m in re.finditer(r'<[^>]*\bhx-post="([^"]*)"[^>]*\bhx-include="#([\w-]+)"', page_html)
                if posts_here(f'action="{m.group(1)}"')}
    fields = {}
    for match in re.finditer(r'<form\b([^>]*)>(.*?)</form>', page_html, re.S):
        attributes, body = match.groups()
        form_id = re.search(r'\bid="([^"]+)"', attributes)
        if not posts_here(attributes + body) and not (form_id and form_id.group(1) in included):
            continue
        for field in FIELD.finditer(body):
            name = re.search(r'\bname="([^"]+)"', field.group(2))
            if name is None or 'type="file"' in field.group(2):
                continue
            value = re.search(r'\bvalue="([^"]*)"', field.group(2))
            fields[html.unescape(name.group(1))] = html.unescape(value.group(1)) if value else ""
    fields.pop("csrf_token", None)
    return fields


def _source_fields(endpoint) -> dict:
    try:
        source = inspect.getsource(inspect.unwrap(endpoint))
    except (OSError, TypeError):
        return {}
    return {a or b: "" for a, b in SOURCE_FIELD.findall(source)}


def _parents(url: str):
    parts = url.split("?")[0].rstrip("/").split("/")
    for cut in range(len(parts), 1, -1):
        yield "/".join(parts[:cut]) or "/"


def _routes(world):
    """(path, url, endpoint, who): every POST route with a URL on the world's objects in scope."""
    handlers = {path: route.endpoint for method, path, route in endpoints(world.app.routes) if method == "POST"}
    for method, path, mark in walk(world.app.routes):
        if method != "POST" or path in SKIP:
            continue
        targets, unknown = _targets(world, path)
        assert not unknown, f"{path}: classify {unknown} in tests/web/test_authorization_matrix.py"
        url = targets.get("in") or targets["global"]
        who = "in_person" if path.startswith("/reports/") else ("admin" if mark != PUBLIC else None)
        yield path, url, handlers[path], who


def _fields(world, url, endpoint, who, pages: dict) -> dict:
    """``pages``: (who, url) -> the HTML read already (many routes share the page above them)."""
    fields = {}
    for page in _parents(url):
        if (who, page) not in pages:
            response = world.as_(who).get(page)
            ok = response.status_code == 200 and "text/html" in response.headers.get("content-type", "")
            pages[who, page] = response.text if ok else ""
        fields.update(_page_fields(pages[who, page], url))
    return {**_source_fields(endpoint), **fields}


FUZZ = settings(max_examples=2, deadline=None, database=None, derandomize=True,
                phases=(Phase.explicit, Phase.generate),  # no shrinking: the message names the request
                suppress_health_check=list(HealthCheck))


def test_every_form_handler_answers_generated_fields_without_5xx_and_a_refusal_writes_nothing(
        make_app, make_user, make_regime, unit_tree):
    with seeded_world(make_app, make_user, make_regime, unit_tree) as world:
        _fuzz(world)


def _fuzz(world):
    routes, pages = [], {}
    for path, url, endpoint, who in _routes(world):
        routes.append((path, url, who, _fields(world, url, endpoint, who, pages)))
    assert len(routes) > 100
    with_fields = sum(1 for *_, fields in routes if fields)
    tokens = {who: world.csrf(who) for who in {r[2] for r in routes}}
    failures, counts = [], {"posts": 0, "refused": 0}

    @FUZZ
    @given(data=st.data())
    def post_every_form(data):
        before = table_hashes()
        for path, url, who, fields in routes:
            form = {name: data.draw(st.one_of(VALUE, st.just(default), st.lists(VALUE, min_size=2, max_size=3)),
                                    label=name) for name, default in fields.items()}
            form["csrf_token"] = tokens[who]
            response = world.as_(who).post(url, data=form)
            counts["posts"] += 1
            status = response.status_code
            if status >= 500:
                failures.append(f"{who} POST {url} → {status} with {_short(form)}")
            written, allowed = [], set()
            refused = 400 <= status < 500 or (status == 200 and ERROR_MARKS.search(response.text or ""))
            if refused:
                counts["refused"] += 1
                allowed = next((tables for prefix, (tables, _) in REFUSAL_WRITES.items() if path.startswith(prefix)),
                               set())
                written = [table for table in changed_tables(before) if table not in allowed]
                if written:
                    failures.append(f"{who} POST {url} → {status} (refused) wrote to {written}: {_short(form)}")
            if not refused or written or allowed:
                before = table_hashes()

    post_every_form()
    print(f"\nform fuzz: {len(routes)} POST routes ({with_fields} with fields found), {counts['posts']} posts, "
          f"{counts['refused']} refused")
    assert not failures, "\n".join(failures)


def _short(form: dict) -> str:
    return repr({k: (v[:40] if isinstance(v, str) else v) for k, v in form.items() if k != "csrf_token"})[:400]


# -- what the fuzzing found, fixed (regression tests) -------------------------------------------------

def test_a_signature_with_non_ascii_characters_is_refused_not_a_server_error(client, login):
    # hmac.compare_digest raises TypeError on a str with non-ASCII characters: the signed upload
    # confirmation (units, indicators) compared the typed-in signature as text (web/signed_upload.py).
    login(is_admin=True)
    token = csrf_from(client.get("/units/import").text)
    for path in ("/units/import/confirm", "/indicators/import/apply"):
        refused = client.post(path, data={"csrf_token": token, "filename": "x.csv", "payload": "", "signature": "Ý-"})
        assert refused.status_code == 400, (path, refused.status_code)


def test_an_excel_file_whose_signature_cell_holds_non_ascii_text_is_refused_as_tampered(client, open_report):
    # The same TypeError on the hidden sheet's signature cell of a report's Excel file
    # (core/reporting/excel.py): refused as an edited file, not a 500.
    import io

    import openpyxl

    open_report.log_in(client)
    template = client.get(f"{open_report.url}/template.xlsx")
    assert template.status_code == 200
    book = openpyxl.load_workbook(io.BytesIO(template.content))
    book["_baocao"]["A2"] = "Ý" * 64
    edited = io.BytesIO()
    book.save(edited)
    page = client.get(open_report.url)
    answer = client.post(f"{open_report.url}/upload", data={"csrf_token": csrf_from(page.text)},
                         files={"file": ("bao-cao.xlsx", edited.getvalue(),
                                         "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")})
    assert answer.status_code < 500
    assert "Phần nhận dạng báo cáo trong tệp đã bị sửa" in answer.text, answer.text[:300]
