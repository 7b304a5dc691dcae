"""national_link's tables as they were when this step was written (frozen copies of models.py):
connector switches per unit, routes, the exchange log, proposals received, inbox cursors, and
the demo's national test server's identity."""

import datetime as dt

from peewee import BooleanField, CharField, DateTimeField, IntegerField, Model, TextField


def _now():
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def up(migrator, db):
    class ConnectorSwitch(Model):
        connector = CharField(max_length=40)
        unit_id = IntegerField()
        enabled = BooleanField(default=True)
        changed_by = IntegerField(null=True)
        changed_at = DateTimeField(default=_now)

        class Meta:
            database = db
            table_name = "national_link_connector_switch"
            indexes = ((("connector", "unit_id"), True),)

    class Route(Model):
        connector = CharField(max_length=40)
        regime_code = CharField(max_length=40)
        added_by = IntegerField(null=True)
        added_at = DateTimeField(default=_now)

        class Meta:
            database = db
            table_name = "national_link_route"
            indexes = ((("connector", "regime_code"), True),)

    class Exchange(Model):
        direction = CharField(max_length=3)
        connector = CharField(max_length=40)
        packet_type = CharField(max_length=30)
        message_id = CharField(max_length=80)
        in_reply_to = CharField(max_length=80, default="")
        report_id = IntegerField(null=True, index=True)
        report_version = IntegerField(null=True)
        unit_id = IntegerField(null=True, index=True)
        outbox_id = IntegerField(null=True)
        state = CharField(max_length=10, default="")
        remote_status = CharField(max_length=10, default="")
        remote_reason = TextField(default="")
        remote_at = DateTimeField(null=True)
        receipt_id = CharField(max_length=80, default="")
        acknowledged_at = DateTimeField(null=True)
        answer = TextField(default="")
        problems = TextField(default="[]")
        signature_status = CharField(max_length=14, default="")
        signer = CharField(max_length=255, default="")
        document = TextField(default="")
        repeats = IntegerField(default=0)
        created_at = DateTimeField(default=_now)
        updated_at = DateTimeField(default=_now)

        class Meta:
            database = db
            table_name = "national_link_exchange"
            indexes = ((("connector", "direction", "message_id"), True), (("direction", "created_at"), False))

    class Proposal(Model):
        exchange_id = IntegerField(unique=True)
        connector = CharField(max_length=40)
        packet_type = CharField(max_length=30)
        title = CharField(max_length=255, default="")
        state = CharField(max_length=8, default="open", index=True)
        decided_by = IntegerField(null=True)
        decided_at = DateTimeField(null=True)
        reason = TextField(default="")
        result = TextField(default="{}")
        created_at = DateTimeField(default=_now)

        class Meta:
            database = db
            table_name = "national_link_proposal"

    class Cursor(Model):
        connector = CharField(max_length=40, unique=True)
        position = CharField(max_length=80, default="")
        fetched_at = DateTimeField(null=True)
        last_error = TextField(default="")

        class Meta:
            database = db
            table_name = "national_link_cursor"

    class TestServerIdentity(Model):
        certificate = TextField()
        private_key = TextField()
        chain = TextField(default="")
        created_at = DateTimeField(default=_now)

        class Meta:
            database = db
            table_name = "national_link_test_server_identity"

    db.create_tables([ConnectorSwitch, Route, Exchange, Proposal, Cursor, TestServerIdentity])


def down(migrator, db):
    for table in ("test_server_identity", "cursor", "proposal", "exchange", "route", "connector_switch"):
        db.execute_sql(f"DROP TABLE national_link_{table}")
