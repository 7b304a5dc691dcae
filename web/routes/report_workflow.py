"""The workflow buttons of the report page: the reporter submits, the receiver accepts, returns
or reopens (with a reason), and everyone who may read the report sees its versions and events.

Every decision (who may, from which status, what blocks a submission) is ``core.reporting.workflow``'s;
this module turns the plain forms of ``_workflow.html`` into its calls. A submission names a
signature ``provider`` (``core.signatures.signing``: a .p12 file and its password, an uploaded .p7s, the unit's
seal) or none; the uploaded files and the password stay in this request's memory. Success redirects (303)
back to the report page with ``?done=…`` for the flash, so the buttons work without JavaScript; a
refusal answers 422 with the whole page, the blockers or the message at the reason field, and
nothing changed.
"""

from __future__ import annotations

from starlette.responses import RedirectResponse
from starlette.routing import Route

from core.signatures import files as signature_files
from core.signatures import signing
from core.db import run_db
from core.errors import BaocaoError, Forbidden, NotFound
from core.reporting import facade as reporting
from web.guards import require
from web.params import parse_int

DONE = ("submitted", "accepted", "returned", "reopened")
DONE_NOTICES = {d: f"report_workflow.done.{d}" for d in DONE}


def workflow_context(access, report, pm=None) -> dict:
    """What ``_workflow.html`` shows: the versions and their signatures, events, whether this person
    receives the report, whether they may submit it now and with which signature providers (the
    report page calls this inside its own DB work, with the app's plugin manager so that plugins'
    providers are offered too)."""
    can_submit = (report.form_version_id is not None and report.status in reporting.EDITABLE
                  and reporting.can_fill(access, report))
    if report.submitted_at is None:  # never submitted: no version, signature or event (workflow.submit)
        versions, events, signatures = [], [], {}
    else:
        versions, events = reporting.versions(report.id), reporting.report_events(report.id)
        signatures = signing.signatures_for(report.id)
    providers = signing.usable_providers(access, report, pm=pm) if can_submit else []
    # The seal's name is shown only in the form of a seal provider (core/report_signing/_sign.html).
    seal = signing.active_seal(report.unit_id) if any(getattr(p, "kind", "") == "seal" for p in providers) else None
    return {"wf_versions": versions, "wf_events": events,
            "wf_can_receive": reporting.can_receive(access, report),
            "wf_can_submit": can_submit,
            "wf_providers": providers,
            "wf_seal": seal,
            "wf_signatures": {vid: signing.signature_view(row) for vid, row in signatures.items()},
            "wf_problem_messages": signing.problem_messages,
            "wf_timeliness": reporting.timeliness(report)}


def _refused_page(access, report_id: int, *, refused=None, error=None, field: str = "", reason: str = "",
                  provider: str = "", pm=None) -> dict:
    from web.routes.report_entry import page_context

    context = page_context(access, report_id, pm=pm)
    context.update(wf_refused=refused, wf_error=error, wf_error_field=field, wf_reason=reason,
                   wf_provider=provider)
    return context


async def _refusal(request, report_id: int, **kwargs):
    from web.routes.report_entry import _page

    context = await run_db(_refused_page, request.state.access, report_id, pm=request.app.state.pm, **kwargs)
    return await _page(request, context, status_code=422)


def _back(report_id: int, done: str) -> RedirectResponse:
    return RedirectResponse(f"/reports/{report_id}?done={done}#workflow", status_code=303)


@require()
async def submit(request):
    access, report_id = request.state.access, request.path_params["id"]
    form = await request.form()
    revision = str(form.get("revision", "")).strip()
    if parse_int(revision, minimum=0) is None:
        return await _refusal(request, report_id, error=BaocaoError("report_workflow.error.stale_page"),
                              field="submit")
    settings = request.app.state.settings
    provider = str(form.get("provider", "")).strip()[:60]
    try:
        if provider:
            inputs = {"password": str(form.get("password", ""))}
            for name in ("p12", "p7s"):
                upload = form.get(name)
                if upload is not None and not isinstance(upload, str):
                    inputs[name] = await upload.read(signature_files.MAX_P7S_BYTES + 1)
            await form.close()
            await run_db(signing.sign_and_submit, access, report_id, revision=int(revision), provider=provider,
                         inputs=inputs, settings=settings, pm=request.app.state.pm)
            del inputs
        else:
            await run_db(reporting.submit, access, report_id, revision=int(revision), settings=settings)
    except reporting.SubmitRefused as exc:
        return await _refusal(request, report_id, refused=exc, field="submit", provider=provider)
    except (NotFound, Forbidden):
        raise
    except BaocaoError as exc:
        return await _refusal(request, report_id, error=exc, field="submit", provider=provider)
    return _back(report_id, "signed" if provider else "submitted")


def _receiver_action(name: str, call, done: str, *, with_reason: bool):
    @require()
    async def handler(request):
        access, report_id = request.state.access, request.path_params["id"]
        form = await request.form()
        reason = str(form.get("reason", ""))[:reporting.MAX_REASON + 100]
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
    Route("/reports/{id:int}/accept", _receiver_action("accept", reporting.accept, "accepted", with_reason=False),
          methods=["POST"], name="report_accept"),
    Route("/reports/{id:int}/return", _receiver_action("return", reporting.return_report, "returned", with_reason=True),
          methods=["POST"], name="report_return"),
    Route("/reports/{id:int}/reopen", _receiver_action("reopen", reporting.reopen, "reopened", with_reason=True),
          methods=["POST"], name="report_reopen"),
]
