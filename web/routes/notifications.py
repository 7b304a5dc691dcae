"""The notifications page, the bell in the header, and e-mail delivery right after a request.

``/notifications`` lists the person's notifications, newest first, unread ones marked; opening one
(a small form, so the state change carries the CSRF token) marks it read and goes to the report.
The bell is a fragment the header loads with htmx (``/notifications/bell``, one COUNT query): the
page itself is rendered without touching the database for it, and without JavaScript the bell is
still a link to the page.

``DeliverMailAfterRequest`` is the ASGI middleware that makes e-mail prompt: around every request
it opens ``mailer.sending(settings)``, so a transition queues its e-mails in its own transaction;
when something was queued, it runs ``mailer.deliver_pending`` in a worker thread after the inner
application has returned, i.e. after the transaction committed and the response was sent. The
person does not wait for the mail server, and a failure there only leaves the mail for the worker's
next minute.
"""

from __future__ import annotations

from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from core import mailer
from core.db import run_db
from core.errors import ValidationError
from core.reporting import facade as reporting
from web.guards import AUTHENTICATED, require
from web.templating import render

DONE = {"read": "notify.done.read", "all_read": "notify.done.all_read", "email_saved": "notify.done.email_saved",
        "email_removed": "notify.done.email_removed"}


class DeliverMailAfterRequest:
    """Queue e-mail during a request; deliver it once the request is over (see the module docstring)."""

    def __init__(self, app, settings):
        self.app, self.settings = app, settings

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not self.settings.smtp_host:
            return await self.app(scope, receive, send)
        with mailer.sending(self.settings) as context:
            await self.app(scope, receive, send)
        if context.queued:
            await run_db(mailer.deliver_pending, self.settings)  # never raises


def _page_context(user_id: int, lang: str) -> dict:
    return {"items": reporting.notification_inbox(user_id, lang), "unread": reporting.unread_count(user_id),
            "email": reporting.email_of(user_id)}


async def _page(request, *, status_code: int = 200, **extra):
    actor = request.state.actor
    context = await run_db(_page_context, actor.id, request.state.lang)
    context.update(done=DONE.get(request.query_params.get("done", "")), errors={}, email_form=context["email"],
                   mail_on=bool(request.app.state.settings.smtp_host), limit=reporting.NOTIFICATION_PAGE_SIZE)
    context.update(extra)
    return await render(request, "core/notifications/list.html", context,
                        partial="core/notifications/_list.html", status_code=status_code)


@require()
async def notifications_page(request):
    return await _page(request)


async def bell(request):
    # Not ``require()``: its redirects (to the password change, to the 2FA set-up) answered to
    # the header's htmx load would reload the very page that loads the bell, over and over. The
    # count alone reveals nothing; without a login there is no bell to fill in (204: no swap).
    actor = request.state.actor
    if actor is None:
        return Response(status_code=204)
    count = await run_db(reporting.unread_count, actor.id)
    # ``menu`` given: a fragment needs no menu (``render`` would read it for a "full page").
    return await render(request, "core/notifications/_bell.html", {"count": count, "menu": []})


bell.__baocao_permission__ = AUTHENTICATED  # a logged-in user, as require() would declare


def _back(request, done: str):
    if request.state.htmx.wants_partial:
        return None
    return RedirectResponse(f"/notifications?done={done}", status_code=303)


@require()
async def open_notification(request):
    notification = await run_db(reporting.mark_notification_read, request.state.actor.id, request.path_params["id"])
    return RedirectResponse(reporting.notification_link(notification), status_code=303)


@require()
async def read_one(request):
    await run_db(reporting.mark_notification_read, request.state.actor.id, request.path_params["id"])
    return _back(request, "read") or await _page(request, done=DONE["read"])


@require()
async def read_all(request):
    await run_db(reporting.mark_all_notifications_read, request.state.actor.id)
    return _back(request, "all_read") or await _page(request, done=DONE["all_read"])


@require()
async def set_email(request):
    form = await request.form()
    address = str(form.get("email", ""))[:reporting.MAX_EMAIL + 50]
    try:
        saved = await run_db(reporting.set_email, request.state.actor, address)
    except ValidationError as exc:
        return await _page(request, status_code=422, errors=exc.errors, email_form=address)
    done = "email_saved" if saved else "email_removed"
    return _back(request, done) or await _page(request, done=DONE[done])


ROUTES = [
    Route("/notifications", notifications_page, name="notifications"),
    Route("/notifications/bell", bell, name="notifications_bell"),
    Route("/notifications/{id:int}/open", open_notification, methods=["POST"], name="notification_open"),
    Route("/notifications/{id:int}/read", read_one, methods=["POST"], name="notification_read"),
    Route("/notifications/read-all", read_all, methods=["POST"], name="notifications_read_all"),
    Route("/notifications/email", set_email, methods=["POST"], name="notifications_email"),
]
