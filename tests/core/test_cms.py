"""Reading and making detached CMS signatures (no database: the cryptography only)."""

from __future__ import annotations

import datetime as dt
import functools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from asn1crypto import cms as a_cms
from asn1crypto import pem as a_pem

from core.signatures import cms
from tests.fixtures.pki import NOW, build_cms, change_signed_attribute, pki

DATA = "Báo cáo quý I/2026".encode("utf-8")


def error_key(cms_der: bytes) -> str:
    with pytest.raises(cms.CmsError) as caught:
        parsed = cms.parse(cms_der)
        cms.check_signature(parsed)
    return caught.value.key


def test_sign_detached_rsa_uses_pss_and_carries_the_chain():
    p = pki()
    a = p.signer()
    signature = cms.sign_detached(DATA, a.certificate, a.key, a.chain)
    parsed = cms.parse(signature)
    cms.check_signature(parsed)
    assert parsed.signature_algorithm == "rsassa_pss"
    assert parsed.digest_algorithm == "sha256"
    assert parsed.signer_certificate == a.certificate
    # A SET OF: the order is the encoder's, the members are signer and chain.
    assert sorted(c.serial_number for c in parsed.certificates) == \
        sorted(c.serial_number for c in [a.certificate, *a.chain])
    assert cms.content_matches(parsed, DATA) and not cms.content_matches(parsed, DATA + b"!")
    assert parsed.signing_time.tzinfo is not None
    assert abs(parsed.signing_time - dt.datetime.now(dt.timezone.utc)) < dt.timedelta(minutes=5)
    # Detached: the report itself is not inside.
    info = a_cms.ContentInfo.load(signature)
    assert info["content"]["encap_content_info"]["content"].native is None


def test_sign_detached_ec_uses_ecdsa():
    e = pki().signer("Lê Thị C", key_type="ec")
    parsed = cms.parse(cms.sign_detached(DATA, e.certificate, e.key))
    cms.check_signature(parsed)
    assert parsed.signature_algorithm == "ecdsa"


def test_pkcs1v15_from_tokens_and_pem_armour_are_read():
    p = pki()
    signature = p.sign(DATA, p.signer())
    parsed = cms.parse(a_pem.armor("CMS", signature))
    cms.check_signature(parsed)
    assert parsed.signature_algorithm == "rsassa_pkcs1v15"


def test_signing_time_is_optional():
    parsed = cms.parse(build_cms(DATA, pki().signer(), signing_time=None))
    assert parsed.signing_time is None


def test_changed_signed_attributes_break_the_signature():
    p = pki()
    assert error_key(change_signed_attribute(p.sign(DATA, p.signer()), NOW - dt.timedelta(days=3))) == \
        "trust.error.cms_signature_invalid"


def test_signature_by_another_key_is_refused():
    p = pki()
    a, b = p.signer("A"), p.signer("B")
    # B's certificate carried and named (same issuer as A), but the signature made with A's key.
    forged = build_cms(DATA, a, certificates=[b.certificate], sid_serial=b.certificate.serial_number)
    assert error_key(forged) == "trust.error.cms_signature_invalid"


@pytest.mark.parametrize("kwargs, key", [
    ({"digest": "sha1"}, "trust.error.cms_weak_digest"),
    ({"signers": 2}, "trust.error.cms_signer_count"),
    ({"sid_serial": 7}, "trust.error.cms_signer_certificate_missing"),
    ({"certificates": []}, "trust.error.cms_signer_certificate_missing"),
    ({"signed_attrs": False}, "trust.error.cms_no_signed_attributes"),
    ({"content_type": False}, "trust.error.cms_no_content_type"),
])
def test_refused_shapes(kwargs, key):
    assert error_key(build_cms(DATA, pki().signer(), **kwargs)) == key


def test_missing_message_digest():
    p = pki()
    info = a_cms.ContentInfo.load(build_cms(DATA, p.signer()))
    attrs = info["content"]["signer_infos"][0]["signed_attrs"]
    kept = [a for a in attrs if a["type"].native != "message_digest"]
    info["content"]["signer_infos"][0]["signed_attrs"] = a_cms.CMSAttributes(kept)
    assert error_key(info.dump(force=True)) == "trust.error.cms_no_message_digest"


def test_attached_content_is_refused():
    p = pki()
    info = a_cms.ContentInfo.load(build_cms(DATA, p.signer()))
    info["content"]["encap_content_info"] = {"content_type": "data", "content": DATA}
    assert error_key(info.dump(force=True)) == "trust.error.cms_not_detached"


@pytest.mark.parametrize("blob, key", [
    (b"", "trust.error.cms_empty"),
    (b"\x00" * (cms.MAX_CMS_BYTES + 1), "trust.error.cms_too_large"),
    (b"hello", "trust.error.cms_malformed"),
    (b"\x30\x80" + b"\x30" * 100, "trust.error.cms_malformed"),
])
def test_garbage_is_a_cms_error(blob, key):
    assert error_key(blob) == key


def test_truncated_signatures_never_escape_as_other_exceptions():
    p = pki()
    signature = p.sign(DATA, p.signer())
    for cut in range(0, len(signature), 97):
        with pytest.raises(cms.CmsError):
            parsed = cms.parse(signature[:cut])
            cms.check_signature(parsed)


# SIG-10: whatever arrives, reading it ends in a CmsError or a parsed signature — nothing else escapes.


@functools.lru_cache(maxsize=1)
def _valid() -> bytes:
    p = pki()
    return p.sign(DATA, p.signer())


def _read(blob: bytes) -> None:
    try:
        parsed = cms.parse(blob)
        cms.check_signature(parsed)
        cms.content_matches(parsed, DATA)
    except cms.CmsError:
        pass


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4096))
def test_random_bytes_only_give_cms_errors(blob):
    _read(blob)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(min_value=0), st.integers(min_value=0, max_value=255)), min_size=1, max_size=8))
def test_mutated_signatures_only_give_cms_errors(changes):
    blob = bytearray(_valid())
    for position, value in changes:
        blob[position % len(blob)] = value
    _read(bytes(blob))


def test_a_damaged_signer_key_is_a_cms_error():
    # Found by the mutation test: the RSA key's algorithm identifier changed to an unknown one.
    blob = _valid()
    rsa_oid = bytes.fromhex("2a864886f70d010101")
    assert rsa_oid in blob
    damaged = blob.replace(rsa_oid, bytes.fromhex("00864886f70d010101"))
    assert error_key(damaged) == "trust.error.cms_malformed"
