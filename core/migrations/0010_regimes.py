"""Reporting regimes (chế độ báo cáo, Decree 09/2019 Art. 7), unit groups, and the reports opened
for each period, plus the rights and built-in roles to prepare and issue regimes.

``core_regime`` holds one row per (code, version): a draft is edited in place; editing an issued
regime makes a new draft version, and issuing it retires the previous one. ``core_report`` keeps
the exact regime version it was opened with; UNIQUE(regime, unit, period_start, period_end) makes
opening a period twice create nothing.

Frozen like 0001: nothing here imports ``core.regimes.regimes`` or ``core.reporting.opening``.
"""

import datetime

from peewee import (BooleanField, CharField, Check, DateField, DateTimeField, ForeignKeyField, IntegerField,
                    Model, TextField)

REGIME_TYPES = ("periodic", "thematic", "ad_hoc")
CONTENT_TYPES = ("text", "data", "both")
REGIME_STATUSES = ("draft", "issued", "suspended", "retired")
FREQUENCIES = ("monthly", "quarterly", "half_year", "nine_months", "annual", "custom")
CUTOFF_RULES = ("decree", "custom")
REPORT_STATUSES = ("not_started", "draft", "submitted", "returned", "accepted")

NEW_ROLES = [
    ("regime_editor", "Soạn thảo chế độ báo cáo", ["core.unit.view", "core.regime.view", "core.regime.edit"]),
    ("regime_issuer", "Ban hành chế độ báo cáo", ["core.unit.view", "core.regime.view", "core.regime.issue"]),
]
VIEW_TO = ("viewer", "reporter", "receiver", "unit_admin")


def _in(column, values):
    return Check(f"{column} IN (%s)" % ", ".join(f"'{v}'" for v in values))


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

    class UnitGroup(Base):
        code = CharField(max_length=40, unique=True)
        name = CharField(max_length=255)

        class Meta:
            table_name = "core_unit_group"

    class UnitGroupMember(Base):
        group = ForeignKeyField(UnitGroup, on_delete="CASCADE")
        unit = ForeignKeyField(Unit, on_delete="CASCADE")

        class Meta:
            table_name = "core_unit_group_member"
            indexes = ((("group", "unit"), True),)

    class Regime(Base):
        code = CharField(max_length=40)
        version = IntegerField(constraints=[Check("version >= 1")])
        regime_type = CharField(max_length=10, constraints=[_in("regime_type", REGIME_TYPES)])
        name = TextField()
        content = TextField(default="")
        content_type = CharField(max_length=5, default="both", constraints=[_in("content_type", CONTENT_TYPES)])
        units_selector = TextField(default="{}")
        receiving_unit = ForeignKeyField(Unit, null=True, on_delete="RESTRICT")
        sending_methods = TextField(default="[]")
        deadline_rules = TextField(default="[]")
        frequency = CharField(max_length=12, null=True, constraints=[_in("frequency", FREQUENCIES)])
        cutoff_rule = CharField(max_length=10, default="decree", constraints=[_in("cutoff_rule", CUTOFF_RULES)])
        outline = TextField(default="")
        data_forms = TextField(default="")
        guidance = TextField(default="")
        legal_number = CharField(max_length=100, default="")
        legal_date = DateField(null=True)
        legal_issuer = CharField(max_length=255, default="")
        issuing_unit = ForeignKeyField(Unit, null=True, on_delete="RESTRICT")
        preparing_unit = ForeignKeyField(Unit, null=True, on_delete="RESTRICT")
        plugin = CharField(max_length=40, null=True)
        status = CharField(max_length=10, default="draft", constraints=[_in("status", REGIME_STATUSES)])
        valid_from = DateField(null=True)
        valid_to = DateField(null=True)
        issued_at = DateTimeField(null=True)
        issued_by = ForeignKeyField(User, null=True, on_delete="SET NULL")
        created_at = DateTimeField(default=now)
        created_by = ForeignKeyField(User, null=True, on_delete="SET NULL")
        updated_at = DateTimeField(default=now)
        updated_by = ForeignKeyField(User, null=True, on_delete="SET NULL")

        class Meta:
            table_name = "core_regime"
            indexes = ((("code", "version"), True), (("status",), False))

    class Report(Base):
        regime = ForeignKeyField(Regime, on_delete="RESTRICT")
        unit = ForeignKeyField(Unit, on_delete="RESTRICT")
        frequency = CharField(max_length=12, constraints=[_in("frequency", FREQUENCIES)])
        year = IntegerField()
        period_index = IntegerField(default=0)
        period_start = DateField()
        period_end = DateField()
        label = CharField(max_length=255, default="")
        level = CharField(max_length=255, default="")
        nominal_deadline = DateField()
        deadline = DateField(index=True)
        status = CharField(max_length=12, default="not_started", constraints=[_in("status", REPORT_STATUSES)])
        opened_at = DateTimeField(default=now)
        opened_by = ForeignKeyField(User, null=True, on_delete="SET NULL")

        class Meta:
            table_name = "core_report"
            indexes = ((("regime", "unit", "period_start", "period_end"), True), (("unit", "deadline"), False))

    db.create_tables([UnitGroup, UnitGroupMember, Regime, Report])
    for code, name, permissions in NEW_ROLES:
        role = Role.get_or_none(Role.code == code) or Role.create(code=code, name=name, is_builtin=True)
        for permission in permissions:
            if not RolePermission.select().where((RolePermission.role == role)
                                                 & (RolePermission.code == permission)).exists():
                RolePermission.create(role=role, code=permission)
    for code in VIEW_TO:
        role = Role.get_or_none(Role.code == code)
        if role is not None and not RolePermission.select().where(
                (RolePermission.role == role) & (RolePermission.code == "core.regime.view")).exists():
            RolePermission.create(role=role, code="core.regime.view")


def down(migrator, db):
    db.execute_sql("DELETE FROM core_role_permission WHERE code IN "
                   "('core.regime.view', 'core.regime.edit', 'core.regime.issue')")
    db.execute_sql("DELETE FROM core_role WHERE code IN ('regime_editor', 'regime_issuer') "
                   "AND id NOT IN (SELECT role_id FROM core_grant)")
    for table in ("core_report", "core_regime", "core_unit_group_member", "core_unit_group"):
        db.execute_sql(f'DROP TABLE IF EXISTS "{table}"')
