"""Plugin notices in people's notifications (issue 15: a delegation's steps are notified):
``core_notification.report`` may be empty, and a notice a plugin sends keeps its plugin, its
message key, its wording in both languages (``params``, JSON, frozen when sent, as its e-mail is)
and the page it opens (``link``). Report notifications keep ``plugin`` empty.

Frozen like 0001: nothing here imports ``core.reporting``.
"""

from peewee import SQL, CharField, TextField


def up(migrator, db):
    migrator.migrate(
        migrator.drop_not_null("core_notification", "report_id"),
        migrator.add_column("core_notification", "plugin",
                            CharField(max_length=40, default="", constraints=[SQL("DEFAULT ''")])),
        migrator.add_column("core_notification", "message",
                            CharField(max_length=120, default="", constraints=[SQL("DEFAULT ''")])),
        migrator.add_column("core_notification", "params",
                            TextField(default="{}", constraints=[SQL("DEFAULT '{}'")])),
        migrator.add_column("core_notification", "link",
                            CharField(max_length=500, default="", constraints=[SQL("DEFAULT ''")])),
    )


def down(migrator, db):
    migrator.migrate(*(migrator.drop_column("core_notification", name)
                       for name in ("link", "params", "message", "plugin")))
