"""The suite's fixtures are baocao's pytest plugin (web/testing.py, loaded through its ``pytest11``
entry point), the same ones plugin authors get; this file adds only what the suite's own files
share."""

from __future__ import annotations

from pathlib import Path

from web.testing import HX, TEST_SECRET, csrf_from  # noqa: F401 — the suite imports them from here

FIXTURES = Path(__file__).parent / "fixtures"
