"""The shape of the repository: the import rules between the three layers, the
top-level folders, and the packaging facts an operator installs from."""

from __future__ import annotations

import ast
import re
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PUBLIC_API = {"core.api", "web.api"}


def imported_modules(path: Path) -> list[tuple[int, str, int]]:
    """(line, absolute module name, relative level) for every import in a file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name, 0) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level == 0:
                # ``from core import accounts`` imports core.accounts: name each member.
                found.extend((node.lineno, f"{module}.{alias.name}" if module in ("core", "web") else module, 0)
                             for alias in node.names)
            else:
                found.append((node.lineno, module, node.level))
    return found


def python_files(folder: str) -> list[Path]:
    files = sorted(p for p in (ROOT / folder).rglob("*.py") if "__pycache__" not in p.parts)
    assert files, f"no Python files under {folder}/"
    return files


def _top(module: str) -> str:
    return module.split(".", 1)[0]


def test_imported_modules_sees_every_form_of_import(tmp_path):
    source = tmp_path / "sample.py"
    source.write_text("import web.app\nfrom starlette.routing import Route\nfrom core import accounts\n"
                      "from . import models\ndef f():\n    import web\n", encoding="utf-8")
    names = {name for _, name, level in imported_modules(source) if level == 0}
    assert names == {"web.app", "starlette.routing", "core.accounts", "web"}


# anyio (threads for run_db) is allowed in core: it is not the web framework.
FORBIDDEN_IN_CORE = {"web", "starlette"}


def core_offenders(paths) -> list[str]:
    return [f"{path.name}:{line} imports {name}" for path in paths
            for line, name, level in imported_modules(path) if level == 0 and _top(name) in FORBIDDEN_IN_CORE]


def test_core_never_imports_the_web_layer_or_starlette():
    offenders = core_offenders(python_files("core"))
    assert offenders == [], "core/ is the domain layer: " + "; ".join(offenders)


def test_the_core_rule_allows_anyio_and_catches_starlette(tmp_path):
    source = tmp_path / "service.py"
    source.write_text("import anyio.to_thread\nfrom starlette.requests import Request\n", encoding="utf-8")
    assert core_offenders([source]) == ["service.py:2 imports starlette.requests"]


def test_plugins_import_only_the_public_api():
    offenders = []
    for path in python_files("plugins"):
        for line, name, level in imported_modules(path):
            if level:
                continue  # the plugin's own modules
            if _top(name) in ("core", "web") and name not in PUBLIC_API \
                    and not any(name.startswith(api + ".") for api in PUBLIC_API):
                offenders.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
    assert offenders == [], "a plugin imports only core.api and web.api: " + "; ".join(offenders)


def test_the_plugin_import_rule_catches_a_private_import(tmp_path):
    # The rule above, applied to a file that breaks it, finds the culprit.
    source = tmp_path / "bad.py"
    source.write_text("from core.api import hookimpl\nfrom core import accounts\nfrom web.guards import require\n",
                      encoding="utf-8")
    private = [n for _, n, lvl in imported_modules(source)
               if not lvl and _top(n) in ("core", "web") and n not in PUBLIC_API]
    assert private == ["core.accounts", "web.guards"]


# -- no import cycle in core/ ------------------------------------------------------

def module_files(root: Path, package: str) -> dict[str, Path]:
    """Dotted module name → file for every module of a package; a package is its ``__init__.py``."""
    modules = {}
    for path in sorted((root / package).rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    """Module → the modules of ``package`` it imports, wherever the import stands (a function body
    too: an import deferred into a function still ties the two modules together).

    ``from pkg import name`` points at ``pkg.name`` when that is a module, else at ``pkg`` itself;
    ``import a.b`` points at ``a.b`` (a package means its ``__init__.py``); relative imports are
    resolved against the importing module's package."""
    modules = module_files(root, package)
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        here = name if is_package else name.rpartition(".")[0]
        edges = graph.setdefault(name, set())
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = here.split(".")
                    base = base[:len(base) - (node.level - 1)]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                targets = [f"{source}.{alias.name}" if f"{source}.{alias.name}" in modules else source
                           for alias in node.names]
            else:
                continue
            for target in targets:
                # ``import core.x.helper`` where helper is not a module names core.x: walk up to a module.
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    edges.add(target)
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(cycles)


def test_import_graph_follows_every_form_of_import_into_functions(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("", encoding="utf-8")
    (pkg / "sub" / "__init__.py").write_text("from .leaf import VALUE\n", encoding="utf-8")
    (pkg / "a.py").write_text("import pkg.sub.leaf\nfrom pkg import b\n", encoding="utf-8")
    # b reaches back to a only from inside a function, through the package's relative import.
    (pkg / "b.py").write_text("import os\n\ndef later():\n    from . import a\n    return a\n", encoding="utf-8")
    (pkg / "sub" / "leaf.py").write_text("from ..c import THING\nVALUE = 1\n", encoding="utf-8")
    (pkg / "c.py").write_text("import pkg.sub\nTHING = 2\n", encoding="utf-8")
    graph = import_graph(tmp_path, "pkg")
    assert graph["pkg.a"] == {"pkg.sub.leaf", "pkg.b"}
    assert graph["pkg.b"] == {"pkg.a"}
    assert graph["pkg.sub"] == {"pkg.sub.leaf"}
    assert graph["pkg.sub.leaf"] == {"pkg.c"}
    assert graph["pkg.c"] == {"pkg.sub"}
    assert import_cycles(graph) == [["pkg.a", "pkg.b"], ["pkg.c", "pkg.sub", "pkg.sub.leaf"]]


def test_an_acyclic_graph_has_no_cycle():
    assert import_cycles({"x": {"y"}, "y": {"z"}, "z": set()}) == []


def test_core_has_no_import_cycle():
    cycles = import_cycles(import_graph(ROOT, "core"))
    # A cycle is broken by moving what both sides need to the module it belongs in (or a small new
    # one), not by deferring an import into a function: the graph counts those too.
    assert cycles == [], "import cycles in core/, one per line:\n" + "\n".join(" ↔ ".join(c) for c in cycles)


# -- top level -------------------------------------------------------------------

REQUIRED_TOP = {"core", "plugins", "web", "tests", "pyproject.toml", "README.md"}
OPTIONAL_TOP = {"docs", "bench", ".ci"}


def _git(*args) -> list[str]:
    out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if line]


def top_level_entries() -> set[str]:
    """Tracked entries plus new files git does not ignore (build artefacts and caches are ignored)."""
    paths = _git("ls-files") + _git("ls-files", "--others", "--exclude-standard")
    return {p.split("/", 1)[0] for p in paths}


def test_the_top_level_holds_only_the_agreed_folders_and_files():
    entries = top_level_entries()
    assert REQUIRED_TOP <= entries, f"missing at the top level: {sorted(REQUIRED_TOP - entries)}"
    stray = {e for e in entries - REQUIRED_TOP - OPTIONAL_TOP if not e.startswith(".")}
    assert stray == set(), f"unexpected top-level entries: {sorted(stray)}"


def test_caches_and_build_artefacts_are_ignored_by_git():
    ignored = _git("check-ignore", "--no-index", ".venv/x", "core/__pycache__/x.pyc", "baocao.egg-info/PKG-INFO",
                   "baocao.db", "baocao-demo.db", ".pytest_cache/x", ".hypothesis/x")
    assert len(ignored) == 7


# -- pyproject.toml -----------------------------------------------------------------

@pytest.fixture(scope="module")
def project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def _requirements(specs: list[str]) -> dict[str, str]:
    """name (normalised, extras dropped) → version specifier."""
    out = {}
    for spec in specs:
        match = re.fullmatch(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*([^;]*?)\s*(;.*)?", spec)
        assert match, spec
        out[re.sub(r"[-_.]+", "-", match.group(1)).lower()] = match.group(3)
    return out


def test_distribution_and_python_version(project):
    assert project["name"] == "baocao"
    assert project["requires-python"].replace(" ", "") == ">=3.11"


def test_console_script(project):
    assert project["scripts"] == {"baocao": "core.cli:main"}


RUNTIME = ["pluggy", "starlette", "peewee", "jinja2", "cryptography", "uvicorn", "python-multipart",
           "holidays", "huey", "openpyxl"]


@pytest.mark.parametrize("name", RUNTIME)
def test_runtime_dependency_has_a_version_range(project, name):
    deps = _requirements(project["dependencies"])
    assert name in deps, f"{name} is not a runtime dependency"
    assert re.search(r"(>=|~=|==)\s*\d", deps[name]), f"{name} has no lower bound: {deps[name]!r}"


def test_the_pinned_major_versions(project):
    deps = _requirements(project["dependencies"])
    # Starlette 1.x only (the app is written against the 1.0 API).
    assert re.search(r">=\s*1(\.|,|$)", deps["starlette"]) and re.search(r"<\s*2", deps["starlette"])
    assert re.search(r">=\s*4\.5", deps["peewee"])
    # Argon2id with PHC strings needs cryptography 48 (security.md F17).
    assert re.search(r">=\s*(4[89]|[5-9]\d)", deps["cryptography"])


def test_extras(project):
    extras = project["optional-dependencies"]
    assert {"postgres", "test"} <= set(extras)
    assert "psycopg" in _requirements(extras["postgres"])
    test_deps = _requirements(extras["test"])
    assert {"pytest", "hypothesis"} <= set(test_deps)


def test_the_workflow_imports_none_of_its_consumers():
    """Issue 13 item 2: the workflow announces transitions (core.reporting.events); notifications,
    e-mail and accepted figures hear them as subscribers, so the workflow imports none of them."""
    consumers = ("core.reporting.subscribers", "core.reporting.notifications", "core.mailer")
    offenders = [f"{path.name}:{line} imports {name}"
                 for path in (ROOT / "core" / "reporting" / "workflow.py", ROOT / "core" / "reporting" / "consolidation.py")
                 for line, name, level in imported_modules(path)
                 if level == 0 and any(name == c or name.startswith(c + ".") for c in consumers)]
    assert offenders == [], "the workflow announces, it never calls a consumer: " + "; ".join(offenders)


def test_the_web_layer_reaches_the_report_domain_through_its_facade_only():
    """Issue 13 item 1: screens and the JSON API call core.reporting.facade; the modules behind it
    may change shape without the web layer noticing (web/testing.py, the plugins' test kit, is not a
    screen and builds reports the way a test needs)."""
    def reporting_modules(path: Path):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module == "core.reporting":
                yield from ((node.lineno, f"core.reporting.{alias.name}") for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("core.reporting."):
                yield node.lineno, node.module
            elif isinstance(node, ast.Import):
                yield from ((node.lineno, a.name) for a in node.names if a.name.startswith("core.reporting"))

    offenders = [f"{path.relative_to(ROOT)}:{line} imports {name}"
                 for path in python_files("web") if path.name != "testing.py"
                 for line, name in reporting_modules(path) if name != "core.reporting.facade"]
    assert offenders == [], "; ".join(offenders)
