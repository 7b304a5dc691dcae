"""The unit tree: ancestors, subtrees and the tree as nested nodes.

Recursive CTEs work the same on SQLite and PostgreSQL, so the tree is read
fresh from the database: several worker processes never disagree on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from core.i18n import fold
from core.models import UNIT_KINDS, Unit


def ancestor_ids(unit_id: int) -> list[int]:
    """The unit and its ancestors, nearest first."""
    rows = Unit._meta.database.execute_sql(
        """WITH RECURSIVE up(id, parent_id, depth) AS (
               SELECT id, parent_id, 0 FROM core_unit WHERE id = %(p)s
               UNION ALL
               SELECT u.id, u.parent_id, up.depth + 1 FROM core_unit u JOIN up ON u.id = up.parent_id
           ) SELECT id FROM up ORDER BY depth""".replace("%(p)s", _param()), (unit_id,))
    return [r[0] for r in rows.fetchall()]


def subtree_ids(unit_id: int) -> list[int]:
    """The unit and everything below it."""
    rows = Unit._meta.database.execute_sql(
        """WITH RECURSIVE down(id) AS (
               SELECT id FROM core_unit WHERE id = %(p)s
               UNION ALL
               SELECT u.id FROM core_unit u JOIN down ON u.parent_id = down.id
           ) SELECT id FROM down""".replace("%(p)s", _param()), (unit_id,))
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


def tree(root_id: int | None = None) -> list[Node]:
    """Nested nodes, ordered by kind then name, from ``root_id`` (or every root)."""
    units = sorted(Unit.select(), key=sort_key)
    by_parent: dict[int | None, list[Unit]] = {}
    for unit in units:
        by_parent.setdefault(unit.parent_id, []).append(unit)

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
