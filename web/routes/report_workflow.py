"""The workflow buttons of the report page: the reporter submits, the receiver accepts, returns
or reopens (with a reason), and everyone who may read the report sees its versions and events.

Every decision (who may, from which status, what blocks a submission) is ``core.report_workflow``'s;
this module turns the plain forms of ``_workflow.html`` into its calls. Success redirects (303)
back to the report page with ``?done=…`` for the flash, so the buttons work without JavaScript; a
refusal answers 422 with the whole page, the blockers or the message at the reason field, and
nothing changed.
"""

from __future__ import annotations

from starlette.responses import RedirectResponse
from starlette.routing import Route

from core import report_data as rd
from core import report_workflow as wf
from core.db import run_db
from core.errors import BaocaoError, Forbidden, NotFound
from web.guards import require

DONE = ("submitted", "accepted", "returned", "reopened")
DONE_NOTICES = {d: f"report_workflow.done.{d}" for d in DONE}


def workflow_context(access, report) -> dict:
    """What ``_workflow.html`` shows: the versions, events, whether this person receives the report
    and whether they may submit it now (the report page calls this inside its own DB work)."""
    return {"wf_versions": wf.versions(report.id), "wf_events": wf.events(report.id),
            "wf_can_receive": wf.can_receive(access, report),
            "wf_can_submit": (report.form_version_id is not None and report.status in rd.EDITABLE
                              and rd.can_fill(access, report)),
            "wf_timeliness": wf.timeliness(report)}


def _refused_page(access, report_id: int, *, refused=None, error=None, field: str = "", reason: str = "") -> dict:
    from web.routes.report_entry import page_context

    context = page_context(access, report_id)
    if "wf_versions" not in context:  # the page context may already carry it
        context.update(workflow_context(access, context["report"]))
    context.update(wf_refused=refused, wf_error=error, wf_error_field=field, wf_reason=reason)
    return context


async def _refusal(request, report_id: int, **kwargs):
    from web.routes.report_entry import _page

    context = await run_db(_refused_page, request.state.access, report_id, **kwargs)
    return await _page(request, context, status_code=422)


def _back(report_id: int, done: str) -> RedirectResponse:
    return RedirectResponse(f"/reports/{report_id}?done={done}#workflow", status_code=303)


@require()
async def submit(request):
    access, report_id = request.state.access, request.path_params["id"]
    form = await request.form()
    revision = str(form.get("revision", "")).strip()
    if not revision.isdigit():
        return await _refusal(request, report_id, error=BaocaoError("report_workflow.error.stale_page"),
                              field="submit")
    try:
        await run_db(wf.submit, access, report_id, revision=int(revision))
    except wf.SubmitRefused as exc:
        return await _refusal(request, report_id, refused=exc, field="submit")
    except (NotFound, Forbidden):
        raise
    except BaocaoError as exc:
        return await _refusal(request, report_id, error=exc, field="submit")
    return _back(report_id, "submitted")


def _receiver_action(name: str, call, done: str, *, with_reason: bool):
    @require()
    async def handler(request):
        access, report_id = request.state.access, request.path_params["id"]
        form = await request.form()
        reason = str(form.get("reason", ""))[:wf.MAX_REASON + 100]
        try:
            if with_reason:
                await run_db(call, access, report_id, reason)
            else:
                await run_db(call, access, report_id)
        except (NotFound, Forbidden):
            raise
        except BaocaoError as exc:
            return await _refusal(request, report_id, error=exc, field=name, reason=reason)
        return _back(report_id, done)

    handler.__name__ = f"report_{name}"
    return handler


ROUTES = [
    Route("/reports/{id:int}/submit", submit, methods=["POST"], name="report_submit"),
    Route("/reports/{id:int}/accept", _receiver_action("accept", wf.accept, "accepted", with_reason=False),
          methods=["POST"], name="report_accept"),
    Route("/reports/{id:int}/return", _receiver_action("return", wf.return_report, "returned", with_reason=True),
          methods=["POST"], name="report_return"),
    Route("/reports/{id:int}/reopen", _receiver_action("reopen", wf.reopen, "reopened", with_reason=True),
          methods=["POST"], name="report_reopen"),
]
