"""Core tables: units, users, sessions, plugin activation.

Frozen copies of the models as they were when this migration was written, so
later changes to ``core/models.py`` never change what this step creates.
"""

import datetime

from peewee import (BooleanField, CharField, Check, DateField, DateTimeField, ForeignKeyField, Model)


def up(migrator, db):
    def now():
        return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)

    class Base(Model):
        class Meta:
            database = db
            legacy_table_names = False

    class Unit(Base):
        code = CharField(max_length=40, unique=True)
        name = CharField(max_length=255)
        kind = CharField(max_length=20, constraints=[Check(
            "kind IN ('province', 'department', 'district', 'commune', 'agency', 'organisation', 'individual')")])
        parent = ForeignKeyField("self", null=True, on_delete="RESTRICT")
        admin_code = CharField(max_length=20, null=True)
        agency_code = CharField(max_length=40, null=True)
        valid_from = DateField(null=True)
        valid_to = DateField(null=True)

        class Meta:
            table_name = "core_unit"

    class User(Base):
        username = CharField(max_length=64, unique=True)
        full_name = CharField(max_length=255)
        password_hash = CharField(max_length=255)
        unit = ForeignKeyField(Unit, on_delete="RESTRICT")
        is_admin = BooleanField(default=False)
        is_active = BooleanField(default=True)
        must_change_password = BooleanField(default=False)
        language = CharField(max_length=5, null=True)
        created_at = DateTimeField(default=now)
        last_login_at = DateTimeField(null=True)
        previous_login_at = DateTimeField(null=True)

        class Meta:
            table_name = "core_user"

    class Session(Base):
        token_hash = CharField(max_length=64, unique=True)
        user = ForeignKeyField(User, on_delete="CASCADE")
        created_at = DateTimeField(default=now)
        last_seen_at = DateTimeField(default=now)
        client_address = CharField(max_length=64, null=True)
        user_agent = CharField(max_length=255, null=True)

        class Meta:
            table_name = "core_session"

    class PluginActivation(Base):
        unit = ForeignKeyField(Unit, on_delete="CASCADE")
        plugin = CharField(max_length=40)
        enabled = BooleanField()
        updated_by = ForeignKeyField(User, null=True, on_delete="SET NULL")
        updated_at = DateTimeField(default=now)

        class Meta:
            table_name = "core_plugin_activation"
            indexes = ((("unit", "plugin"), True),)

    db.create_tables([Unit, User, Session, PluginActivation])


def down(migrator, db):
    for table in ("core_plugin_activation", "core_session", "core_user", "core_unit"):
        db.execute_sql(f'DROP TABLE IF EXISTS "{table}"')
