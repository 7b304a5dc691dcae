"""The worker's tasks announce report transitions to the worker's plugins (issue 13 item 2): huey
runs tasks on its own threads, which start without the plugin manager ``baocao worker`` named, so
each task is run with it named. Tasks run in immediate mode here, as the consumer runs them."""

from __future__ import annotations

import datetime as dt
import types

import pytest

from core.api import Domain, Job, hookimpl
from core.jobs import make_huey
from core.plugins import build_plugin_manager
from core.registry import build_registry
from core.reporting import events
from core.reporting.opening import open_due_periods
from tests.fixtures.forms import form_world

APRIL = dt.datetime(2026, 4, 2, 8, 5)  # the hourly "open periods" at five past, in April's window


def listener(heard):
    """A plugin that records each report opened, and has a daily job that opens the due periods."""
    module = types.ModuleType("fx_listener")
    module.register_domain = hookimpl(lambda settings: Domain(name="fx_listener", label=""))
    module.report_transition = hookimpl(events.for_actions("opened")(lambda transition: heard.append(transition)))
    module.register_jobs = hookimpl(lambda settings: [Job("catch_up", "30 1 * * *",
                                                          lambda context: open_due_periods().reports)])
    return module


@pytest.fixture
def worker(db_session, settings, frozen_clock):
    world = form_world()  # March's reports are open; the clock moves to April's window
    frozen_clock(APRIL)
    heard = []
    pm = build_plugin_manager(settings, builtins=(), extra_plugins=[listener(heard)], load_entrypoints=False,
                              strict=True)
    huey = make_huey(settings, immediate=True, plugins=(pm, build_registry(pm, settings)))
    return types.SimpleNamespace(world=world, heard=heard, huey=huey, pm=pm)


def opened_april(w):
    return sorted((t.unit_id, t.action, t.period) for t in w.heard)


def expected(w):
    return sorted((w.world.u[unit].id, "opened", "2026-03-15/2026-04-14") for unit in ("aitu", "camlo"))


def test_a_plugin_hears_the_reports_the_worker_s_open_periods_task_opens(worker):
    task = next(t for t in worker.huey.read_periodic(APRIL) if t.name == "core.open_periods")
    assert events.current.get() is None  # as on a worker thread: nobody named the plugins here
    assert worker.huey.execute(task) == 2
    assert opened_april(worker) == expected(worker)
    assert not worker.pm.infos["fx_listener"].errors
    assert events.current.get() is None  # forgotten after the task: nothing leaks into the thread


def test_a_plugin_hears_the_reports_a_plugin_job_opens(worker):
    worker.huey.plugin_jobs["fx_listener.catch_up"]()
    assert opened_april(worker) == expected(worker)
    assert events.current.get() is None
