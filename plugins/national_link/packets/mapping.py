"""Every field of every packet, mapped to the name it travels under: the mapping versions.

QCVN 125:2021/BTTTT names 13 packets, but its field-level text (names, types) was never obtained. So
the fields are baocao's (fields.py, English snake_case) and a *mapping* gives each the name it has on
the wire. The first mapping, ``baocao-2026.1``, is baocao's own choice — lowerCamelCase English,
pending the official text. When the official names arrive they become a new ``Mapping`` here, one
table like the one below (a name for each field of each shape); the builders, parsers, schemas and
checks take the mapping as a parameter and change nothing. A mapping that forgets a field, names
one that does not exist, or gives two fields of a shape one name is refused when it is made, so a
value can never be dropped or confused on the way.

A packet says its mapping in its header (``mapping_version``), at the place its own mapping puts it:
a receiver tries each known mapping (``detect``). Connectors choose the mapping they send with.

A mapping renames fields, not values: packet types, frequencies and kinds travel as baocao's words.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from base64 import b64decode
from binascii import Error as Base64Error
from dataclasses import dataclass, field

from core.api import BaocaoError

from .fields import BASE64, BOOLEAN, DATE, DATE_PATTERN, LIST, MOMENT, MOMENT_PATTERN, OBJECT, PACKET_TYPES, \
    SHAPES, inner_shape
from .problems import PacketProblem, PacketRefused

DEFAULT_MAPPING = "baocao-2026.1"


def coverage_problems(names: dict) -> list[str]:
    """What keeps ``names`` (shape → internal field → wire name) from being a mapping."""
    problems = [f"no names for the shape {shape}" for shape in SHAPES if shape not in names]
    problems += [f"{shape} is not a shape" for shape in names if shape not in SHAPES]
    for shape, table in names.items():
        if shape not in SHAPES:
            continue
        known = set(SHAPES[shape].names)
        problems += [f"{shape}.{name}: no wire name" for name in SHAPES[shape].names if name not in table]
        problems += [f"{shape}.{name} is not a field" for name in table if name not in known]
        wire = list(table.values())
        problems += [f"{shape}: the wire name {w!r} is given twice" for w in sorted(set(wire)) if wire.count(w) > 1]
        problems += [f"{shape}.{name}: {w!r} is not a usable name" for name, w in table.items()
                     if not isinstance(w, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}", w)]
    return problems


@dataclass(frozen=True)
class Mapping:
    version: str
    description: str
    names: dict = field(repr=False)  # shape → {internal field → wire name}

    def __post_init__(self):
        problems = coverage_problems(self.names)
        if problems:
            raise ValueError(f"mapping {self.version}: " + "; ".join(problems))
        reverse = {shape: {w: name for name, w in table.items()} for shape, table in self.names.items()}
        object.__setattr__(self, "_internal", reverse)

    def wire(self, shape: str, name: str) -> str:
        return self.names[shape][name]

    def internal(self, shape: str, wire: str) -> str | None:
        return self._internal[shape].get(wire)

    def renamed(self, version: str, description: str, changes: dict) -> "Mapping":
        """A new mapping: this one with the names ``changes`` gives ({shape: {field: wire name}})."""
        names = {shape: {**table, **changes.get(shape, {})} for shape, table in self.names.items()}
        return Mapping(version, description, names)


# baocao-2026.1: baocao's names, pending the official text of QCVN 125:2021/BTTTT.
BAOCAO_2026_1 = Mapping(DEFAULT_MAPPING, "baocao's own field names (lowerCamelCase), pending the official "
                                         "text of QCVN 125:2021/BTTTT.", {
    "packet": {"header": "header", "body": "body", "signature": "signature"},
    "header": {"packet_type": "packetType", "mapping_version": "mappingVersion", "message_id": "messageId",
               "sender": "sender", "receiver": "receiver", "sent_at": "sentAt", "in_reply_to": "inReplyTo"},
    "signature": {"format": "format", "value": "value"},
    "unit": {"agency_code": "agencyCode", "code": "code", "name": "name"},
    "period": {"frequency": "frequency", "year": "year", "index": "index", "start": "start", "end": "end"},
    "texts": {"vi": "vi", "en": "en"},
    "regime": {"code": "code", "name": "name", "regime_type": "regimeType", "frequency": "frequency",
               "content": "content", "content_type": "contentType", "reporting_kinds": "reportingKinds",
               "reporting_units": "reportingUnits", "reporting_group": "reportingGroup",
               "receiving_rule": "receivingRule", "receiving_unit": "receivingUnit",
               "receiving_group": "receivingGroup", "sending_methods": "sendingMethods",
               "deadline_rules": "deadlineRules", "cutoff_rule": "cutoffRule", "outline": "outline",
               "data_forms": "dataForms", "guidance": "guidance", "legal_number": "legalNumber",
               "legal_date": "legalDate", "legal_issuer": "legalIssuer", "issuing_unit": "issuingUnit",
               "preparing_unit": "preparingUnit", "form_template": "formTemplate",
               "outline_template": "outlineTemplate"},
    "deadline_rule": {"level": "level", "from_kind": "fromKind", "rule": "rule"},
    "form_template": {"regime_code": "regimeCode", "code": "code", "name": "name", "title": "title",
                      "rows": "rows", "columns": "columns", "greyed": "greyed", "rules": "rules"},
    "form_row": {"key": "key", "kind": "kind", "number": "number", "label": "label", "indicator": "indicator",
                 "option": "option", "unit": "unit", "formula": "formula", "decimals": "decimals",
                 "indent": "indent"},
    "form_column": {"key": "key", "kind": "kind", "label": "label", "value_kind": "valueKind", "period": "period",
                    "formula": "formula", "accumulate": "accumulate", "periods": "periods",
                    "decimals": "decimals", "percent": "percent"},
    "form_rule": {"key": "key", "severity": "severity", "expression": "expression", "rows": "rows",
                  "columns": "columns", "message": "message"},
    "outline_template": {"regime_code": "regimeCode", "form_code": "formCode", "text": "text",
                         "sections": "sections"},
    "outline_section": {"key": "key", "title": "title", "guidance": "guidance", "required": "required"},
    "report": {"id": "id", "kind": "kind", "regime_code": "regimeCode", "regime_version": "regimeVersion",
               "regime_name": "regimeName", "unit": "unit", "receiver": "receiver", "period": "period",
               "deadline": "deadline", "form_code": "formCode", "form_version": "formVersion",
               "version": "version", "submitted_at": "submittedAt", "accepted_at": "acceptedAt", "late": "late"},
    "report_document": {"format": "format", "content": "content", "sha256": "sha256", "signature": "signature"},
    "report_signature": {"kind": "kind", "signer_name": "signerName", "signer_serial": "signerSerial",
                         "issuer": "issuer", "fingerprint": "fingerprint", "signing_time": "signingTime",
                         "status": "status", "format": "format", "value": "value"},
    "report_data": {"report": "report", "document": "document", "cells": "cells"},
    "cell": {"row": "row", "column": "column", "indicator": "indicator", "option": "option",
             "value_kind": "valueKind", "period": "period", "value": "value"},
    "list_data": {"report": "report", "rows": "rows"},
    "list_row": {"row": "row", "number": "number", "label": "label", "indicator": "indicator", "option": "option",
                 "unit": "unit", "values": "values"},
    "list_value": {"column": "column", "value": "value"},
    "narrative": {"report": "report", "sections": "sections"},
    "narrative_section": {"key": "key", "title": "title", "text": "text"},
    "report_status": {"report": "report", "status": "status", "at": "at", "reason": "reason", "refs": "refs"},
    "report_ref": {"id": "id", "regime_code": "regimeCode", "unit": "unit", "period": "period",
                   "version": "version", "sha256": "sha256"},
    "period_catalogue": {"periods": "periods"},
    "catalogue_period": {"frequency": "frequency", "year": "year", "index": "index", "start": "start",
                         "end": "end", "label": "label"},
    "indicator_catalogue": {"groups": "groups", "indicators": "indicators"},
    "indicator_group": {"code": "code", "name": "name", "level": "level"},
    "indicator": {"code": "code", "version": "version", "name": "name", "group": "group",
                  "unit_of_measure": "unitOfMeasure", "value_type": "valueType", "aggregation": "aggregation",
                  "disaggregation": "disaggregation", "levels": "levels", "periodicity": "periodicity",
                  "agency": "agency", "higher_code": "higherCode", "source_act": "sourceAct",
                  "valid_from": "validFrom"},
    "category": {"name": "name", "options": "options"},
    "kpi_set": {"code": "code", "name": "name", "indicators": "indicators"},
    "kpi_member": {"code": "code", "name": "name", "unit_of_measure": "unitOfMeasure"},
    "indicator_groups": {"groups": "groups"},
    "disaggregations": {"indicators": "indicators"},
    "indicator_disaggregation": {"code": "code", "name": "name", "categories": "categories"},
    "kpi_data": {"kpi_set": "kpiSet", "figures": "figures"},
    "figure": {"indicator": "indicator", "unit": "unit", "period": "period", "kind": "kind", "option": "option",
               "value": "value"},
})

MAPPINGS: dict[str, Mapping] = {BAOCAO_2026_1.version: BAOCAO_2026_1}


def mapping_named(mapping) -> Mapping:
    """A ``Mapping`` from itself or its version; an unknown version is refused in plain words."""
    if isinstance(mapping, Mapping):
        return mapping
    found = MAPPINGS.get(mapping)
    if found is None:
        raise BaocaoError("national_link.packets.error.mapping_unknown", value=str(mapping)[:60],
                          known=", ".join(MAPPINGS))
    return found


def detect(packet) -> Mapping | None:
    """The known mapping whose version the packet names at that mapping's own place, or None."""
    if not isinstance(packet, dict):
        return None
    for mapping in MAPPINGS.values():
        header = packet.get(mapping.wire("packet", "header"))
        if isinstance(header, dict) and header.get(mapping.wire("header", "mapping_version")) == mapping.version:
            return mapping
    return None


# -- renaming a body, both ways ---------------------------------------------------------------------

def nfc(value):
    """``value`` with every text, keys included, in Unicode NFC (how Vietnamese is compared and signed)."""
    if isinstance(value, str):
        return unicodedata.normalize("NFC", value)
    if isinstance(value, dict):
        return {unicodedata.normalize("NFC", k): nfc(v) for k, v in value.items()}
    if isinstance(value, list):
        return [nfc(v) for v in value]
    return value


def shape_to_wire(shape: str, value: dict, mapping: Mapping, packet_type: str | None = None, where: str = "") -> dict:
    """An object of ``shape`` in internal names → wire names. A field that is None is left out; a key
    the shape does not have is a programming error (ValueError), never dropped."""
    spec = SHAPES[shape]
    where = where or shape
    if not isinstance(value, dict):
        raise ValueError(f"{where}: an object of the shape {shape} is expected, not {type(value).__name__}")
    unknown = sorted(set(value) - set(spec.names))
    if unknown:
        raise ValueError(f"{where}: the shape {shape} has no field {unknown[0]!r}")
    out = {}
    for f in spec.fields:
        item = value.get(f.name)
        if item is None:
            if f.required:
                raise ValueError(f"{where}.{f.name} is required")
            continue
        out[mapping.wire(shape, f.name)] = _value_to_wire(f, item, mapping, inner_shape(shape, f, packet_type),
                                                          f"{where}.{f.name}")
    return out


def _value_to_wire(f, item, mapping: Mapping, inner: str | None, where: str):
    if f.type == OBJECT:
        return shape_to_wire(inner, item, mapping, where=where)
    if f.type == LIST:
        if not isinstance(item, (list, tuple)):
            raise ValueError(f"{where}: a list is expected")
        return [_value_to_wire(f.item, x, mapping, inner, f"{where}[{i}]") for i, x in enumerate(item)]
    return nfc(item)


MEANING_KEYS = {DATE: "national_link.packets.error.date", MOMENT: "national_link.packets.error.moment",
                BASE64: "national_link.packets.error.base64"}


def _meaning_problem(f, item, place: str) -> PacketProblem | None:
    """What the schema's pattern cannot say: a date that does not exist, base64 that does not decode."""
    if not isinstance(item, str):
        return None
    try:
        if f.type == DATE:
            if not re.fullmatch(DATE_PATTERN.strip("^$"), item):
                raise ValueError
            dt.date.fromisoformat(item)
        elif f.type == MOMENT:
            if not re.fullmatch(MOMENT_PATTERN.strip("^$"), item):
                raise ValueError
            dt.datetime.fromisoformat(item[:-1])
        elif f.type == BASE64:
            b64decode(item, validate=True)
    except (ValueError, Base64Error):
        return PacketProblem(place, MEANING_KEYS[f.type], {"value": _shown(item)})
    return None


def _shown(value) -> str:
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _join(place: str, name) -> str:
    if isinstance(name, int):
        return f"{place}[{name}]"
    return name if place in ("", "$") else f"{place}.{name}"


def shape_to_internal(shape: str, value, mapping: Mapping, place: str, problems: list,
                      packet_type: str | None = None) -> dict | None:
    """An object of ``shape`` in wire names → internal names, every field present (a field left out
    takes its default). Adds to ``problems`` (places in wire names) what cannot be converted: not an
    object, a name the mapping does not know, a required field missing, a date or base64 that means
    nothing. The rest of the schema (types, lengths, choices) is the schema's to check."""
    if not isinstance(value, dict):
        problems.append(PacketProblem(place or "$", "plugin_data.schema.type.object"))
        return None
    spec = SHAPES[shape]
    out = {}
    for wire in value:
        if mapping.internal(shape, wire) is None:
            problems.append(PacketProblem(_join(place, wire), "plugin_data.schema.unknown", {"name": wire}))
    for f in spec.fields:
        wire = mapping.wire(shape, f.name)
        if wire not in value:
            if f.required:
                problems.append(PacketProblem(place or "$", "plugin_data.schema.required", {"name": wire}))
            out[f.name] = f.empty()
            continue
        out[f.name] = _value_to_internal(f, value[wire], mapping, inner_shape(shape, f, packet_type),
                                         _join(place, wire), problems)
    return out


def _value_to_internal(f, item, mapping: Mapping, inner: str | None, place: str, problems: list):
    if f.type == OBJECT:
        return shape_to_internal(inner, item, mapping, place, problems)
    if f.type == LIST:
        if not isinstance(item, list):
            problems.append(PacketProblem(place, "plugin_data.schema.type.array"))
            return []
        return [_value_to_internal(f.item, x, mapping, inner, f"{place}[{i}]", problems) for i, x in enumerate(item)]
    if f.type == BOOLEAN:
        return item
    problem = _meaning_problem(f, item, place)
    if problem:
        problems.append(problem)
    return item


def _packet_type(packet_type: str) -> str:
    if packet_type not in PACKET_TYPES:
        raise ValueError(f"{packet_type!r} is not a QCVN 125 packet type ({', '.join(PACKET_TYPES)})")
    return packet_type


def to_wire(packet_type: str, body: dict, mapping=DEFAULT_MAPPING) -> dict:
    """A body in internal names → the same body in ``mapping``'s wire names (texts in NFC)."""
    return shape_to_wire(_packet_type(packet_type), body, mapping_named(mapping), packet_type)


def to_internal(packet_type: str, wire_body: dict, mapping=DEFAULT_MAPPING) -> dict:
    """A body in ``mapping``'s wire names → internal names, every field present; raises
    ``PacketRefused`` (places as JSON paths from the packet, ``body.cells[3].value``) when it cannot."""
    found = mapping_named(mapping)
    problems: list[PacketProblem] = []
    body = shape_to_internal(_packet_type(packet_type), nfc(wire_body), found, found.wire("packet", "body"),
                             problems, packet_type)
    if problems:
        raise PacketRefused(problems)
    return body


_STEP = re.compile(r"\.?([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]")


def wire_place(packet_type: str, place: str, mapping=DEFAULT_MAPPING) -> str:
    """A place in internal names (``body.figures[3].unit``) → in ``mapping``'s wire names. A step the
    shapes do not know is kept as it is."""
    found = mapping_named(mapping)
    shape, out, position = "packet", "", 0
    while position < len(place):
        step = _STEP.match(place, position)
        if step is None:
            return out + place[position:]
        position = step.end()
        name, index = step.group(1), step.group(2)
        if index is not None:
            out += f"[{index}]"
            continue
        f = SHAPES[shape].field(name) if shape else None
        if f is None:
            out, shape = _join(out, name), None
            continue
        out = _join(out, found.wire(shape, f.name))
        shape = inner_shape(shape, f, packet_type)
    return out or "$"
