"""The unit tree: ancestors, subtrees and the tree as nested nodes.

Recursive CTEs work the same on SQLite and PostgreSQL, so the tree is read
fresh from the database: several worker processes never disagree on it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from core import clock
from core.i18n import fold
from core.models import UNIT_KINDS, Unit
from core.units.changes import past_values


def ancestor_ids(unit_id: int) -> list[int]:
    """The unit and its ancestors, nearest first."""
    # Only the driver's placeholder is put into the SQL (nosec B608, here and in subtree_ids); the id is bound.
    rows = Unit._meta.database.execute_sql(
        """WITH RECURSIVE up(id, parent_id, depth) AS (
               SELECT id, parent_id, 0 FROM core_unit WHERE id = %(p)s
               UNION ALL
               SELECT u.id, u.parent_id, up.depth + 1 FROM core_unit u JOIN up ON u.id = up.parent_id
           ) SELECT id FROM up ORDER BY depth""".replace("%(p)s", _param()), (unit_id,))  # nosec B608
    return [r[0] for r in rows.fetchall()]


def subtree_ids(unit_id: int) -> list[int]:
    """The unit and everything below it."""
    rows = Unit._meta.database.execute_sql(
        """WITH RECURSIVE down(id) AS (
               SELECT id FROM core_unit WHERE id = %(p)s
               UNION ALL
               SELECT u.id FROM core_unit u JOIN down ON u.parent_id = down.id
           ) SELECT id FROM down""".replace("%(p)s", _param()), (unit_id,))  # nosec B608
    return [r[0] for r in rows.fetchall()]


def _param() -> str:
    return Unit._meta.database.param


@dataclass
class Node:
    unit: Unit
    children: list["Node"] = field(default_factory=list)
    depth: int = 0


KIND_ORDER = {kind: i for i, kind in enumerate(UNIT_KINDS)}


def sort_key(unit: Unit):
    """Kind first (departments before communes), then the name as Vietnamese readers
    expect: "Xã Ái Tử" among the A's, not after "Xã Z…" as a byte order puts it."""
    return KIND_ORDER.get(unit.kind, len(KIND_ORDER)), fold(unit.name), unit.name


def valid_at(day: dt.date, model=Unit):
    """Units in force on ``day``: validity [valid_from, valid_to], both inclusive, null = open."""
    return (((model.valid_from.is_null()) | (model.valid_from <= day))
            & ((model.valid_to.is_null()) | (model.valid_to >= day)))


def is_valid(unit: Unit, day: dt.date | None = None) -> bool:
    day = day or clock.today()
    return (unit.valid_from is None or unit.valid_from <= day) and (unit.valid_to is None or unit.valid_to >= day)


def tree(root_id: int | None = None, at: dt.date | None = None) -> list[Node]:
    """Nested nodes, ordered by kind then name, from ``root_id`` (or every root), as the
    tree stood on ``at`` (None: today). Only units in force that day appear, so former
    units never show in current lists and pickers; names, parents and kinds changed
    after ``at`` (rename, re-parent, change of level) are shown as they were then."""
    day = at or clock.today()
    units = list(Unit.select().where(valid_at(day)))
    overrides = past_values(day)
    for unit in units:
        old = overrides.get(unit.id)
        if old:
            for attr, value in old.items():
                setattr(unit, attr, value)
    units.sort(key=sort_key)
    present = {u.id for u in units}
    by_parent: dict[int | None, list[Unit]] = {}
    for unit in units:
        # A unit whose parent is not in force that day is shown as a root rather than lost.
        by_parent.setdefault(unit.parent_id if unit.parent_id in present else None, []).append(unit)

    def build(unit, depth):
        return Node(unit, [build(c, depth + 1) for c in by_parent.get(unit.id, [])], depth)

    roots = [u for u in units if u.id == root_id] if root_id else by_parent.get(None, [])
    return [build(u, 0) for u in roots]


def flatten(nodes: list[Node]) -> list[Node]:
    out = []
    for node in nodes:
        out.append(node)
        out.extend(flatten(node.children))
    return out
