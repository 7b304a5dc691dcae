"""Figures at ten years of a national deployment (issue 17 item 7; bench/figures_scale.py).

PostgreSQL only; SQLite keeps the indexes of 0012. Frozen like 0001: nothing here imports
``core.catalogue.figures``.
"""

from peewee import SqliteDatabase


def up(migrator, db):
    if isinstance(db, SqliteDatabase):
        return
    db.execute_sql('DROP INDEX IF EXISTS "core_indicator_value_unit_id"')


def down(migrator, db):
    if isinstance(db, SqliteDatabase):
        return
    db.execute_sql('CREATE INDEX IF NOT EXISTS "core_indicator_value_unit_id" ON "core_indicator_value" ("unit_id")')
