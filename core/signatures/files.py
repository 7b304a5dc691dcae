"""The files a person hands in to sign or to prove a certificate is theirs: a PKCS#12 key file
(``.p12``/``.pfx``, used once in memory, never stored) and a detached signature (``.p7s``). Both the
signing (``core.signatures.signing``) and the registration of certificates
(``core.signatures.certificates``) read them, and the signing builds on the registration.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from core.errors import BaocaoError

MAX_P12_BYTES = 64 * 1024
MAX_P7S_BYTES = 256 * 1024


def load_p12(data: bytes, password: str):
    """(key, certificate, chain) from a PKCS#12 file; a clear error for a wrong password or file."""
    if not data:
        raise BaocaoError("signing.error.p12_missing")
    if len(data) > MAX_P12_BYTES:
        raise BaocaoError("signing.error.p12_too_large", limit=MAX_P12_BYTES // 1024)
    try:
        key, cert, chain = pkcs12.load_key_and_certificates(data, (password or "").encode("utf-8") or None)
    except ValueError as exc:
        # cryptography says "Invalid password or PKCS12 data": both cases read the same to a person.
        raise BaocaoError("signing.error.p12_password") from exc
    if key is None or cert is None:
        raise BaocaoError("signing.error.p12_no_key")
    if key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) != \
            cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo):
        raise BaocaoError("signing.error.p12_no_key")
    return key, cert, list(chain or [])


def read_p7s(data: bytes) -> bytes:
    """An uploaded signature file: DER (a SEQUENCE) or PEM; anything else is refused by its first bytes."""
    data = data or b""
    if not data.strip():
        raise BaocaoError("signing.error.p7s_missing")
    if len(data) > MAX_P7S_BYTES:
        raise BaocaoError("signing.error.p7s_too_large", limit=MAX_P7S_BYTES // 1024)
    if data[:1] == b"\x30" or data.lstrip()[:11] == b"-----BEGIN ":
        return data
    raise BaocaoError("signing.error.p7s_not_signature")
