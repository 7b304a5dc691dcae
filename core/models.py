"""Core tables (``core_*``). The schema itself is created by ``core/migrations``;
these classes are how the services read and write it, and they must match.
"""

from __future__ import annotations

import datetime as dt

from peewee import (BooleanField, CharField, Check, DateField, DateTimeField, ForeignKeyField,
                    IntegerField, TextField)

from core import clock
from core.db import CoreModel

UNIT_KINDS = ("province", "department", "district", "commune", "agency", "organisation", "individual")


def utcnow() -> dt.datetime:
    """Naive UTC: both backends store it the same way (the one clock, core.clock)."""
    return clock.utcnow()


class Unit(CoreModel):
    """An organisational unit (đơn vị). History (merges, validity) grows here in the legal core."""

    code = CharField(max_length=40, unique=True)
    name = CharField(max_length=255)
    kind = CharField(max_length=20, constraints=[Check("kind IN (%s)" % ", ".join(f"'{k}'" for k in UNIT_KINDS))])
    parent = ForeignKeyField("self", null=True, backref="children", on_delete="RESTRICT")
    admin_code = CharField(max_length=20, null=True)   # mã đơn vị hành chính
    agency_code = CharField(max_length=40, null=True)  # mã định danh điện tử (QCVN 102)
    valid_from = DateField(null=True)
    valid_to = DateField(null=True)

    def __str__(self):
        return self.name


class User(CoreModel):
    username = CharField(max_length=64, unique=True)
    full_name = CharField(max_length=255)
    password_hash = CharField(max_length=255)
    unit = ForeignKeyField(Unit, backref="users", on_delete="RESTRICT")
    is_admin = BooleanField(default=False)  # system administrator; roles and grants come later
    is_active = BooleanField(default=True)
    must_change_password = BooleanField(default=False)
    language = CharField(max_length=5, null=True)
    created_at = DateTimeField(default=utcnow)
    last_login_at = DateTimeField(null=True)
    previous_login_at = DateTimeField(null=True)
    failed_logins = IntegerField(default=0)  # consecutive; reset by a successful login (0004)
    locked_until = DateTimeField(null=True)  # refused until then, even with the right password
    password_expires_at = DateTimeField(null=True)  # a temporary password stops working then (0005)
    identity_number = CharField(max_length=32, null=True)  # CCCD/CMND or MST, matched to certificates (0021)


class Session(CoreModel):
    """A server-side login session. Only the SHA-256 of the cookie token is stored."""

    token_hash = CharField(max_length=64, unique=True)
    user = ForeignKeyField(User, backref="sessions", on_delete="CASCADE")
    created_at = DateTimeField(default=utcnow)
    last_seen_at = DateTimeField(default=utcnow)
    client_address = CharField(max_length=64, null=True)
    user_agent = CharField(max_length=255, null=True)
    mfa_pending = BooleanField(default=False)  # password right, second factor not yet given (0006)
    reauth_at = DateTimeField(null=True)  # last login or re-authentication, for sensitive actions (SESS-06)


class PluginActivation(CoreModel):
    """A plugin switched on or off for a unit; inherited by the unit's subtree."""

    unit = ForeignKeyField(Unit, backref="plugin_activations", on_delete="CASCADE")
    plugin = CharField(max_length=40)
    enabled = BooleanField()
    updated_by = ForeignKeyField(User, null=True, on_delete="SET NULL")
    updated_at = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("unit", "plugin"), True),)


CORE_MODELS = [Unit, User, Session, PluginActivation]
