"""Connectors: the remote systems the national link talks to, read from the settings, the HTTP
exchange with each of them, and the demo's national test server started when the settings ask.

A connector is one remote — the Government reporting system, a ministry's system, a DHIS2
instance — written by the operator as a table ``[plugins.national_link.connectors.<name>]``
(docs/national_link_connectors.md). Each is an outbox channel: ``national_link.<name>`` for the
kinds this module delivers itself ("qcvn125": QCVN 125 packets POSTed as JSON; "dhis2": data value
sets), or a vendor plugin's own channel (kind "channel"), to which the plugin queues the same
payloads as to a "qcvn125" connector.

Delivery happens in the outbox worker after the commit of the report's transition. A packet is
completed and sealed by the sending unit's seal at delivery, not when queued, so a seal installed
after a failure is used by the retry; its message id (the outbox key) goes with every attempt as
``Idempotency-Key``, so the remote drops a repeat. What the remote answers decides the outcome: an
acknowledgement is recorded on the exchange log (``exchange.record_ack``); a remote that is down,
slow, or refuses the login fails the whole batch for now (``ChannelUnavailable``: retried with the
outbox's backoff); a remote that refuses this packet fails this message with the remote's answer.

Secrets (token, password) never appear in a connector's ``repr``, in an error or in a log line: an
answer that echoes one has it masked before it is kept.
"""

from __future__ import annotations

import base64
import functools
import http.client
import json
import logging
import re
import socket
import threading
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from core.api import BaocaoError, Channel, ChannelUnavailable, PluginError, __version__, utcnow

NAME = "national_link"
log = logging.getLogger("baocao.national_link")
KINDS = ("qcvn125", "dhis2", "channel")
DEFAULT_TIMEOUT = 20
TIMEOUT_RANGE = (1, 120)
SETTINGS_PREFIX = f"plugins.{NAME}.connectors"
KEYS = ("kind", "label", "url", "agency_code", "token", "username", "password", "timeout", "mapping_version",
        "receives", "channel")

# A connector's name is its outbox channel's last part and a column of the exchange log (40 characters).
NAME_RE = re.compile(r"^[a-z][a-z0-9_]{1,39}\Z")
# Mã định danh điện tử (QCVN 102): "000.00.00.H00", "H44.01"; letters, digits, dots and dashes.
AGENCY_CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.\-]{0,39}\Z")
# Another plugin's channel, "<plugin>.<what>" (the outbox's rule for a channel's name).
CHANNEL_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+\Z")
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")  # no header injection through a secret
MAX_LABEL = 120
MAX_SECRET = 4096
MAX_ANSWER = 150  # of a remote's answer, in an error: twice (vi / en) within the outbox's 500 characters
MAX_ACK = 1 << 20  # an acknowledgement is small
MAX_SUMMARY = 8 << 20  # DHIS2's import summary lists every conflict of a large value set
MAX_FETCH = 32 << 20  # one page of packets sent down
LOOPBACK = ("127.0.0.1", "localhost", "::1")


# -- messages -----------------------------------------------------------------------------------------
# In a request, a command or the worker the core words a plugin's BaocaoError from the app's catalogue;
# these errors are also raised where there is none yet (the settings read while the app starts, before
# its registry exists: the plugins page shows that failure), so they word themselves from this
# plugin's messages, in both languages on one line.

@functools.cache
def _messages() -> dict[str, dict[str, str]]:
    folder = Path(__file__).with_name("locale")
    return {lang: json.loads((folder / f"{lang}.connectors.json").read_text(encoding="utf-8")) for lang in ("vi", "en")}


def wording(lang: str, key: str, **params) -> str:
    """One of this module's messages (``national_link.connectors.…``) in ``lang`` ("vi" or "en")."""
    text = _messages()["en" if lang == "en" else "vi"].get(key, key)
    return text.format(**params) if params else text


def both_languages(key: str, **params) -> str:
    """A message as an operator reads it in a log or a terminal: Vietnamese / English."""
    vi, en = wording("vi", key, **params), wording("en", key, **params)
    return vi if vi == en else f"{vi} / {en}"


class _Worded:
    def __init__(self, key: str, /, **params):
        super().__init__(key)
        self.key, self.params = key, params

    def message(self, lang: str = "vi") -> str:
        return wording(lang, self.key, **self.params)

    def __str__(self) -> str:
        return both_languages(self.key, **self.params)


class ConnectorError(_Worded, PluginError):
    """A connector's setting is wrong; the message names the setting (never a secret's value)."""


class RemoteRefused(_Worded, BaocaoError):
    """The remote refused this message (or answered what cannot be read): retrying will not help
    until someone changes something; the text carries the remote's answer."""


class RemoteUnavailable(_Worded, ChannelUnavailable):
    """The remote is down, too slow, or refuses our login: every message would fail alike."""


# -- settings ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Connector:
    name: str
    label: str
    kind: str  # "qcvn125" | "dhis2" | "channel"
    url: str  # without a trailing slash; "" for kind "channel"
    agency_code: str  # the remote's mã định danh: a packet's receiver
    token: str = field(repr=False)
    username: str
    password: str = field(repr=False)
    timeout: float
    mapping_version: str
    receives: bool  # its outbox of packets sent down is read (kind "qcvn125" only)
    channel: str  # the outbox channel: "national_link.<name>", or a vendor's


def _setting(name: str, key: str) -> str:
    return f"{SETTINGS_PREFIX}.{name}.{key}"


def _text(raw: dict, name: str, key: str, *, secret: bool = False, limit: int = MAX_LABEL) -> str:
    value = raw.get(key, "")
    if not isinstance(value, str):
        raise ConnectorError("national_link.connectors.error.text", setting=_setting(name, key))
    if secret:
        if len(value) > MAX_SECRET or CONTROL_RE.search(value):
            raise ConnectorError("national_link.connectors.error.secret", setting=_setting(name, key))
        return value
    value = value.strip()
    if len(value) > limit or CONTROL_RE.search(value):
        raise ConnectorError("national_link.connectors.error.text", setting=_setting(name, key))
    return value


def _url(raw: dict, name: str, kind: str) -> str:
    value = raw.get("url", "")
    if kind == "channel":
        if value:
            raise ConnectorError("national_link.connectors.error.url_unused", setting=_setting(name, "url"))
        return ""
    parts = urllib.parse.urlsplit(value) if isinstance(value, str) else None
    try:
        port_ok = parts is not None and (parts.port is None or parts.port > 0)
    except ValueError:
        port_ok = False
    if (parts is None or parts.scheme not in ("http", "https") or not parts.hostname or not port_ok
            or parts.username is not None or parts.query or parts.fragment or CONTROL_RE.search(value)
            or " " in value):
        raise ConnectorError("national_link.connectors.error.url", setting=_setting(name, "url"))
    return value.rstrip("/")


def _timeout(raw: dict, name: str) -> float:
    value = raw.get("timeout", DEFAULT_TIMEOUT)
    low, high = TIMEOUT_RANGE
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise ConnectorError("national_link.connectors.error.timeout", setting=_setting(name, "timeout"),
                             low=low, high=high)
    return float(value)


def _mapping(raw: dict, name: str, kind: str, default) -> str:
    from .packets import DEFAULT_MAPPING, MAPPINGS

    value = raw.get("mapping_version", DEFAULT_MAPPING if default is None else default)
    where = _setting(name, "mapping_version") if "mapping_version" in raw else f"plugins.{NAME}.mapping_version"
    if not isinstance(value, str) or not value.strip():
        raise ConnectorError("national_link.connectors.error.text", setting=where)
    value = value.strip()
    if kind in ("qcvn125", "channel"):  # a packet's field names; a DHIS2 connector's codes are its mapping's
        if value not in MAPPINGS:
            raise ConnectorError("national_link.connectors.error.mapping_version", setting=where, value=value[:40],
                                 known=", ".join(sorted(MAPPINGS)))
    return value


def connector(name: str, raw, *, default_mapping: str | None = None) -> Connector:
    """One ``[plugins.national_link.connectors.<name>]`` table, checked; ``ConnectorError`` names the
    first setting that is wrong. ``default_mapping``: the plugin-wide ``mapping_version`` (None: the
    packets' default)."""
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ConnectorError("national_link.connectors.error.name", setting=f"{SETTINGS_PREFIX}.{str(name)[:40]}")
    if not isinstance(raw, dict):
        raise ConnectorError("national_link.connectors.error.table", setting=f"{SETTINGS_PREFIX}.{name}")
    unknown = sorted(set(raw) - set(KEYS))
    if unknown:
        raise ConnectorError("national_link.connectors.error.unknown", setting=_setting(name, str(unknown[0])[:40]),
                             known=", ".join(KEYS))
    kind = raw.get("kind")
    if kind not in KINDS:
        raise ConnectorError("national_link.connectors.error.kind", setting=_setting(name, "kind"),
                             known=", ".join(KINDS))
    url = _url(raw, name, kind)
    agency_code = _text(raw, name, "agency_code")
    if (agency_code or kind != "dhis2") and not AGENCY_CODE_RE.match(agency_code):
        raise ConnectorError("national_link.connectors.error.agency_code", setting=_setting(name, "agency_code"))
    token = _text(raw, name, "token", secret=True)
    username = _text(raw, name, "username", limit=200)
    password = _text(raw, name, "password", secret=True)
    if bool(username) != bool(password):
        raise ConnectorError("national_link.connectors.error.credentials",
                             setting=_setting(name, "password" if username else "username"))
    if kind == "dhis2" and not (token or username):
        raise ConnectorError("national_link.connectors.error.dhis2_login", setting=f"{SETTINGS_PREFIX}.{name}")
    receives = raw.get("receives", kind == "qcvn125")
    if not isinstance(receives, bool) or (receives and kind != "qcvn125"):
        raise ConnectorError("national_link.connectors.error.receives", setting=_setting(name, "receives"))
    channel = raw.get("channel", "")
    if kind == "channel":
        if (not isinstance(channel, str) or not CHANNEL_RE.match(channel) or len(channel) > 64
                or channel.startswith(NAME + ".")):
            raise ConnectorError("national_link.connectors.error.channel", setting=_setting(name, "channel"))
    elif channel:
        raise ConnectorError("national_link.connectors.error.channel_unused", setting=_setting(name, "channel"))
    else:
        channel = f"{NAME}.{name}"
    return Connector(name=name, label=_text(raw, name, "label") or name, kind=kind, url=url, agency_code=agency_code,
                     token=token, username=username, password=password, timeout=_timeout(raw, name),
                     mapping_version=_mapping(raw, name, kind, default_mapping), receives=receives, channel=channel)


def connectors(table: dict) -> dict[str, Connector]:
    """The connectors of the plugin's settings table (``settings.plugin("national_link")``), by name.
    A wrong one raises ``ConnectorError`` (a ``PluginError``) naming its setting, in both languages."""
    raw = table.get("connectors", {})
    if not isinstance(raw, dict):
        raise ConnectorError("national_link.connectors.error.table", setting=SETTINGS_PREFIX)
    default = table.get("mapping_version")
    return {name: connector(name, raw[name], default_mapping=default) for name in sorted(raw, key=str)}


def channels(table: dict) -> list[Channel]:
    """The outbox channels of the connectors this module delivers for (kinds "qcvn125" and "dhis2");
    a vendor's channel is registered by the vendor's plugin. With no label, the outbox screen shows
    the channel's name, ``national_link.<connector>``, which tells two connectors of one kind apart."""
    return [Channel(c.channel, functools.partial(deliver, c)) for c in connectors(table).values()
            if c.kind != "channel"]


def national_server_address(table: dict) -> tuple[str, int] | None:
    """``test_server = "127.0.0.1:8765"``: where the demo's national test server listens (None: not set).
    Only the loopback: the test server obeys whoever asks it to fail or to send."""
    value = table.get("test_server")
    if value in (None, ""):
        return None
    host, _, port = str(value).rpartition(":")
    host = host.strip("[]")
    if host not in LOOPBACK or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConnectorError("national_link.connectors.error.test_server", setting=f"plugins.{NAME}.test_server")
    return host, int(port)


def demo_server_settings(table: dict) -> tuple[str, int, str]:
    """Where the national test server listens (``test_server``, else 127.0.0.1:8765) and the agency
    code it answers as: that of the "qcvn125" connector pointed at it, so what it sends down comes
    from the sender that connector expects."""
    from .national_server import GOVERNMENT

    host, port = national_server_address(table) or ("127.0.0.1", 8765)
    urls = (f"http://{host}:{port}", f"http://localhost:{port}", f"http://127.0.0.1:{port}")
    served = [c for c in connectors(table).values() if c.kind == "qcvn125" and c.url in urls]
    return host, port, served[0].agency_code if served else GOVERNMENT


_test_server = {"tried": False, "server": None}
_test_server_lock = threading.Lock()


def start_test_server(table: dict, settings):
    """Start the national test server in this process when the settings ask (``test_server``) and
    the instance is not in production: once per process (the web app's start-up, ``baocao demo``);
    a port in use is a line in the log, not a failed start. Returns the server, or None."""
    if national_server_address(table) is None or settings.production:
        return None
    with _test_server_lock:
        if _test_server["tried"]:
            return _test_server["server"]
        _test_server["tried"] = True
        from .national_server import NationalServer, demo_certificate

        host, port, agency_code = demo_server_settings(table)
        certificate, key, chain = demo_certificate(settings)
        server = NationalServer(agency_code=agency_code, certificate=certificate, private_key=key, chain=chain)
        try:
            url = server.start(host, port)
        except OSError as exc:
            log.warning("national test server not started: %s:%s is in use or refused (%s)", host, port,
                        exc.strerror or exc)
            return None
        log.info("national test server (%s) at %s", agency_code, url)
        _test_server["server"] = server
        return server


# -- HTTP ---------------------------------------------------------------------------------------------

class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is answered as it is, never followed: following would carry the credentials to
    wherever the answer points, and a POST would become a GET."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def _authorization(connector: Connector) -> str:
    if connector.kind == "dhis2" and not connector.token:
        pair = f"{connector.username}:{connector.password}".encode("utf-8")
        return "Basic " + base64.b64encode(pair).decode("ascii")
    if connector.token:
        return ("ApiToken " if connector.kind == "dhis2" else "Bearer ") + connector.token
    return ""


def _masked(connector: Connector, text: str) -> str:
    """The remote's answer as an error may carry it: one line, cut, any secret of ours masked."""
    for secret in (connector.token, connector.password):
        if secret:
            text = text.replace(secret, "••••••")
    text = " ".join(text.split())
    return text if len(text) <= MAX_ANSWER else text[:MAX_ANSWER - 1] + "…"


def _request(connector: Connector, method: str, path: str, body: bytes | None = None, *, headers=None,
             limit: int = MAX_ACK) -> tuple[int, bytes]:
    """(status, body) of one request to the connector's remote. Only what says the remote itself
    cannot be reached raises here (``RemoteUnavailable``); every HTTP answer is returned."""
    url = connector.url + path
    sent = {"Accept": "application/json", "User-Agent": f"baocao/{__version__} ({NAME})", **(headers or {})}
    if body is not None:
        sent["Content-Type"] = "application/json"
    if auth := _authorization(connector):
        sent["Authorization"] = auth
    request = urllib.request.Request(url, data=body, headers=sent, method=method)
    where = connector.url
    try:
        with _opener.open(request, timeout=connector.timeout) as response:
            return response.status, _read(response, limit, where)
    except urllib.error.HTTPError as answer:
        with answer:
            return answer.code, _read(answer, limit, where)
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, (TimeoutError, socket.timeout)):
            raise RemoteUnavailable("national_link.connectors.remote.timeout", url=where,
                                    seconds=f"{connector.timeout:g}") from None
        raise RemoteUnavailable("national_link.connectors.remote.unreachable", url=where,
                                reason=_reason(exc.reason)) from None
    except TimeoutError:
        raise RemoteUnavailable("national_link.connectors.remote.timeout", url=where,
                                seconds=f"{connector.timeout:g}") from None
    except (http.client.HTTPException, OSError) as exc:  # the connection dropped mid-answer
        raise RemoteUnavailable("national_link.connectors.remote.unreachable", url=where,
                                reason=_reason(exc)) from None


def _reason(exc) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def _read(response, limit: int, where: str) -> bytes:
    data = response.read(limit + 1)
    if len(data) > limit:
        raise RemoteRefused("national_link.connectors.remote.too_big", url=where, limit=limit)
    return data


def _fail(connector: Connector, status: int, data: bytes):
    """Raise what an answer other than the one hoped for means."""
    answer = _masked(connector, data.decode("utf-8", "replace"))
    where = connector.url
    if status in (401, 403, 407):
        raise RemoteUnavailable("national_link.connectors.remote.login", url=where, status=status)
    if status in (408, 425, 429) or status >= 500:
        raise RemoteUnavailable("national_link.connectors.remote.unavailable", url=where, status=status,
                                answer=answer or "—")
    if 300 <= status < 400:
        raise RemoteRefused("national_link.connectors.remote.redirect", url=where, status=status)
    raise RemoteRefused("national_link.connectors.remote.refused", url=where, status=status, answer=answer or "—")


def _json_object(data: bytes):
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _bad_answer(connector: Connector, status: int, data: bytes) -> RemoteRefused:
    return RemoteRefused("national_link.connectors.remote.bad_answer", url=connector.url, status=status,
                         answer=_masked(connector, data.decode("utf-8", "replace")) or "—")


# -- delivery ---------------------------------------------------------------------------------------

def deliver(connector: Connector, message, settings) -> None:
    """The outbox channel ``national_link.<name>``: send ``message`` to the connector's remote and
    return once it acknowledged it; raise otherwise (see the module's docstring)."""
    if connector.kind == "dhis2":
        _deliver_value_set(connector, message)
    elif connector.kind == "qcvn125":
        _deliver_packet(connector, message, settings)
    else:  # its own plugin's channel delivers it
        raise ValueError(f"connector {connector.name} delivers through {connector.channel}")


def _deliver_packet(connector: Connector, message, settings) -> None:
    from .exchange import record_ack
    from .packets import seal
    from .send import packet_for_delivery

    payload = message.payload
    packet = seal(packet_for_delivery(payload, connector), payload["unit_id"], settings)
    body = json.dumps(packet, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    status, data = _request(connector, "POST", "/packets", body, headers={"Idempotency-Key": message.key})
    if status not in (200, 201, 202, 409):
        _fail(connector, status, data)
    ack = _json_object(data)
    if status != 409 and (ack is None or ack.get("message_id") != message.key):
        raise _bad_answer(connector, status, data)  # it may have it: the retry's answer says (409)
    record_ack(connector.name, message.key, ack or {}, data.decode("utf-8", "replace"))


def _import_summary(answer: dict | None) -> dict | None:
    """DHIS2's import summary in an answer to POST /api/dataValueSets: the answer itself (before
    2.38) or its ``response`` (a web message, 2.38 and later); None when there is none."""
    if not isinstance(answer, dict):
        return None
    inner = answer.get("response")
    summary = inner if isinstance(inner, dict) and "status" in inner else answer
    return summary if isinstance(summary.get("status"), str) else None


def _conflicts(summary: dict) -> list[str]:
    """Each conflict DHIS2 reports, as "object: what" (the data element or org unit, and why)."""
    found = []
    for item in summary.get("conflicts") or ():
        if isinstance(item, dict):
            what = str(item.get("value") or item.get("errorCode") or "")
            found.append(f"{item.get('object', '')}: {what}".strip(": "))
    return found


def _deliver_value_set(connector: Connector, message) -> None:
    from .exchange import record_ack
    from .packets import moment_text

    body = json.dumps(message.payload["value_set"], ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    status, data = _request(connector, "POST", "/api/dataValueSets", body, limit=MAX_SUMMARY)
    summary = _import_summary(_json_object(data)) if status in (200, 201, 202, 409) else None
    if summary is None:
        if status in (200, 201, 202):
            raise _bad_answer(connector, status, data)
        _fail(connector, status, data)
    state = summary["status"].upper()
    conflicts = _conflicts(summary)
    if state not in ("OK", "SUCCESS", "WARNING"):
        raise RemoteRefused("national_link.connectors.remote.dhis2_refused", url=connector.url,
                            conflicts=_masked(connector, "; ".join(conflicts)) or state)
    ack = {"message_id": message.key, "receipt_id": str(summary.get("reference") or ""), "status": state.lower(),
           "received_at": moment_text(utcnow()),
           "import_count": summary.get("importCount") or {}, "conflicts": conflicts}
    record_ack(connector.name, message.key, ack, data.decode("utf-8", "replace"))


# -- receiving ---------------------------------------------------------------------------------------

def fetch(connector: Connector, after: str = "") -> tuple[list[bytes], str]:
    """The packets the remote sent down since ``after`` (its cursor; "" from the start), each as the
    UTF-8 JSON bytes that ``packets.check`` reads, and the cursor to ask with next time."""
    if connector.kind != "qcvn125" or not connector.receives:
        raise ValueError(f"connector {connector.name} does not receive")
    status, data = _request(connector, "GET", "/outbox?" + urllib.parse.urlencode({"after": after}), limit=MAX_FETCH)
    if status != 200:
        _fail(connector, status, data)
    answer = _json_object(data)
    packets = answer.get("packets") if answer else None
    cursor = answer.get("next") if answer else None
    if not isinstance(packets, list) or not isinstance(cursor, (str, int)) or isinstance(cursor, bool):
        raise _bad_answer(connector, status, data)
    return [json.dumps(p, ensure_ascii=False).encode("utf-8") for p in packets], str(cursor)

