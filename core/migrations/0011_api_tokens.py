"""Personal access tokens for the read-only JSON API (``core_api_token``).

One row per token: its owner, a name, the SHA-256 of the token (never the token),
a short prefix to recognise it, when it expires, when it was last used and when it
was revoked. Deleting an account deletes its tokens.

Frozen like 0001: nothing here imports ``core.accounts.api_tokens`` or ``core.models``.
"""

import datetime

from peewee import CharField, DateTimeField, ForeignKeyField, Model


def up(migrator, db):
    def now():
        return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)

    class Base(Model):
        class Meta:
            database = db
            legacy_table_names = False

    class User(Base):
        class Meta:
            table_name = "core_user"

    class ApiToken(Base):
        user = ForeignKeyField(User, on_delete="CASCADE")
        name = CharField(max_length=100)
        token_hash = CharField(max_length=64, unique=True)
        shown_prefix = CharField(max_length=16)
        created_at = DateTimeField(default=now)
        expires_at = DateTimeField()
        last_used_at = DateTimeField(null=True)
        revoked_at = DateTimeField(null=True)

        class Meta:
            table_name = "core_api_token"

    db.create_tables([ApiToken])


def down(migrator, db):
    db.execute_sql('DROP TABLE IF EXISTS "core_api_token"')
