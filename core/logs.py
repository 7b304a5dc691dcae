"""Log records as a person or a log collector reads them (security.md LOG-03, LOG-04).

Two formats (setting ``log_format``): ``text``, one readable line a record, and ``json``, one JSON
object a line. Both stamp the time in UTC with its offset, and neither lets a value break its line:
JSON escapes CR, LF and the other control characters, and the text format writes them as escapes
(a username with "\\n" in it cannot forge a second record).

``logging_config`` is a ``logging.config.dictConfig`` dictionary, not a function that sets handlers
up, because ``baocao serve --workers N`` starts its workers as new interpreters (uvicorn spawns them):
uvicorn applies the same dictionary in each one, so every worker logs as the command does.

Each request writes one access record (logger ``baocao.access``, written by
``web.middleware.ObservedRequests``) whose fields are the ``ACCESS_FIELDS`` below: never a password,
a cookie, a token or a CSRF value, nor the raw path (a link may carry a token): the route's template.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re

ACCESS_LOGGER = "baocao.access"
ACCESS_FIELDS = ("request_id", "method", "route", "status", "duration_ms", "user_id", "username", "unit_id",
                 "client")
# Characters that end a line for some reader: the C0 controls and DEL, NEL, and Unicode's line and
# paragraph separators (json.dumps leaves the last three as they are when ensure_ascii is off).
_LINE_BREAKERS = re.compile("[\x00-\x1f\x7f\x85\u2028\u2029]")


def _escape(match: re.Match) -> str:
    char = match.group()
    return {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(char, f"\\u{ord(char):04x}")


def one_line(text: str) -> str:
    """``text`` with every character that could end a line written as an escape."""
    return _LINE_BREAKERS.sub(_escape, text)


def utc_time(record: logging.LogRecord) -> str:
    """ISO 8601 in UTC with the offset written out (LOG-04): 2026-12-07T15:29:18.123+00:00."""
    return dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(timespec="milliseconds")


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, the access fields when the record has
    them, and the traceback as one string field."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": utc_time(record), "level": record.levelname, "logger": record.name,
                 "message": record.getMessage()}
        for name in ACCESS_FIELDS:
            if hasattr(record, name):
                entry[name] = getattr(record, name)
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["traceback"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return one_line(json.dumps(entry, ensure_ascii=False, default=str))


class TextFormatter(logging.Formatter):
    """``<UTC time> <LEVEL> <logger>: <message>``; the message on one line, a traceback (for the log
    file's reader) on the lines after it, as Python prints it."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{utc_time(record)} {record.levelname} {record.name}: {one_line(record.getMessage())}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        elif record.exc_text:
            line += "\n" + record.exc_text
        return line


def access_message(fields: dict) -> str:
    """The access record's message, what the text format shows: one line a request."""
    user = f"{fields['user_id']}:{fields['username']}" if fields.get("user_id") is not None else "-"
    unit = fields["unit_id"] if fields.get("unit_id") is not None else "-"
    return (f"{fields['method']} {fields['route']} {fields['status']} {fields['duration_ms']}ms "
            f"user={user} unit={unit} request={fields['request_id']} client={fields['client'] or '-'}")


def log_access(fields: dict) -> None:
    """One access record; ``fields`` has every name of ``ACCESS_FIELDS``."""
    logging.getLogger(ACCESS_LOGGER).info("%s", access_message(fields), extra=fields)


def logging_config(settings=None, *, verbose: bool = False, server: bool = False) -> dict:
    """The ``dictConfig`` of a command: a server's standard error is its log; a one-shot command
    shows one line per problem (warnings and worse) and leaves the full log to ``log_file``."""
    log_format = settings.log_format if settings is not None else "text"
    log_file = settings.log_file if settings is not None else ""
    level = (settings.log_level if settings is not None else "INFO").upper()
    if level not in logging.getLevelNamesMapping():
        level = "INFO"
    full = "json" if log_format == "json" else "text"
    if verbose or (server and not log_file):
        console = {"formatter": full}
    else:
        # A person at a terminal: the message only (core.cli.OneLineFormatter), or its JSON object.
        console = {"formatter": "json" if log_format == "json" else "short", "level": "WARNING"}
    handlers = {"console": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr", **console}}
    if log_file:
        handlers["file"] = {"class": "logging.FileHandler", "filename": log_file, "encoding": "utf-8",
                            "formatter": full}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "json": {"()": "core.logs.JsonFormatter"},
            "text": {"()": "core.logs.TextFormatter"},
            "short": {"()": "core.cli.OneLineFormatter", "fmt": "%(levelname)s %(name)s: %(message)s"},
        },
        "handlers": handlers,
        "root": {"level": "DEBUG" if verbose else level, "handlers": list(handlers)},
        # uvicorn's own records reach the handlers above (no handlers of its own, so one format);
        # its access log stays silent: ours has the user, the unit and the route (baocao.access).
        "loggers": {"uvicorn": {"handlers": [], "propagate": True},
                    "uvicorn.error": {"handlers": [], "propagate": True},
                    "uvicorn.access": {"handlers": [], "propagate": False}},
    }
