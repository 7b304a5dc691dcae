"""The read-only replica (setting ``database_replica_url``, docs/topology.md): the leaders'
dashboard, the figures explorer and their Excel files read through it; everything else, and every
write, stays on the primary; a replica that is unset or down means the primary. The "replica" is a
copy of the test database taken before the primary's figure changed, so a page tells by its number
which database it read. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import logging
import re
import sqlite3

import openpyxl
import peewee
import pytest

from core.api import Figure, put_figures, save_indicator, save_indicator_group
from core.db import close_db, close_replicas, db, parse_database_url, reading_from_replica
from core.models import Unit

OLD, NEW = "111", "999"  # the figure as the replica has it, and as the primary has it since
QUERY = {"indicator": "RP0101", "unit": "44", "frequency": "monthly", "from": "2026-2", "to": "2026-2"}


def _replica_url(primary: str, tmp_path) -> str:
    spec = parse_database_url(primary)
    if spec.backend == "sqlite":
        return f"sqlite:///{tmp_path / 'replica.db'}"
    return primary.rsplit("/", 1)[0] + f"/{spec.database}_replica"


def _copy(primary: str, replica: str) -> None:
    """The replica as streaming replication would leave it: the primary's content at this moment."""
    source, target = parse_database_url(primary), parse_database_url(replica)
    if source.backend == "sqlite":
        with sqlite3.connect(source.database) as src, sqlite3.connect(target.database) as dst:
            src.backup(dst)
        return
    import psycopg

    close_db()  # CREATE DATABASE … TEMPLATE needs the primary without connections
    admin = primary.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{target.database}" TEMPLATE "{source.database}"')


def _drop(replica: str) -> None:
    close_replicas()
    spec = parse_database_url(replica)
    if spec.backend == "postgresql":
        import psycopg

        with psycopg.connect(replica.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{spec.database}" WITH (FORCE)')


@pytest.fixture
def replica_url(database_url, tmp_path):
    url = _replica_url(database_url, tmp_path)
    yield url
    _drop(url)


@pytest.fixture
def settings(make_settings, replica_url):
    return make_settings(database_replica_url=replica_url)


@pytest.fixture
def world(app, client, unit_tree, login, frozen_clock, database_url, replica_url):
    """A viewer of the province logged in; the province's February figure was 111 when the replica
    was copied and is 999 on the primary now."""
    frozen_clock(dt.datetime(2026, 3, 20, 3, 0))
    login(unit=unit_tree.province, roles=("viewer",))
    with db.connection_context():
        save_indicator_group("RP01", "Chỉ tiêu thử của bản sao", "province")
        save_indicator({"code": "RP0101", "name": "Tổng mức bán lẻ", "group": "RP01", "levels": "province",
                        "unit_of_measure": "tỷ đồng", "aggregation": "sum"})
        province = Unit.get(Unit.code == "44")
        put_figures([Figure("RP0101", province.id, "monthly", 2026, 2, "actual", OLD)], source="test")
    _copy(database_url, replica_url)
    with db.connection_context():
        put_figures([Figure("RP0101", province.id, "monthly", 2026, 2, "actual", NEW)], source="test")
    return unit_tree


def explorer_number(client) -> str:
    page = client.get("/figures", params=QUERY)
    assert page.status_code == 200
    row = re.search(r'<table[^>]*id="explorer-table".*?RP0101.*?</tr>', page.text, re.S).group(0)
    return re.findall(r"<td[^>]*>\s*([\d.,]+)\s*</td>", row)[-1]


def dashboard_numbers(client) -> set:
    page = client.get("/dashboard")
    assert page.status_code == 200
    return set(re.findall(r'<td class="num">([^<]*)</td>', page.text))


def test_the_leaders_pages_and_their_files_read_the_replica(client, world):
    assert explorer_number(client) == OLD
    numbers = dashboard_numbers(client)
    assert OLD in numbers and NEW not in numbers
    book = openpyxl.load_workbook(io.BytesIO(client.get("/figures/export.xlsx", params=QUERY).content))
    assert OLD in {str(cell.value) for row in book.active.iter_rows() for cell in row}
    board = openpyxl.load_workbook(io.BytesIO(client.get("/dashboard/export?unit=44").content))
    numbers = {cell.value for sheet in board for row in sheet.iter_rows() for cell in row}
    assert 111 in numbers and 999 not in numbers


def test_the_replica_refuses_writes(world, replica_url):
    with db.connection_context(), reading_from_replica(replica_url) as used:
        assert used
        with pytest.raises(peewee.DatabaseError):
            with db.atomic():
                Unit.create(code="99", name="Không được ghi", kind="province")
    with db.connection_context():
        assert not Unit.select().where(Unit.code == "99").exists()


def _replica_setting(client, monkeypatch, url: str) -> None:
    """The running application's replica setting changed in place: the session stays logged in."""
    monkeypatch.setattr(client.app.state, "settings",
                        dataclasses.replace(client.app.state.settings, database_replica_url=url))


def test_without_a_replica_the_pages_read_the_primary(client, world, monkeypatch):
    _replica_setting(client, monkeypatch, "")
    assert explorer_number(client) == NEW
    assert NEW in dashboard_numbers(client)


def test_a_replica_that_is_down_means_the_primary_logged_once_until_it_answers(client, world, database_url,
                                                                             tmp_path, caplog, monkeypatch):
    import core.db

    # A replica not there yet: a missing SQLite folder, a PostgreSQL database not created.
    spec = parse_database_url(database_url)
    late = (f"sqlite:///{tmp_path / 'late' / 'replica.db'}" if spec.backend == "sqlite"
            else _replica_url(database_url, tmp_path) + "_late")
    monkeypatch.setattr(core.db, "REPLICA_RETRY_SECONDS", 0)  # every page tries it again
    _replica_setting(client, monkeypatch, late)
    try:
        with caplog.at_level(logging.INFO, logger="baocao.db"):
            assert explorer_number(client) == NEW
            assert explorer_number(client) == NEW
            warnings = [r.getMessage() for r in caplog.records if "does not answer" in r.getMessage()]
            assert len(warnings) == 1, warnings  # two failed tries, one line in the log
            if spec.backend == "sqlite":
                (tmp_path / "late").mkdir()
            _copy(database_url, late)  # the replica comes up with 999 ...
            with db.connection_context():  # ... while the primary moves on
                put_figures([Figure("RP0101", Unit.get(Unit.code == "44").id, "monthly", 2026, 2, "actual", "555")],
                            source="test")
            assert explorer_number(client) == NEW
        assert any("answers again" in r.getMessage() for r in caplog.records)
    finally:
        _drop(late)


def test_repeated_figures_questions_keep_a_plan_for_their_values(world):
    """A pooled connection asks the same figures question many times: PostgreSQL must plan each run
    for its values, never switch to a generic plan of a prepared statement (20 ms → 300 ms on a
    national-size store: docs/topology.md). SQLite has no such plans: there the question just runs."""
    from core.catalogue import figures
    from core.db import is_sqlite

    with db.connection_context():
        province = Unit.get(Unit.code == "44")
        for _ in range(12):  # psycopg prepares it on the server from the fifth run
            rows = figures.query(["RP0101"], [province.id], [("monthly", 2026, 2)], kinds=("actual",))
        assert [str(r.value.normalize()) for r in rows] == [NEW]
        if not is_sqlite():
            # Prepared from the fifth run (parsed once), yet planned for each run's values.
            assert db.execute_sql("SHOW plan_cache_mode").fetchone()[0] == "force_custom_plan"
            generic, custom = db.execute_sql("SELECT coalesce(sum(generic_plans), 0), coalesce(sum(custom_plans), 0) "
                                             "FROM pg_prepared_statements").fetchone()
            assert generic == 0 and custom > 0
