"""The CLI turns configuration errors into exit code 2 and reads `.tickpipe/local.env`."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pytest

from tickpipe import cli
from tickpipe.config import BaseServiceSettings, load_settings


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
