"""The plugin's indicators: the figures a provincial socio-economic report carries each month.

They are this province's own indicators (codes ``KX`` + group + number), not rows of the national
system of QĐ 05/2023 — whose codes for these figures the reference data does not give, and a code
is never guessed. When the official table is imported, an administrator links a KX indicator to its
national row through "Mã số ở hệ thống cấp cao hơn" (higher-level code).

Each indicator says at which levels it exists (``levels``: the province, and the commune for what a
commune itself produces — its budget, fisheries, forests, jobs, traffic accidents, poverty rate);
the commune's forms carry only those.

Loaded at start-up, only what is missing: an indicator an administrator has edited since is
never overwritten (that would silently make a new version).
"""

from __future__ import annotations

import csv
from pathlib import Path

from core.api import current_indicator, save_indicator, save_indicator_group, transaction

DATA = Path(__file__).with_name("data") / "indicators.csv"
SOURCE_ACT = "Chế độ báo cáo kinh tế - xã hội của tỉnh (plugin kinhte_xahoi)"


def rows() -> list[dict]:
    with DATA.open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def ensure_catalogue() -> int:
    """Create the groups and indicators that do not exist yet; returns how many were created."""
    created = 0
    with transaction():
        for row in rows():
            code = row["code"]
            if len(code) == 4:
                save_indicator_group(code, row["name"], level="province")
                continue
            if current_indicator(code) is not None:
                continue
            save_indicator({
                "code": code, "name": row["name"], "group": code[:4], "levels": row["levels"] or "province",
                "unit_of_measure": row["unit_of_measure"] or None, "value_type": row["value_type"],
                "aggregation": row["aggregation"], "periodicity": row["periodicity"],
                "agency": row["agency"], "source_act": SOURCE_ACT,
            })
            created += 1
    return created
