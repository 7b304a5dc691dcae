"""The data-entry page of a report: the grid of its form, the live recalculation, the save with
optimistic locking, cell comments, the narrative sections and the attachments.

Everything is decided in ``core.report_data`` (who may fill or read, what a cell accepts, what
clashes); this module turns a posted grid into ``save`` calls and answers with the page, or —
for htmx — with out-of-band fragments: computed cells, the validation panel, the cell errors,
the new bases. The grid posts every input with the value the person started from (``base.r.c``);
only cells whose typed value differs from their base are sent to ``save``, so a cell someone
else changed meanwhile is refreshed rather than reported as a clash when this person never
touched it. Without JavaScript the same form posts as a whole page and works.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from starlette.exceptions import HTTPException
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from core import report_data as rd
from core.db import run_db
from core.errors import BaocaoError, Forbidden, NotFound
from core.form_engine import CellInputError, canonical, parse_number
from core.i18n import VIETNAM_TZ, format_number
from core.reports import STATUS_LABELS
from web.middleware import MAX_FORM_FIELDS  # a grid posts two fields per input cell (value and base)
from web.guards import require
from web.templating import render

MAX_UPLOAD_SLACK = 64 * 1024  # multipart overhead above the attachment size limit


def cell_key(row: str, col: str) -> str:
    return f"{row}.{col}"


def input_text(value) -> str:
    """An input cell's text: always the Vietnamese way (``1.234,5``), whatever the page's language,
    because that is the one way ``parse_number`` reads back without ambiguity."""
    if value is None:
        return ""
    return format_number(Decimal(canonical(value)), "vi")


def _split_cell(text: str) -> tuple[str, str] | None:
    row, sep, col = (text or "").partition(".")
    return (row, col) if sep and row and col else None


# -- reading the posted grid ------------------------------------------------------------------

class Posted:
    """What the grid form sent: typed texts and bases per input cell, sections and their bases."""

    def __init__(self, form):
        self.texts: dict[tuple[str, str], str] = {}
        self.bases: dict[tuple[str, str], str] = {}
        self.sections: dict[str, str] = {}
        self.section_bases: dict[str, str] = {}
        self.theirs: dict[str, str] = {}
        for name, value in form.multi_items():
            if not isinstance(value, str):
                continue
            kind, _, rest = name.partition(".")
            if kind == "cell" and (cell := _split_cell(rest)):
                self.texts[cell] = value[:100]
            elif kind == "base" and (cell := _split_cell(rest)):
                self.bases[cell] = value[:100]
            elif kind == "section" and rest:
                self.sections[rest[:40]] = value
            elif kind == "sbase" and rest:
                self.section_bases[rest[:40]] = value
            elif kind == "theirs" and rest:
                self.theirs[rest[:90]] = value
        self.keep = str(form.get("keep", "") or "")[:90]  # a conflict resolved: keep my value
        self.take = str(form.get("take", "") or "")[:90]  # a conflict resolved: take the saved value

    def resolve(self) -> None:
        """Apply a conflict button: keep mine (the saved value becomes my base, so mine goes
        through), or take theirs (my value and base become the saved value)."""
        for where, mine in ((self.keep, True), (self.take, False)):
            if not where or where not in self.theirs:
                continue
            theirs = self.theirs[where]
            if where.startswith("section:"):
                key = where[len("section:"):]
                self.section_bases[key] = theirs
                if not mine:
                    self.sections[key] = theirs
            elif cell := _split_cell(where):
                self.bases[cell] = theirs
                if not mine:
                    self.texts[cell] = input_text(parse_number(theirs)) if theirs else ""

    def changed_cells(self) -> dict:
        """Cells whose typed value differs from their base (an unreadable text always counts)."""
        out = {}
        for cell, text in self.texts.items():
            base = self.bases.get(cell, "")
            try:
                if canonical(parse_number(text)) == canonical(parse_number(base) if base else None):
                    continue
            except CellInputError:
                pass
            out[cell] = (base, text)
        return out

    def changed_sections(self) -> dict:
        out = {}
        for key, text in self.sections.items():
            base = self.section_bases.get(key, "")
            if text.replace("\r\n", "\n") != base.replace("\r\n", "\n"):
                out[key] = (base, text)
        return out

    def overrides(self, sheet_inputs) -> tuple[dict, dict]:
        """(cell → Decimal | None for the live recalculation, "r.c" → error) of the typed texts."""
        allowed = set(sheet_inputs)
        values, errors = {}, {}
        for cell, text in self.texts.items():
            if cell not in allowed:
                continue
            try:
                values[cell] = parse_number(text)
            except CellInputError as exc:
                errors[cell_key(*cell)] = exc
        return values, errors


# -- page context -----------------------------------------------------------------------------

def _input_cells(report) -> list[tuple[str, str]]:
    """The report's input cells in its period, from the compiled form (cached), no values read."""
    return rd.FormVersion.get_by_id(report.form_version_id).compiled().input_cells(report.period_index)


def _indicator_names(sheet) -> dict[str, str]:
    from core.forms import current_indicators

    try:
        return {code: ind.name for code, ind in current_indicators(sheet.version.data()).items()}
    except Exception:  # noqa: BLE001 — a label is a nicety; the code is shown instead
        return {}


def page_context(access, report_id: int, *, posted: Posted | None = None, errors: dict | None = None,
                 conflicts=None, saved_at=None, notice: str | None = None, attachment_error=None, pm=None) -> dict:
    report = rd.get_report(access, report_id)
    from web.routes.report_workflow import workflow_context  # the submit / accept / return card

    context = {"report": report, "status_labels": STATUS_LABELS, "sheet": None, "errors": errors or {},
               "conflicts": conflicts or [], "saved_at": saved_at, "notice": notice,
               "attachment_error": attachment_error, "texts": {}, "bases": {}, "section_texts": {},
               "section_bases": {}, "theirs": {}, **workflow_context(access, report, pm=pm)}
    from web.routes.consolidation import banner_context  # a consolidated report's banner

    context.update(banner_context(access, report))
    if report.form_version_id is None:
        return context
    overrides = None
    if posted is not None:
        overrides, _ = posted.overrides(_input_cells(report))
    sheet = rd.load_sheet(access, report_id, report=report, overrides=overrides)
    context.update(sheet=sheet, editable=sheet.editable, indicator_names=_indicator_names(sheet),
                   form_code=sheet.version.form.code, can_fill=rd.can_fill(access, report))
    if posted is not None:
        # The page comes back with what the person typed, and the bases they started from.
        context["texts"] = {cell_key(*c): t for c, t in posted.texts.items()}
        context["bases"] = {cell_key(*c): b for c, b in posted.bases.items()}
        context["section_texts"] = dict(posted.sections)
        context["section_bases"] = dict(posted.section_bases)
    return context


def shown_text(where: str, text: str) -> str:
    """A value of the conflict panel as the person would type it (a section: its first lines)."""
    if where.startswith("section:"):
        return text if len(text) <= 300 else text[:300] + "…"
    try:
        return input_text(parse_number(text)) if text else ""
    except CellInputError:
        return text


async def _render(request, template: str, context: dict, **kwargs):
    settings = request.app.state.settings
    helpers = {"input_text": input_text, "canon": canonical, "shown_text": shown_text,
               "attachment_max_mb": settings.attachment_max_mb,
               "attachment_types": ", ".join(sorted(rd.ATTACHMENT_TYPES))}
    return await render(request, template, {**helpers, **context}, **kwargs)


async def _page(request, context: dict, status_code: int = 200):
    return await _render(request, "core/report_entry/page.html", context, status_code=status_code)


def _report_id(request) -> int:
    return request.path_params["id"]


# -- the page ---------------------------------------------------------------------------------

@require()
async def entry_page(request):
    notice = {"saved": "report_entry.saved_now", "uploaded": "report_entry.attachments.uploaded",
              "deleted": "report_entry.attachments.deleted"}.get(request.query_params.get("done", ""))
    context = await run_db(page_context, request.state.access, _report_id(request), pm=request.app.state.pm, notice=notice)
    imported = request.query_params.get("imported", "")
    if imported.isdigit():  # back from a successful Excel upload (web/routes/report_excel.py)
        context["imported"] = int(imported)
    return await _page(request, context)


# -- live recalculation -----------------------------------------------------------------------

def _calc(access, report_id: int, posted: Posted) -> dict:
    report = rd.get_report(access, report_id)
    if report.form_version_id is None:
        raise BaocaoError("report_data.error.no_form")
    overrides, errors = posted.overrides(_input_cells(report))
    sheet = rd.load_sheet(access, report_id, report=report, overrides=overrides)
    return {"sheet": sheet, "errors": errors, "report": report}


@require()
async def entry_calc(request):
    posted = Posted(await request.form(max_fields=MAX_FORM_FIELDS))
    context = await run_db(_calc, request.state.access, _report_id(request), posted)
    return await _render(request, "core/report_entry/_calc.html", context)


# -- saving -----------------------------------------------------------------------------------

def _save(access, report_id: int, posted: Posted) -> dict:
    """Save what changed; the answer says what the screen must show whatever happened."""
    posted.resolve()
    cells = posted.changed_cells()
    sections = posted.changed_sections()
    outcome: dict = {"errors": {}, "conflicts": [], "saved_at": None, "failure": None, "status": 200}
    try:
        rd.save(access, report_id, cells, sections, source="screen")
        outcome["saved_at"] = dt.datetime.now(VIETNAM_TZ)  # shown as HH:MM, Vietnam time like every time
    except rd.CellErrors as exc:
        outcome.update(errors=exc.errors, status=422)
    except rd.SaveConflict as exc:
        outcome.update(conflicts=exc.conflicts, status=409)
    except (NotFound, Forbidden):
        raise
    except BaocaoError as exc:
        outcome.update(failure=exc, status=422)
    return outcome


def _after_save(access, report_id: int, posted: Posted, outcome: dict) -> dict:
    """What the htmx answer needs: the sheet as saved (plus what is typed), the new bases, the
    cells and sections to refresh (someone else's change this person had not touched, or the
    saved value they chose to take in a conflict)."""
    report = rd.get_report(access, report_id)
    inputs = _input_cells(report)
    overrides, parse_errors = posted.overrides(inputs)
    sheet = rd.load_sheet(access, report_id, report=report, overrides=overrides)
    refreshed, new_bases, section_bases, taken = {}, {}, {}, {}
    # A conflict choice holds even when the save is refused for another cell.
    for where, mine in ((posted.keep, True), (posted.take, False)):
        if not where or where not in posted.theirs:
            continue
        theirs = posted.theirs[where]
        if where.startswith("section:"):
            section_bases[where[8:]] = theirs
            if not mine:
                taken[where] = theirs
        elif _split_cell(where):
            new_bases[where] = theirs
            if not mine:
                refreshed[where] = posted.texts[_split_cell(where)] if _split_cell(where) in posted.texts else ""
    if outcome["status"] == 200:
        stored = sheet.stored  # saved inputs (the overrides only change computed values)
        for cell in inputs:
            now = canonical(stored.get(cell))
            base = posted.bases.get(cell, "")
            try:
                base_value = canonical(parse_number(base)) if base else ""
            except CellInputError:
                base_value = None
            if base_value == now:
                continue
            new_bases[cell_key(*cell)] = now
            text = posted.texts.get(cell)
            try:
                untouched = text is None or canonical(parse_number(text)) == base_value
            except CellInputError:
                untouched = False
            if untouched:  # someone else changed a cell this person did not touch: show theirs
                refreshed[cell_key(*cell)] = input_text(stored.get(cell))
        for s in sheet.form.outline:
            key = s["key"]
            now = sheet.sections.get(key, "")
            base = posted.section_bases.get(key, "").replace("\r\n", "\n")
            if base == now:
                continue
            section_bases[key] = now
            text = posted.sections.get(key)
            if text is None or text.replace("\r\n", "\n") == base:
                taken[f"section:{key}"] = now
    errors = dict(parse_errors)
    errors.update(outcome["errors"])
    return {"sheet": sheet, "report": report, "errors": errors, "conflicts": outcome["conflicts"],
            "indicator_names": _indicator_names(sheet) if refreshed or outcome["conflicts"] else {},
            "saved_at": outcome["saved_at"], "failure": outcome["failure"], "new_bases": new_bases,
            "refreshed": refreshed, "section_bases_new": section_bases, "taken": taken}


@require()
async def entry_save(request):
    access, report_id = request.state.access, _report_id(request)
    posted = Posted(await request.form(max_fields=MAX_FORM_FIELDS))
    outcome = await run_db(_save, access, report_id, posted)
    if request.state.htmx:
        context = await run_db(_after_save, access, report_id, posted, outcome)
        # 200 even on refusal: the answer is a set of out-of-band fragments to show at once.
        return await _render(request, "core/report_entry/_saved.html", context)
    if outcome["status"] == 200:
        return RedirectResponse(f"/reports/{report_id}?done=saved", status_code=303)
    context = await run_db(page_context, access, report_id, pm=request.app.state.pm, posted=posted, errors=outcome["errors"],
                           conflicts=outcome["conflicts"])
    if outcome["failure"] is not None:
        context["failure"] = outcome["failure"]
    return await _page(request, context, status_code=outcome["status"])


# -- comments ---------------------------------------------------------------------------------

def _comments_context(access, report_id: int, cell_text: str, *, error=None, text: str = "") -> dict:
    report = rd.get_report(access, report_id)
    if report.form_version_id is None:
        raise NotFound()
    cell = _split_cell(cell_text)
    form = rd.FormVersion.get_by_id(report.form_version_id).compiled()
    if cell is None or cell[0] not in form.row_index or cell[1] not in form.column_index:
        raise NotFound()
    row, col = form.row_index[cell[0]], form.column_index[cell[1]]
    from core.form_engine import column_label

    return {"report": report, "cell": cell_key(*cell), "row": row,
            "column_label": column_label(col, report.frequency, report.year, report.period_index),
            "comments": rd.comments_of(report.id, *cell), "error": error, "text": text,
            "row_label": row.label or row.indicator}


@require()
async def comments_panel(request):
    context = await run_db(_comments_context, request.state.access, _report_id(request),
                           request.query_params.get("cell", ""))
    return await _render(request, "core/report_entry/comments.html", context,
                        partial="core/report_entry/_comments.html")


@require()
async def comment_add(request):
    access, report_id = request.state.access, _report_id(request)
    form = await request.form()
    cell_text = request.query_params.get("cell", "") or str(form.get("cell", ""))
    text = str(form.get("text", ""))[:rd.MAX_COMMENT + 100]
    cell = _split_cell(cell_text)
    error = None
    if cell is None:
        raise HTTPException(404)
    try:
        await run_db(rd.add_comment, access, report_id, cell[0], cell[1], text)
        text = ""
    except (NotFound, Forbidden):
        raise
    except BaocaoError as exc:
        error = exc
        if exc.key == "report_data.error.unknown_cell":
            raise HTTPException(404) from None
    context = await run_db(_comments_context, access, report_id, cell_text, error=error, text=text)
    if not request.state.htmx.wants_partial and error is None:
        return RedirectResponse(f"/reports/{report_id}/comments?cell={context['cell']}", status_code=303)
    context["count_oob"] = True
    return await _render(request, "core/report_entry/comments.html", context,
                        partial="core/report_entry/_comments.html", status_code=422 if error else 200)


# -- attachments ------------------------------------------------------------------------------

@require()
async def attachment_upload(request):
    access, report_id = request.state.access, _report_id(request)
    settings = request.app.state.settings
    limit = settings.attachment_max_mb * 1024 * 1024 + MAX_UPLOAD_SLACK
    length = request.headers.get("content-length", "")
    error = None
    if length.isdigit() and int(length) > limit:
        error = BaocaoError("report_data.error.file_too_big", limit=settings.attachment_max_mb)
    else:
        form = await request.form()
        upload = form.get("file")
        if upload is None or isinstance(upload, str) or not getattr(upload, "filename", ""):
            error = BaocaoError("report_entry.attachments.none_chosen")
        else:
            data = await upload.read(limit + 1)
            await form.close()
            try:
                await run_db(rd.add_attachment, access, report_id, upload.filename, data, settings=settings)
            except (NotFound, Forbidden):
                raise
            except BaocaoError as exc:
                error = exc
    if request.state.htmx.wants_partial:
        context = await run_db(page_context, access, report_id, pm=request.app.state.pm, attachment_error=error,
                               notice=None if error else "report_entry.attachments.uploaded")
        return await _render(request, "core/report_entry/_attachments.html", context,
                            status_code=422 if error else 200)
    if error is None:
        return RedirectResponse(f"/reports/{report_id}?done=uploaded#attachments", status_code=303)
    context = await run_db(page_context, access, report_id, pm=request.app.state.pm, attachment_error=error)
    return await _page(request, context, status_code=422)


@require()
async def attachment_download(request):
    settings = request.app.state.settings
    attachment, data = await run_db(rd.get_attachment, request.state.access, _report_id(request),
                                    request.path_params["aid"], settings=settings)
    from urllib.parse import quote

    ascii_name = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in attachment.name) or "file"
    disposition = f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(attachment.name, safe='')}"
    return Response(data, media_type=attachment.content_type,
                    headers={"Content-Disposition": disposition, "X-Content-Type-Options": "nosniff",
                             "Cache-Control": "private, no-store"})


@require()
async def attachment_delete(request):
    access, report_id = request.state.access, _report_id(request)
    settings = request.app.state.settings
    error = None
    try:
        await run_db(rd.delete_attachment, access, report_id, request.path_params["aid"], settings=settings)
    except (NotFound, Forbidden):
        raise
    except BaocaoError as exc:
        error = exc
    if request.state.htmx.wants_partial:
        context = await run_db(page_context, access, report_id, pm=request.app.state.pm, attachment_error=error,
                               notice=None if error else "report_entry.attachments.deleted")
        return await _render(request, "core/report_entry/_attachments.html", context,
                            status_code=422 if error else 200)
    if error is None:
        return RedirectResponse(f"/reports/{report_id}?done=deleted#attachments", status_code=303)
    context = await run_db(page_context, access, report_id, pm=request.app.state.pm, attachment_error=error)
    return await _page(request, context, status_code=422)


ROUTES = [
    Route("/reports/{id:int}", entry_page, methods=["GET"], name="report_entry"),
    Route("/reports/{id:int}/calc", entry_calc, methods=["POST"], name="report_entry_calc"),
    Route("/reports/{id:int}/save", entry_save, methods=["POST"], name="report_entry_save"),
    Route("/reports/{id:int}/comments", comments_panel, methods=["GET"], name="report_entry_comments"),
    Route("/reports/{id:int}/comments", comment_add, methods=["POST"], name="report_entry_comment_add"),
    Route("/reports/{id:int}/attachments", attachment_upload, methods=["POST"], name="report_entry_attachment_add"),
    Route("/reports/{id:int}/attachments/{aid:int}", attachment_download, methods=["GET"],
          name="report_entry_attachment"),
    Route("/reports/{id:int}/attachments/{aid:int}/delete", attachment_delete, methods=["POST"],
          name="report_entry_attachment_delete"),
]
