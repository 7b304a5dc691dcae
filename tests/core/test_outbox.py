"""The outbox (core.outbox): idempotent enqueueing in the caller's transaction, claims with a lease
that two workers never share, backoff and giving up, errors kept on the message, a channel that
raises stopping nothing else, and the administrator's retry now and cancel. Runs on SQLite and, with
``BAOCAO_TEST_DATABASE_URL``, on PostgreSQL."""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib.util
import json
import threading
import types
from pathlib import Path

import pytest

from core import outbox
from core.accounts import login as accounts
from core.accounts.permissions import core_access
from core.audit import AuditEvent
from core.db import db, transaction
from core.errors import BaocaoError, Forbidden, NotFound
from core.models import Unit, utcnow
from core.outbox import Channel, OutboxMessage, Unavailable


class Receiver:
    """A channel that keeps what it received; ``fail`` makes it raise for the payloads it names."""

    def __init__(self, name="fx.receiver"):
        self.name, self.received, self.fail, self.lock = name, [], {}, threading.Lock()

    def deliver(self, message, settings):
        error = self.fail.get(json.dumps(message.payload, sort_keys=True))
        if error is not None:
            raise error
        with self.lock:
            self.received.append(message)

    @property
    def channel(self):
        return Channel(self.name, self.deliver)


@pytest.fixture
def receiver(db_session):
    box = Receiver()
    outbox.configure(channels=[box.channel])
    yield box
    outbox.configure()  # back to the built-in channels


def due(settings, now=None, **kwargs):
    return outbox.deliver_due(settings, names=["fx.receiver"], now=now or utcnow(), **kwargs)


# -- enqueueing --------------------------------------------------------------------------------------

def test_the_same_key_twice_keeps_one_message_and_the_receiver_gets_the_key(receiver, settings):
    first = outbox.enqueue("fx.receiver", {"report": 7, "action": "accepted"}, key="report-7-v1")
    again = outbox.enqueue("fx.receiver", {"report": 7, "action": "accepted", "late": True}, key="report-7-v1")
    other = outbox.enqueue("fx.receiver", {"report": 8}, key="report-8-v1")
    assert again.id == first.id and other.id != first.id
    assert OutboxMessage.select().count() == 2
    # The same key on another channel is another message.
    outbox.configure(channels=[receiver.channel, Channel("fx.other", receiver.deliver)])
    assert outbox.enqueue("fx.other", {"report": 7}, key="report-7-v1").id != first.id
    assert due(settings).sent == 2
    delivered = {m.key: m.payload for m in receiver.received}
    assert delivered == {"report-7-v1": {"report": 7, "action": "accepted"}, "report-8-v1": {"report": 8}}
    # Without a key each message still gets one, and they differ.
    a, b = outbox.enqueue("fx.receiver", 1), outbox.enqueue("fx.receiver", 1)
    assert a.key and b.key and a.key != b.key


def test_a_message_rolls_back_with_the_callers_transaction(receiver):
    with pytest.raises(RuntimeError):
        with transaction():
            outbox.enqueue("fx.receiver", {"n": 1}, key="k1")
            raise RuntimeError("the business change failed")
    assert not OutboxMessage.select().exists()


def test_an_unknown_channel_or_a_payload_json_cannot_hold_is_refused_clearly(receiver):
    with pytest.raises(BaocaoError) as caught:
        outbox.enqueue("fx.nobody", {"n": 1})
    assert caught.value.key == "outbox.error.unknown_channel"
    assert "“fx.nobody”" in caught.value.message("vi") and "no plugin registers it" in caught.value.message("en")
    with pytest.raises(BaocaoError) as caught:
        outbox.enqueue("fx.receiver", {"when": dt.date(2026, 3, 1)})
    assert caught.value.key == "outbox.error.payload"
    with pytest.raises(BaocaoError):
        outbox.enqueue("fx.receiver", {}, key="x" * (outbox.MAX_KEY + 1))
    assert not OutboxMessage.select().exists()


# -- claims and leases ----------------------------------------------------------------------------------

def test_a_claimed_message_is_not_claimed_again_until_its_lease_ends(receiver):
    message = outbox.enqueue("fx.receiver", {"n": 1})
    now = utcnow()
    [claimed] = outbox.claim(["fx.receiver"], now)
    assert (claimed.id, claimed.state, claimed.attempts) == (message.id, "sending", 1)
    assert outbox.claim(["fx.receiver"], now) == []  # another worker, same minute: nothing
    assert outbox.claim(["fx.receiver"], now + outbox.LEASE - dt.timedelta(seconds=1)) == []
    # The first worker died while sending: once its lease ends the message is claimed again.
    [again] = outbox.claim(["fx.receiver"], now + outbox.LEASE)
    assert (again.id, again.attempts) == (message.id, 2)


def test_two_claimers_never_both_deliver_one_message(receiver, settings):
    """4 workers, each on its own connection, deliver 60 messages in batches of 5 at once."""
    for n in range(60):
        outbox.enqueue("fx.receiver", {"n": n}, key=f"m{n}")
    barrier, errors, now = threading.Barrier(4), [], utcnow()

    def worker():
        try:
            with db.connection_context():
                barrier.wait(timeout=10)
                while due(settings, now=now, limit=5).sent:
                    pass
        except Exception as exc:  # noqa: BLE001 — reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    keys = [m.key for m in receiver.received]
    assert len(keys) == 60 and len(set(keys)) == 60
    assert {(m.state, m.attempts) for m in OutboxMessage.select()} == {("sent", 1)}


# -- failures --------------------------------------------------------------------------------------------

def test_a_failing_message_keeps_its_error_backs_off_and_is_given_up_after_n(receiver, make_settings):
    settings = make_settings(outbox_max_attempts=3)
    message = outbox.enqueue("fx.receiver", {"n": 1})
    receiver.fail['{"n": 1}'] = ConnectionError("máy nhận từ chối")
    now = utcnow()
    result = due(settings, now)
    assert (result.sent, result.failed, result.given_up) == (0, 1, 0)
    row = OutboxMessage.get_by_id(message.id)
    assert (row.state, row.attempts, row.last_error) == ("pending", 1, "ConnectionError: máy nhận từ chối")
    assert row.next_attempt_at == now + dt.timedelta(minutes=1)
    assert due(settings, now + dt.timedelta(seconds=59)).failed == 0  # not due before its time
    due(settings, now + dt.timedelta(minutes=1))
    row = OutboxMessage.get_by_id(message.id)
    assert (row.state, row.attempts) == ("pending", 2)
    assert row.next_attempt_at == now + dt.timedelta(minutes=1) + dt.timedelta(minutes=2)  # longer each time
    result = due(settings, now + dt.timedelta(minutes=3))
    assert result.given_up == 1
    row = OutboxMessage.get_by_id(message.id)
    assert (row.state, row.attempts, row.last_error) == ("failed", 3, "ConnectionError: máy nhận từ chối")
    assert due(settings, now + dt.timedelta(days=2)).failed == 0  # given up: never tried again by itself
    assert receiver.received == []


def test_a_channel_may_allow_fewer_attempts_than_the_setting(receiver, settings):
    outbox.configure(channels=[dataclasses.replace(receiver.channel, max_attempts=1)])
    outbox.enqueue("fx.receiver", {"n": 1})
    receiver.fail['{"n": 1}'] = ValueError("không hợp lệ")
    assert due(settings).given_up == 1
    assert OutboxMessage.get().state == "failed"


def test_a_channel_that_raises_does_not_stop_the_other_messages(receiver, settings):
    broken = Channel("fx.broken", lambda message, settings: 1 / 0)
    outbox.configure(channels=[receiver.channel, broken])
    bad = outbox.enqueue("fx.broken", {"n": 0})
    first = outbox.enqueue("fx.receiver", {"n": 1})
    refused = outbox.enqueue("fx.receiver", {"n": 2})
    last = outbox.enqueue("fx.receiver", {"n": 3})
    receiver.fail['{"n": 2}'] = RuntimeError("địa chỉ không tồn tại")
    result = outbox.deliver_due(settings)  # every channel of the process
    assert (result.sent, result.failed) == (2, 2)
    assert [m.payload for m in receiver.received] == [{"n": 1}, {"n": 3}]
    states = {m.id: (m.state, m.last_error) for m in OutboxMessage.select()}
    assert states[bad.id] == ("pending", "ZeroDivisionError: division by zero")
    assert states[refused.id] == ("pending", "RuntimeError: địa chỉ không tồn tại")
    assert states[first.id] == states[last.id] == ("sent", "")


def test_an_unavailable_receiver_fails_the_rest_of_its_batch_without_trying_each(receiver, settings):
    calls = []

    def down(message, settings):
        calls.append(message.id)
        raise Unavailable("máy chủ không trả lời")

    outbox.configure(channels=[receiver.channel, Channel("fx.down", down)])
    made = [outbox.enqueue("fx.down", {"n": n}) for n in range(3)]
    outbox.enqueue("fx.receiver", {"n": 9})
    result = outbox.deliver_due(settings)
    assert (result.sent, result.failed) == (1, 3) and len(calls) == 1
    assert {(m.state, m.attempts, m.last_error) for m in OutboxMessage.select().where(OutboxMessage.channel == "fx.down")} \
        == {("pending", 1, "Unavailable: máy chủ không trả lời")}
    assert len(made) == 3


def test_messages_of_a_channel_nobody_registers_any_more_wait_untouched(receiver, settings):
    message = outbox.enqueue("fx.receiver", {"n": 1})
    outbox.configure()  # the plugin is gone
    assert outbox.deliver_due(settings).sent == 0
    assert (OutboxMessage.get_by_id(message.id).state, OutboxMessage.get_by_id(message.id).attempts) == ("pending", 0)


# -- the administrator's actions --------------------------------------------------------------------------

@pytest.fixture
def people(db_session):
    province = Unit.create(code="QT", name="Tỉnh Quảng Trị", kind="province")
    admin = accounts.create_user("quantri", "Quản trị", accounts.random_password(), province, is_admin=True)
    clerk = accounts.create_user("canbo", "Cán bộ", accounts.random_password(), province)
    return types.SimpleNamespace(admin=core_access(admin), clerk=core_access(clerk))


def test_retry_now_makes_a_given_up_message_due_with_fresh_attempts(receiver, make_settings, people):
    settings = make_settings(outbox_max_attempts=1)
    message = outbox.enqueue("fx.receiver", {"n": 1})
    receiver.fail['{"n": 1}'] = ConnectionError("tắt máy")
    due(settings)
    assert OutboxMessage.get_by_id(message.id).state == "failed"
    receiver.fail.clear()
    outbox.retry_now(people.admin, message.id)
    row = OutboxMessage.get_by_id(message.id)
    assert (row.state, row.attempts, row.last_error) == ("pending", 0, "ConnectionError: tắt máy")
    assert due(settings).sent == 1 and OutboxMessage.get_by_id(message.id).state == "sent"
    [event] = AuditEvent.select().where(AuditEvent.action == "outbox.retry")
    assert (event.object_type, event.object_id, event.actor_name) == ("outbox_message", str(message.id), "quantri")
    assert json.loads(event.details) == {"channel": "fx.receiver", "state": "failed", "attempts": 1}
    with pytest.raises(BaocaoError) as caught:  # sent: nothing to retry
        outbox.retry_now(people.admin, message.id)
    assert caught.value.key == "outbox.error.cannot_retry"


def test_a_waiting_message_retried_now_goes_at_once(receiver, settings, people):
    message = outbox.enqueue("fx.receiver", {"n": 1})
    receiver.fail['{"n": 1}'] = ConnectionError("tắt máy")
    now = utcnow()
    due(settings, now)
    receiver.fail.clear()
    assert due(settings, now).sent == 0  # waits for its next attempt
    outbox.retry_now(people.admin, message.id)
    assert due(settings).sent == 1
    assert OutboxMessage.get_by_id(message.id).attempts == 2


def test_cancel_stops_a_message_for_good(receiver, settings, people):
    message = outbox.enqueue("fx.receiver", {"n": 1})
    outbox.cancel(people.admin, message.id)
    assert OutboxMessage.get_by_id(message.id).state == "cancelled"
    assert due(settings, utcnow() + dt.timedelta(days=1)).sent == 0 and receiver.received == []
    assert AuditEvent.select().where(AuditEvent.action == "outbox.cancel").count() == 1
    for action, key in ((outbox.cancel, "outbox.error.cannot_cancel"), (outbox.retry_now, "outbox.error.cannot_retry")):
        with pytest.raises(BaocaoError) as caught:
            action(people.admin, message.id)
        assert caught.value.key == key
    # One being sent right now cannot be stopped (it may already be at the receiver).
    sending = outbox.enqueue("fx.receiver", {"n": 2})
    outbox.claim(["fx.receiver"], utcnow())
    with pytest.raises(BaocaoError):
        outbox.cancel(people.admin, sending.id)


def test_only_the_outbox_administrator_acts_and_an_unknown_id_is_not_found(receiver, people):
    message = outbox.enqueue("fx.receiver", {"n": 1})
    for action in (outbox.retry_now, outbox.cancel):
        with pytest.raises(Forbidden):
            action(people.clerk, message.id)
        with pytest.raises(NotFound):
            action(people.admin, message.id + 1000)
    assert OutboxMessage.get_by_id(message.id).state == "pending"
    assert not AuditEvent.select().where(AuditEvent.action.startswith("outbox.")).exists()


# -- a plugin's own screen of its channels (core.api.outbox_entries and friends) ---------------------------

def test_a_plugin_lists_retries_and_cancels_only_its_own_channels_messages(receiver, make_settings, people):
    other = Receiver("fx.other")
    outbox.configure(channels=[receiver.channel, other.channel])
    settings = make_settings(outbox_max_attempts=1)
    mine = outbox.enqueue("fx.receiver", {"n": 1}, key="mine-1")
    theirs = outbox.enqueue("fx.other", {"n": 2}, key="theirs-1")
    receiver.fail['{"n": 1}'] = ConnectionError("máy chủ tắt")
    due(settings)
    [entry] = outbox.entries(["fx.receiver"])
    assert (entry.id, entry.key, entry.payload, entry.state, entry.attempts, entry.last_error) == (
        mine.id, "mine-1", {"n": 1}, "failed", 1, "ConnectionError: máy chủ tắt")
    assert outbox.entries(["fx.receiver"], keys=["nothing"]) == []
    assert [e.id for e in outbox.entries(["fx.receiver", "fx.other"], keys=["theirs-1"])] == [theirs.id]
    # Another channel's message does not exist for this plugin's screen, whoever asks.
    for action in (outbox.retry_entry, outbox.cancel_entry):
        with pytest.raises(NotFound):
            action(people.clerk, theirs.id, ["fx.receiver"])
    with pytest.raises(ValueError):  # a lone name instead of a list would match per character
        outbox.entries("fx.receiver")
    receiver.fail.clear()
    retried = outbox.retry_entry(people.clerk, mine.id, ["fx.receiver"])
    assert (retried.state, retried.attempts) == ("pending", 0)
    result = outbox.deliver_entries(["fx.receiver"], settings)  # "send now", without a worker
    assert result.sent == 1 and [m.key for m in receiver.received] == ["mine-1"]
    assert OutboxMessage.get_by_id(theirs.id).state == "pending"  # the other channel was not touched
    [event] = AuditEvent.select().where(AuditEvent.action == "outbox.retry")
    assert event.actor_name == "canbo"
    cancelled = outbox.cancel_entry(people.clerk, theirs.id, ["fx.other"])
    assert cancelled.state == "cancelled"


# -- channels from plugins ------------------------------------------------------------------------------

def test_plugins_register_channels_by_the_hook_and_a_bad_one_is_refused(db_session, settings):
    from core.hookspecs import hookimpl
    from core.plugins import build_plugin_manager

    box = Receiver("fx_file.local")
    plugin = types.ModuleType("fx_file")
    plugin.register_channels = hookimpl(lambda settings: [box.channel, Channel("other.name", box.deliver),
                                                          Channel("smtp", box.deliver), "not a channel"])
    pm = build_plugin_manager(settings, builtins=(), extra_plugins=[plugin], load_entrypoints=False)
    try:
        found = outbox.configure(pm, settings)
        assert set(found) == {"smtp", "fx_file.local"}
        assert found["smtp"].deliver is not box.deliver  # the built-in one is kept
        assert [e[1] for e in pm.infos["fx_file"].errors] and pm.infos["fx_file"].ok
        outbox.enqueue("fx_file.local", {"n": 1}, key="once")
        assert outbox.deliver_due(settings).sent == 1 and [m.key for m in box.received] == ["once"]
    finally:
        outbox.configure()


# -- the migration of the e-mail outbox ------------------------------------------------------------------

def test_queued_mail_moves_to_the_outbox_with_its_state(db_session):
    spec = importlib.util.spec_from_file_location(
        "outbox_migration", Path(outbox.__file__).with_name("migrations") / "0022_outbox.py")
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    from playhouse.migrations import SchemaMigrator

    migrator = SchemaMigrator.from_database(db.obj)
    with db.atomic():
        migration.down(migrator, db.obj)  # back to the e-mail table of 0019
        _, OutboxMail = migration._models(db.obj)
        at = dt.datetime(2026, 3, 2, 8, 30)
        OutboxMail.create(recipient="a@quangtri.gov.vn", subject="Tháng 3", body="Nội dung", status="pending",
                          attempts=2, next_attempt_at=at, last_error="refused", created_at=at)
        OutboxMail.create(recipient="b@quangtri.gov.vn", subject="S", body="B", status="sent", created_at=at,
                          sent_at=at)
        migration.up(migrator, db.obj)
    rows = list(OutboxMessage.select().order_by(OutboxMessage.id))
    assert [(r.channel, r.state, r.attempts, r.last_error, r.next_attempt_at) for r in rows][0] == \
        ("smtp", "pending", 2, "refused", at)
    assert json.loads(rows[0].payload) == {"to": "a@quangtri.gov.vn", "subject": "Tháng 3", "body": "Nội dung"}
    assert (rows[1].state, rows[1].sent_at) == ("sent", at)
    assert len({r.key for r in rows}) == 2
    assert "core_outbox_mail" not in db.obj.get_tables()


def test_an_email_carries_its_outbox_key_as_message_id(make_settings):
    from core.channels import Message, smtp

    settings = make_settings(smtp_from="baocao@quangtri.gov.vn")
    payload = {"to": "a@quangtri.gov.vn", "subject": "Tháng 3", "body": "Nội dung"}
    mail = smtp.mime(settings, Message(1, "smtp", "mail-5", payload, 1, utcnow()))
    assert mail["Message-ID"] == "<mail-5@quangtri.gov.vn>"  # a repeat is the same mail for a reader
    odd = smtp.mime(settings, Message(2, "smtp", "báo cáo <5>", payload, 1, utcnow()))["Message-ID"]
    assert odd.startswith("<") and odd.endswith("@quangtri.gov.vn>") and " " not in odd and len(odd) > 60
