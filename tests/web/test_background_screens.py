"""Long work on its own page (issue 14 item 10): past a second, "Đôn đốc" and an export send the
person to a page whose bar follows the work in place (htmx asks for the fragment again every
second and stops once it has ended); the page and the file are the starter's alone; the work is
found again under "Việc chạy nền"; quick work answers as it always did. The system
administrator's rebuild of live consolidation runs the same way. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import re
import threading

import pytest

from core import background
from core.db import db
from core.reporting import facade
from tests.core.test_completeness import CODE, MARCH
from tests.web.test_reminders_screen import page, press, urges_of, world  # noqa: F401 — the fixture
from tests.web.test_report_entry import log_in
from web import background as web_background
from web.testing import csrf_from


@pytest.fixture
def slow(monkeypatch):
    """Every request follows its work on the job's page (none is quick enough); ``gate`` holds
    the reminders until the test has looked at the running job."""
    monkeypatch.setattr(web_background, "FOLLOW_AFTER", 0.0)
    gate = threading.Event()
    real = facade.urge_late_units

    def held(*args, **kwargs):
        assert gate.wait(10)
        return real(*args, **kwargs)

    monkeypatch.setattr(facade, "urge_late_units", held)
    yield gate
    gate.set()
    background.wait_all()


def page_once(client, path: str, text: str, seconds: float = 10.0) -> str:
    """The job's page once it shows ``text``: its thread may still be waiting for its turn (the
    phase is "Đang chờ đến lượt…" until then)."""
    import time

    deadline = time.monotonic() + seconds
    while True:
        page = client.get(path).text
        if text in page or time.monotonic() > deadline:
            return page
        time.sleep(0.05)


def job_path(response) -> str:
    assert response.status_code == 303
    location = response.headers["location"]
    assert re.fullmatch(r"/jobs/\d+", location), location
    return location


def test_a_long_round_of_reminders_is_followed_on_its_page(client, world, slow):
    users = world["users"]
    log_in(client, users["receiver"])
    path = job_path(press(client))

    running = client.get(path)
    assert running.status_code == 200
    assert 'data-status="running"' in running.text and 'id="job-bar"' in running.text
    assert f'hx-get="{path}" hx-trigger="every 1s"' in running.text  # the bar follows in place
    assert "Anh/chị có thể rời trang này" in running.text
    listed = client.get("/jobs")
    assert "Đôn đốc các đơn vị chậm gửi báo cáo" in listed.text and "Đang chạy" in listed.text

    slow.set()
    background.wait_all()
    fragment = client.get(path, headers={"HX-Request": "true", "HX-Target": "job-status"})
    assert fragment.status_code == 200 and "<html" not in fragment.text
    assert 'data-status="done"' in fragment.text and "hx-trigger" not in fragment.text  # no more asking
    assert "Đã nhắc 3 đơn vị; 0 đơn vị đã được nhắc trong hôm nay." in fragment.text
    result = re.search(r'id="job-result" href="([^"]+)"', fragment.text).group(1).replace("&amp;", "&")
    assert result.startswith(f"/completeness?regime={CODE}&period=")
    assert "Đã đôn đốc 3 đơn vị." in client.get(result).text
    for name in ("cam", "huonghiep", "dakrong"):
        assert len(urges_of(users[name])) == 1, name
    assert "Đã xong" in client.get("/jobs").text


def test_a_job_is_its_starters_alone(client, world, slow, make_user):
    log_in(client, world["users"]["receiver"])
    path = job_path(press(client))
    slow.set()
    background.wait_all()
    log_in(client, world["users"]["gio"])
    assert client.get(path).status_code == 404
    assert client.get(path + "/download").status_code == 404
    assert "Chưa có việc nào chạy nền." in client.get("/jobs").text


def test_a_long_export_leaves_its_file_on_the_page(client, world, slow):
    log_in(client, world["users"]["receiver"])
    slow.set()
    path = job_path(client.get("/completeness/export.xlsx", params={"regime": CODE, "period": MARCH},
                               follow_redirects=False))
    background.wait_all()
    done = client.get(path)
    assert "Tệp đã sẵn sàng để tải về." in done.text
    link = re.search(r'id="job-download" href="([^"]+)"', done.text).group(1)
    file = client.get(link)
    assert file.status_code == 200 and file.content[:2] == b"PK"  # an xlsx (a zip)
    assert "attachment" in file.headers["content-disposition"]
    assert file.headers["cache-control"] == "private, no-store"
    back = re.search(r'<a class="btn" href="([^"]+)">Quay lại trang trước', done.text)
    assert back and back.group(1).startswith("/completeness?regime=")


def test_a_refused_job_says_why_in_the_persons_language(client, world, slow):
    log_in(client, world["users"]["receiver"])
    path = job_path(press(client, message="x" * 2000))  # a message too long
    slow.set()
    background.wait_all()
    failed = client.get(path)
    assert 'data-status="failed"' in failed.text and 'role="alert"' in failed.text
    assert "Không có gì bị thay đổi bởi lần chạy này" in failed.text


def test_quick_work_answers_as_before(client, world):
    log_in(client, world["users"]["receiver"])
    response = press(client)
    assert response.status_code == 303 and response.headers["location"].startswith("/completeness?")
    assert "Chưa có việc nào chạy nền." in client.get("/jobs").text  # nothing to come back to


def test_the_administrator_rebuilds_live_consolidation_in_the_background(client, login, monkeypatch):
    from core.reporting import repair

    login(is_admin=True)
    shown = client.get("/admin/consolidation")
    assert shown.status_code == 200 and "Tính lại tất cả" in shown.text
    token = csrf_from(shown.text)
    gate, real = threading.Event(), repair.consolidation.rebuild

    def held(**kwargs):
        assert gate.wait(10)
        return real(**kwargs)

    monkeypatch.setattr(repair.consolidation, "rebuild", held)
    monkeypatch.setattr(web_background, "FOLLOW_AFTER", 0.0)
    path = job_path(client.post("/admin/consolidation/rebuild", data={"csrf_token": token, "regime": "",
                                                                      "period": ""}, follow_redirects=False))
    assert "Đang tính lại từng kỳ báo cáo…" in page_once(client, path, "Đang tính lại")
    gate.set()
    background.wait_all()
    done = client.get(path).text
    assert "Đã tính lại 0 kỳ tổng hợp: 0 đơn vị tổng hợp, 0 đơn vị được tính." in done
    assert 'href="/admin/consolidation?periods=0' in done

    monkeypatch.setattr(web_background, "FOLLOW_AFTER", 10.0)
    refused = client.post("/admin/consolidation/rebuild", data={"csrf_token": token, "regime": "KHONG.CO",
                                                               "period": ""})
    assert refused.status_code == 422 and "Không có chế độ báo cáo với mã này." in refused.text
    with db.connection_context():
        from core.audit import AuditEvent

        assert AuditEvent.select().where(AuditEvent.action == "consolidation.rebuild").count() == 1


def test_the_rebuild_screen_is_the_system_administrators(client, login):
    login(roles=("unit_admin",))
    assert client.get("/admin/consolidation").status_code == 403
