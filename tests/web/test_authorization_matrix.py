"""The generated authorisation matrix (security.md ACL-02; issue 17 item 8).

Every route of the app (the core's, the three built-in plugins' /p/<name>/…, the API's /api/v1/…),
read from ``app.routes``, × each person of tests/fixtures/world.py (one role each at Huyện X; the
administrator; anonymous) × a target object inside their subtree (X-A's report, unit, person …) and
one outside (Y-B's): the answer is allowed (2xx/3xx) exactly when the role grants the route's
permission — the route's ``__baocao_permission__`` mark (web/guards.py), or for a route marked
"authenticated" the rights its handler checks (``EFFECTIVE``) — AND the object is in scope; else
403/404, and for an anonymous visitor the way to /login (401 under /api/v1).

A route added later is walked too: its path parameters must have a resolver (``RESOLVERS``) or be
listed as not unit-scoped (``GLOBAL_PARAMS``), and a route marked "authenticated" must be in
``EFFECTIVE``; else the test fails and says which. GET requests answer the matrix; each POST is
sent, with a CSRF token, only where it must be refused (no right, or an object outside): the
database is unchanged after all of them (tests/fixtures/world.py ``table_hashes``).
"""

from __future__ import annotations

import re

from tests.fixtures.world import changed_tables, endpoints, seeded_world, table_hashes
from web.guards import AUTHENTICATED, PUBLIC
from web.testing import csrf_from

# Path parameter kinds that are unit-scoped: (path pattern, parameter) -> the world's object in
# scope and the one outside, as a function of the world.
RESOLVERS = [
    (r"^(/api/v1)?/reports/\{id:int\}", "id", lambda w: (w.reports["x"].id, w.reports["y"].id)),
    (r"^/units/\{unit_id\}", "unit_id", lambda w: (w.units["xa"].id, w.units["yb"].id)),
    (r"^/units/\{id:int\}", "id", lambda w: (w.units["x"].id, w.units["y"].id)),
    (r"^/completeness/units/\{unit_id:int\}", "unit_id", lambda w: (w.units["xa"].id, w.units["yb"].id)),
    (r"^/users/\{id:int\}", "id", lambda w: (w.people["in_person"][0].id, w.people["out_person"][0].id)),
    (r"^/api/v1/units/\{code\}", "code", lambda w: (w.units["xa"].code, w.units["yb"].code)),
    # A regime is seen where it is issued, prepared or received, or by the units reporting under it.
    (r"^/regimes/\{id:int\}", "id", lambda w: (w.regimes["x"].regime.id, w.regimes["y"].regime.id)),
    (r"^/api/v1/(regimes|completeness)/\{code\}", "code",
     lambda w: (w.regimes["x"].regime.code, w.regimes["y"].regime.code)),
    (r"^/forms/\{id:int\}", "id", lambda w: (w.forms["x"].id, w.forms["y"].id)),  # at the owner's subtree
]
# Secondary parameters of a unit-scoped route: a value that exists for both objects.
# (A grant, a session, a certificate of a person: the person is the scope.)
SECONDARY = {"number": lambda w: 1, "grant_id": lambda w: 1, "session_id": lambda w: 1,
             "certificate_id": lambda w: 1}
# Parameters naming objects that belong to no unit subtree, or to the caller alone: the route is
# checked for its permission only (a role without it is refused whatever the id), with this value
# (a function of the world and the path). Reviewed one by one:
GLOBAL_PARAMS = {
    "name": (lambda w, p: "kinhte_xahoi", "a plugin of the installation (/admin/plugins/{name})"),
    "code": (lambda w, p: "KB0101" if "indicator" in p else w.regimes["x"].regime.code,
             "an indicator's or a regime's code: catalogues of the province"),
    "version": (lambda w, p: 1, "an indicator's version"),
    "id": (lambda w, p: 1, "feedback, jobs, unit groups, outbox messages, the plugins' packets, proposals, "
                           "delegations and catalogues: the caller's own or installation-wide"),
    "role_id": (lambda w, p: 1, "roles are installation-wide"),
    "token_id": (lambda w, p: 1, "the caller's own API token"),
    "session_id": (lambda w, p: 1, "the caller's own session (/account/sessions)"),
    "certificate_id": (lambda w, p: 1, "the caller's own certificate (/account/certificates)"),
    "anchor_id": (lambda w, p: 1, "trust anchors are installation-wide"),
    "source_id": (lambda w, p: 1, "revocation sources are installation-wide"),
    "entry_id": (lambda w, p: 1, "the working-day calendar is the province's"),
    "action": (lambda w, p: "add", "a form designer's action (the form is the catalogue's)"),
    "key": (lambda w, p: "x", "a plugin template's key"),
    "connector": (lambda w, p: "qcvn125", "a connector of the installation"),
    "mapping": (lambda w, p: "qcvn125", "a published schema"),
    "packet": (lambda w, p: "report", "a published schema"),
    "fmt": (lambda w, p: "csv", "an export format"),
    "aid": (lambda w, p: 1, "an attachment: the world seeds none (its report is the scope)"),
    "cell": (lambda w, p: "lua.cur", "a cell of the report's form (its report is the scope)"),
}
# Query strings a page needs to show anything (else it answers 404 or 400 to anyone).
QUERIES = {"/api/v1/periods": "?frequency=monthly", "/completeness/year": "?regime=fx.x",
           "/completeness/export.xlsx": "?regime=fx.x", "/completeness/year/export.xlsx": "?regime=fx.x"}
# What a route's handler checks beyond its mark (for a route marked "authenticated", all of it): any
# of these codes grants it. "any": the mark alone (for "authenticated": every logged-in person —
# their own account, or a list the handler filters to their scope).
REPORT = {"core.report.submit", "core.report.receive"}
EFFECTIVE = [
    (r"^/units/\{unit_id\}/change", {"core.unit.edit"}),  # marked core.unit.view; the handler needs edit
    (r"^/forms/\{id:int\}/design", {"core.regime.edit"}),  # marked core.regime.view: designing is editing
    (r"^/regimes/\{id:int\}/(edit|request)", {"core.regime.edit"}),
    (r"^(/api/v1)?/reports/\{id:int\}/review", {"core.report.receive"}),
    (r"^(/api/v1)?/reports/\{id:int\}", REPORT),
    (r"^/units/\{id:int\}/seal", {"core.unit.admin"}),
    (r"^/p/chuyen_nganh/catalogue/", {"chuyen_nganh.catalogue.edit"}),
    # Every logged-in person: their own account, notifications, feedback, jobs and tokens, and the
    # lists and pages the handler filters to what the person may see (an object id in them is
    # checked by RESOLVERS when it is unit-scoped).
    (r"^/(account|notifications|feedback|jobs)(/|$)", "any"),
    (r"^(/api/v1)?/completeness(/|$)", "any"),
    (r"^/(|api|inbox|inbox/accept|reports|consolidation|consolidation/open|p/chuyen_nganh/catalogue)$", "any"),
    (r"^/api/v1/(openapi\.json|periods)$", "any"),
]
# In-scope objects the world does not seed (a version that was never submitted, a consolidated
# report, an attachment, a comment thread, a draft regime to edit, an ad-hoc one to request under,
# a designer's preview row): these routes refuse in scope too, so only their refusals are checked.
NOT_SEEDED = {"/regimes/{id:int}/edit", "/regimes/{id:int}/request", "/forms/{id:int}/design/preview",
              "/reports/{id:int}/comments", "/reports/{id:int}/consolidation",
              "/reports/{id:int}/consolidation/{cell}", "/reports/{id:int}/attachments/{aid:int}",
              "/reports/{id:int}/versions/{number:int}/diff", "/reports/{id:int}/versions/{number:int}/print",
              "/reports/{id:int}/versions/{number:int}/signed.json",
              "/reports/{id:int}/versions/{number:int}/signature.p7s"}
# What an anonymous visitor gets instead of the way to /login, and why.
ANONYMOUS = {"/notifications/bell": (204, "the header's htmx load: nothing to fill in, no redirect loop")}


def walk(routes):
    """(method, path, permission mark) of every endpoint."""
    for method, path, route in endpoints(routes):
        yield method, path, getattr(route.endpoint, "__baocao_permission__", None)


PARAM = re.compile(r"{([a-zA-Z_][a-zA-Z0-9_]*)(?::[a-z]+)?}")


def _targets(world, path):
    """({"in": url, "out": url} for a unit-scoped route or {"global": url}, the unclassified names)."""
    names = PARAM.findall(path)
    scoped = next(((name, fn) for pattern, name, fn in RESOLVERS if re.match(pattern, path) and name in names), None)
    unknown = [n for n in names if n not in GLOBAL_PARAMS and n not in SECONDARY and (not scoped or n != scoped[0])]
    if unknown:
        return None, unknown

    def url(primary_value):
        def value(match):
            name = match.group(1)
            if scoped and name == scoped[0]:
                return str(primary_value)
            if name in SECONDARY:
                return str(SECONDARY[name](world))
            return str(GLOBAL_PARAMS[name][0](world, path))
        return PARAM.sub(value, path) + QUERIES.get(path, "")

    if scoped:
        inside, outside = scoped[1](world)
        return {"in": url(inside), "out": url(outside)}, []
    return {"global": url(None)}, []


def _effective(mark, path):
    """What grants the route beyond its mark: a set of codes, "any", or None when a route marked
    "authenticated" is not classified (the test then fails and names it)."""
    found = next((need for pattern, need in EFFECTIVE if re.match(pattern, path)), None)
    return found if found is not None or mark == AUTHENTICATED else "any"


def _grants(mark, path, codes: set[str]) -> bool:
    """Whether ``codes`` grant the route: its mark, and what its handler checks beyond it."""
    if mark != AUTHENTICATED and mark not in codes:
        return False
    needed = _effective(mark, path)
    return needed == "any" or bool(needed & codes)


def _held(world) -> dict[str, set[str]]:
    """Each person's permission codes (at Huyện X); the administrator holds them all."""
    from core.accounts.access import Grant, RolePermission
    from core.db import db

    held = {}
    with db.connection_context():
        for key, (user, _) in world.people.items():
            if user.is_admin:
                held[key] = set(world.app.state.registry.permissions)
            else:
                roles = [g.role_id for g in Grant.select().where(Grant.user == user.id)]
                held[key] = {p.code for p in RolePermission.select().where(RolePermission.role.in_(roles))}
    return held


PEOPLE = ("reporter", "receiver", "viewer", "unit_admin", "regime_editor", "sector_admin", "operator", "admin")
ALLOWED = range(200, 400)
REFUSED = (403, 404)


def _allowed(response) -> bool:
    location = response.headers.get("location", "")
    return response.status_code in ALLOWED and not location.startswith(("/login", "/account/2fa"))


def test_authorization_matrix(make_app, make_user, make_regime, unit_tree):
    with seeded_world(make_app, make_user, make_regime, unit_tree) as world:
        _matrix(world)


def _matrix(world):
    held = _held(world)
    gets, posts, unclassified = [], [], []
    for method, path, mark in walk(world.app.routes):
        if mark == PUBLIC:
            continue
        targets, unknown = _targets(world, path)
        if targets is None:
            unclassified.append(f"{method} {path}: parameters {unknown} (RESOLVERS, SECONDARY or GLOBAL_PARAMS)")
        if _effective(mark, path) is None:
            unclassified.append(f"{method} {path}: marked require() — list what grants it in EFFECTIVE")
        (gets if method == "GET" else posts).append((method, path, mark, targets))
    assert not unclassified, "routes to classify:\n" + "\n".join(unclassified)
    assert len(gets) > 100 and len(posts) > 100

    failures, sent = [], 0

    def check(who, url, expected_allowed, response):
        ok = _allowed(response) if expected_allowed else response.status_code in REFUSED
        if not ok:
            failures.append(f"{who}: GET {url} → {response.status_code} {response.headers.get('location', '')}"
                            f" (expected {'allowed' if expected_allowed else '403/404'})")

    # GET: each person × each route × in/out. A role without a route's marked permission is refused by
    # the one guard (web.guards.require) whatever the object: asked once per (role, permission).
    # A route without a unit-scoped object is asked, when granted, of one person holding it.
    global_done = set()
    for who in PEOPLE:
        client = world.as_(who)
        refused_codes = set()
        for _, path, mark, targets in gets:
            granted = _grants(mark, path, held[who])
            if not granted and mark != AUTHENTICATED:
                if mark in refused_codes:
                    continue
                refused_codes.add(mark)
            if granted and "global" in targets:
                if path in global_done:
                    continue
                global_done.add(path)
            for scope, url in targets.items():
                if granted and path in NOT_SEEDED and (scope == "in" or who == "admin"):
                    continue
                response = client.get(url)
                sent += 1
                if scope == "global" and granted:
                    # Permission only: past the guard (the object may not exist, or the handler
                    # asks more of a catalogue entry: tested by that screen's own tests).
                    if response.status_code >= 500 or response.headers.get("location", "").startswith("/login"):
                        failures.append(f"{who}: GET {url} → {response.status_code}")
                    continue
                # The administrator sits at the province: both subtrees are in scope.
                check(who, url, granted and (scope != "out" or who == "admin"), response)
    # Anonymous: the way to /login, or the API's 401. The guard answers before anything else, so a
    # core page is asked once per mark; every API and plugin route (behind their own boundaries) is.
    client = world.as_(None)
    anonymous_marks = set()
    for _, path, mark, targets in gets:
        if not path.startswith(("/api/", "/p/")) and path not in ANONYMOUS:
            if mark in anonymous_marks:
                continue
            anonymous_marks.add(mark)
        url = next(iter(targets.values()))
        response = client.get(url)
        sent += 1
        if path in ANONYMOUS:
            ok = response.status_code == ANONYMOUS[path][0]
        elif path.startswith("/api/v1/"):
            ok = response.status_code == 401
        else:
            ok = response.status_code == 303 and response.headers["location"].startswith("/login")
        if not ok:
            failures.append(f"anonymous: GET {url} → {response.status_code}")

    # POST, with the CSRF token of the session: only where it must be refused — anonymously, by a
    # person without the route's marked permission, and by each person holding it on the object
    # outside their subtree — and nothing written by any of them.
    tokens = {who: world.csrf(who) for who in (None, *PEOPLE)}
    before = table_hashes()
    posted = 0

    def post(who, url, expected):
        nonlocal posted
        client = world.as_(who)
        response = client.post(url, headers={"X-CSRF-Token": tokens[who]})
        posted += 1
        location = response.headers.get("location", "")
        if url.startswith("/api/v1/"):
            ok = response.status_code == 405  # the API's read-only rule, before anything else
        elif expected == "login":
            ok = response.status_code == 303 and location.startswith("/login")
        else:
            ok = response.status_code in REFUSED
        if not ok:
            failures.append(f"{who or 'anonymous'}: POST {url} → {response.status_code} {location} "
                            f"(expected {expected})")

    anonymous_marks.clear()
    for _, path, mark, targets in posts:
        url = targets.get("out") or targets.get("global")
        if path.startswith(("/api/", "/p/")) or mark not in anonymous_marks:
            anonymous_marks.add(mark)
            post(None, url, "login")
        if mark != AUTHENTICATED:
            lacking = next((who for who in PEOPLE if mark not in held[who]), None)
            if lacking:
                post(lacking, targets.get("in") or url, "403/404")
        if "out" in targets:
            for who in PEOPLE:
                if who != "admin" and _grants(mark, path, held[who]):
                    post(who, targets["out"], "403/404")
    written = changed_tables(before)
    print(f"\nauthorisation matrix: {len(gets)} GET and {len(posts)} POST routes, {sent} GET and {posted} POST "
          f"requests")
    assert not failures, "\n".join(failures)
    assert not written, f"a refused POST wrote to {written}"
