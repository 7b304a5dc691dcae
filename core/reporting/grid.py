"""A report's grid cell by cell as the screens print it, worked out once in Python.

The entry page of a 60 × 13 form and a consolidation's read-only grid print hundreds of cells; a
Jinja macro call per cell (its kind, its number written the page's way, its comments) cost most
of the page's time (issue 17 item 5: bench/pages.py). Here each cell's kind, key and text are
computed in one pass and the templates only print them. The rule for a read-only number is the
one of the ``show`` macro (core/report_entry/_macros.html), which prints the single values of the
other screens: change both together.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.i18n import format_number
from core.numbers import input_text
from core.regimes.form_engine import canonical

SEVERITY_RANK = {"blocker": 4, "error": 3, "warning": 2, "info": 1}


@dataclass(frozen=True, slots=True)
class GridCell:
    column: object  # data.ShownColumn
    kind: str  # input, computed, prefill, greyed …
    key: str  # "row.column", as posted and as the comments' links name it
    ids: str  # "row-column", the element ids' tail
    text: str  # a read-only cell's value as shown; an input's value as typed
    base: str  # an input's stored value, canonical (what the optimistic lock compares)
    notes: int  # comments on the cell
    flag: str  # the worst validation message's severity at the cell, or ""


def shown(value, row, column, kind: str, lang: str) -> str:
    """A read-only value the way ``lang`` writes numbers, with the cell's decimals (column first,
    then row); a computed value without decimals keeps at most two."""
    if value is None:
        return ""
    decimals = column.decimals if column.decimals is not None else row.decimals
    if decimals is None and kind == "computed":
        decimals = 0 if _whole(value) else 2
    return format_number(value, lang, decimals)


def _whole(value) -> bool:
    try:
        return value == int(value)
    except (TypeError, ValueError):  # as Jinja's ``int`` filter: not a number → 0
        return value == 0


def grid_rows(sheet, lang: str, *, inputs: bool = False) -> list[tuple[object, list[GridCell]]]:
    """(row, its cells) for every row of ``sheet``'s form over its shown columns. ``inputs``: the
    input cells are fields to fill (their text is the stored value as an input shows it, with its
    base); otherwise every cell is shown read-only."""
    flags: dict[str, str] = {}
    for m in sheet.messages:
        cell = m.cell
        if cell and SEVERITY_RANK[m.severity] > SEVERITY_RANK.get(flags.get(cell), 0):
            flags[cell] = m.severity
    kinds, values, stored, comments = sheet.kinds, sheet.values, sheet.stored, sheet.comments
    out = []
    for row in sheet.form.rows:
        cells = []
        for column in sheet.columns:
            place = (row.key, column.key)
            kind = kinds[place]
            key = f"{row.key}.{column.key}"
            if kind == "input" and inputs:
                text, base = input_text(stored.get(place), lang), canonical(stored.get(place))
            elif kind == "greyed":
                text, base = "", ""
            else:
                text, base = shown(values.get(place), row, column, kind, lang), ""
            cells.append(GridCell(column, kind, key, f"{row.key}-{column.key}", text, base,
                                  len(comments.get(place) or ()), flags.get(key, "")))
        out.append((row, cells))
    return out


def value_texts(sheet, lang: str, cells=None) -> list[tuple[str, str]]:
    """("row-column", text) of computed cells as shown: ``cells`` ((row, column) objects of the
    sheet's form), or every computed cell in the grid's order — what the live recalculation and a
    save's answer put back out of band (core/report_entry/_values.html)."""
    if cells is None:
        kinds = sheet.kinds
        cells = [(row, column) for row in sheet.form.rows for column in sheet.columns
                 if kinds[(row.key, column.key)] == "computed"]
    values = sheet.values
    return [(f"{row.key}-{column.key}", shown(values.get((row.key, column.key)), row, column, "computed", lang))
            for row, column in cells]

