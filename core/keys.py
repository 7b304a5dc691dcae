"""Keys derived from ``settings.secret_key`` for data encrypted at rest.

One HKDF-SHA256 derivation, each use with its own ``info`` label, so that two uses never share a key:
the two-factor secrets and recovery codes (core.accounts.mfa), the organisation seals' private keys
(core.signatures.signing). Changing ``secret_key`` makes everything encrypted under it unreadable.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def derive(secret_key: str, info: bytes) -> bytes:
    """32 bytes for the use named by ``info`` (a label that includes a version, e.g. ``.../v1``)."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive((secret_key or "").encode("utf-8"))


def fernet(secret_key: str, info: bytes) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(derive(secret_key, info)))
