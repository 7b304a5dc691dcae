"""Forms (biểu mẫu) and their versions, a regime's form, and what a report holds while it is
filled: cell values, narrative sections, cell comments and attachments.

``core_report`` gains the form version it was opened with and a revision number that every save
raises (optimistic locking); ``core_api_token`` gains ``can_write`` (a token that may write a
report's values through the API; existing tokens stay read-only).

Frozen like 0001: nothing here imports ``core.regimes.forms`` or ``core.reporting.data``.
"""

import datetime

from peewee import (SQL, BigIntegerField, BooleanField, CharField, Check, DateTimeField, DecimalField, ForeignKeyField,
                    IntegerField, Model, TextField)

FORM_STATUSES = ("draft", "published", "retired")


def _in(column, values):
    return Check(f"{column} IN (%s)" % ", ".join(f"'{v}'" for v in values))


def up(migrator, db):
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

    class Report(Base):
        class Meta:
            table_name = "core_report"

    class Form(Base):
        code = CharField(max_length=40, unique=True)
        name = CharField(max_length=255)
        owner_unit = ForeignKeyField(Unit, on_delete="RESTRICT")
        frequency = CharField(max_length=20, default="")
        created_at = DateTimeField(default=now)
        created_by = ForeignKeyField(User, null=True, on_delete="SET NULL")

        class Meta:
            table_name = "core_form"

    class FormVersion(Base):
        form = ForeignKeyField(Form, on_delete="CASCADE")
        version = IntegerField()
        status = CharField(max_length=12, default="draft", constraints=[_in("status", FORM_STATUSES)])
        definition = TextField(default="{}")
        updated_at = DateTimeField(default=now)
        updated_by = ForeignKeyField(User, null=True, on_delete="SET NULL")
        published_at = DateTimeField(null=True)
        published_by = ForeignKeyField(User, null=True, on_delete="SET NULL", backref="published_versions")

        class Meta:
            table_name = "core_form_version"
            indexes = ((("form", "version"), True),)

    class ReportValue(Base):
        report = ForeignKeyField(Report, on_delete="CASCADE")
        row = CharField(max_length=40)
        column = CharField(max_length=40)
        value = DecimalField(max_digits=24, decimal_places=6, null=True)
        updated_at = DateTimeField(default=now)
        updated_by = ForeignKeyField(User, null=True, on_delete="SET NULL")

        class Meta:
            table_name = "core_report_value"
            indexes = ((("report", "row", "column"), True),)

    class ReportSection(Base):
        report = ForeignKeyField(Report, on_delete="CASCADE")
        key = CharField(max_length=40)
        text = TextField(default="")
        updated_at = DateTimeField(default=now)
        updated_by = ForeignKeyField(User, null=True, on_delete="SET NULL")

        class Meta:
            table_name = "core_report_section"
            indexes = ((("report", "key"), True),)

    class ReportComment(Base):
        report = ForeignKeyField(Report, on_delete="CASCADE")
        row = CharField(max_length=40)
        column = CharField(max_length=40)
        author = ForeignKeyField(User, null=True, on_delete="SET NULL")
        text = TextField()
        created_at = DateTimeField(default=now)

        class Meta:
            table_name = "core_report_comment"
            indexes = ((("report", "row", "column"), False),)

    class ReportAttachment(Base):
        report = ForeignKeyField(Report, on_delete="CASCADE")
        name = CharField(max_length=255)
        stored_name = CharField(max_length=80, unique=True)
        sha256 = CharField(max_length=64)
        size = BigIntegerField()
        content_type = CharField(max_length=120)
        uploaded_by = ForeignKeyField(User, null=True, on_delete="SET NULL")
        uploaded_at = DateTimeField(default=now)

        class Meta:
            table_name = "core_report_attachment"

    db.create_tables([Form, FormVersion, ReportValue, ReportSection, ReportComment, ReportAttachment])
    migrator.migrate(
        migrator.add_column("core_regime", "form_id",
                            ForeignKeyField(Form, field=Form.id, null=True, on_delete="RESTRICT")),
        migrator.add_column("core_report", "form_version_id",
                            ForeignKeyField(FormVersion, field=FormVersion.id, null=True, on_delete="RESTRICT")),
        # NOT NULL DEFAULT in the ALTER TABLE itself (as 0004): no rebuild of the tables on SQLite.
        migrator.add_column("core_report", "revision", IntegerField(default=0, constraints=[SQL("DEFAULT 0")]),
                            allow_not_null=True),
        migrator.add_column("core_report", "updated_at", DateTimeField(null=True)),
        migrator.add_column("core_report", "updated_by_id",
                            ForeignKeyField(User, field=User.id, null=True, on_delete="SET NULL")),
        migrator.add_column("core_api_token", "can_write",
                            BooleanField(default=False, constraints=[SQL("DEFAULT FALSE")]), allow_not_null=True),
    )


def down(migrator, db):
    migrator.migrate(
        migrator.drop_column("core_api_token", "can_write"),
        migrator.drop_column("core_report", "updated_by_id"),
        migrator.drop_column("core_report", "updated_at"),
        migrator.drop_column("core_report", "revision"),
        migrator.drop_column("core_report", "form_version_id"),
        migrator.drop_column("core_regime", "form_id"),
    )
    for table in ("core_report_attachment", "core_report_comment", "core_report_section", "core_report_value",
                  "core_form_version", "core_form"):
        db.execute_sql(f'DROP TABLE IF EXISTS "{table}"')
