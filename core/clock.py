"""The one clock: what day and time it is for this instance.

Stored times are UTC (naive ``DateTimeField`` values, ``utcnow()``); the day a person lives in is the
instance's time zone (the ``time_zone`` setting, Asia/Ho_Chi_Minh by default). The server usually
runs on UTC, so between 00:00 and 07:00 in Vietnam ``datetime.date.today()`` is still yesterday:
every "today" of the core, the web layer, the API, the jobs and the plugins comes from here
(``core.api.today()`` / ``core.api.now()`` for plugins), never from ``date.today()``.

The zone is process-wide (set from the settings by the app factory, the worker and the CLI): one
process serves one instance. Tests freeze the clock with ``freeze()`` (the ``frozen_clock``
fixture) instead of patching ``datetime``.
"""

from __future__ import annotations

import datetime as dt
from contextlib import contextmanager
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_TIME_ZONE = "Asia/Ho_Chi_Minh"

_zone: dt.tzinfo = ZoneInfo(DEFAULT_TIME_ZONE)
_frozen: dt.datetime | None = None  # an aware UTC instant while frozen


def zone_for(name: str) -> dt.tzinfo | None:
    """The IANA zone ``name`` names, or None when it names none (the settings loader's check)."""
    try:
        return ZoneInfo(name) if isinstance(name, str) and name.strip() == name and name else None
    except (ZoneInfoNotFoundError, ValueError):
        return None


def configure(time_zone: str) -> None:
    """Use the settings' ``time_zone`` (already checked by ``core.settings``)."""
    global _zone
    _zone = zone_for(time_zone) or ZoneInfo(DEFAULT_TIME_ZONE)


def zone() -> dt.tzinfo:
    return _zone


def _utc() -> dt.datetime:
    return _frozen if _frozen is not None else dt.datetime.now(dt.timezone.utc)


def now() -> dt.datetime:
    """The current time in the instance's zone (aware): for showing and for local days."""
    return _utc().astimezone(_zone)


def now_utc() -> dt.datetime:
    """The same instant, aware and in UTC: for certificates and signature evidence."""
    return _utc()


def utcnow() -> dt.datetime:
    """The current time as stored: naive UTC."""
    return _utc().replace(tzinfo=None)


def today() -> dt.date:
    """Today's date in the instance's zone: validity dates, deadlines, the API's default ``at``."""
    return now().date()


def local(value: dt.datetime) -> dt.datetime:
    """A stored (naive = UTC) or aware datetime, in the instance's zone."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(_zone)


def set_frozen(at: dt.datetime | None) -> None:
    """Stop the clock at ``at`` (naive = UTC), or let it run again with None: tests only."""
    global _frozen
    _frozen = None if at is None else (at if at.tzinfo else at.replace(tzinfo=dt.timezone.utc)).astimezone(
        dt.timezone.utc)


@contextmanager
def freeze(at: dt.datetime):
    """The clock stopped at ``at`` for the block, for the whole process: tests, and the demo's
    playback of a past month (``core.demo_daily``: one thread, before the server starts)."""
    previous = _frozen
    set_frozen(at)
    try:
        yield
    finally:
        set_frozen(previous)
