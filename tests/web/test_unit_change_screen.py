"""Recording a unit change from the browser (issue 4): merge, split, rename, re-parent,
change of level, dissolve through /units/{id}/change; the tree as at the day before and
the day after shows what held; rights, bad input and former units."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from starlette.testclient import TestClient

from core.accounts import login as accounts
from core.units import tree as units
from core.accounts.access import Grant, Role, RolePermission
from core.audit import AuditEvent
from core.db import db
from core.models import Unit
from core.units.changes import UnitChange
from tests.conftest import HX, csrf_from
from tests.fixtures.plugins import log_in

BASIS = {"basis_number": "Nghị quyết 99/NQ-HĐND", "basis_date": "15/12/2026", "basis_issuer": "HĐND tỉnh"}


@pytest.fixture
def site(make_app):
    """Tỉnh Thử (T) with Xã A, Xã B, Xã C, Xã E and Huyện D (with Xã Đ); a system administrator,
    an editor at Xã A (core.unit.view + core.unit.edit there), a viewer at the province."""
    app = make_app()
    with TestClient(app) as client:
        with db.connection_context():
            province = Unit.create(code="T", name="Tỉnh Thử", kind="province")
            for code, name in (("XA", "Xã A"), ("XB", "Xã B"), ("XC", "Xã C"), ("XE", "Xã E")):
                Unit.create(code=code, name=name, kind="commune", parent=province)
            district = Unit.create(code="D", name="Huyện D", kind="district", parent=province)
            Unit.create(code="XD", name="Xã Đ", kind="commune", parent=district)
            ids = {u.code: u.id for u in Unit.select(Unit.id, Unit.code)}
            editor_role = Role.create(code="unit_editor", name="Sửa đơn vị")
            for code in ("core.unit.view", "core.unit.edit"):
                RolePermission.create(role=editor_role, code=code)
            passwords, people = {}, {}
            for key, unit_code, is_admin, role in (("admin", "T", True, None), ("editor", "XA", False, editor_role),
                                                   ("viewer", "T", False, Role.get(Role.code == "viewer"))):
                passwords[key] = accounts.random_password()
                user = accounts.create_user(f"u_{key}", f"Người {key}", passwords[key], Unit.get_by_id(ids[unit_code]),
                                            is_admin=is_admin)
                if role:
                    Grant.create(user=user, role=role, unit=user.unit_id)
                people[key] = user

        def as_user(key):
            client.cookies.clear()
            log_in(client, people[key], passwords[key])
            return client

        yield as_user, ids


def send(client, unit_id, headers=None, **fields):
    page = client.get(f"/units/{unit_id}/change")
    assert page.status_code == 200
    return client.post(f"/units/{unit_id}/change", data={"csrf_token": csrf_from(page.text), **BASIS, **fields},
                       headers=headers or {}, follow_redirects=False)


def tree_names(client, day: str) -> set[str]:
    page = client.get("/units", params={"at": day})
    assert page.status_code == 200
    return set(re.findall(r'href="/units/\d+">([^<]+)</a>', page.text))


def changes() -> int:
    with db.connection_context():
        return UnitChange.select().count()


def test_merge_into_a_new_unit_with_its_preview_then_the_tree_before_and_after(site):
    as_user, ids = site
    client = as_user("admin")
    page = client.get(f"/units/{ids['XA']}")
    assert "Ghi nhận thay đổi" in page.text and f'href="/units/{ids["XA"]}/change"' in page.text
    form = client.get(f"/units/{ids['XA']}/change")
    for label in ("Sáp nhập vào đơn vị khác", "Chia tách", "Đổi tên", "Chuyển đơn vị cấp trên", "Thay đổi cấp",
                  "Giải thể"):
        assert label in form.text
    fields = {"kind": "merge", "effective_date": "01/01/2027", "merge_with": [str(ids["XB"])], "target_mode": "new",
              "new_code": "XN", "new_name": "Xã Mới", "new_kind": "commune", "new_parent": str(ids["T"])}
    preview = client.post(f"/units/{ids['XA']}/change/preview",
                          data={"csrf_token": csrf_from(form.text), **BASIS, **fields}, headers=HX)
    assert preview.status_code == 200 and "<html" not in preview.text
    assert "Từ ngày 01/01/2027, Xã A và Xã B thôi hoạt động; Xã Mới được thành lập." in preview.text
    assert changes() == 0  # a preview writes nothing
    done = send(client, ids["XA"], **fields)
    assert done.status_code == 303 and done.headers["location"] == f"/units/{ids['XA']}/history?done=change"
    history = client.get(done.headers["location"])
    assert "Đã ghi nhận thay đổi đơn vị." in history.text
    assert "Nghị quyết 99/NQ-HĐND ngày 15/12/2026 của HĐND tỉnh" in history.text
    before, after = tree_names(client, "31/12/2026"), tree_names(client, "01/01/2027")
    assert {"Xã A", "Xã B"} <= before and "Xã Mới" not in before
    assert "Xã Mới" in after and not {"Xã A", "Xã B"} & after
    with db.connection_context():
        new = Unit.get(Unit.code == "XN")
        assert new.valid_from == dt.date(2027, 1, 1) and new.parent_id == ids["T"]
        assert Unit.get_by_id(ids["XB"]).valid_to == dt.date(2026, 12, 31)
        assert AuditEvent.select().where(AuditEvent.action == "unit.change").count() == 1
    # A former unit cannot be changed any more (once the merge is in the past).
    with db.connection_context():
        Unit.update(valid_to=dt.date.today() - dt.timedelta(days=1)).where(Unit.id == ids["XA"]).execute()
    former = client.get(f"/units/{ids['XA']}/change")
    assert former.status_code == 200 and "không thể ghi nhận thay đổi mới" in former.text
    assert 'name="kind"' not in former.text
    refused = client.post(f"/units/{ids['XA']}/change", data={"csrf_token": csrf_from(former.text), **BASIS,
                                                              "kind": "rename", "effective_date": "01/01/2030",
                                                              "rename_name": "Xã X"})
    assert refused.status_code == 409 and changes() == 1


def test_rename_shows_the_old_name_before_and_the_new_one_after(site):
    as_user, ids = site
    client = as_user("admin")
    done = send(client, ids["XC"], kind="rename", effective_date="01/03/2027", rename_name="Phường C",
                # Fields of other kinds are ignored (the form without JavaScript sends them all).
                new_code="ZZ", new_name="Không dùng", parent=str(ids["D"]))
    assert done.status_code == 303
    assert "Xã C" in tree_names(client, "28/02/2027") and "Phường C" not in tree_names(client, "28/02/2027")
    assert "Phường C" in tree_names(client, "2027-03-01")
    with db.connection_context():
        assert not Unit.select().where(Unit.code == "ZZ").exists()
        assert Unit.get_by_id(ids["XC"]).parent_id == ids["T"]


def test_reparent_refuses_a_cycle_keeps_the_input_then_moves_the_unit(site):
    as_user, ids = site
    client = as_user("admin")
    cycle = send(client, ids["D"], kind="reparent", effective_date="01/02/2027", parent=str(ids["XD"]), note="Thử")
    assert cycle.status_code == 422 and changes() == 0
    assert "Không thể đặt đơn vị vào dưới chính nó" in cycle.text
    assert 'value="01/02/2027"' in cycle.text and 'value="Nghị quyết 99/NQ-HĐND"' in cycle.text
    assert ">Thử</textarea>" in cycle.text
    moved = send(client, ids["XD"], kind="reparent", effective_date="01/02/2027", parent=str(ids["T"]))
    assert moved.status_code == 303
    with db.connection_context():
        flat = {n.unit.id: n for n in units.flatten(units.tree(at=dt.date(2027, 1, 31)))}
        assert flat[ids["XD"]].depth == 2  # still under Huyện D the day before
        flat = {n.unit.id: n for n in units.flatten(units.tree(at=dt.date(2027, 2, 1)))}
        assert flat[ids["XD"]].depth == 1  # directly under the province from that day


def test_dissolve_and_a_unit_with_children_refused(site):
    as_user, ids = site
    client = as_user("admin")
    refused = send(client, ids["D"], kind="dissolve", effective_date="01/04/2027")
    assert refused.status_code == 422 and "còn đơn vị trực thuộc" in refused.text and changes() == 0
    done = send(client, ids["XE"], kind="dissolve", effective_date="01/04/2027")
    assert done.status_code == 303
    assert "Xã E" in tree_names(client, "31/03/2027") and "Xã E" not in tree_names(client, "01/04/2027")


def test_split_and_change_of_level(site):
    as_user, ids = site
    client = as_user("admin")
    one_row = send(client, ids["XB"], kind="split", effective_date="01/05/2027", split_parent=str(ids["T"]),
                   split_code=["XB1", ""], split_name=["Xã B Một", ""], split_kind=["commune", "commune"])
    assert one_row.status_code == 422 and "ít nhất hai đơn vị mới" in one_row.text and changes() == 0
    split = send(client, ids["XB"], kind="split", effective_date="01/05/2027", split_parent=str(ids["T"]),
                 split_code=["XB1", "XB2"], split_name=["Xã B Một", "Xã B Hai"], split_kind=["commune", "commune"])
    assert split.status_code == 303
    after = tree_names(client, "01/05/2027")
    assert {"Xã B Một", "Xã B Hai"} <= after and "Xã B" not in after
    level = send(client, ids["XC"], kind="level_change", effective_date="01/05/2027", level_kind="department")
    assert level.status_code == 303
    with db.connection_context():
        assert Unit.get_by_id(ids["XC"]).kind == "department"


def test_a_bad_date_or_no_kind_writes_nothing_and_says_why(site):
    as_user, ids = site
    client = as_user("admin")
    bad = send(client, ids["XC"], kind="rename", effective_date="31/02/2027", rename_name="Phường C")
    assert bad.status_code == 422 and "Ngày không hợp lệ" in bad.text and 'value="31/02/2027"' in bad.text
    assert 'value="Phường C"' in bad.text and 'aria-invalid="true"' in bad.text
    empty = send(client, ids["XC"], kind="rename", effective_date="", rename_name="")
    assert empty.status_code == 422 and "Cần nhập ngày có hiệu lực" in empty.text
    none = send(client, ids["XC"], effective_date="01/01/2027")
    assert none.status_code == 422 and "Hãy chọn loại thay đổi" in none.text
    no_basis = send(client, ids["XC"], kind="rename", effective_date="01/01/2027", rename_name="Phường C",
                    basis_number="")
    assert no_basis.status_code == 422 and "Cần ghi căn cứ pháp lý" in no_basis.text
    assert changes() == 0
    client.post("/lang", data={"lang": "en", "next": "/", "csrf_token": csrf_from(bad.text)})
    english = send(client, ids["XC"], kind="rename", effective_date="2027-13-01", rename_name="Phường C")
    assert english.status_code == 422 and "Not a valid date" in english.text


def test_htmx_shows_only_the_chosen_kind_and_without_javascript_every_kind_shows(site):
    as_user, ids = site
    client = as_user("admin")
    full = client.get(f"/units/{ids['XA']}/change")
    assert all(f'data-kind="{k}"' in full.text for k in ("merge", "split", "rename", "reparent", "level_change",
                                                         "dissolve"))
    partial = client.post(f"/units/{ids['XA']}/change/form", headers=HX,
                          data={"csrf_token": csrf_from(full.text), "kind": "rename", "rename_name": "Xã Á"})
    assert partial.status_code == 200 and "<html" not in partial.text
    assert 'data-kind="rename"' in partial.text and 'data-kind="merge"' not in partial.text
    assert 'value="Xã Á"' in partial.text and "đổi tên thành Xã Á" in partial.text
    existing = client.post(f"/units/{ids['XA']}/change/form", headers=HX,
                           data={"csrf_token": csrf_from(full.text), "kind": "merge", "target_mode": "existing"})
    assert 'id="uc-target"' in existing.text and 'id="uc-new_code"' not in existing.text


def test_merge_into_an_existing_unit(site):
    as_user, ids = site
    client = as_user("admin")
    done = send(client, ids["XE"], kind="merge", effective_date="01/06/2027", merge_with=[str(ids["XB"])],
                target_mode="existing", target=str(ids["XC"]))
    assert done.status_code == 303
    after = tree_names(client, "01/06/2027")
    assert "Xã C" in after and not {"Xã B", "Xã E"} & after
    history = client.get(f"/units/{ids['XC']}/history")
    assert "Xã B" in history.text and "Xã E" in history.text and "Sáp nhập" in history.text


def test_rights_404_outside_403_without_edit_and_every_unit_involved_must_be_editable(site):
    as_user, ids = site
    viewer = as_user("viewer")
    assert "Ghi nhận thay đổi" not in viewer.get(f"/units/{ids['XA']}").text
    assert viewer.get(f"/units/{ids['XA']}/change").status_code == 403
    token = csrf_from(viewer.get("/units").text)
    assert viewer.post(f"/units/{ids['XA']}/change", data={"csrf_token": token, "kind": "dissolve",
                                                           "effective_date": "01/01/2027", **BASIS}).status_code == 403
    assert viewer.get("/units/999999/change").status_code == 404
    editor = as_user("editor")
    assert editor.get(f"/units/{ids['XB']}/change").status_code == 404  # outside what they see
    page = editor.get(f"/units/{ids['XA']}/change")
    assert page.status_code == 200 and f'value="{ids["XB"]}"' not in page.text  # only units they may edit
    merge = send(editor, ids["XA"], kind="merge", effective_date="01/01/2027", merge_with=[str(ids["XB"])],
                 target_mode="existing", target=str(ids["XC"]))
    assert merge.status_code == 422 and "Bạn không có quyền sửa đơn vị đã chọn" in merge.text and changes() == 0
    rename = send(editor, ids["XA"], kind="rename", effective_date="01/01/2027", rename_name="Xã A Mới")
    assert rename.status_code == 303 and changes() == 1
