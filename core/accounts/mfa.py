"""Two-factor authentication: TOTP (RFC 6238) with one-time recovery codes (security.md AUTH-08).

A user enrolls by scanning a QR code (or typing the secret) into an authenticator
app and confirming one code; from then on a login needs the password and a code.
Ten recovery codes are shown once at enrollment, for a lost phone; each works once.

What the database holds is not enough to log in:

* the TOTP secret is encrypted with Fernet, under a key derived (HKDF-SHA256) from
  ``settings.secret_key``, so a copy of the database alone does not yield it;
* a recovery code is kept only as an HMAC-SHA256 under another key derived from it.

Changing ``secret_key`` therefore makes every enrollment unusable: the users
affected must have 2FA turned off (``disable``) and enroll again.

A code is accepted for the current 30-second step and one step either side (clock
drift), and never twice: ``last_step`` remembers the newest step used, and the
update that claims a step is one SQL statement that only succeeds while the step
is still newer, so two parallel requests with one code cannot both win. A recovery
code is claimed the same way (``used_at IS NULL`` in the UPDATE).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import re
import secrets
import unicodedata

import pyotp
from cryptography.fernet import Fernet, InvalidToken

from core import audit, keys
from core.accounts import login as accounts
from core.accounts.access import ADMIN_CODE
from core.accounts.plugin_grants import from_plugins
from core.accounts.mfa_enrolment import RecoveryCode, Totp, is_enrolled
from core.db import transaction
from core.errors import ValidationError
from core.models import Session, User, utcnow

log = logging.getLogger("baocao.mfa")

ISSUER = "baocao"
STEP_SECONDS = 30
DIGITS = 6
WINDOW = 1  # steps accepted either side of the current one
RECOVERY_COUNT = 10
# Lower case without look-alikes (0/o, 1/l/i): read off paper and typed on a phone.
RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
RECOVERY_LENGTH = 8  # shown as xxxx-xxxx; 31^8 ≈ 2^39.6, and every wrong guess counts towards the lockout
MAX_INPUT = 32


# -- keys ---------------------------------------------------------------------------------------

def _derive(secret_key: str, purpose: bytes) -> bytes:
    return keys.derive(secret_key, b"baocao/mfa/" + purpose)


def _fernet(secret_key: str) -> Fernet:
    return keys.fernet(secret_key, b"baocao/mfa/totp-secret/v1")


def encrypt_secret(secret: str, secret_key: str) -> str:
    return _fernet(secret_key).encrypt(secret.encode("ascii")).decode("ascii")


def decrypt_secret(token: str, secret_key: str) -> str | None:
    try:
        return _fernet(secret_key).decrypt(token.encode("ascii")).decode("ascii")
    except (InvalidToken, ValueError):
        return None


def _recovery_hash(code: str, secret_key: str) -> str:
    return hmac.new(_derive(secret_key, b"recovery-code/v1"), code.encode("ascii"), hashlib.sha256).hexdigest()


# -- codes --------------------------------------------------------------------------------------

def step_at(now: dt.datetime) -> int:
    """The 30-second step of a naive UTC time."""
    return int(now.replace(tzinfo=dt.timezone.utc).timestamp()) // STEP_SECONDS


def _normalise(code: str | None) -> str:
    text = unicodedata.normalize("NFKC", str(code or ""))[:MAX_INPUT].lower()
    return re.sub(r"[\s\-]", "", text)


def _is_totp(code: str) -> bool:
    return len(code) == DIGITS and code.isascii() and code.isdigit()


def _is_recovery(code: str) -> bool:
    return len(code) == RECOVERY_LENGTH and all(c in RECOVERY_ALPHABET for c in code)


def _matching_step(secret: str, code: str, now: dt.datetime, after: int) -> int | None:
    """The newest step within the window whose code is ``code`` and that is newer than ``after``."""
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)
    current = step_at(now)
    for step in range(current + WINDOW, current - WINDOW - 1, -1):
        if step > after and hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def group_secret(secret: str) -> str:
    """``ABCD EFGH …``: easier to type than 32 letters in a row."""
    return " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))


def provisioning_uri(secret: str, username: str) -> str:
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).provisioning_uri(name=username,
                                                                                    issuer_name=ISSUER)


def qr_svg(uri: str, title: str = "") -> str:
    """The otpauth URI as an inline SVG QR code (no style attribute: the CSP allows it)."""
    import segno

    return segno.make(uri, error="m").svg_inline(scale=4, dark="#000", light="#fff", svgclass="qr-code",
                                                 lineclass=None, omitsize=True, title=title or None)


def _new_recovery_codes() -> list[str]:
    codes: set[str] = set()
    while len(codes) < RECOVERY_COUNT:
        codes.add("".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_LENGTH)))
    return sorted(codes)


def _store_recovery_codes(user_id: int, secret_key: str, now: dt.datetime) -> list[str]:
    """Replace the user's recovery codes (inside the caller's transaction); return them as shown."""
    codes = _new_recovery_codes()
    RecoveryCode.delete().where(RecoveryCode.user == user_id).execute()
    RecoveryCode.insert_many([{"user": user_id, "code_hash": _recovery_hash(c, secret_key), "created_at": now}
                              for c in codes]).execute()
    return [f"{c[:4]}-{c[4:]}" for c in codes]


# -- state --------------------------------------------------------------------------------------

def _user_id(user) -> int:
    return user if isinstance(user, int) else user.id


def mfa_required(user, access, require_admin_mfa: bool = True) -> bool:
    """Whether this user must use 2FA: system administrators, anyone holding ``core.unit.admin``
    somewhere, and anyone holding a role a plugin grants by its own records (a department's
    administrators named by a delegation's decision, hook ``role_grants``), when the setting
    ``require_admin_mfa`` is on."""
    if not require_admin_mfa or user is None:
        return False
    if user.is_admin:
        return True
    return access is not None and (access.roots(ADMIN_CODE) != [] or bool(from_plugins(access.grants)))


def status(user) -> dict:
    row = Totp.get_or_none(Totp.user == _user_id(user))
    enrolled = row is not None and row.confirmed_at is not None
    left = (RecoveryCode.select().where((RecoveryCode.user == _user_id(user)) & RecoveryCode.used_at.is_null())
            .count()) if enrolled else 0
    return {"enrolled": enrolled, "confirmed_at": row.confirmed_at if enrolled else None, "codes_left": left}


# -- enrollment ---------------------------------------------------------------------------------

def begin_enrollment(user, secret_key: str) -> tuple[str, str]:
    """(secret, otpauth URI) to show the user. An enrollment already begun and not yet
    confirmed keeps its secret, so reloading the page shows the same QR code."""
    user_id = _user_id(user)
    with transaction():
        row = Totp.get_or_none(Totp.user == user_id)
        if row is not None and row.confirmed_at is not None:
            raise ValidationError({"code": "mfa.error.already_enrolled"})
        secret = decrypt_secret(row.secret, secret_key) if row is not None else None
        if secret is None:
            secret = pyotp.random_base32()
            Totp.delete().where(Totp.user == user_id).execute()
            Totp.create(user=user_id, secret=encrypt_secret(secret, secret_key))
    username = user.username if not isinstance(user, int) else User.get_by_id(user_id).username
    return secret, provisioning_uri(secret, username)


def confirm_enrollment(user, code: str, secret_key: str, now: dt.datetime | None = None) -> list[str]:
    """Turn 2FA on with a first code from the app; return the 10 recovery codes (shown once)."""
    now = now or utcnow()
    user_id = _user_id(user)
    code = _normalise(code)
    row = Totp.get_or_none((Totp.user == user_id) & Totp.confirmed_at.is_null())
    secret = decrypt_secret(row.secret, secret_key) if row is not None else None
    step = _matching_step(secret, code, now, -1) if secret and _is_totp(code) else None
    if step is None:
        raise ValidationError({"code": "mfa.error.code"})
    with transaction():
        done = (Totp.update(confirmed_at=now, last_step=step)
                .where((Totp.id == row.id) & Totp.confirmed_at.is_null()).execute())
        if not done:  # confirmed in parallel, or begun again
            raise ValidationError({"code": "mfa.error.code"})
        codes = _store_recovery_codes(user_id, secret_key, now)
        audit.record("auth.mfa_enabled", actor=User.get_by_id(user_id), object_type="user", object_id=user_id)
    log.info("two-factor authentication turned on for account %d", user_id)
    return codes


def regenerate_recovery_codes(user, secret_key: str, now: dt.datetime | None = None) -> list[str]:
    """New recovery codes; the old ones stop working."""
    user_id = _user_id(user)
    if not is_enrolled(user_id):
        raise ValidationError({"code": "mfa.error.not_enrolled"})
    with transaction():
        codes = _store_recovery_codes(user_id, secret_key, now or utcnow())
        audit.record("auth.mfa_recovery_codes", actor=User.get_by_id(user_id), object_type="user",
                     object_id=user_id)
    return codes


def disable(user, *, actor=None) -> bool:
    """Turn 2FA off (the secret and the recovery codes are deleted). ``actor``: who did it,
    when not the user (an administrator helping someone who lost their phone)."""
    user_id = _user_id(user)
    with transaction():
        enrolled = is_enrolled(user_id)
        Totp.delete().where(Totp.user == user_id).execute()
        RecoveryCode.delete().where(RecoveryCode.user == user_id).execute()
        if enrolled:
            audit.record("auth.mfa_disabled", actor=actor or User.get_by_id(user_id), object_type="user",
                         object_id=user_id)
    return enrolled


# -- verification -------------------------------------------------------------------------------

def verify(user, code: str, secret_key: str, now: dt.datetime | None = None) -> str | None:
    """"totp" or "recovery" when ``code`` is good and not used before (and it is now used); else None."""
    now = now or utcnow()
    user_id = _user_id(user)
    code = _normalise(code)
    if _is_totp(code):
        row = Totp.get_or_none((Totp.user == user_id) & Totp.confirmed_at.is_null(False))
        if row is None:
            return None
        secret = decrypt_secret(row.secret, secret_key)
        if secret is None:
            log.error("the TOTP secret of account %d cannot be decrypted: was secret_key changed?", user_id)
            return None
        step = _matching_step(secret, code, now, row.last_step)
        if step is None:
            return None
        with transaction():
            # The claim: only one request can move last_step up to this step.
            won = Totp.update(last_step=step).where((Totp.id == row.id) & (Totp.last_step < step)).execute()
        return "totp" if won else None
    if _is_recovery(code) and is_enrolled(user_id):
        with transaction():
            won = (RecoveryCode.update(used_at=now)
                   .where((RecoveryCode.user == user_id) & (RecoveryCode.code_hash == _recovery_hash(code, secret_key))
                          & RecoveryCode.used_at.is_null()).execute())
        if won:
            log.warning("account %d used a recovery code", user_id)
        return "recovery" if won else None
    return None


def _refused(user: User, step: str, lockout_threshold: int, lockout_minutes: int, now: dt.datetime) -> None:
    """A wrong second factor counts towards the same lockout as a wrong password (AUTH-06)."""
    accounts._count_failure(user, lockout_threshold, lockout_minutes, now)
    audit.record("auth.mfa_failed", actor=user, object_type="user", object_id=user.id, result="failed",
                 details={"step": step})


def complete_login(user_id: int, code: str, secret_key: str, *, lockout_threshold: int, lockout_minutes: int,
                   now: dt.datetime | None = None) -> str | None:
    """The second step of a login: "totp"/"recovery" on success (the failure count is reset), else None."""
    now = now or utcnow()
    user = User.get_or_none(User.id == user_id)
    if user is None or not user.is_active:
        return None
    if accounts.is_locked(user, now):
        audit.record("auth.mfa_failed", actor=user, object_type="user", object_id=user.id, result="denied",
                     details={"step": "login", "reason": "locked"})
        return None
    if not _normalise(code):
        return None  # nothing typed: not a guess, not counted
    method = verify(user, code, secret_key, now)
    if method is None:
        _refused(user, "login", lockout_threshold, lockout_minutes, now)
        return None
    with transaction():
        User.update(failed_logins=0, locked_until=None).where(User.id == user.id).execute()
        details = {"second_factor": method}
        if method == "recovery":
            details["recovery_codes_left"] = status(user)["codes_left"]
        audit.record("auth.login", actor=user, object_type="user", object_id=user.id, details=details)
    return method


# -- re-authentication (SESS-06) ----------------------------------------------------------------

def reauthenticate(user_id: int, password: str, code: str, secret_key: str, *, lockout_threshold: int,
                   lockout_minutes: int, now: dt.datetime | None = None) -> dict:
    """Check the password (and a code when enrolled) again. Returns field errors; empty means done.
    Wrong answers count towards the lockout like a login's; a locked account cannot confirm."""
    from core.accounts import passwords

    now = now or utcnow()
    user = User.get_by_id(user_id)
    if accounts.is_locked(user, now) or not user.is_active:
        passwords.dummy_verify(password)
        audit.record("auth.reauth", actor=user, object_type="user", object_id=user.id, result="denied",
                     details={"reason": "locked"})
        return {"form": "reauth.error.locked"}
    if not passwords.verify_password(password, user.password_hash):
        accounts._count_failure(user, lockout_threshold, lockout_minutes, now)
        audit.record("auth.reauth", actor=user, object_type="user", object_id=user.id, result="failed",
                     details={"reason": "password"})
        return {"password": "reauth.error.password"}
    if is_enrolled(user):
        if not _normalise(code):
            return {"code": "mfa.error.code_required"}
        method = verify(user, code, secret_key, now)
        if method is None:
            _refused(user, "reauth", lockout_threshold, lockout_minutes, now)
            return {"code": "mfa.error.code"}
    with transaction():
        User.update(failed_logins=0).where((User.id == user.id) & User.locked_until.is_null()).execute()
        audit.record("auth.reauth", actor=user, object_type="user", object_id=user.id)
    return {}


def rotate_session(token: str, *, reauth_at: dt.datetime | None = None) -> str | None:
    """Give the session behind ``token`` a new token (SESS-02), optionally marking it
    re-authenticated; the old token stops working. Its age and lifetime stay as they were."""
    new = secrets.token_urlsafe(32)
    changes = {Session.token_hash: accounts._digest(new)}
    if reauth_at is not None:
        changes[Session.reauth_at] = reauth_at
    with transaction():
        done = Session.update(changes).where(Session.token_hash == accounts._digest(token or "")).execute()
    return new if done else None


def mark_reauthenticated(session_id: int | None, now: dt.datetime | None = None) -> None:
    if session_id is not None:
        with transaction():
            Session.update(reauth_at=now or utcnow()).where(Session.id == session_id).execute()


def reauth_fresh(reauth_at: dt.datetime | None, minutes: int, now: dt.datetime | None = None) -> bool:
    return reauth_at is not None and reauth_at >= (now or utcnow()) - dt.timedelta(minutes=minutes)
