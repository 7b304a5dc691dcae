"""Roles from three origins, and the system administrator's role editor.

- The core's built-in roles (viewer, reporter, …) come from its migrations.
- A plugin declares roles (``Domain.roles``: ``<plugin>.<role>``) and adds its own permissions to
  built-in roles (``Domain.add_to_roles``). ``sync_declared`` writes both into the role tables at
  start-up: idempotent, in one transaction, only ever adding — a link an administrator or an older
  release made is never removed (a permission nobody declares any more grants nothing anyway,
  ``core.accounts.permissions``). Whether a role may be granted by hand (``RoleSpec.assignable``)
  follows the declaration, and stays in the table while the plugin is failed or gone.
- A system administrator defines further roles from the declared permissions (``save_role``,
  ``delete_role``). Those are the only roles the editor changes: the others are declared in code,
  and widening one of them would silently widen every grant of it across the province.

Granting is unchanged (``core.accounts.access.grant_role``): nobody hands out a role holding a
permission they could neither hold nor delegate at that unit, whoever defined the role, nor a role
only a plugin's records give.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass, field

from peewee import IntegrityError, fn

from core import audit
from core.accounts.access import ORIGIN_CORE, ORIGIN_LOCAL, Grant, Role, RolePermission
from core.db import transaction
from core.errors import Forbidden, NotFound, ValidationError

log = logging.getLogger("baocao.roles")

PERMISSION = "core.role.admin"
# A role defined here: no dot, so it can never take a plugin's namespaced code.
LOCAL_CODE = re.compile(r"[a-z][a-z0-9_]{1,39}", re.ASCII)
NAME_MAX = 255


# -- start-up: what the plugins declare ------------------------------------------------------------------

def sync_declared(registry) -> dict[str, int]:
    """Write the plugins' roles and their additions to built-in roles into the tables.

    Returns how many roles and links were added (0 and 0 on every start after the first)."""
    added = {"roles": 0, "links": 0}
    with transaction():
        for spec in registry.roles():
            names = {"name": registry.catalog.gettext("vi", spec.label)[:NAME_MAX],
                     "name_en": registry.catalog.gettext("en", spec.label)[:NAME_MAX]}
            role = Role.get_or_none(Role.code == spec.code)
            if role is None:
                # ON CONFLICT DO NOTHING: two processes starting together both get here.
                Role.insert(code=spec.code, origin=spec.plugin, assignable=bool(spec.assignable),
                            **names).on_conflict_ignore().execute()
                role = Role.get(Role.code == spec.code)
                added["roles"] += 1
            if role.origin != spec.plugin:
                log.error("role %s is already defined (origin %s); %s's declaration is skipped",
                          spec.code, role.origin, spec.plugin)
                continue
            if (role.name, role.name_en) != (names["name"], names["name_en"]):
                Role.update(**names).where(Role.id == role.id).execute()  # the plugin's wording changed
            if role.assignable != bool(spec.assignable):
                Role.update(assignable=bool(spec.assignable)).where(Role.id == role.id).execute()
                if not spec.assignable:
                    _warn_hand_grants(role)
            added["links"] += _link(role, spec.permissions)
        for name, domain in registry.domains.items():
            for target, codes in domain.add_to_roles.items():
                role = Role.get_or_none((Role.code == target) & (Role.origin == ORIGIN_CORE))
                if role is not None:  # a built-in role this database does not have: nothing to add to
                    added["links"] += _link(role, codes)
    return added


def _warn_hand_grants(role: Role) -> None:
    """A role that became plugin-given only: grants made by hand before stay (the sync never
    removes anything), so the operator is told to review them on the accounts screens."""
    held = Grant.select().where(Grant.role == role).count()
    if held:
        log.warning("role %s is now given only by its plugin's records, but %d grant(s) of it were made "
                    "by hand: review them on the accounts screens", role.code, held)


def _link(role: Role, codes) -> int:
    have = role.codes()
    missing = [code for code in dict.fromkeys(codes) if code not in have]
    for code in missing:
        RolePermission.insert(role=role, code=code).on_conflict_ignore().execute()
    return len(missing)


# -- the roles screen ------------------------------------------------------------------------------------

@dataclass
class RoleRow:
    role: Role
    codes: list[str]
    granted: int  # how many grants use it


@dataclass
class RoleGroup:
    origin: str  # "core", a plugin's name, or "local"
    label: str  # message key
    rows: list[RoleRow] = field(default_factory=list)


@dataclass(frozen=True)
class PermissionGroup:
    plugin: str
    label: str  # message key of the plugin (the core's: "core.label")
    permissions: tuple  # core.registry.Permission


def check_role_admin(access) -> None:
    """Only a system administrator defines roles: a person who could edit a role granted to
    them could widen their own rights."""
    actor = access.actor
    if actor is None or not getattr(actor, "is_admin", False) or not access.allowed(PERMISSION):
        raise Forbidden("roles.error.not_admin")


def permission_groups(registry) -> list[PermissionGroup]:
    """The permissions a role may hold, grouped by the plugin that declares them, core first."""
    groups = []
    for name, domain in registry.domains.items():
        perms = tuple(p for p in registry.permissions.values() if p.plugin == name and p.scope != "system")
        if perms:
            groups.append(PermissionGroup(name, domain.label, perms))
    return groups


def list_roles(access, registry) -> list[RoleGroup]:
    """Every role, grouped: built-in, then each plugin's, then those defined here."""
    check_role_admin(access)
    links: dict[int, list[str]] = {}
    for role_id, code in RolePermission.select(RolePermission.role, RolePermission.code).tuples():
        links.setdefault(role_id, []).append(code)
    counts = dict(Grant.select(Grant.role, fn.COUNT(Grant.id)).group_by(Grant.role).tuples())
    groups: dict[str, RoleGroup] = {ORIGIN_CORE: RoleGroup(ORIGIN_CORE, "roles.group.core")}
    local = RoleGroup(ORIGIN_LOCAL, "roles.group.local")
    for role in Role.select().order_by(Role.id):
        row = RoleRow(role, sorted(links.get(role.id, [])), counts.get(role.id, 0))
        if role.origin == ORIGIN_LOCAL:
            local.rows.append(row)
            continue
        if role.origin not in groups:
            domain = registry.domains.get(role.origin)
            groups[role.origin] = RoleGroup(role.origin, domain.label if domain else "roles.group.gone")
        groups[role.origin].rows.append(row)
    return [*groups.values(), local]


def get_role(access, role_id: int) -> RoleRow:
    check_role_admin(access)
    role = Role.get_or_none(Role.id == role_id)
    if role is None:
        raise NotFound()
    return RoleRow(role, sorted(role.codes()), Grant.select().where(Grant.role == role).count())


def _clean(text, limit: int) -> str:
    return unicodedata.normalize("NFC", str(text or "")).strip()[: limit + 1]


def _checked(registry, code: str, name: str, name_en: str, permissions, *, new: bool) -> tuple[str, str, str, list]:
    errors = {}
    code, name, name_en = _clean(code, 40), _clean(name, NAME_MAX), _clean(name_en, NAME_MAX)
    if new:
        if not code:
            errors["code"] = "form.error.required"
        elif not LOCAL_CODE.fullmatch(code):
            errors["code"] = "roles.error.code"
        elif Role.select().where(Role.code == code).exists():
            errors["code"] = "roles.error.code_taken"
    if not name:
        errors["name"] = "form.error.required"
    elif len(name) > NAME_MAX:
        errors["name"] = "roles.error.too_long"
    if len(name_en) > NAME_MAX:
        errors["name_en"] = "roles.error.too_long"
    wanted = list(dict.fromkeys(str(p) for p in permissions))
    declared = registry.permissions
    if not wanted:
        errors["permissions"] = "roles.error.no_permission"
    elif any(p not in declared or declared[p].scope == "system" for p in wanted):
        errors["permissions"] = "form.error.choice"
    if errors:
        raise ValidationError(errors)
    return code, name, name_en, wanted


def save_role(access, registry, *, role_id: int | None = None, code: str = "", name: str = "", name_en: str = "",
              permissions=()) -> Role:
    """Create (``role_id`` None) or change a role defined here; the code is fixed once created."""
    check_role_admin(access)
    role = None
    if role_id is not None:
        role = Role.get_or_none(Role.id == role_id)
        if role is None:
            raise NotFound()
        if not role.editable:
            raise Forbidden("roles.error.not_editable")
    code, name, name_en, wanted = _checked(registry, code, name, name_en, permissions, new=role is None)
    with transaction():
        if role is None:
            try:
                role = Role.create(code=code, name=name, name_en=name_en, origin=ORIGIN_LOCAL, is_builtin=False)
            except IntegrityError:  # created by someone else since the check above
                raise ValidationError({"code": "roles.error.code_taken"}) from None
            _link(role, wanted)
            audit.record("role.create", actor=access.actor, object_type="role", object_id=role.id,
                         details={"code": code, "permissions": wanted})
            return role
        before = role.codes()
        # A permission not declared at present (its plugin failed, or is gone) is kept: it grants
        # nothing meanwhile, and the form could not show it to be unticked.
        removed = sorted(c for c in before - set(wanted) if c in registry.permissions)
        added = [c for c in wanted if c not in before]
        Role.update(name=name, name_en=name_en).where(Role.id == role.id).execute()
        if removed:
            RolePermission.delete().where((RolePermission.role == role) & RolePermission.code.in_(removed)).execute()
        _link(role, added)
        audit.record("role.edit", actor=access.actor, object_type="role", object_id=role.id,
                     details={"code": role.code, "added": added, "removed": removed,
                              "granted": Grant.select().where(Grant.role == role).count()})
    return Role.get_by_id(role.id)


def delete_role(access, role_id: int) -> Role:
    """Remove a role defined here that nobody holds (revoke its grants first)."""
    check_role_admin(access)
    role = Role.get_or_none(Role.id == role_id)
    if role is None:
        raise NotFound()
    if not role.editable:
        raise Forbidden("roles.error.not_editable")
    with transaction():
        granted = Grant.select().where(Grant.role == role).count()
        if granted:
            raise Forbidden("roles.error.granted", count=granted)
        codes = sorted(role.codes())
        try:
            RolePermission.delete().where(RolePermission.role == role).execute()
            Role.delete().where(Role.id == role.id).execute()
        except IntegrityError:  # granted in the meantime (PostgreSQL: the grant's RESTRICT key)
            raise Forbidden("roles.error.granted", count=1) from None
        audit.record("role.delete", actor=access.actor, object_type="role", object_id=role.id,
                     details={"code": role.code, "permissions": codes})
    return role
