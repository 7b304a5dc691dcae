"""Reminders and escalation (issue 14 item 4): nobody should find out from the receiver's phone
call that a report was due yesterday.

For every unit report still to be sent (not started, a draft, or returned) the daily job
(``send_due``: the worker's ``core.send_reminders``, ``baocao reminders send`` by hand) sends:

- "before": N working days before its deadline (``N``: the regime's policy, else the setting
  ``reminder_days_before``, else ``DEFAULT_DAYS_BEFORE``; 0: none), to the unit's reporters —
  "Còn 2 ngày làm việc đến hạn gửi báo cáo …". Sent on the first working day of that window the job
  runs, so a worker that was down on the day still reminds the next one;
- "due": on the deadline day, to the unit's reporters;
- "escalation": on a working day after the deadline, to the unit's administrators and to the
  receivers of the report ("Báo cáo … đã quá hạn …"). Deadlines more than ``ESCALATION_DAYS``
  back are left alone: switching reminders on must not flood everyone with last year's reports.

A receiver adds "urge" (``urge``, the "Đôn đốc" button of the completeness page): every late unit
of a regime and period at once, with an optional message, to the unit's reporters and
administrators ("Đơn vị nhận đôn đốc: …").

Who is a unit's reporter or administrator: the holders of ``core.report.submit`` (or
``core.unit.admin``) at the unit itself, else at the nearest unit above it where someone holds it —
a province's reporter is not told of each of its 4,200 communes. Receivers: as for a submission
(``core.report.receive`` at the receiving unit or above). Active accounts only; never the sender.

Each reminder is sent once: ``Reminder`` is UNIQUE per (report, kind, day) — the day is the
deadline for the job's three kinds (a deadline moved by the calendar is a new one), the day of the
press for "urge" (pressing twice a day sends once). The row, the in-app notifications
(``core.reporting.notifications.Notification``, worded there from the ``reminders.text.*`` keys)
and the queued e-mails (``core.mailer``: the outbox, when mail is on) are written in one
transaction per report: a job run twice, run by two workers, or killed midway and run again sends
nothing twice and forgets nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from peewee import BooleanField, CharField, DateField, DateTimeField, ForeignKeyField, IntegrityError, IntegerField, \
    TextField

from core import audit, clock, mailer
from core.accounts.access import Grant, RolePermission
from core.db import CoreModel, transaction
from core.errors import Forbidden, NotFound, ValidationError
from core.models import Unit, User, utcnow
from core.regimes.regimes import SUSPENDED, Regime
from core.reporting.notifications import EmailAddress, Notification, mail_body, report_names, report_path, text
from core.reporting.opening import Report, units_with

log = logging.getLogger("baocao.reminders")

KINDS = ("before", "due", "escalation", "urge")
ACTION_OF = {"before": "due_soon", "due": "due_today", "escalation": "overdue", "urge": "urge"}
TO_SEND = ("not_started", "draft", "returned")
UNIT_REPORT = "unit"  # consolidated reports are nobody's duty until their unit opens one
DEFAULT_DAYS_BEFORE = 2
MAX_DAYS_BEFORE = 10
ESCALATION_DAYS = 31
# The worker's hourly task sends only in office hours of the instance's day (crontab is UTC).
SEND_FROM_HOUR, SEND_UNTIL_HOUR = 7, 18
MAX_MESSAGE = 500
SUBMIT, RECEIVE, UNIT_ADMIN = "core.report.submit", "core.report.receive", "core.unit.admin"
ISSUE = "core.regime.issue"


class Reminder(CoreModel):
    report = ForeignKeyField(Report, on_delete="CASCADE")
    kind = CharField(max_length=12)
    day = DateField()
    sent_at = DateTimeField(default=utcnow)
    sent_by = ForeignKeyField(User, null=True, on_delete="SET NULL")
    message = TextField(default="")
    recipients = IntegerField(default=0)

    class Meta:
        indexes = ((("report", "kind", "day"), True),)


class ReminderPolicy(CoreModel):
    """A regime's own choice (by code, for all its versions); none: the setting's default."""

    regime_code = CharField(max_length=40, unique=True)
    days_before = IntegerField()
    enabled = BooleanField(default=True)
    updated_at = DateTimeField(default=utcnow)
    updated_by = ForeignKeyField(User, null=True, on_delete="SET NULL")


# -- policies -------------------------------------------------------------------------------------

def default_days(settings=None) -> int:
    value = getattr(settings, "reminder_days_before", DEFAULT_DAYS_BEFORE)
    return value if isinstance(value, int) and 0 <= value <= MAX_DAYS_BEFORE else DEFAULT_DAYS_BEFORE


@dataclass(frozen=True)
class Policy:
    days_before: int
    enabled: bool = True


def policy_of(code: str, settings=None) -> Policy:
    row = ReminderPolicy.get_or_none(ReminderPolicy.regime_code == code)
    return Policy(row.days_before, row.enabled) if row is not None else Policy(default_days(settings))


def set_policy(access, code: str, *, days_before: int, enabled: bool = True) -> Policy:
    """A regime's reminders: ``days_before`` working days ahead (0: only on the day), or none at all
    (``enabled`` False: no reminder, no escalation; the "Đôn đốc" button still works). For whoever
    may issue the regime at its issuing unit."""
    regime = (Regime.select().where(Regime.code == code).order_by(Regime.version.desc()).first())
    if regime is None:
        raise NotFound()
    chain = access.ancestors(regime.issuing_unit_id) if regime.issuing_unit_id else None
    if not access.allowed(ISSUE, chain):
        raise Forbidden()
    if not isinstance(days_before, int) or not 0 <= days_before <= MAX_DAYS_BEFORE:
        raise ValidationError({"days_before": "reminders.error.days"})
    with transaction():
        (ReminderPolicy.insert(regime_code=code, days_before=days_before, enabled=enabled, updated_at=utcnow(),
                               updated_by=access.actor.id)
         .on_conflict(conflict_target=[ReminderPolicy.regime_code],
                      update={ReminderPolicy.days_before: days_before, ReminderPolicy.enabled: enabled,
                              ReminderPolicy.updated_at: utcnow(), ReminderPolicy.updated_by: access.actor.id})
         .execute())
        audit.record("reminder.policy", actor=access.actor, object_type="regime", object_id=regime.id,
                     details={"code": code, "days_before": days_before, "enabled": enabled})
    return Policy(days_before, enabled)


# -- who is told ----------------------------------------------------------------------------------

class People:
    """Who holds what where, read once per run: the job reminds thousands of reports with a few
    queries, not a few per report."""

    def __init__(self):
        self.parents = dict(Unit.select(Unit.id, Unit.parent).tuples())
        self._by_code: dict[str, dict[int, set[int]]] = {}

    def _holders(self, code: str) -> dict[int, set[int]]:
        if code not in self._by_code:
            found: dict[int, set[int]] = {}
            query = (Grant.select(Grant.unit, Grant.user)
                     .join(RolePermission, on=(RolePermission.role == Grant.role))
                     .switch(Grant).join(User, on=(Grant.user == User.id))
                     .where((RolePermission.code == code) & (User.is_active == True)))  # noqa: E712
            for unit_id, user_id in query.tuples():
                found.setdefault(unit_id, set()).add(user_id)
            self._by_code[code] = found
        return self._by_code[code]

    def chain(self, unit_id: int | None) -> list[int]:
        seen, chain = set(), []
        while unit_id is not None and unit_id not in seen:
            seen.add(unit_id)
            chain.append(unit_id)
            unit_id = self.parents.get(unit_id)
        return chain

    def nearest(self, code: str, unit_id: int) -> set[int]:
        """Holders of ``code`` at the unit, else at the nearest unit above it with any."""
        holders = self._holders(code)
        for uid in self.chain(unit_id):
            if holders.get(uid):
                return set(holders[uid])
        return set()

    def anywhere_above(self, code: str, unit_id: int | None) -> set[int]:
        holders = self._holders(code)
        return {user for uid in self.chain(unit_id) for user in holders.get(uid, ())}

    def of(self, kind: str, report: Report) -> set[int]:
        if kind in ("before", "due"):
            return self.nearest(SUBMIT, report.unit_id)
        if kind == "escalation":
            return self.nearest(UNIT_ADMIN, report.unit_id) | self.anywhere_above(RECEIVE, report.receiver_id)
        return self.nearest(SUBMIT, report.unit_id) | self.nearest(UNIT_ADMIN, report.unit_id)


# -- sending one ----------------------------------------------------------------------------------

def _already(report_id: int, kind: str, day: dt.date) -> bool:
    return Reminder.select().where((Reminder.report == report_id) & (Reminder.kind == kind)
                                   & (Reminder.day == day)).exists()


def _send(report: Report, kind: str, day: dt.date, people: set[int], *, actor_id: int | None = None,
          message: str = "", days_left: int | None = None) -> bool:
    """Record the reminder and tell ``people``, in one transaction; False when it was sent before
    (or another run is sending it at this moment)."""
    people = set(people) - {actor_id}
    try:
        with transaction():
            if _already(report.id, kind, day):
                return False
            Reminder.create(report=report.id, kind=kind, day=day, sent_at=utcnow(), sent_by=actor_id,
                            message=message, recipients=len(people))
            now = utcnow()
            made = [Notification.create(user=user_id, report=report.id, action=ACTION_OF[kind], actor=actor_id,
                                        reason=message, version_number=days_left, created_at=now)
                    for user_id in sorted(people)]
            if made and mailer.enabled():
                _queue_mails(made)
    except IntegrityError:  # another run inserted the same reminder first: it is theirs to send
        return False
    return True


def _queue_mails(made: list[Notification]) -> None:
    from core.i18n import core_catalog

    addresses = dict(EmailAddress.select(EmailAddress.user, EmailAddress.address)
                     .where(EmailAddress.user.in_([n.user_id for n in made])).tuples())
    if not addresses:
        return
    catalog = core_catalog()
    names = report_names({n.report_id for n in made})
    settings = mailer.current_settings()
    link = (settings.public_url.rstrip("/") + report_path(made[0].report_id)) if settings.public_url else ""
    for notification in made:
        address = addresses.get(notification.user_id)
        if not address:
            continue
        words = names.get(notification.report_id, {})
        subject_key = f"reminders.mail.subject.{notification.action}"
        subject = f"{catalog.gettext('vi', subject_key, **words)} / {catalog.gettext('en', subject_key, **words)}"
        body = mail_body(text(notification, words, "vi"), text(notification, words, "en"), link, catalog)
        mailer.queue(address, " ".join(subject.split()), body)


# -- the daily job --------------------------------------------------------------------------------

@dataclass
class Planned:
    report: Report
    kind: str
    days_left: int | None = None


@dataclass
class SendResult:
    sent: dict = field(default_factory=lambda: {k: 0 for k in KINDS})  # reminders sent, by kind
    already: int = 0  # due, but sent before (a second run)

    @property
    def total(self) -> int:
        return sum(self.sent.values())


def plan(today: dt.date, calendar, settings=None) -> list[Planned]:
    """The reminders due ``today``, sent or not (``send_due`` skips those sent before)."""
    policies = {row.regime_code: Policy(row.days_before, row.enabled) for row in ReminderPolicy.select()}
    default = Policy(default_days(settings))
    longest = max([default.days_before, *(p.days_before for p in policies.values())])
    horizon = calendar.add_working_days(today, longest) if longest else today
    reports = (Report.select(Report, Regime).join(Regime, on=(Report.regime == Regime.id))
               .where((Report.kind == UNIT_REPORT) & Report.status.in_(list(TO_SEND)) & (Regime.status != SUSPENDED)
                      & (Report.deadline >= today - dt.timedelta(days=ESCALATION_DAYS))
                      & (Report.deadline <= horizon))
               .order_by(Report.deadline, Report.id))
    working = calendar.is_working_day(today)
    planned = []
    for report in reports:
        policy = policies.get(report.regime.code, default)
        if not policy.enabled:
            continue
        if report.deadline == today:
            planned.append(Planned(report, "due"))
        elif report.deadline < today:
            if working:
                planned.append(Planned(report, "escalation"))
        elif working and policy.days_before:
            left = calendar.working_days_between(today, report.deadline)
            if 0 < left <= policy.days_before:
                planned.append(Planned(report, "before", left))
    return planned


def send_due(*, today: dt.date | None = None, calendar=None, settings=None) -> SendResult:
    """Send the reminders due ``today`` (the instance's day) that were not sent yet, one
    transaction per report: safe to run again at any time, and after a crash."""
    from core.regimes.workdays import work_calendar

    today = today or clock.today()
    calendar = calendar or work_calendar(settings)
    result = SendResult()
    people = People()
    planned = plan(today, calendar, settings)
    ids = [p.report.id for p in planned]
    done = set(Reminder.select(Reminder.report, Reminder.kind, Reminder.day)
               .where(Reminder.report.in_(ids)).tuples()) if ids else set()
    for item in planned:
        if (item.report.id, item.kind, item.report.deadline) in done:
            result.already += 1
            continue
        if _send(item.report, item.kind, item.report.deadline, people.of(item.kind, item.report),
                 days_left=item.days_left):
            result.sent[item.kind] += 1
        else:
            result.already += 1
    log.info("reminders: %s sent, %d sent before", result.sent, result.already)
    return result


def in_office_hours(now: dt.datetime | None = None) -> bool:
    """The worker's hourly task sends between 07:00 and 18:00 of the instance's day."""
    local = clock.local(now or clock.now_utc())
    return SEND_FROM_HOUR <= local.hour < SEND_UNTIL_HOUR


# -- the receiver's "Đôn đốc" ---------------------------------------------------------------------

@dataclass
class UrgeResult:
    reminded: int = 0  # late units told now
    already: int = 0  # late units urged earlier today


def urge(access, regime_code: str, period: str, message: str = "", *, today: dt.date | None = None,
         progress=None) -> UrgeResult:
    """Remind every late unit of a regime and period the person receives from, at once.

    ``NotFound`` when the regime or period is out of their sight (``completeness.overdue_units``);
    ``Forbidden`` when they see it but receive none of its late reports (a viewer of the units).
    ``progress(done, total)``, if given, hears of each unit reminded (the page's progress bar,
    ``core.background``): each unit's reminder is its own transaction, so a run stopped midway
    sends the rest, and only the rest, when it is run again."""
    from core.reporting.completeness import overdue_units

    message = " ".join(str(message or "").split())
    if len(message) > MAX_MESSAGE:
        raise ValidationError({"message": "reminders.error.message"})
    received = units_with(access, RECEIVE)
    if received is not None and not received:
        raise Forbidden()  # receives nothing anywhere: not theirs to urge, whatever they may see
    today = today or clock.today()
    rows = overdue_units(access, regime_code, period, today=today)
    reports = list(Report.select().where(Report.id.in_([r.report_id for r in rows] or [0])).order_by(Report.id))
    mine = [r for r in reports if r.receiver_id is not None and (received is None or r.receiver_id in received)]
    if not mine:
        raise Forbidden() if rows else ValidationError({"regime": "reminders.error.none_late"})
    people = People()
    result = UrgeResult()
    for done, report in enumerate(mine, start=1):
        if _send(report, "urge", today, people.of("urge", report), actor_id=access.actor.id, message=message):
            result.reminded += 1
        else:
            result.already += 1
        if progress is not None:
            progress(done, len(mine))
    if result.reminded:
        audit.record("reminder.urge", actor=access.actor, object_type="regime", object_id=regime_code,
                     details={"period": period, "units": result.reminded, "message": bool(message)})
    return result


def sent_for(report_id: int) -> list[Reminder]:
    """The reminders sent about a report, oldest first."""
    return list(Reminder.select().where(Reminder.report == report_id).order_by(Reminder.sent_at, Reminder.id))
