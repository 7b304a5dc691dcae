"""The national link end to end (issue 16, "Done when"), against the national test server on
127.0.0.1 (plugins/national_link/national_server.py):

- the province's consolidated monthly report, prepared by its planning department, signed and
  accepted at the province, goes up as report-data, list-data, narrative and status packets that
  arrive once each, sealed by the province and valid;
- the server fails the first three tries and the fourth succeeds, with nothing twice at the receiver;
  the log shows the failure with the server's answer, then the acknowledgement with its receipt;
- a regime packet and an indicator catalogue packet sent down become proposals and are applied in
  one transaction; a packet with a broken signature or schema is refused, kept and changes nothing;
  a packet the server sends twice is kept once.
Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from core.accounts import login as accounts
from core.accounts.access import Grant, Role
from core.api import (NotFound, Unit, current_indicator, deliver_outbox_now, freeze_clock, outbox_entries,
                      regime_by_code, regime_spec, utcnow, verify_document)
from core.db import db
from core.reporting import consolidation as cs
from core.reporting import data as rd
from core.reporting import events
from core.reporting import workflow as wf
from core.reporting.opening import Report
from core.settings import PluginSettings
from core.signatures import certificates, signing
from plugins.national_link import packets, proposals, receive
from plugins.national_link.connectors import connectors
from plugins.national_link.models import ConnectorSwitch, Exchange, Proposal, Route
from plugins.national_link.national_server import GOVERNMENT
from tests.fixtures.forms import access_of
from tests.fixtures.national_server import national_server  # noqa: F401 — a fixture
from tests.fixtures.signing import PASSWORD, signed_world

PROVINCE_CODE = "000.00.00.H50"
CHANNEL = "national_link.chinhphu"


@pytest.fixture
def nl(make_settings, make_app, plugins_under_test, national_server):  # noqa: F811
    settings = make_settings(plugins=PluginSettings(allow_external=tuple(plugins_under_test), config={
        "national_link": {"enabled_by_default": True, "connectors": {"chinhphu": {
            "kind": "qcvn125", "label": "Hệ thống báo cáo Chính phủ", "url": national_server.url,
            "agency_code": GOVERNMENT, "timeout": 2, "receives": True}}}}))
    app = make_app(settings)
    with db.connection_context():
        yield world(settings, app, national_server)


def world(settings, app, national_server):  # noqa: F811
    w = signed_world()
    w.settings, w.app, w.server = settings, app, national_server
    province = w.u["province"]
    Unit.update(agency_code=PROVINCE_CODE).where(Unit.id == province.id).execute()
    # The province's seal signs what it sends up (installed by its administrator).
    w.province_seal = w.pki.seal("Tỉnh Quảng Trị", mst="3200000044", key_label="seal-province")
    signing.install_seal(w.admin, province.id, w.pki.pkcs12(w.province_seal, "mk-tinh"), "mk-tinh", settings=settings)
    # The communes report to the planning department, which consolidates for the province.
    Report.update(receiver=w.u["stc"]).where(Report.unit.in_([w.u["aitu"], w.u["camlo"]])).execute()
    stc_user = accounts.create_user("so_tc", "Sở Tài chính", accounts.random_password(), w.u["stc"])
    for role in ("reporter", "receiver"):
        Grant.create(user=stc_user, role=Role.get(Role.code == role), unit=w.u["stc"])
    w.p["stc"] = access_of(stc_user)
    w.stc_signer = w.pki.signer("Lê Văn Sở", key_label="stc-signer")
    certificates.register_with_key(w.p["stc"], stc_user.id, w.stc_signer.certificate, w.stc_signer.key,
                                   w.stc_signer.chain)
    # The operator switched the connector on for the province and routed the monthly regime to it.
    ConnectorSwitch.create(connector="chinhphu", unit_id=province.id, enabled=True)
    Route.create(connector="chinhphu", regime_code=w.regime.code)
    w.connector = connectors(settings.plugin("national_link"))["chinhphu"]
    return w


def send(access, report_id, banle, dulich):
    cells = {("banle", "cur"): (rd.MISSING, banle), ("dulich", "cur"): (rd.MISSING, dulich)}
    saved = rd.save(access, report_id, cells, {"ketqua": (rd.MISSING, "Tình hình trong tháng ổn định.")})
    return wf.submit(access, report_id, revision=saved.revision)


def consolidated_accepted(w) -> Report:
    """The communes send, the department accepts them, consolidates, signs with its officer's .p12
    and submits; the province accepts — with the app's plugins listening, as on the pages."""
    period = f"{w.report.period_start.isoformat()}/{w.report.period_end.isoformat()}"
    with events.using(w.app.state.pm, w.app.state.registry, w.settings):
        send(w.p["reporter"], w.report.id, "10", "5")
        send(w.p["other"], w.other_report.id, "20,5", "7")
        for report in (w.report, w.other_report):
            wf.accept(w.p["stc"], report.id)
        report = cs.open_consolidated(w.p["stc"], w.regime.id, period)
        saved = rd.save(w.p["stc"], report.id, {}, {"ketqua": (rd.MISSING, "Sở tổng hợp hai xã: bán lẻ tăng.")})
        signing.sign_and_submit(w.p["stc"], report.id, revision=saved.revision, provider="pkcs12",
                                inputs={"p12": w.pki.pkcs12(w.stc_signer, PASSWORD), "password": PASSWORD},
                                settings=w.settings)
        assert Exchange.select().count() == 0  # submitted is not enough: the province accepts it
        wf.accept(w.p["issuer"], report.id)
    return Report.get_by_id(report.id)


def deliver(w, at=None):
    if at is None:
        return deliver_outbox_now([CHANNEL], w.settings)
    with freeze_clock(at):
        return deliver_outbox_now([CHANNEL], w.settings)


def test_the_accepted_consolidated_report_arrives_once_each_packet_sealed_and_valid(nl):
    w = nl
    report = consolidated_accepted(w)
    queued = outbox_entries([CHANNEL])
    assert sorted(e.payload["packet_type"] for e in queued) == ["list_data", "narrative", "report_data", "report_status"]
    result = deliver(w)
    assert (result.sent, result.failed) == (4, 0)
    got = {r.packet_type: r for r in w.server.received}
    assert sorted(got) == ["list_data", "narrative", "report_data", "report_status"]
    for received in got.values():
        assert received.attempts == 1 and received.repeats == 0
        assert (received.sender, received.receiver) == (PROVINCE_CODE, GOVERNMENT)
        # What arrived is checked as our own receiving side checks a packet: schema and the province's seal.
        checked = packets.check(json.dumps(received.packet).encode("utf-8"), w.settings, receiver=GOVERNMENT)
        assert checked.ok, checked.problems
        assert checked.verdict.status == "valid" and "Quảng Trị" in checked.verdict.signer_name
    data = packets.report_data_of(packets.read(json.dumps(got["report_data"].packet).encode()).body)
    assert data["report"]["unit"]["agency_code"] == "" or data  # the department has no code; named by its own
    status = packets.report_status_of(packets.read(json.dumps(got["report_status"].packet).encode()).body)
    assert status["status"] == "accepted"
    assert set(status["refs"]) == {got[t].message_id for t in ("report_data", "list_data", "narrative")}
    # The department's signed document travels with the data, and still verifies as it was signed.
    body = packets.read(json.dumps(got["report_data"].packet).encode()).body
    assert body["document"]["sha256"] == report_version_sha(report)
    # The log: each packet acknowledged, with the server's receipt.
    rows = list(Exchange.select().where(Exchange.direction == "out"))
    assert len(rows) == 4 and all(r.acknowledged_at and r.receipt_id and r.remote_status for r in rows)
    # Delivering again, or the transition heard again, sends nothing new.
    assert deliver(w).sent == 0
    assert len(w.server.received) == 4


def report_version_sha(report) -> str:
    from core.api import accepted_version

    return accepted_version(report.id).sha256


def test_three_failures_then_the_fourth_try_arrives_with_no_duplicate(nl):
    w = nl
    consolidated_accepted(w)
    w.server.fail_next(3)
    start = utcnow()
    first = deliver(w, start)
    # The server is down: the first packet fails and the connector's batch stops there.
    assert first.sent == 0 and first.failed == 4
    [entry, *_] = outbox_entries([CHANNEL])
    assert entry.state == "pending" and "503" in entry.last_error
    assert deliver(w, start).sent == 0  # not due yet: it waits its backoff
    second = deliver(w, start + dt.timedelta(minutes=1, seconds=1))
    third = deliver(w, start + dt.timedelta(minutes=3, seconds=2))
    assert second.sent == 0 and third.sent == 0
    fourth = deliver(w, start + dt.timedelta(minutes=9))
    assert fourth.sent == 4
    assert sorted(r.attempts for r in w.server.received) == [1, 1, 1, 4]
    assert len(w.server.received) == 4 and all(r.repeats == 0 for r in w.server.received)
    assert {e.state for e in outbox_entries([CHANNEL])} == {"sent"}


def test_a_timeout_is_retried_and_a_repeat_post_is_dropped_by_the_receiver(nl):
    w = nl
    consolidated_accepted(w)
    w.server.time_out_next(1, seconds=4)
    start = utcnow()
    assert deliver(w, start).sent == 0
    [entry, *_] = outbox_entries([CHANNEL])
    assert entry.state == "pending" and entry.last_error
    deliver(w, start + dt.timedelta(minutes=2))
    # The packet that timed out may have reached the server (it stored nothing while timing out);
    # whatever happened, it holds each message once.
    ids = [r.message_id for r in w.server.received]
    assert len(ids) == len(set(ids)) == 4


def test_a_regime_and_an_indicator_catalogue_sent_down_are_proposed_then_applied(nl):
    w = nl
    province = w.u["province"]
    regime = packets.regime_body(w.regime.id)
    regime.update(code="CP.KTXH.QUY", name="Báo cáo kinh tế - xã hội hằng quý gửi Chính phủ", frequency="quarterly")
    regime["form_template"]["code"] = "CP-KTXH-QUY"
    catalogue = packets.indicator_catalogue_body(["KX0301", "KX0305"])
    added = dict(catalogue["indicators"][0], code="KX0309", name="Doanh thu dịch vụ lưu trú, ăn uống")
    catalogue["indicators"].append(added)
    changed = next(i for i in catalogue["indicators"] if i["code"] == "KX0305")
    changed["name"] = "Doanh thu du lịch lữ hành"
    w.server.send("regime", regime, PROVINCE_CODE)
    w.server.send("indicator_catalogue", catalogue, PROVINCE_CODE)
    w.server.answer_twice()
    w.server.send("indicator_groups", packets.indicator_groups_body("KX"), PROVINCE_CODE)
    [result] = receive.fetch_all(w.settings)
    assert (result.error, result.received, result.refused, result.repeats) == ("", 3, 0, 1)
    assert receive.fetch_all(w.settings)[0].received == 0  # read from where it was left
    kinds = {p.packet_type: p for p in Proposal.select()}
    assert sorted(kinds) == ["indicator_catalogue", "indicator_groups", "regime"]
    # What is new and what changed, before anything is applied.
    seen = proposals.preview(kinds["indicator_catalogue"].id)
    changes = {line.code: line.change for line in seen.lines}
    assert changes["KX0309"] == "new" and changes["KX0305"] == "changed" and changes["KX0301"] == "unchanged", seen.lines
    assert seen.errors == []
    regime_seen = proposals.preview(kinds["regime"].id)
    assert regime_seen.errors == [] and regime_seen.spec.code == "CP.KTXH.QUY"
    access = operator_access(w)
    result = proposals.apply(access, kinds["indicator_catalogue"].id)
    assert result["new"] == 1 and result["changed"] == 1
    assert current_indicator("KX0305").name == "Doanh thu du lịch lữ hành"
    made = proposals.apply(access, kinds["regime"].id)
    spec = regime_spec(made["regime_id"])
    assert (spec.code, spec.frequency, spec.issuing_unit_code, spec.receiving_unit_code) == (
        "CP.KTXH.QUY", "quarterly", province.code, province.code)
    assert regime_by_code("CP.KTXH.QUY") == made["regime_id"]
    assert Route.select().where(Route.regime_code == "CP.KTXH.QUY").exists()  # its reports go back up
    assert {p.state for p in Proposal.select()} == {"applied", "open"}
    with pytest.raises(Exception) as caught:  # decided once
        proposals.apply(access, kinds["regime"].id)
    assert caught.value.key == "national_link.proposal.error.decided"


def operator_access(w):
    """The province's system administrator, as the plugin's pages see them (the app's registry knows
    the plugin's permissions)."""
    from core.accounts.access import grants_of
    from core.accounts.permissions import Access

    user = w.admin.actor
    return Access(actor=user, registry=w.app.state.registry, enabled=frozenset({"national_link"}),
                  grants=grants_of(user), chain=(w.u["province"].id,))


def test_a_proposal_that_cannot_apply_whole_applies_nothing(nl):
    w = nl
    catalogue = packets.indicator_catalogue_body(["KX0301"])
    good = dict(catalogue["indicators"][0], code="KX0310", name="Chỉ tiêu mới")
    # A row naming a group neither the packet nor the catalogue has: the catalogue's import refuses it.
    bad = dict(catalogue["indicators"][0], code="KX0701", name="Chỉ tiêu của nhóm không có", group="KX07")
    catalogue["indicators"] += [good, bad]
    w.server.send("indicator_catalogue", catalogue, PROVINCE_CODE)
    receive.fetch_all(w.settings)
    [proposal] = Proposal.select()
    seen = proposals.preview(proposal.id)
    assert seen.errors  # the bad row is named before anything is tried
    with pytest.raises(Exception):
        proposals.apply(operator_access(w), proposal.id)
    assert current_indicator("KX0310") is None and Proposal.get_by_id(proposal.id).state == "open"


def test_a_packet_with_a_broken_signature_or_schema_is_refused_kept_and_changes_nothing(nl):
    w = nl
    w.server.send("indicator_groups", {"groups": [{"code": "KX09", "name": "Nhóm thử", "level": "province"}]},
                  PROVINCE_CODE)
    sent = w.server.sent[-1].packet
    # One word changed after sealing: the signature no longer covers it.
    tampered = json.loads(json.dumps(sent, ensure_ascii=False).replace("Nhóm thử", "Nhóm đã sửa"))
    assert tampered != sent
    row, outcome = receive.receive_packet(w.connector, json.dumps(tampered).encode(), w.settings)
    assert outcome == "refused" and row.state == "refused"
    assert any(p["place"].startswith("signature") for p in row.problem_list())
    assert row.document and json.loads(row.document) == tampered  # kept for inspection, as it came
    # A body that breaks its schema (under another message id): refused naming the place.
    broken = json.loads(json.dumps(sent))
    broken["header"]["messageId"] = "khac-" + broken["header"]["messageId"][5:]
    broken["body"] = {"groups": [{"code": "KX09"}], "unexpected": True}
    row2, outcome2 = receive.receive_packet(w.connector, json.dumps(broken).encode(), w.settings)
    assert outcome2 == "refused" and {p["place"] for p in row2.problem_list()} >= {"body.unexpected"}
    row3, outcome3 = receive.receive_packet(w.connector, b"\xff not json", w.settings)
    assert outcome3 == "refused" and row3.problem_list()
    # Addressed to nobody switched on here, or from another system: refused too.
    w.server.send("indicator_groups", {"groups": []}, "000.00.99.H99")
    _, outcome4 = receive.receive_packet(w.connector, json.dumps(w.server.sent[-1].packet).encode(), w.settings)
    assert outcome4 == "refused"
    assert not Proposal.select().exists()
    assert Exchange.select().where(Exchange.state == "refused").count() == 4
    from core.api import indicator_groups_of

    assert [g.code for g in indicator_groups_of("KX09")] == []
    # The remote sends the first one again, sound this time: taken under the same id, not a repeat.
    row5, outcome5 = receive.receive_packet(w.connector, json.dumps(sent).encode(), w.settings)
    assert (outcome5, row5.id, row5.state) == ("proposed", row.id, "proposed")
    _, outcome6 = receive.receive_packet(w.connector, json.dumps(sent).encode(), w.settings)
    assert outcome6 == "repeat" and Exchange.get_by_id(row.id).repeats == 1


def test_the_national_systems_word_on_the_report_is_recorded_on_what_was_sent(nl):
    w = nl
    consolidated_accepted(w)
    deliver(w)
    # The server answers each report-data packet with a status packet (accepted), sent down.
    [result] = receive.fetch_all(w.settings)
    assert result.error == "" and result.received >= 1
    data = Exchange.get((Exchange.direction == "out") & (Exchange.packet_type == "report_data"))
    assert data.remote_status == "accepted" and data.remote_at is not None
    status_in = Exchange.get((Exchange.direction == "in") & (Exchange.packet_type == "report_status"))
    assert status_in.state == "recorded" and status_in.signature_status == "valid"


def test_a_report_with_no_receiver_here_goes_up_when_it_is_submitted(nl):
    """The province's own consolidated report (communes reporting straight to it): its receiver is
    the national system, so submitting it — signed — sends it, with the status "submitted"."""
    w = nl
    period = f"{w.report.period_start.isoformat()}/{w.report.period_end.isoformat()}"
    Report.update(receiver=w.u["province"]).where(Report.unit.in_([w.u["aitu"], w.u["camlo"]])).execute()
    tinh = accounts.create_user("tinh", "Văn phòng UBND tỉnh", accounts.random_password(), w.u["province"])
    for role in ("reporter", "receiver"):
        Grant.create(user=tinh, role=Role.get(Role.code == role), unit=w.u["province"])
    signer = w.pki.signer("Nguyễn Văn Tỉnh", key_label="province-signer")
    certificates.register_with_key(access_of(tinh), tinh.id, signer.certificate, signer.key, signer.chain)
    with events.using(w.app.state.pm, w.app.state.registry, w.settings):
        send(w.p["reporter"], w.report.id, "10", "5")
        wf.accept(w.p["issuer"], w.report.id)
        report = cs.open_consolidated(access_of(tinh), w.regime.id, period, unit_id=w.u["province"].id)
        assert report.receiver_id is None
        saved = rd.save(access_of(tinh), report.id, {}, {"ketqua": (rd.MISSING, "Tỉnh tổng hợp.")})
        signing.sign_and_submit(access_of(tinh), report.id, revision=saved.revision, provider="pkcs12",
                                inputs={"p12": w.pki.pkcs12(signer, PASSWORD), "password": PASSWORD},
                                settings=w.settings)
    kinds = sorted(e.payload["packet_type"] for e in outbox_entries([CHANNEL]))
    assert kinds == ["list_data", "narrative", "report_data", "report_status"]
    # The commune's report accepted at the province went nowhere: only the consolidated one goes up.
    assert {e.payload["report_id"] for e in outbox_entries([CHANNEL])} == {report.id}
    deliver(w)
    status = next(r for r in w.server.received if r.packet_type == "report_status")
    body = packets.read(json.dumps(status.packet).encode()).body
    assert packets.report_status_of(body)["status"] == "submitted"


def test_the_remote_down_for_an_hour_gets_each_packet_once_when_it_is_back(nl):
    """Down for the first hour: the outbox backs off (1, 2, 5, 10, 30, 60 minutes), nothing is given
    up, and when the remote is back every packet arrives once."""
    w = nl
    consolidated_accepted(w)
    w.server.fail_next(6)
    start = utcnow()
    tries = []
    for minutes in (0, 1, 3, 8, 18, 48):  # each try when the previous one's wait is over
        result = deliver(w, start + dt.timedelta(minutes=minutes, seconds=5))
        tries.append(result.sent)
        assert {e.state for e in outbox_entries([CHANNEL])} == {"pending"}  # waiting, never given up
    assert tries == [0] * 6
    assert deliver(w, start + dt.timedelta(minutes=100)).sent == 0  # the sixth failure waits an hour
    assert deliver(w, start + dt.timedelta(minutes=108, seconds=10)).sent == 4
    assert len(w.server.received) == 4 and len({r.message_id for r in w.server.received}) == 4
    assert sorted(r.attempts for r in w.server.received)[-1] == 7 and all(r.repeats == 0 for r in w.server.received)
