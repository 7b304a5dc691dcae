"""Per-caller request budgets (security.md API-04): a fixed window of one minute per
(bucket, caller), counted in the database so every worker and every machine shares it.

One counted request is one UPSERT (``INSERT … ON CONFLICT DO UPDATE hits = hits + 1 RETURNING
hits``, SQLite ≥ 3.35 and PostgreSQL) in its own short transaction: the row's lock makes parallel
requests of one caller take turns, so N workers cannot let N extra through. A refused request is
counted too (the count only says the window is spent); nothing else is written for it.

The web side (``web.rate_limits``) decides which requests belong to which bucket and who the
caller is; the worker's hourly purge removes the windows that have ended.
"""

from __future__ import annotations

import datetime as dt
import logging
import math

from peewee import CharField, DateTimeField, IntegerField

from core.db import CoreModel, transaction
from core.models import utcnow

log = logging.getLogger("baocao.rate_limits")

WINDOW = dt.timedelta(minutes=1)
BUCKETS = ("api", "export")
CALLER_MAX = 80  # "t:" + a token's SHA-256 in hex, "u:" + a user id, "a:" + a client address


class RateLimitWindow(CoreModel):
    """How many requests one caller made in one bucket during the minute from ``window_start``
    (migration 0038)."""

    bucket = CharField(max_length=16)
    caller = CharField(max_length=CALLER_MAX)
    window_start = DateTimeField()
    hits = IntegerField(default=1)

    class Meta:
        indexes = ((("bucket", "caller", "window_start"), True), (("window_start",), False))


def window_start(now: dt.datetime) -> dt.datetime:
    """The start of the minute ``now`` falls in (naive UTC, like every stored time)."""
    return now.replace(second=0, microsecond=0)


def spend(bucket: str, caller: str, limit: int, now: dt.datetime | None = None) -> tuple[bool, int]:
    """Count one request of ``caller`` in ``bucket``; return (allowed, retry_after seconds).

    ``limit`` requests a minute are allowed; 0 means no limit (nothing is counted). ``retry_after``
    is the number of seconds until the window ends, at least 1, when refused; 0 when allowed.
    The first refusal of a window is logged (once per window and caller, whatever the worker).
    """
    if limit <= 0:
        return True, 0
    now = now or utcnow()
    start = window_start(now)
    with transaction():
        hits = (RateLimitWindow.insert(bucket=bucket, caller=caller[:CALLER_MAX], window_start=start, hits=1)
                .on_conflict(conflict_target=[RateLimitWindow.bucket, RateLimitWindow.caller,
                                              RateLimitWindow.window_start],
                             update={RateLimitWindow.hits: RateLimitWindow.hits + 1})
                .returning(RateLimitWindow.hits).tuples().execute())
        count = next(iter(hits))[0]
    if count <= limit:
        return True, 0
    if count == limit + 1:
        log.warning("rate limit reached: %d %s requests a minute for caller %s", limit, bucket, caller[:24])
    return False, max(1, math.ceil((start + WINDOW - now).total_seconds()))


def purge(*, now: dt.datetime | None = None) -> int:
    """Remove the windows that have ended (the one before the current minute is kept: a machine
    whose clock runs a little behind may still be counting in it)."""
    now = now or utcnow()
    with transaction():
        return RateLimitWindow.delete().where(RateLimitWindow.window_start < window_start(now) - WINDOW).execute()
