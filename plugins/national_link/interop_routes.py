"""The screens of the code mapping and of the figures' exchange with vertical systems, at
/p/national_link/mapping and /p/national_link/interop (codes.py, adx.py and dhis2.py hold the rules).

- the mapping: the connectors, then one connector's rows (add, change, delete one row), its export
  as CSV and the import of a CSV replacing it (a dry run of what is new, changed and removed, then
  all or nothing);
- the export: a connector, a data set, units and a period → the accepted figures as ADX or as a DHIS2
  data value set, or the data set's ADX schema (XSD);
- the import: a connector and a file → the dry run (what changes, old → new; every unmapped code with
  its place; every other problem) → applied whole, or not at all.

Every page needs the mapping right (``national_link.mapping.edit``) at the person's unit; figures go
out and in only for units where the person holds it too. Plain forms with the CSRF token: everything
works without JavaScript. A refused form comes back with what was typed and each message at its
field (422). An uploaded file travels in the dry run's page (zlib, base64), not on the server;
"apply" sends it back with a digest of what the page showed, and the file is checked again in full:
anything changed meanwhile shows the new dry run instead of writing (409).
"""

from __future__ import annotations

import base64
import binascii
import zlib
from urllib.parse import quote, urlencode

from core.api import BaocaoError, NotFound, Unit, audit_record, period_window, run_db, today, unit_chain
from web.api import RedirectResponse, Response, Route, plugin_settings, render, require

from . import adx, codes, dhis2
from .connectors import connectors as configured
from .rights import MAPPING

UPLOAD_MAX = codes.UPLOAD_BYTES  # the same bound for ADX and DHIS2 files
CSV_UPLOAD_MAX = codes.CSV_MAX
PAYLOAD_MAX = 1024 * 1024  # the dry run's hidden copy of the file, compressed
FREQUENCIES = ("monthly", "quarterly", "half_year", "nine_months", "annual")
FREQUENCY_LABELS = {f: f"national_link.interop.frequency.{f}" for f in FREQUENCIES}
EXPORT_FORMATS = {"adx": "national_link.interop.format.adx", "dhis2": "national_link.interop.format.dhis2",
                  "xsd": "national_link.interop.format.xsd"}
IMPORT_FORMATS = {"adx": "national_link.interop.format.adx", "dhis2": "national_link.interop.format.dhis2"}
READERS = {"adx": adx, "dhis2": dhis2}
DONE = {"saved": "national_link.mapping.done.saved", "deleted": "national_link.mapping.done.deleted",
        "imported": "national_link.mapping.done.imported", "figures": "national_link.interop.done.imported"}


def _connectors(request) -> dict:
    return configured(plugin_settings(request))


def _connector(request, name: str | None = None):
    """The connector named in the path (or ``name``); NotFound when the settings have none of that name."""
    found = _connectors(request).get(name if name is not None else request.path_params["connector"])
    if found is None:
        raise NotFound()
    return found


def _count(value) -> int:
    text = str(value or "")
    return int(text) if text.isascii() and text.isdigit() and len(text) < 9 else 0


def _done(request) -> tuple[str | None, dict]:
    key = DONE.get(request.query_params.get("done") or "")
    return key, {k: _count(request.query_params.get(k)) for k in ("new", "changed", "removed", "unchanged",
                                                                   "figures")}


def _attachment(content: bytes, media_type: str, filename: str) -> Response:
    return Response(content, media_type=media_type, headers={
        "Content-Disposition": f"attachment; filename=\"{filename}\"; filename*=UTF-8''{quote(filename)}",
        "X-Content-Type-Options": "nosniff", "Cache-Control": "private, no-store"})


def _packed(content: bytes) -> str:
    return base64.b64encode(zlib.compress(content, 9)).decode("ascii")


def _unpacked(payload: str, limit: int) -> bytes | None:
    try:
        decompressor = zlib.decompressobj()
        content = decompressor.decompress(base64.b64decode(payload, validate=True), limit + 1)
    except (binascii.Error, zlib.error, ValueError):
        return None
    return content if content and len(content) <= limit and not decompressor.unconsumed_tail else None


async def _upload(request, limit: int, fields: int = 8):
    """(form data, filename, content) of a one-file form; content None when no file was given."""
    data = await request.form(max_files=1, max_fields=fields)
    try:
        upload = data.get("file")
        if upload is None or isinstance(upload, str) or not upload.filename:
            return data, "", None
        filename = upload.filename.replace("\\", "/").rsplit("/", 1)[-1][:200]
        return data, filename, await upload.read(limit + 1)
    finally:
        await data.close()


# -- the mapping ----------------------------------------------------------------------------------------

@require(MAPPING)
async def mapping(request):
    found = _connectors(request)
    numbers = await run_db(codes.counts, list(found))
    return await render(request, "national_link/mapping.html", {"connectors": found, "numbers": numbers,
                                                                "active": "mapping", "kinds": codes.KINDS,
                                                                "kind_labels": codes.KIND_LABELS})


def _row_context(connector: str, kind: str) -> dict:
    shown = codes.rows(connector, kind)
    return {"rows": shown, "kind": kind if kind in codes.KINDS else "",
            "numbers": codes.counts([connector])[connector]}


@require(MAPPING)
async def mapping_connector(request):
    connector = _connector(request)
    context = await run_db(_row_context, connector.name, request.query_params.get("kind") or "")
    done, numbers = _done(request)
    context.update(connector=connector, done=done, done_counts=numbers, active="mapping", kinds=codes.KINDS,
                   kind_labels=codes.KIND_LABELS)
    return await render(request, "national_link/mapping_connector.html", context)


def _connector_url(request, name: str, anchor: str = "", **query) -> str:
    url = request.url_for("national_link:mapping_connector", connector=name).path
    query = {k: v for k, v in query.items() if v not in ("", None)}
    return url + ("?" + urlencode(query) if query else "") + (f"#{anchor}" if anchor else "")


async def _row_page(request, connector, form: dict, row=None, errors=None, field_params=None, status_code=200):
    return await render(request, "national_link/mapping_row.html", {
        "connector": connector, "form": form, "row": row, "errors": errors or {}, "field_params": field_params or {},
        "active": "mapping", "kinds": codes.KINDS, "kind_labels": codes.KIND_LABELS}, status_code=status_code)


async def _posted_row(request) -> dict:
    data = await request.form(max_files=0, max_fields=10)
    return {name: str(data.get(name) or "")[:codes.SIZES[name] + 50] for name in codes.FIELDS}


@require(MAPPING)
async def mapping_new(request):
    connector = _connector(request)
    if request.method == "GET":
        kind = request.query_params.get("kind") or "value"
        form = dict.fromkeys(codes.FIELDS, "") | {"kind": kind if kind in codes.KINDS else "value"}
        return await _row_page(request, connector, form)
    form = await _posted_row(request)
    try:
        row = await run_db(codes.save_row, request.state.access, connector.name, form)
    except codes.MappingError as exc:
        return await _row_page(request, connector, form, None, exc.errors, exc.field_params, 422)
    return RedirectResponse(_connector_url(request, connector.name, f"row-{row.id}", done="saved"), status_code=303)


@require(MAPPING)
async def mapping_edit(request):
    connector = _connector(request)
    row = await run_db(codes.get_row, connector.name, request.path_params["id"])
    if request.method == "GET":
        return await _row_page(request, connector, row.values(), row)
    form = await _posted_row(request)
    try:
        row = await run_db(codes.save_row, request.state.access, connector.name, form, row.id)
    except codes.MappingError as exc:
        return await _row_page(request, connector, form, row, exc.errors, exc.field_params, 422)
    return RedirectResponse(_connector_url(request, connector.name, f"row-{row.id}", done="saved"), status_code=303)


@require(MAPPING)
async def mapping_delete(request):
    connector = _connector(request)
    await request.form(max_files=0, max_fields=5)
    await run_db(codes.delete_row, request.state.access, connector.name, request.path_params["id"])
    return RedirectResponse(_connector_url(request, connector.name, done="deleted"), status_code=303)


@require(MAPPING)
async def mapping_export(request):
    connector = _connector(request)
    content = await run_db(codes.export_csv, connector.name)
    return _attachment(content, "text/csv; charset=utf-8", f"bang-ma-{connector.name}-{today():%Y%m%d}.csv")


async def _csv_page(request, connector, plan=None, filename="", file_error=None, file_params=None, payload="",
                    moved=False, status_code=200):
    return await render(request, "national_link/mapping_import.html", {
        "connector": connector, "plan": plan, "filename": filename, "file_error": file_error,
        "file_params": file_params or {}, "payload": payload, "moved": moved, "active": "mapping",
        "kind_labels": codes.KIND_LABELS, "fields": codes.FIELDS, "upload_max_kb": CSV_UPLOAD_MAX // 1024},
        status_code=status_code)


@require(MAPPING)
async def mapping_import(request):
    connector = _connector(request)
    if request.method == "GET":
        return await _csv_page(request, connector)
    _, filename, content = await _upload(request, CSV_UPLOAD_MAX)
    if content is None:
        return await _csv_page(request, connector, file_error="national_link.interop.error.no_file", status_code=422)
    try:
        plan = await run_db(codes.plan_csv, connector.name, content)
    except codes.FileRefused as exc:
        return await _csv_page(request, connector, filename=filename, file_error=exc.key, file_params=exc.params,
                               status_code=413 if len(content) > CSV_UPLOAD_MAX else 422)
    return await _csv_page(request, connector, plan, filename, payload=_packed(content),
                           status_code=422 if plan.errors else 200)


@require(MAPPING)
async def mapping_import_apply(request):
    connector = _connector(request)
    data = await request.form(max_files=0, max_fields=8, max_part_size=PAYLOAD_MAX * 2)
    filename, digest = str(data.get("filename") or "")[:200], str(data.get("digest") or "")[:64]
    payload = str(data.get("payload") or "")
    content = _unpacked(payload, CSV_UPLOAD_MAX)
    if content is None:
        return await _csv_page(request, connector, filename=filename,
                               file_error="national_link.interop.error.payload", status_code=400)
    try:
        done, plan = await run_db(codes.apply_csv, request.state.access, connector.name, content, filename, digest)
    except codes.FileRefused:
        return await _csv_page(request, connector, filename=filename,
                               file_error="national_link.interop.error.payload", status_code=400)
    if done is None:
        return await _csv_page(request, connector, plan, filename, payload=payload, moved=True,
                               status_code=422 if plan.errors else 409)
    return RedirectResponse(_connector_url(request, connector.name, done="imported", **done), status_code=303)


# -- the export ---------------------------------------------------------------------------------------

def _export_choices(access, connector: str) -> dict:
    """The data sets and the units (those the person holds the mapping right at) the connector maps."""
    mapping = codes.load(connector)
    units = [u for u in Unit.select().where(Unit.code.in_(sorted(mapping.units))).order_by(Unit.name)
             if access.allowed(MAPPING, unit_chain(u.id))]
    return {"data_sets": sorted(mapping.data_sets.items()), "units": units}


async def _export_page(request, connector=None, form=None, errors=None, refused=None, status_code=200):
    found = _connectors(request)
    if connector is None and len(found) == 1:
        connector = next(iter(found.values()))
    choices = await run_db(_export_choices, request.state.access, connector.name) if connector else {}
    year = today().year
    form = form or {"data_set": "", "units": [], "frequency": "monthly", "year": str(year),
                    "index": str(today().month), "format": "adx"}
    return await render(request, "national_link/interop_export.html", {
        "connectors": found, "connector": connector, "form": form, "errors": errors or {}, "field_params": {},
        "refused": refused, "active": "interop",
        "frequencies": FREQUENCIES, "frequency_labels": FREQUENCY_LABELS, "formats": EXPORT_FORMATS,
        **choices}, status_code=status_code)


def _small_int(text: str) -> int | None:
    return int(text) if text.isascii() and text.isdigit() and len(text) < 6 else None


def _export_form(data) -> dict:
    return {"data_set": str(data.get("data_set") or "")[:40],
            "units": [str(u)[:12] for u in data.getlist("units")][:500],
            "frequency": str(data.get("frequency") or "")[:20], "year": str(data.get("year") or "").strip()[:6],
            "index": str(data.get("index") or "").strip()[:3], "format": str(data.get("format") or "")[:10]}


def _checked_export(form: dict, choices: dict) -> tuple[dict, dict]:
    """(errors, what to export) of the export form."""
    errors = {}
    if form["data_set"] not in dict(choices["data_sets"]):
        errors["data_set"] = "national_link.interop.error.data_set"
    allowed = {str(u.id): u for u in choices["units"]}
    chosen = [allowed[u] for u in dict.fromkeys(form["units"]) if u in allowed]
    if form["format"] != "xsd" and (not chosen or len(chosen) != len(set(form["units"]))):
        errors["units"] = "national_link.interop.error.units"
    if form["format"] not in EXPORT_FORMATS:
        errors["format"] = "national_link.interop.error.format"
    year, index = _small_int(form["year"]), _small_int(form["index"])
    period = None
    if form["format"] != "xsd":
        if form["frequency"] not in FREQUENCIES:
            errors["frequency"] = "national_link.interop.error.frequency"
        elif year is None or index is None:
            errors["index"] = "national_link.interop.error.period"
        else:
            try:
                period_window(form["frequency"], year, index)
                period = (form["frequency"], year, index)
            except BaocaoError:
                errors["index"] = "national_link.interop.error.period"
    return errors, {"units": [u.id for u in chosen], "period": period}


@require(MAPPING)
async def interop_export(request):
    if request.method == "GET":
        name = request.query_params.get("connector")
        return await _export_page(request, _connector(request, name) if name else None)
    data = await request.form(max_files=0, max_fields=600)
    connector = _connector(request, str(data.get("connector") or ""))
    form = _export_form(data)
    choices = await run_db(_export_choices, request.state.access, connector.name)
    errors, chosen = _checked_export(form, choices)
    if errors:
        return await _export_page(request, connector, form, errors, status_code=422)
    stamp = f"{connector.name}-{form['data_set']}-{today():%Y%m%d}"
    try:
        if form["format"] == "xsd":
            content = await run_db(adx.xsd, connector.name, form["data_set"])
            return _attachment(content, "application/xml", f"adx-{stamp}.xsd")
        if form["format"] == "adx":
            content = await run_db(_exported, request.state.access, connector.name, "adx", form["data_set"], chosen)
            return _attachment(content, adx.MEDIA_TYPE, f"adx-{stamp}.xml")
        content = await run_db(_exported, request.state.access, connector.name, "dhis2", form["data_set"], chosen)
        return _attachment(content, dhis2.MEDIA_TYPE, f"dhis2-{stamp}.json")
    except BaocaoError as exc:  # a code without its row, nothing to send, a period DHIS2 has no name for
        return await _export_page(request, connector, form, refused=exc, status_code=422)


def _exported(access, connector: str, fmt: str, data_set: str, chosen: dict) -> bytes:
    """The file, and its audit event (figures leave the system)."""
    periods_ = [chosen["period"]]
    if fmt == "adx":
        content = adx.export(connector, data_set, chosen["units"], periods_)
    else:
        content = dhis2.dumps(dhis2.export(connector, data_set, chosen["units"], periods_))
    audit_record("national_link.interop.export", actor=access.actor, object_type="national_link.interop",
                 object_id=connector, details={"channel": connector, "format": fmt, "regime": data_set,
                                               "units": chosen["units"], "period": "/".join(map(str, periods_[0]))})
    return content


# -- the import ---------------------------------------------------------------------------------------

async def _import_page(request, connector=None, fmt="adx", plan=None, filename="", file_error=None,
                       file_params=None, payload="", moved=False, status_code=200):
    done, numbers = _done(request)
    return await render(request, "national_link/interop_import.html", {
        "connectors": _connectors(request), "connector": connector, "fmt": fmt, "plan": plan, "filename": filename,
        "file_error": file_error, "file_params": file_params or {}, "payload": payload, "moved": moved,
        "formats": IMPORT_FORMATS, "active": "interop", "upload_max_mb": UPLOAD_MAX // (1024 * 1024),
        "done": done if request.method == "GET" else None, "done_counts": numbers}, status_code=status_code)


@require(MAPPING)
async def interop_import(request):
    if request.method == "GET":
        name = request.query_params.get("connector")
        return await _import_page(request, _connector(request, name) if name else None)
    data, filename, content = await _upload(request, UPLOAD_MAX)
    connector = _connectors(request).get(str(data.get("connector") or ""))
    fmt = str(data.get("format") or "")
    if connector is None:
        return await _import_page(request, None, fmt if fmt in READERS else "adx",
                                  file_error="national_link.interop.error.connector", status_code=422)
    if fmt not in READERS:
        return await _import_page(request, connector, fmt, file_error="national_link.interop.error.format",
                                  status_code=422)
    if content is None:
        return await _import_page(request, connector, fmt, file_error="national_link.interop.error.no_file",
                                  status_code=422)
    try:
        plan = await run_db(READERS[fmt].dry_run, connector.name, content, access=request.state.access)
    except codes.FileRefused as exc:
        return await _import_page(request, connector, fmt, filename=filename, file_error=exc.key,
                                  file_params=exc.params, status_code=413 if len(content) > UPLOAD_MAX else 422)
    payload = _packed(content)
    if len(payload) > PAYLOAD_MAX:
        return await _import_page(request, connector, fmt, filename=filename,
                                  file_error="national_link.interop.error.too_big",
                                  file_params={"size": UPLOAD_MAX // (1024 * 1024)}, status_code=413)
    return await _import_page(request, connector, fmt, plan, filename, payload=payload,
                              status_code=200 if plan.ok else 422)


@require(MAPPING)
async def interop_import_apply(request):
    data = await request.form(max_files=0, max_fields=10, max_part_size=PAYLOAD_MAX + 1024)
    connector = _connector(request, str(data.get("connector") or ""))
    fmt = str(data.get("format") or "")
    filename, digest = str(data.get("filename") or "")[:200], str(data.get("digest") or "")[:64]
    payload = str(data.get("payload") or "")
    content = _unpacked(payload, UPLOAD_MAX)
    if content is None or fmt not in READERS:
        return await _import_page(request, connector, fmt if fmt in READERS else "adx", filename=filename,
                                  file_error="national_link.interop.error.payload", status_code=400)
    try:
        done, plan = await run_db(READERS[fmt].apply, request.state.access, connector.name, content, filename, digest)
    except codes.FileRefused:
        return await _import_page(request, connector, fmt, filename=filename,
                                  file_error="national_link.interop.error.payload", status_code=400)
    if done is None:
        return await _import_page(request, connector, fmt, plan, filename, payload=payload, moved=plan.ok,
                                  status_code=409 if plan.ok else 422)
    url = request.url_for("national_link:interop_import").path
    return RedirectResponse(url + "?" + urlencode({"connector": connector.name, "done": "figures", **done}),
                            status_code=303)


ROUTES = [
    Route("/mapping", mapping, methods=["GET"], name="mapping"),
    Route("/mapping/{connector}", mapping_connector, methods=["GET"], name="mapping_connector"),
    Route("/mapping/{connector}/new", mapping_new, methods=["GET", "POST"], name="mapping_new"),
    Route("/mapping/{connector}/{id:int}/edit", mapping_edit, methods=["GET", "POST"], name="mapping_edit"),
    Route("/mapping/{connector}/{id:int}/delete", mapping_delete, methods=["POST"], name="mapping_delete"),
    Route("/mapping/{connector}/export.csv", mapping_export, methods=["GET"], name="mapping_export"),
    Route("/mapping/{connector}/import", mapping_import, methods=["GET", "POST"], name="mapping_import"),
    Route("/mapping/{connector}/import/apply", mapping_import_apply, methods=["POST"], name="mapping_import_apply"),
    Route("/interop/export", interop_export, methods=["GET", "POST"], name="interop_export"),
    Route("/interop/import", interop_import, methods=["GET", "POST"], name="interop_import"),
    Route("/interop/import/apply", interop_import_apply, methods=["POST"], name="interop_import_apply"),
]
