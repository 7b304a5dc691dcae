"""One rule for every file the system hands out: a text never becomes a spreadsheet formula.

A unit name, an indicator label or an audit detail is typed by someone; written as it is
into a CSV or an Excel cell, ``=HYPERLINK(...)`` or ``=2+5+cmd|' /C calc'!A0`` would run in
the spreadsheet of whoever opens the export (CSV/formula injection, OWASP). So a text
beginning with ``= + - @``, a tab or a carriage return is written as text:

* CSV: prefixed with a single quote, as OWASP recommends (the quote shows; the importers
  take it off again with ``unquote``, so an export read back changes nothing);
* Excel: the cell's type is string and its style has the quote prefix, so the value is kept
  exactly, shown as text and stays text when someone edits the cell.

Numbers, dates and the like are not touched: only texts carry formulas. Every export
(``csv.writer`` or an openpyxl workbook) goes through ``csv_row`` / ``text_cell`` /
``write_only_cell``.
"""

from __future__ import annotations

TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
QUOTE = "'"


def is_risky(value) -> bool:
    """Whether a spreadsheet could read ``value`` as a formula."""
    return isinstance(value, str) and value[:1] in TRIGGERS


def csv_cell(value):
    """One CSV cell: a risky text gets a leading quote; anything else as it is."""
    return QUOTE + value if is_risky(value) else value


def csv_row(row) -> list:
    return [csv_cell(value) for value in row]


def unquote(value):
    """Undo ``csv_cell`` for an importer: a quote followed by a trigger character goes."""
    if isinstance(value, str) and value[:1] == QUOTE and value[1:2] in TRIGGERS and value[1:2]:
        return value[1:]
    return value


def text_cell(cell):
    """Make an openpyxl cell that holds a text keep it as text (never a formula); returns it."""
    if isinstance(cell.value, str):
        cell.data_type = "s"  # openpyxl turns a text starting with "=" into a formula otherwise
        if is_risky(cell.value):
            cell.quotePrefix = True  # and Excel keeps it text when the cell is edited
    return cell


def write_only_cell(sheet, value, **style):
    """A cell for ``sheet.append`` in a write-only workbook, text kept as text, with ``style``
    (font=..., fill=..., number_format=...)."""
    from openpyxl.cell import WriteOnlyCell

    cell = text_cell(WriteOnlyCell(sheet, value=value))
    for name, setting in style.items():
        setattr(cell, name, setting)
    return cell
