"""Recording a unit change from the browser: merge, split, rename, re-parent, change of
level, dissolve (the domain operations of ``core.units.history``).

One form per unit (``/units/{id}/change``). Without JavaScript every kind's fieldset is
shown and the server reads only the chosen kind's fields; with htmx, choosing a kind
re-renders the form with that kind's fieldset only, and every change of a field refreshes a
one-sentence preview of what will happen, built on the server.

Rights: the page is guarded by ``core.unit.view``; a unit the user may not open answers
404, one they may open but not edit (``core.unit.edit`` at the unit) 403. Every other unit
the change involves (other merged units, an existing target, a new parent) must also be
editable, or the field says so and nothing is written. Former units cannot be changed.
"""

from __future__ import annotations

import datetime as dt

from starlette.exceptions import HTTPException
from starlette.routing import Route

from core import clock
from core.units import history as unit_history
from core.units import tree as units
from core.db import run_db
from core.errors import ValidationError
from core.i18n import fold
from core.models import UNIT_KINDS, Unit
from web.guards import require
from web.htmx import see_other
from web.params import parse_id
from web.routes.units import EDIT, PERMISSION, _can_open, parse_day
from web.templating import render, request_context

# The kinds offered on the screen, in the order shown (establish has no "this unit").
KINDS = ("merge", "split", "rename", "reparent", "level_change", "dissolve")
SPLIT_ROWS = 4  # rows offered for the new units of a split (empty rows are ignored)
MAX_CHOICES = 400  # units listed in a picker; a national tree is narrowed by the search box


def _int(value) -> int | None:
    return parse_id(str(value).strip())


def _editable(access, unit_id: int | None) -> bool:
    return unit_id is not None and access.allowed(EDIT, units.ancestor_ids(unit_id))


def _editable_nodes(access) -> list[units.Node]:
    """Today's units the user may edit, in tree order."""
    roots = access.roots(EDIT)
    return units.flatten([n for r in roots for n in units.tree(r)] if roots is not None else units.tree())


def _choices(nodes, exclude: set[int], q: str = "", keep: set[int] = frozenset()) -> list[units.Node]:
    """``nodes`` but those in ``exclude``; ``q`` narrows by name or code, but the ones in
    ``keep`` (already chosen) always stay."""
    needle = fold(q) if q else ""
    out = [n for n in nodes if n.unit.id not in exclude
           and (not needle or n.unit.id in keep or needle in fold(n.unit.name) or needle in n.unit.code.lower())]
    return out[:MAX_CHOICES]


def _read(form) -> dict:
    """The user's input, kept as typed (re-shown after an error)."""
    get = lambda key: str(form.get(key, "") or "").strip()[:500]  # noqa: E731
    data = {key: get(key) for key in ("kind", "effective_date", "basis_number", "basis_date", "basis_issuer",
                                      "note", "target_mode", "target", "new_code", "new_name", "new_kind",
                                      "new_parent", "rename_name", "parent", "level_kind", "split_parent", "q")}
    data["merge_with"] = [v for v in (_int(x) for x in form.getlist("merge_with")) if v is not None][:200]
    codes, names, kinds = (form.getlist(f"split_{k}") for k in ("code", "name", "kind"))
    rows = []
    for i in range(max(len(codes), len(names), len(kinds), SPLIT_ROWS)):
        pick = lambda values: str(values[i]).strip()[:255] if i < len(values) else ""  # noqa: E731
        rows.append({"code": pick(codes), "name": pick(names), "kind": pick(kinds)})
    data["split_rows"] = rows[:20]
    if data["kind"] not in KINDS:
        data["kind"] = ""
    if data["target_mode"] not in ("new", "existing"):
        data["target_mode"] = "new"
    return data


def _blank(target: Unit) -> dict:
    return {"kind": "", "effective_date": "", "basis_number": "", "basis_date": "", "basis_issuer": "", "note": "",
            "target_mode": "new", "target": "", "new_code": "", "new_name": "", "new_kind": target.kind,
            "new_parent": str(target.parent_id or ""), "rename_name": "", "parent": "", "level_kind": "",
            "split_parent": str(target.parent_id or ""), "q": "", "merge_with": [],
            "split_rows": [{"code": "", "name": "", "kind": target.kind} for _ in range(SPLIT_ROWS)]}


def legal_basis(data: dict) -> str:
    """"Nghị quyết 1680/NQ-UBTVQH15 ngày 16/06/2025 của Ủy ban Thường vụ Quốc hội"."""
    text = data["basis_number"]
    if text and data["basis_date"]:
        text += f" ngày {data['basis_date']}"
    if text and data["basis_issuer"]:
        text += f" của {data['basis_issuer']}"
    return text


def _split_rows(data: dict) -> list[tuple[int, dict]]:
    return [(i, row) for i, row in enumerate(data["split_rows"]) if row["code"] or row["name"]]


# -- what the form will do -------------------------------------------------------------------

def _names(ids) -> list[str]:
    found = {u.id: u for u in Unit.select().where(Unit.id.in_(list(ids)))} if ids else {}
    return [found[i].name for i in ids if i in found]


def preview(target: Unit, data: dict) -> tuple[str, dict] | None:
    """The message key and parameters of the sentence saying what will happen; None while
    the kind is not chosen."""
    kind = data["kind"]
    if not kind:
        return None
    try:
        day = parse_day(data["effective_date"])
    except ValueError:
        day = None
    params = {"date": day.strftime("%d/%m/%Y") if day else "(…)", "unit_name": target.name,
              "last": (day - dt.timedelta(days=1)).strftime("%d/%m/%Y") if day else "(…)"}
    if kind == "merge":
        sources = [target.name] + _names([i for i in data["merge_with"] if i != target.id])
        params["sources"] = sources
        if data["target_mode"] == "existing":
            into = _names([_int(data["target"])] if _int(data["target"]) else [])
            params["target_name"] = into[0] if into else "(…)"
            return "unitchange.preview.merge_existing", params
        params["target_name"] = data["new_name"] or "(…)"
        return "unitchange.preview.merge_new", params
    if kind == "split":
        params["targets"] = [row["name"] or row["code"] for _, row in _split_rows(data)] or ["(…)"]
        return "unitchange.preview.split", params
    if kind == "rename":
        params["new_name"] = data["rename_name"] or "(…)"
        return "unitchange.preview.rename", params
    if kind == "reparent":
        parent = _names([_int(data["parent"])]) if _int(data["parent"]) else []
        params["parent_name"] = parent[0] if parent else "(…)"
        return "unitchange.preview.reparent", params
    if kind == "level_change":
        params["old_kind"] = f"unit.kind.{target.kind}"
        params["new_kind"] = f"unit.kind.{data['level_kind']}" if data["level_kind"] in UNIT_KINDS else ""
        return "unitchange.preview.level_change", params
    return "unitchange.preview.dissolve", params


# -- doing it --------------------------------------------------------------------------------

def _need_editable(access, value, field: str, errors: dict) -> int | None:
    unit_id = _int(value)
    if unit_id is None:
        return None
    if not _editable(access, unit_id) or Unit.get_or_none(Unit.id == unit_id) is None:
        errors.setdefault(field, "unitchange.error.not_allowed")
    return unit_id


FIELD_OF = {  # domain error key → form field, per kind
    "merge": {"from": "merge_with", "to": "target", "code": "new_code", "name": "new_name", "kind": "new_kind",
              "parent": "new_parent"},
    "split": {"to": "split", "parent": "split_parent", "from": "unit"},
    "rename": {"name": "rename_name"},
    "reparent": {"parent": "parent"},
    "level_change": {"kind": "level_kind", "parent": "parent"},
    "dissolve": {},
}


def _field(kind: str, key: str) -> str:
    if key == "legal_basis":
        return "basis_number"
    if kind == "split" and key.startswith("to."):
        return "split." + key[3:].replace(".parent", ".code")
    if kind == "split" and key in ("code", "name", "kind"):
        return f"split.0.{key}"
    return FIELD_OF.get(kind, {}).get(key, key if key == "effective_date" else "unit")


def apply(access, target_id: int, data: dict) -> dict:
    """Record the change; returns {} or the field errors (message keys). Nothing is written
    when there is an error."""
    target = Unit.get_by_id(target_id)
    kind = data["kind"]
    errors: dict[str, str] = {}
    if not kind:
        return {"kind": "unitchange.error.kind_required"}
    try:
        day = parse_day(data["effective_date"])
    except ValueError:
        errors["effective_date"] = "unitchange.error.date_invalid"
        day = None
    if not errors and day is None:
        errors["effective_date"] = "units.history.error.date_required"
    if data["basis_date"]:
        try:
            parse_day(data["basis_date"])
        except ValueError:
            errors["basis_date"] = "unitchange.error.date_invalid"
    basis = legal_basis(data)
    common = {"effective_date": day, "legal_basis": basis, "note": data["note"], "actor": access.actor}
    call = None
    if kind == "merge":
        others = [i for i in data["merge_with"] if i != target.id]
        for i in others:
            _need_editable(access, i, "merge_with", errors)
        if data["target_mode"] == "existing":
            into = _need_editable(access, data["target"], "target", errors)
            if into is None:
                errors["target"] = "units.history.error.need_to"
        else:
            parent = _need_editable(access, data["new_parent"], "new_parent", errors)
            if parent is None and access.roots(EDIT) is not None:
                errors["new_parent"] = "unitchange.error.parent_required"
            into = {"code": data["new_code"], "name": data["new_name"], "kind": data["new_kind"], "parent": parent}
        call = lambda: unit_history.merge([target.id] + others, into, **common)  # noqa: E731
    elif kind == "split":
        parent = _need_editable(access, data["split_parent"], "split_parent", errors)
        if parent is None and access.roots(EDIT) is not None:
            errors["split_parent"] = "unitchange.error.parent_required"
        rows = [{**row, "parent": parent} for _, row in _split_rows(data)]
        call = lambda: unit_history.split(target.id, rows, **common)  # noqa: E731
    elif kind == "rename":
        call = lambda: unit_history.rename(target.id, data["rename_name"], **common)  # noqa: E731
    elif kind == "reparent":
        parent = _need_editable(access, data["parent"], "parent", errors)
        if parent is None and access.roots(EDIT) is not None:
            errors["parent"] = "unitchange.error.parent_required"
        call = lambda: unit_history.reparent(target.id, parent, **common)  # noqa: E731
    elif kind == "level_change":
        call = lambda: unit_history.change_level(target.id, data["level_kind"], **common)  # noqa: E731
    else:
        call = lambda: unit_history.dissolve(target.id, **common)  # noqa: E731
    if errors:
        # Still ask the domain, so that every field's problem shows at once; nothing is kept.
        try:
            if day is not None:
                with_errors = _dry_run(call)
                for key, value in with_errors.items():
                    errors.setdefault(_field(kind, key), value)
        except Exception:  # noqa: BLE001 — the errors found so far are enough
            pass
        return errors
    try:
        call()
    except ValidationError as exc:
        return {_field(kind, key): value for key, value in _errors_of(exc).items()}
    return {}


class _Rollback(Exception):
    pass


def _errors_of(exc: ValidationError) -> dict:
    found = getattr(exc, "errors", None) or getattr(exc, "fields", None) or {}
    return dict(found) if isinstance(found, dict) else {}


def _dry_run(call) -> dict:
    """The domain's own field errors, with everything it might write rolled back."""
    from core.db import transaction

    try:
        with transaction():
            call()
            raise _Rollback
    except ValidationError as exc:
        return _errors_of(exc)
    except _Rollback:
        return {}


# -- the screen ------------------------------------------------------------------------------

def _context(access, unit_id: int, data: dict | None, errors: dict | None = None, only: str | None = None):
    """None when the user may not open the unit; "forbidden" when they may open but not edit."""
    target = Unit.get_or_none(Unit.id == unit_id)
    if target is None or not _can_open(access, target.id):
        return None
    if not _editable(access, target.id):
        return "forbidden"
    today = clock.today()
    former = target.valid_to is not None and target.valid_to < today
    data = data or _blank(target)
    subtree = set(units.subtree_ids(target.id))
    chosen = set(data["merge_with"])
    nodes = _editable_nodes(access)
    same_kind = [n for n in _choices(nodes, {target.id}, data["q"], chosen) if n.unit.kind == target.kind]
    parents = _choices(nodes, subtree)
    found = preview(target, data)
    chain = [Unit.get_by_id(uid) for uid in reversed(units.ancestor_ids(target.id))]
    return {"target": target, "form": data, "errors": errors or {}, "kinds": KINDS, "unit_kinds": UNIT_KINDS,
            "merge_choices": same_kind, "parent_choices": parents,
            "target_choices": [n for n in _choices(nodes, {target.id}) if n.unit.id not in chosen],
            "may_be_root": access.roots(EDIT) is None, "former": former, "preview": found,
            "only": only, "chain": chain, "current_parent": target.parent}


def _unit_id(request) -> int:
    unit_id = parse_id(request.path_params["unit_id"])
    if unit_id is None:
        raise HTTPException(404)
    return unit_id


def sentence(request, found) -> str:
    """The preview in the user's language: lists joined "A, B và C", kinds named."""
    if found is None:
        return ""
    translate = request_context(request)["_"]
    key, params = found
    out = {}
    for name, value in params.items():
        if isinstance(value, list):
            head, last = ", ".join(value[:-1]), value[-1]
            value = f"{head} {translate('unitchange.and')} {last}" if head else last
        elif name in ("old_kind", "new_kind"):
            value = translate(value) if value else "(…)"
        out[name] = value
    return translate(key, **out)


async def _context_or_raise(request, data=None, errors=None, only=None) -> dict:
    context = await run_db(_context, request.state.access, _unit_id(request), data, errors, only)
    if context is None:
        raise HTTPException(404)
    if context == "forbidden":
        raise HTTPException(403)
    context["sentence"] = sentence(request, context["preview"])
    return context


async def _page(request, data=None, errors=None, status_code=200):
    only = data["kind"] if data and request.state.htmx and data["kind"] else None
    context = await _context_or_raise(request, data, errors, only)
    if context["former"] and request.method == "POST":
        status_code = 409
    return await render(request, "core/units/change.html", context, partial="core/units/change_form.html",
                        status_code=status_code)


@require(PERMISSION)
async def change_form(request):
    return await _page(request)


@require(PERMISSION)
async def change_refresh(request):
    """htmx: the form again for the chosen kind (only its fieldset), keeping what was typed."""
    data = _read(await request.form())
    return await _page(request, data)


@require(PERMISSION)
async def change_preview(request):
    """htmx: the one-sentence preview only."""
    context = await _context_or_raise(request, _read(await request.form()))
    return await render(request, "core/units/change_preview.html", context)


@require(PERMISSION)
async def change_submit(request):
    data = _read(await request.form())
    unit_id = _unit_id(request)
    access = request.state.access
    context = await _context_or_raise(request, data)
    if context["former"]:
        return await _page(request, data, status_code=409)
    errors = await run_db(apply, access, unit_id, data)
    if errors:
        return await _page(request, data, errors, status_code=422)
    target = request.url_for("unit_history", unit_id=unit_id).path + "?done=change"
    return see_other(request, target)


ROUTES = [
    Route("/units/{unit_id}/change", change_form, methods=["GET"], name="unit_change"),
    Route("/units/{unit_id}/change", change_submit, methods=["POST"], name="unit_change_submit"),
    Route("/units/{unit_id}/change/form", change_refresh, methods=["POST"], name="unit_change_form"),
    Route("/units/{unit_id}/change/preview", change_preview, methods=["POST"], name="unit_change_preview"),
]
