"""The suite's fixtures are baocao's pytest plugin (web/testing.py, loaded through its ``pytest11``
entry point), the same ones plugin authors get; this file adds only what the suite's own files
share."""

from __future__ import annotations

from pathlib import Path

from hypothesis import settings

from web.testing import HX, TEST_SECRET, csrf_from  # noqa: F401 — the suite imports them from here

FIXTURES = Path(__file__).parent / "fixtures"

# No time limit per hypothesis example: hypothesis's default (200 ms) is a timed assertion, and a
# busy machine (CI's two cores, the PostgreSQL leg beside the browser legs) failed a correct test on
# it. Speed is measured in bench/, never asserted here.
settings.register_profile("baocao", deadline=None)
settings.load_profile("baocao")
