"""Roles from plugins and the role editor's rules (issue 13 item 5).

A plugin declares roles and adds its delegable permissions to built-in roles; the core writes them
into the tables at start-up, once, never removing what an administrator defined. A system
administrator defines roles from the declared permissions; granting stays bounded by the granter's
own rights (security.md ACL-04). Every permission a plugin declares guards something.
Runs on SQLite and, with ``BAOCAO_TEST_DATABASE_URL``, on PostgreSQL.
"""

from __future__ import annotations

import pytest
from starlette.routing import Mount

from core import audit
from core.accounts import login as accounts
from core.accounts import roles
from core.accounts.access import Grant, Role, RolePermission, grant_role, grants_of
from core.accounts.permissions import Access
from core.audit import AuditEvent
from core.errors import Forbidden, PluginError, ValidationError
from core.models import Unit
from core.plugins import BUILTIN_PLUGINS, build_plugin_manager
from core.registry import CORE_DOMAIN, Domain, Permission, RoleSpec, build_registry, check_role_permissions, \
    validate_domain
from core.units.tree import ancestor_ids
from tests.fixtures.plugins import fx


def make_registry(settings, *names):
    pm = build_plugin_manager(settings, builtins=names, load_entrypoints=False)
    return pm, build_registry(pm, settings)


@pytest.fixture
def registry(settings):
    pm, registry = make_registry(settings, *fx("fx_roles"))
    assert pm.infos["fx_roles"].ok, pm.infos["fx_roles"].summary
    return registry


@pytest.fixture
def tree(db_session):
    province = Unit.create(code="44", name="Tỉnh Quảng Trị", kind="province")
    commune = Unit.create(code="19255", name="Xã Gio Mỹ", kind="commune", parent=province)
    system = accounts.create_user("quantri", "Quản trị hệ thống", "x" * 16, province, is_admin=True)
    unit_admin = accounts.create_user("qt_xa", "Quản trị xã", "x" * 16, commune)
    member = accounts.create_user("nv_xa", "Nhân viên xã", "x" * 16, commune)
    Grant.create(user=unit_admin, role=Role.get(Role.code == "unit_admin"), unit=commune)
    return province, commune, system, unit_admin, member


def access_of(user, registry) -> Access:
    return Access(actor=user, registry=registry, enabled=frozenset(registry.plugin_names()),
                  grants=grants_of(user.id), chain=tuple(ancestor_ids(user.unit_id)))


def links(code: str) -> set[str]:
    return set(Role.get(Role.code == code).codes())


# -- the migration -----------------------------------------------------------------------------------------

def test_the_cores_roles_are_marked_as_the_cores_and_named_in_english(db_session):
    core_roles = {r.code: r for r in Role.select()}
    assert {r.origin for r in core_roles.values()} == {"core"}
    assert core_roles["viewer"].name_en == "Viewer" and core_roles["clerk"].title("en").startswith("Clerk")
    assert core_roles["viewer"].title("vi") == "Xem số liệu" and not core_roles["viewer"].editable


def test_a_plugin_role_code_may_be_as_long_as_a_permission_code(db_session):
    code = "p" * 30 + "." + "r" * 69
    Role.create(code=code, name="Vai trò dài", origin="p" * 30)
    assert Role.get(Role.code == code).origin == "p" * 30


# -- start-up: what plugins declare reaches the tables -----------------------------------------------------

def test_a_plugins_role_and_its_additions_to_built_in_roles_are_written_once(registry, db_session):
    assert roles.sync_declared(registry) == {"roles": 1, "links": 4}
    keeper = Role.get(Role.code == "fx_roles.keeper")
    assert (keeper.origin, keeper.name, keeper.name_en) == ("fx_roles", "Người giữ sổ mẫu", "Sample ledger keeper")
    assert not keeper.editable and not keeper.is_builtin
    assert links("fx_roles.keeper") == {"core.unit.view", "fx_roles.ledger.view", "fx_roles.ledger.edit"}
    assert "fx_roles.ledger.view" in links("viewer") and "fx_roles.ledger.view" not in links("reporter")
    # Every later start finds everything in place.
    assert roles.sync_declared(registry) == {"roles": 0, "links": 0}
    assert Role.select().where(Role.code == "fx_roles.keeper").count() == 1


def test_sync_never_removes_what_an_administrator_or_an_older_release_put_there(registry, db_session):
    roles.sync_declared(registry)
    keeper = Role.get(Role.code == "fx_roles.keeper")
    RolePermission.create(role=keeper, code="core.audit.view")
    RolePermission.create(role=Role.get(Role.code == "viewer"), code="core.audit.view")
    local = Role.create(code="thu_ky", name="Thư ký", origin="local")
    RolePermission.create(role=local, code="fx_roles.ledger.edit")
    roles.sync_declared(registry)
    assert "core.audit.view" in links("fx_roles.keeper") and "core.audit.view" in links("viewer")
    assert links("thu_ky") == {"fx_roles.ledger.edit"}


def test_a_role_code_taken_by_another_origin_is_left_alone(registry, db_session):
    Role.create(code="fx_roles.keeper", name="Đã có", origin="local")
    roles.sync_declared(registry)
    assert links("fx_roles.keeper") == set() and Role.get(Role.code == "fx_roles.keeper").name == "Đã có"


# -- declarations the core refuses -------------------------------------------------------------------------

def domain(**fields) -> Domain:
    base = dict(name="fx_roles", label="fx_roles.label",
                permissions=(Permission("fx_roles.ledger.view", "fx_roles.perm.ledger.view", delegable=True),
                             Permission("fx_roles.ledger.edit", "fx_roles.perm.ledger.edit")))
    return Domain(**{**base, **fields})


def catalog():
    from core.i18n import core_catalog

    c = core_catalog().copy()
    for key in ("fx_roles.label", "fx_roles.perm.ledger.view", "fx_roles.perm.ledger.edit", "fx_roles.role.keeper"):
        c.messages["vi"][key] = c.messages["en"][key] = key
    return c


@pytest.mark.parametrize("code", ["keeper", "other.keeper", "fx_roles.Keeper", "fx_roles.keeper.x",
                                  "fx_roles." + "k" * 95])
def test_a_role_outside_the_plugins_namespace_is_refused(code):
    with pytest.raises(PluginError) as refused:
        validate_domain(domain(roles=(RoleSpec(code, "fx_roles.role.keeper"),)), "fx_roles", catalog())
    assert refused.value.key == "plugin.error.role_code"


def test_a_role_label_must_be_the_plugins_and_exist():
    with pytest.raises(PluginError) as refused:
        validate_domain(domain(roles=(RoleSpec("fx_roles.keeper", "fx_roles.role.missing"),)), "fx_roles", catalog())
    assert refused.value.key == "plugin.error.label_missing"


def test_permissions_go_only_to_the_cores_built_in_roles():
    with pytest.raises(PluginError) as refused:
        validate_domain(domain(add_to_roles={"thu_ky": ("fx_roles.ledger.view",)}), "fx_roles", catalog())
    assert refused.value.key == "plugin.error.role_target"


@pytest.mark.parametrize("declared", [
    dict(add_to_roles={"viewer": ("fx_roles.ledger.edit",)}),  # not delegable
    dict(add_to_roles={"viewer": ("core.audit.view",)}),  # the core's, not the plugin's own
    dict(add_to_roles={"viewer": "fx_roles.ledger.view"}),  # a string, not a tuple of codes
    dict(roles=(RoleSpec("fx_roles.keeper", "fx_roles.role.keeper", ("fx_good.item.view",)),)),  # another plugin's
    dict(roles=(RoleSpec("fx_roles.keeper", "fx_roles.role.keeper", ("core.role.admin",)),)),  # system administrators'
    dict(roles=(RoleSpec("fx_roles.keeper", "fx_roles.role.keeper", ("fx_roles.nothing.here",)),)),  # undeclared
])
def test_a_role_holds_only_what_the_plugin_may_put_there(declared):
    d = domain(**declared)
    own = {p.code: p for p in d.permissions}
    core_and_other = {p.code: p for p in CORE_DOMAIN.permissions}
    core_and_other["fx_good.item.view"] = Permission("fx_good.item.view", "fx_good.perm.item.view", delegable=True)
    with pytest.raises(PluginError) as refused:
        check_role_permissions(d, own, core_and_other)
    assert refused.value.key == "plugin.error.role_permission"


def test_a_refused_role_fails_only_its_plugin(settings):
    import types

    from core.hookspecs import hookimpl

    module = types.ModuleType("fx_bad_role")

    @hookimpl
    def register_domain():
        return Domain(name="fx_bad_role", label="core.label", add_to_roles={"nobody": ()})

    module.register_domain = register_domain
    pm = build_plugin_manager(settings, builtins=fx("fx_roles"), extra_plugins=[module], load_entrypoints=False)
    registry = build_registry(pm, settings)
    assert pm.infos["fx_bad_role"].status == "failed" and pm.infos["fx_roles"].ok
    assert [r.code for r in registry.roles()] == ["fx_roles.keeper"]


# -- the role editor ---------------------------------------------------------------------------------------

def test_only_a_system_administrator_defines_roles(registry, tree):
    *_, system, unit_admin, _ = tree
    with pytest.raises(Forbidden) as refused:
        roles.save_role(access_of(unit_admin, registry), registry, code="thu_ky", name="Thư ký",
                        permissions=["core.unit.view"])
    assert refused.value.key == "roles.error.not_admin"
    # Even a role holding the editor's right gives it to nobody but system administrators.
    sneaky = Role.create(code="sneaky", name="Lén", origin="local")
    RolePermission.create(role=sneaky, code="core.role.admin")
    Grant.create(user=unit_admin, role=sneaky, unit=unit_admin.unit_id)
    assert not access_of(unit_admin, registry).allowed("core.role.admin")
    with pytest.raises(Forbidden):
        roles.list_roles(access_of(unit_admin, registry), registry)
    assert roles.list_roles(access_of(system, registry), registry)


def test_a_defined_role_is_created_with_its_permissions_and_audited(registry, tree):
    *_, system, _, _ = tree
    role = roles.save_role(access_of(system, registry), registry, code="thu_ky", name="  Thư ký ",
                           name_en="Secretary", permissions=["core.unit.view", "fx_roles.ledger.view",
                                                             "core.unit.view"])
    assert (role.code, role.name, role.name_en, role.origin, role.editable) == \
        ("thu_ky", "Thư ký", "Secretary", "local", True)
    assert links("thu_ky") == {"core.unit.view", "fx_roles.ledger.view"}
    event = AuditEvent.select().order_by(AuditEvent.id.desc()).first()
    assert (event.action, event.object_type, event.object_id, event.actor_id) == \
        ("role.create", "role", str(role.id), system.id)


@pytest.mark.parametrize("fields, field, key", [
    (dict(code=""), "code", "form.error.required"),
    (dict(code="Thu ky"), "code", "roles.error.code"),
    (dict(code="fx_roles.keeper"), "code", "roles.error.code"),  # a plugin's namespace
    (dict(code="viewer"), "code", "roles.error.code_taken"),
    (dict(name=" "), "name", "form.error.required"),
    (dict(name="x" * 256), "name", "roles.error.too_long"),
    (dict(permissions=[]), "permissions", "roles.error.no_permission"),
    (dict(permissions=["core.nothing.here"]), "permissions", "form.error.choice"),
    (dict(permissions=["core.role.admin"]), "permissions", "form.error.choice"),
])
def test_bad_input_is_named_at_its_field(registry, tree, fields, field, key):
    *_, system, _, _ = tree
    values = {"code": "thu_ky", "name": "Thư ký", "permissions": ["core.unit.view"], **fields}
    with pytest.raises(ValidationError) as refused:
        roles.save_role(access_of(system, registry), registry, **values)
    assert refused.value.errors[field] == key
    assert not Role.select().where(Role.code == "thu_ky").exists()


def test_editing_a_defined_role_replaces_its_permissions_and_keeps_its_code(registry, tree):
    *_, system, _, _ = tree
    access = access_of(system, registry)
    role = roles.save_role(access, registry, code="thu_ky", name="Thư ký", permissions=["core.unit.view"])
    RolePermission.create(role=role, code="gone_plugin.thing.view")  # from a plugin not running now
    roles.save_role(access, registry, role_id=role.id, code="other", name="Thư ký đơn vị",
                    permissions=["core.report.submit", "fx_roles.ledger.view"])
    again = Role.get_by_id(role.id)
    assert (again.code, again.name) == ("thu_ky", "Thư ký đơn vị")
    assert links("thu_ky") == {"core.report.submit", "fx_roles.ledger.view", "gone_plugin.thing.view"}
    event = AuditEvent.select().order_by(AuditEvent.id.desc()).first()
    assert event.action == "role.edit" and '"removed": ["core.unit.view"]' in event.details


@pytest.mark.parametrize("code", ["viewer", "fx_roles.keeper"])
def test_built_in_and_plugin_roles_cannot_be_changed_or_deleted(registry, tree, code):
    *_, system, _, _ = tree
    roles.sync_declared(registry)
    role = Role.get(Role.code == code)
    before = links(code)
    with pytest.raises(Forbidden) as refused:
        roles.save_role(access_of(system, registry), registry, role_id=role.id, name="Khác",
                        permissions=sorted(before | {"core.audit.view"}))
    assert refused.value.key == "roles.error.not_editable"
    with pytest.raises(Forbidden):
        roles.delete_role(access_of(system, registry), role.id)
    assert links(code) == before


def test_a_granted_role_is_not_deleted_and_the_message_says_why(registry, tree):
    _, commune, system, _, member = tree
    access = access_of(system, registry)
    role = roles.save_role(access, registry, code="thu_ky", name="Thư ký", permissions=["core.unit.view"])
    Grant.create(user=member, role=role, unit=commune)
    with pytest.raises(Forbidden) as refused:
        roles.delete_role(access, role.id)
    assert refused.value.key == "roles.error.granted"
    assert "đang được cấp cho 1 lượt" in refused.value.message("vi")
    assert "granted 1 times" in refused.value.message("en")
    Grant.delete().execute()
    roles.delete_role(access, role.id)
    assert not Role.select().where(Role.code == "thu_ky").exists()
    assert AuditEvent.select().order_by(AuditEvent.id.desc()).first().action == "role.delete"


def test_a_change_and_its_audit_record_commit_together(registry, tree, monkeypatch):
    *_, system, _, _ = tree

    def broken(*args, **kwargs):
        raise RuntimeError("audit unavailable")

    monkeypatch.setattr(audit, "record", broken)
    with pytest.raises(RuntimeError):
        roles.save_role(access_of(system, registry), registry, code="thu_ky", name="Thư ký",
                        permissions=["core.unit.view"])
    assert not Role.select().where(Role.code == "thu_ky").exists()
    assert not RolePermission.select().where(RolePermission.code == "core.unit.view",
                                             RolePermission.role.not_in(Role.select(Role.id))).exists()


# -- delegation is unchanged: nobody grants more than they hold (ACL-04) -----------------------------------

def test_a_unit_administrator_cannot_grant_a_defined_role_holding_a_right_they_lack(registry, tree):
    _, commune, system, unit_admin, member = tree
    roles.sync_declared(registry)
    define = access_of(system, registry)
    above = roles.save_role(define, registry, code="ban_hanh", name="Ban hành",
                            permissions=["core.unit.view", "core.regime.issue"])
    keeper_like = roles.save_role(define, registry, code="giu_so", name="Giữ sổ",
                                  permissions=["core.unit.view", "fx_roles.ledger.edit"])
    within = roles.save_role(define, registry, code="bao_cao", name="Báo cáo",
                             permissions=["core.unit.view", "core.report.submit", "fx_roles.ledger.view"])
    granter = access_of(unit_admin, registry)
    for role in (above, keeper_like, Role.get(Role.code == "fx_roles.keeper")):
        with pytest.raises(Forbidden) as refused:
            grant_role(granter, member, role, commune.id)
        assert refused.value.key == "access.error.role_above_own"
    assert grant_role(granter, member, within, commune.id).role_id == within.id
    # The built-in role the plugin added to stays grantable by the unit administrator.
    assert grant_role(granter, member, Role.get(Role.code == "viewer"), commune.id)
    assert access_of(member, registry).allowed("fx_roles.ledger.view")
    assert not access_of(member, registry).allowed("fx_roles.ledger.edit")


# -- every permission a plugin declares is checked where it applies ---------------------------------------

def guards_of(pm, registry, name: str) -> set[str]:
    """The permissions a plugin's declarations and contributions check: its routes' guards, its
    menu entries (static and per request) and its widgets."""
    found: set[str] = set()

    def walk(routes):
        for route in routes:
            if isinstance(route, Mount):
                walk(route.routes)
            found.add(getattr(getattr(route, "endpoint", None), "__baocao_permission__", None))

    domain = registry.domains[name]
    walk(domain.routes)
    found |= {item.permission for item in domain.menu}
    for hook in ("menu_items", "dashboard_widgets"):
        for plugin, items in pm.call_each(hook, stage="contribution", enabled={name}, request=None, actor=None,
                                          unit=None):
            found |= {getattr(item, "permission", None) for item in items or ()}
    return found - {None}


@pytest.mark.parametrize("package", [*BUILTIN_PLUGINS, *fx("fx_good", "fx_roles")])
def test_every_permission_a_plugin_declares_guards_something(settings, package):
    pm, registry = make_registry(settings, package)
    name = package.rsplit(".", 1)[-1]
    assert pm.infos[name].ok, pm.infos[name].summary
    declared = {code for code, p in registry.permissions.items() if p.plugin == name}
    assert sorted(declared - guards_of(pm, registry, name)) == []


def test_the_built_in_plugins_declare_only_what_their_screens_check(settings):
    pm, registry = make_registry(settings, *BUILTIN_PLUGINS)
    assert sorted(c for c, p in registry.permissions.items() if p.plugin != "core") == [
        "chuyen_nganh.catalogue.edit", "chuyen_nganh.delegation.admin", "chuyen_nganh.delegation.apply",
        "chuyen_nganh.delegation.view", "kinhte_xahoi.overview.view", "national_link.exchange.operate",
        "national_link.exchange.view", "national_link.mapping.edit", "national_link.proposal.apply"]
    assert registry.domains["kinhte_xahoi"].add_to_roles["viewer"] == ("kinhte_xahoi.overview.view",)
