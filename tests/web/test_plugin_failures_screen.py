"""The plugins page shows what the worker recorded (issue 13): a plugin job that failed twice in the
worker (another process, another plugin manager) is listed with where, what, first and last seen in
the instance's time zone and how many times, to system administrators only; they clear it (a POST
with the CSRF token, audited) once the plugin is fixed."""

from __future__ import annotations

import datetime as dt

import pytest

from core.i18n import format_datetime
from core.jobs import make_huey
from core.plugins import build_plugin_manager
from core.registry import build_registry
from tests.conftest import csrf_from
from tests.fixtures.plugins import fx

ERROR = "RuntimeError: fx_jobs: the remote archive refused the upload"


@pytest.fixture
def app(make_app, settings):
    return make_app(settings, builtins=fx("fx_good", "fx_jobs"), strict=True)


@pytest.fixture
def worker_failed_twice(app, settings, frozen_clock):
    """fx_jobs' failing job run twice by the worker's huey, with the worker's own plugin manager."""
    pm = build_plugin_manager(settings, builtins=fx("fx_good", "fx_jobs"), load_entrypoints=False, strict=True)
    huey = make_huey(settings, immediate=True, plugins=(pm, build_registry(pm, settings)))
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None, second=0, microsecond=0)
    times = (now - dt.timedelta(hours=3, minutes=10), now - dt.timedelta(hours=1))
    for when in times:
        frozen_clock(when)
        huey.plugin_jobs["fx_jobs.explode"]()
    frozen_clock(None)
    assert not app.state.pm.infos["fx_jobs"].errors  # the web server itself never saw it
    return times


def test_a_system_administrator_sees_the_workers_failure_on_both_pages(client, login, worker_failed_twice):
    first, last = worker_failed_twice
    login(is_admin=True)
    for path in ("/admin/plugins", "/admin/plugins/fx_jobs"):
        page = client.get(path)
        assert page.status_code == 200
        text = page.text
        assert ERROR in text and "Tiến trình nền (worker)" in text and "tác vụ định kỳ" in text, path
        assert format_datetime(first, "vi") in text and format_datetime(last, "vi") in text, path
        assert "1 lỗi ở tiến trình nền" in text and "Xoá các lỗi đã ghi" in text, path
    assert ">2</td>" in client.get("/admin/plugins").text  # how many times
    assert "2 lần" in client.get("/admin/plugins/fx_jobs").text
    client.cookies.set("baocao_lang", "en")
    english = client.get("/admin/plugins/fx_jobs").text
    assert "Background worker" in english and "2 times" in english
    assert format_datetime(first, "en") in english


def test_nobody_else_sees_it(client, login, worker_failed_twice):
    login(roles=("unit_admin",))  # holds core.plugin.admin at a unit: the page, not these rows
    for path in ("/admin/plugins", "/admin/plugins/fx_jobs"):
        page = client.get(path)
        assert page.status_code == 200 and ERROR not in page.text and "Xoá các lỗi đã ghi" not in page.text
    token = csrf_from(client.get("/admin/plugins").text)
    assert client.post("/admin/plugins/fx_jobs/failures/clear", data={"csrf_token": token},
                       follow_redirects=False).status_code == 403
    client.post("/logout", data={"csrf_token": token})
    login()  # no right at all
    assert client.get("/admin/plugins").status_code == 403
    assert client.get("/admin/plugins/fx_jobs").status_code == 403
    login(is_admin=True)
    assert ERROR in client.get("/admin/plugins").text  # still there: nobody else could clear it


def test_clearing_removes_the_rows_and_is_audited(client, login, worker_failed_twice):
    from core.audit import AuditEvent
    from core.db import db
    from core.plugin_failures import PluginFailure

    admin = login(is_admin=True)
    token = csrf_from(client.get("/admin/plugins/fx_jobs").text)
    response = client.post("/admin/plugins/fx_jobs/failures/clear", data={"csrf_token": token},
                           follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/admin/plugins/fx_jobs?done=cleared#recorded-failures"
    page = client.get(response.headers["location"]).text
    assert ERROR not in page and "Đã xoá các lỗi đã ghi của phân hệ." in page
    assert "Chưa có lỗi nào được ghi từ tiến trình nền." in client.get("/admin/plugins").text
    with db.connection_context():
        assert PluginFailure.select().count() == 0
        event = AuditEvent.select().where(AuditEvent.action == "plugin.failures_clear").get()
    assert (event.actor_id, event.object_id) == (admin.id, "fx_jobs")


def test_from_the_list_page_back_to_the_list_and_for_a_plugin_no_longer_installed(client, login, settings):
    from core.db import db
    from core.plugin_failures import Recorder

    with db.connection_context():
        Recorder("worker").note("fx_removed", "job", RuntimeError("gone"))
    login(is_admin=True)
    page = client.get("/admin/plugins").text
    assert "RuntimeError: gone" in page and 'id="recorded-fx_removed"' in page
    token = csrf_from(page)
    response = client.post("/admin/plugins/fx_removed/failures/clear", data={"csrf_token": token, "back": "list"},
                           follow_redirects=False)
    assert response.headers["location"] == "/admin/plugins?done=cleared#recorded-failures"
    assert "RuntimeError: gone" not in client.get(response.headers["location"]).text
    bad = client.post("/admin/plugins/Bad%20Name/failures/clear", data={"csrf_token": token}, follow_redirects=False)
    assert bad.status_code == 404
