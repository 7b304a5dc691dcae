"""Personal access tokens for the read-only JSON API (``/api/v1``).

A user creates a token on their account page with a name and an expiry (at most
``MAX_DAYS`` days). The token is shown once, in the answer to the request that made
it; only its SHA-256 is stored, with a short prefix to recognise it in the list.
Tokens start with ``bc_`` so that secret scanners can find one pasted where it
should not be. A token acts as its user with that user's grants at the moment of
the request: a disabled account's tokens stop working at once, a revoked or
expired token is refused, and every creation and revocation is audited.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets

from peewee import BooleanField, CharField, DateTimeField, ForeignKeyField

from core import audit
from core.db import CoreModel, transaction
from core.errors import NotFound, ValidationError
from core.models import User, utcnow

PREFIX = "bc_"
MAX_DAYS = 365
DEFAULT_DAYS = 90
EXPIRY_CHOICES = (7, 30, 90, 180, 365)
MAX_NAME = 100
MAX_ACTIVE_PER_USER = 20
# The last-used time is written at most this often (one write a minute, not one per request).
TOUCH_EVERY = dt.timedelta(minutes=1)
SHOWN_PREFIX = 10  # "bc_" + 7 characters: enough to tell tokens apart, far too little to guess one
TOKEN_RE = re.compile(r"^bc_[A-Za-z0-9_-]{20,80}$")


class ApiToken(CoreModel):
    user = ForeignKeyField(User, backref="api_tokens", on_delete="CASCADE")
    name = CharField(max_length=MAX_NAME)
    token_hash = CharField(max_length=64, unique=True)
    shown_prefix = CharField(max_length=16)
    created_at = DateTimeField(default=utcnow)
    expires_at = DateTimeField()
    last_used_at = DateTimeField(null=True)
    revoked_at = DateTimeField(null=True)
    can_write = BooleanField(default=False)  # may write a report's values (PUT), not only read

    def state(self, now: dt.datetime | None = None) -> str:
        """"active", "revoked" or "expired"."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at <= (now or utcnow()):
            return "expired"
        return "active"


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def _days(value) -> int | None:
    try:
        days = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return days if 1 <= days <= MAX_DAYS else None


def create_token(user: User, name: str, days, *, now: dt.datetime | None = None,
                 can_write: bool = False) -> tuple[ApiToken, str]:
    """A new token for ``user``; returns the row and the token itself (shown once, never stored)."""
    errors: dict[str, str] = {}
    name = re.sub(r"\s+", " ", str(name or "")).strip()
    if not name:
        errors["name"] = "api.token.error.name_required"
    elif len(name) > MAX_NAME:
        errors["name"] = "api.token.error.name_long"
    days = _days(days)
    if days is None:
        errors["days"] = "api.token.error.days"
    now = now or utcnow()
    with transaction():
        active = (ApiToken.select().where((ApiToken.user == user.id) & ApiToken.revoked_at.is_null()
                                          & (ApiToken.expires_at > now)).count())
        if active >= MAX_ACTIVE_PER_USER and not errors:
            errors["name"] = "api.token.error.too_many"
        if errors:
            raise ValidationError(errors, limit=MAX_ACTIVE_PER_USER)
        secret = PREFIX + secrets.token_urlsafe(32)
        token = ApiToken.create(user=user.id, name=name, token_hash=digest(secret), shown_prefix=secret[:SHOWN_PREFIX],
                                created_at=now, expires_at=now + dt.timedelta(days=days), can_write=bool(can_write))
        audit.record("api_token.create", actor=user, object_type="api_token", object_id=token.id,
                     details={"name": name, "days": days, "prefix": token.shown_prefix, "can_write": bool(can_write)})
    return token, secret


def tokens_of(user: User) -> list[ApiToken]:
    """The user's tokens, newest first (revoked and expired ones too, for the record)."""
    return list(ApiToken.select().where(ApiToken.user == user.id).order_by(ApiToken.created_at.desc(),
                                                                            ApiToken.id.desc()))


def revoke(user: User, token_id: int, *, now: dt.datetime | None = None) -> ApiToken:
    """Revoke one of the user's own tokens; someone else's token is "not found"."""
    with transaction():
        token = ApiToken.get_or_none((ApiToken.id == token_id) & (ApiToken.user == user.id))
        if token is None:
            raise NotFound()
        if token.revoked_at is None:
            token.revoked_at = now or utcnow()
            token.save()
            audit.record("api_token.revoke", actor=user, object_type="api_token", object_id=token.id,
                         details={"name": token.name, "prefix": token.shown_prefix})
    return token


def revoke_all_of(user_id: int, *, now: dt.datetime | None = None) -> int:
    """Revoke every active token of an account (e.g. when an administrator disables it)."""
    with transaction():
        return (ApiToken.update(revoked_at=now or utcnow())
                .where((ApiToken.user == user_id) & ApiToken.revoked_at.is_null()).execute())


def authenticate(secret: str | None, *, now: dt.datetime | None = None) -> User | None:
    """The active user behind a bearer token, or None (unknown, revoked, expired, account disabled)."""
    if not secret or not TOKEN_RE.match(secret):
        return None
    now = now or utcnow()
    token = (ApiToken.select(ApiToken, User).join(User)
             .where(ApiToken.token_hash == digest(secret)).first())
    if token is None or token.state(now) != "active" or not token.user.is_active:
        return None
    if token.last_used_at is None or now - token.last_used_at > TOUCH_EVERY:
        with transaction():
            ApiToken.update(last_used_at=now).where(ApiToken.id == token.id).execute()
    return token.user


def may_write(secret: str | None, *, now: dt.datetime | None = None) -> bool:
    """Whether an active token was created with "may write" (a report's values through the API)."""
    if not secret or not TOKEN_RE.match(secret):
        return False
    token = ApiToken.get_or_none(ApiToken.token_hash == digest(secret))
    return token is not None and token.state(now) == "active" and bool(token.can_write)


def purge_expired(*, keep_days: int = 90, now: dt.datetime | None = None) -> int:
    """Delete tokens expired or revoked more than ``keep_days`` ago (the audit trail keeps the story)."""
    limit = (now or utcnow()) - dt.timedelta(days=keep_days)
    with transaction():
        return (ApiToken.delete().where((ApiToken.expires_at < limit)
                                        | (ApiToken.revoked_at.is_null(False) & (ApiToken.revoked_at < limit)))
                .execute())
