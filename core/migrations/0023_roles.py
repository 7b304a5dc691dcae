"""Roles from three origins (issue 13): the core's built-in roles, roles a plugin declares
(``<plugin>.<role>``) and roles a system administrator defines on the roles screen.

``core_role.origin`` says which: "core", the plugin's name, or "local". ``name`` stays the
Vietnamese name and ``name_en`` adds the English one (a plugin's role takes both from its
locale at start-up; a role defined here takes both from the form). ``code`` widens to 100
characters, the length of a permission code, for namespaced plugin roles (SQLite does not
enforce a VARCHAR length, so only PostgreSQL needs the change).

Frozen like 0001: nothing here imports ``core.accounts``.
"""

from peewee import SQL, CharField, PostgresqlDatabase

# The built-in roles' English names at the time of this migration (the screens read the catalogue).
ENGLISH = {
    "viewer": "Viewer",
    "reporter": "Reporter",
    "receiver": "Receiver",
    "unit_admin": "Unit administrator",
    "catalogue_admin": "Indicator catalogue administrator",
    "regime_editor": "Drafts reporting regimes",
    "regime_issuer": "Issues reporting regimes",
    "clerk": "Clerk (applies the unit's seal)",
}


def up(migrator, db):
    migrator.migrate(
        migrator.add_column("core_role", "origin",
                            CharField(max_length=60, default="local", constraints=[SQL("DEFAULT 'local'")]),
                            allow_not_null=True),
        migrator.add_column("core_role", "name_en",
                            CharField(max_length=255, default="", constraints=[SQL("DEFAULT ''")]),
                            allow_not_null=True),
    )
    if isinstance(db, PostgresqlDatabase):
        db.execute_sql('ALTER TABLE "core_role" ALTER COLUMN "code" TYPE VARCHAR(100)')
    # Every built-in role so far came from the core's migrations; the others were made by hand.
    p = db.param  # the driver's placeholder: the values below are bound parameters (nosec B608)
    db.execute_sql(f'UPDATE "core_role" SET "origin" = \'core\' WHERE "is_builtin" = {p}', (True,))  # nosec B608
    for code, name in ENGLISH.items():
        db.execute_sql(f'UPDATE "core_role" SET "name_en" = {p} WHERE "code" = {p} AND "origin" = \'core\'',  # nosec B608
                       (name, code))


def down(migrator, db):
    if isinstance(db, PostgresqlDatabase):
        db.execute_sql('ALTER TABLE "core_role" ALTER COLUMN "code" TYPE VARCHAR(40)')
    migrator.migrate(migrator.drop_column("core_role", "name_en"),
                     migrator.drop_column("core_role", "origin"))
