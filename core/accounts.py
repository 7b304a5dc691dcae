"""Users, logging in and server-side sessions.

The session cookie holds a random token; the database holds only its SHA-256,
so a copy of the database does not hand out live sessions. Logging out, an
idle timeout or the absolute lifetime end a session on the server.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import string
import unicodedata
from dataclasses import dataclass

from core import passwords
from core.db import transaction
from core.errors import ValidationError
from core.models import Session, Unit, User, utcnow

USERNAME_CHARS = set(string.ascii_lowercase + string.digits + "._-")


def normalise_username(username: str) -> str:
    return unicodedata.normalize("NFC", (username or "").strip()).lower()


def validate_new_password(password: str) -> None:
    if not (passwords.MIN_LENGTH <= passwords.length(password) <= passwords.MAX_LENGTH):
        raise ValidationError({"password": "account.error.password_length"})


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
        validate_new_password(password)
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


def authenticate(username: str, password: str) -> User | None:
    """The user for these credentials, or None. Unknown users cost the same time."""
    user = User.get_or_none(User.username == normalise_username(username))
    if user is None or not user.is_active:
        passwords.dummy_verify(password)
        return None
    if not passwords.verify_password(password, user.password_hash):
        return None
    with transaction():
        if passwords.needs_rehash(user.password_hash):
            user.password_hash = passwords.hash_password(password)
        # Kept so the user can see when the account was last used before now.
        user.previous_login_at = user.last_login_at
        user.last_login_at = utcnow()
        user.save()
    return user


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def start_session(user: User, client_address: str | None = None, user_agent: str | None = None) -> str:
    """Create a session row; return the token for the cookie (never stored as such)."""
    token = secrets.token_urlsafe(32)
    with transaction():
        Session.create(token_hash=_digest(token), user=user, client_address=(client_address or "")[:64],
                       user_agent=(user_agent or "")[:255])
    return token


@dataclass(frozen=True)
class SessionState:
    user: User | None
    expired: bool = False  # a session existed but timed out: tell the user so


def resume_session(token: str | None, *, idle_minutes: int, lifetime_hours: int,
                   now: dt.datetime | None = None) -> SessionState:
    """Look up the session for a cookie token, ending it if it has timed out."""
    if not token or len(token) > 100:
        return SessionState(None)
    now = now or utcnow()
    session = (Session.select(Session, User).join(User)
               .where(Session.token_hash == _digest(token)).first())
    if session is None:
        return SessionState(None)
    idle_limit = now - dt.timedelta(minutes=idle_minutes)
    life_limit = now - dt.timedelta(hours=lifetime_hours)
    if session.last_seen_at < idle_limit or session.created_at < life_limit or not session.user.is_active:
        with transaction():
            Session.delete().where(Session.id == session.id).execute()
        return SessionState(None, expired=True)
    # Refresh the idle clock at most once a minute: one write per minute, not per request.
    if now - session.last_seen_at > dt.timedelta(minutes=1):
        with transaction():
            Session.update(last_seen_at=now).where(Session.id == session.id).execute()
    return SessionState(session.user)


def end_session(token: str | None) -> None:
    if token:
        with transaction():
            Session.delete().where(Session.token_hash == _digest(token)).execute()


def purge_expired_sessions(*, idle_minutes: int, lifetime_hours: int, now: dt.datetime | None = None) -> int:
    now = now or utcnow()
    with transaction():
        return (Session.delete()
                .where((Session.last_seen_at < now - dt.timedelta(minutes=idle_minutes))
                       | (Session.created_at < now - dt.timedelta(hours=lifetime_hours)))
                .execute())


def set_language(user: User, language: str) -> None:
    with transaction():
        User.update(language=language).where(User.id == user.id).execute()
