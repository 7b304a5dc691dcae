"""Live consolidation: what an accepted, returned or reopened report changes in every
consolidation above it (issue 14 item 1).

A built-in subscriber (``report_transition``; registered by ``core.plugins.CORE_SUBSCRIBERS``,
always on). In the transition's transaction, the receiver's running aggregates count the report's
accepted version, or no longer do, and the change climbs the chain of receivers by each
indicator's aggregation rule; the consolidated figures that changed are written to the figures
store (source "consolidation") and into every consolidated draft that still follows them. How:
``core.reporting.consolidation.follow``. A failure here is rolled back alone and recorded against
this part (stage "event"), the transition goes on; ``baocao consolidation rebuild`` repairs the
aggregates it left behind.
"""

from __future__ import annotations

from core.hookspecs import hookimpl
from core.reporting import consolidation
from core.reporting.events import for_actions


@hookimpl
@for_actions("accepted", "returned", "reopened")
def report_transition(transition):
    """Keep the consolidations above the report current."""
    if transition.receiver_id is None:
        return  # sent out of the system: nothing above it here
    consolidation.follow(transition.report_id)
