"""Issue 12 item 24: ``core.db.Prepared`` (a SELECT compiled once, run with new values) answers
exactly what the same peewee query answers, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

from core.db import Prepared
from core.models import Unit


def _units():
    province = Unit.create(code="44", name="Tỉnh Quảng Trị", kind="province", valid_from=dt.date(2020, 1, 1))
    giolinh = Unit.create(code="464", name="Huyện Gio Linh", kind="district", parent=province)
    camlo = Unit.create(code="465", name="Huyện Cam Lộ", kind="district", parent=province)
    return province, giolinh, camlo


def test_a_prepared_query_answers_like_peewee_with_each_new_value(db_session):
    province, giolinh, camlo = _units()
    builds = []
    by_id = Prepared(lambda p: (builds.append(1), Unit.select().where(Unit.id == p.unit_id).limit(1))[1])
    for unit in (province, giolinh, camlo):
        found = by_id.first(unit_id=unit.id)
        assert isinstance(found, Unit) and (found.id, found.name, found.parent_id) == (unit.id, unit.name,
                                                                                     unit.parent_id)
    assert by_id.first(unit_id=camlo.id + 100) is None
    assert len(builds) == 1  # compiled once, run four times
    assert by_id.first(unit_id=province.id).valid_from == dt.date(2020, 1, 1)  # the field's own conversion


def test_a_tuple_value_gives_one_placeholder_per_item_and_an_empty_one_matches_nothing(db_session):
    province, giolinh, camlo = _units()
    by_codes = Prepared(lambda p: Unit.select(Unit.code, Unit.parent).where(Unit.code.in_(p.codes))
                        .order_by(Unit.code).tuples())
    assert list(by_codes.run(codes=("465", "44"))) == [("44", None), ("465", province.id)]
    assert list(by_codes.run(codes=("464",))) == [("464", province.id)]
    assert list(by_codes.run(codes=["464", "465", "999"])) == [("464", province.id), ("465", province.id)]
    assert list(by_codes.run(codes=())) == []
    # The same as peewee builds it each time.
    assert list(by_codes.run(codes=("44", "464"))) == list(
        Unit.select(Unit.code, Unit.parent).where(Unit.code.in_(("44", "464"))).order_by(Unit.code).tuples())


def test_values_are_converted_by_the_compared_field(db_session):
    province, giolinh, camlo = _units()
    # A number given for a text column is compared as text, as peewee does (CharField.db_value).
    by_code = Prepared(lambda p: Unit.select(Unit.name).where(Unit.code == p.code).tuples())
    assert list(by_code.run(code=44)) == [("Tỉnh Quảng Trị",)]
    since = Prepared(lambda p: Unit.select(Unit.code).where(Unit.valid_from.between(p.first, p.last)).tuples())
    assert list(since.run(first=dt.date(2019, 1, 1), last=dt.date(2021, 1, 1))) == [("44",)]
    assert list(since.run(first=dt.date(2021, 1, 1), last=dt.date(2022, 1, 1))) == []


def test_the_rows_reading_is_worked_out_once_and_each_run_reads_its_own_rows(db_session, monkeypatch):
    import peewee

    province, giolinh, camlo = _units()
    worked_out = []
    for wrapper in (peewee.ModelCursorWrapper, peewee.ModelTupleCursorWrapper, peewee.ModelDictCursorWrapper):
        original = wrapper.initialize
        monkeypatch.setattr(wrapper, "initialize",
                            lambda self, original=original: (worked_out.append(type(self)), original(self))[1])
    parent = Unit.alias()
    with_parent = Prepared(lambda p: Unit.select(Unit, parent).join(parent, peewee.JOIN.LEFT_OUTER,
                                                                    on=(Unit.parent == parent.id))
                           .where(Unit.code.in_(p.codes)).order_by(Unit.code))
    as_dicts = Prepared(lambda p: Unit.select(Unit.code, Unit.valid_from).where(Unit.code == p.code).dicts())
    for _ in range(3):
        rows = list(with_parent.run(codes=("44", "464", "465")))
        assert [(u.code, u.parent.code if u.parent_id else None) for u in rows] == [
            ("44", None), ("464", "44"), ("465", "44")]
        assert list(with_parent.run(codes=("465",)))[0].name == "Huyện Cam Lộ"  # a run reads its own rows
        assert with_parent.first(codes=("999",)) is None  # none at all
        assert as_dicts.first(code="44") == {"code": "44", "valid_from": dt.date(2020, 1, 1)}
    # Once per compiled text (two tuple sizes and the dicts' query), not once per run.
    assert len(worked_out) == 3


def test_a_compiled_write_touches_the_rows_its_values_name(db_session):
    province, giolinh, camlo = _units()
    rename = Prepared(lambda p: Unit.update(name=p.name).where(Unit.code.in_(p.codes)))
    assert rename.execute(name="Huyện Gio Linh (cũ)", codes=("464", "465")) == 2
    assert rename.execute(name="Không có", codes=("999",)) == 0
    assert [u.name for u in Unit.select().where(Unit.code.in_(("464", "465"))).order_by(Unit.code)] == [
        "Huyện Gio Linh (cũ)", "Huyện Gio Linh (cũ)"]
    # One row per item of the tuple values, as insert_many builds it each time.
    add = Prepared(lambda p: Unit.insert_many([{Unit.code: p.codes[i], Unit.name: p.names[i], Unit.kind: "commune",
                                                Unit.parent: p.parent} for i in range(len(p.codes))]).as_rowcount())
    assert add.execute(codes=("X1", "X2", "X3"), names=("Xã Một", "Xã Hai", "Xã Ba"), parent=giolinh.id) == 3
    assert add.execute(codes=("X4",), names=("Xã Bốn",), parent=camlo.id) == 1
    assert sorted((u.code, u.name, u.parent_id) for u in Unit.select().where(Unit.code.startswith("X"))) == [
        ("X1", "Xã Một", giolinh.id), ("X2", "Xã Hai", giolinh.id), ("X3", "Xã Ba", giolinh.id),
        ("X4", "Xã Bốn", camlo.id)]
