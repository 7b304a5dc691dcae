"""The screens and the API agree on the day (issue 12 item 6): at 18:30 UTC on 6 December 2026 it
is 01:30 on 7 December in Vietnam, and a regime issued then is in force from 07/12/2026, the day
the home page calls "Hôm nay"; the API's default ``at`` is that day too."""

from __future__ import annotations

import datetime as dt
import re

from tests.conftest import csrf_from
from tests.web.test_regime_screens import _units, create

VN_NIGHT = dt.datetime(2026, 12, 6, 18, 30)


def _after(label: str, html: str) -> str:
    match = re.search(re.escape(label) + r"</dt>\s*<dd>([^<]*)", html)
    assert match, f"no {label!r} on the page"
    return match.group(1).strip()


def test_the_regime_validity_and_today_agree_at_night(client, login, frozen_clock):
    frozen_clock(VN_NIGHT)
    login(is_admin=True)
    units = _units()
    token = csrf_from(client.get("/regimes").text)
    regime_id = create(client, units, token)
    issued = client.post(f"/regimes/{regime_id}/issue", data={"csrf_token": token}, follow_redirects=False)
    assert issued.status_code == 303
    page = client.get(f"/regimes/{regime_id}").text
    assert _after("Hiệu lực", page) == "07/12/2026"
    assert _after("Hôm nay", client.get("/").text) == "07/12/2026"


def test_the_api_default_at_is_the_vietnamese_date(client, login, frozen_clock):
    from core.db import db
    from core.models import Unit

    frozen_clock(VN_NIGHT)
    login(is_admin=True)
    with db.connection_context():
        # A commune that comes into being on 07/12/2026 (Vietnam's today, still the 6th in UTC).
        Unit.create(code="XMOI", name="Xã Mới", kind="commune", parent=Unit.get(Unit.code == "ROOT"),
                    valid_from=dt.date(2026, 12, 7))
    data = client.get("/api/v1/units/XMOI").json()
    assert data["at"] == "2026-12-07" and data["valid_at"] is True
    codes = [u["code"] for u in client.get("/api/v1/units").json()["items"]]
    assert "XMOI" in codes
