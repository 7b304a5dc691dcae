"""The record of unit changes (``UnitChange``, ``UnitChangeLink``; their meaning is told in
``core.units.history``, which makes them) and the reading of the past from it: what a unit was
called, where it hung and at what level on a given day. The tree (``core.units.tree``) reads this to
show itself as it stood; the history module builds on the tree, so the two share this one.
"""

from __future__ import annotations

import datetime as dt

from peewee import CharField, Check, DateField, DateTimeField, ForeignKeyField, TextField

from core.db import CoreModel
from core.models import Unit, User, utcnow

CHANGE_KINDS = ("merge", "split", "rename", "reparent", "level_change", "establish", "dissolve")
ROLES = ("from", "to")
SAME_ROW_KINDS = ("rename", "reparent", "level_change")


def _in(column, values):
    return Check(f"{column} IN (%s)" % ", ".join(f"'{v}'" for v in values))


class UnitChange(CoreModel):
    kind = CharField(max_length=20, constraints=[_in("kind", CHANGE_KINDS)])
    effective_date = DateField(index=True)  # the first day the new state holds
    legal_basis = TextField()
    note = TextField(null=True)
    old_name = CharField(max_length=255, null=True)
    new_name = CharField(max_length=255, null=True)
    old_parent = ForeignKeyField(Unit, null=True, backref="+", on_delete="RESTRICT")
    new_parent = ForeignKeyField(Unit, null=True, backref="+", on_delete="RESTRICT")
    old_kind = CharField(max_length=20, null=True)
    new_kind = CharField(max_length=20, null=True)
    created_by = ForeignKeyField(User, null=True, backref="+", on_delete="SET NULL")
    created_at = DateTimeField(default=utcnow)


class UnitChangeLink(CoreModel):
    change = ForeignKeyField(UnitChange, backref="links", on_delete="CASCADE")
    unit = ForeignKeyField(Unit, backref="change_links", on_delete="RESTRICT")
    role = CharField(max_length=4, constraints=[_in("role", ROLES)])

    class Meta:
        indexes = ((("change", "unit", "role"), True), (("unit", "role"), False))


# -- reading the past --------------------------------------------------------------------------

def past_values(day: dt.date) -> dict[int, dict]:
    """unit id → the attributes (name, parent_id, kind) it had on ``day``, for units renamed,
    re-parented or changed in level after that day. Few rows: the query is cheap."""
    changes = list(UnitChange.select().where(UnitChange.kind.in_(SAME_ROW_KINDS)
                                             & (UnitChange.effective_date > day))
                   .order_by(UnitChange.effective_date.desc(), UnitChange.id.desc()))
    if not changes:
        return {}
    subject = {c: u for c, u in UnitChangeLink.select(UnitChangeLink.change, UnitChangeLink.unit)
               .where(UnitChangeLink.change.in_([c.id for c in changes]) & (UnitChangeLink.role == "to")).tuples()}
    out: dict[int, dict] = {}
    # Latest first: the last value written is the one of the earliest change after ``day``.
    for change in changes:
        unit_id = subject.get(change.id)
        if unit_id is None:
            continue
        values = out.setdefault(unit_id, {})
        if change.old_name is not None:
            values["name"] = change.old_name
        if change.kind == "reparent" or (change.kind == "level_change"
                                         and change.old_parent_id != change.new_parent_id):
            values["parent_id"] = change.old_parent_id
        if change.old_kind is not None:
            values["kind"] = change.old_kind
    return out


def name_at(unit: Unit, day: dt.date) -> str:
    return past_values(day).get(unit.id, {}).get("name", unit.name)


def parent_at(unit: Unit, day: dt.date) -> int | None:
    return past_values(day).get(unit.id, {}).get("parent_id", unit.parent_id)
