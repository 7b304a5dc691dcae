"""One escaping rule for every export (issue 12, item 10): ``core.export_safety``.

A text beginning with = + - @, a tab or a carriage return goes out as text: quoted in CSV
(OWASP), a string cell with the quote prefix in Excel; numbers are untouched. The unit list
export is tested end to end in tests/core/test_unit_io.py.
"""

from __future__ import annotations

import csv
import io
import zipfile

import openpyxl
import pytest

from core import export_safety

RISKY = ["=1+1", "+1", "-2+3", "@SUM(A1)", "\t=1+1", "\r=1+1", "=2+5+cmd|' /C calc'!A0", "-", "="]
PLAIN = ["Xã Gio Mỹ", "1-2", "a=b", "", " =1", "'quoted", "2025-07-01"]


@pytest.mark.parametrize("value", RISKY)
def test_a_risky_text_is_quoted_in_csv_and_the_importer_takes_the_quote_off(value):
    assert export_safety.csv_cell(value) == "'" + value
    assert export_safety.unquote(export_safety.csv_cell(value)) == value


@pytest.mark.parametrize("value", PLAIN + [12, -5, 1.5, None])
def test_anything_else_goes_out_as_it_is(value):
    assert export_safety.csv_cell(value) == value
    assert export_safety.unquote(value) == value


def test_a_csv_written_through_the_rule_opens_with_no_formula():
    out = io.StringIO()
    csv.writer(out).writerows([export_safety.csv_row(["ten", value, -5]) for value in RISKY])
    for row in csv.reader(io.StringIO(out.getvalue())):
        assert row[1][0] == "'" and row[2] == "-5"


@pytest.mark.parametrize("write_only", [True, False])
def test_excel_cells_keep_texts_as_text_with_the_quote_prefix_and_numbers_as_numbers(write_only):
    book = openpyxl.Workbook(write_only=write_only)
    sheet = book.create_sheet("x") if write_only else book.active
    for value in RISKY:
        if write_only:
            sheet.append([export_safety.write_only_cell(sheet, value), export_safety.write_only_cell(sheet, -5)])
        else:
            sheet.append([value, -5])
            export_safety.text_cell(sheet.cell(row=sheet.max_row, column=1))
    out = io.BytesIO()
    book.save(out)
    with zipfile.ZipFile(io.BytesIO(out.getvalue())) as package:
        xml = package.read(next(n for n in package.namelist() if n.startswith("xl/worksheets/sheet")))
    assert b"<f>" not in xml and b"<f " not in xml
    read = openpyxl.load_workbook(io.BytesIO(out.getvalue())).worksheets[0]
    for row, value in zip(read.iter_rows(), RISKY):
        assert row[0].data_type == "s" and row[0].quotePrefix
        assert row[0].value == value.replace("\r", "\n")  # XML reads a bare CR back as LF
        assert row[1].value == -5 and row[1].data_type == "n"
