"""A leader's dashboard (issue 14 item 5): the indicators each person chose to follow, remembered per
account (``core_dashboard_choice``: one row an account, the codes in the order chosen).

Frozen like 0001: nothing here imports ``core.dashboard``.
"""

import datetime

from peewee import CharField, DateTimeField, ForeignKeyField, Model


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

    class DashboardChoice(Base):
        user = ForeignKeyField(User, unique=True, on_delete="CASCADE")
        codes = CharField(max_length=100)
        updated_at = DateTimeField(default=now)

        class Meta:
            table_name = "core_dashboard_choice"

    return DashboardChoice


def up(migrator, db):
    db.create_tables([_models(db)])


def down(migrator, db):
    db.drop_tables([_models(db)])
