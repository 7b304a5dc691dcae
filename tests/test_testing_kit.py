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


def test_between_tests_a_postgres_database_gets_back_the_templates_rows_and_schema():
    """The PostgreSQL reset (web.testing._Postgres) puts back rows, sequences and triggers, and makes
    a new copy when a test changed the schema. On SQLite each test copies a file: nothing to reset."""
    import os

    import psycopg
    import pytest

    from core.db import close_db
    from web.testing import _Postgres

    url = os.environ.get("BAOCAO_TEST_DATABASE_URL") or ""
    if not url.startswith("postgres"):
        pytest.skip("PostgreSQL only: BAOCAO_TEST_DATABASE_URL names no server in this run")
    server = _Postgres(url.split("?")[0][:60] + "_kit")
    try:
        server.build_template()
        first = server.fresh(empty=False)

        def rows(sql):
            with psycopg.connect(first) as conn:
                return conn.execute(sql).fetchall()

        roles_before = rows("SELECT * FROM core_role_permission ORDER BY id")
        with psycopg.connect(first, autocommit=True) as conn:
            unit_id = conn.execute("INSERT INTO core_unit (code, name, kind) VALUES ('X', 'Xã X', 'commune') "
                                   "RETURNING id").fetchone()[0]
            conn.execute("DELETE FROM core_role_permission WHERE id = (SELECT min(id) FROM core_role_permission)")
            left_open = psycopg.connect(first)  # a connection a test forgot: the reset ends it
            left_open.execute("SELECT 1")

        assert server.fresh(empty=False) == first
        assert rows("SELECT count(*) FROM core_unit") == [(0,)]
        assert rows("SELECT * FROM core_role_permission ORDER BY id") == roles_before
        with psycopg.connect(first, autocommit=True) as conn:
            again = conn.execute("INSERT INTO core_unit (code, name, kind) VALUES ('Y', 'Xã Y', 'commune') "
                                 "RETURNING id").fetchone()[0]
            assert again == unit_id  # the sequence starts where the template's does
            with pytest.raises(psycopg.Error):  # the audit chain is append-only again
                conn.execute("DELETE FROM core_audit_event")
        with pytest.raises(psycopg.OperationalError):
            left_open.execute("SELECT 1")

        with psycopg.connect(first, autocommit=True) as conn:  # a plugin migration's table
            conn.execute("CREATE TABLE nongnghiep_extra (x integer)")
        server.fresh(empty=False)
        assert rows("SELECT count(*) FROM pg_class WHERE relname = 'nongnghiep_extra'") == [(0,)]

        server.fresh(empty=True)
        assert rows("SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace") == [(0,)]
        server.fresh(empty=False)
        assert rows("SELECT count(*) FROM core_unit") == [(0,)]
        assert rows("SELECT * FROM core_role_permission ORDER BY id") == roles_before
    finally:
        close_db()
        server.drop()


def test_a_service_test_gets_the_database_as_the_migrations_leave_it(db_session):
    """No row an application's start writes: the plugins' catalogues and regimes are not there."""
    from core.catalogue.indicators import Indicator
    from core.regimes.regimes import Regime

    assert (Indicator.select().count(), Regime.select().count()) == (0, 0)


def test_an_application_test_gets_the_database_its_start_has_run_on(app):
    """The plugins' catalogue and regimes are loaded before the application starts, and its start
    then finds nothing left to write: not one audit event (what a restarted server does)."""
    from starlette.testclient import TestClient

    from core.audit import AuditEvent
    from core.catalogue.indicators import Indicator
    from core.db import db
    from core.regimes.regimes import Regime

    def counts():
        with db.connection_context():
            return (Indicator.select().where(Indicator.code.startswith("KX")).count(),
                    Regime.select().where(Regime.plugin == "kinhte_xahoi").count(), AuditEvent.select().count())

    before = counts()
    assert before[0] > 0 and before[1] > 0
    with TestClient(app) as client:
        assert client.get("/login").status_code == 200
    assert counts() == before
