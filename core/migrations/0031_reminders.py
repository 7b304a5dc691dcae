"""Reminders and escalation (issue 14 item 4): each reminder sent about a report, once
(``core_reminder``: UNIQUE per report, kind and day, written in the transaction of its notifications
and e-mails, so a job run twice or killed midway and run again sends nothing twice), and each
regime's reminder policy (``core_reminder_policy``: how many working days before the deadline, or
none at all; a regime without a row follows the ``reminder_days_before`` setting).

Frozen like 0001: nothing here imports ``core.reporting.reminders``.
"""

import datetime

from peewee import BooleanField, CharField, DateField, DateTimeField, ForeignKeyField, IntegerField, Model, TextField


def _models(db):
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

    class Reminder(Base):
        report = ForeignKeyField(Report, on_delete="CASCADE")
        kind = CharField(max_length=12)
        day = DateField()
        sent_at = DateTimeField(default=now)
        sent_by = ForeignKeyField(User, null=True, on_delete="SET NULL")
        message = TextField(default="")
        recipients = IntegerField(default=0)

        class Meta:
            table_name = "core_reminder"
            indexes = ((("report", "kind", "day"), True),)

    class ReminderPolicy(Base):
        regime_code = CharField(max_length=40, unique=True)
        days_before = IntegerField()
        enabled = BooleanField(default=True)
        updated_at = DateTimeField(default=now)
        updated_by = ForeignKeyField(User, null=True, on_delete="SET NULL")

        class Meta:
            table_name = "core_reminder_policy"

    return [Reminder, ReminderPolicy]


def up(migrator, db):
    db.create_tables(_models(db))


def down(migrator, db):
    db.drop_tables(list(reversed(_models(db))))
