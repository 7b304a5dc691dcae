"""Plugin failures recorded outside the web server (issue 13): ``core_plugin_failure``, one row per
plugin, stage and error text with the process that saw it ("worker" or "command"), the first and
last time (naive UTC) and how many times, for the plugins page (core.plugin_failures).

Frozen like 0001: nothing here imports ``core.plugin_failures``.
"""

from peewee import Check, CharField, DateTimeField, IntegerField, Model


def _model(db):
    class PluginFailure(Model):
        plugin = CharField(max_length=100)
        stage = CharField(max_length=20)
        error = CharField(max_length=300)
        location = CharField(max_length=200, default="")
        process = CharField(max_length=10, constraints=[Check("process IN ('worker', 'command')")])
        first_at = DateTimeField()
        last_at = DateTimeField()
        occurrences = IntegerField(default=1)

        class Meta:
            database = db
            table_name = "core_plugin_failure"
            indexes = ((("plugin", "stage", "error"), True),)

    return PluginFailure


def up(migrator, db):
    db.create_tables([_model(db)])


def down(migrator, db):
    db.drop_tables([_model(db)])
