"""The working-day calendar screen ``/admin/calendar`` (``core.calendar.admin``).

Each year the Government moves working days around the public holidays: extra days off (Tết
bridges) and Saturdays worked in exchange, by a notice of the Prime Minister (or of the Ministry of
Home Affairs for the public sector). The administrator lists them per year, adds one with its legal
basis and takes one back saying why; the days from the settings are shown beside them, read-only.
Every deadline is computed with this calendar (``core.regimes.workdays.work_calendar``).

All decisions are ``core.regimes.workdays``'s (storing a day) and
``core.reporting.calendar_changes``'s (the deadlines it moves). Success redirects (303) back to the year with ``?done=…``;
a refusal answers 422 with the page and the message at the field.
"""

from __future__ import annotations

import datetime as dt
import re

from starlette.exceptions import HTTPException
from starlette.responses import RedirectResponse
from starlette.routing import Route

from core import clock
from core.regimes import workdays
from core.db import run_db
from core.errors import BaocaoError, NotFound, ValidationError
from core.reporting import facade as reporting
from web.guards import require
from web.templating import render

PERMISSION = workdays.PERMISSION
DONE = {d: f"calendar.done.{d}" for d in ("added", "removed")}
YEARS = (2000, 2100)
MAX_ID = 2**63 - 1
_YEAR = re.compile(r"\d{4}", re.ASCII)


def _year(value, default: int) -> int:
    year = int(value) if isinstance(value, str) and _YEAR.fullmatch(value) else default
    return year if YEARS[0] <= year <= YEARS[1] else default


def _day(value: str):
    try:
        return dt.date.fromisoformat(value) if value and len(value) <= 10 else None
    except ValueError:
        return None


def _errors(exc: BaocaoError) -> dict:
    if isinstance(exc, ValidationError):
        return {field: {"key": key, "params": exc.params} for field, key in exc.errors.items()}
    return {"day": {"key": exc.key, "params": exc.params}}


def _context(year: int, settings, lang: str, **extra) -> dict:
    return {"year": year, "entries": workdays.entries(year, settings), "today": clock.today(),
            "holidays": workdays.public_holidays(year, lang), "years": YEARS, "kinds": workdays.KINDS,
            "reason_max": workdays.REASON_MAX, "errors": {}, "form": {}, **extra}


async def _page(request, year: int, status_code: int = 200, **extra):
    context = await run_db(_context, year, request.app.state.settings, request.state.lang, **extra)
    return await render(request, "core/calendar/index.html", context, status_code=status_code)


def _back(request, year: int, done: str) -> RedirectResponse:
    return RedirectResponse(request.url_for("work_calendar").path + f"?year={year}&done={done}", status_code=303)


@require(PERMISSION)
async def calendar_page(request):
    year = _year(request.query_params.get("year"), clock.today().year)
    return await _page(request, year, done=DONE.get(request.query_params.get("done") or ""))


@require(PERMISSION)
async def calendar_add(request):
    form = await request.form()
    raw_day, kind = str(form.get("day", ""))[:20], str(form.get("kind", ""))[:20]
    reason = str(form.get("reason", ""))[:workdays.REASON_MAX * 2]
    day = _day(raw_day)
    year = day.year if day and YEARS[0] <= day.year <= YEARS[1] else _year(str(form.get("year", "")),
                                                                          clock.today().year)
    try:
        await run_db(reporting.add_calendar_day, request.state.access, day, kind, reason,
                     settings=request.app.state.settings)
    except BaocaoError as exc:
        return await _page(request, year, 422, errors=_errors(exc),
                           form={"day": raw_day, "kind": kind, "reason": reason})
    return _back(request, year, "added")


@require(PERMISSION)
async def calendar_remove(request):
    form = await request.form()
    reason = str(form.get("reason", ""))[:workdays.REASON_MAX * 2]
    year = _year(str(form.get("year", "")), clock.today().year)
    entry_id = request.path_params["entry_id"]
    if entry_id > MAX_ID:  # beyond what the database stores: no such day (never an overflow)
        raise HTTPException(404)
    try:
        removed = await run_db(reporting.remove_calendar_day, request.state.access, entry_id, reason,
                               settings=request.app.state.settings)
    except NotFound:
        raise
    except BaocaoError as exc:
        return await _page(request, year, 422, errors={f"remove-{entry_id}": _errors(exc).get("reason")})
    return _back(request, removed.day.year, "removed")


ROUTES = [
    Route("/admin/calendar", calendar_page, methods=["GET"], name="work_calendar"),
    Route("/admin/calendar", calendar_add, methods=["POST"], name="work_calendar_add"),
    Route("/admin/calendar/{entry_id:int}/remove", calendar_remove, methods=["POST"], name="work_calendar_remove"),
]
