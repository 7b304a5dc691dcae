"""The receiver's queue ``/inbox`` (issue 6): the menu item for receivers only, the default
"waiting for me" view with timeliness and version, filters as a plain GET form and as an htmx
partial, bulk accept with the outcome by unit, and the page in Vietnamese and English.
Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from tests.web.test_report_entry import log_in
from tests.web.test_report_workflow_screens import report_now


@pytest.fixture
def world(client):
    from core.db import db
    from tests.fixtures.forms import form_world

    with db.connection_context():
        return form_world()


def send(world, report, who):
    from core.reporting import data as rd
    from core.reporting import workflow as wf
    from core.db import db
    from tests.fixtures.forms import access_of

    with db.connection_context():
        access = access_of(world.users[who])
        saved = rd.save(access, report.id, {("banle", "cur"): (rd.MISSING, "120"), ("dulich", "cur"): (rd.MISSING, "15")},
                        {"ketqua": (rd.MISSING, "Tăng trưởng khá.")})
        wf.submit(access, report.id, revision=saved.revision)


def test_the_receiver_finds_the_queue_in_the_menu_and_sees_what_waits(client, world):
    send(world, world.report, "reporter")
    log_in(client, world.users["issuer"])
    home = client.get("/")
    assert 'href="/inbox"' in home.text and "Báo cáo chờ tôi xử lý" in home.text
    page = client.get("/inbox")
    assert page.status_code == 200
    assert "Xã Ái Tử" in page.text and "Xã Cam Lộ" not in page.text  # only what was submitted
    assert f'name="report" value="{world.report.id}"' in page.text
    assert f'href="/reports/{world.report.id}/review"' in page.text
    assert "Chấp nhận các báo cáo đã chọn" in page.text and "Hạn " in page.text
    assert ("Trễ hạn" if report_now(world).submitted_late else "Đúng hạn") in page.text
    # Every status shows as a tab with its count; "all" lists the commune that has not sent too.
    every = client.get("/inbox?status=")
    assert "Xã Cam Lộ" in every.text and f'href="/reports/{world.other_report.id}"' in every.text


def test_a_commune_reporter_has_no_queue(client, world):
    send(world, world.report, "reporter")
    log_in(client, world.users["reporter"])
    assert 'href="/inbox"' not in client.get("/").text
    page = client.get("/inbox?status=")
    assert page.status_code == 200 and "data-report=" not in page.text
    assert "Không có báo cáo nào chờ bạn xử lý." in page.text


def test_filters_work_as_a_page_and_as_an_htmx_partial(client, world):
    send(world, world.report, "reporter")
    send(world, world.other_report, "other")
    log_in(client, world.users["issuer"])
    page = client.get("/inbox", params={"unit": "cam lo"})
    assert "Xã Cam Lộ" in page.text and "Xã Ái Tử" not in page.text
    assert 'value="cam lo"' in page.text
    partial = client.get("/inbox", params={"unit": "ai tu"}, headers={"HX-Request": "true"})
    assert partial.text.lstrip().startswith('<div id="core-queue">')
    assert "Xã Ái Tử" in partial.text and "Xã Cam Lộ" not in partial.text and "<html" not in partial.text
    none = client.get("/inbox", params={"regime": "KHONG.CO"})
    assert "Không có báo cáo nào khớp với điều kiện lọc." in none.text


def test_bulk_accept_names_the_report_that_changed_in_between(client, world):
    send(world, world.report, "reporter")
    send(world, world.other_report, "other")
    token = log_in(client, world.users["issuer"])
    page = client.get("/inbox")
    assert f'value="{world.other_report.id}"' in page.text
    # A colleague returns Cam Lộ's report while this list is open.
    from core.reporting import workflow as wf
    from core.db import db
    from tests.fixtures.forms import access_of

    with db.connection_context():
        wf.return_report(access_of(world.users["issuer"]), world.other_report.id, "Thiếu số liệu")
    answer = client.post("/inbox/accept", data={"csrf_token": token, "status": "submitted",
                                                "report": [str(world.report.id), str(world.other_report.id)]})
    assert answer.status_code == 200
    assert "Đã chấp nhận 1 báo cáo." in answer.text
    assert "1 báo cáo không chấp nhận được:" in answer.text
    assert "<strong>Xã Cam Lộ</strong>: không còn chờ chấp nhận (hiện đang ở trạng thái “Bị trả lại”" in answer.text
    assert report_now(world).status == "accepted"


def test_bulk_accept_with_nothing_ticked_is_refused(client, world):
    send(world, world.report, "reporter")
    token = log_in(client, world.users["issuer"])
    answer = client.post("/inbox/accept", data={"csrf_token": token, "status": "submitted"},
                         headers={"HX-Request": "true"})
    assert answer.status_code == 422 and "Chưa chọn báo cáo nào." in answer.text
    assert report_now(world).status == "submitted"


@pytest.mark.parametrize("lang, title, badge", [("vi", "Báo cáo chờ tôi xử lý", "Hạn "),
                                                ("en", "Reports waiting for me", "Due ")])
def test_the_queue_reads_in_both_languages(client, world, lang, title, badge):
    send(world, world.report, "reporter")
    log_in(client, world.users["issuer"])
    page = client.get("/inbox", headers={"Accept-Language": lang})
    assert page.status_code == 200 and f"<h1>{title}</h1>" in page.text and badge in page.text
    assert "queue." not in page.text  # no key shown instead of a message
