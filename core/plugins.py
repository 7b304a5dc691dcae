"""The plugin manager: loading, allow-listing, and failure isolation per plugin.

pluggy gives no isolation (an exception in one implementation stops the call,
and entry-point loading aborts on the first broken package), so every stage
that runs plugin code goes through ``guard`` and records the failure against
that plugin only. One manager per application instance: nothing here is
module-global, so tests build as many apps as they like.
"""

from __future__ import annotations

import collections
import importlib
import importlib.metadata
import inspect
import logging
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import pluggy

import core
from core import clock
from core import hookspecs
from core.errors import BaocaoError, PluginError, StartupError
from core.settings import PLUGIN_NAME_RE

log = logging.getLogger("baocao.plugins")

ENTRY_POINT_GROUP = "baocao.plugins"
# Built-in plugins, registered from this explicit list (import paths, so core
# never imports the plugins package at module level).
BUILTIN_PLUGINS = ("plugins.kinhte_xahoi", "plugins.chuyen_nganh", "plugins.national_link")
STAGES = ("import", "registration", "declaration", "migration", "startup", "request", "contribution", "job",
          "command", "event")
# The core's own implementations of public hooks (as Datasette's default plugins): registered in
# every manager under their module's name, always on, never switched per unit; listed apart on the
# plugins page (``PluginManager.core_parts``).
CORE_SUBSCRIBERS = ("core.reporting.subscribers.figures", "core.reporting.subscribers.notify",
                    "core.reporting.subscribers.consolidation")
RESERVED_NAMES = {"core", "web", "static", "admin", "api", "auth", "login", "logout", "p"}


@dataclass
class PluginInfo:
    """What the administrator's plugins page shows about one plugin."""

    name: str
    source: str  # "builtin", "entrypoint" or "extra"
    module: str = ""
    version: str = ""
    distribution: str = ""
    status: str = "ok"  # ok, failed, not_allowed, blocked
    stage: str = ""
    summary: str = ""
    hooks: list[str] = field(default_factory=list)
    path: Path | None = None
    # Request-time and contribution failures do not disable a plugin; the last few are shown.
    errors: collections.deque = field(default_factory=lambda: collections.deque(maxlen=5))

    @property
    def ok(self) -> bool:
        return self.status == "ok"


class PluginManager(pluggy.PluginManager):
    def __init__(self, *, strict: bool = False):
        super().__init__(hookspecs.PROJECT)
        self.add_hookspecs(hookspecs)
        self.strict = strict
        self.infos: dict[str, PluginInfo] = {}
        self.core_parts: dict[str, PluginInfo] = {}
        # A process whose failures the web server cannot see (``baocao worker``) also writes them
        # to the database for the plugins page (``core.plugin_failures.Recorder``); None in the
        # web server, whose page reads ``infos`` and ``core_parts`` directly.
        self.failure_log = None
        for module_name in CORE_SUBSCRIBERS:
            module = importlib.import_module(module_name)
            self.register(module, name=module_name)
            self.core_parts[module_name] = PluginInfo(
                name=module_name, source="core", module=module_name, version=core.__version__,
                hooks=sorted(h.name for h in self.get_hookcallers(module) or []))

    def add_hookspecs(self, module_or_class) -> None:
        """pluggy's, refusing the spec options ``call_each`` cannot honour.

        The core calls every implementation on its own (``call_each``) so that one plugin's
        failure stays its own: a ``firstresult`` spec would still call them all, and a
        ``historic`` one would never replay its calls to a plugin registered later.
        """
        super().add_hookspecs(module_or_class)
        for name in dir(self.hook):
            caller = getattr(self.hook, name)
            spec = getattr(caller, "spec", None)
            if spec is not None and (spec.opts.get("firstresult") or spec.opts.get("historic")):
                raise TypeError(f"hook {name}: firstresult and historic specs are not supported by "
                                "PluginManager.call_each")

    # -- recording -------------------------------------------------------

    def fail(self, name: str, stage: str, exc: BaseException) -> None:
        """Mark ``name`` failed at ``stage``; unregister it so its hooks stop running."""
        info = self.infos.setdefault(name, PluginInfo(name=name, source="extra"))
        info.status, info.stage, info.summary = "failed", stage, summarise(exc)
        log.error("plugin %s failed at %s: %s\n%s", name, stage, info.summary,
                  "".join(traceback.format_exception(exc)))
        if self.failure_log is not None:
            self.failure_log.note(name, stage, exc)
        plugin = self.get_plugin(name)
        if plugin is not None:
            self.unregister(plugin, name=name)
        if self.strict:
            raise exc

    def record_error(self, name: str, stage: str, exc: BaseException) -> None:
        """A failure that drops one contribution or one request but keeps the plugin."""
        log.error("plugin %s failed at %s: %s\n%s", name, stage, summarise(exc),
                  "".join(traceback.format_exception(exc)))
        info = self.infos.get(name) or self.core_parts.get(name)
        if info is not None:
            info.errors.appendleft((stage, summarise(exc), clock.now_utc()))
        if self.failure_log is not None:
            self.failure_log.note(name, stage, exc)

    @property
    def healthy(self) -> list[str]:
        return [n for n, i in self.infos.items() if i.ok]

    # -- loading -----------------------------------------------------------

    def load(self, settings, *, builtins=BUILTIN_PLUGINS, extra_plugins=(), load_entrypoints=True):
        """Register built-ins, then extra objects (tests), then allow-listed entry points."""
        for name in settings.plugins.disabled:
            self.set_blocked(name)
        for module_name in builtins:
            self._load_module(module_name, source="builtin")
        for obj in extra_plugins:
            self._register(obj, getattr(obj, "__name__", type(obj).__name__).rsplit(".", 1)[-1], "extra",
                           module=getattr(obj, "__name__", ""))
        if load_entrypoints:
            self._load_entrypoints(settings)
        for name in settings.plugins.disabled:
            info = self.infos.setdefault(name, PluginInfo(name=name, source="settings"))
            info.status, info.summary = "blocked", "plugins.disabled"
        self._check_pending()

    def _load_module(self, module_name: str, source: str, name: str | None = None,
                     version: str = "", distribution: str = "") -> None:
        name = name or module_name.rsplit(".", 1)[-1]
        if self.is_blocked(name):
            return
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:  # noqa: BLE001 — any import failure is this plugin's
            self.infos[name] = PluginInfo(name=name, source=source, module=module_name, version=version,
                                          distribution=distribution)
            self.fail(name, "import", exc)
            return
        self._register(module, name, source, module=module_name, version=version, distribution=distribution)

    def _register(self, obj, name, source, *, module="", version="", distribution=""):
        path = None
        file = getattr(obj, "__file__", None) or getattr(inspect.getmodule(type(obj)), "__file__", None)
        if file:
            path = Path(file).parent
        info = PluginInfo(name=name, source=source, module=module, path=path,
                          version=version or (core.__version__ if source == "builtin" else ""),
                          distribution=distribution)
        self.infos[name] = info
        try:
            if not PLUGIN_NAME_RE.match(name) or name in RESERVED_NAMES:
                raise PluginError("plugin.error.bad_name", plugin=name)
            self.refuse_unhonoured(obj, name)
            self.register(obj, name=name)
        except Exception as exc:  # noqa: BLE001
            self.fail(name, "registration", exc)
            return
        info.hooks = sorted(h.name for h in (self.get_hookcallers(obj) or []))

    def refuse_unhonoured(self, obj, name: str) -> None:
        """Raise ``PluginError`` naming the plugin and the hook for an implementation the core
        would not honour, before anything is registered.

        ``call_each`` calls each implementation as a plain function, one at a time, so:
        - ``wrapper``/``hookwrapper`` implementations would never wrap anything (their
          generator would come back as a result): refused;
        - an implementation of a hook that has no spec would never be called (a misspelt
          name): refused, unless marked ``optionalhook`` (written for a newer core);
        - a parameter that is not in the spec would get nothing (a typo, or a keyword with a
          default that silently stays at its default): refused.
        ``tryfirst``/``trylast`` are honoured: ``call_each`` keeps pluggy's calling order.
        ``firstresult`` is a spec option (refused in ``add_hookspecs``), not an implementation's.
        """
        for attr in dir(obj):
            opts = self.parse_hookimpl_opts(obj, attr)
            if opts is None:
                continue
            hook = opts.get("specname") or attr
            impl = pluggy.HookImpl(obj, name, getattr(obj, attr), opts)
            if impl.wrapper or impl.hookwrapper:
                raise PluginError("plugin.error.hook_wrapper", plugin=name, hook=hook)
            caller = getattr(self.hook, hook, None)
            if caller is None or caller.spec is None:
                if impl.optionalhook:
                    continue
                raise PluginError("plugin.error.hook_unknown", plugin=name, hook=hook)
            stray = [a for a in (*impl.argnames, *impl.kwargnames)
                     if a not in caller.spec.argnames and a not in caller.spec.kwargnames]
            if stray:
                raise PluginError("plugin.error.hook_args", plugin=name, hook=hook, args=", ".join(stray),
                                  known=", ".join(caller.spec.argnames))

    def _load_entrypoints(self, settings) -> None:
        allowed = set(settings.plugins.allow_external)
        for dist in importlib.metadata.distributions():
            for ep in dist.entry_points:
                if ep.group != ENTRY_POINT_GROUP:
                    continue
                name = ep.name
                if self.is_blocked(name) or self.has_plugin(name) or name in self.infos:
                    continue
                version, dist_name = dist.version, dist.metadata["Name"]
                if name not in allowed:
                    # Installing is not enough: a plugin is arbitrary code with access to
                    # government data, so it loads only when the operator names it.
                    self.infos[name] = PluginInfo(name=name, source="entrypoint", module=ep.value,
                                                  version=version, distribution=dist_name,
                                                  status="not_allowed")
                    continue
                try:
                    obj = ep.load()
                except Exception as exc:  # noqa: BLE001
                    self.infos[name] = PluginInfo(name=name, source="entrypoint", module=ep.value,
                                                  version=version, distribution=dist_name)
                    self.fail(name, "import", exc)
                    continue
                self._register(obj, name, "entrypoint", module=ep.value, version=version,
                               distribution=dist_name)

    def _check_pending(self) -> None:
        # check_pending raises for the first offender only; fail it and look again.
        while True:
            try:
                self.check_pending()
                return
            except pluggy.PluginValidationError as exc:
                name = self.get_name(exc.plugin)
                self.fail(name, "registration", exc)

    # -- calling -----------------------------------------------------------

    def call_each(self, hook_name: str, *, enabled=None, stage: str = "contribution", **kwargs):
        """Call every implementation separately; yield ``(plugin_name, result)``.

        A raising implementation is recorded and skipped; with ``stage="declaration"``
        or ``"startup"`` it marks its plugin failed. Plugins not in ``enabled`` are skipped.
        """
        results = []
        for impl in reversed(getattr(self.hook, hook_name).get_hookimpls()):
            name = impl.plugin_name
            if enabled is not None and name not in enabled:
                continue
            info = self.infos.get(name)
            if info is not None and not info.ok:
                continue
            try:
                result = impl.function(*[kwargs[a] for a in impl.argnames])
            except Exception as exc:  # noqa: BLE001
                if stage in ("contribution", "request"):
                    self.record_error(name, stage, exc)
                else:
                    self.fail(name, stage, exc)
                continue
            if result is not None:
                results.append((name, result))
        return results


def summarise(exc: BaseException) -> str:
    """One line for the plugins page: the type and the message, never the traceback."""
    detail = str(exc)
    # An exception without a message reads as its type alone, not "KeyError: ".
    text = detail if isinstance(exc, BaocaoError) or not detail else f"{type(exc).__name__}: {detail}"
    return text.splitlines()[0][:300] if text else type(exc).__name__


def build_plugin_manager(settings, *, builtins=BUILTIN_PLUGINS, extra_plugins=(), load_entrypoints=True,
                         strict=False) -> PluginManager:
    for name in settings.plugins.disabled:
        if not PLUGIN_NAME_RE.match(name):
            raise StartupError("plugin.error.bad_name", plugin=name)
    pm = PluginManager(strict=strict)
    pm.load(settings, builtins=builtins, extra_plugins=extra_plugins, load_entrypoints=load_entrypoints)
    return pm
