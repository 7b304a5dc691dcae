"""Pages at national scale (issue 17 item 5): server time and a worker's memory on SQLite and PostgreSQL.

    .venv/bin/python bench/pages.py [--rounds 60] [--rows 150] [--no-postgres]
                                    [--postgres postgresql://postgres@127.0.0.1:5432/postgres]

Each backend gets a fresh database with the demo data, the national data set (bench/national.py:
5,000 indicators, 4,000 more units), the 780-cell report of bench/forms.py and a consolidated report
over 105 communes' accepted reports (bench/consolidation.py ``seed_page``: ``--rows`` rows × 2
input columns). Then a fresh process (a worker that has served nothing yet; the seeding's objects
would otherwise count as its memory) creates the application and times, as server time
(forms.ServerTimer: from the call into the app to the last byte sent):

- the entry page of the 780-cell report, as its reporter (target p95 ≤ 50 ms);
- saving its 200 input cells as the screen posts them: value and base of each cell, every value
  changed each round (target ≤ 100 ms);
- the consolidated page over 105 source units, as an administrator (target p95 ≤ 50 ms);

each next to a bare Starlette endpoint of the same size in the same run (the GETs return the
same bytes; the POST parses the same form and returns the same bytes), then the SQL statements
each request runs and the process's memory after all the requests: VmRSS and VmHWM (peak) from
/proc/self/status (target ≤ 150 MB RSS). bench/run.py calls ``run_pages`` after its own rows.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import uuid
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

SECRET = "bench-" + "x" * 40


def _settings(url: str):
    from core.settings import Settings

    return Settings(mode="test", database_url=url, secret_key=SECRET, require_admin_mfa=False,
                    login_rate_per_minute=1_000_000, allowed_hosts=("testserver",))


def seed_all(url: str, rows: int) -> dict:
    """Demo data, the national data set, the 780-cell report and the 105-unit consolidation."""
    from types import SimpleNamespace

    from core.accounts import login as accounts
    from core.accounts.permissions import core_access
    from core.db import db, is_sqlite
    from core.demo import seed_demo
    from core.models import Unit
    from web.app import create_app

    import consolidation
    import forms
    import national

    from starlette.testclient import TestClient

    settings = _settings(url)
    # Started once, as a server starts: migrations, roles, the plugins' regimes.
    with TestClient(create_app(settings, load_entrypoints=False)), db.connection_context():
        seed_demo(settings)
        national.seed_units()
        national.seed_indicators()
        entry_report, reporter, _ = forms.seed(dt.date.today())
        consolidation.seed_catalogue(rows)
        admin_user = accounts.create_user("bench_tonghop", "Quản trị thử nghiệm", accounts.random_password(),
                                          Unit.get(Unit.code == "44"), is_admin=True)
        world = SimpleNamespace(admin=core_access(admin_user), admin_user=admin_user)
        page_report = consolidation.seed_page(world, rows)
        if not is_sqlite():
            db.execute_sql("ANALYZE")
    return {"entry_report": entry_report, "reporter": reporter, "admin": admin_user.username,
            "consolidated_report": page_report, "cells": rows * 2}


def _vm(field: str) -> float:
    """A line of /proc/self/status in MB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def serve_and_time(url: str, seeded: dict, rounds: int) -> dict:
    """In a fresh process: the application, the timed requests, their statements and the memory."""
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route
    from starlette.testclient import TestClient

    from core.accounts import login as accounts
    from core.db import db
    from core.models import User, utcnow
    from forms import ServerTimer, count_queries, values_for
    from web.app import create_app
    from web.middleware import csrf_token_for

    settings = _settings(url)
    rss_start = _vm("VmRSS")
    timer = ServerTimer(create_app(settings, load_entrypoints=False))
    results, notes = {}, {}
    with TestClient(timer) as client:
        # What a server holds from its start is frozen there (web/app.py lifespan, not in test mode).
        gc.collect()
        gc.freeze()
        client.get("/login")  # the CSRF seed cookie
        token = csrf_token_for(SECRET, client.cookies.get("baocao_csrf"))

        def session_for(username):
            with db.connection_context():
                user = User.get(User.username == username)
                client.cookies.set("baocao_session", accounts.start_session(user, reauth_at=utcnow()))

        entry = f"/reports/{seeded['entry_report']}"
        consolidated = f"/reports/{seeded['consolidated_report']}/consolidation"
        session_for(seeded["reporter"])
        page = client.get(entry)
        assert page.status_code == 200 and page.text.count('name="cell.') == 200, page.status_code
        counter = {"n": 0}
        bases = {cell: m for cell, m in re.findall(r'name="base\.([^"]+)" value="([^"]*)"', page.text)}

        def save_form():
            counter["n"] += 1
            data = {"csrf_token": token}
            for (row, col), value in values_for(counter["n"]).items():
                data[f"cell.{row}.{col}"] = value
                data[f"base.{row}.{col}"] = bases.get(f"{row}.{col}", "")
            return data

        def save():
            response = client.post(f"{entry}/save", data=save_form(), headers={"HX-Request": "true"})
            assert response.status_code == 200 and 'data-outcome="saved"' in response.text, response.text[:300]
            bases.update(re.findall(r'name="base\.([^"]+)" value="([^"]*)"', response.text))
            return response

        saved_bytes = save().content

        served = [0]

        def timed(label, fn, t, n):
            for _ in range(3):  # warm up
                fn()
            t.samples.clear()
            for _ in range(n):
                fn()
            results[label] = (statistics.median(t.samples), _p95(t.samples))
            served[0] += n + 3

        entry_bytes = page.content
        timed("GET entry page, 780 cells (server)", lambda: client.get(entry), timer, rounds)
        notes["statements per entry page"] = statistics.median(count_queries(lambda: client.get(entry), 3))
        timed("POST save, 200 inputs of 780 cells (server)", save, timer, rounds)
        notes["statements per save"] = statistics.median(count_queries(save, 3))

        session_for(seeded["admin"])
        page = client.get(consolidated)
        assert page.status_code == 200 and page.text.count(f'hx-get="{consolidated}/') == seeded["cells"], \
            page.status_code
        consolidated_bytes = page.content
        timed("GET consolidated page, 105 units (server)", lambda: client.get(consolidated), timer, rounds)
        notes["statements per consolidated page"] = statistics.median(
            count_queries(lambda: client.get(consolidated), 3))
        notes["requests served"] = served[0] + 9.0  # and the statement counts' requests
        gc.collect()
        notes["worker VmRSS after (MB)"] = _vm("VmRSS")
        notes["worker VmHWM, peak (MB)"] = _vm("VmHWM")
        notes["worker VmRSS at start (MB)"] = rss_start

    # The bare endpoints: the same bytes (GET) or the same form parsed and the same bytes (POST).
    async def bare_entry(request):
        return Response(entry_bytes, media_type="text/html")

    async def bare_save(request):
        await request.form(max_fields=10_000)
        return Response(saved_bytes, media_type="text/html")

    async def bare_consolidated(request):
        return Response(consolidated_bytes, media_type="text/html")

    bare = ServerTimer(Starlette(routes=[Route("/entry", bare_entry), Route("/save", bare_save, methods=["POST"]),
                                         Route("/consolidated", bare_consolidated)]))
    with TestClient(bare) as client:
        timed("  bare Starlette, same bytes", lambda: client.get("/entry"), bare, rounds)
        timed("  bare Starlette, same form and bytes", lambda: client.post("/save", data=save_form()), bare, rounds)
        timed("  bare Starlette, same bytes ", lambda: client.get("/consolidated"), bare, rounds)
    order = ["GET entry page, 780 cells (server)", "  bare Starlette, same bytes",
             "POST save, 200 inputs of 780 cells (server)", "  bare Starlette, same form and bytes",
             "GET consolidated page, 105 units (server)", "  bare Starlette, same bytes "]
    return {"results": {k: results[k] for k in order}, "notes": notes}


def _p95(values):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]


def run_backend(url: str, rows: int, rounds: int) -> dict:
    seeded = seed_all(url, rows)
    from core.db import close_db

    close_db()
    child = subprocess.run([sys.executable, __file__, "--serve", url, "--seeded", json.dumps(seeded),
                            "--rounds", str(rounds)], capture_output=True, text=True)
    if child.returncode:
        raise RuntimeError(child.stderr[-3000:])
    return json.loads(child.stdout.strip().splitlines()[-1])


@contextmanager
def scratch_database(postgres: str, prefix: str):
    """A fresh PostgreSQL database for one run (its URL), dropped afterwards whatever happened."""
    import psycopg

    admin = re.sub(r"^postgres(ql)?://", "postgresql://", postgres)
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin.rsplit("/", 1)[0] + f"/{name}"
    finally:
        from core.db import close_db

        close_db()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run_pages(rounds: int = 60, rows: int = 150, postgres: str | None = None) -> dict:
    """{backend: {"results": {label: (median, p95)}, "notes": {label: number}}}."""
    tables = {}
    with tempfile.TemporaryDirectory() as tmp:
        tables["SQLite"] = run_backend(f"sqlite:///{Path(tmp) / 'pages.db'}", rows, rounds)
    if postgres:
        try:
            with scratch_database(postgres, "baocao_bench_pages") as url:
                tables["PostgreSQL"] = run_backend(url, rows, rounds)
        except Exception as exc:  # noqa: BLE001 — a bench without PostgreSQL still reports SQLite
            print(f"PostgreSQL skipped: {type(exc).__name__}: {exc}".splitlines()[0], file=sys.stderr)
    return tables


def print_tables(tables: dict) -> None:
    first = next(iter(tables.values()))
    header = f"{'measure':<48}" + "".join(f"{b + ' median':>20}{b + ' p95':>18}" for b in tables)
    print(header)
    print("-" * len(header))
    for label in first["results"]:
        print(f"{label:<48}" + "".join(f"{tables[b]['results'][label][0]:>17.2f} ms"
                                       f"{tables[b]['results'][label][1]:>15.2f} ms" for b in tables))
    print()
    for label in first["notes"]:
        print(f"{label:<48}" + "".join(f"{tables[b]['notes'][label]:>20.1f}" for b in tables))
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--rows", type=int, default=150, help="consolidated form's rows (× 2 input columns)")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--postgres", default=os.environ.get("BAOCAO_BENCH_POSTGRES",
                                                             "postgresql://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--serve", help=argparse.SUPPRESS)  # the child process: URL of the seeded database
    parser.add_argument("--seeded", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        print(json.dumps(serve_and_time(args.serve, json.loads(args.seeded), args.rounds)))
        return
    print_tables(run_pages(args.rounds, args.rows, None if args.no_postgres else args.postgres))


if __name__ == "__main__":
    main()
