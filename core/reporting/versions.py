"""What the workflow keeps of each step: the frozen versions a submission makes and the events of
every transition. The models sit below the workflow so that consolidation, notifications and the
queue can read them without importing the workflow (no import cycle)."""

from __future__ import annotations

from peewee import BooleanField, CharField, DateField, DateTimeField, ForeignKeyField, IntegerField, TextField

from core.db import CoreModel
from core.models import User, utcnow
from core.regimes.forms import FormVersion
from core.reporting.opening import Report


class ReportVersion(CoreModel):
    report = ForeignKeyField(Report, backref="versions", on_delete="CASCADE")
    number = IntegerField()
    form_version = ForeignKeyField(FormVersion, on_delete="RESTRICT")
    revision = IntegerField()  # the report's revision it froze (double-submit guard)
    submitted_at = DateTimeField(default=utcnow)
    submitted_by = ForeignKeyField(User, null=True, on_delete="SET NULL")
    deadline = DateField()  # the deadline it was judged against
    late = BooleanField(default=False)
    canonical = TextField()  # the canonical bytes, as UTF-8 text
    sha256 = CharField(max_length=64)

    class Meta:
        indexes = ((("report", "number"), True),)


class ReportEvent(CoreModel):
    report = ForeignKeyField(Report, backref="events", on_delete="CASCADE")
    action = CharField(max_length=12)  # submit, return, accept, reopen
    actor = ForeignKeyField(User, null=True, on_delete="SET NULL")
    at = DateTimeField(default=utcnow)
    reason = TextField(default="")
    version_number = IntegerField(null=True)


def latest_version(report_id: int) -> ReportVersion | None:
    return (ReportVersion.select().where(ReportVersion.report == report_id)
            .order_by(ReportVersion.number.desc()).first())
