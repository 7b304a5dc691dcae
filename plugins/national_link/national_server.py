"""The national test server: a small Starlette application that plays the Government reporting
system on 127.0.0.1, so the whole exchange — packets up, acknowledgements, packets down — runs on one
machine: in the tests (tests/fixtures/national_server.py), in the demo (``test_server`` in the
settings, plugins/national_link/demo.toml) and by hand (``baocao national_link server``).

What it does, as the real one is expected to (docs/national_link_connectors.md):
- ``POST /packets`` takes a packet (JSON, header and body in a mapping's wire names) whose
  ``Idempotency-Key`` header is its message id, stores it once and answers an acknowledgement
  ``{"message_id", "receipt_id", "status": "received", "received_at"}``; the same message id again is
  ``409`` with the same acknowledgement, counted as a repeat and never stored twice. A body that is
  not a packet (not JSON, no message id, a shape its schema refuses) or a key that is not its
  message id is ``400`` with the reason. It does not verify the sender's signature: it has no trust
  store; baocao's own check of what it receives is the one that matters here.
- ``GET /outbox?after=<n>`` gives the packets it sends down after the n-th, each signed by its own
  certificate (a detached CMS over the packet's canonical bytes), and the next cursor.
- It can be told to fail the next posts with a status (503: the remote is down), to time out (hold
  the answer longer than the client waits, then still not store), to send each packet down twice,
  and — on by default — to answer a report's data with a report-status packet "accepted".
- ``GET /received`` lists what it received (message id, type, sender, time, attempts, repeats);
  ``GET /`` shows it, and what it sent, on a page in Vietnamese; ``/control/…`` drives it over HTTP.

The control endpoints obey anyone who can reach them: the server listens on the loopback only when
the demo starts it, and is never started in production. It imports the core's public API, Starlette,
uvicorn, cryptography and the plugin's own modules (the packets; the demo's seeded certificate),
nothing else of baocao.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import html
import ipaddress
import json
import logging
import socket
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

from core.api import now, utcnow

from .connectors import wording

log = logging.getLogger("baocao.national_link")

GOVERNMENT = "000.00.00.H00"  # the Government reporting system's electronic code, as the tests and demo use it
FAIL_STATUS = 503
TIMEOUT_SECONDS = 30.0  # longer than a connector waits by default (20 s)
PAGE_SIZE = 100  # packets per GET /outbox
MAX_BODY = 16 * 1024 * 1024  # packets.MAX_BYTES


@dataclass
class Received:
    """A packet the server took in, once, however often it was posted."""

    message_id: str
    packet_type: str
    sender: str
    receiver: str
    received_at: str  # ISO 8601 UTC with Z
    receipt_id: str
    attempts: int  # posts of this message id, the failed and timed-out ones included
    repeats: int  # posts after it was stored (answered 409)
    packet: dict

    def ack(self) -> dict:
        return {"message_id": self.message_id, "receipt_id": self.receipt_id, "status": "received",
                "received_at": self.received_at}

    def summary(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k != "packet"}


@dataclass(frozen=True)
class Sent:
    """A packet the server sends down, as ``GET /outbox`` gives it."""

    packet_type: str
    message_id: str
    receiver: str
    in_reply_to: str
    sent_at: str
    packet: dict


def _json(data, status: int = 200) -> JSONResponse:
    return JSONResponse(data, status_code=status)


def _refusal(status: int, reason: str, **extra) -> JSONResponse:
    return _json({"reason": reason, **extra}, status)


class NationalServer:
    """The Government reporting system, played on the loopback. ``certificate``, ``private_key`` and
    ``chain`` sign what it sends down; ``token``: the Bearer token it requires (empty: none)."""

    def __init__(self, agency_code: str = GOVERNMENT, certificate: x509.Certificate | None = None,
                 private_key=None, chain=(), *, token: str = "", mapping: str = ""):
        from .packets import DEFAULT_MAPPING

        self.agency_code = agency_code
        self.certificate, self.private_key, self.chain = certificate, private_key, tuple(chain)
        self.mapping = mapping or DEFAULT_MAPPING
        self._token = token
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = self._thread = None
        self.url = ""
        self.reset()
        self.app = Starlette(routes=[
            Route("/", self._page, methods=["GET"]),
            Route("/packets", self._post_packet, methods=["POST"]),
            Route("/outbox", self._outbox, methods=["GET"]),
            Route("/received", self._list_received, methods=["GET"]),
            Route("/control", self._control_state, methods=["GET"]),
            Route("/control/{action}", self._control, methods=["POST"]),
        ])

    # -- what the tests and the page read and set ---------------------------------------------------

    def reset(self) -> None:
        """Forget everything received and sent, and every instruction (between two tests)."""
        with self._lock:
            self._received: dict[str, Received] = {}
            self._attempts: dict[str, int] = {}
            self._sent: list[Sent] = []
            self._fail: list[int] = []  # the statuses of the next posts to fail
            self._timeouts: list[float] = []  # the delays of the next posts to time out
            self.twice = False
            self.auto_status = True
            self.token = self._token
            self.posts = 0  # every POST /packets, whatever came of it

    def fail_next(self, count: int = 1, status: int = FAIL_STATUS) -> None:
        """The next ``count`` posts answer ``status`` and store nothing (the remote is down)."""
        if not 400 <= int(status) <= 599:
            raise ValueError("a failure answers a 4xx or 5xx status")
        with self._lock:
            self._fail.extend([int(status)] * int(count))

    def time_out_next(self, count: int = 1, seconds: float = TIMEOUT_SECONDS) -> None:
        """The next ``count`` posts get no answer for ``seconds`` (longer than the client waits),
        then a 504; nothing is stored."""
        with self._lock:
            self._timeouts.extend([float(seconds)] * int(count))

    def answer_twice(self, on: bool = True) -> None:
        """Each packet sent down from now on is queued twice (the same message id both times)."""
        with self._lock:
            self.twice = bool(on)

    @property
    def received(self) -> list[Received]:
        with self._lock:
            return list(self._received.values())

    @property
    def sent(self) -> list[Sent]:
        with self._lock:
            return list(self._sent)

    def attempts(self, message_id: str) -> int:
        with self._lock:
            return self._attempts.get(message_id, 0)

    def send(self, packet_type: str, body: dict, receiver: str, *, in_reply_to: str = "", mapping: str = "") -> dict:
        """Queue a packet down to ``receiver`` (an agency code): ``body`` in internal names, written
        in ``mapping`` (default: the server's), signed now; twice when told so. Returns the packet."""
        from .packets import canonical_bytes, mapping_named, moment_text, new_packet

        if self.certificate is None or self.private_key is None:
            raise RuntimeError("the national test server has no certificate to sign with")
        message_id = str(uuid.uuid4())
        packet = new_packet(packet_type, body, sender=self.agency_code, receiver=receiver, message_id=message_id,
                            sent_at=utcnow(), in_reply_to=in_reply_to, mapping=mapping or self.mapping)
        mapping = mapping_named(mapping or self.mapping)
        cms = self._sign(canonical_bytes(packet))
        packet[mapping.wire("packet", "signature")] = {
            mapping.wire("signature", "format"): "cms-detached",
            mapping.wire("signature", "value"): base64.b64encode(cms).decode("ascii")}
        sent = Sent(packet_type, message_id, receiver, in_reply_to, moment_text(utcnow()), packet)
        with self._lock:
            self._sent.extend([sent, sent] if self.twice else [sent])
        return packet

    def outbox(self, after: int = 0, limit: int = PAGE_SIZE) -> tuple[list[dict], int]:
        """The packets sent down after the ``after``-th, at most ``limit``, and the next cursor."""
        with self._lock:
            page = self._sent[after:after + limit]
        return [s.packet for s in page], after + len(page)

    def _sign(self, data: bytes) -> bytes:
        builder = pkcs7.PKCS7SignatureBuilder().set_data(data).add_signer(self.certificate, self.private_key,
                                                                           hashes.SHA256())
        for certificate in self.chain:
            builder = builder.add_certificate(certificate)
        return builder.sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.DetachedSignature,
                                                          pkcs7.PKCS7Options.Binary, pkcs7.PKCS7Options.NoCapabilities])

    # -- the application ------------------------------------------------------------------------------

    def _authorised(self, request: Request) -> bool:
        return not self.token or request.headers.get("authorization") == f"Bearer {self.token}"

    async def _post_packet(self, request: Request):
        from .packets import moment_text, read

        if not self._authorised(request):
            return _refusal(401, "login refused: a Bearer token is required")
        if int(request.headers.get("content-length") or 0) > MAX_BODY:
            return _refusal(413, "packet too big")
        raw = await request.body()
        checked = read(raw, max_bytes=MAX_BODY)
        header = checked.header or {}
        message_id = header.get("message_id") if isinstance(header.get("message_id"), str) else ""
        with self._lock:
            self.posts += 1
            if message_id:
                self._attempts[message_id] = self._attempts.get(message_id, 0) + 1
                if message_id in self._received:
                    self._received[message_id].attempts = self._attempts[message_id]
            fail = self._fail.pop(0) if self._fail else None
            delay = self._timeouts.pop(0) if fail is None and self._timeouts else None
        if fail is not None:
            return _refusal(fail, f"the national system answers {fail} (told to fail)")
        if delay is not None:
            await self._hold(delay)
            return _refusal(504, "timed out (told to), nothing stored")
        if checked.packet is None or not message_id:
            return _refusal(400, "not a packet: JSON with a header and its message id is expected",
                            problems=[p.as_dict() for p in checked.problems])
        if request.headers.get("idempotency-key") != message_id:
            return _refusal(400, "the Idempotency-Key header must be the packet's message id",
                            message_id=message_id)
        if not checked.ok:
            return _refusal(400, "the packet breaks its schema", problems=[p.as_dict() for p in checked.problems])
        with self._lock:
            known = self._received.get(message_id)
            if known is not None:
                known.repeats += 1
                return _json(known.ack(), 409)
            stored = Received(message_id=message_id, packet_type=checked.packet_type, sender=header["sender"],
                              receiver=header["receiver"], received_at=moment_text(utcnow()),
                              receipt_id=f"CP-{len(self._received) + 1:06d}",
                              attempts=self._attempts[message_id], repeats=0, packet=checked.packet)
            self._received[message_id] = stored
        if checked.packet_type == "report_data" and self.auto_status:
            self._accept(stored, checked.body, checked.mapping_version)
        return _json(stored.ack())

    def _accept(self, stored: Received, body: dict, mapping: str) -> None:
        """Answer a report's data as the Government system does once it has checked it: accepted
        (in the mapping the report came in)."""
        from .packets import moment_text

        report = body["report"]
        status = {"report": {"id": report["id"], "regime_code": report["regime_code"], "unit": report["unit"],
                             "period": report["period"], "version": report["version"],
                             "sha256": body["document"]["sha256"]},
                  "status": "accepted", "at": moment_text(utcnow()), "reason": "", "refs": [stored.message_id]}
        self.send("report_status", status, stored.sender, in_reply_to=stored.message_id, mapping=mapping)

    async def _hold(self, seconds: float) -> None:
        # In short steps, so that stopping the server does not wait for a held answer.
        until = time.monotonic() + seconds
        while time.monotonic() < until and not self._stopping.is_set():
            await asyncio.sleep(0.05)

    async def _outbox(self, request: Request):
        if not self._authorised(request):
            return _refusal(401, "login refused: a Bearer token is required")
        after = request.query_params.get("after") or "0"
        if not after.isdigit():
            return _refusal(400, "after is the cursor the previous answer gave (a number)")
        packets, cursor = self.outbox(int(after))
        return _json({"packets": packets, "next": str(cursor)})

    async def _list_received(self, request: Request):
        return _json([r.summary() for r in self.received])

    def _state(self) -> dict:
        with self._lock:
            return {"agency_code": self.agency_code, "fail_next": list(self._fail),
                    "time_out_next": list(self._timeouts), "twice": self.twice, "auto_status": self.auto_status,
                    "received": len(self._received), "sent": len(self._sent), "posts": self.posts}

    async def _control_state(self, request: Request):
        return _json(self._state())

    async def _control(self, request: Request):
        from .packets import PacketRefused

        try:
            data = json.loads(await request.body() or b"{}")
            if not isinstance(data, dict):
                raise ValueError("an object is expected")
            action = request.path_params["action"]
            if action == "fail":
                self.fail_next(int(data.get("count", 1)), int(data.get("status", FAIL_STATUS)))
            elif action == "timeout":
                self.time_out_next(int(data.get("count", 1)), float(data.get("seconds", TIMEOUT_SECONDS)))
            elif action == "twice":
                self.answer_twice(bool(data.get("on", True)))
            elif action == "auto-status":
                with self._lock:
                    self.auto_status = bool(data.get("on", True))
            elif action == "reset":
                self.reset()
            elif action == "send":
                packet = self.send(str(data["packet_type"]), data["body"], str(data["receiver"]),
                                   in_reply_to=str(data.get("in_reply_to", "")))
                return _json({"packet": packet, **self._state()})
            else:
                return _refusal(404, f"unknown control {action!r}: fail, timeout, twice, auto-status, reset, send")
        except PacketRefused as refused:  # a body that breaks its packet's schema: each place said
            return _refusal(400, "the body breaks its packet's schema",
                            problems=[p.as_dict() for p in refused.problems])
        except (KeyError, TypeError, ValueError) as exc:
            return _refusal(400, f"bad control: {exc}")
        return _json(self._state())

    async def _page(self, request: Request):
        return HTMLResponse(page(self))

    # -- running ----------------------------------------------------------------------------------------

    def _config(self):
        import uvicorn

        return uvicorn.Config(self.app, http="h11", loop="asyncio", lifespan="off", access_log=False,
                              log_level="warning", timeout_graceful_shutdown=2)

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen on ``host``:``port`` (0: any free port) in a background thread; returns the URL.
        A port in use raises ``OSError`` at once."""
        import uvicorn

        if self._server is not None:
            return self.url
        sock = _listening_socket(host, port)
        self._stopping.clear()
        self._server = uvicorn.Server(self._config())
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]},
                                        name="national-test-server", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                sock.close()
                raise OSError(f"the national test server did not start on {host}:{port}")
            time.sleep(0.01)
        self.url = _url(host, sock.getsockname()[1])
        return self.url

    def stop(self) -> None:
        if self._server is None:
            return
        self._stopping.set()
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._server = self._thread = None

    def run(self, host: str = "127.0.0.1", port: int = 8765) -> None:
        """Serve in the foreground until interrupted (the command ``baocao national_link server``)."""
        import uvicorn

        sock = _listening_socket(host, port)
        self.url = _url(host, sock.getsockname()[1])
        uvicorn.Server(self._config()).run(sockets=[sock])


def _listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restart within TIME_WAIT; not a port in use
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


# -- the page ---------------------------------------------------------------------------------------------

def _local(moment: str) -> str:
    """An ISO UTC time as the instance's people read it (its time zone): 08:30 14/03/2026."""
    try:
        value = dt.datetime.fromisoformat(moment.replace("Z", "+00:00"))
    except ValueError:
        return moment
    return value.astimezone(now().tzinfo).strftime("%H:%M:%S %d/%m/%Y")


def page(server: NationalServer) -> str:
    def w(key: str, **params) -> str:
        return html.escape(wording("vi", f"national_link.connectors.server.{key}", **params))

    received = server.received
    sent = server.sent
    state = server._state()
    rows_in = "".join(
        f"<tr><td class=mono>{html.escape(r.message_id)}</td><td>{html.escape(r.packet_type)}</td>"
        f"<td class=mono>{html.escape(r.sender)}</td><td>{_local(r.received_at)}</td>"
        f"<td class=mono>{html.escape(r.receipt_id)}</td><td>{r.attempts}</td><td>{r.repeats}</td></tr>"
        for r in received) or f"<tr><td colspan=7>{w('none_received')}</td></tr>"
    rows_out = "".join(
        f"<tr><td class=mono>{html.escape(s.message_id)}</td><td>{html.escape(s.packet_type)}</td>"
        f"<td class=mono>{html.escape(s.receiver)}</td><td class=mono>{html.escape(s.in_reply_to) or '—'}</td>"
        f"<td>{_local(s.sent_at)}</td></tr>"
        for s in sent) or f"<tr><td colspan=5>{w('none_sent')}</td></tr>"
    orders = [w("failing", count=len(state["fail_next"])) if state["fail_next"] else "",
              w("timing_out", count=len(state["time_out_next"])) if state["time_out_next"] else "",
              w("twice") if state["twice"] else "", w("auto_status") if state["auto_status"] else ""]
    orders_html = "".join(f"<li>{o}</li>" for o in orders if o) or f"<li>{w('normal')}</li>"
    return f"""<!doctype html>
<html lang="vi"><head><meta charset="utf-8"><title>{w('title')}</title>
<meta http-equiv="refresh" content="10">
<style>body{{font-family:system-ui,sans-serif;margin:2rem;max-width:70rem}}
table{{border-collapse:collapse;width:100%;margin-bottom:2rem}}
th,td{{border:1px solid #ccc;padding:.3rem .5rem;text-align:left;vertical-align:top}}
.mono{{font-family:monospace;font-size:.85rem}}</style>
</head><body>
<h1>{w('title')}</h1>
<p>{w('intro', code=server.agency_code)}</p>
<h2>{w('orders')}</h2><ul>{orders_html}</ul>
<h2>{w('received', count=len(received))}</h2>
<table><thead><tr><th>{w('col.message_id')}</th><th>{w('col.packet_type')}</th><th>{w('col.sender')}</th>
<th>{w('col.received_at')}</th><th>{w('col.receipt')}</th><th>{w('col.attempts')}</th>
<th>{w('col.repeats')}</th></tr></thead>
<tbody>{rows_in}</tbody></table>
<h2>{w('sent', count=len(sent))}</h2>
<table><thead><tr><th>{w('col.message_id')}</th><th>{w('col.packet_type')}</th><th>{w('col.receiver')}</th>
<th>{w('col.in_reply_to')}</th><th>{w('col.sent_at')}</th></tr></thead>
<tbody>{rows_out}</tbody></table>
</body></html>"""


# -- the demo's certificate ------------------------------------------------------------------------------

DEMO_CA_NAME = "CA Máy chủ quốc gia thử nghiệm — không dùng thật"
DEMO_SIGNER_NAME = "Hệ thống báo cáo Chính phủ (máy chủ thử nghiệm)"


def demo_folder(settings) -> Path:
    """Where the demo's test server keeps its certificates: beside the instance's files."""
    return Path(settings.files_root()) / "national_link" / "test-server"


def demo_certificate(settings) -> tuple[x509.Certificate, rsa.RSAPrivateKey, list[x509.Certificate]]:
    """The demo server's signing certificate, its key and its chain. The one the demo's CA issued
    when ``baocao demo`` seeded the database (demo.py; that CA is pinned there, so what the server
    sends verifies at once); else — a server started on an instance the demo did not seed — one
    under a throw-away CA made at the first start and kept (``demo_folder``): pin its ``ca.pem``
    (Quản trị → Chứng thư tin cậy) for what it sends to be trusted."""
    from core.api import db

    from .demo import identity

    with db.connection_context():
        seeded = identity()
    if seeded is not None:
        chain = x509.load_pem_x509_certificates(seeded.chain.encode("ascii")) if seeded.chain.strip() else []
        return (x509.load_pem_x509_certificate(seeded.certificate.encode("ascii")),
                serialization.load_pem_private_key(seeded.private_key.encode("ascii"), password=None), chain)
    folder = demo_folder(settings)
    files = {name: folder / name for name in ("ca.pem", "server.pem", "server-key.pem")}
    if all(p.is_file() for p in files.values()):
        ca = x509.load_pem_x509_certificate(files["ca.pem"].read_bytes())
        certificate = x509.load_pem_x509_certificate(files["server.pem"].read_bytes())
        key = serialization.load_pem_private_key(files["server-key.pem"].read_bytes(), password=None)
        return certificate, key, [ca]
    certificate, key, ca = _issue_demo_certificate()
    folder.mkdir(parents=True, exist_ok=True)
    files["ca.pem"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files["server.pem"].write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    files["server-key.pem"].write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                          serialization.PrivateFormat.PKCS8,
                                                          serialization.NoEncryption()))
    files["server-key.pem"].chmod(0o600)
    return certificate, key, [ca]


def _issue_demo_certificate():
    """A throw-away CA (the CA's key is not kept: nothing else can be issued under it) and the
    server's signing certificate under it, valid ten years."""
    start = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=1)
    end = start + dt.timedelta(days=3650)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, DEMO_CA_NAME),
                         x509.NameAttribute(NameOID.COMMON_NAME, DEMO_CA_NAME)])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                       crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    subject = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, DEMO_SIGNER_NAME),
                         x509.NameAttribute(NameOID.COMMON_NAME, DEMO_SIGNER_NAME)])
    certificate = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(ca_name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=True, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.EMAIL_PROTECTION]),
                       critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256()))
    return certificate, key, ca


# -- the command ------------------------------------------------------------------------------------------

def add_server_command(subparsers) -> None:
    """``baocao national_link server [--host 127.0.0.1] [--port 8765]``: the test server in the foreground."""
    parser = subparsers.add_parser("server", help="Chạy máy chủ thử nghiệm Hệ thống báo cáo Chính phủ / "
                                                  "run the national test server")
    parser.add_argument("--host", default="", help="127.0.0.1 (mặc định / default: test_server)")
    parser.add_argument("--port", type=int, default=0, help="8765 (mặc định / default: test_server)")
    parser.add_argument("--agency-code", default="", help=f"mã định danh / agency code ({GOVERNMENT})")
    parser.set_defaults(handler=_serve)


def _serve(args, settings) -> int:
    from .connectors import both_languages, demo_server_settings

    host, port, agency_code = demo_server_settings(settings.plugin("national_link"))
    host, port = args.host or host, args.port or port
    if not _loopback(host):
        print(both_languages("national_link.connectors.server.loopback_only"))
        return 2
    certificate, key, chain = demo_certificate(settings)
    server = NationalServer(agency_code=args.agency_code or agency_code, certificate=certificate, private_key=key,
                            chain=chain)
    issuer = certificate.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)
    print(f"{_url(host, port)} — {server.agency_code}; CA: {issuer[0].value if issuer else certificate.issuer}")
    try:
        server.run(host, port)
    except OSError as exc:
        print(both_languages("national_link.connectors.server.port_in_use", address=f"{host}:{port}",
                             reason=exc.strerror or str(exc)))
        return 1
    return 0


def _loopback(host: str) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
