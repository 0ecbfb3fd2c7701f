"""`tickpipe demo` headless, end to end: the three services as separate processes on the real parts.

Counts must agree stage by stage with what the simulator sent (its own accounting), ClickHouse must
hold exactly the events the simulator's ground truth says were sent, and the chart must be a PNG.
"""

from __future__ import annotations

import csv
import io
import json
import os
import struct
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tickpipe_simulator.truth import session_events, spec_from_stats

pytestmark = pytest.mark.integration

DURATION_SECONDS = 25


def _env(home: Path) -> dict[str, str]:
    """The user's environment minus anything pointing at other services: the demo starts its own."""
    prefixes = ("KAFKA_", "AWS_", "CLICKHOUSE_", "POLYGON_", "SUBSCRIPTIONS_", "SIMULATOR_")
    env = {key: value for key, value in os.environ.items() if not key.startswith(prefixes)}
    env["TICKPIPE_HOME"] = str(home)
    return env


def _query(home: Path, sql: str) -> list[dict[str, str]]:
    result = subprocess.run(
        [sys.executable, "-m", "tickpipe_cli", "query", sql, "--format", "csv"],
        env=_env(home),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return list(csv.DictReader(io.StringIO(result.stdout)))


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_demo_headless_counts_agree_stage_by_stage_with_the_ground_truth(tmp_path: Path) -> None:
    home = tmp_path / "demo"
    result = subprocess.run(
        [sys.executable, "-m", "tickpipe_cli", "demo", "--duration", str(DURATION_SECONDS), "--headless"],
        env=_env(home),
        capture_output=True,
        text=True,
        timeout=420,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "stopped: producer (exit 0), processor (exit 0), sink (exit 0)" in output
    assert "live console: http://127.0.0.1:" in output, "the demo starts `tickpipe web` and prints its URL"
    summary: dict[str, Any] = json.loads((home / "demo-summary.json").read_text())

    sent = summary["simulator_sent"]
    stages = summary["stages"]
    assert sent > 500, "the demo should stream a visible amount of data"
    assert stages["producer_produced"] == sent
    assert stages["processor_in"] == sent
    assert stages["processor_out"] + stages["processor_dlq"] + stages["processor_filtered"] == sent
    assert stages["processor_dlq"] == 0
    assert stages["sink_rows"] == stages["processor_out"]
    assert sum(summary["clickhouse_rows"].values()) == stages["sink_rows"]

    stats = summary["simulator_stats"]
    by_ev = Counter(stats["totals"]["events_sent"])
    assert summary["clickhouse_rows"] == {
        "aggregates": by_ev["A"] + by_ev["AM"],
        "trades": by_ev["T"],
        "quotes": by_ev["Q"],
    }

    # Content: what each connection was sent is the head of its recomputed stream.
    spec = spec_from_stats(stats)
    expected: Counter[tuple[str, str, int]] = Counter()
    for conn in stats["connections"]:
        if not conn["events_sent_total"]:
            continue
        stream = session_events(
            spec, conn["first_second_ms"], conn["last_event_ms"] + 1000, topics=conn["subscriptions"]
        )
        for _, event in zip(range(conn["events_sent_total"]), stream, strict=False):
            time_key = event["s"] if event["ev"] in ("A", "AM") else event["q"]
            expected[(event["ev"], event["sym"], int(time_key))] += 1
    stored: Counter[tuple[str, str, int]] = Counter()
    for row in _query(home, "SELECT ev, symbol, toUnixTimestamp64Milli(timestamp) AS t FROM aggregates"):
        stored[(row["ev"], row["symbol"], int(row["t"]))] += 1
    for table in ("trades", "quotes"):
        for row in _query(home, f"SELECT ev, symbol, sequence FROM {table}"):
            stored[(row["ev"], row["symbol"], int(row["sequence"]))] += 1
    assert stored == expected, "ClickHouse holds exactly the events the simulator sent"

    chart = next((home / "report").glob("*-candles.png"))
    assert f"chart: {chart}" in output
    width, height = _png_size(chart)
    assert (width, height) >= (800, 400)
    assert 10_000 < chart.stat().st_size < 5_000_000
