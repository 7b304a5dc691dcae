"""The data-entry page of a report (issue 5, "Data entry"): the grid with its cell kinds, live
recalculation, saving with per-cell optimistic locking (errors and conflicts keep everything
typed), the validation panel, read-only receivers, another unit refused, cell comments, the
narrative sections and attachments. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import re

import pytest

from tests.conftest import HX, csrf_from


@pytest.fixture
def app(make_app, make_settings, tmp_path):
    """The app with its attachments under this test's directory (on PostgreSQL the default is
    ./baocao-files, beside nothing)."""
    return make_app(make_settings(files_dir=str(tmp_path / "files")), strict=True)


@pytest.fixture
def world(client):
    """tests/fixtures/forms.py's world in the app's database (the client has migrated it)."""
    from core.db import db
    from tests.fixtures.forms import form_world

    with db.connection_context():
        return form_world()


def log_in(client, user):
    """A session for ``user`` without the login form (the fixture's people have random passwords)."""
    from core.accounts import login as accounts
    from core.db import db
    from core.models import utcnow

    with db.connection_context():
        token = accounts.start_session(user, reauth_at=utcnow())  # fresh, as just after the login form
    client.cookies.clear()
    client.cookies.set("baocao_session", token)
    page = client.get("/")
    assert page.status_code == 200, page.text[:500]
    return csrf_from(page.text)


def stored(report_id):
    from core.db import db
    from core.reporting.data import stored_values

    with db.connection_context():
        return stored_values(report_id)


def grid_data(page_text: str) -> dict:
    """The grid form as a browser would post it: every input and hidden field by name."""
    data = {}
    for m in re.finditer(r'<input[^>]*\bname="([^"]+)"[^>]*>', page_text):
        tag = m.group(0)
        if 'type="file"' in tag:
            continue
        value = re.search(r'\bvalue="([^"]*)"', tag)
        data[m.group(1)] = value.group(1) if value else ""
    for m in re.finditer(r'<textarea[^>]*\bname="([^"]+)"[^>]*>(.*?)</textarea>', page_text, re.S):
        data[m.group(1)] = m.group(2)
    return data


def test_the_page_shows_the_grid_with_its_cell_kinds(client, world):
    log_in(client, world.users["reporter"])
    page = client.get(f"/reports/{world.report.id}")
    assert page.status_code == 200, page.text[:1000]
    text = page.text
    assert "Báo cáo tình hình kinh tế - xã hội hằng tháng" in text and "Xã Ái Tử" in text
    assert "BM-THANG" in text and "phiên bản 1" in text
    assert 'name="cell.banle.cur"' in text and 'inputmode="decimal"' in text
    assert 'class="cell cell-computed' in text and 'class="cell cell-prefill' in text
    assert 'class="cell cell-greyed' in text
    assert 'name="base.banle.cur" value=""' in text
    assert "Thực hiện tháng 3/2026" in text and "Tháng 2/2026" in text  # column labels for the period
    assert "est6" not in text  # the 6-month estimate shows in May only
    assert 'name="section.ketqua"' in text and "Nêu kết quả chủ yếu trong tháng." in text
    assert "Tải mẫu Excel" in text and f"/reports/{world.report.id}/upload" in text
    # The list of reports to send links each one to this page.
    assert f'href="/reports/{world.report.id}"' in client.get("/reports").text



def test_calc_recomputes_and_checks_what_is_typed_without_saving(client, world):
    token = log_in(client, world.users["reporter"])
    rid = world.report.id
    data = grid_data(client.get(f"/reports/{rid}").text)
    data.update({"cell.banle.cur": "1.234,5", "cell.dulich.cur": "-5"})
    answer = client.post(f"/reports/{rid}/calc", data=data, headers={**HX, "X-CSRF-Token": token})
    assert answer.status_code == 200 and "<html" not in answer.text
    # The total row is recomputed (1234.5 - 5) and sent out of band by cell id.
    assert re.search(r'id="v-tong-cur" hx-swap-oob="true">1\.229,5<', answer.text)
    assert 'id="entry-messages" aria-labelledby' in answer.text or 'id="entry-messages"' in answer.text
    assert "Lỗi chặn nộp" in answer.text and "số liệu không được âm" in answer.text
    assert 'data-focus-cell="dulich.cur"' in answer.text
    assert "chưa thể gửi báo cáo" in answer.text
    # Something that is not a number: a message at its cell, no crash.
    data["cell.dulich.cur"] = "12abc"
    answer = client.post(f"/reports/{rid}/calc", data=data, headers={**HX, "X-CSRF-Token": token})
    assert answer.status_code == 200
    assert '<p data-cell="dulich.cur">' in answer.text and "không phải là một số" in answer.text
    assert stored(rid) == {}  # nothing saved by calculating


def test_save_then_reload_finds_the_values_and_new_bases(client, world):
    from decimal import Decimal

    token = log_in(client, world.users["reporter"])
    rid = world.report.id
    data = grid_data(client.get(f"/reports/{rid}").text)
    data.update({"cell.banle.cur": "1.234,5", "cell.dulich.cur": "20", "section.ketqua": "Tăng trưởng khá."})
    answer = client.post(f"/reports/{rid}/save", data=data, headers={**HX, "X-CSRF-Token": token})
    assert answer.status_code == 200
    assert "Đã lưu lúc" in answer.text
    assert 'id="b-banle-cur" name="base.banle.cur" value="1234.5" hx-swap-oob="true"' in answer.text
    assert 'id="sb-ketqua" name="sbase.ketqua" value="Tăng trưởng khá." hx-swap-oob="true"' in answer.text
    assert stored(rid) == {("banle", "cur"): Decimal("1234.5"), ("dulich", "cur"): Decimal("20")}
    page = client.get(f"/reports/{rid}").text
    assert 'name="cell.banle.cur" type="text"' in page
    assert re.search(r'name="cell\.banle\.cur"[^>]*value="1\.234,5"', page)
    assert 'name="base.banle.cur" value="1234.5"' in page
    assert "Tăng trưởng khá.</textarea>" in page
    assert re.search(r'id="v-tong-cur">1\.254,5<', page)
    # Saving the page again unchanged writes nothing (same revision).
    from core.db import db
    from core.reporting.opening import Report

    with db.connection_context():
        revision = Report.get_by_id(rid).revision
    client.post(f"/reports/{rid}/save", data=grid_data(page), headers={**HX, "X-CSRF-Token": token})
    with db.connection_context():
        assert Report.get_by_id(rid).revision == revision


def test_without_javascript_the_form_posts_and_redirects(client, world):
    token = log_in(client, world.users["reporter"])
    rid = world.report.id
    data = grid_data(client.get(f"/reports/{rid}").text)
    data.update({"cell.banle.cur": "7", "csrf_token": token})
    answer = client.post(f"/reports/{rid}/save", data=data, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == f"/reports/{rid}?done=saved"
    assert "Đã lưu số liệu." in client.get(answer.headers["location"]).text
    # One cell refused without JavaScript: the valid one is saved, and the whole page comes back with
    # the refused text as typed, its error at its cell, and the saved cell with its new base.
    data = grid_data(client.get(f"/reports/{rid}").text)
    data.update({"cell.banle.cur": "8", "cell.dulich.cur": "mười", "csrf_token": token})
    answer = client.post(f"/reports/{rid}/save", data=data)
    assert answer.status_code == 422
    assert re.search(r'name="cell\.dulich\.cur"[^>]*value="mười"', answer.text)
    assert re.search(r'name="cell\.banle\.cur"[^>]*value="8"', answer.text)
    assert 'name="base.banle.cur" value="8"' in answer.text
    assert 'class="cell-error" id="e-dulich-cur"' in answer.text
    from decimal import Decimal

    assert stored(rid) == {("banle", "cur"): Decimal("8")}


def test_one_unreadable_cell_does_not_hold_back_the_others(client, world):
    """Issue 12 item 3: every valid cell is saved, the bad one is marked and stays as typed."""
    from decimal import Decimal

    token = log_in(client, world.users["reporter"])
    rid = world.report.id
    data = grid_data(client.get(f"/reports/{rid}").text)
    data.update({"cell.banle.cur": "100", "cell.dulich.cur": "1,2,3", "section.ketqua": "Khá."})
    answer = client.post(f"/reports/{rid}/save", data=data, headers={**HX, "X-CSRF-Token": token})
    assert answer.status_code == 200
    assert 'data-outcome="partial"' in answer.text
    assert "Đã lưu lúc" in answer.text and "1 ô có lỗi chưa lưu" in answer.text
    assert '<p data-cell="dulich.cur">' in answer.text
    assert 'id="b-banle-cur" name="base.banle.cur" value="100" hx-swap-oob="true"' in answer.text
    assert 'id="b-dulich-cur"' not in answer.text  # the bad cell keeps its base: nothing of it was saved
    assert 'id="i-dulich-cur"' not in answer.text  # ... and its text stays as typed
    assert stored(rid) == {("banle", "cur"): Decimal("100")}
    page = client.get(f"/reports/{rid}").text
    assert "Khá.</textarea>" in page


def test_a_conflict_shows_both_values_and_either_can_be_kept(client, world):
    from decimal import Decimal

    from core.reporting import data as rd
    from core.db import db
    from tests.fixtures.forms import access_of

    token = log_in(client, world.users["reporter"])
    rid = world.report.id
    data = grid_data(client.get(f"/reports/{rid}").text)
    # Someone else (a colleague of the same unit) saves two cells meanwhile.
    with db.connection_context():
        rd.save(access_of(world.users["reporter"]), rid, {("banle", "cur"): ("", "50"), ("dulich", "cur"): ("", "9")})
    data.update({"cell.banle.cur": "60"})  # this person changed banle only
    answer = client.post(f"/reports/{rid}/save", data=data, headers={**HX, "X-CSRF-Token": token})
    assert "Chưa lưu: 1 ô vừa được người khác sửa" in answer.text
    assert "Giá trị của bạn" in answer.text and "Giá trị đã lưu (người khác vừa sửa)" in answer.text
    assert re.search(r'class="conflict-yours"[^>]*>60<', answer.text)
    assert re.search(r'class="conflict-theirs"[^>]*>50', answer.text)
    assert 'name="theirs.banle.cur" value="50"' in answer.text
    assert stored(rid)[("banle", "cur")] == Decimal("50")  # nothing of mine written, nothing of theirs lost
    # Keep mine: sent again with the saved value as the base; the untouched cell shows theirs.
    keep = {**data, "keep": "banle.cur", "theirs.banle.cur": "50"}
    answer = client.post(f"/reports/{rid}/save", data=keep, headers={**HX, "X-CSRF-Token": token})
    assert "Đã lưu lúc" in answer.text, answer.text[:2000]
    assert stored(rid)[("banle", "cur")] == Decimal("60")
    assert re.search(r'id="i-dulich-cur"[^>]*value="9"[^>]*hx-swap-oob="true"', answer.text)
    # Take theirs: another clash, and this time the saved value wins and comes back into the input.
    with db.connection_context():
        rd.save(access_of(world.users["reporter"]), rid, {("banle", "cur"): ("60", "70")})
    data = {**grid_data(client.get(f"/reports/{rid}").text)}
    data.update({"base.banle.cur": "60", "cell.banle.cur": "65"})
    answer = client.post(f"/reports/{rid}/save", data=data, headers={**HX, "X-CSRF-Token": token})
    assert 'name="theirs.banle.cur" value="70"' in answer.text
    take = {**data, "take": "banle.cur", "theirs.banle.cur": "70"}
    answer = client.post(f"/reports/{rid}/save", data=take, headers={**HX, "X-CSRF-Token": token})
    assert stored(rid)[("banle", "cur")] == Decimal("70")
    assert re.search(r'id="i-banle-cur"[^>]*value="70"[^>]*hx-swap-oob="true"', answer.text)
    assert 'id="b-banle-cur" name="base.banle.cur" value="70" hx-swap-oob="true"' in answer.text


def test_a_receiver_reads_without_inputs_and_cannot_save(client, world):
    from core.reporting import data as rd
    from core.db import db
    from tests.fixtures.forms import access_of

    with db.connection_context():
        rd.save(access_of(world.users["reporter"]), world.report.id, {("banle", "cur"): ("", "12,5")})
    token = log_in(client, world.users["issuer"])  # receiver at the province
    page = client.get(f"/reports/{world.report.id}")
    assert page.status_code == 200
    assert 'name="cell.' not in page.text and "Bạn chỉ được xem báo cáo này" in page.text
    assert re.search(r'id="v-banle-cur">12,5<', page.text)
    assert 'hx-post="/reports/' not in page.text.split('id="attachments"')[0].split("entry-form")[1]
    refused = client.post(f"/reports/{world.report.id}/save", data={"cell.banle.cur": "1", "base.banle.cur": "12.5"},
                          headers={**HX, "X-CSRF-Token": token})
    assert refused.status_code == 403
    assert stored(world.report.id)[("banle", "cur")] == __import__("decimal").Decimal("12.5")
    upload = client.post(f"/reports/{world.report.id}/attachments", files={"file": ("a.pdf", PDF, "application/pdf")},
                         headers={**HX, "X-CSRF-Token": token})
    assert upload.status_code == 403


def test_another_units_reporter_and_a_viewer_are_refused(client, world):
    """A report the user may not read does not exist for them (core.reporting.data.get_report: ACL-02)."""
    token = log_in(client, world.users["other"])  # reporter of Xã Cam Lộ
    assert client.get(f"/reports/{world.report.id}").status_code == 404
    assert client.post(f"/reports/{world.report.id}/save", data={"cell.banle.cur": "1"},
                       headers={**HX, "X-CSRF-Token": token}).status_code == 404
    assert client.post(f"/reports/{world.report.id}/calc", data={},
                       headers={**HX, "X-CSRF-Token": token}).status_code == 404
    assert client.get(f"/reports/{world.report.id}/comments?cell=banle.cur").status_code == 404
    assert client.get(f"/reports/{world.other_report.id}").status_code == 200  # their own report
    log_in(client, world.users["viewer"])
    assert client.get(f"/reports/{world.report.id}").status_code == 404
    assert client.get("/reports/999999").status_code == 404
    assert stored(world.report.id) == {}


def test_a_report_without_form_says_so(client, world):
    from core.db import db
    from core.reporting.opening import Report

    with db.connection_context():
        Report.update(form_version=None).where(Report.id == world.report.id).execute()
    log_in(client, world.users["reporter"])
    page = client.get(f"/reports/{world.report.id}")
    assert page.status_code == 200 and "chưa gắn biểu mẫu số liệu" in page.text and 'name="cell.' not in page.text


def test_comments_on_a_cell(client, world):
    token = log_in(client, world.users["reporter"])
    rid = world.report.id
    panel = client.get(f"/reports/{rid}/comments?cell=banle.cur", headers=HX)
    assert panel.status_code == 200 and "<html" not in panel.text and "Ô này chưa có ghi chú." in panel.text
    added = client.post(f"/reports/{rid}/comments?cell=banle.cur", data={"text": "Số ước tính, sẽ cập nhật."},
                        headers={**HX, "X-CSRF-Token": token})
    assert added.status_code == 200 and "Số ước tính, sẽ cập nhật." in added.text
    assert 'id="n-banle-cur" hx-swap-oob="true">1<' in added.text
    empty = client.post(f"/reports/{rid}/comments?cell=banle.cur", data={"text": "  "},
                        headers={**HX, "X-CSRF-Token": token})
    assert empty.status_code == 422 and 'class="field-error"' in empty.text
    assert client.get(f"/reports/{rid}/comments?cell=nope.cur", headers=HX).status_code == 404
    page = client.get(f"/reports/{rid}").text
    assert "has-notes" in page and 'id="n-banle-cur">1<' in page
    # The receiver may comment too (a question about a figure), but not type into the grid.
    token = log_in(client, world.users["issuer"])
    asked = client.post(f"/reports/{rid}/comments?cell=banle.cur", data={"text": "Vì sao tăng?"},
                        headers={**HX, "X-CSRF-Token": token})
    assert asked.status_code == 200 and "Vì sao tăng?" in asked.text
    # Without JavaScript: the comments page, then back to it after posting.
    full = client.get(f"/reports/{rid}/comments?cell=banle.cur")
    assert "<html" in full.text and "Số ước tính" in full.text


PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def test_attachments_upload_list_download_delete(client, world, tmp_path):
    token = log_in(client, world.users["reporter"])
    rid = world.report.id
    headers = {**HX, "X-CSRF-Token": token}
    answer = client.post(f"/reports/{rid}/attachments", files={"file": ("Báo cáo tháng 3.pdf", PDF, "application/pdf")},
                         headers=headers)
    assert answer.status_code == 200, answer.text[:1000]
    digest = hashlib.sha256(PDF).hexdigest()
    assert "Báo cáo tháng 3.pdf" in answer.text and digest[:12] in answer.text
    aid = int(re.search(rf"/reports/{rid}/attachments/(\d+)", answer.text).group(1))
    download = client.get(f"/reports/{rid}/attachments/{aid}")
    assert download.status_code == 200 and download.content == PDF
    assert download.headers["content-disposition"].startswith("attachment;")
    assert "filename*=UTF-8''B%C3%A1o%20c%C3%A1o" in download.headers["content-disposition"]
    assert download.headers["x-content-type-options"] == "nosniff"
    assert download.headers["content-type"].startswith("application/pdf")
    files = [p for p in (tmp_path / "files").rglob("*") if p.is_file()]
    assert len(files) == 1 and files[0].read_bytes() == PDF and "pdf" not in files[0].name  # a generated name
    # A program renamed to .pdf, a type not on the list, an empty file: refused with the reason.
    bad = client.post(f"/reports/{rid}/attachments", files={"file": ("x.pdf", b"MZ\x90\x00binary", "application/pdf")},
                      headers=headers)
    assert bad.status_code == 422 and "flash-error" in bad.text
    bad = client.post(f"/reports/{rid}/attachments", files={"file": ("x.exe", b"MZ\x90\x00", "application/x-msdownload")},
                      headers=headers)
    assert bad.status_code == 422 and ".pdf" in bad.text
    bad = client.post(f"/reports/{rid}/attachments", files={"file": ("x.pdf", b"", "application/pdf")}, headers=headers)
    assert bad.status_code == 422
    # Another unit's reporter cannot download it (the report does not exist for them).
    log_in(client, world.users["other"])
    assert client.get(f"/reports/{rid}/attachments/{aid}").status_code == 404
    token = log_in(client, world.users["reporter"])
    gone = client.post(f"/reports/{rid}/attachments/{aid}/delete", headers={**HX, "X-CSRF-Token": token})
    assert gone.status_code == 200 and "Chưa có tệp đính kèm." in gone.text
    assert client.get(f"/reports/{rid}/attachments/{aid}").status_code == 404




def test_an_attachment_over_the_size_limit_is_refused(make_app, make_settings, tmp_path):
    from starlette.testclient import TestClient

    from core.db import db
    from tests.fixtures.forms import form_world

    app = make_app(make_settings(attachment_max_mb=1, files_dir=str(tmp_path / "files")))
    with TestClient(app) as client:
        with db.connection_context():
            w = form_world()
        token = log_in(client, w.users["reporter"])
        big = PDF + b"0" * (1024 * 1024)
        answer = client.post(f"/reports/{w.report.id}/attachments", files={"file": ("lon.pdf", big, "application/pdf")},
                             headers={**HX, "X-CSRF-Token": token})
        assert answer.status_code == 422 and "1 MB" in answer.text
        assert "Chưa có tệp đính kèm." in answer.text


def test_a_big_grid_posts_without_javascript(client, world):
    """A 60 × 13 grid posts some 1,600 fields (value and base per cell): more than the form
    parser's default limit of 1,000, with the CSRF token among them."""
    token = log_in(client, world.users["reporter"])
    rid = world.report.id
    data = grid_data(client.get(f"/reports/{rid}").text)
    data.update({f"base.r{i}.c{j}": "" for i in range(60) for j in range(13)})
    data.update({"cell.banle.cur": "5", "csrf_token": token})
    answer = client.post(f"/reports/{rid}/save", data=data, follow_redirects=False)
    assert answer.status_code == 303, answer.text[:500]
    assert stored(rid) == {("banle", "cur"): __import__("decimal").Decimal("5")}


def test_the_grid_partial_renders_a_designer_preview_from_the_sheet_alone(app, world):
    """The form designer includes _grid.html with a preview sheet and ``editable`` only."""
    from core.db import db
    from core.i18n import format_number
    from core.reporting.data import preview_sheet

    with db.connection_context():
        sheet = preview_sheet(world.version, "monthly", 2026, 5)
    template = app.state.templates.env.get_template("core/report_entry/_grid.html")
    html = template.render(sheet=sheet, editable=False, lang="vi", _=lambda key, **params: key,
                           fmt_number=lambda v, d=None: format_number(v, "vi", d))
    assert 'class="cell cell-input' in html and "<input" not in html and "cell-note" not in html
    assert "Ước thực hiện 6 tháng" in html  # May shows the 6-month estimate
    assert re.search(r'id="v-tong-cur">[\d.,]+<', html)
