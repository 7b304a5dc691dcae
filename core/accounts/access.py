"""Roles and grants, and the rules for handing them out.

A unit administrator (``core.unit.admin`` at a unit) may grant a role only
inside the subtree they administer, only to accounts whose unit lies there,
only a role whose every permission they hold themselves at that unit, and
never to themselves (security.md ACL-04). A role that only a plugin's records
give (``Role.assignable`` false: a delegation's administrators) nobody grants by
hand, a system administrator included: the grant would outlive the records.
Removing a grant ends the user's sessions at once, so the lost right is gone on
their next click.
"""

from __future__ import annotations

from peewee import BooleanField, CharField, DateTimeField, ForeignKeyField

from core.db import CoreModel, Prepared, transaction
from core.errors import Forbidden, NotFound
from core.models import Session, Unit, User, utcnow
from core.units.tree import ancestor_ids, subtree_ids

ADMIN_CODE = "core.unit.admin"


ORIGIN_CORE = "core"  # created by the core's migrations
ORIGIN_LOCAL = "local"  # defined by a system administrator on the roles screen
# Any other origin is the name of the plugin that declares the role (``core.accounts.roles``).


class Role(CoreModel):
    code = CharField(max_length=100, unique=True)
    name = CharField(max_length=255)  # Vietnamese
    name_en = CharField(max_length=255, default="")
    origin = CharField(max_length=60, default=ORIGIN_LOCAL)
    is_builtin = BooleanField(default=False)  # origin "core": what the older migrations read
    # False: only its plugin's records give it (``RoleSpec.assignable``); nobody grants it by hand.
    assignable = BooleanField(default=True)

    @property
    def label_key(self) -> str | None:
        """The core's roles are named in the catalogue; the others by their stored names."""
        return f"role.{self.code}" if self.origin == ORIGIN_CORE else None

    @property
    def editable(self) -> bool:
        """Only a role defined on the roles screen changes there; the others are declared in code."""
        return self.origin == ORIGIN_LOCAL

    def title(self, lang: str) -> str:
        """The stored name in ``lang`` (English falls back to Vietnamese when none was given)."""
        return self.name_en if lang == "en" and self.name_en else self.name

    def codes(self) -> frozenset[str]:
        return frozenset(rp.code for rp in RolePermission.select().where(RolePermission.role == self))


class RolePermission(CoreModel):
    role = ForeignKeyField(Role, backref="permissions", on_delete="CASCADE")
    code = CharField(max_length=100)

    class Meta:
        indexes = ((("role", "code"), True),)


class Grant(CoreModel):
    user = ForeignKeyField(User, backref="grants", on_delete="CASCADE")
    role = ForeignKeyField(Role, on_delete="RESTRICT")
    unit = ForeignKeyField(Unit, on_delete="CASCADE")
    granted_by = ForeignKeyField(User, null=True, on_delete="SET NULL")
    granted_at = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("user", "role", "unit"), True),)


_GRANTS = Prepared(lambda p: Grant.select(Grant.id, Grant.unit, RolePermission.code)
                   .join(RolePermission, on=(RolePermission.role == Grant.role))
                   .where(Grant.user == p.user_id).tuples())  # every request: compiled once


def grants_of(user_id: int) -> tuple[tuple[int, frozenset[str]], ...]:
    """(unit id, codes) per grant of the user: one query, for the request's Access."""
    by_grant: dict[int, tuple[int, set[str]]] = {}
    for grant_id, unit_id, code in _GRANTS.run(user_id=user_id):
        by_grant.setdefault(grant_id, (unit_id, set()))[1].add(code)
    return tuple((unit_id, frozenset(codes)) for unit_id, codes in by_grant.values())


def admin_scope(access) -> list[int] | None:
    """Unit ids an administrator manages (whole subtrees); None means every unit."""
    roots = access.roots(ADMIN_CODE)
    if roots is None:
        return None
    return sorted({uid for root in roots for uid in subtree_ids(root)})


def check_manages_unit(access, unit_id: int) -> None:
    """Refuse unless ``access`` holds ``core.unit.admin`` at ``unit_id`` (resolved on the server)."""
    if Unit.get_or_none(Unit.id == unit_id) is None or not access.allowed(ADMIN_CODE, ancestor_ids(unit_id)):
        raise NotFound()


def beyond_own(access, codes, chain) -> list[str]:
    """The codes ``access`` may neither hold nor delegate at the unit with this ancestor chain.

    "No higher than their own" (ACL-04): a code counts as within one's own rights when one
    holds it there, or when it is delegable and one administers the unit.
    """
    administers = access.allowed(ADMIN_CODE, chain)
    permissions = access.registry.permissions
    return sorted(code for code in codes if not access.allowed(code, chain)
                  and not (administers and code in permissions and permissions[code].delegable))


def grant_role(access, user: User, role: Role, unit_id: int) -> Grant:
    """Give ``user`` ``role`` at ``unit_id`` on behalf of ``access``'s actor."""
    actor = access.actor
    check_manages_unit(access, unit_id)
    check_manages_unit(access, user.unit_id)
    if actor is not None and user.id == actor.id:
        raise Forbidden("access.error.self_grant")
    if not role.assignable:
        raise Forbidden("access.error.role_not_assignable")
    chain = ancestor_ids(unit_id)
    missing = beyond_own(access, role.codes(), chain)
    if missing:
        raise Forbidden("access.error.role_above_own", code=missing[0])
    with transaction():
        existing = Grant.get_or_none(user=user, role=role, unit=unit_id)
        if existing is not None:
            return existing
        return Grant.create(user=user, role=role, unit=unit_id, granted_by=actor)


def revoke_grant(access, grant_id: int) -> Grant:
    """Remove a grant; the user's sessions end so the right is gone at once."""
    grant = Grant.get_or_none(Grant.id == grant_id)
    if grant is None:
        raise NotFound()
    check_manages_unit(access, grant.unit_id)
    if access.actor is not None and grant.user_id == access.actor.id:
        raise Forbidden("access.error.self_grant")
    with transaction():
        Grant.delete().where(Grant.id == grant.id).execute()
        Session.delete().where(Session.user == grant.user_id).execute()
    return grant
