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

from core.db import run_db
from core.errors import ValidationError
from core.reporting import facade as reporting
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
    try:
        result = await run_db(reporting.urge_late_units, request.state.access, regime, period, message)
    except ValidationError as exc:
        key = next(iter(exc.errors.values()), "")
        back["remind_error"] = ERRORS.get(key, "none_late")
    else:
        back.update(reminded=result.reminded, already=result.already)
    return RedirectResponse("/completeness?" + urlencode(back) + "#completeness-actions", status_code=303)


ROUTES = [
    Route("/completeness/remind", remind, methods=["POST"], name="completeness_remind"),
]
