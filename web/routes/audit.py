"""The audit trail screens: the administrator's view of their subtree, its Excel export,
and every user's own history.

An administrator reads the events of the units below the units where they hold
``core.audit.view`` (a system administrator: every event, also those tied to no
unit), never a sibling's. Filters come as a plain GET form, so the page works
without JavaScript; with htmx only the table (``#core-audit-table``) is swapped.
Reading the trail is not itself recorded; exporting it is (security.md LOG-01).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import math
import unicodedata
from dataclasses import dataclass, field
from urllib.parse import urlencode

from starlette.responses import Response
from starlette.routing import Route

from core import audit, export_safety
from core.units import tree as units
from core.db import run_db
from core import clock
from core.i18n import fold, format_date, format_datetime, format_number
from core.models import utcnow
from web.background import export as background_export
from web.guards import require
from web.params import parse_id, parse_int
from web.templating import render

PERMISSION = audit.VIEW_PERMISSION
PER_PAGE = 50
EXPORT_LIMIT = 50_000
DATE_FORMATS = ("%d/%m/%Y", "%Y-%m-%d")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
BADGES = {"ok": "badge-ok", "denied": "badge-warn", "failed": "badge-failed"}


@dataclass
class Parsed:
    filters: audit.Filters
    values: dict[str, str]  # what the form shows, normalised (dates as ISO for <input type="date">)
    errors: dict[str, str] = field(default_factory=dict)  # field → message key
    page: int = 1

    def query_string(self, **extra) -> str:
        """``?`` and the filters (normalised), or nothing when there are none."""
        query = urlencode({**{k: v for k, v in self.values.items() if v}, **extra})
        return f"?{query}" if query else ""


def parse_day(value: str) -> dt.date | None:
    """dd/mm/yyyy (as written in Vietnam) or ISO yyyy-mm-dd (what <input type="date"> sends)."""
    for pattern in DATE_FORMATS:
        try:
            day = dt.datetime.strptime(value, pattern).date()
        except ValueError:
            continue
        if 1900 <= day.year <= 9998:
            return day
    raise ValueError(value)


def _text(params, name: str, limit: int) -> str:
    value = str(params.get(name) or "").strip()[:limit]
    return unicodedata.normalize("NFC", "".join(c for c in value if c.isprintable()))


def parse(params, *, actions: list[str], unit_ids: set[int], mine: bool) -> Parsed:
    """The filter form's values, checked. A bad value is reported, never silently dropped:
    an administrator must not take an unfiltered list for a filtered one."""
    values, errors, found = {}, {}, {}
    for name in ("from", "to"):
        raw = _text(params, name, 20)
        values[name] = raw
        if raw:
            try:
                found[name] = parse_day(raw)
                values[name] = found[name].isoformat()
            except ValueError:
                errors[name] = "audit.error.date"
    if found.get("from") and found.get("to") and found["from"] > found["to"]:
        errors["to"] = "audit.error.range"
    values["action"] = _text(params, "action", 64)
    if values["action"] and values["action"] not in actions:
        errors["action"] = "form.error.choice"
    values["result"] = _text(params, "result", 10)
    if values["result"] and values["result"] not in audit.RESULTS:
        errors["result"] = "form.error.choice"
    values["q"] = _text(params, "q", 100)
    unit_id = None
    if not mine:
        values["actor"] = _text(params, "actor", 64)
        values["unit"] = _text(params, "unit", 12)
        if values["unit"]:
            # A unit outside the reader's subtrees is answered like one that does not exist.
            unit_id = parse_id(values["unit"])
            if unit_id not in unit_ids:
                errors["unit"], unit_id = "form.error.choice", None
    page = parse_int(params.get("page") or "1", maximum=1_000_000) or 1
    filters = audit.Filters(date_from=found.get("from"), date_to=found.get("to"), action=values["action"],
                            actor=values.get("actor", ""), result=values["result"], unit_id=unit_id,
                            text=values["q"])
    return Parsed(filters, values, errors, page)


def _unit_options(scope_roots: list[int] | None) -> tuple[list[units.Node], list]:
    """The units a reader may filter on, in tree order, and the tops of their subtrees."""
    if scope_roots is None:
        nodes = units.flatten(units.tree())
        return nodes, []
    roots = set(scope_roots)
    tops = [r for r in scope_roots if not roots.intersection(units.ancestor_ids(r)[1:])]
    nodes = units.flatten([n for top in tops for n in units.tree(top)])
    return nodes, [n.unit for n in nodes if n.unit.id in tops]


class Labels:
    """Message keys to words in the reader's language (no keys built inside templates)."""

    def __init__(self, catalog, lang: str):
        self.catalog, self.lang = catalog, lang

    def __call__(self, key: str, **params) -> str:
        return self.catalog.gettext(self.lang, key, **params)

    def action(self, code: str) -> str:
        return self(audit.ACTIONS[code]) if code in audit.ACTIONS else code

    def object_type(self, code: str) -> str:
        return self(audit.OBJECT_TYPES[code]) if code in audit.OBJECT_TYPES else code

    def result(self, code: str) -> str:
        return self(audit.RESULT_LABELS[code]) if code in audit.RESULT_LABELS else code

    def detail(self, key: str) -> str:
        """A detail's name in words (``audit.detail.<key>``); a key no catalogue names stays as is."""
        message = f"audit.detail.{key}"
        text = self(message)
        return key if text == message else text

    def value(self, value) -> str:
        """A detail's value in words: yes/no, lists joined, an event code by its label."""
        if isinstance(value, bool):
            return self("audit.value.yes" if value else "audit.value.no")
        if value is None or value == "":
            return "—"
        if isinstance(value, (list, tuple)):
            return ", ".join(self.value(v) for v in value) or "—"
        if isinstance(value, dict):
            return "; ".join(f"{self.detail(k)}: {self.value(v)}" for k, v in value.items())
        if isinstance(value, str):
            return self.action(value) if value in audit.ACTIONS else value
        return json.dumps(value, ensure_ascii=False, default=str)


def _details_text(event, labels: Labels) -> str:
    """The event's details in the reader's language, one "name: value" per detail."""
    return " · ".join(f"{labels.detail(key)}: {labels.value(value)}"
                      for key, value in sorted(audit.details_of(event).items()))


def _rows(events, labels: Labels) -> list[dict]:
    unit_names, full_names = audit.names_for(events)
    return [{
        "id": e.id, "at": e.at, "at_utc": e.at.isoformat(timespec="seconds") + "Z",
        "actor_name": e.actor_name, "actor_full_name": full_names.get(e.actor_id, ""),
        "unit": unit_names.get(e.unit_id, ""), "action": e.action, "action_label": labels.action(e.action),
        "object_type": labels.object_type(e.object_type) if e.object_type else "", "object_id": e.object_id,
        "result": e.result, "result_label": labels.result(e.result), "badge": BADGES.get(e.result, "badge-off"),
        "request_id": e.request_id, "client_address": e.client_address, "details": _details_text(e, labels),
    } for e in events]


def _text_actions(text: str, actions: list[str], labels: Labels) -> tuple[str, ...]:
    """Actions whose label matches the free text, so "dang nhap" finds the logins."""
    needle = fold(text)
    return tuple(c for c in actions if c in audit.ACTIONS and needle in fold(labels.action(c)))


def _prepare(access, params, labels: Labels, *, mine: bool):
    actor = access.actor
    scope_roots = None if mine else access.roots(PERMISSION)
    scope = None if mine else audit.viewing_scope(access)
    actions = audit.known_actions()
    nodes, tops = ([], []) if mine else _unit_options(scope_roots)
    parsed = parse(params, actions=actions, unit_ids={n.unit.id for n in nodes}, mine=mine)
    query = None
    if not parsed.errors:
        query = audit.search(parsed.filters, scope=scope, own_user_id=actor.id if mine else None,
                             text_actions=_text_actions(parsed.filters.text, actions, labels)
                             if parsed.filters.text else ())
    scope_label = labels("audit.scope.all") if scope is None else (
        labels("audit.scope.units", names=", ".join(u.name for u in tops)) if tops else labels("audit.scope.none"))
    options = {
        "actions": sorted(((c, labels.action(c)) for c in actions), key=lambda o: fold(o[1])),
        "results": [(r, labels.result(r)) for r in audit.RESULTS],
        "units": [(n.unit.id, n.unit.name, n.depth) for n in nodes],
    }
    return parsed, query, scope_label, options


def _screen(access, params, catalog, lang, *, mine: bool, path: str, export_path: str | None) -> dict:
    labels = Labels(catalog, lang)
    parsed, query, scope_label, options = _prepare(access, params, labels, mine=mine)
    total, pages, rows = 0, 1, []
    if query is not None:
        total = query.count()
        pages = max(1, math.ceil(total / PER_PAGE))
        parsed.page = min(parsed.page, pages)
        rows = _rows(list(query.paginate(parsed.page, PER_PAGE)), labels)

    def href(page):
        return f"{path}{parsed.query_string(page=page)}"

    return {
        "mine": mine, "rows": rows, "total": total, "page": parsed.page, "pages": pages,
        "values": parsed.values, "errors": parsed.errors, "filtered": parsed.filters.active(),
        "scope_label": scope_label, "options": options, "base_path": path,
        "prev_href": href(parsed.page - 1) if parsed.page > 1 else None,
        "next_href": href(parsed.page + 1) if parsed.page < pages else None,
        "export_href": f"{export_path}{parsed.query_string()}" if export_path and not parsed.errors else None,
    }


async def _page(request, *, mine: bool):
    route = "my_history" if mine else "audit"
    context = await run_db(_screen, request.state.access, request.query_params, request.app.state.registry.catalog,
                           request.state.lang, mine=mine, path=request.app.url_path_for(route),
                           export_path=None if mine else request.app.url_path_for("audit_export"))
    context["route"] = route
    return await render(request, "core/audit/audit.html", context, partial="core/audit/_table.html",
                        status_code=422 if context["errors"] else 200)


@require(PERMISSION)
async def audit_page(request):
    return await _page(request, mine=False)


@require()
async def my_history(request):
    return await _page(request, mine=True)


# -- the Excel export ---------------------------------------------------------------------------

def _filter_summary(parsed: Parsed, options: dict, labels: Labels) -> str:
    f, lang = parsed.filters, labels.lang
    parts = []
    if f.date_from:
        parts.append(f"{labels('audit.filter.from')}: {format_date(f.date_from, lang)}")
    if f.date_to:
        parts.append(f"{labels('audit.filter.to')}: {format_date(f.date_to, lang)}")
    if f.action:
        parts.append(f"{labels('audit.filter.action')}: {labels.action(f.action)}")
    if f.actor:
        parts.append(f"{labels('audit.filter.actor')}: {f.actor}")
    if f.result:
        parts.append(f"{labels('audit.filter.result')}: {labels.result(f.result)}")
    if f.unit_id is not None:
        name = next((n for uid, n, _ in options["units"] if uid == f.unit_id), str(f.unit_id))
        parts.append(f"{labels('audit.filter.unit')}: {name}")
    if f.text:
        parts.append(f"{labels('audit.filter.q')}: {f.text}")
    return "; ".join(parts) or labels("audit.export.no_filter")


def _cell(ws, value, **style):
    # Text stays text: a value starting with "=" never becomes a formula (core.export_safety).
    return export_safety.write_only_cell(ws, value, **style)


def _workbook(query, parsed: Parsed, options: dict, scope_label: str, labels: Labels, actor, now: dt.datetime):
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    columns = [  # (message key, width)
        ("audit.col.id", 10), ("audit.col.time_local", 20), ("audit.col.username", 18),
        ("audit.col.full_name", 26), ("audit.col.unit", 28), ("audit.col.action", 30),
        ("audit.col.action_code", 22), ("audit.col.object_type", 16), ("audit.col.object", 22),
        ("audit.col.result", 14), ("audit.col.details", 40), ("audit.col.request_id", 16),
        ("audit.col.client", 18), ("audit.col.hash", 66),
    ]
    events = list(query.limit(EXPORT_LIMIT + 1))
    truncated = len(events) > EXPORT_LIMIT
    events = events[:EXPORT_LIMIT]
    unit_names, full_names = audit.names_for(events)

    wb = Workbook(write_only=True)
    ws = wb.create_sheet(labels("audit.export.sheet")[:31])
    for i, (_, width) in enumerate(columns, start=1):
        ws.column_dimensions[get_column_letter(i)].width = width
    bold = Font(bold=True)
    count_line = labels("audit.export.truncated", limit=format_number(EXPORT_LIMIT, labels.lang)) if truncated \
        else labels("audit.export.count", count=format_number(len(events), labels.lang))
    header = [
        [_cell(ws, labels("audit.export.title"), font=Font(bold=True, size=14))],
        [_cell(ws, labels("audit.export.scope"), font=bold), _cell(ws, scope_label)],
        [_cell(ws, labels("audit.export.filters"), font=bold), _cell(ws, _filter_summary(parsed, options, labels))],
        [_cell(ws, labels("audit.export.by"), font=bold),
         _cell(ws, f"{actor.full_name} ({actor.username})")],
        [_cell(ws, labels("audit.export.at"), font=bold),
         _cell(ws, f"{format_datetime(now, labels.lang)} ({labels('audit.export.timezone')})")],
        [_cell(ws, labels("audit.export.rows"), font=bold), _cell(ws, count_line)],
        [],
    ]
    head_row = len(header) + 1
    # A write-only sheet writes its view with the first row: freeze the panes before that.
    ws.freeze_panes = f"A{head_row + 1}"
    for line in header:
        ws.append(line)
    fill = PatternFill("solid", fgColor="DCE6F1")
    ws.append([_cell(ws, labels(key), font=bold, fill=fill, alignment=Alignment(wrap_text=True, vertical="top"))
               for key, _ in columns])
    for e in events:
        local = clock.local(e.at).replace(tzinfo=None)
        ws.append([
            e.id, _cell(ws, local, number_format="dd/mm/yyyy hh:mm:ss"), _cell(ws, e.actor_name),
            _cell(ws, full_names.get(e.actor_id, "")), _cell(ws, unit_names.get(e.unit_id, "")),
            _cell(ws, labels.action(e.action)), _cell(ws, e.action),
            _cell(ws, labels.object_type(e.object_type) if e.object_type else ""), _cell(ws, e.object_id),
            _cell(ws, labels.result(e.result)), _cell(ws, _details_text(e, labels)), _cell(ws, e.request_id),
            _cell(ws, e.client_address), _cell(ws, e.hash),
        ])
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue(), len(events), truncated


def _export(access, params, catalog, lang) -> tuple[bytes | None, dict]:
    labels = Labels(catalog, lang)
    parsed, query, scope_label, options = _prepare(access, params, labels, mine=False)
    if query is None:
        return None, parsed.errors
    now = utcnow()
    content, count, truncated = _workbook(query, parsed, options, scope_label, labels, access.actor, now)
    # No record, no file: the export is handed out only once it is in the trail.
    audit.record("audit.export", actor=access.actor, object_type="audit",
                 details={"rows": count, "truncated": truncated,
                          "filters": {k: v for k, v in parsed.values.items() if v}})
    return content, {"now": now}


@require(PERMISSION)
async def audit_export(request):
    access, params, lang = request.state.access, request.query_params, request.state.lang
    catalog = request.app.state.registry.catalog

    def build():
        content, info = _export(access, params, catalog, lang)
        if content is None:
            return None
        return content, f'nhat-ky-he-thong-{clock.local(info["now"]).strftime("%Y%m%d-%H%M")}.xlsx'

    # The trail of a province over a year is long: past a second the export is a job whose page
    # offers the file when it is ready (web.background).
    return await background_export(
        request, kind="audit.export", title="background.title.audit_export", build=build, media_type=XLSX,
        answer=lambda content, name: Response(content, media_type=XLSX, headers={
            "Content-Disposition": f'attachment; filename="{name}"'}),
        back_url=request.app.url_path_for("audit") + (f"?{request.url.query}" if request.url.query else ""),
        refused=lambda: _page(request, mine=False))  # the same 422 and field messages as the screen


# -- the incident evidence export (core.incident, security.md VN-02) -------------------------------

ZIP = "application/zip"


@require(PERMISSION, reauth=True)
async def audit_incident_export(request):
    """The incident evidence ZIP for the filters of the audit screen's incident form. Only a reader
    of the whole trail (a system administrator holding ``core.audit.view``): the package names
    every account's logins and sessions, beyond any unit's subtree. Sensitive: a recent login."""
    from core import incident
    from core.errors import BaocaoError, Forbidden

    access, params = request.state.access, request.query_params
    if access.roots(PERMISSION) is not None:
        raise Forbidden("incident.error.not_allowed")
    actor, address = access.actor, request.client.host if request.client else ""
    refusal = {}

    def build():
        try:
            win = incident.window(str(params.get("start") or "")[:40], str(params.get("end") or "")[:40],
                                  unit_code=str(params.get("unit_code") or "")[:40],
                                  username=str(params.get("username") or "")[:64])
        except BaocaoError as exc:
            refusal["error"] = exc
            return None
        buffer = io.BytesIO()
        incident.export(buffer, win, actor=actor, exported_by={"via": "screen", "address": address})
        return buffer.getvalue(), f'bang-chung-su-co-{clock.local(utcnow()).strftime("%Y%m%d-%H%M")}.zip'

    async def refused():
        # The audit screen again, its incident form open with what was typed and why it was refused.
        context = await run_db(_screen, access, {}, request.app.state.registry.catalog, request.state.lang,
                               mine=False, path=request.app.url_path_for("audit"),
                               export_path=request.app.url_path_for("audit_export"))
        error = refusal.get("error")
        context.update(route="audit", incident_error=error.message(request.state.lang) if error else "",
                       incident_values={k: str(params.get(k) or "")[:64]
                                        for k in ("start", "end", "unit_code", "username")})
        return await render(request, "core/audit/audit.html", context, status_code=422)

    return await background_export(
        request, kind="incident.export", title="incident.background.title", build=build, media_type=ZIP,
        answer=lambda content, name: Response(content, media_type=ZIP, headers={
            "Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "private, no-store"}),
        back_url=request.app.url_path_for("audit"), refused=refused)


ROUTES = [
    Route("/audit", audit_page, methods=["GET"], name="audit"),
    Route("/audit/export.xlsx", audit_export, methods=["GET"], name="audit_export"),
    Route("/audit/incident.zip", audit_incident_export, methods=["GET"], name="audit_incident_export"),
    Route("/account/history", my_history, methods=["GET"], name="my_history"),
]
