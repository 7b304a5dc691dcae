"""Plugin failures in the worker reach the database (issue 13): a job that raises, and a report
subscriber that raises inside a task, are written to ``core_plugin_failure`` (one row per plugin,
stage and error, counted) for the web server's plugins page; the web server's own manager writes
nothing; the row of a subscriber's failure is written after the transition's transaction, never
inside it."""

from __future__ import annotations

import datetime as dt
import importlib.util
import types

import pytest
from playhouse.migrate import SchemaMigrator

from core import plugin_failures
from core.accounts import login as accounts
from core.accounts.access import Grant, Role
from core.accounts.permissions import core_access
from core.api import Domain, Job, hookimpl
from core.audit import AuditEvent
from core.db import db, transaction
from core.errors import Forbidden
from core.jobs import make_huey
from core.migrate import CORE_MIGRATIONS
from core.models import Unit
from core.plugin_failures import PluginFailure
from core.plugins import build_plugin_manager
from core.registry import build_registry
from core.reporting import events
from core.reporting.opening import Report
from tests.fixtures.forms import form_world
from tests.fixtures.plugins import fx
from tests.fixtures.plugins import fx_jobs

APRIL = dt.datetime(2026, 4, 2, 8, 5)  # the hourly "open periods" at five past, in April's window


@pytest.fixture
def worker_plugins(settings, db_session):
    """The plugin manager and registry ``baocao worker`` builds, with fx_jobs (one job always raises)."""
    pm = build_plugin_manager(settings, builtins=fx("fx_good", "fx_jobs"), load_entrypoints=False, strict=True)
    fx_jobs.RUNS.clear()
    yield pm, build_registry(pm, settings)
    fx_jobs.RUNS.clear()


def rows() -> list[PluginFailure]:
    return list(PluginFailure.select().order_by(PluginFailure.plugin, PluginFailure.stage, PluginFailure.id))


def test_a_job_that_fails_twice_in_the_worker_is_one_row_counted_twice(settings, worker_plugins, frozen_clock):
    huey = make_huey(settings, immediate=True, plugins=worker_plugins)
    first, second = dt.datetime(2026, 3, 2, 8, 30), dt.datetime(2026, 3, 2, 8, 40)
    for when in (first, second):
        frozen_clock(when)
        for task in huey.read_periodic(when):  # what the consumer does at 08:30, then at 08:40
            if task.name.startswith("fx_jobs."):
                huey.execute(task)
    (row,) = rows()
    assert (row.plugin, row.stage, row.process, row.occurrences) == ("fx_jobs", "job", "worker", 2)
    assert row.error == "RuntimeError: fx_jobs: the remote archive refused the upload"
    assert (row.first_at, row.last_at) == (first, second)  # naive UTC, as every stored time
    assert row.location.startswith("fx_jobs/__init__.py:") and row.location.endswith(" in explode")
    assert len(worker_plugins[0].infos["fx_jobs"].errors) == 2  # the worker's own log of them, as before
    assert fx_jobs.RUNS == [[], []]  # the other job ran each time


def test_another_error_of_the_same_job_is_a_row_of_its_own(settings, worker_plugins):
    huey = make_huey(settings, immediate=True, plugins=worker_plugins)
    huey.plugin_jobs["fx_jobs.explode"]()
    worker_plugins[0].record_error("fx_jobs", "job", KeyError("archive_url"))
    assert [(r.stage, r.error, r.occurrences) for r in rows()] == [
        ("job", "RuntimeError: fx_jobs: the remote archive refused the upload", 1), ("job", "KeyError: 'archive_url'", 1)]


def test_the_web_servers_manager_writes_nothing(settings, db_session):
    pm = build_plugin_manager(settings, builtins=fx("fx_good", "fx_jobs"), load_entrypoints=False)
    assert pm.failure_log is None
    pm.record_error("fx_jobs", "request", RuntimeError("boom"))
    pm.fail("fx_jobs", "startup", RuntimeError("licence expired"))
    assert rows() == []
    assert pm.infos["fx_jobs"].errors and pm.infos["fx_jobs"].status == "failed"  # in memory, as before


def test_a_job_the_worker_refuses_is_recorded_too(settings, db_session):
    bad = types.ModuleType("fx_bad_jobs")
    bad.register_jobs = hookimpl(lambda settings: [Job("nightly", "every night", fx_jobs.record_units)])
    pm = build_plugin_manager(settings, builtins=(), extra_plugins=[bad], load_entrypoints=False)
    make_huey(settings, immediate=True, plugins=(pm, None))
    (row,) = rows()
    assert (row.plugin, row.stage, row.process) == ("fx_bad_jobs", "contribution", "worker")
    assert "nightly" in row.error


# -- report subscribers in the worker -----------------------------------------------------------------

def subscriber_plugins(seen_during: list):
    """fx_sub_fails raises on every transition; fx_sub_watch, called after it in the same transaction,
    notes how many failure rows exist at that moment."""
    fails = types.ModuleType("fx_sub_fails")
    fails.register_domain = hookimpl(lambda settings: Domain(name="fx_sub_fails", label=""))

    def explode(transition):
        raise ValueError(f"no mapping for {transition.action}")

    fails.report_transition = hookimpl(explode)
    watch = types.ModuleType("fx_sub_watch")
    watch.register_domain = hookimpl(lambda settings: Domain(name="fx_sub_watch", label=""))
    watch.report_transition = hookimpl(lambda transition: seen_during.append(PluginFailure.select().count()))

    def step_then_fail(context):
        report = Report.select().order_by(Report.id).first()
        with transaction():
            events.announce(report, "saved")
            raise RuntimeError("a later step failed")

    fails.register_jobs = hookimpl(lambda settings: [Job("save_then_fail", "30 1 * * *", step_then_fail)])
    return [watch, fails]  # pluggy calls the last registered first


@pytest.fixture
def subscribers_world(settings, db_session, frozen_clock):
    world = form_world()  # March's reports are open; the clock moves to April's window
    frozen_clock(APRIL)
    seen_during = []
    pm = build_plugin_manager(settings, builtins=(), extra_plugins=subscriber_plugins(seen_during),
                              load_entrypoints=False, strict=True)
    huey = make_huey(settings, immediate=True, plugins=(pm, build_registry(pm, settings)))
    return types.SimpleNamespace(world=world, huey=huey, pm=pm, seen_during=seen_during)


def test_a_subscriber_failing_in_a_worker_task_is_recorded_after_the_transition(subscribers_world):
    w = subscribers_world
    task = next(t for t in w.huey.read_periodic(APRIL) if t.name == "core.open_periods")
    assert w.huey.execute(task) == 2  # the transition went on: both April reports are open
    (row,) = rows()
    assert (row.plugin, row.stage, row.process, row.occurrences) == ("fx_sub_fails", "event", "worker", 2)
    assert row.error == "ValueError: no mapping for opened" and row.first_at == row.last_at == APRIL
    # Not written inside the transition's transaction (no lock held there behind the audit chain's).
    assert w.seen_during == [0, 0]
    order = [i.plugin_name for i in reversed(w.pm.hook.report_transition.get_hookimpls())]  # as events calls them
    assert order.index("fx_sub_fails") < order.index("fx_sub_watch")  # the watcher hears each one after it
    assert events.current.get() is None


def test_a_subscribers_failure_stays_recorded_when_the_transition_rolls_back(subscribers_world):
    w = subscribers_world
    w.huey.plugin_jobs["fx_sub_fails.save_then_fail"]()
    assert [(r.stage, r.error, r.occurrences) for r in rows()] == [
        ("event", "ValueError: no mapping for saved", 1), ("job", "RuntimeError: a later step failed", 1)]


# -- writing never breaks the caller ------------------------------------------------------------------

def test_a_failure_to_write_is_kept_for_the_next_attempt(db_session, monkeypatch):
    recorder = plugin_failures.Recorder("worker")
    real = plugin_failures._upsert

    def broken(*args):
        raise RuntimeError("database unavailable")

    monkeypatch.setattr(plugin_failures, "_upsert", broken)
    recorder.note("fx_jobs", "job", RuntimeError("boom"))  # nothing raises into the caller
    recorder.note("fx_jobs", "job", RuntimeError("boom"))
    assert rows() == []
    monkeypatch.setattr(plugin_failures, "_upsert", real)
    assert recorder.flush() == 1
    assert [(r.error, r.occurrences) for r in rows()] == [("RuntimeError: boom", 2)]


def test_inside_a_transaction_the_failure_waits_for_it_to_end(db_session):
    recorder = plugin_failures.Recorder("command")
    with transaction():
        recorder.note("fx_jobs", "event", RuntimeError("boom"))
        assert PluginFailure.select().count() == 0
        assert recorder.flush() == 0
    assert recorder.flush() == 1
    assert [(r.process, r.occurrences) for r in rows()] == [("command", 1)]


def test_a_plugin_whose_errors_never_repeat_keeps_its_latest_rows(db_session, monkeypatch, frozen_clock):
    monkeypatch.setattr(plugin_failures, "KEEP_PER_PLUGIN", 3)
    recorder = plugin_failures.Recorder("worker")
    for minute in range(5):
        frozen_clock(dt.datetime(2026, 3, 2, 8, minute))
        recorder.note("fx_jobs", "job", RuntimeError(f"timeout at 08:0{minute}"))
    recorder.note("fx_good", "job", RuntimeError("other plugin"))
    assert [r.error for r in rows()] == ["RuntimeError: other plugin", "RuntimeError: timeout at 08:02",
                                         "RuntimeError: timeout at 08:03", "RuntimeError: timeout at 08:04"]


# -- clearing -----------------------------------------------------------------------------------------

def test_only_a_system_administrator_clears_a_plugins_rows_and_it_is_audited(db_session):
    recorder = plugin_failures.Recorder("worker")
    recorder.note("fx_jobs", "job", RuntimeError("boom"))
    recorder.note("fx_jobs", "job", RuntimeError("boom"))
    recorder.note("fx_good", "event", RuntimeError("kept"))
    unit = Unit.create(code="44", name="Tỉnh Quảng Trị", kind="province")
    unit_admin = accounts.create_user("qtdv", "Quản trị đơn vị", accounts.random_password(), unit)
    Grant.create(user=unit_admin, role=Role.get(Role.code == "unit_admin"), unit=unit)
    admin = accounts.create_user("qtht", "Quản trị hệ thống", accounts.random_password(), unit, is_admin=True)
    with pytest.raises(Forbidden):
        plugin_failures.clear(core_access(unit_admin), "fx_jobs")
    assert plugin_failures.clear(core_access(admin), "fx_jobs") == 1
    assert [r.plugin for r in rows()] == ["fx_good"]
    event = AuditEvent.select().where(AuditEvent.action == "plugin.failures_clear").get()
    assert (event.actor_id, event.object_type, event.object_id) == (admin.id, "plugin", "fx_jobs")
    assert '"count": 2' in event.details and '"rows": 1' in event.details
    assert plugin_failures.clear(core_access(admin), "fx_jobs") == 0  # nothing left: nothing audited
    assert AuditEvent.select().where(AuditEvent.action == "plugin.failures_clear").count() == 1


def test_the_migration_goes_down_and_up_again(db_session):
    spec = importlib.util.spec_from_file_location("m0026", CORE_MIGRATIONS / "0026_plugin_failures.py")
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    migrator = SchemaMigrator.from_database(db.obj)
    migration.down(migrator, db.obj)
    assert "core_plugin_failure" not in db.get_tables()
    migration.up(migrator, db.obj)
    plugin_failures.Recorder("worker").note("fx_jobs", "job", RuntimeError("boom"))
    assert [r.occurrences for r in rows()] == [1]
