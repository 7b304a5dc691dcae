"""The event hook bench (issue 13): what announcing a report's transition costs its step.

Called by bench/run.py on each backend after the demo data is seeded. A small report (two
indicator rows, one input column) of a commune, submitted by its reporter and accepted by the
province, with 0, 1 and 10 do-nothing plugins: modules registered through the plugin manager,
each implementing ``report_transition`` and switched on for the commune. The core's own
subscribers (notifications, accepted figures) run in every case, as in production.

Timed, as the core services the screens call: submit and accept, the three cases interleaved
round by round (reopened between rounds, not timed), so that a shared machine's load falls on each
alike; the "10 minus 0" rows are the per-round differences. Then ``emit()`` alone, inside an open
transaction, for an action no core subscriber hears ("saved"): with 10 plugins it is the hook's
whole cost (which plugins are on for the unit, a savepoint and a call each), with 0 the floor.
Target (issue 13): under 5 ms with ten subscribers.
"""

from __future__ import annotations

import datetime as dt
import statistics
import time
import types

COUNTS = (0, 1, 10)
REPORTER = "bench_events_reporter"


def definition() -> dict:
    return {"title": "Biểu thử nghiệm sự kiện", "greyed": [], "rules": [], "outline": [],
            "rows": [{"key": f"ev{i}", "kind": "indicator", "number": str(i), "indicator": f"EV010{i}",
                      "label": f"Chỉ tiêu sự kiện {i}", "unit": "người", "decimals": 0} for i in (1, 2)],
            "columns": [{"key": "cur", "kind": "input", "label": "Thực hiện tháng {m}/{y}"}]}


def seed(today: dt.date) -> tuple[int, int, object, object]:
    """The small form, a regime issued with it for one commune, its open report filled in, and
    that commune's reporter. Returns (report id, commune id, reporter's access, receiver's access)."""
    from core.accounts import login as accounts
    from core.accounts.access import Grant, Role
    from core.accounts.permissions import core_access
    from core.catalogue import indicators
    from core.models import Unit, User
    from core.reporting import data as rd
    from forms import issue_for_commune

    admin = core_access(User.get(User.username == "quantri"))
    province = Unit.get(Unit.code == "44")
    commune = (Unit.select().where((Unit.kind == "commune") & (Unit.code != "18880"))  # not bench/forms.py's
               .order_by(Unit.code).first())
    indicators.save_group("EV01", "Nhóm chỉ tiêu thử nghiệm sự kiện", "province")
    for i in (1, 2):
        indicators.save_indicator({"code": f"EV010{i}", "name": f"Chỉ tiêu sự kiện {i}", "group": "EV01",
                                   "levels": "province", "unit_of_measure": "người", "aggregation": "sum"})
    report = issue_for_commune(admin, "BENCH-EV", "Biểu thử nghiệm sự kiện", definition(), "BENCH.SUKIEN",
                               "Báo cáo thử nghiệm sự kiện", "Thử nghiệm sự kiện", province, commune, today)
    user = accounts.create_user(REPORTER, "Người nhập thử sự kiện", accounts.random_password(), commune)
    Grant.create(user=user, role=Role.get(Role.code == "reporter"), unit=commune)
    reporter = core_access(user)
    rd.save(reporter, report.id, {("ev1", "cur"): (rd.MISSING, "12"), ("ev2", "cur"): (rd.MISSING, "7")},
            source="bench")
    return report.id, commune.id, reporter, admin


def do_nothing_plugin(name: str):
    """A plugin module that hears every transition and does nothing with it."""
    from core.api import Domain, hookimpl

    module = types.ModuleType(name)
    module.register_domain = hookimpl(lambda settings: Domain(name=name, label=""))
    module.report_transition = hookimpl(lambda transition: None)
    return module


def managers(settings, unit_id: int, actor) -> dict:
    """For each count, a plugin manager with that many do-nothing plugins switched on for the unit."""
    from core import activation
    from core.plugins import build_plugin_manager
    from core.registry import build_registry

    out = {}
    for count in COUNTS:
        plugins = [do_nothing_plugin(f"bench_ev{count}_{i:02d}") for i in range(count)]
        pm = build_plugin_manager(settings, builtins=(), extra_plugins=plugins, load_entrypoints=False, strict=True)
        registry = build_registry(pm, settings)
        for module in plugins:
            activation.set_activation(unit_id, module.__name__, "on", actor, registry)
        out[count] = (pm, registry)
    return out


def run_events(settings, rounds: int, percentile) -> dict:
    """Time submit, accept and ``emit()`` with 0, 1 and 10 subscribing plugins; ``percentile(values, q)``
    is bench/run.py's."""
    from core.db import db
    from core.models import User
    from core.reporting import events
    from core.reporting import workflow as wf
    from core.reporting.opening import Report

    with db.connection_context():
        report_id, unit_id, reporter, receiver = seed(dt.date.today())
        pms = managers(settings, unit_id, User.get(User.username == "quantri"))
    samples = {(step, count): [] for step in ("submit", "accept") for count in COUNTS}
    n, warmup = max(20, rounds // 4), 3

    def cycle(count, keep):
        pm, registry = pms[count]
        with db.connection_context(), events.using(pm, registry, settings):
            report = Report.get_by_id(report_id)
            if report.status == "accepted":
                wf.reopen(receiver, report_id, "Bench: mở lại")
                report = Report.get_by_id(report_id)
            start = time.perf_counter()
            wf.submit(reporter, report_id, revision=report.revision)
            middle = time.perf_counter()
            wf.accept(receiver, report_id)
            end = time.perf_counter()
        if keep:
            samples["submit", count].append((middle - start) * 1000)
            samples["accept", count].append((end - middle) * 1000)

    for round_no in range(warmup + n):
        for count in COUNTS:
            cycle(count, keep=round_no >= warmup)

    def row(values):
        return statistics.median(values), percentile(values, 0.95)

    results = {}
    for step in ("submit", "accept"):
        for count in COUNTS:
            results[f"{step}, {count} subscribing plugins"] = row(samples[step, count])
        results[f"  {step}: 10 minus 0 (per round)"] = row(
            [a - b for a, b in zip(samples[step, 10], samples[step, 0])])

    # emit() alone: the hook's own cost, for an action the core's subscribers do not hear.
    with db.connection_context():
        transition = events.Transition.of(Report.get_by_id(report_id), "saved")
    alone = {0: [], 10: []}
    for round_no in range(warmup + rounds):
        for count in alone:
            pm, registry = pms[count]
            with db.connection_context(), events.using(pm, registry, settings), db.atomic():
                start = time.perf_counter()
                events.emit(transition)
                elapsed = (time.perf_counter() - start) * 1000
            if round_no >= warmup:
                alone[count].append(elapsed)
    for count, values in alone.items():
        results[f"emit() alone, {count} subscribing plugins"] = row(values)
    return results
