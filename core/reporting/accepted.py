"""A report's accepted version and its signature, read-only: what plugins publish or forward.

The accepted version is the one the receiver's latest acceptance accepted, while the report stands
accepted; a report reopened since has none until it is accepted again (its figures may still be in
the store: the store keeps the latest figure per key). ``values`` are the version's frozen values
("<row>.<column>" → canonical number text), read from the bytes kept with the version — what was
signed is what is read; ``canonical`` is those bytes and ``sha256`` their digest, so a plugin can
forward the exact signed document with its detached CMS signature.

Access: ``accepted_version(report_id)`` checks nothing about the caller (subscribers and jobs have
none). A view that takes the report from its URL passes ``access=request.state.access``: a report
the user may not read is then ``NotFound`` (as everywhere in the core, ACL-02).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from core.reporting import data as rd
from core.reporting.opening import Report
from core.reporting.versions import ReportEvent, ReportVersion
from core.signatures.signing import ReportSignature, SignatureCheck


@dataclass(frozen=True)
class VersionSignature:
    """The signature kept with a version: ``status`` is the latest check's word ("valid" or
    "indeterminate"), else the one at receipt; ``cms`` the detached CMS (DER) over ``canonical``."""

    provider: str
    kind: str  # "personal" or "seal"
    signer_name: str
    signer_serial: str
    issuer: str
    fingerprint: str
    signing_time: dt.datetime | None  # UTC, as the signer's software stated it
    received_at: dt.datetime  # UTC: the time of receipt, which timeliness and checks go by
    status: str
    checked_at: dt.datetime  # UTC: when ``status`` was decided
    cms: bytes


@dataclass(frozen=True)
class AcceptedVersion:
    report_id: int
    number: int
    submitted_at: dt.datetime  # UTC
    accepted_at: dt.datetime | None  # UTC; None only from report_version, for a version not accepted
    late: bool
    values: dict  # "<row>.<column>" → canonical text of the number (or the text), as submitted
    sections: dict  # outline section key → text
    canonical: bytes  # the exact bytes frozen (and signed, when signed): format baocao.report/1
    sha256: str
    signature: VersionSignature | None


def _signature(version_id: int) -> VersionSignature | None:
    row = ReportSignature.get_or_none(ReportSignature.version == version_id)
    if row is None:
        return None
    latest = (SignatureCheck.select().where(SignatureCheck.signature == row.id)
              .order_by(SignatureCheck.checked_at.desc(), SignatureCheck.id.desc()).first())
    return VersionSignature(provider=row.provider, kind=row.kind, signer_name=row.signer_name,
                            signer_serial=row.signer_serial, issuer=row.issuer_subject, fingerprint=row.fingerprint,
                            signing_time=row.signing_time, received_at=row.verified_at,
                            status=latest.status if latest else row.status,
                            checked_at=latest.checked_at if latest else row.verified_at, cms=bytes(row.cms))


def accepted_version(report_id: int, *, access=None) -> AcceptedVersion | None:
    """The report's accepted version with its signature, or None (never accepted, reopened since, or
    no such report). With ``access``, a report that caller may not read raises ``NotFound``."""
    if access is not None:
        report = rd.get_report(access, report_id)
    else:
        report = Report.get_or_none(Report.id == report_id)
    if report is None or report.status != "accepted":
        return None
    event = (ReportEvent.select().where((ReportEvent.report == report.id) & (ReportEvent.action == "accept"))
             .order_by(ReportEvent.at.desc(), ReportEvent.id.desc()).first())
    if event is None or event.version_number is None:
        return None
    version = ReportVersion.get_or_none((ReportVersion.report == report.id)
                                        & (ReportVersion.number == event.version_number))
    if version is None:
        return None
    return _version(version, event.at)


def report_version(report_id: int, number: int, *, access=None) -> AcceptedVersion | None:
    """Version ``number`` of the report as it was frozen, accepted or not (a report sent on to a
    system outside, with no receiver here, is never accepted here): ``accepted_at`` is the time
    of the latest acceptance when this version is the one the report stands accepted at, else None.
    None when there is no such version; with ``access``, a report that caller may not read raises
    ``NotFound``."""
    if access is not None:
        rd.get_report(access, report_id)
    version = ReportVersion.get_or_none((ReportVersion.report == report_id) & (ReportVersion.number == number))
    if version is None:
        return None
    accepted = accepted_version(report_id)
    return _version(version, accepted.accepted_at if accepted and accepted.number == number else None)


def _version(version: ReportVersion, accepted_at) -> AcceptedVersion:
    frozen = json.loads(version.canonical)
    return AcceptedVersion(report_id=version.report_id, number=version.number, submitted_at=version.submitted_at,
                           accepted_at=accepted_at, late=version.late, values=dict(frozen.get("values") or {}),
                           sections=dict(frozen.get("sections") or {}), canonical=version.canonical.encode("utf-8"),
                           sha256=version.sha256, signature=_signature(version.id))
