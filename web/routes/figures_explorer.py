"""The figures explorer ``/figures`` ("Tra cứu số liệu") and its Excel file.

- ``/figures``: a GET form (indicators found with the catalogue's search, a unit with none, one or
  every level of its subordinates, the date of the unit tree, a frequency and a range of periods,
  value kinds, totals or every disaggregation option, which dimensions go in the rows and which in
  the columns) and the pivot table it asks for. Without JavaScript the form reloads the page; with
  htmx only the result is fetched again (the indicator list and the period lists come with it, out
  of band, since a search or another frequency changes them).
- ``/figures/export.xlsx``: the same table as a file.

Everything it shows is ``core.catalogue.explorer``'s: the figures through the public query, units
as at the date with former communes counted into their successors. A unit asked for by code that
does not exist or that the person may not see answers 404.
"""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.routing import Route

from core.catalogue import explorer
from core.catalogue.indicators import VALUE_KIND_LABELS, VALUE_KINDS
from core.db import reading_from_replica, run_db_reading
from core.errors import NotFound
from core.regimes.periods import FREQUENCIES
from web.background import export as background_export
from web.guards import require
from web.templating import render

VIEW = "core.indicator.view"
FREQUENCY_LABELS = {f: f"explorer.frequency.{f}" for f in FREQUENCIES}
POSITION_LABELS = {p: ("explorer.position.row" if p[0] == "r" else "explorer.position.column", int(p[1:]))
                   for p in explorer.POSITIONS}


def _translator(request):
    catalog, lang = request.app.state.registry.catalog, request.state.lang

    def t(key, **params):
        return catalog.gettext(lang, key, **params)

    return t


def _context(access, params, t, lang: str) -> dict | None:
    choice = explorer.Choice.from_params(params)
    page = explorer.explore(access, choice, t, lang)
    if page is None:
        return None

    def link(path: str = "/figures", **changes) -> str:
        return path + "?" + urlencode(choice.params(**changes), doseq=True)

    return {
        "page": page, "c": choice,
        # Indented from the highest unit the person sees, not from the top of the whole tree.
        "picker_base": min((u.depth for u in page.picker), default=0),
        "swap_href": "/figures?" + urlencode(choice.params(positions=choice.swapped_positions()), doseq=True),
        "export_href": link("/figures/export.xlsx"),
        "period_choices": explorer.period_choices(choice.frequency, page.years, lang),
        "from_key": explorer.period_key(choice.start), "to_key": explorer.period_key(choice.end),
        "at_iso": choice.at.isoformat(),
        "dimensions": explorer.DIMENSIONS, "dimension_labels": explorer.DIMENSION_LABELS,
        "positions": explorer.POSITIONS, "position_labels": POSITION_LABELS,
        "scopes": explorer.SCOPES, "scope_labels": explorer.SCOPE_LABELS,
        "option_choices": explorer.OPTION_CHOICES, "option_labels": explorer.OPTION_LABELS,
        "frequencies": FREQUENCIES, "frequency_labels": FREQUENCY_LABELS,
        "value_kinds": VALUE_KINDS, "value_kind_labels": VALUE_KIND_LABELS,
        "describe": explorer.describe(page, t, lang) if page.pivot is not None else [],
        "note_text": lambda note: note.text(t, lang),
        "screen_cells": explorer.SCREEN_CELLS, "max_codes": explorer.MAX_CODES,
        "search_shown": explorer.SEARCH_SHOWN,
    }


@require(VIEW)
async def explorer_page(request):
    # Read-only, and may be seconds old: from the replica when one is set (docs/topology.md).
    context = await run_db_reading(request.app.state.settings.database_replica_url, _context, request.state.access,
                                   request.query_params, _translator(request), request.state.lang)
    if context is None:
        raise HTTPException(404)
    return await render(request, "core/figures/explorer.html", context, partial="core/figures/_result.html")


def _file(access, params, t, lang: str, actor) -> tuple[bytes, str] | None:
    page = explorer.explore(access, explorer.Choice.from_params(params), t, lang)
    if page is None:
        return None
    if page.pivot is None:
        return b"", ""
    return explorer.workbook(page, t, lang, actor=actor), explorer.filename(page)


@require(VIEW)
async def explorer_export(request):
    args = (request.state.access, request.query_params, _translator(request), request.state.lang, request.state.actor)

    replica_url = request.app.state.settings.database_replica_url

    def build():
        with reading_from_replica(replica_url):  # the job's own rows stay on the primary
            found = _file(*args)
        if found is None:
            raise NotFound()
        return found

    async def refused():
        # Nothing to put in a file (no indicator chosen, or the question refused): the page says why.
        return Response(status_code=303, headers={"Location": "/figures?" + request.url.query})

    def answer(content, name):
        return Response(content, media_type=explorer.XLSX_MEDIA,
                        headers={"Content-Disposition": f'attachment; filename="{name}"',
                                 "Cache-Control": "private, no-store"})

    # Every indicator over every commune of a province takes a while: past a second it is a job
    # whose page offers the file when it is ready (web.background).
    return await background_export(request, kind="explorer.export", title="background.title.explorer_export",
                                   build=build, answer=answer, media_type=explorer.XLSX_MEDIA,
                                   back_url="/figures?" + request.url.query, refused=refused)


ROUTES = [
    Route("/figures", explorer_page, methods=["GET"], name="figures_explorer"),
    Route("/figures/export.xlsx", explorer_export, methods=["GET"], name="figures_explorer_export"),
]
