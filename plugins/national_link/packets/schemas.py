"""The JSON Schema of each packet, generated from the field specification in a mapping's wire names.

One schema per packet type and mapping (Draft 2020-12), the whole packet: envelope, header (its
``packet_type`` and ``mapping_version`` fixed to the packet's), body, signature. Each shape is a
``$defs`` entry. Only the keywords the core's validator implements are used
(``core.regimes.form_schema.KEYWORDS``), so ``core.api.validate_json`` checks everything a schema
says and a published schema never promises more than a receiver checks.

The schemas of the known mappings are published under ``docs/national_link/schemas/<mapping>/``
(``<packet type>.schema.json``) for the systems baocao exchanges with; regenerate them with

    python -m plugins.national_link.packets.schemas

and a test checks that the published files are these.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .fields import BASE64, BOOLEAN, DATE, INTEGER, LIST, MOMENT, OBJECT, PACKET_TYPES, SHAPES, TEXT, Field, \
    inner_shape, shapes_of
from .mapping import DEFAULT_MAPPING, MAPPINGS, Mapping, mapping_named

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_BASE = "https://baocao.invalid/schemas/national_link"  # an identifier, not fetched
PUBLISHED = Path(__file__).resolve().parents[3] / "docs" / "national_link" / "schemas"


def _field_schema(f: Field, inner: str | None) -> dict:
    if f.type == OBJECT:
        return {"$ref": f"#/$defs/{inner}", "description": f.description}
    if f.type == LIST:
        out = {"type": "array", "description": f.description, "items": _field_schema(f.item, inner)}
        if f.max_items is not None:
            out["maxItems"] = f.max_items
        return out
    if f.type == BOOLEAN:
        return {"type": "boolean", "description": f.description}
    if f.type == INTEGER:
        out = {"type": "integer", "description": f.description}
        if f.minimum is not None:
            out["minimum"] = f.minimum
        if f.maximum is not None:
            out["maximum"] = f.maximum
        return out
    assert f.type in (TEXT, DATE, MOMENT, BASE64), f.type
    if f.choices:
        return {"enum": list(f.choices), "description": f.description}
    out = {"type": "string", "description": f.description}
    if f.non_empty and not f.pattern:  # a pattern says it already: one mistake, one message
        out["minLength"] = 1
    if f.max_length is not None:
        out["maxLength"] = f.max_length
    if f.pattern:
        out["pattern"] = f.pattern
    return out


def _shape_schema(name: str, mapping: Mapping, packet_type: str) -> dict:
    shape = SHAPES[name]
    properties, required = {}, []
    for f in shape.fields:
        wire = mapping.wire(name, f.name)
        properties[wire] = _field_schema(f, inner_shape(name, f, packet_type))
        if f.required:
            required.append(wire)
    return {"type": "object", "description": shape.description, "properties": properties, "required": required,
            "additionalProperties": False}


def schema(packet_type: str, mapping=DEFAULT_MAPPING) -> dict:
    """The JSON Schema of a ``packet_type`` packet in ``mapping``'s wire names."""
    if packet_type not in PACKET_TYPES:
        raise ValueError(f"{packet_type!r} is not a QCVN 125 packet type")
    found = mapping_named(mapping)
    defs = {name: _shape_schema(name, found, packet_type) for name in shapes_of(packet_type) if name != "packet"}
    header = defs["header"]["properties"]
    header[found.wire("header", "packet_type")]["enum"] = [packet_type]
    version = header[found.wire("header", "mapping_version")]
    version.pop("maxLength", None)
    version.pop("minLength", None)
    version.pop("type", None)
    version["enum"] = [found.version]
    root = _shape_schema("packet", found, packet_type)
    return {
        "$schema": SCHEMA_DIALECT,
        "$id": f"{SCHEMA_BASE}/{found.version}/{packet_type}.schema.json",
        "title": f"QCVN 125:2021/BTTTT packet {packet_type} (baocao mapping {found.version})",
        **root,
        "description": f"{SHAPES[packet_type].description} Field names: {found.description} "
                       f"See docs/national_link_packets.md.",
        "$defs": defs,
    }


def published_path(packet_type: str, mapping=DEFAULT_MAPPING) -> Path:
    return PUBLISHED / mapping_named(mapping).version / f"{packet_type}.schema.json"


def schema_text(packet_type: str, mapping=DEFAULT_MAPPING) -> str:
    """The published file's text."""
    return json.dumps(schema(packet_type, mapping), ensure_ascii=False, indent=2) + "\n"


def publish() -> list[Path]:
    """Write the schemas of every known mapping under docs/national_link/schemas/."""
    written = []
    for mapping in MAPPINGS.values():
        for packet_type in PACKET_TYPES:
            path = published_path(packet_type, mapping)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(schema_text(packet_type, mapping), encoding="utf-8")
            written.append(path)
    return written


if __name__ == "__main__":  # python -m plugins.national_link.packets.schemas
    for written_path in publish():
        print(written_path, file=sys.stderr)
