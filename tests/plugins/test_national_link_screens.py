"""The national link's screens at /p/national_link/ (issue 16, item 6), through the web stack: who
may open each page, the exchange log after a failure and a retry (and a cancel refused once sent),
a packet's page limited to the units of the reader's scope, the proposals received applied or
rejected with a reason (422 without one, nothing changed), the connectors' switches and routes with
their refusals, and the published JSON Schemas. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from core.accounts.permissions import core_access
from core.db import db
from core.models import Unit, User
from core.settings import PluginSettings
from core.signatures import signing
from plugins.national_link import packets
from plugins.national_link.models import ConnectorSwitch, Exchange, Proposal, Route
from plugins.national_link.national_server import GOVERNMENT
from tests.conftest import csrf_from
from tests.fixtures.national_server import national_server, trust_test_ca  # noqa: F401 — a fixture
from tests.fixtures.pki import pki
from tests.plugins.test_chuyen_nganh_screens import log_in, post

BASE = "/p/national_link"
PROVINCE_CODE = "000.00.00.H50"
SECRET = "bi-mat-khong-duoc-hien-ra"
PAGES = ("/log", "/connectors", "/proposals", "/schemas/baocao-2026.1/report_data.json")


@pytest.fixture
def settings(make_settings, plugins_under_test, national_server):  # noqa: F811 — the app's settings
    return make_settings(plugins=PluginSettings(allow_external=tuple(plugins_under_test), config={
        "national_link": {"connectors": {"chinhphu": {
            "kind": "qcvn125", "label": "Hệ thống báo cáo Chính phủ", "url": national_server.url,
            "agency_code": GOVERNMENT, "timeout": 2, "token": SECRET}}}}))


@pytest.fixture
def people(client, unit_tree, make_user, settings, national_server):  # noqa: F811
    operator = make_user(unit=unit_tree.province, roles=("national_link.operator",))
    admin = make_user(unit=unit_tree.province, is_admin=True)
    department_operator = make_user(unit=unit_tree.department, roles=("national_link.operator",))
    commune = make_user(unit=unit_tree.communes[0], roles=("viewer", "reporter"))
    with db.connection_context():
        Unit.update(agency_code=PROVINCE_CODE).where(Unit.id == unit_tree.province.id).execute()
        trust_test_ca(core_access(User.get_by_id(admin[0].id)))
        seal = pki().seal("Tỉnh Quảng Trị", mst="3200000044", key_label="seal-province")
        signing.install_seal(core_access(User.get_by_id(admin[0].id)), unit_tree.province.id,
                             pki().pkcs12(seal, "mk"), "mk", settings=settings)
        ConnectorSwitch.create(connector="chinhphu", unit_id=unit_tree.province.id, enabled=True)
    return SimpleNamespace(tree=unit_tree, operator=operator, admin=admin, department_operator=department_operator,
                           commune=commune, server=national_server)


def send_catalogue(client, p):
    return post(client, f"{BASE}/connectors/chinhphu/send",
                {"unit_id": str(p.tree.province.id), "packet_type": "indicator_catalogue"}, f"{BASE}/connectors")


def test_each_page_for_each_person(client, people):
    for path in PAGES:
        client.cookies.clear()
        assert client.get(BASE + path, follow_redirects=False).status_code in (302, 303)  # the login page
    log_in(client, people.commune)
    for path in PAGES:
        assert client.get(BASE + path).status_code == 403
    log_in(client, people.operator)
    for path in PAGES:
        assert client.get(BASE + path).status_code == 200
    assert client.get(BASE + "/schemas/baocao-2026.1/nothing.json").status_code == 404
    schema = client.get(BASE + "/schemas/baocao-2026.1/report_data.json").json()
    assert schema == packets.schema("report_data", "baocao-2026.1")
    page = client.get(BASE + "/connectors").text
    assert "Hệ thống báo cáo Chính phủ" in page and people.server.url in page
    assert SECRET not in page  # a connector's credentials are never shown


def test_a_failed_send_shows_the_remotes_answer_then_the_retry_its_receipt(client, people):
    log_in(client, people.operator)
    people.server.fail_next(1)
    answer = send_catalogue(client, people)
    assert answer.status_code == 303 and answer.headers["location"].endswith("?done=catalogue")
    log = client.get(BASE + "/log").text
    with db.connection_context():
        [row] = Exchange.select()
    assert f'id="exchange-{row.id}" data-state="pending"' in log
    assert "503" in log and "Gửi lại ngay" in log
    # The same catalogue again: nothing new to send.
    again = send_catalogue(client, people)
    assert again.headers["location"].endswith("?done=catalogue_same")
    retried = post(client, f"{BASE}/packets/{row.id}/retry", {}, BASE + "/log")
    assert retried.status_code == 303
    log = client.get(BASE + "/log").text
    assert f'id="exchange-{row.id}" data-state="acknowledged"' in log and "CP-" in log
    [stored] = people.server.received
    assert (stored.packet_type, stored.attempts, stored.repeats) == ("indicator_catalogue", 2, 0)
    # Sent: it can no longer be cancelled or retried (the log says why, nothing changes).
    refused = post(client, f"{BASE}/packets/{row.id}/cancel", {}, BASE + "/log")
    assert refused.status_code == 409 and "national-link-refused" in refused.text
    page = client.get(f"{BASE}/packets/{row.id}").text
    assert "Đã được xác nhận" in page and "indicator_catalogue" in page


def test_a_packet_of_a_unit_outside_the_readers_scope_does_not_exist_for_them(client, people):
    log_in(client, people.operator)
    send_catalogue(client, people)
    with db.connection_context():
        [row] = Exchange.select()
    log_in(client, people.department_operator)
    assert client.get(f"{BASE}/packets/{row.id}").status_code == 404
    assert f"exchange-{row.id}" not in client.get(BASE + "/log").text
    assert post(client, f"{BASE}/packets/{row.id}/retry", {}, BASE + "/log").status_code == 404
    assert client.get(f"{BASE}/packets/{row.id + 999}").status_code == 404


def test_a_proposal_is_rejected_only_with_a_reason_and_applied_once(client, people):
    log_in(client, people.operator)
    people.server.send("indicator_groups", {"groups": [{"code": "KX09", "name": "Nhóm mới", "level": "province"}]},
                       PROVINCE_CODE)
    people.server.send("indicator_groups", {"groups": [{"code": "KX08", "name": "Nhóm khác", "level": "province"}]},
                       PROVINCE_CODE)
    fetched = post(client, f"{BASE}/fetch", {}, BASE + "/log")
    assert fetched.headers["location"].endswith("?done=fetch")
    listing = client.get(BASE + "/proposals").text
    with db.connection_context():
        first, second = Proposal.select().order_by(Proposal.id)
    assert f"proposal-{first.id}" in listing and f"proposal-{second.id}" in listing
    page = client.get(f"{BASE}/proposals/{first.id}").text
    assert "KX09" in page and "Nhóm mới" in page
    refused = post(client, f"{BASE}/proposals/{first.id}/reject", {"reason": "  "}, f"{BASE}/proposals/{first.id}")
    assert refused.status_code == 422 and "Ghi lý do không áp dụng" in refused.text
    rejected = post(client, f"{BASE}/proposals/{first.id}/reject", {"reason": "Trùng với nhóm đã có"},
                    f"{BASE}/proposals/{first.id}")
    assert rejected.status_code == 303
    applied = post(client, f"{BASE}/proposals/{second.id}/apply", {}, f"{BASE}/proposals/{second.id}")
    assert applied.status_code == 303
    twice = post(client, f"{BASE}/proposals/{second.id}/apply", {}, f"{BASE}/proposals/{second.id}")
    assert twice.status_code == 422 and "đã được quyết định" in twice.text
    with db.connection_context():
        from core.api import indicator_groups_of

        codes = {g.code for g in indicator_groups_of("KX0")}
        assert "KX08" in codes and "KX09" not in codes
        assert [p.state for p in Proposal.select().order_by(Proposal.id)] == ["rejected", "applied"]
    # Someone without the right to apply reads nothing of it.
    log_in(client, people.department_operator)
    assert client.get(f"{BASE}/proposals/{first.id}").status_code == 200  # the operator role holds it …
    log_in(client, people.commune)
    assert client.get(f"{BASE}/proposals/{first.id}").status_code == 403  # … a commune's officer does not


def test_switches_and_routes_refuse_what_cannot_work(client, people):
    log_in(client, people.operator)
    tree = people.tree
    no_code = post(client, f"{BASE}/connectors/chinhphu/units", {"unit_id": str(tree.department.id), "enabled": "1"},
                   f"{BASE}/connectors")
    assert no_code.status_code == 422 and "chưa có mã định danh" in no_code.text
    unknown = post(client, f"{BASE}/connectors/chinhphu/routes", {"regime_code": "KHONG.CO", "present": "1"},
                   f"{BASE}/connectors")
    assert unknown.status_code == 422 and "KHONG.CO" in unknown.text
    off = post(client, f"{BASE}/connectors/chinhphu/units", {"unit_id": str(tree.province.id), "enabled": "0"},
               f"{BASE}/connectors")
    assert off.status_code == 303
    with db.connection_context():
        assert not ConnectorSwitch.get(ConnectorSwitch.unit_id == tree.province.id).enabled
        assert not Route.select().exists()
    assert post(client, f"{BASE}/connectors/nothing/units", {"unit_id": "1", "enabled": "1"},
                f"{BASE}/connectors").status_code == 404
    # Switched off, the province sends nothing more through it.
    refused = send_catalogue(client, people)
    assert refused.status_code == 403
