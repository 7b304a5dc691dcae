"""Live consolidation (issue 14 item 1): the running aggregates every acceptance keeps current.

- ``core_consolidation_scope``: one consolidation kept current — a regime code, a period and the
  receiving unit — with the next unit up its chain (``up``; none at the top), the period as the
  figures store names it, and the form version whose rows' indicators give the rules.
- ``core_consolidation_member``: which units are counted in a scope: a unit whose report is
  accepted by its accepted version (``report``, ``version_number``), or a consolidating unit
  below whose own consolidated report is not accepted (yet) by its scope's running aggregates
  (``lower``). One per scope and unit.
- ``core_consolidation_value``: the figures of the accepted versions counted, one row per cell,
  written once at acceptance: aggregation reads rows, never a version's JSON again.
- ``core_consolidation_total``: per scope and cell, the sum and the number of units that
  reported the cell, the smallest and largest figure (kept for the cells whose rule needs them)
  and the consolidated figure by the cell's rule.
- ``core_consolidation.followed_revision``: the consolidated report's revision right after the
  last write the consolidation made to it; while the report is still at that revision its unit
  has not edited it, and the running aggregates keep writing into it.

The scope columns of members, values and totals have no index of their own: each table's
unique index starts with it; nor has the unit of a value (a unit with accepted reports is never
deleted: its reports refuse it). On PostgreSQL the totals table leaves a third of each page free
(``fillfactor``), and the figures store a fifth, so that an acceptance rewriting a cell's sum
and the consolidated figures of every level above updates them in place (no index touched)
instead of adding index entries for every cell of every level.

Scopes are filled by every acceptance from now on; ``baocao consolidation rebuild`` fills them
for what was accepted before (and repairs them).

Frozen like 0001: nothing here imports ``core.reporting.consolidation``.
"""

import datetime

from peewee import (CharField, DateField, DateTimeField, DecimalField, ForeignKeyField, IntegerField, Model,
                    SqliteDatabase)


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

    class Report(Base):
        class Meta:
            table_name = "core_report"

    class FormVersion(Base):
        class Meta:
            table_name = "core_form_version"

    class ConsolidationScope(Base):
        regime_code = CharField(max_length=40)
        period_start = DateField()
        period_end = DateField()
        unit = ForeignKeyField(Unit, on_delete="CASCADE", backref="+")
        up = ForeignKeyField(Unit, null=True, on_delete="SET NULL", backref="+")
        frequency = CharField(max_length=12)
        year = IntegerField()
        period_index = IntegerField(default=0)
        form_version = ForeignKeyField(FormVersion, on_delete="CASCADE", backref="+")
        updated_at = DateTimeField(default=now)

        class Meta:
            table_name = "core_consolidation_scope"
            indexes = ((("regime_code", "period_start", "period_end", "unit"), True),
                       (("regime_code", "period_start", "period_end", "up"), False))

    class ConsolidationMember(Base):
        scope = ForeignKeyField(ConsolidationScope, on_delete="CASCADE", backref="+", index=False)
        unit = ForeignKeyField(Unit, on_delete="CASCADE", backref="+")
        report = ForeignKeyField(Report, null=True, on_delete="CASCADE", backref="+")
        version_number = IntegerField(null=True)
        lower = ForeignKeyField(ConsolidationScope, null=True, on_delete="CASCADE", backref="+")

        class Meta:
            table_name = "core_consolidation_member"
            indexes = ((("scope", "unit"), True), (("lower",), False))

    class ConsolidationValue(Base):
        scope = ForeignKeyField(ConsolidationScope, on_delete="CASCADE", backref="+", index=False)
        unit = ForeignKeyField(Unit, on_delete="CASCADE", backref="+", index=False)
        row = CharField(max_length=40)
        column = CharField(max_length=40)
        value = DecimalField(max_digits=24, decimal_places=6)

        class Meta:
            table_name = "core_consolidation_value"
            indexes = ((("scope", "unit", "row", "column"), True),)

    class ConsolidationTotal(Base):
        scope = ForeignKeyField(ConsolidationScope, on_delete="CASCADE", backref="+", index=False)
        row = CharField(max_length=40)
        column = CharField(max_length=40)
        total = DecimalField(max_digits=30, decimal_places=6)
        reported = IntegerField()
        low = DecimalField(max_digits=30, decimal_places=6, null=True)
        high = DecimalField(max_digits=30, decimal_places=6, null=True)
        value = DecimalField(max_digits=30, decimal_places=6, null=True)

        class Meta:
            table_name = "core_consolidation_total"
            indexes = ((("scope", "row", "column"), True),)

    return ConsolidationScope, ConsolidationMember, ConsolidationValue, ConsolidationTotal


def up(migrator, db):
    db.create_tables(list(_models(db)))
    if not isinstance(db, SqliteDatabase):
        db.execute_sql('ALTER TABLE "core_consolidation_total" SET (fillfactor = 70)')
        db.execute_sql('ALTER TABLE "core_indicator_value" SET (fillfactor = 80)')
    migrator.migrate(migrator.add_column("core_consolidation", "followed_revision", IntegerField(null=True)))


def down(migrator, db):
    if not isinstance(db, SqliteDatabase):
        db.execute_sql('ALTER TABLE "core_indicator_value" RESET (fillfactor)')
    migrator.migrate(migrator.drop_column("core_consolidation", "followed_revision"))
    db.drop_tables(list(reversed(_models(db))))
