"""The socio-economic plugin: its indicators load once and never overwrite an edit, its demo
figures follow the cut-off windows, and the overview adds up what a leader reads."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from starlette.testclient import TestClient

from core.catalogue import indicators as ind
from core.db import db
from core.catalogue.figures import IndicatorValue, put_values
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
    from core.accounts.access import Grant, Role

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
    from core.regimes import regimes as rg
    from plugins.kinhte_xahoi.regimes import planning_unit_code, regime_specs

    stc = Unit.create(code="QT.STC", name="Sở Tài chính", kind="department", parent=province)
    assert planning_unit_code(None) == "QT.STC" and planning_unit_code("QT.X") == "QT.X"
    specs = regime_specs(planning_unit_code(None))
    # Each period kind twice: the departments' regime and the communes', each with its own form.
    assert [s.frequency for s in specs] == ["monthly", "quarterly", "half_year", "nine_months", "annual"] * 2
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


# -- every regime has its data form; communes are asked only for what a commune produces ------------

PROVINCE_ONLY = {"KX0101", "KX0102", "KX0201", "KX0202", "KX0301", "KX0302", "KX0303", "KX0306"}


def _form_of(spec):
    from core.regimes.form_engine import compile_form

    return compile_form(spec.form["definition"])


def test_each_period_kind_has_a_form_for_the_departments_and_one_for_the_communes():
    from plugins.kinhte_xahoi.regimes import regime_specs

    specs = {s.code: s for s in regime_specs("QT.STC")}
    kinds = ("monthly", "quarterly", "half_year", "nine_months", "annual")
    assert sorted(specs) == sorted([f"kinhte_xahoi.{k}" for k in kinds] + [f"kinhte_xahoi.{k}_commune" for k in kinds])
    assert all(s.form is not None for s in specs.values())
    assert len({s.form["code"] for s in specs.values()}) == 10
    for kind in kinds:
        department, commune = specs[f"kinhte_xahoi.{kind}"], specs[f"kinhte_xahoi.{kind}_commune"]
        assert department.reporting_kinds == ("department",) and commune.reporting_kinds == ("commune",)
        commune_codes = {r.indicator for r in _form_of(commune).rows if r.kind == "indicator"}
        assert commune_codes and not commune_codes & PROVINCE_ONLY, kind
        levels = {r["code"]: r["levels"].split(",") for r in rows() if len(r["code"]) == 6}
        assert all("commune" in levels[c] for c in commune_codes)
        assert {"KX0201", "KX0306"} <= {r.indicator for r in _form_of(department).rows if r.kind == "indicator"}


@pytest.mark.parametrize("frequency, labels", [
    ("monthly", ["Thực hiện tháng {m}/{y}", "Lũy kế {m} tháng năm {y}", "Kế hoạch năm {y}"]),
    ("quarterly", ["Thực hiện quý {m-1}/{py}", "Thực hiện quý {m}/{y}", "Lũy kế {m} quý năm {y}"]),
    ("half_year", ["Cùng kỳ năm {y-1}", "Thực hiện kỳ báo cáo năm {y}", "Lũy kế từ đầu năm {y}"]),
    ("nine_months", ["9 tháng năm {y-1}", "Thực hiện 9 tháng năm {y}", "Ước thực hiện năm {y}"]),
    ("annual", ["Thực hiện năm {y-1}", "Thực hiện năm {y}", "Kế hoạch năm {y+1}"]),
])
def test_each_period_kind_has_its_own_columns(frequency, labels):
    from plugins.kinhte_xahoi.forms import definition, indicators_for

    form = definition(frequency, "commune")
    assert [label for label in labels if label not in [c["label"] for c in form["columns"]]] == []
    codes = [r["code"] for r in indicators_for(frequency, "province")]
    # GRDP growth is quarterly and longer, the poverty rate yearly: never in a monthly form.
    assert ("KX0101" in codes) == (frequency != "monthly")
    assert ("KX0704" in codes) == (frequency == "annual")


def test_the_catalogue_gives_commune_indicators_their_level(province):
    assert "commune" in ind.current("KX0601").levels.split(",")  # fisheries: a commune counts its catch
    assert ind.current("KX0306").levels == "province"  # CPI: only the province has one


def test_a_regime_shows_its_deadlines_in_plain_words(site):
    from core.regimes import regimes as rg
    from plugins.kinhte_xahoi.regimes import regime_specs

    client, login, admin, _ = site
    with db.connection_context():
        for spec in regime_specs():
            rg.load_spec("kinhte_xahoi", spec)
        regime = rg.Regime.get(rg.Regime.code == "kinhte_xahoi.monthly_commune")
    login(*admin)
    page = client.get(f"/regimes/{regime.id}")
    assert page.status_code == 200
    assert "1 ngày làm việc sau ngày chốt số liệu" in page.text
    assert "1 ngày làm việc sau thời hạn của cấp liền trước" in page.text
    assert "ngày 25 hằng tháng" in page.text
    for code in ("1wd", "day:25", "ISO 8601"):
        assert code not in page.text, code
