"""`tickpipe export --at HH:MM`: a bad time, or --at with --date/--until, exits 2 before connecting."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def _export(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "TICKPIPE_HOME": str(tmp_path / ".tickpipe"),
        "CLICKHOUSE_DSN": "http://nobody@127.0.0.1:9/none",  # never reached: the flags fail first
    }
    command = [sys.executable, "-m", "tickpipe_cli", "export", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--at", "25:00"], "HH:MM"),
        (["--at", "06:30", "--date", "2026-12-01"], "--at"),
        (["--at", "06:30", "--until", "2026-12-01"], "--at"),
    ],
)
def test_export_schedule_flags_are_checked(tmp_path: Path, args: list[str], said: str) -> None:
    result = _export(tmp_path, *args)
    assert result.returncode == 2, result.stderr[-2000:]
    assert said in result.stderr
