"""The provincial periodic socio-economic regimes are data: ``data/regimes/*.toml`` (monthly,
quarterly, six-month, nine-month and annual; each twice, the departments' and the communes', each
level with its own form), in the format of docs/plugin_data.md — drafts the province completes and
issues. Why the deadlines are what they are is written in the files.

What the plugin cannot know is left for the province to fill before issuing: the number and date of
its own decision (Art. 11), so the core refuses to issue a draft without it. Here only what comes
from the settings: the planning department that prepares them.
"""

from __future__ import annotations

from core.api import RegimeSpec, Unit, fold

from .catalogue import DATA

PLANNING_DEPARTMENT = "so tai chinh"  # since the 2025 merger of Sở Kế hoạch và Đầu tư into Sở Tài chính


def planning_unit_code(configured: str | None) -> str | None:
    """The configured planning department, else the current department named "Sở Tài chính"."""
    if configured:
        return configured
    departments = Unit.select().where((Unit.kind == "department") & Unit.valid_to.is_null())
    return next((u.code for u in departments if fold(u.name) == PLANNING_DEPARTMENT), None)


def regime_specs(planning_unit_code: str | None = None) -> list[RegimeSpec]:
    return DATA.regimes(preparing_unit_code=planning_unit_code)
