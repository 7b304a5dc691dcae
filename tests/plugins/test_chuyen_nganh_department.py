"""The department's own screen of its sector reporting (plugins/chuyen_nganh, issue 15 item 5): the
regimes issued under a delegation with the numbers of their latest due period, links into the
core's screens filtered for each regime and period (which answer the delegated administrator), 404
for another department, the history still readable after a revocation, a bounded number of queries
for a large scope, and the administrator's per-unit switch deciding which communes get the next
period's reports. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import html
import re
from types import SimpleNamespace

import pytest

from core.activation import set_activation
from core.db import db
from core.models import Unit, User
from core.regimes import regimes as rg
from core.regimes.forms import install_form
from core.reporting import events
from core.reporting.opening import Report, issue_and_open, open_due_periods
from plugins.chuyen_nganh import delegation as svc
from tests.core.test_role_grants import access_of
from tests.fixtures.plugins import log_in
from tests.plugins.test_chuyen_nganh_delegation import application, decision, world  # noqa: F401 — fixture
from tests.web.test_autosave_queries import QueryCounter
from web.testing import _kit_indicators, kit_form_definition

IN_FORCE = dt.datetime(2026, 12, 10, 3, 0)  # the delegation is in force from 1/12/2026
PAST_DEADLINE = dt.datetime(2026, 12, 20, 3, 0)  # the window 15/11–14/12 is due (2 working days)
PERIOD = "2026-11-15/2026-12-14"
CODE = "nn.thang"


def _communes(tree, count: int) -> list:
    """The unit tree's two communes and ``count`` - 2 more under the province."""
    made = [Unit.create(code=f"44.X{n:03d}", name=f"Xã Số {n:03d}", kind="commune", parent=tree.province)
            for n in range(count - 2)]
    return list(tree.communes) + made


@pytest.fixture
def sector(world, client, make_user, frozen_clock):  # noqa: F811 — the delegation tests' fixture
    def make(communes: int = 4):
        units = _communes(world.tree, communes)
        deputy, password = make_user(unit=world.tree.department)
        d = svc.apply(world.applicant, application(world, scope_unit_ids=tuple(str(u.id) for u in units),
                                                   administrator_ids=(str(deputy.id),)))
        svc.record_decision(world.operator, d.id, decision())
        frozen_clock(IN_FORCE)
        regime = issue_regime(client.app, deputy, world.tree.department)
        return SimpleNamespace(w=world, app=client.app, id=d.id, deputy=deputy, password=password, units=units,
                               regime=regime)

    return make


def issue_regime(app, deputy, department):
    """The deputy drafts and issues a monthly regime to the communes on the delegation's decision."""
    _kit_indicators()
    form = install_form("NN-THANG", "Tiến độ gieo trồng", department.id, kit_form_definition(), frequency="monthly")
    data = {"code": CODE, "name": "Báo cáo tiến độ gieo trồng hằng tháng", "regime_type": "periodic",
            "content": "Số liệu trong kỳ.", "content_type": "data", "kinds": ["commune"], "unit_ids": [],
            "receiving_unit_id": department.id, "sending_methods": ["system"],
            "deadline_rules": [{"level": "Xã → Sở", "from_kind": "", "rule": "2wd"}],
            "frequency": "monthly", "cutoff_rule": "decree", "form_id": form.id,
            "legal_number": "123/QĐ-UBND", "legal_date": "2026-11-20", "legal_issuer": "UBND tỉnh",
            "issuing_unit_id": department.id, "preparing_unit_id": department.id}
    with events.using(app.state.pm, app.state.registry, app.state.settings):
        access = access_of(app, deputy)
        draft = rg.save_draft(access, data, policy=app.state.settings.regimes)
        regime, _ = issue_and_open(access, draft.id, policy=app.state.settings.regimes)
    return regime


def set_statuses(regime, statuses: dict) -> None:
    """unit id → (status, sent late): what the communes did with the period's reports."""
    for unit_id, (status, late) in statuses.items():
        sent = status in ("submitted", "accepted") or late is not None
        Report.update(status=status, submitted_late=bool(late),
                      submitted_at=IN_FORCE if sent else None).where(
            (Report.regime == regime.id) & (Report.unit == unit_id)).execute()


def counts_on(page_text: str) -> dict:
    row = page_text.split(f'id="sector-regime-{CODE}"', 1)[1].split("</tr>", 1)[0]
    return {name: int(re.sub(r"<[^>]+>", "", value).strip())
            for name, value in re.findall(r'data-count="(\w+)">(.*?)</td>', row)}


def links_on(page_text: str) -> dict:
    block = page_text.split(f'data-links="{CODE}"', 1)[1].split("</ul>", 1)[0]
    return {name: html.unescape(href) for href, name in re.findall(r'<a href="([^"]+)" data-link="(\w+)"', block)}


def test_the_page_counts_the_latest_due_period_and_links_to_the_filtered_core_screens(client, sector, frozen_clock):
    s = sector(4)
    a, b, c, d = s.units
    set_statuses(s.regime, {a.id: ("accepted", False), b.id: ("submitted", True), c.id: ("returned", False)})
    frozen_clock(PAST_DEADLINE)
    log_in(client, User.get_by_id(s.deputy.id), s.password)
    page = client.get(f"/p/chuyen_nganh/sector/{s.id}")
    assert page.status_code == 200
    assert "Báo cáo chuyên ngành — Nông nghiệp" in page.text and "Báo cáo tiến độ gieo trồng hằng tháng" in page.text
    assert counts_on(page.text) == {"expected": 4, "on_time": 1, "late": 1, "not_submitted": 1, "accepted": 1,
                                    "returned": 1}
    links = links_on(page.text)
    period = "period=2026-11-15%2F2026-12-14"
    assert links["queue"] == f"/inbox?regime={CODE}&{period}"
    assert links["completeness"] == f"/completeness?regime={CODE}&{period}"
    assert links["reports"] == f"/regimes/{s.regime.id}/reports?{period}"
    assert links["consolidation"] == f"/consolidation?regime={CODE}&{period}"
    assert links["figures"] == "/figures?indicator=KB0101&indicator=KB0102&unit=44.SNNMT&frequency=monthly"
    assert links["dashboard"] == "/dashboard?unit=44.SNNMT"
    for name, href in links.items():
        assert client.get(href).status_code == 200, name
    # The queue shows the late report waiting for review; completeness the unit not sent.
    assert b.name in client.get(links["queue"]).text
    assert d.name in client.get(f"/completeness?regime={CODE}&{period}&status=not_submitted").text
    # The regime's page names the delegation it was issued under while it stands.
    regime_page = client.get(f"/regimes/{s.regime.id}").text
    assert 'id="regime-authority"' in regime_page and 'id="regime-authority-ended"' not in regime_page
    # The numbers open the completeness table filtered to them.
    assert f'href="/completeness?regime={CODE}&amp;{period}&amp;status=late"' in page.text


def test_the_menu_the_delegation_page_and_the_index_lead_to_it(client, sector):
    s = sector(2)
    log_in(client, User.get_by_id(s.deputy.id), s.password)
    home = client.get("/")
    assert 'href="/p/chuyen_nganh/sector"' in home.text and "Báo cáo chuyên ngành" in home.text
    index = client.get("/p/chuyen_nganh/sector", follow_redirects=False)
    assert index.status_code == 303 and index.headers["location"] == f"/p/chuyen_nganh/sector/{s.id}"
    assert f'href="/p/chuyen_nganh/sector/{s.id}"' in client.get(f"/p/chuyen_nganh/{s.id}").text
    english = client.get(f"/p/chuyen_nganh/sector/{s.id}", headers={"Accept-Language": "en"})
    assert english.status_code == 200 and "Sector reporting — Nông nghiệp" in english.text
    assert "Reports waiting for review" in english.text and "Sent late" in english.text


def test_another_department_gets_404_and_a_delegation_never_decided_has_no_page(client, sector, make_user):
    s = sector(2)
    teacher, password = make_user(unit=s.w.education, roles=("chuyen_nganh.sector_admin",))
    log_in(client, teacher, password)
    assert client.get(f"/p/chuyen_nganh/sector/{s.id}").status_code == 404
    assert client.get("/p/chuyen_nganh/sector/999999").status_code == 404
    applied = svc.apply(s.w.teacher, application(s.w, department_unit_id=str(s.w.education.id), sector="gd",
                                                 sector_name="Giáo dục", scope_unit_ids=(),
                                                 scope_kinds=("organisation",),
                                                 administrator_ids=(str(teacher.id),)))
    assert client.get(f"/p/chuyen_nganh/sector/{applied.id}").status_code == 404


def test_after_revocation_the_page_and_the_reports_stay_readable(client, sector, make_user, frozen_clock):
    s = sector(2)
    a, b = s.units
    set_statuses(s.regime, {a.id: ("submitted", False)})
    svc.revoke(s.w.operator, s.id, "Bộ đã triển khai hệ thống ngành")
    frozen_clock(PAST_DEADLINE)
    reader, password = make_user(unit=s.w.tree.department, roles=("chuyen_nganh.sector_admin", "receiver"))
    log_in(client, reader, password)
    page = client.get(f"/p/chuyen_nganh/sector/{s.id}")
    assert page.status_code == 200
    assert 'id="chuyen_nganh-ended"' in page.text and 'data-status="revoked"' in page.text
    assert counts_on(page.text)["on_time"] == 1
    assert 'id="chuyen_nganh-new-regime"' not in page.text
    links = links_on(page.text)
    queue = client.get(links["queue"])
    assert queue.status_code == 200 and a.name in queue.text
    # The regime's page says its delegation ended (it stays "issued", yet opens nothing new).
    regime_page = client.get(f"/regimes/{s.regime.id}")
    assert regime_page.status_code == 200 and 'id="regime-authority-ended"' in regime_page.text
    # The next period opens nothing: the delegation ended.
    app = s.app
    with events.using(app.state.pm, app.state.registry, app.state.settings):
        assert open_due_periods(dt.date(2026, 12, 20), regime_ids=[s.regime.id]).reports == 0


def test_switched_off_at_one_commune_the_next_period_opens_no_report_there(sector, frozen_clock):
    s = sector(3)
    off = s.units[0]
    set_activation(off.id, "chuyen_nganh", "off", User.get_by_id(s.w.operator.actor.id), s.app.state.registry)
    frozen_clock(PAST_DEADLINE)
    app = s.app
    with events.using(app.state.pm, app.state.registry, app.state.settings):
        assert open_due_periods(dt.date(2026, 12, 20), regime_ids=[s.regime.id]).reports == 2
    opened = {(r.unit_id, r.period_start.isoformat()) for r in Report.select().where(Report.regime == s.regime.id)}
    assert (off.id, "2026-11-15") in opened  # its report of the earlier period stays
    assert (off.id, "2026-12-15") not in opened
    assert {u.id for u in s.units[1:]} <= {unit for unit, start in opened if start == "2026-12-15"}


def test_the_page_of_a_sector_of_120_communes_costs_a_bounded_number_of_queries(client, sector, frozen_clock):
    s = sector(120)
    reports = list(Report.select().where(Report.regime == s.regime.id).order_by(Report.id))
    assert len(reports) == 120
    Report.update(status="submitted", submitted_at=IN_FORCE).where(
        Report.id.in_([r.id for r in reports[:50]])).execute()
    frozen_clock(PAST_DEADLINE)
    log_in(client, User.get_by_id(s.deputy.id), s.password)
    client.get(f"/p/chuyen_nganh/sector/{s.id}")  # the session's idle clock is written once; not counted
    with QueryCounter(db.obj) as counter:
        counter.start()
        page = client.get(f"/p/chuyen_nganh/sector/{s.id}")
        statements = counter.stop()
    assert page.status_code == 200 and counts_on(page.text)["on_time"] == 50
    listing = "\n".join(re.sub(r"\s+", " ", q)[:120] for q in statements)
    # The request's own five (session, unit chain, plugins on, grants, the delegation's roles), the
    # delegation, the department, the regimes, their forms, the periods, the counts, and the
    # department's chain (may the reader draft a new regime): the same for 2 communes or 4,200.
    assert len(statements) <= 12, f"{len(statements)} queries\n{listing}"
