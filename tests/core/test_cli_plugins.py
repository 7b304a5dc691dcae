"""The operator's view of broken plugins: ``baocao plugins`` and ``baocao migrate``.

The commands run in a subprocess, as an operator runs them, with the settings
in the environment. Fixture plugins reach them the way a vendor's package
does: a distribution "installed" into a folder on PYTHONPATH whose entry points
(group ``baocao.plugins``) point at the fixture packages, allow-listed with
``BAOCAO_PLUGINS_ALLOW_EXTERNAL``. A bad plugin name or a colliding permission
code must end in one line naming the culprit, with the traceback only in the log.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.plugins import ENTRY_POINT_GROUP
from tests.fixtures.vendor import install_dist

ROOT = Path(__file__).resolve().parents[2]
ENTRY_POINTS = {
    "Bad-Name": "tests.fixtures.plugins.fx_good",
    "fx_dup_permission": "tests.fixtures.plugins.fx_dup_permission",
    "fx_good": "tests.fixtures.plugins.fx_good",
    "fx_startup_fails": "tests.fixtures.plugins.fx_startup_fails",
}


@pytest.fixture
def baocao(tmp_path, database_url):
    """``baocao(*args, **env)`` → CompletedProcess; the fixture distribution is installed."""
    site = install_dist(tmp_path / "site-packages", "baocao-cli-fixtures", "0.0.1", {ENTRY_POINT_GROUP: ENTRY_POINTS})

    def run(*args, **env):
        environment = {k: v for k, v in os.environ.items() if not k.startswith(("BAOCAO_", "PYTEST_"))}
        environment.update(PYTHONPATH=os.pathsep.join([str(site), str(ROOT)]), PYTHONDONTWRITEBYTECODE="1",
                           BAOCAO_DATABASE_URL=database_url, BAOCAO_LOG_FILE=str(tmp_path / "baocao.log"))
        environment.update(env)
        return subprocess.run([sys.executable, "-m", "core.cli", *args], cwd=tmp_path, env=environment,
                              capture_output=True, text=True, timeout=120)

    run.log = tmp_path / "baocao.log"
    return run


def assert_no_traceback(result):
    for stream in (result.stdout, result.stderr):
        assert "Traceback" not in stream and '  File "' not in stream


def lines_naming(text, *words):
    return [line for line in text.splitlines() if all(w in line for w in words)]


def test_all_good_lists_plugins_and_exits_0(baocao):
    result = baocao("plugins", BAOCAO_PLUGINS_ALLOW_EXTERNAL="fx_good")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    (row,) = lines_naming(result.stdout, "fx_good")
    assert row.split()[:4] == ["fx_good", "0.0.1", "entrypoint", "ok"]
    (row,) = lines_naming(result.stdout, "fx_dup_permission")
    assert "not_allowed" in row  # installed, not allow-listed: listed but never loaded
    for name in ("kinhte_xahoi", "chuyen_nganh", "national_link"):
        assert lines_naming(result.stdout, name, "builtin", "ok")


def test_a_bad_plugin_name_is_one_line_naming_it(baocao):
    result = baocao("plugins", BAOCAO_PLUGINS_ALLOW_EXTERNAL="Bad-Name,fx_good")
    assert result.returncode == 1
    assert_no_traceback(result)
    (message,) = result.stderr.splitlines()
    assert "Bad-Name" in message and "registration" in message and "invalid plugin name" in message
    (row,) = lines_naming(result.stdout, "Bad-Name")
    assert "failed" in row and "registration" in row
    assert lines_naming(result.stdout, "fx_good", "ok")  # the others still load
    log = baocao.log.read_text(encoding="utf-8")
    assert "plugin Bad-Name failed at registration" in log and "Traceback" in log


def test_a_bad_plugin_name_in_settings_stops_with_one_line(baocao):
    result = baocao("plugins", BAOCAO_PLUGINS_DISABLED="Bad-Name")
    assert result.returncode == 2
    assert_no_traceback(result)
    (message,) = result.stderr.splitlines()
    assert message.startswith("baocao: ") and '"Bad-Name"' in message


def test_a_colliding_permission_code_is_named(baocao):
    result = baocao("plugins", BAOCAO_PLUGINS_ALLOW_EXTERNAL="fx_dup_permission,fx_good")
    assert result.returncode == 1
    assert_no_traceback(result)
    culprit = lines_naming(result.stderr, "plugin fx_dup_permission failed at declaration",
                           '"fx_dup_permission.item.view"')
    assert len(culprit) == 1
    assert all(line.startswith("ERROR ") for line in result.stderr.splitlines())
    (row,) = lines_naming(result.stdout, "fx_dup_permission", "declaration")
    assert "failed" in row and "fx_dup_permission.item.view" in row
    assert "Traceback" in baocao.log.read_text(encoding="utf-8")


@pytest.mark.empty_database
def test_migrate_names_the_failed_plugin_and_migrates_the_rest(baocao):
    result = baocao("migrate", BAOCAO_PLUGINS_ALLOW_EXTERNAL="fx_dup_permission,fx_good,Bad-Name")
    assert result.returncode == 1
    assert_no_traceback(result)
    assert lines_naming(result.stdout, "core:", "0001_core")
    assert lines_naming(result.stdout, "fx_good:", "0001_item")
    for name, stage in (("fx_dup_permission", "declaration"), ("Bad-Name", "registration")):
        assert len(lines_naming(result.stderr, f"plugin {name} failed at {stage}")) >= 1
    again = baocao("migrate", BAOCAO_PLUGINS_ALLOW_EXTERNAL="fx_good")
    assert again.returncode == 0, again.stderr
    assert lines_naming(again.stdout, "fx_good:", "0 ")  # nothing left to apply


# -- a plugin's own commands: ``baocao <plugin> <command>`` (hook register_commands) ------------------


@pytest.fixture
def baocao_jobs(tmp_path, database_url):
    """``baocao`` with fx_jobs installed as a vendor package and allow-listed."""
    site = install_dist(tmp_path / "site-jobs", "baocao-jobs-fixture", "0.0.1",
                        {ENTRY_POINT_GROUP: {"fx_jobs": "tests.fixtures.plugins.fx_jobs"}})

    def run(*args):
        environment = {k: v for k, v in os.environ.items() if not k.startswith(("BAOCAO_", "PYTEST_"))}
        environment.update(PYTHONPATH=os.pathsep.join([str(site), str(ROOT)]), PYTHONDONTWRITEBYTECODE="1",
                           BAOCAO_DATABASE_URL=database_url, BAOCAO_LOG_FILE=str(tmp_path / "baocao.log"),
                           BAOCAO_PLUGINS_ALLOW_EXTERNAL="fx_jobs")
        return subprocess.run([sys.executable, "-m", "core.cli", *args], cwd=tmp_path, env=environment,
                              capture_output=True, text=True, timeout=120)

    return run


def test_a_plugin_command_runs_under_the_plugin_name(baocao_jobs):
    result = baocao_jobs("fx_jobs", "greet", "--name", "Lan")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("fx_jobs: xin chào Lan")
    # The handler runs inside a database connection of a migrated database; its return is the status.
    result = baocao_jobs("fx_jobs", "units", "--fail")
    assert result.returncode == 3 and "fx_jobs: 0 units" in result.stdout, result.stderr
    listed = baocao_jobs("--help")
    assert listed.returncode == 0 and "fx_jobs" in listed.stdout


def test_a_plugin_command_refusal_is_one_line(baocao_jobs):
    result = baocao_jobs("fx_jobs", "greet", "--name", " ")
    assert result.returncode == 2
    assert result.stderr.startswith("baocao: ") and len(result.stderr.strip().splitlines()) == 1
    assert_no_traceback(result)


def _commands_plugin(name, register):
    import types

    from core.hookspecs import hookimpl

    module = types.ModuleType(name)
    module.register_commands = hookimpl(register)
    return module


def test_a_plugin_named_like_a_core_command_gets_no_commands(settings):
    from core.cli import add_plugin_commands, build_parser, cmd_units_export
    from core.plugins import build_plugin_manager

    def register(subparsers):
        subparsers.add_parser("export").set_defaults(handler=lambda args, settings: 0)

    pm = build_plugin_manager(settings, builtins=(), extra_plugins=[_commands_plugin("units", register)],
                              load_entrypoints=False)
    parser = build_parser()
    add_plugin_commands(parser, pm)
    (stage, summary, _), = pm.infos["units"].errors
    assert stage == "command" and '"units"' in summary and "core command" in summary
    args = parser.parse_args(["units", "export"])
    assert args.func is cmd_units_export and not hasattr(args, "plugin_namespace")  # still the core's


def test_a_plugin_cannot_add_a_top_level_command(settings):
    from core.cli import add_plugin_commands, build_parser
    from core.plugins import build_plugin_manager

    def register(subparsers):
        subparsers.add_parser("migrate").set_defaults(handler=lambda args, settings: 0)

    pm = build_plugin_manager(settings, builtins=(), extra_plugins=[_commands_plugin("fx_cmds", register)],
                              load_entrypoints=False)
    parser = build_parser()
    add_plugin_commands(parser, pm)
    assert parser.parse_args(["fx_cmds", "migrate"]).plugin_namespace == "fx_cmds"
    assert not hasattr(parser.parse_args(["migrate"]), "plugin_namespace")  # the core's migrate


def test_a_plugin_whose_register_commands_raises_is_recorded_and_its_commands_refuse(settings, capsys):
    from core.cli import add_plugin_commands, build_parser, cmd_plugin
    from core.errors import PluginError
    from core.plugins import build_plugin_manager

    def register(subparsers):
        subparsers.add_parser("half").set_defaults(handler=lambda args, settings: 0)
        raise KeyError("fx_cmds: no such option")

    pm = build_plugin_manager(settings, builtins=(), extra_plugins=[_commands_plugin("fx_cmds", register)],
                              load_entrypoints=False)
    parser = build_parser()
    add_plugin_commands(parser, pm)
    assert pm.infos["fx_cmds"].errors[0][0] == "contribution"
    with pytest.raises(PluginError, match="fx_cmds"):
        cmd_plugin(parser.parse_args(["fx_cmds", "half"]))


def test_a_plugin_failing_in_a_command_is_recorded_for_the_plugins_page(baocao, database_url):
    """The command's plugin manager is not the web server's: what fails there is written to the
    table the plugins page reads (core.plugin_failures), marked as a command's."""
    from core.db import close_db, db, init_db
    from core.plugin_failures import PluginFailure

    result = baocao("regimes", "open-due", BAOCAO_PLUGINS_ALLOW_EXTERNAL="fx_startup_fails")
    assert result.returncode == 0, result.stderr  # the other plugins' regimes still load
    init_db(database_url)
    try:
        with db.connection_context():
            rows = [(r.plugin, r.stage, r.process, r.occurrences) for r in PluginFailure.select()]
            error = PluginFailure.get().error
    finally:
        close_db()
    assert rows == [("fx_startup_fails", "startup", "command", 1)]
    assert "licence server unreachable" in error
