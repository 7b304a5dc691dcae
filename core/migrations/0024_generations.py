"""Change counters (issue 12 item 24): one row per set of rows a process keeps a derived copy of
(a unit's figures, the indicator catalogue), raised in the transaction that writes them, so that
a screen knows from one primary-key read that its copy is still good.

Frozen like 0001: nothing here imports ``core.generations``.
"""

from peewee import BigIntegerField, CharField, Model


def up(migrator, db):
    class Base(Model):
        class Meta:
            database = db
            legacy_table_names = False

    class Generation(Base):
        key = CharField(max_length=64, primary_key=True)
        value = BigIntegerField(default=0)

        class Meta:
            table_name = "core_generation"

    db.create_tables([Generation])


def down(migrator, db):
    db.execute_sql('DROP TABLE IF EXISTS "core_generation"')
