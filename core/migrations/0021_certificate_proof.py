"""Registering a signing certificate needs proof of possession (issue 12 item 17).

``core_certificate_challenge``: the random challenges an account's certificate must sign before it is
registered (single use, short-lived). ``core_user.identity_number``: the person's CCCD/CMND number
or an organisation's MST, optional, recorded by a unit administrator; a certificate carrying another
number in its subject (UID or serialNumber) is not registered to the account.

Frozen like 0001: nothing here imports ``core.signatures.certificates`` or ``core.models``.
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

    class CertificateChallenge(Base):
        user = ForeignKeyField(User, on_delete="CASCADE")
        nonce = CharField(max_length=64, unique=True)
        created_at = DateTimeField(default=now)
        expires_at = DateTimeField()
        used_at = DateTimeField(null=True)

        class Meta:
            table_name = "core_certificate_challenge"
            indexes = ((("user", "expires_at"), False),)

    migrator.migrate(migrator.add_column("core_user", "identity_number", CharField(max_length=32, null=True)))
    db.create_tables([CertificateChallenge])


def down(migrator, db):
    db.execute_sql('DROP TABLE IF EXISTS "core_certificate_challenge"')
    migrator.migrate(migrator.drop_column("core_user", "identity_number"))
