"""Verifying detached CMS signatures: each way a signature must be refused says why, in its own words."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from core.accounts import login as accounts
from core.signatures import trust
from core.signatures import verification
from core.models import Unit
from core.accounts.permissions import core_access
from tests.fixtures.pki import DAY, NOW, build_cms, change_signed_attribute, der, make_ca, pem, pki, rsa_key

DATA = "Báo cáo tháng 3/2026 — Xã Ái Tử\nTổng mức bán lẻ: 12,5 tỷ đồng\n".encode("utf-8")


@pytest.fixture
def admin(db_session):
    unit = Unit.create(code="QT", name="Tỉnh Quảng Trị", kind="province")
    user = accounts.create_user("quantri", "Quản trị hệ thống", accounts.random_password(), unit, is_admin=True)
    return core_access(user)


@pytest.fixture
def pinned(admin):
    """The root and the intermediate pinned, each with a fresh CRL."""
    p = pki()
    trust.add_anchor(admin, pem(p.root.certificate))
    trust.add_anchor(admin, der(p.intermediate.certificate))
    trust.upload_crl(admin, der(p.crl(issuer=p.root)))
    trust.upload_crl(admin, der(p.crl()))
    return p


def keys(verdict) -> list[str]:
    return [problem.key for problem in verdict.problems]


def refused(verdict, key: str) -> None:
    assert verdict.status == "invalid", verdict.problems
    assert key in keys(verdict)
    # Every reason reads in both languages, never as a bare key.
    for lang in ("vi", "en"):
        assert all(not m.startswith("trust.") for m in verdict.messages(lang))
        assert verdict.summary(lang)


def test_valid_pkcs1v15_signature(pinned):
    a = pinned.signer("Nguyễn Văn A")
    verdict = verification.verify(DATA, pinned.sign(DATA, a), expected=[a.certificate])
    assert verdict.status == "valid", verdict.problems
    assert verdict.problems == []
    assert verdict.signer_name == "Nguyễn Văn A"
    assert "CCCD:0440" in verdict.signer_subject
    assert verdict.fingerprint == trust.fingerprint(a.certificate)
    assert verdict.signer_serial == format(a.certificate.serial_number, "X")
    assert verdict.signing_time is not None and verdict.signing_time.tzinfo is not None
    assert "Nguyễn Văn A" in verdict.summary("vi") and "hợp lệ" in verdict.summary("vi")


def test_valid_pss_and_ecdsa_signatures(pinned):
    a = pinned.signer("Trần Thị B")
    assert verification.verify(DATA, pinned.sign(DATA, a, pss=True)).status == "valid"
    assert verification.verify(DATA, build_cms(DATA, a, pss=True, digest="sha384")).status == "valid"
    e = pinned.signer("Lê Văn C", key_type="ec")
    assert verification.verify(DATA, pinned.sign(DATA, e)).status == "valid"


def test_seal_certificate_is_accepted(pinned):
    seal = pinned.seal("UBND xã Cam Lộ", mst="3200999888")
    verdict = verification.verify(DATA, pinned.sign(DATA, seal))
    assert verdict.status == "valid" and "MST:3200999888" in verdict.signer_subject


def test_content_changed_after_signing(pinned):
    a = pinned.signer()
    refused(verification.verify(DATA + b" ", pinned.sign(DATA, a)), "trust.problem.content_changed")


def test_signed_attributes_changed(pinned):
    a = pinned.signer()
    tampered = change_signed_attribute(pinned.sign(DATA, a), NOW - DAY)
    refused(verification.verify(DATA, tampered), "trust.error.cms_signature_invalid")


def test_sha1_refused(pinned):
    verdict = verification.verify(DATA, build_cms(DATA, pinned.signer(), digest="sha1"))
    refused(verdict, "trust.error.cms_weak_digest")
    assert "thuật toán băm SHA-1 không còn an toàn" in verdict.messages("vi")[0]


def test_rsa_1024_refused(pinned):
    refused(verification.verify(DATA, pinned.sign(DATA, pinned.signer(rsa_bits=1024))),
            "trust.problem.weak_rsa_key")


def test_small_ec_curve_refused(pinned):
    weak = pinned.signer("Phạm Văn D", key_type="ec", curve="secp224r1")
    refused(verification.verify(DATA, build_cms(DATA, weak)), "trust.problem.weak_ec_key")


def test_expired_certificate(pinned):
    old = pinned.signer(not_before=NOW - 800 * DAY, not_after=NOW - 10 * DAY)
    verdict = verification.verify(DATA, pinned.sign(DATA, old))
    refused(verdict, "trust.problem.expired")
    assert "đã hết hạn" in " ".join(verdict.messages("vi"))


def test_not_yet_valid_certificate(pinned):
    early = pinned.signer(not_before=NOW + 5 * DAY, not_after=NOW + 400 * DAY)
    refused(verification.verify(DATA, pinned.sign(DATA, early)), "trust.problem.not_yet_valid")


def test_validity_judged_at_signing_time_not_after(pinned):
    # Valid when signed (two days ago), received yesterday; expired since. Still valid.
    short = pinned.signer(not_before=NOW - 30 * DAY, not_after=NOW - 12 * dt.timedelta(hours=1))
    cms_der = build_cms(DATA, short, signing_time=NOW - 2 * DAY)
    assert verification.verify(DATA, cms_der, at=NOW - DAY).status == "valid"
    # The same signature received today: the certificate had expired at receipt.
    refused(verification.verify(DATA, cms_der), "trust.problem.expired")


def test_signing_time_after_receipt(pinned):
    cms_der = build_cms(DATA, pinned.signer(), signing_time=NOW + DAY)
    refused(verification.verify(DATA, cms_der), "trust.problem.signing_time_after_receipt")


def test_key_usage_without_signing_refused(pinned):
    enc = pinned.signer(key_usage={"key_encipherment": True})
    verdict = verification.verify(DATA, pinned.sign(DATA, enc))
    refused(verdict, "trust.problem.key_usage")


def test_eku_server_auth_only_refused(pinned):
    web = pinned.signer(eku=[ExtendedKeyUsageOID.SERVER_AUTH])
    refused(verification.verify(DATA, pinned.sign(DATA, web)), "trust.problem.extended_key_usage")


def test_eku_allowlist_comes_from_settings(pinned, make_settings):
    # Only clientAuth allowed: a certificate with just emailProtection no longer passes.
    mail = pinned.signer(eku=[ExtendedKeyUsageOID.EMAIL_PROTECTION])
    assert verification.verify(DATA, pinned.sign(DATA, mail)).status == "valid"
    strict = make_settings(signature_ekus=("1.3.6.1.5.5.7.3.2",))
    refused(verification.verify(DATA, pinned.sign(DATA, mail), settings=strict), "trust.problem.extended_key_usage")
    # No EKU at all: judged on key usage alone.
    assert verification.verify(DATA, pinned.sign(DATA, pinned.signer(eku=None)), settings=strict).status == "valid"


def test_untrusted_root_with_the_real_name(pinned):
    rogue = pinned.rogue_root()
    fake = pinned.signer("Nguyễn Văn A", issuer=rogue)
    verdict = verification.verify(DATA, pinned.sign(DATA, fake))
    refused(verdict, "trust.problem.issuer_impostor")
    # The forged CA carried in the signature is never taken as an anchor.
    assert verdict.evidence["chain"] == [fake.pem.decode()]


def test_intermediate_not_pinned(pinned):
    other = pinned.other_intermediate()
    signer = pinned.signer("Hoàng Văn E", issuer=other)
    verdict = verification.verify(DATA, pinned.sign(DATA, signer))
    refused(verdict, "trust.problem.intermediate_not_pinned")
    assert "CA cấp dưới chưa được phê duyệt" in verdict.messages("vi")[0]


def test_unknown_issuer(pinned):
    stranger = make_ca(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "CA lạ")]), rsa_key("stranger"))
    signer = pinned.signer("Đỗ Văn F", issuer=stranger)
    verdict = verification.verify(DATA, build_cms(DATA, signer, certificates=[signer.certificate]))
    refused(verdict, "trust.problem.untrusted")


def test_deactivated_anchor_is_not_trusted(pinned, admin):
    a = pinned.signer()
    intermediate = trust.TrustAnchor.get(trust.TrustAnchor.kind == "intermediate")
    trust.deactivate_anchor(admin, intermediate.id)
    refused(verification.verify(DATA, pinned.sign(DATA, a)), "trust.problem.anchor_inactive")


def test_revoked_signer(pinned, admin):
    a = pinned.signer()
    revoked_at = NOW - 2 * DAY
    trust.upload_crl(admin, der(pinned.crl(revoked=[(a.certificate, revoked_at)], this_update=NOW - DAY
                                           + dt.timedelta(minutes=1), number=2)))
    verdict = verification.verify(DATA, pinned.sign(DATA, a))
    refused(verdict, "trust.problem.revoked")
    assert "đã bị thu hồi" in " ".join(verdict.messages("vi"))
    assert revoked_at.astimezone(dt.timezone(dt.timedelta(hours=7))).strftime("%d/%m/%Y") in \
        " ".join(verdict.messages("vi"))


def test_revoked_without_distribution_point_still_refused(pinned, admin):
    # security.md F8: the own check reads the issuer's CRL whatever the certificate says.
    a = pinned.signer(crl_url=None)
    trust.upload_crl(admin, der(pinned.crl(revoked=[a.certificate], this_update=NOW - DAY + dt.timedelta(minutes=2),
                                           number=3)))
    refused(verification.verify(DATA, pinned.sign(DATA, a)), "trust.problem.revoked")


def test_stale_crl_is_indeterminate(admin):
    p = pki()
    trust.add_anchor(admin, pem(p.root.certificate))
    trust.add_anchor(admin, pem(p.intermediate.certificate))
    trust.upload_crl(admin, der(p.crl(issuer=p.root)))
    trust.upload_crl(admin, der(p.crl(this_update=NOW - 10 * DAY, next_update=NOW - 3 * DAY)))
    verdict = verification.verify(DATA, p.sign(DATA, p.signer()))
    assert verdict.status == "indeterminate"
    assert keys(verdict) == ["trust.problem.crl_stale"]
    assert "đã cũ" in verdict.summary("vi")


def test_missing_crl_is_indeterminate(admin):
    p = pki()
    trust.add_anchor(admin, pem(p.root.certificate))
    trust.add_anchor(admin, pem(p.intermediate.certificate))
    verdict = verification.verify(DATA, p.sign(DATA, p.signer()))
    assert verdict.status == "indeterminate"
    assert keys(verdict) == ["trust.problem.crl_missing", "trust.problem.crl_missing"]


def test_another_persons_certificate(pinned):
    a = pinned.signer("Nguyễn Văn A")
    b = pinned.signer("Trần Văn B")
    verdict = verification.verify(DATA, pinned.sign(DATA, b), expected=[a.certificate])
    refused(verdict, "trust.problem.not_expected_signer")
    assert "không phải của tài khoản đã gửi báo cáo" in verdict.messages("vi")[0]
    refused(verification.verify(DATA, pinned.sign(DATA, b), expected=[]), "trust.problem.no_registered_certificate")


@pytest.mark.parametrize("bad", [b"", b"not a signature", b"\x30\x03\x02\x01\x01", b"\x30" * 4000])
def test_malformed_input_is_invalid_not_an_exception(pinned, bad):
    verdict = verification.verify(DATA, bad)
    assert verdict.status == "invalid" and verdict.problems
    assert verdict.problems[0].key.startswith("trust.error.cms_")


def test_two_signers_and_wrong_sid(pinned):
    a = pinned.signer()
    refused(verification.verify(DATA, build_cms(DATA, a, signers=2)), "trust.error.cms_signer_count")
    refused(verification.verify(DATA, build_cms(DATA, a, sid_serial=12345)),
            "trust.error.cms_signer_certificate_missing")
    refused(verification.verify(DATA, build_cms(DATA, a, signed_attrs=False)), "trust.error.cms_no_signed_attributes")


def test_reverify_from_evidence_alone(pinned, admin):
    a = pinned.signer("Nguyễn Văn A")
    cms_der = pinned.sign(DATA, a)
    first = verification.verify(DATA, cms_der, expected=[a.certificate])
    assert first.status == "valid"
    evidence = first.evidence
    assert len(evidence["chain"]) == 3 and len(evidence["crls"]) == 2
    import json
    evidence = json.loads(json.dumps(evidence))  # it is stored as JSON

    # Years later: the anchors were rotated and new CRLs (one revoking the signer) arrived.
    trust.upload_crl(admin, der(pinned.crl(revoked=[a.certificate], this_update=NOW, number=9)))
    for anchor in trust.TrustAnchor.select():
        trust.deactivate_anchor(admin, anchor.id)
    assert verification.verify(DATA, cms_der).status == "invalid"

    again = verification.reverify(DATA, cms_der, evidence)
    assert again.status == "valid", again.problems
    assert again.fingerprint == first.fingerprint
    assert again.checked_at == first.checked_at
    # The evidence does not vouch for other content or another signature.
    assert verification.reverify(DATA + b"x", cms_der, evidence).status == "invalid"
    other = pinned.signer("Trần Văn B")
    assert verification.reverify(DATA, pinned.sign(DATA, other), evidence).status == "invalid"


def test_reverify_keeps_an_invalid_verdict(pinned):
    other = pinned.other_intermediate()
    signer = pinned.signer(issuer=other)
    cms_der = pinned.sign(DATA, signer)
    first = verification.verify(DATA, cms_der)
    again = verification.reverify(DATA, cms_der, first.evidence)
    assert first.status == again.status == "invalid"
    assert verification.reverify(DATA, cms_der, {"chain": "x"}).status == "invalid"


def test_evidence_records_checks_policy_and_times(pinned):
    a = pinned.signer()
    at = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=5)
    verdict = verification.verify(DATA, pinned.sign(DATA, a), at=at)
    ev = verdict.evidence
    assert ev["times"]["received_at"] == at.isoformat()
    assert ev["policy"]["ekus"] and ev["policy"]["min_rsa_bits"] == 2048
    assert {c["check"] for c in ev["checks"]} >= {"cms", "signature", "content", "path", "validity", "key_usage",
                                                 "keys", "revocation"}
    assert all(set(c) == {"sha256", "issuer", "issuer_fingerprint", "this_update", "next_update"}
               for c in ev["crls"])
    assert ev["chain"][0].startswith("-----BEGIN CERTIFICATE-----")



def test_unknown_critical_extension_refused(pinned):
    odd = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.2.704.99.1"), b"\x05\x00")
    signer = pinned.signer(extensions=[(odd, True)])
    verdict = verification.verify(DATA, pinned.sign(DATA, signer))
    refused(verdict, "trust.problem.unknown_critical_extension")
    # The same extension, not critical, is ignored.
    assert verification.verify(DATA, pinned.sign(DATA, pinned.signer(extensions=[(odd, False)]))).status == "valid"


def test_expected_may_be_fingerprints(pinned):
    a, b = pinned.signer("Nguyễn Văn A"), pinned.signer("Trần Văn B")
    fingerprints = [trust.fingerprint(a.certificate)]
    assert verification.verify(DATA, pinned.sign(DATA, a), expected=fingerprints).status == "valid"
    refused(verification.verify(DATA, pinned.sign(DATA, b), expected=fingerprints),
            "trust.problem.not_expected_signer")


# -- issue 12: an independent certificate set found these ------------------------------------------


def _pin(admin, *cas):
    for ca in cas:
        trust.add_anchor(admin, pem(ca.certificate))


def test_revocation_after_the_receipt_time_does_not_count(pinned, admin):
    # Item 14: received three days ago, revoked two days ago: in force when the report arrived.
    a = pinned.signer()
    cms_der = build_cms(DATA, a, signing_time=NOW - 3 * DAY)
    received = NOW - 3 * DAY + dt.timedelta(minutes=1)
    revoked_at = NOW - 2 * DAY
    trust.upload_crl(admin, der(pinned.crl(revoked=[(a.certificate, revoked_at)],
                                           this_update=NOW - DAY + dt.timedelta(minutes=3), number=4)))
    verdict = verification.verify(DATA, cms_der, at=received)
    assert verdict.status == "valid", verdict.problems
    check = next(c for c in verdict.evidence["checks"] if c.get("certificate") == trust.fingerprint(a.certificate))
    assert check["revoked_at"] == revoked_at.isoformat() and check["after_receipt"] == "revoked"
    # The same signature received after the revocation: refused, with the revocation date.
    refused(verification.verify(DATA, cms_der, at=NOW - DAY), "trust.problem.revoked")


def test_recertified_ca_with_the_same_name_and_key_is_tried(admin):
    # Item 15: the provider's CA re-certified by the root under the same name and key; the old,
    # expired certificate was pinned first and its CRL filed under it.
    p = pki()
    old = p.recertified(p.intermediate, issuer=p.root, not_before=NOW - 3000 * DAY, not_after=NOW - DAY,
                        path_length=0)
    _pin(admin, p.root, old)
    trust.upload_crl(admin, der(p.crl(issuer=p.root)))
    crl = p.crl(number=7)
    trust.upload_crl(admin, der(crl))
    assert trust.Crl.get(trust.Crl.issuer_fingerprint == trust.fingerprint(old.certificate))
    _pin(admin, p.intermediate)
    a = p.signer()
    verdict = verification.verify(DATA, p.sign(DATA, a))
    assert verdict.status == "valid", verdict.problems
    assert verdict.evidence["chain"][1] == p.intermediate.pem.decode()
    # The evidence names the successor and its CRL: re-verification agrees.
    assert verification.reverify(DATA, p.sign(DATA, a), verdict.evidence).status == "valid"
    # Uploaded again, the CRL is filed under the current certificate of the CA.
    trust.upload_crl(admin, der(crl))
    row = trust.Crl.get(trust.Crl.sha256 == trust.hashlib.sha256(der(crl)).hexdigest())
    assert row.issuer_fingerprint == trust.fingerprint(p.intermediate.certificate)
    _, crls, _ = trust.overview()
    assert all(item.state == "fresh" for item in crls)


def test_recertified_root_expired_copy_pinned_first(admin):
    p = pki()
    old_root = p.recertified(p.root, not_before=NOW - 7000 * DAY, not_after=NOW - 2 * DAY)
    _pin(admin, old_root, p.root, p.intermediate)
    trust.upload_crl(admin, der(p.crl(issuer=p.root)))
    trust.upload_crl(admin, der(p.crl()))
    verdict = verification.verify(DATA, p.sign(DATA, p.signer()))
    assert verdict.status == "valid", verdict.problems
    assert verdict.evidence["chain"][-1] == p.root.pem.decode()


def test_only_an_expired_ca_still_says_expired(admin):
    p = pki()
    old = p.recertified(p.intermediate, issuer=p.root, not_before=NOW - 3000 * DAY, not_after=NOW - DAY,
                        path_length=0)
    _pin(admin, p.root, old)
    refused(verification.verify(DATA, p.sign(DATA, p.signer())), "trust.problem.expired")


def test_a_ca_certificate_cannot_sign_as_a_person(pinned):
    # Item 16: CA:TRUE in the signer's basic constraints.
    ca_signer = pinned.ca_signer()
    verdict = verification.verify(DATA, pinned.sign(DATA, ca_signer))
    refused(verdict, "trust.problem.signer_is_ca")
    assert "CA:TRUE" in verdict.messages("vi")[0] and "CA:TRUE" in verdict.messages("en")[0]


def test_sha1_signed_certificate_is_a_weak_algorithm_not_a_forgery(pinned):
    # Item 18: cryptography refuses to check SHA-1 certificate signatures; that is not a forgery.
    from tests.fixtures.pki import sha1_signed

    weak = sha1_signed(pinned.signer("Ngô Văn S"), pinned.intermediate)
    verdict = verification.verify(DATA, build_cms(DATA, weak))
    refused(verdict, "trust.problem.weak_certificate_hash")
    assert "trust.problem.issuer_impostor" not in keys(verdict)
    assert "SHA-1" in verdict.messages("vi")[0]
    # A SHA-1 signature that does not verify is still no path at all.
    forged = sha1_signed(pinned.signer("Ngô Văn T"), pinned.rogue_root())
    refused(verification.verify(DATA, build_cms(DATA, forged)), "trust.problem.issuer_impostor")


def test_crl_with_an_unknown_critical_extension_is_not_used(pinned, admin):
    odd = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.2.704.99.2"), b"\x05\x00")
    a = pinned.signer()
    crl = pinned.crl(revoked=[a.certificate], this_update=NOW - DAY + dt.timedelta(minutes=5), number=11,
                     extensions=[(odd, True)])
    with pytest.raises(Exception) as caught:
        trust.upload_crl(admin, der(crl))
    assert caught.value.key == "trust.error.crl_unknown_critical"
    # One stored before this rule (or otherwise) is not used either: undetermined, with the reason.
    row = trust.store_crl(der(pinned.crl(number=12, this_update=NOW - DAY + dt.timedelta(minutes=6))), "upload")[0]
    trust.Crl.update(der=der(crl), sha256="f" * 64).where(trust.Crl.id == row.id).execute()
    verdict = verification.verify(DATA, pinned.sign(DATA, a))
    assert verdict.status == "indeterminate", verdict.problems
    assert keys(verdict) == ["trust.problem.crl_unusable"]
    assert "1.2.704.99.2" in verdict.messages("vi")[0]


def test_crl_without_next_update_is_current_for_a_day_only(admin):
    p = pki()
    _pin(admin, p.root, p.intermediate)
    trust.upload_crl(admin, der(p.crl(issuer=p.root)))
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    trust.upload_crl(admin, der(p.crl(this_update=now - 2 * DAY, without_next_update=True)))
    a = p.signer()
    verdict = verification.verify(DATA, p.sign(DATA, a))
    assert verdict.status == "indeterminate"
    assert keys(verdict) == ["trust.problem.crl_no_next_update"]
    assert all(not m.startswith("trust.") and "None" not in m for lang in ("vi", "en") for m in verdict.messages(lang))
    _, crls, _ = trust.overview()
    assert [item.state for item in crls if item.anchor.kind == "intermediate"] == ["stale"]
    # Issued an hour ago, without next update: current.
    trust.upload_crl(admin, der(p.crl(this_update=now - dt.timedelta(hours=1), without_next_update=True, number=2)))
    assert verification.verify(DATA, p.sign(DATA, a)).status == "valid"


def test_certificate_on_hold_is_suspended_not_revoked_and_a_later_crl_lifts_it(pinned, admin):
    a = pinned.signer()
    cms_der = pinned.sign(DATA, a)
    trust.upload_crl(admin, der(pinned.crl(held=[(a.certificate, NOW - 2 * DAY)], number=21,
                                           this_update=NOW - DAY + dt.timedelta(minutes=7))))
    verdict = verification.verify(DATA, cms_der)
    assert verdict.status == "indeterminate", verdict.problems
    assert keys(verdict) == ["trust.problem.on_hold"]
    assert "tạm dừng" in verdict.messages("vi")[0] and "on hold" in verdict.messages("en")[0]
    # The authority lifts the hold: the next CRL no longer lists it.
    trust.upload_crl(admin, der(pinned.crl(number=22, this_update=NOW - DAY + dt.timedelta(minutes=8))))
    assert verification.verify(DATA, cms_der).status == "valid"
