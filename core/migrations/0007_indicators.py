"""The indicator catalogue (hệ thống chỉ tiêu thống kê, QĐ 54/2016 → QĐ 05/2023).

``core_indicator_group`` holds the groups (T01, H02, X03...). ``core_indicator`` holds
one row per version of an indicator: a change never overwrites, it adds version n+1,
closes the previous one (``valid_to``, ``is_current`` false), so reports and forms
that point at a row keep the version they used. Value kinds (plan, estimate, actual,
official) are a fixed list in ``core.catalogue.indicators``, not a table.

Frozen like 0001: nothing here imports ``core.catalogue.indicators``.
"""

from peewee import (BooleanField, CharField, Check, DateField, ForeignKeyField, IntegerField, Model,
                    TextField)

LEVELS = ("province", "district", "commune")
VALUE_TYPES = ("number", "integer", "percent", "text")
AGGREGATIONS = ("sum", "average", "weighted_average", "min", "max", "last", "none")


def _in(column, values):
    return Check(f"{column} IN (%s)" % ", ".join(f"'{v}'" for v in values))


def up(migrator, db):
    class Base(Model):
        class Meta:
            database = db
            legacy_table_names = False

    class IndicatorGroup(Base):
        code = CharField(max_length=10, unique=True)
        name = CharField(max_length=255)
        level = CharField(max_length=20, constraints=[_in("level", LEVELS)])

        class Meta:
            table_name = "core_indicator_group"

    class Indicator(Base):
        code = CharField(max_length=10)
        version = IntegerField()
        name = TextField()
        name_folded = TextField()
        group = ForeignKeyField(IndicatorGroup, on_delete="RESTRICT")
        unit_of_measure = CharField(max_length=100, null=True)
        value_type = CharField(max_length=20, default="number", constraints=[_in("value_type", VALUE_TYPES)])
        aggregation = CharField(max_length=20, default="none", constraints=[_in("aggregation", AGGREGATIONS)])
        disaggregation = TextField(null=True)
        levels = CharField(max_length=100)
        periodicity = TextField(null=True)
        agency = TextField(null=True)
        higher_code = CharField(max_length=20, null=True)
        source_act = TextField(null=True)
        valid_from = DateField(null=True)
        valid_to = DateField(null=True)
        is_current = BooleanField(default=True)

        class Meta:
            table_name = "core_indicator"
            indexes = ((("code", "version"), True), (("is_current", "code"), False))

    db.create_tables([IndicatorGroup, Indicator])


def down(migrator, db):
    for table in ("core_indicator", "core_indicator_group"):
        db.execute_sql(f'DROP TABLE IF EXISTS "{table}"')
