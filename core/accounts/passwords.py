"""Password hashing with Argon2id from ``cryptography`` (security.md AUTH-01, §6), and
the rules a new password must meet (AUTH-03, AUTH-04).

Parameters are OWASP's minimum (m = 19 MiB, t = 2, p = 1); the PHC string stored
is self-describing, so raising them later re-hashes at the next login.
"""

from __future__ import annotations

import os
import re
import threading
import unicodedata
from functools import lru_cache
from pathlib import Path

from cryptography.exceptions import InvalidKey, UnsupportedAlgorithm
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

from core.errors import StartupError, ValidationError
from core.i18n import fold

MEMORY_KIB = 19456
ITERATIONS = 2
LANES = 1
SALT_BYTES = 16
HASH_BYTES = 32
MIN_LENGTH, MAX_LENGTH = 8, 128
_PHC_PARAMS = re.compile(r"^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$")
# Hashes computed at once in one process. Each takes MEMORY_KIB of memory, and a burst of logins
# (a commune office's morning, bench/load.py) ran one per worker thread: 40 × 19 MiB, and glibc
# keeps such a peak for the life of the process (a worker stayed at ~800 MB). Two at once keep a
# worker near its resting size and leave the other threads' pages their share of the cores; the
# logins of a burst wait their turn instead (about 30 ms each).
HASHES_AT_ONCE = 2
_HASHING = threading.BoundedSemaphore(HASHES_AT_ONCE)


def _kdf(salt: bytes) -> Argon2id:
    return Argon2id(salt=salt, length=HASH_BYTES, iterations=ITERATIONS, lanes=LANES,
                    memory_cost=MEMORY_KIB)


def _encode(password: str) -> bytes:
    # NFC: Vietnamese keyboards send either precomposed letters or base letters
    # with combining marks ("Unicode tổ hợp"); the same typed password must match.
    return unicodedata.normalize("NFC", password).encode("utf-8")


def hash_password(password: str) -> str:
    with _HASHING:
        return _kdf(os.urandom(SALT_BYTES)).derive_phc_encoded(_encode(password))


def length(password: str) -> int:
    """Characters as the rules count them (after NFC, whatever the keyboard sent)."""
    return len(unicodedata.normalize("NFC", password))


def verify_password(password: str, encoded: str) -> bool:
    # Bound the work an attacker can ask for (the raw length first, before normalising).
    if len(password) > 4 * MAX_LENGTH or length(password) > MAX_LENGTH:
        return False
    try:
        with _HASHING:
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


# -- what a new password must be (security.md AUTH-03, AUTH-04) -----------------------------------

VIETNAMESE_LIST = Path(__file__).with_name("data") / "passwords_vi.txt"
# The system's own names: the first words anyone tries against it.
SYSTEM_WORDS = ("baocao", "hệ thống báo cáo", "hệ thống thông tin báo cáo", "e-report", "ereport")
# Words that begin a unit's name; "Tỉnh Quảng Trị" also gives "Quảng Trị".
UNIT_PREFIXES = ("uy ban nhan dan", "ubnd", "hoi dong nhan dan", "hdnd", "thanh pho", "thi xa", "thi tran",
                 "dac khu", "tinh", "tp", "huyen", "quan", "xa", "phuong", "so", "van phong", "chi cuc",
                 "cuc", "ban", "trung tam", "phong")


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """zxcvbn's 30 000 most common passwords and the shipped Vietnamese list, loaded once.

    zxcvbn's list is drawn from real password leaks and kept with the library, which
    beats a list copied into this repository; only its data module is used.
    """
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    words = set(FREQUENCY_LISTS["passwords"])
    for line in VIETNAMESE_LIST.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            words.add(fold(line))
    return frozenset(words)


def _squeeze(text: str) -> str:
    """Letters and digits only: spaces, punctuation and symbols go."""
    return "".join(c for c in text if c.isalnum())


def _trim(text: str, keep) -> str:
    start, end = 0, len(text)
    while start < end and not keep(text[start]):
        start += 1
    while end > start and not keep(text[end - 1]):
        end -= 1
    return text[start:end]


def _core(folded: str) -> str:
    """The word inside a password: digits, spaces and symbols around it dropped, spaces and
    symbols inside it too ("quang tri 2025!" → "quangtri", "nguyen.van.an90" → "nguyenvanan")."""
    return _squeeze(_trim(folded, str.isalpha))


def _forms(password: str) -> set[str]:
    """How a password is compared with the lists: folded as typed, without spaces, without the
    symbols around it ("abc123!!" → "abc123"), without the digits too ("p@ssw0rd1" → "p@ssw0rd"),
    and its core."""
    folded = fold(unicodedata.normalize("NFC", password)).strip()
    forms = {folded, "".join(folded.split()), _trim(folded, str.isalnum), _trim(folded, str.isalpha),
             _core(folded)}
    return {f for f in forms if f}


def _words_of_name(name: str) -> set[str]:
    """A name as a context word, whole and without the administrative words in front."""
    folded = " ".join(fold(name or "").replace("-", " ").split())
    words = {folded}
    changed = True
    while changed:
        changed = False
        for prefix in UNIT_PREFIXES:
            if folded.startswith(prefix + " ") and len(folded) > len(prefix) + 1:
                folded = folded[len(prefix) + 1:]
                words.add(folded)
                changed = True
    return words


def context_words(*, user=None, unit=None) -> set[str]:
    """Words a password must not be built on: the user's names, their unit and the units
    above it (up to the province), and the system's name, squeezed to letters and digits."""
    raw: set[str] = set(SYSTEM_WORDS)
    if user is not None:
        username = getattr(user, "username", "") or ""
        full_name = getattr(user, "full_name", "") or ""
        raw |= {username, *re.split(r"[._-]+", username)}
        raw |= {full_name, *(part for part in full_name.split() if len(part) >= 3)}
        if unit is None and getattr(user, "unit_id", None) is not None:
            unit = user.unit
    seen = 0
    while unit is not None and seen < 10:  # a hierarchy is a few levels deep; never loop forever
        raw |= _words_of_name(unit.name)
        raw |= {getattr(unit, name, None) or "" for name in ("code", "admin_code", "agency_code")}
        unit = unit.parent if getattr(unit, "parent_id", None) is not None else None
        seen += 1
    words = set()
    for word in raw:
        folded = fold(word)
        words |= {_squeeze(folded), "".join(c for c in folded if c.isalpha())}
    # Two letters or fewer ("44", "QT") are no word to build on; the length rule covers them.
    return {w for w in words if len(w) >= 3}


def check_password_policy(password: str, *, user=None, unit=None) -> None:
    """Refuse a new password that is too short or long, on a common-password list, or built
    on the user's or the unit's names. Raises ``ValidationError({"password": key})``.

    ``user`` may be an unsaved ``User`` (only ``username``, ``full_name`` and ``unit`` are read).
    """
    if not (MIN_LENGTH <= length(password) <= MAX_LENGTH):
        raise ValidationError({"password": "account.error.password_length"})
    forms = _forms(password)
    core = _core(fold(unicodedata.normalize("NFC", password)).strip())
    # Context first: "QuangTri2025!" is better explained by the province than by a list.
    if core and core in context_words(user=user, unit=unit):
        raise ValidationError({"password": "account.error.password_context"})
    if forms & common_passwords():
        raise ValidationError({"password": "account.error.password_common"})
