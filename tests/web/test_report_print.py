"""The print pages (issue 12 item 4): a report, a submitted version and a consolidated report each
print as the whole official document — national header, unit, regime, period, every row and every
column of the grid (no scroll box), the narrative, the attachments and the signature line (who
signed, when, valid or not) — with exactly the rights of viewing the report. The entry, review and
consolidation pages link to them. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import html
import re

import pytest

from tests.web.test_report_entry import log_in


@pytest.fixture
def app(make_app, make_settings, tmp_path):
    return make_app(make_settings(files_dir=str(tmp_path / "files")))


@pytest.fixture
def world(client, make_settings, tmp_path):
    from core.db import db
    from tests.fixtures.signing import signed_world

    with db.connection_context():
        w = signed_world()
    w.settings = make_settings(files_dir=str(tmp_path / "files"))
    return w


def text_of(page) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page.text)))


def last_row_and_column(world) -> tuple[str, str]:
    """The form's last row label and the last column header shown in the report's period."""
    from core.reporting import data as rd
    from core.db import db
    from core.regimes.form_engine import column_label

    with db.connection_context():
        report = rd.Report.get_by_id(world.report.id)
        form = rd.FormVersion.get_by_id(report.form_version_id).compiled()
        last = form.visible_columns(report.period_index)[-1]
        return form.rows[-1].label, column_label(last, report.frequency, report.year, report.period_index)


def fill(world, banle="1234,5", ketqua="Bán lẻ tăng khá nhờ mùa lễ hội."):
    from core.reporting import data as rd
    from core.db import db

    with db.connection_context():
        rd.save(world.p["reporter"], world.report.id,
                {("banle", "cur"): (rd.MISSING, banle), ("dulich", "cur"): (rd.MISSING, "5")},
                {"ketqua": (rd.MISSING, ketqua), "kiennghi": (rd.MISSING, "Đề nghị hỗ trợ quảng bá.")})
        rd.add_attachment(world.p["reporter"], world.report.id, "bieu-chi-tiet.pdf", b"%PDF-1.4 test",
                          settings=world.settings)


def sign(world):
    from core.db import db
    from tests.fixtures.signing import sign_p12

    with db.connection_context():
        return sign_p12(world)


def test_a_draft_prints_every_row_and_column_the_narrative_and_says_it_is_unsigned(client, world):
    fill(world)
    log_in(client, world.users["reporter"])
    page = client.get(f"/reports/{world.report.id}/print")
    assert page.status_code == 200
    text = text_of(page)
    # The national header, the unit under the agency above it, the regime and the period.
    assert "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM" in text and "Độc lập - Tự do - Hạnh phúc" in text
    assert "Tỉnh Quảng Trị" in text and "Xã Ái Tử" in text
    assert "Báo cáo tình hình kinh tế - xã hội hằng tháng" in text
    assert world.report.label in text and "12/2025/QĐ-UBND" in text
    # Every row and every column: the last ones too, and the figures as the grid shows them.
    last_row, last_column = last_row_and_column(world)
    assert f'scope="row" class="col-label indent-0">{last_row}</th>' in page.text
    assert f">{html.escape(last_column)}</th>" in page.text
    assert page.text.count('<tr class="row-') == 4
    assert re.search(r'data-cell="banle.cur">1.234,5</td>', page.text)
    assert re.search(r'data-cell="tong.cur">1.239,5</td>', page.text)  # computed cells print too
    assert "entry-grid-wrap" not in page.text  # no scroll box
    # The narrative, in outline order, and the attachments.
    assert "Kết quả thực hiện Bán lẻ tăng khá nhờ mùa lễ hội. Đề xuất, kiến nghị Đề nghị hỗ trợ quảng bá." in text
    assert "bieu-chi-tiet.pdf" in text
    # Not sent: a draft, and no signature.
    assert "BẢN DỰ THẢO" in text and "Chưa ký số: báo cáo chưa được gửi." in text
    # A document of its own: no menu, no forms; its stylesheet lays it out on A4 landscape.
    assert "<form" not in page.text and 'class="sidebar"' not in page.text
    assert "/static/core/report_print.css" in page.text


def test_a_signed_report_prints_the_signer_the_time_and_the_verdict(client, world):
    fill(world)
    sign(world)
    log_in(client, world.users["reporter"])
    text = text_of(client.get(f"/reports/{world.report.id}/print"))
    assert "BẢN DỰ THẢO" not in text
    assert "Chữ ký số hợp lệ: Nguyễn Văn A — UBND xã Ái Tử, ký lúc" in text
    assert "Người ký: Nguyễn Văn A — UBND xã Ái Tử" in text
    assert "Tình trạng chữ ký: hợp lệ" in text
    assert "Phiên bản 1, gửi lúc" in text
    assert "Thời gian ghi theo múi giờ Asia/Ho_Chi_Minh (UTC+07:00)." in text


def test_a_version_prints_as_it_was_sent_even_after_the_report_changed(client, world):
    from core.reporting import workflow as wf
    from core.db import db

    fill(world, banle="100")
    sign(world)
    with db.connection_context():
        wf.return_report(world.p["issuer"], world.report.id, "Sửa số bán lẻ")
    fill(world, banle="200", ketqua="Đã sửa.")
    log_in(client, world.users["issuer"])  # the receiver prints what it received
    page = client.get(f"/reports/{world.report.id}/versions/1/print")
    assert page.status_code == 200
    text = text_of(page)
    assert re.search(r'data-cell="banle.cur">100,0</td>', page.text)
    assert "Bán lẻ tăng khá nhờ mùa lễ hội." in text and "Đã sửa." not in text
    assert "Người ký: Nguyễn Văn A" in text and "Tình trạng chữ ký: hợp lệ" in text
    last_row, last_column = last_row_and_column(world)
    assert f">{last_row}</th>" in page.text and f">{html.escape(last_column)}</th>" in page.text
    # The report as it stands is a draft again, with the new figures.
    now = client.get(f"/reports/{world.report.id}/print")
    assert re.search(r'data-cell="banle.cur">200,0</td>', now.text) and "BẢN DỰ THẢO" in text_of(now)
    assert client.get(f"/reports/{world.report.id}/versions/2/print").status_code == 404


def test_an_unsigned_version_says_so_and_who_sent_it(client, world):
    from core.reporting import workflow as wf
    from core.db import db
    from core.reporting.opening import Report

    fill(world)
    with db.connection_context():
        wf.submit(world.p["reporter"], world.report.id, revision=Report.get_by_id(world.report.id).revision)
    log_in(client, world.users["reporter"])
    text = text_of(client.get(f"/reports/{world.report.id}/versions/1/print"))
    assert "Không có chữ ký số" in text and "Người gửi: reporter, lúc" in text


@pytest.mark.parametrize("path", ["/reports/{id}/print", "/reports/{id}/versions/1/print"])
def test_print_pages_have_the_rights_of_the_report_page(client, world, path):
    fill(world)
    sign(world)
    url = path.format(id=world.report.id)
    # Another commune, and a person with no report rights: as the report page answers them, 404.
    for who in ("other", "viewer"):
        log_in(client, world.users[who])
        assert client.get(f"/reports/{world.report.id}").status_code == 404
        assert client.get(url).status_code == 404
    # Its unit and its receiver may print it.
    for who in ("reporter", "issuer"):
        log_in(client, world.users[who])
        assert client.get(url).status_code == 200
    # Nobody logged in: to the login page.
    client.cookies.clear()
    answer = client.get(url, follow_redirects=False)
    assert answer.status_code in (302, 303) and "/login" in answer.headers["location"]
    assert client.get("/reports/999999/print", follow_redirects=False).status_code in (302, 303)


def test_the_pages_link_to_their_print(client, world):
    fill(world)
    sign(world)
    log_in(client, world.users["reporter"])
    entry = client.get(f"/reports/{world.report.id}").text
    assert f'href="/reports/{world.report.id}/print">In báo cáo</a>' in entry
    assert f'href="/reports/{world.report.id}/versions/1/print">In phiên bản 1</a>' in entry
    log_in(client, world.users["issuer"])
    review = client.get(f"/reports/{world.report.id}/review").text
    assert f'href="/reports/{world.report.id}/versions/1/print">In phiên bản 1</a>' in review


def test_the_print_page_in_english_keeps_the_national_header(client, world):
    fill(world)
    token = log_in(client, world.users["reporter"])
    assert client.post("/lang", data={"csrf_token": token, "lang": "en", "next": "/"}).status_code in (200, 303)
    text = text_of(client.get(f"/reports/{world.report.id}/print"))
    assert "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM" in text and "Độc lập - Tự do - Hạnh phúc" in text
    assert "I. FIGURES" in text and "II. NARRATIVE" in text and "DRAFT" in text
    assert "1,234.5" in text  # numbers the English way


def test_a_consolidated_report_prints_with_its_sources(client, world):
    from core.accounts import login as accounts
    from core.reporting import data as rd
    from core.reporting import workflow as wf
    from core.accounts.access import Grant, Role
    from core.db import db
    from core.reporting.opening import Report
    from tests.fixtures.forms import access_of

    with db.connection_context():
        other = Report.get((Report.unit == world.u["camlo"]) & (Report.regime == world.regime)
                           & (Report.period_start == world.report.period_start))
        for who, report, banle in (("reporter", world.report, "10"), ("other", other, "20")):
            access = access_of(world.users[who])
            saved = rd.save(access, report.id, {("banle", "cur"): (rd.MISSING, banle),
                                                ("dulich", "cur"): (rd.MISSING, "5")},
                            {"ketqua": (rd.MISSING, "Số liệu trong tháng.")})
            wf.submit(access, report.id, revision=saved.revision)
            wf.accept(world.p["issuer"], report.id)
        user = accounts.create_user("tinh", "Chuyên viên tỉnh", accounts.random_password(), world.u["province"])
        Grant.create(user=user, role=Role.get(Role.code == "reporter"), unit=world.u["province"])
    token = log_in(client, user)
    period = f"{world.report.period_start.isoformat()}/{world.report.period_end.isoformat()}"
    opened = client.post("/consolidation/open", data={"csrf_token": token, "regime": str(world.regime.id),
                                                      "period": period, "unit": str(world.u["province"].id)},
                         follow_redirects=False)
    assert opened.status_code == 303
    report_id = int(re.search(r"/reports/(\d+)/", opened.headers["location"]).group(1))
    page = client.get(opened.headers["location"])
    assert f'href="/reports/{report_id}/print">In báo cáo</a>' in page.text
    printed = client.get(f"/reports/{report_id}/print")
    assert printed.status_code == 200
    text = text_of(printed)
    assert "BÁO CÁO TỔNG HỢP" in text and "Tỉnh Quảng Trị" in text
    assert re.search(r'data-cell="banle.cur">30,0</td>', printed.text)
    assert "Xã Ái Tử — Lần 1" in text and "Xã Cam Lộ — Lần 1" in text
    # A commune may not print the province's consolidated report, as it may not open it.
    log_in(client, world.users["reporter"])
    assert client.get(f"/reports/{report_id}").status_code == 404
    assert client.get(f"/reports/{report_id}/print").status_code == 404
