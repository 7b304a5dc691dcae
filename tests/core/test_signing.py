"""Signing a report and submitting it (issue 6): each provider (a .p12 file, a USB-token signature
uploaded, the unit's seal), the refusals a person must understand, the version and its kept
signature and evidence, re-checking an undetermined signature, one version for a double click.
Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import json

import pytest

from core.signatures import certificates
from core.signatures import signing
from core.signatures import trust
from core.signatures import verification
from core.reporting import data as rd
from core.reporting import workflow as wf
from core.audit import AuditEvent
from core.db import db
from core.errors import BaocaoError
from core.reporting.opening import Report
from tests.fixtures.signing import PASSWORD, fill, sign_p12, signed_world
from tests.fixtures.pki import DAY, NOW, der

@pytest.fixture
def w(db_session, make_settings):
    world = signed_world()
    world.settings = make_settings(require_signature=True)
    return world


def test_p12_signs_and_submits_with_the_signature_kept(w):
    saved = fill(w)
    version = sign_p12(w, revision=saved.revision)
    assert Report.get_by_id(w.report.id).status == "submitted" and version.number == 1
    row = signing.signature_of(version.id)
    assert row.status == "valid" and row.kind == "personal" and row.provider == "pkcs12"
    assert row.signer_name == "Nguyễn Văn A" and row.signed_by_id == w.users["reporter"].id
    assert row.fingerprint == trust.fingerprint(w.me.certificate)
    # The signature covers exactly the stored bytes, and the evidence decides again offline.
    data = version.canonical.encode("utf-8")
    again = verification.reverify(data, bytes(row.cms), json.loads(row.evidence))
    assert again.status == "valid", again.problems
    assert verification.reverify(data + b" ", bytes(row.cms), json.loads(row.evidence)).status == "invalid"
    event = AuditEvent.get(AuditEvent.action == "report.submitted")
    details = json.loads(event.details)
    assert details["sha256"] == version.sha256 and details["signature"] == "valid"
    assert details["signer_serial"] == format(w.me.certificate.serial_number, "X")
    assert "CA thử nghiệm cấp dưới" in details["issuer"]


def test_wrong_p12_password_is_refused_in_plain_words(w):
    saved = fill(w)
    with pytest.raises(BaocaoError) as caught:
        sign_p12(w, password="sai mật khẩu", revision=saved.revision)
    assert caught.value.key == "signing.error.p12_password"
    assert "Mật khẩu không đúng" in caught.value.message("vi")
    assert Report.get_by_id(w.report.id).status == "draft" and wf.ReportVersion.select().count() == 0


def test_the_p12_file_and_its_password_are_never_stored(w):
    saved = fill(w)
    p12 = w.pki.pkcs12(w.me, PASSWORD)
    sign_p12(w, revision=saved.revision)
    key_der = w.me.key.private_bytes(*_pkcs8())
    # No table holds the file, its password or the private key in any column.
    needles = (p12, PASSWORD.encode(), key_der)
    for table in db.get_tables():
        for row in db.execute_sql(f'SELECT * FROM "{table}"').fetchall():
            for value in row:
                raw = bytes(value) if isinstance(value, (bytes, memoryview)) else str(value).encode()
                assert not any(n in raw for n in needles), table
    # ... and no file was written beside the attachments.
    files = w.settings.files_dir
    import pathlib

    folder = pathlib.Path(files)
    if folder.exists():
        for path in folder.rglob("*"):
            if path.is_file():
                assert p12 not in path.read_bytes()


def _pkcs8():
    from cryptography.hazmat.primitives import serialization

    return (serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def test_another_persons_certificate_is_refused_and_nothing_saved(w):
    saved = fill(w)
    with pytest.raises(signing.SignatureRefused) as caught:
        sign_p12(w, issued=w.someone_else, revision=saved.revision)
    assert "trust.problem.not_expected_signer" in [p.key for p in caught.value.verdict.problems]
    assert any("người khác" in m for m in caught.value.reasons("vi"))
    assert Report.get_by_id(w.report.id).status == "draft"
    assert wf.ReportVersion.select().count() == 0 and signing.ReportSignature.select().count() == 0
    refusal = AuditEvent.get(AuditEvent.action == "report.signature_refused")
    assert json.loads(refusal.details)["signer_serial"] == format(w.someone_else.certificate.serial_number, "X")


def test_external_signature_over_the_downloaded_bytes(w):
    saved = fill(w)
    request = signing.prepare_external(w.p["reporter"], w.report.id, revision=saved.revision)
    # Downloading again gives the very same bytes.
    assert signing.prepare_external(w.p["reporter"], w.report.id, revision=saved.revision).id == request.id
    assert signing.download_name(w.report.id, request.number) == f"bao-cao-{w.report.id}-v1.json"
    data = request.canonical.encode("utf-8")
    assert json.loads(data)["submitted_by"] == "reporter"
    p7s = w.pki.sign(data, w.me)  # what the token's tool makes (PKCS#1 v1.5)
    version = signing.sign_and_submit(w.p["reporter"], w.report.id, revision=saved.revision, provider="external",
                                      inputs={"p7s": p7s}, settings=w.settings)
    assert version.canonical.encode("utf-8") == data and version.sha256 == request.sha256
    assert signing.signature_of(version.id).provider == "external"


def test_external_signature_accepts_pem_and_refuses_other_files(w):
    saved = fill(w)
    request = signing.prepare_external(w.p["reporter"], w.report.id, revision=saved.revision)
    with pytest.raises(BaocaoError) as caught:
        signing.sign_and_submit(w.p["reporter"], w.report.id, revision=saved.revision, provider="external",
                                inputs={"p7s": request.canonical.encode("utf-8")}, settings=w.settings)
    assert caught.value.key == "signing.error.p7s_not_signature"
    import base64

    body = base64.encodebytes(w.pki.sign(request.canonical.encode("utf-8"), w.me)).decode()
    p7s_pem = f"-----BEGIN PKCS7-----\n{body}-----END PKCS7-----\n".encode()
    version = signing.sign_and_submit(w.p["reporter"], w.report.id, revision=saved.revision, provider="external",
                                      inputs={"p7s": p7s_pem}, settings=w.settings)
    assert signing.signature_of(version.id).status == "valid"


def test_external_upload_after_an_edit_is_refused(w):
    saved = fill(w)
    request = signing.prepare_external(w.p["reporter"], w.report.id, revision=saved.revision)
    p7s = w.pki.sign(request.canonical.encode("utf-8"), w.me)
    edited = rd.save(w.p["reporter"], w.report.id, {("banle", "cur"): (rd.MISSING, "11")})
    for revision in (saved.revision, edited.revision):
        with pytest.raises(BaocaoError) as caught:
            signing.sign_and_submit(w.p["reporter"], w.report.id, revision=revision, provider="external",
                                    inputs={"p7s": p7s}, settings=w.settings)
        assert caught.value.key == "signing.error.changed"
        assert "đã thay đổi sau khi bạn tải dữ liệu để ký" in caught.value.message("vi")
    assert wf.ReportVersion.select().count() == 0


def test_signature_over_other_bytes_is_refused_as_content_changed(w):
    saved = fill(w)
    signing.prepare_external(w.p["reporter"], w.report.id, revision=saved.revision)
    p7s = w.pki.sign(b'{"format":"baocao.report/1","values":{"banle.cur":"99"}}', w.me)
    with pytest.raises(signing.SignatureRefused) as caught:
        signing.sign_and_submit(w.p["reporter"], w.report.id, revision=saved.revision, provider="external",
                                inputs={"p7s": p7s}, settings=w.settings)
    assert "trust.problem.content_changed" in [p.key for p in caught.value.verdict.problems]


def test_seal_by_the_clerk(w):
    saved = fill(w)
    with pytest.raises(BaocaoError) as caught:  # nothing installed yet
        signing.sign_and_submit(w.p["clerk"], w.report.id, revision=saved.revision, provider="seal",
                                settings=w.settings)
    assert caught.value.key == "signing.error.no_seal"
    signing.install_seal(w.p["unit_admin"], w.u["aitu"].id, w.pki.pkcs12(w.seal, "mk-dau"), "mk-dau",
                         settings=w.settings)
    stored = signing.active_seal(w.u["aitu"].id)
    # The key is kept encrypted, never as PKCS#8 DER or PEM.
    assert bytes(w.seal.key.private_bytes(*_pkcs8())) not in stored.key.encode()
    assert "PRIVATE KEY" not in stored.key
    version = signing.sign_and_submit(w.p["clerk"], w.report.id, revision=saved.revision, provider="seal",
                                      settings=w.settings)
    row = signing.signature_of(version.id)
    assert row.kind == "seal" and row.status == "valid" and row.signer_name == "UBND xã Ái Tử"
    assert json.loads(version.canonical)["submitted_by"] == "vanthu"


def test_seal_by_someone_who_is_not_the_clerk_is_refused(w):
    signing.install_seal(w.p["unit_admin"], w.u["aitu"].id, w.pki.pkcs12(w.seal, "mk-dau"), "mk-dau",
                         settings=w.settings)
    saved = fill(w)
    assert [p.name for p in signing.usable_providers(w.p["reporter"], Report.get_by_id(w.report.id))] == \
        ["pkcs12", "external"]
    with pytest.raises(BaocaoError) as caught:
        signing.sign_and_submit(w.p["reporter"], w.report.id, revision=saved.revision, provider="seal",
                                settings=w.settings)
    assert caught.value.key == "signing.error.seal_not_clerk"
    assert Report.get_by_id(w.report.id).status == "draft"


def test_only_a_unit_admin_installs_the_seal_and_a_wrong_key_is_refused(w):
    from core.errors import NotFound

    with pytest.raises(NotFound):
        signing.install_seal(w.p["clerk"], w.u["aitu"].id, w.pki.pkcs12(w.seal, "x"), "x", settings=w.settings)
    with pytest.raises(BaocaoError) as caught:
        signing.install_seal(w.p["unit_admin"], w.u["aitu"].id, w.pki.pkcs12(w.seal, "x"), "y", settings=w.settings)
    assert caught.value.key == "signing.error.p12_password"
    assert signing.active_seal(w.u["aitu"].id) is None


def test_unsigned_submission_is_refused_when_signatures_are_required(w):
    saved = fill(w)
    with pytest.raises(BaocaoError) as caught:
        wf.submit(w.p["reporter"], w.report.id, revision=saved.revision, settings=w.settings)
    assert caught.value.key == "signing.error.signature_required"
    assert "phải được ký số" in caught.value.message("vi")
    assert Report.get_by_id(w.report.id).status == "draft"


def test_a_double_click_makes_one_signed_version(w):
    saved = fill(w)
    first = sign_p12(w, revision=saved.revision)
    again = sign_p12(w, revision=saved.revision)
    assert again.id == first.id
    assert wf.ReportVersion.select().count() == 1 and signing.ReportSignature.select().count() == 1


def test_no_registered_certificate_says_so(w):
    saved = fill(w)
    certificates.deactivate(w.p["reporter"], certificates.UserCertificate.get().id)
    with pytest.raises(BaocaoError) as caught:
        sign_p12(w, revision=saved.revision)
    assert caught.value.key == "signing.error.no_certificate"


def test_indeterminate_is_accepted_then_checked_again_after_a_fresh_crl(db_session, make_settings):
    w = signed_world(crl=False)
    w.settings = make_settings(require_signature=True)
    saved = fill(w)
    version = sign_p12(w, revision=saved.revision)
    row = signing.signature_of(version.id)
    assert row.status == "indeterminate"
    assert any("CRL" in m for m in signing.problem_messages(row.problems, "vi"))
    # Only the receiver checks again.
    from core.errors import Forbidden

    with pytest.raises(Forbidden):
        signing.recheck(w.p["reporter"], row.id, settings=w.settings)
    trust.upload_crl(w.admin, der(w.pki.crl(issuer=w.pki.root)))
    trust.upload_crl(w.admin, der(w.pki.crl()))
    check = signing.recheck(w.p["issuer"], row.id, settings=w.settings)
    assert check.status == "valid"
    kept = signing.ReportSignature.get_by_id(row.id)
    assert kept.status == "indeterminate" and kept.problems == row.problems  # never rewritten
    assert signing.signatures_for(w.report.id)[version.id].latest_check.id == check.id
    assert AuditEvent.select().where(AuditEvent.action == "report.signature_checked").count() == 1


def test_a_revoked_certificate_found_on_recheck_shows_invalid(db_session, make_settings):
    w = signed_world(crl=False)
    w.settings = make_settings(require_signature=True)
    saved = fill(w)
    version = sign_p12(w, revision=saved.revision)
    trust.upload_crl(w.admin, der(w.pki.crl(issuer=w.pki.root)))
    trust.upload_crl(w.admin, der(w.pki.crl(revoked=[(w.me.certificate, NOW - 2 * DAY)], number=2)))
    check = signing.recheck(w.p["issuer"], signing.signature_of(version.id).id, settings=w.settings)
    assert check.status == "invalid"
    assert any("thu hồi" in m for m in signing.problem_messages(check.problems, "vi"))


def test_a_revocation_dated_after_the_receipt_does_not_turn_a_recheck_invalid(db_session, make_settings):
    # Issue 12 item 14: "Kiểm tra lại" judges at the time of receipt, as re-verification from the
    # evidence does; the revocation date is shown next to the receipt time.
    import datetime as dt

    w = signed_world(crl=False)
    w.settings = make_settings(require_signature=True)
    saved = fill(w)
    version = sign_p12(w, revision=saved.revision)
    row = signing.signature_of(version.id)
    assert row.status == "indeterminate"
    revoked_at = row.verified_at.replace(tzinfo=dt.timezone.utc, microsecond=0) + dt.timedelta(minutes=1)
    trust.upload_crl(w.admin, der(w.pki.crl(issuer=w.pki.root)))
    trust.upload_crl(w.admin, der(w.pki.crl(revoked=[(w.me.certificate, revoked_at)], number=5)))
    check = signing.recheck(w.p["issuer"], row.id, settings=w.settings)
    assert check.status == "valid", check.problems
    again = verification.reverify(version.canonical.encode("utf-8"), bytes(row.cms), json.loads(check.evidence))
    assert again.status == check.status
    row.latest_check = check
    view = signing.signature_view(row)
    assert view["revoked"] == {"at": revoked_at.replace(tzinfo=None), "after_receipt": True, "on_hold": False}


def test_a_plugin_provider_is_offered_and_its_signatures_are_verified_by_the_core(w):
    import types

    from core.hookspecs import hookimpl
    from core.plugins import build_plugin_manager

    class Service(signing.Provider):
        """A signing service that signs with whatever key it holds."""

        name, label, help = "fx_service", "signing.provider.pkcs12", "signing.provider.pkcs12_help"

        def __init__(self, issued):
            self.issued = issued

        def sign(self, access, report, prepared, inputs, settings):
            return w.pki.sign(prepared.data, self.issued)

    def manager(issued):
        plugin = types.ModuleType("fx_signing")
        plugin.register_signature_providers = hookimpl(lambda settings: [Service(issued),
                                                                          Service(issued)])
        return build_plugin_manager(w.settings, builtins=(), extra_plugins=[plugin], load_entrypoints=False)

    saved = fill(w)
    wrong = manager(w.someone_else)
    # Switched off for the reporter's unit: the plugin offers no way of signing there.
    assert "fx_service" not in signing.providers(wrong, w.settings, enabled=frozenset())
    assert "fx_service" not in [p.name for p in signing.usable_providers(w.p["reporter"], w.report, wrong, w.settings)]
    with pytest.raises(BaocaoError) as caught:
        signing.sign_and_submit(w.p["reporter"], w.report.id, revision=saved.revision, provider="fx_service",
                                settings=w.settings, pm=wrong)
    assert caught.value.key == "signing.error.unknown_provider"
    # Switched on there: offered.
    reporter = dataclasses.replace(w.p["reporter"], enabled=frozenset({"fx_signing"}))
    assert "fx_service" in [p.name for p in signing.usable_providers(reporter, w.report, wrong, w.settings)]
    # The service signed with someone else's key: refused, whatever the plugin says.
    with pytest.raises(signing.SignatureRefused):
        signing.sign_and_submit(reporter, w.report.id, revision=saved.revision, provider="fx_service",
                                settings=w.settings, pm=wrong)
    version = signing.sign_and_submit(reporter, w.report.id, revision=saved.revision,
                                      provider="fx_service", settings=w.settings, pm=manager(w.me))
    assert signing.signature_of(version.id).provider == "fx_service"
