"""Record then replay gives back identical events; REST bars agree with the websocket aggregates."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from polygon import RESTClient
from polygon.exceptions import BadResponse

from tickpipe_simulator.recording import read_recording
from tickpipe_simulator.testing import FeedCollector, SimulatorProcess
from tickpipe_simulator.truth import session_events, spec_from_stats

pytestmark = pytest.mark.integration

ALL = ["A.*", "AM.*", "T.*", "Q.*"]
START = "2024-11-22T14:30:00Z"
START_MS = 1_732_285_800_000


def _replay(tmp_path: Path, recording: Path, topics: list[str], expected: int) -> list[dict[str, Any]]:
    with SimulatorProcess(tmp_path, "--replay", str(recording), "--replay-speed", "0") as sim:

        async def run() -> list[dict[str, Any]]:
            async with FeedCollector(sim, topics) as feed:
                await feed.wait_until(lambda: feed.event_count() >= expected, f"{expected} replayed events")
                await asyncio.to_thread(sim.wait_stats, lambda s: s["feed"]["finished"], "the replay's end")
                return feed.events()

        return asyncio.run(run())


def test_record_then_replay_gives_back_identical_events(tmp_path: Path) -> None:
    recording = tmp_path / "session.ndjson.zst"
    args = [
        "--seed",
        "21",
        "--rate",
        "1500",
        "--symbols",
        "30",
        "--session-seconds",
        "3",
        "--wait-for-subscriber",
    ]
    with SimulatorProcess(tmp_path, *args) as sim:
        env = {
            "PATH": os.environ.get("PATH", ""),
            "TICKPIPE_HOME": str(tmp_path / ".tickpipe"),
            "POLYGON_API_KEY": sim.api_key,
        }
        command = [
            sys.executable,
            "-m",
            "tickpipe_cli",
            "record",
            "--out",
            str(recording),
            "--feed",
            sim.feed,
        ]
        command += ["--no-secure", "--subscribe", ",".join(ALL), "--idle-seconds", "2"]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        assert sim.api_key not in done.stderr
        stats = sim.stats()

    recorded = [event for frame in read_recording(recording) for event in frame.events]
    assert len(recorded) == stats["totals"]["events_sent_total"]
    assert recorded == list(session_events(spec_from_stats(stats)))

    assert _replay(tmp_path, recording, ALL, len(recorded)) == recorded
    aggregates = [e for e in recorded if e["ev"] in ("A", "AM")]
    assert _replay(tmp_path, recording, ["A.*", "AM.*"], len(aggregates)) == aggregates


def test_rest_bars_match_the_websocket_aggregates_and_paginate(tmp_path: Path) -> None:
    args = ["--seed", "4", "--rate", "2000", "--symbols", "5", "--start", START, "--session-seconds", "125"]
    with SimulatorProcess(tmp_path, *args, "--speed", "0") as sim:

        async def run() -> list[dict[str, Any]]:
            async with FeedCollector(sim, ["A.*", "AM.*"]) as feed:
                await asyncio.to_thread(sim.wait_stats, lambda s: s["feed"]["finished"], "the session's end")
                stats = await asyncio.to_thread(sim.stats)
                total = stats["totals"]["events_sent_total"]
                await feed.wait_until(lambda: feed.event_count() >= total, f"{total} events")
                return feed.events()

        events = asyncio.run(run())
        client = RESTClient(api_key=sim.api_key, base=sim.base_url, retries=0)
        seconds = list(client.list_aggs("NVDA", 1, "second", START_MS, START_MS + 125_000, limit=50))
        minutes = list(client.list_aggs("NVDA", 1, "minute", "2024-11-22", "2024-11-22", sort="desc"))
        grouped = client.get_grouped_daily_aggs("2024-11-22")
        span = f"{START_MS}/{START_MS + 125_000}"
        page_status, first_page = sim.request(
            "GET", f"/v2/aggs/ticker/NVDA/range/1/second/{span}?limit=50&apiKey={sim.api_key}"
        )
        with pytest.raises(BadResponse, match="Unknown API Key"):
            list(
                RESTClient(api_key="nope", base=sim.base_url, retries=0).list_aggs("NVDA", 1, "minute", 0, 1)
            )
        errors = {
            "no_key": sim.request("GET", "/v2/aggs/ticker/NVDA/range/1/minute/2024-11-22/2024-11-22"),
            "timespan": sim.request(
                "GET", f"/v2/aggs/ticker/NVDA/range/1/fortnight/0/1?apiKey={sim.api_key}"
            ),
            "from": sim.request(
                "GET", f"/v2/aggs/ticker/NVDA/range/1/minute/yesterday/1?apiKey={sim.api_key}"
            ),
            "path": sim.request("GET", "/v3/nothing/here"),
        }

    def bar(event: dict[str, Any]) -> tuple[Any, ...]:
        return (event["s"], event["o"], event["h"], event["l"], event["c"], event["v"], event["vw"])

    a_events = [bar(e) for e in events if e["ev"] == "A" and e["sym"] == "NVDA"]
    assert [(b.timestamp, b.open, b.high, b.low, b.close, b.volume, b.vwap) for b in seconds] == a_events
    assert len(a_events) > 100, "more than two pages of 50"
    assert page_status == 200
    assert "cursor=" in first_page["next_url"]
    assert first_page["resultsCount"] == 50

    am_events = [bar(e) for e in events if e["ev"] == "AM" and e["sym"] == "NVDA"]
    assert len(am_events) == 2, "two whole minutes; the last 5 s make no AM"
    rest_minutes = [(b.timestamp, b.open, b.high, b.low, b.close, b.volume, b.vwap) for b in minutes]
    assert rest_minutes[::-1][:2] == am_events
    assert len(rest_minutes) == 3

    last_a = {e["sym"]: e for e in events if e["ev"] == "A"}
    assert {g.ticker: g.volume for g in grouped} == {sym: e["av"] for sym, e in last_a.items()}

    assert errors["no_key"] == (
        401,
        {**errors["no_key"][1], "status": "ERROR", "error": "API Key was not provided"},
    )
    assert errors["timespan"][0] == 400
    assert "fortnight" in errors["timespan"][1]["error"]
    assert errors["from"][0] == 400
    assert "'from'" in errors["from"][1]["error"]
    assert errors["path"][0] == 404
    assert errors["path"][1]["status"] == "NOT_FOUND"
