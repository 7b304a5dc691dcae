"""chuyen_nganh_delegation, its decision file and its history: frozen copies of the models as
they were when this step was written."""

import datetime as dt

from peewee import BlobField, CharField, DateField, DateTimeField, IntegerField, Model, TextField


def _now():
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def up(migrator, db):
    class Delegation(Model):
        department_unit_id = IntegerField(index=True)
        sector = CharField(max_length=20, index=True)
        sector_name = CharField(max_length=255)
        scope = TextField(default="{}")
        purpose = TextField(default="")
        administrators = TextField(default="[]")
        status = CharField(max_length=12, default="applied", index=True)
        applicant_id = IntegerField()
        applied_at = DateTimeField(default=_now)
        updated_at = DateTimeField(default=_now)
        return_reason = TextField(default="")
        decision_number = CharField(max_length=60, default="")
        decision_date = DateField(null=True)
        signer_name = CharField(max_length=255, default="")
        signer_title = CharField(max_length=255, default="")
        valid_from = DateField(null=True)
        valid_to = DateField(null=True)
        status_reason = TextField(default="")

        class Meta:
            database = db
            table_name = "chuyen_nganh_delegation"

    class DelegationFile(Model):
        delegation_id = IntegerField(index=True)
        filename = CharField(max_length=255)
        size = IntegerField()
        sha256 = CharField(max_length=64)
        content = BlobField()
        uploaded_at = DateTimeField(default=_now)
        uploaded_by = IntegerField()

        class Meta:
            database = db
            table_name = "chuyen_nganh_delegation_file"

    class DelegationStep(Model):
        delegation_id = IntegerField(index=True)
        at = DateTimeField(default=_now)
        actor_id = IntegerField(null=True)
        actor_name = CharField(max_length=255, default="")
        action = CharField(max_length=20)
        reason = TextField(default="")
        details = TextField(default="{}")

        class Meta:
            database = db
            table_name = "chuyen_nganh_delegation_step"

    db.create_tables([Delegation, DelegationFile, DelegationStep])


def down(migrator, db):
    for table in ("chuyen_nganh_delegation_step", "chuyen_nganh_delegation_file", "chuyen_nganh_delegation"):
        db.execute_sql(f"DROP TABLE {table}")
