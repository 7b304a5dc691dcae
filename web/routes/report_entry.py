"""The data-entry page of a report: the grid of its form, the live recalculation, the save with
optimistic locking, cell comments, the narrative sections and the attachments.

Everything is decided in ``core.reporting.data`` (who may fill or read, what a cell accepts, what
clashes); this module turns a posted grid into ``save`` calls and answers with the page, or —
for htmx — with out-of-band fragments: computed cells, the validation panel, the cell errors,
the new bases. The grid posts every input with the value the person started from (``base.r.c``);
only cells whose typed value differs from their base are sent to ``save``, so a cell someone
else changed meanwhile is refreshed rather than reported as a clash when this person never
touched it. Without JavaScript the same form posts as a whole page and works.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from core.db import run_db
from core.errors import BaocaoError, Forbidden, NotFound
from core.regimes.form_engine import CellInputError, canonical, parse_number
from core import clock
from core.numbers import input_text as number_text, parse_canonical
from core.reporting import facade as reporting
from web.middleware import MAX_FORM_FIELDS  # a grid posts two fields per input cell (value and base)
from web.guards import require
from web.params import parse_int
from web.templating import render

MAX_UPLOAD_SLACK = 64 * 1024  # multipart overhead above the attachment size limit


def cell_key(row: str, col: str) -> str:
    return f"{row}.{col}"


def input_text(value, lang: str = "vi") -> str:
    """An input cell's text, written the way the page's language writes numbers and read back as
    the same number (``core.numbers.input_text``)."""
    return number_text(value, lang)


def _split_cell(text: str) -> tuple[str, str] | None:
    row, sep, col = (text or "").partition(".")
    return (row, col) if sep and row and col else None


# -- reading the posted grid ------------------------------------------------------------------

class Posted:
    """What the grid form sent: typed texts and bases per input cell, sections and their bases."""

    def __init__(self, form, lang: str = "vi"):
        self.lang = lang  # typed texts are read the way this language writes numbers
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
                    self.texts[cell] = input_text(parse_canonical(theirs), self.lang) if theirs else ""

    def changed_cells(self) -> dict:
        """Cells whose typed value differs from their base (an unreadable text always counts)."""
        out = {}
        for cell, text in self.texts.items():
            base = self.bases.get(cell, "")
            try:
                if canonical(parse_number(text, self.lang)) == canonical(parse_canonical(base)):
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
                values[cell] = parse_number(text, self.lang)
            except CellInputError as exc:
                errors[cell_key(*cell)] = exc
        return values, errors


# -- page context -----------------------------------------------------------------------------

def _input_cells(report) -> list[tuple[str, str]]:
    """The report's input cells in its period, from the compiled form (cached), no values read."""
    return reporting.FormVersion.get_by_id(report.form_version_id).compiled().input_cells(report.period_index)


def _indicator_names(version, sheet=None) -> dict[str, str]:
    """code → name of the indicators the version's rows name; from ``sheet`` (of that version) when
    there is one, kept per process while the catalogue is unchanged (``Sheet.indicator_names``:
    shared, only read)."""
    from core.regimes.forms import current_indicators

    try:
        if sheet is not None:
            return sheet.indicator_names()
        return {code: ind.name for code, ind in current_indicators(version.data()).items()}
    except Exception:  # noqa: BLE001 — a label is a nicety; the code is shown instead
        return {}


def page_context(access, report_id: int, *, posted: Posted | None = None, errors: dict | None = None,
                 conflicts=None, saved_at=None, notice: str | None = None, attachment_error=None, pm=None) -> dict:
    report = reporting.get_report(access, report_id)
    actor = access.actor
    if actor is not None and actor.unit_id == report.unit_id:
        report.unit = actor.unit  # read with the session: the page's header names it without a query
    from web.routes.report_workflow import workflow_context  # the submit / accept / return card

    context = {"report": report, "status_labels": reporting.STATUS_LABELS, "sheet": None, "errors": errors or {},
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
    sheet = reporting.load_sheet(access, report_id, report=report, overrides=overrides)
    context.update(sheet=sheet, editable=sheet.editable,
                   indicator_names=_indicator_names(sheet.version, sheet),
                   form_code=sheet.version.form.code, can_fill=reporting.can_fill(access, report))
    if posted is not None:
        # The page comes back with what the person typed, and the bases they started from.
        context["texts"] = {cell_key(*c): t for c, t in posted.texts.items()}
        context["bases"] = {cell_key(*c): b for c, b in posted.bases.items()}
        context["section_texts"] = dict(posted.sections)
        context["section_bases"] = dict(posted.section_bases)
    return context


def shown_text(where: str, text: str, lang: str = "vi") -> str:
    """A value of the conflict panel as the person would type it (a section: its first lines)."""
    if where.startswith("section:"):
        return text if len(text) <= 300 else text[:300] + "…"
    try:
        return input_text(parse_canonical(text), lang) if text else ""
    except CellInputError:
        return text


async def _render(request, template: str, context: dict, **kwargs):
    settings = request.app.state.settings
    lang = request.state.lang
    helpers = {"shown_text": lambda where, text: shown_text(where, text, lang),
               "attachment_max_mb": settings.attachment_max_mb,
               "attachment_types": ", ".join(sorted(reporting.ATTACHMENT_TYPES))}
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
    imported = parse_int(request.query_params.get("imported", ""), minimum=0, maximum=10**9)
    if imported is not None:  # back from a successful Excel upload (web/routes/report_excel.py)
        context["imported"] = imported
    return await _page(request, context)


# -- live recalculation -----------------------------------------------------------------------

def _calc(access, report_id: int, posted: Posted) -> dict:
    report = reporting.get_report(access, report_id)
    if report.form_version_id is None:
        raise BaocaoError("report_data.error.no_form")
    overrides, errors = posted.overrides(_input_cells(report))
    sheet = reporting.load_sheet(access, report_id, report=report, overrides=overrides)
    return {"sheet": sheet, "errors": errors, "report": report,
            "shown_values": reporting.value_texts(sheet, posted.lang), "menu": []}  # a fragment: no menu to build


@require()
async def entry_calc(request):
    posted = Posted(await request.form(max_fields=MAX_FORM_FIELDS), request.state.lang)
    context = await run_db(_calc, request.state.access, _report_id(request), posted)
    return await _render(request, "core/report_entry/_calc.html", context)


# -- saving -----------------------------------------------------------------------------------

def _save(access, report_id: int, posted: Posted) -> dict:
    """Save what changed, every valid cell even when others are refused; the outcome says what the
    screen must show whatever happened."""
    posted.resolve()
    cells = posted.changed_cells()
    sections = posted.changed_sections()
    outcome: dict = {"errors": {}, "conflicts": [], "saved_at": None, "failure": None, "status": 200,
                     "result": None}
    try:
        result = reporting.save(access, report_id, cells, sections, source="screen", lang=posted.lang, partial=True)
        outcome.update(result=result, errors=result.errors, status=422 if result.errors else 200,
                       saved_at=clock.now())  # shown as HH:MM, in the instance's time zone like every time
    except reporting.SaveConflict as exc:
        if exc.conflicts:
            outcome.update(conflicts=exc.conflicts, status=409)
        else:  # others kept saving between each of its tries: nothing clashes, it is only busy
            outcome.update(failure=BaocaoError("report_entry.save.try_again"), status=503)
    except (NotFound, Forbidden):
        raise
    except BaocaoError as exc:
        outcome.update(failure=exc, status=422)
    return outcome


def _answer(access, report, posted: Posted, outcome: dict) -> dict:
    """What the autosave's answer carries: only what changes on the page. The new bases of the
    cells and sections now stored; cells and sections someone else changed that this person had
    not touched (or the saved value they chose to take in a conflict); the computed cells whose
    value differs from the state the page started from (its bases); the validation panel only when
    its messages changed; the cell errors; the revision the page now shows, for the sign form.
    Nothing is read again: the save hands over the state it left."""
    report_id, result = report.id, outcome["result"]
    version = (result.version if result is not None and result.version is not None
               else reporting.FormVersion.get_by_id(report.form_version_id))
    form, index = version.compiled(), report.period_index
    inputs = reporting.input_cells(form, index)
    new_bases, refreshed, section_bases, taken = {}, {}, {}, {}
    # A conflict choice holds even when the save is refused for another cell.
    for where, mine in ((posted.keep, True), (posted.take, False)):
        if not where or where not in posted.theirs:
            continue
        theirs = posted.theirs[where]
        if where.startswith("section:"):
            section_bases[where[8:]] = theirs
            if not mine:
                taken[where[8:]] = theirs
        elif (cell := _split_cell(where)) and cell in inputs:
            new_bases[where] = theirs
            if not mine:
                refreshed[cell] = posted.texts.get(cell, "")
    before: dict = {}  # the inputs as the page had them before this person typed (its bases)
    changed_inputs = False
    if result is not None:
        stored = result.stored
        for cell in inputs:
            now = canonical(stored.get(cell))
            base = posted.bases.get(cell)
            try:
                base_value = parse_canonical(base) if base is not None else stored.get(cell)
            except CellInputError:
                base_value = stored.get(cell)  # an unreadable base: as stored
            before[cell] = base_value
            if canonical(base_value) == now:
                continue
            changed_inputs = True
            new_bases[cell_key(*cell)] = now
            text = posted.texts.get(cell)
            try:
                untouched = text is None or canonical(parse_number(text, posted.lang)) == canonical(base_value)
            except CellInputError:
                untouched = False
            if untouched:  # someone else changed a cell this person did not touch: show theirs
                refreshed[cell] = input_text(stored.get(cell), posted.lang)
        for s in form.outline:
            key = s["key"]
            now = result.sections.get(key, "")
            base = posted.section_bases.get(key, "").replace("\r\n", "\n")
            if base == now:
                continue
            section_bases[key] = now
            text = posted.sections.get(key)
            if text is None or text.replace("\r\n", "\n") == base:
                taken[key] = now
    sheet, changed_values, messages_changed = None, [], False
    if outcome["conflicts"]:
        sheet = reporting.load_sheet(access, report_id, report=report)  # the conflict panel's labels
    elif result is not None and (changed_inputs or refreshed):
        sheet = reporting.load_sheet(access, report_id, report=report, saved=result, version=version)
        # Most often the state the previous autosave left, computed then (core.reporting.data.computed_state).
        shown_before, messages_before = reporting.computed_state(form, index, before, *sheet.prefill)
        everything = bool(posted.take)  # the page showed this person's value, now the saved one
        rows, columns = form.row_index, {c.key: c for c in sheet.columns}
        # Decimals compare as numbers (5 == 5.000000), as canonical() texts would, without making them.
        changed_values = [(rows[r], columns[c]) for (r, c), kind in sheet.kinds.items() if kind == "computed"
                          and (everything or shown_before.get((r, c)) != sheet.values.get((r, c)))]
        messages_changed = everything or messages_before != sheet.messages
    columns = {c.key: c for c in sheet.columns} if sheet else {}
    rows = form.row_index
    errors = outcome["errors"]
    if result is None:  # refused as a whole: the unreadable cells are still marked
        errors = {**posted.overrides(inputs)[1], **errors}
    return {"report": report, "sheet": sheet, "errors": errors, "conflicts": outcome["conflicts"],
            "indicator_names": _indicator_names(version, sheet) if refreshed or outcome["conflicts"] else {},
            "saved_at": outcome["saved_at"], "failure": outcome["failure"], "new_bases": new_bases,
            "refreshed": [(rows[r], columns[c], cell_key(r, c), text) for (r, c), text in refreshed.items()
                          if r in rows and c in columns],
            "shown_values": reporting.value_texts(sheet, posted.lang, changed_values) if changed_values else [],
            "messages_changed": messages_changed,
            "section_bases_new": section_bases,
            "taken": [(s, taken[s["key"]]) for s in form.outline if s["key"] in taken],
            "revision": result.revision if result is not None else None, "menu": []}


def _outcome_name(outcome: dict) -> str:
    if outcome["status"] == 503:
        return "busy"
    if outcome["failure"] is not None:
        return "failed"
    if outcome["conflicts"]:
        return "conflict"
    return "partial" if outcome["errors"] else "saved"


def _autosave(access, report_id: int, posted: Posted) -> dict:
    outcome = _save(access, report_id, posted)
    result = outcome["result"]  # saved: the report as the save left it, not read again
    report = result.report if result is not None and result.report is not None else reporting.get_report(access,
                                                                                                         report_id)
    context = _answer(access, report, posted, outcome)
    context["outcome"] = _outcome_name(outcome)
    context["status_labels"] = reporting.STATUS_LABELS  # the header's status: a first save makes a draft
    return context


def _keep_refused(posted: Posted, errors: dict) -> None:
    """After a partial save without JavaScript: the page comes back with the refused cells as typed
    and every other cell as stored now."""
    posted.texts = {c: t for c, t in posted.texts.items() if cell_key(*c) in errors}
    posted.bases = {c: b for c, b in posted.bases.items() if cell_key(*c) in errors}
    posted.sections = {k: t for k, t in posted.sections.items() if f"section:{k}" in errors}
    posted.section_bases = {k: b for k, b in posted.section_bases.items() if f"section:{k}" in errors}


@require()
async def entry_save(request):
    access, report_id = request.state.access, _report_id(request)
    posted = Posted(await request.form(max_fields=MAX_FORM_FIELDS), request.state.lang)
    if request.state.htmx:  # grid.js: the answer is a set of out-of-band fragments, 200 even on refusal
        context = await run_db(_autosave, access, report_id, posted)
        if context["outcome"] == "busy":  # grid.js asks again by itself
            return Response(status_code=503, headers={"Retry-After": "1"})
        return await _render(request, "core/report_entry/_saved.html", context)
    outcome = await run_db(_save, access, report_id, posted)
    if outcome["status"] == 200:
        return RedirectResponse(f"/reports/{report_id}?done=saved", status_code=303)
    if outcome["result"] is not None:
        _keep_refused(posted, outcome["errors"])
    context = await run_db(page_context, access, report_id, pm=request.app.state.pm, posted=posted, errors=outcome["errors"],
                           conflicts=outcome["conflicts"])
    if outcome["failure"] is not None:
        context["failure"] = outcome["failure"]
    return await _page(request, context, status_code=outcome["status"])


# -- comments ---------------------------------------------------------------------------------

def _comments_context(access, report_id: int, cell_text: str, *, error=None, text: str = "") -> dict:
    report = reporting.get_report(access, report_id)
    if report.form_version_id is None:
        raise NotFound()
    cell = _split_cell(cell_text)
    form = reporting.FormVersion.get_by_id(report.form_version_id).compiled()
    if cell is None or cell[0] not in form.row_index or cell[1] not in form.column_index:
        raise NotFound()
    row, col = form.row_index[cell[0]], form.column_index[cell[1]]
    from core.regimes.form_engine import column_label

    return {"report": report, "cell": cell_key(*cell), "row": row,
            "column_label": column_label(col, report.frequency, report.year, report.period_index),
            "comments": reporting.comments_of(report.id, *cell), "error": error, "text": text,
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
    text = str(form.get("text", ""))[:reporting.MAX_COMMENT + 100]
    cell = _split_cell(cell_text)
    error = None
    if cell is None:
        raise HTTPException(404)
    try:
        await run_db(reporting.add_comment, access, report_id, cell[0], cell[1], text)
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
    if (parse_int(length, minimum=0) or 0) > limit:
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
                await run_db(reporting.add_attachment, access, report_id, upload.filename, data, settings=settings)
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
    attachment, data = await run_db(reporting.get_attachment, request.state.access, _report_id(request),
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
        await run_db(reporting.delete_attachment, access, report_id, request.path_params["aid"], settings=settings)
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
