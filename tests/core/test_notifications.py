"""Notifications of the report workflow (issue 6): who is told of each transition, in the same
transaction, worded in the reader's language, marked read; and the e-mails, received by a real
SMTP server (aiosmtpd) the tests start on 127.0.0.1. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import socket
from email import message_from_bytes, policy

import pytest

from core import mailer
from core.outbox import OutboxMessage
from core.reporting import notifications as nt
from core.reporting import data as rd
from core.reporting import workflow as wf
from core.accounts.access import Grant, Role
from core.audit import AuditEvent
from core.errors import NotFound, ValidationError
from core.models import User, utcnow
from core.reporting.opening import Report
from tests.fixtures.forms import access_of, form_world

REGIME = "Báo cáo tình hình kinh tế - xã hội hằng tháng"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Inbox:
    """What the SMTP server received: one entry per message."""

    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        message = message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        self.messages.append({"from": envelope.mail_from, "to": list(envelope.rcpt_tos), "message": message,
                              "subject": str(message["Subject"]), "body": message.get_content()})
        return "250 OK"

    def to(self, address):
        return [m for m in self.messages if address in m["to"]]


class SMTPServer:
    def __init__(self, port=None, *, login=None):
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult

        self.inbox = Inbox()
        self.port = port or free_port()
        options = {}
        if login:  # (user, password) the server accepts; plain text on 127.0.0.1 only

            def authenticate(server, session, envelope, mechanism, data):
                given = (data.login.decode(), data.password.decode())
                return AuthResult(success=given == login, handled=False)

            options = {"authenticator": authenticate, "auth_require_tls": False}
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port, **options)

    def __enter__(self):
        self.controller.start()
        return self

    def __exit__(self, *exc):
        self.controller.stop()


@pytest.fixture
def smtp():
    with SMTPServer() as server:
        yield server


@pytest.fixture
def w(db_session):
    world = form_world()

    def person(name, unit, role):
        user = User.create(username=name, full_name=name.title(), password_hash="x", unit=world.u[unit])
        Grant.create(user=user, role=Role.get(Role.code == role), unit=world.u[unit])
        world.users[name] = user
        return user

    person("chief", "province", "receiver")  # receives at the receiving unit: told of submissions
    person("gone", "province", "receiver")  # disabled below: told nothing
    person("colleague", "aitu", "reporter")  # fills the report with the reporter: told of decisions
    person("stc_receiver", "stc", "receiver")  # receives at a department, not at the province
    User.update(is_active=False).where(User.username == "gone").execute()
    return world


def fill(w):
    cells = {("banle", "cur"): (rd.MISSING, "10"), ("dulich", "cur"): (rd.MISSING, "5")}
    return rd.save(w.p["reporter"], w.report.id, cells, {"ketqua": (rd.MISSING, "Bán lẻ tăng khá.")})


def submit(w):
    return wf.submit(w.p["reporter"], w.report.id, revision=fill(w).revision)


def told(action=None) -> set[str]:
    query = nt.Notification.select(nt.Notification, User).join(User, on=(nt.Notification.user == User.id))
    if action:
        query = query.where(nt.Notification.action == action)
    return {n.user.username for n in query}


def test_a_submission_tells_the_receivers_but_not_the_actor_nor_a_disabled_account(w):
    submit(w)
    assert told("submit") == {"issuer", "chief"}


def test_return_accept_and_reopen_tell_the_unit_that_fills_it_and_the_submitter(w):
    submit(w)
    wf.return_report(w.p["issuer"], w.report.id, "Doanh thu du lịch chưa khớp")
    assert told("return") == {"reporter", "colleague"}
    # The colleague sends version 2: the reporter, who submitted version 1, is now told like any filler.
    saved = rd.save(access_of(w.users["colleague"]), w.report.id, {("dulich", "cur"): (rd.MISSING, "6")})
    wf.submit(access_of(w.users["colleague"]), w.report.id, revision=saved.revision)
    assert {n.user_id for n in nt.Notification.select().where(nt.Notification.action == "submit")
            .order_by(nt.Notification.id.desc()).limit(2)} == {w.users["issuer"].id, w.users["chief"].id}
    wf.accept(w.p["issuer"], w.report.id)
    assert told("accept") == {"reporter", "colleague"}
    wf.reopen(w.p["issuer"], w.report.id, "Cần bổ sung số liệu")
    assert told("reopen") == {"reporter", "colleague"}


def test_the_submitter_is_told_even_without_a_grant_at_the_unit_any_more(w):
    submit(w)
    Grant.delete().where(Grant.user == w.users["reporter"]).execute()
    wf.accept(w.p["issuer"], w.report.id)
    assert told("accept") == {"reporter", "colleague"}


def test_a_submitter_whose_account_was_disabled_is_not_told(w):
    submit(w)
    User.update(is_active=False).where(User.id == w.users["reporter"].id).execute()
    wf.accept(w.p["issuer"], w.report.id)
    assert told("accept") == {"colleague"}


def test_a_transition_that_fails_leaves_no_notification(w, monkeypatch):
    submit(w)
    before = nt.Notification.select().count()

    def broken(*args, **kwargs):
        raise RuntimeError("audit store down")

    monkeypatch.setattr(wf.audit, "record", broken)
    with pytest.raises(RuntimeError):
        wf.accept(w.p["issuer"], w.report.id)
    assert nt.Notification.select().count() == before
    assert Report.get_by_id(w.report.id).status == "submitted"


def test_a_refused_submission_tells_nobody(w):
    saved = rd.save(w.p["reporter"], w.report.id, {("dulich", "cur"): (rd.MISSING, "-1")})
    with pytest.raises(wf.SubmitRefused):
        wf.submit(w.p["reporter"], w.report.id, revision=saved.revision)
    assert not nt.Notification.select().exists()


def test_the_text_is_in_the_readers_language_with_the_reason(w):
    submit(w)
    wf.return_report(w.p["issuer"], w.report.id, "Doanh thu du lịch chưa khớp")
    label = Report.get_by_id(w.report.id).label
    [received] = nt.inbox(w.users["issuer"].id, "vi")
    assert received["text"] == f"Xã Ái Tử đã gửi báo cáo {label} — {REGIME}."
    assert received["actor"] == "reporter" and not received["read"] and received["report_id"] == w.report.id
    [returned] = nt.inbox(w.users["reporter"].id, "vi")
    assert returned["text"] == (f"Tỉnh Quảng Trị đã trả lại báo cáo {label} — {REGIME}. "
                                "Lý do: Doanh thu du lịch chưa khớp")
    [english] = nt.inbox(w.users["reporter"].id, "en")
    assert english["text"].startswith("Tỉnh Quảng Trị returned the report") and "Reason: Doanh thu" in english["text"]


def test_newest_first_and_marking_read(w):
    submit(w)
    wf.return_report(w.p["issuer"], w.report.id, "Thiếu số liệu")
    saved = rd.save(w.p["reporter"], w.report.id, {("dulich", "cur"): (rd.MISSING, "6")})
    wf.submit(w.p["reporter"], w.report.id, revision=saved.revision)
    chief = w.users["chief"].id
    items = nt.inbox(chief, "vi")
    assert len(items) == 2 and items[0]["text"].endswith("(lần nộp thứ 2)") and nt.unread_count(chief) == 2
    nt.mark_read(chief, items[1]["id"])
    assert nt.unread_count(chief) == 1 and [i["read"] for i in nt.inbox(chief, "vi")] == [False, True]
    with pytest.raises(NotFound):  # someone else's notification does not exist for this person
        nt.mark_read(w.users["issuer"].id, items[0]["id"])
    assert nt.mark_all_read(chief) == 1 and nt.unread_count(chief) == 0
    assert nt.unread_count(w.users["issuer"].id) == 2


def test_the_email_address_is_checked_and_audited(w):
    reporter = w.users["reporter"]
    with pytest.raises(ValidationError) as exc:
        nt.set_email(reporter, "not an address")
    assert exc.value.errors == {"email": "notify.error.email"}
    assert nt.set_email(reporter, "  ai.tu@quangtri.gov.vn ") == "ai.tu@quangtri.gov.vn"
    assert nt.email_of(reporter.id) == "ai.tu@quangtri.gov.vn"
    nt.set_email(reporter, "")
    assert nt.email_of(reporter.id) == ""
    assert AuditEvent.select().where(AuditEvent.action == "notify.email_set").count() == 2


# -- e-mail ----------------------------------------------------------------------------------------

def with_addresses(w):
    for name in ("issuer", "chief", "reporter", "gone"):
        nt.EmailAddress.create(user=w.users[name], address=f"{name}@quangtri.gov.vn")


def mail_settings(make_settings, port, **changes):
    changes.setdefault("public_url", "https://baocao.quangtri.gov.vn/")
    return make_settings(smtp_host="127.0.0.1", smtp_port=port, smtp_from="baocao@quangtri.gov.vn", **changes)


def test_without_an_smtp_host_nothing_is_queued(w, make_settings):
    with_addresses(w)
    with mailer.sending(make_settings()):
        submit(w)
    assert told() == {"issuer", "chief"}
    assert not OutboxMessage.select().exists()
    assert mailer.deliver_pending(make_settings()).sent == 0


def test_the_receivers_get_an_email_in_vietnamese_then_english_with_a_link(w, make_settings, smtp):
    with_addresses(w)
    settings = mail_settings(make_settings, smtp.port)
    with mailer.sending(settings):
        submit(w)
    assert OutboxMessage.select().count() == 2  # queued with the transition, not yet sent
    assert smtp.inbox.messages == []
    result = mailer.deliver_pending(settings)
    assert (result.sent, result.failed) == (2, 0)
    assert sorted(a for m in smtp.inbox.messages for a in m["to"]) == ["chief@quangtri.gov.vn",
                                                                      "issuer@quangtri.gov.vn"]
    label = Report.get_by_id(w.report.id).label
    [mail] = smtp.inbox.to("chief@quangtri.gov.vn")
    assert mail["from"] == "baocao@quangtri.gov.vn"
    assert mail["subject"] == f"Xã Ái Tử đã gửi báo cáo {label} / Xã Ái Tử submitted the report {label}"
    body = mail["body"]
    vi = body.index(f"Xã Ái Tử đã gửi báo cáo {label} — {REGIME}.")
    en = body.index(f"Xã Ái Tử submitted the report {label} — {REGIME}.")
    assert vi < en
    assert f"Xem báo cáo: https://baocao.quangtri.gov.vn/reports/{w.report.id}" in body
    assert f"Open the report: https://baocao.quangtri.gov.vn/reports/{w.report.id}" in body
    assert {m.state for m in OutboxMessage.select()} == {"sent"}
    assert mailer.deliver_pending(settings).sent == 0  # sent once


def test_a_return_mails_the_reason_to_the_unit(w, make_settings, smtp):
    with_addresses(w)
    settings = mail_settings(make_settings, smtp.port, public_url="")
    submit(w)  # outside ``sending``: no mail for this one
    with mailer.sending(settings):
        wf.return_report(w.p["issuer"], w.report.id, "Doanh thu du lịch chưa khớp")
    mailer.deliver_pending(settings)
    [mail] = smtp.inbox.messages  # the colleague has no address; the actor is not told
    assert mail["to"] == ["reporter@quangtri.gov.vn"]
    assert "bị trả lại" in mail["subject"] and "returned" in mail["subject"]
    assert "Lý do: Doanh thu du lịch chưa khớp" in mail["body"] and "Reason: Doanh thu" in mail["body"]
    assert "/reports/" not in mail["body"]  # no public_url: no link


def test_with_the_server_down_the_mail_waits_with_its_error_then_goes(w, make_settings):
    with_addresses(w)
    port = free_port()  # nobody listens there yet
    settings = mail_settings(make_settings, port)
    with mailer.sending(settings):
        submit(w)
    now = utcnow()
    result = mailer.deliver_pending(settings, now=now)
    assert (result.sent, result.failed) == (0, 2)
    rows = list(OutboxMessage.select())
    assert {(m.state, m.attempts) for m in rows} == {("pending", 1)}
    assert all("Connection" in m.last_error or "refused" in m.last_error.lower() for m in rows), rows[0].last_error
    assert mailer.deliver_pending(settings, now=now).failed == 0  # not due again at once
    with SMTPServer(port) as server:
        result = mailer.deliver_pending(settings, now=now + dt.timedelta(minutes=2))
    assert result.sent == 2 and len(server.inbox.messages) == 2
    assert {(m.state, m.last_error) for m in OutboxMessage.select()} == {("sent", "")}


def test_a_mail_that_keeps_failing_is_given_up_after_the_last_attempt(w, make_settings):
    with_addresses(w)
    settings = mail_settings(make_settings, free_port())
    with mailer.sending(settings):
        submit(w)
    now = utcnow()
    for attempt in range(settings.outbox_max_attempts):
        mailer.deliver_pending(settings, now=now)
        now += dt.timedelta(hours=3)
    assert {(m.state, m.attempts) for m in OutboxMessage.select()} == {("failed", settings.outbox_max_attempts)}
    assert mailer.deliver_pending(settings, now=now + dt.timedelta(days=1)).failed == 0


def test_the_worker_delivers_every_minute(w, make_settings, smtp):
    from core.jobs import make_huey

    with_addresses(w)
    settings = mail_settings(make_settings, smtp.port)
    with mailer.sending(settings):
        submit(w)
    huey = make_huey(settings, immediate=True)
    task = next(t for t in huey.read_periodic(dt.datetime(2026, 1, 5, 10, 17)) if t.name == "core.deliver_outbox")
    assert huey.execute(task) == 2
    assert len(smtp.inbox.messages) == 2


def test_the_server_login_is_used_when_a_user_is_set(w, make_settings):
    with_addresses(w)
    with SMTPServer(login=("baocao", "mat-khau-thu-2026")) as server:
        wrong = mail_settings(make_settings, server.port, smtp_user="baocao", smtp_password="sai")
        with mailer.sending(wrong):
            submit(w)
        now = utcnow()
        assert mailer.deliver_pending(wrong, now=now).failed == 2
        assert all("Authentication" in m.last_error for m in OutboxMessage.select())
        right = mail_settings(make_settings, server.port, smtp_user="baocao", smtp_password="mat-khau-thu-2026")
        assert mailer.deliver_pending(right, now=now + dt.timedelta(minutes=2)).sent == 2
    assert len(server.inbox.messages) == 2
