"""Report lifecycle events (issue 13 item 2): the workflow announces each transition through the
``report_transition`` hook, inside its transaction, one savepoint per plugin, only to plugins
switched on for the reporting unit; a subscriber's failure is its own. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import types

import pytest
from peewee import CharField, IntegerField

from core import activation, audit
from core.api import BaseModel, Domain, Transition, for_actions, hookimpl
from core.db import db
from core.plugins import CORE_SUBSCRIBERS, build_plugin_manager
from core.registry import build_registry
from core.reporting import data as rd
from core.reporting import events
from core.reporting import notifications as nt
from core.reporting import workflow as wf
from core.reporting.opening import Report
from tests.fixtures.forms import form_world


class Heard(BaseModel):
    """A row a test subscriber writes, to see what commits and what rolls back."""

    plugin = CharField()
    action = CharField()
    report_id = IntegerField()

    class Meta:
        table_name = "fx_heard"


@pytest.fixture
def w(db_session, settings):
    db.create_tables([Heard])
    world = form_world()
    world.settings = settings
    yield world
    db.drop_tables([Heard])


def plugin(name, react, *, only=None):
    """A plugin module named ``name`` whose ``report_transition`` calls ``react(transition)``."""
    module = types.ModuleType(name)
    module.register_domain = hookimpl(lambda settings: Domain(name=name, label=""))

    def report_transition(transition):
        react(transition)

    if only:
        report_transition = for_actions(*only)(report_transition)
    module.report_transition = hookimpl(report_transition)
    return module


def manager(w, *plugins):
    pm = build_plugin_manager(w.settings, builtins=(), extra_plugins=list(plugins), load_entrypoints=False)
    return pm, build_registry(pm, w.settings)


def writes(name):
    return lambda t: Heard.create(plugin=name, action=t.action, report_id=t.report_id)


def fill(w, value="10"):
    cells = {("banle", "cur"): (rd.MISSING, value), ("dulich", "cur"): (rd.MISSING, "5")}
    return rd.save(w.p["reporter"], w.report.id, cells, {"ketqua": (rd.MISSING, "Bán lẻ tăng khá.")})


def test_a_plugin_hears_each_transition_once_with_its_fields(w):
    heard, accepted_only = [], []
    pm, registry = manager(w, plugin("fx_listener", heard.append),
                           plugin("fx_counter", accepted_only.append, only=("accepted",)))
    with events.using(pm, registry, w.settings):
        wf.submit(w.p["reporter"], w.report.id, revision=fill(w).revision)
        wf.return_report(w.p["issuer"], w.report.id, "Doanh thu du lịch chưa khớp")
        wf.submit(w.p["reporter"], w.report.id, revision=fill(w, "11").revision)
        wf.accept(w.p["issuer"], w.report.id)
        wf.reopen(w.p["issuer"], w.report.id, "Cần bổ sung số liệu")
    assert [t.action for t in heard] == ["saved", "submitted", "returned", "saved", "submitted", "accepted",
                                         "reopened"]
    assert [t.action for t in accepted_only] == ["accepted"]
    returned = heard[2]
    event = next(e for e in wf.events(w.report.id) if e.action == "return")
    assert returned == Transition(report_id=w.report.id, regime_id=w.regime.id, unit_id=w.u["aitu"].id,
                                  receiver_id=w.u["province"].id,
                                  period=f"{w.report.period_start.isoformat()}/{w.report.period_end.isoformat()}",
                                  action="returned", version_number=1, actor_id=w.users["issuer"].id,
                                  reason="Doanh thu du lịch chưa khớp", at=event.at)
    assert (heard[4].version_number, heard[4].actor_id) == (2, w.users["reporter"].id)
    assert heard[5].version_number == 2 and heard[6].reason == "Cần bổ sung số liệu"
    # The core's own subscribers ran beside them: the receivers were told of each submission.
    assert nt.Notification.select().where(nt.Notification.action == "submit").count() > 0


def test_a_plugin_switched_off_for_the_unit_hears_nothing(w):
    off, on = [], []
    pm, registry = manager(w, plugin("fx_off", off.append), plugin("fx_on", on.append))
    activation.set_activation(w.u["aitu"].id, "fx_off", "off", w.users["issuer"], registry)
    with events.using(pm, registry, w.settings):
        wf.submit(w.p["reporter"], w.report.id, revision=fill(w).revision)
        wf.accept(w.p["issuer"], w.report.id)
    assert off == []
    assert [t.action for t in on] == ["saved", "submitted", "accepted"]


def test_a_failing_subscriber_is_recorded_and_rolled_back_alone_and_the_transition_commits(w):
    def fail(transition):
        writes("fx_failing")(transition)
        raise RuntimeError("the other system is down")

    pm, registry = manager(w, plugin("fx_failing", fail, only=("submitted",)),
                           plugin("fx_writer", writes("fx_writer"), only=("submitted",)))
    with events.using(pm, registry, w.settings):
        version = wf.submit(w.p["reporter"], w.report.id, revision=fill(w).revision)
    assert Report.get_by_id(w.report.id).status == "submitted" and version.number == 1
    assert [(h.plugin, h.action) for h in Heard.select()] == [("fx_writer", "submitted")]
    stage, summary, _ = pm.infos["fx_failing"].errors[0]
    assert (stage, summary) == ("event", "RuntimeError: the other system is down")
    assert pm.infos["fx_failing"].ok and not pm.infos["fx_writer"].errors
    assert nt.Notification.select().where(nt.Notification.action == "submit").count() > 0


def test_a_subscriber_writes_inside_the_transition_s_transaction(w, monkeypatch):
    seen = []

    def inside(transition):
        seen.append(db.in_transaction())
        writes("fx_inside")(transition)

    pm, registry = manager(w, plugin("fx_inside", inside, only=("submitted", "accepted")))
    saved = fill(w)
    with events.using(pm, registry, w.settings):
        wf.submit(w.p["reporter"], w.report.id, revision=saved.revision)
        assert seen == [True] and Heard.select().count() == 1

        # The transition fails after announcing itself (its audit event cannot be written): no row.
        def broken(*args, **kwargs):
            raise RuntimeError("disk full")

        monkeypatch.setattr(audit, "record", broken)
        with pytest.raises(RuntimeError):
            wf.accept(w.p["issuer"], w.report.id)
    assert seen == [True, True]
    assert [h.action for h in Heard.select()] == ["submitted"]
    assert Report.get_by_id(w.report.id).status == "submitted"


def test_the_core_subscribers_are_always_on_and_not_switchable_plugins(w):
    pm, registry = manager(w)
    assert set(pm.core_parts) == set(CORE_SUBSCRIBERS)
    assert all(p.hooks == ["report_transition"] for p in pm.core_parts.values())
    assert not set(CORE_SUBSCRIBERS) & set(registry.plugin_names()) and not set(CORE_SUBSCRIBERS) & set(pm.infos)
    # Switched "off" everywhere by nobody: there is nothing to switch, they run with and without a manager.
    with events.using(pm, registry, w.settings):
        wf.submit(w.p["reporter"], w.report.id, revision=fill(w).revision)
    assert nt.Notification.select().count() > 0


def test_a_failing_core_subscriber_is_recorded_against_it_and_the_transition_commits(w, monkeypatch):
    from core.reporting.subscribers import notify

    def broken(*args, **kwargs):
        raise RuntimeError("no recipients today")

    monkeypatch.setattr(notify, "recipients", broken)
    pm, registry = manager(w)
    with events.using(pm, registry, w.settings):
        wf.submit(w.p["reporter"], w.report.id, revision=fill(w).revision)
    assert Report.get_by_id(w.report.id).status == "submitted"
    assert pm.core_parts["core.reporting.subscribers.notify"].errors[0][0] == "event"
    assert nt.Notification.select().count() == 0


def test_an_unknown_action_is_refused():
    with pytest.raises(ValueError):
        for_actions("deleted")


def test_a_subscriber_between_two_others_that_writes_then_fails_loses_only_its_own_writes(w):
    def fail(transition):
        writes("fx_middle")(transition)
        raise RuntimeError("the middle one broke")

    pm, registry = manager(w, plugin("fx_first", writes("fx_first"), only=("submitted",)),
                           plugin("fx_middle", fail, only=("submitted",)),
                           plugin("fx_third", writes("fx_third"), only=("submitted",)))
    with events.using(pm, registry, w.settings):
        wf.submit(w.p["reporter"], w.report.id, revision=fill(w).revision)
    assert sorted(h.plugin for h in Heard.select()) == ["fx_first", "fx_third"]
    assert pm.infos["fx_middle"].errors[0][:2] == ("event", "RuntimeError: the middle one broke")
    assert Report.get_by_id(w.report.id).status == "submitted"


def test_a_failing_subscriber_takes_back_what_a_transition_it_announced_made_subscribers_write(w):
    """A subscriber may announce a transition of its own (nested ``emit``): when it then fails, the
    writes its nested subscribers made go back with its own, and the others' stay."""
    def relay(transition):
        writes("fx_relay")(transition)
        events.emit(Transition.of(Report.get_by_id(transition.report_id), "signed"))
        raise RuntimeError("relay down")

    pm, registry = manager(w, plugin("fx_relay", relay, only=("submitted",)),
                           plugin("fx_nested", writes("fx_nested"), only=("signed",)),
                           plugin("fx_after", writes("fx_after"), only=("submitted",)))
    with events.using(pm, registry, w.settings):
        wf.submit(w.p["reporter"], w.report.id, revision=fill(w).revision)
    assert [h.plugin for h in Heard.select()] == ["fx_after"]
    assert pm.infos["fx_relay"].errors[0][1] == "RuntimeError: relay down" and not pm.infos["fx_nested"].errors
