"""The working-day calendar's yearly moves (issue 12): the extra days off the Government grants
(Tết bridges) and the Saturdays worked in exchange, as an administrator enters them, each with the
notice that decided it. System administrators hold ``core.calendar.admin`` like every permission,
so no role changes are needed.

Frozen like 0001: nothing here imports ``core.regimes.workdays``.
"""

import datetime

from peewee import Check, CharField, DateField, DateTimeField, ForeignKeyField, Model, TextField


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

    class CalendarDay(Base):
        day = DateField(unique=True)
        kind = CharField(max_length=8, constraints=[Check("kind IN ('day_off', 'make_up')")])
        reason = TextField()
        created_at = DateTimeField(default=now)
        created_by = ForeignKeyField(User, null=True, on_delete="SET NULL")

        class Meta:
            table_name = "core_calendar_day"

    db.create_tables([CalendarDay])


def down(migrator, db):
    db.execute_sql('DROP TABLE IF EXISTS "core_calendar_day"')
