"""Unit group screens (issue 4): a regime editor creates a group of units (nhóm đơn vị) from the
units they may see, changes its members, is told per field what is wrong, cannot reach units or
groups outside their view, and cannot delete a group a regime uses."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest

from tests.conftest import HX, csrf_from


def _units() -> dict:
    from core.db import db
    from core.models import Unit

    with db.connection_context():
        root = Unit.get_or_none(Unit.code == "ROOT") or Unit.create(code="ROOT", name="Tỉnh Quảng Trị",
                                                                   kind="province")
        made = {"ROOT": root.id}
        for code, name, kind, valid_to in (
                ("STC", "Sở Tài chính", "department", None), ("SYT", "Sở Y tế", "department", None),
                ("AT", "Xã Ái Tử", "commune", None), ("CL", "Xã Cam Lộ", "commune", None),
                ("CU", "Xã Cũ Đã Nhập", "commune", dt.date(2025, 6, 30))):
            unit = Unit.get_or_none(Unit.code == code) or Unit.create(code=code, name=name, kind=kind, parent=root,
                                                                     valid_to=valid_to)
            made[code] = unit.id
        made["KHAC"] = (Unit.get_or_none(Unit.code == "KHAC")
                        or Unit.create(code="KHAC", name="Tỉnh Khác", kind="province")).id
    return made


def grant(user, role: str, unit_code: str):
    from core.accounts.access import Grant, Role
    from core.db import db
    from core.models import Unit

    with db.connection_context():
        Grant.create(user=user.id, role=Role.get(Role.code == role), unit=Unit.get(Unit.code == unit_code))


def log_in(client, user, password) -> str:
    client.cookies.clear()
    page = client.get("/login")
    response = client.post("/login", data={"username": user.username, "password": password,
                                           "csrf_token": csrf_from(page.text)}, follow_redirects=False)
    assert response.status_code == 303
    return csrf_from(client.get("/").text)


def members(code: str) -> set[str]:
    from core.db import db
    from core.models import Unit
    from core.regimes.regimes import UnitGroup, UnitGroupMember

    with db.connection_context():
        group = UnitGroup.get_or_none(UnitGroup.code == code)
        if group is None:
            return set()
        return {u.code for u in Unit.select().join(UnitGroupMember, on=(UnitGroupMember.unit == Unit.id))
                .where(UnitGroupMember.group == group)}


def group_id(code: str) -> int:
    from core.db import db
    from core.regimes.regimes import UnitGroup

    with db.connection_context():
        return UnitGroup.get(UnitGroup.code == code).id


def group_count() -> int:
    from core.db import db
    from core.regimes.regimes import UnitGroup

    with db.connection_context():
        return UnitGroup.select().count()


def events(action: str) -> list:
    from core.audit import AuditEvent
    from core.db import db

    with db.connection_context():
        return list(AuditEvent.select().where(AuditEvent.action == action).order_by(AuditEvent.id))


@pytest.fixture
def admin(client, login):
    login(is_admin=True)
    units = _units()
    return units, csrf_from(client.get("/unit-groups").text)


def save(client, token, units, path="/unit-groups/new", *, code="UBND_XA", name="UBND cấp xã", codes=("AT", "CL"),
         **extra):
    data = {"code": code, "name": name, "unit_ids": [str(units[c]) for c in codes], "csrf_token": token,
            "action": "save", **extra}
    return client.post(path, data=data, follow_redirects=False)


def test_an_administrator_creates_and_changes_a_group(client, admin):
    units, token = admin
    listing = client.get("/unit-groups")
    assert listing.status_code == 200 and "Tạo nhóm" in listing.text and "Nhóm đơn vị" in listing.text
    form = client.get("/unit-groups/new")
    assert form.status_code == 200
    # Today's units, grouped by parent and kind; a former commune is not offered.
    assert "Tỉnh Quảng Trị — Xã, phường, đặc khu" in form.text and "Xã Cam Lộ" in form.text
    assert "Xã Cũ Đã Nhập" not in form.text
    created = save(client, token, units)
    assert created.status_code == 303 and created.headers["location"].startswith("/unit-groups?done=created")
    assert members("UBND_XA") == {"AT", "CL"}
    page = client.get(created.headers["location"])
    assert "Đã tạo nhóm đơn vị." in page.text and "UBND cấp xã" in page.text and "2 đơn vị" in page.text
    assert "Chưa dùng" in page.text
    gid = group_id("UBND_XA")
    edit = client.get(f"/unit-groups/{gid}")
    assert edit.status_code == 200 and 'value="UBND_XA"' in edit.text
    assert re.search(rf'value="{units["AT"]}" checked', edit.text)
    assert not re.search(rf'value="{units["STC"]}" checked', edit.text)
    changed = save(client, token, units, f"/unit-groups/{gid}", code="CAP_XA", name="Các xã", codes=("CL", "STC"))
    assert changed.status_code == 303 and "done=saved" in changed.headers["location"]
    assert members("CAP_XA") == {"CL", "STC"} and members("UBND_XA") == set()
    found = events("regime.group")
    assert len(found) == 2
    details = json.loads(found[-1].details) if isinstance(found[-1].details, str) else found[-1].details
    assert details["added"] == [units["STC"]] and details["removed"] == [units["AT"]]
    assert details["before"] == {"code": "UBND_XA", "name": "UBND cấp xã"}


def test_the_picker_filters_without_diacritics_and_keeps_the_ticks(client, admin):
    units, token = admin
    base = {"code": "X1", "name": "Nhóm", "unit_ids": [str(units["AT"])], "csrf_token": token}
    # Without JavaScript: the filter is a submit button; the whole page comes back, nothing written.
    page = client.post("/unit-groups/new", data={**base, "q": "cam lo", "action": "filter"})
    assert page.status_code == 200 and "<html" in page.text
    assert "Xã Cam Lộ" in page.text and "Xã Ái Tử" not in page.text and "Sở Y tế" not in page.text
    assert f'<input type="hidden" name="unit_ids" value="{units["AT"]}">' in page.text  # the tick kept
    assert 'value="X1"' in page.text and group_count() == 0
    # With htmx only the picker comes back.
    fragment = client.post("/unit-groups/new", data={**base, "q": "so", "action": "filter"}, headers=HX)
    assert fragment.status_code == 200 and "<html" not in fragment.text and 'id="ug-picker"' in fragment.text
    assert "Sở Tài chính" in fragment.text and "Xã Cam Lộ" not in fragment.text
    # "Choose all communes" ticks every commune shown; "unchoose" takes them off again.
    every = client.post("/unit-groups/new", data={**base, "q": "", "action": "add:commune"}, headers=HX)
    assert re.search(rf'value="{units["CL"]}" checked', every.text)
    assert re.search(rf'value="{units["AT"]}" checked', every.text)
    assert not re.search(rf'value="{units["STC"]}" checked', every.text)
    none = client.post("/unit-groups/new", data={**base, "unit_ids": [str(units["AT"]), str(units["STC"])],
                                                 "action": "clear:commune"}, headers=HX)
    assert not re.search(rf'value="{units["AT"]}" checked', none.text)
    assert re.search(rf'value="{units["STC"]}" checked', none.text)
    assert group_count() == 0


@pytest.mark.parametrize("change, field_message", [
    ({"code": ""}, "Vui lòng nhập mã nhóm."),
    ({"code": "có dấu"}, "Mã nhóm chỉ gồm 2–40 ký tự"),
    ({"code": "SO_NGANH"}, "Mã nhóm này đã được dùng cho một nhóm khác."),
    ({"code": "so_nganh"}, "Mã nhóm này đã được dùng cho một nhóm khác."),
    ({"name": "   "}, "Vui lòng nhập tên nhóm."),
    ({"codes": ()}, "Vui lòng chọn ít nhất một đơn vị."),
    ({"codes": ("AT", "CU")}, "Có đơn vị được chọn không còn hoạt động."),
    ({"unit_ids": ["abc"]}, "Có đơn vị được chọn không tồn tại."),
    ({"unit_ids": ["999999"]}, "Có đơn vị được chọn không còn hoạt động."),
])
def test_bad_input_is_refused_per_field_and_nothing_is_written(client, admin, change, field_message):
    units, token = admin
    assert save(client, token, units, code="SO_NGANH", name="Các sở", codes=("STC", "SYT")).status_code == 303
    before = events("regime.group")
    change = dict(change)
    kwargs = {k: change.pop(k) for k in ("code", "name", "codes") if k in change}
    name_changed = "name" in kwargs
    response = save(client, token, units, name=kwargs.pop("name", "Nhóm mới có tên"), **kwargs, **change)
    assert response.status_code == 422
    assert field_message in response.text and "Chưa lưu được" in response.text
    assert 'aria-invalid="true"' in response.text or "ug-members-error" in response.text
    assert group_count() == 1 and len(events("regime.group")) == len(before)
    if not name_changed:
        assert 'value="Nhóm mới có tên"' in response.text  # what was typed is kept


def test_the_messages_in_english(client, admin):
    units, token = admin
    client.post("/lang", data={"lang": "en", "next": "/", "csrf_token": token})
    response = save(client, token, units, code="", name="", codes=())
    assert response.status_code == 422
    for text in ("Please enter a group code.", "Please enter a group name.", "Please choose at least one unit."):
        assert text in response.text


def test_a_user_groups_only_units_they_may_see(client, make_user):
    admin_user, admin_pw = make_user(is_admin=True)
    units = _units()
    editor, editor_pw = make_user(unit_code="AT")
    grant(editor, "regime_editor", "AT")
    token = log_in(client, admin_user, admin_pw)
    assert save(client, token, units, code="UBND_XA", codes=("AT", "CL")).status_code == 303
    assert save(client, token, units, code="AI_TU", name="Xã Ái Tử", codes=("AT",)).status_code == 303
    wide, own = group_id("UBND_XA"), group_id("AI_TU")

    token = log_in(client, editor, editor_pw)
    form = client.get("/unit-groups/new")
    assert form.status_code == 200 and "Xã Ái Tử" in form.text and "Xã Cam Lộ" not in form.text
    refused = save(client, token, units, code="HAI_XA", codes=("AT", "CL"))
    assert refused.status_code == 422 and "nằm ngoài phạm vi bạn được xem" in refused.text
    assert members("HAI_XA") == set()
    # A group with a member the user may not see is neither listed nor reachable.
    listing = client.get("/unit-groups")
    assert "AI_TU" in listing.text and "UBND_XA" not in listing.text
    assert client.get(f"/unit-groups/{wide}").status_code == 404
    assert save(client, token, units, f"/unit-groups/{wide}", codes=("AT",)).status_code == 404
    assert client.post(f"/unit-groups/{wide}/delete", data={"csrf_token": token}).status_code == 404
    assert client.get("/unit-groups/999999").status_code == 404
    assert members("UBND_XA") == {"AT", "CL"}
    # Their own group they may change.
    renamed = save(client, token, units, f"/unit-groups/{own}", code="AI_TU", name="Ái Tử", codes=("AT",))
    assert renamed.status_code == 303


def test_a_group_a_regime_uses_cannot_be_deleted(client, admin):
    from core.db import db
    from core.regimes.regimes import Regime

    units, token = admin
    assert save(client, token, units, code="UBND_XA", codes=("AT", "CL")).status_code == 303
    assert save(client, token, units, code="TAM", name="Nhóm tạm", codes=("AT",)).status_code == 303
    used, spare = group_id("UBND_XA"), group_id("TAM")
    with db.connection_context():
        Regime.create(code="KTXH.THANG", version=1, regime_type="periodic", name="Báo cáo kinh tế - xã hội tháng",
                      status="issued", issuing_unit=units["ROOT"], receiving_unit=units["ROOT"],
                      units_selector=json.dumps({"group_ids": [used]}))
    listing = client.get("/unit-groups")
    assert "Báo cáo kinh tế - xã hội tháng" in listing.text
    page = client.get(f"/unit-groups/{used}")
    assert "Không xóa được nhóm này" in page.text and f"/unit-groups/{used}/delete" not in page.text
    refused = client.post(f"/unit-groups/{used}/delete", data={"csrf_token": token})
    assert refused.status_code == 422
    assert "đang được chế độ báo cáo sử dụng" in refused.text and "KTXH.THANG" in refused.text
    assert members("UBND_XA") == {"AT", "CL"} and events("regime.group_delete") == []
    deleted = client.post(f"/unit-groups/{spare}/delete", data={"csrf_token": token}, follow_redirects=False)
    assert deleted.status_code == 303 and "done=deleted" in deleted.headers["location"]
    assert group_count() == 1 and len(events("regime.group_delete")) == 1
    assert "Đã xóa nhóm đơn vị." in client.get(deleted.headers["location"]).text
    assert client.post(f"/unit-groups/{spare}/delete", data={"csrf_token": token}).status_code == 404


def test_without_the_regime_edit_right_the_screens_are_forbidden(client, make_user):
    units = _units()
    viewer, viewer_pw = make_user(unit_code="SYT")
    grant(viewer, "viewer", "SYT")
    token = log_in(client, viewer, viewer_pw)
    assert "/unit-groups" not in client.get("/").text  # no menu item
    assert client.get("/unit-groups").status_code == 403
    assert client.get("/unit-groups/new").status_code == 403
    assert save(client, token, units, codes=("SYT",)).status_code == 403
    assert group_count() == 0


def test_the_menu_offers_the_screen_to_a_regime_editor(client, make_user):
    _units()
    editor, editor_pw = make_user(unit_code="STC")
    grant(editor, "regime_editor", "STC")
    log_in(client, editor, editor_pw)
    home = client.get("/")
    assert 'href="/unit-groups"' in home.text and "Nhóm đơn vị" in home.text
    assert client.get("/unit-groups").status_code == 200
