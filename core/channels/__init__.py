"""Outbox channels (core.outbox): the contract a channel fulfils, and the ones built into the core
(``smtp``). Plugins add theirs with the hook ``register_channels``. Defined here, apart from the
outbox's machinery, so a channel module needs nothing of it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class Message:
    """What a channel's ``deliver`` receives: the payload as enqueued, and the idempotency key."""

    id: int
    channel: str
    key: str
    payload: Any
    attempt: int  # 1 for the first try
    created_at: dt.datetime


@dataclass(frozen=True)
class Channel:
    """A named way out. ``deliver(message, settings)`` returns when the receiver has the message and
    raises otherwise (the text of the exception becomes the message's last error). Raising
    ``Unavailable`` says the receiver itself is down (server unreachable, login refused): the rest
    of this channel's batch is then recorded as failed with the same error, not tried one by one."""

    name: str  # "smtp", or "<plugin>.<what>" for a plugin's channel
    deliver: Callable[[Message, Any], None]
    label: str = ""  # message key shown on the outbox screen; empty: the name
    max_attempts: int | None = None  # None: the setting ``outbox_max_attempts``


class Unavailable(Exception):
    """Raised by a channel when the receiver is down for every message, not for this one."""
