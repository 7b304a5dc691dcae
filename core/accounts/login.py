"""Users, logging in and server-side sessions.

The session cookie holds a random token; the database holds only its SHA-256,
so a copy of the database does not hand out live sessions. Logging out, an
idle timeout or the absolute lifetime end a session on the server; system
administrators get a shorter idle timeout (security.md SESS-04).

Logging in is guarded twice (AUTH-06): an account is locked after a number of
consecutive failures, and each client address may try only so many times a
minute. Both are counted in the database, so every worker process agrees. A
locked, disabled or unknown account gets the same answer as a wrong password
(AUTH-07).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import math
import secrets
import string
import unicodedata
from dataclasses import dataclass

from peewee import BooleanField, Case, CharField, DateTimeField

from core import audit
from core.accounts import api_tokens, passwords
from core.accounts.mfa_enrolment import is_enrolled
from core.db import CoreModel, Prepared, db, is_sqlite, transaction
from core.errors import ValidationError
from core.models import Session, Unit, User, utcnow
from core.accounts.passwords import check_password_policy
from core.settings import Settings

log = logging.getLogger("baocao.accounts")

USERNAME_CHARS = set(string.ascii_lowercase + string.digits + "._-")
RATE_WINDOW = dt.timedelta(minutes=1)
# Rows older than this are purged. The rate limit needs one minute of them; the rest
# lets an administrator see who tried an account before it was locked.
LOGIN_ATTEMPT_RETENTION = dt.timedelta(days=30)


class LoginAttempt(CoreModel):
    """One login attempt from one client address (migration 0004), for the rate limit."""

    address = CharField(max_length=64)  # request.client.host: no X-Forwarded-For is trusted
    attempted_at = DateTimeField(default=utcnow)
    username = CharField(max_length=64)  # as typed (normalised); may name no account
    success = BooleanField(default=False)

    class Meta:
        indexes = ((("address", "attempted_at"), False), (("attempted_at",), False))


def normalise_username(username: str) -> str:
    return unicodedata.normalize("NFC", (username or "").strip()).lower()


def create_user(username: str, full_name: str, password: str, unit: Unit, *, is_admin=False,
                must_change_password=False, language=None) -> User:
    username = normalise_username(username)
    errors = {}
    if not (3 <= len(username) <= 64) or set(username) - USERNAME_CHARS:
        errors["username"] = "account.error.username"
    elif User.select().where(User.username == username).exists():
        errors["username"] = "account.error.username_taken"
    if not full_name.strip():
        errors["full_name"] = "form.error.required"
    try:
        # An unsaved User carries the names the password must not be built on.
        check_password_policy(password, user=User(username=username, full_name=full_name), unit=unit)
    except ValidationError as exc:
        errors.update(exc.errors)
    if errors:
        raise ValidationError(errors)
    with transaction():
        return User.create(username=username, full_name=unicodedata.normalize("NFC", full_name.strip()),
                           password_hash=passwords.hash_password(password), unit=unit, is_admin=is_admin,
                           must_change_password=must_change_password, language=language)


def random_password(length: int = 16) -> str:
    """Readable random password: no look-alike characters (0/O, 1/l/I)."""
    alphabet = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    return "".join(secrets.choice(alphabet) for _ in range(length))


def _not_locked(now: dt.datetime):
    return User.locked_until.is_null() | (User.locked_until <= now)


def is_locked(user: User, now: dt.datetime | None = None) -> bool:
    """Whether the account is locked out now (for the account screens; never tell a visitor)."""
    return user.locked_until is not None and user.locked_until > (now or utcnow())


def temporary_password_expired(user: User, now: dt.datetime | None = None) -> bool:
    """An administrator-issued password not replaced in time no longer logs in (AUTH-05)."""
    expires = getattr(user, "password_expires_at", None)
    return bool(user.must_change_password and expires is not None and expires <= (now or utcnow()))


def unlock(user: User | int) -> None:
    """An administrator's unlock: the account may log in again at once, with a fresh count."""
    user_id = user if isinstance(user, int) else user.id
    with transaction():
        User.update(failed_logins=0, locked_until=None).where(User.id == user_id).execute()
    log.info("account %d unlocked", user_id)


def _count_failure(user: User, threshold: int, minutes: int, now: dt.datetime) -> None:
    """One more consecutive failure; the one reaching ``threshold`` locks the account.

    Counted in SQL, not read-modify-write in Python, so parallel wrong guesses from
    several workers are all counted. An expired lock starts the count again at 1.
    """
    with transaction():
        User.update(failed_logins=Case(None, [(User.locked_until.is_null(), User.failed_logins + 1)], 1),
                    locked_until=None).where((User.id == user.id) & _not_locked(now)).execute()
        locked = (User.update(locked_until=now + dt.timedelta(minutes=minutes))
                  .where((User.id == user.id) & (User.failed_logins >= threshold) & User.locked_until.is_null())
                  .execute())
    if locked:
        log.warning("account %d locked for %d minutes after %d failed logins", user.id, minutes, threshold)
        audit.record("auth.locked", unit=user.unit_id, object_type="user", object_id=user.id, result="denied",
                     details={"failed_logins": threshold, "minutes": minutes})


def authenticate(username: str, password: str, *, lockout_threshold: int = Settings.lockout_threshold,
                 lockout_minutes: int = Settings.lockout_minutes, now: dt.datetime | None = None) -> User | None:
    """The user for these credentials, or None.

    Unknown, disabled and locked accounts are refused like a wrong password and cost
    the same time (a dummy hash). A locked account is refused even with the right
    password; a successful login resets the failure count.
    """
    now = now or utcnow()
    user = User.get_or_none(User.username == normalise_username(username))
    if user is None or not user.is_active or is_locked(user, now) or temporary_password_expired(user, now):
        passwords.dummy_verify(password)
        return None
    if not passwords.verify_password(password, user.password_hash):
        _count_failure(user, lockout_threshold, lockout_minutes, now)
        return None
    changes = {User.failed_logins: 0, User.locked_until: None,
               # Kept so the user can see when the account was last used before now.
               User.previous_login_at: User.last_login_at, User.last_login_at: now}
    if is_enrolled(user):  # the count goes on until the second factor is right too (core.accounts.mfa)
        del changes[User.failed_logins], changes[User.locked_until]
    if passwords.needs_rehash(user.password_hash):
        changes[User.password_hash] = passwords.hash_password(password)  # slow: outside the transaction
    with transaction():
        # Only if no parallel wrong guess locked the account since it was read above.
        done = User.update(changes).where((User.id == user.id) & _not_locked(now)).execute()
    return User.get_by_id(user.id) if done else None


@dataclass(frozen=True)
class LoginResult:
    user: User | None
    retry_after: int | None = None  # seconds: the client address is over its rate limit
    mfa_pending: bool = False  # the password was right; a second factor must follow (core.accounts.mfa)


def _serialise_address(address: str) -> None:
    """Make one address's attempts take turns, so N workers cannot let N extra through.
    SQLite needs nothing: its transactions begin IMMEDIATE and so take turns already."""
    if not is_sqlite():
        key = int.from_bytes(hashlib.sha256(f"login:{address}".encode()).digest()[:8], "big", signed=True)
        db.execute_sql("SELECT pg_advisory_xact_lock(%s)", (key,))


def login(username: str, password: str, address: str | None, *, rate_per_minute: int,
          lockout_threshold: int = Settings.lockout_threshold, lockout_minutes: int = Settings.lockout_minutes,
          now: dt.datetime | None = None) -> LoginResult:
    """Rate-limit the client address, then ``authenticate``.

    An address that made ``rate_per_minute`` attempts in the last minute is refused
    without checking the password (no Argon2 work for it either); the refusal is not
    counted, so ``retry_after`` stays true however often it retries.
    """
    now = now or utcnow()
    address = (address or "unknown")[:64]
    with transaction():
        _serialise_address(address)
        recent = [row.attempted_at for row in
                  LoginAttempt.select(LoginAttempt.attempted_at)
                  .where((LoginAttempt.address == address) & (LoginAttempt.attempted_at > now - RATE_WINDOW))
                  .order_by(LoginAttempt.attempted_at.desc()).limit(rate_per_minute)]
        if len(recent) >= rate_per_minute:
            # The oldest of those must leave the window before the next attempt is let through.
            wait = (recent[-1] + RATE_WINDOW - now).total_seconds()
            log.warning("login rate limit reached for address %r", address)
            audit.record("auth.login_failed", result="denied",
                         details={"username": normalise_username(username)[:64], "reason": "rate_limit"})
            return LoginResult(None, retry_after=max(1, math.ceil(wait)))
        attempt = LoginAttempt.create(address=address, attempted_at=now,
                                      username=normalise_username(username)[:64], success=False)
    user = authenticate(username, password, lockout_threshold=lockout_threshold,
                        lockout_minutes=lockout_minutes, now=now)
    pending = False
    with transaction():
        if user is not None:
            pending = is_enrolled(user)
            LoginAttempt.update(success=True).where(LoginAttempt.id == attempt.id).execute()
            audit.record("auth.login", actor=user, object_type="user", object_id=user.id,
                         details={"second_factor": "pending"} if pending else None)
        else:
            # The name typed is kept (never the password): it shows who is being guessed,
            # and an existing account sees the failed attempts in its own history.
            target = User.get_or_none(User.username == normalise_username(username))
            audit.record("auth.login_failed", result="failed", unit=target.unit_id if target else None,
                         object_type="user" if target else "", object_id=target.id if target else "",
                         details={"username": normalise_username(username)[:64]})
    return LoginResult(user, mfa_pending=pending)


def purge_login_attempts(*, now: dt.datetime | None = None) -> int:
    now = now or utcnow()
    with transaction():
        return LoginAttempt.delete().where(LoginAttempt.attempted_at < now - LOGIN_ATTEMPT_RETENTION).execute()


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def start_session(user: User, client_address: str | None = None, user_agent: str | None = None, *,
                  mfa_pending: bool = False, reauth_at: dt.datetime | None = None,
                  max_sessions: int = Settings.max_sessions_per_person) -> str:
    """Create a session row; return the token for the cookie (never stored as such).

    A person holds at most ``max_sessions`` sessions (SESS-07; 0: no limit): when they already
    hold that many, the least recently used end, in the same transaction, audited as
    ``session.end`` by "session_limit". A session waiting for its second factor neither counts nor
    ends one: a password alone must not push the person's devices out."""
    token = secrets.token_urlsafe(32)
    with transaction():
        if max_sessions > 0 and not mfa_pending:
            held = (Session.select(Session.id).where((Session.user == user) & ~Session.mfa_pending)
                    .order_by(Session.last_seen_at.desc(), Session.id.desc()))
            oldest = [row.id for row in held.offset(max_sessions - 1)]  # those past the newest N - 1
            if oldest:
                ended = Session.delete().where(Session.id.in_(oldest)).execute()
                audit.record("session.end", actor=user, object_type="user", object_id=user.id,
                             details={"by": "session_limit", "sessions_ended": ended})
        Session.create(token_hash=_digest(token), user=user, client_address=(client_address or "")[:64],
                       user_agent=(user_agent or "")[:255], mfa_pending=mfa_pending, reauth_at=reauth_at)
    return token


# A session waiting for the second factor lasts this long at most (core.accounts.mfa).
MFA_PENDING_LIFETIME = dt.timedelta(minutes=10)


@dataclass(frozen=True)
class SessionState:
    user: User | None
    expired: bool = False  # a session existed but timed out: tell the user so
    pending_user: User | None = None  # password given, second factor not yet: logged out but for that
    session_id: int | None = None
    reauth_at: dt.datetime | None = None


# Every request asks it: compiled once (core.db.Prepared).
_SESSION = Prepared(lambda p: Session.select(Session, User, Unit).join(User).join(Unit)
                    .where(Session.token_hash == p.token_hash).limit(1))


def resume_session(token: str | None, *, idle_minutes: int, lifetime_hours: int,
                   admin_idle_minutes: int | None = None, now: dt.datetime | None = None) -> SessionState:
    """Look up the session for a cookie token, ending it if it has timed out.

    A system administrator's session times out after ``admin_idle_minutes`` when that
    is shorter (security.md SESS-04); the absolute lifetime is the same for everyone.
    """
    if not token or len(token) > 100:
        return SessionState(None)
    now = now or utcnow()
    # The user's unit comes in the same query: every request needs it (its rights, its plugins).
    session = _SESSION.first(token_hash=_digest(token))
    if session is None:
        return SessionState(None)
    idle = dt.timedelta(minutes=idle_minutes)
    if admin_idle_minutes and session.user.is_admin:
        idle = min(idle, dt.timedelta(minutes=admin_idle_minutes))
    idle_limit = now - idle
    life_limit = now - dt.timedelta(hours=lifetime_hours)
    if session.mfa_pending:
        life_limit = max(life_limit, now - MFA_PENDING_LIFETIME)
    if session.last_seen_at < idle_limit or session.created_at < life_limit or not session.user.is_active:
        with transaction():
            Session.delete().where(Session.id == session.id).execute()
        return SessionState(None, expired=True)
    # Refresh the idle clock at most once a minute (one write per minute, not per request),
    # or a tenth of the idle time when that is shorter: a 5-minute timeout then loses 30 s, not 1 min.
    if now - session.last_seen_at > min(dt.timedelta(minutes=1), idle / 10):
        with transaction():
            Session.update(last_seen_at=now).where(Session.id == session.id).execute()
    if session.mfa_pending:
        return SessionState(None, pending_user=session.user, session_id=session.id)
    return SessionState(session.user, session_id=session.id, reauth_at=session.reauth_at)


def end_session(token: str | None) -> None:
    if token:
        with transaction():
            Session.delete().where(Session.token_hash == _digest(token)).execute()


def logout(token: str | None) -> None:
    """End the session behind this cookie token and record who left."""
    if not token:
        return
    with transaction():
        session = Session.select(Session, User).join(User).where(Session.token_hash == _digest(token)).first()
        if session is None:
            return
        Session.delete().where(Session.id == session.id).execute()
        audit.record("auth.logout", actor=session.user, object_type="user", object_id=session.user_id)


def end_credentials(user_id: int, *, keep_session_id: int | None = None,
                    now: dt.datetime | None = None) -> tuple[int, int]:
    """End the account's sessions (all but ``keep_session_id``) and revoke its API tokens:
    what a password change or reset must do, inside the caller's transaction (AUTH-05, SESS-05).
    Returns (sessions ended, tokens revoked) for the caller's audit event."""
    query = Session.delete().where(Session.user == user_id)
    if keep_session_id is not None:
        query = query.where(Session.id != keep_session_id)
    with transaction():
        return query.execute(), api_tokens.revoke_all_of(user_id, now=now)


def change_password(user_id: int, current: str, new: str, confirm: str, *, keep_session_id: int | None = None,
                    lockout_threshold: int = Settings.lockout_threshold,
                    lockout_minutes: int = Settings.lockout_minutes, now: dt.datetime | None = None) -> None:
    """The user's own change: the current password first, then the policy (AUTH-05).

    A wrong current password counts towards the lockout like a wrong login (AUTH-06), and a
    locked account changes nothing. Once changed, the user's other sessions end and their API
    tokens are revoked, in the same transaction as the change: whoever held the old password
    loses what it gave them (``keep_session_id`` is the session making the change)."""
    now = now or utcnow()
    user = User.get_by_id(user_id)
    if is_locked(user, now) or not user.is_active:
        passwords.dummy_verify(current)
        raise ValidationError({"current": "reauth.error.locked"})
    errors = {}
    if not passwords.verify_password(current, user.password_hash):
        errors["current"] = "account.error.current_password"
        if current:  # an empty field is not a guess
            with transaction():
                _count_failure(user, lockout_threshold, lockout_minutes, now)
                audit.record("auth.password_changed", actor=user, object_type="user", object_id=user.id,
                             result="failed", details={"reason": "current_password"})
    try:
        check_password_policy(new, user=user)
    except ValidationError as exc:
        errors["new"] = exc.errors["password"]
    if new != confirm:
        errors.setdefault("confirm", "account.error.confirm")
    if new and new == current:
        errors.setdefault("new", "account.error.same_password")
    if errors:
        raise ValidationError(errors)
    new_hash = passwords.hash_password(new)  # slow: outside the transaction
    with transaction():
        User.update(password_hash=new_hash, must_change_password=False, password_expires_at=None,
                    failed_logins=0).where(User.id == user.id).execute()  # temporary one gone
        ended, revoked = end_credentials(user.id, keep_session_id=keep_session_id, now=now)
        audit.record("auth.password_changed", actor=user, object_type="user", object_id=user.id,
                     details={"sessions_ended": ended, "tokens_revoked": revoked})


def purge_expired_sessions(*, idle_minutes: int, lifetime_hours: int, admin_idle_minutes: int | None = None,
                           now: dt.datetime | None = None) -> int:
    now = now or utcnow()
    expired = ((Session.last_seen_at < now - dt.timedelta(minutes=idle_minutes))
               | (Session.created_at < now - dt.timedelta(hours=lifetime_hours)))
    if admin_idle_minutes:
        admins = User.select(User.id).where(User.is_admin == True)  # noqa: E712 — SQL, not Python
        expired |= (Session.last_seen_at < now - dt.timedelta(minutes=admin_idle_minutes)) & Session.user.in_(admins)
    with transaction():
        return Session.delete().where(expired).execute()


def set_language(user: User, language: str) -> None:
    with transaction():
        User.update(language=language).where(User.id == user.id).execute()
