"""Built-in subscriber: tell the people concerned when a report is submitted, returned, accepted
or reopened — in the app, and by e-mail when a mail server is set.

An implementation of the public ``report_transition`` hook like any plugin's (registered by
``core.plugins.CORE_SUBSCRIBERS``, always on). It runs inside the transition's transaction, so the
notifications and their queued e-mails commit with the change or not at all. Who is told, how a
notification is worded and read: ``core.reporting.notifications``.
"""

from __future__ import annotations

from peewee import JOIN

from core import mailer
from core.accounts.access import Grant, RolePermission
from core.hookspecs import hookimpl
from core.models import User, utcnow
from core.reporting.events import for_actions
from core.reporting.notifications import EmailAddress, Notification, mail_body, report_names, report_path, text
from core.reporting.versions import ReportVersion
from core.units.tree import ancestor_ids

RECEIVE, SUBMIT = "core.report.receive", "core.report.submit"
# The transition's action → the notification's (stored since issue 5; worded by its key).
NOTIFIED = {"submitted": "submit", "returned": "return", "accepted": "accept", "reopened": "reopen"}


def _holders(code: str, unit_id: int) -> set[int]:
    """Active accounts with a grant carrying ``code`` at the unit or one of its ancestors."""
    query = (User.select(User.id).join(Grant, on=(Grant.user == User.id))
             .join(RolePermission, on=(RolePermission.role == Grant.role))
             .where((Grant.unit.in_(ancestor_ids(unit_id))) & (RolePermission.code == code)
                    & (User.is_active == True)))  # noqa: E712 — peewee builds SQL from ==
    return {user_id for (user_id,) in query.tuples()}


def recipients(action: str, transition) -> set[int]:
    """submit → whoever may receive the report; return, accept, reopen → whoever may fill it and
    the person who submitted the latest version; never the person who acted."""
    if action == "submit":
        receiver = transition.receiver_id
        people = _holders(RECEIVE, receiver) if receiver is not None else set()
    else:
        people = _holders(SUBMIT, transition.unit_id)
        latest = (ReportVersion.select(ReportVersion, User)
                  .join(User, JOIN.LEFT_OUTER, on=(ReportVersion.submitted_by == User.id))
                  .where(ReportVersion.report == transition.report_id)
                  .order_by(ReportVersion.number.desc()).first())
        if latest is not None and latest.submitted_by_id is not None and latest.submitted_by.is_active:
            people.add(latest.submitted_by_id)
    people.discard(transition.actor_id)
    return people


@hookimpl
@for_actions(*NOTIFIED)
def report_transition(transition):
    action = NOTIFIED[transition.action]
    people = sorted(recipients(action, transition))
    if not people:
        return
    now = utcnow()
    made = [Notification.create(user=user_id, report=transition.report_id, action=action, actor=transition.actor_id,
                                reason=transition.reason or "", version_number=transition.version_number,
                                created_at=now) for user_id in people]
    if mailer.enabled():
        addresses = dict(EmailAddress.select(EmailAddress.user, EmailAddress.address)
                         .where(EmailAddress.user.in_(people)).tuples())
        if addresses:
            _queue_mails(made, addresses)


def _queue_mails(made: list[Notification], addresses: dict[int, str]) -> None:
    from core.i18n import core_catalog

    catalog = core_catalog()
    names = report_names({n.report_id for n in made})
    settings = mailer.current_settings()
    for notification in made:
        address = addresses.get(notification.user_id)
        if not address:
            continue
        words = names.get(notification.report_id, {})
        vi, en = text(notification, words, "vi"), text(notification, words, "en")
        subject_key = f"notify.mail.subject.{notification.action}"
        subject = (f"{catalog.gettext('vi', subject_key, **words)} / "
                   f"{catalog.gettext('en', subject_key, **words)}")
        link = (settings.public_url.rstrip("/") + report_path(notification.report_id)) if settings.public_url else ""
        mailer.queue(address, " ".join(subject.split()), mail_body(vi, en, link, catalog))


