"""The plugin's indicators are data: ``data/indicators.csv`` (the 7 columns of QĐ 05/2023 plus the
catalogue's own columns, docs/plugin_data.md), read and loaded by the core.

They are this province's own indicators (codes ``KX`` + group + number), not rows of the national
system of QĐ 05/2023 — whose codes for these figures the reference data does not give, and a code
is never guessed. When the official table is imported, an administrator links a KX indicator to its
national row through "Mã số ở hệ thống cấp cao hơn" (higher-level code). Each says at which levels it
exists (column "Cấp": the province, and the commune for what a commune itself produces).
"""

from __future__ import annotations

from core.api import plugin_data

DATA = plugin_data("kinhte_xahoi", __file__)


def rows() -> list[dict]:
    """The groups and indicators of the file, in file order (``code``, ``name``, ``levels``...)."""
    return DATA.indicator_rows()


def ensure_catalogue() -> int:
    """Create the groups and indicators that do not exist yet (never overwriting an administrator's
    edit); returns how many indicators were created."""
    return DATA.load_indicators()
