"""Change counters (core.generations): raised by the writers, read in one query by the screens that
keep a copy of what they count."""

from __future__ import annotations

from decimal import Decimal

import pytest

from core import generations
from core.catalogue import figures as iv
from core.catalogue import indicators as ind
from core.catalogue.indicators import IndicatorGroup
from core.db import transaction
from core.models import Unit

pytestmark = pytest.mark.usefixtures("db_session")


@pytest.fixture
def catalogue():
    IndicatorGroup.create(code="T01", name="Đất đai, dân số", level="province")
    ind.save_indicator({"code": "T0102", "name": "Dân số trung bình", "aggregation": "sum"})


def test_a_counter_never_raised_reads_zero_and_each_bump_adds_one():
    assert generations.read("a", "b") == (0, 0)
    with transaction():
        generations.bump("a")
    with transaction():
        generations.bump("a", "b", "a")  # one raise per key and batch
    assert generations.read("b", "a", "c") == (1, 2, 0)


def test_a_bump_rolled_back_with_its_transaction_leaves_the_counter():
    try:
        with transaction():
            generations.bump("x")
            raise RuntimeError("the business operation failed")
    except RuntimeError:
        pass
    assert generations.read("x") == (0,)


def _figure(unit, value):
    return iv.Figure(code="T0102", unit_id=unit.id, frequency="monthly", year=2026, index=3, kind="actual",
                     value=value)


def test_writing_figures_raises_the_counter_of_each_unit_written_and_only_when_something_changed(catalogue):
    province = Unit.create(code="P", name="Tỉnh", kind="province")
    commune = Unit.create(code="X", name="Xã", kind="commune", parent=province)
    before = generations.read(generations.figures_key(province.id), generations.figures_key(commune.id))
    assert iv.put_values([_figure(commune, Decimal("5"))], source="test") == 1
    after = generations.read(generations.figures_key(province.id), generations.figures_key(commune.id))
    assert after == (before[0], before[1] + 1)
    assert iv.put_values([_figure(commune, Decimal("5.000"))], source="test") == 0  # the same number
    assert generations.read(generations.figures_key(commune.id)) == after[1:]


def test_a_new_indicator_version_raises_the_catalogue_counter(catalogue):
    before, = generations.read(generations.CATALOGUE)
    current = ind.current("T0102")
    ind.save_indicator({"code": "T0102", "name": current.name + " (sửa)"})
    assert generations.read(generations.CATALOGUE) == (before + 1,)
    ind.save_indicator({"code": "T0102", "name": current.name + " (sửa)"})  # nothing differs: no new version
    assert generations.read(generations.CATALOGUE) == (before + 1,)
