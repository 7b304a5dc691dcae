"""Submitting, returning, accepting and reopening a report, and the versions a submission freezes.

States: not started → draft (first save) → submitted → returned (with a reason; the unit edits and
submits again) or accepted; an accepted report may be reopened by its receiver with a reason
(back to returned). Every transition is one transaction, checks the state it starts from inside
it, and leaves one ReportEvent and one audit event.

A submission freezes a ReportVersion: the canonical bytes of what was sent and their SHA-256.
The bytes are UTF-8 JSON with sorted keys and no spaces (format ``baocao.report/1``): the report
(regime code and version, unit, period, deadline), the form code and version, every shown cell's
value as a canonical decimal string (inputs and what was computed from them; greyed cells left
out), the narrative sections, the attachments' names, sizes and SHA-256, the version number, who
submitted it and when (UTC). Serialising the same content always gives the same bytes, so a
signature over them (issue 6's next step) can be checked years later.

A double click or a retried request submits once: ``submit`` takes the revision the person saw;
when the report is already submitted at that revision, the existing version comes back.

Signatures (issue 6, ``core.signatures.signing``): a signature covers the bytes of one version, and an outside
signing tool signs them before the version exists. So the bytes are frozen first: ``prepare``
computes them for the report as saved at a revision, with ``submitted_at`` = the time of preparing
(also the version's ``submitted_at``), and checks what ``submit`` would (state, revision, blockers)
without writing. ``submit(..., signature=...)`` then stores exactly those bytes, provided the
revision has not moved; whether the submission was late is judged on the time of receipt.
With ``settings.require_signature`` an unsigned submission is refused (``settings=None``: the caller
enforces no signature policy — internal callers and tests).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass

from peewee import JOIN

from core import audit
from core import clock
from core.reporting import consolidation
from core.reporting import data as rd
from core.reporting import events as lifecycle
from core.db import Prepared as PreparedQuery  # this module's Prepared is the frozen bytes
from core.db import transaction
from core.errors import BaocaoError, Forbidden
from core.regimes.form_engine import canonical
from core.models import User, utcnow
from core.reporting.opening import Report
from core.reporting.versions import ReportEvent, ReportVersion  # noqa: F401 — the workflow's models, named here too

FORMAT = "baocao.report/1"
MAX_REASON = 2000
RECEIVE = rd.RECEIVE
can_receive = rd.can_receive  # whether the person receives the report: one rule, kept beside can_fill
AUDIT_ACTIONS = {"submit": "report.submitted", "return": "report.returned", "accept": "report.accepted",
                 "reopen": "report.reopened"}
TRANSITIONS = {"submit": "submitted", "return": "returned", "accept": "accepted", "reopen": "reopened"}


class SubmitRefused(BaocaoError):
    """The report cannot be sent yet: ``messages`` lists why (severity, text {vi, en}, cell)."""

    key = "workflow.error.submit_refused"

    def __init__(self, messages: list[tuple[str, dict, str | None]]):
        super().__init__(count=len(messages))
        self.messages = messages


def is_late(submitted_at: dt.datetime, deadline: dt.date) -> bool:
    """Late when the day of submission in the instance's time zone is after the deadline day."""
    local = clock.local(submitted_at)
    return local.date() > deadline


def canonical_bytes(sheet, *, number: int, submitted_by: str, submitted_at: dt.datetime) -> bytes:
    report = sheet.report
    values = {f"{r}.{c}": canonical(v) for (r, c), v in sorted(sheet.values.items())
              if v is not None and sheet.kinds.get((r, c)) != "greyed"}
    content = {
        "format": FORMAT,
        "report": {"id": report.id, "regime": report.regime.code, "regime_version": report.regime.version,
                   "unit": report.unit.code, "unit_name": report.unit.name,
                   "period": {"frequency": report.frequency, "year": report.year, "index": report.period_index,
                              "start": report.period_start.isoformat(), "end": report.period_end.isoformat(),
                              "label": report.label},
                   "deadline": report.deadline.isoformat()},
        "form": {"code": sheet.version.form.code, "version": sheet.version.version},
        "values": values,
        "sections": {k: v for k, v in sorted(sheet.sections.items()) if v},
        "attachments": sorted(({"name": a.name, "size": a.size, "sha256": a.sha256} for a in sheet.attachments),
                              key=lambda a: (a["sha256"], a["name"])),
        "version": number,
        "submitted_by": submitted_by,
        "submitted_at": submitted_at.replace(microsecond=0).isoformat() + "Z",
    }
    return json.dumps(content, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")


def _reasons_not_ready(sheet) -> list[tuple[str, dict, str | None]]:
    from core.i18n import core_catalog

    found = [(m.severity, m.text, m.cell) for m in sheet.messages if m.severity == "blocker"]
    for section in sheet.form.outline:
        if section.get("required") and not (sheet.sections.get(section["key"]) or "").strip():
            text = {lang: core_catalog().gettext(lang, "workflow.error.section_required",
                                                 title=section["title"]) for lang in ("vi", "en")}
            found.append(("blocker", text, f"section:{section['key']}"))
    return found


@dataclass(frozen=True)
class Prepared:
    """The canonical bytes of the next version, frozen for signing (``prepare``)."""

    report_id: int
    revision: int
    number: int
    submitted_at: dt.datetime
    data: bytes
    sha256: str


def submitted_at_revision(report_id: int, revision: int) -> ReportVersion | None:
    """The version already made from this revision, when the report is still submitted (a second click)."""
    current = Report.get_by_id(report_id)
    latest = (ReportVersion.select().where(ReportVersion.report == report_id)
              .order_by(ReportVersion.number.desc()).first())
    if current.status == "submitted" and latest is not None and latest.revision == revision:
        return latest
    return None


def _freeze(access, report, current, latest, revision: int, now: dt.datetime) -> Prepared:
    if current.status not in rd.EDITABLE:
        raise BaocaoError("report_data.error.not_editable", status=current.status)
    if current.revision != revision:
        raise BaocaoError("workflow.error.stale", revision=current.revision)
    consolidation.ensure_fresh(current)  # a consolidated report goes with today's accepted figures
    sheet = rd.load_sheet(access, report.id, report=report)
    not_ready = _reasons_not_ready(sheet)
    if not_ready:
        raise SubmitRefused(not_ready)
    number = (latest.number if latest else 0) + 1
    data = canonical_bytes(sheet, number=number, submitted_by=access.actor.username, submitted_at=now)
    return Prepared(report_id=report.id, revision=revision, number=number, submitted_at=now.replace(microsecond=0),
                    data=data, sha256=hashlib.sha256(data).hexdigest())


def prepare(access, report_id: int, *, revision: int) -> Prepared:
    """The bytes ``submit`` would store for the report as saved at ``revision``, for signing; the
    same refusals as ``submit`` (state, stale revision, blockers). Writes nothing."""
    report = rd.get_report(access, report_id)
    if not rd.can_fill(access, report):
        raise Forbidden()
    current = Report.get_by_id(report.id)
    latest = (ReportVersion.select().where(ReportVersion.report == report.id)
              .order_by(ReportVersion.number.desc()).first())
    return _freeze(access, report, current, latest, revision, utcnow())


def submit(access, report_id: int, *, revision: int, signature=None, settings=None) -> ReportVersion:
    """Send the report as it is saved: refused while a blocker or an empty required section
    remains; one version per revision, whatever the number of clicks. ``signature``: a verified
    ``core.signatures.signing.Signed`` over ``prepare``'s bytes (``core.signatures.signing.sign_and_submit`` makes it),
    kept with the version in the same transaction."""
    report = rd.get_report(access, report_id)
    if not rd.can_fill(access, report):
        raise Forbidden()
    if signature is None and settings is not None and settings.require_signature:
        done = submitted_at_revision(report.id, revision)
        if done is not None:
            return done
        raise BaocaoError("signing.error.signature_required")
    with transaction():
        current = Report.get_by_id(report.id)
        latest = (ReportVersion.select().where(ReportVersion.report == report.id)
                  .order_by(ReportVersion.number.desc()).first())
        if current.status == "submitted" and latest is not None and latest.revision == revision:
            return latest  # the same click again
        now = utcnow()
        # Versions, signatures and events are made here and by the receiver's steps that follow a
        # submission; the ``submitted_at`` set below is never cleared, so a report without it has
        # none of them (the report page does not read them then: web/routes/report_workflow.py).
        if signature is None:
            prepared = _freeze(access, report, current, latest, revision, now)
        else:
            prepared = signature.prepared
            if current.status not in rd.EDITABLE:
                raise BaocaoError("report_data.error.not_editable", status=current.status)
            consolidation.ensure_fresh(current)
            if (current.revision != revision or prepared.revision != revision or prepared.report_id != report.id
                    or prepared.number != (latest.number if latest else 0) + 1):
                raise BaocaoError("signing.error.changed")
        number = prepared.number
        late = is_late(now, current.deadline)
        changed = (Report.update(status="submitted", revision=Report.revision + 1, submitted_at=now,
                                 submitted_late=late)
                   .where((Report.id == report.id) & (Report.revision == revision)).execute())
        if changed != 1:
            raise BaocaoError("workflow.error.stale", revision=current.revision + 1)
        version = ReportVersion.create(report=report.id, number=number, form_version=current.form_version_id,
                                       revision=revision, submitted_at=prepared.submitted_at,
                                       submitted_by=access.actor, deadline=current.deadline, late=late,
                                       canonical=prepared.data.decode("utf-8"), sha256=prepared.sha256)
        details = {"version": number, "sha256": version.sha256, "late": late}
        if signature is not None:
            signature.attach(version, access.actor)
            details.update(signature.audit_details())
            # "signed", then "submitted": a signed submission is both, announced in this transaction.
            lifecycle.announce(current, "signed", actor=access.actor, version_number=number, at=now)
        ReportEvent.create(report=report.id, action="submit", actor=access.actor, at=now, version_number=number)
        lifecycle.announce(current, "submitted", actor=access.actor, version_number=number, at=now)
        audit.record(AUDIT_ACTIONS["submit"], actor=access.actor, unit=report.unit_id, object_type="report",
                     object_id=report.id, details=details)
    return version


def _receiver_step(access, report_id: int, action: str, frm: str, to: str, reason: str = "",
                   need_reason: bool = False) -> None:
    report = rd.get_report(access, report_id)
    if not can_receive(access, report):
        raise Forbidden()
    reason = (reason or "").strip()
    if need_reason and not reason:
        raise BaocaoError("workflow.error.reason_required")
    if len(reason) > MAX_REASON:
        raise BaocaoError("workflow.error.reason_too_long", limit=MAX_REASON)
    with transaction():
        changed = (Report.update(status=to, revision=Report.revision + 1)
                   .where((Report.id == report.id) & (Report.status == frm)).execute())
        if changed != 1:
            raise BaocaoError("workflow.error.wrong_state")
        latest = (ReportVersion.select().where(ReportVersion.report == report.id)
                  .order_by(ReportVersion.number.desc()).first())
        event = ReportEvent.create(report=report.id, action=action, actor=access.actor, reason=reason,
                                   version_number=latest.number if latest else None)
        # Subscribers (notifications, accepted figures, plugins) hear it inside this transaction.
        lifecycle.announce(report, TRANSITIONS[action], actor=access.actor, reason=reason,
                        version_number=event.version_number, at=event.at)
        audit.record(AUDIT_ACTIONS[action], actor=access.actor,
                     unit=report.unit_id, object_type="report", object_id=report.id,
                     details={"reason": reason[:200]} if reason else {})


def return_report(access, report_id: int, reason: str) -> None:
    """Send a submitted report back to its unit, with the reason it must read."""
    _receiver_step(access, report_id, "return", "submitted", "returned", reason, need_reason=True)


def accept(access, report_id: int) -> None:
    _receiver_step(access, report_id, "accept", "submitted", "accepted")


def reopen(access, report_id: int, reason: str) -> None:
    """Open an accepted report again for its unit (a correction found later), with a reason."""
    _receiver_step(access, report_id, "reopen", "accepted", "returned", reason, need_reason=True)


# Compiled once (core.db.Prepared): the report page's workflow card reads both on every visit.
_VERSIONS = PreparedQuery(lambda p: ReportVersion.select(ReportVersion, User)
                     .join(User, JOIN.LEFT_OUTER, on=(ReportVersion.submitted_by == User.id))
                     .where(ReportVersion.report == p.report_id).order_by(ReportVersion.number.desc()))
_EVENTS = PreparedQuery(lambda p: ReportEvent.select(ReportEvent, User)
                   .join(User, JOIN.LEFT_OUTER, on=(ReportEvent.actor == User.id))
                   .where(ReportEvent.report == p.report_id).order_by(ReportEvent.at, ReportEvent.id))


def versions(report_id: int) -> list[ReportVersion]:
    return list(_VERSIONS.run(report_id=report_id))


def events(report_id: int) -> list[ReportEvent]:
    return list(_EVENTS.run(report_id=report_id))


def timeliness(report: Report) -> str | None:
    if report.submitted_at is None:
        return None
    return "late" if report.submitted_late else "on_time"
