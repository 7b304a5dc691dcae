"""Filling a report (issue 5): the sheet a report is filled through, saving with optimistic
locking per cell, bad input refused cell by cell with nothing written, sections, comments and
attachments. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from core.regimes import forms as fm
from core.reporting import data as rd
from core.audit import AuditEvent
from core.errors import BaocaoError, Forbidden, NotFound
from core.catalogue.figures import Figure, put_values
from core.reporting.opening import Report
from tests.fixtures.forms import definition, form_world

D = Decimal


@pytest.fixture
def w(db_session):
    return form_world()


def test_the_report_keeps_the_form_version_it_was_opened_with(w):
    assert w.report.form_version_id == w.version.id and w.report.period_index == 3
    # The form changes afterwards: the report still shows version 1.
    fm.new_version(w.p["editor"], w.form.id)
    changed = definition()
    changed["columns"][1]["label"] = "Ước thực hiện tháng {m}"
    fm.save_draft(w.p["editor"], w.form.id, changed)
    v2 = fm.publish(w.p["editor"], w.form.id)
    assert v2.version == 2 and fm.FormVersion.get_by_id(w.version.id).status == "retired"
    sheet = rd.load_sheet(w.p["reporter"], w.report.id)
    assert sheet.version.id == w.version.id
    assert [c.label for c in sheet.columns][:2] == ["Tháng 2/2026", "Thực hiện tháng 3/2026"]


def test_the_sheet_prefills_from_the_figures_store_and_computes(w):
    unit = w.u["aitu"].id
    put_values([Figure("KX0301", unit, "monthly", 2026, 2, "actual", "100"),
                Figure("KX0301", unit, "monthly", 2026, 1, "actual", "90"),
                Figure("KX0301", unit, "monthly", 2025, 3, "actual", "80"),
                Figure("KX0305", unit, "monthly", 2025, 3, "actual", "20")], source="test")
    rd.save(w.p["reporter"], w.report.id, {("banle", "cur"): (rd.MISSING, "110"), ("dulich", "cur"): (rd.MISSING, "30,5")})
    sheet = rd.load_sheet(w.p["reporter"], w.report.id)
    v = sheet.values
    assert v[("banle", "prev")] == D(100) and v[("banle", "same")] == D(80)
    assert v[("banle", "ytd")] == D(300)  # January and February stored, plus March typed
    assert v[("tong", "cur")] == D("140.5") and v[("tong", "same")] == D(100)
    assert v[("tong", "ratio")] == D("140.5")  # the ratio of the totals, not a sum of ratios
    assert [c.key for c in sheet.columns] == ["prev", "cur", "ytd", "same", "ratio"]  # est6: May only
    assert sheet.kinds[("h1", "cur")] == "greyed" and sheet.kinds[("tong", "cur")] == "computed"
    assert sheet.kinds[("banle", "prev")] == "prefill" and sheet.kinds[("banle", "cur")] == "input"


def test_rules_give_messages_at_their_cells(w):
    put_values([Figure("KX0301", w.u["aitu"].id, "monthly", 2026, 2, "actual", "100")], source="test")
    sheet = rd.load_sheet(w.p["reporter"], w.report.id,
                          overrides={("banle", "cur"): D(200), ("dulich", "cur"): D(-1)})
    found = {(m.severity, m.cell) for m in sheet.messages}
    assert ("blocker", "dulich.cur") in found and ("warning", "banle.cur") in found
    assert sheet.blocked
    blocker = next(m for m in sheet.messages if m.severity == "blocker")
    assert blocker.text["vi"] == "Doanh thu du lịch: số liệu không được âm."


def test_bad_input_is_refused_cell_by_cell_and_nothing_is_written(w):
    rd.save(w.p["reporter"], w.report.id, {("banle", "cur"): (rd.MISSING, "5")})
    with pytest.raises(rd.CellErrors) as exc:
        rd.save(w.p["reporter"], w.report.id, {("banle", "cur"): (rd.MISSING, "7"), ("dulich", "cur"): (rd.MISSING, "abc"),
                                               ("tong", "cur"): (rd.MISSING, "1")})
    errors = exc.value.errors
    assert set(errors) == {"dulich.cur", "tong.cur"}
    assert "không phải là một số" in errors["dulich.cur"].message("vi") and "not a number" in errors["dulich.cur"].message("en")
    assert errors["tong.cur"].key == "report_data.error.not_input"
    assert rd.stored_values(w.report.id) == {("banle", "cur"): D(5)}  # the good cell was not written either


def test_saving_twice_changes_nothing_the_second_time(w):
    cells = {("banle", "cur"): (rd.MISSING, "1.234,5"), ("dulich", "cur"): (rd.MISSING, "")}
    first = rd.save(w.p["reporter"], w.report.id, cells, {"ketqua": (rd.MISSING, "Tăng trưởng khá.")})
    assert (first.changed_cells, first.changed_sections, first.revision) == (1, 1, 1)
    second = rd.save(w.p["reporter"], w.report.id, cells, {"ketqua": (rd.MISSING, "Tăng trưởng khá.")})
    assert (second.changed, second.revision) == (0, 1)
    report = Report.get_by_id(w.report.id)
    assert report.status == "draft" and report.revision == 1
    assert rd.stored_values(w.report.id) == {("banle", "cur"): D("1234.5")}
    assert AuditEvent.select().where(AuditEvent.action == "report.saved").count() == 1


def test_a_clash_keeps_both_values_and_writes_nothing(w):
    rd.save(w.p["reporter"], w.report.id, {("banle", "cur"): (rd.MISSING, "10")})
    # Someone else saves 12 in the same cell while the first person still sees 10 ...
    rd.save(w.p["reporter"], w.report.id, {("banle", "cur"): ("10", "12")})
    # ... who now types 15 over the 10 they saw, and 3 in another cell.
    with pytest.raises(rd.SaveConflict) as exc:
        rd.save(w.p["reporter"], w.report.id, {("banle", "cur"): ("10", "15"), ("dulich", "cur"): ("", "3")})
    assert exc.value.conflicts == [rd.Conflict("banle.cur", "15", "12")]
    assert rd.stored_values(w.report.id) == {("banle", "cur"): D(12)}
    # Different cells do not clash: both people keep their work.
    rd.save(w.p["reporter"], w.report.id, {("dulich", "cur"): ("", "3")})
    assert rd.stored_values(w.report.id) == {("banle", "cur"): D(12), ("dulich", "cur"): D(3)}


def test_the_api_revision_lock(w):
    result = rd.save(w.p["reporter"], w.report.id, {("banle", "cur"): (rd.MISSING, "1")}, expected_revision=0)
    with pytest.raises(rd.SaveConflict) as exc:
        rd.save(w.p["reporter"], w.report.id, {("banle", "cur"): (rd.MISSING, "2")}, expected_revision=0)
    assert exc.value.revision == result.revision == 1


def test_only_the_units_reporters_write_and_receivers_read(w):
    # Another commune's report does not exist for them (ACL-02) ...
    with pytest.raises(NotFound):
        rd.save(w.p["other"], w.report.id, {("banle", "cur"): (rd.MISSING, "1")})
    with pytest.raises(NotFound):
        rd.load_sheet(w.p["viewer"], w.report.id)
    sheet = rd.load_sheet(w.p["issuer"], w.report.id)  # the receiving unit reads ...
    assert not sheet.editable
    with pytest.raises(Forbidden):  # ... but does not fill
        rd.save(w.p["issuer"], w.report.id, {("banle", "cur"): (rd.MISSING, "1")})


def test_a_submitted_report_is_not_edited(w):
    Report.update(status="submitted").where(Report.id == w.report.id).execute()
    with pytest.raises(BaocaoError) as exc:
        rd.save(w.p["reporter"], w.report.id, {("banle", "cur"): (rd.MISSING, "1")})
    assert exc.value.key == "report_data.error.not_editable"


def test_comments_on_a_cell(w):
    rd.add_comment(w.p["reporter"], w.report.id, "banle", "cur", "Số ước tính, sẽ cập nhật")
    rd.add_comment(w.p["issuer"], w.report.id, "banle", "cur", "Đề nghị kiểm tra lại")
    assert [c.text for c in rd.comments_of(w.report.id, "banle", "cur")] == ["Số ước tính, sẽ cập nhật",
                                                                             "Đề nghị kiểm tra lại"]
    with pytest.raises(BaocaoError):
        rd.add_comment(w.p["reporter"], w.report.id, "khong", "cur", "x")
    with pytest.raises(BaocaoError):
        rd.add_comment(w.p["reporter"], w.report.id, "banle", "cur", "   ")


PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def test_attachments_are_stored_outside_under_generated_names_with_their_hash(w, settings, tmp_path):
    settings = replace(settings, files_dir=str(tmp_path / "files"))
    att = rd.add_attachment(w.p["reporter"], w.report.id, "../../Báo cáo.pdf", PDF, settings=settings)
    assert att.name == "Báo cáo.pdf" and len(att.sha256) == 64 and att.stored_name != att.name
    stored = list((tmp_path / "files").rglob("*"))
    assert [p.name for p in stored if p.is_file()] == [att.stored_name]
    got, data = rd.get_attachment(w.p["issuer"], w.report.id, att.id, settings=settings)
    assert data == PDF
    for name, data, key in (("a.exe", b"MZ...", "report_data.error.file_type"),
                            ("a.pdf", b"MZ\x90\x00", "report_data.error.file_content"),
                            ("a.pdf", b"", "report_data.error.file_empty")):
        with pytest.raises(BaocaoError) as exc:
            rd.add_attachment(w.p["reporter"], w.report.id, name, data, settings=settings)
        assert exc.value.key == key
    settings = replace(settings, attachment_max_mb=0)
    with pytest.raises(BaocaoError) as exc:
        rd.add_attachment(w.p["reporter"], w.report.id, "b.pdf", PDF, settings=settings)
    assert exc.value.key == "report_data.error.file_too_big"
    # A file changed on disk is detected, not served.
    next(p for p in stored if p.is_file()).write_bytes(PDF + b"x")
    with pytest.raises(BaocaoError) as exc:
        rd.get_attachment(w.p["issuer"], w.report.id, att.id, settings=settings)
    assert exc.value.key == "report_data.error.file_changed"
    rd.delete_attachment(w.p["reporter"], w.report.id, att.id, settings=settings)
    assert not [p for p in (tmp_path / "files").rglob("*") if p.is_file()]


# -- issue 12: numbers by the person's language, and only what the column stores exactly ----------

def test_english_numbers_are_read_the_english_way(w):
    rd.save(w.p["reporter"], w.report.id, {("banle", "cur"): (rd.MISSING, "1,250.5"),
                                           ("dulich", "cur"): (rd.MISSING, "0.5")}, lang="en")
    assert rd.stored_values(w.report.id) == {("banle", "cur"): D("1250.5"), ("dulich", "cur"): D("0.5")}


def test_an_ambiguous_number_is_refused_naming_both_readings_and_nothing_is_written(w):
    with pytest.raises(rd.CellErrors) as exc:
        rd.save(w.p["reporter"], w.report.id, {("banle", "cur"): (rd.MISSING, "1,250"),
                                               ("dulich", "cur"): (rd.MISSING, "3")}, lang="en")
    error = exc.value.errors["banle.cur"]
    assert "1250" in error.message("en") and "1.25" in error.message("en")
    assert "1250" in error.message("vi") and "1,25" in error.message("vi")
    assert rd.stored_values(w.report.id) == {}


@pytest.mark.parametrize("text", ["99999999999.999999", "1234567890.123456"])
def test_a_value_the_column_cannot_store_exactly_is_refused_on_every_database(w, text):
    # SQLite stored 99999999999.999999 as 100000000000; PostgreSQL would have kept it: refused on both.
    with pytest.raises(rd.CellErrors) as exc:
        rd.save(w.p["reporter"], w.report.id, {("banle", "cur"): (rd.MISSING, text)}, lang="en")
    assert exc.value.errors["banle.cur"].key == "numbers.error.not_exact"
    assert rd.stored_values(w.report.id) == {}


@pytest.mark.parametrize("text", ["99999999999.9999", "999999999999999999", "-0.000001", "123456789.123456"])
def test_what_the_column_holds_is_read_back_exactly(w, text):
    rd.save(w.p["reporter"], w.report.id, {("banle", "cur"): (rd.MISSING, text)}, lang="en")
    assert rd.stored_values(w.report.id)[("banle", "cur")] == D(text)


def test_a_base_is_the_programs_own_text_in_every_language(w):
    # The grid's base of a stored 1.234 is "1.234": one point two three four, not a clash with 1234.
    rd.save(w.p["reporter"], w.report.id, {("banle", "cur"): (rd.MISSING, D("1.234"))})
    rd.save(w.p["reporter"], w.report.id, {("banle", "cur"): ("1.234", "2")}, lang="vi")
    assert rd.stored_values(w.report.id) == {("banle", "cur"): D(2)}
