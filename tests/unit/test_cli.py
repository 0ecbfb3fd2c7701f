"""The CLI turns configuration errors into exit code 2, reads `.tickpipe/local.env`, and registers
only the areas whose dependencies are installed (tickpipe/areas.py)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import pytest

from tickpipe.config import BaseServiceSettings, load_settings
from tickpipe_cli import cli


def test_config_error_exits_2_with_the_variable_named(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def failing(args: argparse.Namespace) -> int:
        load_settings(BaseServiceSettings)
        return 0

    monkeypatch.setenv("METRICS_PORT", "99999")
    parser = argparse.ArgumentParser()
    parser.set_defaults(func=failing, command="demo")
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    assert cli.main([]) == 2
    assert "METRICS_PORT" in capsys.readouterr().err


def test_local_env_fills_only_unset_variables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TICKPIPE_HOME", str(tmp_path))
    (tmp_path / "local.env").write_text("# comment\nTP_TEST_A=from-file\nTP_TEST_B=from-file\n")
    monkeypatch.setenv("TP_TEST_B", "from-env")
    monkeypatch.delenv("TP_TEST_A", raising=False)
    cli.apply_local_env()
    assert os.environ["TP_TEST_A"] == "from-file"
    assert os.environ["TP_TEST_B"] == "from-env"
    monkeypatch.delenv("TP_TEST_A")


def _commands(parser: argparse.ArgumentParser) -> set[str]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return set(action.choices)


def test_an_area_whose_dependencies_are_missing_is_not_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    """The producer image has no aiohttp: the simulator's commands vanish, the producer's stay."""
    monkeypatch.setitem(sys.modules, "aiohttp", None)  # how Python spells "not installed"
    parser = cli.build_parser()
    commands = _commands(parser)
    assert {"producer", "subscriptions", "processor", "sink", "migrate", "query"} <= commands
    assert not {"simulate", "record", "local", "demo", "report"} & commands  # all need aiohttp
    assert "pip install 'tickpipe[simulator]'" in parser.format_help()
    args = parser.parse_args(["producer", "--subscriptions-uri", "subscriptions.csv"])
    assert args.func.__module__ == "tickpipe_producer.cli"


def test_a_command_whose_dependencies_are_missing_exits_2_naming_the_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("TICKPIPE_HOME", str(tmp_path))  # no local.env from a running stack
    monkeypatch.setitem(sys.modules, "clickhouse_connect", None)
    assert cli.main(["sink", "--metrics-port", "0"]) == 2
    err = capsys.readouterr().err
    assert "tickpipe sink: not installed" in err
    assert "clickhouse_connect" in err
    assert "pip install 'tickpipe[sink]'" in err


def test_with_everything_installed_every_area_is_registered() -> None:
    here, absent = cli.installed_areas()
    assert absent == [], f"the dev environment lacks {[area.missing() for area in absent]}: make setup"
    assert _commands(cli.build_parser()) == {command for area in here for command in area.commands}
