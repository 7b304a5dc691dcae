"""Kill drills (issue 17; security.md DB-01, DB-09, API-01): 100 SIGKILLs at random points of save,
submit (unsigned and with each signature provider: .p12 file, uploaded CMS, the unit's seal),
accept, consolidation and outbox delivery. After each: the database is exactly as before the
operation or exactly as after it (every table compared), the audit chain verifies, SQLite's
``integrity_check`` is ok; then delivery run to the end brings every outbox message (the workflow's
e-mails, written in its transactions, and a plugin's packets) to the receiver exactly once by its
idempotency key — none lost, none doubled, also when the delivery itself was killed.

The points are drawn with a seed printed at the start (``BAOCAO_FAULT_SEED=<n>`` draws them again);
tests/faults/harness.py says how a drill runs. Runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import datetime as dt
import os
import random
from dataclasses import dataclass
from typing import Callable

import pytest

from core import audit, mailer, outbox
from core.models import User
from core.channels import Channel, smtp
from core.db import close_db, db, init_db
from core.reporting import consolidation as cs
from core.reporting import data as rd
from core.reporting import events
from core.reporting import notifications
from core.reporting import workflow as wf
from core.signatures import signing
from tests.faults.harness import (Receiver, Stages, differences, integrity_ok, run_in_child, snapshot)
from tests.fixtures.forms import access_of
from tests.fixtures.pki import NOW
from tests.fixtures.signing import PASSWORD, fill, signed_world

TOTAL_KILLS = 100
MESSAGES = 5
CHANNEL = "faults.receiver"
FROZEN = NOW.replace(tzinfo=None) + dt.timedelta(minutes=1)  # the test certificates are valid then


@dataclass
class Drill:
    name: str
    stage: str
    run: Callable[[], object]


def _seed() -> int:
    seed = int(os.environ.get("BAOCAO_FAULT_SEED") or random.SystemRandom().randrange(10**6))
    print(f"kill-point seed: BAOCAO_FAULT_SEED={seed}")
    return seed


@pytest.fixture
def settings(make_settings):
    """E-mail on: the workflow's notifications are outbox messages written in its transactions."""
    return make_settings(smtp_host="smtp.example.invalid", public_url="https://baocao.example.vn")


@pytest.fixture
def as_requests(app, settings):
    """What a request of ``app`` names for the service functions it calls: the plugins that hear the
    reports' events (core.reporting.events) and the e-mail to queue (core.mailer)."""
    with events.using(app.state.pm, app.state.registry, settings), mailer.sending(settings):
        yield app.state.pm


@pytest.fixture
def world(as_requests, settings, tmp_path, frozen_clock):
    """The signed form world saved at each stage an operation starts from; the drills (each run as
    the web route runs it: the same service function, the same plugins)."""
    frozen_clock(FROZEN)
    init_db(settings.database_url)
    receiver = Receiver()
    pm = as_requests
    # The receiver stands for the remote system and for the mail server (the "smtp" channel's place).
    outbox.configure(pm, settings, channels=[Channel(CHANNEL, receiver.deliver, max_attempts=20),
                                             Channel(smtp.NAME, receiver.deliver, max_attempts=20)])
    stages = Stages(settings.database_url, tmp_path)
    with db.connection_context():
        w = signed_world()
        w.settings = settings
        w.p["province"] = _person(w, "tinh", "province", "reporter")
        for name in ("reporter", "other", "issuer", "vanthu"):  # their notifications are e-mailed too
            notifications.set_email(User.get(User.username == name), f"{name}@example.vn")
        signing.install_seal(w.p["unit_admin"], w.u["aitu"].id, w.pki.pkcs12(w.seal, "mk-dau"), "mk-dau",
                             settings=settings)
        period = f"{w.report.period_start.isoformat()}/{w.report.period_end.isoformat()}"
    stages.save("draft")
    with db.connection_context():
        revision = fill(w).revision
        request = signing.prepare_external(w.p["reporter"], w.report.id, revision=revision)
        p7s = w.pki.sign(request.canonical.encode("utf-8"), w.me)
    p12 = w.pki.pkcs12(w.me, PASSWORD)
    stages.save("filled")
    with db.connection_context():
        wf.submit(w.p["reporter"], w.report.id, revision=revision)
        other = rd.save(w.p["other"], w.other_report.id, {("banle", "cur"): (rd.MISSING, "20"),
                                                           ("dulich", "cur"): (rd.MISSING, "7")},
                        {"ketqua": (rd.MISSING, "Tăng.")})
        wf.submit(w.p["other"], w.other_report.id, revision=other.revision)
    stages.save("submitted")
    with db.connection_context():
        wf.accept(w.p["issuer"], w.report.id)
        wf.accept(w.p["issuer"], w.other_report.id)
    stages.save("accepted")
    with db.connection_context():
        for n in range(MESSAGES):
            outbox.enqueue(CHANNEL, {"packet": n, "report": w.report.id}, key=f"packet-{n}")
    stages.save("outbox")

    def sign(provider, who="reporter", inputs=None):
        return lambda: signing.sign_and_submit(w.p[who], w.report.id, revision=revision, provider=provider,
                                               inputs=inputs, settings=settings, pm=pm)

    drills = [
        Drill("save", "draft", lambda: fill(w)),
        Drill("submit unsigned", "filled", lambda: wf.submit(w.p["reporter"], w.report.id, revision=revision,
                                                             settings=settings)),
        Drill("submit signed .p12", "filled", sign("pkcs12", inputs={"p12": p12, "password": PASSWORD})),
        Drill("submit uploaded CMS", "filled", sign("external", inputs={"p7s": p7s})),
        Drill("submit with the seal", "filled", sign("seal", who="clerk")),
        Drill("accept", "submitted", lambda: wf.accept(w.p["issuer"], w.report.id)),
        Drill("consolidation", "accepted", lambda: cs.open_consolidated(w.p["province"], w.regime.id, period)),
        Drill("outbox delivery", "outbox", lambda: outbox.deliver_due(settings, now=FROZEN)),
    ]
    yield stages, drills, receiver, settings
    receiver.close()
    outbox.configure()
    close_db()


def _person(w, name, unit, *roles):
    from core.accounts import login as accounts
    from core.accounts.access import Grant, Role

    user = accounts.create_user(name, name, accounts.random_password(), w.u[unit])
    for role in roles:
        Grant.create(user=user, role=Role.get(Role.code == role), unit=w.u[unit])
    return access_of(user)


def _choose(points: list, quota: int, rng: random.Random) -> list:
    """Every commit boundary (just before and just after each commit), then statements drawn at
    random until the operation has its ``quota`` of kill points."""
    commits = [p.index for p in points if p.kind != "sql"]
    statements = [p.index for p in points if p.kind == "sql"]
    chosen = rng.sample(commits, min(quota, len(commits)))
    chosen += rng.sample(statements, min(max(quota - len(chosen), 0), len(statements)))
    return sorted(chosen)


def _check_state(name: str) -> None:
    with db.connection_context():
        assert audit.verify().ok, f"{name}: the audit chain does not verify"
        assert integrity_ok(), f"{name}: PRAGMA integrity_check failed"


def _dry_run(stages, drill: Drill) -> tuple[list, dict]:
    """The operation run to its end from its stage: its kill points and the state after it."""
    stages.restore(drill.stage)
    done = run_in_child(stages.url, drill.run)
    assert not done.killed and not done.error, f"{drill.name}: the dry run failed\n{done.error}"
    with db.connection_context():
        after = snapshot()
    return done.points, after


def _deliver_all(settings, receiver, where: str, *, now=FROZEN, clear: bool = True) -> None:
    """Deliver every due message; each then reached the receiver exactly once by its key (a repeat
    of a key, the message in flight at a kill sent again, is dropped by the receiver)."""
    if clear:
        receiver.clear()
    with db.connection_context():
        for _ in range(3):  # a batch at a time; three is more than there are
            outbox.deliver_due(settings, now=now)
        rows = list(outbox.OutboxMessage.select())
    keys = {m.key for m in rows}
    assert len(keys) == len(rows)
    assert {m.state for m in rows} <= {"sent"}, f"{where}: not all delivered: {[m.last_error for m in rows]}"
    assert receiver.accepted == dict.fromkeys(keys, 1), f"{where}: lost or doubled: {receiver.hits}"


def _quotas(sizes: dict, total: int) -> dict:
    """``total`` kill points shared out as evenly as the operations' numbers of points allow."""
    quotas = dict.fromkeys(sizes, 0)
    while sum(quotas.values()) < total:
        open_ = [name for name in sizes if quotas[name] < sizes[name]]
        assert open_, f"only {sum(sizes.values())} kill points in all"
        for name in open_[:total - sum(quotas.values())]:
            quotas[name] += 1
    return quotas


def test_operations_killed_anywhere_leave_the_database_before_or_after(world):
    """100 kills in all, every operation several times, each commit boundary among them; after each
    kill, and after the outbox's messages are then delivered to the end, the checks of the module's
    docstring hold."""
    stages, drills, receiver, settings = world
    rng = random.Random(_seed())
    befores, runs = {}, {}
    for stage in {d.stage for d in drills}:
        stages.restore(stage)
        with db.connection_context():
            befores[stage] = snapshot()
    for drill in drills:
        runs[drill.name] = _dry_run(stages, drill)
        assert runs[drill.name][1] != befores[drill.stage], f"{drill.name}: the operation changed nothing"
    # Delivery run to its end once: each message (the packets, the workflow's e-mails) at the receiver once.
    assert {f"packet-{n}" for n in range(MESSAGES)} < set(receiver.hits)
    assert len(receiver.hits) == len(set(receiver.hits))
    quotas = _quotas({name: len(points) for name, (points, _) in runs.items()}, TOTAL_KILLS)
    for drill in drills:
        points = runs[drill.name][0]
        print(f"{drill.name}: {len(points)} points, {sum(p.kind == 'before_commit' for p in points)} commit(s), "
              f"{len(runs[drill.name][1].get('core_outbox_message', []))} outbox message(s) after, "
              f"killed at {quotas[drill.name]}")
    killed, ended_after = 0, 0
    for drill in drills:
        points, after = runs[drill.name]
        before = befores[drill.stage]
        # What the drill may change, put back after each kill: the operation's tables, the outbox's.
        touched = {table for table in after if after[table] != before.get(table)} | {"core_outbox_message"}
        if drill.name == "outbox delivery":
            killed += _delivery_drills(stages, drill, points, touched, receiver, rng, quotas[drill.name], settings)
            continue
        stages.restore(drill.stage)
        for at in _choose(points, quotas[drill.name], rng):
            result = run_in_child(stages.url, drill.run, kill_at=at)
            assert result.killed, f"{drill.name}: point {at} ({points[at]}) was never reached\n{result.error}"
            killed += 1
            where = f"{drill.name}, killed at {points[at]}"
            with db.connection_context():
                now = snapshot()
            _check_state(where)
            if now != before:
                nearer = min(differences(now, after), differences(now, before), key=len)
                assert now == after, f"{where}: neither before nor after:\n" + "\n".join(nearer)
                # Committed: its messages, written in its transaction, go out once each (as before:
                # the stage's untouched, as the comparison shows).
                _deliver_all(settings, receiver, where)
                ended_after += 1
            stages.restore(drill.stage, touched)
    print(f"{killed} kills: {ended_after} of the state drills found the operation done, the others not begun")
    assert killed == TOTAL_KILLS


def _delivery_drills(stages, drill: Drill, points: list, touched: set, receiver, rng, quota: int,
                     settings) -> int:
    """Delivery is several transactions by design (claim, send, record each message): a kill may
    leave messages claimed ("sending"). What must hold: no message lost or doubled in the outbox,
    and after delivery runs to the end every message reached the receiver exactly once by its key
    (a message in flight at the kill is sent again with the same key, and the receiver drops it)."""
    stages.restore(drill.stage)
    with db.connection_context():
        keys = {m.key for m in outbox.OutboxMessage.select()}
    later = FROZEN + outbox.LEASE + dt.timedelta(minutes=1)  # claims of the killed worker have lapsed
    chosen = _choose(points, quota, rng)
    for at in chosen:
        stages.restore(drill.stage, touched)
        receiver.clear()
        result = run_in_child(stages.url, drill.run, kill_at=at)
        assert result.killed, f"outbox delivery: point {at} ({points[at]}) was never reached\n{result.error}"
        where = f"outbox delivery, killed at {points[at]}"
        _check_state(where)
        with db.connection_context():
            rows = list(outbox.OutboxMessage.select())
        assert sorted(m.key for m in rows) == sorted(keys), f"{where}: a message lost or doubled"
        assert {m.state for m in rows} <= {"pending", "sending", "sent"}
        _deliver_all(settings, receiver, where, now=later, clear=False)
        assert len(receiver.hits) <= len(keys) + 1, f"{where}: more than the message in flight sent again"
    return len(chosen)


def test_the_drill_tells_an_operation_split_over_two_transactions(settings, tmp_path):
    """The harness itself: an operation that commits half its work, then the rest, killed between
    the two commits is neither before nor after — what the drills above would report."""
    from core.db import transaction

    def split():
        for half in ("first", "second"):
            with transaction():
                audit.record("faults.half", object_type="drill", object_id=half)

    init_db(settings.database_url)
    stages = Stages(settings.database_url, tmp_path)
    stages.save("start")
    with db.connection_context():
        before = snapshot()
    points, after = _dry_run(stages, Drill("split", "start", split))
    between = next(p.index for p in points if p.kind == "after_commit")
    stages.restore("start")
    assert run_in_child(stages.url, split, kill_at=between).killed
    with db.connection_context():
        now = snapshot()
        assert audit.verify().ok and integrity_ok()
    assert now != before and now != after
    assert [line.split(":")[0] for line in differences(now, after)] == ["core_audit_event"]
    close_db()
