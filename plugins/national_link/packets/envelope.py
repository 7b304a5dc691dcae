"""A packet as it travels: made (``new_packet``), sealed (``seal``), and checked on receipt (``check``).

On the wire a packet is a JSON object ``{"header": …, "body": …, "signature": …}`` in the wire names of
its mapping. The signature is a detached CMS by the sending unit's organisation seal over the
packet's **canonical bytes**: the JSON of the packet without its signature (header and body) with
keys sorted, no spaces (separators ``,`` and ``:``), characters as they are (not ``\\u`` escapes),
every text in Unicode NFC, encoded in UTF-8. Both ends compute them from the parsed packet, so the
spacing and key order a sender's JSON library chose do not matter; and because numbers travel as
text and the only JSON numbers are whole ones, no float formatting does either.

``check`` is the receiver's one way in and never raises on bad input. In order: the size; UTF-8 and
JSON (no duplicate member names, no fractions or exponents, no NaN); the header (a known mapping and
packet type); the packet's JSON Schema; the receiver's code, when the caller names it; the signature,
verified as a report's signature is verified on receipt (core.api.verify_document: trust path,
validity, key usage, revocation). A signature found ``invalid`` refuses the packet with the
verdict's reasons; ``indeterminate`` (revocation not yet known) passes, the verdict kept. Each
refusal names its place (a JSON path in wire names) and its reason (a message key and parameters).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from dataclasses import dataclass, field
from decimal import Decimal

from core.api import SignatureVerdict, seal_sign, utcnow, validate_json, verify_document

from .fields import PACKET_TYPES, SIGNATURE_FORMAT
from .mapping import DEFAULT_MAPPING, MAPPINGS, Mapping, detect, mapping_named, nfc, shape_to_internal, \
    shape_to_wire
from .problems import PacketProblem, PacketRefused
from .schemas import schema

MAX_BYTES = 16 * 1024 * 1024  # a whole report with its signed document; split KPI data larger than this


def moment_text(value: dt.datetime) -> str:
    """A time as packets write it: ISO 8601 in UTC with Z, to the second (a naive time is UTC)."""
    if value.tzinfo is not None:
        value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return value.replace(microsecond=0).isoformat() + "Z"


def new_packet(packet_type: str, body: dict, *, sender: str, receiver: str, message_id: str,
               sent_at: dt.datetime | None = None, in_reply_to: str = "", mapping=DEFAULT_MAPPING) -> dict:
    """The unsigned packet of ``body`` (internal names) in ``mapping``'s wire names. A packet that would
    break its own schema (a unit without an electronic code, say) is refused with ``PacketRefused``:
    nothing leaves that its receiver would refuse for its shape."""
    found = mapping_named(mapping)
    if packet_type not in PACKET_TYPES:
        raise ValueError(f"{packet_type!r} is not a QCVN 125 packet type")
    header = {"packet_type": packet_type, "mapping_version": found.version, "message_id": message_id,
              "sender": sender, "receiver": receiver, "sent_at": moment_text(sent_at or utcnow()),
              "in_reply_to": in_reply_to or ""}
    packet = {found.wire("packet", "header"): shape_to_wire("header", header, found),
              found.wire("packet", "body"): shape_to_wire(packet_type, body, found, packet_type)}
    problems = [_problem(p) for p in validate_json(packet, schema(packet_type, found))]
    if problems:
        raise PacketRefused(problems)
    return packet


def _mapping_of(packet: dict) -> Mapping:
    found = detect(packet)
    if found is None:
        raise ValueError("not a packet of a known mapping")
    return found


def canonical_bytes(packet: dict) -> bytes:
    """The bytes a packet's signature covers (see the module's docstring)."""
    signature = _mapping_of(packet).wire("packet", "signature")
    content = nfc({name: value for name, value in packet.items() if name != signature})
    return json.dumps(content, ensure_ascii=False, sort_keys=True, separators=(",", ":"),
                      allow_nan=False).encode("utf-8")


def seal(packet: dict, unit_id: int, settings) -> dict:
    """The packet with its signature: a detached CMS over its canonical bytes by the active seal of
    ``unit_id`` (``core.api.seal_sign``; without a seal, ``BaocaoError("signing.error.no_seal")``)."""
    found = _mapping_of(packet)
    cms = seal_sign(unit_id, canonical_bytes(packet), settings)
    signature = {"format": SIGNATURE_FORMAT, "value": base64.b64encode(cms).decode("ascii")}
    return {**packet, found.wire("packet", "signature"): shape_to_wire("signature", signature, found)}


@dataclass
class Checked:
    """What ``check`` (or ``read``) found. ``packet``: the packet as parsed (wire names), None when it
    is not even JSON; ``header`` and ``body`` in internal names — ``body`` once the schema holds,
    ``header`` as far as it could be read (for the log); ``verdict``: the signature's, when checked."""

    ok: bool
    packet: dict | None = None
    packet_type: str = ""
    mapping_version: str = ""
    header: dict | None = None
    body: dict | None = None
    problems: list = field(default_factory=list)  # PacketProblem
    verdict: SignatureVerdict | None = None


class _Duplicate(ValueError):
    def __init__(self, name: str):
        super().__init__(name)
        self.name = name


def _members(pairs):
    out = {}
    for name, value in pairs:
        name = nfc(name)
        if name in out:
            raise _Duplicate(name)
        out[name] = value
    return out


def _no_constant(name):
    raise ValueError(name)


def _problem(p) -> PacketProblem:
    """A problem of ``validate_json`` (core.api) as a packet's."""
    return PacketProblem(p.where, p.key, dict(p.params))


def _parse(raw, max_bytes: int) -> tuple[dict | None, PacketProblem | None]:
    if isinstance(raw, str):
        raw = raw.encode("utf-8")
    if len(raw) > max_bytes:
        return None, PacketProblem("$", "national_link.packets.error.too_big", {"size": len(raw), "limit": max_bytes})
    try:
        text = bytes(raw).decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, PacketProblem("$", "national_link.packets.error.not_utf8", {"position": exc.start})
    try:
        # Fractions and exponents become Decimal, which no field accepts: the schema names their place.
        packet = nfc(json.loads(text, object_pairs_hook=_members, parse_float=Decimal, parse_constant=_no_constant))
    except _Duplicate as exc:
        return None, PacketProblem("$", "national_link.packets.error.duplicate", {"name": exc.name[:60]})
    except json.JSONDecodeError as exc:
        return None, PacketProblem("$", "national_link.packets.error.not_json", {"line": exc.lineno,
                                                                               "column": exc.colno})
    except (ValueError, RecursionError):  # NaN, Infinity, a number of thousands of digits, deep nesting
        return None, PacketProblem("$", "national_link.packets.error.not_json_value")
    if not isinstance(packet, dict):
        return None, PacketProblem("$", "plugin_data.schema.type.object")
    return packet, None


def _loose_header(packet: dict, found: Mapping) -> dict | None:
    """The header renamed as it is, for the log of a packet refused before its schema held."""
    header = packet.get(found.wire("packet", "header"))
    if not isinstance(header, dict):
        return None
    return {found.internal("header", name): value for name, value in header.items()
            if found.internal("header", name) is not None}


def _header_problem(packet: dict) -> PacketProblem:
    """Why no known mapping reads the packet: its header missing, or a mapping we do not know."""
    for found in MAPPINGS.values():
        header = packet.get(found.wire("packet", "header"))
        if isinstance(header, dict):
            name = found.wire("header", "mapping_version")
            if name not in header:
                return PacketProblem(found.wire("packet", "header"), "plugin_data.schema.required", {"name": name})
            return PacketProblem(f"{found.wire('packet', 'header')}.{name}",
                                 "national_link.packets.error.mapping_unknown",
                                 {"value": str(header[name])[:60], "known": ", ".join(MAPPINGS)})
    default = mapping_named(DEFAULT_MAPPING)
    return PacketProblem("$", "national_link.packets.error.header_missing",
                         {"name": default.wire("packet", "header")})


def _read(raw, max_bytes: int) -> tuple[Checked, Mapping | None]:
    """The steps shared by ``check`` and ``read``: size, JSON, header, schema."""
    packet, problem = _parse(raw, max_bytes)
    if problem is not None:
        return Checked(ok=False, problems=[problem]), None
    return _examine(packet)


def problems_of(packet) -> list[PacketProblem]:
    """What is wrong with the shape of a packet in hand (wire names, as ``new_packet`` makes it): its
    header, its schema, its dates and base64 — what ``check`` finds before the receiver and the
    signature. A packet preview shows them."""
    if not isinstance(packet, dict):
        return [PacketProblem("$", "plugin_data.schema.type.object")]
    return _examine(nfc(packet))[0].problems


def _examine(packet: dict) -> tuple[Checked, Mapping | None]:
    """A parsed packet's header (a known mapping and type), schema, and the meaning of its values."""
    found = detect(packet)
    if found is None:
        loose = _loose_header(packet, mapping_named(DEFAULT_MAPPING))
        return Checked(ok=False, packet=packet, header=loose, problems=[_header_problem(packet)]), None
    checked = Checked(ok=False, packet=packet, mapping_version=found.version, header=_loose_header(packet, found))
    header_name = found.wire("packet", "header")
    packet_type = packet[header_name].get(found.wire("header", "packet_type"))
    if packet_type not in PACKET_TYPES:
        checked.problems.append(PacketProblem(f"{header_name}.{found.wire('header', 'packet_type')}",
                                              "national_link.packets.error.type_unknown",
                                              {"value": str(packet_type)[:60], "known": ", ".join(PACKET_TYPES)}))
        return checked, found
    checked.packet_type = packet_type
    checked.problems = [_problem(p) for p in validate_json(packet, schema(packet_type, found))]
    if checked.problems:
        return checked, found
    problems: list[PacketProblem] = []
    header = shape_to_internal("header", packet[header_name], found, header_name, problems)
    body_name = found.wire("packet", "body")
    body = shape_to_internal(packet_type, packet[body_name], found, body_name, problems, packet_type)
    checked.problems = problems
    if not problems:
        checked.header, checked.body = header, body
    return checked, found


def read(raw, *, max_bytes: int = MAX_BYTES) -> Checked:
    """A packet read again (one kept after ``check``): its shape checked, its signature not."""
    checked, _ = _read(raw, max_bytes)
    checked.ok = not checked.problems
    return checked


def check(raw, settings, *, receiver: str | None = None, signers=None, max_bytes: int = MAX_BYTES,
          at: dt.datetime | None = None) -> Checked:
    """A packet received as bytes, checked in full (see the module's docstring); never raises on bad
    input. ``receiver``: the agency code it must be addressed to; ``signers``: certificates or
    SHA-256 fingerprints the signer must be one of (None: any trusted signer); ``at``: the time of
    receipt (default now)."""
    checked, found = _read(raw, max_bytes)
    if checked.problems or found is None:
        checked.ok = False
        return checked
    packet = checked.packet
    if receiver is not None and checked.header["receiver"] != receiver:
        checked.problems.append(PacketProblem(
            f"{found.wire('packet', 'header')}.{found.wire('header', 'receiver')}",
            "national_link.packets.error.receiver", {"value": checked.header["receiver"], "expected": receiver}))
        checked.ok = False
        return checked
    place = found.wire("packet", "signature")
    signature = packet.get(place)
    if signature is None:
        checked.problems.append(PacketProblem(place, "national_link.packets.error.signature_missing"))
        checked.ok = False
        return checked
    value = signature[found.wire("signature", "value")]
    try:
        cms = base64.b64decode(value, validate=True)
    except ValueError:
        checked.problems.append(PacketProblem(f"{place}.{found.wire('signature', 'value')}",
                                              "national_link.packets.error.base64", {"value": value[:57] + "..."}))
        checked.ok = False
        return checked
    verdict = verify_document(canonical_bytes(packet), cms, expected=signers, at=at, settings=settings)
    checked.verdict = verdict
    if verdict.status == "invalid":
        reasons = [p for p in verdict.problems if p.blocking] or list(verdict.problems)
        checked.problems = [PacketProblem(place, p.key, dict(p.params)) for p in reasons] or \
            [PacketProblem(place, "national_link.packets.error.signature_invalid")]
    checked.ok = not checked.problems
    return checked
