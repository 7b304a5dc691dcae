"""The audit screen's incident evidence button (security.md VN-02): the system administrator gets the
ZIP for the window and filters of the form, the export is audited; a unit's administrator sees no
button and is refused; a window over 31 days comes back on the screen with the reason in the
reader's language. Tree and people: tests/web/test_audit_screen.py's ``site``."""

from __future__ import annotations

import datetime as dt
import io
import json
import zipfile

from core import clock, incident
from core.audit import AuditEvent
from core.db import db
from core.models import utcnow
from tests.web.test_audit_screen import rec, site  # noqa: F401 — the fixture, shared


def local_minute(delta: dt.timedelta) -> str:
    """What <input type="datetime-local"> sends: the instance's local time, to the minute."""
    return clock.local(utcnow() + delta).strftime("%Y-%m-%dT%H:%M")


def exported() -> list[AuditEvent]:
    with db.connection_context():
        return list(AuditEvent.select().where(AuditEvent.action == incident.ACTION))


def test_vn02_the_system_administrator_exports_the_window_of_the_form(site):
    rec("auth.login", actor=site.users.clerk, unit=site.gio_my)
    rec("auth.login", actor=site.users.other, unit=site.cam_hieu)
    client = site.login(site.users.root)
    page = client.get("/audit")
    assert 'id="incident-export"' in page.text and 'type="datetime-local"' in page.text
    answer = client.get("/audit/incident.zip", params={
        "start": local_minute(-dt.timedelta(hours=1)), "end": local_minute(dt.timedelta(hours=1)),
        "unit_code": "464", "username": ""})
    assert answer.status_code == 200, answer.text[:300]
    assert answer.headers["content-type"] == "application/zip"
    assert answer.headers["content-disposition"].startswith('attachment; filename="bang-chung-su-co-')
    with zipfile.ZipFile(io.BytesIO(answer.content)) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        audit_rows = archive.read("audit.csv").decode("utf-8-sig")
    # Huyện Gio Linh's subtree only: Xã Gio Mỹ's login, not Xã Cam Hiếu's.
    assert "canbo_giomy" in audit_rows and "canbo_camhieu" not in audit_rows
    assert manifest["filters"]["unit"] == "464" and manifest["exported_by"]["username"] == "qt_tinh"
    assert manifest["exported_by"]["via"] == "screen" and manifest["audit_chain"]["verified"] is True
    [event] = exported()
    assert event.actor_name == "qt_tinh" and json.loads(event.details)["filters"]["unit"] == "464"


def test_vn02_a_unit_administrator_has_no_button_and_is_refused(site):
    client = site.login(site.users.gio_linh)
    page = client.get("/audit")
    assert page.status_code == 200 and 'id="incident-export"' not in page.text
    answer = client.get("/audit/incident.zip", params={
        "start": local_minute(-dt.timedelta(hours=1)), "end": local_minute(dt.timedelta(hours=1))})
    assert answer.status_code == 403 and answer.headers["content-type"].startswith("text/html")
    assert exported() == []


def test_vn02_a_window_over_31_days_is_refused_on_the_screen_with_what_was_typed(site):
    client = site.login(site.users.root)
    params = {"start": "2026-01-01T00:00", "end": "2026-02-01T00:01", "unit_code": "", "username": "ai=do"}
    answer = client.get("/audit/incident.zip", params=params)
    assert answer.status_code == 422 and answer.headers["content-type"].startswith("text/html")
    assert "Khoảng thời gian tối đa 31 ngày" in answer.text
    assert 'id="incident-error"' in answer.text and 'value="2026-01-01T00:00"' in answer.text
    assert exported() == []
