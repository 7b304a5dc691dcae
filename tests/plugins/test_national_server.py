"""The national test server (plugins/national_link/national_server.py) as a connector meets it: it
takes a packet once whatever the repeats, refuses what is not a packet or a key that is not its
message id, fails, times out and answers twice when told to, answers a report's data with an
accepted status, pages what it sends down, shows it all on a page in Vietnamese, and is driven over
HTTP by the demo."""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import urllib.error
import urllib.request

import pytest
from cryptography.hazmat.primitives.serialization import pkcs7

from plugins.national_link.national_server import GOVERNMENT, NationalServer
from plugins.national_link.packets import canonical_bytes, new_packet, period_catalogue_body
from tests.fixtures.national_server import national_server, server_certificate  # noqa: F401 — a fixture

PROVINCE = "000.00.00.H50"  # Tỉnh Quảng Trị's electronic code
UNIT = {"agency_code": PROVINCE, "code": "44", "name": "Tỉnh Quảng Trị"}
PERIOD = {"frequency": "monthly", "year": 2026, "index": 3, "start": "2026-02-15", "end": "2026-03-14"}
DOCUMENT = '{"values":{"lua.cur":"12.5"}}'.encode()


def report_data(message_id: str = "bc-7-1-report-data") -> dict:
    body = {"report": {"id": 7, "kind": "consolidated", "regime_code": "KTXH.THANG", "regime_version": 1,
                       "unit": UNIT, "period": PERIOD, "deadline": "2026-03-20", "version": 1,
                       "submitted_at": "2026-03-18T02:00:00Z"},
            "document": {"format": "baocao.report/1", "content": base64.b64encode(DOCUMENT).decode(),
                         "sha256": hashlib.sha256(DOCUMENT).hexdigest()},
            "cells": [{"row": "lua", "column": "cur", "value": "12.5"}]}
    return new_packet("report_data", body, sender=PROVINCE, receiver=GOVERNMENT, message_id=message_id)


def call(url: str, method: str = "GET", body=None, headers=None, timeout: float = 10):
    """(status, parsed JSON or text) of one request."""
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as answer:
        status, raw = answer.code, answer.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode()


def post(server, packet, key=None, **kwargs):
    headers = {"Content-Type": "application/json"}
    if key is not False:
        headers["Idempotency-Key"] = key or packet["header"]["messageId"]
    return call(server.url + "/packets", "POST", packet, headers, **kwargs)


def test_a_packet_is_stored_once_and_acknowledged(national_server):
    packet = report_data()
    status, ack = post(national_server, packet)
    assert status == 200
    assert ack["message_id"] == "bc-7-1-report-data" and ack["status"] == "received"
    assert ack["receipt_id"] == "CP-000001" and ack["received_at"].endswith("Z")
    again, repeated = post(national_server, packet)  # a retry after a lost answer
    assert (again, repeated) == (409, ack)
    (stored,) = national_server.received
    assert (stored.packet_type, stored.sender, stored.attempts, stored.repeats) == ("report_data", PROVINCE, 2, 1)
    assert stored.packet == packet
    status, listed = call(national_server.url + "/received")
    assert status == 200 and listed == [{"message_id": "bc-7-1-report-data", "packet_type": "report_data",
                                          "sender": PROVINCE, "receiver": GOVERNMENT,
                                          "received_at": ack["received_at"], "receipt_id": "CP-000001",
                                          "attempts": 2, "repeats": 1}]


def test_the_idempotency_key_must_be_the_message_id(national_server):
    status, answer = post(national_server, report_data(), key="another-key")
    assert status == 400 and "Idempotency-Key" in answer["reason"]
    status, answer = post(national_server, report_data(), key=False)
    assert status == 400 and answer["message_id"] == "bc-7-1-report-data"
    assert national_server.received == []


def test_what_is_not_a_packet_is_refused_with_the_reason(national_server):
    status, answer = call(national_server.url + "/packets", "POST", b"{not json", {"Idempotency-Key": "x"})
    assert status == 400 and answer["problems"][0]["key"] == "national_link.packets.error.not_json"
    status, answer = call(national_server.url + "/packets", "POST", {"body": {}}, {"Idempotency-Key": "x"})
    assert status == 400 and answer["problems"][0]["key"] == "national_link.packets.error.header_missing"
    broken = report_data()
    broken["body"]["cells"][0]["value"] = 12.5  # a number travels as text
    status, answer = post(national_server, broken)
    assert status == 400 and [p["place"] for p in answer["problems"]] == ["body.cells[0].value"]
    assert national_server.received == []


def test_told_to_fail_it_answers_that_status_and_stores_nothing(national_server):
    national_server.fail_next(2)
    packet = report_data()
    assert post(national_server, packet)[0] == 503
    assert post(national_server, packet)[0] == 503
    assert national_server.received == []
    assert post(national_server, packet)[0] == 200
    (stored,) = national_server.received
    assert (stored.attempts, stored.repeats) == (3, 0)


def test_told_to_time_out_it_holds_the_answer_and_stores_nothing(national_server):
    national_server.time_out_next(1, seconds=3)
    packet = report_data()
    with pytest.raises((TimeoutError, socket.timeout, urllib.error.URLError)):
        post(national_server, packet, timeout=0.5)
    assert national_server.received == []
    assert post(national_server, packet)[0] == 200  # the retry is taken, once
    (stored,) = national_server.received
    assert stored.attempts == 2


def test_a_report_is_answered_with_an_accepted_status_signed_by_the_server(national_server):
    post(national_server, report_data())
    status, page = call(national_server.url + "/outbox?after=0")
    assert status == 200 and page["next"] == "1"
    (answer,) = page["packets"]
    header, body = answer["header"], answer["body"]
    assert (header["packetType"], header["sender"], header["receiver"]) == ("report_status", GOVERNMENT, PROVINCE)
    assert header["inReplyTo"] == "bc-7-1-report-data"
    assert body["status"] == "accepted" and body["refs"] == ["bc-7-1-report-data"]
    assert body["report"]["id"] == 7 and body["report"]["sha256"] == hashlib.sha256(DOCUMENT).hexdigest()
    assert answer["signature"]["format"] == "cms-detached"
    cms = base64.b64decode(answer["signature"]["value"])
    assert server_certificate().certificate in pkcs7.load_der_pkcs7_certificates(cms)
    assert len(canonical_bytes(answer)) > 0  # what the signature covers; verified on receipt (connectors' tests)


def test_no_status_when_told_not_to(national_server):
    national_server.auto_status = False
    post(national_server, report_data())
    assert national_server.sent == []


def test_the_outbox_is_read_page_after_page(national_server):
    for year in (2025, 2026, 2027):
        national_server.send("period_catalogue", period_catalogue_body("annual", year), PROVINCE)
    status, first = call(national_server.url + "/outbox")
    assert status == 200 and len(first["packets"]) == 3 and first["next"] == "3"
    assert len({p["header"]["messageId"] for p in first["packets"]}) == 3
    assert call(national_server.url + "/outbox?after=3")[1] == {"packets": [], "next": "3"}
    assert call(national_server.url + "/outbox?after=2")[1]["packets"] == first["packets"][2:]
    assert call(national_server.url + "/outbox?after=minus")[0] == 400


def test_told_to_answer_twice_each_packet_goes_down_twice(national_server):
    national_server.answer_twice()
    national_server.send("period_catalogue", period_catalogue_body("annual", 2026), PROVINCE)
    packets = call(national_server.url + "/outbox")[1]["packets"]
    assert len(packets) == 2 and packets[0] == packets[1]


def test_a_token_is_required_when_set(national_server):
    national_server.token = "mat-khau-cua-may-chu"
    packet = report_data()
    assert post(national_server, packet)[0] == 401
    assert call(national_server.url + "/outbox")[0] == 401
    status, _ = call(national_server.url + "/packets", "POST", packet,
                     {"Idempotency-Key": "bc-7-1-report-data", "Authorization": "Bearer mat-khau-cua-may-chu"})
    assert status == 200


def test_the_demo_drives_it_over_http(national_server):
    url = national_server.url + "/control"
    status, state = call(url + "/fail", "POST", {"count": 1, "status": 502})
    assert status == 200 and state["fail_next"] == [502]
    assert post(national_server, report_data())[0] == 502
    assert call(url + "/twice", "POST", {"on": True})[1]["twice"] is True
    status, sent = call(url + "/send", "POST", {"packet_type": "period_catalogue", "receiver": PROVINCE,
                                               "body": period_catalogue_body("annual", 2026)})
    assert status == 200 and sent["sent"] == 2 and sent["packet"]["header"]["receiver"] == PROVINCE
    weekly = {"frequency": "weekly", "year": 2026, "index": 1, "start": "2026-01-01", "end": "2026-01-07"}
    status, refused = call(url + "/send", "POST", {"packet_type": "period_catalogue", "receiver": PROVINCE,
                                                  "body": {"periods": [weekly]}})
    assert status == 400 and refused["problems"][0]["place"] == "body.periods[0].frequency"
    status, refused = call(url + "/send", "POST", {"packet_type": "no_such_packet", "receiver": PROVINCE, "body": {}})
    assert status == 400 and "no_such_packet" in refused["reason"]
    assert call(url + "/explode", "POST", {})[0] == 404
    assert call(url + "/reset", "POST")[1] == call(url)[1] == {
        "agency_code": GOVERNMENT, "fail_next": [], "time_out_next": [], "twice": False, "auto_status": True,
        "received": 0, "sent": 0, "posts": 0}


def test_the_page_shows_what_came_and_went_in_vietnamese(national_server):
    post(national_server, report_data())
    status, page = call(national_server.url + "/")
    assert status == 200
    assert "Máy chủ thử nghiệm Hệ thống báo cáo Chính phủ" in page
    assert "Đã nhận (1 gói tin)" in page and "Đã gửi xuống (1 gói tin)" in page
    assert "bc-7-1-report-data" in page and PROVINCE in page and "CP-000001" in page


def test_a_port_in_use_is_refused_at_once(national_server):
    port = int(national_server.url.rsplit(":", 1)[1])
    issued = server_certificate()
    other = NationalServer(certificate=issued.certificate, private_key=issued.key)
    with pytest.raises(OSError):
        other.start("127.0.0.1", port)
