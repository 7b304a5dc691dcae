"""A role that only a plugin's records give (issue 15 follow-up): ``core_role.assignable`` is false
for a role a plugin declares with ``RoleSpec(assignable=False)`` (a delegation's administrators,
while it is in force), written at start-up by ``core.accounts.roles.sync_declared``. Nobody grants
such a role by hand. Kept in the table, not only read from the registry, so that the refusal holds
while the plugin is failed or switched off: its role row, with the core's permissions it carries,
is still there. True for every role so far.

Frozen like 0001: nothing here imports ``core.accounts``.
"""

from peewee import SQL, BooleanField


def up(migrator, db):
    migrator.migrate(migrator.add_column("core_role", "assignable",
                                         BooleanField(default=True, constraints=[SQL("DEFAULT TRUE")]),
                                         allow_not_null=True))


def down(migrator, db):
    migrator.migrate(migrator.drop_column("core_role", "assignable"))
