"""Sector units and reporting lines (plugins/chuyen_nganh, issue 15 item 4): a school is a unit of
kind "organisation" under its commune (its place in the tree); the department of education names its
schools in a unit group, the delegation's scope; a sector regime issued under the delegation and
received at the department is the schools' reporting line. The commune's officer (reporter at the
commune, whose grant covers the commune's subtree) reports for the commune's socio-economic regime
and for the school's sector regime, not for another commune's school; a school outside the group gets
nothing; and when its commune is merged into a new one (core.units.history), the school, moved under
the successor first as the core requires, keeps reporting to the department. Runs on SQLite and
PostgreSQL."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest

from core.errors import ValidationError
from core.models import Unit
from core.regimes import regimes as rg
from core.regimes.forms import install_form
from core.reporting import events
from core.reporting.opening import Report, issue_and_open, open_due_periods, reports_for
from core.units import history as uh
from core.units import tree as units
from core.units.changes import UnitChange, parent_at
from plugins.chuyen_nganh import delegation as svc
from tests.core.test_role_grants import access_of
from tests.fixtures.plugins import log_in
from tests.plugins.test_chuyen_nganh_delegation import application, decision, world  # noqa: F401 — fixture
from web.testing import _kit_indicators, entry_form_data, kit_form_definition

IN_FORCE = dt.datetime(2026, 12, 10, 3, 0)  # the delegation is in force from 1/12/2026
FIRST = (dt.date(2026, 11, 15), dt.date(2026, 12, 14))  # the monthly window open on 10/12/2026
MERGED_ON = dt.date(2027, 1, 1)  # the two communes become one
AFTER_MERGE = dt.datetime(2027, 1, 10, 3, 0)
SECOND = (dt.date(2026, 12, 15), dt.date(2027, 1, 14))  # the window open on 10/01/2027
SECTOR_CODE = "gd.thang"
BASIS = "Nghị quyết thử số 99/NQ-UBTVQH15 về sắp xếp đơn vị hành chính cấp xã"
# How the department names its schools in the regime: by kind within the delegation's scope (every
# organisation the scope holds), or by the unit group itself.
SELECTORS = {"kind": lambda group: {"kinds": ["organisation"], "group_ids": []},
             "group": lambda group: {"kinds": [], "group_ids": [group.id]}}


@pytest.fixture(params=sorted(SELECTORS))
def sector(request, world, client, make_user, make_regime, frozen_clock):  # noqa: F811 — the delegation tests' fixture
    """Two schools in the education department's group, one under each commune, and a third school
    under the first commune outside the group; the delegation (scope: the group) in force; the
    commune's socio-economic regime and the department's sector regime issued, their first period open."""
    w = world
    gio_linh, cam_lo = w.tree.communes
    school_a = Unit.create(code="44.GIOLINH.THCS", name="Trường THCS Gio Linh", kind="organisation", parent=gio_linh)
    school_b = Unit.create(code="44.CAMLO.THCS", name="Trường THCS Cam Lộ", kind="organisation", parent=cam_lo)
    school_c = Unit.create(code="44.GIOLINH.TH", name="Trường Tiểu học Gio Linh", kind="organisation",
                           parent=gio_linh)
    group = rg.write_group(None, "TRUONG_GD", "Các trường Sở Giáo dục theo dõi", [school_a.id, school_b.id],
                           allowed=None)
    deputy, password = make_user(unit=w.education)
    d = svc.apply(w.teacher, application(w, department_unit_id=str(w.education.id), sector="gd",
                                         sector_name="Giáo dục", scope_unit_ids=(),
                                         scope_group_ids=(str(group.id),), administrator_ids=(str(deputy.id),)))
    svc.record_decision(w.operator, d.id, decision())
    frozen_clock(IN_FORCE)
    socio = make_regime("ktxh.thang", name="Báo cáo tình hình kinh tế - xã hội hằng tháng", kinds=("commune",),
                        receiver=w.tree.province)
    sector_regime = issue_sector_regime(client.app, deputy, w.education, SELECTORS[request.param](group))
    return SimpleNamespace(w=w, app=client.app, delegation=d, group=group, deputy=deputy, password=password,
                           gio_linh=gio_linh, cam_lo=cam_lo, school_a=school_a, school_b=school_b,
                           school_c=school_c, socio=socio.regime, regime=sector_regime)


def sector_regime_data(department, form_id: int, code: str, name: str, **selector) -> dict:
    """A monthly regime of the department, on the delegation's decision, received at the department
    (receiving rule "unit"), to the reporting units ``selector`` chooses (kinds, unit_ids, group_ids)."""
    chosen = {"kinds": [], "unit_ids": [], "group_ids": [], **selector}
    return dict(chosen, code=code, name=name, regime_type="periodic", frequency="monthly", cutoff_rule="decree",
                content="Số liệu trong kỳ.", content_type="data", form_id=form_id, sending_methods=["system"],
                receiving_unit_id=department.id, issuing_unit_id=department.id, preparing_unit_id=department.id,
                deadline_rules=[{"level": "Trường → Sở", "from_kind": "", "rule": "2wd"}],
                legal_number="123/QĐ-UBND", legal_date="2026-11-20", legal_issuer="UBND tỉnh")


def issue_sector_regime(app, deputy, department, selector: dict):
    """The delegated administrator drafts and issues the department's regime to its schools."""
    _kit_indicators()
    form = install_form("GD-THANG", "Tình hình trường học", department.id, kit_form_definition(),
                        frequency="monthly")
    data = sector_regime_data(department, form.id, SECTOR_CODE, "Báo cáo tình hình trường học hằng tháng",
                              **selector)
    with events.using(app.state.pm, app.state.registry, app.state.settings):
        access = access_of(app, deputy)
        draft = rg.save_draft(access, data, policy=app.state.settings.regimes)
        regime, _ = issue_and_open(access, draft.id, policy=app.state.settings.regimes)
    return regime


def reports(regime, window) -> dict[int, Report]:
    """unit id → the report of ``regime`` for ``window``."""
    return {r.unit_id: r for r in Report.select().where((Report.regime == regime.id)
                                                         & (Report.period_start == window[0])
                                                         & (Report.period_end == window[1]))}


def entry_form(client, report) -> dict:
    """The fields of the report's entry form as the browser posts them (its session token included)."""
    page = client.get(f"/reports/{report.id}")
    assert page.status_code == 200, page.text[:500]
    return entry_form_data(page.text.split('id="entry-form"', 1)[1].split("</form>", 1)[0])


def fill(client, report, value: str):
    """Save one cell of the report, as its entry page's form does; the answer."""
    return client.post(f"/reports/{report.id}/save", data={**entry_form(client, report), "cell.lua.cur": value},
                       follow_redirects=False)


def officer(make_user, unit):
    """The commune's officer: "reporter" granted at the commune (the grant covers its subtree)."""
    return make_user(unit=unit, roles=("reporter",))


def test_the_period_opens_for_the_groups_schools_only_received_by_the_department(sector):
    s = sector
    opened = reports(s.regime, FIRST)
    assert set(opened) == {s.school_a.id, s.school_b.id}
    assert {r.receiver_id for r in opened.values()} == {s.w.education.id}
    assert s.regime.authority == f"chuyen_nganh:{s.delegation.id}"
    # Each school sits under its commune in today's tree: that is where people find it.
    tree = {n.unit.id: n for n in units.flatten(units.tree())}
    assert tree[s.school_a.id].unit.parent_id == s.gio_linh.id and tree[s.school_b.id].unit.parent_id == s.cam_lo.id
    # The commune's socio-economic regime opens for the communes, not for the schools under them.
    assert set(reports(s.socio, FIRST)) == {s.gio_linh.id, s.cam_lo.id}
    # The department's administrator receives the schools' reports (and no commune's).
    received = {r.unit_id for r in reports_for(access_of(s.app, s.deputy), role="receive")}
    assert received == {s.school_a.id, s.school_b.id}


def test_the_commune_officer_reports_for_the_commune_and_its_school_not_another_communes(client, sector,
                                                                                       make_user):
    s = sector
    person, password = officer(make_user, s.gio_linh)
    log_in(client, person, password)
    socio, school, other_school = (reports(s.socio, FIRST)[s.gio_linh.id], reports(s.regime, FIRST)[s.school_a.id],
                                   reports(s.regime, FIRST)[s.school_b.id])
    listing = client.get("/reports?role=send")
    assert listing.status_code == 200
    assert f'href="/reports/{socio.id}"' in listing.text and f'href="/reports/{school.id}"' in listing.text
    assert f'href="/reports/{other_school.id}"' not in listing.text
    assert "Trường THCS Gio Linh" in listing.text and "Trường THCS Cam Lộ" not in listing.text
    for report in (socio, school):
        assert fill(client, report, "12,5").status_code == 303
        assert Report.get_by_id(report.id).status == "draft"
    # Cam Lộ's school is not theirs to open or fill: nothing is saved.
    assert client.get(f"/reports/{other_school.id}").status_code == 404
    # Posted with their own form's fields (a valid session token): the right decides, not the token.
    posted = {**entry_form(client, school), "cell.lua.cur": "1"}
    assert client.post(f"/reports/{other_school.id}/save", data=posted, follow_redirects=False).status_code == 404
    after = Report.get_by_id(other_school.id)
    assert (after.status, after.revision) == ("not_started", other_school.revision)


def test_a_school_outside_the_group_gets_nothing(sector, make_user):
    s = sector
    day = IN_FORCE.date()
    assert svc.scope_units(s.delegation, day) == sorted([s.school_a.id, s.school_b.id])
    assert s.school_c.id not in {r.unit_id for r in Report.select().where(Report.regime == s.regime.id)}
    # Its commune's officer sees no sector report for it; only the commune's and the grouped school's.
    person, _ = officer(make_user, s.gio_linh)
    sent = {(r.regime_id, r.unit_id) for r in reports_for(access_of(s.app, person), role="send")}
    assert sent == {(s.socio.id, s.gio_linh.id), (s.regime.id, s.school_a.id)}
    # Nor can the department name it in a regime on the decision: it lies outside the delegation.
    data = sector_regime_data(s.w.education, s.regime.form_id, "gd.rieng", "Báo cáo riêng",
                              unit_ids=[s.school_c.id])
    app = s.app
    with events.using(app.state.pm, app.state.registry, app.state.settings):
        with pytest.raises(ValidationError) as refused:
            rg.save_draft(access_of(app, s.deputy), data, policy=app.state.settings.regimes)
    assert refused.value.errors == {"units": "regimes.error.outside_authority"}
    assert not rg.Regime.select().where(rg.Regime.code == "gd.rieng").exists()
    assert not Report.select().where(Report.unit == s.school_c.id).exists()


def test_a_school_whose_commune_is_merged_keeps_reporting_under_the_successor(sector, make_user, frozen_clock):
    s = sector
    app = s.app
    new = {"code": "44.GIOCAM", "name": "Xã Gio Cam", "kind": "commune", "parent": s.w.tree.province}
    # The core ends no commune while a unit under it stays in force: the schools are moved first.
    changes = UnitChange.select().count()
    with pytest.raises(ValidationError) as refused:
        uh.merge([s.gio_linh, s.cam_lo], new, effective_date=MERGED_ON, legal_basis=BASIS)
    assert refused.value.errors == {"from": "units.history.error.children_still_valid"}
    assert UnitChange.select().count() == changes and not Unit.select().where(Unit.code == "44.GIOCAM").exists()
    # The order that works: the successor is established, the schools moved under it on the same
    # day, then the communes merged into it.
    _, gio_cam = uh.establish(new, effective_date=MERGED_ON, legal_basis=BASIS)
    for school in (s.school_a, s.school_b, s.school_c):
        uh.reparent(school, gio_cam, effective_date=MERGED_ON, legal_basis=BASIS)
    uh.merge([s.gio_linh, s.cam_lo], gio_cam, effective_date=MERGED_ON, legal_basis=BASIS)
    assert [u.id for u in uh.successors(Unit.get_by_id(s.gio_linh.id), at=MERGED_ON)] == [gio_cam.id]

    frozen_clock(AFTER_MERGE)
    with events.using(app.state.pm, app.state.registry, app.state.settings):
        open_due_periods(AFTER_MERGE.date(), regime_ids=[s.regime.id, s.socio.id])
    # The school is the same unit: it stays in the group and in the delegation's scope, and the next
    # period opens its report, still received by the department.
    assert svc.scope_units(s.delegation, AFTER_MERGE.date()) == sorted([s.school_a.id, s.school_b.id])
    second = reports(s.regime, SECOND)
    assert set(second) == {s.school_a.id, s.school_b.id}
    assert {r.receiver_id for r in second.values()} == {s.w.education.id}
    # The commune's regime opens for the successor only (units in existence on the day it opens).
    assert set(reports(s.socio, SECOND)) == {gio_cam.id}
    # The report of the earlier period keeps the school; the tree as it stood keeps its old commune.
    assert reports(s.regime, FIRST)[s.school_a.id].unit_id == s.school_a.id
    school_a = Unit.get_by_id(s.school_a.id)
    assert school_a.parent_id == gio_cam.id
    assert parent_at(school_a, MERGED_ON - dt.timedelta(days=1)) == s.gio_linh.id
    eve = {n.unit.id: n.unit for n in units.flatten(units.tree(at=MERGED_ON - dt.timedelta(days=1)))}
    assert eve[s.school_a.id].parent_id == s.gio_linh.id and eve[s.school_b.id].parent_id == s.cam_lo.id

    # The successor's officer reports for the new commune and for both schools, this period and the last.
    person, _ = officer(make_user, gio_cam)
    sent = {(r.regime_id, r.unit_id, r.period_start) for r in reports_for(access_of(app, person), role="send")}
    assert {(u, start) for regime, u, start in sent if regime == s.regime.id} == {
        (school.id, window[0]) for school in (s.school_a, s.school_b) for window in (FIRST, SECOND)}
    assert (s.socio.id, gio_cam.id, SECOND[0]) in sent
    # A grant at the former commune covers what is under it now: its own former reports, no school.
    former, _ = officer(make_user, s.gio_linh)
    sent = {(r.regime_id, r.unit_id) for r in reports_for(access_of(app, former), role="send")}
    assert sent == {(s.socio.id, s.gio_linh.id)}
