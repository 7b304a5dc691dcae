"""The worker's queue (setting ``job_broker``, docs/topology.md): huey's SQL storage in the
application's database by default, or a Redis server. Several workers on one broker run each
periodic task once per tick (core.jobs.claim_periodic), and a task run through Redis gives what it
gives through the SQL storage. A missing redis package, a server that does not answer, or a broker
that is not Redis is said in one bilingual line.

The Redis tests use the server on 127.0.0.1:6379 (database 7, huey's keys emptied before and after): CI starts
it (.ci/setup); without it they fail, saying so — they are not skipped."""

from __future__ import annotations

import datetime as dt
import sys

import pytest

from core.accounts.login import LoginAttempt
from core.errors import SettingsError
from core.jobs import OncePerTickScheduler, claim_key, make_huey
from core.plugins import build_plugin_manager
from core.registry import build_registry
from core.settings import load_settings
from tests.fixtures.plugins import fx
from tests.fixtures.plugins import fx_jobs

REDIS_URL = "redis://127.0.0.1:6379/7"  # this file's own database number on the local server
TICK = dt.datetime(2026, 3, 2, 8, 30)  # UTC: two core tasks and fx_jobs' two jobs (every ten minutes)
LATER = dt.datetime(2026, 3, 2, 8, 45)  # core.deliver_outbox and core.purge_login_attempts


@pytest.fixture
def redis_db():
    import redis  # in the [test] extra as well as [redis]
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(f"these tests need the Redis server on 127.0.0.1:6379, which CI starts: {exc}")
    # One test at a time on this database across pytest-xdist's processes (the queue is huey's
    # "baocao" for all of them); huey's keys, not the lock's, are emptied before and after.
    with client.lock("baocao_tests.job_broker.lock", timeout=120, blocking_timeout=120):
        _empty(client)
        yield REDIS_URL
        _empty(client)
    client.close()


def _empty(client) -> None:
    for key in client.scan_iter("huey.*"):
        client.delete(key)


@pytest.fixture(params=["sql", "redis"])
def broker(request, make_settings, db_session):
    """Settings whose ``job_broker`` is the SQL storage (the test database) or the local Redis."""
    url = request.getfixturevalue("redis_db") if request.param == "redis" else ""
    return make_settings(job_broker=url)


@pytest.fixture
def plugins(settings):
    pm = build_plugin_manager(settings, builtins=fx("fx_jobs"), load_entrypoints=False, strict=True)
    fx_jobs.RUNS.clear()
    yield pm, build_registry(pm, settings)
    fx_jobs.RUNS.clear()


def tick(huey, when):
    """What a worker's scheduler does at ``when``: enqueue the periodic tasks it claims."""
    OncePerTickScheduler(huey, stop_flag=None, interval=1, periodic=True).enqueue_periodic_tasks(when)


def run_queue(huey) -> dict:
    """What a worker's threads do: take each task off the queue and run it; {task name: result}."""
    results = {}
    while huey.pending_count():  # not dequeue() until None: on Redis it waits a second for more
        task = huey.dequeue()
        results[task.name] = huey.execute(task)
    return results


def test_two_workers_on_one_broker_run_each_periodic_task_once_a_tick(broker, plugins):
    first, second = make_huey(broker, plugins=plugins), make_huey(broker, plugins=plugins)  # two machines
    tick(first, TICK)
    tick(second, TICK.replace(second=40))  # the other scheduler, 40 s later in the same minute
    names = sorted(task.name for task in first.pending())
    assert names == ["core.deliver_outbox", "core.purge_expired_sessions", "fx_jobs.explode", "fx_jobs.units"]
    run_queue(second)
    assert len(fx_jobs.RUNS) == 1  # the plugin's job ran once, by whichever worker took it
    # The next minute is a new tick: the every-minute task once more, the ten-minute jobs not.
    tick(second, TICK + dt.timedelta(minutes=1))
    tick(first, TICK + dt.timedelta(minutes=1, seconds=5))
    assert [task.name for task in first.pending()] == ["core.deliver_outbox"]
    run_queue(first)
    # Claims do not pile up in the broker: three minutes on, the first tick's are gone.
    assert first.storage.has_data_for_key(claim_key("fx_jobs.units", TICK))
    tick(first, TICK + dt.timedelta(minutes=3))
    assert not first.storage.has_data_for_key(claim_key("fx_jobs.units", TICK))
    assert not first.storage.has_data_for_key(claim_key("core.deliver_outbox", TICK))


def test_a_core_task_and_a_plugin_job_give_the_same_results_through_redis_and_sql(make_settings, db_session,
                                                                                  redis_db, plugins):
    from core.models import PluginActivation, Unit

    province = Unit.create(code="44", name="Tỉnh", kind="province")
    for code in ("441", "442"):
        Unit.create(code=code, name=code, kind="district", parent=province)
    PluginActivation.create(unit=province, plugin="fx_jobs", enabled=True)
    outcomes = []
    for url in ("", redis_db):
        old = dt.datetime.utcnow() - dt.timedelta(days=40)
        LoginAttempt.insert_many([{"address": "10.0.0.1", "username": f"u{i}", "attempted_at": old}
                                  for i in range(3)]).execute()
        huey = make_huey(make_settings(job_broker=url), plugins=plugins)
        tick(huey, TICK)
        tick(huey, LATER)
        outcomes.append(run_queue(huey))
    sql, redis = outcomes
    assert sql["core.purge_login_attempts"] == 3 and sql["fx_jobs.units"] == 3  # the province and below
    assert redis == sql
    assert fx_jobs.RUNS[0] == fx_jobs.RUNS[1] and len(fx_jobs.RUNS) == 2


def test_a_redis_broker_that_does_not_answer_stops_the_worker_in_both_languages(make_settings):
    settings = make_settings(job_broker="redis://127.0.0.1:1/0")  # nothing listens on port 1
    with pytest.raises(SettingsError) as caught:
        make_huey(settings)
    assert caught.value.key == "topology.error.redis_down"
    assert "Máy chủ Redis của hàng đợi công việc (redis://127.0.0.1:1/0) không trả lời" in str(caught.value)
    assert "The job queue's Redis server (redis://127.0.0.1:1/0) does not answer" in str(caught.value)


def test_a_redis_broker_without_the_redis_package_is_named(make_settings, monkeypatch):
    monkeypatch.setitem(sys.modules, "redis", None)  # as if the [redis] extra were not installed
    with pytest.raises(SettingsError) as caught:
        make_huey(make_settings(job_broker="redis://127.0.0.1:6379/7"))
    assert caught.value.key == "topology.error.redis_package"
    assert "pip install 'baocao[redis]'" in str(caught.value)


def test_the_broker_setting_takes_only_redis_addresses(tmp_path):
    assert load_settings(env={"BAOCAO_JOB_BROKER": "redis://10.1.2.3:6379/0"}).job_broker == "redis://10.1.2.3:6379/0"
    with pytest.raises(SettingsError) as caught:
        load_settings(env={"BAOCAO_JOB_BROKER": "amqp://10.1.2.3/"})
    assert caught.value.params["setting"] == "job_broker"
    assert load_settings(env={"BAOCAO_DATABASE_REPLICA_URL": "postgresql://r@10.1.2.4/baocao"}).database_replica_url
    with pytest.raises(SettingsError):
        load_settings(env={"BAOCAO_DATABASE_REPLICA_URL": "mysql://r@10.1.2.4/baocao"})
