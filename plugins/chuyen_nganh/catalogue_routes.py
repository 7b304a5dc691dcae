"""The sector's catalogue screens at /p/chuyen_nganh/catalogue/ (catalogue.py holds the rules): the
sectors a person may see, one sector's groups and indicators with a search, the group and indicator
forms, the import of the 7-column table (dry run first, then all or nothing) and its export.

Every page names a delegation (``/catalogue/<id>``): a person who may not know of it gets 404; one who
may, while the delegation does not stand (or who may only read, asking to change), gets a 403 page
saying why, recorded as a denied access. Plain forms with the CSRF token: everything works without
JavaScript. A refused form comes back with what was typed and each message at its field (422); an
edit made on a version someone else replaced meanwhile comes back as a 409.

The import keeps the uploaded file in the preview page (zlib, base64), not on the server. "Apply"
sends it back with a digest of what the preview showed; the file is checked again in full, with the
person's rights of that moment, and written only when it would do exactly what was shown: a file
edited in the page is only another file, refused or shown again as a new preview.
"""

from __future__ import annotations

import base64
import binascii
import functools
import io
import zipfile
import zlib
from urllib.parse import quote, urlencode

from core.api import INDICATOR_AGGREGATIONS, INDICATOR_LEVELS, INDICATOR_VALUE_TYPES, ValidationError
from core.api import audit_record, indicator_disaggregation_lines, indicator_groups_of, run_db
from web.api import RedirectResponse, Response, Route, render, require

from . import catalogue as cat

UPLOAD_MAX = 1024 * 1024  # bytes of an uploaded table: a sector's catalogue is a few hundred rows
PAYLOAD_MAX = 900 * 1024  # the preview form's hidden copy (a form field may not pass 1 MB)
TEXT_MAX = 1000
SEARCH_MAX = 100
TYPES = {"xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
         "csv": "text/csv; charset=utf-8"}
DONE = {"group_new": "chuyen_nganh.catalogue.done.group_new", "group_saved": "chuyen_nganh.catalogue.done.group_saved",
        "created": "chuyen_nganh.catalogue.done.created", "saved": "chuyen_nganh.catalogue.done.saved",
        "unchanged": "chuyen_nganh.catalogue.done.unchanged", "imported": "chuyen_nganh.catalogue.done.imported",
        "prefix": "chuyen_nganh.catalogue.done.prefix"}
STANDING = {"in_force": ("badge-ok", "chuyen_nganh.catalogue.standing.in_force"),
            "not_yet": ("badge-info", "chuyen_nganh.catalogue.standing.not_yet"),
            "suspended": ("badge-warn", "chuyen_nganh.catalogue.standing.suspended"),
            "ended": ("badge-off", "chuyen_nganh.catalogue.standing.ended")}


def refusals(view):
    """A ``Refusal`` leaving ``view`` answers the 403 page with its reason, recorded as a denial."""

    @functools.wraps(view)
    async def wrapped(request):
        try:
            return await view(request)
        except cat.Refusal as exc:
            await run_db(audit_record, "access.denied", actor=request.state.access.actor, result="denied",
                         object_type="route", object_id=request.url.path[:64],
                         details={"method": request.method, "path": request.url.path[:300], "reason": exc.key})
            return await render(request, "chuyen_nganh/catalogue_refused.html", {"refusal": exc}, status_code=403)

    return wrapped


def _sector_url(request, delegation_id, anchor: str = "", **query) -> str:
    url = request.url_for("chuyen_nganh:catalogue_sector", id=delegation_id).path
    query = {k: v for k, v in query.items() if v not in ("", None)}
    return url + ("?" + urlencode(query) if query else "") + (f"#{anchor}" if anchor else "")


def _done(request) -> str | None:
    return DONE.get(request.query_params.get("done") or "")


def _count(value) -> int:
    text = str(value or "")
    return int(text) if text.isascii() and text.isdigit() and len(text) < 9 else 0


# -- the sectors, and one sector's catalogue ---------------------------------------------------------

@require()
async def index(request):
    rows = await run_db(cat.delegations, request.state.access)
    return await render(request, "chuyen_nganh/catalogue_index.html", {"rows": rows, "standing": STANDING})


def _sector_context(access, delegation_id, q: str) -> dict:
    d = cat.open_delegation(access, delegation_id)
    space = cat.namespace_of(d)
    groups = cat.listing(space.prefix, q)
    return {"d": d, "department": cat.department_of(d), "space": space, "groups": groups, "q": q,
            "can_edit": cat.can_edit(access, d), "total": sum(len(g["items"]) for g in groups),
            "linked": cat.linked(i.higher_code for g in groups for i in g["items"])}


async def _sector_page(request, delegation_id, errors=None, field_params=None, typed=None, status_code=200):
    q = (request.query_params.get("q") or "").strip()[:SEARCH_MAX]
    context = await run_db(_sector_context, request.state.access, delegation_id, q)
    context.update(errors=errors or {}, field_params=field_params or {}, typed=typed or {}, done=_done(request),
                   counts={k: _count(request.query_params.get(k)) for k in ("new", "changed", "unchanged")})
    return await render(request, "chuyen_nganh/catalogue.html", context, status_code=status_code)


@require()
@refusals
async def sector(request):
    return await _sector_page(request, request.path_params["id"])


@require()
@refusals
async def choose_prefix(request):
    delegation_id = request.path_params["id"]
    data = await request.form(max_files=0, max_fields=5)
    prefix = str(data.get("prefix") or "")[:10]
    try:
        await run_db(cat.choose_prefix, request.state.access, delegation_id, prefix)
    except cat.Refused as exc:
        return await _sector_page(request, delegation_id, exc.errors, exc.field_params, {"prefix": prefix}, 422)
    return RedirectResponse(_sector_url(request, delegation_id, done="prefix"), status_code=303)


# -- groups -----------------------------------------------------------------------------------------

def _form_context(access, delegation_id, edit: bool = True) -> dict:
    d = cat.open_delegation(access, delegation_id, edit=edit)
    space = cat.namespace_of(d)
    return {"d": d, "department": cat.department_of(d), "space": space,
            "groups": indicator_groups_of(space.prefix) if space.prefix else [], "levels": INDICATOR_LEVELS,
            "value_types": INDICATOR_VALUE_TYPES, "aggregations": INDICATOR_AGGREGATIONS}


async def _form_page(request, delegation_id, template: str, form: dict, row=None, errors=None, field_params=None,
                     status_code=200):
    """A group's or an indicator's form; ``row`` the one being changed (None: a new one)."""
    context = await run_db(_form_context, request.state.access, delegation_id)
    context.update(form=form, row=row, errors=errors or {}, field_params=field_params or {})
    return await render(request, f"chuyen_nganh/{template}", context, status_code=status_code)


def _group_page(request, delegation_id, form: dict, group=None, errors=None, field_params=None, status_code=200):
    return _form_page(request, delegation_id, "catalogue_group.html", form, group, errors, field_params, status_code)


@require()
@refusals
async def group_new(request):
    delegation_id = request.path_params["id"]
    if request.method == "GET":
        context = await run_db(_form_context, request.state.access, delegation_id)
        form = {"code": context["space"].letters or "", "name": "", "level": "commune"}
        return await _group_page(request, delegation_id, form)
    data = await request.form(max_files=0, max_fields=10)
    form = {"code": str(data.get("code") or "")[:20], "name": str(data.get("name") or "")[:TEXT_MAX],
            "level": str(data.get("level") or "")[:20]}
    try:
        group = await run_db(cat.create_group, request.state.access, delegation_id, form["code"], form["name"],
                             form["level"])
    except cat.Refused as exc:
        return await _group_page(request, delegation_id, form, errors=exc.errors, field_params=exc.field_params,
                                 status_code=422)
    return RedirectResponse(_sector_url(request, delegation_id, f"group-{group.code}", done="group_new"),
                            status_code=303)


def _row_of(access, delegation_id, code, find):
    """The sector's group or indicator ``code`` (``find``: ``cat.sector_group`` or ``cat.sector_indicator``)
    for someone who may change it."""
    d = cat.open_delegation(access, delegation_id, edit=True)
    return find(cat.namespace(d.sector), code)


@require()
@refusals
async def group_edit(request):
    delegation_id, code = request.path_params["id"], request.path_params["code"]
    group = await run_db(_row_of, request.state.access, delegation_id, code, cat.sector_group)
    if request.method == "GET":
        return await _group_page(request, delegation_id, {"code": group.code, "name": group.name,
                                                          "level": group.level}, group)
    data = await request.form(max_files=0, max_fields=10)
    form = {"code": group.code, "name": str(data.get("name") or "")[:TEXT_MAX], "level": group.level}
    try:
        await run_db(cat.rename_group, request.state.access, delegation_id, group.code, form["name"])
    except cat.Refused as exc:
        return await _group_page(request, delegation_id, form, group, exc.errors, exc.field_params, 422)
    return RedirectResponse(_sector_url(request, delegation_id, f"group-{group.code}", done="group_saved"),
                            status_code=303)


# -- indicators -------------------------------------------------------------------------------------

def _indicator_form(item) -> dict:
    form = {name: getattr(item, name) or "" for name in cat.INDICATOR_FIELDS if name not in ("group", "disaggregation")}
    form.update(code=item.code, group=item.group.code, levels=item.level_list, version=item.version,
                disaggregation=indicator_disaggregation_lines(item.disaggregation))
    return form


async def _read_indicator_form(request) -> dict:
    data = await request.form(max_files=0, max_fields=30)
    form = {name: str(data.get(name) or "")[:TEXT_MAX * 4 if name == "disaggregation" else TEXT_MAX]
            for name in cat.INDICATOR_FIELDS}
    form["levels"] = [str(v)[:20] for v in data.getlist("levels")][:3]
    form["code"] = str(data.get("code") or "").strip().upper()[:20]
    version = str(data.get("version") or "").strip()
    form["version"] = int(version) if version.isascii() and version.isdigit() and len(version) < 9 else None
    return form


def _indicator_page(request, delegation_id, form: dict, item=None, errors=None, field_params=None, status_code=200):
    return _form_page(request, delegation_id, "catalogue_indicator.html", form, item, errors, field_params,
                      status_code)


@require()
@refusals
async def indicator_new(request):
    delegation_id = request.path_params["id"]
    if request.method == "GET":
        group = (request.query_params.get("group") or "").strip().upper()[:10]
        form = {name: "" for name in cat.INDICATOR_FIELDS}
        form.update(code=group, group=group, levels=[], value_type="number", aggregation="sum", version=None)
        return await _indicator_page(request, delegation_id, form)
    form = await _read_indicator_form(request)
    try:
        item = await run_db(cat.create, request.state.access, delegation_id, form)
    except cat.Refused as exc:
        return await _indicator_page(request, delegation_id, form, None, exc.errors, exc.field_params, 422)
    return RedirectResponse(_sector_url(request, delegation_id, f"indicator-{item.code}", done="created"),
                            status_code=303)


@require()
@refusals
async def indicator_edit(request):
    delegation_id, code = request.path_params["id"], request.path_params["code"]
    item = await run_db(_row_of, request.state.access, delegation_id, code, cat.sector_indicator)
    if request.method == "GET":
        return await _indicator_page(request, delegation_id, _indicator_form(item), item)
    form = await _read_indicator_form(request)
    form["code"] = item.code
    try:
        saved, changed = await run_db(cat.edit, request.state.access, delegation_id, item.code, form, form["version"])
    except cat.Refused as exc:
        latest = await run_db(_row_of, request.state.access, delegation_id, code, cat.sector_indicator)
        status = 409 if "version" in exc.errors else 422
        return await _indicator_page(request, delegation_id, form, latest, exc.errors, exc.field_params, status)
    return RedirectResponse(_sector_url(request, delegation_id, f"indicator-{saved.code}",
                                        done="saved" if changed else "unchanged"), status_code=303)


# -- import and export ------------------------------------------------------------------------------

async def _import_page(request, delegation_id, preview=None, filename="", file_error=None, file_params=None,
                       payload="", moved=False, status_code=200):
    context = await run_db(_form_context, request.state.access, delegation_id)
    context.update(preview=preview, filename=filename, file_error=file_error, file_params=file_params or {},
                   payload=payload, moved=moved, upload_max_mb=UPLOAD_MAX // (1024 * 1024))
    return await render(request, "chuyen_nganh/catalogue_import.html", context, status_code=status_code)


async def _refused_file(request, delegation_id, filename: str, exc):
    """The sector has no letters its rows could take (a ``Refused`` at ``prefix``)."""
    key = exc.errors.get("prefix") or next(iter(exc.errors.values()))
    return await _import_page(request, delegation_id, filename=filename, file_error=key,
                              file_params=exc.field_params.get("prefix"), status_code=422)


def _checked_upload(filename: str, content: bytes) -> tuple[str, dict] | None:
    """Why an uploaded file cannot be read at all (a message key of the core's importer), or None."""
    lower = filename.lower()
    if not lower.endswith((".csv", ".xlsx")):
        return "indicators.import.file_type", {"filename": filename}
    if len(content) > UPLOAD_MAX:
        return "indicators.import.too_big", {"size": UPLOAD_MAX // (1024 * 1024)}
    if not content:
        return "indicators.import.empty", {}
    if lower.endswith(".xlsx") and not zipfile.is_zipfile(io.BytesIO(content)):
        return "indicators.import.unreadable", {}
    return None


async def _preview_or_error(request, delegation_id, content: bytes, filename: str):
    """The dry run, or the reason the file cannot be read (key, params)."""
    try:
        return await run_db(cat.preview, request.state.access, delegation_id, content, filename), None
    except cat.Refused:
        raise
    except ValidationError as exc:  # the importer's refusal of the file as a whole
        return None, (next(iter(exc.errors.values()), exc.key), exc.params)
    except UnicodeDecodeError:
        return None, ("indicators.import.encoding", {})
    except Exception:  # noqa: BLE001 — a damaged workbook: openpyxl raises many kinds
        return None, ("indicators.import.unreadable", {})


@require()
@refusals
async def import_page(request):
    delegation_id = request.path_params["id"]
    if request.method == "GET":
        return await _import_page(request, delegation_id)
    data = await request.form(max_files=1, max_fields=5)
    try:
        upload = data.get("file")
        if upload is None or isinstance(upload, str) or not upload.filename:
            return await _import_page(request, delegation_id, file_error="indicators.import.no_file", status_code=422)
        filename = upload.filename.replace("\\", "/").rsplit("/", 1)[-1][:200]
        content = await upload.read(UPLOAD_MAX + 1)
    finally:
        await data.close()
    problem = _checked_upload(filename, content)
    if problem:
        return await _import_page(request, delegation_id, filename=filename, file_error=problem[0],
                                  file_params=problem[1], status_code=413 if len(content) > UPLOAD_MAX else 422)
    try:
        preview, problem = await _preview_or_error(request, delegation_id, content, filename)
    except cat.Refused as exc:
        return await _refused_file(request, delegation_id, filename, exc)
    if problem:
        return await _import_page(request, delegation_id, filename=filename, file_error=problem[0],
                                  file_params=problem[1], status_code=422)
    payload = base64.b64encode(zlib.compress(content, 9)).decode("ascii")
    if len(payload) > PAYLOAD_MAX:
        return await _import_page(request, delegation_id, filename=filename, file_error="indicators.import.too_big",
                                  file_params={"size": UPLOAD_MAX // (1024 * 1024)}, status_code=413)
    return await _import_page(request, delegation_id, preview, filename, payload=payload,
                              status_code=422 if preview.plan.errors else 200)


def _payload_bytes(payload: str) -> bytes | None:
    try:
        decompressor = zlib.decompressobj()
        content = decompressor.decompress(base64.b64decode(payload, validate=True), UPLOAD_MAX + 1)
    except (binascii.Error, zlib.error, ValueError):
        return None
    return content if content and len(content) <= UPLOAD_MAX and not decompressor.unconsumed_tail else None


@require()
@refusals
async def import_apply(request):
    delegation_id = request.path_params["id"]
    data = await request.form(max_files=0, max_fields=10, max_part_size=PAYLOAD_MAX + 1024)
    filename = str(data.get("filename") or "")[:200]
    digest = str(data.get("digest") or "")[:64]
    content = _payload_bytes(str(data.get("payload") or ""))
    if content is None or _checked_upload(filename, content):
        return await _import_page(request, delegation_id, filename=filename,
                                  file_error="chuyen_nganh.catalogue.import.payload", status_code=400)
    try:
        counts, shown = await run_db(cat.import_file, request.state.access, delegation_id, content, filename, digest)
    except cat.Refused as exc:
        return await _refused_file(request, delegation_id, filename, exc)
    except ValidationError:  # a file the importer refuses whole: not what the preview read
        return await _import_page(request, delegation_id, filename=filename,
                                  file_error="chuyen_nganh.catalogue.import.payload", status_code=400)
    if counts is None:  # nothing written: errors now, or the catalogue changed since the preview
        payload = str(data.get("payload") or "")
        return await _import_page(request, delegation_id, shown, filename, payload=payload, moved=True,
                                  status_code=422 if shown.plan.errors else 409)
    return RedirectResponse(_sector_url(request, delegation_id, done="imported", **counts), status_code=303)


@require()
@refusals
async def export(request):
    filename, content = await run_db(cat.export, request.state.access, request.path_params["id"],
                                     request.path_params["fmt"])
    fmt = filename.rsplit(".", 1)[-1]
    return Response(content, media_type=TYPES[fmt], headers={
        "Content-Disposition": f"attachment; filename=\"{filename}\"; filename*=UTF-8''{quote(filename)}",
        "X-Content-Type-Options": "nosniff", "Cache-Control": "private, no-store"})


ROUTES = [
    Route("/catalogue", index, methods=["GET"], name="catalogue"),
    Route("/catalogue/{id:int}", sector, methods=["GET"], name="catalogue_sector"),
    Route("/catalogue/{id:int}/namespace", choose_prefix, methods=["POST"], name="catalogue_namespace"),
    Route("/catalogue/{id:int}/groups/new", group_new, methods=["GET", "POST"], name="catalogue_group_new"),
    Route("/catalogue/{id:int}/groups/{code}/edit", group_edit, methods=["GET", "POST"], name="catalogue_group_edit"),
    Route("/catalogue/{id:int}/indicators/new", indicator_new, methods=["GET", "POST"],
          name="catalogue_indicator_new"),
    Route("/catalogue/{id:int}/indicators/{code}/edit", indicator_edit, methods=["GET", "POST"],
          name="catalogue_indicator_edit"),
    Route("/catalogue/{id:int}/import", import_page, methods=["GET", "POST"], name="catalogue_import"),
    Route("/catalogue/{id:int}/import/apply", import_apply, methods=["POST"], name="catalogue_import_apply"),
    Route("/catalogue/{id:int}/export.{fmt}", export, methods=["GET"], name="catalogue_export"),
]
