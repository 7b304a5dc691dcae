"""Account administration (security.md AUTH-05): a temporary password expires.

``core_user.password_expires_at`` is set when an administrator issues a password
(a new account or a reset) and cleared when the user sets their own; a login
with a temporary password after that moment is refused.

Frozen like 0001: nothing here imports ``core.models``.
"""

from peewee import DateTimeField


def up(migrator, db):
    migrator.migrate(migrator.add_column("core_user", "password_expires_at", DateTimeField(null=True)))


def down(migrator, db):
    migrator.migrate(migrator.drop_column("core_user", "password_expires_at"))
