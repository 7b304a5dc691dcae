"""What an accepted report adds to the figures store (core.catalogue.figures).

A built-in subscriber (``report_transition``, action "accepted"; registered by
``core.plugins.CORE_SUBSCRIBERS``, always on). When a receiver accepts a unit's periodic report, the figures of the version it accepted become
that unit's figures for the period, kind "actual": next period's report pre-fills its "previous
period" and "same period last year" columns from them, and the views that read the store see them
at once. The version's canonical JSON is read, not the live values: what was signed is what is
published.

Which cells are "the figure of the period": on each indicator row, the column that a year-to-date
column accumulates (the form says so with ``accumulate``); a form without one publishes its single
input column of kind "actual"; a form with several and no ``accumulate`` publishes nothing, since
which of them is the period's figure cannot be told (its parts, say). Consolidated reports
publish nothing: their figures are sums of units' figures, not one unit's. A figure the store
refuses (an indicator retired since the form was published, an option no longer in its list) is
left out and logged; the acceptance itself never fails on it.
"""

from __future__ import annotations

import json
import logging

from core.db import Prepared
from core.errors import ValidationError
from core.catalogue.figures import Figure, put_values
from core.hookspecs import hookimpl
from core.models import User
from core.regimes.periods import FREQUENCIES
from core.reporting.events import for_actions
from core.reporting.opening import Report
from core.reporting.versions import ReportVersion

log = logging.getLogger("baocao.accepted_figures")
SOURCE = "report"


def period_columns(form) -> set[str]:
    """The column keys that hold the period's own figure (see the module docstring)."""
    accumulated = {c.accumulate for c in form.columns if c.accumulate}
    if accumulated:
        return accumulated
    inputs = [c.key for c in form.columns if c.kind == "input" and c.value_kind == "actual"]
    return set(inputs) if len(inputs) == 1 else set()


def figures_of(report, version) -> list[Figure]:
    if report.kind != "unit" or report.frequency not in FREQUENCIES:
        return []
    form = version.form_version.compiled()
    columns = period_columns(form)
    values = json.loads(version.canonical).get("values") or {}
    found = []
    for row in form.rows:
        if row.kind != "indicator" or not row.indicator:
            continue
        for column in columns:
            value = values.get(f"{row.key}.{column}")
            if value is not None:
                found.append(Figure(row.indicator, report.unit_id, report.frequency, report.year,
                                    report.period_index, "actual", value, option=row.option or ""))
    return found


def publish(report, version, *, actor=None) -> int:
    """Write the accepted version's figures (inside the caller's transaction); returns rows changed."""
    figures = figures_of(report, version)
    if not figures:
        return 0
    try:
        return put_values(figures, source=SOURCE, actor=actor)
    except ValidationError as exc:
        # Keys are "<number>.<field>" (1-based): drop the figures the store refuses, keep the rest.
        refused = {int(key.split(".", 1)[0]) for key in exc.errors}
        log.warning("report %s: %d figures left out of the store: %s", report.id, len(refused), exc.errors)
        kept = [f for n, f in enumerate(figures, start=1) if n not in refused]
        return put_values(kept, source=SOURCE, actor=actor) if kept else 0


# What an acceptance reads, built once (every acceptance runs them; peewee building them cost
# as much as the database answering).
_REPORT = Prepared(lambda p: Report.select(Report.id, Report.unit, Report.kind, Report.frequency, Report.year,
                                           Report.period_index).where(Report.id == p.report_id).limit(1))
_VERSION = Prepared(lambda p: ReportVersion.select(ReportVersion.id, ReportVersion.form_version,
                                                   ReportVersion.canonical)
                    .where((ReportVersion.report == p.report_id) & (ReportVersion.number == p.number)).limit(1))
_ACTOR = Prepared(lambda p: User.select(User.id, User.username, User.unit).where(User.id == p.user_id).limit(1))


@hookimpl
@for_actions("accepted")
def report_transition(transition):
    """Publish the accepted version's figures: next period's report pre-fills from them."""
    if transition.version_number is None:
        return
    report = _REPORT.first(report_id=transition.report_id)
    if report.kind != "unit" or report.frequency not in FREQUENCIES:
        return  # nothing to publish (see figures_of): no more reads
    version = _VERSION.first(report_id=report.id, number=transition.version_number)
    actor = _ACTOR.first(user_id=transition.actor_id) if transition.actor_id is not None else None
    publish(report, version, actor=actor)
