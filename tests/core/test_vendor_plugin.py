"""baocao-nongnghiep, the sector plugin docs/writing_plugins.md walks through, as a vendor ships it:
"installed" into a folder of the test's own (tests/fixtures/vendor), its own tests run against it on
the database this suite runs on, its size and imports kept to what the guide promises, and the
guide showing its files as they are."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

from tests.fixtures.vendor import NONGNGHIEP, install_nongnghiep

WRITING_PLUGINS = Path(__file__).resolve().parents[2] / "docs" / "writing_plugins.md"
SOURCE = NONGNGHIEP / "src" / "baocao_nongnghiep"
MAX_PYTHON_LINES = 150  # besides data, templates and tests (issue 13, "done when")


def _python_files() -> list[Path]:
    return sorted(p for p in SOURCE.rglob("*.py") if "__pycache__" not in p.parts)


def _own_database(url: str) -> str:
    """A database name of its own on the same server: the subprocess's testing kit drops and
    recreates the databases it names, and must not touch this process's."""
    base, _, name = url.rpartition("/")
    return f"{base}/{(name.split('?')[0] or 'baocao_test')[:30]}_vendor"


def test_the_sector_plugin_passes_its_own_tests_when_installed(tmp_path):
    """What docs/writing_plugins.md tells a vendor to run, against the installed package, on the
    database this suite runs on (SQLite, or PostgreSQL when BAOCAO_TEST_DATABASE_URL names one)."""
    site = install_nongnghiep(tmp_path / "site-packages")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BAOCAO_", "PYTEST_"))}
    env.update(PYTHONPATH=str(site), PYTHONDONTWRITEBYTECODE="1")
    if os.environ.get("BAOCAO_TEST_DATABASE_URL"):
        env["BAOCAO_TEST_DATABASE_URL"] = _own_database(os.environ["BAOCAO_TEST_DATABASE_URL"])
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                             "--basetemp", str(tmp_path / "pytest"), "tests"],
                            cwd=NONGNGHIEP, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-3000:]
    assert re.search(r"\b7 passed\b", result.stdout), result.stdout[-2000:]


def test_the_sector_plugin_is_under_150_lines_of_python():
    lines = sum(len(p.read_text(encoding="utf-8").splitlines()) for p in _python_files())
    assert 0 < lines < MAX_PYTHON_LINES, f"{lines} lines of Python in {SOURCE}"


def test_the_sector_plugin_imports_only_the_public_api():
    allowed_baocao = {"core.api", "web.api"}
    for path in _python_files():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            for name in names:
                top = name.split(".")[0]
                assert top not in ("core", "web", "plugins") or name in allowed_baocao, \
                    f"{path.relative_to(NONGNGHIEP)} imports {name}"


def test_writing_plugins_md_shows_the_vendor_package_as_it_is():
    """The guide's worked example is the package the test above installs and runs."""
    guide = WRITING_PLUGINS.read_text(encoding="utf-8")
    files = sorted(p for p in NONGNGHIEP.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    shown = [p for p in files if p.suffix in (".py", ".toml", ".html", ".csv") or p.name in ("vi.json", "NN-01-THANG.json")]
    assert len(shown) == 13
    for path in shown:
        text = path.read_text(encoding="utf-8").strip()
        assert text in guide, f"docs/writing_plugins.md does not show {path.relative_to(NONGNGHIEP)} as it is"
    for path in files:  # the layout tree names every file
        assert path.name in guide, f"docs/writing_plugins.md does not list {path.relative_to(NONGNGHIEP)}"
