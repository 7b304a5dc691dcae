"""The receiver's "Đôn đốc" button on the completeness page (issue 14 item 4).

``POST /completeness/remind`` (``regime``, ``period``, an optional ``message``) reminds every
unit of that regime and period still to send its report after the deadline, among those the
person receives from (``core.reporting.reminders.urge``): in the app and by e-mail. It answers
with the period's page again (303), whose action bar says how many units were reminded
(``reminded``), how many had been reminded already today (``already``), or what stopped it
(``remind_error``). A plain form: it works without JavaScript. A regime or period out of the
person's sight answers 404; one they see without receiving any of its late reports, 403.
"""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.responses import RedirectResponse
from starlette.routing import Route

from core import background
from core.errors import ValidationError
from core.reporting import facade as reporting
from web.background import follow
from web.guards import require

ERRORS = {"reminders.error.message": "message", "reminders.error.none_late": "none_late"}


def _text(form, name: str, limit: int) -> str:
    return " ".join(str(form.get(name, "") or "").split())[:limit]


@require()
async def remind(request):
    form = await request.form()
    regime, period = _text(form, "regime", 40), _text(form, "period", 25)
    # A little above the limit, so that a message too long is refused, not cut short silently.
    message = str(form.get("message", "") or "")[:reporting.REMINDER_MAX_MESSAGE + 100]
    back = {"regime": regime, "period": period}
    status = _text(form, "status", 20)
    if status in reporting.COMPLETENESS_STATES:  # back to the list the receiver acted on ("Quá hạn")
        back["status"] = status
    access = request.state.access

    def work(progress) -> background.Outcome:
        progress.phase("background.phase.reminding")
        result = reporting.urge_late_units(access, regime, period, message, progress=progress)
        url = "/completeness?" + urlencode({**back, "reminded": result.reminded, "already": result.already})
        return background.Outcome(url=url + "#completeness-actions", summary="background.summary.remind",
                                  summary_params={"reminded": result.reminded, "already": result.already})

    try:
        # Many late units (a province's communes) take a while: past a second the receiver follows
        # the round on its own page (web.background).
        return await follow(request, kind="reminders.urge", title="background.title.remind", work=work,
                            answer=lambda outcome: RedirectResponse(outcome.url, status_code=303),
                            back_url="/completeness?" + urlencode(back))
    except ValidationError as exc:
        key = next(iter(exc.errors.values()), "")
        back["remind_error"] = ERRORS.get(key, "none_late")
    return RedirectResponse("/completeness?" + urlencode(back) + "#completeness-actions", status_code=303)


ROUTES = [
    Route("/completeness/remind", remind, methods=["POST"], name="completeness_remind"),
]
