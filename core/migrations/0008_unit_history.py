"""Units with a history (issue 4): change events and their links to units.

``core_unit_change``: one event (merge, split, rename, reparent, level_change, establish,
dissolve) with the first day the new state holds and its legal basis; a rename, re-parent or
change of level of the same row keeps the old and new values so the past can be rebuilt.
``core_unit_change_link``: the units a change ended (``from``) and produced or changed (``to``).
The new right ``core.unit.edit`` (non-delegable) is given to no built-in role: system
administrators hold it; a custom role may carry it.

Frozen: nothing here imports ``core.units.history``.
"""

import datetime

from peewee import CharField, Check, DateField, DateTimeField, ForeignKeyField, Model, TextField

CHANGE_KINDS = ("merge", "split", "rename", "reparent", "level_change", "establish", "dissolve")
ROLES = ("from", "to")


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

    class UnitChange(Base):
        kind = CharField(max_length=20, constraints=[_in("kind", CHANGE_KINDS)])
        effective_date = DateField(index=True)
        legal_basis = TextField()
        note = TextField(null=True)
        old_name = CharField(max_length=255, null=True)
        new_name = CharField(max_length=255, null=True)
        old_parent = ForeignKeyField(Unit, null=True, backref="+", on_delete="RESTRICT")
        new_parent = ForeignKeyField(Unit, null=True, backref="+", on_delete="RESTRICT")
        old_kind = CharField(max_length=20, null=True)
        new_kind = CharField(max_length=20, null=True)
        created_by = ForeignKeyField(User, null=True, backref="+", on_delete="SET NULL")
        created_at = DateTimeField(default=now)

        class Meta:
            table_name = "core_unit_change"

    class UnitChangeLink(Base):
        change = ForeignKeyField(UnitChange, on_delete="CASCADE")
        unit = ForeignKeyField(Unit, on_delete="RESTRICT")
        role = CharField(max_length=4, constraints=[_in("role", ROLES)])

        class Meta:
            table_name = "core_unit_change_link"
            indexes = ((("change", "unit", "role"), True), (("unit", "role"), False))

    db.create_tables([UnitChange, UnitChangeLink])


def down(migrator, db):
    for table in ("core_unit_change_link", "core_unit_change"):
        db.execute_sql(f'DROP TABLE IF EXISTS "{table}"')
