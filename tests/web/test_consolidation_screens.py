"""The consolidated report screens (issue 6): the list of received periods with the button that
opens the unit's consolidated report, the consolidation page with its sources and read-only grid,
the drill-down of a cell (page and htmx panel), the amber banner naming the unit whose report
changed after consolidation on the report page and the list, the refresh button, and rights.
Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import re

import pytest

from tests.conftest import HX
from tests.web.test_report_entry import log_in


@pytest.fixture
def world(client):
    from core.accounts import login as accounts
    from core.reporting import data as rd
    from core.reporting import workflow as wf
    from core.accounts.access import Grant, Role
    from core.db import db
    from core.reporting.opening import Report
    from tests.fixtures.forms import access_of, form_world

    with db.connection_context():
        w = form_world()
        w.other_report = Report.get((Report.unit == w.u["camlo"]) & (Report.regime == w.regime)
                                    & (Report.period_start == w.report.period_start))
        w.period = f"{w.report.period_start.isoformat()}/{w.report.period_end.isoformat()}"
        user = accounts.create_user("tinh", "Chuyên viên tỉnh", accounts.random_password(), w.u["province"])
        Grant.create(user=user, role=Role.get(Role.code == "reporter"), unit=w.u["province"])
        w.users["province"] = user
        for who, report, banle in (("reporter", w.report, "10"), ("other", w.other_report, "20")):
            access = access_of(w.users[who])
            saved = rd.save(access, report.id, {("banle", "cur"): (rd.MISSING, banle),
                                                ("dulich", "cur"): (rd.MISSING, "5")},
                            {"ketqua": (rd.MISSING, "Số liệu trong tháng.")})
            wf.submit(access, report.id, revision=saved.revision)
            wf.accept(access_of(w.users["issuer"]), report.id)
        return w


def open_it(client, world, token):
    return client.post("/consolidation/open", data={"csrf_token": token, "regime": str(world.regime.id),
                                                    "period": world.period, "unit": str(world.u["province"].id)},
                       follow_redirects=False)


def consolidated_id(world) -> int:
    from core.db import db
    from core.reporting.opening import Report

    with db.connection_context():
        return Report.get(Report.kind == "consolidated").id


def test_the_province_opens_its_consolidated_report_from_the_list(client, world):
    token = log_in(client, world.users["province"])
    page = client.get("/consolidation")
    assert page.status_code == 200
    assert "Tỉnh Quảng Trị" in page.text and "2 đã chấp nhận, 0 chờ xem xét, 0 chưa gửi hoặc đang sửa / 2" in page.text
    assert "Lập báo cáo tổng hợp" in page.text
    assert 'href="/consolidation"' in client.get("/reports").text
    answer = open_it(client, world, token)
    assert answer.status_code == 303
    report_id = consolidated_id(world)
    assert answer.headers["location"] == f"/reports/{report_id}/consolidation?done=opened"
    page = client.get(answer.headers["location"])
    assert "Đã lập báo cáo tổng hợp và điền sẵn số liệu." in page.text
    assert "Báo cáo tổng hợp từ 2 báo cáo đã nhận" in page.text
    # Every consolidated cell links to its drill-down; the total is computed (no link).
    assert f'href="/reports/{report_id}/consolidation/banle.cur"' in page.text
    assert f'href="/reports/{report_id}/consolidation/tong.cur"' not in page.text
    assert re.search(r'data-cell="banle.cur">\s*<a [^>]*>30,0</a>', page.text)
    assert re.search(r'data-cell="tong.cur">\s*40,0', page.text)
    # Opening again lands on the same report; the list now links to it.
    assert open_it(client, world, token).headers["location"].startswith(f"/reports/{report_id}/")
    listed = client.get("/consolidation").text
    assert f'href="/reports/{report_id}/consolidation"' in listed and "Lập báo cáo tổng hợp" not in listed
    assert "Tổng hợp</span>" in client.get("/reports").text


def test_the_drill_down_shows_each_units_figure_as_a_page_and_a_panel(client, world):
    token = log_in(client, world.users["province"])
    open_it(client, world, token)
    report_id = consolidated_id(world)
    page = client.get(f"/reports/{report_id}/consolidation/banle.cur")
    assert page.status_code == 200 and "<html" in page.text
    assert "Cộng số liệu của các đơn vị" in page.text
    # The cell is named by its row and its column as the grid shows them, never by internal keys.
    title = re.search(r'<h2 class="card-title">(.*?)</h2>', page.text, re.S).group(1)
    assert " — " in title and "banle" not in title and ".cur" not in title and not title.startswith("Ô ")
    figures = page.text[page.text.index('id="consolidation-cell-figures"'):]
    assert figures.index("Xã Ái Tử") < figures.index("10,0") < figures.index("Xã Cam Lộ") < figures.index("20,0")
    assert "Lần 1" in figures and f'href="/reports/{world.report.id}"' in figures
    panel = client.get(f"/reports/{report_id}/consolidation/banle.cur", headers=HX)
    assert panel.status_code == 200 and "<html" not in panel.text and "Xã Cam Lộ" in panel.text
    assert client.get(f"/reports/{report_id}/consolidation/nothing").status_code == 404
    assert client.get(f"/reports/{report_id}/consolidation/zz.cur").status_code == 404


def test_a_returned_source_shows_an_amber_banner_until_refreshed(client, world):
    from core.reporting import workflow as wf
    from core.db import db
    from tests.fixtures.forms import access_of

    from core.reporting import data as rd

    token = log_in(client, world.users["province"])
    open_it(client, world, token)
    report_id = consolidated_id(world)
    with db.connection_context():
        # The province starts editing its report: from then on it no longer follows the running
        # aggregates (issue 14 item 1), and a source changing shows the banner instead.
        rd.save(access_of(world.users["province"]), report_id, {}, {"ketqua": (rd.MISSING, "Toàn tỉnh.")})
        wf.reopen(access_of(world.users["issuer"]), world.report.id, "Số bán lẻ chưa đúng")
    entry = client.get(f"/reports/{report_id}")
    assert ("Số liệu tổng hợp đã cũ: báo cáo của Xã Ái Tử đã bị trả lại sau khi tổng hợp."
            in entry.text)
    assert "Bấm “Cập nhật tổng hợp” để tính lại." in entry.text
    assert "số đã sửa tay ở các ô này sẽ bị thay" in entry.text
    assert f'href="/reports/{report_id}/consolidation"' in entry.text
    assert "Số liệu đã cũ" in client.get("/consolidation").text
    answer = client.post(f"/reports/{report_id}/consolidation/refresh", data={"csrf_token": token},
                         follow_redirects=False)
    assert answer.status_code == 303
    page = client.get(answer.headers["location"])
    assert "Đã cập nhật số liệu tổng hợp." in page.text and "đã cũ" not in page.text
    assert re.search(r'data-cell="banle.cur">\s*<a [^>]*>20,0</a>', page.text)
    # Ái Tử's report is listed as not consolidated, with its status.
    missing = page.text[page.text.index('id="consolidation-missing"'):]
    assert "Xã Ái Tử" in missing and "Bị trả lại" in missing


def test_rights_on_the_consolidation_screens(client, world):
    token = log_in(client, world.users["province"])
    open_it(client, world, token)
    report_id = consolidated_id(world)
    # A commune's reporter sees neither the province's report nor a way to open one.
    token = log_in(client, world.users["reporter"])
    assert "Lập báo cáo tổng hợp" not in client.get("/consolidation").text
    assert client.get(f"/reports/{report_id}/consolidation").status_code == 404
    assert client.get(f"/reports/{report_id}/consolidation/banle.cur").status_code == 404
    assert client.post(f"/reports/{report_id}/consolidation/refresh", data={"csrf_token": token},
                       follow_redirects=False).status_code == 404
    assert open_it(client, world, token).status_code == 403
    # A unit's own report has no consolidation page.
    assert client.get(f"/reports/{world.report.id}/consolidation").status_code == 404


def test_a_refusal_answers_422_with_the_message(client, world):
    from core.reporting import data as rd
    from core.reporting import workflow as wf
    from core.db import db
    from tests.fixtures.forms import access_of

    token = log_in(client, world.users["province"])
    open_it(client, world, token)
    report_id = consolidated_id(world)
    with db.connection_context():
        access = access_of(world.users["province"])
        saved = rd.save(access, report_id, {}, {"ketqua": (rd.MISSING, "Toàn tỉnh.")})
        wf.submit(access, report_id, revision=saved.revision)
    answer = client.post(f"/reports/{report_id}/consolidation/refresh", data={"csrf_token": token},
                         follow_redirects=False)
    assert answer.status_code == 422 and "flash-error" in answer.text
    assert "Cập nhật tổng hợp</button>" not in answer.text  # sent: no refresh button
    bad = client.post("/consolidation/open", data={"csrf_token": token, "regime": str(world.regime.id),
                                                   "period": "không phải kỳ"}, follow_redirects=False)
    assert bad.status_code == 422 and "Kỳ báo cáo không đúng." in bad.text


def test_a_draft_nobody_edited_follows_the_accepted_reports_without_a_refresh(client, world):
    """Issue 14 item 1: while the province has not edited its consolidated report, a source
    reopened (or accepted) changes its figures at once; no banner, no refresh button needed."""
    from core.reporting import workflow as wf
    from core.db import db
    from tests.fixtures.forms import access_of

    token = log_in(client, world.users["province"])
    open_it(client, world, token)
    report_id = consolidated_id(world)
    with db.connection_context():
        wf.reopen(access_of(world.users["issuer"]), world.report.id, "Số bán lẻ chưa đúng")
    page = client.get(f"/reports/{report_id}/consolidation")
    assert re.search(r'data-cell="banle.cur">\s*<a [^>]*>20,0</a>', page.text)
    assert "đã cũ" not in page.text and "đã cũ" not in client.get(f"/reports/{report_id}").text
    missing = page.text[page.text.index('id="consolidation-missing"'):]
    assert "Xã Ái Tử" in missing and "Bị trả lại" in missing
