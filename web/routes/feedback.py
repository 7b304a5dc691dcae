"""Feedback and incidents (Điều 9.1c, 9.4): "Phản ánh, góp ý".

- ``/feedback`` (everyone logged in, from the menu of every page): the form to report a problem or
  a proposal — its page field prefilled with the page the person came from (``?from=`` a path, else
  the Referer; only a path of this site is kept, and never a feedback page itself) — and below it
  "Phản ánh của tôi", the person's own items with their status and what changed since they last
  looked. A refused form (a bad screenshot, a missing title) answers 422 with every typed text kept
  and the message at its field; only the file must be chosen again (no browser refills it).
- ``/feedback/{id}``: one item — for its reporter and the operator only, anyone else gets the 404
  page — with its screenshot, the thread, and the reply form (the reporter's while the item is open;
  the operator's always, with a status to set). The reporter opening it reads its notices.
- ``/admin/feedback`` (``core.feedback.admin``, system administrators): the operator's queue,
  filtered by status, kind, unit and assignee; assigning is a small form on the item's page.

Every decision is ``core.feedback``'s; each change is a POST with the CSRF token, then a 303.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode, urlsplit

from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from core import feedback
from core.db import run_db
from core.errors import BaocaoError, NotFound, ValidationError
from web.guards import require
from web.params import parse_id
from web.templating import render

DONE = {"created": "feedback.done.created", "replied": "feedback.done.replied",
        "assigned": "feedback.done.assigned", "status": "feedback.done.status"}
MB = 1024 * 1024
# What is read of the form before the service checks it: a little above each limit, so an
# over-long text is refused by its own message, not cut silently.
FIELD_CAP = {"title": feedback.MAX_TITLE + 100, "description": feedback.MAX_DESCRIPTION + 100,
             "page": feedback.MAX_PAGE + 100}
FEEDBACK_PATHS = ("/feedback", "/admin/feedback")


def _labels() -> dict:
    return {"kinds": feedback.KINDS, "statuses": feedback.STATUSES, "kind_labels": feedback.KIND_LABELS,
            "status_labels": feedback.STATUS_LABELS, "open_statuses": feedback.OPEN}


def same_site_path(request, value: str | None) -> str | None:
    """``value`` (a path, or a full address of this very site) as a path with its query; None for
    another site or anything that is not a path."""
    value = (value or "").strip()
    if not value:
        return None
    try:
        parts = urlsplit(value)
    except ValueError:  # "http://[::1" and the like: not an address at all
        return None
    if parts.scheme or parts.netloc:
        if parts.scheme not in ("http", "https") or parts.netloc != request.url.netloc:
            return None
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return feedback.clean_page(path) or None


def prefill_page(request) -> str:
    """The page the person came from: ``?from=`` first (a link that knows its page), else the
    Referer; never one of the feedback pages (coming back to the form says nothing)."""
    for raw in (request.query_params.get("from"), request.headers.get("referer")):
        path = same_site_path(request, raw)
        if path and not any(path == p or path.startswith(p + "/") or path.startswith(p + "?")
                            for p in FEEDBACK_PATHS):
            return path
    return ""


# -- the form and "my reports" --------------------------------------------------------------------

def _page_context(user_id: int, lang: str) -> dict:
    unread = feedback.notices(user_id)
    return {"mine": feedback.mine(user_id), "limit": feedback.PAGE_SIZE,
            "notices": [{**n, "text": feedback.notice_text(n["entry"], n["feedback"], lang)} for n in unread]}


async def _form_page(request, form: dict, *, errors=None, error_params=None, status_code=200):
    context = await run_db(_page_context, request.state.actor.id, request.state.lang)
    settings = request.app.state.settings
    context.update(_labels(), form=form, errors=errors or {}, error_params=error_params or {},
                   screenshot_mb=feedback.screenshot_limit_mb(settings),
                   screenshot_types=", ".join(sorted(feedback.SCREENSHOT_TYPES)),
                   title_limit=feedback.MAX_TITLE, description_limit=feedback.MAX_DESCRIPTION)
    return await render(request, "core/feedback/page.html", context, status_code=status_code)


@require()
async def feedback_page(request):
    kind = request.query_params.get("kind", "")
    form = {"kind": kind if kind in feedback.KINDS else "problem", "title": "", "description": "",
            "page": prefill_page(request)}
    return await _form_page(request, form)


@require()
async def feedback_create(request):
    settings = request.app.state.settings
    data = await request.form(max_files=1, max_fields=10)
    try:
        form = {name: str(data.get(name) or "")[:cap] for name, cap in FIELD_CAP.items()}
        kind = str(data.get("kind") or "")
        form["kind"] = kind if kind in feedback.KINDS else ""
        upload = data.get("screenshot")
        screenshot = None
        if upload is not None and not isinstance(upload, str) and getattr(upload, "filename", ""):
            # One byte past the limit is enough to know the file is too big.
            screenshot = (upload.filename, await upload.read(feedback.screenshot_limit_mb(settings) * MB + 1))
    finally:
        await data.close()
    # A full address of this site pasted into the field is kept as its path; anything else goes to
    # the service as typed, which refuses it at the field.
    page = same_site_path(request, form["page"]) or form["page"]
    try:
        item = await run_db(feedback.submit, request.state.access, kind=form["kind"], title=form["title"],
                            description=form["description"], page=page, screenshot=screenshot, settings=settings)
    except ValidationError as exc:
        return await _form_page(request, form, errors=exc.errors, error_params=exc.params, status_code=422)
    return RedirectResponse(f"/feedback/{item.id}?done=created", status_code=303)


# -- one item -------------------------------------------------------------------------------------

def _item_context(access, feedback_id: int, lang: str) -> dict:
    item = feedback.get(access, feedback_id)
    actor = access.actor
    operator = feedback.is_operator(access)
    # Opening the item is reading what changed on it (the reporter's news, an operator's). A GET
    # may do this much: a forged link can only mark read what its person could open anyway.
    feedback.mark_read(actor.id, item.id)
    return {"item": item, "reporter": item.reporter, "handler": item.assignee if item.assignee_id else None,
            "entries": feedback.thread(item.id), "operator": operator, "is_reporter": item.reporter_id == actor.id,
            "administrators": feedback.administrators() if operator else [],
            "can_reply": operator or item.status in feedback.OPEN}


async def _item_page(request, *, status_code=200, **extra):
    context = await run_db(_item_context, request.state.access, request.path_params["id"], request.state.lang)
    context.update(_labels(), done=DONE.get(request.query_params.get("done", "")), errors={}, error_params={},
                   reply_text="", reply_status="", reply_limit=feedback.MAX_REPLY)
    context.update(extra)
    return await render(request, "core/feedback/item.html", context, status_code=status_code)


@require()
async def item_page(request):
    return await _item_page(request)


@require()
async def screenshot(request):
    item, data = await run_db(feedback.screenshot, request.state.access, request.path_params["id"],
                              settings=request.app.state.settings)
    ascii_name = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in item.screenshot_name) or "image"
    disposition = f"inline; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(item.screenshot_name, safe='')}"
    # The type is the one its magic bytes proved; nosniff keeps a browser from reading it as anything else.
    return Response(data, media_type=item.screenshot_type,
                    headers={"Content-Disposition": disposition, "X-Content-Type-Options": "nosniff",
                             "Cache-Control": "private, no-store"})


@require()
async def reply(request):
    data = await request.form(max_files=0, max_fields=5)
    text = str(data.get("text") or "")[:feedback.MAX_REPLY + 100]
    status = str(data.get("status") or "")[:20]
    item_id = request.path_params["id"]
    try:
        entry = await run_db(feedback.reply, request.state.access, item_id, text, status=status)
    except NotFound:
        raise
    except ValidationError as exc:
        return await _item_page(request, status_code=422, errors=exc.errors, error_params=exc.params,
                                reply_text=text, reply_status=status)
    except BaocaoError as exc:  # the item was closed meanwhile
        return await _item_page(request, status_code=409, errors={"text": exc.key}, reply_text=text)
    done = "replied" if entry.kind == "reply" else "status"
    return RedirectResponse(f"/feedback/{item_id}?done={done}#thread", status_code=303)


# -- the operator's queue -----------------------------------------------------------------------------

def _filters(params) -> dict:
    status, kind, assignee = params.get("status", ""), params.get("kind", ""), params.get("assignee", "")
    return {"status": status if status in feedback.STATUSES else "",
            "kind": kind if kind in feedback.KINDS else "",
            "unit": parse_id(params.get("unit")),
            "assignee": assignee if assignee in ("me", "none") else ""}


def _queue_context(access, filters: dict) -> dict:
    return {"items": feedback.queue(access, **filters), "counts": feedback.status_counts(),
            "units": feedback.queue_units(), "filters": filters, "limit": feedback.PAGE_SIZE}


@require(feedback.ADMIN)
async def queue_page(request):
    filters = _filters(request.query_params)
    context = await run_db(_queue_context, request.state.access, filters)
    context.update(_labels(), filtered=any(v for v in filters.values()))
    return await render(request, "core/feedback/queue.html", context)


@require(feedback.ADMIN)
async def assign(request):
    data = await request.form(max_files=0, max_fields=5)
    raw = str(data.get("assignee") or "")[:40]
    assignee_id = (parse_id(raw) or 0) if raw else None  # 0: no such person, refused by the service
    item_id = request.path_params["id"]
    try:
        await run_db(feedback.assign, request.state.access, item_id, assignee_id)
    except ValidationError as exc:
        return await _item_page(request, status_code=422, errors=exc.errors, error_params=exc.params)
    return RedirectResponse(f"/feedback/{item_id}?{urlencode({'done': 'assigned'})}", status_code=303)


ROUTES = [
    Route("/feedback", feedback_page, methods=["GET"], name="feedback"),
    Route("/feedback", feedback_create, methods=["POST"], name="feedback_create"),
    Route("/feedback/{id:int}", item_page, methods=["GET"], name="feedback_item"),
    Route("/feedback/{id:int}/screenshot", screenshot, methods=["GET"], name="feedback_screenshot"),
    Route("/feedback/{id:int}/reply", reply, methods=["POST"], name="feedback_reply"),
    Route("/admin/feedback", queue_page, methods=["GET"], name="feedback_queue"),
    Route("/admin/feedback/{id:int}/assign", assign, methods=["POST"], name="feedback_assign"),
]
