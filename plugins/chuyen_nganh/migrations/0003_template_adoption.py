"""chuyen_nganh_template_adoption: which department adopted which shipped sector regime template,
and the draft regime it made (issue 15, item 6; plugins/chuyen_nganh/adopt.py). Unique by department
and template: a second adoption is refused. A frozen copy of the model as it was when this step was
written."""

import datetime as dt

from peewee import CharField, DateTimeField, IntegerField, Model


def _now():
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def up(migrator, db):
    class TemplateAdoption(Model):
        department_unit_id = IntegerField()
        template = CharField(max_length=40)
        sector = CharField(max_length=20)
        delegation_id = IntegerField()
        regime_id = IntegerField()
        adopted_at = DateTimeField(default=_now)
        adopted_by = IntegerField(null=True)

        class Meta:
            database = db
            table_name = "chuyen_nganh_template_adoption"
            indexes = ((("department_unit_id", "template"), True),)

    db.create_tables([TemplateAdoption])


def down(migrator, db):
    db.execute_sql("DROP TABLE chuyen_nganh_template_adoption")
