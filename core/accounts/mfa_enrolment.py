"""Who has a second factor: the tables of two-factor authentication (migration 0006) and the one
question the password login asks of them, kept apart from ``core.accounts.mfa`` because that module
builds on the login (its lockout and session tokens) while the login needs only this answer."""

from __future__ import annotations

from peewee import CharField, DateTimeField, ForeignKeyField, IntegerField, TextField

from core.db import CoreModel
from core.models import User, utcnow


class Totp(CoreModel):
    """A user's TOTP secret (migration 0006). Active once ``confirmed_at`` is set."""

    user = ForeignKeyField(User, unique=True, backref="totp", on_delete="CASCADE")
    secret = TextField()  # Fernet token of the base32 secret, never the secret itself
    created_at = DateTimeField(default=utcnow)
    confirmed_at = DateTimeField(null=True)
    last_step = IntegerField(default=0)  # newest 30-second step used: older or equal ones are refused


class RecoveryCode(CoreModel):
    user = ForeignKeyField(User, backref="recovery_codes", on_delete="CASCADE")
    code_hash = CharField(max_length=64)  # HMAC-SHA256, keyed from the secret key
    created_at = DateTimeField(default=utcnow)
    used_at = DateTimeField(null=True)

    class Meta:
        indexes = ((("user", "code_hash"), True),)


def is_enrolled(user) -> bool:
    """Whether ``user`` (a User or its id) has a confirmed TOTP: a login then needs a code too."""
    user_id = user if isinstance(user, int) else user.id
    return Totp.select().where((Totp.user == user_id) & Totp.confirmed_at.is_null(False)).exists()
