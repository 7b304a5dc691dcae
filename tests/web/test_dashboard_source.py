"""The dashboard says where a consolidated figure comes from (issue 14 item 1, "published with their
provenance"): under each indicator, how many units the live consolidation counted for the latest
period and which of those reporting to the unit are not counted yet; the line changes on the next
page load after an acceptance, and a unit's own figures (no consolidation) carry no such line."""

from __future__ import annotations

import datetime as dt

from core.accounts import login as accounts
from core.db import db
from tests.core.test_live_consolidation import accept, send
from tests.fixtures.forms import access_of, form_world
from tests.web.test_report_entry import log_in


def source_of(html: str, code: str = "KX0301") -> str | None:
    marker = f'id="panel-{code}-source">'
    if marker not in html:
        return None
    return html.split(marker, 1)[1].split("</p>", 1)[0]


def test_the_dashboard_names_the_units_its_consolidated_figures_count(client, app, frozen_clock):
    frozen_clock(dt.datetime(2026, 4, 10, 3, 0))
    with db.connection_context():
        w = form_world()
        admin = accounts.create_user("quantri_dash", "Quản trị", accounts.random_password(), w.u["province"],
                                     is_admin=True)
        w.admin = access_of(admin)
        send(w, w.report.id, "10", "5")
        accept(w, w.report.id)
        province = w.u["province"].code
    log_in(client, admin)
    line = source_of(client.get("/dashboard", params={"unit": province}).text)
    assert line == ("Tháng 3 năm 2026: số liệu tổng hợp ngay khi tiếp nhận báo cáo, đã tính 1 đơn vị. "
                    "Chưa tính 1 đơn vị chưa gửi hoặc chưa được tiếp nhận: Xã Cam Lộ.")

    with db.connection_context():
        send(w, w.other_report.id, "20", "7")
        accept(w, w.other_report.id)
    line = source_of(client.get("/dashboard", params={"unit": province}).text)
    assert line == "Tháng 3 năm 2026: số liệu tổng hợp ngay khi tiếp nhận báo cáo, đã tính 2 đơn vị."

    commune = client.get("/dashboard", params={"unit": "AT"}).text  # Xã Ái Tử: its own accepted figures
    assert 'id="panel-KX0301"' in commune and source_of(commune) is None
