"""Print pages: a report as it stands, one submitted version, a consolidated report — each as the
whole official document, laid out for A4 landscape (issue 12 item 4).

``/reports/<id>/print`` prints a report (a unit's or a consolidated one) with what it holds now;
``/reports/<id>/versions/<n>/print`` prints version n exactly as it was sent (its frozen canonical
content laid out on the form version it was filled with). Both carry the national header
(Quốc hiệu and Tiêu ngữ on the right, the unit and its parent on the left, NĐ 30/2020/NĐ-CP), the
unit, regime, period, every row and every shown column of the grid, the narrative, the list of
attachments and the signature line (who signed, when in the instance's time zone, valid or not).

Rights are exactly those of viewing: the same lookups as the report page (``reporting.get_report``: 404
for whoever may not read it) and as the version downloads (the report, then its version). Nothing
here decides access on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from starlette.routing import Route

from core import clock
from core.signatures import signing
from core.db import run_db
from core.errors import NotFound
from core.regimes.form_engine import column_label
from core.models import Unit
from core.reporting import facade as reporting
from web.guards import require
from web.routes.report_entry import _indicator_names
from web.routes.report_review import _in_outline_order, _version
from web.templating import render


@dataclass
class Table:
    """The grid as printed: the shape the entry grid uses (``reporting.Sheet``'s rows, columns, kinds,
    values), so the print shows cells with the grid's own ``show`` rule."""

    title: str
    rows: list
    columns: list
    kinds: dict
    values: dict
    names: dict  # indicator code → name, for rows labelled only by their indicator (as the grid does)


def _table_of_sheet(sheet: reporting.Sheet) -> Table:
    return Table(sheet.form.title, sheet.form.rows, sheet.columns, sheet.kinds, sheet.values,
                 _indicator_names(sheet.version, sheet))


def _decimal(text):
    try:
        return Decimal(text) if text is not None else None
    except InvalidOperation:
        return None


def _table_of_version(version, content: dict) -> Table | None:
    """Version n's values on the form version it was filled with: every row, every column shown in
    its period (the canonical content keeps only cells that hold a value)."""
    form_version = reporting.FormVersion.get_or_none(reporting.FormVersion.id == version.form_version_id)
    if form_version is None:
        return None
    form = form_version.compiled()
    period = (content.get("report") or {}).get("period") or {}
    frequency, year, index = period.get("frequency", ""), period.get("year", 0), period.get("index", 0)
    shown = form.visible_columns(index)
    columns = [reporting.ShownColumn(c.key, column_label(c, frequency, year, index), c.kind, c.decimals, c.percent)
               for c in shown]
    values = content.get("values") or {}
    cells = [(r, c) for r in form.rows for c in shown]
    return Table(form.title, form.rows, columns, {(r.key, c.key): form.cell_kind(r, c) for r, c in cells},
                 {(r.key, c.key): _decimal(values.get(f"{r.key}.{c.key}")) for r, c in cells},
                 _indicator_names(form_version))


def _units(report) -> tuple[Unit, Unit | None, Unit | None]:
    """The reporting unit, the agency above it (cơ quan chủ quản, printed above its name) and the
    receiving unit (Nơi nhận)."""
    unit = Unit.get_by_id(report.unit_id)
    parent = Unit.get_or_none(Unit.id == unit.parent_id) if unit.parent_id else None
    receiver = Unit.get_or_none(Unit.id == report.receiver_id) if report.receiver_id else None
    return unit, parent, receiver


def _signature(report_id: int, version) -> dict | None:
    """The version's signature as the report page words it (the latest re-check counts)."""
    if version is None:
        return None
    row = signing.signatures_for(report_id).get(version.id)
    return signing.signature_view(row) if row is not None else None


def _document(report, *, table, sections, attachments, version, sources=None, draft=False,
              unit_name: str = "", label: str = "") -> dict:
    unit, parent, receiver = _units(report)
    report.unit = unit
    if label:  # a version prints the period as it was sent
        report.label = label
    dated = version.submitted_at if version is not None else None
    day = clock.local(dated).date() if dated is not None else clock.today()
    return {"report": report, "doc_unit_name": unit_name or unit.name, "doc_parent": parent,
            "doc_receiver": receiver, "doc_day": day, "table": table, "sections": sections, "attachments": attachments,
            "version": version, "signature": _signature(report.id, version), "sources": sources or [],
            "draft": draft, "status_labels": reporting.STATUS_LABELS, "problem_messages": signing.problem_messages,
            "printed_at": clock.utcnow(), **_zone()}


def _zone() -> dict:
    """The zone every printed time is in, said once on the page ("Asia/Ho_Chi_Minh", "+07:00")."""
    offset = clock.now().strftime("%z")
    return {"zone_name": getattr(clock.zone(), "key", str(clock.zone())), "zone_offset": f"{offset[:3]}:{offset[3:]}"}


def report_document(access, report_id: int) -> dict:
    """A report as it stands now. Once submitted or accepted its content is the latest version's,
    so that version's signature is printed; before that the document is marked as a draft."""
    report = reporting.get_report(access, report_id)  # the report page's own lookup: 404 when not readable
    versions = reporting.versions(report.id)
    sent = report.status in ("submitted", "accepted") and bool(versions)
    table, sections, attachments = None, [], []
    if report.form_version_id is not None:
        sheet = reporting.load_sheet(access, report.id, report=report)
        table = _table_of_sheet(sheet)
        sections = [(s.get("title") or s["key"], sheet.sections.get(s["key"], "")) for s in sheet.form.outline]
        attachments = [{"name": a.name, "size": a.size, "sha256": a.sha256} for a in sheet.attachments]
    sources = None
    if report.kind == reporting.CONSOLIDATED_KIND:
        sources, _ = reporting.sources_overview(access, report)
    return _document(report, table=table, sections=sections, attachments=attachments,
                     version=versions[0] if sent else None, sources=sources, draft=not sent)


def version_document(access, report_id: int, number: int) -> dict:
    """Version n exactly as it was sent: its frozen content and its signature."""
    report = reporting.get_report(access, report_id)  # as the version's downloads: the report first
    version = _version(report.id, number)
    if version is None:
        raise NotFound()
    content = reporting.version_content(version)
    table = _table_of_version(version, content)
    titles = {}
    if table is not None:
        form = reporting.FormVersion.get_by_id(version.form_version_id).compiled()
        titles = {s["key"]: s.get("title") or s["key"] for s in form.outline}
        for key in titles:  # every section of the outline, an empty one as empty
            (content.setdefault("sections", {})).setdefault(key, "")
    sections = _in_outline_order(content.get("sections") or {}, titles)
    # A consolidated report's sources are not part of the frozen content: only its own print lists them.
    sent = content.get("report") or {}
    return _document(report, table=table, sections=sections, attachments=content.get("attachments") or [],
                     version=version, unit_name=str(sent.get("unit_name") or ""),
                     label=str((sent.get("period") or {}).get("label") or ""))


@require()
async def report_print(request):
    context = await run_db(report_document, request.state.access, request.path_params["id"])
    return await render(request, "core/report_print/document.html", context)


@require()
async def version_print(request):
    context = await run_db(version_document, request.state.access, request.path_params["id"],
                           request.path_params["number"])
    return await render(request, "core/report_print/document.html", context)


ROUTES = [
    Route("/reports/{id:int}/print", report_print, methods=["GET"], name="report_print"),
    Route("/reports/{id:int}/versions/{number:int}/print", version_print, methods=["GET"],
          name="report_version_print"),
]
