"""Rights on the indicator catalogue (issue 4).

``core.indicator.view`` (browse, search, open an indicator) goes to the built-in
roles viewer, reporter, receiver and unit_admin: whoever works with reports needs
to read the catalogue. ``core.indicator.edit`` (edit, create, import) goes to no
existing role: a new built-in role ``catalogue_admin`` ("Quản lý danh mục chỉ
tiêu") holds it, with core.unit.view and core.indicator.view. System
administrators have every right already.

Frozen like 0002: nothing here imports ``core.accounts.access``.
"""

from peewee import BooleanField, CharField, ForeignKeyField, Model

VIEW, EDIT = "core.indicator.view", "core.indicator.edit"
VIEWERS = ("viewer", "reporter", "receiver", "unit_admin")
NEW_ROLE = ("catalogue_admin", "Quản lý danh mục chỉ tiêu", ("core.unit.view", VIEW, EDIT))


def _models(db):
    class Base(Model):
        class Meta:
            database = db
            legacy_table_names = False

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

    return Role, RolePermission


def up(migrator, db):
    Role, RolePermission = _models(db)
    for role in Role.select().where(Role.code.in_(VIEWERS) & (Role.is_builtin == True)):  # noqa: E712
        if not RolePermission.select().where((RolePermission.role == role) & (RolePermission.code == VIEW)).exists():
            RolePermission.create(role=role, code=VIEW)
    code, name, permissions = NEW_ROLE
    role = Role.get_or_none(Role.code == code) or Role.create(code=code, name=name, is_builtin=True)
    for permission in permissions:
        if not RolePermission.select().where((RolePermission.role == role)
                                             & (RolePermission.code == permission)).exists():
            RolePermission.create(role=role, code=permission)


def down(migrator, db):
    Role, RolePermission = _models(db)
    RolePermission.delete().where(RolePermission.code.in_((VIEW, EDIT))).execute()
    role = Role.get_or_none(Role.code == NEW_ROLE[0])
    if role is not None:
        db.execute_sql('DELETE FROM "core_grant" WHERE "role_id" = %s' % int(role.id))  # nosec B608 (an integer)
        RolePermission.delete().where(RolePermission.role == role).execute()
        role.delete_instance()
