"""The delegation of sector reporting (plugins/chuyen_nganh, Điều 6.3) as services: a department
applies, the operator returns, decides, suspends, resumes and revokes; each step audited and kept in
the history; two delegations of one sector sharing a unit are refused naming the other; bad input
and acting outside one's rights change nothing."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest

from core.accounts.access import grants_of
from core.accounts.permissions import Access
from core.audit import AuditEvent
from core.db import db
from core.errors import Forbidden, NotFound
from core.models import Unit, User
from core.regimes import regimes as rg
from core.units.tree import ancestor_ids
from plugins.chuyen_nganh import delegation as svc
from plugins.chuyen_nganh.models import Delegation, DelegationFile, DelegationStep

PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
TODAY = dt.date(2026, 11, 26)


@pytest.fixture
def world(client, unit_tree, make_user, frozen_clock):
    frozen_clock(dt.datetime(2026, 11, 26, 3, 0))
    with db.connection_context():
        education = Unit.create(code="44.SGDDT", name="Sở Giáo dục và Đào tạo", kind="department",
                                parent=unit_tree.province)
    operator, _ = make_user(unit=unit_tree.province, is_admin=True)
    applicant, _ = make_user(unit=unit_tree.department, roles=("chuyen_nganh.sector_admin",))
    deputy, _ = make_user(unit=unit_tree.department)
    teacher, _ = make_user(unit=education, roles=("chuyen_nganh.sector_admin",))
    commune_user, _ = make_user(unit=unit_tree.communes[0], roles=("viewer", "unit_admin"))
    app = client.app

    def access(user):
        with db.connection_context():
            user = User.get_by_id(user.id)
            return Access(actor=user, registry=app.state.registry, enabled=frozenset({"chuyen_nganh"}),
                          grants=grants_of(user.id), chain=tuple(ancestor_ids(user.unit_id)))

    with db.connection_context():
        yield SimpleNamespace(tree=unit_tree, education=education, operator=access(operator),
                              applicant=access(applicant), deputy=deputy, teacher=access(teacher),
                              commune_user=access(commune_user))


def application(w, **changes):
    values = dict(department_unit_id=str(w.tree.department.id), sector="nn", sector_name="Nông nghiệp",
                  scope_unit_ids=tuple(str(c.id) for c in w.tree.communes), purpose="Báo cáo sản xuất nông nghiệp",
                  administrator_ids=(str(w.deputy.id),))
    values.update(changes)
    return svc.Application(**values)


def decision(**changes):
    values = dict(number="123/QĐ-UBND", date="2026-11-20", signer_name="Nguyễn Văn A",
                  signer_title="Phó Chủ tịch UBND tỉnh", valid_from="2026-12-01", valid_to="", file=("qd.pdf", PDF))
    values.update(changes)
    return svc.Decision(**values)


def snapshot():
    return ([(d.id, d.status, d.sector, d.scope, d.decision_number, d.valid_from, d.valid_to)
             for d in Delegation.select().order_by(Delegation.id)],
            DelegationStep.select().count(), DelegationFile.select().count())


def test_the_whole_lifecycle_is_kept_in_the_history_and_audited(world):
    w = world
    d = svc.apply(w.applicant, application(w))
    assert (d.status, d.department_unit_id, d.administrator_ids) == ("applied", w.tree.department.id, [w.deputy.id])
    svc.return_for_changes(w.operator, d.id, "Bổ sung mục đích")
    assert Delegation.get_by_id(d.id).status == "returned"
    assert Delegation.get_by_id(d.id).return_reason == "Bổ sung mục đích"
    svc.change(w.applicant, d.id, application(w, purpose="Theo dõi tiến độ sản xuất hằng tháng", scope_kinds=("commune",),
                                               scope_unit_ids=()))
    svc.record_decision(w.operator, d.id, decision())
    d = Delegation.get_by_id(d.id)
    assert (d.status, d.decision_number, d.valid_from, d.valid_to) == ("approved", "123/QĐ-UBND", dt.date(2026, 12, 1), None)
    assert bytes(svc.decision_file(d).content) == PDF

    # In force from valid_from, over every commune (the scope names the kind).
    assert svc.in_force(w.tree.department.id, "nn", dt.date(2026, 11, 30)) is None
    assert svc.in_force(w.tree.department.id, "nn", dt.date(2026, 12, 1)).id == d.id
    assert svc.in_force(w.tree.department.id, "gd", dt.date(2026, 12, 1)) is None
    assert svc.scope_units(d, dt.date(2026, 12, 1)) == sorted(c.id for c in w.tree.communes)

    svc.suspend(w.operator, d.id, "Chưa bố trí cán bộ")
    assert svc.in_force(w.tree.department.id, "nn", dt.date(2026, 12, 2)) is None
    svc.resume(w.operator, d.id, "Đã bố trí cán bộ")
    assert svc.in_force(w.tree.department.id, "nn", dt.date(2026, 12, 2)).id == d.id
    svc.revoke(w.operator, d.id, "Bộ đã triển khai hệ thống ngành")
    assert svc.in_force(w.tree.department.id, "nn", dt.date(2026, 12, 2)) is None
    assert svc.shown_status(Delegation.get_by_id(d.id)) == "revoked"

    steps = svc.history(d)
    assert [s.action for s in steps] == ["apply", "return", "change", "decide", "suspend", "resume", "revoke"]
    assert [s.reason for s in steps if s.reason] == ["Bổ sung mục đích", "Chưa bố trí cán bộ", "Đã bố trí cán bộ",
                                                    "Bộ đã triển khai hệ thống ngành"]
    audited = [e.action for e in AuditEvent.select().where(AuditEvent.object_type == "chuyen_nganh.delegation")
               .order_by(AuditEvent.id)]
    assert audited == [f"chuyen_nganh.delegation.{s.action}" for s in steps]
    assert svc.allowed_actions(w.operator, Delegation.get_by_id(d.id)) == []


def test_each_step_reaches_the_people_concerned_in_their_notifications(world, client):
    from core.reporting.notifications import Notification, inbox

    w = world
    d = svc.apply(w.applicant, application(w))
    operator_id, applicant_id = w.operator.actor.id, w.applicant.actor.id
    # The operators hear of an application; the applicant who sent it does not.
    told = {n.user_id: n for n in Notification.select().where(Notification.plugin == "chuyen_nganh")}
    assert operator_id in told and applicant_id not in told and w.deputy.id not in told
    assert inbox(operator_id, "vi")[0]["text"] == (f"{w.tree.department.name} đã gửi hồ sơ đề nghị ủy quyền báo cáo "
                                                   "chuyên ngành lĩnh vực Nông nghiệp, chờ xét.")
    assert inbox(operator_id, "en")[0]["link"] == f"/p/chuyen_nganh/{d.id}"
    # The applicant and the administrators it names hear of the operator's steps, with the reason.
    svc.return_for_changes(w.operator, d.id, "Bổ sung mục đích")
    for person in (applicant_id, w.deputy.id):
        latest = inbox(person, "vi")[0]
        assert "được trả lại để bổ sung" in latest["text"] and "Bổ sung mục đích" in latest["text"]
    svc.change(w.applicant, d.id, application(w))
    svc.record_decision(w.operator, d.id, decision())
    assert "Decision 123/QĐ-UBND delegates sector reporting (Nông nghiệp)" in inbox(w.deputy.id, "en")[0]["text"]
    assert Notification.select().where((Notification.user == operator_id)
                                       & Notification.message.endswith(".decide")).count() == 0
    # The person opens it from their notifications: it is marked read and opens the delegation's page.
    notice = inbox(w.deputy.id, "vi")[0]
    assert notice["read"] is False and notice["link"] == f"/p/chuyen_nganh/{d.id}"


def test_an_operator_reads_the_notice_and_opens_the_application(world, client, make_user):
    import re

    from tests.fixtures.plugins import log_in

    operator, password = make_user(unit=world.tree.province, is_admin=True)
    d = svc.apply(world.applicant, application(world))
    log_in(client, operator, password)
    page = client.get("/notifications")
    assert "đã gửi hồ sơ đề nghị ủy quyền báo cáo chuyên ngành lĩnh vực Nông nghiệp" in page.text
    notice_id = re.search(r'/notifications/(\d+)/open', page.text).group(1)
    token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page.text).group(1)
    opened = client.post(f"/notifications/{notice_id}/open", data={"csrf_token": token}, follow_redirects=False)
    assert opened.status_code == 303 and opened.headers["location"] == f"/p/chuyen_nganh/{d.id}"
    assert client.get(opened.headers["location"]).status_code == 200


def test_a_notice_names_a_plugins_message_and_a_page_of_this_site(world):
    from core.api import notify

    with pytest.raises(ValueError):
        notify(w := world.operator, [world.deputy.id], "notify.text.submit")  # a core message
    with pytest.raises(ValueError):
        notify(w, [world.deputy.id], "chuyen_nganh.notice.apply", {"department": "x", "sector": "y", "number": ""},
               link="//evil.example/phish")
    with pytest.raises(ValueError):
        notify(w, [world.deputy.id], "chuyen_nganh.notice.nothing_like_this")


def test_overlapping_delegations_of_a_sector_are_refused_naming_the_other(world):
    w = world
    gio_linh, cam_lo = w.tree.communes
    first = svc.apply(w.applicant, application(w, scope_unit_ids=(str(gio_linh.id),)))
    before = snapshot()
    with pytest.raises(svc.Refused) as refused:
        svc.apply(w.teacher, application(w, department_unit_id=str(w.education.id), scope_unit_ids=(),
                                         scope_kinds=("commune",), administrator_ids=()))
    assert "administrators" in refused.value.errors  # field errors first: nothing is looked up for a bad form
    with pytest.raises(svc.Refused) as refused:
        svc.apply(w.applicant, application(w, scope_kinds=("commune",), scope_unit_ids=()))
    assert refused.value.errors == {"scope": "chuyen_nganh.error.overlap_applied"}
    params = refused.value.field_params["scope"]
    assert (params["id"], params["units"], params["department"]) == (first.id, "Xã Gio Linh", "Sở Nông nghiệp và Môi trường")
    assert snapshot() == before

    # Another sector, or other units, are fine.
    svc.apply(w.applicant, application(w, sector="thuy_loi", sector_name="Thủy lợi", scope_unit_ids=(str(gio_linh.id),)))
    svc.apply(w.applicant, application(w, scope_unit_ids=(str(cam_lo.id),)))

    # Once decided, the refusal names the decision.
    svc.record_decision(w.operator, first.id, decision())
    with pytest.raises(svc.Refused) as refused:
        svc.apply(w.applicant, application(w, scope_unit_ids=(str(gio_linh.id),)))
    assert refused.value.errors == {"scope": "chuyen_nganh.error.overlap_decided"}
    assert refused.value.field_params["scope"]["number"] == "123/QĐ-UBND"

    # Revoked, it no longer stands in the way.
    svc.revoke(w.operator, first.id, "Thay bằng quyết định mới")
    assert svc.apply(w.applicant, application(w, scope_unit_ids=(str(gio_linh.id),))).status == "applied"


def test_a_decision_whose_dates_overlap_another_is_refused_and_disjoint_dates_pass(world):
    w = world
    gio_linh = w.tree.communes[0]
    first = svc.apply(w.applicant, application(w, scope_unit_ids=(str(gio_linh.id),)))
    svc.record_decision(w.operator, first.id, decision(valid_from="2026-12-01", valid_to="2026-12-31"))
    # A second application for the same units is refused while the first is current...
    with pytest.raises(svc.Refused):
        svc.apply(w.applicant, application(w, scope_unit_ids=(str(gio_linh.id),)))
    # ...but a decision for later dates does not overlap: the first expires, the second follows.
    svc.suspend(w.operator, first.id, "Tạm dừng để kiểm tra")
    Delegation.update(valid_to=dt.date(2026, 11, 25)).where(Delegation.id == first.id).execute()
    assert svc.shown_status(Delegation.get_by_id(first.id)) == "expired"
    second = svc.apply(w.applicant, application(w, scope_unit_ids=(str(gio_linh.id),)))
    svc.record_decision(w.operator, second.id, decision(number="200/QĐ-UBND", valid_from="2027-01-01"))
    assert svc.in_force(w.tree.department.id, "nn", dt.date(2027, 1, 2)).id == second.id


@pytest.mark.parametrize("changes, field, key", [
    ({"sector": "nông"}, "sector", "chuyen_nganh.error.sector_code"),
    ({"sector": "n"}, "sector", "chuyen_nganh.error.sector_code"),
    ({"sector": "9nn"}, "sector", "chuyen_nganh.error.sector_code"),
    ({"sector_name": "  "}, "sector_name", "chuyen_nganh.error.required"),
    ({"purpose": ""}, "purpose", "chuyen_nganh.error.required"),
    ({"scope_unit_ids": ()}, "scope", "chuyen_nganh.error.empty_scope"),
    ({"scope_unit_ids": ("999999",)}, "scope", "chuyen_nganh.error.unknown_unit"),
    ({"scope_unit_ids": ("abc",)}, "scope", "chuyen_nganh.error.unknown_unit"),
    ({"scope_kinds": ("province",)}, "scope", "chuyen_nganh.error.unknown_kind"),
    ({"scope_unit_ids": ("²",)}, "scope", "chuyen_nganh.error.unknown_unit"),
    ({"scope_unit_ids": (), "scope_group_ids": ("999999",)}, "scope", "chuyen_nganh.error.unknown_group"),
    ({"scope_group_ids": ("abc",)}, "scope", "chuyen_nganh.error.unknown_group"),
    ({"administrator_ids": ()}, "administrators", "chuyen_nganh.error.no_administrator"),
    ({"administrator_ids": ("999999",)}, "administrators", "chuyen_nganh.error.unknown_user"),
    ({"department_unit_id": "999999"}, "department_unit_id", "chuyen_nganh.error.department"),
])
def test_bad_applications_are_refused_at_the_field(world, changes, field, key):
    before = snapshot()
    with pytest.raises(svc.Refused) as refused:
        svc.apply(world.applicant, application(world, **changes))
    assert refused.value.errors[field] == key
    assert snapshot() == before


def test_an_administrator_of_another_department_is_refused(world):
    with pytest.raises(svc.Refused) as refused:
        svc.apply(world.applicant, application(world, administrator_ids=(str(world.teacher.actor.id),)))
    assert refused.value.errors == {"administrators": "chuyen_nganh.error.unknown_user"}


@pytest.mark.parametrize("changes, field, key", [
    ({"date": "2026-11-27"}, "decision_date", "chuyen_nganh.error.future_date"),
    ({"date": "31/02/2026"}, "decision_date", "chuyen_nganh.error.date"),
    ({"date": ""}, "decision_date", "chuyen_nganh.error.required"),
    ({"number": ""}, "decision_number", "chuyen_nganh.error.required"),
    ({"signer_title": ""}, "signer_title", "chuyen_nganh.error.required"),
    ({"valid_from": "2026-12-01", "valid_to": "2026-11-30"}, "valid_to", "chuyen_nganh.error.valid_to"),
    ({"file": None}, "file", "chuyen_nganh.error.file_required"),
    ({"file": ("qd.pdf", b"PK\x03\x04 not a pdf")}, "file", "chuyen_nganh.error.file_type"),
    ({"file": ("qd.pdf", PDF + b"0" * svc.MAX_FILE_BYTES)}, "file", "chuyen_nganh.error.file_size"),
])
def test_bad_decisions_are_refused_at_the_field(world, changes, field, key):
    d = svc.apply(world.applicant, application(world))
    before = snapshot()
    with pytest.raises(svc.Refused) as refused:
        svc.record_decision(world.operator, d.id, decision(**changes))
    assert refused.value.errors[field] == key
    assert snapshot() == before


def test_a_decision_dated_today_in_the_instances_zone_is_accepted(world):
    d = svc.apply(world.applicant, application(world))
    svc.record_decision(world.operator, d.id, decision(date="26/11/2026", valid_from="26/11/2026"))
    assert svc.in_force(world.tree.department.id, "nn", TODAY).id == d.id


@pytest.mark.parametrize("step", [svc.return_for_changes, svc.revoke])
def test_an_empty_reason_is_refused(world, step):
    d = svc.apply(world.applicant, application(world))
    before = snapshot()
    with pytest.raises(svc.Refused) as refused:
        step(world.operator, d.id, "   ")
    assert refused.value.errors == {"reason": "chuyen_nganh.error.required"}
    assert snapshot() == before


def test_acting_outside_ones_rights_changes_nothing(world):
    w = world
    # Another department's administrator cannot apply for this department, nor read its files.
    with pytest.raises(Forbidden):
        svc.apply(w.teacher, application(w))
    d = svc.apply(w.applicant, application(w))
    before = snapshot()
    with pytest.raises(NotFound):
        svc.get(w.teacher, d.id)
    with pytest.raises(NotFound):
        svc.get(w.commune_user, d.id)
    assert svc.visible(w.teacher) == [] and [x.id for x in svc.visible(w.applicant)] == [d.id]
    # Only the operator reviews and decides: the department cannot decide its own application.
    for step in (lambda a: svc.return_for_changes(a, d.id, "x"), lambda a: svc.record_decision(a, d.id, decision()),
                 lambda a: svc.suspend(a, d.id, "x"), lambda a: svc.revoke(a, d.id, "x")):
        with pytest.raises(Forbidden):
            step(w.applicant)
    # The department cannot change an application that was not returned.
    with pytest.raises(svc.Refused) as refused:
        svc.change(w.applicant, d.id, application(w, purpose="khác"))
    assert refused.value.errors == {"form": "chuyen_nganh.error.state"}
    assert snapshot() == before


def test_a_step_out_of_order_is_refused(world):
    w = world
    d = svc.apply(w.applicant, application(w))
    before = snapshot()
    for step in (svc.suspend, svc.resume):
        with pytest.raises(svc.Refused) as refused:
            step(w.operator, d.id, "lý do")
        assert refused.value.errors == {"form": "chuyen_nganh.error.state"}
    assert snapshot() == before
    svc.revoke(w.operator, d.id, "Không thuộc thẩm quyền")
    with pytest.raises(svc.Refused):
        svc.record_decision(w.operator, d.id, decision())


def test_expiry_is_derived_from_valid_to(world):
    w = world
    d = svc.apply(w.applicant, application(w))
    svc.record_decision(w.operator, d.id, decision(valid_from="2026-01-01", valid_to="2026-11-25"))
    d = Delegation.get_by_id(d.id)
    assert svc.shown_status(d) == "expired" and svc.allowed_actions(w.operator, d) == []
    assert svc.in_force(w.tree.department.id, "nn", TODAY) is None
    assert svc.in_force(w.tree.department.id, "nn", dt.date(2026, 11, 25)).id == d.id
    with pytest.raises(svc.Refused):
        svc.suspend(w.operator, d.id, "x")


def test_a_scope_by_kind_follows_the_units_in_existence(world):
    w = world
    d = svc.apply(w.applicant, application(w, scope_unit_ids=(), scope_kinds=("commune",)))
    new = Unit.create(code="44.TRIEUPHONG", name="Xã Triệu Phong", kind="commune", parent=w.tree.province,
                      valid_from=dt.date(2027, 1, 1))
    Unit.update(valid_to=dt.date(2026, 12, 31)).where(Unit.id == w.tree.communes[1].id).execute()
    assert svc.scope_units(d, dt.date(2026, 12, 31)) == sorted(c.id for c in w.tree.communes)
    assert svc.scope_units(d, dt.date(2027, 1, 1)) == sorted([w.tree.communes[0].id, new.id])


def test_a_scope_by_unit_group_follows_the_groups_members(world):
    """A group is kept by id: the scope holds its members as the group stands on each day, the
    delegation's authority follows, and a member merged away leaves."""
    w = world
    gio_linh, cam_lo = w.tree.communes
    group = rg.write_group(None, "XA_NN", "Các xã Sở Nông nghiệp theo dõi", [gio_linh.id], allowed=None)
    d = svc.apply(w.applicant, application(w, scope_unit_ids=(), scope_group_ids=(str(group.id),)))
    assert d.scope_selector == {"unit_ids": [], "kinds": [], "group_ids": [group.id]}
    svc.record_decision(w.operator, d.id, decision())
    day = dt.date(2026, 12, 5)
    assert svc.scope_units(d, day) == [gio_linh.id]
    assert svc.authorities(w.tree.department.id, day)[0].unit_ids == frozenset({gio_linh.id})

    # The group's manager adds Cam Lộ on the core's screen: the delegation's scope follows.
    rg.write_group(group.id, "XA_NN", group.name, [gio_linh.id, cam_lo.id], allowed=None)
    assert svc.scope_units(d, day) == sorted([gio_linh.id, cam_lo.id])
    assert svc.authorities(w.tree.department.id, day)[0].unit_ids == frozenset({gio_linh.id, cam_lo.id})
    # A member merged away leaves the scope from the day it ends.
    Unit.update(valid_to=dt.date(2026, 12, 31)).where(Unit.id == cam_lo.id).execute()
    assert svc.scope_units(d, dt.date(2027, 1, 1)) == [gio_linh.id]
    # Removed from the group, a unit leaves; a group deleted since has no member.
    rg.write_group(group.id, "XA_NN", group.name, [cam_lo.id], allowed=None)
    assert svc.scope_units(d, day) == [cam_lo.id]
    rg.delete_group(group.id, allowed=None)
    assert svc.scope_units(d, day) == []
    assert svc.groups_named([group.id]) == [(group.id, None)]


def test_groups_and_units_are_compared_after_resolving_for_the_overlap(world):
    w = world
    gio_linh, cam_lo = w.tree.communes
    group = rg.write_group(None, "XA_NN", "Các xã Sở Nông nghiệp theo dõi", [gio_linh.id], allowed=None)
    first = svc.apply(w.applicant, application(w, scope_unit_ids=(), scope_group_ids=(str(group.id),)))
    before = snapshot()
    # A unit listed one by one that the group holds overlaps...
    with pytest.raises(svc.Refused) as refused:
        svc.apply(w.applicant, application(w, scope_unit_ids=(str(gio_linh.id),)))
    assert refused.value.errors == {"scope": "chuyen_nganh.error.overlap_applied"}
    params = refused.value.field_params["scope"]
    assert (params["id"], params["units"]) == (first.id, "Xã Gio Linh")
    # ...and so does another group sharing a member, or a kind.
    other = rg.write_group(None, "XA_VEN_BIEN", "Các xã ven biển", [gio_linh.id, cam_lo.id], allowed=None)
    for changes in ({"scope_group_ids": (str(other.id),)}, {"scope_kinds": ("commune",)}):
        with pytest.raises(svc.Refused):
            svc.apply(w.applicant, application(w, scope_unit_ids=(), **changes))
    assert snapshot() == before
    # A unit outside the group does not.
    second = svc.apply(w.applicant, application(w, scope_unit_ids=(str(cam_lo.id),)))
    svc.revoke(w.operator, second.id, "Gộp vào hồ sơ chung")
    # Once the group holds Cam Lộ too, an application for it is refused: membership is read when asked.
    rg.write_group(group.id, "XA_NN", group.name, [gio_linh.id, cam_lo.id], allowed=None)
    with pytest.raises(svc.Refused) as refused:
        svc.apply(w.applicant, application(w, scope_unit_ids=(str(cam_lo.id),)))
    params = refused.value.field_params["scope"]
    assert (params["id"], params["units"]) == (first.id, "Xã Cam Lộ")


def test_a_delegation_in_force_is_the_departments_issuing_authority(world):
    """What the core's hook issuing_authorities hears: the scope's units on the decision's number,
    from valid_from on, and nothing while suspended or once revoked."""
    w = world
    d = svc.apply(w.applicant, application(w))
    assert svc.authorities(w.tree.department.id, dt.date(2026, 12, 5)) == []  # applied only
    svc.record_decision(w.operator, d.id, decision())
    assert svc.authorities(w.tree.department.id, dt.date(2026, 11, 30)) == []  # before valid_from
    (granted,) = svc.authorities(w.tree.department.id, dt.date(2026, 12, 5))
    assert (granted.key, granted.issuing_unit_id, granted.legal_number) == (str(d.id), w.tree.department.id,
                                                                          "123/QĐ-UBND")
    assert granted.unit_ids == frozenset(c.id for c in w.tree.communes)
    assert svc.authorities(w.education.id, dt.date(2026, 12, 5)) == []  # another department's: none
    svc.suspend(w.operator, d.id, "Tạm dừng để rà soát")
    assert svc.authorities(w.tree.department.id, dt.date(2026, 12, 5)) == []
    svc.resume(w.operator, d.id, "Đã rà soát xong")
    assert len(svc.authorities(w.tree.department.id, dt.date(2026, 12, 5))) == 1
    svc.revoke(w.operator, d.id, "Sở đã có hệ thống của Bộ")
    assert svc.authorities(w.tree.department.id, dt.date(2026, 12, 5)) == []
