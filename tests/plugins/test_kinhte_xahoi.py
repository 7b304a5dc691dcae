"""The socio-economic plugin: its indicators load once and never overwrite an edit, its demo
figures follow the cut-off windows, and the overview adds up what a leader reads."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from starlette.testclient import TestClient

from core import indicators as ind
from core.db import db
from core.indicator_values import IndicatorValue, put_values
from core.models import Unit
from plugins.kinhte_xahoi.catalogue import ensure_catalogue, rows
from plugins.kinhte_xahoi.figures import demo_figures
from plugins.kinhte_xahoi.overview import monthly_overview
from tests.conftest import csrf_from

TODAY = dt.date(2026, 11, 26)  # the November window (15/10–14/11) is closed, December's is open


@pytest.fixture
def province(db_session):
    ensure_catalogue()
    return Unit.create(code="44", name="Tỉnh Quảng Trị", kind="province")


def test_the_catalogue_loads_once_and_keeps_an_administrators_edit(province):
    indicators = [r for r in rows() if len(r["code"]) == 6]
    assert ind.Indicator.select().where(ind.Indicator.code.startswith("KX")).count() == len(indicators)
    ind.save_indicator({"code": "KX0301", "name": "Tổng mức bán lẻ hàng hóa và doanh thu dịch vụ (đã sửa)"})
    assert ensure_catalogue() == 0
    assert ind.current("KX0301").version == 2
    assert ind.current("KX0301").name.endswith("(đã sửa)")


def test_demo_figures_follow_the_cut_off_windows(province):
    figures = demo_figures(province.id, TODAY)
    retail = {(f.year, f.index): f.kind for f in figures if f.code == "KX0301" and f.frequency == "monthly"}
    assert retail[(2026, 11)] == "actual" and retail[(2026, 12)] == "estimate"
    assert len([k for k in retail if k[0] == 2025]) == 12 and (2027, 1) not in retail
    assert demo_figures(province.id, TODAY) == figures  # the same on every machine
    assert put_values(figures, source="demo") == len(figures)
    assert put_values(figures, source="demo") == 0


def test_the_overview_adds_up_the_year_to_date(province):
    put_values(demo_figures(province.id, TODAY), source="demo")
    rows_ = {r.code: r for r in monthly_overview(province.id, 2026, 11)}
    retail = rows_["KX0301"]
    months = [IndicatorValue.get(code="KX0301", unit=province.id, frequency="monthly", year=2026, index=i,
                                 kind="actual").value for i in range(1, 12)]
    assert retail.kind == "actual" and retail.ytd == sum(months)
    assert retail.month_change == (retail.month / retail.month_last_year * 100).quantize(Decimal("0.1"))
    assert retail.plan_share == (retail.ytd / retail.plan * 100).quantize(Decimal("0.1"))
    iip = rows_["KX0201"]
    assert iip.month is not None and iip.ytd is None and iip.plan_share is None  # an index is not added up
    assert "KX01" not in rows_  # GRDP has no monthly figure: its group has no row in a month
    assert [r.code for r in monthly_overview(province.id, 2026, 11) if r.is_heading][0] == "KX02"


@pytest.fixture
def site(make_app, make_user):
    app = make_app(strict=True)
    with TestClient(app) as client:
        admin, password = make_user("quantri", unit_code="44", is_admin=True)
        with db.connection_context():
            province = Unit.get(Unit.code == "44")
            commune = Unit.create(code="18880", name="Phường Đồng Hới", kind="commune", parent=province)
            put_values(demo_figures(province.id, dt.date.today()), source="demo")

        def login(username, pw):
            client.cookies.clear()
            page = client.get("/login")
            r = client.post("/login", data={"username": username, "password": pw,
                                            "csrf_token": csrf_from(page.text)}, follow_redirects=False)
            assert r.status_code == 303

        yield client, login, (admin.username, password), commune


def test_the_overview_page_shows_the_latest_month_and_any_earlier_one(site, make_user):
    client, login, admin, _ = site
    login(*admin)
    page = client.get("/p/kinhte_xahoi/")
    assert page.status_code == 200
    assert "Tổng mức bán lẻ hàng hóa và doanh thu dịch vụ tiêu dùng" in page.text
    assert "Lũy kế" in page.text
    last_year = dt.date.today().year - 1
    earlier = client.get(f"/p/kinhte_xahoi/?period={last_year}-06", headers={"HX-Request": "true"})
    assert earlier.status_code == 200 and "<html" not in earlier.text
    assert f"Tháng 6/{last_year - 1}" in earlier.text  # the comparison column names last year's month
    assert client.get("/p/kinhte_xahoi/?period=1999-01").status_code == 404
    assert client.get("/p/kinhte_xahoi/?period=abc").status_code == 404


def test_a_commune_sees_its_own_empty_state_not_the_provinces_figures(site, make_user):
    from core.access import Grant, Role

    client, login, _, commune = site
    user, password = make_user("canbo_xa", unit_code="18880")
    with db.connection_context():
        Grant.create(user=user, role=Role.get(Role.code == "viewer"), unit=commune)
    login(user.username, password)
    page = client.get("/p/kinhte_xahoi/")
    assert page.status_code == 200 and "Chưa có số liệu kinh tế - xã hội của Phường Đồng Hới" in page.text
    assert client.get("/p/kinhte_xahoi/?unit=44").status_code == 404


@pytest.mark.parametrize("year", [2026, 2027, 2028])
def test_the_shipped_regimes_load_as_drafts_that_only_lack_the_provinces_decision(province, year):
    from core import regimes as rg
    from plugins.kinhte_xahoi.regimes import planning_unit_code, regime_specs

    stc = Unit.create(code="QT.STC", name="Sở Tài chính", kind="department", parent=province)
    assert planning_unit_code(None) == "QT.STC" and planning_unit_code("QT.X") == "QT.X"
    specs = regime_specs(planning_unit_code(None))
    assert [s.frequency for s in specs] == ["monthly", "quarterly", "half_year", "nine_months", "annual"]
    drafts = [rg.load_spec("kinhte_xahoi", spec) for spec in specs]
    assert all(d.status == rg.DRAFT and d.preparing_unit_id == stc.id for d in drafts)
    assert rg.load_spec("kinhte_xahoi", specs[0]) is None  # loaded once, never overwritten
    today = dt.date(year, 1, 2)
    for draft in drafts:
        problems = rg.issue_problems(draft, rg.work_calendar(), today)
        assert [p.key for p in problems] == ["regimes.error.legal_basis"], draft.code
        draft.legal_number, draft.legal_date = "15/2026/QĐ-UBND", dt.date(2026, 1, 5)
        # Every window of this year and the next passes Art. 8 cl. 5, Tết included.
        assert rg.issue_problems(draft, rg.work_calendar(), today) == [], draft.code
