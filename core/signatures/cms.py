"""Detached CMS (PKCS#7) signatures: making them, reading them, checking their cryptography.

A report is signed as a detached CMS ``SignedData`` over its canonical bytes: one signer, SHA-256
(SHA-384/512 accepted from outside), signed attributes with content-type, message-digest and
signing-time. ``cryptography`` can make such a signature but cannot read or verify one (security.md
F1), so ``parse`` reads it with asn1crypto (never hand-written DER) and ``check_signature`` redoes
the RFC 5652 §5.4 check with ``cryptography``: the signed attributes, re-encoded as a SET, must
verify under the signer's key with an allowlisted algorithm (RSA PKCS#1 v1.5 from USB tokens, RSA-PSS,
ECDSA — SIG-08), and their message digest must equal the hash of the data (F6).

Only the cryptography lives here. Whether the signer is trusted (chain to a pinned anchor, validity,
key usage, revocation, binding to the account) is ``core.signatures.verification``'s work.

Every failure is a ``CmsError`` with its own message key, so that a verification report can say in
plain words what is wrong with a file.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

from asn1crypto import cms as a_cms
from asn1crypto import pem as a_pem
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs7

from core.errors import BaocaoError

# A signature with a long chain is a few kilobytes; anything far larger is not a signature and is
# refused before parsing (SIG-10: bounded time and memory).
MAX_CMS_BYTES = 256 * 1024
MAX_CERTIFICATES = 16

DIGESTS = {"sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512}
# Named in the message so that the clerk learns why an old token's signature is refused.
WEAK_DIGESTS = {"md5": "MD5", "sha1": "SHA-1", "sha224": "SHA-224"}


class CmsError(BaocaoError):
    """A signature file that is malformed, or uses something we do not accept."""

    key = "trust.error.cms_malformed"


@dataclass
class ParsedCms:
    """What a detached CMS says. ``signing_time`` is timezone-aware UTC (None without the attribute)."""

    signer_certificate: x509.Certificate
    certificates: list  # every certificate carried, signer included (x509.Certificate)
    digest_algorithm: str  # "sha256" | "sha384" | "sha512"
    signature_algorithm: str  # "rsassa_pkcs1v15" | "rsassa_pss" | "ecdsa"
    signing_time: datetime | None
    message_digest: bytes
    signature: bytes = field(repr=False)
    signed_attributes: bytes = field(repr=False)  # DER of the SET the signature covers
    pss_salt_length: int | None = None
    pss_hash: str | None = None


def _load_der(cms_der: bytes) -> bytes:
    if not isinstance(cms_der, (bytes, bytearray)) or not cms_der:
        raise CmsError("trust.error.cms_empty")
    if len(cms_der) > MAX_CMS_BYTES:
        raise CmsError("trust.error.cms_too_large", limit=MAX_CMS_BYTES // 1024)
    data = bytes(cms_der)
    if a_pem.detect(data):
        try:
            _, _, data = a_pem.unarmor(data)
        except (ValueError, TypeError) as exc:
            raise CmsError() from exc
    return data


def _certificate(choice) -> x509.Certificate | None:
    if choice.name != "certificate":
        return None  # attribute certificates and other choices play no part in verification
    return readable(x509.load_der_x509_certificate(choice.chosen.dump()))


def readable(cert: x509.Certificate) -> x509.Certificate:
    """The certificate, once its lazily parsed parts are known to parse: cryptography reads the key
    and the extensions on first use, and a damaged one would otherwise fail deep inside a check."""
    cert.public_key()
    cert.extensions  # noqa: B018 (parsed on access)
    cert.subject.rfc4514_string()
    cert.issuer.rfc4514_string()
    return cert


def parse(cms_der: bytes) -> ParsedCms:
    """Read a detached CMS; raise ``CmsError`` unless it has the shape we accept."""
    data = _load_der(cms_der)
    try:
        return _parse(data)
    except CmsError:
        raise
    except Exception as exc:  # asn1crypto parses lazily: any malformed part surfaces here
        raise CmsError() from exc


def _parse(data: bytes) -> ParsedCms:
    info = a_cms.ContentInfo.load(data, strict=True)
    if info["content_type"].native != "signed_data":
        raise CmsError("trust.error.cms_not_signed_data")
    signed = info["content"]
    encap = signed["encap_content_info"]
    if encap["content"].native is not None:
        raise CmsError("trust.error.cms_not_detached")
    infos = signed["signer_infos"]
    if len(infos) != 1:
        raise CmsError("trust.error.cms_signer_count", count=len(infos))
    signer = infos[0]

    certificates = []
    for choice in signed["certificates"] or []:
        cert = _certificate(choice)
        if cert is not None:
            certificates.append(cert)
        if len(certificates) > MAX_CERTIFICATES:
            raise CmsError("trust.error.cms_too_many_certificates", limit=MAX_CERTIFICATES)
    signer_certificate = _match_sid(signer["sid"], certificates)

    digest = signer["digest_algorithm"]["algorithm"].native
    _check_digest(digest)

    attrs = signer["signed_attrs"]
    if attrs.native is None or len(attrs) == 0:
        raise CmsError("trust.error.cms_no_signed_attributes")
    values: dict[str, list] = {}
    for attr in attrs:
        name = attr["type"].native
        if name in values:
            raise CmsError("trust.error.cms_duplicate_attribute", name=name)
        values[name] = list(attr["values"])
    if "content_type" not in values:
        raise CmsError("trust.error.cms_no_content_type")
    if "message_digest" not in values:
        raise CmsError("trust.error.cms_no_message_digest")
    if len(values["content_type"]) != 1 or values["content_type"][0].native != encap["content_type"].native:
        raise CmsError("trust.error.cms_content_type_mismatch")
    if len(values["message_digest"]) != 1:
        raise CmsError()
    message_digest = values["message_digest"][0].native
    signing_time = None
    if "signing_time" in values:
        if len(values["signing_time"]) != 1:
            raise CmsError()
        signing_time = values["signing_time"][0].native

    algorithm, pss_hash, pss_salt = _signature_algorithm(signer["signature_algorithm"], digest)
    return ParsedCms(
        signer_certificate=signer_certificate,
        certificates=certificates,
        digest_algorithm=digest,
        signature_algorithm=algorithm,
        signing_time=signing_time,
        message_digest=message_digest,
        signature=signer["signature"].native,
        # The signature covers the DER of the attributes as a SET OF (RFC 5652 §5.4), not the
        # [0] IMPLICIT form they are carried in; untag() keeps the received contents byte for byte.
        signed_attributes=attrs.untag().dump(),
        pss_salt_length=pss_salt,
        pss_hash=pss_hash,
    )


def _check_digest(name: str) -> None:
    if name in WEAK_DIGESTS:
        raise CmsError("trust.error.cms_weak_digest", algorithm=WEAK_DIGESTS[name])
    if name not in DIGESTS:
        raise CmsError("trust.error.cms_unsupported_algorithm", algorithm=str(name))


def _match_sid(sid, certificates: list) -> x509.Certificate:
    # The signer is named by issuer + serial or by subject key identifier; the certificate must be
    # carried in the signature, since it is what we check the signature with.
    if sid.name == "issuer_and_serial_number":
        issuer = sid.chosen["issuer"].dump()
        serial = sid.chosen["serial_number"].native
        for cert in certificates:
            if cert.serial_number == serial and cert.issuer.public_bytes() == issuer:
                return cert
    else:
        wanted = sid.chosen.native
        for cert in certificates:
            try:
                ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
            except x509.ExtensionNotFound:
                continue
            if ski == wanted:
                return cert
    raise CmsError("trust.error.cms_signer_certificate_missing")


def _signature_algorithm(alg, digest: str) -> tuple[str, str | None, int | None]:
    name = alg.signature_algo  # "rsassa_pkcs1v15" | "rsassa_pss" | "ecdsa" | "dsa" ...
    if name not in ("rsassa_pkcs1v15", "rsassa_pss", "ecdsa"):
        raise CmsError("trust.error.cms_unsupported_algorithm", algorithm=str(alg["algorithm"].native))
    if name == "rsassa_pss":
        params = alg["parameters"]
        pss_hash = params["hash_algorithm"]["algorithm"].native
        mgf = params["mask_gen_algorithm"]
        if mgf["algorithm"].native != "mgf1" or mgf["parameters"]["algorithm"].native != pss_hash:
            raise CmsError("trust.error.cms_unsupported_algorithm", algorithm="RSASSA-PSS")
        _check_digest(pss_hash)
        if pss_hash != digest:
            raise CmsError("trust.error.cms_algorithm_mismatch")
        return name, pss_hash, params["salt_length"].native
    # Combined identifiers such as sha256WithRSAEncryption name a hash too: it must be ours.
    try:
        combined = alg.hash_algo
    except ValueError:
        combined = None
    if combined is not None:
        _check_digest(combined)
        if combined != digest:
            raise CmsError("trust.error.cms_algorithm_mismatch")
    return name, None, None


def check_signature(parsed: ParsedCms) -> None:
    """The signature over the signed attributes verifies under the signer's public key."""
    key = parsed.signer_certificate.public_key()
    h = DIGESTS[parsed.digest_algorithm]()
    try:
        if parsed.signature_algorithm in ("rsassa_pkcs1v15", "rsassa_pss"):
            if not isinstance(key, rsa.RSAPublicKey):
                raise CmsError("trust.error.cms_key_mismatch")
            if parsed.signature_algorithm == "rsassa_pss":
                pad = padding.PSS(mgf=padding.MGF1(DIGESTS[parsed.pss_hash]()),
                                  salt_length=parsed.pss_salt_length)
            else:
                pad = padding.PKCS1v15()
            key.verify(parsed.signature, parsed.signed_attributes, pad, h)
        else:
            if not isinstance(key, ec.EllipticCurvePublicKey):
                raise CmsError("trust.error.cms_key_mismatch")
            key.verify(parsed.signature, parsed.signed_attributes, ec.ECDSA(h))
    except InvalidSignature as exc:
        raise CmsError("trust.error.cms_signature_invalid") from exc
    except (ValueError, TypeError) as exc:
        raise CmsError("trust.error.cms_signature_invalid") from exc


def content_matches(parsed: ParsedCms, data: bytes) -> bool:
    """The message digest the signer signed is the hash of ``data`` (the content is unchanged)."""
    return hashlib.new(parsed.digest_algorithm, data).digest() == parsed.message_digest


def sign_detached(data: bytes, certificate: x509.Certificate, private_key, chain=()) -> bytes:
    """A DER detached CMS over ``data``: SHA-256, signed attributes with signing time, certificates =
    signer + ``chain``. RSA keys sign with PSS (server-made signatures, SIG-08); EC keys with ECDSA."""
    builder = pkcs7.PKCS7SignatureBuilder().set_data(data)
    if isinstance(private_key, rsa.RSAPrivateKey):
        pad = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)
        builder = builder.add_signer(certificate, private_key, hashes.SHA256(), rsa_padding=pad)
    elif isinstance(private_key, ec.EllipticCurvePrivateKey):
        builder = builder.add_signer(certificate, private_key, hashes.SHA256())
    else:
        raise CmsError("trust.error.cms_unsupported_key")
    for cert in chain:
        builder = builder.add_certificate(cert)
    return builder.sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.DetachedSignature,
                                                      pkcs7.PKCS7Options.Binary,
                                                      pkcs7.PKCS7Options.NoCapabilities])
