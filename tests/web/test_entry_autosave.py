"""Issue 12 on the entry page's saves (items 2, 5, 23 and 24): the autosave answers only what
changed and tells the page the revision it now shows, so that signing right after it is not
refused as stale; the write transaction is short and a save that loses the race is tried again;
the page reads figures, narrative, then "Ký số và gửi". Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from decimal import Decimal

from tests.conftest import HX
from tests.web.test_report_entry import app, grid_data, log_in, stored, world  # noqa: F401 — fixtures


def _revision(report_id: int) -> int:
    from core.db import db
    from core.reporting.opening import Report

    with db.connection_context():
        return Report.get_by_id(report_id).revision


def test_an_autosave_hands_the_sign_form_its_revision(client, world):
    """Item 2: submitting with the revision the save answered is accepted, without reloading."""
    token = log_in(client, world.users["reporter"])
    rid = world.report.id
    page = client.get(f"/reports/{rid}").text
    data = grid_data(page.split('id="entry-form"', 1)[1].split("</form>", 1)[0])
    data.update({"cell.banle.cur": "10", "cell.dulich.cur": "5", "section.ketqua": "Tăng khá."})
    answer = client.post(f"/reports/{rid}/save", data=data, headers={**HX, "X-CSRF-Token": token})
    status = re.search(r'<p class="save-status[^"]*" id="save-status"[^>]*>', answer.text).group(0)
    assert 'data-outcome="saved"' in status
    revision = int(re.search(r'data-revision="(\d+)"', status).group(1))
    assert revision == _revision(rid)
    submitted = client.post(f"/reports/{rid}/submit", data={"revision": str(revision), "csrf_token": token},
                            follow_redirects=False)
    assert submitted.status_code == 303, submitted.text[:2000]
    assert submitted.headers["location"].startswith(f"/reports/{rid}?done=submitted")


def test_a_change_by_someone_else_still_refuses_an_old_revision(client, world):
    """Item 2: only someone else's change makes the page's revision stale."""
    from core.reporting import data as rd
    from core.db import db
    from tests.fixtures.forms import access_of

    token = log_in(client, world.users["reporter"])
    rid = world.report.id
    old = _revision(rid)
    with db.connection_context():
        rd.save(access_of(world.users["reporter"]), rid, {("banle", "cur"): ("", "50")})
    refused = client.post(f"/reports/{rid}/submit", data={"revision": str(old), "csrf_token": token},
                          follow_redirects=False)
    assert refused.status_code == 422
    assert 'id="workflow-refused"' in refused.text
    # The page's next (empty) autosave shows the other person's figure and moves the revision.
    data = grid_data(client.get(f"/reports/{rid}").text.split('id="entry-form"', 1)[1].split("</form>", 1)[0])
    data.update({"base.banle.cur": "", "cell.banle.cur": ""})  # as the page had it before the other save
    answer = client.post(f"/reports/{rid}/save", data=data, headers={**HX, "X-CSRF-Token": token})
    assert re.search(r'id="i-banle-cur"[^>]*value="50"[^>]*hx-swap-oob="true"', answer.text)
    assert f'data-revision="{_revision(rid)}"' in answer.text


def test_the_autosave_answers_only_what_changed(client, world):
    """Item 24: one typed figure brings back its new base, the computed cells it changes and the
    status, not the whole sheet; the validation panel only when its messages change."""
    token = log_in(client, world.users["reporter"])
    rid = world.report.id
    data = grid_data(client.get(f"/reports/{rid}").text)
    data.update({"cell.banle.cur": "100", "cell.dulich.cur": "5"})
    client.post(f"/reports/{rid}/save", data=data, headers={**HX, "X-CSRF-Token": token})
    data = grid_data(client.get(f"/reports/{rid}").text)
    data.update({"cell.banle.cur": "120"})
    answer = client.post(f"/reports/{rid}/save", data=data, headers={**HX, "X-CSRF-Token": token})
    text = answer.text
    assert 'id="b-banle-cur" name="base.banle.cur" value="120" hx-swap-oob="true"' in text
    assert re.search(r'id="v-tong-cur" hx-swap-oob="true">125(,0)?<', text), text
    changed = set(re.findall(r'id="v-([a-z0-9_]+-[a-z0-9_]+)" hx-swap-oob="true"', text))
    assert changed == {"banle-ytd", "tong-cur", "tong-ytd"}, changed
    assert "<table" not in text and 'id="entry-messages"' not in text and 'name="cell.' not in text
    # A negative figure raises a blocker: now the panel comes along.
    data = grid_data(client.get(f"/reports/{rid}").text)
    data.update({"cell.dulich.cur": "-5"})
    answer = client.post(f"/reports/{rid}/save", data=data, headers={**HX, "X-CSRF-Token": token})
    assert 'id="entry-messages"' in answer.text and "số liệu không được âm" in answer.text
    # Nothing typed: nothing but the status line.
    data = grid_data(client.get(f"/reports/{rid}").text)
    answer = client.post(f"/reports/{rid}/save", data=data, headers={**HX, "X-CSRF-Token": token})
    assert 'data-outcome="saved"' in answer.text and "hx-swap-oob" in answer.text
    assert 'id="v-' not in answer.text and 'id="b-' not in answer.text


def test_a_save_that_loses_the_race_is_planned_again(client, world, monkeypatch):
    """Item 23: what to write is decided before the write transaction, which only checks that the
    revision read is still current; when another save committed in between, the save reads and
    decides again instead of failing, and both saves' figures are kept."""
    from core.reporting import data as rd
    from core.db import db
    from tests.fixtures.forms import access_of

    access = access_of(world.users["reporter"])
    real_write = rd._write
    calls = []

    def write_after_a_rival(access_, report, plan, source):
        calls.append(plan.revision)
        if len(calls) == 1:  # a colleague's save commits between our reading and our writing
            real_write(access_, report, rd._plan_save(report.id, {("dulich", "cur"): (rd.MISSING, Decimal(9))}, {},
                                                      None), "screen")
        return real_write(access_, report, plan, source)

    monkeypatch.setattr(rd, "_write", write_after_a_rival)
    with db.connection_context():
        before = _revision(world.report.id)
        result = rd.save(access, world.report.id, {("banle", "cur"): ("", "12")})
    assert calls == [before, before + 1]
    assert result.revision == before + 2 and result.stored[("dulich", "cur")] == Decimal(9)
    assert stored(world.report.id) == {("banle", "cur"): Decimal(12), ("dulich", "cur"): Decimal(9)}


def test_the_page_reads_figures_then_narrative_then_signing(client, world):
    """Item 5: the grid, the narrative, then the workflow card with "Ký số và gửi" and its refusals."""
    log_in(client, world.users["reporter"])
    page = client.get(f"/reports/{world.report.id}").text
    grid, sections, workflow = (page.index('id="entry-grid"'), page.index('id="entry-sections-title"'),
                                page.index('id="workflow"'))
    assert grid < sections < workflow
    assert page.index('id="entry-messages"') < workflow and page.index('id="attachments"') < workflow


def test_a_save_beaten_at_every_try_answers_busy_and_the_page_retries(client, world, monkeypatch):
    """Item 23: never a 500 — "busy, try again" (503 with Retry-After), which grid.js retries."""
    from core.reporting import data as rd

    def always_beaten(*args):
        raise rd._RevisionMoved()

    token = log_in(client, world.users["reporter"])
    rid = world.report.id
    data = grid_data(client.get(f"/reports/{rid}").text)
    data.update({"cell.banle.cur": "3"})
    monkeypatch.setattr(rd, "_write", always_beaten)
    answer = client.post(f"/reports/{rid}/save", data=data, headers={**HX, "X-CSRF-Token": token})
    assert answer.status_code == 503 and answer.headers["retry-after"] == "1"
    monkeypatch.undo()
    answer = client.post(f"/reports/{rid}/save", data=data, headers={**HX, "X-CSRF-Token": token})
    assert 'data-outcome="saved"' in answer.text and stored(rid) == {("banle", "cur"): Decimal(3)}


def test_zeros_are_saved_and_their_year_to_date_is_zero(client, world):
    """A month of zeros is a real answer: the accumulated column adds Decimal zeros (not int 0,
    which the locks' canonical text could not read) and the save answers 200."""
    token = log_in(client, world.users["reporter"])
    rid = world.report.id
    data = grid_data(client.get(f"/reports/{rid}").text)
    data.update({"cell.banle.cur": "0", "cell.dulich.cur": "0"})
    answer = client.post(f"/reports/{rid}/save", data=data, headers={**HX, "X-CSRF-Token": token})
    assert answer.status_code == 200, answer.text[-500:]
    assert 'data-outcome="saved"' in answer.text
    assert stored(rid)[("banle", "cur")] == Decimal(0)


def test_more_cells_than_are_compiled_once_are_written_all_the_same(client, world, monkeypatch):
    """A few cells an autosave are written by a statement compiled once per count; a save of more
    (a whole grid) builds its statement as it comes. Both write every cell, zero included."""
    from core.reporting import data as rd

    token = log_in(client, world.users["reporter"])
    rid = world.report.id
    for limit in (1, 32):
        monkeypatch.setattr(rd, "_PUT_COMPILED_UP_TO", limit)
        page = client.get(f"/reports/{rid}").text
        data = grid_data(page.split('id="entry-form"', 1)[1].split("</form>", 1)[0])
        data.update({"cell.banle.cur": str(limit * 10), "cell.dulich.cur": "0"})
        answer = client.post(f"/reports/{rid}/save", data=data, headers={**HX, "X-CSRF-Token": token})
        assert 'data-outcome="saved"' in answer.text
        values = stored(rid)
        assert values[("banle", "cur")] == Decimal(limit * 10) and values[("dulich", "cur")] == Decimal(0)


def test_the_first_autosave_shows_the_report_as_a_draft_in_the_header(client, world):
    """The header said "not started" after the first save until the page was opened again."""
    from core.i18n import core_catalog

    token = log_in(client, world.users["reporter"])
    rid = world.report.id
    page = client.get(f"/reports/{rid}").text
    header = re.search(r'<dd id="report-status">([^<]*)</dd>', page).group(1)
    assert header == core_catalog().gettext("vi", "reports.status.not_started")
    data = grid_data(page.split('id="entry-form"', 1)[1].split("</form>", 1)[0])
    data.update({"cell.banle.cur": "7"})
    answer = client.post(f"/reports/{rid}/save", data=data, headers={**HX, "X-CSRF-Token": token}).text
    fresh = re.search(r'<dd id="report-status" hx-swap-oob="true">([^<]*)</dd>', answer).group(1)
    assert fresh == core_catalog().gettext("vi", "reports.status.draft")
