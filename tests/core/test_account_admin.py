"""Unit administrators and the account lifecycle in the core (issue 3): ``core.accounts.admin``.

Tree: Tỉnh Quảng Trị → Huyện Gio Linh (→ Xã Gio Mỹ, Xã Gio Hải), Huyện Cam Lộ (→ Xã Cam Hiếu,
Xã Cam Thành). Each unit has an administrator (``unit_admin`` granted at the unit; Cam Lộ's a
narrower custom role) and a member (``reporter`` at the unit); the province also has a system
administrator and a clerk. security.md ids: ACL-02 (scope), ACL-04 (granting), AUTH-05
(temporary passwords), AUTH-10 (inactive and disabled accounts), SESS-05 (ending sessions).
Runs on SQLite and, with ``BAOCAO_TEST_DATABASE_URL``, on PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import json
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings as hyp_settings, strategies as st

from core.accounts import admin
from core.accounts import login as accounts
from core.accounts.access import Grant, Role, RolePermission, grants_of
from core.audit import AuditEvent, verify
from core.db import db
from core.errors import Forbidden, NotFound, ValidationError
from core.models import Session, Unit, User, utcnow
from core.accounts.permissions import Access
from core.registry import CORE_DOMAIN
from core.units.tree import ancestor_ids

REGISTRY = SimpleNamespace(permissions={p.code: p for p in CORE_DOMAIN.permissions})
T0 = dt.datetime(2026, 3, 2, 8, 0, 0)
NODES = ("province", "giolinh", "giomy", "giohai", "camlo", "camhieu", "camthanh")


def access_of(user) -> Access:
    """What the web layer builds for each request (web.middleware), without a plugin manager."""
    user = User.get_by_id(user.id)
    return Access(actor=user, registry=REGISTRY, grants=grants_of(user.id), chain=tuple(ancestor_ids(user.unit_id)))


def events(action=None, **where):
    query = AuditEvent.select().order_by(AuditEvent.id)
    if action:
        query = query.where(AuditEvent.action == action)
    return [e for e in query if all(getattr(e, k) == v for k, v in where.items())]


@pytest.fixture
def org(db_session):
    """The unit tree with one administrator and one member per unit, a system administrator
    and a clerk at the province, and a parent map the tests compute scopes from on their own."""
    province = Unit.create(code="44", name="Tỉnh Quảng Trị", kind="province")
    giolinh = Unit.create(code="464", name="Huyện Gio Linh", kind="district", parent=province)
    camlo = Unit.create(code="465", name="Huyện Cam Lộ", kind="district", parent=province)
    units = {
        "province": province, "giolinh": giolinh, "camlo": camlo,
        "giomy": Unit.create(code="19255", name="Xã Gio Mỹ", kind="commune", parent=giolinh),
        "giohai": Unit.create(code="19258", name="Xã Gio Hải", kind="commune", parent=giolinh),
        "camhieu": Unit.create(code="19366", name="Xã Cam Hiếu", kind="commune", parent=camlo),
        "camthanh": Unit.create(code="19369", name="Xã Cam Thành", kind="commune", parent=camlo),
    }
    roles = {r.code: r for r in Role.select()}
    # Cam Lộ's administrator administers, views and audits, but may not enter reports.
    lite = Role.create(code="admin_lite", name="Quản trị (không nhập liệu)")
    for code in ("core.unit.admin", "core.unit.view", "core.audit.view"):
        RolePermission.create(role=lite, code=code)
    auditor = Role.create(code="auditor", name="Kiểm tra nhật ký")
    for code in ("core.unit.view", "core.audit.view"):
        RolePermission.create(role=auditor, code=code)
    roles.update(admin_lite=lite, auditor=auditor)

    def user(username, unit, *role_codes, **kwargs):
        created = accounts.create_user(username, f"Người dùng {username}", accounts.random_password(), unit, **kwargs)
        for code in role_codes:
            Grant.create(user=created, role=roles[code], unit=unit)
        return created

    # Reporting rights are delegable, so unit_admin alone may hand out "reporter"; the
    # administrators here also report, to test controlling accounts that hold the same rights.
    admins = {name: user(f"qt_{name}", unit, *(("admin_lite",) if name == "camlo" else ("unit_admin", "reporter")))
              for name, unit in units.items()}
    members = {name: user(f"nv_{name}", unit, "reporter") for name, unit in units.items()}
    system = user("qt_hethong", province, is_admin=True)
    clerk = user("canbo", province, "viewer")
    parent = {u.id: u.parent_id for u in units.values()}
    return SimpleNamespace(units=units, roles=roles, admins=admins, members=members, system=system, clerk=clerk,
                           parent=parent)


def subtree_of(org, unit_id) -> set[int]:
    """Computed from the parent map, not from core.units.tree."""
    def above(uid):
        while uid is not None:
            yield uid
            uid = org.parent[uid]
    return {uid for uid in org.parent if unit_id in set(above(uid))}


def scope_of(org, actor) -> set[int]:
    if actor.is_admin:
        return set(org.parent)
    return {uid for g in Grant.select().where(Grant.user == actor.id) if "core.unit.admin" in g.role.codes()
            for uid in subtree_of(org, g.unit_id)}


def codes_at(org, actor, unit_id) -> set[str]:
    if actor.is_admin:
        return set(REGISTRY.permissions)
    chain, uid = set(), unit_id
    while uid is not None:
        chain.add(uid)
        uid = org.parent[uid]
    return {c for g in Grant.select().where(Grant.user == actor.id) if g.unit_id in chain for c in g.role.codes()}


def actors(org):
    return [*org.admins.values(), org.system, org.clerk]


# -- ACL-02: what an administrator sees ---------------------------------------------------------------------

def test_acl02_each_administrator_lists_exactly_the_accounts_of_their_subtree(org):
    everyone = [*org.admins.values(), *org.members.values(), org.system, org.clerk]
    for actor in actors(org):
        scope = scope_of(org, actor)
        listed = {row.user.id for row in admin.list_users(access_of(actor))}
        assert listed == {u.id for u in everyone if u.unit_id in scope}, actor.username


def test_acl02_an_account_outside_the_subtree_is_not_found_like_a_missing_one(org):
    access = access_of(org.admins["giolinh"])
    assert admin.get_user(access, org.members["giomy"].id).username == "nv_giomy"
    for target in (org.members["camhieu"], org.members["province"], org.system):
        with pytest.raises(NotFound):
            admin.get_user(access, target.id)
    with pytest.raises(NotFound):
        admin.get_user(access, 999_999)
    with pytest.raises(NotFound):  # a clerk administers nothing
        admin.get_user(access_of(org.clerk), org.members["province"].id)


def test_acl02_the_unit_filter_never_widens_the_scope(org):
    access = access_of(org.admins["giolinh"])
    assert admin.list_users(access, unit_id=org.units["camlo"].id) == []
    assert admin.list_users(access, unit_id=org.units["province"].id) == []
    below = {row.user.username for row in admin.list_users(access, unit_id=org.units["giomy"].id)}
    assert below == {"qt_giomy", "nv_giomy"}


def test_list_search_ignores_case_and_vietnamese_diacritics(org):
    User.update(full_name="Nguyễn Thị Đào").where(User.id == org.members["giomy"].id).execute()
    access = access_of(org.system)
    for q in ("nguyen thi dao", "NGUYỄN", "đào", "Dao", "nv_giom"):
        assert [row.user.username for row in admin.list_users(access, q=q)] == ["nv_giomy"], q
    assert admin.list_users(access, q="không có ai") == []


def test_list_status_filter(org):
    access = access_of(org.system)
    User.update(is_active=False).where(User.id == org.members["giomy"].id).execute()
    User.update(locked_until=utcnow() + dt.timedelta(hours=1)).where(User.id == org.members["giohai"].id).execute()
    assert [r.user.username for r in admin.list_users(access, status="disabled")] == ["nv_giomy"]
    locked = admin.list_users(access, status="locked")
    assert [r.user.username for r in locked] == ["nv_giohai"] and locked[0].status == "locked"
    assert "nv_giomy" not in {r.user.username for r in admin.list_users(access, status="active")}


def test_the_units_offered_are_the_subtree_in_tree_order(org):
    names = [n.unit.name for n in admin.scope_units(access_of(org.admins["giolinh"]))]
    assert names == ["Huyện Gio Linh", "Xã Gio Hải", "Xã Gio Mỹ"]
    assert len(admin.scope_units(access_of(org.system))) == 7
    assert admin.scope_units(access_of(org.clerk)) == []


# -- creating accounts and temporary passwords (AUTH-05) ------------------------------------------------------

def test_auth05_a_new_account_gets_a_random_temporary_password_that_expires(org):
    access = access_of(org.admins["giolinh"])
    user, password = admin.create_user(access, "Tran.Van.B", "Trần Văn B", org.units["giomy"].id,
                                       roles=["reporter"], temp_hours=72, now=T0)
    assert user.username == "tran.van.b" and user.unit_id == org.units["giomy"].id
    assert user.must_change_password and not user.is_admin
    assert user.password_expires_at == T0 + dt.timedelta(hours=72)
    assert len(password) >= 16 and password not in user.password_hash
    assert [g.role.code for g in Grant.select().where(Grant.user == user.id)] == ["reporter"]
    # Another account gets another password.
    _, other = admin.create_user(access, "tran.van.c", "Trần Văn C", org.units["giomy"].id)
    assert other != password
    created = events("user.create", object_id=str(user.id))
    assert len(created) == 1 and created[0].actor_id == org.admins["giolinh"].id
    assert password not in created[0].details and json.loads(created[0].details)["roles"] == ["reporter"]
    assert [json.loads(e.details)["role"] for e in events("grant.add", object_id=str(user.id))] == ["reporter"]


def test_auth05_the_temporary_password_logs_in_until_it_expires_and_no_longer_once_changed(org):
    user, password = admin.create_user(access_of(org.system), "moi", "Người Mới", org.units["giomy"].id,
                                       temp_hours=72, now=T0)
    assert accounts.authenticate("moi", password, now=T0 + dt.timedelta(hours=71)) is not None
    assert accounts.authenticate("moi", password, now=T0 + dt.timedelta(hours=72)) is None
    assert accounts.authenticate("moi", password, now=T0 + dt.timedelta(days=30)) is None
    # Once the user set their own password, the expiry no longer applies to it.
    User.update(must_change_password=False, password_expires_at=None).where(User.id == user.id).execute()
    assert accounts.authenticate("moi", password, now=T0 + dt.timedelta(days=30)) is not None


def test_acl02_an_account_cannot_be_created_outside_the_subtree(org):
    access = access_of(org.admins["giolinh"])
    before = User.select().count()
    for name in ("camlo", "camhieu", "province"):
        with pytest.raises(NotFound):
            admin.create_user(access, f"x_{name}", "X", org.units[name].id)
    with pytest.raises(NotFound):
        admin.create_user(access_of(org.clerk), "x_clerk", "X", org.units["province"].id)
    with pytest.raises(NotFound):
        admin.create_user(access, "x_none", "X", 999_999)
    assert User.select().count() == before and events("user.create") == []


def test_no_account_is_created_in_a_former_unit(org):
    """A commune merged away on 01/07/2025 keeps its history, not new accounts."""
    former = Unit.create(code="QT.gio-linh.x-gio-hai-cu", name="Xã Gio Hải (cũ)", kind="commune",
                         parent=org.units["giolinh"], valid_to=dt.date(2025, 6, 30))
    with pytest.raises(ValidationError) as caught:
        admin.create_user(access_of(org.admins["giolinh"]), "cu", "Cũ", former.id)
    assert caught.value.errors == {"unit": "users.error.unit_former"}
    assert not User.select().where(User.username == "cu").exists()


def test_acl04_a_new_account_gets_no_role_above_its_creator_and_is_not_created(org):
    access = access_of(org.admins["camlo"])  # holds no core.plugin.admin (not delegable)
    with pytest.raises(ValidationError) as caught:
        admin.create_user(access, "quan_tri_xa", "Quản Trị Xã", org.units["camhieu"].id, roles=["unit_admin"])
    assert caught.value.errors == {"roles": "users.error.role_above_own"}
    assert not User.select().where(User.username == "quan_tri_xa").exists()
    # Reporting is delegable: the administrator names a reporter without being one.
    reporter, _ = admin.create_user(access, "nhap_lieu", "Nhập Liệu", org.units["camhieu"].id, roles=["reporter"])
    assert [g.role.code for g in Grant.select().where(Grant.user == reporter.id)] == ["reporter"]
    user, _ = admin.create_user(access, "xem_so_lieu", "Xem Số Liệu", org.units["camhieu"].id, roles=["viewer"])
    assert [g.role.code for g in Grant.select().where(Grant.user == user.id)] == ["viewer"]


def test_create_reports_every_field_error_at_once(org):
    with pytest.raises(ValidationError) as caught:
        admin.create_user(access_of(org.system), "a b", "  ", org.units["giomy"].id, roles=["khong_co"])
    assert set(caught.value.errors) == {"username", "full_name", "roles"}
    with pytest.raises(ValidationError) as caught:
        admin.create_user(access_of(org.system), "nv_giomy", "Trùng", org.units["giomy"].id)
    assert caught.value.errors == {"username": "account.error.username_taken"}
    with pytest.raises(ValidationError) as caught:
        admin.create_user(access_of(org.system), "khong_don_vi", "X", None)
    assert caught.value.errors == {"unit": "form.error.required"}


def test_auth05_a_reset_issues_a_new_temporary_password_ends_sessions_and_lifts_a_lockout(org):
    target = org.members["giomy"]
    accounts.start_session(target)
    User.update(failed_logins=5, locked_until=T0 + dt.timedelta(hours=1)).where(User.id == target.id).execute()
    password = admin.reset_password(access_of(org.admins["giolinh"]), target.id, temp_hours=72, now=T0)
    fresh = User.get_by_id(target.id)
    assert fresh.must_change_password and fresh.password_expires_at == T0 + dt.timedelta(hours=72)
    assert fresh.failed_logins == 0 and fresh.locked_until is None
    assert Session.select().where(Session.user == target.id).count() == 0
    assert accounts.authenticate(target.username, password, now=T0 + dt.timedelta(minutes=1)) is not None
    assert accounts.authenticate(target.username, password, now=T0 + dt.timedelta(hours=73)) is None
    event = events("user.password_reset", object_id=str(target.id))[0]
    assert password not in event.details and json.loads(event.details)["sessions_ended"] == 1


def _make_tokens(user) -> list[str]:
    """A read token and a write token of ``user``."""
    from core.accounts import api_tokens

    return [api_tokens.create_token(user, "Đọc", 30)[1],
            api_tokens.create_token(user, "Ghi số liệu", 30, can_write=True)[1]]


def _live(secrets: list[str]) -> list[str]:
    """Those of the tokens that still authenticate."""
    from core.accounts import api_tokens

    return [secret for secret in secrets if api_tokens.authenticate(secret) is not None]


def test_auth05_a_reset_revokes_the_api_tokens_and_they_stay_revoked_after_the_new_password(org):
    target = org.members["giomy"]
    tokens = _make_tokens(target)
    accounts.start_session(target)
    accounts.start_session(target)
    assert len(_live(tokens)) == 2
    password = admin.reset_password(access_of(org.admins["giolinh"]), target.id, temp_hours=72)
    assert _live(tokens) == []
    assert Session.select().where(Session.user == target.id).count() == 0
    details = json.loads(events("user.password_reset", object_id=str(target.id))[0].details)
    assert details["sessions_ended"] == 2 and details["tokens_revoked"] == 2
    # The user sets a new password: the old tokens do not come back to life.
    accounts.change_password(target.id, password, "Một câu mật khẩu mới rất dài 2026",
                             "Một câu mật khẩu mới rất dài 2026")
    assert _live(tokens) == []
    assert verify().ok


def test_auth05_a_password_change_ends_the_other_sessions_and_revokes_the_tokens_in_one_event(org):
    target = org.members["giohai"]
    password = accounts.random_password()
    User.update(password_hash=accounts.passwords.hash_password(password)).where(User.id == target.id).execute()
    tokens = _make_tokens(target)
    accounts.start_session(target)
    accounts.start_session(target)
    current = Session.select().where(Session.user == target.id).order_by(Session.id.desc()).first()
    new = "Một câu mật khẩu mới rất dài 2026"
    accounts.change_password(target.id, password, new, new, keep_session_id=current.id)
    assert [s.id for s in Session.select().where(Session.user == target.id)] == [current.id]
    assert _live(tokens) == []
    changed = events("auth.password_changed", object_id=str(target.id))
    assert len(changed) == 1 and changed[0].result == "ok"
    assert json.loads(changed[0].details) == {"sessions_ended": 1, "tokens_revoked": 2}


def test_auth05_a_refused_password_change_keeps_the_sessions_and_tokens(org):
    target = org.members["camhieu"]
    tokens = _make_tokens(target)
    accounts.start_session(target)
    with pytest.raises(ValidationError):
        accounts.change_password(target.id, "sai mật khẩu", "Một câu mật khẩu mới rất dài 2026",
                                 "Một câu mật khẩu mới rất dài 2026")
    assert Session.select().where(Session.user == target.id).count() == 1
    assert len(_live(tokens)) == 2


def test_auth06_wrong_current_passwords_on_the_change_form_lock_the_account(org):
    target = org.members["camthanh"]
    password = accounts.random_password()
    User.update(password_hash=accounts.passwords.hash_password(password)).where(User.id == target.id).execute()
    new = "Một câu mật khẩu mới rất dài 2026"
    for attempt in range(3):
        with pytest.raises(ValidationError) as caught:
            accounts.change_password(target.id, f"đoán thử {attempt}", new, new, lockout_threshold=3,
                                     lockout_minutes=30, now=T0)
        assert caught.value.errors["current"] == "account.error.current_password"
    assert accounts.is_locked(User.get_by_id(target.id), T0)
    # Locked: even the right password changes nothing, and the login is refused too.
    with pytest.raises(ValidationError) as caught:
        accounts.change_password(target.id, password, new, new, lockout_threshold=3, lockout_minutes=30, now=T0)
    assert caught.value.errors == {"current": "reauth.error.locked"}
    assert accounts.passwords.verify_password(password, User.get_by_id(target.id).password_hash)
    assert accounts.authenticate(target.username, password, now=T0) is None
    failed = events("auth.password_changed", object_id=str(target.id), result="failed")
    assert len(failed) == 3 and events("auth.locked", object_id=str(target.id))
    # An empty field is not a guess.
    User.update(failed_logins=0, locked_until=None).where(User.id == target.id).execute()
    with pytest.raises(ValidationError):
        accounts.change_password(target.id, "", new, new, lockout_threshold=3, lockout_minutes=30, now=T0)
    assert User.get_by_id(target.id).failed_logins == 0


# -- taking control of an account ---------------------------------------------------------------------------

def test_nobody_takes_control_of_their_own_account_here(org):
    me = org.admins["giolinh"]
    access = access_of(me)
    with pytest.raises(Forbidden) as caught:
        admin.disable_user(access, me.id)
    assert caught.value.key == "users.error.self_disable"
    for action in (admin.reset_password, admin.enable_user, admin.unlock_user, admin.end_all_sessions):
        with pytest.raises(Forbidden):
            action(access, me.id)
    assert User.get_by_id(me.id).is_active


def test_a_peer_administrator_is_controlled_from_above_not_by_a_peer(org):
    # A second administrator of Gio Linh may not reset the first one's password (and so log in as them).
    peer = accounts.create_user("qt_giolinh2", "Quản trị 2", accounts.random_password(), org.units["giolinh"])
    Grant.create(user=peer, role=org.roles["unit_admin"], unit=org.units["giolinh"])
    target = org.admins["giolinh"]
    with pytest.raises(Forbidden) as caught:
        admin.reset_password(access_of(peer), target.id)
    assert caught.value.key == "users.error.above_own"
    with pytest.raises(Forbidden):
        admin.disable_user(access_of(peer), target.id)
    # The commune's administrator is below Gio Linh: controlled by it; the province controls Gio Linh's.
    admin.disable_user(access_of(org.admins["giolinh"]), org.admins["giomy"].id)
    admin.disable_user(access_of(org.admins["province"]), target.id)
    assert not User.get_by_id(target.id).is_active


def test_an_account_with_rights_beyond_the_administrator_is_out_of_their_control(org):
    member = org.members["camhieu"]
    Grant.create(user=member, role=org.roles["viewer"], unit=org.units["province"])  # rights above Cam Lộ
    with pytest.raises(Forbidden):
        admin.reset_password(access_of(org.admins["camlo"]), member.id)
    other = org.admins["camthanh"]  # switches plugins (core.plugin.admin), which Cam Lộ's admin lacks
    assert admin.control_refusal(access_of(org.admins["camlo"]), other) == "users.error.above_own"
    assert admin.control_refusal(access_of(org.admins["province"]), other) is None
    # A unit administrator never controls a system administrator's account.
    assert admin.control_refusal(access_of(org.admins["province"]), org.system) == "users.error.above_own"
    assert admin.control_refusal(access_of(org.system), org.admins["province"]) is None


# -- ACL-04: granting --------------------------------------------------------------------------------------

ROLE_CODES = ("viewer", "reporter", "receiver", "unit_admin", "admin_lite", "auditor")


DELEGABLE = {p.code for p in CORE_DOMAIN.permissions if p.delegable}


@hyp_settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_acl04_a_grant_succeeds_exactly_inside_the_subtree_within_own_rights_and_never_to_oneself(org, data):
    """ACL-04 property over (administrator, target, role, unit): a grant succeeds only when the
    target's unit and the unit are in the administrator's subtree, the administrator holds every
    permission of the role at that unit, and the administrator is not the target."""
    people = [*org.admins.values(), *org.members.values(), org.system, org.clerk]
    actor = data.draw(st.sampled_from([*org.admins.values(), org.system, org.clerk]), label="admin")
    target = data.draw(st.sampled_from(people), label="target")
    role = org.roles[data.draw(st.sampled_from(ROLE_CODES), label="role")]
    unit = org.units[data.draw(st.sampled_from(NODES), label="unit")]
    scope = scope_of(org, actor)
    held = codes_at(org, actor, unit.id)
    # Within one's own rights: held there, or delegable where one administers.
    own = held | (DELEGABLE if "core.unit.admin" in held else set())
    expected = (target.unit_id in scope and unit.id in scope and actor.id != target.id
                and role.codes() <= own)
    with db.atomic() as txn:
        before = Grant.select().count()
        try:
            granted = admin.grant(access_of(actor), target.id, role.code, unit.id)
        except (NotFound, Forbidden, ValidationError):
            ok = False
        else:
            ok = True
            assert (granted.user_id, granted.role_id, granted.unit_id) == (target.id, role.id, unit.id)
        if not ok:
            assert Grant.select().count() == before  # a refusal changes nothing
        txn.rollback()
    assert ok == expected, (actor.username, target.username, role.code, unit.name)


def test_acl04_a_refused_grant_says_why(org):
    access = access_of(org.admins["camlo"])
    # Reporting rights are delegable: an administrator names reporters without being one.
    admin.grant(access, org.members["camhieu"].id, "receiver", org.units["camhieu"].id)
    # Switching plugins is not delegable, and Cam Lộ's lighter administrator lacks it.
    with pytest.raises(ValidationError) as caught:
        admin.grant(access, org.members["camhieu"].id, "unit_admin", org.units["camhieu"].id)
    assert caught.value.errors == {"role": "users.error.role_above_own"}
    with pytest.raises(ValidationError) as caught:
        admin.grant(access, org.members["camhieu"].id, "viewer", org.units["giolinh"].id)
    assert caught.value.errors == {"unit": "users.error.unit_scope"}
    with pytest.raises(ValidationError) as caught:
        admin.grant(access, org.members["camhieu"].id, "", None)
    assert caught.value.errors == {"role": "form.error.required", "unit": "form.error.required"}
    with pytest.raises(NotFound):
        admin.grant(access, org.members["giomy"].id, "viewer", org.units["camhieu"].id)
    with pytest.raises(ValidationError) as caught:
        admin.grant(access, org.admins["camlo"].id, "viewer", org.units["camhieu"].id)
    assert caught.value.errors == {"role": "access.error.self_grant"}


def test_acl04_granting_twice_keeps_one_grant_and_one_event(org):
    access = access_of(org.admins["giolinh"])
    first = admin.grant(access, org.members["giomy"].id, "viewer", org.units["giomy"].id)
    again = admin.grant(access, org.members["giomy"].id, "viewer", org.units["giomy"].id)
    assert first.id == again.id
    assert len(events("grant.add", object_id=str(org.members["giomy"].id))) == 1


def test_sess05_revoking_a_grant_ends_the_users_sessions_at_once(org):
    target = org.members["giomy"]
    accounts.start_session(target)
    grant = Grant.get(Grant.user == target.id)
    admin.revoke(access_of(org.admins["giolinh"]), target.id, grant.id)
    assert not Grant.select().where(Grant.id == grant.id).exists()
    assert Session.select().where(Session.user == target.id).count() == 0
    event = events("grant.remove", object_id=str(target.id))[0]
    assert json.loads(event.details)["role"] == "reporter"


def test_acl02_a_grant_of_another_account_or_outside_the_subtree_is_not_found(org):
    access = access_of(org.admins["giolinh"])
    mine, theirs = org.members["giomy"], org.members["camhieu"]
    their_grant = Grant.get(Grant.user == theirs.id)
    with pytest.raises(NotFound):  # the grant is not this account's
        admin.revoke(access, mine.id, their_grant.id)
    with pytest.raises(NotFound):
        admin.revoke(access, theirs.id, their_grant.id)
    # A grant above the administrator's subtree, on an account inside it.
    above = Grant.create(user=mine, role=org.roles["viewer"], unit=org.units["province"])
    with pytest.raises(NotFound):
        admin.revoke(access, mine.id, above.id)
    assert Grant.select().where(Grant.id.in_([their_grant.id, above.id])).count() == 2


def test_acl04_a_role_one_does_not_hold_is_not_taken_away_either(org):
    higher = admin.grant(access_of(org.admins["province"]), org.members["camhieu"].id, "unit_admin",
                         org.units["camhieu"].id)
    with pytest.raises(Forbidden):
        admin.revoke(access_of(org.admins["camlo"]), org.members["camhieu"].id, higher.id)
    assert Grant.select().where(Grant.id == higher.id).exists()
    # A delegable role, though, its administrator may take back.
    reporter = Grant.get((Grant.user == org.members["camhieu"].id) & (Grant.role == org.roles["reporter"]))
    admin.revoke(access_of(org.admins["camlo"]), org.members["camhieu"].id, reporter.id)


# -- disabling (AUTH-10, SESS-05) ------------------------------------------------------------------------

def test_auth10_disabling_ends_every_session_and_enabling_restores_the_account(org):
    target = org.members["camhieu"]
    for _ in range(3):
        accounts.start_session(target)
    token = accounts.start_session(target)
    admin.disable_user(access_of(org.admins["province"]), target.id)
    assert Session.select().where(Session.user == target.id).count() == 0
    assert accounts.resume_session(token, idle_minutes=15, lifetime_hours=12).user is None
    event = events("user.disable", object_id=str(target.id))[0]
    assert json.loads(event.details) == {"username": target.username, "reason": "admin", "sessions_ended": 4}
    admin.disable_user(access_of(org.admins["province"]), target.id)  # again: nothing more recorded
    assert len(events("user.disable")) == 1
    admin.enable_user(access_of(org.admins["province"]), target.id)
    assert User.get_by_id(target.id).is_active and len(events("user.enable")) == 1


def test_unlock_lifts_the_lockout_and_is_recorded(org):
    target = org.members["giohai"]
    User.update(failed_logins=5, locked_until=utcnow() + dt.timedelta(hours=1)).where(User.id == target.id).execute()
    admin.unlock_user(access_of(org.admins["giolinh"]), target.id)
    fresh = User.get_by_id(target.id)
    assert fresh.failed_logins == 0 and fresh.locked_until is None
    assert len(events("user.unlock", object_id=str(target.id))) == 1


# -- sessions (SESS-05) -------------------------------------------------------------------------------------

def test_sess05_the_owner_ends_one_session_or_all_the_others(org):
    me, other = org.members["giomy"], org.members["giohai"]
    tokens = [accounts.start_session(me) for _ in range(3)]
    theirs = accounts.start_session(other)
    current = admin.current_session_id(me, tokens[0])
    assert current is not None and admin.current_session_id(other, tokens[0]) is None
    their_id = admin.current_session_id(other, theirs)
    with pytest.raises(NotFound):  # nobody ends another person's session as its owner
        admin.end_session(me, their_id)
    ids = [s.id for s in admin.user_sessions(me)]
    admin.end_session(me, ids[-1] if ids[-1] != current else ids[0])
    assert len(admin.user_sessions(me)) == 2
    assert admin.end_other_sessions(me, current) == 1
    assert [s.id for s in admin.user_sessions(me)] == [current]
    assert len(admin.user_sessions(other)) == 1
    assert {json.loads(e.details)["by"] for e in events("session.end")} == {"owner"}


def test_sess05_an_administrator_ends_a_session_of_an_account_in_their_control(org):
    target = org.admins["camthanh"]
    accounts.start_session(target)
    session_id = admin.user_sessions(target)[0].id
    with pytest.raises(NotFound):
        admin.end_session(access_of(org.admins["giolinh"]), session_id)
    with pytest.raises(Forbidden):  # holds plugin switching, which Cam Lộ's lighter administrator lacks
        admin.end_session(access_of(org.admins["camlo"]), session_id)
    admin.end_session(access_of(org.admins["province"]), session_id)
    assert admin.user_sessions(target) == []


def test_only_live_sessions_are_listed_when_the_timeouts_are_given(org):
    me = org.members["giomy"]
    accounts.start_session(me)
    old = accounts.start_session(me)
    Session.update(last_seen_at=utcnow() - dt.timedelta(minutes=20)).where(
        Session.id == admin.current_session_id(me, old)).execute()
    assert len(admin.user_sessions(me)) == 2
    assert len(admin.user_sessions(me, idle_minutes=15, lifetime_hours=12)) == 1


# -- the inactivity rule (AUTH-10) ------------------------------------------------------------------------

def test_auth10_accounts_unused_for_45_days_are_disabled_with_their_sessions(org):
    now = T0
    old, recent, never_old, never_new = (org.members[n] for n in ("giomy", "giohai", "camhieu", "camthanh"))
    User.update(last_login_at=now - dt.timedelta(days=46)).where(User.id == old.id).execute()
    User.update(last_login_at=now - dt.timedelta(days=44)).where(User.id == recent.id).execute()
    # Everyone else was created "now" (T0 is in the past): make the never-logged-in ones old and new.
    User.update(created_at=now - dt.timedelta(days=10)).execute()
    User.update(created_at=now - dt.timedelta(days=50)).where(User.id == never_old.id).execute()
    User.update(created_at=now - dt.timedelta(days=40)).where(User.id == never_new.id).execute()
    accounts.start_session(old)
    disabled = admin.disable_inactive(now, 45)
    assert sorted(disabled) == sorted([old.id, never_old.id])
    assert not User.get_by_id(old.id).is_active and not User.get_by_id(never_old.id).is_active
    assert User.get_by_id(recent.id).is_active and User.get_by_id(never_new.id).is_active
    assert Session.select().where(Session.user == old.id).count() == 0
    recorded = events("user.disable")
    assert {e.object_id for e in recorded} == {str(old.id), str(never_old.id)}
    assert all(json.loads(e.details)["reason"] == "inactive" and e.actor_id is None for e in recorded)
    # A day later only the next one in line goes; nothing is disabled twice.
    assert admin.disable_inactive(now + dt.timedelta(days=2), 45) == [recent.id]
    assert verify().ok


def test_auth10_an_account_enabled_again_is_not_disabled_by_the_next_run(org):
    target = org.members["giomy"]
    User.update(last_login_at=utcnow() - dt.timedelta(days=60)).where(User.id == target.id).execute()
    assert admin.disable_inactive(utcnow(), 45) == [target.id]
    admin.enable_user(access_of(org.admins["giolinh"]), target.id)
    assert target.id not in admin.disable_inactive(utcnow() + dt.timedelta(days=1), 45)
    assert target.id in admin.disable_inactive(utcnow() + dt.timedelta(days=46), 45)


def test_auth10_the_last_system_administrator_is_never_disabled_for_inactivity(org):
    long_ago = utcnow() - dt.timedelta(days=100)
    User.update(created_at=long_ago).execute()
    disabled = admin.disable_inactive(utcnow(), 45)
    assert org.system.id not in disabled and User.get_by_id(org.system.id).is_active
    assert len(disabled) == User.select().count() - 1


def test_auth10_the_worker_runs_the_inactivity_rule_daily(settings, org):
    from core.jobs import make_huey

    target = org.members["giomy"]
    User.update(last_login_at=utcnow() - dt.timedelta(days=settings.inactive_days + 1)).where(
        User.id == target.id).execute()
    huey = make_huey(settings, immediate=True)
    daily = [t for t in huey.read_periodic(dt.datetime(2026, 1, 5, 1, 15)) if t.name == "core.disable_inactive_accounts"]
    assert len(daily) == 1
    assert not [t for t in huey.read_periodic(dt.datetime(2026, 1, 5, 2, 15))
                if t.name == "core.disable_inactive_accounts"]
    assert huey.execute(daily[0]) == 1
    assert not User.get_by_id(target.id).is_active


def test_every_operation_leaves_an_intact_audit_chain(org):
    access = access_of(org.admins["province"])
    user, _ = admin.create_user(access, "chuoi", "Chuỗi", org.units["giomy"].id, roles=["viewer"])
    admin.reset_password(access, user.id)
    admin.disable_user(access, user.id)
    admin.enable_user(access, user.id)
    admin.unlock_user(access, user.id)
    grant = admin.grant(access, user.id, "reporter", org.units["giomy"].id)
    admin.revoke(access, user.id, grant.id)
    actions = [e.action for e in events(object_id=str(user.id))]
    assert actions == ["grant.add", "user.create", "user.password_reset", "user.disable", "user.enable",
                       "user.unlock", "grant.add", "grant.remove"]
    assert verify().ok
