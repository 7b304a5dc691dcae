"""Stored-data integrity (security.md CRY-03; docs/backup.md "Integrity of what is stored").

What the system keeps with a hash is hashed again and compared:

- ``report_version``: each frozen report version, its canonical bytes against the SHA-256 taken
  when it was submitted (core.reporting.workflow);
- ``signature``: each kept signature, the digest its signer signed against those same bytes
  (core.signatures: a signature that no longer covers its version says the version changed);
- ``attachment``: each report attachment's file against the SHA-256 and size recorded at upload
  (core.reporting.data);
- ``screenshot``: each feedback screenshot's file likewise (core.feedback).

``verify_stored`` reads the rows in batches of ``BATCH`` by id and streams the files, so memory
stays bounded whatever the instance holds; it writes nothing. ``baocao integrity verify`` prints
what it found (exit 1 on any mismatch); the worker runs ``run_job`` every day at ``INTEGRITY_HOUR``
in the instance's zone, which records each run in the audit trail and tells the system
administrators when something differs. ``baocao_integrity_mismatches`` (core.metrics) is the
latest run's count.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from dataclasses import asdict, dataclass, field

from core import clock

log = logging.getLogger("baocao.integrity")

BATCH = 200  # rows read at once: a report version's canonical text can be large
INTEGRITY_HOUR = 3  # the daily check's hour in the instance's zone, after the 02:00 backup
JOB_NAME = "core.integrity"
KINDS = ("report_version", "signature", "attachment", "screenshot")
MISSING = "missing"  # the ``actual`` of a file that is not there
MAX_LISTED = 50  # mismatches named in the audit event (the command lists them all)


@dataclass(frozen=True)
class Mismatch:
    kind: str  # one of KINDS
    id: int  # the row's id (of its table: the version, signature, attachment, feedback item)
    report_id: int | None
    unit: str  # the unit's code ("" for a feedback item: not a report's)
    expected: str
    actual: str  # the hash found now, or MISSING

    @property
    def missing(self) -> bool:
        return self.actual == MISSING


@dataclass
class Result:
    checked: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    mismatches: list[Mismatch] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches


def _batches(query, id_field, batch: int):
    """The rows of ``query`` in id order, ``batch`` at a time (keyset: no OFFSET to rescan)."""
    last = 0
    while True:
        rows = list(query.where(id_field > last).order_by(id_field).limit(batch))
        yield from rows
        if len(rows) < batch:
            return
        last = getattr(rows[-1], id_field.name)


def _file_digest(path) -> tuple[str, int] | None:
    """SHA-256 and size of a file (core.backup.sha256_file); None when it is not there."""
    from core.backup import sha256_file

    try:
        return sha256_file(path)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None


def verify_stored(settings, *, batch: int = BATCH) -> Result:
    """Every stored hash recomputed (call inside a database connection); reads only."""
    result = Result()
    found: list[tuple] = []  # (kind, id, report_id, expected, actual)
    for kind, rows in (("report_version", _versions(batch)), ("signature", _signatures(batch)),
                       ("attachment", _attachments(settings, batch)), ("screenshot", _screenshots(settings, batch))):
        for row_id, report_id, expected, actual in rows:
            result.checked[kind] += 1
            if expected != actual:
                found.append((kind, row_id, report_id, expected, actual))
    units = _unit_codes({report_id for _, _, report_id, _, _ in found if report_id is not None})
    result.mismatches = [Mismatch(kind, row_id, report_id, units.get(report_id, ""), expected, actual)
                         for kind, row_id, report_id, expected, actual in found]
    return result


def _versions(batch: int):
    from core.reporting.versions import ReportVersion as V

    query = V.select(V.id, V.report, V.canonical, V.sha256)
    for v in _batches(query, V.id, batch):
        yield v.id, v.report_id, v.sha256, hashlib.sha256(v.canonical.encode("utf-8")).hexdigest()


def _signatures(batch: int):
    """Each signature's signed digest against its version's bytes, under the signature's algorithm."""
    from core.reporting.versions import ReportVersion as V
    from core.signatures.cms import parse
    from core.signatures.signing import ReportSignature as S

    query = S.select(S.id, S.cms, V.id, V.report, V.canonical).join(V)
    for s in _batches(query, S.id, batch):
        version = s.version
        try:
            parsed = parse(bytes(s.cms))
        except Exception:  # noqa: BLE001 — a signature that no longer parses was altered
            yield s.id, version.report_id, "cms", "unreadable"
            continue
        actual = hashlib.new(parsed.digest_algorithm, version.canonical.encode("utf-8")).hexdigest()
        yield s.id, version.report_id, parsed.message_digest.hex(), actual


def _attachments(settings, batch: int):
    from core.reporting.data import ReportAttachment as A, attachment_path

    root = settings.files_root()
    query = A.select(A.id, A.report, A.stored_name, A.sha256, A.size)
    for a in _batches(query, A.id, batch):
        yield a.id, a.report_id, a.sha256, _file_state(attachment_path(root, a.stored_name), a.size)


def _screenshots(settings, batch: int):
    from core.feedback import Feedback as F, screenshot_path

    root = settings.files_root()
    query = F.select(F.id, F.screenshot_stored, F.screenshot_sha256, F.screenshot_size).where(
        F.screenshot_stored.is_null(False))
    for f in _batches(query, F.id, batch):
        yield f.id, None, f.screenshot_sha256, _file_state(screenshot_path(root, f.screenshot_stored),
                                                           f.screenshot_size)


def _file_state(path, size) -> str:
    """The file's SHA-256 (with its size when that differs from the recorded one), or MISSING."""
    read = _file_digest(path)
    if read is None:
        return MISSING
    digest, found = read
    return digest if size is None or found == size else f"{digest} ({found} bytes)"


def _unit_codes(report_ids: set[int]) -> dict[int, str]:
    if not report_ids:
        return {}
    from core.models import Unit
    from core.reporting.opening import Report

    return dict(Report.select(Report.id, Unit.code).join(Unit).where(Report.id.in_(report_ids)).tuples())


# -- the daily job ----------------------------------------------------------------------------------

def at_integrity_hour(now: dt.datetime) -> bool:
    """huey's schedule for the job (it hands a naive UTC time): the minute ``INTEGRITY_HOUR``:00
    begins in the instance's zone, whatever the zone's offset is that day."""
    local = clock.local(now)
    return local.hour == INTEGRITY_HOUR and local.minute == 0


def run_job(settings) -> Result:
    """The worker's daily check. Each run is one audit event ``integrity.checked`` (result "failed"
    and the first mismatches on a mismatch: the metric ``baocao_integrity_mismatches`` reads the
    latest) and, on a mismatch, a notice to every active system administrator (in the app, and by
    e-mail when they gave an address), in one transaction. The run is counted with the worker's
    other jobs too (core_job_run, core.metrics.count_job_runs)."""
    from core import audit, mailer
    from core.db import transaction

    result = verify_stored(settings)
    with mailer.sending(settings), transaction():
        audit.record("integrity.checked", object_type="integrity", result="ok" if result.ok else "failed",
                     details={"checked": result.checked, "count": len(result.mismatches),
                              "mismatches": [asdict(m) for m in result.mismatches[:MAX_LISTED]]})
        if not result.ok:
            _notify_administrators(len(result.mismatches))
    if result.ok:
        log.info("integrity: %s checked, no mismatch", sum(result.checked.values()))
    else:
        log.error("integrity: %d mismatch(es) in stored data (baocao integrity verify lists them)",
                  len(result.mismatches))
    return result


def last_mismatches() -> int | None:
    """The mismatches the latest daily check found (None: it never ran). Read at each scrape."""
    from core.audit import AuditEvent

    event = (AuditEvent.select(AuditEvent.details).where(AuditEvent.action == "integrity.checked")
             .order_by(AuditEvent.id.desc()).first())
    if event is None:
        return None
    try:
        return int(json.loads(event.details).get("count", 0))
    except (ValueError, TypeError, AttributeError):
        return None


def _notify_administrators(count: int) -> None:
    """A notice, worded now in both languages as a plugin's notice is (core.reporting.notifications),
    to each active system administrator."""
    from core.i18n import core_catalog
    from core.models import User
    from core.reporting import notifications

    catalog = core_catalog()
    admins = [user_id for (user_id,) in User.select(User.id)
              .where((User.is_admin == True) & (User.is_active == True)).tuples()]  # noqa: E712
    notifications.store_notices(admins, plugin="core", message="integrity.notice.mismatch", link="/audit",
                                words={lang: catalog.gettext(lang, "integrity.notice.mismatch", count=count)
                                       for lang in ("vi", "en")})
