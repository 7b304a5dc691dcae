"""Notifications of the report workflow (issue 6): the in-app notifications, the address each person
wants them e-mailed to (accounts have no e-mail field), and the outbox of e-mails to send.

Frozen like 0001: nothing here imports ``core.reporting.notifications`` or ``core.mailer``.
"""

import datetime

from peewee import Check, CharField, DateTimeField, ForeignKeyField, IntegerField, Model, TextField


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

    class Report(Base):
        class Meta:
            table_name = "core_report"

    class Notification(Base):
        user = ForeignKeyField(User, on_delete="CASCADE")
        report = ForeignKeyField(Report, on_delete="CASCADE")
        action = CharField(max_length=12)
        actor = ForeignKeyField(User, null=True, on_delete="SET NULL")
        reason = TextField(default="")
        version_number = IntegerField(null=True)
        created_at = DateTimeField(default=now)
        read_at = DateTimeField(null=True)

        class Meta:
            table_name = "core_notification"
            indexes = ((("user", "read_at"), False), (("user", "created_at"), False))

    class EmailAddress(Base):
        user = ForeignKeyField(User, unique=True, on_delete="CASCADE")
        address = CharField(max_length=254)
        updated_at = DateTimeField(default=now)

        class Meta:
            table_name = "core_email_address"

    class OutboxMail(Base):
        recipient = CharField(max_length=254)
        subject = CharField(max_length=255)
        body = TextField()
        status = CharField(max_length=8, default="pending",
                           constraints=[Check("status IN ('pending', 'sent', 'failed')")])
        attempts = IntegerField(default=0)
        next_attempt_at = DateTimeField(default=now, index=True)
        last_error = TextField(default="")
        created_at = DateTimeField(default=now)
        sent_at = DateTimeField(null=True)

        class Meta:
            table_name = "core_outbox_mail"

    db.create_tables([Notification, EmailAddress, OutboxMail])


def down(migrator, db):
    for table in ("core_outbox_mail", "core_email_address", "core_notification"):
        db.execute_sql(f'DROP TABLE IF EXISTS "{table}"')
