"""Figures of indicators: one value per indicator code, unit, period and value kind.

Frozen like 0001: nothing here imports ``core.catalogue.figures``.
"""

import datetime

from peewee import CharField, Check, DateTimeField, DecimalField, ForeignKeyField, IntegerField, Model, TextField

FREQUENCIES = ("monthly", "quarterly", "half_year", "nine_months", "annual")
VALUE_KINDS = ("plan", "estimate", "actual", "official")


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

    class Indicator(Base):
        class Meta:
            table_name = "core_indicator"

    class IndicatorValue(Base):
        code = CharField(max_length=10)
        indicator = ForeignKeyField(Indicator, on_delete="RESTRICT")
        unit = ForeignKeyField(Unit, on_delete="RESTRICT")
        frequency = CharField(max_length=20, constraints=[_in("frequency", FREQUENCIES)])
        year = IntegerField()
        index = IntegerField()
        kind = CharField(max_length=10, constraints=[_in("kind", VALUE_KINDS)])
        option = CharField(max_length=100, default="")
        value = DecimalField(max_digits=24, decimal_places=6, null=True)
        text = TextField(null=True)
        source = CharField(max_length=40)
        updated_at = DateTimeField(default=now)

        class Meta:
            table_name = "core_indicator_value"
            indexes = ((("code", "unit", "frequency", "year", "index", "kind", "option"), True),
                       (("unit", "frequency", "year", "index"), False))

    db.create_tables([IndicatorValue])


def down(migrator, db):
    db.execute_sql('DROP TABLE IF EXISTS "core_indicator_value"')
