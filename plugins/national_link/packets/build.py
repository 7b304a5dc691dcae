"""From baocao's domain to packet bodies (internal names, JSON values), read through core.api only.

Each builder returns a complete body — every field of its shape (fields.py) present, None where the
domain has nothing — or None when there is nothing to send (no such regime, no accepted version, a
report without a narrative). Bodies wait in the outbox as they are, so they hold only JSON values.

What each packet is built from (docs/national_link_packets.md says it field by field):

- regime: ``regime_spec`` (the regime as a RegimeSpec), units by electronic code and code, with its
  form and outline templates when it has a published form;
- form_template, outline_template: that form's rows, columns, greyed cells and rules; its outline
  sections with the regime's outline in words;
- report_data, list_data, narrative: the report's accepted version (or the version named, for a
  report with no receiver here) — ``report_overview`` for the regime, units, period and form, the
  frozen values and sections, the canonical bytes and their signature as they were signed;
- report_status: what happened to a report, with the messages it is about;
- period_catalogue: the cut-off windows of Decree 09/2019 Art. 12 (``period_windows``);
- indicator_catalogue, indicator_groups, disaggregations, kpi_set: the catalogue's current versions;
- kpi_data: the figures store (``figures``), totals and disaggregation options.
"""

from __future__ import annotations

import base64
import json
from decimal import Decimal

from core.api import (BaocaoError, Unit, accepted_version, current_indicator, figures, indicator_groups_of,
                      period_window, period_windows, regime_spec, report_overview, report_version, utcnow)

from .envelope import moment_text
from .fields import FREQUENCIES, LIST, REPORT_STATUSES, SHAPES, SIGNATURE_FORMAT


def decimal_text(value) -> str:
    """A number as packets carry it: canonical text, no exponent, no trailing zeros (``1234.5``);
    a text indicator's value as it is."""
    if not isinstance(value, Decimal):
        return str(value)
    text = format(value.normalize(), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _pick(shape: str, source: dict) -> dict:
    """The fields of ``shape`` from a domain dict whose keys are the same names (a form's row, column,
    rule, section): each present, its default where the source lacks it."""
    out = {}
    for f in SHAPES[shape].fields:
        value = source.get(f.name, f.empty())
        if f.of and isinstance(value, dict):
            value = _pick(f.of, value)
        elif f.type == LIST and isinstance(value, (list, tuple)):
            value = [_pick(f.item.of, v) if f.item.of else v for v in value]
        out[f.name] = value
    return out


def unit_ref(unit) -> dict:
    """A unit (a ``Unit`` row or a ``UnitRef``) as packets name it."""
    return {"agency_code": (unit.agency_code or "").strip(), "code": unit.code, "name": unit.name}


def _unit_of_code(code: str | None) -> dict | None:
    if not code:
        return None
    unit = Unit.get_or_none(Unit.code == code)
    return unit_ref(unit) if unit is not None else {"agency_code": "", "code": code, "name": ""}


# -- 1-3: a regime and its templates --------------------------------------------------------------------

def _form_template(spec) -> dict | None:
    if not spec.form:
        return None
    definition = spec.form.get("definition") or {}
    return {"regime_code": spec.code, "code": spec.form["code"], "name": spec.form["name"],
            "title": definition.get("title") or "",
            "rows": [_pick("form_row", r) for r in definition.get("rows") or ()],
            "columns": [_pick("form_column", c) for c in definition.get("columns") or ()],
            "greyed": list(definition.get("greyed") or ()),
            "rules": [_pick("form_rule", r) for r in definition.get("rules") or ()]}


def _outline_template(spec) -> dict:
    definition = (spec.form or {}).get("definition") or {}
    return {"regime_code": spec.code, "form_code": (spec.form or {}).get("code", ""), "text": spec.outline or "",
            "sections": [_pick("outline_section", s) for s in definition.get("outline") or ()]}


def regime_body(regime_id: int) -> dict | None:
    """The regime packet: the regime version ``regime_id``, with its form and outline templates when it
    has a published form; None when there is no such regime."""
    spec = regime_spec(regime_id)
    if spec is None:
        return None
    has_form = bool(spec.form)
    return {
        "code": spec.code, "name": spec.name, "regime_type": spec.regime_type, "frequency": spec.frequency,
        "content": spec.content or "", "content_type": spec.content_type,
        "reporting_kinds": list(spec.reporting_kinds),
        "reporting_units": [_unit_of_code(c) for c in spec.reporting_codes],
        "reporting_group": spec.reporting_group, "receiving_rule": spec.receiving_rule or "unit",
        "receiving_unit": _unit_of_code(spec.receiving_unit_code), "receiving_group": spec.receiving_group,
        "sending_methods": list(spec.sending_methods),
        "deadline_rules": [_pick("deadline_rule", r) for r in spec.deadline_rules],
        "cutoff_rule": spec.cutoff_rule, "outline": spec.outline or "", "data_forms": spec.data_forms or "",
        "guidance": spec.guidance or "", "legal_number": spec.legal_number or "",
        "legal_date": spec.legal_date.isoformat() if spec.legal_date else None, "legal_issuer": spec.legal_issuer or "",
        "issuing_unit": _unit_of_code(spec.issuing_unit_code),
        "preparing_unit": _unit_of_code(spec.preparing_unit_code),
        "form_template": _form_template(spec) if has_form else None,
        "outline_template": _outline_template(spec) if has_form else None,
    }


def form_template_body(regime_id: int) -> dict | None:
    """The form-template packet: the regime's published form (rows, columns, greyed cells, rules);
    None when the regime has none."""
    spec = regime_spec(regime_id)
    return _form_template(spec) if spec is not None else None


def outline_template_body(regime_id: int) -> dict | None:
    """The outline-template packet: the regime's outline in words and its form's sections; None when
    the regime has neither."""
    spec = regime_spec(regime_id)
    if spec is None:
        return None
    body = _outline_template(spec)
    return body if body["text"] or body["sections"] else None


# -- 4-7: a report ----------------------------------------------------------------------------------

def _version(report_id: int, version: int | None):
    return accepted_version(report_id) if version is None else report_version(report_id, version)


def _period(overview) -> dict:
    return {"frequency": overview.frequency, "year": overview.year, "index": overview.index,
            "start": overview.period_start.isoformat(), "end": overview.period_end.isoformat()}


def _report(overview, version) -> dict:
    return {"id": overview.id, "kind": overview.kind, "regime_code": overview.regime_code,
            "regime_version": overview.regime_version, "regime_name": overview.regime_name,
            "unit": unit_ref(overview.unit), "receiver": unit_ref(overview.receiver) if overview.receiver else None,
            "period": _period(overview), "deadline": overview.deadline.isoformat(), "form_code": overview.form_code,
            "form_version": overview.form_version, "version": version.number,
            "submitted_at": moment_text(version.submitted_at),
            "accepted_at": moment_text(version.accepted_at) if version.accepted_at else None, "late": version.late}


def _signature(signature) -> dict | None:
    if signature is None:
        return None
    return {"kind": signature.kind, "signer_name": signature.signer_name, "signer_serial": signature.signer_serial,
            "issuer": signature.issuer, "fingerprint": signature.fingerprint,
            "signing_time": moment_text(signature.signing_time) if signature.signing_time else None,
            "status": signature.status, "format": SIGNATURE_FORMAT,
            "value": base64.b64encode(signature.cms).decode("ascii")}


def _document(version) -> dict:
    frozen = json.loads(version.canonical)
    return {"format": str(frozen.get("format") or ""), "content": base64.b64encode(version.canonical).decode("ascii"),
            "sha256": version.sha256, "signature": _signature(version.signature)}


def _read(report_id: int, version: int | None):
    """(overview, version, rows by key, columns by key, the form's row and column order)."""
    overview = report_overview(report_id)
    found = _version(report_id, version) if overview is not None else None
    if found is None:
        return None
    rows = [r for r in overview.form.get("rows") or () if isinstance(r, dict)]
    columns = [c for c in overview.form.get("columns") or () if isinstance(c, dict)]
    return overview, found, rows, columns


def _cells(values: dict, rows: list, columns: list) -> list[tuple[str, str, str]]:
    """(row, column, value) of every value, in the form's order; a value the form does not place
    (never expected) follows, so none is left out."""
    placed = [(r["key"], c["key"]) for r in rows for c in columns if f"{r['key']}.{c['key']}" in values]
    seen = {f"{r}.{c}" for r, c in placed}
    rest = [tuple(key.split(".", 1)) for key in sorted(values) if key not in seen and "." in key]
    return [(r, c, str(values[f"{r}.{c}"])) for r, c in placed + rest]


def report_data_body(report_id: int, version: int | None = None) -> dict | None:
    """The report-data packet: every value of the report's accepted version (``version``: that
    version, accepted or not — a report sent with no receiver here), each with its row, column,
    indicator, disaggregation option, value kind and period, and the signed document itself."""
    read = _read(report_id, version)
    if read is None:
        return None
    overview, found, rows, columns = read
    row_of, column_of = {r["key"]: r for r in rows}, {c["key"]: c for c in columns}
    cells = []
    for row_key, column_key, value in _cells(found.values, rows, columns):
        row, column = row_of.get(row_key, {}), column_of.get(column_key, {})
        indicator_row = row.get("kind") == "indicator"
        cells.append({"row": row_key, "column": column_key,
                      "indicator": (row.get("indicator") or "") if indicator_row else "",
                      "option": (row.get("option") or "") if indicator_row else "",
                      "value_kind": column.get("value_kind") or "actual", "period": column.get("period") or "current",
                      "value": value})
    return {"report": _report(overview, found), "document": _document(found), "cells": cells}


def list_data_body(report_id: int, version: int | None = None) -> dict | None:
    """The list-data packet: the report's table as records — one per row holding a value (headings
    hold none), with its number, name and unit and its values by column, in the form's order. None
    when the version holds no value."""
    read = _read(report_id, version)
    if read is None:
        return None
    overview, found, rows, columns = read
    by_row: dict[str, list] = {}
    for row_key, column_key, value in _cells(found.values, rows, columns):
        by_row.setdefault(row_key, []).append({"column": column_key, "value": value})
    known = {r["key"] for r in rows}
    records = []
    for row in rows + [{"key": k} for k in by_row if k not in known]:
        if row["key"] not in by_row:
            continue
        code = (row.get("indicator") or "") if row.get("kind") == "indicator" else ""
        indicator = current_indicator(code) if code else None
        records.append({"row": row["key"], "number": row.get("number") or "",
                        "label": row.get("label") or (indicator.name if indicator else ""),
                        "indicator": code, "option": (row.get("option") or "") if code else "",
                        "unit": row.get("unit") or ((indicator.unit_of_measure or "") if indicator else ""),
                        "values": by_row[row["key"]]})
    if not records:
        return None
    return {"report": _report(overview, found), "rows": records}


def narrative_body(report_id: int, version: int | None = None) -> dict | None:
    """The narrative packet: each outline section written in the version, in the outline's order,
    with its title. None when nothing was written."""
    read = _read(report_id, version)
    if read is None:
        return None
    overview, found = read[0], read[1]
    outline = [s for s in overview.form.get("outline") or () if isinstance(s, dict)]
    written = {k: v for k, v in found.sections.items() if v}
    keys = [s["key"] for s in outline if s.get("key") in written]
    keys += sorted(k for k in written if k not in keys)
    titles = {s.get("key"): s.get("title") or "" for s in outline}
    if not keys:
        return None
    return {"report": _report(overview, found),
            "sections": [{"key": k, "title": titles.get(k, ""), "text": written[k]} for k in keys]}


def report_status_body(report_id: int, status: str, *, reason: str = "", at=None, refs=(),
                       version: int | None = None) -> dict | None:
    """The report-status packet: ``status`` (submitted, received, accepted, returned) of the report's
    ``version`` (default: the accepted one, when there is one) at ``at`` (default now), about the
    messages ``refs``. None when there is no such report."""
    if status not in REPORT_STATUSES:
        raise ValueError(f"a report status is one of {', '.join(REPORT_STATUSES)}, not {status!r}")
    overview = report_overview(report_id)
    if overview is None:
        return None
    found = _version(report_id, version) if version is not None or overview.status == "accepted" else None
    return {"report": {"id": overview.id, "regime_code": overview.regime_code, "unit": unit_ref(overview.unit),
                       "period": _period(overview), "version": found.number if found else version,
                       "sha256": found.sha256 if found else ""},
            "status": status, "at": moment_text(at or utcnow()), "reason": reason or "", "refs": list(refs)}


# -- 8-13: catalogues and figures -----------------------------------------------------------------

def period_catalogue_body(frequency: str | None, year: int) -> dict:
    """The period-catalogue packet: every ``frequency`` period of ``year`` (None: of every frequency)
    with its cut-off window (Decree 09/2019 Art. 12) and its name in both languages."""
    windows = [w for f in ((frequency,) if frequency else FREQUENCIES) for w in period_windows(f, year)]
    return {"periods": [{"frequency": w.frequency, "year": w.year, "index": w.index, "start": w.start.isoformat(),
                         "end": w.end.isoformat(), "label": {"vi": w.label("vi"), "en": w.label("en")}}
                        for w in windows]}


def _current(code: str):
    indicator = current_indicator(code)
    if indicator is None:
        raise BaocaoError("national_link.packets.error.indicator_unknown", code=str(code)[:20])
    return indicator


def _categories(indicator) -> list[dict]:
    return [{"name": name, "options": list(options)} for name, options in indicator.disaggregation_list]


def _group(group) -> dict:
    return {"code": group.code, "name": group.name, "level": group.level}


def _indicator(indicator) -> dict:
    return {"code": indicator.code, "version": indicator.version, "name": indicator.name,
            "group": indicator.group.code, "unit_of_measure": indicator.unit_of_measure or "",
            "value_type": indicator.value_type, "aggregation": indicator.aggregation,
            "disaggregation": _categories(indicator), "levels": indicator.level_list,
            "periodicity": indicator.periodicity or "", "agency": indicator.agency or "",
            "higher_code": indicator.higher_code or "", "source_act": indicator.source_act or "",
            "valid_from": indicator.valid_from.isoformat() if indicator.valid_from else None}


def indicator_catalogue_body(codes) -> dict:
    """The indicator-catalogue packet: the current version of each indicator of ``codes`` and the
    groups they belong to (an unknown code is refused by name)."""
    indicators = [_current(code) for code in sorted(set(codes))]
    groups = {i.group.code: i.group for i in indicators}
    return {"groups": [_group(groups[c]) for c in sorted(groups)], "indicators": [_indicator(i) for i in indicators]}


def indicator_groups_body(prefix: str = "") -> dict:
    """The indicator-groups packet: the groups whose code starts with ``prefix`` (all by default)."""
    return {"groups": [_group(g) for g in indicator_groups_of(prefix)]}


def disaggregations_body(codes) -> dict:
    """The disaggregations packet: each indicator of ``codes`` with its disaggregations and options."""
    return {"indicators": [{"code": i.code, "name": i.name, "categories": _categories(i)}
                           for i in (_current(code) for code in sorted(set(codes)))]}


def kpi_set_body(code: str, name: str, codes) -> dict:
    """The KPI-set packet: a set named ``code``/``name`` of the indicators ``codes``, in that order."""
    members = [_current(c) for c in dict.fromkeys(codes)]
    return {"code": code, "name": name, "indicators": [{"code": i.code, "name": i.name,
                                                        "unit_of_measure": i.unit_of_measure or ""} for i in members]}


def kpi_data_body(codes, unit_ids, periods, kinds=("actual",), *, kpi_set: str = "") -> dict:
    """The KPI-data packet: the stored figures of ``codes`` × ``unit_ids`` × ``periods`` ((frequency,
    year, index) triples) × ``kinds``, totals and every disaggregation option (the figures query's
    bounds and refusals apply)."""
    rows = figures(list(codes), list(unit_ids), [tuple(p) for p in periods], kinds=tuple(kinds), options="all")
    units = {u.id: unit_ref(u) for u in Unit.select().where(Unit.id.in_(sorted({r.unit_id for r in rows}) or [0]))}
    windows: dict = {}
    out = []
    for row in rows:
        if row.value is None:
            continue
        key = (row.frequency, row.year, row.index)
        if key not in windows:
            w = period_window(*key)
            windows[key] = {"frequency": w.frequency, "year": w.year, "index": w.index,
                            "start": w.start.isoformat(), "end": w.end.isoformat()}
        out.append({"indicator": row.code, "unit": units[row.unit_id], "period": windows[key], "kind": row.kind,
                    "option": row.option or "", "value": decimal_text(row.value)})
    return {"kpi_set": kpi_set, "figures": out}
