"""Issue 12 item 24: an autosave's cost in database round trips stays within its budget.

Each round trip is worker time (and, on PostgreSQL, a network wait); the autosave once made 24 on
SQLite and 25 on PostgreSQL: the unit's ancestors read four times, the report three times, the form
definition twice, the user's unit apart from the session, a savepoint around the audit event.
Counted, not timed: every statement the database is asked to run during the one request (a
wrapper around ``execute_sql``), so a change that adds queries to this path fails here. Runs on
SQLite and PostgreSQL."""

from __future__ import annotations

import re
import threading
from decimal import Decimal

from tests.conftest import HX
from tests.web.test_report_entry import app, grid_data, log_in, stored, world  # noqa: F401 — fixtures

# The session with its user and unit, the unit's ancestors, the plugins switched on, the grants, the
# roles a delegation in force gives (the built-in chuyen_nganh answers the hook role_grants); the report, its form version, the stored values and sections; the revision moved, the values
# written, the audit chain's last link and the event; the change counters of the unit's figures and
# of the catalogue (one read). PostgreSQL adds the lock that serialises the audit chain.
BUDGET = 14
POSTGRES_EXTRA = 1


class QueryCounter:
    """Wraps the database's ``execute_sql`` (every peewee statement goes through it) and keeps the
    statements run between ``start`` and ``stop``, from any thread (``run_db`` uses workers)."""

    def __init__(self, database):
        self.database, self.statements, self.counting = database, [], False
        self._lock = threading.Lock()
        self._original = database.execute_sql

    def __enter__(self):
        original = self._original

        def execute_sql(sql, params=None, *args, **kwargs):
            if self.counting:
                with self._lock:
                    self.statements.append(sql)
            return original(sql, params, *args, **kwargs)

        self.database.execute_sql = execute_sql
        return self

    def __exit__(self, *exc):
        del self.database.execute_sql  # the class's method again

    def start(self):
        self.statements.clear()
        self.counting = True

    def stop(self) -> list[str]:
        self.counting = False
        return list(self.statements)


def _budget() -> int:
    from core.db import is_sqlite

    return BUDGET + (0 if is_sqlite() else POSTGRES_EXTRA)


def _entry_form(client, rid: int) -> dict:
    page = client.get(f"/reports/{rid}").text
    return grid_data(page.split('id="entry-form"', 1)[1].split("</form>", 1)[0])


def _stop_the_clock(frozen_clock) -> None:
    """The session's idle clock is refreshed at most once a minute (a write of its own): with the
    clock stopped just after logging in, a slow machine cannot put that write into a counted
    request."""
    from core import clock

    frozen_clock(clock.utcnow())


def test_an_autosave_of_one_figure_stays_within_its_query_budget(client, world, frozen_clock):
    from core.db import db

    token = log_in(client, world.users["reporter"])
    _stop_the_clock(frozen_clock)
    rid = world.report.id
    data = _entry_form(client, rid)
    headers = {**HX, "X-CSRF-Token": token}
    with QueryCounter(db.obj) as counter:
        for n, value in enumerate(("100", "120", "135")):  # the first save of the report, then two more
            data["cell.banle.cur"] = value
            counter.start()
            answer = client.post(f"/reports/{rid}/save", data=data, headers=headers)
            statements = counter.stop()
            assert answer.status_code == 200 and 'data-outcome="saved"' in answer.text, answer.text[:500]
            listing = "\n".join(re.sub(r"\s+", " ", s)[:160] for s in statements)
            assert len(statements) <= _budget(), f"autosave {n + 1}: {len(statements)} queries\n{listing}"
            for name, base in re.findall(r'name="(base\.[^"]+)" value="([^"]*)"', answer.text):
                data[name] = base
    # What the budget must not cost: the save is whole and answers what changed.
    assert stored(rid) == {("banle", "cur"): Decimal("135")}
    assert 'id="b-banle-cur" name="base.banle.cur" value="135" hx-swap-oob="true"' in answer.text
    # The state the page started from (what the second autosave left) is kept, not recomputed: the
    # computed cells that changed are still the ones sent.
    changed = set(re.findall(r'id="v-([a-z0-9_]+-[a-z0-9_]+)" hx-swap-oob="true"', answer.text))
    assert changed == {"banle-ytd"}, changed  # the total waits for its other part (dulich)
    assert re.search(r'id="v-banle-ytd" hx-swap-oob="true">135(,0)?<', answer.text), answer.text


def test_a_refused_autosave_stays_within_its_query_budget(client, world, frozen_clock):
    """A cell that is not a number: the valid cells are saved, the refused one is marked, and the
    budget holds on this path too."""
    from core.db import db

    token = log_in(client, world.users["reporter"])
    _stop_the_clock(frozen_clock)
    rid = world.report.id
    data = _entry_form(client, rid)
    data.update({"cell.banle.cur": "50", "cell.dulich.cur": "12abc"})
    with QueryCounter(db.obj) as counter:
        counter.start()
        answer = client.post(f"/reports/{rid}/save", data=data, headers={**HX, "X-CSRF-Token": token})
        statements = counter.stop()
    assert 'data-outcome="partial"' in answer.text, answer.text[:500]
    assert 'data-cell="dulich.cur"' in answer.text  # the refused cell is marked
    assert len(statements) <= _budget(), "\n".join(re.sub(r"\s+", " ", s)[:160] for s in statements)
    assert stored(rid) == {("banle", "cur"): Decimal("50")}
