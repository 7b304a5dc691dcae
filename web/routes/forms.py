"""Form designer screens (biểu mẫu): the list, creating and copying a form, a form's versions with
publishing, and the designer of its draft — rows, columns, greyed cells, rules, outline, preview.

Every designer action is a small POST that reads the whole draft, changes one thing and saves
the whole definition again through ``core.regimes.forms.save_draft`` with the stamp the page was drawn
from, so two people designing at once never overwrite each other silently. A change the engine
refuses (``FormDesignError``) is not saved: the panel comes back with the form still open with
what was typed and every problem shown at its place. The rules of what a sound form is live in
``core.regimes.form_engine``; this module only turns screen input into a definition and back.
"""

from __future__ import annotations

import copy
import re

from starlette.exceptions import HTTPException
from starlette.responses import RedirectResponse
from starlette.routing import Route

from core import clock
from core.regimes import expressions
from core.regimes import forms as fm
from core.catalogue import indicators as ind
from core.regimes import regimes as rg
from core.db import run_db
from core.errors import BaocaoError, Forbidden, NotFound, ValidationError
from core.regimes.form_engine import (COLUMN_KINDS, PERIOD_OFFSETS, SEVERITIES, FormDesignError,
                              check_definition)
from core.i18n import fold
from core.regimes.periods import periods_per_year
from core.catalogue.indicators import VALUE_KINDS
from core.units.tree import flatten, subtree_ids, tree
from core.reporting import facade as reporting
from web.guards import require
from web.htmx import see_other
from web.params import parse_id, parse_int
from web.templating import render

VIEW, EDIT = fm.VIEW, fm.EDIT
TABS = ("rows", "columns", "rules", "outline", "preview")
FREQUENCIES = ("monthly", "quarterly", "half_year", "nine_months", "annual")
STATUS_LABELS = {fm.DRAFT: "form_designer.status.draft", fm.PUBLISHED: "form_designer.status.published",
                 fm.RETIRED: "form_designer.status.retired"}
STATUS_BADGES = {fm.DRAFT: "badge-warn", fm.PUBLISHED: "badge-ok", fm.RETIRED: "badge-off"}
SEARCH_LIMIT = 50
DONE = {"created": "form_designer.done.created", "published": "form_designer.done.published",
        "version": "form_designer.done.version", "copied": "form_designer.done.copied"}

# The scheme A columns of the Sở Công Thương monthly forms (shared/data/forms/monthly_column_schemes.csv),
# in the order the paper form shows them; ratios are percentages of the month's or the year's figure.
PRESET_A = (
    {"key": "cung_ky", "kind": "prefill", "label": "Tháng {m}/{y-1}", "value_kind": "actual",
     "period": "same_last_year"},
    {"key": "luy_ke_cung_ky", "kind": "prefill", "label": "Thực hiện {m} tháng đầu năm {y-1}",
     "value_kind": "actual", "period": "year_to_date_last_year"},
    {"key": "ke_hoach_nam", "kind": "prefill", "label": "Kế hoạch năm {y}", "value_kind": "plan", "period": "year"},
    {"key": "thang_truoc", "kind": "prefill", "label": "Tháng {m-1}/{py}", "value_kind": "actual",
     "period": "previous"},
    {"key": "thang", "kind": "input", "label": "Tháng {m}/{y}", "value_kind": "actual", "period": "current"},
    {"key": "luy_ke", "kind": "computed", "label": "Thực hiện {m} tháng đầu năm {y}", "value_kind": "actual",
     "period": "year_to_date", "accumulate": "thang"},
    {"key": "so_thang_truoc", "kind": "computed", "label": "Tháng {m} so với tháng trước (%)",
     "formula": "thang / thang_truoc * 100", "decimals": 1, "percent": True},
    {"key": "so_cung_ky", "kind": "computed", "label": "Tháng {m} so với cùng kỳ (%)",
     "formula": "thang / cung_ky * 100", "decimals": 1, "percent": True},
    {"key": "luy_ke_so_cung_ky", "kind": "computed", "label": "Lũy kế so với cùng kỳ (%)",
     "formula": "luy_ke / luy_ke_cung_ky * 100", "decimals": 1, "percent": True},
    {"key": "luy_ke_so_ke_hoach", "kind": "computed", "label": "Lũy kế so với kế hoạch năm (%)",
     "formula": "luy_ke / ke_hoach_nam * 100", "decimals": 1, "percent": True},
)


class Refused(BaocaoError):
    """A designer action that cannot be done as asked (nothing saved)."""


def _int(value) -> int | None:
    return parse_id(str(value or "").strip())


def _labels() -> dict:
    return {"frequencies": rg.FREQUENCY_LABELS, "statuses": STATUS_LABELS, "badges": STATUS_BADGES}


def _period_count(frequency: str) -> int:
    # A form made for no particular frequency offers the monthly indexes (the longest list).
    return periods_per_year(frequency or "monthly")


# -- the list -------------------------------------------------------------------------------------

def _list_context(access, q: str) -> dict:
    rows = []
    for form in fm.visible_forms(access, q):
        versions = fm.versions(form)
        rows.append({"form": form, "latest": versions[0] if versions else None, "used_by": rg.using_form(form)})
    edit_roots = access.roots(EDIT)
    return {"rows": rows, "q": q, "can_create": edit_roots is None or bool(edit_roots), "labels": _labels()}


@require(VIEW)
async def form_list(request):
    q = (request.query_params.get("q") or "").strip()[:100]
    context = await run_db(_list_context, request.state.access, q)
    return await render(request, "core/forms/list.html", context, partial="core/forms/_table.html")


# -- creating ---------------------------------------------------------------------------------------

def _owner_units(access) -> list:
    """Units where the actor designs forms (core.regime.edit), as an indented tree."""
    nodes = [n for n in flatten(tree()) if n.unit.kind not in rg.OUTSIDE_KINDS]
    roots = access.roots(EDIT)
    if roots is None:
        return nodes
    ids = set()
    for root in roots:
        ids |= set(subtree_ids(root))
    return [n for n in nodes if n.unit.id in ids]


def _check_can_create(access) -> None:
    roots = access.roots(EDIT)
    if roots is not None and not roots:
        raise Forbidden()


def _new_context(access, values: dict, errors: dict) -> dict:
    _check_can_create(access)
    units = _owner_units(access)
    if not values.get("owner_unit_id"):
        own = access.actor.unit_id if access.actor else None
        fallback = units[0].unit.id if units else ""
        values["owner_unit_id"] = str(own if any(n.unit.id == own for n in units) else fallback)
    sources = [f for f in fm.visible_forms(access)]
    return {"values": values, "errors": errors, "units": units, "sources": sources, "labels": _labels(),
            "frequencies": FREQUENCIES}


def _new_values(data) -> dict:
    return {k: str(data.get(k, "")).strip()[:255] for k in ("code", "name", "owner_unit_id", "frequency", "copy_from")}


@require(VIEW)
async def form_new(request):
    values = _new_values(request.query_params)
    context = await run_db(_new_context, request.state.access, values, {})
    return await render(request, "core/forms/new.html", context)


@require(VIEW)
async def form_create(request):
    access = request.state.access
    values = _new_values(await request.form())

    def create():
        _check_can_create(access)
        frequency = values["frequency"] if values["frequency"] in FREQUENCIES else ""
        owner = _int(values["owner_unit_id"]) or 0
        source = _int(values["copy_from"])
        if source:
            fm.get_form(access, source)  # 404/403 before anything is made
            return fm.copy_form(access, source, values["code"], values["name"], owner), "copied"
        return fm.create_form(access, values["code"], values["name"], owner, frequency=frequency), "created"

    try:
        form, done = await run_db(create)
    except ValidationError as exc:
        context = await run_db(_new_context, access, values, exc.errors)
        return await render(request, "core/forms/new.html", context, status_code=422)
    target = "form_design" if done == "created" else "form_detail"
    return see_other(request, request.url_for(target, id=form.id).path + f"?done={done}")


# -- one form ---------------------------------------------------------------------------------------

def _detail_context(access, form_id: int, version_no: int | None) -> dict:
    form = fm.get_form(access, form_id)
    versions = fm.versions(form)
    draft = fm.draft_of(form)
    shown = next((v for v in versions if v.version == version_no), None) if version_no else None
    if version_no and shown is None:
        raise NotFound()
    problems = []
    if draft is not None:
        d = draft.data()
        problems = check_definition(fm.normalise(d), indicators=fm.current_indicators(d), publishing=True)
    view = None
    if shown is not None:
        count = _period_count(form.frequency)
        try:
            sheet = reporting.preview_sheet(shown, form.frequency or "monthly", clock.today().year, 1)
        except FormDesignError:
            sheet = None
        view = {"version": shown, "definition": shown.data(), "sheet": sheet, "period_count": count}
    can_edit = fm.can_edit(access, form)
    return {"form": form, "versions": versions, "draft": draft, "problems": problems, "view": view,
            "can_edit": can_edit, "used_by": rg.using_form(form), "labels": _labels(),
            "copy_units": _owner_units(access) if access.roots(EDIT) != [] else [],
            "copy_values": {"code": "", "name": "", "owner_unit_id": str(form.owner_unit_id)}, "copy_errors": {}}


async def _detail(request, form_id: int, *, status_code: int = 200, **extra):
    version_no = _int(request.query_params.get("version"))
    context = await run_db(_detail_context, request.state.access, form_id, version_no)
    context.update(extra)
    return await render(request, "core/forms/detail.html", context, status_code=status_code)


@require(VIEW)
async def form_detail(request):
    return await _detail(request, request.path_params["id"], done=DONE.get(request.query_params.get("done") or ""))


@require(VIEW)
async def form_publish(request):
    form_id = request.path_params["id"]
    try:
        await run_db(fm.publish, request.state.access, form_id)
    except FormDesignError as exc:
        return await _detail(request, form_id, status_code=422, refused=exc.problems)
    except BaocaoError as exc:
        if isinstance(exc, (NotFound, Forbidden)):
            raise
        return await _detail(request, form_id, status_code=422, action_error=exc)
    return see_other(request, request.url_for("form_detail", id=form_id).path + "?done=published")


@require(VIEW)
async def form_new_version(request):
    form_id = request.path_params["id"]
    await run_db(fm.new_version, request.state.access, form_id)
    return see_other(request, request.url_for("form_design", id=form_id).path + "?done=version")


@require(VIEW)
async def form_copy(request):
    access = request.state.access
    form_id = request.path_params["id"]
    data = await request.form()
    values = {k: str(data.get(k, "")).strip()[:255] for k in ("code", "name", "owner_unit_id")}
    try:
        copied = await run_db(fm.copy_form, access, form_id, values["code"], values["name"],
                              _int(values["owner_unit_id"]))
    except ValidationError as exc:
        return await _detail(request, form_id, status_code=422, copy_values=values, copy_errors=exc.errors)
    return see_other(request, request.url_for("form_detail", id=copied.id).path + "?done=copied")


# -- the designer: reading -------------------------------------------------------------------------

def _editable(access, form_id: int):
    form = fm.get_form(access, form_id)
    if not fm.can_edit(access, form):
        raise Forbidden()
    return form, fm.draft_of(form)


def _where_places(where: str) -> list[tuple[str, str]]:
    """The places a problem's ``where`` points at: (section, key) pairs the screen marks."""
    if where.startswith("cell ") or where.startswith("greyed."):
        cell = where.split(" ", 1)[1] if where.startswith("cell ") else where[len("greyed."):]
        row, _, col = cell.partition(".")
        return [("rows", row), ("columns", col)]
    parts = where.split(".")
    if len(parts) >= 2 and parts[0] in ("rows", "columns", "rules", "outline"):
        return [(parts[0], parts[1])]
    return [(parts[0], "")]


def _tab_of(where: str) -> str:
    section = _where_places(where)[0][0]
    return {"greyed": "columns"}.get(section, section if section in TABS else "rows")


def _problem_view(problems, lang: str) -> tuple[list[dict], dict]:
    listed, at = [], {}
    for p in problems:
        item = {"where": p.where, "text": p.message(lang), "tab": _tab_of(p.where)}
        listed.append(item)
        for place in _where_places(p.where):
            at.setdefault(place, []).append(item["text"])
    return listed, at


def _design_context(access, form, draft, tab: str, lang: str, *, attempt=None, open_item=None,
                    error: str | None = None, stamp: str | None = None, index: int = 1) -> dict:
    d = draft.data()
    stored = check_definition(fm.normalise(d), indicators=fm.current_indicators(d), publishing=True)
    stored_list, stored_at = _problem_view(stored, lang)
    attempt_list, attempt_at = _problem_view(attempt or [], lang)
    count = _period_count(form.frequency)
    index = max(1, min(count, index))
    context = {
        "form": form, "draft": draft, "d": d, "tab": tab, "tabs": TABS, "stamp": stamp or fm.stamp(draft),
        "problems": stored_list, "problems_at": stored_at, "attempt": attempt_list, "attempt_at": attempt_at,
        "open": open_item, "error": error, "period_count": count, "index": index,
        "row_keys": [r["key"] for r in d["rows"]], "column_keys": [c["key"] for c in d["columns"]],
        "greyed": set(d["greyed"]), "labels": _labels(), "value_kinds": VALUE_KINDS, "periods": PERIOD_OFFSETS,
        "column_kinds": COLUMN_KINDS, "severities": SEVERITIES,
    }
    if tab == "preview":
        context["sheet"] = _preview(form, draft, index)
    return context


def _preview(form, draft, index: int):
    try:
        return reporting.preview_sheet(draft, form.frequency or "monthly", clock.today().year, index)
    except FormDesignError:
        return None  # a draft the catalogue no longer fits: the problems panel says why


def _tab(value) -> str:
    return value if value in TABS else "rows"


@require(VIEW)
async def form_design(request):
    access = request.state.access
    form_id = request.path_params["id"]
    params = request.query_params
    tab = _tab(params.get("tab"))

    def build():
        form, draft = _editable(access, form_id)
        if draft is None:
            return None
        open_item = None
        edit = (params.get("edit") or "")[:40]
        section = {"rows": "rows", "columns": "columns", "rules": "rules", "outline": "outline"}.get(tab)
        if edit and section:
            item = next((x for x in draft.data()[section] if x["key"] == edit), None)
            if item is not None:
                open_item = {"section": section, "original": edit, "data": item, "kind": item.get("kind")}
        return _design_context(access, form, draft, tab, getattr(request.state, "lang", "vi"), open_item=open_item,
                               index=_int(params.get("index")) or 1)

    context = await run_db(build)
    if context is None:
        return see_other(request, request.url_for("form_detail", id=form_id).path)
    context["done"] = DONE.get(params.get("done") or "")
    return await render(request, "core/forms/design.html", context, partial="core/forms/_designer.html")


@require(VIEW)
async def form_design_preview(request):
    """The preview grid of one period (htmx, GET: nothing written)."""
    access = request.state.access
    form_id = request.path_params["id"]
    index = _int(request.query_params.get("index")) or 1

    def build():
        form, draft = _editable(access, form_id)
        if draft is None:
            raise NotFound()
        count = _period_count(form.frequency)
        index_ = max(1, min(count, index))
        return {"form": form, "sheet": _preview(form, draft, index_), "index": index_, "period_count": count}

    context = await run_db(build)
    return await render(request, "core/forms/_preview.html", context)


@require(VIEW)
async def form_design_indicators(request):
    """Catalogue search for the rows tab (htmx, GET), without diacritics."""
    access = request.state.access
    q = (request.query_params.get("q") or "").strip()[:100]

    def build():
        form, draft = _editable(access, request.path_params["id"])
        found = ind.search(q) if q else []
        used = {r["indicator"] for r in draft.data()["rows"]} if draft else set()
        return {"form": form, "found": found[:SEARCH_LIMIT], "total": len(found), "q": q, "used": used,
                "limit": SEARCH_LIMIT}

    context = await run_db(build)
    return await render(request, "core/forms/_indicator_results.html", context)


def check_expression(text: str, want: str, names: set[str], cells_ok) -> dict:
    """What the designer shows under a formula being typed: ok, or the error with its position."""
    text = (text or "").strip()
    if not text:
        return {"state": "empty"}
    try:
        node = expressions.parse(text)
        kind = expressions.infer(node)
    except expressions.ExpressionError as exc:
        return {"state": "error", "error": exc, "position": exc.position, "text": text}
    if kind != want:
        return {"state": "error", "error": BaocaoError("forms.error.rule_not_bool" if want == "bool"
                                                      else "forms.error.formula_not_number"), "position": None,
                "text": text}
    unknown = []
    for ref in expressions.references(node):
        if ref.column:
            if not cells_ok(ref.name, ref.column):
                unknown.append(f"{ref.name}.{ref.column}")
        elif ref.name not in names:
            unknown.append(ref.name)
    if unknown:
        return {"state": "unknown", "unknown": unknown, "text": text}
    return {"state": "ok", "text": text}


@require(VIEW)
async def form_design_check(request):
    """Check a formula or rule as it is typed (htmx keyup, GET: nothing written)."""
    access = request.state.access
    params = request.query_params
    want = "bool" if params.get("want") == "bool" else "number"
    text = str(params.get("expression") or params.get("formula") or "")[:expressions.MAX_LENGTH + 10]

    def build():
        _, draft = _editable(access, request.path_params["id"])
        d = draft.data() if draft else {"rows": [], "columns": []}
        rows = {r["key"] for r in d["rows"]}
        cols = {c["key"] for c in d["columns"]}
        # A formula being added may name the row or column it is typed for.
        extra = str(params.get("key") or "").strip()
        names = rows | cols | ({extra} if extra else set())
        return {"check": check_expression(text, want, names, lambda r, c: r in rows and c in cols)}

    context = await run_db(build)
    return await render(request, "core/forms/_check.html", context)


# -- the designer: changing ------------------------------------------------------------------------

def _all_keys(d: dict) -> set[str]:
    return {r["key"] for r in d["rows"]} | {c["key"] for c in d["columns"]}


def _unique_key(taken: set[str], base: str) -> str:
    base = re.sub(r"[^A-Za-z0-9_]", "_", fold(base or ""))[:26].strip("_") or "k"
    if not re.match(r"[A-Za-z_]", base):
        base = "k" + base
    if base.lower() in expressions.RESERVED:
        base = base + "_1"
    key, n = base, 2
    while key in taken:
        key, n = f"{base}_{n}", n + 1
    taken.add(key)
    return key


def _next_key(taken: set[str], prefix: str) -> str:
    n = 1
    while f"{prefix}{n}" in taken:
        n += 1
    taken.add(f"{prefix}{n}")
    return f"{prefix}{n}"


def _rename_in(text: str, mapping: dict[str, str]) -> str:
    if not text:
        return text
    try:
        node = expressions.parse(text)
    except expressions.ExpressionError:
        return text
    if not any(ref.name in mapping or ref.column in mapping for ref in expressions.references(node)):
        return text
    return expressions.unparse(expressions.rename(node, mapping))


def _rename_everywhere(d: dict, old: str, new: str) -> None:
    """A row or column key renamed: every formula, rule and cell reference follows."""
    mapping = {old: new}
    for r in d["rows"]:
        r["formula"] = _rename_in(r["formula"], mapping)
    for c in d["columns"]:
        c["formula"] = _rename_in(c["formula"], mapping)
        if c["accumulate"] == old:
            c["accumulate"] = new
    for rule in d["rules"]:
        rule["expression"] = _rename_in(rule["expression"], mapping)
        rule["rows"] = [new if k == old else k for k in rule["rows"]]
        rule["columns"] = [new if k == old else k for k in rule["columns"]]
    greyed = []
    for cell in d["greyed"]:
        r, _, c = cell.partition(".")
        greyed.append(f"{new if r == old else r}.{new if c == old else c}")
    d["greyed"] = greyed


def _uses(text: str, key: str) -> bool:
    try:
        node = expressions.parse(text)
    except expressions.ExpressionError:
        return False
    return any(ref.name == key or ref.column == key for ref in expressions.references(node))


def _users_of(d: dict, key: str) -> list[str]:
    """The places whose formula or rule names ``key``."""
    places = []
    for r in d["rows"]:
        if r["key"] != key and r["formula"] and _uses(r["formula"], key):
            places.append(r["label"] or r["key"])
    for c in d["columns"]:
        if c["key"] != key and ((c["formula"] and _uses(c["formula"], key)) or c["accumulate"] == key):
            places.append(c["label"] or c["key"])
    for rule in d["rules"]:
        if _uses(rule["expression"], key) or key in rule["rows"] or key in rule["columns"]:
            places.append(rule["key"])
    return places


def _find(items: list[dict], key: str) -> int:
    for i, item in enumerate(items):
        if item["key"] == key:
            return i
    raise Refused("form_designer.designer.error.gone", key=key)


def _move(items: list[dict], key: str, direction: str) -> None:
    i = _find(items, key)
    j = i - 1 if direction == "up" else i + 1
    if 0 <= j < len(items):
        items[i], items[j] = items[j], items[i]


def _delete_checked(d: dict, section: str, key: str) -> None:
    i = _find(d[section], key)
    places = _users_of(d, key)
    if places:
        raise Refused("form_designer.designer.error.in_use", key=key, places=", ".join(places[:6]))
    del d[section][i]
    d["greyed"] = [g for g in d["greyed"] if key not in g.split(".")]


def _field(data, name: str, limit: int = 2000) -> str:
    return str(data.get(name, "")).strip()[:limit]


def _row_values(data) -> dict:
    return {"key": _field(data, "key", 40), "kind": _field(data, "kind", 20) or "indicator",
            "number": _field(data, "number", 20), "label": _field(data, "label", 500),
            "indicator": _field(data, "indicator", 10), "option": _field(data, "option", 100),
            "unit": _field(data, "unit", 40), "formula": _field(data, "formula"),
            "decimals": _field(data, "decimals", 2), "indent": _field(data, "indent", 1)}


def _column_values(data) -> dict:
    return {"key": _field(data, "key", 40), "kind": _field(data, "kind", 20) or "input",
            "label": _field(data, "label", 255), "value_kind": _field(data, "value_kind", 20) or "actual",
            "period": _field(data, "period", 30) or "current", "formula": _field(data, "formula"),
            "accumulate": _field(data, "accumulate", 40),
            "periods": [n for p in data.getlist("periods") if (n := parse_int(str(p), minimum=0)) is not None][:12],
            "decimals": _field(data, "decimals", 2), "percent": bool(data.get("percent"))}


def _rule_values(data) -> dict:
    return {"key": _field(data, "key", 40), "severity": _field(data, "severity", 20) or "error",
            "expression": _field(data, "expression"),
            "rows": [str(x)[:40] for x in data.getlist("rows")][:400],
            "columns": [str(x)[:40] for x in data.getlist("columns")][:40],
            "message": {"vi": _field(data, "message_vi", 500), "en": _field(data, "message_en", 500)}}


def _section_values(data) -> dict:
    return {"key": _field(data, "key", 40), "title": _field(data, "title", 255),
            "guidance": _field(data, "guidance", 4000), "required": bool(data.get("required"))}


def _save_item(d: dict, section: str, prefix: str, values: dict, original: str, *, shared_keys: bool) -> None:
    """Add (``original`` empty) or replace one item; a renamed key is renamed everywhere."""
    items = d[section]
    taken = _all_keys(d) if shared_keys else {x["key"] for x in items}
    if original:
        i = _find(items, original)
        if not values["key"]:
            values["key"] = original
        if values["key"] != original:
            if shared_keys and values["key"] in taken:
                raise Refused("forms.error.key_taken", key=values["key"])
            if shared_keys:
                _rename_everywhere(d, original, values["key"])
        items[i] = values
    else:
        if not values["key"]:
            values["key"] = _next_key(taken, prefix)
        items.append(values)


def _act_add_indicators(d: dict, data) -> None:
    codes = [str(c).strip().upper()[:10] for c in data.getlist("codes") if str(c).strip()][:SEARCH_LIMIT]
    if not codes:
        raise Refused("form_designer.designer.error.none_ticked")
    split = bool(data.get("split"))
    taken = _all_keys(d)
    number = sum(1 for r in d["rows"] if r["kind"] != "heading" and not r["option"])
    for code in codes:
        indicator = ind.current(code)
        if indicator is None:
            raise Refused("forms.error.indicator_unknown", code=code)
        number += 1
        base = {"kind": "indicator", "indicator": code, "unit": (indicator.unit_of_measure or "")[:40],
                "formula": "", "decimals": None}
        d["rows"].append({**base, "key": _unique_key(taken, code.lower()), "number": str(number),
                          "label": indicator.name[:500], "option": "", "indent": 0})
        if split:
            for _category, options in indicator.disaggregation_list:
                for option in options:
                    d["rows"].append({**base, "key": _unique_key(taken, f"{code.lower()}_{option}"), "number": "-",
                                      "label": option[:500], "option": option[:100], "indent": 1})


def _act_add_heading(d: dict, data) -> None:
    values = {**_row_values(data), "kind": "heading"}
    _save_item(d, "rows", "r", values, "", shared_keys=True)


def _act_add_computed(d: dict, data) -> None:
    values = {**_row_values(data), "kind": "computed"}
    _save_item(d, "rows", "r", values, "", shared_keys=True)


def _act_edit_row(d: dict, data) -> None:
    original = _field(data, "original", 40)
    old = d["rows"][_find(d["rows"], original)]
    values = {**_row_values(data), "kind": old["kind"], "indicator": old["indicator"], "option": old["option"]}
    _save_item(d, "rows", "r", values, original, shared_keys=True)


def _act_move_row(d: dict, data) -> None:
    _move(d["rows"], _field(data, "key", 40), _field(data, "direction", 4))


def _act_delete_row(d: dict, data) -> None:
    _delete_checked(d, "rows", _field(data, "key", 40))


def _act_add_preset(d: dict, data) -> None:
    taken = _all_keys(d)
    clash = [c["key"] for c in PRESET_A if c["key"] in taken]
    if clash:
        raise Refused("form_designer.designer.error.preset_clash", keys=", ".join(clash))
    for column in PRESET_A:
        d["columns"].append({"formula": "", "accumulate": "", "periods": [], "decimals": None, "percent": False,
                             "value_kind": "actual", "period": "current", **column})


def _act_add_column(d: dict, data) -> None:
    values = _column_values(data)
    _save_item(d, "columns", "c", values, "", shared_keys=True)


def _act_edit_column(d: dict, data) -> None:
    original = _field(data, "original", 40)
    values = _column_values(data)
    _save_item(d, "columns", "c", values, original, shared_keys=True)


def _act_move_column(d: dict, data) -> None:
    _move(d["columns"], _field(data, "key", 40), _field(data, "direction", 4))


def _act_delete_column(d: dict, data) -> None:
    _delete_checked(d, "columns", _field(data, "key", 40))


def _act_toggle_greyed(d: dict, data) -> None:
    cell = _field(data, "cell", 90)
    if cell in d["greyed"]:
        d["greyed"].remove(cell)
    else:
        d["greyed"].append(cell)


def _act_add_rule(d: dict, data) -> None:
    values = _rule_values(data)
    _save_item(d, "rules", "R", values, "", shared_keys=False)


def _act_edit_rule(d: dict, data) -> None:
    original = _field(data, "original", 40)
    values = _rule_values(data)
    if values["key"] != original and values["key"] in {r["key"] for r in d["rules"]}:
        raise Refused("forms.error.key_taken", key=values["key"])
    _save_item(d, "rules", "R", values, original, shared_keys=False)


def _act_move_rule(d: dict, data) -> None:
    _move(d["rules"], _field(data, "key", 40), _field(data, "direction", 4))


def _act_delete_rule(d: dict, data) -> None:
    del d["rules"][_find(d["rules"], _field(data, "key", 40))]


def _act_add_section(d: dict, data) -> None:
    values = _section_values(data)
    _save_item(d, "outline", "s", values, "", shared_keys=False)


def _act_edit_section(d: dict, data) -> None:
    original = _field(data, "original", 40)
    values = _section_values(data)
    if values["key"] != original and values["key"] in {s["key"] for s in d["outline"]}:
        raise Refused("forms.error.key_taken", key=values["key"])
    _save_item(d, "outline", "s", values, original, shared_keys=False)


def _act_move_section(d: dict, data) -> None:
    _move(d["outline"], _field(data, "key", 40), _field(data, "direction", 4))


def _act_delete_section(d: dict, data) -> None:
    del d["outline"][_find(d["outline"], _field(data, "key", 40))]


def _act_title(d: dict, data) -> None:
    d["title"] = _field(data, "title", 255)


# Every designer action, by the name in its URL: /forms/{id}/design/<name>.
ACTIONS = {name[len("_act_"):]: fn for name, fn in globals().items() if name.startswith("_act_")}
# The actions that post an item's form: (tab, row kind or None), to show that form again if refused.
FORM_ACTIONS = {"add_heading": ("rows", "heading"), "add_computed": ("rows", "computed"), "edit_row": ("rows", None),
                "add_column": ("columns", None), "edit_column": ("columns", None), "add_rule": ("rules", None),
                "edit_rule": ("rules", None), "add_section": ("outline", None), "edit_section": ("outline", None)}
READERS = {"rows": _row_values, "columns": _column_values, "rules": _rule_values, "outline": _section_values}
ACTION_TABS = {"add_indicators": "rows", "move_row": "rows", "delete_row": "rows", "add_preset": "columns",
               "move_column": "columns", "delete_column": "columns", "toggle_greyed": "columns",
               "move_rule": "rules", "delete_rule": "rules", "move_section": "outline", "delete_section": "outline"}


def _open_of(action: str, data, d: dict) -> tuple[str, dict | None]:
    """The tab, and the item form to show again with what was typed, when an action is refused."""
    if action not in FORM_ACTIONS:
        return ACTION_TABS.get(action) or _tab(_field(data, "tab", 10)), None
    section, kind = FORM_ACTIONS[action]
    original = _field(data, "original", 40)
    if section == "rows" and kind is None:
        kind = next((r["kind"] for r in d["rows"] if r["key"] == original), "indicator")
    return section, {"section": section, "original": original, "data": READERS[section](data), "kind": kind}


@require(VIEW)
async def form_design_action(request):
    access = request.state.access
    form_id = request.path_params["id"]
    action = request.path_params["action"]
    if action not in ACTIONS:
        raise HTTPException(404)
    data = await request.form()
    stamp = _field(data, "stamp", 64)
    lang = getattr(request.state, "lang", "vi")
    index = _int(data.get("index")) or 1

    def run():
        form, draft = _editable(access, form_id)
        if draft is None:
            return None, 0  # published meanwhile: the form's page offers a new version
        d = copy.deepcopy(draft.data())
        tab, open_item = _open_of(action, data, d)
        try:
            ACTIONS[action](d, data)
        except Refused as exc:
            return _design_context(access, form, draft, tab, lang, open_item=open_item, error=exc.message(lang),
                                   index=index), 422
        if open_item is not None:
            # The item as the action left it (a generated key, say): what the problems point at.
            items = d[open_item["section"]]
            typed = open_item["data"]["key"] or open_item["original"]
            open_item["data"] = items[-1] if action.startswith("add_") else \
                next((x for x in items if x["key"] == typed), open_item["data"])
        try:
            saved = fm.save_draft(access, form.id, d, expected=stamp)
        except FormDesignError as exc:
            return _design_context(access, form, draft, tab, lang, attempt=exc.problems, open_item=open_item,
                                   error=exc.message(lang), index=index), 422
        except BaocaoError as exc:
            if isinstance(exc, (NotFound, Forbidden)):
                raise
            stale = exc.key == "forms.error.stale_draft"
            context = _design_context(access, form, fm.draft_of(form) or draft, tab, lang, open_item=open_item,
                                      error=exc.message(lang), stamp=stamp if stale else None, index=index)
            context["stale"] = stale
            return context, 422
        return _design_context(access, form, saved, tab, lang, index=index), 200

    context, status = await run_db(run)
    if context is None:
        return see_other(request, request.url_for("form_detail", id=form_id).path)
    if not request.state.htmx:
        if status == 200:
            return RedirectResponse(request.url_for("form_design", id=form_id).path + f"?tab={context['tab']}",
                                    status_code=303)
        return await render(request, "core/forms/design.html", context, status_code=status)
    return await render(request, "core/forms/_designer.html", context, status_code=status)


ROUTES = [
    Route("/forms", form_list, methods=["GET"], name="forms"),
    Route("/forms/new", form_new, methods=["GET"], name="form_new"),
    Route("/forms/new", form_create, methods=["POST"], name="form_create"),
    Route("/forms/{id:int}", form_detail, methods=["GET"], name="form_detail"),
    Route("/forms/{id:int}/publish", form_publish, methods=["POST"], name="form_publish"),
    Route("/forms/{id:int}/new-version", form_new_version, methods=["POST"], name="form_new_version"),
    Route("/forms/{id:int}/copy", form_copy, methods=["POST"], name="form_copy"),
    Route("/forms/{id:int}/design", form_design, methods=["GET"], name="form_design"),
    Route("/forms/{id:int}/design/preview", form_design_preview, methods=["GET"], name="form_design_preview"),
    Route("/forms/{id:int}/design/indicators", form_design_indicators, methods=["GET"],
          name="form_design_indicators"),
    Route("/forms/{id:int}/design/check", form_design_check, methods=["GET"], name="form_design_check"),
    Route("/forms/{id:int}/design/{action}", form_design_action, methods=["POST"], name="form_design_action"),
]
