"""The socio-economic overview screen: a month's figures of the province against the same month
last year, the year to date and the year's plan — what a leader opens first.

The page needs the plugin's ``kinhte_xahoi.overview.view`` (the built-in roles that read the
catalogue carry it); figures are read for one unit the user may see (``core.unit.view``); which months exist comes
from the figures themselves, so the page is current the moment a figure is written.
"""

from __future__ import annotations

import datetime as dt

from core.api import Unit, figures_latest_period, period_window, run_db, today, unit_chain
from web.api import HTTPException, Route, render, require

from . import OVERVIEW as PERMISSION
from .overview import monthly_overview

MONTHS_SHOWN = 24


def _month_choices(latest: tuple[int, int]) -> list[tuple[int, int]]:
    year, month = latest
    out = []
    for _ in range(MONTHS_SHOWN):
        out.append((year, month))
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return out


def _visible(access, unit: Unit | None) -> Unit | None:
    return unit if unit is not None and access.allowed("core.unit.view", unit_chain(unit.id)) else None


def _default_unit(access, own_unit_id: int) -> Unit | None:
    """The province when the user may see it (the figures are the province's), else their own unit."""
    province = Unit.select().where((Unit.kind == "province") & Unit.valid_to.is_null()).first()
    return _visible(access, province) or Unit.get_or_none(Unit.id == own_unit_id)


def _page(access, own_unit_id: int, unit_code: str, period: str, today: dt.date):
    target = _visible(access, Unit.get_or_none(Unit.code == unit_code)) if unit_code else _default_unit(access, own_unit_id)
    if target is None:
        return None
    latest = figures_latest_period(target.id, "monthly", today=today)
    context = {"target": target, "rows": [], "choices": [], "year": None, "month": None, "window": None}
    if latest is None:
        return context
    choices = _month_choices(latest)
    year, month = latest
    if period:
        try:
            y, m = (int(p) for p in period.split("-"))
        except ValueError:
            y, m = 0, 0
        if (y, m) not in choices:
            raise HTTPException(404)
        year, month = y, m
    context.update(rows=monthly_overview(target.id, year, month), choices=choices, year=year, month=month,
                   window=period_window("monthly", year, month))
    return context


@require(PERMISSION)
async def overview(request):
    unit_code = request.query_params.get("unit", "").strip()[:40]
    period = request.query_params.get("period", "").strip()[:7]
    context = await run_db(_page, request.state.access, request.state.actor.unit_id, unit_code, period,
                           today())
    if context is None:
        raise HTTPException(404)
    return await render(request, "kinhte_xahoi/overview.html", context, partial="kinhte_xahoi/_overview.html")


ROUTES = [Route("/", overview, methods=["GET"], name="overview")]
