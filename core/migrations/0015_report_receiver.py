"""Who receives each report, and which reports are a unit's consolidation of what it received.

``core_report.receiver`` is the unit that reviews the report (accepts or returns it): for a
unit's report, the regime's receiving unit when the period opened; for a consolidated report
(``kind = 'consolidated'``), the next level up. Kept on the report rather than derived from the
regime so that the queue of "reports waiting for me" is one indexed query at every level.
Existing reports get their regime version's receiving unit.

Frozen like 0001: nothing here imports ``core.reporting.opening``.
"""

from peewee import SQL, CharField, ForeignKeyField, Model


def up(migrator, db):
    class Base(Model):
        class Meta:
            database = db
            legacy_table_names = False

    class Unit(Base):
        class Meta:
            table_name = "core_unit"

    migrator.migrate(
        migrator.add_column("core_report", "receiver_id",
                            ForeignKeyField(Unit, field=Unit.id, null=True, on_delete="RESTRICT")),
        migrator.add_column("core_report", "kind",
                            CharField(max_length=12, default="unit", constraints=[SQL("DEFAULT 'unit'")]),
                            allow_not_null=True),
        migrator.add_index("core_report", ("receiver_id", "status"), False),
    )
    db.execute_sql('UPDATE "core_report" SET "receiver_id" = (SELECT "receiving_unit_id" FROM "core_regime" '
                   'WHERE "core_regime"."id" = "core_report"."regime_id")')


def down(migrator, db):
    migrator.migrate(migrator.drop_index("core_report", "core_report_receiver_id_status"),
                     migrator.drop_column("core_report", "kind"),
                     migrator.drop_column("core_report", "receiver_id"))
