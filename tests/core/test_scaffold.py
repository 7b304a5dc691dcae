"""``baocao plugin new NAME`` (core/scaffold.py): the package it writes works as written — installed
the way tests/fixtures/vendor installs a vendor package (onto sys.path with its dist-info and entry
point, never into the venv), its own tests pass with baocao's fixtures, and the application loads
it once allow-listed."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from core.cli import main
from core.scaffold import TEMPLATES, ScaffoldError, check_name, new_plugin
from core.settings import PluginSettings
from tests.fixtures.vendor import forget_modules, install_dist

ROOT = Path(__file__).resolve().parents[2]
NAME = "nong_thon"


def install(project: Path, site: Path) -> Path:
    """"Install" a generated project as its pyproject.toml describes it."""
    meta = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    packages = {p.name: p for p in (project / "src").iterdir() if (p / "__init__.py").is_file()}
    return install_dist(site, meta["name"], meta["version"], meta["entry-points"], packages)


@pytest.fixture
def generated(tmp_path, monkeypatch):
    """The package of ``baocao plugin new nong_thon``, installed into a folder on sys.path."""
    forget_modules(f"baocao_{NAME}")
    assert main(["plugin", "new", NAME, "--dir", str(tmp_path / "work")]) == 0
    project = tmp_path / "work" / "baocao-nong-thon"
    site = install(project, tmp_path / "site-packages")
    monkeypatch.syspath_prepend(str(site))
    yield project, site
    forget_modules(f"baocao_{NAME}")


def test_the_package_holds_every_part_of_a_plugin(generated):
    project, _ = generated
    files = sorted(p.relative_to(project).as_posix() for p in project.rglob("*") if p.is_file())
    assert files == [
        "README.md", "pyproject.toml",
        "src/baocao_nong_thon/__init__.py",
        "src/baocao_nong_thon/data/forms/NT-01-THANG.json",
        "src/baocao_nong_thon/data/indicators.csv",
        "src/baocao_nong_thon/data/regimes/01_monthly.toml",
        "src/baocao_nong_thon/locale/en.json", "src/baocao_nong_thon/locale/vi.json",
        "src/baocao_nong_thon/routes.py",
        "src/baocao_nong_thon/static/nong_thon/nong_thon.css",
        "src/baocao_nong_thon/templates/nong_thon/index.html",
        "tests/conftest.py", "tests/test_nong_thon.py",
    ]
    meta = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    assert meta["project"]["name"] == "baocao-nong-thon"
    assert meta["project"]["entry-points"]["baocao.plugins"] == {NAME: "baocao_nong_thon"}
    assert "@@" not in "".join(p.read_text(encoding="utf-8") for p in project.rglob("*") if p.is_file())


def test_the_generated_package_passes_its_own_tests(generated, tmp_path):
    """What its README tells the author to run, run against the installed package, on the database
    this suite runs on (PostgreSQL under a database name of its own)."""
    project, site = generated
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BAOCAO_", "PYTEST_"))}
    env.update(PYTHONPATH=str(site), PYTHONDONTWRITEBYTECODE="1")
    url = os.environ.get("BAOCAO_TEST_DATABASE_URL")
    if url:
        base, stem = url.rsplit("/", 1)
        env["BAOCAO_TEST_DATABASE_URL"] = f"{base}/{stem.split('?')[0][:30]}_scaffold"
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                             "--basetemp", str(tmp_path / "pytest")],
                            cwd=project, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-3000:]
    assert "6 passed" in result.stdout


def test_the_app_loads_the_allow_listed_plugin(generated, make_app, make_settings):
    settings = make_settings(plugins=PluginSettings(allow_external=(NAME,)))
    app = make_app(settings, load_entrypoints=True, strict=True)
    info = app.state.pm.infos[NAME]
    assert (info.status, info.source, info.distribution) == ("ok", "entrypoint", "baocao-nong-thon")
    with TestClient(app) as client:
        from core.accounts import login as accounts
        from core.db import db
        from core.models import Unit

        with db.connection_context():
            unit = Unit.create(code="44", name="Tỉnh Quảng Trị", kind="province")
            accounts.create_user("quantri", "Quản trị", "mat-khau-thu-nghiem", unit, is_admin=True)
        page = client.get("/login")
        from web.testing import csrf_from

        client.post("/login", data={"username": "quantri", "password": "mat-khau-thu-nghiem",
                                    "csrf_token": csrf_from(page.text)})
        overview = client.get(f"/p/{NAME}/")
        assert overview.status_code == 200 and "NT0101" in overview.text
        assert client.get(f"/static/{NAME}/{NAME}.css").status_code == 200


def test_an_unlisted_plugin_is_not_loaded(generated, make_app):
    app = make_app(load_entrypoints=True)
    assert app.state.pm.infos[NAME].status == "not_allowed"


@pytest.mark.parametrize("name", ["NongThon", "nong-thon", "nt", "1nong", "nông_thôn", "_nong", "x" * 32])
def test_a_name_that_is_not_snake_case_is_refused_in_both_languages(tmp_path, capsys, name):
    assert main(["plugin", "new", name, "--dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "không hợp lệ" in err and "Invalid plugin name" in err and "snake_case" in err
    assert list(tmp_path.iterdir()) == []  # nothing written


@pytest.mark.parametrize("name", ["core", "admin", "static", "demo", "plugins", "plugin", "kinhte_xahoi", "class"])
def test_a_reserved_name_is_refused(tmp_path, capsys, name):
    assert main(["plugin", "new", name, "--dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "dành riêng" in err and "reserved" in err
    assert list(tmp_path.iterdir()) == []


def test_an_existing_folder_is_never_overwritten(tmp_path, capsys):
    root = new_plugin(NAME, tmp_path)
    readme = root / "README.md"
    readme.write_text("của tôi", encoding="utf-8")
    assert main(["plugin", "new", NAME, "--dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "đã có" in err and "exists" in err
    assert readme.read_text(encoding="utf-8") == "của tôi"
    with pytest.raises(ScaffoldError):
        new_plugin(NAME, tmp_path)


def test_indicator_codes_are_local_codes_of_the_plugin():
    assert check_name("nong_nghiep").prefix == "NN"
    assert check_name("thuy_san_ven_bien").prefix == "TS"
    assert check_name("hello").prefix == "HE"
    assert check_name("x2_rung").prefix == "XR"


def test_the_templates_ship_with_baocao():
    """pyproject's package-data names the template folder, so an installed baocao can scaffold."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "scaffold_templates/**/*" in project["tool"]["setuptools"]["package-data"]["core"]
    assert TEMPLATES == ROOT / "core" / "scaffold_templates"
    assert all(p.suffix == ".tmpl" for p in TEMPLATES.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
