"""baocao's pytest plugin as a vendor uses it: only its fixtures, no import from the suite.

Run on SQLite and, with BAOCAO_TEST_DATABASE_URL, on PostgreSQL (the fixtures choose)."""

from __future__ import annotations

import datetime as dt


def test_issued_regime_runs_from_the_communes_to_the_department(issued_regime, unit_tree):
    regime = issued_regime.regime
    assert (regime.code, regime.status, regime.frequency) == ("test.monthly", "issued", "monthly")
    assert regime.receiving_unit_id == unit_tree.department.id
    assert regime.issuing_unit_id == unit_tree.province.id
    # One report a commune for the current period, none for the province or the department.
    assert sorted(r.unit_id for r in issued_regime.reports) == sorted(c.id for c in unit_tree.communes)
    assert {(r.status, r.receiver_id) for r in issued_regime.reports} == {("not_started", unit_tree.department.id)}
    assert issued_regime.form.name == "Báo cáo tiến độ gieo trồng hằng tháng"


def test_the_frozen_clock_chooses_the_open_period(frozen_clock, make_regime):
    frozen_clock(dt.datetime(2026, 3, 2, 3, 0))  # March 2026's window runs 15/02 – 14/03 (Decree 09)
    issued = make_regime("test.march")
    assert {(r.year, r.period_index) for r in issued.reports} == {(2026, 3)}
    assert {(r.period_start, r.period_end) for r in issued.reports} == {(dt.date(2026, 2, 15), dt.date(2026, 3, 14))}


def test_make_regime_chooses_units_and_receiver(make_regime, unit_tree):
    issued = make_regime("test.one_commune", units=[unit_tree.communes[1]], receiver=unit_tree.province)
    assert [r.unit_id for r in issued.reports] == [unit_tree.communes[1].id]
    assert issued.reports[0].receiver_id == unit_tree.province.id


def test_the_reporter_opens_fills_and_saves_the_report(client, open_report, unit_tree):
    assert open_report.report.unit_id == unit_tree.communes[0].id
    open_report.log_in(client)
    page = client.get(open_report.url)
    assert page.status_code == 200
    for label in ("Lúa", "Ngô", "Cộng"):
        assert label in page.text
    open_report.fill(client, {"lua.cur": "12,5", "ngo.cur": "3"})
    saved = client.get(open_report.url).text
    assert 'value="12,5"' in saved and "15,5" in saved  # the typed figure and the computed total


def test_the_reporter_of_one_commune_cannot_open_the_others_report(client, open_report, unit_tree):
    other = open_report.regime.report_of(unit_tree.communes[1])
    open_report.log_in(client)
    assert client.get(f"/reports/{other.id}").status_code in (403, 404)
