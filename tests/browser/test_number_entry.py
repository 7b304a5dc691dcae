"""Issue 12, item 1, on the real demo in headless Chromium: a figure is read the way the person's
language writes numbers, an ambiguous one is refused naming both readings, and a block copied
from a spreadsheet fills the grid.

- In English "1,250.5" is 1250.5 (it was stored as 1.2505), in Vietnamese "1.250,5" is 1250.5;
  each is read back from the values API and from the page after a reload, written the way the
  language writes it.
- "1,250" (thousands or decimals?) is refused at its cell with a message naming both readings,
  in each language; the figure typed next to it in the same save is stored all the same.
- A 2×2 block pasted from the clipboard (tab and line separated, as Excel copies it) is laid over
  the grid from the focused cell, position by position: the input cells under it take their
  values and are saved like typed ones (the demo's forms have one input column, so two of the
  four positions are computed cells, which take nothing).

The commune's monthly report is shared with other browser tests (test_submission_review signs it
later): this test uses the budget rows (I.1–3) nobody else fills and empties them at the end."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import MONTHLY

pytestmark = pytest.mark.browser

CELLS = ("kx0401.cur", "kx0402.cur", "kx0403.cur")  # Thu ngân sách, Chi ngân sách, Giải ngân vốn đầu tư
SAVED = {"en": re.compile(r"^Saved at \d\d:\d\d$"), "vi": re.compile(r"^Đã lưu lúc \d\d:\d\d$")}
PARTIAL = {"en": re.compile(r"^Saved at \d\d:\d\d except 1 cell"),
           "vi": re.compile(r"^Đã lưu lúc \d\d:\d\d các ô hợp lệ; 1 ô có lỗi")}


def _input(page, cell: str):
    return page.locator(f"#i-{cell.replace('.', '-')}")


def _type(page, cell: str, text: str) -> None:
    """Typed key by key, as a person does: each key is an input event, which starts the autosave."""
    field = _input(page, cell)
    field.click()
    field.press("Control+a")
    if text:
        field.press_sequentially(text)
    else:
        field.press("Delete")


def _autosaved(page, lang: str, *, partial: bool = False) -> None:
    """Typing has set the status to "not saved yet" at once; the autosave answers after its delay."""
    expect(page.locator("#save-status")).to_have_text((PARTIAL if partial else SAVED)[lang], timeout=15_000)


def _stored(page, report_id: int) -> dict:
    """The report's stored figures, canonical ("1250.5"), from the values API (the session's cookie)."""
    response = page.request.get(_absolute(page, f"/api/v1/reports/{report_id}/values"))
    assert response.status == 200, response.text()
    values = response.json()["values"]
    return {cell: values[cell] for cell in CELLS}


def _absolute(page, path: str) -> str:
    return re.match(r"https?://[^/]+", page.url).group(0) + path


def _refusal(page, cell: str):
    return page.locator(f'td[data-cell="{cell}"] .cell-error')


def test_figures_are_read_the_way_the_persons_language_writes_them(session):
    page = session.page
    session.login("phuongdonghoi", lang="en")
    session.open_report(MONTHLY)
    report_id = int(re.search(r"/reports/(\d+)", page.url).group(1))
    assert _stored(page, report_id) == dict.fromkeys(CELLS), "the budget rows were meant to be empty"

    # English: a comma groups thousands, a dot comes before the decimals. "1,250" next to it is
    # ambiguous: refused at its cell, naming both readings; the good figure is stored anyway.
    _type(page, "kx0401.cur", "1,250.5")
    _type(page, "kx0403.cur", "1,250")
    _autosaved(page, "en", partial=True)
    refusal = _refusal(page, "kx0403.cur")
    expect(refusal).to_contain_text("1250")
    expect(refusal).to_contain_text("1.25")
    expect(_input(page, "kx0403.cur")).to_have_attribute("aria-invalid", "true")
    expect(_input(page, "kx0403.cur")).to_have_value("1,250")  # kept, to be corrected
    assert _stored(page, report_id) == {"kx0401.cur": "1250.5", "kx0402.cur": None, "kx0403.cur": None}
    session.shot("number-entry-ambiguous-en")
    _type(page, "kx0403.cur", "")  # nothing left unsaved: the reload below asks nothing
    _autosaved(page, "en")
    expect(refusal).to_have_count(0)
    page.reload()
    expect(_input(page, "kx0401.cur")).to_have_value("1,250.5")

    # Vietnamese: a dot groups thousands, a comma comes before the decimals.
    session.set_language("vi")
    expect(_input(page, "kx0401.cur")).to_have_value("1.250,5")  # the same number, written in Vietnamese
    _type(page, "kx0402.cur", "1.250,5")
    _type(page, "kx0403.cur", "1,250")
    _autosaved(page, "vi", partial=True)
    refusal = _refusal(page, "kx0403.cur")
    expect(refusal).to_contain_text("1250")
    expect(refusal).to_contain_text("1,25")
    assert _stored(page, report_id) == {"kx0401.cur": "1250.5", "kx0402.cur": "1250.5", "kx0403.cur": None}
    session.shot("number-entry-ambiguous-vi")
    _type(page, "kx0403.cur", "")
    _autosaved(page, "vi")
    page.reload()
    expect(_input(page, "kx0402.cur")).to_have_value("1.250,5")

    # A 2×2 block as Excel copies it (tabs, CR LF), pasted with Ctrl+V into the first budget row:
    # it is laid over the grid from the focused cell, position by position, and each input cell
    # under it takes its value. (Every form of the demo has one input column, "this month", with
    # the computed year to date right of it: the block's second column falls on computed cells,
    # which take nothing; its first column fills two rows.) Before, the whole text went into the
    # one cell ("1\t2 3\t4").
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=session.demo.base_url)
    page.evaluate("text => navigator.clipboard.writeText(text)", "1\t2\r\n3\t4\r\n")
    _input(page, "kx0401.cur").click()
    _input(page, "kx0401.cur").press("Control+a")
    _input(page, "kx0401.cur").press("Control+v")
    expect(_input(page, "kx0401.cur")).to_have_value("1")
    expect(_input(page, "kx0402.cur")).to_have_value("3")
    expect(_input(page, "kx0403.cur")).to_have_value("")  # below the block: untouched
    _autosaved(page, "vi")
    assert _stored(page, report_id) == {"kx0401.cur": "1", "kx0402.cur": "3", "kx0403.cur": None}

    # Emptied again for the tests that sign this report later (one save each: the last status
    # then stands for every cell).
    for cell in ("kx0401.cur", "kx0402.cur"):
        _type(page, cell, "")
        _autosaved(page, "vi")
    assert _stored(page, report_id) == dict.fromkeys(CELLS)
    assert not session.page_errors and not session.csp_violations()
