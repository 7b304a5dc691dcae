"""Values marked for follow-up by their reviewers (issue 14 item 9, ``core_followup``): the cell of a
report, what it held and the expected ranges shown when it was marked, the note, who marked it and
when, and — once cleared — who cleared it, when and why. One open follow-up per cell (a partial
unique index: cleared ones stay as history).

Frozen like 0001: nothing here imports ``core.reporting.quality``.
"""

import datetime

from peewee import CharField, DateTimeField, DecimalField, ForeignKeyField, IntegerField, Model, TextField


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

    def number():
        return DecimalField(max_digits=24, decimal_places=6, null=True)

    class Followup(Base):
        report = ForeignKeyField(Report, on_delete="CASCADE", backref="+")
        row = CharField(max_length=40)
        column = CharField(max_length=40)
        label = CharField(max_length=600, default="")
        version_number = IntegerField(null=True)
        value = number()
        decimals = IntegerField(null=True)
        history_low = number()
        history_high = number()
        peers_low = number()
        peers_high = number()
        note = TextField(default="")
        created_by = ForeignKeyField(User, null=True, on_delete="SET NULL", backref="+")
        created_at = DateTimeField(default=now)
        cleared_at = DateTimeField(null=True)
        cleared_by = ForeignKeyField(User, null=True, on_delete="SET NULL", backref="+")
        clear_note = TextField(default="")

        class Meta:
            table_name = "core_followup"
            indexes = ((("cleared_at", "created_at"), False),)

    Followup.add_index(Followup.index(Followup.report, Followup.row, Followup.column, unique=True,
                                      where=Followup.cleared_at.is_null(), name="core_followup_open_cell"))
    return Followup


def up(migrator, db):
    db.create_tables([_models(db)])


def down(migrator, db):
    db.drop_tables([_models(db)])
