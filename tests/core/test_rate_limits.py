"""The per-caller budgets' store (security.md API-04, core.rate_limits): a fixed window of one
minute per bucket and caller, counted in the database. The clock is passed in; nothing sleeps."""

from __future__ import annotations

import datetime as dt
import logging
import threading

import pytest

from core import rate_limits
from core.db import db
from core.errors import SettingsError
from core.rate_limits import RateLimitWindow, spend
from core.settings import Settings, load_settings

T0 = dt.datetime(2026, 3, 2, 8, 0, 45)  # 15 seconds before its minute ends


def burst(times, *, bucket="api", caller="u:1", limit=3, now=T0):
    return [spend(bucket, caller, limit, now) for _ in range(times)]


def test_api04_the_defaults():
    assert (Settings().api_requests_per_minute, Settings().exports_per_minute) == (300, 20)


def test_api04_a_burst_is_refused_past_the_limit_until_the_minute_ends(db_session):
    assert burst(5) == [(True, 0)] * 3 + [(False, 15)] * 2
    assert spend("api", "u:1", 3, T0 + dt.timedelta(seconds=14, microseconds=999_999)) == (False, 1)


def test_api04_the_budget_is_whole_again_in_the_next_minute(db_session):
    burst(4)
    assert burst(3, now=T0 + dt.timedelta(seconds=15)) == [(True, 0)] * 3
    assert spend("api", "u:1", 3, T0 + dt.timedelta(seconds=16)) == (False, 59)


def test_api04_callers_and_buckets_have_separate_budgets(db_session):
    burst(4)
    assert burst(3, caller="u:2") == [(True, 0)] * 3
    assert burst(3, caller="t:" + "ab" * 32) == [(True, 0)] * 3
    assert burst(3, bucket="export") == [(True, 0)] * 3
    assert spend("api", "u:1", 3, T0) == (False, 15)


def test_api04_a_limit_of_0_counts_nothing(db_session):
    assert burst(50, limit=0) == [(True, 0)] * 50
    assert RateLimitWindow.select().count() == 0


def test_api04_one_row_per_window_whatever_the_number_of_requests(db_session):
    burst(7)
    assert [(w.bucket, w.caller, w.window_start, w.hits) for w in RateLimitWindow.select()] == [
        ("api", "u:1", dt.datetime(2026, 3, 2, 8, 0), 7)]


def test_api04_parallel_requests_are_all_counted(db_session):
    # Several workers at once: counted by the UPSERT, not read-modify-write; exactly `limit` pass.
    barrier = threading.Barrier(6)
    results, errors = [], []

    def request():
        try:
            with db.connection_context():
                barrier.wait(timeout=10)
                results.append(spend("export", "a:10.0.0.1", 4, T0)[0])
        except Exception as exc:  # noqa: BLE001 — reported below
            errors.append(exc)

    threads = [threading.Thread(target=request) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(results) == [False, False, True, True, True, True]
    assert RateLimitWindow.get().hits == 6


def test_api04_the_first_refusal_of_a_window_is_logged_once(db_session, caplog):
    with caplog.at_level(logging.WARNING, logger="baocao.rate_limits"):
        burst(6)
        burst(5, now=T0 + dt.timedelta(minutes=1))
    refusals = [r for r in caplog.records if "rate limit reached" in r.getMessage()]
    assert len(refusals) == 2 and "u:1" in refusals[0].getMessage()


def test_api04_purge_removes_the_windows_that_have_ended(db_session):
    for minutes in (0, 1, 2, 3):
        spend("api", "u:1", 3, T0 + dt.timedelta(minutes=minutes))
    assert rate_limits.purge(now=T0 + dt.timedelta(minutes=3)) == 2
    assert sorted(w.window_start.minute for w in RateLimitWindow.select()) == [2, 3]
    assert burst(1, now=T0 + dt.timedelta(minutes=3)) == [(True, 0)]  # the current one counts on


def test_api04_the_settings_come_from_toml_and_environment(tmp_path):
    path = tmp_path / "baocao.toml"
    path.write_text("api_requests_per_minute = 60\nexports_per_minute = 0\n", encoding="utf-8")
    from_file = load_settings(path, env={})
    assert (from_file.api_requests_per_minute, from_file.exports_per_minute) == (60, 0)
    from_env = load_settings(path, env={"BAOCAO_API_REQUESTS_PER_MINUTE": "0", "BAOCAO_EXPORTS_PER_MINUTE": "5"})
    assert (from_env.api_requests_per_minute, from_env.exports_per_minute) == (0, 5)


@pytest.mark.parametrize("value", ["-1", "many", "1.5"])
def test_api04_a_bad_budget_is_refused(value):
    with pytest.raises(SettingsError):
        load_settings(env={"BAOCAO_EXPORTS_PER_MINUTE": value})


def test_api04_0_is_still_refused_where_it_means_nothing():
    with pytest.raises(SettingsError):
        load_settings(env={"BAOCAO_LOCKOUT_MINUTES": "0"})
