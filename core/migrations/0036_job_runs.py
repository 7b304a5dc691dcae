"""Worker job runs counted for the metrics (issue 17 item 6, ``core_job_run``): how often each job
ran, how it ended, when it last ran. ``/metrics`` reads it: the worker is another process.

Frozen like 0001: nothing here imports ``core.metrics``.
"""

from peewee import CharField, DateTimeField, IntegerField, Model


def _model(db):
    class JobRun(Model):
        job = CharField(max_length=120, primary_key=True)
        ok = IntegerField(default=0)
        error = IntegerField(default=0)
        last_run_at = DateTimeField(null=True)

        class Meta:
            database = db
            table_name = "core_job_run"

    return JobRun


def up(migrator, db):
    db.create_tables([_model(db)])


def down(migrator, db):
    db.drop_tables([_model(db)])
