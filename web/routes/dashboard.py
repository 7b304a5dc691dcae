"""A leader's dashboard (``/dashboard``, issue 14 item 5): the indicators a person follows, for one unit,
each as three charts with their numbers — its course over the last 13 months (5 quarters, 5 years)
with the plan and the same period last year, the subordinate units side by side in the latest
period, and the figure against its plan.

The unit is the user's own, or ``?unit=<code>`` for one they may see (``core.unit.view`` at that unit;
any other answers 404, as a unit that does not exist). Figures are read only through the figures
query (``core.catalogue.figures.query``, ``core.api.figures``): whatever publishes to that store —
accepted reports, consolidations, a plugin's loads — shows here on the next page load. Which
indicators: the person's choice (``core.dashboard``, up to six, ``/dashboard/indicators``), else the
first six that have figures at the unit. Each chart's numbers are in a table under it and in an
Excel file (``/dashboard/export``).

Above them, how the unit's reports are coming in: a gauge per regime of the reports sent out of
those due in the regime's latest due period, for the unit and the units under it, counted by the
completeness view (``core.reporting.facade``: ``completeness_overview``, ``completeness_period``)
within what the person may count there.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from urllib.parse import quote, urlencode

from starlette.exceptions import HTTPException
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from core import clock, dashboard as choices
from core.catalogue import figures
from core.catalogue.indicators import VALUE_KINDS, Indicator, IndicatorGroup
from core.db import run_db, run_db_reading
from core.errors import ValidationError
from core.i18n import format_datetime
from core.models import Unit
from core.regimes import periods
from core.reporting import facade as reporting
from core.units import tree
from web import charts
from web.guards import require
from web.templating import render

PERMISSION = "core.unit.view"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# How many periods a course shows, per frequency, finest first: the first with figures is used.
WINDOW = {periods.MONTHLY: 13, periods.QUARTERLY: 5, periods.ANNUAL: 5}
MEASURED = ("official", "actual", "estimate")  # the figure of a period: the most final kind given
CHARTS = ("series", "units", "plan")
COMPLETENESS = "completeness"
MAX_GAUGES = 6
SENT_STATES = ("on_time", "late", "accepted")  # a report in the receiver's hands (completeness' words)
MAX_CODE = 40
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def _t(catalog, lang):
    return lambda key, **params: catalog.gettext(lang, key, **params)


# -- periods ------------------------------------------------------------------------------------------

def current_period(frequency: str, today) -> tuple[int, int]:
    """The period whose cut-off window holds ``today`` (Decree 09/2019 windows: after the 14th of
    March, "April" is current)."""
    for year in (today.year, today.year + 1):
        for window in periods.windows(frequency, year):
            if window.start <= today <= window.end:
                return year, window.index
    return today.year, periods.periods_per_year(frequency)  # not reached: the windows tile the year


def periods_back(frequency: str, year: int, index: int, count: int) -> list[tuple[int, int]]:
    """``count`` periods ending with (year, index), oldest first."""
    per = periods.periods_per_year(frequency)
    last = year * per + index - 1
    return [(n // per, n % per + 1) for n in range(last - count + 1, last + 1)]


def short_label(frequency: str, year: int, index: int, t) -> str:
    if frequency == periods.MONTHLY:
        months = t("dashboard.period.months").split(",")
        # The month as each language abbreviates it: "T3/2026", "Mar 2026".
        return t("dashboard.period.short.monthly", year=year, mon=months[index - 1] if len(months) == 12 else index)
    if frequency == periods.QUARTERLY:
        return t("dashboard.period.short.quarterly", index=index, year=year)
    return str(year)


# -- the figures of one unit ----------------------------------------------------------------------------

def _best(kinds: dict | None):
    """(kind, value) of the most final figure of a period, or (None, None)."""
    for kind in MEASURED:
        if kinds and kinds.get(kind) is not None:
            return kind, kinds[kind]
    return None, None


@dataclass
class Panel:
    """One indicator on the dashboard: its three charts (each may say it has no data)."""

    indicator: Indicator
    frequency: str | None
    series: charts.Chart
    units: charts.Chart
    plan: charts.Chart
    source: str = ""  # where the latest figure comes from, when a live consolidation made it

    def chart(self, name: str) -> charts.Chart:
        return getattr(self, name)


@dataclass
class Gauge:
    """One regime's reporting rate at the unit: its gauge and where its details are."""

    regime: str
    period: str  # the period's key, "start/end"
    chart: charts.Chart

    @property
    def href(self) -> str:
        return "/completeness?" + urlencode({"regime": self.regime, "period": self.period})


@dataclass
class Dashboard:
    target: Unit
    parent: Unit | None
    children: list
    panels: list
    codes: list
    chosen: bool  # the person chose these indicators (else the first with figures)
    today: object
    gauges: list = dataclasses.field(default_factory=list)
    more_regimes: int = 0  # regimes with reports due beyond the gauges shown


def _windows(today) -> dict[str, list[tuple[int, int]]]:
    return {f: periods_back(f, *current_period(f, today), count) for f, count in WINDOW.items()}


def _all_periods(windows, with_last_year: bool) -> list[tuple[str, int, int]]:
    keys = []
    for frequency, window in windows.items():
        keys += [(frequency, y, i) for y, i in window]
        if with_last_year:
            keys += [(frequency, y - 1, i) for y, i in window]
    return list(dict.fromkeys(k for k in keys if periods.MIN_YEAR <= k[1] <= periods.MAX_YEAR))


def _read(codes, unit_ids, keys, kinds) -> dict:
    """{(code, unit id, frequency, year, index): {kind: value}} through the figures query, split so
    that no question passes its bound."""
    out: dict = {}
    if not codes or not unit_ids or not keys:
        return out
    per_unit = len(codes) * len(keys) * len(kinds)
    chunk = max(1, min(figures.MAX_LIST, figures.MAX_FIGURES // max(per_unit, 1)))
    for start in range(0, len(unit_ids), chunk):
        for row in figures.query(codes, unit_ids[start:start + chunk], keys, kinds=kinds):
            if row.value is not None and not isinstance(row.value, str):
                out.setdefault((row.code, row.unit_id, row.frequency, row.year, row.index), {})[row.kind] = row.value
    return out


def available_codes(unit_id: int, today, *, limit: int | None = None) -> list[str]:
    """Codes of current number indicators with any figure at the unit in the dashboard's windows,
    in code order (asked through the figures query, a slice of the catalogue at a time)."""
    catalogue = [i.code for i in Indicator.select(Indicator.code)
                 .where(Indicator.is_current & (Indicator.value_type != "text")).order_by(Indicator.code)]
    keys = _all_periods(_windows(today), with_last_year=False)
    step = max(1, min(figures.MAX_LIST, figures.MAX_FIGURES // (len(keys) * len(VALUE_KINDS))))
    found: list[str] = []
    for start in range(0, len(catalogue), step):
        rows = figures.query(catalogue[start:start + step], [unit_id], keys, kinds=VALUE_KINDS)
        found += [c for c in dict.fromkeys(r.code for r in rows if r.value is not None)]
        if limit and len(found) >= limit:
            return found[:limit]
    return found


def visible_unit(access, code: str) -> Unit | None:
    unit = Unit.get_or_none(Unit.code == code) if code else None
    if unit is None or not access.allowed_at(PERMISSION, unit.id):
        return None
    return unit


def _target(access, actor, unit_code: str) -> Unit | None:
    if unit_code:
        return visible_unit(access, unit_code)
    unit = Unit.get_or_none(Unit.id == actor.unit_id)
    return unit if unit is not None and access.allowed_at(PERMISSION, unit.id) else None


def _decimals(indicator: Indicator) -> int | None:
    return 0 if indicator.value_type == "integer" else None


SOURCE_NAMES = 5  # the units not counted yet, named up to this many


def source_line(runs, period_label: str, t) -> str:
    """Which units a live consolidation counted in a unit's figures for a period, and which of
    those it receives from it has not (yet): the figures are partial until every report is in."""
    counted = {c.unit_id for run in runs for c in run.counted}
    missing = {}
    for run in runs:
        missing.update({m.unit_id: m.unit_name for m in run.missing if m.unit_id not in counted})
    if not counted and not missing:
        return ""
    line = t("dashboard.source", period=period_label, counted=len(counted))
    if missing:
        names = sorted(missing.values())
        shown = ", ".join(names[:SOURCE_NAMES])
        if len(names) > SOURCE_NAMES:
            shown = t("dashboard.source.more", names=shown, more=len(names) - SOURCE_NAMES)
        line += " " + t("dashboard.source.missing", missing=len(names), names=shown)
    return line


def _panel(indicator, target, children, windows, own, kids, t, lang, link, sources=None) -> Panel:
    code, uom, decimals = indicator.code, indicator.unit_of_measure or "", _decimals(indicator)

    def own_best(frequency, year, index):
        return _best(own.get((code, target.id, frequency, year, index)))

    def own_kind(frequency, year, index, kind):
        return (own.get((code, target.id, frequency, year, index)) or {}).get(kind)

    def kid_best(unit_id, frequency, year, index):
        return _best(kids.get((code, unit_id, frequency, year, index)))

    frequency = next((f for f, window in windows.items()
                      if any(own_best(f, y, i)[1] is not None for y, i in window)
                      or any(kid_best(c.id, f, y, i)[1] is not None for c in children for y, i in window)), None)
    if frequency is None:
        frequency = next((f for f, window in windows.items()
                          if any(own_kind(f, y, i, "plan") is not None for y, i in window)), None)
    empty = t("dashboard.chart.empty")
    if frequency is None:
        none = charts.line_chart([], [], title=t("dashboard.series.title.none"), lang=lang, empty=empty)
        return Panel(indicator, None, none,
                     charts.bar_chart([], title=t("dashboard.units.title.none"), lang=lang, empty=empty),
                     charts.attainment_chart(None, None, title=t("dashboard.plan.title"), lang=lang, empty=empty))
    window = windows[frequency]
    short = [short_label(frequency, y, i, t) for y, i in window]
    long = [periods.window(frequency, y, i).label(lang) for y, i in window]
    actual = [own_best(frequency, y, i) for y, i in window]
    series = [
        charts.Series(t("dashboard.series.actual"), tuple(v for _, v in actual), "actual",
                      tuple(t("dashboard.series.estimate") if k == "estimate" else "" for k, _ in actual)),
        charts.Series(t("dashboard.series.plan"), tuple(own_kind(frequency, y, i, "plan") for y, i in window), "plan"),
        charts.Series(t("dashboard.series.last_year"),
                      tuple(own_best(frequency, y - 1, i)[1] for y, i in window), "last_year"),
    ]
    line = charts.line_chart(short, series, title=t(f"dashboard.series.title.{frequency}", count=len(window)),
                             lang=lang, decimals=decimals, unit=uom, category_labels=long,
                             category_header=t("dashboard.chart.period"), empty=empty,
                             chart_id=f"chart-{code}-series")

    # The period the subordinate units are compared in: the latest one most of them have a figure
    # for (at least half as many as the best period of the window), so that one unit's early
    # estimate for the month now open does not hide the month every unit sent. Without
    # subordinate figures: the latest period the unit itself has one for.
    reported = {(y, i): sum(kid_best(c.id, frequency, y, i)[1] is not None for c in children) for y, i in window}
    most = max(reported.values(), default=0)
    latest = next(((y, i) for y, i in reversed(window) if most and reported[(y, i)] * 2 >= most), None) or \
        next(((y, i) for y, i in reversed(window) if own_best(frequency, y, i)[1] is not None), None)
    if not children:
        units = charts.bar_chart([], title=t("dashboard.units.title.none"), lang=lang,
                                 empty=t("dashboard.units.no_children"))
    elif latest is None:
        units = charts.bar_chart([], title=t("dashboard.units.title.none"), lang=lang, empty=empty)
    else:
        values = {c.id: kid_best(c.id, frequency, *latest)[1] for c in children}
        reporting_kinds = {c.kind for c in children if values[c.id] is not None}
        items = [(c.name, values[c.id], link(c)) for c in children
                 if values[c.id] is not None or c.kind in reporting_kinds]
        units = charts.bar_chart(items, title=t("dashboard.units.title",
                                                period=periods.window(frequency, *latest).label(lang)),
                                 lang=lang, decimals=decimals, unit=uom, label_header=t("dashboard.units.unit"),
                                 value_header=t("dashboard.series.actual"), empty=t("dashboard.units.empty"),
                                 chart_id=f"chart-{code}-units")
    plan = _attainment(indicator, frequency, window, own_best, own_kind, t, lang, decimals, uom)
    source = ""
    if sources is not None and latest is not None and own_best(frequency, *latest)[1] is not None:
        source = sources(frequency, *latest)
    return Panel(indicator, frequency, line, units, plan, source)


def _attainment(indicator, frequency, window, own_best, own_kind, t, lang, decimals, uom) -> charts.Chart:
    """The latest figure of the unit against its plan: the period's own plan; else the year's plan,
    against the total since the start of the year for an additive indicator (every period of it
    given), against the latest figure for the others (a rate, an index)."""
    title = t("dashboard.plan.title")

    def plan_chart(value, plan, **options):
        return charts.attainment_chart(value, plan, title=title, lang=lang, chart_id=f"chart-{indicator.code}-plan",
                                       **options)

    latest = next(((y, i) for y, i in reversed(window) if own_best(frequency, y, i)[1] is not None), None)
    if latest is None:
        return plan_chart(None, None, empty=t("dashboard.chart.empty"))
    year, index = latest
    value = own_best(frequency, year, index)[1]
    label = periods.window(frequency, year, index).label(lang)
    plan = own_kind(frequency, year, index, "plan")
    if plan is not None:
        return plan_chart(value, plan, decimals=decimals, unit=uom, period=t("dashboard.plan.period", period=label))
    year_plan = own_kind(periods.ANNUAL, year, 1, "plan") if frequency != periods.ANNUAL else None
    if year_plan is None:
        return plan_chart(value, None)
    if indicator.aggregation != "sum":
        return plan_chart(value, year_plan, decimals=decimals, unit=uom,
                          period=t("dashboard.plan.latest_vs_year", period=label, year=year))
    to_date = [own_best(frequency, year, i)[1] for i in range(1, index + 1)]
    if any(v is None for v in to_date):
        missing = [periods.window(frequency, year, i).label(lang) for i, v in enumerate(to_date, start=1) if v is None]
        return plan_chart(None, year_plan, empty=t("dashboard.plan.incomplete", periods=", ".join(missing)))
    first = periods.window(frequency, year, 1).label(lang)
    return plan_chart(sum(to_date), year_plan, decimals=decimals, unit=uom, value_label=t("dashboard.plan.to_date"),
                      plan_label=t("dashboard.plan.year_plan", year=year),
                      period=t("dashboard.plan.to_date_vs_year", first=first, period=label, year=year))


def completeness_gauges(access, target: Unit, today, t, lang, *, regime: str = "") -> tuple[list[Gauge], int]:
    """A gauge per regime (its latest due period, as the completeness view chooses it) of the
    reports of ``target`` and the units under it: sent (on time, late or accepted) of those due.
    Regimes with nothing due there are left out; at most ``MAX_GAUGES``, and how many more."""
    subtree = set(tree.subtree_ids(target.id))
    gauges = []
    for line in reporting.completeness_overview(access, today=today):
        if regime and line.regime.code != regime:
            continue
        filters = reporting.CompletenessFilters(regime=line.regime.code, period=line.period.key)
        rows = [r for r in reporting.completeness_period(access, filters, today=today, limit=None).rows
                if r.unit_id in subtree]
        if not rows:
            continue
        sent = sum(r.state in SENT_STATES for r in rows)
        label = line.period.label(lang)
        chart = charts.gauge_chart(sent, len(rows), title=line.regime.name, lang=lang,
                                   done_label=t("dashboard.completeness.sent"),
                                   total_label=t("dashboard.completeness.due"), row_label=label,
                                   note=t("dashboard.completeness.note", period=label, sent=sent, due=len(rows)),
                                   chart_id=f"chart-completeness-{len(gauges) + 1}")
        gauges.append(Gauge(line.regime.code, line.period.key, chart))
    return gauges[:MAX_GAUGES], max(0, len(gauges) - MAX_GAUGES)


def build(access, actor, unit_code: str, lang: str, catalog, today, *, only: str | None = None,
          with_gauges: bool = True) -> Dashboard | None:
    """The dashboard of the unit ``unit_code`` (the actor's own when empty), or None when the actor
    may not see it. ``only``: one indicator code (an export), which need not be among those chosen."""
    target = _target(access, actor, unit_code)
    if target is None:
        return None
    t = _t(catalog, lang)
    chosen = choices.chosen(actor.id)
    if only is not None:
        codes = choices.chartable_codes([only])
    elif chosen is not None:
        codes = chosen
    else:
        codes = available_codes(target.id, today, limit=choices.MAX_CHOSEN)
    indicators = {i.code: i for i in Indicator.select().where(Indicator.code.in_(codes or [""]) & Indicator.is_current)}
    codes = [c for c in codes if c in indicators]
    children = sorted(Unit.select().where((Unit.parent == target.id) & tree.valid_at(today)), key=tree.sort_key)
    parent = None
    if target.parent_id is not None:
        parent = Unit.get_or_none(Unit.id == target.parent_id)
        if parent is not None and not access.allowed_at(PERMISSION, parent.id):
            parent = None
    windows = _windows(today)
    own = _read(codes, [target.id], _all_periods(windows, with_last_year=True), VALUE_KINDS)
    kids = _read(codes, [c.id for c in children], _all_periods(windows, with_last_year=False), MEASURED)

    def link(unit):
        return f"/dashboard?unit={quote(unit.code, safe='')}"

    seen: dict = {}

    def sources(frequency, year, index):
        # The same for every indicator of a period: the consolidations at the unit (reading them is
        # three indexed queries each, whatever the number of units below).
        key = (frequency, year, index)
        if key not in seen:
            seen[key] = source_line(reporting.consolidation_provenance(target.id, frequency, year, index),
                                    periods.window(frequency, year, index).label(lang), t)
        return seen[key]

    panels = [_panel(indicators[c], target, children, windows, own, kids, t, lang, link, sources) for c in codes]
    gauges, more = completeness_gauges(access, target, today, t, lang) if with_gauges else ([], 0)
    return Dashboard(target, parent, children, panels, codes, chosen is not None, today, gauges, more)


# -- pages ------------------------------------------------------------------------------------------------

def _unit_code(request) -> str:
    return request.query_params.get("unit", "").strip()[:MAX_CODE]


@require(PERMISSION)
async def dashboard(request):
    # Read-only, and may be seconds old: from the replica when one is set (docs/topology.md).
    board = await run_db_reading(request.app.state.settings.database_replica_url, build, request.state.access,
                                 request.state.actor, _unit_code(request), request.state.lang,
                                 request.app.state.registry.catalog, clock.today())
    if board is None:
        raise HTTPException(404)
    return await render(request, "core/dashboard/index.html", {"board": board, "charts": CHARTS,
                                                               "max_chosen": choices.MAX_CHOSEN})


def _export(access, actor, unit_code, code, chart, regime, lang, catalog, today):
    """(content, file name) of the Excel file of one chart (``code`` and ``chart``; a regime's gauge:
    ``chart=completeness`` and ``regime``), or of the whole dashboard; None when there is nothing."""
    gauges_only = chart == COMPLETENESS
    board = build(access, actor, unit_code, lang, catalog, today, only=code or ("" if gauges_only else None),
                  with_gauges=not chart or gauges_only)
    if board is None:
        return None
    t = _t(catalog, lang)
    tables = []
    for gauge in board.gauges:
        if not regime or gauge.regime == regime:
            tables.append(gauge.chart.table)
    for panel in board.panels:
        for name in ([chart] if chart else CHARTS):
            table = panel.chart(name).table
            if table is not None and table.rows:
                tables.append(dataclasses.replace(table, caption=f"{panel.indicator.code} {table.caption}"))
    if not tables:
        return None
    lines = [(t("dashboard.export.unit"), f"{board.target.name} ({board.target.code})")]
    if code and board.panels:
        indicator = board.panels[0].indicator
        lines.append((t("dashboard.export.indicator"), f"{indicator.code} {indicator.name}"
                      + (f" ({indicator.unit_of_measure})" if indicator.unit_of_measure else "")))
    lines.append((t("dashboard.export.by"), f"{actor.full_name} ({actor.username})"))
    lines.append((t("dashboard.export.at"), format_datetime(clock.utcnow(), lang)))
    content = charts.chart_workbook(tables, title=t("dashboard.export.title"), lines=lines, lang=lang)
    name = _SAFE_NAME.sub("-", f"bang-dieu-hanh-{board.target.code}" + (f"-{code}" if code else "")
                          + ("-tinh-hinh-gui-bao-cao" if gauges_only else "")).strip("-")
    return content, name


@require(PERMISSION)
async def dashboard_export(request):
    code = request.query_params.get("code", "").strip()[:MAX_CODE]
    chart = request.query_params.get("chart", "").strip()
    regime = request.query_params.get("regime", "").strip()[:MAX_CODE]
    if chart == COMPLETENESS:
        code = ""
    elif chart and (chart not in CHARTS or not code):
        raise HTTPException(404)
    result = await run_db_reading(request.app.state.settings.database_replica_url, _export, request.state.access,
                                  request.state.actor, _unit_code(request), code, chart, regime, request.state.lang,
                                  request.app.state.registry.catalog, clock.today())
    if result is None:
        raise HTTPException(404)
    content, name = result
    stamp = clock.now().strftime("%Y%m%d-%H%M")
    return Response(content, media_type=XLSX, headers={
        "Content-Disposition": f'attachment; filename="{name}-{stamp}.xlsx"', "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-store"})


def _choose_context(access, actor, unit_code, today):
    target = _target(access, actor, unit_code)
    if target is None:
        return None
    chosen = choices.chosen(actor.id)
    available = available_codes(target.id, today)
    codes = list(dict.fromkeys((chosen or []) + available))
    indicators = {i.code: i for i in Indicator.select(Indicator, IndicatorGroup).join(IndicatorGroup)
                  .where(Indicator.code.in_(codes or [""]) & Indicator.is_current)}
    groups: dict = {}
    for code in sorted(codes):
        if code in indicators:
            groups.setdefault(indicators[code].group_id, []).append(indicators[code])
    group_rows = [(members[0].group, members) for members in groups.values()]
    current = chosen if chosen is not None else available[:choices.MAX_CHOSEN]
    return {"target": target, "groups": group_rows, "chosen": set(current), "max_chosen": choices.MAX_CHOSEN,
            "own_unit": target.id == actor.unit_id}


async def _choose_page(request, unit_code: str, *, errors=None, picked=None, status_code=200):
    context = await run_db(_choose_context, request.state.access, request.state.actor, unit_code, clock.today())
    if context is None:
        raise HTTPException(404)
    if picked is not None:
        context["chosen"] = set(picked)
    context["errors"] = errors or {}
    return await render(request, "core/dashboard/choose.html", context, status_code=status_code)


@require(PERMISSION)
async def dashboard_choose(request):
    return await _choose_page(request, _unit_code(request))


@require(PERMISSION)
async def dashboard_choose_save(request):
    form = await request.form()
    unit_code = str(form.get("unit", "")).strip()[:MAX_CODE]
    codes = [str(c)[:MAX_CODE] for c in form.getlist("codes")][:200]
    try:
        await run_db(choices.choose, request.state.actor.id, codes)
    except ValidationError as exc:
        errors = {field: {"key": key, "params": exc.params} for field, key in exc.errors.items()}
        return await _choose_page(request, unit_code, errors=errors, picked=codes, status_code=422)
    target = await run_db(visible_unit, request.state.access, unit_code) if unit_code else None
    url = request.url_for("dashboard").path + (f"?unit={quote(target.code, safe='')}" if target is not None else "")
    return RedirectResponse(url, status_code=303)


ROUTES = [
    Route("/dashboard", dashboard, methods=["GET"], name="dashboard"),
    Route("/dashboard/export", dashboard_export, methods=["GET"], name="dashboard_export"),
    Route("/dashboard/indicators", dashboard_choose, methods=["GET"], name="dashboard_indicators"),
    Route("/dashboard/indicators", dashboard_choose_save, methods=["POST"], name="dashboard_indicators_save"),
]
