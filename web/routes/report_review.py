"""The receiver's review of one report, and the differences between two of its versions.

``/reports/<id>/review``: the latest version as submitted (the figures as a read-only table, the
narrative, the attachments), what changed since the previous version, the accept button (it posts
to the workflow's own ``/reports/<id>/accept``) and the return form: a required reason and comment
lines, each a cell picked from the version's cells and a text. The return is
``core.reporting.queue.return_with_comments``: all or nothing. A refusal answers 422 with the page as
typed and each message at its field; "Add comment lines" answers the same page with more empty
lines and nothing saved, so it works without JavaScript.

``/reports/<id>/versions/<n>/diff?against=<m>``: the differences from version m (default n-1) to
version n, for anyone who may read the report; 404 otherwise, as for the report itself.

Data quality (``core.reporting.quality``): beside each judged figure far from the unit's history or
its peers, a mark and the expected range in the reader's number format; the list of those figures
with a form to mark any value for follow-up with a note (``POST /reports/<id>/followups``), and the
report's open follow-ups, each with its clear button (``web.routes.followups``).
"""

from __future__ import annotations

from itertools import zip_longest

from peewee import fn
from starlette.responses import RedirectResponse
from starlette.routing import Route

from core.signatures import signing
from core.db import run_db
from core.errors import BaocaoError, Forbidden, NotFound
from core.reporting import facade as reporting
from web.guards import require
from web.params import parse_int
from web.templating import render

SLOTS = 3  # comment lines shown at first, and added by "Add comment lines"


def _version(report_id: int, number: int):
    version = reporting.ReportVersion
    return version.get_or_none((version.report == report_id) & (version.number == number))


def _in_outline_order(sections: dict, titles: dict) -> list[tuple[str, str]]:
    """The narrative as the outline orders it (the canonical JSON sorts its keys), unknown keys last."""
    keys = [k for k in titles if k in sections] + sorted(set(sections) - set(titles))
    return [(titles.get(k, k), sections[k]) for k in keys]


def _cell_choices(grid: dict) -> list[tuple[str, str]]:
    """("row.col", "row — column") for every cell of the version's table that holds a value."""
    choices = []
    for row in grid["rows"]:
        for column, value in zip(grid["columns"], row["cells"]):
            if value is not None:
                choices.append((f"{row['key']}.{column['key']}", f"{row['label']} — {column['label']}"))
    return choices


def review_context(access, report_id: int, *, reason: str = "", slots: list | None = None,
                   errors: dict | None = None, quality_error=None, quality_cell: str = "",
                   quality_note: str = "") -> dict:
    report = reporting.get_report(access, report_id)
    if not reporting.can_receive(access, report):
        raise Forbidden()
    from core.models import Unit

    report.unit = Unit.get_by_id(report.unit_id)
    versions = reporting.versions(report.id)
    latest = versions[0] if versions else None
    previous = versions[1] if len(versions) > 1 else None
    grid = reporting.version_grid(latest) if latest else {"columns": [], "rows": []}
    content = reporting.version_content(latest) if latest else {}
    titles, form = {}, None
    if latest is not None:
        form = reporting.FormVersion.get_by_id(latest.form_version_id).compiled()
        titles = {s["key"]: s.get("title") or s["key"] for s in form.outline}
    # Values far from the unit's history or its peers, and the open follow-ups: a few grouped queries.
    quality = reporting.review_quality(report, report.unit.kind, form, content.get("values") or {}) \
        if latest is not None else None
    # Comments already on the cells (an earlier return, the unit's answers): a count and a link.
    notes = {f"{row}.{col}": n for row, col, n in
             reporting.ReportComment.select(reporting.ReportComment.row, reporting.ReportComment.column,
                                            fn.COUNT(reporting.ReportComment.id))
             .where(reporting.ReportComment.report == report.id)
             .group_by(reporting.ReportComment.row, reporting.ReportComment.column).tuples()}
    slots = list(slots or [])
    while len(slots) < SLOTS:
        slots.append(("", ""))
    choices = _cell_choices(grid)
    return {"report": report, "status_labels": reporting.STATUS_LABELS, "latest": latest, "previous": previous,
            "grid": grid, "sections": _in_outline_order(content.get("sections") or {}, titles),
            "attachments": content.get("attachments") or [],
            "diff": reporting.diff_versions(previous, latest) if previous else None,
            "notes": notes, "choices": choices, "reason": reason, "slots": slots, "errors": errors or {},
            "can_act": report.status == "submitted" and latest is not None,
            # The latest version's signature, as the report page words it (the reviewer receives it).
            "wf_signatures": {vid: signing.signature_view(row) for vid, row in signing.signatures_for(report.id).items()},
            "wf_problem_messages": signing.problem_messages, "wf_can_receive": True,
            "quality": quality, "cell_labels": dict(choices), "quality_error": quality_error,
            "quality_cell": quality_cell, "quality_note": quality_note, "followup_max_note": reporting.FOLLOWUP_MAX_NOTE}


DONE = {"marked": "quality.done.marked", "cleared": "quality.done.cleared"}


@require()
async def review_page(request):
    context = await run_db(review_context, request.state.access, request.path_params["id"])
    context["done"] = DONE.get(request.query_params.get("done", ""))
    return await render(request, "core/report_review/review.html", context)


@require()
async def mark_followup(request):
    """Mark a value of the latest version for follow-up, with a note; back to the review page's
    quality section. A refusal (no such value, a note too long) answers 422 with the page, the
    cell and the note as typed and the reason at the form."""
    access, report_id = request.state.access, request.path_params["id"]
    form = await request.form()
    cell = str(form.get("cell", ""))[:90]
    note = str(form.get("note", ""))[:reporting.FOLLOWUP_MAX_NOTE + 100]
    try:
        await run_db(reporting.mark_followup, access, report_id, cell, note)
    except (NotFound, Forbidden):
        raise
    except BaocaoError as exc:
        context = await run_db(review_context, access, report_id, quality_error=exc, quality_cell=cell,
                               quality_note=note)
        return await render(request, "core/report_review/review.html", context, status_code=422)
    return RedirectResponse(f"/reports/{report_id}/review?done=marked#review-quality", status_code=303)


@require()
async def review_return(request):
    access, report_id = request.state.access, request.path_params["id"]
    form = await request.form()
    reason = str(form.get("reason", ""))[:reporting.MAX_REASON + 100]
    cells = [str(c)[:90] for c in form.getlist("cell")]
    texts = [str(t)[:reporting.MAX_COMMENT + 100] for t in form.getlist("comment")]
    slots = list(zip_longest(cells, texts, fillvalue=""))[:reporting.MAX_RETURN_COMMENTS + SLOTS]
    if form.get("action") == "more":
        slots += [("", "")] * SLOTS
        context = await run_db(review_context, access, report_id, reason=reason, slots=slots)
        return await render(request, "core/report_review/review.html", context)
    try:
        await run_db(reporting.return_with_comments, access, report_id, reason, slots)
    except reporting.ReturnRefused as exc:
        errors = dict(exc.errors)
    except (NotFound, Forbidden):
        raise
    except BaocaoError as exc:
        errors = {"form": exc}
    else:
        return RedirectResponse(f"/reports/{report_id}?done=returned#workflow", status_code=303)
    context = await run_db(review_context, access, report_id, reason=reason, slots=slots, errors=errors)
    return await render(request, "core/report_review/review.html", context, status_code=422)


def diff_context(access, report_id: int, number: int, against: str) -> dict:
    report = reporting.get_report(access, report_id)  # NotFound for whoever may not read the report
    from core.models import Unit

    report.unit = Unit.get_by_id(report.unit_id)
    new = _version(report.id, number)
    if new is None:
        raise NotFound()
    if against:
        against_number = parse_int(against, minimum=0)
        if against_number is None or against_number == number:
            raise NotFound()
        old = _version(report.id, against_number)
        if old is None:
            raise NotFound()
    else:
        old = _version(report.id, number - 1) if number > 1 else None
    numbers = [v.number for v in reporting.ReportVersion.select(reporting.ReportVersion.number)
               .where(reporting.ReportVersion.report == report.id).order_by(reporting.ReportVersion.number)]
    return {"report": report, "new": new, "old": old, "numbers": numbers,
            "diff": reporting.diff_versions(old, new) if old is not None else None,
            "can_review": report.status == "submitted" and reporting.can_receive(access, report)}


@require()
async def version_diff(request):
    context = await run_db(diff_context, request.state.access, request.path_params["id"],
                           request.path_params["number"], request.query_params.get("against", "")[:10])
    return await render(request, "core/report_review/diff.html", context)


ROUTES = [
    Route("/reports/{id:int}/review", review_page, methods=["GET"], name="report_review"),
    Route("/reports/{id:int}/review/return", review_return, methods=["POST"], name="report_review_return"),
    Route("/reports/{id:int}/followups", mark_followup, methods=["POST"], name="report_followup_mark"),
    Route("/reports/{id:int}/versions/{number:int}/diff", version_diff, methods=["GET"], name="report_version_diff"),
]
