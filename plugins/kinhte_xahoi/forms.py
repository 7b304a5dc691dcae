"""The data forms of the socio-economic regimes are data: ``data/forms/*.json``, one per period kind
(monthly, quarterly, six-month, nine-month, annual) and level (Biểu số 01/KTXH for the departments,
KTXH-01-*; Biểu số 02/KTXH-X for the communes, KTXH-02X-*), in the format of docs/forms.md.

A commune's form carries only the indicators the catalogue gives at commune level. Indexes and rates
are not added up (their year-to-date and ratio cells are greyed); the rules are the checks a planning
department runs by hand: no negative figure, whole numbers for counts, a warning when a figure moves
by more than 30 % against the previous period.
"""

from __future__ import annotations

from .catalogue import DATA, rows

FORM_PREFIX = {"province": "KTXH-01-", "commune": "KTXH-02X-"}


def form(frequency: str, level: str = "province") -> dict:
    """``{"code", "name", "frequency", "definition"}`` of the form for this period kind and level."""
    return next(f for code, f in DATA.forms().items()
                if f["frequency"] == frequency and code.startswith(FORM_PREFIX[level]))


def definition(frequency: str, level: str = "province") -> dict:
    return form(frequency, level)["definition"]


def indicators_for(frequency: str, level: str = "province") -> list[dict]:
    """The catalogue rows the form of this period kind and level carries, in catalogue order."""
    codes = {r["indicator"] for r in definition(frequency, level)["rows"] if r["kind"] == "indicator"}
    return [r for r in rows() if r["code"] in codes]
