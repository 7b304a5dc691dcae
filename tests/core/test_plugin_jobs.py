"""Plugins' periodic jobs (hook register_jobs): scheduled by the worker's huey, run in immediate
mode here; a failing job is recorded against its plugin and the others still run; a job sees only
the units where its plugin is switched on."""

from __future__ import annotations

import datetime as dt

import pytest

from core.api import Job
from core.hookspecs import hookimpl
from core.jobs import make_huey
from core.models import PluginActivation, Unit
from core.plugins import build_plugin_manager
from core.registry import build_registry
from tests.fixtures.plugins import fx
from tests.fixtures.plugins import fx_jobs


@pytest.fixture
def plugins(settings):
    pm = build_plugin_manager(settings, builtins=fx("fx_good", "fx_jobs"), load_entrypoints=False, strict=True)
    return pm, build_registry(pm, settings)


@pytest.fixture
def tree(db_session):
    """A province with two districts, each with a commune; fx_jobs is off by default."""
    province = Unit.create(code="44", name="Tỉnh", kind="province")
    units = {"44": province}
    for district, commune in (("441", "44101"), ("442", "44201")):
        units[district] = Unit.create(code=district, name=district, kind="district", parent=province)
        units[commune] = Unit.create(code=commune, name=commune, kind="commune", parent=units[district])
    fx_jobs.RUNS.clear()
    yield units
    fx_jobs.RUNS.clear()


def switch(unit, enabled):
    PluginActivation.create(unit=unit, plugin="fx_jobs", enabled=enabled)


def pm_errors(plugins):
    return list(plugins[0].infos["fx_jobs"].errors)


def due(huey, when):
    return sorted(t.name for t in huey.read_periodic(when))


def test_the_worker_schedules_the_plugins_jobs_by_their_crontab(settings, plugins, tree):
    huey = make_huey(settings, immediate=True, plugins=plugins)
    assert set(huey.plugin_jobs) == {"fx_jobs.units", "fx_jobs.explode"}
    assert {"fx_jobs.units", "fx_jobs.explode"} <= set(due(huey, dt.datetime(2026, 3, 2, 8, 20)))
    assert not {"fx_jobs.units", "fx_jobs.explode"} & set(due(huey, dt.datetime(2026, 3, 2, 8, 25)))
    # Without the plugins (``make_huey(settings)`` as before) only the core's tasks exist.
    assert make_huey(settings, immediate=True).plugin_jobs == {}


def test_a_job_sees_only_the_units_where_its_plugin_is_on(settings, plugins, tree):
    huey = make_huey(settings, immediate=True, plugins=plugins)
    switch(tree["441"], True)    # a district and its commune
    switch(tree["44201"], True)  # a single commune elsewhere
    huey.plugin_jobs["fx_jobs.units"]()  # a periodic task's result is not kept: RUNS says what it saw
    switch(tree["44"], True)     # the province: the rest inherits it...
    PluginActivation.update(enabled=False).where(PluginActivation.unit == tree["441"]).execute()  # ...but not 441
    huey.plugin_jobs["fx_jobs.units"]()
    assert not pm_errors(plugins)
    assert fx_jobs.RUNS == [["441", "44101", "44201"], ["44", "442", "44201"]]


def test_a_failing_job_is_recorded_against_its_plugin_and_the_worker_goes_on(settings, plugins, tree):
    pm, _ = plugins
    huey = make_huey(settings, immediate=True, plugins=plugins)
    when = dt.datetime(2026, 3, 2, 8, 30)
    for task in huey.read_periodic(when):
        if task.name.startswith("fx_jobs."):
            huey.execute(task)  # what the consumer does at 08:30; nothing escapes
    (stage, summary, _), = pm.infos["fx_jobs"].errors
    assert stage == "job" and "remote archive refused" in summary
    assert pm.infos["fx_jobs"].ok  # a job's failure keeps the plugin
    assert fx_jobs.RUNS == [[]]  # the other job ran (no unit has the plugin on)
    huey.plugin_jobs["fx_jobs.explode"]()
    assert len(pm.infos["fx_jobs"].errors) == 2  # and it is tried again next time


def test_a_plugin_that_failed_runs_no_jobs(settings, plugins, tree):
    pm, _ = plugins
    huey = make_huey(settings, immediate=True, plugins=plugins)
    pm.strict = False
    pm.fail("fx_jobs", "startup", RuntimeError("licence expired"))
    huey.plugin_jobs["fx_jobs.units"]()
    assert fx_jobs.RUNS == []


def _bad_jobs_plugin(*jobs):
    import types

    module = types.ModuleType("fx_bad_jobs")
    module.register_jobs = hookimpl(lambda settings: list(jobs))
    return module


@pytest.mark.parametrize("job,words", [
    (Job("nightly", "every night", fx_jobs.record_units), ["nightly", "every night"]),
    (Job("nightly", "61 * * * *", fx_jobs.record_units), ["nightly", "61"]),
    (Job("Nightly-Run", "0 1 * * *", fx_jobs.record_units), ["Nightly-Run"]),
    (Job("nightly", "0 1 * * *", "not callable"), ["nightly", "run"]),
    ({"name": "nightly"}, ["Job("]),
])
def test_a_job_the_core_refuses_is_recorded_and_skipped(settings, db_session, job, words):
    good = Job("fine", "0 1 * * *", fx_jobs.record_units)
    pm = build_plugin_manager(settings, builtins=(), extra_plugins=[_bad_jobs_plugin(job, good)],
                              load_entrypoints=False)
    huey = make_huey(settings, immediate=True, plugins=(pm, None))
    assert list(huey.plugin_jobs) == ["fx_bad_jobs.fine"]
    (stage, summary, _), = pm.infos["fx_bad_jobs"].errors
    assert stage == "contribution" and all(w in summary for w in words), summary


def test_a_job_name_declared_twice_is_refused_once(settings, db_session):
    first, second = Job("sync", "0 1 * * *", fx_jobs.record_units), Job("sync", "0 2 * * *", fx_jobs.explode)
    pm = build_plugin_manager(settings, builtins=(), extra_plugins=[_bad_jobs_plugin(first, second)],
                              load_entrypoints=False)
    huey = make_huey(settings, immediate=True, plugins=(pm, None))
    assert list(huey.plugin_jobs) == ["fx_bad_jobs.sync"]
    assert "sync" in pm.infos["fx_bad_jobs"].errors[0][1]
