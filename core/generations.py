"""Change counters: a number that grows with every write to a set of rows.

A process keeps some derived data between requests (a unit's figures turned into numbers, the
catalogue's summed indicators) because building it again costs more than the request itself. To
know its copy is still good it used to ask the database for an aggregate over the same rows; a
counter raised by the writer, in the writer's transaction, answers the same question with one
primary-key read. Every writer of those rows goes through the one service that raises the counter
(``core.catalogue.figures.put_values``, ``core.catalogue.indicators.save_indicator``); a copy made
from rows changed behind the services' back (hand-written SQL, a restored backup) lasts until the
process restarts.
"""

from __future__ import annotations

from peewee import BigIntegerField, CharField

from core.db import CoreModel, Prepared

CATALOGUE = "catalogue"


def figures_key(unit_id: int) -> str:
    return f"figures:{unit_id}"


class Generation(CoreModel):
    key = CharField(max_length=64, primary_key=True)
    value = BigIntegerField(default=0)


def bump(*keys: str) -> None:
    """Raise each counter by one, in the caller's transaction (a missing row starts at 1): one
    statement for all of them (an acceptance raises a counter per unit of its chain)."""
    keys = sorted(set(keys))  # one order for every writer: two batches never wait on each other in a cycle
    if not keys:
        return
    (Generation.insert_many([{"key": key, "value": 1} for key in keys])
     .on_conflict(conflict_target=[Generation.key], update={Generation.value: Generation.value + 1})
     .execute())


_READ = Prepared(lambda p: Generation.select(Generation.key, Generation.value)
                 .where(Generation.key.in_(p.keys)).tuples())


def read(*keys: str) -> tuple[int, ...]:
    """The counters' values, in the order asked (0 for one never raised), in one query."""
    found = dict(_READ.run(keys=keys))
    return tuple(found.get(key, 0) for key in keys)
