"""Consolidated reports (issue 6): when each consolidated report was last refreshed, and which
source reports — at which version — that refresh counted. Staleness is computed from these rows
against the sources eligible now, so nothing here is a flag to keep in step.

Frozen like 0001: nothing here imports ``core.reporting.consolidation``.
"""

import datetime

from peewee import BooleanField, DateTimeField, ForeignKeyField, IntegerField, Model


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

    class Consolidation(Base):
        report = ForeignKeyField(Report, unique=True, on_delete="CASCADE")
        refreshed_at = DateTimeField(default=now)
        refreshed_by = ForeignKeyField(User, null=True, on_delete="SET NULL")
        include_submitted = BooleanField(default=False)

        class Meta:
            table_name = "core_consolidation"

    class ConsolidationSource(Base):
        consolidated = ForeignKeyField(Report, on_delete="CASCADE")
        source = ForeignKeyField(Report, on_delete="CASCADE")
        version_number = IntegerField()
        at = DateTimeField(default=now)

        class Meta:
            table_name = "core_consolidation_source"
            indexes = ((("consolidated", "source"), True),)

    db.create_tables([Consolidation, ConsolidationSource])


def down(migrator, db):
    for table in ("core_consolidation_source", "core_consolidation"):
        db.execute_sql(f'DROP TABLE IF EXISTS "{table}"')
