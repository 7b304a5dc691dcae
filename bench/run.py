"""Request timings of the application shell: median and p95 on SQLite and PostgreSQL.

    .venv/bin/python bench/run.py [--rounds 200] [--postgres postgresql://postgres@127.0.0.1:5432/postgres]
                                  [--no-national]

Each backend gets a fresh database with the demo data (province, departments,
78 communes). Requests go through the whole ASGI stack in-process (middleware,
session lookup, plugin activation, templates), so the numbers are server time
without the network. PostgreSQL is skipped with a note when it is unreachable.

Then, unless ``--no-national``, the same database gets a national-scale synthetic
catalogue and tree (bench/national.py: 5,000 indicators, 4,000 more units) and the
rows marked "(national)" measure the catalogue search, the tree page and the JSON API
on it, as the system administrator (who sees every unit).

Unless ``--no-forms``, bench/forms.py times one report on a 60 × 13 form (780 cells): the entry
page, recalculation, saving every input cell, the Excel export, template and import (issue 5), and
the autosave's server time next to a bare Starlette endpoint parsing the same form (issue 12);
then bench/workflow.py times signing and submitting it, the receiver's queue and review, and
consolidating 78 communes' reports (issue 6).

Unless ``--no-events``, bench/events.py times submitting and accepting a small report with 0, 1
and 10 plugins subscribing to the report events, and ``emit()`` alone (issue 13).

These are one request at a time, in-process. The load under many people at once is bench/load.py's:
50 reporters saving, submitting and being reviewed for 60 s against ``baocao serve --workers 2``
over loopback, on both databases (issue 17).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from starlette.testclient import TestClient  # noqa: E402

from core.settings import Settings  # noqa: E402


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def measure(fn, rounds):
    for _ in range(min(10, rounds)):
        fn()
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples), percentile(samples, 0.95)


def run_backend(url: str, rounds: int, national: bool = True, forms: bool = True, events: bool = True):
    from core.db import db
    from core.demo import seed_demo
    from web.app import create_app
    from web.middleware import csrf_token_for

    # Two-step verification off: the bench measures pages, not an authenticator app.
    settings = Settings(mode="test", database_url=url, secret_key="bench-" + "x" * 40, require_admin_mfa=False,
                        login_rate_per_minute=1_000_000,  # the bench logs in faster than any person
                        api_requests_per_minute=0, exports_per_minute=0,  # ...and calls the API and exports
                        allowed_hosts=("testserver",))
    app = create_app(settings, load_entrypoints=False)
    results = {}
    with TestClient(app) as client:
        with db.connection_context():
            logins = {l.username: l.password for l in seed_demo(settings).logins}
        client.get("/login")

        def token():
            # Login rotates the CSRF seed cookie; the token is derived from it.
            return csrf_token_for(settings.secret_key, client.cookies.get("baocao_csrf"))

        def login():
            client.cookies.delete("baocao_session")
            r = client.post("/login", data={"username": "quantri", "password": logins["quantri"],
                                            "csrf_token": token()}, follow_redirects=False)
            assert r.status_code == 303, r.status_code

        results["POST /login (Argon2id)"] = measure(login, max(10, rounds // 10))
        login()
        fresh = token()
        results["GET /login (anonymous)"] = measure(lambda: TestClient(app).get("/login"), rounds)
        results["GET / (home, logged in)"] = measure(lambda: client.get("/"), rounds)
        results["GET /admin/plugins"] = measure(lambda: client.get("/admin/plugins"), rounds)
        unit = re.search(r'id="unit-(\d+)"', client.get("/admin/plugins/kinhte_xahoi").text).group(1)
        results["GET /admin/plugins/<name> (85 units)"] = measure(
            lambda: client.get("/admin/plugins/kinhte_xahoi"), max(10, rounds // 4))
        results["POST activation (htmx)"] = measure(
            lambda: client.post("/admin/plugins/kinhte_xahoi/activation",
                                data={"unit": unit, "state": "off", "csrf_token": fresh},
                                headers={"HX-Request": "true"}), max(10, rounds // 4))
        results["GET /units (85 units)"] = measure(lambda: client.get("/units"), max(10, rounds // 4))
        results["GET /users"] = measure(lambda: client.get("/users"), max(10, rounds // 4))
        results["GET /audit (after the runs above)"] = measure(lambda: client.get("/audit"), max(10, rounds // 4))
        results["GET /healthz"] = measure(lambda: client.get("/healthz"), rounds)
        if forms:
            from forms import run_forms

            def login_as(username, password):
                client.cookies.delete("baocao_session")
                r = client.post("/login", data={"username": username, "password": password, "csrf_token": token()},
                                follow_redirects=False)
                assert r.status_code == 303, r.status_code

            results.update(run_forms(client, settings, login_as, measure, rounds))
            login()
            from workflow import run_workflow

            results.update(run_workflow(client, settings, login, measure, rounds))
        if events:
            from events import run_events

            results.update(run_events(settings, rounds, percentile))
        if national:
            results.update(run_national(client, rounds))
    return results


def run_national(client, rounds):
    """Seed 5,000 indicators and 4,000 units into the bench database, then time the pages and the API."""
    from core.accounts import api_tokens
    from core.db import db
    from core.models import User
    from national import seed_indicators, seed_units

    with db.connection_context():
        seed_units()
        seed_indicators()
        secret = api_tokens.create_token(User.get(User.username == "quantri"), "bench", 7)[1]
    bearer = {"Authorization": f"Bearer {secret}"}
    heavy, light = max(10, rounds // 10), max(10, rounds // 4)
    results = {}

    def timed(label, path, n, **kwargs):
        response = client.get(path, **kwargs)
        assert response.status_code == 200, (path, response.status_code)
        results[label] = measure(lambda: client.get(path, **kwargs), n)

    timed("GET /indicators?q=dan so (national)", "/indicators?q=dan+so", light)
    timed("GET /api/v1/indicators?q=dan so (nat.)", "/api/v1/indicators?q=dan+so", light)
    timed("  same, bearer token", "/api/v1/indicators?q=dan+so", light, headers=bearer)
    timed("GET /api/v1/indicators (5,000, p. 1)", "/api/v1/indicators?limit=100", light)
    timed("GET /units (tree, national)", "/units", heavy)
    timed("GET /units?q=thu nghiem 07 (national)", "/units?q=thu+nghiem+07", heavy)
    timed("GET /units?at=2025-06-30 (national)", "/units?at=2025-06-30", heavy)
    timed("GET /api/v1/units (national, p. 1)", "/api/v1/units", light)
    timed("GET /api/v1/units?limit=500 (national)", "/api/v1/units?limit=500", light)
    timed("GET /api/v1/units?at=2025-06-30 (nat.)", "/api/v1/units?at=2025-06-30", light)
    timed("GET /api/v1/units/{code} (national)", "/api/v1/units/BX07", light)
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--no-national", action="store_true", help="skip the 5,000 indicators / 4,000 units part")
    parser.add_argument("--no-forms", action="store_true", help="skip the 60 × 13 form part (issue 5)")
    parser.add_argument("--no-events", action="store_true", help="skip the event hook part (issue 13)")
    parser.add_argument("--no-pages", action="store_true",
                        help="skip the pages at national scale (bench/pages.py, issue 17 item 5)")
    parser.add_argument("--postgres", default=os.environ.get("BAOCAO_BENCH_POSTGRES",
                                                             "postgresql://postgres@127.0.0.1:5432/postgres"))
    args = parser.parse_args()

    tables = {}
    with tempfile.TemporaryDirectory() as tmp:
        tables["SQLite"] = run_backend(f"sqlite:///{Path(tmp) / 'bench.db'}", args.rounds, not args.no_national,
                                       not args.no_forms, not args.no_events)

    name = f"baocao_bench_{uuid.uuid4().hex[:8]}"
    try:
        import psycopg

        admin = re.sub(r"^postgres(ql)?://", "postgresql://", args.postgres)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        try:
            tables["PostgreSQL"] = run_backend(admin.rsplit("/", 1)[0] + f"/{name}", args.rounds, not args.no_national,
                                               not args.no_forms, not args.no_events)
        finally:
            from core.db import db

            if db.obj is not None:
                db.obj.close()
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    except Exception as exc:  # noqa: BLE001 — a bench without PostgreSQL still reports SQLite
        print(f"PostgreSQL skipped: {type(exc).__name__}: {exc}".splitlines()[0], file=sys.stderr)

    labels = list(next(iter(tables.values())))
    header = f"{'request':<40}" + "".join(f"{b + ' median':>20}{b + ' p95':>18}" for b in tables)
    print(header)
    print("-" * len(header))
    for label in labels:
        row = f"{label:<40}"
        for backend in tables:
            median, p95 = tables[backend][label]
            row += f"{median:>17.2f} ms{p95:>15.2f} ms"
        print(row)
    if not args.no_pages:  # its own databases: the national data set, a worker process of its own
        from pages import print_tables, run_pages

        print()
        print_tables(run_pages(postgres=args.postgres))


if __name__ == "__main__":
    main()
