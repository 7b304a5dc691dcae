"""The hook specifications: the contract between baocao and its plugins.

A plugin implements any of these with ``@hookimpl`` (from ``core.api``, or
``pluggy.HookimplMarker("baocao")``). An implementation may accept any subset
of the documented arguments. Arguments are added over time, never renamed.
Every hook here has a section in ``docs/plugin_hooks.md`` (a test checks it).

How core calls them:
- ``register_*`` once at start-up, one plugin at a time: an exception marks only
  that plugin failed (stage "declaration") and the rest keeps serving.
- request-time contributions (``menu_items``, ``dashboard_widgets``,
  ``extra_template_vars``) per request, only for plugins enabled for the current
  user's unit: an exception drops that plugin's contribution and is recorded.
- ``startup`` once the database is migrated: an exception marks the plugin failed
  (stage "startup") and its pages answer 503.
"""

from __future__ import annotations

import pluggy

PROJECT = "baocao"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_domain(settings):
    """Declare the plugin: return a ``core.api.Domain``.

    The domain names the plugin (one canonical snake_case name that drives its
    URL mount ``/p/<name>/``, templates ``templates/<name>/``, static files
    ``static/<name>/``, permission codes ``<name>.<entity>.<verb>``, menu ids,
    table prefix and migration history) and carries its static declarations:
    label, version, routes, permissions, roles (``RoleSpec``) and permissions added
    to the core's built-in roles (``add_to_roles``), menu entries, whether it is enabled by
    default for units with no setting, and the core API version it was written
    for. ``settings`` is the ``core.api.Settings`` of the instance; a plugin reads
    its own ``[plugins.<name>]`` table with ``settings.plugin(name)``.
    """


@hookspec
def register_permissions(settings):
    """Return a list of ``core.api.Permission`` in addition to the domain's own.

    For permissions that depend on configuration. Codes must start with the
    plugin's name; a duplicate of a code already registered fails this plugin.
    """


@hookspec
def menu_items(request, actor, unit):
    """Return ``core.api.MenuItem`` entries computed per request (a badge with a count, say).

    Static entries belong on the domain. The core drops entries whose permission
    the actor lacks, and calls this hook only when the plugin is enabled for the
    actor's unit: a plugin never filters by itself. ``actor`` is the logged-in
    user (or None), ``unit`` their unit.
    """


@hookspec
def dashboard_widgets(request, actor, unit):
    """Return ``core.api.Widget`` entries for the home page of a logged-in user.

    A widget names a template of the plugin (``<name>/_widget_x.html``) and the
    context to render it with. Called only for plugins enabled for the unit.
    """


@hookspec
def extra_template_vars(request, template_name):
    """Return a dict of extra variables for rendering ``template_name``.

    Keys are made available to templates as ``<plugin>_<key>`` so two plugins
    never overwrite each other's variables or the core's.
    """


@hookspec
def startup(settings, registry):
    """Called once at start-up after all migrations ran.

    May return ``None``, a callable or an awaitable (it is awaited). An exception
    marks this plugin failed at stage "startup": its pages answer 503 and its
    contributions stop, the rest keeps serving.
    """


@hookspec
def register_regimes(settings):
    """Return a list of ``core.api.RegimeSpec``: the reporting regimes this plugin ships.

    Called once at start-up, after the migrations. Each spec whose ``code`` (which must
    start with ``<plugin>.``) names no regime yet is created as a DRAFT owned by the
    plugin, issued by the root unit of ``issuing_unit_kind`` when the unit tree has one.
    A regime that exists is never touched again: an administrator's edits, versions and
    issuing stay as they are. A spec the core refuses is recorded against the plugin and
    skipped; the plugin keeps serving.
    """


@hookspec
def seed_demo(settings, today, demo_ca):
    """Add this plugin's demo data to a freshly seeded demo database (``baocao demo``).

    Called once, after the core's demo units, accounts and reference catalogue exist, inside
    a database connection. ``today`` is the demo's date, so figures can follow the cut-off
    windows. ``demo_ca`` (name it only if needed): the demo's issuing CA, pinned in the demo database,
    whose ``issue(common_name, organisation)`` gives a certificate, its key and its chain in PEM — for
    a demo counterpart that must sign what the demo verifies. An exception marks only this plugin's
    contribution failed; the demo still starts.
    """


@hookspec
def register_signature_providers(settings):
    """Return a list of signature providers: other ways to sign a report (a signing service, a
    document-management system) beside the built-in PKCS#12 file, USB-token upload and unit seal.

    A provider is an object with ``name`` (unique; a name already taken is skipped), ``label`` and
    ``help`` (message keys), ``kind`` ("personal" or "seal"), ``fields`` (what the signing form asks:
    "p12" and "password", "p7s", or nothing), ``two_step`` (True when the bytes are downloaded and
    the signature uploaded later), ``usable(access, report)``, ``expected(access, report)`` (the
    certificates the signer must be one of) and ``sign(access, report, prepared, inputs, settings)``
    returning a detached CMS over ``prepared.data``. The core verifies every signature itself
    before storing it: a provider cannot make an invalid signature pass.
    """


@hookspec
def report_transition(transition, settings):
    """React to one step of a report's life: ``transition`` is a frozen ``core.api.Transition``
    (report, regime, reporting and receiving unit ids, period "start/end", action — opened, saved,
    submitted, returned, accepted, reopened, consolidated or signed —, version number, actor id,
    reason, ``at`` in UTC). ``settings``: the instance's settings (``settings.plugin(name)`` is the
    plugin's table); take it only if you need it — an implementation may name ``transition`` alone.

    Called inside the transition's transaction, after its own writes, so what the implementation
    writes (an outbox message, a row of its own tables) commits with the transition or not at all.
    Each plugin runs in its own savepoint: an exception rolls back that plugin's writes only, is
    recorded against it (stage "event" on the plugins page) and does not undo the transition.
    Called only for plugins switched on for the reporting unit (``transition.unit_id``). The core's
    notifications and accepted figures are implementations of this hook too (always on).
    Mark an implementation ``@for_actions("accepted", ...)`` (``core.api``) to hear only those actions.
    Keep it short: the transaction, and on SQLite every other writer, waits for it.
    """


@hookspec
def issuing_authorities(unit_id, day):
    """Rights a plugin grants ``unit_id`` to issue regimes beyond the core's rules, in force on
    ``day`` (a ``datetime.date``): a list of ``core.api.IssuingAuthority``. The province delegating
    a sector's reporting to a department (Điều 6.3) is the case: the department may then issue
    periodic regimes to the units of the delegation's scope, on the delegation's decision number.
    Asked when a regime is saved or issued and each time one of its periods opens; an authority
    no longer returned opens nothing more. Fail closed: an implementation that raises, or answers
    anything else, grants nothing. Only plugins switched on at ``unit_id`` are asked."""


@hookspec
def role_grants(user_id, day):
    """Roles the user ``user_id`` holds on ``day`` (a ``datetime.date``) because of the plugin's own
    records: a list of ``core.api.RoleGrant(unit_id, role)``. A delegation in force naming the user
    among its administrators is the case (Điều 6.3): the role is held at the department while the
    delegation stands, and ending the delegation ends it, with nothing to clean up.

    Asked once per request of a logged-in user, of the plugins switched on at the user's unit: keep
    it to one cheap query. The grants join the user's own in the request's rights (menus, guards,
    the units a screen offers). Fail closed: only a role the plugin itself declares
    (``Domain.roles``) counts, with the permissions its ``RoleSpec`` lists, and only at a unit where
    the plugin is switched on; anything else, or an exception, grants nothing and is recorded
    against the plugin. Whoever holds a role this way counts as an administrator for two-factor
    login (``require_admin_mfa``)."""


@hookspec
def register_channels(settings):
    """Return a list of ``core.api.Channel``: outbox channels this plugin delivers (core.outbox).

    A channel has a ``name`` (``<plugin>.<what>``; a name already taken is refused), a
    ``deliver(message, settings)`` that returns once the receiver has the message and raises
    otherwise (``core.api.ChannelUnavailable`` when the receiver is down for every message), an
    optional ``label`` (message key for the outbox screen) and ``max_attempts``. Messages are
    queued with ``core.api.enqueue(channel, payload, key=None)`` inside the business transaction;
    ``message.key`` is the idempotency key the receiver uses to drop repeats. Called once at
    start-up by the app and by ``baocao worker``; an exception drops this plugin's channels.
    """


@hookspec
def register_jobs(settings):
    """Return a list of ``core.api.Job``: periodic jobs ``baocao worker`` runs for this plugin.

    ``Job(name, schedule, run)``: the task is ``<plugin>.<name>``; ``schedule`` is five crontab
    fields in UTC (``"30 1 * * *"``); ``run(context)`` gets a ``core.api.JobContext`` (``plugin``,
    ``settings``, and ``units_enabled()``: the units where this plugin is switched on, so a job
    skips the units where it is off) inside a database connection. Called once when the worker
    starts. A job the core refuses is recorded against the plugin and skipped; a job that raises
    is recorded against its plugin (stage "job") and the worker and the other jobs go on.
    """


@hookspec
def register_commands(subparsers):
    """Add sub-commands of ``baocao <plugin> …``: ``subparsers`` is this plugin's own
    ``argparse`` sub-parsers action (``subparsers.add_parser("recount", help=...)``), so a plugin
    cannot add or shadow a core command; a plugin whose name is a core command's gets no commands
    (refused with a message naming both).

    Each command sets ``handler`` (``parser.set_defaults(handler=fn)``); the core loads the
    settings, migrates and calls ``fn(args, settings)`` inside a database connection; its return
    value is the exit status (None is 0). A ``core.api.BaocaoError`` it raises ends in one line.
    """
