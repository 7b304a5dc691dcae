"""Declarations (domains, permissions, menu entries, widgets) and the registry
built from them once at start-up.

Plugins declare; the core validates names and namespaces here and does all
filtering and guarding later. A plugin whose declaration breaks a rule is
marked failed (stage "declaration") and is not mounted; the others are not
affected. When two plugins declare the same permission, the later one fails
and the log names both.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import core
from core.errors import PluginError
from core.i18n import Catalog, core_catalog, read_locale_dir

log = logging.getLogger("baocao.registry")

CODE_PART = r"[a-z][a-z0-9_]*"


@dataclass(frozen=True)
class Permission:
    """A right that roles can grant: ``<plugin>.<entity>.<verb>``; ``label`` is a message key."""

    code: str
    label: str
    # "unit": granted for a unit's subtree; "global": instance-wide; "system": held by system
    # administrators only, never through a role (defining roles is such a right: whoever could
    # edit roles could widen their own).
    scope: str = "unit"
    # A unit administrator may hand out a delegable right without holding it: running a
    # unit means naming who reports and who receives, not doing both oneself.
    delegable: bool = False

    @property
    def plugin(self) -> str:
        return self.code.split(".", 1)[0]


@dataclass(frozen=True)
class MenuItem:
    """A navigation entry. ``route`` is a route name (``<plugin>:<route>``) or a path."""

    id: str
    label: str  # message key
    route: str
    permission: str | None = None
    group: str = "main"
    order: int = 100
    badge: str | None = None  # already-formatted text, e.g. a count

    @property
    def plugin(self) -> str:
        return self.id.split(".", 1)[0]


@dataclass(frozen=True)
class Widget:
    """A block on the home page, rendered from one of the plugin's templates.

    ``permission``: the core shows the widget only to a user holding it at their unit (as a menu
    entry); a code the plugin or the core declares, else the widget is dropped and recorded."""

    id: str
    title: str  # message key
    template: str
    context: dict = field(default_factory=dict)
    order: int = 100
    permission: str | None = None


@dataclass(frozen=True)
class RoleSpec:
    """A role a plugin ships: ``<plugin>.<role>``, named by ``label`` (a message key of the
    plugin's locale, in both languages), holding the plugin's own permissions and the core's.

    The core writes it into the role tables at start-up; an administrator grants it like any
    built-in role and cannot change it on the roles screen.

    ``assignable=False``: a role that only the plugin's own records give (hook ``role_grants``: a
    delegation's administrators while it is in force). Nobody grants it by hand — the core never
    offers it on the accounts screens and refuses a grant of it — since a grant row would outlive
    the records that justify it."""

    code: str
    label: str
    permissions: tuple[str, ...] = ()
    assignable: bool = True

    @property
    def plugin(self) -> str:
        return self.code.split(".", 1)[0]


@dataclass(frozen=True)
class Domain:
    """Everything a plugin declares about itself at start-up."""

    name: str
    label: str  # message key, e.g. "kinhte_xahoi.label"
    description: str = ""  # message key
    version: str = ""
    requires_core_api: int = core.CORE_API
    routes: tuple = ()  # Starlette routes; mounted at /p/<name>/ by the web layer
    # JSON endpoints (web.api.json_route): mounted at /api/v1/p/<name>/ and listed in the OpenAPI document.
    api: tuple = ()
    permissions: tuple[Permission, ...] = ()
    menu: tuple[MenuItem, ...] = ()
    enabled_by_default: bool = True
    depends_on: tuple[str, ...] = ()
    roles: tuple[RoleSpec, ...] = ()  # the plugin's own roles
    # The plugin's own delegable permissions added to the core's built-in roles (``BUILTIN_ROLES``),
    # e.g. {"viewer": ("<plugin>.overview.view",)}: whoever holds the role gets them where it is granted.
    add_to_roles: dict = field(default_factory=dict)


# The roles the core's migrations create; plugins may add their permissions to these only.
BUILTIN_ROLES = ("viewer", "reporter", "receiver", "unit_admin", "catalogue_admin", "regime_editor",
                 "regime_issuer", "clerk")
ROLE_CODE_MAX = 100
SCOPES = ("unit", "global", "system")


# The core declares its own rights and menu the same way plugins do.
CORE_DOMAIN = Domain(
    name="core",
    label="core.label",
    version=core.__version__,
    # Four separate rights (view, enter and submit, receive, administer), so a unit can
    # keep the person who prepares a report apart from the one who accepts it.
    permissions=(
        Permission("core.unit.view", "perm.core.unit.view", delegable=True),
        Permission("core.report.submit", "perm.core.report.submit", delegable=True),
        Permission("core.report.receive", "perm.core.report.receive", delegable=True),
        Permission("core.unit.admin", "perm.core.unit.admin"),
        Permission("core.audit.view", "perm.core.audit.view"),
        Permission("core.plugin.admin", "perm.core.plugin.admin"),
        # Answering the problems and proposals people send (Điều 9.1c, 9.4): the operator's queue.
        Permission("core.feedback.admin", "perm.core.feedback.admin", scope="system"),
        # Changing the unit tree (issue 4: merge, split, rename, import): structure, not daily work.
        Permission("core.unit.edit", "perm.core.unit.edit"),
        # The indicator catalogue (issue 4): reading it is part of any reporting job; changing
        # it (edit, import) is kept to the catalogue administrators.
        Permission("core.indicator.view", "perm.core.indicator.view", delegable=True),
        Permission("core.indicator.edit", "perm.core.indicator.edit"),
        # Reporting regimes (Decree 09/2019 Art. 7, 11): drafting kept apart from issuing.
        Permission("core.regime.view", "perm.core.regime.view", delegable=True),
        Permission("core.regime.edit", "perm.core.regime.edit"),
        Permission("core.regime.issue", "perm.core.regime.issue"),
        # Which certification authorities signatures may chain to, and their CRLs (issue 6).
        Permission("core.trust.admin", "trust.perm.admin", scope="global"),
        # The working-day calendar's yearly moves (Tết bridges, make-up Saturdays): province-wide.
        Permission("core.calendar.admin", "calendar.perm.admin", scope="global"),
        # Applying the unit's organisation seal to a report (TT 41/2017 Art. 6: the văn thư does it).
        Permission("core.report.seal", "signing.perm.report_seal", delegable=True),
        # Defining roles from the declared permissions (issue 13): system administrators only.
        Permission("core.role.admin", "perm.core.role.admin", scope="system"),
        # The outbox of messages to other systems (core.outbox): every unit's mail and packets.
        Permission("core.outbox.admin", "outbox.perm.admin", scope="system"),
        Permission("core.consolidation.admin", "repair.perm.admin", scope="system"),
    ),
    menu=(
        MenuItem("core.home", "nav.home", "home", group="main", order=0),
        MenuItem("core.dashboard", "dashboard.nav", "dashboard", permission="core.unit.view", group="main", order=5),
        MenuItem("core.units.tree", "nav.units", "units", permission="core.unit.view", group="catalogue", order=10),
        MenuItem("core.catalogue.indicators", "nav.indicators", "indicators", permission="core.indicator.view",
                 group="catalogue", order=20),
        MenuItem("core.catalogue.figures", "explorer.nav", "figures_explorer", permission="core.indicator.view",
                 group="catalogue", order=22),
        MenuItem("core.unit_groups", "nav.unit_groups", "unit_groups", permission="core.regime.edit",
                 group="catalogue", order=25),
        MenuItem("core.plugins", "nav.plugins", "admin_plugins", permission="core.plugin.admin",
                 group="admin", order=10),
        MenuItem("core.audit", "nav.audit", "audit", permission="core.audit.view", group="admin", order=30),
        MenuItem("core.usage", "usage.nav", "usage", permission="core.unit.admin", group="admin", order=32),
        MenuItem("core.my_history", "nav.my_history", "my_history", group="main", order=90),
        MenuItem("core.users", "nav.users", "users", permission="core.unit.admin", group="admin", order=20),
        MenuItem("core.my_sessions", "nav.my_sessions", "my_sessions", group="main", order=80),
        # Reporting a problem or a proposal, and one's own reports: for everyone, from every page.
        MenuItem("core.feedback", "feedback.nav", "feedback", group="main", order=95),
        MenuItem("core.accounts.mfa", "nav.mfa", "mfa", group="main", order=85),
        # The unit's digital seal (issue 6): installed by the unit administrator.
        MenuItem("core.unit_seal", "signing.seal.link", "my_unit_seal", permission="core.unit.admin",
                 group="admin", order=25),
        MenuItem("core.reporting.opening", "nav.reports", "reports", group="reports", order=10),
        MenuItem("core.reporting.queue", "queue.nav", "report_queue", permission="core.report.receive", group="reports",
                 order=12),
        # Completeness and timeliness (issue 14): the page itself also serves core.unit.view holders.
        MenuItem("core.reporting.completeness", "completeness.nav", "completeness", permission="core.report.receive",
                 group="reports", order=13),
        MenuItem("core.regimes.regimes", "nav.regimes", "regimes", permission="core.regime.view", group="reports",
                 order=20),
        MenuItem("core.regimes.forms", "nav.forms", "forms", permission="core.regime.view", group="reports", order=25),
        MenuItem("core.reporting.followups", "quality.nav", "followups", permission="core.report.receive",
                 group="reports", order=14),
        MenuItem("core.accounts.api_tokens", "nav.api_tokens", "api_tokens", group="main", order=87),
        MenuItem("core.background", "background.nav", "background_jobs", group="main", order=88),
        MenuItem("core.my_certificates", "trust.nav.certificates", "my_certificates", group="main", order=86),
        MenuItem("core.signatures.trust", "trust.nav.trust", "trust_admin", permission="core.trust.admin", group="admin",
                 order=40),
        MenuItem("core.calendar", "calendar.nav", "work_calendar", permission="core.calendar.admin", group="admin",
                 order=45),
        MenuItem("core.outbox", "outbox.nav", "outbox", permission="core.outbox.admin", group="admin", order=50),
        MenuItem("core.consolidation_repair", "repair.nav", "consolidation_repair", permission="core.consolidation.admin",
                 group="admin", order=52),
        MenuItem("core.feedback_queue", "feedback.nav.queue", "feedback_queue", permission="core.feedback.admin",
                 group="admin", order=55),
        MenuItem("core.roles", "nav.roles", "roles", permission="core.role.admin", group="admin", order=22),
    ),
)

MENU_GROUPS = {"main": 0, "reports": 10, "catalogue": 20, "sector": 30, "exchange": 40, "admin": 90}


@dataclass
class Registry:
    """Read-only after ``build_registry``: what is declared and who declared it."""

    domains: dict[str, Domain]
    permissions: dict[str, Permission]
    catalog: Catalog
    plugin_dirs: dict[str, Path]

    def menu(self) -> list[MenuItem]:
        return [item for d in self.domains.values() for item in d.menu]

    def roles(self) -> list[RoleSpec]:
        """Every role the healthy plugins declare."""
        return [role for d in self.domains.values() for role in d.roles]

    def plugin_names(self) -> list[str]:
        return [n for n in self.domains if n != "core"]

    def resource_dir(self, plugin: str, kind: str) -> Path | None:
        base = self.plugin_dirs.get(plugin)
        path = base / kind if base else None
        return path if path and path.is_dir() else None


def validate_domain(domain: Domain, name: str, catalog: Catalog) -> None:
    """Refuse a declaration that steps outside the plugin's namespace."""
    if not isinstance(domain, Domain):
        raise PluginError("plugin.error.not_a_domain", plugin=name)
    if domain.name != name:
        raise PluginError("plugin.error.name_mismatch", plugin=name, declared=domain.name)
    if domain.requires_core_api != core.CORE_API:
        raise PluginError("plugin.error.core_api", plugin=name, wanted=domain.requires_core_api,
                          have=core.CORE_API)
    code_re = re.compile(rf"^{re.escape(name)}\.{CODE_PART}\.{CODE_PART}\Z")  # \Z: "$" allows a final newline
    for perm in domain.permissions:
        if not code_re.match(perm.code):
            raise PluginError("plugin.error.permission_code", plugin=name, code=perm.code)
        if perm.scope not in SCOPES:
            raise PluginError("plugin.error.permission_code", plugin=name, code=perm.code)
    role_re = re.compile(rf"^{re.escape(name)}\.{CODE_PART}\Z")
    role_codes = [role.code for role in domain.roles]
    for role in domain.roles:
        if not isinstance(role, RoleSpec) or not role_re.match(role.code) or len(role.code) > ROLE_CODE_MAX \
                or role_codes.count(role.code) > 1:
            raise PluginError("plugin.error.role_code", plugin=name, code=getattr(role, "code", repr(role)))
    for target in domain.add_to_roles:
        if target not in BUILTIN_ROLES:
            raise PluginError("plugin.error.role_target", plugin=name, role=target)
    for item in domain.menu:
        if not item.id.startswith(name + "."):
            raise PluginError("plugin.error.menu_id", plugin=name, id=item.id)
        if item.group not in MENU_GROUPS and item.group != name:
            raise PluginError("plugin.error.menu_group", plugin=name, id=item.id, group=item.group)
    for key in [domain.label, domain.description] + [p.label for p in domain.permissions] + \
               [m.label for m in domain.menu] + [r.label for r in domain.roles]:
        if key and not (key.startswith(name + ".") or name == "core"):
            raise PluginError("plugin.error.label_namespace", plugin=name, key=key)
        if key and key not in catalog.messages["vi"]:
            raise PluginError("plugin.error.label_missing", plugin=name, key=key)


def own_permission(plugin: str, code: str | None, permissions: dict[str, Permission]) -> bool:
    """A permission a plugin may guard something of its own with: declared, by itself or the core."""
    return code is not None and code in permissions and code.split(".", 1)[0] in (plugin, "core")


def check_role_permissions(domain: Domain, own: dict[str, Permission], core: dict[str, Permission]) -> None:
    """A plugin's role holds its own permissions and the core's; it adds to built-in roles only its
    own. Never another plugin's (that one may be absent or switched off), nor a "system" right."""
    name = domain.name
    for role in domain.roles:
        for code in role.permissions:
            perm = own.get(code) or (core.get(code) if code.startswith("core.") else None)
            if perm is None or perm.scope == "system":
                raise PluginError("plugin.error.role_permission", plugin=name, role=role.code, code=code)
    for target, codes in domain.add_to_roles.items():
        if isinstance(codes, str):  # ("x.y.z") written for ("x.y.z",): one code, not its letters
            raise PluginError("plugin.error.role_permission", plugin=name, role=target, code=codes)
        for code in codes:
            # Delegable only: a unit administrator hands out the built-in roles without holding
            # everything in them, and must still be able to once a plugin has added to them.
            if code not in own or own[code].scope == "system" or not own[code].delegable:
                raise PluginError("plugin.error.role_permission", plugin=name, role=target, code=code)


def check_resource_namespace(name: str, base: Path | None) -> None:
    """Templates and static files must sit under ``templates/<name>/`` and ``static/<name>/``,
    so a plugin can never shadow the core's layout or another plugin's files."""
    if base is None:
        return
    for kind in ("templates", "static"):
        root = base / kind
        if not root.is_dir():
            continue
        for entry in root.iterdir():
            if entry.name.startswith(".") or entry.name == "__pycache__":
                continue
            if entry.name != name or not entry.is_dir():
                raise PluginError("plugin.error.resource_namespace", plugin=name, kind=kind,
                                  path=f"{kind}/{entry.name}")


def plugin_messages(name: str, directory: Path) -> dict[str, dict[str, str]]:
    """A plugin's messages (``core.i18n.read_locale_dir``); every key must start with ``<name>.``,
    so a plugin can never reword the core's or another plugin's messages."""
    messages = read_locale_dir(directory)
    for entries in messages.values():
        stray = sorted(k for k in entries if not k.startswith(name + "."))
        if stray:
            raise PluginError("plugin.error.locale_namespace", plugin=name, key=stray[0])
    return messages


def build_registry(pm, settings) -> Registry:
    """Collect every healthy plugin's declarations, validate them, and freeze the result."""
    catalog = core_catalog().copy()
    domains: dict[str, Domain] = {"core": CORE_DOMAIN}
    permissions: dict[str, Permission] = {p.code: p for p in CORE_DOMAIN.permissions}
    plugin_dirs: dict[str, Path] = {}

    for name, domain in pm.call_each("register_domain", stage="declaration", settings=settings):
        info = pm.infos[name]
        try:
            check_resource_namespace(name, info.path)
            if info.path is not None:
                catalog.add(plugin_messages(name, info.path / "locale"))
            validate_domain(domain, name, catalog)
            extra = [p for _, ps in pm.call_each("register_permissions", stage="declaration",
                                                 enabled={name}, settings=settings) for p in ps]
            if not info.ok:
                continue  # register_permissions raised: call_each marked the plugin failed
            extra_domain = Domain(name=name, label=domain.label, permissions=tuple(extra))
            validate_domain(extra_domain, name, catalog)
            own = list(domain.permissions) + extra
            seen = set()
            for perm in own:
                if perm.code in permissions or perm.code in seen:
                    other = permissions[perm.code].plugin if perm.code in permissions else name
                    log.error("permission %s declared by %s and %s", perm.code, other, name)
                    raise PluginError("plugin.error.permission_duplicate", plugin=name, code=perm.code,
                                      other=other)
                seen.add(perm.code)
            known = set(permissions) | seen
            for item in domain.menu:
                if item.permission and item.permission not in known:
                    raise PluginError("plugin.error.menu_permission", plugin=name, id=item.id,
                                      code=item.permission)
            check_role_permissions(domain, {p.code: p for p in own}, permissions)
            for dep in domain.depends_on:
                if dep not in pm.infos or not pm.infos[dep].ok:
                    raise PluginError("plugin.error.dependency", plugin=name, dependency=dep)
        except Exception as exc:  # noqa: BLE001
            pm.fail(name, "declaration", exc)
            continue
        if info.version == "" and domain.version:
            info.version = domain.version
        domains[name] = domain
        permissions.update({p.code: p for p in own})
        if info.path is not None:
            plugin_dirs[name] = info.path

    # A plugin that implements hooks but never declared a domain is not mounted.
    for name, info in pm.infos.items():
        if info.ok and name not in domains:
            pm.fail(name, "declaration", PluginError("plugin.error.no_domain", plugin=name))
    return Registry(domains=domains, permissions=permissions, catalog=catalog, plugin_dirs=plugin_dirs)
