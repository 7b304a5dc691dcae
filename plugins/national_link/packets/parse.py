"""From packet bodies (internal names, as ``check`` gives them) back to baocao's domain.

Each parser reads a body that passed its schema and gives what the domain takes: a ``RegimeSpec``
(``core.api.create_regime_draft`` makes it a draft), the 7-column indicator table that
``core.api.parse_indicator_table`` reads (its dry run lists what is new and what changed, then
``apply_indicator_plan`` writes it in one transaction), periods with their windows, ``Figure`` rows
for ``put_figures``. Parsers write nothing.

Units. Another system names a unit by its electronic code (mã định danh); the code beside it is that
system's own. So a unit is found here by its electronic code when the packet gives one (among the
units in existence today), and by its code only when it gives none. A regime keeps a code it
cannot resolve (the draft's own checks name it); figures of a unit no one has are refused.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import hashlib
import io
import json

from core.api import Figure, RegimeSpec, Unit, today

from .problems import PacketProblem, PacketRefused

# The indicator table's header: the seven official columns, then the catalogue's own (what
# core.api.export_indicator_table writes and parse_indicator_table reads).
TABLE_HEADER = ("STT", "Mã số", "Nhóm/tên chỉ tiêu", "Phân tổ chủ yếu", "Kỳ công bố",
                "Cơ quan chịu trách nhiệm thu thập/tổng hợp", "Mã số ở hệ thống cấp cao hơn", "Đơn vị tính",
                "Loại giá trị", "Cách tổng hợp", "Cấp", "Văn bản quy định")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # a text a spreadsheet would run (core's export rule)


def day_of(text: str | None) -> dt.date | None:
    return dt.date.fromisoformat(text) if text else None


def moment_of(text: str | None) -> dt.datetime | None:
    """A packet's time (``…Z``) as baocao stores times: naive UTC."""
    return dt.datetime.fromisoformat(text[:-1]) if text else None


def find_unit(ref: dict | None):
    """The unit a packet names (see the module's docstring), or None."""
    if not ref:
        return None
    agency_code, code = (ref.get("agency_code") or "").strip(), (ref.get("code") or "").strip()
    day = today()
    in_force = ((Unit.valid_from.is_null()) | (Unit.valid_from <= day)) & \
        ((Unit.valid_to.is_null()) | (Unit.valid_to >= day))
    if agency_code:
        return Unit.select().where((Unit.agency_code == agency_code) & in_force).order_by(Unit.id).first()
    if code:
        return Unit.select().where((Unit.code == code) & in_force).order_by(Unit.id).first()
    return None


def _unit_code(ref: dict | None) -> str | None:
    """A unit's code here; else the code (or electronic code) the packet gives."""
    if not ref:
        return None
    unit = find_unit(ref)
    if unit is not None:
        return unit.code
    return (ref.get("code") or ref.get("agency_code") or "").strip() or None


# -- 1-3: a regime and its templates --------------------------------------------------------------------

def outline_template_of(body: dict) -> dict:
    """The outline template: the regime's outline in words (``text``) and the form's sections."""
    return {"regime_code": body.get("regime_code") or "", "form_code": body.get("form_code") or "",
            "text": body.get("text") or "", "sections": [dict(s) for s in body.get("sections") or ()]}


def form_template_of(body: dict, outline_template: dict | None = None) -> dict:
    """The form as a RegimeSpec carries it, ``{"code", "name", "definition"}``; the definition's
    outline is the outline template's sections (none without one)."""
    outline = outline_template_of(outline_template)["sections"] if outline_template else []
    definition = {"title": body.get("title") or "",
                  "rows": [dict(r) for r in body.get("rows") or ()],
                  "columns": [{**c, "periods": list(c.get("periods") or ())} for c in body.get("columns") or ()],
                  "greyed": list(body.get("greyed") or ()),
                  "rules": [{**r, "rows": list(r.get("rows") or ()), "columns": list(r.get("columns") or ()),
                             "message": dict(r.get("message") or {"vi": "", "en": ""})}
                            for r in body.get("rules") or ()],
                  "outline": outline}
    return {"code": body["code"], "name": body["name"], "definition": definition}


def regime_spec_of(body: dict, form_template: dict | None = None, outline_template: dict | None = None) -> RegimeSpec:
    """The regime packet as a ``RegimeSpec``: with the form (and outline) templates it carries, or those
    given beside it. Units are named by their code here (see the module's docstring)."""
    form_body = form_template or body.get("form_template")
    outline_body = outline_template or body.get("outline_template")
    return RegimeSpec(
        code=body["code"], name=body["name"], regime_type=body["regime_type"], frequency=body.get("frequency"),
        content=body.get("content") or "", content_type=body.get("content_type") or "both",
        reporting_kinds=tuple(body.get("reporting_kinds") or ()),
        deadline_rules=tuple({"level": r.get("level") or "", "from_kind": r.get("from_kind") or "",
                              "rule": r.get("rule") or ""} for r in body.get("deadline_rules") or ()),
        sending_methods=tuple(body.get("sending_methods") or ()), cutoff_rule=body.get("cutoff_rule") or "decree",
        outline=body.get("outline") or "", data_forms=body.get("data_forms") or "",
        guidance=body.get("guidance") or "", legal_number=body.get("legal_number") or "",
        legal_date=day_of(body.get("legal_date")), legal_issuer=body.get("legal_issuer") or "",
        issuing_unit_code=_unit_code(body.get("issuing_unit")), receiving_rule=body.get("receiving_rule") or "unit",
        receiving_unit_code=_unit_code(body.get("receiving_unit")), receiving_group=body.get("receiving_group"),
        reporting_group=body.get("reporting_group"),
        reporting_codes=tuple(c for c in (_unit_code(u) for u in body.get("reporting_units") or ()) if c),
        preparing_unit_code=_unit_code(body.get("preparing_unit")),
        form=form_template_of(form_body, outline_body) if form_body else None)


# -- 4-7: a report ----------------------------------------------------------------------------------

def report_data_of(body: dict) -> dict:
    """The report-data packet: ``report`` (as the packet names it), ``values`` ("<row>.<column>" →
    text, as ``accepted_version`` gives them), ``cells`` (each with its indicator, option, kind and
    period), the signed document's ``canonical`` bytes, its ``sha256`` and ``cms`` (None: unsigned).
    A document whose bytes do not match its SHA-256 is refused."""
    document = body["document"]
    canonical = base64.b64decode(document["content"])
    if hashlib.sha256(canonical).hexdigest() != document["sha256"]:
        raise PacketRefused([PacketProblem("body.document.sha256", "national_link.packets.error.sha256")])
    signature = document.get("signature")
    return {"report": body["report"], "cells": [dict(c) for c in body.get("cells") or ()],
            "values": {f"{c['row']}.{c['column']}": c["value"] for c in body.get("cells") or ()},
            "canonical": canonical, "sha256": document["sha256"], "format": document.get("format") or "",
            "cms": base64.b64decode(signature["value"]) if signature else None,
            "signer": (signature or {}).get("signer_name") or ""}


def list_data_of(body: dict) -> list[dict]:
    """The list-data packet's records, each with its ``values`` by column key."""
    return [{**{k: v for k, v in row.items() if k != "values"},
             "values": {v["column"]: v["value"] for v in row.get("values") or ()}} for row in body.get("rows") or ()]


def narrative_of(body: dict) -> dict:
    """The narrative packet's sections: key → text (as ``accepted_version`` gives ``sections``)."""
    return {s["key"]: s["text"] for s in body.get("sections") or ()}


def report_status_of(body: dict) -> dict:
    """The report-status packet: ``status``, ``reason``, ``at`` (naive UTC), ``refs`` (the message ids
    it is about) and ``report`` as the packet names it."""
    return {"report": body["report"], "status": body["status"], "reason": body.get("reason") or "",
            "at": moment_of(body.get("at")), "refs": list(body.get("refs") or ())}


# -- 8-13: catalogues and figures -----------------------------------------------------------------

def period_catalogue_of(body: dict) -> list[dict]:
    """The periods, each ``frequency``, ``year``, ``index``, ``start`` and ``end`` (dates), ``label``."""
    return [{"frequency": p["frequency"], "year": p["year"], "index": p["index"], "start": day_of(p["start"]),
             "end": day_of(p["end"]), "label": dict(p.get("label") or {})} for p in body.get("periods") or ()]


def _cell(value):
    """A table cell kept as text: a value a spreadsheet would read as a formula gets the quote the
    core's exports put before it (parse_indicator_table takes it off again)."""
    return "'" + value if isinstance(value, str) and value[:1] in FORMULA_START else value


def _disaggregation_text(categories) -> str:
    """The catalogue's own text of disaggregations: "A; B" when none has options, else JSON."""
    if not categories:
        return ""
    if not any(c.get("options") for c in categories):
        return "; ".join(c["name"] for c in categories)
    return json.dumps([{"category": c["name"], "options": list(c.get("options") or ())} for c in categories],
                      ensure_ascii=False)


def _table(groups: list[dict], indicators: list[dict]) -> bytes:
    by_group: dict[str, list] = {}
    for item in indicators:
        by_group.setdefault(item["group"], []).append(item)
    codes = sorted({g["code"] for g in groups} | set(by_group))
    named = {g["code"]: g for g in groups}
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(TABLE_HEADER)
    number = 0
    for code in codes:
        group = named.get(code)
        if group is not None:
            writer.writerow(map(_cell, ["", code, group["name"], "", "", "", "", "", "", "", group["level"], ""]))
        for item in sorted(by_group.get(code, ()), key=lambda i: i["code"]):
            number += 1
            writer.writerow(map(_cell, [
                number, item["code"], item["name"], _disaggregation_text(item.get("disaggregation")),
                item.get("periodicity") or "", item.get("agency") or "", item.get("higher_code") or "",
                item.get("unit_of_measure") or "", item.get("value_type") or "", item.get("aggregation") or "",
                ",".join(item.get("levels") or ()), item.get("source_act") or ""]))
    return out.getvalue().encode("utf-8-sig")


def indicator_table_of(body: dict) -> bytes:
    """The indicator-catalogue packet as the indicator table (CSV, UTF-8) that
    ``core.api.parse_indicator_table`` reads: each group, then its indicators (pass
    ``local_codes=True`` for a province's or sector's own codes)."""
    return _table(list(body.get("groups") or ()), list(body.get("indicators") or ()))


def indicator_groups_table_of(body: dict) -> bytes:
    """The indicator-groups packet as the same table, groups only."""
    return _table(list(body.get("groups") or ()), [])


def disaggregations_of(body: dict) -> dict[str, list[tuple[str, tuple[str, ...]]]]:
    """Indicator code → its disaggregations as (name, options) pairs (as the catalogue lists them)."""
    return {i["code"]: [(c["name"], tuple(c.get("options") or ())) for c in i.get("categories") or ()]
            for i in body.get("indicators") or ()}


def kpi_set_of(body: dict) -> dict:
    """The KPI set: ``code``, ``name`` and its indicators' ``codes`` in order."""
    return {"code": body["code"], "name": body["name"], "codes": [i["code"] for i in body.get("indicators") or ()]}


def kpi_data_of(body: dict) -> list[Figure]:
    """The figures, for ``core.api.put_figures``. Figures of a unit no one has here are refused, each
    such unit named once (places in internal names: ``PacketRefused.in_wire`` gives the wire's)."""
    units: dict[tuple, int | None] = {}
    problems, out = [], []
    for position, item in enumerate(body.get("figures") or ()):
        ref = item["unit"]
        key = ((ref.get("agency_code") or "").strip(), (ref.get("code") or "").strip())
        if key not in units:
            unit = find_unit(ref)
            units[key] = unit.id if unit is not None else None
            if unit is None:
                problems.append(PacketProblem(f"body.figures[{position}].unit",
                                              "national_link.packets.error.unit_unknown",
                                              {"agency_code": key[0] or "—", "code": key[1] or "—"}))
        if units[key] is None:
            continue
        period = item["period"]
        out.append(Figure(code=item["indicator"], unit_id=units[key], frequency=period["frequency"],
                          year=period["year"], index=period["index"], kind=item.get("kind") or "actual",
                          value=item["value"], option=item.get("option") or ""))
    if problems:
        raise PacketRefused(problems)
    return out
