"""Unit groups as the plugin API gives them (``core.api``): which groups exist, and which units a
group holds on a day. Read-only: groups are made and changed on the core's screens (/unit-groups).

Nothing here checks the caller: a plugin's view shows only what its user may see, as with
``figures``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from core import clock
from core.models import Unit
from core.regimes.regimes import UnitGroup, UnitGroupMember, valid_units
from core.safe_input import parse_id


@dataclass(frozen=True)
class UnitGroupInfo:
    """One unit group: ``owner_unit_id`` is the unit it answers to (None: no owner)."""

    id: int
    code: str
    name: str
    owner_unit_id: int | None


def unit_groups() -> list[UnitGroupInfo]:
    """Every unit group, by name (then code, for two groups of one name)."""
    rows = UnitGroup.select(UnitGroup.id, UnitGroup.code, UnitGroup.name, UnitGroup.owner).tuples()
    return sorted((UnitGroupInfo(id, code, name, owner) for id, code, name, owner in rows),
                  key=lambda g: (g.name, g.code))


def unit_group_members(group_id, day: dt.date | None = None) -> frozenset[int]:
    """The ids of the group's member units in existence on ``day`` (default: today in the
    instance's time zone): a member merged away or not yet created is left out. An unknown group
    (or an id that is not one) has no member."""
    group_id = parse_id(group_id)
    if group_id is None:
        return frozenset()
    day = day or clock.today()
    members = UnitGroupMember.select(UnitGroupMember.unit).where(UnitGroupMember.group == group_id)
    return frozenset(valid_units(day).select(Unit.id).where(Unit.id.in_(members)).scalars())
