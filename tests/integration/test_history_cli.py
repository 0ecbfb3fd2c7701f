"""`tickpipe backfill` as users run it: a missing or rejected API key exits with a clear code and
message (never the key), and a successful run prints its report as JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.history_support import finished, session_args
from tickpipe_simulator.testing import SimulatorProcess

pytestmark = pytest.mark.integration


def _run(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "TICKPIPE_HOME": str(tmp_path / ".tickpipe"),
        "CLICKHOUSE_DSN": f"chdb://{tmp_path / 'chdb'}",
        "LOG_FORMAT": "json",
    }
    command = [sys.executable, "-m", "tickpipe_cli", "backfill", "--from", "2024-03-07", "--to", "2024-03-07"]
    command += ["--symbols", "NVDA", "--datasets", "minute_aggs,conditions", "--progress", "json"]
    return subprocess.run(
        command, env={**base, **env}, capture_output=True, text=True, timeout=120, check=False
    )


def test_missing_and_rejected_keys_exit_clearly_without_showing_the_key(tmp_path: Path) -> None:
    with SimulatorProcess(tmp_path, *session_args(seconds=5)) as sim:
        finished(sim)
        missing = _run(tmp_path, POLYGON_REST_URL=sim.base_url)
        wrong_key = "wrong-" + sim.api_key[::-1]
        rejected = _run(tmp_path, POLYGON_REST_URL=sim.base_url, POLYGON_API_KEY=wrong_key)
        good = _run(tmp_path, POLYGON_REST_URL=sim.base_url, POLYGON_API_KEY=sim.api_key)

    assert missing.returncode == 2
    assert "POLYGON_API_KEY" in missing.stderr
    assert rejected.returncode == 3
    assert "rejected the API key" in rejected.stderr
    assert wrong_key not in rejected.stderr + rejected.stdout
    assert good.returncode == 0, good.stderr[-2000:]
    assert sim.api_key not in good.stderr + good.stdout
    report = json.loads(good.stdout.strip().splitlines()[-1])
    assert report["event"] == "backfill_done"
    assert report["chunks"] == {"done": 2}
    assert report["rows_inserted"] == 1 + 14  # the 5 s session's one minute bar, 14 conditions
    progress = [json.loads(line) for line in good.stderr.splitlines() if "backfill_progress" in line]
    assert progress[-1]["chunks_done"] == progress[-1]["chunks_total"] == 2
