"""Live consolidation bench (issue 14 item 1): median and p95 on SQLite and PostgreSQL.

    .venv/bin/python bench/consolidation.py [--units 4200] [--rows 150] [--rounds 40]
                                            [--postgres postgresql://postgres@127.0.0.1:5432/postgres]
                                            [--no-postgres]

Each backend gets a fresh, migrated database with a synthetic tree (clearly named "thử nghiệm"):
one province, 5 department-like units under it, 6 district-like units under each, 7 groups under
each district (210 in all), and ``--units`` communes spread over the groups (4,200 by default: the
issue's national scale). So a commune's report has a chain of 4 consolidations above it (group,
district, department, province). One monthly regime (receiver: each unit's parent) on a form of
``--rows`` indicator rows × 2 input columns (300 cells by default; a few rows average, max or min,
the rest sum). Every commune's report is accepted: versions are written in bulk (what
``submit`` freezes: the canonical JSON), then ``baocao consolidation rebuild``'s function builds
the running aggregates (timed once).

Timed, through the core services:
- accepting one commune's report (reopened and submitted again between rounds, not timed), with
  its 4-level chain updated and published in the same transaction (target ≤ 50 ms), and the SQL
  statements the acceptance ran; for comparison, the same acceptance without the live
  consolidation subscriber (timed last: the running aggregates are left stale);
- reading the province's consolidation (every cell's consolidated figure and what was counted),
  next to the bare ``SUM … GROUP BY`` over the same accepted values in the same run
  (target ≤ 1.2× the bare SUM and ≤ 500 ms);
- the consolidation page (``GET /reports/<id>/consolidation``: its sources, the banner and the
  read-only grid of 300 cells, each linking to its drill-down) of a consolidated report with 105
  source units: a second synthetic province whose 105 communes report to it under a regime of
  its own on the same form (seeded last, so the rows above run on the same data as before). Server
  time: the Starlette app driven in-process by the test client, timed from the call into the
  app to the last byte it sends (target p95 ≤ 50 ms).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import hashlib
import json
import os
import re
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

TODAY = dt.date(2026, 3, 2)  # March 2026's window is open
DEPARTMENTS, DISTRICTS, GROUPS = 5, 6, 7  # per province, per department, per district


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def row_of(values):
    return statistics.median(values), percentile(values, 0.95)


def _bulk(model, rows, batch: int = 500) -> None:
    for start in range(0, len(rows), batch):
        model.insert_many(rows[start:start + batch]).execute()


def rule_of(i: int) -> str:
    """Most rows sum; a few are means, maxima and minima (recomputed from stored rows)."""
    if i % 25 == 0:
        return "average"
    if i % 30 == 0:
        return "max"
    if i % 50 == 0:
        return "min"
    return "sum"


def definition(rows: int) -> dict:
    return {"title": "Biểu thử nghiệm tổng hợp trực tiếp", "greyed": [], "rules": [], "outline": [],
            "rows": [{"key": f"r{i}", "kind": "indicator", "number": str(i), "indicator": f"LC{i:04d}",
                      "label": f"Chỉ tiêu thử nghiệm {i}", "unit": "đơn vị", "decimals": 2}
                     for i in range(1, rows + 1)],
            "columns": [{"key": "cur", "kind": "input", "label": "Thực hiện tháng {m}/{y}"},
                        {"key": "est", "kind": "input", "label": "Ước tháng sau", "value_kind": "estimate"}]}


def value_for(unit_index: int, cell_index: int) -> str:
    number = (unit_index * 7919 + cell_index * 104729) % 100000
    return f"{number // 100}.{number % 100:02d}"


def seed_tree(leaves: int) -> tuple[int, list[int]]:
    """The synthetic tree; returns (province id, commune ids in order)."""
    from core.db import transaction
    from core.models import Unit

    with transaction():
        province = Unit.create(code="LC", name="Tỉnh Thử nghiệm tổng hợp", kind="province")
        _bulk(Unit, [{"code": f"LC.{a}", "name": f"Sở thử nghiệm {a}", "kind": "department", "parent": province.id}
                     for a in range(1, DEPARTMENTS + 1)])
        level = dict(Unit.select(Unit.code, Unit.id).where(Unit.parent == province.id).tuples())
        _bulk(Unit, [{"code": f"{code}.{b}", "name": f"Huyện thử nghiệm {code[3:]}-{b}", "kind": "district",
                      "parent": uid} for code, uid in sorted(level.items()) for b in range(1, DISTRICTS + 1)])
        level = dict(Unit.select(Unit.code, Unit.id).where(Unit.parent.in_(list(level.values()))).tuples())
        _bulk(Unit, [{"code": f"{code}.{c}", "name": f"Cụm thử nghiệm {code[3:]}-{c}", "kind": "organisation",
                      "parent": uid} for code, uid in sorted(level.items()) for c in range(1, GROUPS + 1)])
        groups = sorted(Unit.select(Unit.code, Unit.id).where(Unit.parent.in_(list(level.values()))).tuples())
        rows = []
        for n in range(leaves):
            code, uid = groups[n % len(groups)]
            rows.append({"code": f"{code}.{n // len(groups) + 1}", "name": f"Xã thử nghiệm {n + 1}",
                         "kind": "commune", "parent": uid})
        _bulk(Unit, rows)
        communes = [uid for uid, in Unit.select(Unit.id).where(Unit.kind == "commune").order_by(Unit.id).tuples()]
    return province.id, communes


def seed_catalogue(rows: int) -> None:
    from core.catalogue.indicators import Indicator, IndicatorGroup
    from core.db import transaction
    from core.i18n import fold

    with transaction():
        group = IndicatorGroup.create(code="LC", name="Nhóm thử nghiệm tổng hợp", level="province")
        _bulk(Indicator, [{"code": f"LC{i:04d}", "version": 1, "name": f"Chỉ tiêu thử nghiệm {i}",
                           "name_folded": fold(f"Chỉ tiêu thử nghiệm {i}"), "group": group.id,
                           "unit_of_measure": "đơn vị", "value_type": "number", "aggregation": rule_of(i),
                           "levels": "province,district,commune", "source_act": "Dữ liệu thử nghiệm (bench)",
                           "valid_from": dt.date(2025, 1, 1), "is_current": True} for i in range(1, rows + 1)])


def seed(leaves: int, rows: int):
    """Tree, catalogue, form, regime, every commune's report accepted. Returns a namespace."""
    from types import SimpleNamespace

    from core.accounts import login as accounts
    from core.accounts.permissions import core_access
    from core.models import Unit

    province_id, communes = seed_tree(leaves)
    seed_catalogue(rows)
    admin_user = accounts.create_user("bench_tonghop", "Quản trị thử nghiệm", accounts.random_password(),
                                      Unit.get_by_id(province_id), is_admin=True)
    admin = core_access(admin_user)
    preparer = Unit.get(Unit.code == "LC.1").id  # a department prepares a periodic regime
    started = time.perf_counter()
    regime, form = open_regime(admin, "BENCH.LIVE", "Báo cáo thử nghiệm tổng hợp trực tiếp", province_id, preparer,
                               rows)
    opened = time.perf_counter() - started
    started = time.perf_counter()
    reports = accept_in_bulk(regime, form, communes, admin_user, rows)
    versions = time.perf_counter() - started
    first = next(r for r in reports if r[1] == communes[0])
    return SimpleNamespace(admin=admin, admin_user=admin_user, regime=regime, province_id=province_id,
                           communes=communes, report_id=first[0], period=period_of(first[0]), opened=opened,
                           versions=versions, reports=len(reports))


def open_regime(admin, code: str, name: str, issuing: int, preparing: int, rows: int):
    """A monthly regime on a form of ``rows`` indicator rows for the communes under ``issuing``
    (each reports to its parent), issued, its started periods opened. Returns (regime, form)."""
    from core.regimes import regimes as rg
    from core.regimes.forms import install_form
    from core.regimes.workdays import WorkCalendar
    from core.reporting.opening import issue_and_open

    form = install_form(code.replace(".", "-"), definition(rows)["title"], issuing, definition(rows),
                        frequency="monthly")
    regime = rg.save_draft(admin, {
        "code": code, "name": name, "regime_type": "periodic",
        "content": "Thử nghiệm", "content_type": "data", "kinds": ["commune"], "receiving_rule": "parent",
        "sending_methods": ["system"], "deadline_rules": [{"level": "Xã → cụm", "from_kind": "", "rule": "2wd"}],
        "frequency": "monthly", "cutoff_rule": "decree", "form_id": form.id, "legal_number": "Thử nghiệm",
        "legal_date": "2025-08-01", "legal_issuer": "Bench", "issuing_unit_id": issuing,
        "preparing_unit_id": preparing})
    issue_and_open(admin, regime.id, calendar=WorkCalendar(), today=TODAY)
    return regime, form


def period_of(report_id: int) -> str:
    from core.reporting.opening import Report

    report = Report.get_by_id(report_id)
    return f"{report.period_start.isoformat()}/{report.period_end.isoformat()}"


def accept_in_bulk(regime, form, units: list[int], submitted_by, rows: int) -> list[tuple]:
    """Every report of the regime's latest open period accepted, its version written in bulk (what
    ``submit`` freezes: the canonical JSON, values by the unit's place in ``units``). Returns
    (report id, unit id, deadline, period start) of those reports."""
    from core.db import transaction
    from core.models import utcnow
    from core.regimes.forms import FormVersion
    from core.reporting.opening import Report
    from core.reporting.versions import ReportVersion

    version_id = FormVersion.get(FormVersion.form == form.id).id
    reports = list(Report.select(Report.id, Report.unit, Report.deadline, Report.period_start)
                   .where(Report.regime == regime.id).order_by(Report.unit).tuples())
    latest = max(r[3] for r in reports)
    reports = [r for r in reports if r[3] == latest]
    index = {uid: n for n, uid in enumerate(units)}
    now = utcnow().replace(microsecond=0)
    with transaction():
        batch = []
        for report_id, unit_id, deadline, _ in reports:
            values = {f"r{i}.{col}": value_for(index[unit_id], 2 * i + (col == "est"))
                      for i in range(1, rows + 1) for col in ("cur", "est")}
            text = json.dumps({"format": "baocao.report/1", "values": values, "version": 1},
                              sort_keys=True, separators=(",", ":"))
            batch.append({"report": report_id, "number": 1, "form_version": version_id, "revision": 0,
                          "submitted_at": now, "submitted_by": submitted_by.id, "deadline": deadline, "late": False,
                          "canonical": text, "sha256": hashlib.sha256(text.encode()).hexdigest()})
            if len(batch) >= 200:
                _bulk(ReportVersion, batch, 200)
                batch = []
        _bulk(ReportVersion, batch, 200)
        (Report.update(status="accepted", revision=1, submitted_at=now)
         .where(Report.id.in_([r[0] for r in reports])).execute())
    return reports


class StatementCounter:
    """Counts the SQL statements run through the database while it is on."""

    def __init__(self):
        self.count = 0

    def __enter__(self):
        from core.db import db

        self._database = db.obj
        original = self._database.execute_sql

        def counted(sql, params=None, *args, **kwargs):
            self.count += 1
            return original(sql, params, *args, **kwargs)

        self._database.execute_sql = counted
        return self

    def __exit__(self, *exc):
        del self._database.execute_sql


def cycle_accept(world, keep: list | None, counts: list | None = None) -> None:
    """Reopen (when accepted) and submit again, untimed; then accept, timed."""
    from core.db import db
    from core.reporting import data as rd
    from core.reporting import workflow as wf
    from core.reporting.opening import Report

    with db.connection_context():
        report = Report.get_by_id(world.report_id)
        if report.status == "accepted":
            wf.reopen(world.admin, world.report_id, "Bench: mở lại")
            report = Report.get_by_id(world.report_id)
        if report.status in rd.EDITABLE:
            # A small change each round, so the chain really moves.
            value = str(len(keep or ()) + 1)
            saved = rd.save(world.admin, world.report_id, {("r1", "cur"): (rd.MISSING, value)}, source="bench")
            wf.submit(world.admin, world.report_id, revision=saved.revision)
        counter = StatementCounter()
        start = time.perf_counter()
        with counter:
            wf.accept(world.admin, world.report_id)
        elapsed = (time.perf_counter() - start) * 1000
    if keep is not None:
        keep.append(elapsed)
    if counts is not None:
        counts.append(counter.count)


def prime_first_report(world, rows: int) -> None:
    """The timed commune's report gets its working values (the bulk load wrote versions only)."""
    from core.reporting import data as rd
    from core.reporting import workflow as wf

    wf.reopen(world.admin, world.report_id, "Bench: nhập lại")
    cells = {(f"r{i}", col): (rd.MISSING, value_for(0, 2 * i + (col == "est")))
             for i in range(1, rows + 1) for col in ("cur", "est")}
    saved = rd.save(world.admin, world.report_id, cells, source="bench")
    wf.submit(world.admin, world.report_id, revision=saved.revision)
    wf.accept(world.admin, world.report_id)


PAGE_UNITS = 105  # the issue's consolidated page: a report with 105 source units


def seed_page(world, rows: int) -> int:
    """A second synthetic province whose ``PAGE_UNITS`` communes report to it under a regime of
    its own on the same form, every report accepted in bulk; its consolidated report opened (the
    first refresh fills it). Returns that report's id."""
    from core.db import transaction
    from core.models import Unit
    from core.reporting import consolidation as cs

    with transaction():
        province = Unit.create(code="LP", name="Tỉnh Thử nghiệm trang tổng hợp", kind="province")
        preparer = Unit.create(code="LP.0", name="Sở thử nghiệm trang tổng hợp", kind="department",
                               parent=province.id)
        _bulk(Unit, [{"code": f"LP.{n}", "name": f"Xã thử nghiệm trang {n}", "kind": "commune", "parent": province.id}
                     for n in range(1, PAGE_UNITS + 1)])
    communes = [uid for uid, in Unit.select(Unit.id).where((Unit.parent == province.id) & (Unit.kind == "commune"))
                .order_by(Unit.id).tuples()]
    regime, form = open_regime(world.admin, "BENCH.PAGE", "Báo cáo thử nghiệm trang tổng hợp", province.id,
                               preparer.id, rows)
    reports = accept_in_bulk(regime, form, communes, world.admin_user, rows)
    period = period_of(reports[0][0])
    cs.rebuild(regime_code="BENCH.PAGE", period=period)
    return cs.open_consolidated(world.admin, regime.id, period, unit_id=province.id).id


def page_timings(url: str, world, report_id: int, cells: int, rounds: int) -> tuple[tuple[float, float], float]:
    """(median and p95 server time, SQL statements) of ``GET /reports/<id>/consolidation`` for
    the bench's administrator (``forms.ServerTimer``: from the call into the app to the last byte
    sent; the statements counted after the timings)."""
    from starlette.testclient import TestClient

    from core.accounts import login as accounts
    from core.db import db
    from core.models import utcnow
    from core.settings import Settings
    from forms import ServerTimer, count_queries
    from web.app import create_app

    settings = Settings(mode="test", database_url=url, secret_key="bench-" + "x" * 40, require_admin_mfa=False,
                        allowed_hosts=("testserver",))
    timer = ServerTimer(create_app(settings, load_entrypoints=False))
    path = f"/reports/{report_id}/consolidation"
    with TestClient(timer) as client:
        with db.connection_context():
            client.cookies.set("baocao_session", accounts.start_session(world.admin_user, reauth_at=utcnow()))
        page = client.get(path)
        assert page.status_code == 200, page.status_code
        # Every source counted; every input cell a link to its drill-down.
        assert f"từ {PAGE_UNITS} báo cáo" in page.text
        assert page.text.count(f'hx-get="{path}/') == cells, "the grid's links"
        for _ in range(3):  # warm up
            client.get(path)
        gc.collect()
        gc.freeze()  # the application as a server holds it after start (web/app.py, lifespan)
        timer.samples.clear()
        for _ in range(rounds):
            client.get(path)
        return row_of(timer.samples), statistics.median(count_queries(lambda: client.get(path), 3))


def run_backend(url: str, leaves: int, rows: int, rounds: int) -> dict:
    from core.db import close_db, db, init_db, is_sqlite
    from core.migrate import migrate_core
    from core.reporting import consolidation as cs

    init_db(url)
    migrate_core()
    results: dict = {}
    notes: dict = {}
    with db.connection_context():
        world = seed(leaves, rows)
        notes["seed: open reports (s)"] = world.opened
        notes["seed: bulk versions (s)"] = world.versions
        if not is_sqlite():  # fresh statistics after the bulk load (the rebuild analyses its own tables)
            for table in ("core_unit", "core_report", "core_report_version", "core_indicator"):
                db.execute_sql(f'ANALYZE "{table}"')
        start = time.perf_counter()
        built = cs.rebuild(regime_code="BENCH.LIVE", period=world.period)
        notes["rebuild (s)"] = time.perf_counter() - start
        notes["rebuild: scopes"] = built.scopes
        notes["rebuild: units counted"] = built.members
        prime_first_report(world, rows)
    # A server process freezes what it made at start (web/app.py, lifespan: gc.freeze) so a full
    # collection never walks it mid-request; the bench freezes likewise what seeding left in this
    # process (the synthetic world a server would not hold), else the timings measure collections
    # of the bench's own objects.
    gc.collect()
    gc.freeze()
    accept_ms, counts = [], []
    for n in range(3 + rounds):
        cycle_accept(world, accept_ms if n >= 3 else None, counts if n >= 3 else None)
    results["accept 1 report, 4-level chain above"] = row_of(accept_ms)
    notes["statements per acceptance"] = statistics.median(counts)

    with db.connection_context():
        start_day, end_day = world.period.split("/")

        def read():
            return cs.running("BENCH.LIVE", world.period, world.province_id)

        bare_sql = ('SELECT v."row", v."column", SUM(v."value") FROM core_consolidation_value v '
                    "JOIN core_consolidation_scope s ON s.id = v.scope_id "
                    "WHERE s.regime_code = ? AND s.period_start = ? AND s.period_end = ? "
                    'GROUP BY v."row", v."column"').replace("?", db.obj.param)

        def bare():
            return db.execute_sql(bare_sql, ("BENCH.LIVE", start_day, end_day)).fetchall()

        got = read()
        expected = {(row, col): cs._exact(total) for row, col, total in bare()}
        rules = {f"r{i}": rule_of(i) for i in range(1, rows + 1)}
        sums = [cell for cell in got.figures if rules[cell[0]] == "sum"]
        assert sums and all(got.figures[cell] == expected[cell] for cell in sums), \
            "the running totals differ from the bare SUM"
        assert got.counted and len(got.counted) <= DEPARTMENTS
        reads, bares = [], []
        for n in range(3 + rounds):
            for fn, keep in ((read, reads), (bare, bares)):
                start = time.perf_counter()
                fn()
                if n >= 3:
                    keep.append((time.perf_counter() - start) * 1000)
    results[f"read the province's consolidation ({len(world.communes)} units)"] = row_of(reads)
    results["  bare SUM … GROUP BY, same values"] = row_of(bares)
    results["  ratio (per round)"] = row_of([a / b for a, b in zip(reads, bares)])

    # For comparison, last (the running aggregates go stale): the same acceptance without the
    # live consolidation subscriber — the workflow, notifications and the commune's own figures.
    from core.reporting import events

    keep = events._builtin_subscribers()
    events._core_only = [(name, f) for name, f in keep if name != "core.reporting.subscribers.consolidation"]
    try:
        bare_accept, bare_counts = [], []
        for n in range(3 + rounds):
            cycle_accept(world, bare_accept if n >= 3 else None, bare_counts if n >= 3 else None)
    finally:
        events._core_only = keep
    results["  same acceptance, no live consolidation"] = row_of(bare_accept)
    notes["statements, no live consolidation"] = statistics.median(bare_counts)

    with db.connection_context():
        page_report = seed_page(world, rows)
    page, statements = page_timings(url, world, page_report, rows * 2, rounds)
    results[f"consolidation page, {PAGE_UNITS} source units (server)"] = page
    notes["statements per consolidation page"] = statements
    notes["cells"] = rows * 2
    gc.unfreeze()
    close_db()
    return {"results": results, "notes": notes}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=4200, help="communes (reporting units)")
    parser.add_argument("--rows", type=int, default=150, help="indicator rows (× 2 input columns)")
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--postgres", default=os.environ.get("BAOCAO_BENCH_POSTGRES",
                                                             "postgresql://postgres@127.0.0.1:5432/postgres"))
    args = parser.parse_args()

    tables = {}
    with tempfile.TemporaryDirectory() as tmp:
        tables["SQLite"] = run_backend(f"sqlite:///{Path(tmp) / 'bench.db'}", args.units, args.rows, args.rounds)
    if not args.no_postgres:
        name = f"baocao_bench_{uuid.uuid4().hex[:8]}"
        try:
            import psycopg

            admin = re.sub(r"^postgres(ql)?://", "postgresql://", args.postgres)
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
            try:
                tables["PostgreSQL"] = run_backend(admin.rsplit("/", 1)[0] + f"/{name}", args.units, args.rows,
                                                   args.rounds)
            finally:
                from core.db import close_db

                close_db()
                with psycopg.connect(admin, autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        except Exception as exc:  # noqa: BLE001 — a bench without PostgreSQL still reports SQLite
            print(f"PostgreSQL skipped: {type(exc).__name__}: {exc}".splitlines()[0], file=sys.stderr)

    first = next(iter(tables.values()))
    header = f"{'measure':<48}" + "".join(f"{b + ' median':>20}{b + ' p95':>18}" for b in tables)
    print(header)
    print("-" * len(header))
    for label in first["results"]:
        line = f"{label:<48}"
        for backend in tables:
            median, p95 = tables[backend]["results"][label]
            unit = "" if label.strip().startswith("ratio") else " ms"
            width = 17 if unit else 20
            line += f"{median:>{width}.2f}{unit}{p95:>{15 if unit else 18}.2f}{unit}"
        print(line)
    print()
    for label in first["notes"]:
        print(f"{label:<48}" + "".join(f"{tables[b]['notes'][label]:>20.2f}" for b in tables))


if __name__ == "__main__":
    main()
