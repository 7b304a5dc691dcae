"""Trust for digital signatures: pinned CA certificates (trust anchors), the CRLs they published and
where to fetch them, and the signing certificates people register for their account.

CRL rows are never deleted (the evidence of a verification names them by SHA-256); anchors and
certificates are deactivated, not deleted. System administrators hold ``core.trust.admin`` like every
permission, so no role changes are needed.

Frozen like 0001: nothing here imports ``core.signatures.trust`` or ``core.signatures.certificates``.
"""

import datetime

from peewee import BlobField, BooleanField, CharField, DateTimeField, ForeignKeyField, Model, TextField


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

    class TrustAnchor(Base):
        der = BlobField()
        fingerprint = CharField(max_length=64, unique=True)
        subject = TextField()
        kind = CharField(max_length=12)
        name = CharField(max_length=255)
        not_after = DateTimeField()
        active = BooleanField(default=True)
        added_at = DateTimeField(default=now)
        added_by = ForeignKeyField(User, null=True, on_delete="SET NULL")
        deactivated_at = DateTimeField(null=True)

        class Meta:
            table_name = "core_trust_anchor"

    class Crl(Base):
        issuer_fingerprint = CharField(max_length=64, index=True)
        issuer = TextField()
        der = BlobField()
        sha256 = CharField(max_length=64, unique=True)
        this_update = DateTimeField()
        next_update = DateTimeField(null=True)
        fetched_at = DateTimeField(default=now)
        source = CharField(max_length=500)

        class Meta:
            table_name = "core_crl"

    class CrlSource(Base):
        url = CharField(max_length=500, unique=True)
        anchor = ForeignKeyField(TrustAnchor, null=True, on_delete="SET NULL")
        origin = CharField(max_length=20, default="manual")
        active = BooleanField(default=True)
        added_at = DateTimeField(default=now)
        last_attempt_at = DateTimeField(null=True)
        last_error = CharField(max_length=100, default="")

        class Meta:
            table_name = "core_crl_source"

    class UserCertificate(Base):
        user = ForeignKeyField(User, on_delete="CASCADE")
        der = BlobField()
        fingerprint = CharField(max_length=64, index=True)
        subject = TextField()
        name = CharField(max_length=255)
        serial = CharField(max_length=64)
        issuer = TextField()
        not_before = DateTimeField()
        not_after = DateTimeField()
        active = BooleanField(default=True)
        added_at = DateTimeField(default=now)
        added_by = ForeignKeyField(User, null=True, on_delete="SET NULL", backref="+")
        deactivated_at = DateTimeField(null=True)
        deactivated_by = ForeignKeyField(User, null=True, on_delete="SET NULL", backref="+")

        class Meta:
            table_name = "core_user_certificate"

    db.create_tables([TrustAnchor, Crl, CrlSource, UserCertificate])


def down(migrator, db):
    for table in ("core_user_certificate", "core_crl_source", "core_crl", "core_trust_anchor"):
        db.execute_sql(f'DROP TABLE IF EXISTS "{table}"')
