"""The 13 QCVN 125 packets (issue 16, item 1 and "Bad input"): built from real domain data and valid
against their published schemas; read back into the domain (a regime as its RegimeSpec, the
indicator catalogue as a table the importer finds unchanged, figures, periods, statuses); sealed by
the unit's seal and verified as reports are; refused — never raising — with the place (a JSON path in
wire names) and the reason in both languages when a byte, a field, the receiver, the type or the
mapping is wrong; and a second mapping version dropping in without touching the rest.
Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import copy
import datetime as dt
import json
import re
from decimal import Decimal
from pathlib import Path

import jsonschema
import pytest

from core.api import (Figure, figures, parse_indicator_table, put_figures, regime_spec, save_indicator,
                      seal_fingerprint, validate_json)
from core.catalogue import indicators as core_indicators
from core.i18n import LANGUAGES, core_catalog
from core.models import UNIT_KINDS, Unit
from core.regimes import form_engine, periods, regimes
from core.regimes.form_schema import unsupported_keywords
from core.reporting import workflow as wf
from core.signatures import signing
from plugins.national_link import packets
from plugins.national_link.packets import fields, mapping as mapping_module, schemas
from tests.fixtures.signing import fill, signed_world

ROOT = Path(__file__).resolve().parents[2]
LOCALE = ROOT / "plugins" / "national_link" / "locale"
PROVINCE, COMMUNE, DEPARTMENT, OTHER = "000.00.00.H45", "H45.01.01", "H45.02", "H45.01.02"
NATIONAL = "000.00.00.G01"  # the Government reporting system


@pytest.fixture
def w(db_session, make_settings):
    """A report of Xã Ái Tử filled, sealed by the commune's seal, sent and accepted by the province;
    every unit with its electronic code; KX0301 with a disaggregation and its figures stored."""
    world = signed_world()
    world.settings = make_settings(require_signature=True)
    for key, code in (("province", PROVINCE), ("aitu", COMMUNE), ("stc", DEPARTMENT), ("camlo", OTHER)):
        Unit.update(agency_code=code).where(Unit.id == world.u[key].id).execute()
    signing.install_seal(world.p["unit_admin"], world.u["aitu"].id, world.pki.pkcs12(world.seal, "mk-dau"), "mk-dau",
                         settings=world.settings)
    saved = fill(world, "12.5")
    world.version = signing.sign_and_submit(world.p["clerk"], world.report.id, revision=saved.revision,
                                            provider="seal", settings=world.settings)
    wf.accept(world.p["issuer"], world.report.id)
    save_indicator({"code": "KX0301", "source_act": "QĐ 12/2025/QĐ-UBND",
                    "disaggregation": [{"category": "Khu vực", "options": ["Thành thị", "Nông thôn"]}]})
    save_indicator({"code": "KX0305", "source_act": "QĐ 12/2025/QĐ-UBND", "periodicity": "Tháng"})
    march = ("monthly", 2026, 3)
    put_figures([Figure("KX0301", world.u["aitu"].id, *march, "actual", Decimal("12.5")),
                 Figure("KX0301", world.u["aitu"].id, *march, "actual", Decimal("7.25"), option="Thành thị"),
                 Figure("KX0305", world.u["aitu"].id, *march, "actual", Decimal("5")),
                 Figure("KX0305", world.u["camlo"].id, *march, "plan", Decimal("1000000"))], source="test")
    return world


def bodies(w) -> dict:
    """A body of every packet type, built from the world's domain data."""
    aitu, camlo = w.u["aitu"].id, w.u["camlo"].id
    march = ("monthly", 2026, 3)
    return {
        "regime": packets.regime_body(w.regime.id),
        "form_template": packets.form_template_body(w.regime.id),
        "outline_template": packets.outline_template_body(w.regime.id),
        "report_data": packets.report_data_body(w.report.id),
        "list_data": packets.list_data_body(w.report.id),
        "narrative": packets.narrative_body(w.report.id),
        "report_status": packets.report_status_body(w.report.id, "accepted", at=dt.datetime(2026, 3, 5, 2, 0),
                                                    refs=["6f1c5b1e-0000-4c1a-9a51-000000000001"]),
        "period_catalogue": packets.period_catalogue_body("quarterly", 2026),
        "indicator_catalogue": packets.indicator_catalogue_body(["KX0301", "KX0305"]),
        "kpi_set": packets.kpi_set_body("KTXH.THUONGMAI", "Chỉ số thương mại", ["KX0305", "KX0301"]),
        "indicator_groups": packets.indicator_groups_body("KX"),
        "disaggregations": packets.disaggregations_body(["KX0301"]),
        "kpi_data": packets.kpi_data_body(["KX0301", "KX0305"], [aitu, camlo], [march], kinds=("actual", "plan")),
    }


def packet_of(packet_type, body, *, mapping=packets.DEFAULT_MAPPING, receiver=NATIONAL, message="m-1"):
    return packets.new_packet(packet_type, body, sender=COMMUNE, receiver=receiver, message_id=message,
                              sent_at=dt.datetime(2026, 3, 5, 2, 30), mapping=mapping)


def raw(packet) -> bytes:
    return json.dumps(packet, ensure_ascii=False).encode("utf-8")


def said(problem, lang: str) -> str:
    """A problem as a person reads it: the plugin's messages over the core's."""
    catalog = core_catalog().copy()
    catalog.add_dir(LOCALE)
    return catalog.gettext(lang, problem.key, **problem.params)


def assert_said_in_both_languages(problem):
    for lang in LANGUAGES:
        text = said(problem, lang)
        assert text != problem.key and not re.search(r"\{[a-z_]+\}", text), (lang, problem)


# -- every packet from the domain ---------------------------------------------------------------------

def test_every_packet_type_is_built_from_the_domain_and_valid_against_its_published_schema(w):
    built = bodies(w)
    assert list(built) == list(packets.PACKET_TYPES)  # the 13, in QCVN order
    for packet_type, body in built.items():
        assert body, packet_type
        packet = packet_of(packet_type, body)  # new_packet validates it with core.api.validate_json
        assert validate_json(packet, packets.schema(packet_type)) == []
        published = json.loads(schemas.published_path(packet_type).read_text(encoding="utf-8"))
        assert list(jsonschema.Draft202012Validator(published).iter_errors(packet)) == [], packet_type
        assert packet["header"]["packetType"] == packet_type and packet["header"]["sender"] == COMMUNE
        # Read back, the body is what was built.
        assert packets.to_internal(packet_type, packet["body"]) == body, packet_type

    cells = {(c["row"], c["column"]): c for c in built["report_data"]["cells"]}
    assert cells[("banle", "cur")] == {"row": "banle", "column": "cur", "indicator": "KX0301", "option": "",
                                       "value_kind": "actual", "period": "current", "value": "12.5"}
    assert cells[("tong", "cur")]["value"] == "17.5" and cells[("tong", "cur")]["indicator"] == ""
    report = built["report_data"]["report"]
    assert (report["unit"]["agency_code"], report["receiver"]["agency_code"]) == (COMMUNE, PROVINCE)
    assert (report["period"], report["version"]) == (
        {"frequency": "monthly", "year": 2026, "index": 3, "start": "2026-02-15", "end": "2026-03-14"}, 1)
    document = built["report_data"]["document"]
    # The report's own signed bytes and its seal signature travel as they were signed.
    assert base64.b64decode(document["content"]) == w.version.canonical.encode("utf-8")
    assert document["signature"]["kind"] == "seal" and document["signature"]["signer_name"] == "UBND xã Ái Tử"
    assert packets.report_data_of(built["report_data"])["values"]["banle.cur"] == "12.5"

    records = {r["row"]: r for r in built["list_data"]["rows"]}
    assert set(records) == {"banle", "dulich", "tong"}  # the heading holds no value
    assert records["dulich"]["values"][0] == {"column": "cur", "value": "5"} and records["dulich"]["unit"] == "tỷ đồng"
    assert built["narrative"]["sections"] == [{"key": "ketqua", "title": "Kết quả thực hiện",
                                               "text": "Bán lẻ tăng khá."}]
    assert built["report_status"]["report"]["sha256"] == w.version.sha256
    assert [p["label"]["vi"] for p in built["period_catalogue"]["periods"]] == [
        "Quý I năm 2026", "Quý II năm 2026", "Quý III năm 2026", "Quý IV năm 2026"]
    assert built["disaggregations"]["indicators"][0]["categories"] == [
        {"name": "Khu vực", "options": ["Thành thị", "Nông thôn"]}]
    assert [i["code"] for i in built["kpi_set"]["indicators"]] == ["KX0305", "KX0301"]
    assert {(f["indicator"], f["unit"]["agency_code"], f["kind"], f["option"], f["value"])
            for f in built["kpi_data"]["figures"]} == {
        ("KX0301", COMMUNE, "actual", "", "12.5"), ("KX0301", COMMUNE, "actual", "Thành thị", "7.25"),
        ("KX0305", COMMUNE, "actual", "", "5"), ("KX0305", OTHER, "plan", "", "1000000")}


def test_a_report_without_an_accepted_version_has_no_report_packets(w):
    assert packets.report_data_body(w.other_report.id) is None
    assert packets.narrative_body(w.other_report.id) is None
    assert packets.report_data_body(w.report.id, 1)["report"]["version"] == 1  # a version by its number


# -- read back into the domain ------------------------------------------------------------------------

def test_the_regime_packet_reads_back_as_the_regime_spec(w):
    spec = regime_spec(w.regime.id)
    assert spec.form and spec.form["definition"]["outline"]  # a regime with a form and an outline
    received = packets.check(raw(packets.seal(packet_of("regime", packets.regime_body(w.regime.id)),
                                              w.u["aitu"].id, w.settings)), w.settings)
    assert received.ok, received.problems
    assert packets.regime_spec_of(received.body) == spec
    # The templates sent on their own make the same regime with a regime packet that lacks them.
    bare = {**received.body, "form_template": None, "outline_template": None}
    assert packets.regime_spec_of(bare).form is None
    assert packets.regime_spec_of(bare, packets.form_template_body(w.regime.id),
                                  packets.outline_template_body(w.regime.id)) == spec


def test_the_indicator_catalogue_reads_back_as_a_table_the_importer_finds_unchanged(w):
    packet = packet_of("indicator_catalogue", packets.indicator_catalogue_body(["KX0301", "KX0305"]))
    received = packets.read(raw(packet))
    assert received.ok, received.problems
    plan = parse_indicator_table(packets.indicator_table_of(received.body), "national.csv", local_codes=True)
    assert plan.errors == [] and dict(plan.changes) == {"KX03": "unchanged", "KX0301": "unchanged",
                                                        "KX0305": "unchanged"}
    # A change made by the national system shows as one.
    received.body["indicators"][1]["name"] = "Doanh thu du lịch lữ hành"
    plan = parse_indicator_table(packets.indicator_table_of(received.body), "national.csv", local_codes=True)
    assert dict(plan.changes)["KX0305"] == "changed" and dict(plan.changes)["KX0301"] == "unchanged"
    groups = packets.read(raw(packet_of("indicator_groups", packets.indicator_groups_body("KX"))))
    plan = parse_indicator_table(packets.indicator_groups_table_of(groups.body), "groups.csv", local_codes=True)
    assert plan.errors == [] and dict(plan.changes) == {"KX03": "unchanged"}


def test_figures_periods_statuses_and_sets_read_back(w):
    aitu, camlo = w.u["aitu"].id, w.u["camlo"].id
    march = ("monthly", 2026, 3)
    body = packets.kpi_data_body(["KX0301", "KX0305"], [aitu, camlo], [march], kinds=("actual", "plan"))
    received = packets.read(raw(packet_of("kpi_data", body)))
    read_back = packets.kpi_data_of(received.body)
    before = figures(["KX0301", "KX0305"], [aitu, camlo], [march], kinds=("actual", "plan"), options="all")
    assert sorted((f.code, f.unit_id, f.kind, f.option, Decimal(f.value)) for f in read_back) == \
        sorted((r.code, r.unit_id, r.kind, r.option, r.value) for r in before)
    assert put_figures(read_back, source="test") == 0  # the same figures: nothing changes

    catalogue = packets.read(raw(packet_of("period_catalogue", packets.period_catalogue_body("monthly", 2026))))
    assert [(p["index"], p["start"], p["end"]) for p in packets.period_catalogue_of(catalogue.body)] == \
        [(x.index, x.start, x.end) for x in periods.windows("monthly", 2026)]
    every = packets.period_catalogue_of(packets.period_catalogue_body(None, 2026))  # every frequency
    assert [(p["frequency"], p["index"], p["end"]) for p in every] == \
        [(x.frequency, x.index, x.end) for f in periods.FREQUENCIES for x in periods.windows(f, 2026)]

    status = packets.report_status_body(w.report.id, "returned", reason="Thiếu số liệu du lịch.",
                                        at=dt.datetime(2026, 3, 6, 1, 15), refs=["m-1", "m-2"])
    read = packets.report_status_of(packets.read(raw(packet_of("report_status", status))).body)
    assert (read["status"], read["reason"], read["at"], read["refs"]) == (
        "returned", "Thiếu số liệu du lịch.", dt.datetime(2026, 3, 6, 1, 15), ["m-1", "m-2"])

    kpi = packets.read(raw(packet_of("kpi_set", packets.kpi_set_body("KTXH.TM", "Thương mại", ["KX0301"]))))
    assert packets.kpi_set_of(kpi.body) == {"code": "KTXH.TM", "name": "Thương mại", "codes": ["KX0301"]}
    split = packets.read(raw(packet_of("disaggregations", packets.disaggregations_body(["KX0301"]))))
    assert packets.disaggregations_of(split.body) == {"KX0301": [("Khu vực", ("Thành thị", "Nông thôn"))]}
    narrative = packets.read(raw(packet_of("narrative", packets.narrative_body(w.report.id))))
    assert packets.narrative_of(narrative.body) == {"ketqua": "Bán lẻ tăng khá."}
    records = packets.list_data_of(packets.read(raw(packet_of("list_data", packets.list_data_body(w.report.id)))).body)
    assert {r["row"]: r["values"].get("cur") for r in records} == {"banle": "12.5", "dulich": "5", "tong": "17.5"}


def test_figures_of_a_unit_no_one_has_are_refused_by_place(w):
    body = packets.kpi_data_body(["KX0305"], [w.u["aitu"].id], [("monthly", 2026, 3)])
    body["figures"][0]["unit"] = {"agency_code": "999.99.99.Z99", "code": "", "name": "Xã lạ"}
    with pytest.raises(packets.PacketRefused) as refused:
        packets.kpi_data_of(body)
    problem = refused.value.problems[0]
    assert (problem.place, problem.key) == ("body.figures[0].unit", "national_link.packets.error.unit_unknown")
    renamed = mapping_module.BAOCAO_2026_1.renamed("test-vi", "test", {"figure": {"unit": "donVi"},
                                                                      "kpi_data": {"figures": "soLieu"}})
    assert refused.value.in_wire("kpi_data", renamed)[0].place == "body.soLieu[0].donVi"
    assert_said_in_both_languages(problem)


# -- sealed, and checked on receipt -------------------------------------------------------------------

def test_a_sealed_packet_is_verified_as_reports_are_and_a_changed_byte_is_refused(w):
    aitu = w.u["aitu"].id
    packet = packets.seal(packet_of("report_data", packets.report_data_body(w.report.id)), aitu, w.settings)
    assert packet["signature"]["format"] == "cms-detached"
    received = packets.check(raw(packet), w.settings, receiver=NATIONAL, signers=[seal_fingerprint(aitu)])
    assert received.ok and received.verdict.status == "valid" and received.problems == []
    assert received.verdict.signer_name == "UBND xã Ái Tử"
    assert (received.packet_type, received.mapping_version) == ("report_data", "baocao-2026.1")
    assert received.header["sender"] == COMMUNE and received.header["message_id"] == "m-1"
    # The canonical bytes do not depend on spacing or key order: the same packet pretty-printed passes.
    pretty = json.dumps(packet, ensure_ascii=True, indent=3, sort_keys=False).encode("ascii")
    assert packets.check(pretty, w.settings).ok

    # One figure changed after signing: refused at the signature, saying the content changed.
    text = raw(packet).decode("utf-8")
    assert '"row": "banle", "column": "cur"' in text
    forged = text.replace('"value": "12.5"', '"value": "92.5"', 1).encode("utf-8")
    refused = packets.check(forged, w.settings)
    assert not refused.ok and refused.verdict.status == "invalid"
    assert ("signature", "trust.problem.content_changed") in [(p.place, p.key) for p in refused.problems]
    for problem in refused.problems:
        assert_said_in_both_languages(problem)
    # Signed by someone else than the expected seal: refused too.
    other = packets.check(raw(packet), w.settings, signers=["00" * 32])
    assert not other.ok and "trust.problem.not_expected_signer" in [p.key for p in other.problems]


def test_a_packet_without_a_signature_or_with_a_broken_one_is_refused(w):
    packet = packet_of("narrative", packets.narrative_body(w.report.id))
    refused = packets.check(raw(packet), w.settings)
    assert [(p.place, p.key) for p in refused.problems] == [
        ("signature", "national_link.packets.error.signature_missing")]
    assert refused.body is not None  # kept readable for the log
    broken = {**packet, "signature": {"format": "cms-detached", "value": "MIIB"}}
    refused = packets.check(raw(broken), w.settings)
    assert not refused.ok and refused.verdict.status == "invalid" and refused.problems[0].place == "signature"
    for problem in refused.problems:
        assert_said_in_both_languages(problem)


def test_a_schema_violation_is_refused_naming_its_wire_path(w):
    good = packets.seal(packet_of("report_data", packets.report_data_body(w.report.id)), w.u["aitu"].id, w.settings)

    def refused_at(change) -> list[tuple[str, str]]:
        packet = copy.deepcopy(good)
        change(packet)
        checked = packets.check(raw(packet), w.settings)
        assert not checked.ok and checked.body is None and checked.verdict is None
        for problem in checked.problems:
            assert_said_in_both_languages(problem)
        return [(p.place, p.key) for p in checked.problems]

    def as_number(p):
        p["body"]["cells"][0]["value"] = 12.5

    assert refused_at(as_number) == [("body.cells[0].value", "plugin_data.schema.type.string")]

    def unknown_field(p):
        p["body"]["report"]["extra"] = "x"

    assert refused_at(unknown_field) == [("body.report.extra", "plugin_data.schema.unknown")]

    def no_unit(p):
        del p["body"]["report"]["unit"]

    assert refused_at(no_unit) == [("body.report", "plugin_data.schema.required")]

    def bad_kind(p):
        p["body"]["cells"][1]["valueKind"] = "guess"

    assert refused_at(bad_kind) == [("body.cells[1].valueKind", "plugin_data.schema.enum")]

    def no_such_day(p):
        p["body"]["report"]["deadline"] = "2026-02-30"

    assert refused_at(no_such_day) == [("body.report.deadline", "national_link.packets.error.date")]

    def bad_sender(p):
        p["header"]["sender"] = "xã Ái Tử"

    assert refused_at(bad_sender) == [("header.sender", "plugin_data.schema.pattern")]


def test_a_packet_for_another_receiver_is_refused(w):
    packet = packets.seal(packet_of("kpi_set", packets.kpi_set_body("KTXH.TM", "Thương mại", ["KX0301"]),
                                    receiver=PROVINCE), w.u["aitu"].id, w.settings)
    refused = packets.check(raw(packet), w.settings, receiver=NATIONAL)
    assert [(p.place, p.key, p.params) for p in refused.problems] == [
        ("header.receiver", "national_link.packets.error.receiver", {"value": PROVINCE, "expected": NATIONAL})]
    assert_said_in_both_languages(refused.problems[0])
    assert packets.check(raw(packet), w.settings, receiver=PROVINCE).ok


def test_an_unknown_packet_type_or_mapping_is_refused(w):
    packet = packets.seal(packet_of("kpi_set", packets.kpi_set_body("KTXH.TM", "Thương mại", ["KX0301"])),
                          w.u["aitu"].id, w.settings)
    unknown_type = copy.deepcopy(packet)
    unknown_type["header"]["packetType"] = "budget"
    refused = packets.check(raw(unknown_type), w.settings)
    assert [(p.place, p.key) for p in refused.problems] == [("header.packetType",
                                                             "national_link.packets.error.type_unknown")]
    assert refused.header["message_id"] == "m-1"  # still named in the log
    unknown_mapping = copy.deepcopy(packet)
    unknown_mapping["header"]["mappingVersion"] = "qcvn125-2021"
    refused = packets.check(raw(unknown_mapping), w.settings)
    assert [(p.place, p.key, p.params["value"]) for p in refused.problems] == [
        ("header.mappingVersion", "national_link.packets.error.mapping_unknown", "qcvn125-2021")]
    headless = {"body": packet["body"]}
    assert [p.key for p in packets.check(raw(headless), w.settings).problems] == [
        "national_link.packets.error.header_missing"]
    for problem in refused.problems:
        assert_said_in_both_languages(problem)
    with pytest.raises(Exception) as caught:
        packets.new_packet("kpi_set", {}, sender=COMMUNE, receiver=NATIONAL, message_id="m", mapping="qcvn125-2021")
    assert caught.value.key == "national_link.packets.error.mapping_unknown"


@pytest.mark.parametrize("data, key", [
    (b"\xff\xfe{}", "national_link.packets.error.not_utf8"),
    ("{\"header\": ".encode("utf-8"), "national_link.packets.error.not_json"),
    (b"", "national_link.packets.error.not_json"),
    (b"[1, 2]", "plugin_data.schema.type.object"),
    (b'{"header": {}, "header": {}}', "national_link.packets.error.duplicate"),
    (b'{"header": NaN}', "national_link.packets.error.not_json_value"),
    (b"[" * 100_000 + b"]" * 100_000, "national_link.packets.error.not_json_value"),
    (b'{"a": 1' + b"0" * 5000 + b"}", "national_link.packets.error.not_json_value"),
    (b'{"a": 1}', "national_link.packets.error.header_missing"),
])
def test_bytes_that_are_no_packet_are_refused_without_raising(db_session, settings, data, key):
    checked = packets.check(data, settings)
    assert not checked.ok and [p.key for p in checked.problems] == [key]
    assert checked.body is None and checked.verdict is None
    assert_said_in_both_languages(checked.problems[0])


def test_a_packet_too_big_is_refused_before_it_is_read(db_session, settings):
    checked = packets.check(b"{" + b" " * 2000 + b"}", settings, max_bytes=1000)
    assert [(p.key, p.params) for p in checked.problems] == [
        ("national_link.packets.error.too_big", {"size": 2002, "limit": 1000})]
    assert checked.packet is None
    assert_said_in_both_languages(checked.problems[0])


def test_a_packet_that_would_break_its_schema_is_never_made(w):
    with pytest.raises(packets.PacketRefused) as refused:
        packets.new_packet("kpi_set", packets.kpi_set_body("KTXH.TM", "Thương mại", ["KX0301"]), sender="",
                           receiver=NATIONAL, message_id="m-1")
    assert [(p.place, p.key) for p in refused.value.problems] == [("header.sender", "plugin_data.schema.pattern")]
    # A packet in hand is checked the way a receiver checks it (a preview shows what is wrong).
    made = packet_of("kpi_set", packets.kpi_set_body("KTXH.TM", "Thương mại", ["KX0301"]))
    assert packets.problems_of(made) == []
    made["body"]["indicators"][0]["code"] = "KX-301"
    assert [(p.place, p.key) for p in packets.problems_of(made)] == [("body.indicators[0].code",
                                                                      "plugin_data.schema.pattern")]
    with pytest.raises(ValueError):  # a field the shape does not have is a mistake, never dropped
        packets.to_wire("kpi_set", {"code": "A1", "name": "x", "indicators": [], "colour": "red"})


# -- a second mapping version drops in --------------------------------------------------------------

def test_a_second_mapping_version_drops_in(w, monkeypatch):
    official = mapping_module.BAOCAO_2026_1.renamed("test-2027.1", "Test names", {
        "packet": {"header": "thongTinChung", "body": "noiDung", "signature": "chuKy"},
        "header": {"sender": "maDinhDanhGui", "receiver": "maDinhDanhNhan", "mapping_version": "phienBan"},
        "unit": {"agency_code": "maDinhDanh"},
        "cell": {"value": "giaTri", "row": "dong"},
        "regime": {"name": "tenCheDo", "form_template": "bieuMau"},
        "form_row": {"indicator": "maChiTieu"},
    })
    monkeypatch.setitem(packets.MAPPINGS, official.version, official)
    for packet_type, body in bodies(w).items():
        packet = packet_of(packet_type, body, mapping=official)  # the same builders
        assert set(packet) == {"thongTinChung", "noiDung"}
        assert validate_json(packet, packets.schema(packet_type, official)) == []
        assert list(jsonschema.Draft202012Validator(packets.schema(packet_type, official)).iter_errors(packet)) == []
        received = packets.check(raw(packets.seal(packet, w.u["aitu"].id, w.settings)), w.settings)
        assert received.ok and received.mapping_version == "test-2027.1", received.problems
        assert received.body == body and received.header["sender"] == COMMUNE
    report = packet_of("report_data", packets.report_data_body(w.report.id), mapping=official)
    assert report["noiDung"]["cells"][0]["giaTri"] and report["noiDung"]["report"]["unit"]["maDinhDanh"] == COMMUNE
    regime = packets.check(raw(packets.seal(packet_of("regime", packets.regime_body(w.regime.id), mapping=official),
                                            w.u["aitu"].id, w.settings)), w.settings)
    assert packets.regime_spec_of(regime.body) == regime_spec(w.regime.id)
    # A mistake is named in the packet's own words.
    bad = packet_of("report_data", packets.report_data_body(w.report.id), mapping=official)
    bad["noiDung"]["cells"][0]["giaTri"] = 1
    assert [p.place for p in packets.check(raw(bad), w.settings).problems] == ["noiDung.cells[0].giaTri"]
    # Without the mapping, its packets are not read.
    monkeypatch.delitem(packets.MAPPINGS, official.version)
    assert [p.key for p in packets.check(raw(bad), w.settings).problems] == [
        "national_link.packets.error.header_missing"]


def test_a_mapping_must_name_every_field_once():
    names = copy.deepcopy(mapping_module.BAOCAO_2026_1.names)
    del names["cell"]["value"]
    with pytest.raises(ValueError, match="cell.value: no wire name"):
        mapping_module.Mapping("broken", "", names)
    with pytest.raises(ValueError, match="given twice"):
        mapping_module.BAOCAO_2026_1.renamed("broken", "", {"cell": {"value": "row"}})
    assert mapping_module.coverage_problems(mapping_module.BAOCAO_2026_1.names) == []


# -- the published schemas, the vocabularies, the messages --------------------------------------------

@pytest.mark.parametrize("packet_type", packets.PACKET_TYPES)
def test_the_published_schema_is_the_generated_one_and_valid_draft_2020_12(packet_type):
    path = schemas.published_path(packet_type)
    published = json.loads(path.read_text(encoding="utf-8"))
    # Regenerate: python -m plugins.national_link.packets.schemas
    assert published == packets.schema(packet_type) and path.read_text(encoding="utf-8") == schemas.schema_text(
        packet_type)
    jsonschema.Draft202012Validator.check_schema(published)
    assert published["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert unsupported_keywords(published) == []


def test_the_guide_links_every_published_schema():
    guide = (ROOT / "docs" / "national_link_packets.md").read_text(encoding="utf-8")
    for packet_type in packets.PACKET_TYPES:
        link = schemas.published_path(packet_type).relative_to(ROOT / "docs").as_posix()
        assert f"]({link})" in guide and f"`{packet_type}`" in guide, packet_type


def test_the_vocabularies_are_the_domains():
    from core.regimes import forms

    assert fields.FREQUENCIES == periods.FREQUENCIES and fields.UNIT_KINDS == UNIT_KINDS
    assert (fields.REGIME_TYPES, fields.CONTENT_TYPES, fields.SENDING_METHODS, fields.CUTOFF_RULES,
            fields.RECEIVING_RULES) == (regimes.REGIME_TYPES, regimes.CONTENT_TYPES, regimes.SENDING_METHODS,
                                        regimes.CUTOFF_RULES, regimes.RECEIVING_RULES)
    assert (fields.ROW_KINDS, fields.COLUMN_KINDS, fields.SEVERITIES, fields.PERIOD_OFFSETS) == (
        form_engine.ROW_KINDS, form_engine.COLUMN_KINDS, form_engine.SEVERITIES, tuple(form_engine.PERIOD_OFFSETS))
    assert (fields.MAX_ROWS, fields.MAX_COLUMNS, fields.MAX_RULES, fields.MAX_SECTIONS) == (
        form_engine.MAX_ROWS, form_engine.MAX_COLUMNS, form_engine.MAX_RULES, form_engine.MAX_SECTIONS)
    assert fields.VALUE_KINDS == core_indicators.VALUE_KINDS
    for sample in ("KTXH.THANG", "BM-THANG", "a", "A" * 40, "A" * 41, "ab-c_d.e", "bad code", "-x", "Đ1"):
        assert bool(re.search(fields.REGIME_CODE_PATTERN, sample)) == bool(regimes.CODE_RE.match(sample)), sample
        assert bool(re.search(fields.FORM_CODE_PATTERN, sample)) == bool(forms.CODE_RE.match(sample)), sample


def test_every_message_of_the_packets_is_worded_in_both_languages():
    source = "".join(p.read_text(encoding="utf-8") for p in (ROOT / "plugins/national_link/packets").glob("*.py"))
    used = set(re.findall(r"national_link\.packets\.[a-z_]+\.[a-z0-9_]+", source))
    assert {"national_link.packets.error.receiver", "national_link.packets.error.too_big"} <= used
    for lang in LANGUAGES:
        messages = json.loads((LOCALE / f"{lang}.packets.json").read_text(encoding="utf-8"))
        assert sorted(used - set(messages)) == [], lang
        assert {f"national_link.packets.type.{t}" for t in packets.PACKET_TYPES} <= set(messages)
