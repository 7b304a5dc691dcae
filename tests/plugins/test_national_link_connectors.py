"""Connectors (plugins/national_link/connectors.py): each remote read from the settings with every
mistake named, its secrets never shown; packets delivered sealed to the national test server with
the remote's acknowledgement recorded; a remote down, slow or refusing the login retried with the
outbox's backoff and never given a packet twice; a refusal kept with the remote's answer; DHIS2's
import summary read; what the remote sends down fetched page by page; the demo's test server
started once; and a vendor's connector, shipped as its own package, delivering through its own
channel."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
import logging
import os
import re
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest

from core.api import BaocaoError, ChannelUnavailable, OutboxMessage, PluginError, enqueue, transaction, utcnow
from core.accounts.permissions import core_access
from core.db import db
from core.models import Unit, User
from core.outbox import OutboxMessage as OutboxRow, channels as outbox_channels, deliver_due
from core.settings import PluginSettings
from core.signatures import signing
from plugins.national_link import connectors as nl
from plugins.national_link.models import Exchange
from plugins.national_link.national_server import GOVERNMENT
from plugins.national_link.packets import check, period_catalogue_body
from tests.fixtures.national_server import national_server, trust_test_ca  # noqa: F401 — a fixture
from tests.fixtures.pki import pki
from tests.fixtures.vendor import forget_modules, install_vendor

PROVINCE = "000.00.00.H50"  # Tỉnh Quảng Trị's electronic code (mã định danh)
TOKEN = "bi-mat-cua-tinh-2026"
PASSWORD = "mat-khau-dhis2-!"
UNIT = {"agency_code": PROVINCE, "code": "44", "name": "Tỉnh Quảng Trị"}
PERIOD = {"frequency": "monthly", "year": 2026, "index": 3, "start": "2026-02-15", "end": "2026-03-14"}
ACME = Path(__file__).resolve().parents[1] / "fixtures" / "vendor" / "baocao-acme-connector"


def chinhphu(url: str, **changes) -> dict:
    return {"kind": "qcvn125", "url": url, "agency_code": GOVERNMENT, "token": TOKEN, "timeout": 2, **changes}


def status_body(report_id: int = 7) -> dict:
    return {"report": {"id": report_id, "regime_code": "KTXH.THANG", "unit": UNIT, "period": PERIOD, "version": 1,
                       "sha256": ""},
            "status": "submitted", "at": "2026-03-18T02:00:00Z", "reason": "", "refs": []}


def queued(unit_id: int, message_id: str = "bc-7-1-report-status", *, connector: str = "chinhphu",
           channel: str = "national_link.chinhphu") -> OutboxMessage:
    """A message as national_link queues a packet (send.py) and the outbox hands it to a channel."""
    payload = {"connector": connector, "unit_id": unit_id, "report_id": 7, "packet_type": "report_status",
               "message_id": message_id, "body": status_body()}
    return OutboxMessage(id=1, channel=channel, key=message_id, payload=payload, attempt=1, created_at=utcnow())


# -- settings --------------------------------------------------------------------------------------

def test_a_connector_is_read_with_its_defaults():
    (found,) = nl.connectors({"connectors": {"chinhphu": {
        "kind": "qcvn125", "url": "https://baocao.chinhphu.vn/api/", "agency_code": GOVERNMENT}}}).values()
    assert found == nl.Connector(name="chinhphu", label="chinhphu", kind="qcvn125",
                                 url="https://baocao.chinhphu.vn/api", agency_code=GOVERNMENT, token="", username="",
                                 password="", timeout=20.0, mapping_version="baocao-2026.1", receives=True,
                                 channel="national_link.chinhphu")


def test_each_kind_takes_what_it_needs():
    found = nl.connectors({"mapping_version": "baocao-2026.1", "connectors": {
        "boyte": {"kind": "dhis2", "url": "https://dhis2.moh.gov.vn", "username": "quangtri", "password": PASSWORD,
                  "timeout": 45, "label": "DHIS2 của Bộ Y tế", "mapping_version": "yte-2026"},
        "acme": {"kind": "channel", "channel": "acme_connector.send", "agency_code": "000.00.00.G12"}}})
    boyte = found["boyte"]
    assert (boyte.channel, boyte.receives, boyte.agency_code) == ("national_link.boyte", False, "")
    assert (boyte.label, boyte.timeout, boyte.mapping_version) == ("DHIS2 của Bộ Y tế", 45.0, "yte-2026")
    assert (found["acme"].channel, found["acme"].url, found["acme"].receives) == ("acme_connector.send", "", False)
    assert [c.name for c in nl.channels({"connectors": {
        "boyte": {"kind": "dhis2", "url": "https://dhis2.moh.gov.vn", "token": "d2p_x"},
        "acme": {"kind": "channel", "channel": "acme_connector.send", "agency_code": "000.00.00.G12"},
        "chinhphu": chinhphu("https://baocao.chinhphu.vn")}})] == ["national_link.boyte", "national_link.chinhphu"]
    assert nl.connectors({}) == {} and nl.channels({}) == []


WHERE = "plugins.national_link.connectors"
BAD = [  # (connectors table, the setting named after "plugins.national_link.connectors.", the error)
    ({"Chinh-Phu": chinhphu("https://a.vn")}, "Chinh-Phu", "name"),
    ({"chinhphu": "https://a.vn"}, "chinhphu", "table"),
    ({"chinhphu": chinhphu("https://a.vn", tokne="x")}, "chinhphu.tokne", "unknown"),
    ({"chinhphu": chinhphu("https://a.vn", kind="soap")}, "chinhphu.kind", "kind"),
    ({"chinhphu": chinhphu("ftp://a.vn")}, "chinhphu.url", "url"),
    ({"chinhphu": chinhphu("https://tinh:mk@a.vn")}, "chinhphu.url", "url"),
    ({"chinhphu": chinhphu("https://a.vn/api?x=1")}, "chinhphu.url", "url"),
    ({"chinhphu": chinhphu("")}, "chinhphu.url", "url"),
    ({"chinhphu": chinhphu("https://a.vn", agency_code="")}, "chinhphu.agency_code", "agency_code"),
    ({"chinhphu": chinhphu("https://a.vn", agency_code="000 00")}, "chinhphu.agency_code", "agency_code"),
    ({"chinhphu": chinhphu("https://a.vn", timeout=0)}, "chinhphu.timeout", "timeout"),
    ({"chinhphu": chinhphu("https://a.vn", timeout=121)}, "chinhphu.timeout", "timeout"),
    ({"chinhphu": chinhphu("https://a.vn", timeout="20")}, "chinhphu.timeout", "timeout"),
    ({"chinhphu": chinhphu("https://a.vn", mapping_version="qcvn-2030")}, "chinhphu.mapping_version",
     "mapping_version"),
    ({"chinhphu": chinhphu("https://a.vn", receives="yes")}, "chinhphu.receives", "receives"),
    ({"boyte": {"kind": "dhis2", "url": "https://d.vn", "token": "t", "receives": True}}, "boyte.receives",
     "receives"),
    ({"boyte": {"kind": "dhis2", "url": "https://d.vn"}}, "boyte", "dhis2_login"),
    ({"boyte": {"kind": "dhis2", "url": "https://d.vn", "username": "quangtri"}}, "boyte.password", "credentials"),
    ({"acme": {"kind": "channel", "agency_code": "G12"}}, "acme.channel", "channel"),
    ({"acme": {"kind": "channel", "agency_code": "G12", "channel": "national_link.chinhphu"}}, "acme.channel",
     "channel"),
    ({"acme": {"kind": "channel", "agency_code": "G12", "channel": "acme_connector.send", "url": "https://a.vn"}},
     "acme.url", "url_unused"),
    ({"chinhphu": chinhphu("https://a.vn", channel="acme_connector.send")}, "chinhphu.channel", "channel_unused"),
    ({"chinhphu": chinhphu("https://a.vn", label=12)}, "chinhphu.label", "text"),
]


@pytest.mark.parametrize("raw, setting, key", BAD, ids=[f"{case[1].rsplit('.', 1)[-1]}-{case[2]}" for case in BAD])
def test_each_wrong_setting_is_named_in_both_languages(raw, setting, key):
    with pytest.raises(PluginError) as refused:
        nl.connectors({"connectors": raw})
    assert refused.value.key == f"national_link.connectors.error.{key}"
    vi, en = str(refused.value).split(" / ", 1)
    assert f'"{WHERE}.{setting}"' in vi and f'"{WHERE}.{setting}"' in en
    assert vi.startswith(("Cài đặt", "Tên kết nối", "Kết nối DHIS2")) and not vi.startswith("national_link.")


def test_the_plugin_wide_mapping_version_is_the_default_and_is_checked():
    found = nl.connectors({"mapping_version": "baocao-2026.1", "connectors": {"chinhphu": chinhphu("https://a.vn")}})
    assert found["chinhphu"].mapping_version == "baocao-2026.1"
    with pytest.raises(PluginError, match='"plugins.national_link.mapping_version"'):
        nl.connectors({"mapping_version": "qcvn-2030", "connectors": {"chinhphu": chinhphu("https://a.vn")}})
    with pytest.raises(PluginError, match='"plugins.national_link.connectors"'):
        nl.connectors({"connectors": ["chinhphu"]})


def test_secrets_never_show():
    table = {"connectors": {"boyte": {"kind": "dhis2", "url": "https://d.vn", "username": "quangtri",
                                      "password": PASSWORD, "token": TOKEN}}}
    found = nl.connectors(table)["boyte"]
    assert TOKEN not in repr(found) and PASSWORD not in repr(found) and TOKEN not in str(found)
    assert "quangtri" in repr(found)
    table["connectors"]["boyte"]["password"] = PASSWORD + "\nX-Injected: 1"
    with pytest.raises(PluginError) as refused:
        nl.connectors(table)
    assert refused.value.key == "national_link.connectors.error.secret" and PASSWORD not in str(refused.value)


def test_the_test_server_setting():
    assert nl.national_server_address({}) is None
    assert nl.national_server_address({"test_server": "127.0.0.1:8765"}) == ("127.0.0.1", 8765)
    for wrong in ("0.0.0.0:8765", "10.0.0.4:80", "127.0.0.1", "127.0.0.1:99999"):
        with pytest.raises(PluginError, match="test_server"):
            nl.national_server_address({"test_server": wrong})


def test_the_demo_settings_are_valid():
    import tomllib

    demo = tomllib.loads((Path(nl.__file__).with_name("demo.toml")).read_text(encoding="utf-8"))
    table = demo["plugins"]["national_link"]
    (found,) = nl.connectors(table).values()
    assert (found.name, found.kind, found.url, found.receives) == ("chinhphu", "qcvn125", "http://127.0.0.1:8765", True)
    assert nl.demo_server_settings(table) == ("127.0.0.1", 8765, found.agency_code)


# -- delivery to the national test server ----------------------------------------------------------

@pytest.fixture
def settings(make_settings, national_server):
    return make_settings(plugins=PluginSettings(config={"national_link": {"connectors": {
        "chinhphu": chinhphu(national_server.url)}}}))


def install_seal(unit: Unit, admin_access, settings, name: str, mst: str) -> None:
    seal = pki().seal(name, mst=mst, key_label=f"seal-{mst}")
    signing.install_seal(admin_access, unit.id, pki().pkcs12(seal, "mat-khau-con-dau"), "mat-khau-con-dau",
                         settings=settings)


@pytest.fixture
def sealed(app, unit_tree, make_user, settings):
    """Tỉnh Quảng Trị with its electronic code and its organisation seal installed (the test CA pinned)."""
    admin, _ = make_user(unit=unit_tree.province, is_admin=True)
    with db.connection_context():
        Unit.update(agency_code=PROVINCE).where(Unit.id == unit_tree.province.id).execute()
        access = core_access(User.get_by_id(admin.id))
        trust_test_ca(access)
        install_seal(unit_tree.province, access, settings, "UBND Tỉnh Quảng Trị", "3200000044")
        connector = nl.connectors(settings.plugin("national_link"))["chinhphu"]
        yield SimpleNamespace(province=unit_tree.province, commune=unit_tree.communes[0], admin=access,
                              connector=connector, settings=settings)


def logged(message_id: str, unit_id: int) -> Exchange:
    """The exchange log's row that send.py writes with the message."""
    return Exchange.create(direction="out", connector="chinhphu", packet_type="report_status", message_id=message_id,
                           report_id=7, unit_id=unit_id)


def test_a_packet_goes_sealed_and_its_acknowledgement_is_recorded(sealed, national_server):
    national_server.token = TOKEN  # the remote checks the connector's token
    row = logged("bc-7-1-report-status", sealed.province.id)
    nl.deliver(sealed.connector, queued(sealed.province.id), sealed.settings)

    (stored,) = national_server.received
    assert (stored.message_id, stored.packet_type, stored.sender, stored.receiver) == (
        "bc-7-1-report-status", "report_status", PROVINCE, GOVERNMENT)
    checked = check(json.dumps(stored.packet).encode(), sealed.settings, receiver=GOVERNMENT)
    assert checked.ok and checked.verdict.status == "valid"  # sealed by the province, verified as a report is
    assert checked.body == status_body()
    row = Exchange.get_by_id(row.id)
    assert (row.receipt_id, row.remote_status) == (stored.receipt_id, "received")
    assert row.acknowledged_at is not None and json.loads(row.answer)["receipt_id"] == stored.receipt_id


def test_the_remote_down_is_retried_with_backoff_and_gets_the_packet_once(sealed, national_server):
    national_server.fail_next(3)  # down for the first three tries
    with transaction():
        message = enqueue("national_link.chinhphu", queued(sealed.province.id).payload, key="bc-7-1-report-status")
        logged("bc-7-1-report-status", sealed.province.id)
    start = utcnow()
    waits = []
    for minutes in (0, 1, 3, 8):  # each try once the previous one's wait (1, 2, 5 minutes) is over
        result = deliver_due(sealed.settings, names=["national_link.chinhphu"],
                             now=start + dt.timedelta(minutes=minutes))
        row = OutboxRow.get_by_id(message.id)
        waits.append(round((row.next_attempt_at - start).total_seconds() / 60) if row.state == "pending" else None)
    assert waits == [1, 3, 8, None]
    assert (row.state, row.attempts, result.sent) == ("sent", 4, 1)
    (stored,) = national_server.received
    assert (stored.attempts, stored.repeats) == (4, 0)
    assert Exchange.get(Exchange.message_id == "bc-7-1-report-status").receipt_id == stored.receipt_id

    # Delivered again (a worker that died after sending, its lease over): the remote has it (409).
    nl.deliver(sealed.connector, queued(sealed.province.id), sealed.settings)
    (stored,) = national_server.received
    assert (stored.attempts, stored.repeats) == (5, 1)


def test_the_last_error_of_a_remote_down_says_so_in_both_languages(sealed, national_server):
    national_server.fail_next(1)
    with transaction():
        message = enqueue("national_link.chinhphu", queued(sealed.province.id).payload, key="bc-7-1-report-status")
    deliver_due(sealed.settings, names=["national_link.chinhphu"])
    error = OutboxRow.get_by_id(message.id).last_error
    assert error.startswith("RemoteUnavailable: ")
    assert f"{national_server.url} tạm thời không nhận (HTTP 503)" in error
    assert f"{national_server.url} is not taking anything for now (HTTP 503)" in error


def test_a_remote_too_slow_is_unavailable_and_stores_nothing(sealed, national_server):
    slow = nl.connector("chinhphu", chinhphu(national_server.url, timeout=1))
    national_server.time_out_next(1, seconds=4)
    with pytest.raises(ChannelUnavailable) as waited:
        nl.deliver(slow, queued(sealed.province.id), sealed.settings)
    assert "không trả lời trong 1 giây" in str(waited.value) and "did not answer within 1 seconds" in str(waited.value)
    assert national_server.received == []
    nl.deliver(slow, queued(sealed.province.id), sealed.settings)  # the retry
    (stored,) = national_server.received
    assert stored.attempts == 2


def test_a_packet_the_remote_has_already_is_delivered(sealed, national_server):
    logged("bc-7-1-report-status", sealed.province.id)
    nl.deliver(sealed.connector, queued(sealed.province.id), sealed.settings)
    nl.deliver(sealed.connector, queued(sealed.province.id), sealed.settings)  # answered 409: no error
    (stored,) = national_server.received
    assert stored.repeats == 1
    assert Exchange.get(Exchange.message_id == "bc-7-1-report-status").receipt_id == stored.receipt_id


def test_a_refusal_carries_the_remote_answer_and_is_not_a_remote_down(sealed, national_server):
    national_server.fail_next(1, status=422)
    with pytest.raises(BaocaoError) as refused:
        nl.deliver(sealed.connector, queued(sealed.province.id), sealed.settings)
    assert not isinstance(refused.value, ChannelUnavailable)
    assert f"{national_server.url} từ chối gói tin (HTTP 422): " in str(refused.value)
    assert "told to fail" in str(refused.value)  # the remote's own words


def test_a_login_refused_stops_the_channel(sealed, national_server):
    national_server.token = "another-token"
    with pytest.raises(ChannelUnavailable) as refused:
        nl.deliver(sealed.connector, queued(sealed.province.id), sealed.settings)
    assert "từ chối đăng nhập (HTTP 401)" in str(refused.value) and TOKEN not in str(refused.value)
    assert national_server.received == []


def test_a_unit_without_a_seal_sends_nothing(sealed, national_server):
    with db.connection_context():
        Unit.update(agency_code="000.00.44.X01").where(Unit.id == sealed.commune.id).execute()
    with pytest.raises(BaocaoError) as refused:
        nl.deliver(sealed.connector, queued(sealed.commune.id), sealed.settings)
    assert refused.value.key == "signing.error.no_seal"
    assert national_server.posts == 0


def test_a_remote_that_cannot_be_reached_is_unavailable(sealed):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    gone = nl.connector("chinhphu", chinhphu(f"http://127.0.0.1:{port}"))
    with pytest.raises(ChannelUnavailable, match=f"Không kết nối được tới http://127.0.0.1:{port}"):
        nl.deliver(gone, queued(sealed.province.id), sealed.settings)


# -- another remote: a small HTTP server answering what a test tells it ---------------------------------

class Remote:
    """A remote that answers each request with the next answer it was given, and keeps the requests."""

    def __init__(self):
        self.answers: list[tuple[int, bytes, dict]] = []
        self.requests: list[SimpleNamespace] = []
        remote = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                remote.requests.append(SimpleNamespace(method=self.command, path=self.path, headers=dict(self.headers),
                                                       body=self.rfile.read(length)))
                status, body, headers = remote.answers.pop(0) if remote.answers else (200, b"{}", {})
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, status: int, body, **headers) -> None:
        self.answers.append((status, body if isinstance(body, bytes) else json.dumps(body).encode(), headers))


@pytest.fixture
def remote():
    served = Remote()
    yield served
    served.server.shutdown()
    served.server.server_close()


def dhis2_message(message_id: str = "bc-7-1-dataValueSets") -> OutboxMessage:
    value_set = {"dataSet": "pBOMPrpg1QX", "period": "202603", "orgUnit": "DiszpKrYNg8",
                 "dataValues": [{"dataElement": "f7n9E0hX8qk", "categoryOptionCombo": "HllvX50cXC0", "value": "12.5"}]}
    return OutboxMessage(id=1, channel="national_link.boyte", key=message_id, attempt=1, created_at=utcnow(),
                         payload={"connector": "boyte", "unit_id": 1, "report_id": 7, "message_id": message_id,
                                  "value_set": value_set})


def test_dhis2_values_are_imported_and_the_summary_recorded(app, remote):
    boyte = nl.connector("boyte", {"kind": "dhis2", "url": remote.url + "/dhis", "username": "quangtri",
                                   "password": PASSWORD})
    remote.answer(200, {"httpStatus": "OK", "httpStatusCode": 200, "status": "OK", "response": {
        "responseType": "ImportSummary", "status": "SUCCESS", "importCount": {"imported": 1, "updated": 0,
                                                                              "ignored": 0, "deleted": 0}}})
    with db.connection_context():
        row = Exchange.create(direction="out", connector="boyte", packet_type="dhis2_values",
                              message_id="bc-7-1-dataValueSets", report_id=7, unit_id=1)
        nl.deliver(boyte, dhis2_message(), None)
        row = Exchange.get_by_id(row.id)
    (sent,) = remote.requests
    assert (sent.method, sent.path) == ("POST", "/dhis/api/dataValueSets")
    assert sent.headers["Authorization"] == "Basic " + base64.b64encode(f"quangtri:{PASSWORD}".encode()).decode()
    assert json.loads(sent.body) == dhis2_message().payload["value_set"]
    assert row.remote_status == "received" and json.loads(row.answer)["response"]["importCount"]["imported"] == 1


def test_dhis2_conflicts_refuse_the_values_with_the_elements_named(app, remote):
    boyte = nl.connector("boyte", {"kind": "dhis2", "url": remote.url, "token": "d2p_tokenquangtri"})
    remote.answer(409, {"httpStatus": "Conflict", "status": "ERROR", "response": {
        "responseType": "ImportSummary", "status": "ERROR", "importCount": {"imported": 0, "ignored": 1},
        "conflicts": [{"object": "f7n9E0hX8qk", "value": "Data element not found or not accessible"}]}})
    with pytest.raises(BaocaoError) as refused:
        nl.deliver(boyte, dhis2_message(), None)
    assert remote.requests[0].headers["Authorization"] == "ApiToken d2p_tokenquangtri"
    assert not isinstance(refused.value, ChannelUnavailable)
    assert "f7n9E0hX8qk: Data element not found or not accessible" in str(refused.value)
    assert "DHIS2 (" in str(refused.value) and "không nhập số liệu" in str(refused.value)


def test_a_dhis2_warning_is_delivered_with_its_conflicts_kept(app, remote, monkeypatch):
    from plugins.national_link import exchange

    boyte = nl.connector("boyte", {"kind": "dhis2", "url": remote.url, "token": "d2p_tokenquangtri"})
    remote.answer(200, {"responseType": "ImportSummary", "status": "WARNING",
                        "importCount": {"imported": 1, "ignored": 1},
                        "conflicts": [{"object": "HllvX50cXC0", "value": "Category option combo not found"}]})
    recorded = []
    monkeypatch.setattr(exchange, "record_ack", lambda *args: recorded.append(args))
    nl.deliver(boyte, dhis2_message(), None)
    ((connector, message_id, ack, answer),) = recorded
    assert (connector, message_id, ack["status"]) == ("boyte", "bc-7-1-dataValueSets", "warning")
    assert ack["conflicts"] == ["HllvX50cXC0: Category option combo not found"]
    assert ack["import_count"] == {"imported": 1, "ignored": 1} and json.loads(answer)["status"] == "WARNING"


def test_an_answer_echoing_a_secret_is_masked_and_a_redirect_not_followed(app, remote, monkeypatch):
    from plugins.national_link import packets

    monkeypatch.setattr(packets, "seal", lambda packet, unit_id, settings: packet)  # what is sent does not matter here
    qcvn = nl.connector("chinhphu", chinhphu(remote.url))
    remote.answer(400, f"bad request from Bearer {TOKEN}".encode(), **{"Content-Type": "text/plain"})
    remote.answer(302, b"", Location="https://elsewhere.example/packets")
    with db.connection_context():
        province = Unit.create(code="44", name="Tỉnh Quảng Trị", kind="province", agency_code=PROVINCE)
        with pytest.raises(BaocaoError) as echoed:
            nl.deliver(qcvn, queued(province.id), None)
        with pytest.raises(BaocaoError) as moved:
            nl.deliver(qcvn, queued(province.id), None)
    assert TOKEN not in str(echoed.value) and "Bearer ••••••" in str(echoed.value)
    assert "HTTP 302" in str(moved.value) and len(remote.requests) == 2  # not followed elsewhere


# -- what the remote sends down ------------------------------------------------------------------------

def test_fetch_reads_what_was_sent_down_and_twice_when_the_remote_repeats(sealed, national_server):
    national_server.send("period_catalogue", period_catalogue_body("monthly", 2026), PROVINCE)
    raws, cursor = nl.fetch(sealed.connector, "")
    assert cursor == "1" and len(raws) == 1
    checked = check(raws[0], sealed.settings, receiver=PROVINCE)
    assert checked.ok and checked.packet_type == "period_catalogue" and checked.header["sender"] == GOVERNMENT
    assert checked.verdict.status == "valid"  # the server's certificate, under the pinned test CA
    assert nl.fetch(sealed.connector, cursor) == ([], "1")

    national_server.answer_twice()
    national_server.send("period_catalogue", period_catalogue_body("quarterly", 2026), PROVINCE)
    raws, cursor = nl.fetch(sealed.connector, "1")
    assert cursor == "3" and len(raws) == 2 and raws[0] == raws[1]


def test_fetch_needs_a_receiving_connector_and_a_login(sealed, national_server):
    national_server.token = "another-token"
    with pytest.raises(ChannelUnavailable, match="HTTP 401"):
        nl.fetch(sealed.connector, "")
    with pytest.raises(ValueError):
        nl.fetch(nl.connector("chinhphu", chinhphu(national_server.url, receives=False)), "")


# -- the demo's test server ---------------------------------------------------------------------------

def test_the_demo_starts_the_test_server_once(app, settings, monkeypatch, caplog):
    monkeypatch.setattr(nl, "_test_server", {"tried": False, "server": None})
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    table = {"test_server": f"127.0.0.1:{port}",
             "connectors": {"chinhphu": chinhphu(f"http://127.0.0.1:{port}", agency_code="000.00.00.G22")}}
    assert nl.start_test_server(table, dataclasses.replace(settings, mode="production")) is None
    server = nl.start_test_server(table, settings)
    try:
        assert server is not None and server.url == f"http://127.0.0.1:{port}"
        assert server.agency_code == "000.00.00.G22"  # the sender the connector expects
        assert nl.start_test_server(table, settings) is server  # once per process
        # Another process of the same instance (the worker): the port is taken, a line in the log.
        monkeypatch.setattr(nl, "_test_server", {"tried": False, "server": None})
        with caplog.at_level(logging.WARNING, logger="baocao.national_link"):
            assert nl.start_test_server(table, settings) is None
        assert f"127.0.0.1:{port} is in use" in caplog.text
    finally:
        server.stop()


def test_the_test_server_signs_with_what_the_demo_issued_else_with_its_own_kept_ca(app, settings):
    from cryptography.hazmat.primitives import serialization

    from plugins.national_link import national_server as server_module
    from plugins.national_link.models import TestServerIdentity

    # An instance the demo did not seed: a throw-away CA, made once and kept for the next start.
    certificate, _, (ca,) = server_module.demo_certificate(settings)
    assert server_module.demo_certificate(settings)[0] == certificate
    assert (server_module.demo_folder(settings) / "ca.pem").read_bytes() == ca.public_bytes(serialization.Encoding.PEM)
    # The demo seeded it (demo.py): the certificate its pinned CA issued.
    issued = pki().seal("Văn phòng Chính phủ", mst="0100100079", key_label="national-test-server")
    with db.connection_context():
        TestServerIdentity.create(
            certificate=issued.pem.decode(), chain="".join(c.public_bytes(serialization.Encoding.PEM).decode()
                                                           for c in issued.chain),
            private_key=issued.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                 serialization.NoEncryption()).decode())
    certificate, key, chain = server_module.demo_certificate(settings)
    assert certificate == issued.certificate and chain == issued.chain
    assert key.public_key().public_numbers() == issued.key.public_key().public_numbers()


# -- a vendor's connector ------------------------------------------------------------------------------

@pytest.fixture
def acme_installed(tmp_path, monkeypatch):
    """baocao-acme-connector "installed" into a folder on sys.path, never into the venv."""
    forget_modules("baocao_acme_connector")
    site = install_vendor(ACME, tmp_path / "site-packages")
    monkeypatch.syspath_prepend(str(site))
    yield site
    forget_modules("baocao_acme_connector")


def test_a_vendor_connector_delivers_through_its_own_channel(acme_installed, make_settings, make_app, unit_tree,
                                                            make_user, tmp_path):
    folder = tmp_path / "acme-outbox"
    settings = make_settings(plugins=PluginSettings(allow_external=("acme_connector",), config={
        "acme_connector": {"folder": str(folder)},
        "national_link": {"connectors": {"acme": {"kind": "channel", "channel": "acme_connector.send",
                                                  "agency_code": "000.00.00.G12"}}}}))
    app = make_app(settings, load_entrypoints=True, strict=True)
    assert app.state.pm.infos["acme_connector"].status == "ok"
    acme = nl.connectors(settings.plugin("national_link"))["acme"]
    assert acme.channel in outbox_channels() and "national_link.acme" not in outbox_channels()
    admin, _ = make_user(unit=unit_tree.province, is_admin=True)
    with db.connection_context():
        access = core_access(User.get_by_id(admin.id))
        trust_test_ca(access)
        install_seal(unit_tree.province, access, settings, "UBND Tỉnh Quảng Trị", "3200000044")
        payload = queued(unit_tree.province.id, connector="acme", channel=acme.channel).payload
        with transaction():
            enqueue(acme.channel, payload, key=payload["message_id"])
        assert deliver_due(settings, names=[acme.channel]).sent == 1
        written = json.loads((folder / "bc-7-1-report-status.json").read_text(encoding="utf-8"))
        assert written["document"]["body"] == status_body() and written["document"]["packet_type"] == "report_status"
        from core.api import verify_document

        canonical = json.dumps(written["document"], ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()
        verdict = verify_document(canonical, base64.b64decode(written["signature"]["value"]), settings=settings)
        assert verdict.status == "valid" and "Tỉnh Quảng Trị" in verdict.signer_name


def _own_database(url: str) -> str:
    base, _, name = url.rpartition("/")
    return f"{base}/{(name.split('?')[0] or 'baocao_test')[:30]}_acme"


def test_the_vendor_connector_passes_its_own_tests_when_installed(tmp_path):
    """What its README tells the vendor to run, against the installed package, on the database this
    suite runs on (SQLite, or PostgreSQL when BAOCAO_TEST_DATABASE_URL names one)."""
    site = install_vendor(ACME, tmp_path / "site-packages")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BAOCAO_", "PYTEST_"))}
    env.update(PYTHONPATH=str(site), PYTHONDONTWRITEBYTECODE="1")
    if os.environ.get("BAOCAO_TEST_DATABASE_URL"):
        env["BAOCAO_TEST_DATABASE_URL"] = _own_database(os.environ["BAOCAO_TEST_DATABASE_URL"])
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                             "--basetemp", str(tmp_path / "pytest"), "tests"],
                            cwd=ACME, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-3000:]
    assert re.search(r"\b4 passed\b", result.stdout), result.stdout[-2000:]
