"""Signatures on report versions (issue 6): the bytes handed out for signing outside, the signature
kept with each version and the later checks of it, the units' organisation seals (key encrypted),
and the built-in role "clerk" (Văn thư, TT 41/2017 Art. 6) that may apply the unit's seal.

Frozen like 0001: nothing here imports ``core.signatures.signing``.
"""

import datetime

from peewee import BlobField, BooleanField, CharField, DateTimeField, ForeignKeyField, IntegerField, Model, TextField

CLERK = ("clerk", "Văn thư", ["core.unit.view", "core.report.submit", "core.report.seal"])


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

    class Unit(Base):
        class Meta:
            table_name = "core_unit"

    class Report(Base):
        class Meta:
            table_name = "core_report"

    class ReportVersion(Base):
        class Meta:
            table_name = "core_report_version"

    class Role(Base):
        code = CharField(max_length=40, unique=True)
        name = CharField(max_length=255)
        is_builtin = BooleanField(default=False)

        class Meta:
            table_name = "core_role"

    class RolePermission(Base):
        role = ForeignKeyField(Role, on_delete="CASCADE")
        code = CharField(max_length=100)

        class Meta:
            table_name = "core_role_permission"

    class SigningRequest(Base):
        report = ForeignKeyField(Report, on_delete="CASCADE")
        user = ForeignKeyField(User, on_delete="CASCADE")
        revision = IntegerField()
        number = IntegerField()
        prepared_at = DateTimeField()
        canonical = TextField()
        sha256 = CharField(max_length=64)

        class Meta:
            table_name = "core_signing_request"
            indexes = ((("report", "revision", "user"), True),)

    class ReportSignature(Base):
        version = ForeignKeyField(ReportVersion, on_delete="CASCADE", unique=True)
        provider = CharField(max_length=60)
        kind = CharField(max_length=10)
        cms = BlobField()
        signer_name = CharField(max_length=255)
        signer_subject = TextField()
        signer_serial = CharField(max_length=64)
        issuer_subject = TextField()
        fingerprint = CharField(max_length=64)
        signing_time = DateTimeField(null=True)
        status = CharField(max_length=14)
        problems = TextField(default="[]")
        evidence = TextField(default="{}")
        verified_at = DateTimeField(default=now)
        signed_by = ForeignKeyField(User, null=True, on_delete="SET NULL")

        class Meta:
            table_name = "core_report_signature"

    class SignatureCheck(Base):
        signature = ForeignKeyField(ReportSignature, on_delete="CASCADE")
        status = CharField(max_length=14)
        problems = TextField(default="[]")
        evidence = TextField(default="{}")
        checked_at = DateTimeField(default=now)
        checked_by = ForeignKeyField(User, null=True, on_delete="SET NULL")

        class Meta:
            table_name = "core_signature_check"

    class OrgSeal(Base):
        unit = ForeignKeyField(Unit, on_delete="CASCADE")
        der = BlobField()
        chain = TextField(default="")
        fingerprint = CharField(max_length=64)
        subject = TextField()
        name = CharField(max_length=255)
        serial = CharField(max_length=64)
        not_after = DateTimeField()
        key = TextField()
        active = BooleanField(default=True)
        installed_at = DateTimeField(default=now)
        installed_by = ForeignKeyField(User, null=True, on_delete="SET NULL")

        class Meta:
            table_name = "core_org_seal"

    db.create_tables([SigningRequest, ReportSignature, SignatureCheck, OrgSeal])
    code, name, permissions = CLERK
    role = Role.get_or_none(Role.code == code) or Role.create(code=code, name=name, is_builtin=True)
    for permission in permissions:
        if not RolePermission.select().where((RolePermission.role == role) & (RolePermission.code == permission)).exists():
            RolePermission.create(role=role, code=permission)


def down(migrator, db):
    for table in ("core_org_seal", "core_signature_check", "core_report_signature", "core_signing_request"):
        db.execute_sql(f'DROP TABLE IF EXISTS "{table}"')
    db.execute_sql("DELETE FROM core_role_permission WHERE role_id IN (SELECT id FROM core_role WHERE code = 'clerk')")
    db.execute_sql("DELETE FROM core_role WHERE code = 'clerk'")
