"""Issue 17 item 5: the entry page and a consolidated report's page stay within their budget of
database round trips, whatever the size of the form or the number of sources (a statement per
cell or per source would show here first). Counted, not timed, as tests/web/test_autosave_queries.py
counts an autosave. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import re

from tests.web.test_autosave_queries import QueryCounter, _stop_the_clock
from tests.web.test_consolidation_screens import consolidated_id, open_it, world  # noqa: F401 — fixture
from tests.web.test_report_entry import log_in

# Each request's prologue (4): the session with its user, the unit's ancestors with the plugins
# switched on (one query), the grants, the roles a delegation gives. The entry page of a report
# already accepted (10): the report; its versions, events and signatures (the workflow card); the form
# version with its form, the stored values, the change counters (figures, catalogue), the sections,
# the comments, the attachments with who uploaded them. The receiver's ancestors are the tail of the
# reporter's chain, the indicators' names are kept per process under the catalogue's counter.
ENTRY_BUDGET = 14
# A consolidated report's page (14): the report, its form version with its form, values, change
# counters, sections, comments, attachments; the versions counted (read once for the sources and the
# banner), the source versions, the reports received, the indicators' aggregation rules, the last
# refresh (once), the sources' latest versions, the menu's unit.
CONSOLIDATION_BUDGET = 18


def _count(client, path: str) -> list[str]:
    from core.db import db

    with QueryCounter(db.obj) as counter:
        counter.start()
        page = client.get(path)
        statements = counter.stop()
    assert page.status_code == 200, page.status_code
    return statements


def _listing(statements) -> str:
    return "\n".join(re.sub(r"\s+", " ", s)[:160] for s in statements)


def test_the_entry_page_stays_within_its_query_budget(client, world, frozen_clock):  # noqa: F811
    log_in(client, world.users["reporter"])
    _stop_the_clock(frozen_clock)
    client.get(f"/reports/{world.report.id}")  # the first visit may fill per-process caches
    statements = _count(client, f"/reports/{world.report.id}")
    assert len(statements) <= ENTRY_BUDGET, f"{len(statements)} queries\n{_listing(statements)}"


def test_the_consolidated_page_reads_its_sources_at_once(client, world, frozen_clock):  # noqa: F811
    token = log_in(client, world.users["province"])
    _stop_the_clock(frozen_clock)
    open_it(client, world, token)
    path = f"/reports/{consolidated_id(world)}/consolidation"
    client.get(path)
    statements = _count(client, path)
    assert len(statements) <= CONSOLIDATION_BUDGET, f"{len(statements)} queries\n{_listing(statements)}"
    # The versions counted and the last refresh: read once for the sources and the banner.
    assert sum("core_consolidation_source" in s for s in statements) == 1, _listing(statements)
    assert sum('FROM "core_consolidation" ' in s for s in statements) == 1, _listing(statements)
