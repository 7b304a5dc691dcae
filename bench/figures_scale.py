"""The figures store at ten years of a national deployment: query plans and timings on PostgreSQL.

    .venv/bin/python bench/figures_scale.py [--postgres postgresql://postgres@127.0.0.1:5432/postgres]
                                            [--database baocao_bench_figures] [--indicators 10] [--years 10]
                                            [--reuse] [--keep] [--plans]

A national deployment holds some 4,200 reporting units (bench/national.py's 4,000-unit tree and
200 provincial departments) × ~100 indicators × 10 years of monthly figures: ≈ 50 M rows of
``core_indicator_value``. This writes a representative slice — every unit × ``--indicators``
indicators × ``--years`` years × 12 months of actual figures, plus a yearly plan (10 × 4,200 ×
10 × 13 ≈ 5.5 M rows) — into a throw-away database, in the order reports arrive (month after
month), then asks the store the questions the screens ask (the leaders' dashboard, the figures
explorer, the report's prefill, the quality check's history, the latest period, a series) and
prints each one's time, the index it used and, with ``--plans``, its EXPLAIN (ANALYZE, BUFFERS)
plan: first without, then with the indexes of migration 0037 (core/migrations/0037_figures_scale.py).

The other ~90 indicators of a real deployment change the picture only through the size of the
index ranges each question scans, which the plans show per (code, unit) — see docs/topology.md.
Everything is synthetic (codes BX…, "thử nghiệm") and the database is dropped unless ``--keep``.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import statistics
import sys
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MIGRATION = ROOT / "core" / "migrations" / "0037_figures_scale.py"
FIRST_YEAR = 2016
ROUNDS = 7


def _migration():
    spec = importlib.util.spec_from_file_location("figures_scale_migration", MIGRATION)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _admin(server_url: str, *statements: str) -> None:
    import psycopg

    with psycopg.connect(server_url, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


def create(server_url: str, name: str, reuse: bool) -> str:
    url = server_url.rsplit("/", 1)[0] + f"/{name}"
    if not reuse:
        _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"')
    return url


def seed(indicators: int, years: int) -> int:
    """The tree, the catalogue, and the figures (one INSERT … SELECT per year, months in order)."""
    from bench import national
    from core.db import db, transaction
    from core.models import Unit

    national.seed_units()
    national.seed_indicators()
    with transaction():
        provinces = [u.id for u in Unit.select(Unit.id).where(Unit.code.startswith("BX") & (Unit.kind == "province"))]
        Unit.insert_many([{"code": f"BX{p:02d}.S{d}", "name": f"Sở Thử nghiệm {p}-{d}", "kind": "department",
                           "parent": pid} for p, pid in enumerate(provinces, 1) for d in range(1, 7)][:200]).execute()
    codes = [f"X30{n:02d}" for n in range(indicators)]  # commune-level indicators, asked of every unit
    for year in range(FIRST_YEAR, FIRST_YEAR + years):
        with transaction():
            db.execute_sql(
                """INSERT INTO core_indicator_value (code, indicator_id, unit_id, frequency, year, index, kind,
                                                     option, value, source, updated_at)
                   SELECT i.code, i.id, u.id, f.frequency, %s, f.index, f.kind, '',
                          round((random() * 10000)::numeric, 2), 'bench', now()
                   FROM (VALUES ('monthly', 1, 'actual'), ('monthly', 2, 'actual'), ('monthly', 3, 'actual'),
                                ('monthly', 4, 'actual'), ('monthly', 5, 'actual'), ('monthly', 6, 'actual'),
                                ('monthly', 7, 'actual'), ('monthly', 8, 'actual'), ('monthly', 9, 'actual'),
                                ('monthly', 10, 'actual'), ('monthly', 11, 'actual'), ('monthly', 12, 'actual'),
                                ('annual', 1, 'plan')) AS f(frequency, index, kind)
                   CROSS JOIN core_unit u
                   CROSS JOIN core_indicator i
                   WHERE u.code LIKE 'BX%%' AND i.code = ANY(%s) AND i.is_current
                   ORDER BY f.frequency DESC, f.index, u.id, i.code""", (year, codes))
    db.execute_sql('ANALYZE "core_indicator_value"')
    return db.execute_sql('SELECT count(*) FROM "core_indicator_value"').fetchone()[0]


@contextmanager
def captured():
    """The SQL the block runs, as (sql, params) pairs: the store's own functions build the questions."""
    from core.db import db

    database, seen = db.obj, []
    original = database.execute_sql

    def execute_sql(sql, params=None, *args, **kwargs):
        seen.append((sql, params))
        return original(sql, params, *args, **kwargs)

    database.execute_sql = execute_sql
    try:
        yield seen
    finally:
        del database.execute_sql


def questions(indicators: int, years: int) -> dict:
    """Each screen's question, as a function that asks it."""
    import datetime as dt

    from core.catalogue import figures
    from core.catalogue.figures import IndicatorValue
    from core.models import Unit
    from core.reporting import quality

    last = FIRST_YEAR + years - 1
    codes = [f"X30{n:02d}" for n in range(indicators)]
    province = Unit.get(Unit.code == "BX07")
    districts = [u.id for u in Unit.select(Unit.id).where(Unit.parent == province.id)]
    communes = [u.id for u in Unit.select(Unit.id).where(Unit.parent.in_(districts)).order_by(Unit.id)]
    commune = communes[0]
    months = [("monthly", last, m) for m in range(1, 13)]
    window = [("monthly", y, m) for y, m in [(last - 1, m) for m in range(12, 13)] + [(last, m) for m in range(1, 13)]]
    window += [("monthly", y - 1, m) for _, y, m in window] + [("annual", last, 1), ("annual", last - 1, 1)]

    def prefill():
        return list(IndicatorValue.select(IndicatorValue.code, IndicatorValue.value)
                    .where((IndicatorValue.unit == commune) & IndicatorValue.code.in_(codes)
                           & IndicatorValue.year.between(last - 1, last + 1)).tuples())

    return {
        # The leaders' dashboard of a province: the units under it (20 districts, 6 departments), every
        # indicator, 13 months and the same months a year before.
        "dashboard (26 units × 10 codes × 28 periods)": lambda: figures.query(
            codes, districts, window, kinds=("plan", "estimate", "actual", "official")),
        # Which indicators have figures at a unit (the dashboard with nothing chosen).
        "dashboard available codes (1 unit)": lambda: figures.query(
            codes, [commune], window, kinds=("plan", "estimate", "actual", "official")),
        # The explorer: three indicators over a province's communes for a year.
        "explorer (≈100 communes × 3 codes × 12 months)": lambda: figures.query(
            codes[:3], communes, months, kinds=("actual",)),
        "prefill of a report (1 unit, 3 years)": prefill,
        "quality history (≈100 units × 3 codes × 36 months)": lambda: quality._history_rows(
            communes, codes[:3], [""], "monthly", [(y, m) for y in range(last - 2, last + 1) for m in range(1, 13)]),
        "latest period of a unit": lambda: figures.latest_period(commune, "monthly", today=dt.date(last, 12, 31)),
        "series of one figure (10 years)": lambda: figures.series(codes[0], commune, "monthly", "actual"),
    }


def _plan_summary(plan: str) -> str:
    scans = re.findall(r"((?:Parallel )?(?:Index Only Scan|Index Scan|Bitmap Index Scan|Seq Scan)"
                       r"(?: Backward)?(?: using \S+)?(?: on \S+)?)", plan)
    return "; ".join(dict.fromkeys(scans)) or "-"


def measure(asked: dict, show_plans: bool) -> dict:
    from core.db import db

    out = {}
    for name, ask in asked.items():
        with captured() as seen:
            ask()
        sql, params = next((s, p) for s, p in seen if "core_indicator_value" in s)
        samples = []
        for _ in range(ROUNDS):
            start = time.perf_counter()
            ask()
            samples.append((time.perf_counter() - start) * 1000)
        plans = ["\n".join(r[0] for r in db.execute_sql("EXPLAIN (ANALYZE, BUFFERS) " + sql, params).fetchall())
                 for _ in range(ROUNDS)]
        plan = plans[-1]
        server = statistics.median(float(re.search(r"Execution Time: ([\d.]+)", p).group(1)) for p in plans)
        top = re.search(r"Buffers: shared hit=(\d+)(?: read=(\d+))?", plan)  # the first node's: the whole query's
        buffers = int(top.group(1)) + int(top.group(2) or 0) if top else 0
        out[name] = (statistics.median(samples), server, buffers, _plan_summary(plan))
        print(f"  {name:55s} {out[name][0]:7.1f} ms, server {server:6.1f} ms, {buffers:6d} buffers  {out[name][3]}")
        if show_plans:
            print("    " + plan.replace("\n", "\n    "))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--database", default="baocao_bench_figures")
    parser.add_argument("--indicators", type=int, default=10)
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument("--reuse", action="store_true", help="the database of a previous --keep run")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--plans", action="store_true", help="print each EXPLAIN (ANALYZE, BUFFERS) plan")
    args = parser.parse_args(argv)

    from core.db import close_db, db, init_db
    from core.migrate import migrate_core

    url = create(args.postgres, args.database, args.reuse)
    init_db(url)
    migration = _migration()
    try:
        with db.connection_context():
            migrate_core()
            migration.down(None, db.obj)  # "before": the store as migrations 0001–0036 left it
            if not args.reuse:
                start = time.perf_counter()
                rows = seed(args.indicators, args.years)
                print(f"seeded {rows:,} figures in {time.perf_counter() - start:.0f} s")
            size = db.execute_sql("SELECT pg_size_pretty(pg_total_relation_size('core_indicator_value'))").fetchone()
            print(f"core_indicator_value with its indexes: {size[0]}")
            asked = questions(args.indicators, args.years)
            print("before (indexes of 0012):")
            before = measure(asked, args.plans)
            start = time.perf_counter()
            migration.up(None, db.obj)
            db.execute_sql('ANALYZE "core_indicator_value"')
            print(f"after 0037 (built in {time.perf_counter() - start:.0f} s):")
            after = measure(asked, args.plans)
            size = db.execute_sql("SELECT pg_size_pretty(pg_total_relation_size('core_indicator_value'))").fetchone()
            print(f"core_indicator_value with its indexes: {size[0]}")
            print("\n| question | call, before → after (ms) | server, before → after (ms) | buffers, before → after |"
                  "\n| --- | ---: | ---: | ---: |")
            for name in asked:
                b, a = before[name], after[name]
                print(f"| {name} | {b[0]:.1f} → {a[0]:.1f} | {b[1]:.1f} → {a[1]:.1f} | {b[2]} → {a[2]} |")
    finally:
        close_db()
        if not args.keep:
            _admin(args.postgres, f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')
    return 0


if __name__ == "__main__":
    sys.exit(main())
