"""Differences between two submitted versions of a report (issue 6): cells changed, added and
removed with the labels of the newer form (the versions may use different form versions),
sections diffed word by word, attachments added and removed. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest

from core.regimes import forms as fm
from core.reporting import data as rd
from core.reporting import diff as rdf
from core.reporting import workflow as wf
from tests.fixtures.forms import definition, form_world


@pytest.fixture
def w(db_session):
    return form_world()


def sent(w, *, banle="10", dulich="5", ketqua="Bán lẻ tăng khá.", kiennghi=""):
    saved = rd.save(w.p["reporter"], w.report.id,
                    {("banle", "cur"): (rd.MISSING, banle), ("dulich", "cur"): (rd.MISSING, dulich)},
                    {"ketqua": (rd.MISSING, ketqua), "kiennghi": (rd.MISSING, kiennghi)})
    return wf.submit(w.p["reporter"], w.report.id, revision=saved.revision)


def test_two_submissions_differ_by_cell_and_section(w):
    first = sent(w, ketqua="Bán lẻ tăng khá.\nDu lịch ổn định.")
    wf.return_report(w.p["issuer"], w.report.id, "Sửa số du lịch")
    second = sent(w, dulich="6,5", ketqua="Bán lẻ tăng khá.\nDu lịch tăng mạnh nhờ lễ hội.", kiennghi="Hỗ trợ vốn.")
    diff = rdf.diff_versions(first, second)
    assert (diff.old_number, diff.new_number, diff.form_changed) == (1, 2, False)
    by_key = {c.key: c for c in diff.cells}
    # The typed cell and what was computed from it; untouched cells are not listed.
    assert set(by_key) == {"dulich.cur", "dulich.ytd", "tong.cur", "tong.ytd"}
    cell = by_key["dulich.cur"]
    assert (cell.old, cell.new, cell.kind) == ("5", "6.5", "changed")
    assert cell.decimals == 1  # the row's decimals: shown 5,0 → 6,5, as on the entry grid
    assert cell.row_label == "2. Doanh thu du lịch" and cell.column_label == "Thực hiện tháng 3/2026"
    assert [c.key for c in diff.cells][:2] == ["dulich.cur", "dulich.ytd"]  # the form's order
    sections = {s.key: s for s in diff.sections}
    assert sections["kiennghi"].kind == "added" and sections["kiennghi"].title == "Đề xuất, kiến nghị"
    pieces = sections["ketqua"].pieces
    assert ("equal", "Bán lẻ tăng khá.\nDu lịch ") in pieces
    assert ("delete", "ổn định") in pieces and ("insert", "tăng mạnh nhờ lễ hội") in pieces
    assert diff.attachments == [] and not diff.empty


def test_the_same_content_has_no_difference(w):
    first = sent(w)
    assert rdf.diff_versions(first, first).empty


def version_like(w, number, form_version, values, sections=None, attachments=None):
    """A version as a submission freezes it, built directly: the content is what is compared."""
    content = json.loads(wf.ReportVersion.get(wf.ReportVersion.report == w.report.id).canonical)
    content.update(values=values, sections=sections or {}, attachments=attachments or [], version=number,
                   form={"code": "BM-THANG", "version": form_version.version})
    return wf.ReportVersion(report=w.report.id, number=number, form_version=form_version.id,
                            canonical=json.dumps(content, ensure_ascii=False, sort_keys=True))


def test_a_form_version_change_labels_from_the_newer_form_and_falls_back_to_keys(w):
    sent(w)
    fm.new_version(w.p["editor"], w.form.id)
    newer = definition()
    newer["rows"][1]["label"] = "Tổng mức bán lẻ hàng hóa và dịch vụ"  # renamed row
    newer["rows"].insert(3, {"key": "vantai", "kind": "indicator", "number": "3", "label": "Doanh thu vận tải",
                             "indicator": "KX0301", "unit": "tỷ đồng"})
    fm.save_draft(w.p["editor"], w.form.id, newer)
    v2 = fm.publish(w.p["editor"], w.form.id)
    pdf = {"name": "bang.pdf", "size": 10, "sha256": "a" * 64}
    xlsx = {"name": "so-lieu.xlsx", "size": 20, "sha256": "b" * 64}
    old = version_like(w, 1, w.version, {"banle.cur": "10", "cu.cur": "3"}, {"ketqua": "Cũ"}, [pdf])
    new = version_like(w, 2, v2, {"banle.cur": "1234.5", "vantai.cur": "7"}, {"ketqua": "Cũ"}, [xlsx])
    diff = rdf.diff_versions(old, new)
    assert diff.form_changed and (diff.old_form, diff.new_form) == ("BM-THANG v1", "BM-THANG v2")
    cells = {c.key: (c.row_label, c.old, c.new, c.kind) for c in diff.cells}
    assert cells == {"banle.cur": ("1. Tổng mức bán lẻ hàng hóa và dịch vụ", "10", "1234.5", "changed"),
                     "vantai.cur": ("3. Doanh thu vận tải", None, "7", "added"),
                     "cu.cur": ("cu", "3", None, "removed")}
    assert [c.key for c in diff.cells][-1] == "cu.cur"  # a key no form knows comes last
    assert diff.sections == []
    assert [(a.kind, a.name) for a in diff.attachments] == [("removed", "bang.pdf"), ("added", "so-lieu.xlsx")]


def test_word_pieces_mark_words_inside_a_changed_line():
    pieces = rdf.word_pieces("Dân số 1.000 người.\nGiữ nguyên.\n", "Dân số 1.200 người.\nGiữ nguyên.\n")
    assert pieces == (("equal", "Dân số "), ("delete", "1.000"), ("insert", "1.200"),
                      ("equal", " người.\nGiữ nguyên.\n"))
    assert rdf.word_pieces("", "Mới") == (("insert", "Mới"),)


def test_version_grid_lists_rows_in_form_order(w):
    version = sent(w, banle="1234,5")
    grid = rdf.version_grid(version)
    assert [c["key"] for c in grid["columns"]] == ["cur", "ytd"]
    assert [r["key"] for r in grid["rows"]] == ["h1", "banle", "dulich", "tong"]
    assert grid["rows"][1]["cells"] == ["1234.5", "1234.5"] and grid["rows"][0]["heading"]
