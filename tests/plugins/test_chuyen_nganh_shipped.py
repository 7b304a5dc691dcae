"""The sector regime templates shipped as data, off by default (issue 15, item 6): a delegated
administrator adopts one at /p/chuyen_nganh/templates — the indicators go into the sector's namespace,
the form is created and published, a draft regime of the department is made that can be issued under
the delegation and reaches exactly the communes of its scope; refused once the delegation is revoked,
for a sector without a delegation in force, and a second time; the template files hold together."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from core import clock
from core.accounts.permissions import core_access
from core.audit import AuditEvent
from core.catalogue.indicators import Indicator, IndicatorGroup
from core.db import db
from core.models import Unit, User
from core.regimes import form_schema
from core.regimes import regimes as rg
from core.regimes.forms import Form, FormVersion
from core.reporting import events
from core.reporting.opening import Report, issue_and_open
from plugins.chuyen_nganh import templates_data
from plugins.chuyen_nganh.adopt import TemplateAdoption
from plugins.chuyen_nganh.models import Delegation
from tests.plugins.test_chuyen_nganh_catalogue import people, post  # noqa: F401 — people: the fixture
from tests.web.test_report_entry import log_in

PAGE = "/p/chuyen_nganh/templates"
NN = "nn_san_xuat_thang"


def adopt_url(delegation_id, key=NN):
    return f"{PAGE}/{delegation_id}/{key}/adopt"


def created():
    """What an adoption writes: the sector's rows, forms, regimes, adoptions."""
    with db.connection_context():
        return (IndicatorGroup.select().where(IndicatorGroup.code.startswith("NN")).count(),
                Indicator.select().where(Indicator.code.startswith("NN")).count(),
                Form.select().where(Form.code.startswith("NN-")).count(),
                rg.Regime.select().where(rg.Regime.code.startswith("nn.")).count(), TemplateAdoption.select().count())


def test_the_template_files_hold_together():
    shipped = templates_data.templates()
    assert set(shipped) >= {NN}
    for template in shipped.values():
        codes = [g["code"] for g in template.groups] + [i["code"] for i in template.indicators]
        assert len(codes) == len(set(codes))
        indicators = {i["code"] for i in template.indicators}
        rows = [r["indicator"] for r in template.form["rows"] if r["kind"] == "indicator"]
        assert set(rows) <= indicators and rows
        assert form_schema.check_form_file(template.form) == []  # the form file as docs/forms.md says
        definition = template.form_definition("NN")
        assert {r["indicator"] for r in definition["rows"] if r["kind"] == "indicator"} == {"NN" + c for c in rows}
        assert template.sources and all(not i.get("higher_code") for i in template.indicators)


def test_nothing_is_created_until_a_department_adopts(client, people):
    with db.connection_context():
        assert created() == (0, 0, 0, 0, 0)
    log_in(client, people.admin[0])
    page = client.get(PAGE)
    assert page.status_code == 200
    assert "Báo cáo kết quả sản xuất trồng trọt, chăn nuôi hằng tháng của cấp xã" in page.text
    assert f'action="{adopt_url(people.nn.id)}"' in page.text and "Minh họa" in page.text
    assert created() == (0, 0, 0, 0, 0)


def test_adopting_makes_the_indicators_the_form_and_a_draft_that_issues_to_the_scope(client, people):
    p = people
    gio, cam = p.tree.communes
    with db.connection_context():
        Delegation.update(scope=json.dumps({"unit_ids": [gio.id]})).where(Delegation.id == p.nn.id).execute()
    log_in(client, p.admin[0])
    response = post(client, adopt_url(p.nn.id), {})
    assert response.status_code == 303, response.text[:500]
    with db.connection_context():
        adoption = TemplateAdoption.get()
        assert response.headers["location"] == f"/regimes/{adoption.regime_id}"
        regime = rg.Regime.get_by_id(adoption.regime_id)
        assert (regime.status, regime.plugin, regime.frequency) == ("draft", None, "monthly")
        department = p.tree.department.id
        assert (regime.issuing_unit_id, regime.receiving_unit_id, regime.preparing_unit_id) == (department,) * 3
        assert (regime.legal_number, regime.legal_date) == (p.nn.decision_number, p.nn.decision_date)
        assert regime.selector["kinds"] == ["commune"]
        form = Form.get_by_id(regime.form_id)
        version = FormVersion.get(FormVersion.form == form)
        assert version.status == "published" and form.owner_unit_id == department
        rows = [r["indicator"] for r in json.loads(version.definition)["rows"] if r["kind"] == "indicator"]
        assert rows[:2] == ["NN0101", "NN0102"]
        assert sorted(g.code for g in IndicatorGroup.select().where(IndicatorGroup.code.startswith("NN"))) == \
            ["NN01", "NN02"]
        assert Indicator.get(Indicator.code == "NN0203").name == "Số lượng lợn"
        assert AuditEvent.select().where(AuditEvent.action == "chuyen_nganh.template.adopt").count() == 1

    # The department completes nothing more here: issued under the delegation, it reaches Gio Linh only.
    app = client.app
    with db.connection_context(), events.using(app.state.pm, app.state.registry, app.state.settings):
        issued, opened = issue_and_open(core_access(User.get_by_id(p.admin[0].id)), regime.id,
                                        today=clock.today(), policy=app.state.settings.regimes)
        assert issued.authority == f"chuyen_nganh:{p.nn.id}"
        reports = Report.select().where(Report.regime == issued.id)
        assert {r.unit_id for r in reports} == {gio.id} and opened.reports == 1

    # A second adoption is refused, naming the draft the first one made; nothing more is written.
    before = created()
    again = post(client, adopt_url(p.nn.id), {})
    assert again.status_code == 409
    assert "Sở đã dùng mẫu này rồi" in again.text and f'href="/regimes/{regime.id}"' in again.text
    assert created() == before


def test_an_indicator_already_in_the_sector_is_kept(client, people):
    log_in(client, people.admin[0])
    post(client, f"/p/chuyen_nganh/catalogue/{people.nn.id}/groups/new",
         {"code": "NN02", "name": "Chăn nuôi gia súc", "level": "commune"})
    post(client, f"/p/chuyen_nganh/catalogue/{people.nn.id}/indicators/new",
         {"code": "NN0203", "group": "NN02", "name": "Tổng đàn lợn", "unit_of_measure": "con",
          "value_type": "integer", "aggregation": "sum"})
    assert post(client, adopt_url(people.nn.id), {}).status_code == 303
    with db.connection_context():
        kept = Indicator.get(Indicator.code == "NN0203")
        assert (kept.name, kept.version) == ("Tổng đàn lợn", 1)
        assert IndicatorGroup.get(IndicatorGroup.code == "NN02").name == "Chăn nuôi gia súc"
        assert Indicator.get(Indicator.code == "NN0101").name == "Diện tích gieo trồng lúa"


def test_refused_once_the_delegation_is_revoked(client, people):
    with db.connection_context():
        Delegation.update(status="revoked").where(Delegation.id == people.nn.id).execute()
    log_in(client, people.admin[0])
    assert f'action="{adopt_url(people.nn.id)}"' not in client.get(PAGE).text
    response = post(client, adopt_url(people.nn.id), {})
    assert response.status_code == 403
    assert "Ủy quyền đã hết hiệu lực" in response.text
    english = post(client, adopt_url(people.nn.id), {}, headers={"Accept-Language": "en"})
    assert english.status_code == 403 and "The delegation has ended" in english.text
    assert created() == (0, 0, 0, 0, 0)


@pytest.mark.parametrize("case", ["other_sector", "other_department", "suspended", "not_yet"])
def test_refused_for_a_sector_without_a_delegation_in_force(client, people, case):
    p = people
    user, delegation, status = p.admin[0], p.nn.id, 403
    if case == "other_sector":  # the education department's delegation: no crop template for it
        user, delegation, status = p.teacher[0], p.gd.id, 404
    elif case == "other_department":  # another department's delegation does not exist for them
        user, delegation, status = p.teacher[0], p.nn.id, 404
    else:
        changes = {"status": "suspended"} if case == "suspended" else {"valid_from": dt.date(2027, 1, 1)}
        with db.connection_context():
            Delegation.update(**changes).where(Delegation.id == p.nn.id).execute()
    log_in(client, user)
    assert post(client, adopt_url(delegation), {}).status_code == status
    assert created() == (0, 0, 0, 0, 0)


def test_a_reader_without_the_catalogue_right_gets_nothing(client, people):
    log_in(client, people.reader[0])
    assert client.get(PAGE).status_code == 403
    assert post(client, adopt_url(people.nn.id), {}).status_code == 403
    assert created() == (0, 0, 0, 0, 0)


def test_the_school_year_template_reports_from_the_schools_of_the_scope(client, people):
    p = people
    log_in(client, p.teacher[0])
    # The education delegation names every commune: no school in its scope, no regime.
    refused = post(client, adopt_url(p.gd.id, "gd_dau_nam_hoc"), {})
    assert refused.status_code == 422 and "không có đơn vị nào thuộc loại mẫu này cần" in refused.text
    with db.connection_context():
        school = Unit.create(code="44.THCS.GIOLINH", name="Trường THCS Gio Linh", kind="organisation",
                             parent=p.tree.communes[0])
        Delegation.update(scope=json.dumps({"kinds": ["organisation"]})).where(Delegation.id == p.gd.id).execute()
    assert post(client, adopt_url(p.gd.id, "gd_dau_nam_hoc"), {}).status_code == 303
    with db.connection_context():
        regime = rg.Regime.get_by_id(TemplateAdoption.get(TemplateAdoption.template == "gd_dau_nam_hoc").regime_id)
        assert (regime.frequency, regime.selector["kinds"], regime.issuing_unit_id) == \
            ("annual", ["organisation"], p.education.id)
        assert Indicator.get(Indicator.code == "GD0301").name == "Số giáo viên"
    app = client.app
    with db.connection_context(), events.using(app.state.pm, app.state.registry, app.state.settings):
        assert [u.id for u in rg.resolve_units(regime)] == [school.id]


def test_a_template_with_mistakes_is_refused_naming_each():
    path = templates_data.FOLDER / f"{NN}.toml"
    template = templates_data.templates()[NN]
    doc = {"key": NN, "sector": "nn", "title": template.title, "reporting_kind": "commune", "form": f"{NN}.form.json",
           "regime": dict(template.regime), "groups": [dict(g) for g in template.groups],
           "indicators": [dict(i) for i in template.indicators] + [{"code": "0101", "name": "Lặp mã"},
                                                                   {"code": "0901", "name": "Không có nhóm"}]}
    form = {**template.form, "rows": [*template.form["rows"], {"key": "x", "kind": "indicator", "indicator": "0777"}]}
    problems = templates_data._check(path, doc, form)
    assert any("indicators[12].code: 0101 twice" in p for p in problems)
    assert any("indicators[13].code: no group 09" in p for p in problems)
    assert any("'0777' is not an indicator of the template" in p for p in problems)
