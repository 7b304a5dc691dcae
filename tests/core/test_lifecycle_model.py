"""A stateful model of the report lifecycle and its permissions (security.md TST-02).

Hypothesis drives the services the routes call (``core.reporting.data.save`` and
``core.reporting.workflow``) with any of the world's people acting on either commune's report,
and a plain model predicts each answer from the report's status, the actor's role and their unit's
scope. After every step: the stored status is the model's, a refused action wrote nothing, versions
only grow (one per submission), an accepted report keeps the figures of the version it accepted,
each transition left one lifecycle event and one audit event, and the audit chain verifies.

The world (tests/fixtures/forms.py: a province whose issuer receives, the communes Ái Tử and Cam Lộ
with a reporter each, a viewer at a department outside both) is built once; each example runs in a
transaction rolled back at its end, so every example starts from the same rows on SQLite and
PostgreSQL without copying a database.
"""

from __future__ import annotations

import json
from decimal import Decimal

from hypothesis import settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test
from peewee import fn

from core import audit
from core.catalogue.figures import IndicatorValue
from core.db import db
from core.errors import BaocaoError
from core.reporting import data as rd
from core.reporting import workflow as wf
from core.reporting.opening import Report
from tests.fixtures.forms import access_of, form_world

PEOPLE = ("reporter", "other", "issuer", "viewer")
REPORTS = ("aitu", "camlo")
FILLER = {"aitu": "reporter", "camlo": "other"}  # the one reporter of each commune
RECEIVER = "issuer"  # the province's receiver, over both communes
REASONS = ("Số liệu du lịch chưa khớp với Sở", " ")  # a blank reason is refused whoever gives it
CELLS = (("banle", "cur"), ("dulich", "cur"))

# Where an example's reports start, and the steps that take them there.
START = {"not_started": (), "draft": ("save",), "submitted": ("save", "submit"),
         "returned": ("save", "submit", "return"), "accepted": ("save", "submit", "accept"),
         "reopened": ("save", "submit", "accept", "reopen")}
# None: the person the step belongs to (the report's reporter, the receiver); otherwise anyone. Half
# the steps are then the right person's, so the examples reach accepted and reopened reports, and
# the other half try every one of the world's people on every state.
people = st.one_of(st.none(), st.sampled_from(PEOPLE))
reports = st.sampled_from(REPORTS)
sections = st.sampled_from(("Bán lẻ tăng khá.", "Bán lẻ tăng khá.", ""))


class _Rollback(Exception):
    """Ends an example's transaction: its rows go, the world's stay."""


class ReportModel:
    """What the model expects of one report."""

    def __init__(self):
        self.status = "not_started"
        self.values: dict = {}  # (row, col) -> Decimal, as stored
        self.section = ""
        self.versions = 0
        self.transitions = 0  # submit/return/accept/reopen done: one ReportEvent and one audit event each

    def editable(self) -> bool:
        return self.status in rd.EDITABLE

    def ready(self) -> bool:
        """Nothing blocks a submission: both figures saved, none negative, the required section written."""
        return (all(self.values.get(cell) is not None for cell in CELLS)
                and all(v >= 0 for v in self.values.values()) and bool(self.section.strip()))


class LifecycleMachine(RuleBasedStateMachine):
    world = None  # set by the test: the world is built once per test, each example rolls back

    def __init__(self):
        super().__init__()
        w = self.world
        self.ids = {"aitu": w.report.id, "camlo": w.other_report.id}
        self.model = {key: ReportModel() for key in REPORTS}
        self._txn = db.atomic()
        self._txn.__enter__()  # the services' own transactions nest in it as savepoints

    def teardown(self):
        self._txn.__exit__(_Rollback, _Rollback(), None)

    # -- the database as the invariants read it ------------------------------------------------

    def _snapshot(self) -> tuple:
        """The rows a step may write, in one round trip: both reports' status and revision (every
        write moves the revision in its transaction), and the count, sum and latest change of
        their figures and sections, versions, events, audit events and accepted figures."""
        ids = ", ".join(str(i) for i in self.ids.values())

        def table(model):
            return model._meta.table_name

        value, section = table(rd.ReportValue), table(rd.ReportSection)
        parts = [f"(SELECT status || ':' || revision FROM {table(Report)} WHERE id = {i})" for i in self.ids.values()]
        parts += [f"(SELECT count(*) FROM {value} WHERE report_id IN ({ids}))",
                  f"(SELECT sum(value) FROM {value} WHERE report_id IN ({ids}))",
                  f"(SELECT max(updated_at) FROM {value} WHERE report_id IN ({ids}))",
                  f"(SELECT count(*) FROM {section} WHERE report_id IN ({ids}))",
                  f"(SELECT max(updated_at) FROM {section} WHERE report_id IN ({ids}))"]
        parts += [f"(SELECT count(*) FROM {table(model)})"
                  for model in (wf.ReportVersion, wf.ReportEvent, audit.AuditEvent, IndicatorValue)]
        return tuple(db.execute_sql("SELECT " + ", ".join(parts)).fetchone())

    def _act(self, allowed: bool, action) -> None:
        """Run ``action``; allowed: it must succeed; refused: it must raise a domain error (a
        message in both languages, never a crash) and write nothing."""
        before = self._snapshot()
        try:
            action()
        except BaocaoError as refusal:
            assert not allowed, "the service refused what the model allows"
            assert refusal.message("en") not in ("", refusal.key), "a refusal without a message"
            assert self._snapshot() == before, "a refused action changed rows"
            return
        assert allowed, "the service allowed what the model refuses"

    def _access(self, who):
        return self.world.access[who]

    # -- rules ----------------------------------------------------------------------------------

    @initialize(aitu=st.sampled_from(list(START)), camlo=st.sampled_from(list(START)))
    def start_from(self, aitu, camlo):
        """Each report starts where its right people took it (through the same checked steps): 20
        random steps from "not started" alone seldom reach an accepted or reopened report."""
        for which, where in (("aitu", aitu), ("camlo", camlo)):
            for step in START[where]:
                if step == "save":
                    self.save(None, which, 12, 5, "Bán lẻ tăng khá.")
                elif step == "submit":
                    self.submit(None, which, False)
                elif step == "return":
                    self.return_report(None, which, REASONS[0])
                else:
                    getattr(self, step)(None, which, *((REASONS[0],) if step == "reopen" else ()))

    @rule(who=people, which=reports, banle=st.integers(-3, 60), dulich=st.integers(0, 60),
          section=sections)
    def save(self, who, which, banle, dulich, section):
        who, model = who or FILLER[which], self.model[which]
        new = {("banle", "cur"): Decimal(banle), ("dulich", "cur"): Decimal(dulich)}
        allowed = who == FILLER[which] and model.editable()
        self._act(allowed, lambda: rd.save(
            self._access(who), self.ids[which], {cell: (rd.MISSING, str(v)) for cell, v in new.items()},
            {"ketqua": (rd.MISSING, section)}))
        if allowed and (new != model.values or section != model.section):
            model.values, model.section = new, section
            if model.status == "not_started":
                model.status = "draft"

    @rule(who=people, which=reports, again=st.booleans())
    def submit(self, who, which, again):
        """``again``: the revision the person saw before their last click (a double click)."""
        who, model = who or FILLER[which], self.model[which]
        revision = Report.get_by_id(self.ids[which]).revision - (1 if again else 0)
        mine = who == FILLER[which]
        repeat = mine and again and model.status == "submitted"  # the same version comes back
        allowed = repeat or (mine and not again and model.editable() and model.ready())
        self._act(allowed, lambda: wf.submit(self._access(who), self.ids[which], revision=revision))
        if allowed and not repeat:
            model.status, model.versions, model.transitions = "submitted", model.versions + 1, model.transitions + 1

    def _receive(self, who, which, frm, to, step) -> None:
        who, model = who or RECEIVER, self.model[which]
        allowed = who == RECEIVER and model.status == frm
        self._act(allowed, lambda: step(self._access(who), self.ids[which]))
        if allowed:
            model.status, model.transitions = to, model.transitions + 1

    @rule(who=people, which=reports, reason=st.sampled_from(REASONS))
    def return_report(self, who, which, reason):
        if reason.strip():
            self._receive(who, which, "submitted", "returned", lambda a, r: wf.return_report(a, r, reason))
        else:  # a return without a reason is refused whoever asks
            self._act(False, lambda: wf.return_report(self._access(who or RECEIVER), self.ids[which], reason))

    @rule(who=people, which=reports)
    def accept(self, who, which):
        self._receive(who, which, "submitted", "accepted", wf.accept)

    @rule(who=people, which=reports, reason=st.sampled_from(REASONS))
    def reopen(self, who, which, reason):
        if reason.strip():
            self._receive(who, which, "accepted", "returned", lambda a, r: wf.reopen(a, r, reason))
        else:
            self._act(False, lambda: wf.reopen(self._access(who or RECEIVER), self.ids[which], reason))

    # -- invariants -------------------------------------------------------------------------------

    @invariant()
    def stored_status_is_the_model_s(self):
        stored = dict(Report.select(Report.id, Report.status).where(Report.id.in_(list(self.ids.values()))).tuples())
        assert {key: stored[rid] for key, rid in self.ids.items()} == {k: m.status for k, m in self.model.items()}

    @invariant()
    def versions_only_grow_one_per_submission(self):
        numbers = {rid: [] for rid in self.ids.values()}
        for rid, number in (wf.ReportVersion.select(wf.ReportVersion.report, wf.ReportVersion.number)
                            .where(wf.ReportVersion.report.in_(list(numbers))).order_by(wf.ReportVersion.number)
                            .tuples()):
            numbers[rid].append(number)
        assert {key: numbers[rid] for key, rid in self.ids.items()} == \
               {key: list(range(1, m.versions + 1)) for key, m in self.model.items()}

    @invariant()
    def each_transition_left_one_event_and_one_audit_record(self):
        ids = [str(rid) for rid in self.ids.values()]
        events = dict(wf.ReportEvent.select(wf.ReportEvent.report, fn.COUNT(wf.ReportEvent.id))
                      .where(wf.ReportEvent.report.in_(list(self.ids.values()))).group_by(wf.ReportEvent.report)
                      .tuples())
        event = audit.AuditEvent
        audited = dict(event.select(event.object_id, fn.COUNT(event.id))
                       .where((event.object_type == "report") & event.object_id.in_(ids)
                              & event.action.in_(list(wf.AUDIT_ACTIONS.values())))
                       .group_by(event.object_id).tuples())
        for key, rid in self.ids.items():
            assert events.get(rid, 0) == audited.get(str(rid), 0) == self.model[key].transitions

    @invariant()
    def a_sent_report_keeps_the_figures_of_its_last_version(self):
        # Submitted or accepted: what is stored is what the latest version froze, so an accepted
        # report's figures cannot have changed since.
        for key, rid in self.ids.items():
            if self.model[key].status not in ("submitted", "accepted"):
                continue
            latest = (wf.ReportVersion.select(wf.ReportVersion.canonical).where(wf.ReportVersion.report == rid)
                      .order_by(wf.ReportVersion.number.desc()).first())
            frozen = json.loads(latest.canonical)["values"]
            stored = rd.stored_values(rid)
            assert {cell: Decimal(frozen[f"{cell[0]}.{cell[1]}"]) for cell in CELLS} == \
                   {cell: stored[cell] for cell in CELLS} == self.model[key].values

    @invariant()
    def the_audit_chain_verifies(self):
        assert audit.verify().ok


def test_the_lifecycle_follows_its_model_for_every_person(db_session):
    world = form_world()
    world.access = {who: access_of(world.users[who]) for who in PEOPLE}  # their grants never change
    LifecycleMachine.world = world
    try:
        run_state_machine_as_test(LifecycleMachine, settings=settings(
            max_examples=30, stateful_step_count=20, derandomize=True, deadline=None))
    finally:
        LifecycleMachine.world = None
