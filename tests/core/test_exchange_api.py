"""The public API a connector plugin stands on (issue 16): what a report is about
(``report_overview``), any frozen version (``report_version``), a regime as the spec that would make
it (``regime_spec``, ``create_regime_draft``'s inverse), a document sealed by a unit and verified as a
report is (``seal_sign``, ``verify_document``), a document against a JSON Schema (``validate_json``),
and a subscriber that asks for the settings. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses

import pytest

from core import api
from core.reporting import workflow as wf
from core.signatures import signing
from tests.fixtures.signing import fill, signed_world


@pytest.fixture
def w(db_session, make_settings):
    world = signed_world()
    world.settings = make_settings()
    return world


def test_a_reports_overview_names_its_units_by_code_its_period_and_its_form(w):
    api.Unit.update(agency_code="000.44.31.H10").where(api.Unit.id == w.u["aitu"].id).execute()
    seen = api.report_overview(w.report.id)
    assert (seen.kind, seen.status, seen.regime_code, seen.regime_version) == ("unit", "not_started", "KTXH.THANG", 1)
    assert (seen.unit.code, seen.unit.name, seen.unit.agency_code) == ("AT", "Xã Ái Tử", "000.44.31.H10")
    assert (seen.receiver.code, seen.receiver.agency_code) == ("44", "")
    assert (seen.frequency, seen.period_start, seen.period_end) == ("monthly", w.report.period_start, w.report.period_end)
    assert seen.form_code == "BM-THANG" and {r["key"] for r in seen.form["rows"]} >= {"banle", "dulich"}
    assert api.report_overview(w.report.id + 999) is None
    # Through a person's eyes: a report they may not read does not exist for them.
    with pytest.raises(api.NotFound):
        api.report_overview(w.report.id, access=w.p["other"])


def test_any_frozen_version_is_read_as_it_was_sent_accepted_or_not(w):
    saved = fill(w, banle="12,5")
    wf.submit(w.p["reporter"], w.report.id, revision=saved.revision)
    version = api.report_version(w.report.id, 1)
    assert version.values["banle.cur"] == "12.5" and version.accepted_at is None
    assert version.sections["ketqua"] == "Bán lẻ tăng khá."
    assert api.accepted_version(w.report.id) is None
    wf.accept(w.p["issuer"], w.report.id)
    accepted = api.report_version(w.report.id, 1)
    assert accepted.accepted_at == api.accepted_version(w.report.id).accepted_at
    assert accepted.canonical == version.canonical and accepted.sha256 == version.sha256
    assert api.report_version(w.report.id, 2) is None


def test_a_regime_as_a_spec_makes_the_same_regime_again(w):
    spec = api.regime_spec(w.regime.id)
    assert (spec.code, spec.name, spec.frequency, spec.reporting_kinds) == (
        "KTXH.THANG", w.regime.name, "monthly", ("commune",))
    assert (spec.issuing_unit_code, spec.receiving_rule, spec.receiving_unit_code, spec.preparing_unit_code) == (
        "44", "unit", "44", "STC")
    assert spec.legal_number == "12/2025/QĐ-UBND" and spec.form["code"] == "BM-THANG"
    assert api.regime_by_code("KTXH.THANG") == w.regime.id and api.regime_by_code("NONE") is None
    # Made again under another code by the editor, it reads back the same, field for field.
    copy = dataclasses.replace(spec, code="KTXH.THANG2", form={**spec.form, "code": "BM-THANG2"})
    new_id = api.create_regime_draft(w.p["editor"], copy)
    again = api.regime_spec(new_id)
    assert dataclasses.replace(again, code=spec.code, form={**again.form, "code": "BM-THANG"}) == spec
    assert api.regime_spec(new_id + 999) is None


def test_a_unit_seals_a_document_and_the_signature_is_verified_as_a_reports(w):
    data = '{"packet": "báo cáo"}'.encode("utf-8")
    with pytest.raises(api.BaocaoError) as caught:
        api.seal_sign(w.u["aitu"].id, data, w.settings)
    assert caught.value.key == "signing.error.no_seal"
    signing.install_seal(w.p["unit_admin"], w.u["aitu"].id, w.pki.pkcs12(w.seal, "mk"), "mk", settings=w.settings)
    cms = api.seal_sign(w.u["aitu"].id, data, w.settings)
    verdict = api.verify_document(data, cms, settings=w.settings)
    assert verdict.status == "valid" and "Ái Tử" in verdict.signer_name
    assert verdict.fingerprint == api.seal_fingerprint(w.u["aitu"].id)
    assert api.verify_document(data, cms, expected=[verdict.fingerprint], settings=w.settings).status == "valid"
    # Another signer expected, or one byte changed: refused, with reasons in both languages.
    assert api.verify_document(data, cms, expected=["00" * 32], settings=w.settings).status == "invalid"
    changed = api.verify_document(data.replace(b"o", b"0", 1), cms, settings=w.settings)
    assert changed.status == "invalid" and changed.messages("vi") and changed.messages("en")
    assert api.verify_document(data, b"not a signature", settings=w.settings).status == "invalid"


def test_a_json_document_is_checked_against_a_schema_with_the_place_of_each_mistake():
    schema = {"type": "object", "required": ["header"], "additionalProperties": False,
              "properties": {"header": {"type": "object", "required": ["id"], "additionalProperties": False,
                                        "properties": {"id": {"type": "string", "pattern": "^[a-z]+$"}}},
                             "values": {"type": "array", "items": {"type": "string", "maxLength": 3}}}}
    assert api.validate_json({"header": {"id": "abc"}, "values": ["1"]}, schema) == []
    problems = api.validate_json({"header": {"id": "ABC", "x": 1}, "values": ["1", "1234"], "y": 2}, schema)
    assert [(p.where, p.key) for p in problems] == [
        ("header.id", "plugin_data.schema.pattern"), ("header.x", "plugin_data.schema.unknown"),
        ("values[1]", "plugin_data.schema.too_long"), ("y", "plugin_data.schema.unknown")]
    assert all(p.message("vi") and p.message("en") for p in problems)


def test_a_subscriber_names_the_arguments_it_wants_settings_included(settings):
    """report_transition(transition, settings): a plugin reading its own table when a report moves
    gets the instance's settings; one naming the transition alone gets just that (as before)."""
    from types import SimpleNamespace

    from core.reporting import events

    transition = api.Transition(report_id=1, regime_id=1, unit_id=1, receiver_id=None,
                                period="2026-01-01/2026-01-31", action="accepted")
    heard = []

    def both(transition, settings):
        heard.append((transition.action, settings))

    def alone(transition):
        heard.append((transition.action,))

    events._caller(SimpleNamespace(function=both, argnames=("transition", "settings")), settings)(transition)
    events._caller(SimpleNamespace(function=alone, argnames=("transition",)), settings)(transition)
    assert heard == [("accepted", settings), ("accepted",)]
