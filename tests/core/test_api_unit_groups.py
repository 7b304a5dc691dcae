"""Unit groups in the plugin API (issue 15): a plugin lists the groups it may offer and reads a
group's members on a day, so a scope given by group follows the group as the core's screens change
it and as units are merged away. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest

import core.api
from core.api import UnitGroupInfo, unit_group_members, unit_groups
from core.models import Unit
from core.regimes import regimes as rg


@pytest.fixture
def groups(db_session):
    province = Unit.create(code="44", name="Tỉnh Quảng Trị", kind="province")
    department = Unit.create(code="44.SNNMT", name="Sở Nông nghiệp và Môi trường", kind="department", parent=province)
    gio_linh = Unit.create(code="44.GIOLINH", name="Xã Gio Linh", kind="commune", parent=province)
    # Merged into Cam Lộ on 1 July 2025 (the 2025 reorganisation): a member until then only.
    cam_thanh = Unit.create(code="44.CAMTHANH", name="Xã Cam Thành", kind="commune", parent=province,
                            valid_to=dt.date(2025, 6, 30))
    cam_lo = Unit.create(code="44.CAMLO", name="Xã Cam Lộ", kind="commune", parent=province,
                         valid_from=dt.date(2025, 7, 1))
    coast = rg.save_group("XA_VEN_BIEN", "Các xã ven biển", [gio_linh.id, cam_thanh.id, cam_lo.id],
                          owner_id=department.id)
    followed = rg.save_group("XA_SO_NN", "Các xã Sở Nông nghiệp theo dõi", [gio_linh.id])
    return {"department": department, "gio_linh": gio_linh, "cam_thanh": cam_thanh, "cam_lo": cam_lo,
            "coast": coast, "followed": followed}


def test_every_group_is_listed_by_name_with_its_owner(groups):
    assert unit_groups() == [
        UnitGroupInfo(groups["followed"].id, "XA_SO_NN", "Các xã Sở Nông nghiệp theo dõi", None),
        UnitGroupInfo(groups["coast"].id, "XA_VEN_BIEN", "Các xã ven biển", groups["department"].id),
    ]


def test_the_members_are_the_units_in_existence_on_the_day(groups):
    coast = groups["coast"].id
    assert unit_group_members(coast, dt.date(2025, 6, 30)) == frozenset({groups["gio_linh"].id, groups["cam_thanh"].id})
    assert unit_group_members(coast, dt.date(2025, 7, 1)) == frozenset({groups["gio_linh"].id, groups["cam_lo"].id})


def test_the_day_defaults_to_today_in_the_instances_zone(groups, frozen_clock):
    # 30 June 2025, 17:30 UTC is already 1 July in Vietnam: Cam Lộ, not Cam Thành.
    frozen_clock(dt.datetime(2025, 6, 30, 17, 30))
    assert unit_group_members(groups["coast"].id) == frozenset({groups["gio_linh"].id, groups["cam_lo"].id})


def test_the_members_follow_the_group_as_it_changes(groups):
    day = dt.date(2026, 1, 1)
    followed = groups["followed"]
    assert unit_group_members(followed.id, day) == frozenset({groups["gio_linh"].id})
    rg.write_group(followed.id, "XA_SO_NN", followed.name, [groups["gio_linh"].id, groups["cam_lo"].id], allowed=None)
    assert unit_group_members(followed.id, day) == frozenset({groups["gio_linh"].id, groups["cam_lo"].id})
    rg.delete_group(followed.id, allowed=None)
    assert unit_group_members(followed.id, day) == frozenset()
    assert [g.code for g in unit_groups()] == ["XA_VEN_BIEN"]


@pytest.mark.parametrize("group_id", [987654, 0, -1, "abc", "", None, True, 2**70])
def test_an_unknown_group_has_no_member(groups, group_id):
    assert unit_group_members(group_id) == frozenset()


def test_a_group_id_as_a_form_sends_it_is_read(groups):
    assert unit_group_members(str(groups["followed"].id), dt.date(2026, 1, 1)) == frozenset({groups["gio_linh"].id})


def test_the_groups_are_read_only_through_the_api():
    # A plugin reads groups; making and changing them stays on the core's screens.
    exported = set(core.api.__all__)
    assert {"unit_groups", "unit_group_members", "UnitGroupInfo"} <= exported
    assert not [name for name in exported if "unit_group" in name and not name.startswith("unit_group")]
    with pytest.raises(AttributeError):
        UnitGroupInfo(1, "X", "X", None).name = "Y"  # frozen
