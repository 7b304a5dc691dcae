"""Unit administrators and the account lifecycle (issue 3).

Accounts are issued by administrators: a system administrator anywhere, a unit
administrator (``core.unit.admin`` at a unit) inside the subtree below their
grant. Every operation here takes the actor's ``Access``, finds the target
account (or grant, or session) in the database and checks on the server that
its unit lies in the administrator's subtree; a unit named by a form is only
ever checked against that subtree, never trusted (security.md ACL-02, ACL-03).
An account outside the subtree is answered like a missing one (``NotFound``),
so nobody learns what lies beyond their units.

Taking control of an account (disable, enable, reset its password, unlock it,
end its sessions) needs more than the account's unit being in scope: the
administrator must hold every right the account holds, where it holds it, and
an account that administers a unit is controlled only from above that unit, by
a higher administrator, not by a peer at the same unit. Otherwise resetting a
peer's password would hand over the peer's account ("every person uses only
their own account"). Nobody takes control of their own account here, and only
a system administrator controls a system administrator's account.

"Every right the account holds" includes the roles a plugin's records give it
(hook ``role_grants``: a delegation names a department's administrators), which
no grant row shows. The web layer passes the app's plugins (``plugins``, a
``core.accounts.plugin_grants.PluginRights``) to every operation that takes
control of an account or changes its grants; without them (the CLI, a script)
no plugin is asked. While an account holds such rights beyond the
administrator's own, that administrator does not change its grants either: the
account acts under a decision taken above them.

Every operation is one transaction and writes its audit event inside it.
Passwords handed out here are temporary: random, valid for
``temp_password_hours``, and to be replaced at the first login (AUTH-05).
Disabling an account, resetting its password or removing one of its grants
ends its sessions at once (AUTH-10, SESS-05); a reset also revokes its API tokens.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from core import audit
from core.accounts import login as accounts
from core.accounts import mfa
from core.accounts import passwords
from core.units import tree as units
from core.accounts.access import (ADMIN_CODE, Grant, Role, admin_scope, beyond_own, check_manages_unit, grant_role, grants_of,
                         revoke_grant)
from core.db import transaction
from core.errors import Forbidden, NotFound, ValidationError
from core.i18n import fold
from core.models import Session, Unit, User, utcnow
from core.settings import Settings

log = logging.getLogger("baocao.account_admin")

STATUSES = ("active", "disabled", "locked", "temporary")
# Administrators' own actions that count as activity for the inactivity rule: an account
# enabled again, or given a fresh password, starts a new period (AUTH-10).
VOUCHING_ACTIONS = ("user.create", "user.enable", "user.password_reset")


# -- the administrator's scope --------------------------------------------------------------------

def scope_roots(access) -> list[int] | None:
    """The units at the top of the administrator's subtrees (None: every unit), without a
    root that lies inside another one's subtree."""
    roots = access.roots(ADMIN_CODE)
    if roots is None:
        return None
    tops = []
    for root in roots:
        above = set(units.ancestor_ids(root)[1:])
        if not above & set(roots):
            tops.append(root)
    return tops


def scope_units(access) -> list[units.Node]:
    """The units the administrator manages, as flattened tree nodes (ordered like
    ``core.units.tree.tree``: kind, then name, children under their parent)."""
    roots = scope_roots(access)
    if roots is None:
        return units.flatten(units.tree())
    nodes = [node for root in roots for node in units.tree(root)]
    return units.flatten(sorted(nodes, key=lambda n: units.sort_key(n.unit)))


def in_scope(access, unit_id) -> bool:
    if not isinstance(unit_id, int) or Unit.get_or_none(Unit.id == unit_id) is None:
        return False
    return access.allowed(ADMIN_CODE, units.ancestor_ids(unit_id))


def get_user(access, user_id: int) -> User:
    """The account, if its unit lies in the administrator's subtree; NotFound otherwise."""
    user = User.select(User, Unit).join(Unit).where(User.id == user_id).first() if isinstance(user_id, int) else None
    if user is None:
        raise NotFound()
    check_manages_unit(access, user.unit_id)
    return user


def _held_beyond(access, grants) -> bool:
    """Whether one of ``grants`` ((unit id, codes) pairs) carries a right the administrator neither
    holds nor delegates where it is held, or administers a unit they do not administer from above."""
    for unit_id, codes in grants:
        chain = access.ancestors(unit_id)
        if beyond_own(access, codes | {ADMIN_CODE}, chain):
            return True
        # A unit's administrator is controlled from above that unit, not by a peer.
        if ADMIN_CODE in codes and not (len(chain) > 1 and access.allowed(ADMIN_CODE, chain[1:])):
            return True
    return False


def control_refusal(access, user: User, plugins=None) -> str | None:
    """Why the administrator may not take control of this account (a message key), or None.
    ``plugins`` (``PluginRights``): the roles the plugins give the account count as its own."""
    actor = access.actor
    if actor is None:
        return "error.forbidden"
    if user.id == actor.id:
        return "users.error.self"
    if user.is_admin and not actor.is_admin:
        return "users.error.above_own"
    if actor.is_admin:
        return None
    given = plugins.of(user) if plugins is not None else ()
    if _held_beyond(access, (*grants_of(user.id), *given)):
        return "users.error.above_own"
    return None


def check_control(access, user: User, plugins=None) -> None:
    reason = control_refusal(access, user, plugins)
    if reason is not None:
        raise Forbidden(reason)


def grants_refusal(access, user: User, plugins=None) -> str | None:
    """Why the administrator may not change this account's grants at all (a message key), or None:
    while a plugin's records give it rights beyond the administrator's own. Each grant is then
    checked on its own (ACL-04, ``core.accounts.access``)."""
    actor = access.actor
    if plugins is None or actor is None or actor.is_admin or user.id == actor.id:
        return None
    return "users.error.above_own" if _held_beyond(access, plugins.of(user)) else None


def grantable_roles(access) -> list[Role]:
    """Roles the administrator could grant somewhere in their subtree (checked again per unit)."""
    roots = scope_roots(access)
    chains = [units.ancestor_ids(root) for root in roots] if roots is not None else [[]]
    everything = access.actor is not None and access.actor.is_admin
    found = []
    # A role only a plugin's records give is never offered: nobody grants it by hand.
    for role in Role.select().where(Role.assignable == True).order_by(Role.is_builtin.desc(), Role.id):  # noqa: E712
        codes = role.codes()
        if everything and roots is None:
            # As grant_role decides: a delegable code counts even where its plugin is switched off.
            ok = not beyond_own(access, codes, [])
        else:
            ok = any(not beyond_own(access, codes, chain) for chain in chains)
        if ok:
            found.append(role)
    return found


# -- listing ---------------------------------------------------------------------------------------

@dataclass
class UserRow:
    user: User
    unit: Unit
    grants: list[tuple[Role, Unit]] = field(default_factory=list)
    locked: bool = False
    temporary: bool = False  # still on an administrator-issued password

    @property
    def status(self) -> str:
        if not self.user.is_active:
            return "disabled"
        return "locked" if self.locked else "active"


def list_users(access, *, q: str | None = None, unit_id: int | None = None, status: str | None = None,
               now: dt.datetime | None = None) -> list[UserRow]:
    """Accounts whose unit lies in the administrator's subtree, filtered.

    ``q`` matches the username or the full name, ignoring case and Vietnamese
    diacritics; ``unit_id`` keeps that unit and the units below it (ignored when
    outside the subtree: a filter never widens the scope); ``status`` is one of
    ``STATUSES``.
    """
    now = now or utcnow()
    scope = admin_scope(access)
    if scope is not None and not scope:
        return []
    query = User.select(User, Unit).join(Unit)
    if scope is not None:
        query = query.where(User.unit.in_(scope))
    if unit_id is not None:
        if scope is not None and unit_id not in scope:
            return []
        query = query.where(User.unit.in_(units.subtree_ids(unit_id)))
    if status == "active":
        query = query.where(User.is_active == True)  # noqa: E712 — SQL, not Python
    elif status == "disabled":
        query = query.where(User.is_active == False)  # noqa: E712
    elif status == "locked":
        query = query.where(User.locked_until > now)
    elif status == "temporary":
        query = query.where(User.must_change_password == True)  # noqa: E712
    users = list(query)
    needle = fold((q or "").strip())
    if needle:
        users = [u for u in users if needle in fold(u.username) or needle in fold(u.full_name)]
    users.sort(key=lambda u: (fold(u.full_name), u.username))
    rows = {u.id: UserRow(u, u.unit, locked=accounts.is_locked(u, now), temporary=u.must_change_password)
            for u in users}
    if rows:
        grant_query = (Grant.select(Grant, Role, Unit).join(Role).switch(Grant).join(Unit)
                       .where(Grant.user.in_(list(rows))).order_by(Grant.id))
        for grant in grant_query:
            rows[grant.user_id].grants.append((grant.role, grant.unit))
    return list(rows.values())


def user_grants(user: User) -> list[Grant]:
    """The account's grants with their role and unit loaded, oldest first."""
    return list(Grant.select(Grant, Role, Unit).join(Role).switch(Grant).join(Unit)
                .where(Grant.user == user.id).order_by(Grant.granted_at, Grant.id))


# -- creating and issuing passwords ---------------------------------------------------------------

def _expiry(now: dt.datetime, hours: int) -> dt.datetime:
    return now + dt.timedelta(hours=hours)


def _roles_by_code(codes) -> list[Role]:
    wanted = list(dict.fromkeys(str(c) for c in codes if c))
    found = {r.code: r for r in Role.select().where(Role.code.in_(wanted))} if wanted else {}
    if len(found) != len(wanted):
        raise ValidationError({"roles": "form.error.choice"})
    return [found[code] for code in wanted]


def create_user(access, username: str, full_name: str, unit_id: int | None, *, roles=(),
                temp_hours: int = Settings.temp_password_hours, now: dt.datetime | None = None) -> tuple[User, str]:
    """A new account at ``unit_id`` with ``roles`` (codes) granted there; returns it with its
    temporary password, which is shown to the administrator once and stored only hashed."""
    now = now or utcnow()
    if unit_id is None:
        raise ValidationError({"unit": "form.error.required"})
    check_manages_unit(access, unit_id)  # NotFound: a unit outside the subtree is not there
    unit = Unit.get_by_id(unit_id)
    if not units.is_valid(unit):
        # A former unit (merged, dissolved) keeps its history but takes no new accounts.
        raise ValidationError({"unit": "users.error.unit_former"})
    errors = {}
    try:
        wanted = _roles_by_code(roles)
    except ValidationError as exc:
        errors.update(exc.errors)
        wanted = []
    if any(not role.assignable for role in wanted):
        errors["roles"] = "access.error.role_not_assignable"
    password = accounts.random_password()
    with transaction():
        try:
            user = accounts.create_user(username, full_name, password, unit, must_change_password=True)
        except ValidationError as exc:
            raise ValidationError({**errors, **exc.errors}) from None
        if errors:
            raise ValidationError(errors)
        User.update(password_expires_at=_expiry(now, temp_hours)).where(User.id == user.id).execute()
        for role in wanted:
            try:
                grant = grant_role(access, user, role, unit.id)
            except Forbidden as exc:
                raise ValidationError({"roles": "users.error.role_above_own" if exc.key == "access.error.role_above_own"
                                       else exc.key}) from None
            audit.record("grant.add", actor=access.actor, unit=unit.id, object_type="user", object_id=user.id,
                         details={"username": user.username, "grant_id": grant.id, "role": role.code,
                                  "unit_id": unit.id})
        audit.record("user.create", actor=access.actor, unit=unit.id, object_type="user", object_id=user.id,
                     details={"username": user.username, "roles": [r.code for r in wanted],
                              "temporary_password_hours": temp_hours})
    log.info("account %s created at unit %d", user.username, unit.id)
    return User.get_by_id(user.id), password


def reset_password(access, user_id: int, *, temp_hours: int = Settings.temp_password_hours,
                   now: dt.datetime | None = None, plugins=None) -> str:
    """A new temporary password for the account (it must be changed at the next login, and
    expires); the account's sessions end, its API tokens are revoked and a lockout is lifted."""
    now = now or utcnow()
    user = get_user(access, user_id)
    check_control(access, user, plugins)
    password = accounts.random_password()
    hashed = passwords.hash_password(password)  # slow: before the transaction
    with transaction():
        User.update(password_hash=hashed, must_change_password=True, password_expires_at=_expiry(now, temp_hours),
                    failed_logins=0, locked_until=None).where(User.id == user.id).execute()
        # Every session ends and every API token is revoked: the new password is the only way
        # back in, and tokens are made again after it (AUTH-05, SESS-05).
        ended, revoked = accounts.end_credentials(user.id, now=now)
        audit.record("user.password_reset", actor=access.actor, unit=user.unit_id, object_type="user",
                     object_id=user.id, details={"username": user.username, "sessions_ended": ended,
                                                 "tokens_revoked": revoked, "temporary_password_hours": temp_hours})
    return password


# -- enabling and disabling -------------------------------------------------------------------------

def disable_user(access, user_id: int, *, reason: str = "admin", plugins=None) -> User:
    """Disable the account and end all its sessions at once (AUTH-10, SESS-05)."""
    user = get_user(access, user_id)
    reason_key = control_refusal(access, user, plugins)
    if reason_key == "users.error.self":
        raise Forbidden("users.error.self_disable")
    if reason_key is not None:
        raise Forbidden(reason_key)
    with transaction():
        User.update(is_active=False).where(User.id == user.id).execute()
        ended = Session.delete().where(Session.user == user.id).execute()
        if user.is_active:
            audit.record("user.disable", actor=access.actor, unit=user.unit_id, object_type="user",
                         object_id=user.id, details={"username": user.username, "reason": reason,
                                                     "sessions_ended": ended})
    return User.get_by_id(user.id)


def enable_user(access, user_id: int, *, plugins=None) -> User:
    user = get_user(access, user_id)
    check_control(access, user, plugins)
    if not user.is_active:
        with transaction():
            User.update(is_active=True).where(User.id == user.id).execute()
            audit.record("user.enable", actor=access.actor, unit=user.unit_id, object_type="user",
                         object_id=user.id, details={"username": user.username})
    return User.get_by_id(user.id)


def unlock_user(access, user_id: int, *, plugins=None) -> User:
    """Lift a lockout (AUTH-06) now, with a fresh failure count."""
    user = get_user(access, user_id)
    check_control(access, user, plugins)
    with transaction():
        accounts.unlock(user)
        audit.record("user.unlock", actor=access.actor, unit=user.unit_id, object_type="user", object_id=user.id,
                     details={"username": user.username})
    return User.get_by_id(user.id)


def reset_mfa(access, user_id: int, *, plugins=None) -> User:
    """Turn off the second factor of someone who lost both the phone and the recovery
    codes; if 2FA is required for them, they set it up again at their next login."""
    user = get_user(access, user_id)
    check_control(access, user, plugins)
    mfa.disable(user, actor=access.actor)  # records auth.mfa_disabled with this administrator
    return User.get_by_id(user.id)


# -- grants ---------------------------------------------------------------------------------------------

def grant(access, user_id: int, role_code: str, unit_id: int | None, *, plugins=None) -> Grant:
    """Give the account ``role_code`` at ``unit_id``; core.accounts.access enforces the rules (ACL-04):
    inside the subtree, a role no higher than the administrator's own there, never to oneself, never
    a role only a plugin's records give; and not while the plugins give the account rights beyond
    the administrator's own (``grants_refusal``)."""
    user = get_user(access, user_id)
    refusal = grants_refusal(access, user, plugins)
    if refusal is not None:
        raise Forbidden(refusal)
    try:
        role = _roles_by_code([role_code]) if role_code else None
    except ValidationError:
        role = None
    errors = {}
    if role is None:
        errors["role"] = "form.error.choice" if role_code else "form.error.required"
    if unit_id is None:
        errors["unit"] = "form.error.required"
    elif not in_scope(access, unit_id):
        errors["unit"] = "users.error.unit_scope"
    if errors:
        raise ValidationError(errors)
    role = role[0]
    with transaction():
        existed = Grant.get_or_none(user=user.id, role=role.id, unit=unit_id) is not None
        try:
            created = grant_role(access, user, role, unit_id)
        except Forbidden as exc:
            raise ValidationError({"role": "users.error.role_above_own" if exc.key == "access.error.role_above_own"
                                   else exc.key}) from None
        except NotFound:
            raise ValidationError({"unit": "users.error.unit_scope"}) from None
        if not existed:
            audit.record("grant.add", actor=access.actor, unit=unit_id, object_type="user", object_id=user.id,
                         details={"username": user.username, "grant_id": created.id, "role": role.code,
                                  "unit_id": unit_id})
    return created


def revoke(access, user_id: int, grant_id: int, *, plugins=None) -> Grant:
    """Remove one of the account's grants; its sessions end at once (core.accounts.access). Not
    while the plugins give the account rights beyond the administrator's own (``grants_refusal``)."""
    user = get_user(access, user_id)
    refusal = grants_refusal(access, user, plugins)
    if refusal is not None:
        raise Forbidden(refusal)
    target = Grant.select(Grant, Role).join(Role).where((Grant.id == grant_id) & (Grant.user == user.id)).first()
    if target is None:
        raise NotFound()
    chain = units.ancestor_ids(target.unit_id)
    # Taking away a right one does not hold is as much above one's own as giving it.
    if beyond_own(access, target.role.codes(), chain):
        if access.allowed(ADMIN_CODE, chain):
            raise Forbidden("users.error.role_above_own")
        raise NotFound()
    with transaction():
        revoke_grant(access, target.id)
        audit.record("grant.remove", actor=access.actor, unit=target.unit_id, object_type="user",
                     object_id=user.id, details={"username": user.username, "grant_id": target.id,
                                                 "role": target.role.code, "unit_id": target.unit_id})
    return target


# -- sessions (SESS-05) ---------------------------------------------------------------------------------

def user_sessions(user, *, idle_minutes: int | None = None, lifetime_hours: int | None = None,
                  now: dt.datetime | None = None) -> list[Session]:
    """The account's sessions, most recently used first; with the timeouts given, only live ones."""
    user_id = getattr(user, "id", user)
    query = Session.select().where(Session.user == user_id)
    now = now or utcnow()
    if idle_minutes:
        query = query.where(Session.last_seen_at >= now - dt.timedelta(minutes=idle_minutes))
    if lifetime_hours:
        query = query.where(Session.created_at >= now - dt.timedelta(hours=lifetime_hours))
    return list(query.order_by(Session.last_seen_at.desc(), Session.id.desc()))


def current_session_id(user, token: str | None) -> int | None:
    """The id of the session a cookie token belongs to, if it is this user's."""
    if not token or len(token) > 100:
        return None
    session = Session.get_or_none((Session.token_hash == accounts._digest(token))
                                  & (Session.user == getattr(user, "id", user)))
    return session.id if session is not None else None


def end_session(access_or_owner, session_id: int, *, plugins=None) -> None:
    """End one session: the owner ends their own (``access_or_owner`` is a ``User``); an
    administrator (an ``Access``) ends one of an account they control."""
    session = Session.get_or_none(Session.id == session_id) if isinstance(session_id, int) else None
    if session is None:
        raise NotFound()
    if isinstance(access_or_owner, User):
        actor, by = access_or_owner, "owner"
        if session.user_id != actor.id:
            raise NotFound()
        unit_id = actor.unit_id
    else:
        actor, by = access_or_owner.actor, "admin"
        if actor is None:
            raise NotFound()
        if session.user_id == actor.id:
            unit_id = actor.unit_id
        else:
            target = get_user(access_or_owner, session.user_id)
            check_control(access_or_owner, target, plugins)
            unit_id = target.unit_id
    with transaction():
        ended = Session.delete().where(Session.id == session.id).execute()
        if ended:
            audit.record("session.end", actor=actor, unit=unit_id, object_type="user", object_id=session.user_id,
                         details={"by": by, "count": ended})


def end_other_sessions(owner: User, keep_session_id: int | None) -> int:
    """The owner ends every session but the one they are using."""
    query = Session.delete().where(Session.user == owner.id)
    if keep_session_id is not None:
        query = query.where(Session.id != keep_session_id)
    with transaction():
        ended = query.execute()
        if ended:
            audit.record("session.end", actor=owner, unit=owner.unit_id, object_type="user", object_id=owner.id,
                         details={"by": "owner", "count": ended, "others": True})
    return ended


def end_all_sessions(access, user_id: int, *, plugins=None) -> int:
    """An administrator logs an account out everywhere."""
    user = get_user(access, user_id)
    check_control(access, user, plugins)
    with transaction():
        ended = Session.delete().where(Session.user == user.id).execute()
        if ended:
            audit.record("session.end", actor=access.actor, unit=user.unit_id, object_type="user",
                         object_id=user.id, details={"by": "admin", "count": ended})
    return ended


# -- the inactivity rule (AUTH-10) ----------------------------------------------------------------------

def disable_inactive(now: dt.datetime | None = None, days: int = Settings.inactive_days) -> list[int]:
    """Disable accounts not used for ``days`` and end their sessions; return their ids.

    An account's last activity is its last login, or its creation if it never logged
    in, or the last time an administrator enabled it or issued it a password, when
    that is later (so an account enabled again is not disabled by the next run). At
    least one system administrator always stays active, so the instance never loses
    its last way in.
    """
    now = now or utcnow()
    limit = now - dt.timedelta(days=days)
    candidates = list(User.select().where(
        (User.is_active == True)  # noqa: E712 — SQL, not Python
        & (((User.last_login_at.is_null(False)) & (User.last_login_at < limit))
           | (User.last_login_at.is_null() & (User.created_at < limit)))))
    if not candidates:
        return []
    vouched = {int(row.object_id) for row in audit.AuditEvent.select(audit.AuditEvent.object_id).where(
        (audit.AuditEvent.action.in_(VOUCHING_ACTIONS)) & (audit.AuditEvent.object_type == "user")
        & (audit.AuditEvent.at >= limit) & (audit.AuditEvent.object_id.in_([str(u.id) for u in candidates])))
        if row.object_id.isdigit()}
    chosen = [u for u in candidates if u.id not in vouched]
    admins = [u for u in chosen if u.is_admin]
    if admins:
        chosen_ids = {u.id for u in chosen}
        others = (User.select().where((User.is_admin == True) & (User.is_active == True)  # noqa: E712
                                      & User.id.not_in(list(chosen_ids))).exists())
        if not others:
            # Keep the most recently active system administrator.
            keep = max(admins, key=lambda u: (u.last_login_at or u.created_at, u.id))
            chosen = [u for u in chosen if u.id != keep.id]
            log.warning("account %s inactive for %d days but kept: the last system administrator",
                        keep.username, days)
    done = []
    with transaction():
        for user in chosen:
            changed = User.update(is_active=False).where((User.id == user.id) & (User.is_active == True)).execute()  # noqa: E712
            if not changed:
                continue
            ended = Session.delete().where(Session.user == user.id).execute()
            audit.record("user.disable", actor=None, unit=user.unit_id, object_type="user", object_id=user.id,
                         details={"username": user.username, "reason": "inactive", "days": days,
                                  "last_login_at": user.last_login_at, "sessions_ended": ended})
            done.append(user.id)
    if done:
        log.info("disabled %d accounts inactive for %d days", len(done), days)
    return done
