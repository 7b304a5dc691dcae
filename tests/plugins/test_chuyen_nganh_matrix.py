"""The authorisation matrix of the sector plugin's routes (issue 15, "done when"): every route of
/p/chuyen_nganh/ × every kind of person × the delegation in force, suspended, expired and revoked
answers exactly what docs/sector_reporting.md, sector_catalogue.md, sector_templates.md and
sector_department.md say, and a form sent by anyone changes nothing it may not change.

The routes come from the plugin (what the app mounts; a test checks the two agree): a route added
without its row in ``EXPECTED`` fails. Each row gives, per actor in ``ACTORS`` order, the status
code the route answers — allowed: 200, 303 (a redirect to where the work is), 422 or 409; denied:
403 (the guard's permission, or the catalogue's "does not stand" page) or 404 (a delegation the
person may not know of); anonymous: 303 to the login page.

A form is sent by an allowed actor with something the route refuses (an empty reason, a taken
code, a stale digest: 422/409), by a denied actor with what would succeed; in both cases the
plugin's tables, the catalogue, the regimes and forms and the plugin's audit events stay as they
were. ``{id}`` is the department's own delegation (``nn``, whose situation the test walks) or
another department's (``gd``, in force throughout: column ``other``).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import zlib
from types import SimpleNamespace

import pytest
from starlette.routing import Mount

from core.audit import AuditEvent
from core.db import db
from core.models import Unit
from plugins.chuyen_nganh import catalogue as cat
from plugins.chuyen_nganh.adopt import TemplateAdoption
from plugins.chuyen_nganh.models import Delegation, DelegationFile
from plugins.chuyen_nganh.routes import ROUTES
from tests.conftest import csrf_from
from tests.plugins.test_chuyen_nganh_catalogue import indicator_form, table
from tests.web.test_report_entry import log_in

PREFIX = "/p/chuyen_nganh"
PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
ACTORS = ("anonymous",   # nobody logged in
          "operator",    # the system administrator (acts for the province)
          "named",       # the administrator the nn delegation's decision names (delegated role while in force)
          "officer",     # the department's other officer: chuyen_nganh.sector_admin (apply, view)
          "unit_admin",  # the department's unit administrator (view)
          "other",       # the named administrator of another department's delegation (gd, in force)
          "commune_in",  # a reporter of a commune in the nn delegation's scope
          "commune_out")  # a reporter of a commune outside it
# The nn delegation's situations, in this order: (status, valid_to); today is 2/12/2026.
SITUATIONS = {"in_force": ("approved", None), "suspended": ("suspended", None),
              "expired": ("approved", dt.date(2026, 12, 1)), "revoked": ("revoked", None)}

# Route × actor → status. "in_force": the department's own delegation in force; "ended": the same
# once suspended, past its last day, and revoked (each walked); "other": another department's delegation
# in force (rows with {id} only). Columns: anonymous operator named officer unit_admin other
# commune_in commune_out.
_LIST = {"in_force": "303 200 200 200 200 200 403 403", "ended": "303 200 403 200 200 200 403 403"}
_APPLY_ONLY = "303 {ok} 403 {ok} 403 403 403 403"
_OPERATOR_ONLY = "303 {ok} 403 403 403 403 403 403"
# One delegation's pages (chuyen_nganh.delegation.view, then who may read it: 404 for the others).
_READ = {"in_force": "303 200 200 200 200 404 403 403", "ended": "303 200 403 200 200 404 403 403",
         "other": "303 200 404 404 404 200 403 403"}
# Its catalogue (any logged-in person, then who may know of it; 403 while it does not stand).
_CAT_READ = {"in_force": "303 {ok} {ok} {ok} {ok} 404 404 404", "ended": "303 403 403 403 403 404 404 404",
             "other": "303 {ok} 404 404 404 {ok} 404 404"}
# Changing it: the catalogue right at the department (a reader gets the "read only" 403).
_CAT_EDIT = {"in_force": "303 {ok} {ok} 403 403 404 404 404", "ended": "303 403 403 403 403 404 404 404",
             "other": "303 {ok} 404 404 404 {ok} 404 404"}


def _fill(rows: dict, ok: str) -> dict:
    return {k: v.format(ok=ok) for k, v in rows.items()}


EXPECTED = {
    # docs/sector_reporting.md: the department's list (view), applying (apply, not delegable), the
    # operator's queue and steps (system), one delegation (view, 404 to whom may not read it).
    f"GET {PREFIX}/": _LIST,
    f"GET {PREFIX}/apply": {"in_force": _APPLY_ONLY.format(ok=200), "ended": _APPLY_ONLY.format(ok=200)},
    f"POST {PREFIX}/apply": {"in_force": _APPLY_ONLY.format(ok=422), "ended": _APPLY_ONLY.format(ok=422)},
    f"GET {PREFIX}/queue": {"in_force": _OPERATOR_ONLY.format(ok=200), "ended": _OPERATOR_ONLY.format(ok=200)},
    f"GET {PREFIX}/{{id}}": _READ,
    f"GET {PREFIX}/{{id}}/decision.pdf": _READ,
    # Changing is for a returned application only: a GET of one in any other state is a 404, a form
    # sent to it a 409 (the step was taken meanwhile); another department's: 404.
    f"GET {PREFIX}/{{id}}/change": {"in_force": "303 404 403 404 403 403 403 403",
                                    "ended": "303 404 403 404 403 403 403 403",
                                    "other": "303 404 403 404 403 403 403 403"},
    f"POST {PREFIX}/{{id}}/change": {"in_force": "303 409 403 409 403 403 403 403",
                                     "ended": "303 409 403 409 403 403 403 403",
                                     "other": "303 409 403 404 403 403 403 403"},
    # Deciding a decided delegation is a 409 (its state), the other steps with no reason a 422.
    f"POST {PREFIX}/{{id}}/decide": {k: _OPERATOR_ONLY.format(ok=409) for k in ("in_force", "ended", "other")},
    **{f"POST {PREFIX}/{{id}}/{step}": {k: _OPERATOR_ONLY.format(ok=422) for k in ("in_force", "ended", "other")}
       for step in ("return", "suspend", "resume", "revoke")},
    # docs/sector_catalogue.md. The index lists what one may see (empty for the others).
    f"GET {PREFIX}/catalogue": {"in_force": "303 200 200 200 200 200 200 200",
                                "ended": "303 200 200 200 200 200 200 200"},
    f"GET {PREFIX}/catalogue/{{id}}": _fill(_CAT_READ, "200"),
    f"GET {PREFIX}/catalogue/{{id}}/export.{{fmt}}": _fill(_CAT_READ, "200"),
    f"POST {PREFIX}/catalogue/{{id}}/namespace": _fill(_CAT_EDIT, "422"),  # the letters are claimed already
    f"GET {PREFIX}/catalogue/{{id}}/groups/new": _fill(_CAT_EDIT, "200"),
    f"POST {PREFIX}/catalogue/{{id}}/groups/new": _fill(_CAT_EDIT, "422"),
    f"GET {PREFIX}/catalogue/{{id}}/groups/{{code}}/edit": _fill(_CAT_EDIT, "200"),
    f"POST {PREFIX}/catalogue/{{id}}/groups/{{code}}/edit": _fill(_CAT_EDIT, "422"),
    f"GET {PREFIX}/catalogue/{{id}}/indicators/new": _fill(_CAT_EDIT, "200"),
    f"POST {PREFIX}/catalogue/{{id}}/indicators/new": _fill(_CAT_EDIT, "422"),
    f"GET {PREFIX}/catalogue/{{id}}/indicators/{{code}}/edit": _fill(_CAT_EDIT, "200"),
    f"POST {PREFIX}/catalogue/{{id}}/indicators/{{code}}/edit": _fill(_CAT_EDIT, "422"),
    f"GET {PREFIX}/catalogue/{{id}}/import": _fill(_CAT_EDIT, "200"),
    f"POST {PREFIX}/catalogue/{{id}}/import": _fill(_CAT_EDIT, "200"),  # the dry run writes nothing
    f"POST {PREFIX}/catalogue/{{id}}/import/apply": _fill(_CAT_EDIT, "409"),  # not what the preview showed
    # docs/sector_department.md: the list goes straight to the one page a person may read.
    f"GET {PREFIX}/sector": {"in_force": "303 200 303 303 303 303 403 403",
                             "ended": "303 200 403 303 303 303 403 403"},
    f"GET {PREFIX}/sector/{{id}}": _READ,
    # docs/sector_templates.md: the catalogue right (a delegation in force) and core.regime.edit;
    # adopting again is a 409 (each department adopted both templates already).
    f"GET {PREFIX}/templates": {"in_force": "303 200 200 403 403 200 403 403",
                                "ended": "303 200 403 403 403 200 403 403"},
    f"POST {PREFIX}/templates/{{id}}/{{key}}/adopt": {"in_force": "303 409 409 403 403 404 403 403",
                                                       "ended": "303 403 403 403 403 404 403 403",
                                                       "other": "303 409 404 403 403 409 403 403"},
}


def _shown(path: str) -> str:
    return re.sub(r"\{(\w+):\w+\}", r"{\1}", path)


def plugin_routes(routes, prefix: str = PREFIX) -> list[tuple[str, str, str]]:
    """(method, path as the test names it, route name) of every route, HEAD left out."""
    return [(method, _shown(prefix + route.path), route.name)
            for route in routes for method in sorted(route.methods - {"HEAD"})]


CASES = plugin_routes(ROUTES)


# -- the world ----------------------------------------------------------------------------------------

def _delegation(department, sector, name, applicant, administrator, scope_unit, number) -> Delegation:
    d = Delegation.create(
        department_unit_id=department.id, sector=sector, sector_name=name, purpose="Báo cáo ngành",
        scope=json.dumps({"unit_ids": [scope_unit.id], "kinds": [], "group_ids": []}),
        administrators=json.dumps([administrator.id]), status="approved", applicant_id=applicant.id,
        decision_number=number, decision_date=dt.date(2026, 11, 20), signer_name="Nguyễn Văn A",
        signer_title="Phó Chủ tịch UBND tỉnh", valid_from=dt.date(2026, 12, 1))
    DelegationFile.create(delegation_id=d.id, filename="qd.pdf", size=len(PDF), sha256="0" * 64, content=PDF,
                          uploaded_by=applicant.id)
    return d


def _indicator(letters: str, code: str, name: str) -> dict:
    return indicator_form(code=code, group=f"{letters}01", name=name, disaggregation="", higher_code="",
                          levels=["commune"])


@pytest.fixture
def world(client, unit_tree, make_user, frozen_clock):
    frozen_clock(dt.datetime(2026, 12, 2, 3, 0))  # the delegations are in force from 1/12/2026
    gio_linh, cam_lo = unit_tree.communes
    with db.connection_context():
        education = Unit.create(code="44.SGDDT", name="Sở Giáo dục và Đào tạo", kind="department",
                                parent=unit_tree.province)
    users = {
        "operator": make_user(unit=unit_tree.province, is_admin=True)[0],
        "named": make_user(unit=unit_tree.department)[0],
        "officer": make_user(unit=unit_tree.department, roles=("chuyen_nganh.sector_admin",))[0],
        "unit_admin": make_user(unit=unit_tree.department, roles=("unit_admin",))[0],
        "other": make_user(unit=education)[0],
        "commune_in": make_user(unit=gio_linh, roles=("reporter",))[0],
        "commune_out": make_user(unit=cam_lo, roles=("reporter",))[0]}
    with db.connection_context():
        nn = _delegation(unit_tree.department, "nn", "Nông nghiệp", users["officer"], users["named"], gio_linh,
                         "123/QĐ-UBND")
        gd = _delegation(education, "gd", "Giáo dục", users["operator"], users["other"], cam_lo, "456/QĐ-UBND")
    w = SimpleNamespace(tree=unit_tree, education=education, users=users, nn=nn, gd=gd, jars={}, csrf={})
    for actor, user in users.items():
        w.csrf[actor] = log_in(client, user)
        w.jars[actor] = dict(client.cookies)
    client.cookies.clear()
    w.csrf["anonymous"] = csrf_from(client.get("/login").text)
    w.jars["anonymous"] = dict(client.cookies)
    # Each sector's letters, one group and one indicator, made by its administrator on the screens.
    for actor, d, letters in (("named", nn, "NN"), ("other", gd, "GD")):
        base = f"{PREFIX}/catalogue/{d.id}"
        made = [ask(client, w, actor, "POST", f"{base}/groups/new",
                    {"code": f"{letters}01", "name": "Trồng trọt", "level": "commune"}),
                ask(client, w, actor, "POST", f"{base}/indicators/new",
                    _indicator(letters, f"{letters}0101", "Diện tích gieo trồng"))]
        assert [r.status_code for r in made] == [303, 303], made[-1].text[:2000]
    with db.connection_context():
        # Both templates adopted already (a second adoption is a 409 that writes nothing).
        for d, key in ((nn, "nn_san_xuat_thang"), (gd, "gd_dau_nam_hoc")):
            TemplateAdoption.create(department_unit_id=d.department_unit_id, template=key, sector=d.sector,
                                    delegation_id=d.id, regime_id=0)
        w.upload = {letters: table([["", f"{letters}01", "Trồng trọt", "", "", "", "", "", "", "", "commune"],
                                   ["1", f"{letters}0102", "Sản lượng", "", "Tháng", "", "", "tấn", "number",
                                    "sum", "commune"]]) for letters in ("NN", "GD")}
        w.digest = {letters: cat._dry_run(letters, content, "chi-tieu.csv").digest
                    for letters, content in w.upload.items()}
    return w


def ask(client, w, actor: str, method: str, path: str, data: dict | None = None, files=None):
    client.cookies.clear()
    client.cookies.update(w.jars[actor])
    if method == "GET":
        return client.get(path, follow_redirects=False)
    return client.post(path, data={**(data or {}), "csrf_token": w.csrf[actor]}, files=files,
                       follow_redirects=False)


def form(name: str, w, d: Delegation, allowed: bool) -> tuple[dict, dict | None]:
    """What a POST to the route ``name`` sends: for an allowed actor something the route refuses
    (nothing may change), for a denied one what would succeed."""
    letters = "NN" if d.sector == "nn" else "GD"
    application = {"department_unit_id": str(d.department_unit_id), "sector": "ts", "sector_name": "Thủy sản",
                   "scope_unit_ids": [str(w.tree.communes[1].id)], "purpose": "Báo cáo thủy sản",
                   "administrator_ids": [str(w.users["named"].id)]}
    payload = base64.b64encode(zlib.compress(w.upload[letters], 9)).decode("ascii")
    forms = {
        "apply": ({}, application),
        "change": (application, application),  # never returned: the allowed get 409
        "decide": ({"decision_number": "789/QĐ-UBND", "decision_date": "2026-12-01", "signer_name": "Nguyễn Văn B",
                    "signer_title": "Chủ tịch UBND tỉnh", "valid_from": "2026-12-01", "valid_to": ""},) * 2,
        "catalogue_namespace": ({"prefix": "1"}, {"prefix": "QQ"}),
        "catalogue_group_new": ({"code": "", "name": "Chăn nuôi", "level": "commune"},
                                {"code": f"{letters}02", "name": "Chăn nuôi", "level": "commune"}),
        "catalogue_group_edit": ({"name": ""}, {"name": "Trồng trọt và chăn nuôi"}),
        "catalogue_indicator_new": ({**_indicator(letters, f"{letters}0102", ""), "name": ""},
                                    _indicator(letters, f"{letters}0102", "Sản lượng")),
        "catalogue_indicator_edit": ({**_indicator(letters, f"{letters}0101", ""), "version": "1"},
                                     {**_indicator(letters, f"{letters}0101", "Diện tích lúa"), "version": "1"}),
        "catalogue_import": ({}, {}),  # the file below: a dry run either way
        "catalogue_import_apply": ({"filename": "chi-tieu.csv", "payload": payload, "digest": "0" * 32},
                                   {"filename": "chi-tieu.csv", "payload": payload, "digest": w.digest[letters]}),
        "template_adopt": ({}, {}),
    }
    refused, succeeds = forms.get(name, ({"reason": ""}, {"reason": "Theo đề nghị của sở"}))  # the operator's steps
    files = None
    if name == "decide":
        files = {"file": ("qd.pdf", PDF, "application/pdf")}
    elif name == "catalogue_import":
        files = {"file": ("chi-tieu.csv", w.upload[letters], "text/csv")}
    return (refused if allowed else succeeds), files


def path_for(path: str, d: Delegation) -> str:
    letters = "NN" if d.sector == "nn" else "GD"
    code = f"{letters}0101" if "/indicators/" in path else f"{letters}01"
    key = "nn_san_xuat_thang" if d.sector == "nn" else "gd_dau_nam_hoc"
    return path.format(id=d.id, code=code, fmt="csv", key=key)


LINKED = re.compile(r"/p/chuyen_nganh/(?:catalogue/|sector/|templates/)?(\d+)(?!\d)")
READS = {"operator": ("nn", "gd"), "named": ("nn",), "officer": ("nn",), "unit_admin": ("nn",), "other": ("gd",)}


def readable(w, actor: str) -> set[int]:
    return {getattr(w, sector).id for sector in READS.get(actor, ())}


WATCHED = ("core_indicator", "core_indicatorgroup", "core_regime")


def snapshot() -> dict:
    """The plugin's tables, the catalogue, the regimes and forms, and the plugin's audit events."""
    with db.connection_context():
        tables = sorted(t for t in db.get_tables()
                        if t.startswith("chuyen_nganh_") or t in WATCHED or t.startswith("core_form"))
        rows = {t: [tuple(bytes(v) if isinstance(v, memoryview) else v for v in row)
                    for row in db.execute_sql(f'SELECT * FROM "{t}" ORDER BY 1').fetchall()] for t in tables}
        rows["audit"] = list(AuditEvent.select(AuditEvent.action, AuditEvent.object_id)
                             .where(AuditEvent.action.startswith("chuyen_nganh.")).order_by(AuditEvent.id).tuples())
    return rows


def _set_situation(d: Delegation, situation: str) -> None:
    status, valid_to = SITUATIONS[situation]
    with db.connection_context():
        Delegation.update(status=status, valid_to=valid_to).where(Delegation.id == d.id).execute()


# -- the matrix ---------------------------------------------------------------------------------------

def test_every_mounted_route_of_the_plugin_has_its_row(client):
    mount = next(r for r in client.app.routes if isinstance(r, Mount) and r.path == PREFIX)
    mounted = {f"{method} {path}" for method, path, _ in plugin_routes(mount.routes)}
    assert mounted == {f"{method} {path}" for method, path, _ in CASES}
    assert mounted == set(EXPECTED), "a route without its row in EXPECTED, or a row without its route"


@pytest.mark.parametrize("method, path, name", CASES, ids=[f"{m} {p}" for m, p, _ in CASES])
def test_matrix(client, world, method, path, name):
    row = EXPECTED.get(f"{method} {path}")
    assert row is not None, f"{method} {path} has no row in EXPECTED: say who may use it"
    targets = [("own", world.nn), ("other", world.gd)] if "{id}" in path else [("own", world.nn)]
    answers, wanted = {}, {}
    for situation in SITUATIONS:
        _set_situation(world.nn, situation)
        for target, d in targets:
            if target == "other" and situation != "in_force":
                continue  # another department's delegation does not move with this one
            column = "other" if target == "other" else ("in_force" if situation == "in_force" else "ended")
            expected = dict(zip(ACTORS, (int(c) for c in row[column].split()), strict=True))
            url = path_for(path, d)
            for actor in ACTORS:
                allowed = expected[actor] not in (403, 404) and actor != "anonymous"
                data, files = form(name, world, d, allowed) if method == "POST" else (None, None)
                before = snapshot() if method == "POST" else None
                response = ask(client, world, actor, method, url, data, files)
                key = f"{situation}/{target}/{actor}"
                answers[key], wanted[key] = response.status_code, expected[actor]
                if actor == "anonymous":
                    assert response.headers.get("location", "").startswith("/login"), key
                if response.status_code == 200 and response.headers["content-type"].startswith("text/html"):
                    # A page let through names no delegation its reader may not know of.
                    shown = {int(i) for i in LINKED.findall(response.text)}
                    assert shown <= {world.nn.id, world.gd.id} & readable(world, actor), (key, shown)
                if method == "POST":
                    assert snapshot() == before, f"{method} {url} by {actor} ({situation}) changed something"
    assert answers == wanted
