"""Reporting regimes screens (chế độ báo cáo, Decree 09/2019 Art. 7): list, create and edit a
draft with a live calendar preview, the regime's page with its calendar, issuing and the other
actions, the reports it opened, and opening a thematic or ad-hoc request.

Every rule lives in ``core.regimes.regimes`` and ``core.reporting.opening``: the routes only read forms, call them
and render. A regime the user may not see answers 404 (ACL-02); an action they may not take, 403.
"""

from __future__ import annotations

import datetime as dt

from starlette.exceptions import HTTPException
from starlette.responses import RedirectResponse
from starlette.routing import Route

from core import clock
from core.regimes import authority as authorities, regimes as rg
from core.db import run_db, transaction
from core.errors import BaocaoError, Forbidden, NotFound, ValidationError
from core.models import UNIT_KINDS, Unit
from core.regimes.periods import MAX_YEAR, MIN_YEAR
from core.units.tree import ancestor_ids, flatten, subtree_ids, tree
from core.reporting import facade as reporting
from web.guards import require
from web.params import parse_id, parse_int
from web.templating import render

VIEW = rg.VIEW
FORM_RULE_ROWS = 4  # empty rows offered besides the ones filled in (at most MAX_LEVELS in all)
LIST_LIMIT = 500

DONE = {
    "created": "regimes.done.created", "saved": "regimes.done.saved", "issued": "regimes.done.issued",
    "suspended": "regimes.done.suspended", "resumed": "regimes.done.resumed", "retired": "regimes.done.retired",
    "version": "regimes.done.version", "opened": "regimes.done.opened", "reminders": "reminders.policy.done",
}


def _int(value) -> int | None:
    return parse_id(str(value or "").strip())


def _year(value, default: int) -> int:
    year = _int(value)
    return year if year and MIN_YEAR <= year <= MAX_YEAR else default


def _settings(request):
    return request.app.state.settings


def _policy(request):
    return getattr(_settings(request), "regimes", None)


def _calendar(request):
    return rg.work_calendar(_settings(request))


# -- the list -------------------------------------------------------------------------------------

def _list_context(access, regime_type: str, status: str, q: str) -> dict:
    rows = rg.visible_regimes(access, regime_type=regime_type or None, status=status or None, q=q)
    edit_roots = access.roots(rg.EDIT)
    return {"rows": rows[:LIST_LIMIT], "total": len(rows), "type_filter": regime_type, "status_filter": status,
            "q": q, "can_create": edit_roots is None or bool(edit_roots), "labels": _labels()}


@require(VIEW)
async def regime_list(request):
    params = request.query_params
    regime_type = params.get("type") if params.get("type") in rg.REGIME_TYPES else ""
    status = params.get("status") if params.get("status") in rg.STATUSES else ""
    q = (params.get("q") or "").strip()[:100]
    context = await run_db(_list_context, request.state.access, regime_type, status, q)
    return await render(request, "core/regimes/list.html", context, partial="core/regimes/_table.html")


# -- the form -------------------------------------------------------------------------------------

def _form_data(data) -> dict:
    """The fields the regime form sends; anything else is ignored (ACL-03)."""
    rules = []
    for i in range(rg.MAX_LEVELS):
        rules.append({"level": str(data.get(f"level_{i}", ""))[:120], "from_kind": str(data.get(f"from_kind_{i}", ""))[:20],
                      "rule": str(data.get(f"rule_{i}", ""))[:20]})
    out = {name: str(data.get(name, ""))[:20000] for name in (
        "code", "name", "regime_type", "content", "content_type", "receiving_unit_id", "receiving_rule",
        "receiving_group_id", "frequency", "cutoff_rule",
        "outline", "data_forms", "guidance", "legal_number", "legal_date", "legal_issuer", "issuing_unit_id",
        "preparing_unit_id", "scope_unit_id", "form_id")}
    for name in ("kinds", "unit_ids", "group_ids", "sending_methods"):
        out[name] = [str(v)[:20] for v in data.getlist(name)][:500]
    out["deadline_rules"] = rules
    return out


def _org_units(access) -> list:
    """Units the form offers as issuing or preparing unit: those where the actor drafts or issues,
    their subtrees and their ancestors (a department drafts what the province issues)."""
    nodes = flatten(tree())
    if access.actor is not None and access.actor.is_admin:
        return [n for n in nodes if n.unit.kind not in rg.OUTSIDE_KINDS]
    ids = set()
    for code in (rg.EDIT, rg.ISSUE):
        for root in access.roots(code) or []:
            ids |= set(subtree_ids(root)) | set(ancestor_ids(root))
    return [n for n in nodes if n.unit.id in ids and n.unit.kind not in rg.OUTSIDE_KINDS]


def data_form_choices(access, frequency: str | None, selected=None) -> list:
    """Published forms the user may view that fit a regime of ``frequency`` (None: any), and the
    one already chosen: the picker of components 9 and 10."""
    from core.regimes import forms as fm

    chosen = str(selected or "")
    out = []
    for form in fm.visible_forms(access):
        fits = not frequency or not form.frequency or form.frequency == frequency
        if (fits and fm.latest_published(form.id) is not None) or str(form.id) == chosen:
            out.append(form)
    return out


def _form_context(access, form: dict, errors: dict, regime=None) -> dict:
    rows = list(form.get("deadline_rules") or [])
    rows = [r for r in rows if r.get("level") or r.get("rule")]
    rows += [{"level": "", "from_kind": "", "rule": ""}] * max(0, min(FORM_RULE_ROWS, rg.MAX_LEVELS - len(rows)))
    frequency = form.get("frequency") if form.get("regime_type") == rg.PERIODIC else None
    return {"form": form, "errors": errors, "rule_rows": rows, "regime": regime,
            "org_units": _org_units(access), "all_units": flatten(tree()), "groups": rg.groups(),
            "unit_kinds": UNIT_KINDS, "labels": _labels(), "this_year": clock.today().year,
            "data_forms_list": data_form_choices(access, frequency, form.get("form_id"))}


def _labels() -> dict:
    return {"types": rg.TYPE_LABELS, "statuses": rg.STATUS_LABELS, "content_types": rg.CONTENT_TYPE_LABELS,
            "methods": rg.METHOD_LABELS, "frequencies": rg.FREQUENCY_LABELS, "cutoffs": rg.CUTOFF_LABELS,
            "components": rg.COMPONENT_LABELS, "report_statuses": reporting.STATUS_LABELS,
            "receiving_rules": rg.RECEIVING_RULE_LABELS}


def _form_of(regime) -> dict:
    sel = regime.selector
    return {"code": regime.code, "name": regime.name, "regime_type": regime.regime_type, "content": regime.content,
            "content_type": regime.content_type, "receiving_unit_id": str(regime.receiving_unit_id or ""),
            "receiving_rule": regime.receiving_rule, "receiving_group_id": str(regime.receiving_group_id or ""),
            "frequency": regime.frequency or "", "cutoff_rule": regime.cutoff_rule, "outline": regime.outline,
            "data_forms": regime.data_forms, "guidance": regime.guidance, "legal_number": regime.legal_number,
            "legal_date": regime.legal_date.isoformat() if regime.legal_date else "",
            "legal_issuer": regime.legal_issuer, "issuing_unit_id": str(regime.issuing_unit_id or ""),
            "preparing_unit_id": str(regime.preparing_unit_id or ""), "scope_unit_id": str(sel["scope_unit_id"] or ""),
            "kinds": sel["kinds"], "unit_ids": [str(i) for i in sel["unit_ids"]],
            "group_ids": [str(i) for i in sel["group_ids"]], "sending_methods": regime.methods,
            "deadline_rules": regime.rules, "form_id": str(regime.form_id or "")}


def _blank_form(access) -> dict:
    actor = access.actor
    unit = Unit.get_or_none(Unit.id == actor.unit_id) if actor else None
    chain = ancestor_ids(unit.id) if unit else []
    province = next((Unit.get_by_id(u) for u in chain if Unit.get_by_id(u).kind == "province"), None)
    return {"code": "", "name": "", "regime_type": "periodic", "content": "", "content_type": "both",
            "receiving_unit_id": str(province.id) if province else "", "receiving_rule": rg.UNIT_RULE,
            "receiving_group_id": "", "frequency": "monthly",
            "cutoff_rule": "decree", "outline": "", "data_forms": "", "guidance": "", "legal_number": "",
            "legal_date": "", "legal_issuer": "", "issuing_unit_id": str(province.id) if province else "",
            "preparing_unit_id": str(unit.id) if unit and unit.kind == "department" else "", "scope_unit_id": "",
            "kinds": [], "unit_ids": [], "group_ids": [], "sending_methods": ["system"],
            "deadline_rules": [{"level": "", "from_kind": "", "rule": "2wd"}], "form_id": ""}


def _check_can_create(access) -> None:
    roots = access.roots(rg.EDIT)
    if roots is not None and not roots:
        raise Forbidden("regimes.error.no_edit_right")


@require(VIEW)
async def regime_new(request):
    access = request.state.access

    def build():
        _check_can_create(access)
        return _form_context(access, _blank_form(access), {})

    context = await run_db(build)
    return await render(request, "core/regimes/form.html", context)


@require(VIEW)
async def regime_create(request):
    access = request.state.access
    form = _form_data(await request.form())
    try:
        await run_db(_check_can_create, access)
        regime = await run_db(rg.save_draft, access, form, policy=_policy(request))
    except ValidationError as exc:
        context = await run_db(_form_context, access, form, exc.errors)
        return await render(request, "core/regimes/form.html", context, status_code=422)
    return RedirectResponse(request.url_for("regime_detail", id=regime.id).path + "?done=created", status_code=303)


def _editable(access, regime_id: int):
    regime = rg.get_regime(access, regime_id)
    if regime.status != rg.DRAFT or not rg.can_edit(access, regime):
        raise Forbidden("regimes.error.no_edit_right")
    return regime


@require(VIEW)
async def regime_edit(request):
    access = request.state.access

    def build():
        regime = _editable(access, request.path_params["id"])
        return _form_context(access, _form_of(regime), {}, regime)

    context = await run_db(build)
    return await render(request, "core/regimes/form.html", context)


@require(VIEW)
async def regime_update(request):
    access = request.state.access
    regime_id = request.path_params["id"]
    form = _form_data(await request.form())
    try:
        await run_db(rg.save_draft, access, form, regime_id=regime_id, policy=_policy(request))
    except ValidationError as exc:
        errors = exc.errors  # the name ``exc`` ends with the except block; the closure keeps the errors

        def build():
            regime = _editable(access, regime_id)
            form["code"] = regime.code
            return _form_context(access, form, errors, regime)

        context = await run_db(build)
        return await render(request, "core/regimes/form.html", context, status_code=422)
    return RedirectResponse(request.url_for("regime_detail", id=regime_id).path + "?done=saved", status_code=303)


@require(VIEW)
async def regime_preview(request):
    """The calendar of the form's values (htmx, GET: nothing is written)."""
    params = request.query_params
    form = _form_data(params)
    year = _year(params.get("year"), clock.today().year)
    calendar = _calendar(request)

    def build():
        values, errors = rg.clean(form)
        return {"rows": rg.calendar_rows(values, year, calendar), "year": year, "values": values,
                "rule_errors": sorted({k for k in errors if k.startswith("deadline_rules")}), "preview": True}

    context = await run_db(build)
    return await render(request, "core/regimes/_calendar.html", context)


# -- one regime -------------------------------------------------------------------------------------

def _detail_context(access, regime_id: int, year: int, calendar, policy, today: dt.date) -> dict:
    regime = rg.get_regime(access, regime_id)
    sel = regime.selector
    units_by_id = {u.id: u for u in Unit.select().where(Unit.id.in_(sel["unit_ids"]))} if sel["unit_ids"] else {}
    groups = [g for g in rg.groups() if g.id in sel["group_ids"]]
    units_reporting = reporting.reporting_units(regime, today)  # a plugin's regime: where the plugin is switched on
    problems = rg.issue_problems(regime, calendar, today, policy) if regime.status == rg.DRAFT else []
    # Issued under a plugin's authority (a delegation, Điều 6.3): say whether it still stands, since
    # once it has ended the regime stays "issued" but opens no new period.
    authority = authorities.find(regime.authority, regime.issuing_unit_id, today) if regime.authority else None
    return {
        "authority": authority, "authority_ended": bool(regime.authority) and authority is None
        and regime.status in (rg.ISSUED, rg.SUSPENDED),
        "regime": regime, "sel": sel, "listed_units": [units_by_id[i] for i in sel["unit_ids"] if i in units_by_id],
        "sel_groups": groups, "scope_unit": Unit.get_or_none(Unit.id == sel["scope_unit_id"]) if sel["scope_unit_id"] else None,
        "reporting": units_reporting, "missing": rg.missing_components(regime), "problems": problems,
        "receiving_group": rg.UnitGroup.get_or_none(rg.UnitGroup.id == regime.receiving_group_id)
        if regime.receiving_group_id else None,
        "rows": rg.calendar_rows(regime, year, calendar), "year": year, "values": regime,
        "versions": rg.versions(regime.code), "periods": reporting.regime_periods(regime, access=access),
        "can_edit": rg.can_edit(access, regime) and regime.status == rg.DRAFT,
        "can_issue": rg.can_issue(access, regime),
        "can_version": (rg.can_edit(access, regime) or rg.can_issue(access, regime))
        and regime.status in (rg.ISSUED, rg.SUSPENDED),
        "labels": _labels(), "this_year": today.year,
    }


async def _detail(request, regime_id: int, *, status_code: int = 200, **extra):
    params = request.query_params
    today = clock.today()
    year = _year(params.get("year"), today.year)
    context = await run_db(_detail_context, request.state.access, regime_id, year, _calendar(request),
                           _policy(request), today)
    # Its reminders of deadlines (issue 14 item 4): the regime's own choice, else the setting's.
    context["reminders"] = await run_db(reporting.reminder_policy, context["regime"].code, request.app.state.settings)
    context["reminder_days"] = range(reporting.REMINDER_MAX_DAYS + 1)
    context.update(extra)
    return await render(request, "core/regimes/detail.html", context, partial="core/regimes/_calendar.html",
                        status_code=status_code)


@require(VIEW)
async def regime_detail(request):
    return await _detail(request, request.path_params["id"], done=DONE.get(request.query_params.get("done") or ""))


async def _act(request, fn, *args, done: str, **kwargs):
    regime_id = request.path_params["id"]
    try:
        result = await run_db(fn, request.state.access, regime_id, *args, **kwargs)
    except ValidationError as exc:
        problems = getattr(exc, "problems", None) or [BaocaoError(key) for key in exc.errors.values()]
        return await _detail(request, regime_id, status_code=422, action_errors=problems,
                             action_field_errors=exc.errors)
    target = result[0] if isinstance(result, tuple) else result
    target_id = getattr(target, "id", regime_id)
    return RedirectResponse(request.url_for("regime_detail", id=target_id).path + f"?done={done}", status_code=303)


async def _reason(request) -> str:
    return str((await request.form()).get("reason", ""))[:500]


@require(VIEW)
async def regime_issue(request):
    return await _act(request, reporting.issue_and_open, done="issued", calendar=_calendar(request),
                      policy=_policy(request))


@require(VIEW)
async def regime_suspend(request):
    return await _act(request, rg.suspend, await _reason(request), done="suspended")


@require(VIEW)
async def regime_resume(request):
    return await _act(request, rg.resume, done="resumed")


@require(VIEW)
async def regime_retire(request):
    return await _act(request, rg.retire, await _reason(request), done="retired")


@require(VIEW)
async def regime_new_version(request):
    return await _act(request, rg.new_version, done="version")


# -- the reports a regime opened, and opening a request -------------------------------------------

def _reports_context(access, regime_id: int, period: str, unit_id: int | None) -> dict:
    regime = rg.get_regime(access, regime_id)
    # Only the reports this person may see: a commune its own, a receiver those it receives,
    # the regime's drafters and issuers all (core.reporting.opening.regime_scope).
    rows = reporting.regime_reports(regime, period=period, unit_id=unit_id, access=access)
    units = sorted({r.unit for r in reporting.regime_reports(regime, access=access)}, key=lambda u: u.code)
    return {"regime": regime, "rows": rows[:2000], "total": len(rows),
            "periods": reporting.regime_periods(regime, access=access),
            "report_units": units, "period_filter": period, "unit_filter": unit_id, "today": clock.today(),
            "labels": _labels()}


@require(VIEW)
async def regime_reports(request):
    params = request.query_params
    context = await run_db(_reports_context, request.state.access, request.path_params["id"],
                           (params.get("period") or "")[:30], _int(params.get("unit")))
    context["done"] = DONE.get(params.get("done") or "")
    return await render(request, "core/regimes/reports.html", context, partial="core/regimes/_reports_table.html")


def _request_context(access, regime_id: int, form: dict, errors: dict) -> dict:
    regime = rg.get_regime(access, regime_id)
    if not (regime.is_request and rg.can_issue(access, regime)):
        raise Forbidden("regimes.error.no_issue_right")
    return {"regime": regime, "form": form, "errors": errors, "recipients": rg.resolve_units(regime),
            "periods": reporting.regime_periods(regime, access=access), "labels": _labels(),
            "data_forms_list": data_form_choices(access, None, form.get("form_id"))}


def _date(value) -> dt.date | None | str:
    text = str(value or "").strip()
    try:
        return dt.date.fromisoformat(text) if text else None
    except ValueError:
        return text


def _request_form_id(regime_id: int) -> str:
    regime = rg.Regime.get_or_none(rg.Regime.id == regime_id)
    return str(regime.form_id or "") if regime else ""


@require(VIEW)
async def regime_request_form(request):
    context = await run_db(_request_context, request.state.access, request.path_params["id"],
                           {"window_start": "", "window_end": "", "deadline": "", "label": "",
                            "form_id": str(await run_db(_request_form_id, request.path_params["id"]))}, {})
    return await render(request, "core/regimes/request.html", context)


@require(VIEW)
async def regime_request_open(request):
    access = request.state.access
    regime_id = request.path_params["id"]
    data = await request.form()
    form = {k: str(data.get(k, ""))[:200] for k in ("window_start", "window_end", "deadline", "label", "form_id")}

    def open_with_form():
        # The issuer picks the request's data form here: linked to the request regime in the same
        # transaction that opens the reports, which take its published version.
        with transaction():
            rg.link_request_form(access, regime_id, _int(form["form_id"]))
            return reporting.open_request(access, regime_id, _date(form["window_start"]), _date(form["window_end"]),
                                   _date(form["deadline"]), label=form["label"], calendar=_calendar(request))

    try:
        await run_db(open_with_form)
    except (ValidationError, BaocaoError) as exc:
        errors = getattr(exc, "errors", None) or {"window_end": exc.key}
        try:
            context = await run_db(_request_context, access, regime_id, form, errors)
        except (NotFound, Forbidden):
            raise HTTPException(404) from None
        return await render(request, "core/regimes/request.html", context, status_code=422)
    return RedirectResponse(request.url_for("regime_reports", id=regime_id).path + "?done=opened", status_code=303)


@require(VIEW)
async def regime_reminders(request):
    """The regime's reminders of deadlines (issue 14 item 4), for whoever may issue it: N working
    days ahead (0: only on the day), or none (no reminder, no escalation; "Đôn đốc" still works).
    Answers with the regime's page (303), or 422 with the message."""
    form = await request.form()
    regime_id = request.path_params["id"]
    days = parse_int(str(form.get("days_before", "") or "").strip()[:3], minimum=0,
                     maximum=reporting.REMINDER_MAX_DAYS)
    regime = await run_db(rg.get_regime, request.state.access, regime_id)
    try:
        if days is None:
            raise ValidationError({"days_before": "reminders.error.days"})
        await run_db(reporting.set_reminder_policy, request.state.access, regime.code, days_before=days,
                     enabled=form.get("enabled") == "on")
    except ValidationError as exc:
        return await _detail(request, regime_id, status_code=422, reminder_error=next(iter(exc.errors.values())))
    return RedirectResponse(request.url_for("regime_detail", id=regime_id).path + "?done=reminders#rd-reminders",
                            status_code=303)


ROUTES = [
    Route("/regimes", regime_list, methods=["GET"], name="regimes"),
    Route("/regimes/new", regime_new, methods=["GET"], name="regime_new"),
    Route("/regimes/new", regime_create, methods=["POST"], name="regime_create"),
    Route("/regimes/preview", regime_preview, methods=["GET"], name="regime_preview"),
    Route("/regimes/{id:int}", regime_detail, methods=["GET"], name="regime_detail"),
    Route("/regimes/{id:int}/edit", regime_edit, methods=["GET"], name="regime_edit"),
    Route("/regimes/{id:int}/edit", regime_update, methods=["POST"], name="regime_update"),
    Route("/regimes/{id:int}/issue", regime_issue, methods=["POST"], name="regime_issue"),
    Route("/regimes/{id:int}/suspend", regime_suspend, methods=["POST"], name="regime_suspend"),
    Route("/regimes/{id:int}/resume", regime_resume, methods=["POST"], name="regime_resume"),
    Route("/regimes/{id:int}/retire", regime_retire, methods=["POST"], name="regime_retire"),
    Route("/regimes/{id:int}/new-version", regime_new_version, methods=["POST"], name="regime_new_version"),
    Route("/regimes/{id:int}/reports", regime_reports, methods=["GET"], name="regime_reports"),
    Route("/regimes/{id:int}/request", regime_request_form, methods=["GET"], name="regime_request_form"),
    Route("/regimes/{id:int}/request", regime_request_open, methods=["POST"], name="regime_request_open"),
    Route("/regimes/{id:int}/reminders", regime_reminders, methods=["POST"], name="regime_reminders"),
]
