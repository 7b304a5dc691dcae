"""Parameters of a request read one strict way: ids in paths, numbers in query strings and
forms, JSON bodies (issue 12 item 12). What cannot be read is a 400 with a message, never
an exception deeper down (SQLite's OverflowError past 2**63, int("²"), a RecursionError).

Imported by ``web/__init__.py``: the bounded ``int`` path convertor must be registered
before any route list (the core's or a plugin's) is built, because a route compiles its
convertors when it is created.
"""

from __future__ import annotations

from starlette.convertors import Convertor, register_url_convertor
from starlette.exceptions import HTTPException

from core.safe_input import MAX_ID, JSONInputError, loads_json, parse_id, parse_int

__all__ = ["BadParameter", "IdConvertor", "megabytes", "parse_id", "parse_int", "query_int", "read_json"]

MAX_JSON_BYTES = 4 * 1024 * 1024  # a 400 × 40 grid of values is under 1 MB as JSON


class BadParameter(HTTPException):
    """A 400 whose ``detail`` names the reason the error page explains (``error.reason.<detail>``)."""

    def __init__(self, reason: str = "parameter", status_code: int = 400, **params):
        super().__init__(status_code, detail=reason)
        self.params = params  # for the message, e.g. limit=20 (MB)


class IdConvertor(Convertor[int]):
    """``{id:int}``: ASCII digits (as Starlette's), but a number no database id can reach
    is refused with a 400 here rather than overflowing SQLite's INTEGER in the view."""

    regex = "[0-9]+"

    def convert(self, value: str) -> int:
        if len(value) > 19 or int(value) > MAX_ID:  # 19 digits first: int() of 5,000 digits raises
            raise BadParameter("id_range")
        return int(value)

    def to_string(self, value: int) -> str:
        value = int(value)
        assert 0 <= value <= MAX_ID, "an id is a non-negative 64-bit integer"
        return str(value)


register_url_convertor("int", IdConvertor())


def query_int(request, name: str, default: int | None = None, *, minimum: int = 1,
              maximum: int = MAX_ID) -> int | None:
    """A query parameter as an int in range; absent or empty gives ``default``, anything
    else unreadable is a 400."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    number = parse_int(raw, minimum=minimum, maximum=maximum)
    if number is None:
        raise BadParameter("parameter")
    return number


def megabytes(size: int) -> str:
    """A byte limit as the MB figure a message shows (rounded up: "20", "0.1")."""
    value = size / (1024 * 1024)
    return str(int(value)) if value == int(value) else f"{value:.1f}"


async def read_json(request, *, max_bytes: int = MAX_JSON_BYTES, parse_float=None):
    """The request body as JSON: at most ``max_bytes`` (413), well-formed, bounded in depth
    and without NUL characters (400; ``BadParameter.detail`` says which)."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise BadParameter("body_too_large", status_code=413, limit=megabytes(max_bytes))
        chunks.append(chunk)
    body = b"".join(chunks)
    if not body.strip():
        return None
    try:
        return loads_json(body, parse_float=parse_float)
    except JSONInputError as exc:
        raise BadParameter(f"json_{exc.reason}") from None
