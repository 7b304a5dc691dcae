"""The receiving unit's work: the queue of reports waiting for it, accepting many at once, and
returning one with a reason and comments on its cells.

The queue holds the reports whose ``receiver`` lies where the person holds ``core.report.receive``
(the granted unit and its subtree, as everywhere). It opens on "waiting for me" (submitted) and
filters by regime code, period, status, unit name (diacritics ignored: "cam lo" finds "Cam Lộ")
and lateness; the oldest submission comes first, so what has waited longest is seen first. One
query brings a page of rows with their unit, regime and latest version number; one more counts
the rows per status for the same filters.

Bulk accept goes through ``core.reporting.workflow.accept`` report by report, each in its own
transaction: rights and state are checked per report, so one report withdrawn or returned by a
colleague in between is listed as refused and the others are accepted. Each accept leaves its own
ReportEvent and audit event, exactly as one click on the report's page would.

``return_with_comments`` is one transaction: the cell comments and the return with its reason are
saved together or not at all, so the unit never finds comments on a report that was not returned.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from peewee import Case, fn

from core import clock
from core.reporting import data as rd
from core.reporting import workflow as wf
from core.signatures import signing
from core.db import transaction
from core.errors import BaocaoError, Forbidden, NotFound
from core.i18n import fold
from core.models import Unit
from core.regimes.regimes import Regime
from core.reporting.opening import STATUSES, Report, units_with
from core.safe_input import parse_id, parse_int

PAGE_SIZE = 100
MAX_BULK = 200
MAX_RETURN_COMMENTS = 50
WAITING = "submitted"


@dataclass
class Filters:
    status: str = WAITING  # "" means every status
    regime: str = ""  # regime code (every version of it)
    period: str = ""  # "start/end" ISO dates
    unit: str = ""  # words of the unit's name or its code
    late: bool = False
    page: int = 1

    @classmethod
    def from_params(cls, params) -> "Filters":
        """From a query string or a form; anything unreadable falls back to the default."""
        status = params.get("status", WAITING)
        status = status if status in STATUSES or status == "" else WAITING
        page = str(params.get("page", "1"))
        return cls(status=status, regime=str(params.get("regime", "") or "").strip()[:40],
                   period=str(params.get("period", "") or "").strip()[:25],
                   unit=" ".join(str(params.get("unit", "") or "").split())[:100],
                   late=str(params.get("late", "")) in ("1", "on", "true"),
                   page=parse_int(page, maximum=99_999) or 1)

    def params(self, **changes) -> dict:
        """The query parameters that show this view (with ``changes``): for links and hidden fields."""
        values = {"status": self.status, "regime": self.regime, "period": self.period, "unit": self.unit,
                  "late": "1" if self.late else "", "page": str(self.page) if self.page > 1 else ""}
        values.update({k: str(v) for k, v in changes.items()})
        return {k: v for k, v in values.items() if v or k == "status"}


@dataclass
class QueueRow:
    report: Report
    version_number: int | None
    signature: str | None = None  # the latest version's signature: valid, indeterminate; None: unsigned

    def timeliness(self, today: dt.date) -> str:
        """on_time / late for a submitted report, overdue for one not sent after its deadline."""
        r = self.report
        if r.submitted_at is not None and r.status in ("submitted", "accepted"):
            return "late" if r.submitted_late else "on_time"
        return "overdue" if r.late(today) else "pending"


@dataclass
class Queue:
    filters: Filters
    rows: list[QueueRow]
    total: int
    counts: dict[str, int]  # status → rows matching every other filter
    regimes: list[tuple[str, str]] = field(default_factory=list)  # (code, name) to choose from
    periods: list[dict] = field(default_factory=list)  # {key, label}

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // PAGE_SIZE))


def receiving_units(access) -> set[int] | None:
    """Units whose reports this person receives; None: every unit (a system administrator)."""
    return units_with(access, wf.RECEIVE)


def _scope(access):
    """The condition "received by this person", or None when nothing is."""
    units = receiving_units(access)
    if units is None:
        return Report.receiver.is_null(False)
    return Report.receiver.in_(sorted(units)) if units else None


def _late(today: dt.date):
    # Sent after the deadline, or still not sent (or sent back) with the deadline passed.
    return ((Report.submitted_late == True) & Report.status.in_(["submitted", "accepted"])) | (  # noqa: E712
        Report.status.in_(list(rd.EDITABLE)) & (Report.deadline < today))


def _period(text: str):
    try:
        start, end = (dt.date.fromisoformat(p) for p in text.split("/", 1))
    except ValueError:
        return None
    return start, end


def _matching_units(scope, words: list[str]) -> list[int]:
    query = (Unit.select(Unit.id, Unit.name, Unit.code)
             .where(Unit.id.in_(Report.select(Report.unit).where(scope))))
    return [u.id for u in query
            if all(w in fold(u.name) or w in u.code.lower() for w in words)]


def queue(access, filters: Filters | None = None, *, today: dt.date | None = None) -> Queue:
    """The reports this person receives, filtered, oldest submission first, one page of them."""
    filters = filters or Filters()
    today = today or clock.today()
    scope = _scope(access)
    if scope is None:
        return Queue(filters, [], 0, {s: 0 for s in STATUSES})
    conditions = [scope]
    if filters.regime:
        conditions.append(Report.regime.in_(Regime.select(Regime.id).where(Regime.code == filters.regime)))
    period = _period(filters.period) if filters.period else None
    if period:
        conditions.append((Report.period_start == period[0]) & (Report.period_end == period[1]))
    if filters.unit:
        ids = _matching_units(scope, fold(filters.unit).split())
        conditions.append(Report.unit.in_(ids) if ids else Report.id.is_null())  # no unit: no row
    if filters.late:
        conditions.append(_late(today))
    where = conditions[0]
    for condition in conditions[1:]:
        where &= condition

    counts = {s: 0 for s in STATUSES}
    for status, count in Report.select(Report.status, fn.COUNT(Report.id)).where(where).group_by(Report.status).tuples():
        counts[status] = count
    if filters.status:
        where &= Report.status == filters.status
    total = counts.get(filters.status, 0) if filters.status else sum(counts.values())

    # The latest version number in the same query: a correlated subquery, not a query per row.
    Version = wf.ReportVersion
    latest = Version.select(fn.MAX(Version.number)).where(Version.report == Report.id)
    never_sent = Case(None, [(Report.submitted_at.is_null(), 1)], 0)
    # And the check result of the latest version's signature (its last re-check when there is one),
    # so the receiver sees before a bulk accept which signatures are still undetermined.
    Signed, Check, Latest = signing.ReportSignature, signing.SignatureCheck, Version.alias()
    last_check = Check.select(Check.status).where(Check.signature == Signed.id).order_by(Check.id.desc()).limit(1)
    signature = (Signed.select(fn.COALESCE(last_check, Signed.status))
                 .join(Latest, on=(Signed.version == Latest.id))
                 .where(Latest.report == Report.id).order_by(Latest.number.desc()).limit(1))
    query = (Report.select(Report, Unit, Regime, latest.alias("version_number"), signature.alias("signature"))
             .join(Unit, on=(Report.unit == Unit.id)).switch(Report)
             .join(Regime, on=(Report.regime == Regime.id)).switch(Report)
             .where(where)
             .order_by(never_sent, Report.submitted_at, Report.deadline, Unit.name, Report.id)
             .paginate(filters.page, PAGE_SIZE))
    rows = [QueueRow(r, r.version_number, r.signature) for r in query]
    return Queue(filters, rows, total, counts, _regime_choices(scope), _period_choices(scope, filters.regime))


def _regime_choices(scope) -> list[tuple[str, str]]:
    """Regime codes received here, named by their newest version."""
    query = (Regime.select(Regime.code, Regime.name, Regime.version)
             .where(Regime.id.in_(Report.select(Report.regime).where(scope)))
             .order_by(Regime.code, Regime.version.desc()))
    names: dict[str, str] = {}
    for r in query:
        names.setdefault(r.code, r.name)
    return sorted(names.items(), key=lambda item: fold(item[1]))


def _period_choices(scope, regime_code: str) -> list[dict]:
    query = Report.select(Report.period_start, Report.period_end, fn.MIN(Report.label).alias("label")).where(scope)
    if regime_code:
        query = query.where(Report.regime.in_(Regime.select(Regime.id).where(Regime.code == regime_code)))
    query = (query.group_by(Report.period_start, Report.period_end)
             .order_by(Report.period_start.desc(), Report.period_end.desc()).limit(60))
    return [{"key": f"{r.period_start.isoformat()}/{r.period_end.isoformat()}", "label": r.label or
             f"{r.period_start:%d/%m/%Y} – {r.period_end:%d/%m/%Y}"} for r in query]


# -- accepting many at once -----------------------------------------------------------------------

@dataclass
class Refusal:
    report_id: int
    unit_name: str  # empty when the person may not even read the report
    error: BaocaoError
    status: str = ""  # the report's status now, when it is the reason


@dataclass
class BulkResult:
    accepted: list[int] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)


def selected_ids(values) -> list[int]:
    """The report ids of the ticked boxes, each once, in order; refused beyond MAX_BULK."""
    ids: list[int] = []
    for value in values:
        number = parse_id(str(value).strip())
        if number is not None and number not in ids:
            ids.append(number)
    if not ids:
        raise BaocaoError("queue.error.none_selected")
    if len(ids) > MAX_BULK:
        raise BaocaoError("queue.error.too_many", limit=MAX_BULK)
    return ids


def bulk_accept(access, report_ids: list[int]) -> BulkResult:
    """Accept each report in its own transaction; what cannot be accepted is listed with why."""
    result = BulkResult()
    for report_id in report_ids:
        try:
            wf.accept(access, report_id)
        except NotFound as exc:
            result.refused.append(Refusal(report_id, "", exc))
        except BaocaoError as exc:  # Forbidden, or the state changed since the list was shown
            report = Report.select(Report.status, Unit.name).join(Unit).where(Report.id == report_id).first()
            result.refused.append(Refusal(report_id, report.unit.name if report else "", exc,
                                          report.status if report else ""))
        else:
            result.accepted.append(report_id)
    return result


# -- returning with comments on cells -------------------------------------------------------------

class ReturnRefused(BaocaoError):
    """The return is refused as typed: ``errors`` maps "reason" or "comment.<n>" to an error."""

    key = "review.error.refused"

    def __init__(self, errors: dict[str, BaocaoError]):
        super().__init__(count=len(errors))
        self.errors = errors


def return_with_comments(access, report_id: int, reason: str, comments: list[tuple[str, str]]) -> None:
    """Send a submitted report back with the reason and comments on cells (``comments``: cell
    "row.col" → text, in the order typed). All or nothing: every comment and the return are one
    transaction; nothing is saved when the reason is empty, a cell is unknown or a text too long."""
    report = rd.get_report(access, report_id)
    if not wf.can_receive(access, report):
        raise Forbidden()
    errors: dict[str, BaocaoError] = {}
    reason = (reason or "").strip()
    if not reason:
        errors["reason"] = BaocaoError("workflow.error.reason_required")
    elif len(reason) > wf.MAX_REASON:
        errors["reason"] = BaocaoError("workflow.error.reason_too_long", limit=wf.MAX_REASON)
    if len(comments) > MAX_RETURN_COMMENTS:
        errors["form"] = BaocaoError("review.error.too_many_comments", limit=MAX_RETURN_COMMENTS)
    form = rd.FormVersion.get_by_id(report.form_version_id).compiled() if report.form_version_id else None
    wanted = []
    for n, (cell, text) in enumerate(comments):
        row, _, col = (cell or "").partition(".")
        text = (text or "").strip()
        if not text:
            continue  # an empty slot is no comment
        if form is None or row not in form.row_index or col not in form.column_index:
            errors[f"comment.{n}"] = BaocaoError("review.error.choose_cell")
        elif len(text) > rd.MAX_COMMENT:
            errors[f"comment.{n}"] = BaocaoError("report_data.error.comment_too_long", limit=rd.MAX_COMMENT)
        else:
            wanted.append((row, col, text))
    if errors:
        raise ReturnRefused(errors)
    if report.status != "submitted":
        raise BaocaoError("workflow.error.wrong_state")
    with transaction():
        for row, col, text in wanted:
            rd.add_comment(access, report.id, row, col, text)
        wf.return_report(access, report.id, reason)
