"""Reading numbers and JSON that came from outside, one strict way (issue 12 item 12).

``str.isdigit()`` accepts "²" and other scripts' digits, which ``int()`` then refuses or reads
(``int("١٢") == 12``), ``int()`` also takes " 7 " and "1_000", and an id past 2**63 - 1 makes
SQLite raise ``OverflowError``. ``json.loads`` recurses once per nesting level, so a deeply
nested document raises ``RecursionError``. Every caller asks here instead and gets ``None``
or a ``ValueError`` for anything it cannot use.
"""

from __future__ import annotations

import json
import re

MAX_ID = 2**63 - 1  # the largest id either database stores (a signed 64-bit integer)
MAX_JSON_DEPTH = 32  # far above the deepest document the API reads (a report's values: 3)
_INT = re.compile(r"-?[0-9]{1,19}")  # ASCII digits only: re's [0-9] never matches "²" or "١"


def parse_int(value, *, minimum: int = 1, maximum: int = MAX_ID) -> int | None:
    """``value`` as an int in [minimum, maximum], or None: ASCII digits with an optional minus
    sign and nothing else (no spaces, underscores, signs or other scripts' digits)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and _INT.fullmatch(value):
        number = int(value)
    else:
        return None
    return number if minimum <= number <= maximum else None


def parse_id(value) -> int | None:
    """A database id (1 … 2**63 - 1) or None."""
    return parse_int(value)


def has_nul(text: str) -> bool:
    """PostgreSQL cannot store U+0000 in a text column; no form field needs it."""
    return "\x00" in text


class JSONInputError(ValueError):
    """The text is not JSON we read: malformed, too deep, or carrying a NUL character."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason  # "malformed", "too_deep" or "nul"


def loads_json(data: bytes | str, *, max_depth: int = MAX_JSON_DEPTH, parse_float=None):
    """``json.loads`` bounded in depth, without U+0000 in any string; raises JSONInputError.
    ``parse_float=Decimal`` keeps every digit of a JSON number with a fraction."""
    try:
        value = json.loads(data, parse_float=parse_float)
    except RecursionError:  # the C parser gives up near 1,000 levels, long before the stack does
        raise JSONInputError("too_deep") from None
    except ValueError:  # UnicodeDecodeError included
        raise JSONInputError("malformed") from None
    _check(value, max_depth)
    return value


def _check(value, max_depth: int) -> None:
    """Walk the parsed document without recursion: its depth, and no NUL in keys or strings."""
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise JSONInputError("nul")
        elif isinstance(item, (list, dict)):
            if depth > max_depth:
                raise JSONInputError("too_deep")
            children = item.items() if isinstance(item, dict) else ((None, v) for v in item)
            for key, child in children:
                if key is not None and "\x00" in key:
                    raise JSONInputError("nul")
                pending.append((child, depth + 1))
