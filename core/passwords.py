"""Password hashing with Argon2id from ``cryptography`` (security.md AUTH-01, §6).

Parameters are OWASP's minimum (m = 19 MiB, t = 2, p = 1); the PHC string stored
is self-describing, so raising them later re-hashes at the next login.
"""

from __future__ import annotations

import os
import re
import unicodedata

from cryptography.exceptions import InvalidKey, UnsupportedAlgorithm
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

from core.errors import StartupError

MEMORY_KIB = 19456
ITERATIONS = 2
LANES = 1
SALT_BYTES = 16
HASH_BYTES = 32
MIN_LENGTH, MAX_LENGTH = 8, 128
_PHC_PARAMS = re.compile(r"^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$")


def _kdf(salt: bytes) -> Argon2id:
    return Argon2id(salt=salt, length=HASH_BYTES, iterations=ITERATIONS, lanes=LANES,
                    memory_cost=MEMORY_KIB)


def _encode(password: str) -> bytes:
    # NFC: Vietnamese keyboards send either precomposed letters or base letters
    # with combining marks ("Unicode tổ hợp"); the same typed password must match.
    return unicodedata.normalize("NFC", password).encode("utf-8")


def hash_password(password: str) -> str:
    return _kdf(os.urandom(SALT_BYTES)).derive_phc_encoded(_encode(password))


def length(password: str) -> int:
    """Characters as the rules count them (after NFC, whatever the keyboard sent)."""
    return len(unicodedata.normalize("NFC", password))


def verify_password(password: str, encoded: str) -> bool:
    # Bound the work an attacker can ask for (the raw length first, before normalising).
    if len(password) > 4 * MAX_LENGTH or length(password) > MAX_LENGTH:
        return False
    try:
        Argon2id.verify_phc_encoded(_encode(password), encoded)
        return True
    except (InvalidKey, ValueError):
        return False


def needs_rehash(encoded: str) -> bool:
    match = _PHC_PARAMS.match(encoded or "")
    if not match:
        return True
    m, t, p = map(int, match.groups())
    return m < MEMORY_KIB or t < ITERATIONS or p != LANES


# Verified against when the username is unknown, so both answers cost the same time.
_DUMMY = None


def dummy_verify(password: str) -> None:
    global _DUMMY  # a constant computed once per process, not state that varies
    if _DUMMY is None:
        _DUMMY = hash_password("not-a-real-password")
    verify_password(password, _DUMMY)


def self_test() -> None:
    """Fail start-up with a clear message where OpenSSL lacks Argon2id (< 3.2)."""
    try:
        if not verify_password("self-test", hash_password("self-test")):
            raise StartupError("startup.error.argon2")
    except UnsupportedAlgorithm:
        raise StartupError("startup.error.argon2") from None
