"""`tickpipe demo` headless, end to end: the services as separate processes on the real parts.

Mid-run the simulator closes the websocket with 1011 (the producer reconnects: one gap, which the
demo's repair service fills from the simulator's REST API). Counts must agree stage by stage with
what the simulator sent plus what the repair restored, ClickHouse must hold exactly the session's
events according to the simulator's ground truth (the gap included), the summary must show the
gap found, repaired and its rows, and the chart must be a PNG.
"""

from __future__ import annotations

import csv
import io
import json
import os
import struct
import subprocess
import sys
import time
import urllib.request
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


def _simulator(home: Path, path: str, body: dict[str, Any] | None = None) -> Any:
    env = dict(line.split("=", 1) for line in (home / "local.env").read_text().splitlines() if "=" in line)
    request = urllib.request.Request(
        f"http://{env['POLYGON_FEED']}{path}",
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json"},
        method="POST" if body is not None else "GET",
    )
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - loopback
        return json.loads(response.read())


def _close_the_websocket_once(home: Path, demo: subprocess.Popen[str], deadline: float) -> bool:
    """Once the first session has streamed 8 s, the simulator closes it with 1011 (True)."""
    while time.monotonic() < deadline and demo.poll() is None:
        try:
            conns = _simulator(home, "/_sim/stats")["connections"]
        except (OSError, KeyError, ValueError):
            conns = []
        if conns and conns[0]["events_sent_total"] and conns[0]["first_second_ms"] is not None:
            streamed_ms = conns[0]["last_event_ms"] - conns[0]["first_second_ms"]
            if streamed_ms >= 8000:
                _simulator(home, "/_sim/fault", {"action": "close", "code": 1011})
                return True
        time.sleep(0.2)  # polling the simulator's stats for a condition, with a deadline
    return False


def test_demo_headless_counts_agree_stage_by_stage_with_the_ground_truth(tmp_path: Path) -> None:
    home = tmp_path / "demo"
    demo = subprocess.Popen(
        [sys.executable, "-m", "tickpipe_cli", "demo", "--duration", str(DURATION_SECONDS), "--headless"],
        env=_env(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        closed = _close_the_websocket_once(home, demo, time.monotonic() + 180)
        output, _ = demo.communicate(timeout=420)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.communicate()
    assert demo.returncode == 0, output[-4000:]
    assert closed, f"the demo's first websocket session never streamed 8 s:\n{output[-4000:]}"
    assert "stopped: producer (exit 0), repair (exit 0), processor (exit 0), sink (exit 0)" in output
    assert "live console: http://127.0.0.1:" in output, "the demo starts `tickpipe web` and prints its URL"
    summary: dict[str, Any] = json.loads((home / "demo-summary.json").read_text())

    sent = summary["simulator_sent"]
    stages = summary["stages"]
    restored = stages["repair_rows_restored"]
    assert sent > 500, "the demo should stream a visible amount of data"
    assert stages["producer_produced"] == sent
    assert stages["processor_in"] == sent + restored
    assert stages["processor_out"] + stages["processor_dlq"] + stages["processor_filtered"] == sent + restored
    assert stages["processor_dlq"] == 0
    # The sink also stored the gap's two states (repairing, repaired) in feed_gaps.
    assert stages["sink_rows"] == stages["processor_out"] + 2
    assert sum(summary["clickhouse_rows"].values()) == stages["processor_out"]
    assert summary["gaps"] == {"found": 1, "recorded": 1, "repaired": 1, "rows_restored": restored}
    assert restored > 0, "the 1011 close lost events, which REST restored"
    assert "feed gaps: 1 found by the producer, 1 in feed_gaps, 1 repaired" in output

    # Content: the session's events from the first connection's first second to the last
    # connection's first second (the gap between them included), then what the last one was sent.
    stats = summary["simulator_stats"]
    spec = spec_from_stats(stats)
    conns = [c for c in stats["connections"] if c["events_sent_total"]]
    assert len(conns) == 2, conns
    first, last = conns
    topics = first["subscriptions"]
    expected: Counter[tuple[str, str, int]] = Counter()

    def key(event: dict[str, Any]) -> tuple[str, str, int]:
        return (event["ev"], event["sym"], int(event["s"] if event["ev"] in ("A", "AM") else event["q"]))

    for event in session_events(spec, first["first_second_ms"], last["first_second_ms"], topics=topics):
        expected[key(event)] += 1
    stream = session_events(spec, last["first_second_ms"], last["last_event_ms"] + 1000, topics=topics)
    for _, event in zip(range(last["events_sent_total"]), stream, strict=False):
        expected[key(event)] += 1
    stored: Counter[tuple[str, str, int]] = Counter()
    for row in _query(home, "SELECT ev, symbol, toUnixTimestamp64Milli(timestamp) AS t FROM aggregates"):
        stored[(row["ev"], row["symbol"], int(row["t"]))] += 1
    for table in ("trades", "quotes"):
        for row in _query(home, f"SELECT ev, symbol, sequence FROM {table}"):
            stored[(row["ev"], row["symbol"], int(row["sequence"]))] += 1
    missing, extra = expected - stored, stored - expected
    assert not missing, f"{sum(missing.values())} of the session's events missing, e.g. {list(missing)[:3]}"
    assert not extra, f"{sum(extra.values())} rows not in the session (or twice), e.g. {list(extra)[:3]}"

    chart = next((home / "report").glob("*-candles.png"))
    assert f"chart: {chart}" in output
    width, height = _png_size(chart)
    assert (width, height) >= (800, 400)
    assert 10_000 < chart.stat().st_size < 5_000_000
