"""Signing screens: the bytes to sign with a USB token, the downloads of a version's signed bytes and
signature, the receiver's "check again", and the page where a unit administrator installs the
unit's seal.

Signing and submitting itself goes through the submit route (web/routes/report_workflow.py) with a
``provider`` field; every decision is ``core.signatures.signing``'s. Uploaded .p12 files and their passwords
live only in this request's memory.
"""

from __future__ import annotations

from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from core.signatures import files as signature_files
from core.signatures import signing
from core.db import run_db
from core.errors import BaocaoError, Forbidden, NotFound
from core.models import Unit
from core.reporting import facade as reporting
from web.guards import require
from web.params import parse_int
from web.templating import render

MAX_FORM_BYTES = signature_files.MAX_P12_BYTES + 16 * 1024


def _attachment(body: bytes, filename: str, media_type: str) -> Response:
    return Response(body, media_type=media_type, headers={
        "Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"})


@require()
async def prepare(request):
    """Step 1 of signing with a USB token: freeze the bytes and download them."""
    access, report_id = request.state.access, request.path_params["id"]
    form = await request.form()
    revision = str(form.get("revision", "")).strip()
    from web.routes.report_workflow import _refusal

    if parse_int(revision, minimum=0) is None:
        return await _refusal(request, report_id, error=BaocaoError("report_workflow.error.stale_page"),
                              field="submit")
    try:
        row = await run_db(signing.prepare_external, access, report_id, revision=int(revision))
    except reporting.SubmitRefused as exc:
        return await _refusal(request, report_id, refused=exc, field="submit")
    except (NotFound, Forbidden):
        raise
    except BaocaoError as exc:
        return await _refusal(request, report_id, error=exc, field="submit")
    return _attachment(row.canonical.encode("utf-8"), signing.download_name(report_id, row.number),
                       "application/json")


def _version(access, report_id: int, number: int):
    report = reporting.get_report(access, report_id)  # NotFound unless this person may read it
    versions = reporting.ReportVersion
    version = versions.get_or_none((versions.report == report.id) & (versions.number == number))
    if version is None:
        raise NotFound()
    return version, signing.signature_of(version.id)


@require()
async def signed_data(request):
    version, _ = await run_db(_version, request.state.access, request.path_params["id"], request.path_params["number"])
    return _attachment(version.canonical.encode("utf-8"),
                       signing.download_name(request.path_params["id"], version.number), "application/json")


@require()
async def signature_file(request):
    version, row = await run_db(_version, request.state.access, request.path_params["id"],
                                request.path_params["number"])
    if row is None:
        raise NotFound()
    return _attachment(bytes(row.cms), f"bao-cao-{request.path_params['id']}-v{version.number}.p7s",
                       "application/pkcs7-signature")


@require()
async def recheck(request):
    access, report_id = request.state.access, request.path_params["id"]
    settings = request.app.state.settings

    def run():
        version, row = _version(access, report_id, request.path_params["number"])
        if row is None:
            raise NotFound()
        return signing.recheck(access, row.id, settings=settings)

    check = await run_db(run)
    return RedirectResponse(f"/reports/{report_id}?done=rechecked&result={check.status}#workflow", status_code=303)


# -- the unit's seal --------------------------------------------------------------------------------


def _seal_context(access, unit_id: int, **extra) -> dict:
    unit = Unit.get_or_none(Unit.id == unit_id)
    if unit is None or not signing.may_install_seal(access, unit_id):
        raise NotFound()
    return {"unit": unit, "seal": signing.active_seal(unit_id), **extra}


async def _seal_page(request, context: dict, status_code: int = 200):
    return await render(request, "core/report_signing/seal.html", context, status_code=status_code)


@require()
async def seal_page(request):
    done = request.query_params.get("done", "")
    notice = {"installed": "signing.seal.installed", "retired": "signing.seal.retired"}.get(done)
    context = await run_db(_seal_context, request.state.access, request.path_params["id"], notice=notice)
    return await _seal_page(request, context)


@require("core.unit.admin")
async def my_unit_seal(request):
    """The menu's way in: the seal page of the administrator's own unit."""
    return RedirectResponse(f"/units/{request.state.actor.unit_id}/seal", status_code=303)


@require(reauth=True)  # SESS-06: the unit's seal is a credential
async def seal_install(request):
    access, unit_id = request.state.access, request.path_params["id"]
    settings = request.app.state.settings
    await run_db(_seal_context, access, unit_id)  # 404 before reading a file for a unit one may not run
    error = None
    length = request.headers.get("content-length", "")
    if (parse_int(length, minimum=0) or 0) > MAX_FORM_BYTES:
        error = BaocaoError("signing.error.p12_too_large", limit=signature_files.MAX_P12_BYTES // 1024)
    else:
        form = await request.form(max_files=1, max_fields=5)
        upload = form.get("p12")
        data = b""
        if upload is not None and not isinstance(upload, str):
            data = await upload.read(signature_files.MAX_P12_BYTES + 1)
        password = str(form.get("password", ""))
        await form.close()
        try:
            await run_db(signing.install_seal, access, unit_id, data, password, settings=settings)
        except (NotFound, Forbidden):
            raise
        except signing.SignatureRefused as exc:
            error = exc
        except BaocaoError as exc:
            error = exc
    if error is None:
        return RedirectResponse(f"/units/{unit_id}/seal?done=installed", status_code=303)
    context = await run_db(_seal_context, access, unit_id, error=error,
                           reasons=error.reasons(request.state.lang) if isinstance(error, signing.SignatureRefused)
                           else [])
    return await _seal_page(request, context, status_code=422)


@require(reauth=True)  # SESS-06: the unit's seal is a credential
async def seal_retire(request):
    access, unit_id = request.state.access, request.path_params["id"]
    await run_db(signing.retire_seal, access, unit_id)
    return RedirectResponse(f"/units/{unit_id}/seal?done=retired", status_code=303)


ROUTES = [
    Route("/reports/{id:int}/signing/prepare", prepare, methods=["POST"], name="report_signing_prepare"),
    Route("/reports/{id:int}/versions/{number:int}/signed.json", signed_data, name="report_signed_data"),
    Route("/reports/{id:int}/versions/{number:int}/signature.p7s", signature_file, name="report_signature_file"),
    Route("/reports/{id:int}/versions/{number:int}/recheck", recheck, methods=["POST"], name="report_signature_recheck"),
    Route("/unit-seal", my_unit_seal, name="my_unit_seal"),
    Route("/units/{id:int}/seal", seal_page, name="unit_seal"),
    Route("/units/{id:int}/seal/install", seal_install, methods=["POST"], name="unit_seal_install"),
    Route("/units/{id:int}/seal/retire", seal_retire, methods=["POST"], name="unit_seal_retire"),
]
