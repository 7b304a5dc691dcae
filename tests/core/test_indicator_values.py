"""Figures of indicators: a batch is written whole or not at all, twice changes nothing,
series run across catalogue versions, text indicators keep text."""

from __future__ import annotations

from decimal import Decimal

import pytest

from core.catalogue import indicators as ind
from core.audit import AuditEvent
from core.errors import ValidationError
from core.i18n import core_catalog
from core.catalogue.figures import Figure, IndicatorValue, latest_period, put_values, series, table
from core.catalogue.indicators import IndicatorGroup
from core.models import Unit


@pytest.fixture
def setup(db_session):
    IndicatorGroup.create(code="T01", name="Đất đai, dân số", level="province")
    ind.save_indicator({"code": "T0102", "name": "Dân số trung bình", "aggregation": "sum"})
    ind.save_indicator({"code": "T0103", "name": "Ghi chú tình hình", "value_type": "text"})
    province = Unit.create(code="44", name="Tỉnh Quảng Trị", kind="province")
    return province


def fig(unit, code="T0102", index=1, kind="actual", value="1845335", **kw):
    return Figure(code=code, unit_id=unit.id, frequency="monthly", year=2026, index=index, kind=kind,
                  value=value, **kw)


def test_a_batch_is_written_once_and_a_repeat_changes_nothing(setup):
    batch = [fig(setup), fig(setup, kind="estimate", value="1.845.000".replace(".", "")),
             fig(setup, code="T0103", value="Ổn định")]
    assert put_values(batch, source="test") == 3
    assert put_values(batch, source="test") == 0
    assert IndicatorValue.select().count() == 3
    got = table(setup.id, "monthly", 2026, 1)
    assert got["T0102"] == {"actual": Decimal("1845335"), "estimate": Decimal("1845000")}
    assert got["T0103"] == {"actual": "Ổn định"}
    assert AuditEvent.select().where(AuditEvent.action == "indicator.values.put").count() == 1


def test_a_changed_figure_is_updated_in_place(setup):
    put_values([fig(setup, value="10.5")], source="test")
    assert put_values([fig(setup, value="10.50")], source="test") == 0  # the same number
    assert put_values([fig(setup, value="11")], source="test") == 1
    assert table(setup.id, "monthly", 2026, 1)["T0102"]["actual"] == Decimal("11")


@pytest.mark.parametrize("bad, field, key", [
    (dict(code="T9999"), "code", "values.error.unknown_indicator"),
    (dict(kind="guess"), "kind", "values.error.kind"),
    (dict(index=13), "period", "values.error.period"),
    (dict(value="mười"), "value", "values.error.number"),
    (dict(value="1e40"), "value", "values.error.number"),
    (dict(value="NaN"), "value", "values.error.number"),
])
def test_one_bad_figure_refuses_the_whole_batch(setup, bad, field, key):
    good = fig(setup, index=2)
    with pytest.raises(ValidationError) as info:
        put_values([good, fig(setup, **bad)], source="test")
    assert info.value.errors == {f"2.{field}": key}
    assert IndicatorValue.select().count() == 0


def test_an_unknown_unit_is_refused(setup):
    ghost = Unit(id=99999)
    with pytest.raises(ValidationError) as info:
        put_values([fig(ghost)], source="test")
    assert info.value.errors == {"1.unit": "values.error.unknown_unit"}


def test_a_series_runs_across_catalogue_versions(setup):
    put_values([fig(setup, index=1, value="100")], source="test")
    ind.save_indicator({"code": "T0102", "name": "Dân số trung bình (nghìn người)"})  # version 2
    put_values([fig(setup, index=2, value="101")], source="test")
    assert series("T0102", setup.id, "monthly", "actual") == [(2026, 1, Decimal("100")), (2026, 2, Decimal("101"))]
    versions = {v.index: v.indicator.version for v in IndicatorValue.select()}
    assert versions == {1: 1, 2: 2}
    assert latest_period(setup.id, "monthly") == (2026, 2)


@pytest.mark.parametrize("value, key, params", [
    # SQLite kept this as 100000000000, PostgreSQL as given: refused on both, as a report cell is.
    ("99999999999.999999", "numbers.error.not_exact", {"value": "99999999999.999999", "digits": 15}),
    # Silently rounded to 1.123457 before.
    ("1.1234567", "forms.error.too_many_decimals", {"value": "1.1234567", "decimals": 6}),
])
def test_a_value_the_column_cannot_store_exactly_is_refused_with_the_grids_message(setup, value, key, params):
    with pytest.raises(ValidationError) as info:
        put_values([fig(setup, index=1), fig(setup, index=2, value=value)], source="test")
    assert info.value.errors == {"2.value": key}
    assert info.value.params == params
    message = core_catalog().gettext("en", info.value.errors["2.value"], **info.value.params)
    assert value in message and "{" not in message
    assert IndicatorValue.select().count() == 0


def test_what_the_column_stores_exactly_reads_back_the_same_on_every_database(setup):
    exact = {1: "9999999999.99999", 2: "999999999999999999", 3: "-0.000001", 4: Decimal("1250.5")}
    put_values([fig(setup, index=i, value=v) for i, v in exact.items()], source="test")
    stored = {i: table(setup.id, "monthly", 2026, i)["T0102"]["actual"] for i in exact}
    assert stored == {i: Decimal(v) for i, v in exact.items()}
    assert put_values([fig(setup, index=i, value=v) for i, v in exact.items()], source="test") == 0
