"""The shipped sector regime templates at /p/chuyen_nganh/templates (adopt.py holds the rules): the
templates of the sectors a person administers under a delegation in force, and "Dùng mẫu này".

Adopting is a plain form with the CSRF token. Done, the person lands on the draft regime the template
made (/regimes/<id>) to complete and issue it. Refused: the page comes back with why (a second
adoption links to the draft the first one made: 409; no letters, no unit of the kind: 422); a
delegation that does not stand today, or a person who may not draft regimes, gets the 403 page
(the catalogue's, recorded as a denied access).
"""

from __future__ import annotations

from core.api import run_db
from web.api import RedirectResponse, Route, render, require

from . import adopt as svc
from .catalogue_routes import refusals
from .rights import CATALOGUE

KINDS = {"commune": "chuyen_nganh.shipped.kind.commune", "agency": "chuyen_nganh.shipped.kind.agency",
         "organisation": "chuyen_nganh.shipped.kind.organisation"}
KEY_MAX = 40


async def _page(request, *, refused=None, status_code=200):
    rows = await run_db(svc.offers, request.state.access)
    return await render(request, "chuyen_nganh/shipped.html",
                        {"rows": rows, "kinds": KINDS, "refused": refused}, status_code=status_code)


@require(CATALOGUE)
async def templates(request):
    return await _page(request)


@require(CATALOGUE)
@refusals
async def adopt(request):
    delegation_id = request.path_params["id"]
    key = str(request.path_params["key"])[:KEY_MAX]
    try:
        adoption = await run_db(svc.adopt, request.state.access, delegation_id, key)
    except svc.Refused as exc:
        status = 409 if exc.errors.get("form") in ("chuyen_nganh.shipped.error.adopted",
                                                   "chuyen_nganh.shipped.error.race") else 422
        refused = {"delegation_id": delegation_id, "key": key, "message": exc.errors["form"],
                   "params": exc.field_params.get("form", {})}
        return await _page(request, refused=refused, status_code=status)
    return RedirectResponse(request.url_for("regime_detail", id=adoption.regime_id).path, status_code=303)


ROUTES = [
    Route("/templates", templates, methods=["GET"], name="templates"),
    Route("/templates/{id:int}/{key}/adopt", adopt, methods=["POST"], name="template_adopt"),
]
