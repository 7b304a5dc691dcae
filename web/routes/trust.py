"""Screens for signature trust: the administrator's /admin/trust and everyone's /account/certificates.

``/admin/trust`` (``core.trust.admin``): the pinned CAs (add by uploading a .cer/.pem — after a
password re-entry, since a wrong anchor lets forged signatures through — or stop trusting one), each
CA's current CRL with this/next update and whether it is fresh, stale or missing, a CRL upload, the
CRL sources and "Cập nhật CRL ngay". ``/account/certificates``: a person's own signing certificates
(register one after re-entering the password, proving the key is theirs by signing a challenge with
their .p12 or their USB token; stop using one). ``/users/{id}/certificates``: a unit administrator
(``core.unit.admin`` over the person's unit) sees a colleague's certificates, whether each matches
the identity number recorded for the account (which they edit there), and may stop one (a lost
token, a person who left).

All decisions are ``core.signatures.trust``'s and ``core.signatures.certificates``'s. Success redirects (303) back with
``?done=…`` for the flash; a refusal answers 422 with the page and the message at the field.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from core.signatures import certificates
from core.signatures import files as signature_files
from core.signatures import signing
from core.signatures import trust
from core.accounts.access import ADMIN_CODE
from core.db import run_db
from core.errors import BaocaoError, Forbidden, NotFound
from core.models import utcnow
from web.guards import require
from web.params import parse_id
from web.templating import render

PERMISSION = trust.PERMISSION
ADMIN_DONE = {d: f"trust.done.{d}" for d in ("anchor_added", "anchor_deactivated", "crl_uploaded", "source_added",
                                               "source_removed", "refreshed")}
MINE_DONE = {d: f"trust.done.{d}" for d in ("certificate_registered", "certificate_deactivated",
                                              "identity_number_set")}
IDENTITY_MAX = 32
URL_MAX = 500
NAME_MAX = 255


def _error(exc: BaocaoError) -> dict:
    return {"key": exc.key, "params": exc.params}


async def _file(form, field: str, limit: int = trust.MAX_UPLOAD_BYTES) -> bytes:
    upload = form.get(field)
    if upload is None or isinstance(upload, str):
        return b""
    return await upload.read(limit + 1)  # one byte over: the core then says "too large"


# -- /admin/trust ----------------------------------------------------------------------------------


def _admin_context(*, errors=None, done=None, form=None, refresh=None) -> dict:
    anchors, crls, sources = trust.overview()
    return {"anchors": anchors, "crls": crls, "sources": sources, "errors": errors or {}, "done": done,
            "form": form or {}, "refresh": refresh, "now": utcnow(),
            "active_anchors": [a for a in anchors if a.active]}


async def _admin_page(request, status_code=200, **kwargs):
    context = await run_db(_admin_context, **kwargs)
    return await render(request, "core/trust/admin.html", context, status_code=status_code)


def _admin_back(request, done: str) -> RedirectResponse:
    return RedirectResponse(request.url_for("trust_admin").path + f"?done={done}", status_code=303)


@require(PERMISSION)
async def admin_page(request):
    done = request.query_params.get("done") or ""
    return await _admin_page(request, done=ADMIN_DONE.get(done))


@require(PERMISSION, reauth=True)
async def anchor_add(request):
    form = await request.form()
    data, name = await _file(form, "certificate"), str(form.get("name", ""))[:NAME_MAX]
    try:
        await run_db(trust.add_anchor, request.state.access, data, name=name)
    except BaocaoError as exc:
        if isinstance(exc, Forbidden):
            raise
        return await _admin_page(request, 422, errors={"anchor": _error(exc)}, form={"name": name})
    return _admin_back(request, "anchor_added")


@require(PERMISSION)
async def anchor_deactivate(request):
    await run_db(trust.deactivate_anchor, request.state.access, request.path_params["anchor_id"])
    return _admin_back(request, "anchor_deactivated")


@require(PERMISSION)
async def crl_upload(request):
    form = await request.form()
    try:
        await run_db(trust.upload_crl, request.state.access, await _file(form, "crl", trust.MAX_CRL_BYTES))
    except BaocaoError as exc:
        if isinstance(exc, Forbidden):
            raise
        return await _admin_page(request, 422, errors={"crl": _error(exc)})
    return _admin_back(request, "crl_uploaded")


@require(PERMISSION)
async def source_add(request):
    form = await request.form()
    url = str(form.get("url", "")).strip()[:URL_MAX + 1]
    anchor = str(form.get("anchor", "")).strip()
    try:
        await run_db(trust.add_source, request.state.access, url, parse_id(anchor))
    except NotFound:
        raise
    except BaocaoError as exc:
        if isinstance(exc, Forbidden):
            raise
        return await _admin_page(request, 422, errors={"url": _error(exc)}, form={"url": url})
    return _admin_back(request, "source_added")


@require(PERMISSION)
async def source_remove(request):
    await run_db(trust.deactivate_source, request.state.access, request.path_params["source_id"])
    return _admin_back(request, "source_removed")


@require(PERMISSION)
async def refresh(request):
    result = await run_db(trust.refresh_crls, request.state.access)
    done = "trust.done.refreshed_partly" if result.failed else "trust.done.refreshed"
    return await _admin_page(request, done=done, refresh=result)


# -- /account/certificates ---------------------------------------------------------------------------


def _mine_context(actor, *, errors=None, done=None) -> dict:
    return {"certificates": certificates.certificates_of(actor.id), "errors": errors or {}, "done": done,
            "now": utcnow()}


async def _mine_page(request, status_code=200, **kwargs):
    context = await run_db(_mine_context, request.state.actor, **kwargs)
    return await render(request, "core/trust/certificates.html", context, status_code=status_code)


@require()
async def my_certificates(request):
    done = request.query_params.get("done") or ""
    return await _mine_page(request, done=MINE_DONE.get(done))


@require()
async def my_certificate_challenge(request):
    """Step 1 of registering with a USB token: download a fresh challenge to sign with the token's tool."""
    challenge = await run_db(certificates.new_challenge, request.state.access, request.state.actor.id)
    body = await run_db(certificates.challenge_bytes, challenge)
    return Response(body, media_type="text/plain; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="xac-minh-chung-thu-so-{challenge.nonce[:8]}.txt"',
        "Cache-Control": "no-store"})


@require(reauth=True)
async def my_certificate_add(request):
    """Register with proof of possession: a .p12 used once (``way=p12``), or the .p7s the token's tool
    made over the downloaded challenge (``way=p7s``). Neither the file nor the password is kept."""
    form = await request.form(max_files=1, max_fields=6)
    access, actor, settings = request.state.access, request.state.actor, request.app.state.settings
    way = str(form.get("way", ""))
    field = "p12" if way == "p12" else "p7s"
    try:
        if way == "p12":
            data, password = await _file(form, "p12", signature_files.MAX_P12_BYTES), str(form.get("password", ""))
            await form.close()
            await run_db(certificates.register_with_p12, access, actor.id, data, password, settings=settings)
        else:
            data = await _file(form, "p7s", signature_files.MAX_P7S_BYTES)
            await form.close()
            await run_db(certificates.register, access, actor.id, data, settings=settings)
    except NotFound:
        raise
    except BaocaoError as exc:
        return await _mine_page(request, 422, errors={field: _error(exc)})
    return RedirectResponse(request.url_for("my_certificates").path + "?done=certificate_registered",
                            status_code=303)


@require(reauth=True)  # SESS-06: a credential of the account changes
async def my_certificate_deactivate(request):
    # Only one's own here; a unit administrator uses core.signatures.certificates.deactivate for a colleague.
    certificate_id = request.path_params["certificate_id"]
    owner = await run_db(lambda: certificates.UserCertificate.select(certificates.UserCertificate.user)
                         .where(certificates.UserCertificate.id == certificate_id).scalar())
    if owner != request.state.actor.id:
        raise HTTPException(404)
    await run_db(certificates.deactivate, request.state.access, certificate_id)
    return RedirectResponse(request.url_for("my_certificates").path + "?done=certificate_deactivated",
                            status_code=303)


# -- a unit administrator over a colleague's certificates ---------------------------------------------


def _colleague_context(access, user_id: int, *, done=None, errors=None, form=None) -> dict:
    from core.accounts.access import check_manages_unit
    from core.models import User

    owner = User.get_or_none(User.id == user_id)
    if owner is None:
        raise NotFound()
    check_manages_unit(access, owner.unit_id)  # NotFound outside one's subtree: existence is not told
    return {"owner": owner, "certificates": certificates.certificates_of(owner.id), "errors": errors or {},
            "done": done, "now": utcnow(), "form": form or {}}


@require(ADMIN_CODE)
async def user_certificates(request):
    done = MINE_DONE.get(request.query_params.get("done") or "")
    context = await run_db(_colleague_context, request.state.access, request.path_params["id"], done=done)
    return await render(request, "core/trust/certificates.html", context)


@require(ADMIN_CODE, reauth=True)  # which certificates the account may register depends on it
async def user_identity_number(request):
    """A unit administrator records a colleague's CCCD/CMND number (or an organisation's MST)."""
    access, user_id = request.state.access, request.path_params["id"]
    form = await request.form(max_files=0, max_fields=3)
    value = str(form.get("identity_number", ""))[:IDENTITY_MAX + 1]
    try:
        await run_db(certificates.set_identity_number, access, user_id, value)
    except NotFound:
        raise
    except BaocaoError as exc:
        context = await run_db(_colleague_context, access, user_id, errors={"identity_number": _error(exc)},
                               form={"identity_number": value})
        return await render(request, "core/trust/certificates.html", context, status_code=422)
    return RedirectResponse(request.url_for("user_certificates", id=user_id).path + "?done=identity_number_set",
                            status_code=303)


@require(ADMIN_CODE, reauth=True)  # SESS-06: a credential of the account changes
async def user_certificate_deactivate(request):
    user_id, certificate_id = request.path_params["id"], request.path_params["certificate_id"]
    owner = await run_db(lambda: certificates.UserCertificate.select(certificates.UserCertificate.user)
                         .where(certificates.UserCertificate.id == certificate_id).scalar())
    if owner != user_id:
        raise HTTPException(404)
    await run_db(certificates.deactivate, request.state.access, certificate_id)
    return RedirectResponse(request.url_for("user_certificates", id=user_id).path
                            + "?done=certificate_deactivated", status_code=303)


ROUTES = [
    Route("/admin/trust", admin_page, methods=["GET"], name="trust_admin"),
    Route("/admin/trust/anchors", anchor_add, methods=["POST"], name="trust_anchor_add"),
    Route("/admin/trust/anchors/{anchor_id:int}/deactivate", anchor_deactivate, methods=["POST"],
          name="trust_anchor_deactivate"),
    Route("/admin/trust/crls", crl_upload, methods=["POST"], name="trust_crl_upload"),
    Route("/admin/trust/sources", source_add, methods=["POST"], name="trust_source_add"),
    Route("/admin/trust/sources/{source_id:int}/remove", source_remove, methods=["POST"], name="trust_source_remove"),
    Route("/admin/trust/refresh", refresh, methods=["POST"], name="trust_refresh"),
    Route("/account/certificates", my_certificates, methods=["GET"], name="my_certificates"),
    Route("/account/certificates", my_certificate_add, methods=["POST"], name="my_certificate_add"),
    Route("/account/certificates/challenge", my_certificate_challenge, methods=["POST"],
          name="my_certificate_challenge"),
    Route("/account/certificates/{certificate_id:int}/deactivate", my_certificate_deactivate, methods=["POST"],
          name="my_certificate_deactivate"),
    Route("/users/{id:int}/certificates", user_certificates, methods=["GET"], name="user_certificates"),
    Route("/users/{id:int}/identity-number", user_identity_number, methods=["POST"], name="user_identity_number"),
    Route("/users/{id:int}/certificates/{certificate_id:int}/deactivate", user_certificate_deactivate,
          methods=["POST"], name="user_certificate_deactivate"),
]
