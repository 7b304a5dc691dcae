"""A report through Excel (issue 5): the template laid out like an official form with only the input
cells unlocked and a signed hidden sheet, the upload checked against it (another report, another
form version, edited locked cells, an edited hidden sheet, text that is not a number — each refused
with nothing saved), the same file twice changing nothing, and the filled report exported.
Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import json
import math
from decimal import Decimal

import openpyxl
import pytest

from core.reporting import excel as fx
from core.regimes import forms as fm
from core.reporting import data as rd
from core.audit import AuditEvent
from core.errors import BaocaoError, Forbidden, NotFound
from core.catalogue.figures import Figure, put_values
from core.reporting.opening import Report
from tests.fixtures.forms import definition, form_world

SECRET = "excel-test-secret-" + "y" * 30
D = Decimal
# March 2026 shows: D prev (pre-filled), E cur (input), F ytd, G same (pre-filled), H ratio; rows 12 heading,
# 13 banle, 14 dulich, 15 tong (computed).
BANLE, DULICH, TONG = "E13", "E14", "E15"


@pytest.fixture
def w(db_session):
    return form_world()


def download(w, who="reporter", report=None) -> bytes:
    sheet = rd.load_sheet(w.p[who], (report or w.report).id)
    return fx.template(sheet, secret=SECRET)


def edit(data: bytes, values: dict, sheet: str = "Biểu") -> bytes:
    book = openpyxl.load_workbook(io.BytesIO(data))
    for address, value in values.items():
        book[sheet][address] = value
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def upload(w, data: bytes, who="reporter", report=None) -> fx.ImportResult:
    return fx.import_upload(w.p[who], (report or w.report).id, data, secret=SECRET)


def stored(w) -> dict:
    return rd.stored_values(w.report.id)


def test_the_template_is_laid_out_like_an_official_form(w):
    book = openpyxl.load_workbook(io.BytesIO(download(w)))
    assert book.sheetnames == ["Biểu", "_baocao"]
    ws = book["Biểu"]
    assert (ws["A1"].value, ws["A2"].value) == ("TỈNH QUẢNG TRỊ", "XÃ ÁI TỬ")
    assert ws["D1"].value == "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM" and ws["D2"].value == "Độc lập - Tự do - Hạnh phúc"
    assert ws["A4"].value == "BIỂU SỐ 01/KTXH: MỘT SỐ CHỈ TIÊU KINH TẾ - XÃ HỘI CHỦ YẾU"
    assert ws["A5"].value == "Biểu số: BM-THANG (phiên bản 1)"
    assert ws["A6"].value == "Kỳ báo cáo: Tháng 3 năm 2026"
    assert ws["A8"].value == "Đơn vị nhận báo cáo: Tỉnh Quảng Trị"
    assert [c.value for c in ws[10]] == ["STT", "Chỉ tiêu", "Đơn vị tính", "Tháng 2/2026", "Thực hiện tháng 3/2026",
                                         "Lũy kế 3 tháng năm 2026", "Tháng 3/2025", "Tháng 3 so với cùng kỳ (%)"]
    assert [c.value for c in ws[11]] == [f"({n})" for n in range(1, 9)]
    assert [ws[f"B{n}"].value for n in (12, 13, 14, 15)] == ["Thương mại", "Tổng mức bán lẻ hàng hóa",
                                                            "Doanh thu du lịch", "Cộng"]
    assert ws.freeze_panes == "D12" and ws.print_title_rows == "$10:$11"
    assert ws.page_setup.orientation == "landscape" and ws.sheet_properties.pageSetUpPr.fitToPage
    # Vietnamese number formats per column decimals; the ratio is a percentage with one decimal.
    assert ws[BANLE].number_format == "#,##0.0" and ws["H13"].number_format == "0.0"


def test_only_input_cells_are_unlocked_and_the_sheet_is_protected(w):
    book = openpyxl.load_workbook(io.BytesIO(download(w)))
    ws = book["Biểu"]
    assert ws.protection.sheet
    assert not ws[BANLE].protection.locked and not ws[DULICH].protection.locked
    for address in ("A1", "B13", "D13", "F13", "G13", "H13", TONG, "E12"):
        assert ws[address].protection.locked, address
    fills = {a: ws[a].fill.fgColor.rgb[-6:] for a in ("E12", "D13", "F13", TONG)}
    assert fills == {"E12": fx.FILL["greyed"], "D13": fx.FILL["prefill"], "F13": fx.FILL["computed"],
                     TONG: fx.FILL["computed"]}
    hidden = book["_baocao"]
    assert hidden.sheet_state == "veryHidden" and hidden.protection.sheet and book.security.lockStructure


def test_computed_cells_carry_an_excel_formula_and_their_value(w):
    rd.save(w.p["reporter"], w.report.id, cells={("banle", "cur"): (rd.MISSING, "100"),
                                                 ("dulich", "cur"): (rd.MISSING, "20,5")})
    data = download(w)
    formulas = openpyxl.load_workbook(io.BytesIO(data))["Biểu"]
    values = openpyxl.load_workbook(io.BytesIO(data), data_only=True)["Biểu"]
    # The engine's rule: an empty part makes the total empty; a division by zero is empty.
    assert formulas[TONG].value == '=IFERROR(IF(OR(E13="",E14=""),"",(E13+E14)),"")'
    assert formulas["H13"].value == '=IFERROR(IF(OR(E13="",G13="",G13=0),"",((E13/G13)*100)),"")'
    assert formulas["F13"].value == '=IF(E13="","",E13)'  # nothing before March in the figures store
    shown = (values[BANLE].value, values[DULICH].value, values[TONG].value, values["F14"].value)
    assert shown == (100, 20.5, 120.5, 20.5)


def test_round_trip_fills_the_report_and_the_same_file_twice_changes_nothing(w):
    filled = edit(download(w), {BANLE: 120.5, DULICH: "1.234,5"})
    result = upload(w, filled)
    assert (result.changed_cells, result.revision, result.unchanged) == (2, 1, 0)
    assert stored(w) == {("banle", "cur"): D("120.5"), ("dulich", "cur"): D("1234.5")}
    sheet = rd.load_sheet(w.p["reporter"], w.report.id)
    assert sheet.values[("tong", "cur")] == D("1355.0") and sheet.values[("tong", "ytd")] == D("1355.0")
    assert Report.get_by_id(w.report.id).status == "draft"
    again = upload(w, filled)
    assert (again.changed_cells, again.revision, again.unchanged) == (0, 1, 2)
    assert AuditEvent.select().where(AuditEvent.action == "report.saved").count() == 1
    event = AuditEvent.get(AuditEvent.action == "report.saved")
    assert json.loads(event.details)["source"] == "excel"


def test_an_emptied_cell_is_cleared_and_untouched_cells_keep_what_was_typed_on_screen_since(w):
    rd.save(w.p["reporter"], w.report.id, cells={("banle", "cur"): (rd.MISSING, "10"),
                                                 ("dulich", "cur"): (rd.MISSING, "20")})
    data = download(w)
    rd.save(w.p["reporter"], w.report.id, cells={("dulich", "cur"): (D(20), "25")})  # on screen, after the download
    result = upload(w, edit(data, {BANLE: None}))
    assert result.changed_cells == 1
    assert stored(w) == {("dulich", "cur"): D(25)}


def test_a_cell_changed_on_screen_and_in_the_file_is_a_conflict_with_both_values(w):
    data = download(w)
    rd.save(w.p["reporter"], w.report.id, cells={("banle", "cur"): (rd.MISSING, "50")})
    with pytest.raises(fx.CellsRefused) as exc:
        upload(w, edit(data, {BANLE: 70, DULICH: 5}))
    (problem,) = exc.value.problems
    assert problem.address == BANLE
    assert problem.message("vi") == ("Ô E13 (1 Tổng mức bán lẻ hàng hóa / Thực hiện tháng 3/2026) đã được người khác "
                                     "sửa thành 50 sau khi tải mẫu; giá trị trong tệp là 70. Hãy tải mẫu mới.")
    assert stored(w) == {("banle", "cur"): D(50)}


def test_text_that_is_not_a_number_is_refused_cell_by_cell_with_nothing_stored(w):
    data = edit(download(w), {BANLE: "mười hai", DULICH: "=E13*2"})
    with pytest.raises(fx.CellsRefused) as exc:
        upload(w, data)
    problems = {p.address: p for p in exc.value.problems}
    assert set(problems) == {BANLE, DULICH}
    assert problems[BANLE].row_label == "1 Tổng mức bán lẻ hàng hóa"
    assert problems[BANLE].column_label == "Thực hiện tháng 3/2026"
    vi, en = problems[BANLE].message("vi"), problems[BANLE].message("en")
    assert vi.startswith("Ô E13 (1 Tổng mức bán lẻ hàng hóa / Thực hiện tháng 3/2026): ") and "mười hai" in vi
    assert en.startswith("Cell E13 (") and "mười hai" in en
    assert "công thức" in problems[DULICH].message("vi") and "formula" in problems[DULICH].message("en")
    assert exc.value.message("vi") == "Tệp có 2 ô không hợp lệ. Chưa có số liệu nào được lưu."
    assert stored(w) == {} and Report.get_by_id(w.report.id).revision == 0


def test_one_bad_cell_refuses_the_whole_file(w):
    with pytest.raises(fx.CellsRefused):
        upload(w, edit(download(w), {BANLE: 10, DULICH: "1,2,3"}))
    assert stored(w) == {}


def test_an_edited_locked_cell_is_refused_naming_the_cell(w):
    data = edit(download(w), {BANLE: 5, "D13": 99, "B14": "Doanh thu khác", TONG: 1000, "K40": "ghi chú"})
    with pytest.raises(fx.CellsRefused) as exc:
        upload(w, data)
    problems = {p.address: p.message("vi") for p in exc.value.problems}
    assert set(problems) == {"D13", "B14", TONG, "K40"}
    assert problems["D13"] == "Ô D13 (1 Tổng mức bán lẻ hàng hóa / Tháng 2/2026) bị khóa nhưng đã bị sửa."
    assert problems["K40"] == "Ô K40 bị khóa nhưng đã bị sửa."
    assert stored(w) == {}


def test_prefilled_figures_are_locked_values_and_the_year_so_far_starts_from_them(w):
    unit = w.u["aitu"].id
    put_values([Figure("KX0301", unit, "monthly", 2026, 1, "actual", "90"),
                Figure("KX0301", unit, "monthly", 2026, 2, "actual", "1234567.123456"),
                Figure("KX0301", unit, "monthly", 2025, 3, "actual", "80")], source="test")
    data = download(w)
    ws = openpyxl.load_workbook(io.BytesIO(data))["Biểu"]
    assert (ws["D13"].value, ws["G13"].value) == (1234567.123456, 80)
    assert ws["F13"].value == "=1234657.123456+N(E13)"  # January and February, then this month as typed
    # Excel keeps doubles: a re-save that moves the last binary digit of a locked number is no edit.
    assert upload(w, edit(data, {"D13": math.nextafter(1234567.123456, 2e6), BANLE: 3})).changed_cells == 1
    with pytest.raises(fx.CellsRefused):
        upload(w, edit(data, {"D13": 1234567.2, BANLE: 4}))


def test_labels_starting_with_an_equals_sign_stay_text_and_a_long_hidden_sheet_is_read_back(w, monkeypatch):
    changed = definition()
    changed["rows"][3]["label"] = "=Cộng"
    fm.new_version(w.p["editor"], w.form.id)
    fm.save_draft(w.p["editor"], w.form.id, changed)
    v2 = fm.publish(w.p["editor"], w.form.id)
    Report.update(form_version=v2.id).where(Report.id == w.report.id).execute()
    monkeypatch.setattr(fx, "CHUNK", 7)  # the signed text over many cells, some beginning with "="
    data = download(w)
    book = openpyxl.load_workbook(io.BytesIO(data))
    assert book["Biểu"]["B15"].data_type == "s" and book["Biểu"]["B15"].value == "=Cộng"
    assert all(c.data_type == "s" for (c,) in book["_baocao"].iter_rows(min_row=3))
    assert upload(w, edit(data, {BANLE: 7})).changed_cells == 1


def test_the_template_of_another_report_is_refused_with_its_label(w):
    other = download(w, who="other", report=w.other_report)
    with pytest.raises(fx.ExcelImportError) as exc:
        upload(w, edit(other, {BANLE: 1}))
    assert exc.value.key == "report_excel.error.other_report"
    assert exc.value.message("vi") == ("Tệp này là mẫu của báo cáo khác: Xã Cam Lộ — Tháng 3 năm 2026 — BM-THANG.")
    assert stored(w) == {}


def test_the_template_of_another_form_version_is_refused(w):
    data = download(w)
    fm.new_version(w.p["editor"], w.form.id)
    changed = definition()
    changed["columns"][1]["label"] = "Ước thực hiện tháng {m}"
    fm.save_draft(w.p["editor"], w.form.id, changed)
    v2 = fm.publish(w.p["editor"], w.form.id)
    Report.update(form_version=v2.id).where(Report.id == w.report.id).execute()  # the report moved to version 2
    with pytest.raises(fx.ExcelImportError) as exc:
        upload(w, edit(data, {BANLE: 1}))
    assert exc.value.key == "report_excel.error.other_version"
    assert "phiên bản 1" in exc.value.message("vi") and "phiên bản 2" in exc.value.message("vi")
    assert stored(w) == {}


def test_an_edited_hidden_sheet_is_refused(w):
    data = download(w)
    book = openpyxl.load_workbook(io.BytesIO(data))
    hidden = book["_baocao"]
    payload = json.loads(hidden["A3"].value)
    payload["locked"]["D13"] = 99  # make an edited pre-filled cell look original
    hidden["A3"] = json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    book["Biểu"]["D13"] = 99
    out = io.BytesIO()
    book.save(out)
    with pytest.raises(fx.ExcelImportError) as exc:
        upload(w, out.getvalue())
    assert exc.value.key == "report_excel.error.tampered"
    # A signature made with another secret is refused too.
    with pytest.raises(fx.ExcelImportError) as exc:
        fx.import_upload(w.p["reporter"], w.report.id, data, secret="another-secret-" + "z" * 30)
    assert exc.value.key == "report_excel.error.tampered"


def test_a_workbook_without_the_hidden_sheet_is_refused(w):
    book = openpyxl.load_workbook(io.BytesIO(download(w)))
    del book["_baocao"]
    out = io.BytesIO()
    book.save(out)
    with pytest.raises(fx.ExcelImportError) as exc:
        upload(w, out.getvalue())
    assert exc.value.key == "report_excel.error.no_hidden"


@pytest.mark.parametrize("data, key", [
    (b"", "report_excel.error.empty"),
    (b"STT;Chi tieu\n1;2\n", "report_excel.error.not_xlsx"),
    (b"PK\x03\x04" + b"\x00" * 200, "report_excel.error.unreadable"),
    (b"PK\x03\x04" + b"\x00" * (fx.MAX_UPLOAD_BYTES + 1), "report_excel.error.too_big"),
])
def test_a_file_that_is_not_a_readable_xlsx_is_refused(w, data, key):
    with pytest.raises(fx.ExcelImportError) as exc:
        upload(w, data)
    assert exc.value.key == key
    assert exc.value.message("vi") != exc.value.message("en") and key not in exc.value.message("en")


def test_a_zip_that_is_not_a_workbook_is_refused(w):
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("word/document.xml", "<w/>")
    with pytest.raises(fx.ExcelImportError) as exc:
        upload(w, out.getvalue())
    assert exc.value.key == "report_excel.error.not_xlsx"


def test_only_someone_who_fills_the_report_may_upload(w):
    data = edit(download(w), {BANLE: 1})
    with pytest.raises(NotFound):  # the department's viewer does not even see the commune's report
        upload(w, data, who="viewer")
    with pytest.raises(Forbidden):
        upload(w, data, who="issuer")  # the receiver reads the report but does not fill it
    Report.update(status="submitted").where(Report.id == w.report.id).execute()
    with pytest.raises(BaocaoError) as exc:
        upload(w, data)
    assert exc.value.key == "report_data.error.not_editable"
    assert stored(w) == {}


def test_the_export_holds_values_sections_and_messages(w):
    rd.save(w.p["reporter"], w.report.id, cells={("banle", "cur"): (rd.MISSING, "-5"),
                                                 ("dulich", "cur"): (rd.MISSING, "20")},
            sections={"ketqua": (rd.MISSING, "Bán lẻ tăng khá.")})
    sheet = rd.load_sheet(w.p["issuer"], w.report.id)  # the receiver may read and export
    book = openpyxl.load_workbook(io.BytesIO(fx.export(sheet)))
    assert book.sheetnames == ["Biểu", "Thuyết minh", "Kiểm tra"]
    ws = book["Biểu"]
    assert not ws.protection.sheet
    assert (ws[BANLE].value, ws[DULICH].value, ws[TONG].value, ws["F14"].value) == (-5, 20, 15, 20)
    assert not any(isinstance(c.value, str) and c.value.startswith("=") for row in ws.iter_rows() for c in row)
    notes = [c.value for c in book["Thuyết minh"]["A"]]
    assert notes[:2] == ["Kết quả thực hiện", "Bán lẻ tăng khá."] and "Đề xuất, kiến nghị" in notes
    checks = list(book["Kiểm tra"].iter_rows(values_only=True))
    assert checks[0] == ("Mức độ", "Ô", "Nội dung")
    assert ("Chặn gửi", BANLE, "Tổng mức bán lẻ hàng hóa: số liệu không được âm.") in checks
    assert fx.filename(sheet, "BC") == "BC-BM-THANG-AT-2026-03.xlsx"


def test_formulas_translate_functions_and_fall_back_to_values(w):
    from core.regimes.form_engine import compile_form

    d = definition()
    d["rows"].append({"key": "f1", "kind": "computed", "label": "Tổng hợp",
                      "formula": "round(coalesce(banle, 0) + sum(dulich, banle * 2), 1)"})
    d["rows"].append({"key": "f2", "kind": "computed", "label": "Điều kiện",
                      "formula": "if(banle > dulich, max(banle, dulich), -abs(dulich))"})
    d["rows"].append({"key": "f3", "kind": "computed", "label": "Sáu tháng", "formula": "banle.est6"})
    sheet = rd.load_sheet(w.p["reporter"], w.report.id)
    sheet.form = compile_form(d)
    layout = fx._layout(sheet)
    t = fx._Translator(sheet, layout)
    # coalesce: the fallback when empty; sum skips empty parts and is empty only when all are.
    assert t.formula("f1", "cur") == ('=IFERROR(IF(AND(E14="",E13=""),"",ROUND((IF(E13="",0,E13)+'
                                      'SUM(E14,IF(E13="",0,(E13*2)))),1)),"")')
    assert t.formula("f2", "cur") == ('=IFERROR(IF(OR(OR(E13="",E14=""),IF((E13>E14),AND(E13="",E14=""),E14="")),'
                                      '"",IF((E13>E14),MAX(E13,E14),(-ABS(E14)))),"")')
    assert t.formula("f3", "cur") is None  # the 6-month column is not shown in March: the value only


# -- issue 12: numbers by the uploader's language; uploads read in streaming mode -------------------

def test_text_cells_are_read_the_way_the_uploaders_language_writes_numbers(w):
    data = edit(download(w), {BANLE: "1,250.5", DULICH: 7})
    assert fx.import_upload(w.p["reporter"], w.report.id, data, secret=SECRET, lang="en").changed_cells == 2
    assert stored(w) == {("banle", "cur"): D("1250.5"), ("dulich", "cur"): D(7)}
    with pytest.raises(fx.CellsRefused) as exc:  # 1250 or 1.25? refused, both readings named
        fx.import_upload(w.p["reporter"], w.report.id, edit(data, {BANLE: "1,250"}), secret=SECRET, lang="en")
    [problem] = exc.value.problems
    assert problem.address == BANLE and "1250" in problem.message("en") and "1.25" in problem.message("en")
    assert stored(w)[("banle", "cur")] == D("1250.5")


def test_a_stored_fraction_with_three_decimals_is_not_read_back_as_thousands(w):
    # The template keeps each input's value as downloaded ("1.234"): that is 1.234, not 1234.
    rd.save(w.p["reporter"], w.report.id, {("banle", "cur"): (rd.MISSING, D("1.234"))})
    data = download(w)
    assert upload(w, data).changed_cells == 0  # unchanged, no clash with itself
    assert upload(w, edit(data, {DULICH: 3})).changed_cells == 1
    assert stored(w)[("banle", "cur")] == D("1.234")


def _with_sheet_xml(data: bytes, extra: bytes) -> bytes:
    """The workbook with ``extra`` rows added at the end of the form sheet's XML, as a hand-made
    file would carry them (openpyxl itself would take minutes to write two million cells)."""
    import zipfile

    source, out = zipfile.ZipFile(io.BytesIO(data)), io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            content = source.read(info.filename)
            if info.filename == "xl/worksheets/sheet1.xml":
                content = content.replace(b"</sheetData>", extra + b"</sheetData>")
            target.writestr(info.filename, content)
    return out.getvalue()


def _many_cells(first_row: int, rows: int, per_row: int, cell: bytes) -> bytes:
    body = cell * per_row
    return b"".join(b'<row r="%d">' % n + body + b"</row>" for n in range(first_row, first_row + rows))


def _peak_while(fn) -> int:
    import tracemalloc

    tracemalloc.start()
    try:
        fn()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


@pytest.mark.parametrize("cell, key", [
    (b"<c><v>1</v></c>", "report_excel.error.beyond_template"),  # values far outside the form
    (b'<c s="0"/>', "report_excel.error.too_many_cells"),  # nothing but empty cells, two million of them
])
def test_a_small_file_with_two_million_cells_is_refused_without_being_loaded(w, cell, key):
    data = _with_sheet_xml(edit(download(w), {BANLE: 5}), _many_cells(100, 2000, 1000, cell))
    assert len(data) <= fx.MAX_UPLOAD_BYTES  # passes the size checks, as the attack did
    refused = []

    def attempt():
        with pytest.raises(fx.ExcelImportError) as exc:
            upload(w, data)
        refused.append(exc.value)

    peak = _peak_while(attempt)
    assert refused[0].key == key and "A1" in refused[0].message("vi") and "A1" in refused[0].message("en")
    # Loading it whole costs gigabytes (openpyxl keeps an object per cell, ~0.5 kB); read as a
    # stream bounded by the template it stays within a few times the file itself.
    assert peak < 16 * 1024 * 1024, peak
    assert stored(w) == {}


def test_a_cell_just_past_the_template_is_named_with_the_others(w):
    # A value a little outside the form is listed with the other refused cells, not silently read.
    with pytest.raises(fx.CellsRefused) as exc:
        upload(w, edit(download(w), {BANLE: 5, "J20": 1}))
    assert [p.address for p in exc.value.problems] == ["J20"]
