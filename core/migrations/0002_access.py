"""Roles (named sets of permission codes) and grants (user × role × unit, for the subtree),
with the four built-in roles that separate viewing, reporting, receiving and administering."""

import datetime

from peewee import BooleanField, CharField, DateTimeField, ForeignKeyField, Model

BUILTIN_ROLES = [
    ("viewer", "Xem số liệu", ["core.unit.view"]),
    ("reporter", "Nhập và gửi báo cáo", ["core.unit.view", "core.report.submit"]),
    ("receiver", "Tiếp nhận báo cáo", ["core.unit.view", "core.report.receive"]),
    ("unit_admin", "Quản trị đơn vị",
     ["core.unit.view", "core.unit.admin", "core.audit.view", "core.plugin.admin"]),
]


def up(migrator, db):
    def now():
        return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)

    class Base(Model):
        class Meta:
            database = db
            legacy_table_names = False

    class Unit(Base):
        class Meta:
            table_name = "core_unit"

    class User(Base):
        class Meta:
            table_name = "core_user"

    class Role(Base):
        code = CharField(max_length=40, unique=True)
        name = CharField(max_length=255)
        is_builtin = BooleanField(default=False)

        class Meta:
            table_name = "core_role"

    class RolePermission(Base):
        role = ForeignKeyField(Role, on_delete="CASCADE")
        code = CharField(max_length=100)

        class Meta:
            table_name = "core_role_permission"
            indexes = ((("role", "code"), True),)

    class Grant(Base):
        user = ForeignKeyField(User, on_delete="CASCADE")
        role = ForeignKeyField(Role, on_delete="RESTRICT")
        unit = ForeignKeyField(Unit, on_delete="CASCADE")
        granted_by = ForeignKeyField(User, null=True, on_delete="SET NULL")
        granted_at = DateTimeField(default=now)

        class Meta:
            table_name = "core_grant"
            indexes = ((("user", "role", "unit"), True),)

    db.create_tables([Role, RolePermission, Grant])
    for code, name, permissions in BUILTIN_ROLES:
        role = Role.create(code=code, name=name, is_builtin=True)
        for permission in permissions:
            RolePermission.create(role=role, code=permission)


def down(migrator, db):
    for table in ("core_grant", "core_role_permission", "core_role"):
        db.execute_sql(f'DROP TABLE IF EXISTS "{table}"')
