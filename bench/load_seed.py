"""The load bench's database side (bench/load.py), run as its own process on the settings file
the bench server reads (``BAOCAO_SETTINGS``), so the bench's event loop never holds a database
connection and each backend starts from a clean interpreter:

    python bench/load_seed.py seed --users 50    # after `baocao demo --no-serve` built the database
    python bench/load_seed.py read               # after the server stopped

``seed`` picks the issued regime whose editable reports have the most input cells (among those
with at least ``--users`` of them: the demo's monthly commune regime, 78 communes × 24 cells), then
for each of the first N reports creates a reporter of its unit with a random password, fills
every input cell and the required narrative sections through the core service (so a submission
is not refused for missing data), and creates receivers at the regime's receiving unit. It
prints one JSON document: the accounts, the reports, their input cells and the values stored.

``read`` prints the values stored now in the same reports (JSON), for the lost-write check.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

STATE_FILE = "load_seed.json"  # beside the settings file: the reports ``read`` looks at
REPORTER_PREFIX, RECEIVER_PREFIX = "load_xa", "load_nhan"


def cell_name(row: str, col: str) -> str:
    return f"{row}.{col}"  # as the entry form names it: cell.<row>.<col>


def random_value(rng: random.Random) -> str:
    # Whole, non-negative numbers: they pass every rule of the demo forms (no negative figure,
    # whole numbers for counts), so a submission is never refused for the values.
    return str(rng.randint(1, 99_999))


def _pick_regime(minimum: int):
    """The issued regime with a data form whose editable reports have the most input cells."""
    from core.regimes.forms import FormVersion
    from core.regimes.regimes import Regime
    from core.reporting.data import EDITABLE
    from core.reporting.opening import Report

    best = None
    for regime in Regime.select().where((Regime.status == "issued") & Regime.form.is_null(False)):
        reports = list(Report.select().where((Report.regime == regime) & Report.status.in_(EDITABLE)
                                             & Report.form_version.is_null(False)).order_by(Report.id))
        if len(reports) < minimum:
            continue
        form = FormVersion.get_by_id(reports[0].form_version_id).compiled()
        cells = form.input_cells(reports[0].period_index)
        if best is None or len(cells) > len(best[2]):
            best = (regime, reports, cells, form)
    if best is None:
        raise SystemExit(f"no issued regime has {minimum} editable reports with a data form")
    return best


def seed(users: int, receivers: int, out_dir: Path) -> dict:
    from core.accounts import login as accounts
    from core.accounts.access import Grant, Role
    from core.accounts.permissions import core_access
    from core.db import transaction
    from core.models import Unit
    from core.reporting import data as rd

    regime, reports, cells, form = _pick_regime(users)
    rng = random.Random()
    reporter_role, receiver_role = Role.get(Role.code == "reporter"), Role.get(Role.code == "receiver")
    sections = {s["key"]: (rd.MISSING, "Số liệu thử tải (bench/load.py).") for s in form.outline if s.get("required")}
    out = {"regime": regime.code, "cells": [cell_name(r, c) for r, c in cells], "reporters": [], "receivers": []}
    for n, report in enumerate(reports[:users], start=1):
        unit = Unit.get_by_id(report.unit_id)
        password = accounts.random_password()
        user = accounts.create_user(f"{REPORTER_PREFIX}{n:03d}", f"Người thử tải {n}", password, unit)
        with transaction():
            Grant.create(user=user, role=reporter_role, unit=unit)
        values = {cell: random_value(rng) for cell in cells}
        rd.save(core_access(user), report.id, {cell: (rd.MISSING, v) for cell, v in values.items()}, sections,
                source="bench")
        out["reporters"].append({"username": user.username, "password": password, "report": report.id,
                                 "unit": unit.name,
                                 "values": {cell_name(*cell): v for cell, v in values.items()}})
    receiving = Unit.get_by_id(regime.receiving_unit_id)
    for n in range(1, receivers + 1):
        password = accounts.random_password()
        user = accounts.create_user(f"{RECEIVER_PREFIX}{n:02d}", f"Người nhận thử tải {n}", password, receiving)
        with transaction():
            Grant.create(user=user, role=receiver_role, unit=receiving)
        out["receivers"].append({"username": user.username, "password": password})
    (out_dir / STATE_FILE).write_text(json.dumps([r["report"] for r in out["reporters"]]), encoding="utf-8")
    return out


def read(out_dir: Path) -> dict:
    from core.reporting.data import stored_values

    report_ids = json.loads((out_dir / STATE_FILE).read_text(encoding="utf-8"))
    return {str(report_id): {cell_name(*cell): (None if value is None else str(value))
                             for cell, value in stored_values(report_id).items()}
            for report_id in report_ids}


def main():
    import os

    from core.db import db, init_db
    from core.settings import load_settings

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("seed", "read"))
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--receivers", type=int, default=5)
    args = parser.parse_args()
    settings = load_settings()
    out_dir = Path(os.environ["BAOCAO_SETTINGS"]).parent
    init_db(settings.database_url)
    with db.connection_context():
        result = seed(args.users, args.receivers, out_dir) if args.action == "seed" else read(out_dir)
    json.dump(result, sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    main()
