"""Feedback and incidents (issue 14 item 8, regulation Điều 9.1c, 9.4): the problems and proposals
people send the operator (``core_feedback``), each item's thread of replies, status changes and
assignments (``core_feedback_entry``), and what the reporter has not read yet
(``core_feedback_notice``).

Frozen like 0001: nothing here imports ``core.feedback``.
"""

import datetime

from peewee import BigIntegerField, BooleanField, Check, CharField, DateTimeField, ForeignKeyField, Model, TextField


def _models(db):
    def now():
        return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)

    class Base(Model):
        class Meta:
            database = db
            legacy_table_names = False

    class Unit(Base):
        class Meta:
            table_name = "core_unit"

    class User(Base):
        class Meta:
            table_name = "core_user"

    class Feedback(Base):
        kind = CharField(max_length=10, constraints=[Check("kind IN ('problem', 'proposal')")])
        title = CharField(max_length=200)
        description = TextField()
        page = CharField(max_length=500, default="")
        status = CharField(max_length=12, default="new",
                           constraints=[Check("status IN ('new', 'in_progress', 'done', 'declined')")])
        reporter = ForeignKeyField(User, backref="+", on_delete="RESTRICT")
        unit = ForeignKeyField(Unit, backref="+", on_delete="RESTRICT")
        assignee = ForeignKeyField(User, null=True, backref="+", on_delete="SET NULL")
        awaiting_answer = BooleanField(default=False)
        screenshot_name = CharField(max_length=255, default="")
        screenshot_stored = CharField(max_length=80, null=True, unique=True)
        screenshot_sha256 = CharField(max_length=64, default="")
        screenshot_size = BigIntegerField(null=True)
        screenshot_type = CharField(max_length=40, default="")
        created_at = DateTimeField(default=now)
        updated_at = DateTimeField(default=now)
        closed_at = DateTimeField(null=True)

        class Meta:
            table_name = "core_feedback"
            indexes = ((("status", "updated_at"), False), (("reporter", "created_at"), False),
                       (("unit", "created_at"), False), (("created_at",), False))

    class FeedbackEntry(Base):
        feedback = ForeignKeyField(Feedback, backref="+", on_delete="CASCADE")
        author = ForeignKeyField(User, null=True, backref="+", on_delete="SET NULL")
        kind = CharField(max_length=10, constraints=[Check("kind IN ('reply', 'status', 'assign')")])
        text = TextField(default="")
        status = CharField(max_length=12, default="")
        assignee = ForeignKeyField(User, null=True, backref="+", on_delete="SET NULL")
        created_at = DateTimeField(default=now)

        class Meta:
            table_name = "core_feedback_entry"
            indexes = ((("feedback", "created_at"), False),)

    class FeedbackNotice(Base):
        user = ForeignKeyField(User, backref="+", on_delete="CASCADE")
        feedback = ForeignKeyField(Feedback, backref="+", on_delete="CASCADE")
        entry = ForeignKeyField(FeedbackEntry, backref="+", on_delete="CASCADE")
        created_at = DateTimeField(default=now)
        read_at = DateTimeField(null=True)

        class Meta:
            table_name = "core_feedback_notice"
            indexes = ((("user", "read_at"), False), (("feedback", "user"), False))

    return Feedback, FeedbackEntry, FeedbackNotice


def up(migrator, db):
    db.create_tables(list(_models(db)))


def down(migrator, db):
    db.drop_tables(list(reversed(_models(db))))
