"""Regimes a plugin owns name who receives (issue 13 item 6).

``core_unit_group.owner_id``: the unit a group answers to (optional). ``core_regime.receiving_rule``:
how component 4 is chosen — "unit" (the regime's ``receiving_unit``, every existing regime),
"parent" (each reporting unit's parent) or "group_owner" (the owner of ``receiving_group_id``).

Frozen like 0001: nothing here imports ``core.regimes.regimes``.
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

    class UnitGroup(Base):
        class Meta:
            table_name = "core_unit_group"

    migrator.migrate(
        migrator.add_column("core_unit_group", "owner_id",
                            ForeignKeyField(Unit, field=Unit.id, null=True, on_delete="SET NULL")),
        migrator.add_column("core_regime", "receiving_rule",
                            CharField(max_length=12, default="unit", constraints=[SQL("DEFAULT 'unit'")]),
                            allow_not_null=True),
        migrator.add_column("core_regime", "receiving_group_id",
                            ForeignKeyField(UnitGroup, field=UnitGroup.id, null=True, on_delete="RESTRICT")),
    )


def down(migrator, db):
    migrator.migrate(migrator.drop_column("core_regime", "receiving_group_id"),
                     migrator.drop_column("core_regime", "receiving_rule"),
                     migrator.drop_column("core_unit_group", "owner_id"))
