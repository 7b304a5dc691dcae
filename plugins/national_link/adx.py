"""ADX (IHE QRPH Aggregate Data Exchange, namespace ``urn:ihe:qrph:adx:2015``): accepted figures out,
a vertical system's figures in, through the connector's code mapping (codes.py).

A message::

    <adx xmlns="urn:ihe:qrph:adx:2015" exported="2026-02-03T01:30:00Z">
      <group orgUnit="OU_GIOLINH" period="2025-12-15/P1M" dataSet="KTXH_THANG">
        <dataValue dataElement="DE_LUA" value="120.5"/>
        <dataValue dataElement="DE_DAN_SO" GENDER="FMLE" value="5230"/>
      </group>
    </adx>

one ``group`` per unit and period holding figures, one ``dataValue`` per figure with its category
attributes (the mapping's ``remote_attributes``); the period is our cut-off window (periods.py).
``xsd`` writes the schema of one data set's messages, as the IHE profile derives it from the data
structure definition: the required attributes, and enumerations of its data elements, category
options, org units and the data set's code.

Reading a file is guarded before any parsing: a file over ``codes.UPLOAD_BYTES``, not UTF-8, or declaring a
DOCTYPE or an ENTITY (the XML bombs and external entities of OWASP's XXE list) is refused whole;
nothing else in a file can expand. Then every group and value is read with its place, and the import
is the mapping's (codes.plan_import / codes.apply_import).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from decimal import Decimal
from xml.sax.saxutils import quoteattr

from core.api import BaocaoError, utcnow

from . import codes
from .codes import FileRefused, Incoming, Place, Problem
from .periods import PeriodError, adx_interval, parse_adx

NS = "urn:ihe:qrph:adx:2015"
MEDIA_TYPE = "application/adx+xml"

GROUP_ATTRIBUTES = ("orgUnit", "period", "dataSet")
# Attributes a group may carry besides them that change nothing here (DHIS2 passes completeDate).
GROUP_PASSING = ("completeDate",)
LEGACY_COMBO = "categoryOptionCombo"  # DHIS2's older ADX: the combo on the dataValue instead of categories
_DECLARED_ENCODING = re.compile(r"""\A\s*<\?xml[^>]*\bencoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")


def _tag(name: str) -> str:
    return f"{{{NS}}}{name}"


# -- export -------------------------------------------------------------------------------------------

def export(connector: str, data_set: str, unit_ids, periods) -> bytes:
    """The accepted figures of ``unit_ids`` × ``periods`` ((frequency, year, index) triples) as an ADX
    message for the data set mapped to the regime code ``data_set``: UTF-8 bytes. MappingGap names
    every code without a row; BaocaoError refuses a text figure (ADX values are numbers)."""
    remote_set, found = codes.accepted_figures(connector, data_set, unit_ids, periods)
    texts = sorted({f.code for f in found if not isinstance(f.value, Decimal)})
    if texts:
        raise BaocaoError("national_link.adx.error.text", codes=", ".join(texts))
    # Written with unqualified names under a default namespace declared by hand: ElementTree's own
    # default_namespace refuses the unqualified attributes ADX uses.
    root = ET.Element("adx", {"xmlns": NS, "exported": utcnow().strftime("%Y-%m-%dT%H:%M:%SZ")})
    groups: dict[tuple, list] = {}
    for figure in found:
        groups.setdefault((figure.unit_id, figure.period), []).append(figure)
    order = {u: n for n, u in enumerate(dict.fromkeys(int(u) for u in unit_ids))}
    for (unit_id, period), values in sorted(groups.items(), key=lambda item: (order[item[0][0]], item[0][1])):
        group = ET.SubElement(root, "group", {"orgUnit": values[0].org_unit, "period": adx_interval(*period),
                                              "dataSet": remote_set})
        for figure in sorted(values, key=lambda f: (f.data_element, f.attributes)):
            attributes = {"dataElement": figure.data_element}
            attributes.update(codes.attribute_pairs(figure.attributes))
            attributes["value"] = codes.value_text(figure.value)
            ET.SubElement(group, "dataValue", attributes)
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def xsd(connector: str, data_set: str) -> bytes:
    """The XML Schema of the connector's ADX messages for the data set mapped to ``data_set``: what a
    consumer validates our export with (BaocaoError when the data set or every value is unmapped)."""
    mapping = codes.load(connector)
    if data_set not in mapping.data_sets:
        raise codes.MappingGap(connector, [data_set])
    rows = list(mapping.values.values())
    if not rows:
        raise FileRefused("national_link.interop.error.no_values_mapped", connector=connector)
    categories: dict[str, set[str]] = {}
    for row in rows:
        for category, option in codes.attribute_pairs(row.remote_attributes):
            categories.setdefault(category, set()).add(option)

    def enumeration(name: str, values) -> str:
        items = "".join(f'\n      <xs:enumeration value={quoteattr(v)}/>' for v in sorted(values))
        return (f'  <xs:simpleType name="{name}">\n    <xs:restriction base="xs:string">'
                f'{items}\n    </xs:restriction>\n  </xs:simpleType>\n')

    category_attributes = "".join(f'      <xs:attribute name="{c}" type="Category_{c}" use="optional"/>\n'
                                  for c in sorted(categories))
    org_unit_type = "OrgUnitType" if mapping.org_units else "xs:string"
    types = (enumeration("DataSetType", [mapping.data_sets[data_set]])
             + enumeration("DataElementType", {r.remote_code for r in rows})
             + (enumeration("OrgUnitType", mapping.org_units) if mapping.org_units else "")
             + "".join(enumeration(f"Category_{c}", options) for c, options in sorted(categories.items())))
    about = (f"data set {_comment(mapping.data_sets[data_set])} (regime {_comment(data_set)}), "
             f"connector {_comment(connector)}")
    text = f"""<?xml version="1.0" encoding="UTF-8"?>
<!-- ADX messages of {about}:
     derived from the connector's code mapping as the IHE QRPH ADX profile derives a schema from its DSD. -->
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns="{NS}" targetNamespace="{NS}"
           elementFormDefault="qualified" attributeFormDefault="unqualified">
  <xs:element name="adx">
    <xs:complexType>
      <xs:sequence>
        <xs:element name="group" type="GroupType" maxOccurs="unbounded"/>
      </xs:sequence>
      <xs:attribute name="exported" type="xs:dateTime" use="required"/>
      <xs:anyAttribute namespace="##other" processContents="lax"/>
    </xs:complexType>
  </xs:element>
  <xs:complexType name="GroupType">
    <xs:sequence>
      <xs:element name="dataValue" type="DataValueType" maxOccurs="unbounded"/>
    </xs:sequence>
    <xs:attribute name="orgUnit" type="{org_unit_type}" use="required"/>
    <xs:attribute name="period" type="PeriodType" use="required"/>
    <xs:attribute name="dataSet" type="DataSetType" use="required"/>
    <xs:attribute name="completeDate" type="xs:date" use="optional"/>
    <xs:anyAttribute namespace="##other" processContents="lax"/>
  </xs:complexType>
  <xs:complexType name="DataValueType">
    <xs:sequence>
      <xs:element name="annotation" type="xs:string" minOccurs="0"/>
    </xs:sequence>
    <xs:attribute name="dataElement" type="DataElementType" use="required"/>
    <xs:attribute name="value" type="xs:decimal" use="required"/>
{category_attributes}    <xs:anyAttribute namespace="##other" processContents="lax"/>
  </xs:complexType>
  <xs:simpleType name="PeriodType">
    <xs:restriction base="xs:string">
      <xs:pattern value="[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}/(P[0-9]+[DWMY]|[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}})"/>
    </xs:restriction>
  </xs:simpleType>
{types}</xs:schema>
"""
    return text.encode("utf-8")


def _comment(text: str) -> str:
    return text.replace("--", "- -")  # "--" cannot stand in an XML comment


# -- import -------------------------------------------------------------------------------------------

def checked(content: bytes) -> None:
    """Refuse a file before parsing it (FileRefused): too big, empty, not UTF-8, or anything of a
    document type declaration (``<!DOCTYPE``, ``<!ENTITY``: every XML bomb and external entity
    needs one). Comments and CDATA sections are the only ``<!`` left."""
    text = codes.uploaded_text(content)
    declared = _DECLARED_ENCODING.match(text)
    if declared and declared.group(1).lower() not in ("utf-8", "utf8"):
        raise FileRefused("national_link.interop.error.encoding")
    if "<!" in text.replace("<!--", "").replace("<![CDATA[", ""):
        raise FileRefused("national_link.adx.error.doctype")


def read(content: bytes) -> tuple[list[Incoming], list[Problem]]:
    """The values of an ADX file with their places, and the problems of its groups and values.
    FileRefused when it is not a file to read at all (see ``checked``; not XML; not ADX)."""
    checked(content)
    try:
        # checked() refused any DOCTYPE or ENTITY declaration above: nothing is left to expand or fetch.
        root = ET.fromstring(content)  # nosec B314
    except ET.ParseError as exc:
        line, column = getattr(exc, "position", (0, 0))
        raise FileRefused("national_link.adx.error.xml", line=line, column=column) from None
    if root.tag != _tag("adx"):
        raise FileRefused("national_link.adx.error.not_adx")
    incoming, problems = [], []
    for number, group in enumerate(root, start=1):
        place = Place(group=number)
        if group.tag != _tag("group"):
            problems.append(Problem(place, "national_link.adx.error.element", {"name": _local(group.tag)}))
            continue
        missing = [name for name in GROUP_ATTRIBUTES if not (group.get(name) or "").strip()]
        for name in missing:
            problems.append(Problem(place, "national_link.adx.error.missing", {"name": name}))
        for name in group.keys():
            # An attribute of another namespace is an extension; one of ours would be an attribute
            # category (a partner, a project) that our figures have no place for: never dropped in silence.
            if name not in GROUP_ATTRIBUTES + GROUP_PASSING and not name.startswith("{"):
                problems.append(Problem(place, "national_link.adx.error.group_attribute", {"name": name}))
        if missing:
            continue
        period, period_problem = None, None
        try:
            period = parse_adx(group.get("period"))
        except PeriodError as exc:
            period_problem = (exc.key, exc.params)
        for count, element in enumerate(group, start=1):
            incoming_value = _value(element, Place(number, count), group, period, period_problem, problems)
            if incoming_value is not None:
                incoming.append(incoming_value)
    return incoming, problems


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1][:40]


def _value(element, place: Place, group, period, period_problem, problems: list[Problem]) -> Incoming | None:
    if element.tag != _tag("dataValue"):
        problems.append(Problem(place, "national_link.adx.error.element", {"name": _local(element.tag)}))
        return None
    element_code, value = (element.get("dataElement") or "").strip(), element.get("value")
    if not element_code or value is None:
        problems.append(Problem(place, "national_link.adx.error.missing",
                                {"name": "dataElement" if not element_code else "value"}))
        return None
    categories = {k: v.strip() for k, v in element.items()
                  if k not in ("dataElement", "value", LEGACY_COMBO) and not k.startswith("{")}
    combo = element.get(LEGACY_COMBO)
    if combo is not None and categories:
        problems.append(Problem(place, "national_link.adx.error.both_forms", {}))
        return None
    attributes = None
    if combo is None:
        raw = ";".join(f"{k}={v}" for k, v in sorted(categories.items()))
        attributes = codes.canonical_attributes(raw)
        attributes = raw if attributes is None else attributes  # unmappable as written: named as written
    group_place = Place(group=place.group)
    return Incoming(place=place, data_set=group.get("dataSet").strip(), data_set_place=group_place,
                    org_unit=group.get("orgUnit").strip(), org_unit_place=group_place, period=period,
                    period_problem=period_problem, data_element=element_code,
                    combo=codes.combo_of(combo) if combo is not None else None, attributes=attributes, value=value)


def dry_run(connector: str, content: bytes, *, access=None) -> codes.ImportPlan:
    """What importing the ADX file would change (writes nothing); FileRefused for a file refused whole."""
    incoming, problems = read(content)
    return codes.plan_import(connector, "adx", content, incoming, problems, access)


def apply(access, connector: str, content: bytes, filename: str, digest: str) -> tuple[dict | None, codes.ImportPlan]:
    """Import the previewed ADX file, all or nothing (codes.apply_import)."""
    return codes.apply_import(access, connector, "adx", content, read, filename, digest)
