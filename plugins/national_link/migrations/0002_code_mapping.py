"""national_link_code_map, the code mapping with vertical systems (ADX, DHIS2): a frozen copy of the
model as it was when this step was written. It stands alone: no other table of the plugin is needed."""

import datetime as dt

from peewee import CharField, DateTimeField, IntegerField, Model


def _now():
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def up(migrator, db):
    class CodeMap(Model):
        connector = CharField(max_length=40)
        kind = CharField(max_length=10)
        local_code = CharField(max_length=40)
        local_option = CharField(max_length=100, default="")
        remote_code = CharField(max_length=100)
        remote_option = CharField(max_length=100, default="")
        remote_attributes = CharField(max_length=255, default="")
        updated_at = DateTimeField(default=_now)
        updated_by = IntegerField(null=True)

        class Meta:
            database = db
            table_name = "national_link_code_map"
            indexes = ((("connector", "kind", "local_code", "local_option"), True),
                       (("connector", "kind", "remote_code", "remote_option"), True),
                       (("connector", "kind", "remote_code", "remote_attributes"), True))

    db.create_tables([CodeMap])


def down(migrator, db):
    db.execute_sql("DROP TABLE national_link_code_map")
