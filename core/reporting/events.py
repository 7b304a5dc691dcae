"""A report's lifecycle as events: the workflow announces each transition, it never calls a consumer.

Each step of a report (opened, saved, submitted, returned, accepted, reopened, consolidated,
signed) builds one frozen ``Transition`` and hands it to ``emit`` inside the step's own
transaction. ``emit`` calls every implementation of the ``report_transition`` hook:

- the core's built-in subscribers (``core.plugins.CORE_SUBSCRIBERS``: notifications and their
  e-mails, accepted figures) always, as Datasette's default plugins are: ordinary
  implementations of the public hook, not switchable per unit;
- a plugin's only when it is switched on for the report's unit (``core.activation``);
- each in its own savepoint: a subscriber that raises has its own writes rolled back, the failure
  recorded against it (stage "event" on the plugins page), and the transition goes on; what the
  other subscribers wrote commits with the transition, or not at all when the transition fails.

Which plugin manager: the one the current context names (``use`` / ``using``: the web app per
request, the CLI per command). With none (the core used on its own, tests, a worker thread not
told), the built-in subscribers still run, so notifications and figures behave the same
wherever the workflow is called from.

A subscriber may narrow what it hears with ``for_actions("accepted", ...)`` on its hook
implementation: the core then skips it, savepoint included, for other actions (an autosave costs
nothing for a subscriber that counts accepted reports).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib
import logging
from contextvars import ContextVar
from dataclasses import dataclass

from core.db import db
from core.models import utcnow

log = logging.getLogger("baocao.events")

ACTIONS = ("opened", "saved", "submitted", "returned", "accepted", "reopened", "consolidated", "signed")
STAGE = "event"  # the failure stage a subscriber's exception is recorded under (core.plugins.STAGES)


@dataclass(frozen=True)
class Transition:
    """One step of one report. Ids, not rows: a subscriber reads what it needs, in the same
    transaction, so it sees the state the step left."""

    report_id: int
    regime_id: int
    unit_id: int  # the reporting unit (whose plugins hear the event)
    receiver_id: int | None  # the receiving unit (None: the top of the tree, the national link)
    period: str  # the reporting window, ISO 8601 dates "start/end"
    action: str  # one of ACTIONS
    version_number: int | None = None  # the version concerned (submitted, returned, accepted …)
    actor_id: int | None = None  # None: the system (the scheduler opening periods)
    reason: str = ""  # why it was returned or reopened
    at: dt.datetime | None = None  # UTC, naive like every stored time

    @classmethod
    def of(cls, report, action: str, *, actor=None, version_number: int | None = None, reason: str = "",
           at: dt.datetime | None = None) -> "Transition":
        """The transition ``action`` of ``report`` (a ``Report`` row); ``actor`` a User, an id or None."""
        if action not in ACTIONS:
            raise ValueError(f"unknown transition {action!r}")
        actor_id = getattr(actor, "id", actor)
        return cls(report_id=report.id, regime_id=report.regime_id, unit_id=report.unit_id,
                   receiver_id=report.receiver_id,
                   period=f"{report.period_start.isoformat()}/{report.period_end.isoformat()}",
                   action=action, version_number=version_number, actor_id=actor_id, reason=reason or "",
                   at=at or utcnow())


def for_actions(*actions: str):
    """Decorate a ``report_transition`` implementation to hear only these actions."""
    unknown = set(actions) - set(ACTIONS)
    if unknown or not actions:
        raise ValueError(f"unknown transitions {sorted(unknown)}")

    def mark(function):
        function.baocao_actions = frozenset(actions)
        return function

    return mark


# -- which plugin manager -------------------------------------------------------------------------

@dataclass(frozen=True)
class Subscribers:
    """The app's plugin manager with what decides which plugins are on for a unit."""

    pm: object  # core.plugins.PluginManager
    registry: object  # core.registry.Registry
    settings: object  # core.settings.Settings


current: ContextVar[Subscribers | None] = ContextVar("baocao_report_subscribers", default=None)


def use(pm, registry, settings):
    """Name the plugin manager for the rest of this context (a request, a command), and its message
    catalogue (so a plugin's error reads in words wherever it is shown); returns the token for
    ``current.reset``."""
    from core.i18n import use_catalog

    use_catalog(getattr(registry, "catalog", None))
    return current.set(Subscribers(pm, registry, settings))


@contextlib.contextmanager
def using(pm, registry, settings):
    from core.i18n import reset_catalog, use_catalog

    catalog_token = use_catalog(getattr(registry, "catalog", None))
    token = current.set(Subscribers(pm, registry, settings))
    try:
        yield
    finally:
        current.reset(token)
        reset_catalog(catalog_token)


def _hears(function, action: str) -> bool:
    wanted = getattr(function, "baocao_actions", None)
    return wanted is None or action in wanted


_core_only: list | None = None


def _builtin_subscribers() -> list:
    """(name, function) of the core's own subscribers, for a context with no plugin manager."""
    global _core_only
    if _core_only is None:
        from core.plugins import CORE_SUBSCRIBERS

        # Imported by name, not by an import statement: the workflow stays unaware of its consumers.
        _core_only = [(name, importlib.import_module(name).report_transition) for name in CORE_SUBSCRIBERS]
    return _core_only


def _caller(impl, settings):
    """Call an implementation with the arguments it asked for (a subset of the hook's: the
    transition, and the instance's settings for one that reads its own table or a secret)."""
    function, argnames = impl.function, impl.argnames
    if argnames == ("transition",):
        return function
    return lambda transition: function(*[{"transition": transition, "settings": settings}[a] for a in argnames])


def _targets(subscribers: Subscribers, transition: Transition) -> list:
    from core.plugins import CORE_SUBSCRIBERS

    pm = subscribers.pm
    impls = [i for i in reversed(pm.hook.report_transition.get_hookimpls()) if _hears(i.function, transition.action)]
    if any(i.plugin_name not in CORE_SUBSCRIBERS for i in impls):
        from core.activation import enabled_plugins

        enabled = enabled_plugins(transition.unit_id, subscribers.registry, subscribers.settings, set(pm.healthy))
        impls = [i for i in impls if i.plugin_name in CORE_SUBSCRIBERS or i.plugin_name in enabled]
    return [(i.plugin_name, _caller(i, subscribers.settings)) for i in impls]


def heard(action: str) -> bool:
    """Whether any subscriber may hear ``action`` (before activation per unit): lets a step that
    would have to read rows back to announce them (opening a period) skip that when nobody listens."""
    subscribers = current.get()
    if subscribers is None:
        return any(_hears(f, action) for _, f in _builtin_subscribers())
    return any(_hears(i.function, action) for i in subscribers.pm.hook.report_transition.get_hookimpls())


def emit(transition: Transition) -> None:
    """Tell every subscriber that hears it (see the module docstring); call inside the transition's
    transaction, after its own writes."""
    subscribers = current.get()
    if subscribers is None:
        targets = [(n, f) for n, f in _builtin_subscribers() if _hears(f, transition.action)]
    else:
        targets = _targets(subscribers, transition)
    if not targets:
        return
    # Called outside a transaction (a script): one for all of them, so the savepoints below hold.
    with contextlib.nullcontext() if db.in_transaction() else db.atomic():
        _call_each(targets, transition, subscribers)


_depth: ContextVar[int] = ContextVar("baocao_event_depth", default=0)  # of nested emits


def _call_each(targets, transition: Transition, subscribers) -> None:
    """Each subscriber after its own ``SAVEPOINT``, rolled back to it when it raises.

    One statement per subscriber, not peewee's ``atomic()`` (SAVEPOINT then RELEASE: two round
    trips each): nothing is ever released. PostgreSQL and SQLite keep a savepoint until the
    enclosing transaction ends (COMMIT keeps every write made since, ROLLBACK none) or an enclosing
    savepoint is released or rolled back, which takes these with it: nothing outlives the
    transition's transaction. A ``SAVEPOINT`` of a name in use shadows the earlier one, so
    ``ROLLBACK TO`` that name undoes this subscriber's writes only; earlier subscribers' stay.
    The name says how deep the call is, so a transition announced by a subscriber (a nested
    ``emit``) never rolls back to its caller's savepoint, nor the caller to its; and the same few
    statement texts come back each time, so the driver prepares them once per connection (a new
    name per call made psycopg prepare, then evict, a statement per call).
    """
    depth = _depth.get()
    savepoint = f"baocao_event_{depth}"
    token = _depth.set(depth + 1)
    try:
        for name, function in targets:
            db.execute_sql(f"SAVEPOINT {savepoint}")
            try:
                function(transition)
            except Exception as exc:  # noqa: BLE001 — a subscriber never undoes the transition
                db.execute_sql(f"ROLLBACK TO SAVEPOINT {savepoint}")
                if subscribers is not None:
                    subscribers.pm.record_error(name, STAGE, exc)
                else:
                    log.exception("report %s %s: subscriber %s failed", transition.report_id, transition.action,
                                  name)
    finally:
        _depth.reset(token)


def announce(report, action: str, **details) -> None:
    """``emit(Transition.of(report, action, ...))``: the one line a step adds."""
    emit(Transition.of(report, action, **details))
