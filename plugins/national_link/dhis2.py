"""DHIS2 data value sets (JSON, ``/api/dataValueSets``): accepted figures out, a DHIS2 instance's
figures in, through the connector's code mapping (codes.py).

A value set::

    {"dataSet": "KTXH_THANG", "period": "202601", "orgUnit": "OU_GIOLINH", "completeDate": "2026-02-03",
     "dataValues": [{"dataElement": "DE_DAN_SO", "period": "202601", "orgUnit": "OU_GIOLINH",
                     "categoryOptionCombo": "FMLE", "value": "5230"}]}

Every value names its period and org unit (the head repeats them when there is one of each, as
DHIS2 writes); a total has no ``categoryOptionCombo`` (DHIS2 takes its default combo). Periods are
DHIS2 period ids, by name (periods.py): nine months has none and is refused.

Reading: a value takes the head's ``period``, ``orgUnit`` (and ``dataSet``) when it has none of its
own; DHIS2's default combo (``default``, ``HllvX50cXC0``) or none is the total; an attribute option
combo other than the default, or a value marked deleted, is a problem of that value — never dropped
in silence. The import is the mapping's (codes.plan_import / codes.apply_import).
"""

from __future__ import annotations

import json

from core.api import BaocaoError, NotFound, accepted_version, format_date, report_overview

from . import codes
from .codes import FileRefused, Incoming, Place, Problem
from .periods import PeriodError, dhis2_period, parse_dhis2

MEDIA_TYPE = "application/json"

TEXT_MAX = 100  # a code or a value longer than this is cut where it is named


def _value_entry(data_element: str, period: str, org_unit: str, combo: str, value) -> dict:
    entry = {"dataElement": data_element, "period": period, "orgUnit": org_unit}
    if combo:
        entry["categoryOptionCombo"] = combo
    entry["value"] = codes.value_text(value)
    return entry


def _value_set(data_set: str, values: list[dict], complete_date: str | None = None) -> dict:
    head = {"dataSet": data_set}
    for name in ("period", "orgUnit"):
        found = {v[name] for v in values}
        if len(found) == 1:
            head[name] = found.pop()
    if complete_date:
        head["completeDate"] = complete_date
    return {**head, "dataValues": values}


# -- export -------------------------------------------------------------------------------------------

def export(connector: str, data_set: str, unit_ids, periods) -> dict:
    """The accepted figures of ``unit_ids`` × ``periods`` as a data value set of the data set mapped to
    the regime code ``data_set``. MappingGap names every code without a row; PeriodError refuses
    nine months (DHIS2 has no such period type)."""
    remote_set, found = codes.accepted_figures(connector, data_set, unit_ids, periods)
    names = {p: dhis2_period(*p) for p in {f.period for f in found}}
    order = {u: n for n, u in enumerate(dict.fromkeys(int(u) for u in unit_ids))}
    found = sorted(found, key=lambda f: (order[f.unit_id], f.period, f.data_element, f.combo))
    return _value_set(remote_set, [_value_entry(f.data_element, names[f.period], f.org_unit, f.combo, f.value)
                                   for f in found])


def dumps(value_set: dict) -> bytes:
    """A value set as the file a person downloads (UTF-8 JSON, indented)."""
    return json.dumps(value_set, ensure_ascii=False, indent=1).encode("utf-8") + b"\n"


def _period_columns(form: dict) -> list[str]:
    """The columns holding a row's figure of the period, by the rule the core publishes accepted
    figures with: those a year-to-date column accumulates, else the single input column of kind
    "actual", else none (which of several columns is the period's figure cannot be told)."""
    columns = form.get("columns") or []
    accumulated = list(dict.fromkeys(c["accumulate"] for c in columns if c.get("accumulate")))
    if accumulated:
        return accumulated
    inputs = [c.get("key") for c in columns
              if (c.get("kind") or "input") == "input" and (c.get("value_kind") or "actual") == "actual"]
    return inputs if len(inputs) == 1 else []


def value_set_for_report(connector_name: str, report_id: int) -> dict:
    """The report's accepted version as a data value set: its signed figures (the period's column of
    each indicator row), the unit's org unit, the regime's data set, the period's DHIS2 id and the
    day it was accepted as ``completeDate``. NotFound for no such report; BaocaoError when it is not
    accepted now, PeriodError for a period DHIS2 cannot name, MappingGap naming every code without a row."""
    overview = report_overview(report_id)
    if overview is None:
        raise NotFound()
    version = accepted_version(report_id)
    if version is None:
        raise BaocaoError("national_link.dhis2.error.not_accepted", report=report_id)
    mapping = codes.load(connector_name)
    period = dhis2_period(overview.frequency, overview.year, overview.index)
    gaps = [code for code, mapped in ((overview.regime_code, mapping.data_sets),
                                      (overview.unit.code, mapping.units)) if code not in mapped]
    columns = _period_columns(overview.form)
    entries: dict[tuple[str, str], dict] = {}
    for row in overview.form.get("rows") or []:
        if (row.get("kind") or "indicator") != "indicator" or not row.get("indicator"):
            continue
        for column in columns:
            value = version.values.get(f"{row.get('key')}.{column}")
            if value in (None, ""):
                continue
            code, option = row["indicator"], row.get("option") or ""
            target = mapping.values.get((code, option))
            if target is None:
                gaps.append(f"{code} ({option})" if option else code)
                continue
            # A value of the same cell twice (two accumulated columns): the last, as the core publishes.
            entries[(target.remote_code, target.remote_option)] = _value_entry(
                target.remote_code, period, mapping.units.get(overview.unit.code, ""), target.remote_option, value)
    if gaps:
        raise codes.MappingGap(connector_name, list(dict.fromkeys(gaps)))
    if not entries:
        raise BaocaoError("national_link.dhis2.error.no_figures", report=report_id)
    return _value_set(mapping.data_sets[overview.regime_code], list(entries.values()),
                      format_date(version.accepted_at, "en"))  # ISO 8601, the day in the instance's zone


# -- import -------------------------------------------------------------------------------------------

def _refuse_constant(name):
    raise ValueError(name)


def _json(content: bytes):
    text = codes.uploaded_text(content)
    try:
        # Numbers kept as written: a value goes to the store exactly, never through a float.
        return json.loads(text, parse_float=str, parse_int=str, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise FileRefused("national_link.dhis2.error.json", line=exc.lineno, column=exc.colno) from None
    except (ValueError, RecursionError):
        raise FileRefused("national_link.dhis2.error.json", line=0, column=0) from None


def _text(value) -> str | None:
    """A code as the file gives it, or None when it is not a string (or a number written as one)."""
    if isinstance(value, str):
        return value.strip()[:TEXT_MAX]
    return None


def _attribute_combo(item: dict, place: Place, problems: list[Problem]) -> None:
    """An attribute option combo other than DHIS2's default (a partner, a project) is a problem:
    our figures have no place for it, and dropping it would merge figures that differ."""
    given = item.get("attributeOptionCombo")
    if given is not None and (_text(given) is None or codes.combo_of(_text(given))):
        problems.append(Problem(place, "national_link.dhis2.error.attribute_combo",
                                {"value": _text(given) or json.dumps(given)[:TEXT_MAX]}))


def read(content: bytes) -> tuple[list[Incoming], list[Problem]]:
    """The values of a data value set with their places, and the problems of its values. FileRefused
    when it is not a data value set to read at all."""
    document = _json(content)
    if not isinstance(document, dict) or not isinstance(document.get("dataValues"), list):
        raise FileRefused("national_link.dhis2.error.not_value_set")
    head = Place()
    problems = []
    default_set = _text(document.get("dataSet")) or None
    default_period, default_unit = _text(document.get("period")), _text(document.get("orgUnit"))
    _attribute_combo(document, head, problems)
    incoming = []
    for number, entry in enumerate(document["dataValues"], start=1):
        place = Place(value=number)
        if not isinstance(entry, dict):
            problems.append(Problem(place, "national_link.dhis2.error.not_object", {}))
            continue
        element = _text(entry.get("dataElement"))
        own_unit, own_period = _text(entry.get("orgUnit")), _text(entry.get("period"))
        org_unit, period_text = own_unit or default_unit, own_period or default_period
        value = entry.get("value")
        missing = [name for name, given in (("dataElement", element), ("orgUnit", org_unit),
                                            ("period", period_text)) if not given]
        if value is None and not missing:
            missing.append("value")
        for name in missing:
            problems.append(Problem(place, "national_link.dhis2.error.missing", {"name": name}))
        if entry.get("deleted") is True:
            problems.append(Problem(place, "national_link.dhis2.error.deleted", {}))
        _attribute_combo(entry, place, problems)
        combo = entry.get("categoryOptionCombo")
        if combo is not None and _text(combo) is None:  # a list, an object: no combo we can look up
            problems.append(Problem(place, "national_link.dhis2.error.not_text", {"name": "categoryOptionCombo"}))
            continue
        if missing:
            continue
        period, period_problem = None, None
        try:
            period = parse_dhis2(period_text)
        except PeriodError as exc:
            period_problem = (exc.key, exc.params)
        incoming.append(Incoming(
            place=place, data_set=default_set, data_set_place=head, org_unit=org_unit,
            org_unit_place=place if own_unit else head, period=period, period_problem=period_problem,
            data_element=element, combo=codes.combo_of(_text(combo)), attributes=None,
            value=value if isinstance(value, str) else json.dumps(value)[:TEXT_MAX]))
    return incoming, problems


def dry_run(connector: str, content: bytes, *, access=None) -> codes.ImportPlan:
    """What importing the data value set would change (writes nothing); FileRefused for a file refused whole."""
    incoming, problems = read(content)
    return codes.plan_import(connector, "dhis2", content, incoming, problems, access)


def apply(access, connector: str, content: bytes, filename: str, digest: str) -> tuple[dict | None, codes.ImportPlan]:
    """Import the previewed data value set, all or nothing (codes.apply_import)."""
    return codes.apply_import(access, connector, "dhis2", content, read, filename, digest)
