"""The unit tree a user may see (today or as at a past date), one unit's page with its
history, and import and export of units.

What a user sees is decided on the server from their grants: the subtrees where
they hold ``core.unit.view``. A unit outside them answers 404, exactly like a
unit that does not exist, so a guessed URL tells nothing (security.md ACL-02).

Former units (ended before today) hang under former parents that nobody holds a
grant on. The rule for them: a former unit is visible to whoever may view one of
its *anchors*, the unit(s) of today it leads to: its successors today, or, for a
unit dissolved without successor (a former district), the anchors of its parent
(``core.units.history.Lineages``). So a user with ``core.unit.view`` at the new
province sees the whole former tree; a commune's user sees the former communes
merged into theirs.

Import keeps the uploaded bytes between preview and confirmation in a hidden field
(base64) signed with an HMAC over the user, the file name and the content using the
app's secret key: nothing is stored on the server between the two steps, and the
confirmed file is exactly the previewed one; it is parsed and checked again on
confirmation, since the tree may have changed in between.
"""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlencode

from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.routing import Route

from core import clock
from core import audit, background
from core.units import history as unit_history
from core.units import files as unit_io
from core.units import tree as units
from core.db import run_db
from core.i18n import fold
from core.models import Unit, User
from web import signed_upload
from web.background import follow
from web.guards import require
from web.htmx import see_other
from web.params import parse_id, parse_int
from web.templating import render

PERMISSION = "core.unit.view"
EDIT = "core.unit.edit"
MAX_IMPORT_BYTES = 4 * 1024 * 1024  # base64 in the confirmation form must stay under the form limit


def parse_day(text: str) -> dt.date | None:
    """dd/mm/yyyy or yyyy-mm-dd; None when empty; ValueError when not a real date."""
    return unit_io.parse_date((text or "").strip()[:20])


def _prune(nodes, visible: set[int], depth: int = 0):
    """Keep the visible nodes; a hidden node's visible descendants move up in its place."""
    out = []
    for node in nodes:
        children = _prune(node.children, visible, depth + (1 if node.unit.id in visible else 0))
        if node.unit.id in visible:
            out.append(units.Node(node.unit, children, depth))
        else:
            out.extend(children)
    return out


def _visible_nodes(roots: list[int] | None, day: dt.date | None):
    if day is None or day == clock.today():
        return [n for root in roots for n in units.tree(root)] if roots is not None else units.tree()
    if roots is None:
        return units.tree(at=day)
    visible = unit_history.visible_ids(roots, unit_history.Lineages())
    return _prune(units.tree(at=day), visible)


# A page shows at most this many rows: a national tree (thousands of units) is found by
# searching, not by scrolling, and a commune office's slow line never downloads it whole.
MAX_ROWS = 300


def _visible_tree(roots: list[int] | None, q: str, day: dt.date | None = None):
    """(rows shown, how many matched, how many the user may see)."""
    nodes = units.flatten(_visible_nodes(roots, day))
    total = len(nodes)
    if q:
        needle = fold(q)
        nodes = [n for n in nodes if needle in fold(n.unit.name) or needle in n.unit.code.lower()]
    return nodes[:MAX_ROWS], len(nodes), total


@require(PERMISSION)
async def unit_list(request):
    q = request.query_params.get("q", "").strip()[:100]
    at_text = request.query_params.get("at", "").strip()[:20]
    errors, day = {}, None
    try:
        day = parse_day(at_text)
    except ValueError:
        errors["at"] = "units.asat.error.date"
    today = clock.today()
    nodes, matched, total = await run_db(_visible_tree, request.state.access.roots(PERMISSION), q, day)
    past = day is not None and day < today
    future = day is not None and day > today
    query = {"at": day.isoformat()} if day and day != today else {}
    return await render(request, "core/units/list.html",
                        {"nodes": nodes, "matched": matched, "total": total, "q": q, "at": day or today, "at_text": at_text,
                         "past": past, "future": future, "errors": errors, "today": today,
                         "at_query": urlencode(query), "reform_eve": dt.date(2025, 6, 30),
                         "can_import": request.state.access.allowed(EDIT)},
                        partial="core/units/_tree.html", status_code=422 if errors else 200)


def _can_open(access, unit_id: int, lineages=None) -> bool:
    if access.allowed(PERMISSION, units.ancestor_ids(unit_id)):
        return True
    lineages = lineages or unit_history.Lineages()
    return any(access.allowed(PERMISSION, units.ancestor_ids(a)) for a in lineages.anchors(unit_id))


def _history_context(unit: Unit, access, lineages) -> dict:
    today = clock.today()
    changes = unit_history.changes_of(unit)
    lineage = unit_history.predecessors(unit)
    later = unit_history.successors(unit) if not units.is_valid(unit, today) else []
    shown = {unit.id}
    for view in changes:
        shown.update(u.id for u in view.sources + view.targets)

    def collect(items):
        for item in items:
            shown.add(item.unit.id)
            collect(item.earlier)

    collect(lineage)
    shown.update(u.id for u in later)
    openable = {uid for uid in shown if _can_open(access, uid, lineages)}
    return {"changes": changes, "lineage": lineage, "successors": later, "history_openable": openable,
            "current": units.is_valid(unit, today), "today": today}


def _unit_page(unit_id: int, access):
    unit = Unit.get_or_none(Unit.id == unit_id)
    lineages = unit_history.Lineages()
    if unit is None or not _can_open(access, unit.id, lineages):
        return None
    current = units.is_valid(unit)
    # Today's units list today's children; a former unit the ones it had on its last day.
    day = clock.today() if current or unit.valid_to is None else unit.valid_to
    children = sorted(Unit.select().where((Unit.parent == unit) & units.valid_at(day)), key=units.sort_key)
    chain = [Unit.get_by_id(uid) for uid in reversed(units.ancestor_ids(unit.id))]
    # Only the ancestors the user may open become links in the breadcrumb.
    openable = {u.id for u in chain if _can_open(access, u.id, lineages)}
    accounts = User.select().where(User.unit == unit).count()
    # "target", not "unit": every template already has "unit", the user's own.
    return {"target": unit, "children": children, "chain": chain, "openable": openable, "accounts": accounts,
            **_history_context(unit, access, lineages)}


def _unit_id(request) -> int:
    unit_id = parse_id(request.path_params["unit_id"])
    if unit_id is None:
        raise HTTPException(404)
    return unit_id


@require(PERMISSION)
async def unit_detail(request):
    context = await run_db(_unit_page, _unit_id(request), request.state.access)
    if context is None:
        raise HTTPException(404)
    return await render(request, "core/units/detail.html", context)


@require(PERMISSION)
async def unit_history_page(request):
    context = await run_db(_unit_page, _unit_id(request), request.state.access)
    if context is None:
        raise HTTPException(404)
    return await render(request, "core/units/history.html", context, partial="core/units/_history.html")


# -- export -----------------------------------------------------------------------------------

def _export(access, day: dt.date | None, fmt: str) -> tuple[bytes, int]:
    roots = access.roots(PERMISSION)
    nodes = units.flatten(_visible_nodes(roots, day))
    rows = unit_io.export_rows(day, only={n.unit.id for n in nodes})
    body = unit_io.to_xlsx(rows) if fmt == "xlsx" else unit_io.to_csv(rows)
    audit.record("unit.export", actor=access.actor, object_type="unit", object_id="",
                 details={"at": (day or clock.today()).isoformat(), "format": fmt, "rows": len(rows) - 1})
    return body, len(rows) - 1


@require(PERMISSION)
async def unit_export(request):
    fmt = request.query_params.get("format", "csv")
    if fmt not in ("csv", "xlsx"):
        raise HTTPException(404)
    try:
        day = parse_day(request.query_params.get("at", ""))
    except ValueError:
        raise HTTPException(400) from None
    body, _ = await run_db(_export, request.state.access, day, fmt)
    name = f"don-vi-{(day or clock.today()).isoformat()}.{fmt}"
    media = ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" if fmt == "xlsx"
             else "text/csv; charset=utf-8")
    return Response(body, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'})


# -- import -----------------------------------------------------------------------------------

IMPORT_PURPOSE = "units.import"


def _edit_scope(access) -> set[int] | None:
    roots = access.roots(EDIT)
    return None if roots is None else {uid for root in roots for uid in units.subtree_ids(root)}


def _plan(access, content: bytes, filename: str) -> unit_io.Plan:
    return unit_io.parse(content, filename, allowed_ids=_edit_scope(access))


def _apply(access, content: bytes, filename: str):
    plan = _plan(access, content, filename)
    if plan.errors:
        return plan, None
    return plan, unit_io.apply(plan, actor=access.actor, filename=filename)


async def _import_page(request, **context):
    base = {"plan": None, "errors": {}, "filename": "", "payload": "", "signature": "", "done": None}
    status = context.pop("status_code", 200)
    return await render(request, "core/units/import.html", {**base, **context}, status_code=status)


@require(EDIT)
async def unit_import_form(request):
    done = None
    if "created" in request.query_params:
        done = {k: parse_int(request.query_params.get(k, "0"), minimum=0) for k in ("created", "updated", "unchanged")}
        done = None if None in done.values() else done
    return await _import_page(request, done=done)


@require(EDIT)
async def unit_import_preview(request):
    form = await request.form()
    upload = form.get("file")
    if upload is None or isinstance(upload, str) or not upload.filename:
        return await _import_page(request, errors={"file": "units.io.error.no_file"}, status_code=422)
    content = await upload.read(MAX_IMPORT_BYTES + 1)
    filename = upload.filename.replace("\\", "/").rsplit("/", 1)[-1][:200]
    if len(content) > MAX_IMPORT_BYTES:
        return await _import_page(request, errors={"file": "units.io.error.too_large"}, status_code=422)
    plan = await run_db(_plan, request.state.access, content, filename)
    payload = signed_upload.encode(content)
    signature = signed_upload.signature(request.app.state.settings.secret_key, IMPORT_PURPOSE,
                                        request.state.actor.id, filename, payload)
    return await _import_page(request, plan=plan, filename=filename, payload=payload, signature=signature,
                              status_code=422 if plan.errors else 200)


@require(EDIT)
async def unit_import_confirm(request):
    form = await request.form()
    filename, payload = str(form.get("filename", ""))[:200], str(form.get("payload", ""))
    signature = str(form.get("signature", ""))
    content = signed_upload.open_payload(request.app.state.settings.secret_key, IMPORT_PURPOSE,
                                         request.state.actor.id, filename, payload, signature)
    if content is None:
        return await _import_page(request, errors={"file": "units.io.error.tampered"}, status_code=400)
    access = request.state.access

    def work(progress) -> background.Outcome:
        progress.phase("background.phase.saving")
        plan, counts = _apply(access, content, filename)
        if counts is None:  # the tree changed since the preview: nothing saved, the errors shown again
            return background.Outcome(url="/units/import", summary="background.summary.import_refused", value=plan)
        numbers = {"created": counts["create"], "updated": counts["update"], "unchanged": counts["unchanged"]}
        return background.Outcome(url="/units/import?" + urlencode(numbers), summary="background.summary.units_import",
                                  summary_params=numbers)

    async def answer(outcome):
        if outcome.value is not None:
            return await _import_page(request, plan=outcome.value, filename=filename, payload=payload,
                                      signature=signature, status_code=422)
        return see_other(request, outcome.url)

    # A province's thousand units with their history take a while: past a second the import is
    # followed on its own page (web.background); it is still one transaction.
    return await follow(request, kind="units.import", title="background.title.units_import", work=work,
                        answer=answer, back_url="/units/import")


ROUTES = [
    Route("/units", unit_list, methods=["GET"], name="units"),
    Route("/units/export", unit_export, methods=["GET"], name="units_export"),
    Route("/units/import", unit_import_form, methods=["GET"], name="units_import"),
    Route("/units/import", unit_import_preview, methods=["POST"], name="units_import_preview"),
    Route("/units/import/confirm", unit_import_confirm, methods=["POST"], name="units_import_confirm"),
    Route("/units/{unit_id}", unit_detail, methods=["GET"], name="unit_detail"),
    Route("/units/{unit_id}/history", unit_history_page, methods=["GET"], name="unit_history"),
]
