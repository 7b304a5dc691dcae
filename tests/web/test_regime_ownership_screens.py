"""The screens of regimes owned by plugins (issue 13 item 6): the regime form chooses the receiving
rule, the regime's page shows it and says a plugin's regime follows the plugin's switch; a unit
group has an owner unit, typed by its code; a report of a plugin switched off since it was opened
still opens with its figures. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import re

import pytest
from starlette.testclient import TestClient

from tests.fixtures.plugins import fx
from tests.web.test_regime_screens import admin, create, form_for  # noqa: F401 — the fixture
from tests.web.test_report_entry import log_in


def test_the_form_sets_the_parent_rule_and_the_page_shows_it(client, admin):  # noqa: F811
    units, token = admin
    form = client.get("/regimes/new").text
    assert 'name="receiving_rule" value="parent"' in form and 'name="receiving_group_id"' in form
    regime_id = create(client, units, token, receiving_rule="parent", receiving_unit_id="")
    page = client.get(f"/regimes/{regime_id}").text
    assert "Đơn vị cấp trên trực tiếp của từng đơn vị báo cáo" in page
    edit = client.get(f"/regimes/{regime_id}/edit").text
    assert re.search(r'name="receiving_rule" value="parent" checked', edit)


def test_the_group_owner_rule_needs_a_group(client, admin):  # noqa: F811
    units, token = admin
    answer = client.post("/regimes/new", data={**form_for(units), "receiving_rule": "group_owner", "csrf_token": token})
    assert answer.status_code == 422
    assert "Vui lòng chọn nhóm đơn vị có đơn vị quản lý nhận báo cáo." in answer.text


def test_a_group_gets_its_owner_by_code_and_the_list_shows_it(client, admin):  # noqa: F811
    units, token = admin
    base = {"code": "XA_NN", "name": "Xã theo dõi nông nghiệp", "unit_ids": [str(units["AT"])],
            "action": "save", "csrf_token": token}
    wrong = client.post("/unit-groups/new", data={**base, "owner": "KHONG_CO"})
    assert wrong.status_code == 422 and "Đơn vị quản lý không tồn tại hoặc không còn hoạt động." in wrong.text
    made = client.post("/unit-groups/new", data={**base, "owner": "STC"}, follow_redirects=False)
    assert made.status_code == 303
    listing = client.get("/unit-groups").text
    assert "Sở Tài chính" in listing and "Đơn vị quản lý" in listing
    from core.db import db
    from core.regimes.regimes import UnitGroup

    with db.connection_context():
        group = UnitGroup.get(UnitGroup.code == "XA_NN")
        assert group.owner_id == units["STC"]
    edit = client.get(f"/unit-groups/{group.id}").text
    assert 'name="owner" type="text" value="STC"' in edit


@pytest.fixture
def site(make_app):
    """The app with the fixture plugin ``fx_good``, tests/fixtures/forms.py's world in its database
    and the world's regime owned by ``fx_good``; Ái Tử's March report filled."""
    from core.db import db
    from core.regimes import regimes as rg
    from core.reporting import data as rd
    from tests.fixtures.forms import form_world

    app = make_app(builtins=fx("fx_good"), strict=True)
    with TestClient(app) as client:
        with db.connection_context():
            w = form_world()
            rg.Regime.update(plugin="fx_good").where(rg.Regime.code == w.regime.code).execute()
            rd.save(w.p["reporter"], w.report.id, {("banle", "cur"): (rd.MISSING, "12,5")},
                    {"ketqua": (rd.MISSING, "Gieo cấy đúng lịch.")})
        w.client, w.app = client, app
        yield w


def test_a_report_stays_readable_with_its_figures_when_its_plugin_is_switched_off(site):
    from core import activation
    from core.db import db
    from core.models import User

    with db.connection_context():
        admin = User.get_by_id(site.users["issuer"].id)
        activation.set_activation(site.u["aitu"].id, "fx_good", "off", admin, site.app.state.registry)
    log_in(site.client, site.users["reporter"])
    page = site.client.get(f"/reports/{site.report.id}")
    assert page.status_code == 200
    assert re.search(r'name="cell\.banle\.cur"[^>]*value="12,5"', page.text)
    assert "Gieo cấy đúng lịch.</textarea>" in page.text
    # The regime's page says its reports follow the plugin's switch, and counts Cam Lộ alone.
    log_in(site.client, site.users["issuer"])
    detail = site.client.get(f"/regimes/{site.regime.id}").text
    assert "Chỉ các đơn vị đã bật plugin fx_good mới được mở báo cáo của chế độ này." in detail
    assert re.search(r"<li>Xã Cam Lộ ", detail) and not re.search(r"<li>Xã Ái Tử ", detail)
