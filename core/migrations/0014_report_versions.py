"""Submitting reports: the versions a submission freezes (canonical bytes and their SHA-256), the
events of the workflow (submit, return, accept, reopen, with reasons), and on the report the time
of its latest submission and whether it was late.

Frozen like 0001: nothing here imports ``core.reporting.workflow``.
"""

import datetime

from peewee import (SQL, BooleanField, CharField, DateField, DateTimeField, ForeignKeyField, IntegerField, Model,
                    TextField)


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

    class FormVersion(Base):
        class Meta:
            table_name = "core_form_version"

    class ReportVersion(Base):
        report = ForeignKeyField(Report, on_delete="CASCADE")
        number = IntegerField()
        form_version = ForeignKeyField(FormVersion, on_delete="RESTRICT")
        revision = IntegerField()
        submitted_at = DateTimeField(default=now)
        submitted_by = ForeignKeyField(User, null=True, on_delete="SET NULL")
        deadline = DateField()
        late = BooleanField(default=False)
        canonical = TextField()
        sha256 = CharField(max_length=64)

        class Meta:
            table_name = "core_report_version"
            indexes = ((("report", "number"), True),)

    class ReportEvent(Base):
        report = ForeignKeyField(Report, on_delete="CASCADE")
        action = CharField(max_length=12)
        actor = ForeignKeyField(User, null=True, on_delete="SET NULL")
        at = DateTimeField(default=now)
        reason = TextField(default="")
        version_number = IntegerField(null=True)

        class Meta:
            table_name = "core_report_event"

    db.create_tables([ReportVersion, ReportEvent])
    migrator.migrate(
        migrator.add_column("core_report", "submitted_at", DateTimeField(null=True)),
        # NOT NULL DEFAULT in the ALTER TABLE itself (as 0004): no rebuild of core_report on SQLite.
        migrator.add_column("core_report", "submitted_late",
                            BooleanField(default=False, constraints=[SQL("DEFAULT FALSE")]), allow_not_null=True),
    )


def down(migrator, db):
    migrator.migrate(migrator.drop_column("core_report", "submitted_late"),
                     migrator.drop_column("core_report", "submitted_at"))
    for table in ("core_report_event", "core_report_version"):
        db.execute_sql(f'DROP TABLE IF EXISTS "{table}"')
