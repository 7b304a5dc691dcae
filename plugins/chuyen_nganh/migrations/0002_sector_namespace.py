"""chuyen_nganh_sector_namespace: the two letters each sector owns in the indicator catalogue's local
codes (issue 15, item 2; plugins/chuyen_nganh/catalogue.py). Unique by sector and unique by letters,
so two sectors never share them. A frozen copy of the model as it was when this step was written."""

import datetime as dt

from peewee import CharField, DateTimeField, IntegerField, Model


def _now():
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def up(migrator, db):
    class SectorNamespace(Model):
        sector = CharField(max_length=20, unique=True)
        prefix = CharField(max_length=2, unique=True)
        delegation_id = IntegerField()
        claimed_at = DateTimeField(default=_now)
        claimed_by = IntegerField(null=True)

        class Meta:
            database = db
            table_name = "chuyen_nganh_sector_namespace"

    db.create_tables([SectorNamespace])


def down(migrator, db):
    db.execute_sql("DROP TABLE chuyen_nganh_sector_namespace")
