"""`tickpipe local up/status/down` start real parts, reuse them, and stop what they started."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from tickpipe.config import read_env_file
from tickpipe.process import pid_alive
from tickpipe_local.kafka_broker import broker_ready

pytestmark = pytest.mark.integration


def _tickpipe(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "AWS_", "CLICKHOUSE_"))}
    env["TICKPIPE_HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "tickpipe_cli", "local", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_up_status_reuse_down(tmp_path: Path) -> None:
    home = tmp_path / "stack"
    try:
        first = _tickpipe(home, "up", "--no-simulator")
        assert first.returncode == 0, first.stderr
        settings = read_env_file(home / "local.env")
        assert broker_ready(settings["KAFKA_BOOTSTRAP_SERVERS"])
        s3 = boto3.client("s3", endpoint_url=settings["AWS_ENDPOINT_URL"], region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip
        bucket = settings["SUBSCRIPTIONS_URI"].removeprefix("s3://").split("/", 1)[0]
        assert bucket in {b["Name"] for b in s3.list_buckets()["Buckets"]}
        assert "testing" not in first.stdout, "secrets must be masked when printed"

        status = _tickpipe(home, "status")
        assert status.returncode == 0, status.stdout + status.stderr
        assert "kafka" in status.stdout
        assert "running" in status.stdout

        pids = {name: entry["pid"] for name, entry in json.loads((home / "state.json").read_text()).items()}
        again = _tickpipe(home, "up", "--no-simulator")
        assert again.returncode == 0, again.stderr
        pids_again = {
            name: entry["pid"] for name, entry in json.loads((home / "state.json").read_text()).items()
        }
        assert pids_again == pids, "a second `up` must reuse what already runs"
    finally:
        down = _tickpipe(home, "down")
    assert down.returncode == 0, down.stderr
    assert all(not pid_alive(pid) for pid in pids.values())
    assert _tickpipe(home, "status").returncode == 1
    left = read_env_file(home / "local.env") if (home / "local.env").exists() else {}
    assert set(left) <= {"CLICKHOUSE_DSN"}, "only the embedded ClickHouse outlives `down`"
