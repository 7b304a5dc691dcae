"""Two-factor authentication (security.md AUTH-08) and re-authentication (SESS-06).

``core_totp`` holds one TOTP secret per user, encrypted (Fernet, key derived from
the secret key), when it was confirmed, and the newest time step used (replay
protection). ``core_recovery_code`` holds keyed hashes of one-time recovery codes.
``core_session`` gains ``mfa_pending`` (password given, second factor not yet) and
``reauth_at`` (last login or re-authentication).

Frozen like 0001: nothing here imports ``core.models`` or ``core.accounts.mfa``.
"""

import datetime

from peewee import SQL, BooleanField, CharField, DateTimeField, ForeignKeyField, IntegerField, Model, TextField


def up(migrator, db):
    def now():
        return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)

    # NOT NULL DEFAULT FALSE in the ALTER TABLE itself (see 0004): no rebuild of core_session.
    migrator.migrate(
        migrator.add_column("core_session", "mfa_pending",
                            BooleanField(default=False, constraints=[SQL("DEFAULT FALSE")]), allow_not_null=True),
        migrator.add_column("core_session", "reauth_at", DateTimeField(null=True)),
    )

    class Base(Model):
        class Meta:
            database = db
            legacy_table_names = False

    class User(Base):
        class Meta:
            table_name = "core_user"

    class Totp(Base):
        user = ForeignKeyField(User, unique=True, on_delete="CASCADE")
        secret = TextField()
        created_at = DateTimeField(default=now)
        confirmed_at = DateTimeField(null=True)
        last_step = IntegerField(default=0)

        class Meta:
            table_name = "core_totp"

    class RecoveryCode(Base):
        user = ForeignKeyField(User, on_delete="CASCADE")
        code_hash = CharField(max_length=64)
        created_at = DateTimeField(default=now)
        used_at = DateTimeField(null=True)

        class Meta:
            table_name = "core_recovery_code"
            indexes = ((("user", "code_hash"), True),)

    db.create_tables([Totp, RecoveryCode])


def down(migrator, db):
    for table in ("core_recovery_code", "core_totp"):
        db.execute_sql(f'DROP TABLE IF EXISTS "{table}"')
    migrator.migrate(
        migrator.drop_column("core_session", "reauth_at"),
        migrator.drop_column("core_session", "mfa_pending"),
    )
