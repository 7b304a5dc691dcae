"""Long work followed with a progress bar (issue 14 item 10, ``core_background_job``): what it
does, whose it is, how far it has got, and what it left (a link, a sentence, a file to download).

Frozen like 0001: nothing here imports ``core.background``.
"""

import datetime

from peewee import BlobField, BooleanField, CharField, DateTimeField, ForeignKeyField, IntegerField, Model, TextField


def _models(db):
    def now():
        return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)

    class Base(Model):
        class Meta:
            database = db
            legacy_table_names = False

    class User(Base):
        class Meta:
            table_name = "core_user"

    class BackgroundJob(Base):
        kind = CharField(max_length=60)
        title = CharField(max_length=120)
        title_params = TextField(default="{}")
        account = ForeignKeyField(User, on_delete="CASCADE", backref="+")
        status = CharField(max_length=12, default="running")
        done = IntegerField(default=0)
        total = IntegerField(null=True)
        phase = CharField(max_length=120, default="background.phase.waiting")
        detached = BooleanField(default=False)
        process = CharField(max_length=120)
        back_url = CharField(max_length=600, default="")
        result_url = CharField(max_length=600, default="")
        summary = CharField(max_length=120, default="")
        summary_params = TextField(default="{}")
        file_name = CharField(max_length=200, default="")
        file_type = CharField(max_length=120, default="")
        file_data = BlobField(null=True)
        error = TextField(default="")
        created_at = DateTimeField(default=now)
        updated_at = DateTimeField(default=now)
        finished_at = DateTimeField(null=True)

        class Meta:
            table_name = "core_background_job"
            indexes = ((("account", "created_at"), False), (("status", "process"), False))

    return BackgroundJob


def up(migrator, db):
    db.create_tables([_models(db)])


def down(migrator, db):
    db.drop_tables([_models(db)])
