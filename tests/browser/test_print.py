"""Issue 12 item 4, "done when", on the real demo in headless Chromium: a commune's monthly report
printed to PDF (A4 landscape, as Chromium's print does) holds every row and every column — the
last row's label and the last column's header are in the PDF's text — both when the entry page
itself is printed (Ctrl+P: the print stylesheet lifts the grid out of its scroll box) and from the
report's print page (the official document with the national header and the signature line).

The PDF's text is read with pypdf (pure Python, in the ``test`` extra), so no system tool is needed.
"""

from __future__ import annotations

import io
import re
import unicodedata

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import MONTHLY

pytestmark = pytest.mark.browser


def _words(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _squeezed(text: str) -> str:
    """Text without any white space, NFC: a PDF's text breaks a label where its cell wraps, and
    pypdf puts spaces between glyphs that Chromium placed one by one ("kinh t ế")."""
    return unicodedata.normalize("NFC", "".join(text.split()))


class PdfText:
    def __init__(self, data: bytes):
        from pypdf import PdfReader

        reader = PdfReader(io.BytesIO(data))
        self.pages = len(reader.pages)
        self.squeezed = _squeezed(" ".join(page.extract_text() or "" for page in reader.pages))

    def __contains__(self, phrase: str) -> bool:
        return _squeezed(phrase) in self.squeezed


def _grid_edges(page, grid: str) -> tuple[list[str], str]:
    """Every row label of a grid as the screen shows it, and its last column's header."""
    labels = [_words(t) for t in page.locator(f"{grid} tbody th.col-label").all_inner_texts()]
    last_column = _words(page.locator(f"{grid} thead th").last.inner_text())
    return labels, last_column


def _fits_the_page(page, grid: str) -> None:
    """With the print stylesheet on a window as wide as A4 landscape less 12 mm margins (273 mm),
    the grid is no wider than the page: nothing is cut off, and Chromium need not shrink it."""
    page.emulate_media(media="print")
    page.set_viewport_size({"width": 1031, "height": 700})
    overflow = page.evaluate(f"document.querySelector('{grid}').getBoundingClientRect().right"
                             " - document.documentElement.clientWidth")
    assert overflow <= 0, f"{grid} is {overflow}px wider than the printed page"
    page.emulate_media(media="null")  # back to no emulation: page.pdf prints with the print media


def _open_monthly_report(session):
    session.login("phuongdonghoi")
    return session.open_report(MONTHLY)


def test_printing_the_entry_page_keeps_every_row_and_column(session, tmp_path):
    page = _open_monthly_report(session)
    labels, last_column = _grid_edges(page, "#entry-grid")
    assert len(labels) > 9, labels  # the old print stopped at row 9 (a demo form that long shows it)
    # A figure in an input cell prints whole. Set without an input event: nothing is saved, so the
    # demo's data stay as the other tests expect them.
    page.locator("#entry-grid input.cell-input").last.evaluate("el => { el.value = '98.765.432,1'; }")
    _fits_the_page(page, "#entry-grid")
    # On screen the grid scrolls inside its box: the PDF must not.
    data = page.pdf(format="A4", landscape=True)
    (tmp_path / "entry.pdf").write_bytes(data)
    text = PdfText(data)
    assert labels[-1] in text, f"last row {labels[-1]!r} not printed"
    assert last_column in text, f"last column {last_column!r} not printed"
    missing = [label for label in labels if label not in text]
    assert not missing, f"rows not printed: {missing}"
    assert "98.765.432,1" in text
    assert "Đăng xuất" not in text  # the menu and the top bar are not printed


def test_the_print_page_gives_the_official_document(session, tmp_path):
    page = _open_monthly_report(session)
    labels, last_column = _grid_edges(page, "#entry-grid")
    page.get_by_role("link", name="In báo cáo", exact=True).click()
    expect(page.locator("#print-document")).to_be_visible()
    assert re.search(r"/reports/\d+/print$", page.url)
    assert session.csp_violations() == [] and session.page_errors == []
    _fits_the_page(page, "#print-grid")
    data = page.pdf(format="A4", landscape=True)
    (tmp_path / "print.pdf").write_bytes(data)
    text = PdfText(data)
    assert "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM" in text and "Độc lập - Tự do - Hạnh phúc" in text
    assert labels[-1] in text and last_column in text
    assert not [label for label in labels if label not in text]
    assert "CHỮ KÝ SỐ" in text and "Nơi nhận:" in text
    assert "In / Lưu thành PDF" not in text  # the toolbar is not printed
