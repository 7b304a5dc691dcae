"""A report's form as an Excel file: the template to fill offline, the filled report, and the
upload of a filled template.

The template (``template``) is laid out like an official Vietnamese form — issuing line and unit
top left, the national motto top right, a centred title, the period and the receiving unit, then
the table (STT, Chỉ tiêu, Đơn vị tính, the period's columns, a numbering row (1), (2)...). Only
input cells are unlocked and the sheet is protected (against slips, not attackers: the password
is fixed). Computed cells carry the value now and, where the formula translates safely, an Excel
formula that keeps the engine's rule "an empty cell makes the result empty", so totals move as
people type.

A very hidden sheet ``_baocao`` identifies the report, the form version and the period, maps each
input cell (row key, column key) to its address, keeps the input values as downloaded (the base of
the per-cell optimistic lock) and the contents of every locked cell, all signed with an HMAC of
the application secret: an edited hidden sheet is refused, and so is a locked cell changed after
someone lifted the protection.

``import_upload`` reads the file in streaming mode (openpyxl ``read_only``: a sheet is parsed row
by row, never held whole) and only within the template's rows and columns — anything written
beyond them refuses the file at the first such cell, so a small file that unpacks to millions
of cells costs no more than the template. It checks the file against all of the above, parses
every input cell (a numeric cell exactly, a text cell the way the uploader's language writes
numbers, ``core.numbers``; formulas refused) and hands the cells the person changed to
``core.reporting.data.save`` — one transaction, all or nothing; refusals name each cell by its
address and its row and column labels. Uploading the same file twice changes nothing the second
time.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import re
import zipfile
from dataclasses import dataclass, field
from decimal import Decimal

from core.regimes import expressions
from core.errors import BaocaoError, Forbidden
from core.regimes.form_engine import CellInputError, canonical, parse_number
from core.numbers import parse_canonical

MAX_UPLOAD_BYTES = 5 * 1024 * 1024
MAX_UNPACKED_BYTES = 60 * 1024 * 1024  # a 5 MB zip that unpacks to gigabytes is refused unread
# Parts read whole even in streaming mode (shared strings, styles, the workbook): a template's are
# a few hundred kB; only worksheets are streamed.
MAX_WHOLE_PART_BYTES = 8 * 1024 * 1024
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024  # the hidden sheet's signed text (a 400 × 40 form: about 1 MB)
EXTENT_SLACK = 64  # rows / columns past the template still read (and refused cell by cell)
HIDDEN = "_baocao"
MAGIC = "baocao.report_excel"
FORMAT = 1
CHUNK = 30000  # an Excel cell holds 32 767 characters
PROTECTION_PASSWORD = "baocao"  # guards against slips, not attackers (the hidden sheet is signed)
XLSX_MEDIA = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

FIRST_COLUMNS = 3  # STT, Chỉ tiêu, Đơn vị tính
HEADER_ROW = 10
NUMBERING_ROW = 11
FIRST_DATA_ROW = 12

FILL = {"computed": "DDEBF7", "prefill": "FFF2CC", "greyed": "D9D9D9", "header": "F2F2F2"}


# -- errors -----------------------------------------------------------------------------------

class ExcelImportError(BaocaoError):
    """The file is refused as a whole (not an xlsx, another report...)."""

    key = "report_excel.error.unreadable"


@dataclass
class CellProblem:
    """One refused cell of an upload: its address, its labels and why."""

    address: str
    row_label: str
    column_label: str
    error: BaocaoError

    def message(self, lang: str = "vi") -> str:
        return self.error.message(lang)

    @property
    def where(self) -> str:
        labels = " / ".join(x for x in (self.row_label, self.column_label) if x)
        return f"{self.address} ({labels})" if labels else self.address


class CellsRefused(ExcelImportError):
    """Cells of the upload refused; ``problems`` lists each one. Nothing was saved."""

    key = "report_excel.error.cells"

    def __init__(self, problems: list[CellProblem]):
        super().__init__(count=len(problems))
        self.problems = problems


class NotANumber(BaocaoError):
    """An input cell that does not read as a number: the cell, then the engine's reason in the
    same language."""

    key = "report_excel.error.not_number"

    def __init__(self, reason: BaocaoError, *, cell: str):
        super().__init__(cell=cell, reason="")
        self.reason = reason

    def message(self, lang: str = "vi") -> str:
        from core.i18n import core_catalog

        return core_catalog().gettext(lang, self.key, cell=self.params["cell"], reason=self.reason.message(lang))


@dataclass
class ImportResult:
    changed_cells: int
    revision: int
    unchanged: int


# -- text of the file -------------------------------------------------------------------------

def _t(lang: str, key: str, **params) -> str:
    from core.i18n import core_catalog

    return core_catalog().gettext(lang, key, **params)


def _signing_key(secret: str) -> bytes:
    # One key per purpose, derived from the application secret (as web/signed_upload.py names its
    # purpose inside the signed message): a signature made here is worth nothing elsewhere.
    return hmac.new(secret.encode(), MAGIC.encode(), hashlib.sha256).digest()


def _sign(secret: str, text: str) -> str:
    return hmac.new(_signing_key(secret), text.encode(), hashlib.sha256).hexdigest()


def _number_format(decimals: int | None, percent: bool) -> str:
    if percent:
        return "0.0" if decimals is None else ("0" if decimals == 0 else "0." + "0" * decimals)
    if decimals is None:
        return "General"
    return "#,##0" if decimals == 0 else "#,##0." + "0" * decimals


def _excel_number(value: Decimal | None):
    if value is None:
        return None
    return int(value) if value == value.to_integral_value() and abs(value) < 10 ** 15 else float(value)


def _address(row: int, col: int) -> str:
    from openpyxl.utils import get_column_letter

    return f"{get_column_letter(col)}{row}"


@dataclass
class _Layout:
    """Where everything of one sheet goes."""

    rows: list  # form rows, in order
    columns: list  # ShownColumn
    row_of: dict = field(default_factory=dict)  # row key -> sheet row
    col_of: dict = field(default_factory=dict)  # column key -> sheet column

    @property
    def width(self) -> int:
        return FIRST_COLUMNS + len(self.columns)

    def address(self, row_key: str, col_key: str) -> str:
        return _address(self.row_of[row_key], self.col_of[col_key])


def _layout(sheet) -> _Layout:
    layout = _Layout(list(sheet.form.rows), list(sheet.columns))
    for n, r in enumerate(layout.rows):
        layout.row_of[r.key] = FIRST_DATA_ROW + n
    for n, c in enumerate(layout.columns):
        layout.col_of[c.key] = FIRST_COLUMNS + 1 + n
    return layout


def _cell_decimals(sheet, row, column) -> int | None:
    return column.decimals if column.decimals is not None else row.decimals


def _header_texts(sheet, lang: str) -> dict:
    report = sheet.report
    unit = report.unit
    parent = unit.parent.name if unit.parent_id else ""
    regime = report.regime
    receiver = report.receiver.name if report.receiver_id else ""
    form = sheet.version.form
    return {
        "issuer": parent.upper(), "unit": unit.name.upper(),
        "nation": _t(lang, "report_excel.head.nation"), "motto": _t(lang, "report_excel.head.motto"),
        "title": (sheet.form.title or regime.name).upper(),
        "form": _t(lang, "report_excel.head.form", code=form.code, version=sheet.version.version),
        "period": _t(lang, "report_excel.head.period", period=report.label),
        "reporter": _t(lang, "report_excel.head.reporter", unit=unit.name),
        "receiver": _t(lang, "report_excel.head.receiver", unit=receiver) if receiver else "",
    }


def _text(ws, row: int, col: int, text: str | None):
    """A text cell that stays text: a label a designer began with "=" is not a formula."""
    from core.export_safety import text_cell

    return text_cell(ws.cell(row=row, column=col, value=text or None))


def _write_sheet(ws, sheet, layout: _Layout, lang: str, *, formulas: bool) -> dict:
    """Header and table on ``ws``; returns {(row, col): formula} of computed cells written as formulas."""
    from openpyxl.styles import Alignment, Border, Font, PatternFill, Side

    texts = _header_texts(sheet, lang)
    width = layout.width
    split = max(2, min(3, width // 2))  # the left block (unit) and the right block (motto)
    bold, plain = Font(name="Times New Roman", bold=True, size=12), Font(name="Times New Roman", size=12)
    centre = Alignment(horizontal="center", vertical="center", wrap_text=True)

    def put(row, col, text, font=plain, last=None, align=centre):
        cell = _text(ws, row, col, text)
        cell.font, cell.alignment = font, align
        if last and last > col:
            ws.merge_cells(start_row=row, start_column=col, end_row=row, end_column=last)

    put(1, 1, texts["issuer"], plain, split)
    put(2, 1, texts["unit"], bold, split)
    put(1, split + 1, texts["nation"], bold, width)
    put(2, split + 1, texts["motto"], bold, width)
    put(4, 1, texts["title"], Font(name="Times New Roman", bold=True, size=14), width)
    put(5, 1, texts["form"], Font(name="Times New Roman", italic=True, size=12), width)
    put(6, 1, texts["period"], bold, width)
    put(7, 1, texts["reporter"], plain, width)
    put(8, 1, texts["receiver"], plain, width)

    thin = Side(style="thin", color="808080")
    box = Border(left=thin, right=thin, top=thin, bottom=thin)
    head_fill = PatternFill("solid", fgColor=FILL["header"])
    heads = [_t(lang, "report_excel.col.number"), _t(lang, "report_excel.col.label"),
             _t(lang, "report_excel.col.unit")] + [c.label for c in layout.columns]
    for n, text in enumerate(heads, start=1):
        for row, value in ((HEADER_ROW, text), (NUMBERING_ROW, f"({n})")):
            cell = _text(ws, row, n, value)
            cell.font = bold if row == HEADER_ROW else Font(name="Times New Roman", italic=True, size=10)
            cell.alignment, cell.border, cell.fill = centre, box, head_fill

    fills = {k: PatternFill("solid", fgColor=v) for k, v in FILL.items()}
    written_formulas = {}
    translator = _Translator(sheet, layout) if formulas else None
    for r in layout.rows:
        y = layout.row_of[r.key]
        font = bold if r.kind in ("heading", "computed") else plain
        for col, value, align in ((1, r.number, centre), (2, r.label, Alignment(vertical="center", wrap_text=True,
                                                                                indent=r.indent)),
                                  (3, r.unit, centre)):
            cell = _text(ws, y, col, value)
            cell.font, cell.alignment, cell.border = font, align, box
        for c in layout.columns:
            x = layout.col_of[c.key]
            kind = sheet.kinds[(r.key, c.key)]
            cell = ws.cell(row=y, column=x)
            cell.border, cell.font = box, font
            if kind in fills:
                cell.fill = fills[kind]
            if kind == "greyed":
                continue
            cell.number_format = _number_format(_cell_decimals(sheet, r, c), c.percent)
            cell.alignment = Alignment(horizontal="right", vertical="center")
            value = sheet.values.get((r.key, c.key))
            formula = translator.formula(r.key, c.key) if translator and kind == "computed" else None
            if formula:
                cell.value = formula
                written_formulas[(r.key, c.key)] = formula
            else:
                cell.value = _excel_number(value)
    ws.column_dimensions["A"].width = 7
    ws.column_dimensions["B"].width = 46
    ws.column_dimensions["C"].width = 12
    from openpyxl.utils import get_column_letter

    for c in layout.columns:
        ws.column_dimensions[get_column_letter(layout.col_of[c.key])].width = max(13, min(24, len(c.label) // 2 + 4))
    ws.row_dimensions[HEADER_ROW].height = 45
    ws.freeze_panes = ws.cell(row=FIRST_DATA_ROW, column=FIRST_COLUMNS + 1)
    ws.print_title_rows = f"{HEADER_ROW}:{NUMBERING_ROW}"
    ws.page_setup.orientation = "landscape"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.print_options.horizontalCentered = True
    return written_formulas


# -- formulas ---------------------------------------------------------------------------------

class _NoFormula(Exception):
    """The expression has no safe Excel translation: the cell gets its value only."""


class _Translator:
    """An engine formula as an Excel formula with the engine's meaning: an empty operand makes
    arithmetic and comparisons empty, sum/min/max/avg skip empty values, a division by zero is
    empty. Each translated part is (text, blank) — ``blank`` an Excel condition that is TRUE
    where the engine's value is empty, or None when it never is."""

    def __init__(self, sheet, layout: _Layout):
        self.sheet, self.layout = sheet, layout
        self.form = sheet.form
        self.row_keys = {r.key for r in self.form.rows}
        self._prior = None

    @property
    def prior(self) -> dict:
        """The year so far before this period, per cell of an accumulating column (one query)."""
        if self._prior is None:
            from core.reporting.data import prefill_for

            self._prior = prefill_for(self.form, self.sheet.report)[1] if self.sheet.report.unit_id else {}
        return self._prior

    def formula(self, row: str, col: str) -> str | None:
        program = self.form.programs.get((row, col))
        if program is None:
            return None
        try:
            if program[1] == "accumulate":
                return self._accumulate(row, col, program[0])
            column = self.form.column_index[col]
            row_obj = self.form.row_index[row]
            node = column.formula if column.kind == "computed" and not column.accumulate else row_obj.formula
            if node is None:
                return None
            text, blank = self._node(node, row, col)
        except _NoFormula:
            return None
        if blank is None:
            return f"=IFERROR({text},\"\")"
        return f"=IFERROR(IF({blank},\"\",{text}),\"\")"

    def _accumulate(self, row: str, col: str, source: str) -> str:
        # The year so far before this period is known now; this period's column is on the sheet.
        address = self._address(row, source)
        prior = self.prior.get((row, col))
        if prior is None:
            return f"=IF({address}=\"\",\"\",{address})"
        return f"={_literal(prior)}+N({address})"

    def _address(self, row: str, col: str) -> str:
        if row not in self.layout.row_of or col not in self.layout.col_of:
            raise _NoFormula()  # a column not shown in this period
        return self.layout.address(row, col)

    def _ref(self, ref, row: str, col: str) -> str:
        if ref.column:
            return self._address(ref.name, ref.column)
        if ref.name in self.row_keys:
            return self._address(ref.name, col)
        return self._address(row, ref.name)

    def _node(self, node, row: str, col: str):
        e = expressions
        if isinstance(node, e.Num):
            return _literal(node.value), None
        if isinstance(node, e.Bool):
            return ("TRUE" if node.value else "FALSE"), None
        if isinstance(node, e.Ref):
            address = self._ref(node, row, col)
            return address, f"{address}=\"\""
        if isinstance(node, e.Unary):
            text, blank = self._node(node.operand, row, col)
            if node.op == "not":
                if blank is not None:
                    raise _NoFormula()  # three-valued logic has no short Excel form
                return f"NOT({text})", None
            return f"({node.op}{text})", blank
        if isinstance(node, e.Binary):
            (lt, lb), (rt, rb) = self._node(node.left, row, col), self._node(node.right, row, col)
            if node.op in ("and", "or"):
                if lb is not None or rb is not None:
                    raise _NoFormula()
                return f"{node.op.upper()}({lt},{rt})", None
            blank = _any(lb, rb, f"{rt}=0" if node.op == "/" else None)
            return f"({lt}{node.op}{rt})", blank
        if isinstance(node, e.Call):
            return self._call(node, row, col)
        raise _NoFormula()

    def _call(self, node, row: str, col: str):
        parts = [self._node(a, row, col) for a in node.args]
        name = node.name
        if name in ("sum", "min", "max", "avg"):
            texts = []
            for arg, (text, blank) in zip(node.args, parts):
                if blank is None or isinstance(arg, expressions.Ref):
                    texts.append(text)  # a reference to an empty cell is skipped by Excel too
                elif name == "sum":
                    texts.append(f"IF({blank},0,{text})")
                else:
                    raise _NoFormula()
            blanks = [b for _, b in parts]
            blank = None if any(b is None for b in blanks) else _all(*blanks)
            excel = {"sum": "SUM", "min": "MIN", "max": "MAX", "avg": "AVERAGE"}[name]
            return f"{excel}({','.join(texts)})", blank
        if name == "abs":
            return f"ABS({parts[0][0]})", parts[0][1]
        if name == "round":
            return f"ROUND({parts[0][0]},{parts[1][0]})", parts[0][1]
        if name == "if":
            (ct, cb), (tt, tb), (et, eb) = parts
            inner = None if tb is None and eb is None else f"IF({ct},{tb or 'FALSE'},{eb or 'FALSE'})"
            return f"IF({ct},{tt},{et})", _any(cb, inner)
        if name == "coalesce":
            (ft, fb), (st, sb) = parts
            if fb is None:
                return ft, None
            return f"IF({fb},{st},{ft})", None if sb is None else _all(fb, sb)
        if name == "present":
            text, blank = parts[0]
            return (f"NOT({blank})" if blank else "TRUE"), None
        raise _NoFormula()


def _any(*conditions) -> str | None:
    present = [c for c in conditions if c]
    if not present:
        return None
    return present[0] if len(present) == 1 else f"OR({','.join(present)})"


def _all(*conditions) -> str:
    return conditions[0] if len(conditions) == 1 else f"AND({','.join(conditions)})"


def _literal(value: Decimal) -> str:
    text = canonical(value)
    return f"({text})" if text.startswith("-") else text


# -- the template -----------------------------------------------------------------------------

def _locked_contents(ws, inputs: set[tuple[int, int]]) -> dict[str, object]:
    out = {}
    for row in ws.iter_rows():
        for cell in row:
            if (cell.row, cell.column) in inputs or cell.value is None or cell.value == "":
                continue
            value = cell.value
            out[cell.coordinate] = value if isinstance(value, str) else float(value)
    return out


def template(sheet, *, secret: str, lang: str = "vi") -> bytes:
    """The report's form to fill in Excel, with the signed hidden sheet ``_baocao``."""
    import openpyxl
    from openpyxl.styles import Protection
    from openpyxl.workbook.protection import WorkbookProtection

    book = openpyxl.Workbook()
    ws = book.active
    ws.title = _t(lang, "report_excel.sheet.form")
    layout = _layout(sheet)
    formulas = _write_sheet(ws, sheet, layout, lang, formulas=True)
    inputs = []
    unlocked = Protection(locked=False)
    positions = set()
    for r in layout.rows:
        for c in layout.columns:
            if sheet.kinds[(r.key, c.key)] != "input":
                continue
            y, x = layout.row_of[r.key], layout.col_of[c.key]
            ws.cell(row=y, column=x).protection = unlocked
            positions.add((y, x))
            inputs.append([r.key, c.key, _address(y, x), canonical(sheet.values.get((r.key, c.key)))])
    ws.protection.sheet = True
    ws.protection.password = PROTECTION_PASSWORD
    ws.protection.formatColumns = False  # widening a column is not an edit
    ws.protection.formatRows = False
    report = sheet.report
    payload = {
        "magic": MAGIC, "format": FORMAT, "report": report.id, "label": _report_label(report, sheet),
        "form": sheet.version.form.code, "form_version": sheet.version.id, "version": sheet.version.version,
        "period": {"frequency": report.frequency, "year": report.year, "index": report.period_index,
                   "label": report.label},
        "sheet": ws.title, "inputs": inputs, "locked": _locked_contents(ws, positions),
    }
    text = json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    hidden = book.create_sheet(HIDDEN)
    hidden["A1"] = MAGIC
    hidden["A2"] = _sign(secret, text)
    for n in range(0, len(text), CHUNK):
        _text(hidden, 3 + n // CHUNK, 1, text[n:n + CHUNK])
    hidden.sheet_state = "veryHidden"
    hidden.protection.sheet = True
    hidden.protection.password = PROTECTION_PASSWORD
    book.security = WorkbookProtection(lockStructure=True)  # no unhiding, renaming or adding sheets
    book.calculation.fullCalcOnLoad = True
    out = io.BytesIO()
    book.save(out)
    return _with_cached_values(out.getvalue(), sheet, layout, formulas)


def _report_label(report, sheet) -> str:
    return f"{report.unit.name} — {report.label} — {sheet.version.form.code}"


def _with_cached_values(data: bytes, sheet, layout: _Layout, formulas: dict) -> bytes:
    """openpyxl writes a formula without its value: put today's value beside each formula, so a
    viewer that does not calculate (a preview, a phone) shows the totals too."""
    if not formulas:
        return data
    values = {}
    for (row, col) in formulas:
        value = sheet.values.get((row, col))
        if value is not None:
            values[layout.address(row, col)] = repr(_excel_number(value))
    if not values:
        return data
    pattern = re.compile(r'(<c r="([A-Z]+[0-9]+)"[^>]*>)(<f>[^<]*</f>)(?:<v\s*/>|<v>\s*</v>)?(</c>)')

    def fill(match):
        value = values.get(match.group(2))
        if value is None:
            return match.group(0)
        return f"{match.group(1)}{match.group(3)}<v>{value}</v>{match.group(4)}"

    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            content = source.read(info.filename)
            if info.filename == "xl/worksheets/sheet1.xml":
                content = pattern.sub(fill, content.decode("utf-8")).encode("utf-8")
            target.writestr(info, content)
    return out.getvalue()


# -- the filled report ------------------------------------------------------------------------

def export(sheet, *, lang: str = "vi") -> bytes:
    """The filled report: values (no formulas, no protection), the narrative on a second sheet,
    the validation messages on a third when there are any."""
    import openpyxl
    from openpyxl.styles import Alignment, Font

    book = openpyxl.Workbook()
    ws = book.active
    ws.title = _t(lang, "report_excel.sheet.form")
    layout = _layout(sheet)
    _write_sheet(ws, sheet, layout, lang, formulas=False)
    bold = Font(name="Times New Roman", bold=True, size=12)
    wrap = Alignment(wrap_text=True, vertical="top")
    notes = book.create_sheet(_t(lang, "report_excel.sheet.sections"))
    notes.column_dimensions["A"].width = 110
    y = 1
    for section in sheet.form.outline:
        _text(notes, y, 1, section["title"]).font = bold
        text = sheet.sections.get(section["key"], "")
        cell = _text(notes, y + 1, 1, text)
        cell.alignment = wrap
        y += 3
    if sheet.messages:
        checks = book.create_sheet(_t(lang, "report_excel.sheet.messages"))
        for n, head in enumerate(("report_excel.col.severity", "report_excel.col.cell", "report_excel.col.message"), 1):
            checks.cell(row=1, column=n, value=_t(lang, head)).font = bold
        for y, m in enumerate(sheet.messages, start=2):
            address = ""
            if m.row in layout.row_of and m.column in layout.col_of:
                address = layout.address(m.row, m.column)
            _text(checks, y, 1, _t(lang, f"report_excel.severity.{m.severity}"))
            checks.cell(row=y, column=2, value=address or None)
            _text(checks, y, 3, m.text.get(lang) or m.text.get("vi")).alignment = wrap
        checks.column_dimensions["A"].width = 14
        checks.column_dimensions["B"].width = 8
        checks.column_dimensions["C"].width = 100
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def filename(sheet, kind: str = "BM") -> str:
    """``BM-<form code>-<unit code>-<period>.xlsx`` (``kind`` BM for the template, BC for the report)."""
    report = sheet.report
    if report.frequency in ("monthly", "quarterly", "half_year"):
        period = f"{report.year}-{report.period_index:02d}"
    elif report.frequency == "annual":
        period = str(report.year)
    else:
        period = report.period_start.isoformat()
    return f"{kind}-{sheet.version.form.code}-{report.unit.code}-{period}.xlsx"


# -- the upload -------------------------------------------------------------------------------

def _read_book(data: bytes):
    import openpyxl

    if not data:
        raise ExcelImportError("report_excel.error.empty")
    if len(data) > MAX_UPLOAD_BYTES:
        raise ExcelImportError("report_excel.error.too_big", limit=MAX_UPLOAD_BYTES // (1024 * 1024))
    if not data.startswith(b"PK\x03\x04"):
        raise ExcelImportError("report_excel.error.not_xlsx")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            if sum(info.file_size for info in archive.infolist()) > MAX_UNPACKED_BYTES:
                raise ExcelImportError("report_excel.error.too_big", limit=MAX_UPLOAD_BYTES // (1024 * 1024))
            if any(info.file_size > MAX_WHOLE_PART_BYTES and not info.filename.startswith("xl/worksheets/")
                   for info in archive.infolist()):
                raise ExcelImportError("report_excel.error.too_big", limit=MAX_UPLOAD_BYTES // (1024 * 1024))
            if "xl/workbook.xml" not in archive.namelist():
                raise ExcelImportError("report_excel.error.not_xlsx")
        # Streaming: worksheets are parsed row by row as they are read, never loaded whole.
        return openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=False)
    except ExcelImportError:
        raise
    except Exception:  # noqa: BLE001 — whatever a damaged file makes openpyxl raise, the person reads one reason
        raise ExcelImportError("report_excel.error.unreadable") from None


def read_payload(book, *, secret: str) -> dict:
    """The hidden sheet's content, its signature checked; raises ExcelImportError."""
    if HIDDEN not in book.sheetnames:
        raise ExcelImportError("report_excel.error.no_hidden")
    hidden = book[HIDDEN]
    # One pass over column A, as many rows as the largest payload takes (a read-only sheet
    # re-parses the file on every cell() call): magic, signature, the text in chunks.
    last = 2 + -(-MAX_PAYLOAD_BYTES // CHUNK)
    column = [row[0] if row else None
              for row in hidden.iter_rows(min_row=1, max_row=last, min_col=1, max_col=1, values_only=True)]
    column += [None] * (3 - len(column))
    if column[0] != MAGIC:
        raise ExcelImportError("report_excel.error.tampered")
    signature = column[1]
    parts = []
    for value in column[2:]:
        if not (isinstance(value, str) and value):
            break
        parts.append(value)
    text = "".join(parts)
    # As bytes: compare_digest refuses a str with non-ASCII characters, and the cell can hold anything.
    if not isinstance(signature, str) or not hmac.compare_digest(_sign(secret, text).encode(),
                                                                 signature.encode("utf-8", "surrogatepass")):
        raise ExcelImportError("report_excel.error.tampered")
    try:
        payload = json.loads(text)
    except ValueError:
        raise ExcelImportError("report_excel.error.tampered") from None
    if payload.get("magic") != MAGIC or payload.get("format") != FORMAT:
        raise ExcelImportError("report_excel.error.tampered")
    return payload


def _same_locked(recorded, found) -> bool:
    if found is None or found == "":
        return recorded is None or recorded == ""
    if recorded is None:
        return False  # something written where the template had nothing
    if isinstance(recorded, str):
        if not isinstance(found, str):
            return False
        if recorded.startswith("="):
            return _formula_text(recorded) == _formula_text(found)
        return recorded.replace("\r\n", "\n") == found.replace("\r\n", "\n")
    if isinstance(found, bool) or not isinstance(found, (int, float, Decimal)):
        return False
    a, b = float(recorded), float(found)
    return abs(a - b) <= 1e-9 * max(1.0, abs(a))  # Excel keeps doubles; a re-save may move the last digit


def _formula_text(text: str) -> str:
    return text.replace(" ", "").replace("_xlfn.", "").upper()


def _labels(sheet) -> tuple[dict, dict]:
    rows = {r.key: " ".join(x for x in (r.number, r.label) if x) for r in sheet.form.rows}
    cols = {c.key: c.label for c in sheet.columns}
    return rows, cols


def import_upload(access, report_id: int, data: bytes, *, secret: str, lang: str = "vi") -> ImportResult:
    """Read a filled template and save the cells the person changed, all or nothing. ``lang``:
    how text cells holding numbers are read (the uploader's language)."""
    from core.reporting import data as report_data

    report = report_data.get_report(access, report_id)
    if not report_data.can_fill(access, report):
        raise Forbidden()
    if report.status not in report_data.EDITABLE:
        raise BaocaoError("report_data.error.not_editable", status=report.status)
    if report.form_version_id is None:
        raise BaocaoError("report_data.error.no_form")
    book = _read_book(data)
    try:
        return _import_book(access, report, book, secret=secret, lang=lang)
    finally:
        book.close()


def _import_book(access, report, book, *, secret: str, lang: str) -> ImportResult:
    from core.reporting import data as report_data

    payload = read_payload(book, secret=secret)
    if payload.get("report") != report.id:
        raise ExcelImportError("report_excel.error.other_report", label=str(payload.get("label", "")))
    sheet = report_data.load_sheet(access, report.id, report=report)
    if payload.get("form_version") != report.form_version_id:
        raise ExcelImportError("report_excel.error.other_version", form=str(payload.get("form", "")),
                               got=payload.get("version", "?"), expected=sheet.version.version)
    name = payload.get("sheet")
    if name not in book.sheetnames:
        raise ExcelImportError("report_excel.error.no_sheet", sheet=str(name))
    ws = book[name]
    row_labels, col_labels = _labels(sheet)
    layout = _layout(sheet)
    where = {}  # address -> (row label, column label) for messages
    for r in layout.rows:
        for c in layout.columns:
            where[layout.address(r.key, c.key)] = (row_labels.get(r.key, ""), col_labels.get(c.key, ""))

    def problem(address: str, error: BaocaoError) -> CellProblem:
        labels = where.get(address, ("", ""))
        return CellProblem(address, labels[0], labels[1], error)

    allowed = set(sheet.form.input_cells(report.period_index))
    inputs = {}
    for row_key, col_key, address, base in payload.get("inputs", []):
        inputs[address] = (row_key, col_key, base)
    problems: list[CellProblem] = []
    locked = payload.get("locked", {})
    found = _cells_within(ws, _extent(set(locked) | set(inputs)))
    for address in sorted(set(locked) | (set(found) - set(inputs)), key=_sort_key):
        if address in inputs:
            continue
        cell = found.get(address)
        if not _same_locked(locked.get(address), cell.value if cell is not None else None):
            problems.append(problem(address, BaocaoError("report_excel.error.locked_edited",
                                                         cell=_where(address, where))))
    cells = {}
    unchanged = 0
    for address, (row_key, col_key, base) in sorted(inputs.items(), key=lambda item: _sort_key(item[0])):
        if (row_key, col_key) not in allowed:
            problems.append(problem(address, BaocaoError("report_excel.error.tampered")))
            continue
        cell = found.get(address)
        try:
            value = _input_value(cell, lang)
        except CellInputError as exc:
            problems.append(problem(address, NotANumber(exc, cell=_where(address, where))))
            continue
        except _FormulaInInput:
            problems.append(problem(address, BaocaoError("report_excel.error.formula", cell=_where(address, where))))
            continue
        base_value = parse_canonical(base)  # written by the template itself: "1.234" is 1.234
        if canonical(value) == canonical(base_value):
            unchanged += 1
            continue  # not changed in the file: a value typed on screen since stays
        cells[(row_key, col_key)] = (base_value, value)
    if problems:
        raise CellsRefused(problems)
    address_of = {(r, c): a for a, (r, c, _) in inputs.items()}
    try:
        result = report_data.save(access, report.id, cells=cells, source="excel")
    except report_data.CellErrors as exc:
        mapped = []
        for key, error in exc.errors.items():
            r, _, c = key.partition(".")
            mapped.append(problem(address_of.get((r, c), key), error))
        raise CellsRefused(mapped) from None
    except report_data.SaveConflict as exc:
        if not exc.conflicts:
            raise ExcelImportError("report_excel.error.busy") from None
        mapped = []
        for conflict in exc.conflicts:
            r, _, c = conflict.where.partition(".")
            address = address_of.get((r, c), conflict.where)
            mapped.append(problem(address, BaocaoError("report_excel.error.conflict", cell=_where(address, where),
                                                       yours=conflict.yours or "∅", theirs=conflict.theirs or "∅")))
        raise CellsRefused(mapped) from None
    return ImportResult(result.changed_cells, result.revision, unchanged + len(cells) - result.changed_cells)


class _FormulaInInput(Exception):
    pass


def _extent(addresses) -> tuple[int, int]:
    """(last row, last column) of the template: its signed locked and input cells."""
    from openpyxl.utils.cell import coordinate_from_string, column_index_from_string

    rows, columns = [FIRST_DATA_ROW], [FIRST_COLUMNS + 1]
    for address in addresses:
        try:
            letters, number = coordinate_from_string(address)
        except ValueError:
            continue
        rows.append(number)
        columns.append(column_index_from_string(letters))
    return max(rows), max(columns)


def _cells_within(ws, extent: tuple[int, int]) -> dict:
    """Address → cell of every non-empty cell, reading the sheet row by row and refusing it at the
    first value beyond the template's extent and a margin, or once more cells than that area
    holds have gone by: what is read is bounded by the template, not by the file."""
    from openpyxl.utils import get_column_letter

    last_row, last_col = extent
    budget = (last_row + EXTENT_SLACK) * (last_col + EXTENT_SLACK)
    limits = {"rows": last_row, "last": f"{get_column_letter(last_col)}{last_row}"}
    ws.reset_dimensions()  # the file's own <dimension> may lie (A1:XFD1048576): pad nothing by it
    found, seen = {}, 0
    for row in ws.iter_rows():
        seen += max(1, len(row))  # missing rows are yielded empty: they count too
        if seen > budget:
            raise ExcelImportError("report_excel.error.too_many_cells", **limits)
        for cell in row:
            if cell.value is None:
                continue
            if cell.row > last_row + EXTENT_SLACK or cell.column > last_col + EXTENT_SLACK:
                raise ExcelImportError("report_excel.error.beyond_template", cell=cell.coordinate, **limits)
            # Just past the template: listed with the other cells as a locked cell written into.
            found[cell.coordinate] = cell
    return found


def _input_value(cell, lang: str = "vi") -> Decimal | None:
    if cell is None or cell.value is None:
        return None
    value = cell.value
    if cell.data_type == "f" or (isinstance(value, str) and value.lstrip().startswith("=")):
        raise _FormulaInInput()
    if isinstance(value, bool) or not isinstance(value, (str, int, float, Decimal)):
        raise CellInputError(value=str(value)[:40])  # a date, a true/false value...
    return parse_number(value, lang)  # a numeric cell is exact; a text cell is read in ``lang``


def _where(address: str, where: dict) -> str:
    labels = " / ".join(x for x in where.get(address, ()) if x)
    return f"{address} ({labels})" if labels else address


def _sort_key(address: str):
    match = re.match(r"([A-Z]+)(\d+)", address)
    if not match:
        return (0, 0, address)
    from openpyxl.utils import column_index_from_string

    return (int(match.group(2)), column_index_from_string(match.group(1)), address)
