"""Plugin failures recorded by processes other than the web server (issue 13: a subscriber's failure
is recorded against its plugin, as the other failure stages are).

The plugin manager keeps a plugin's failures in memory (``PluginManager.record_error`` / ``fail``),
which the plugins page of the web server reads. ``baocao worker`` runs the plugins' jobs (stage
"job") and the report subscribers of the reports its tasks open or move (stage "event") with a
plugin manager of its own, in another process: those failures would never reach the page. A manager
given a ``Recorder`` (the worker's, ``core.jobs.make_huey``) also writes each failure to
``core_plugin_failure``: one row per plugin, stage and error text, with a count and the first and
last time, so a job that fails every minute is one row and not thousands. The plugins page lists
the rows beside the in-memory failures to system administrators, who clear a plugin's rows once it
is fixed (``clear``, audited).

When the row is written: never inside the caller's transaction. A subscriber fails inside the
transition's transaction (its savepoint rolled back, the transition going on); writing the row
there would hold a lock on it until the transition commits, behind or ahead of the audit chain's
lock depending on the step (a save audits first, a submission announces first), so two worker
threads could deadlock, and PostgreSQL would then abort a business transaction over a log line. So
``Recorder.note`` keeps the failure in memory while a transaction is open and writes it after, in a
short transaction of its own: at once when none is open (a job that raised), else when the worker's
task ends (``flush``, from huey's post-execute hook). The row then stays even when the transition
rolls back later: the subscriber did raise, and its code is what the administrator must fix (the
in-memory list keeps it too). Writing never raises into the caller: a failure to record is logged.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import traceback
from dataclasses import dataclass
from pathlib import Path

from peewee import Check, CharField, DateTimeField, IntegerField

from core import audit
from core.db import CoreModel, db, transaction
from core.errors import Forbidden
from core.models import utcnow

log = logging.getLogger("baocao.plugins")

PROCESSES = ("worker", "command")
MAX_NAME = 100
MAX_STAGE = 20
MAX_ERROR = 300  # core.plugins.summarise: the first line, 300 characters at most
MAX_LOCATION = 200
KEEP_PER_PLUGIN = 50  # distinct failures kept per plugin (an error text that embeds a time or an id)
MAX_PENDING = 500  # distinct failures waiting to be written (the database down for a while)
# A plugin's name (core.settings.PLUGIN_NAME_RE) or a core part's module name (core.plugins.CORE_SUBSCRIBERS).
NAME_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*\Z")


class PluginFailure(CoreModel):
    plugin = CharField(max_length=MAX_NAME)
    stage = CharField(max_length=MAX_STAGE)
    error = CharField(max_length=MAX_ERROR)  # the exception's type and message, one line
    location = CharField(max_length=MAX_LOCATION, default="")  # where it raised, the latest time
    process = CharField(max_length=10, constraints=[Check("process IN ('worker', 'command')")])
    first_at = DateTimeField()
    last_at = DateTimeField()
    occurrences = IntegerField(default=1)

    class Meta:
        indexes = ((("plugin", "stage", "error"), True),)


def valid_name(name: str) -> bool:
    return len(name) <= MAX_NAME and bool(NAME_RE.match(name))


def location(exc: BaseException) -> str:
    """The innermost frame that raised, ``package/module.py:42 in function``: enough to open the
    file without the whole traceback (the worker's log keeps that)."""
    frames = traceback.extract_tb(exc.__traceback__) if exc.__traceback__ else []
    if not frames:
        return ""
    frame = frames[-1]
    path = "/".join(Path(frame.filename).parts[-2:])
    return f"{path}:{frame.lineno} in {frame.name}"[:MAX_LOCATION]


@dataclass
class _Pending:
    location: str
    first_at: object
    last_at: object
    occurrences: int = 1


class Recorder:
    """Writes the failures of one process's plugin manager (``PluginManager.failure_log``)."""

    def __init__(self, process: str):
        if process not in PROCESSES:
            raise ValueError(f"process must be one of {PROCESSES}")
        self.process = process
        self._pending: dict[tuple[str, str, str], _Pending] = {}
        self._lock = threading.Lock()  # huey's worker threads share the manager

    def note(self, plugin: str, stage: str, exc: BaseException) -> None:
        from core.plugins import summarise

        key = (plugin[:MAX_NAME], stage[:MAX_STAGE], summarise(exc)[:MAX_ERROR])
        now = utcnow()
        with self._lock:
            entry = self._pending.get(key)
            if entry is not None:
                entry.occurrences += 1
                entry.last_at, entry.location = now, location(exc)
            elif len(self._pending) < MAX_PENDING:
                self._pending[key] = _Pending(location(exc), now, now)
            else:
                log.error("plugin %s failed at %s: not recorded, too many failures waiting", plugin, stage)
        if db.obj is not None and not db.in_transaction():
            self.flush()

    def flush(self) -> int:
        """Write what is waiting, in a transaction of its own; nothing while this thread's
        connection is inside a transaction (it stays waiting). Returns the failures written."""
        if db.obj is None or db.in_transaction():
            return 0
        with self._lock:
            pending, self._pending = self._pending, {}
        if not pending:
            return 0
        try:
            with db.connection_context() if db.is_closed() else contextlib.nullcontext():
                with transaction():
                    for key, entry in pending.items():
                        _upsert(key, entry, self.process)
                    for plugin in {key[0] for key in pending}:
                        _prune(plugin)
        except Exception:  # noqa: BLE001 — recording a failure must never become one
            log.exception("plugin failures not recorded; kept for the next attempt")
            with self._lock:
                for key, entry in pending.items():
                    later = self._pending.get(key)
                    if later is not None:
                        entry.occurrences += later.occurrences
                        entry.last_at, entry.location = later.last_at, later.location
                    if later is not None or len(self._pending) < MAX_PENDING:
                        self._pending[key] = entry
            return 0
        return len(pending)


def attach(pm, process: str) -> Recorder:
    """Make ``pm`` write its failures (the one it has already, else a new ``Recorder``)."""
    if getattr(pm, "failure_log", None) is None:
        pm.failure_log = Recorder(process)
    return pm.failure_log


def _upsert(key, entry: _Pending, process: str) -> None:
    plugin, stage, error = key
    (PluginFailure.insert(plugin=plugin, stage=stage, error=error, location=entry.location, process=process,
                          first_at=entry.first_at, last_at=entry.last_at, occurrences=entry.occurrences)
     .on_conflict(conflict_target=[PluginFailure.plugin, PluginFailure.stage, PluginFailure.error],
                  update={PluginFailure.occurrences: PluginFailure.occurrences + entry.occurrences,
                          PluginFailure.last_at: entry.last_at, PluginFailure.location: entry.location,
                          PluginFailure.process: process})
     .execute())


def _prune(plugin: str) -> None:
    """Keep the latest ``KEEP_PER_PLUGIN`` failures of a plugin whose messages never repeat."""
    query = PluginFailure.select(PluginFailure.id).where(PluginFailure.plugin == plugin)
    if query.count() <= KEEP_PER_PLUGIN:
        return
    keep = [row.id for row in query.order_by(PluginFailure.last_at.desc(), PluginFailure.id.desc())
            .limit(KEEP_PER_PLUGIN)]
    PluginFailure.delete().where((PluginFailure.plugin == plugin) & PluginFailure.id.not_in(keep)).execute()


# -- the plugins page --------------------------------------------------------------------------------

def recorded(plugin: str | None = None) -> list[PluginFailure]:
    """The recorded failures, latest first (of one plugin, or all)."""
    query = PluginFailure.select()
    if plugin is not None:
        query = query.where(PluginFailure.plugin == plugin)
    return list(query.order_by(PluginFailure.last_at.desc(), PluginFailure.id.desc()))


def by_plugin(rows: list[PluginFailure]) -> dict[str, list[PluginFailure]]:
    grouped: dict[str, list[PluginFailure]] = {}
    for row in rows:
        grouped.setdefault(row.plugin, []).append(row)
    return grouped


def allowed(access) -> bool:
    """Who reads and clears the recorded failures: system administrators only. The rows are the
    whole instance's (a job runs for every unit, an error text may name any unit's report), and
    what they call for (fixing or removing a plugin) is the instance operator's; a unit's
    administrator, who switches plugins per unit on the same page, does not see them."""
    actor = access.actor
    return actor is not None and getattr(actor, "is_admin", False) and access.allowed("core.plugin.admin")


def clear(access, plugin: str) -> int:
    """Dismiss every recorded failure of ``plugin`` (fixed, or uninstalled); returns how many went."""
    if not allowed(access):
        raise Forbidden()
    with transaction():
        rows = recorded(plugin)
        if not rows:
            return 0
        PluginFailure.delete().where(PluginFailure.id.in_([row.id for row in rows])).execute()
        audit.record("plugin.failures_clear", actor=access.actor, object_type="plugin", object_id=plugin,
                     details={"rows": len(rows), "count": sum(row.occurrences for row in rows)})
    return len(rows)
