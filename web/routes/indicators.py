"""The indicator catalogue screens (issue 4): browse, search, one indicator and its
versions, edit, create, and the importer of the official QĐ 05/2023 table.

The catalogue is the same for every unit: ``core.indicator.view`` lets a user read
it, ``core.indicator.edit`` change it (an edit makes version n+1; old versions stay
readable at ``/indicators/<code>/v/<n>``). The rules live in ``core.catalogue.indicators``.

Import. The upload is parsed and shown (nothing written). Between that preview and
"Apply" the file is kept in the page itself, not on the server: the preview form
carries the bytes (zlib, base64) and an HMAC made with the application secret over
the user id, the time, the file name and the bytes. Apply accepts the file only from
the same user, within ``TOKEN_HOURS``, unchanged; it parses it again and writes it in
one transaction. So no staging file or table to clean up, any worker can answer, and
a forged or edited payload is refused. If the catalogue changed between preview and
apply, the new preview is shown again instead of applying blindly.
"""

from __future__ import annotations

import hashlib
import io
import time
import zipfile
from urllib.parse import urlencode

from starlette.exceptions import HTTPException
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from core.catalogue import indicators as ind
from core import background
from core.db import run_db
from core.errors import ValidationError
from web import signed_upload
from web.background import follow
from web.guards import require
from web.params import parse_int
from web.templating import render

VIEW, EDIT = "core.indicator.view", "core.indicator.edit"
PAGE_SIZE = 50
UPLOAD_MAX = 2 * 1024 * 1024  # bytes of an uploaded table
PAYLOAD_MAX = 900 * 1024  # the preview form's hidden copy (a form field may not pass 1 MB)
TOKEN_HOURS = 2
TEXT_MAX = 1000
DONE = {"saved": "indicators.done.saved", "unchanged": "indicators.done.unchanged",
        "created": "indicators.done.created"}
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _can_edit(request) -> bool:
    return request.state.access.allowed(EDIT)


def _code(request) -> str:
    code = str(request.path_params.get("code", "")).upper()
    if not ind.is_indicator_code(code):  # a national row or a plugin's or sector's own (KX0301, NN0101)
        raise HTTPException(404)
    return code


def _page(value) -> int:
    number = parse_int(str(value or "1"))
    return min(number, 100000) if number is not None else 1


# -- browse and search -------------------------------------------------------------------------------

def _browse_context(q: str, level: str | None, group: str | None, page: int) -> dict:
    result = ind.browse(q, level=level, group=group, offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE)
    page = result.offset // PAGE_SIZE + 1
    pages = max(1, -(-result.total // PAGE_SIZE))
    return {"result": result, "q": q, "level": level or "", "group": group or "", "page": page, "pages": pages,
            "groups": ind.groups(level), "levels": ind.LEVELS,
            "group_totals": {g.id: n for g, n in result.group_counts}}


@require(VIEW)
async def indicator_list(request):
    params = request.query_params
    q = (params.get("q") or "").strip()[:100]
    level = params.get("level") if params.get("level") in ind.LEVELS else None
    group = (params.get("group") or "").strip().upper()[:10] or None
    context = await run_db(_browse_context, q, level, group, _page(params.get("page")))

    def link(**changes):
        query = {"q": q, "level": level or "", "group": group or "", "page": ""}
        query.update(changes)
        query = {k: v for k, v in query.items() if v not in ("", None, 1)}
        return str(request.url_for("indicators").path) + ("?" + urlencode(query) if query else "")

    context.update(can_edit=_can_edit(request), link=link)
    return await render(request, "core/indicators/list.html", context, partial="core/indicators/_results.html")


# -- one indicator ------------------------------------------------------------------------------------

def _detail_context(code: str, version: int | None) -> dict | None:
    latest = ind.current(code)
    if latest is None:
        return None
    shown = latest if version is None else ind.get_version(code, version)
    if shown is None:
        return None
    return {"item": shown, "latest": latest, "group_obj": shown.group, "history": ind.version_history(code),
            "value_kinds": ind.VALUE_KINDS, "is_old": shown.id != latest.id,
            "disagg_text": lambda value: ind.disaggregation_lines(value).replace("\n", " · ")}


@require(VIEW)
async def indicator_detail(request):
    code = _code(request)
    context = await run_db(_detail_context, code, None)
    if context is None:
        raise HTTPException(404)
    context.update(can_edit=_can_edit(request), done=DONE.get(request.query_params.get("done") or ""))
    return await render(request, "core/indicators/detail.html", context)


@require(VIEW)
async def indicator_version(request):
    code = _code(request)
    context = await run_db(_detail_context, code, request.path_params["version"])
    if context is None:
        raise HTTPException(404)
    context.update(can_edit=_can_edit(request), done=None)
    return await render(request, "core/indicators/detail.html", context)


# -- edit and create ----------------------------------------------------------------------------------

FORM_FIELDS = ("name", "unit_of_measure", "value_type", "aggregation", "disaggregation", "periodicity", "agency",
               "higher_code", "source_act", "valid_from")


def _form_from(item) -> dict:
    form = {name: getattr(item, name) or "" for name in FORM_FIELDS if name not in ("disaggregation", "valid_from")}
    form.update(disaggregation=ind.disaggregation_lines(item.disaggregation), levels=item.level_list,
                valid_from="", version=item.version, code=item.code)
    return form


async def _read_form(request) -> dict:
    data = await request.form()
    form = {name: str(data.get(name, ""))[:TEXT_MAX * 4 if name == "disaggregation" else TEXT_MAX]
            for name in FORM_FIELDS}
    form["levels"] = [str(v) for v in data.getlist("levels")][:3]
    form["code"] = str(data.get("code", "")).strip().upper()[:10]
    form["version"] = parse_int(str(data.get("version", "")).strip(), minimum=0)
    return form


def _form_choices() -> dict:
    return {"value_types": ind.VALUE_TYPES, "aggregations": ind.AGGREGATIONS, "levels": ind.LEVELS,
            "all_groups": ind.groups()}


def _edit_context(code: str) -> dict | None:
    latest = ind.current(code)
    if latest is None:
        return None
    return {"item": latest, "form": _form_from(latest), "errors": {}, "stale": None, **_form_choices()}


@require(EDIT)
async def indicator_edit(request):
    context = await run_db(_edit_context, _code(request))
    if context is None:
        raise HTTPException(404)
    return await render(request, "core/indicators/edit.html", context)


def _values(form: dict) -> dict:
    values = {name: form[name] for name in FORM_FIELDS}
    values["levels"] = ",".join(form["levels"])
    return values


@require(EDIT)
async def indicator_save(request):
    code = _code(request)
    form = await _read_form(request)
    form["code"] = code

    def save():
        if form["version"] is None:
            raise ValidationError({"version": "indicators.error.stale"})
        return ind.edit_indicator(code, _values(form), expected_version=form["version"], actor=request.state.actor)

    try:
        saved, changed = await run_db(save)
    except ind.StaleVersion as exc:
        context = await run_db(_edit_context, code)
        context.update(form=form, stale=exc.current)
        return await render(request, "core/indicators/edit.html", context, status_code=409)
    except ValidationError as exc:
        context = await run_db(_edit_context, code)
        if context is None:
            raise HTTPException(404) from None
        context.update(form=form, errors=exc.errors)
        return await render(request, "core/indicators/edit.html", context, status_code=422)
    done = "saved" if changed else "unchanged"
    return RedirectResponse(str(request.url_for("indicator_detail", code=code).path) + f"?done={done}", 303)


def _new_context(form: dict, errors: dict) -> dict:
    return {"form": form, "errors": errors, **_form_choices()}


@require(EDIT)
async def indicator_new(request):
    group = (request.query_params.get("group") or "").upper()[:3]
    form = {name: "" for name in FORM_FIELDS}
    form.update(code=group if ind.CODE_RE.match(group) else "", levels=[], value_type="number", aggregation="none",
                version=None)
    context = await run_db(_new_context, form, {})
    return await render(request, "core/indicators/new.html", context)


@require(EDIT)
async def indicator_create(request):
    form = await _read_form(request)
    values = {**_values(form), "code": form["code"]}
    if not form["levels"]:
        values.pop("levels")  # default: the level of the code's letter
    try:
        created = await run_db(ind.create_indicator, values, actor=request.state.actor)
    except ValidationError as exc:
        context = await run_db(_new_context, form, exc.errors)
        return await render(request, "core/indicators/new.html", context, status_code=422)
    return RedirectResponse(str(request.url_for("indicator_detail", code=created.code).path) + "?done=created", 303)


# -- import ---------------------------------------------------------------------------------------------

PURPOSE = "indicators.import"


def _plan_digest(plan) -> str:
    return hashlib.sha256(repr(plan.changes).encode()).hexdigest()[:16]


def _parse(content: bytes, filename: str) -> dict:
    """The preview: the plan, its lines and the errors with their column names."""
    try:
        plan = ind.parse_table(content, filename)
    except ValidationError as exc:
        return {"file_error": next(iter(exc.errors.values())), "file_error_params": exc.params}
    except UnicodeDecodeError:
        return {"file_error": "indicators.import.encoding", "file_error_params": {}}
    except Exception:  # noqa: BLE001 — a damaged workbook: openpyxl raises many kinds
        return {"file_error": "indicators.import.unreadable", "file_error_params": {}}
    return {"plan": plan, "lines": ind.describe_plan(plan), "counts": plan.counts(), "digest": _plan_digest(plan)}


def _file_error(key: str, **params) -> dict:
    return {"file_error": key, "file_error_params": params}


async def _import_page(request, context: dict, status_code: int = 200):
    context.setdefault("file_error", None)
    context.setdefault("file_error_params", {})
    return await render(request, "core/indicators/import.html",
                        {"upload_max_mb": UPLOAD_MAX // (1024 * 1024), **context},
                        status_code=status_code)


@require(EDIT)
async def indicator_import(request):
    return await _import_page(request, {})


def _preview_context(secret: str, user_id: int, content: bytes, filename: str) -> dict:
    context = {"filename": filename, "upload_max_mb": UPLOAD_MAX // (1024 * 1024)}
    context.update(_parse(content, filename))
    if context.get("plan") is not None and context["plan"].ok:
        payload = signed_upload.encode(content, compress=True)
        if len(payload) > PAYLOAD_MAX:
            return {**context, "plan": None, **_file_error("indicators.import.too_big", size=UPLOAD_MAX // 1048576)}
        issued = int(time.time())
        context["token"] = {"payload": payload, "issued": issued,
                            "sig": signed_upload.signature(secret, PURPOSE, user_id, filename, payload, issued)}
    return context


@require(EDIT)
async def indicator_import_preview(request):
    data = await request.form(max_files=1, max_fields=10)
    upload = data.get("file")
    if upload is None or isinstance(upload, str) or not upload.filename:
        return await _import_page(request, _file_error("indicators.import.no_file"), 422)
    filename = upload.filename.replace("\\", "/").rsplit("/", 1)[-1][:200]
    content = await upload.read(UPLOAD_MAX + 1)
    await data.close()
    lower = filename.lower()
    if not lower.endswith((".csv", ".xlsx")):
        return await _import_page(request, _file_error("indicators.import.file_type", filename=filename), 422)
    if len(content) > UPLOAD_MAX:
        return await _import_page(request, _file_error("indicators.import.too_big", size=UPLOAD_MAX // 1048576), 413)
    if not content:
        return await _import_page(request, _file_error("indicators.import.empty"), 422)
    if lower.endswith(".xlsx") and not zipfile.is_zipfile(io.BytesIO(content)):
        return await _import_page(request, _file_error("indicators.import.unreadable"), 422)
    context = await run_db(_preview_context, request.app.state.settings.secret_key, request.state.actor.id,
                           content, filename)
    status = 200 if context.get("plan") is not None and context["plan"].ok else 422
    return await _import_page(request, context, status)


@require(EDIT)
async def indicator_import_apply(request):
    data = await request.form(max_files=0, max_fields=10, max_part_size=PAYLOAD_MAX + 1024)
    filename = str(data.get("filename", ""))[:200]
    payload = str(data.get("payload", ""))
    digest = str(data.get("digest", ""))
    issued = parse_int(str(data.get("issued", "")), minimum=0) or 0
    fresh = 0 <= time.time() - issued <= TOKEN_HOURS * 3600
    content = signed_upload.open_payload(request.app.state.settings.secret_key, PURPOSE, request.state.actor.id,
                                         filename, payload, str(data.get("sig", "")), issued=issued,
                                         compressed=True, max_bytes=UPLOAD_MAX) if fresh else None
    if content is None:
        return await _import_page(request, _file_error("indicators.import.token_invalid", hours=TOKEN_HOURS), 400)
    actor, secret = request.state.actor, request.app.state.settings.secret_key

    def apply():
        context = _preview_context(secret, actor.id, content, filename)
        plan = context.get("plan")
        if plan is None or not plan.ok:
            return None, context
        if context["digest"] != digest:
            return None, {**context, "moved": True}  # the catalogue changed since the preview
        counts = ind.apply_plan(plan, actor=actor)
        touched = [line for line in context["lines"] if line.change != "unchanged"]
        return counts, {"touched": touched}

    def work(progress) -> background.Outcome:
        progress.phase("background.phase.saving")
        counts, context = apply()
        if counts is None:  # nothing saved: the preview's errors, or the catalogue moved since
            return background.Outcome(url="/indicators/import", summary="background.summary.import_refused",
                                      value=(None, context))
        return background.Outcome(url="/indicators", summary="background.summary.indicators_import",
                                  summary_params=counts, value=(counts, context))

    async def answer(outcome):
        counts, context = outcome.value
        if counts is None:
            return await _import_page(request, context, 409 if context.get("moved") else 422)
        return await render(request, "core/indicators/imported.html", {"counts": counts, "filename": filename,
                                                                       **context})

    # A ministry's full catalogue takes a while: past a second the import is followed on its own
    # page (web.background); it is still one transaction.
    return await follow(request, kind="indicators.import", title="background.title.indicators_import", work=work,
                        answer=answer, back_url="/indicators/import")


@require(EDIT)
async def indicator_import_template(request):
    content = await run_db(ind.template_xlsx)
    return Response(content, media_type=XLSX,
                    headers={"Content-Disposition": 'attachment; filename="mau-chi-tieu-qd05-2023.xlsx"'})


@require(EDIT)
async def indicator_import_sample(request):
    content = await run_db(ind.sample_csv)
    return Response(content, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="vi-du-chi-tieu-cap-huyen.csv"'})


ROUTES = [
    Route("/indicators", indicator_list, methods=["GET"], name="indicators"),
    Route("/indicators/new", indicator_new, methods=["GET"], name="indicator_new"),
    Route("/indicators/new", indicator_create, methods=["POST"], name="indicator_create"),
    Route("/indicators/import", indicator_import, methods=["GET"], name="indicator_import"),
    Route("/indicators/import", indicator_import_preview, methods=["POST"], name="indicator_import_preview"),
    Route("/indicators/import/apply", indicator_import_apply, methods=["POST"], name="indicator_import_apply"),
    Route("/indicators/import/template.xlsx", indicator_import_template, methods=["GET"],
          name="indicator_import_template"),
    Route("/indicators/import/sample.csv", indicator_import_sample, methods=["GET"], name="indicator_import_sample"),
    Route("/indicators/{code}", indicator_detail, methods=["GET"], name="indicator_detail"),
    Route("/indicators/{code}/v/{version:int}", indicator_version, methods=["GET"], name="indicator_version"),
    Route("/indicators/{code}/edit", indicator_edit, methods=["GET"], name="indicator_edit"),
    Route("/indicators/{code}/edit", indicator_save, methods=["POST"], name="indicator_save"),
]
