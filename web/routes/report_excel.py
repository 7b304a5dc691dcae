"""A report as an Excel file: the template to fill offline, the filled report, and the upload of
a filled template (``core.reporting.excel``). Reading either file needs the right to read the report;
the upload needs the right to fill it. An upload that is refused changes nothing and lists every
cell with its reason."""

from __future__ import annotations


from starlette.responses import Response
from starlette.routing import Route

from core.db import run_db
from core.errors import BaocaoError, Forbidden, NotFound
from core.reporting import facade as reporting
from web.background import file_response
from web.guards import require
from web.htmx import see_other
from web.params import parse_int
from web.templating import render

UPLOAD_SLACK = 64 * 1024  # the multipart envelope around the file


def _report_id(request) -> int:
    return request.path_params["id"]


def _download(data: bytes, name: str) -> Response:
    return file_response(data, name or "bao-cao.xlsx", reporting.XLSX_MEDIA)


def _template(access, report_id: int, secret: str) -> tuple[bytes, str]:
    sheet = reporting.load_sheet(access, report_id)
    return reporting.excel_template(sheet, secret=secret), reporting.excel_filename(sheet, "BM")


def _export(access, report_id: int) -> tuple[bytes, str]:
    sheet = reporting.load_sheet(access, report_id)
    return reporting.export_excel(sheet), reporting.excel_filename(sheet, "BC")


@require()
async def template_download(request):
    data, name = await run_db(_template, request.state.access, _report_id(request),
                              request.app.state.settings.secret_key)
    return _download(data, name)


@require()
async def export_download(request):
    data, name = await run_db(_export, request.state.access, _report_id(request))
    return _download(data, name)


def _error_context(access, report_id: int, error: BaocaoError, filename: str) -> dict:
    report = reporting.get_report(access, report_id)
    problems = error.problems if isinstance(error, reporting.CellsRefused) else []
    return {"report": report, "error": error, "problems": problems, "filename": filename}


def _check_fill(access, report_id: int) -> None:
    if not reporting.can_fill(access, reporting.get_report(access, report_id)):
        raise Forbidden()


@require()
async def upload(request):
    access, report_id = request.state.access, _report_id(request)
    await run_db(_check_fill, access, report_id)  # 404/403 before reading anything
    error, filename, data = None, "", b""
    length = request.headers.get("content-length", "")
    if (parse_int(length, minimum=0) or 0) > reporting.MAX_UPLOAD_BYTES + UPLOAD_SLACK:
        error = reporting.ExcelImportError("report_excel.error.too_big",
                                           limit=reporting.MAX_UPLOAD_BYTES // (1024 * 1024))
    else:
        form = await request.form()
        file = form.get("file")
        if file is None or isinstance(file, str) or not getattr(file, "filename", ""):
            error = reporting.ExcelImportError("report_excel.error.no_file")
        else:
            filename = file.filename.replace("\\", "/").rsplit("/", 1)[-1][:200]
            data = await file.read(reporting.MAX_UPLOAD_BYTES + 1)
        await form.close()
    if error is None:
        try:
            result = await run_db(reporting.import_excel, access, report_id, data,
                                  secret=request.app.state.settings.secret_key, lang=request.state.lang)
        except (NotFound, Forbidden):
            raise
        except BaocaoError as exc:
            error = exc
        else:
            return see_other(request, f"/reports/{report_id}?imported={result.changed_cells}")
    context = await run_db(_error_context, access, report_id, error, filename)
    return await render(request, "core/report_excel/upload_errors.html", context, status_code=422)


ROUTES = [
    # The report page (/reports/{id}) links to these three.
    Route("/reports/{id:int}/template.xlsx", template_download, methods=["GET"], name="report_excel_template"),
    Route("/reports/{id:int}/export.xlsx", export_download, methods=["GET"], name="report_excel_export"),
    Route("/reports/{id:int}/upload", upload, methods=["POST"], name="report_excel_upload"),
]
