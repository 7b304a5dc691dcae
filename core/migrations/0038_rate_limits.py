"""Per-caller request budgets (security.md API-04, ``core.rate_limits``): one row per bucket,
caller and minute, UNIQUE so that one UPSERT counts a request.

Frozen like 0001: nothing here imports ``core.rate_limits``.
"""

from peewee import CharField, DateTimeField, IntegerField, Model


def _model(db):
    class RateLimitWindow(Model):
        bucket = CharField(max_length=16)
        caller = CharField(max_length=80)
        window_start = DateTimeField()
        hits = IntegerField(default=1)

        class Meta:
            database = db
            table_name = "core_rate_limit_window"
            indexes = ((("bucket", "caller", "window_start"), True), (("window_start",), False))

    return RateLimitWindow


def up(migrator, db):
    db.create_tables([_model(db)])


def down(migrator, db):
    db.drop_tables([_model(db)])
