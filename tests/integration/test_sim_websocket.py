"""The simulator's websocket protocol, driven by the official polygon client (and a raw client).

Each test starts the simulator as a real subprocess on a free port and stops it afterwards.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter, defaultdict
from fractions import Fraction
from pathlib import Path
from typing import Any

import orjson
import pytest
import websockets
from polygon.exceptions import AuthError
from websockets.exceptions import ConnectionClosedError

from tickpipe_simulator.testing import FeedCollector, SimulatorProcess
from tickpipe_simulator.truth import session_events, spec_from_stats

pytestmark = pytest.mark.integration

ALL = ["A.*", "AM.*", "T.*", "Q.*"]


def _connection(stats: dict[str, Any], index: int = 0) -> dict[str, Any]:
    return dict(stats["connections"][index])


def test_auth_acks_wildcards_and_exact_ground_truth(tmp_path: Path) -> None:
    """A finite session reaches the client whole, equal to the recomputed ground truth."""
    args = ["--seed", "11", "--rate", "3000", "--session-seconds", "3", "--wait-for-subscriber"]
    with SimulatorProcess(tmp_path, *args) as sim:

        async def run() -> FeedCollector:
            async with FeedCollector(sim, ALL) as feed:
                stats = await asyncio.to_thread(
                    sim.wait_stats, lambda s: s["feed"]["finished"], "session end"
                )
                total = stats["totals"]["events_sent_total"]
                await feed.wait_until(lambda: feed.event_count() >= total, f"{total} events")
                return feed

        feed = asyncio.run(run())
        stats = sim.stats()

    acks = [s["message"] for s in feed.statuses() if s["status"] == "success"]
    assert sorted(acks) == sorted(f"subscribed to: {topic}" for topic in ALL)
    received = feed.events()
    conn = _connection(stats)
    assert conn["authenticated"] is True
    assert conn["subscriptions"] == sorted(ALL)
    assert Counter(e["ev"] for e in received) == Counter(stats["totals"]["events_sent"])
    assert {"A", "T", "Q"} <= set(conn["events_sent"])
    spec = spec_from_stats(stats)
    expected = list(session_events(spec, conn["first_second_ms"], conn["last_complete_second_ms"] + 1000))
    assert received == expected
    assert conn["first_second_ms"] == spec.start_ms, (
        "--wait-for-subscriber: the client gets the whole session"
    )
    assert len(feed.frames) <= stats["totals"]["frames_sent"] + len(acks) + 1


def test_second_aggregates_equal_the_trades_received(tmp_path: Path) -> None:
    with SimulatorProcess(tmp_path, "--seed", "3", "--rate", "2000", "--symbols", "20") as sim:

        async def run() -> list[dict[str, Any]]:
            async with FeedCollector(sim, ["A.*", "T.*"]) as feed:
                await feed.wait_until(lambda: sum(e["ev"] == "A" for e in feed.events()) >= 60, "60 A events")
                return feed.events()

        events = asyncio.run(run())
    trades: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    for event in events:
        if event["ev"] == "T":
            trades[(event["sym"], event["t"] // 1000 * 1000)].append(event)
    checked = 0
    for agg in (e for e in events if e["ev"] == "A"):
        prints = trades[(agg["sym"], agg["s"])]
        assert prints, f"an A without trades: {agg}"
        assert agg["v"] == sum(t["s"] for t in prints)
        assert (agg["o"], agg["c"]) == (prints[0]["p"], prints[-1]["p"])
        assert (agg["h"], agg["l"]) == (max(t["p"] for t in prints), min(t["p"] for t in prints))
        vwap = sum(Fraction(str(t["p"])) * t["s"] for t in prints) / agg["v"]
        assert abs(Fraction(str(agg["vw"])) - vwap) <= Fraction(1, 20000)
        checked += 1
    assert checked >= 60


def test_wrong_key_raises_auth_error(tmp_path: Path) -> None:
    with SimulatorProcess(tmp_path) as sim:

        async def run() -> None:
            async with FeedCollector(sim, ["A.*"], api_key="wrong-key") as feed:
                assert feed.task is not None
                await asyncio.wait_for(feed.task, timeout=15)

        with pytest.raises(AuthError, match="authentication failed"):
            asyncio.run(run())
        stats = sim.stats()
        log = sim.log_tail(200)
    conn = _connection(stats)
    assert conn["authenticated"] is False
    assert conn["close_reason"] == "auth_failed"
    assert "wrong-key" not in log


def test_raw_protocol_lists_errors_and_auth_timeout(tmp_path: Path) -> None:
    with SimulatorProcess(tmp_path, "--auth-timeout", "1") as sim:

        async def run() -> tuple[list[Any], list[Any], int | None]:
            async with websockets.connect(f"ws://{sim.feed}/stocks") as ws:
                answers = [orjson.loads(await ws.recv())]
                await ws.send(orjson.dumps({"action": "subscribe", "params": "A.*"}).decode())
                answers.append(orjson.loads(await ws.recv()))  # not authorized yet
                await ws.send(orjson.dumps({"action": "auth", "params": sim.api_key}).decode())
                answers.append(orjson.loads(await ws.recv()))
                await ws.send(orjson.dumps({"action": "subscribe", "params": "A.AAPL, AM.MSFT,Z.X"}).decode())
                answers += [orjson.loads(await ws.recv()) for _ in range(3)]
                await ws.send(orjson.dumps({"action": "unsubscribe", "params": "A.AAPL"}).decode())
                answers.append(orjson.loads(await ws.recv()))
            async with websockets.connect(f"ws://{sim.feed}/stocks") as idle:
                silent = [orjson.loads(await idle.recv()), orjson.loads(await idle.recv())]
                with pytest.raises(websockets.ConnectionClosed):
                    await idle.recv()
                return answers, silent, idle.close_code

        answers, silent, code = asyncio.run(run())
    statuses = [(frame[0]["status"], frame[0]["message"]) for frame in answers]
    assert statuses[0] == ("connected", "Connected Successfully")
    assert statuses[1][0] == "error"
    assert "authenticate" in statuses[1][1]
    assert statuses[2] == ("auth_success", "authenticated")
    assert statuses[3:5] == [("success", "subscribed to: A.AAPL"), ("success", "subscribed to: AM.MSFT")]
    assert statuses[5][0] == "error"
    assert "'Z.X'" in statuses[5][1]
    assert statuses[6] == ("success", "unsubscribed to: A.AAPL")
    assert silent[1][0]["status"] == "auth_timeout"
    assert code == 1008


def test_reconnect_and_resubscribe_after_1011(tmp_path: Path) -> None:
    with SimulatorProcess(tmp_path, "--rate", "2000") as sim:

        async def run() -> FeedCollector:
            async with FeedCollector(sim, ["T.*", "A.*"]) as feed:
                await feed.wait_until(lambda: feed.event_count() > 0, "first events")
                armed = await asyncio.to_thread(sim.fault, action="close", code=1011, after_frames=3)
                assert len(armed["armed_on"]) == 1
                await asyncio.to_thread(
                    sim.wait_stats,
                    lambda s: len(s["connections"]) == 2 and s["connections"][1]["frames_sent"] > 0,
                    "a second connection receiving data",
                )
                return feed

        feed = asyncio.run(run())
        stats = sim.stats()
    first, second = _connection(stats, 0), _connection(stats, 1)
    assert first["close_code"] == 1011
    assert second["subscriptions"] == ["A.*", "T.*"], "the official client resubscribed"
    assert (
        sum(1 for s in feed.statuses() if s["status"] == "auth_success") == 0
    )  # the client reads auth itself
    acks = [s["message"] for s in feed.statuses() if s["status"] == "success"]
    assert sorted(acks) == sorted(["subscribed to: T.*", "subscribed to: A.*"] * 2)


def test_second_connection_with_same_key_evicts_the_first(tmp_path: Path) -> None:
    with SimulatorProcess(tmp_path, "--rate", "500") as sim:

        async def run() -> tuple[FeedCollector, BaseException | None]:
            first = FeedCollector(sim, ["A.*"], max_reconnects=0)
            async with first:
                await first.wait_until(lambda: first.statuses(), "the first client's acks")
                async with FeedCollector(sim, ["A.*"]) as second:
                    await second.wait_until(lambda: second.statuses(), "the second client's acks")
                    assert first.task is not None
                    await asyncio.wait({first.task}, timeout=15)
                    return first, first.task.exception()

        first, error = asyncio.run(run())
        stats = sim.stats()
    assert isinstance(error, ConnectionClosedError)
    assert any(s["status"] == "max_connections" for s in first.statuses())
    old, new = _connection(stats, 0), _connection(stats, 1)
    assert (old["close_code"], old["close_reason"]) == (1008, "max_connections")
    assert new["close_reason"] in (None, "client closed")


def test_slow_consumer_is_dropped_but_a_fast_one_is_not(tmp_path: Path) -> None:
    args = ["--rate", "40000", "--max-buffer-bytes", "500000"]
    with SimulatorProcess(tmp_path, *args) as sim:

        async def run() -> None:
            slow = FeedCollector(sim, ["T.*", "Q.*"], max_reconnects=0)

            async def crawl(raw: str | bytes) -> None:
                await asyncio.sleep(0.5)  # the slow consumer under test, not a wait

            slow._on_frame = crawl  # type: ignore[method-assign]
            async with slow:
                await asyncio.to_thread(
                    sim.wait_stats,
                    lambda s: s["connections"] and s["connections"][0]["close_reason"] == "slow_consumer",
                    "the slow consumer to be dropped",
                    60,
                )

        asyncio.run(run())
        stats = sim.stats()
    assert _connection(stats)["close_code"] == 1008


def test_stats_count_exactly_what_was_written_with_faults(tmp_path: Path) -> None:
    with SimulatorProcess(tmp_path, "--rate", "1000", "--max-frame-events", "50") as sim:

        async def run() -> FeedCollector:
            async with FeedCollector(sim, ALL) as feed:
                await feed.wait_until(lambda: feed.event_count() > 0, "first events")
                await asyncio.to_thread(sim.fault, action="malformed", variant="truncated")
                await asyncio.to_thread(sim.fault, action="pause", seconds=0.5, after_frames=2)
                await feed.wait_until(lambda: feed.unparsable, "the malformed frame")
                await asyncio.to_thread(sim.fault, action="close", code=1000, after_frames=5)
                assert feed.task is not None
                await asyncio.wait_for(feed.task, timeout=30)  # 1000 is a normal close: the client ends
                return feed

        feed = asyncio.run(run())
        stats = sim.stats()
    conn = _connection(stats)
    assert conn["close_code"] == 1000
    assert conn["malformed_sent"] == {"truncated": 1}
    assert len(feed.unparsable) == 1
    assert Counter(e["ev"] for e in feed.events()) == Counter(conn["events_sent"])
    assert max(len(frame) for frame in feed.frames) <= 50


def test_sigterm_closes_clients_with_a_status_and_exits_zero(tmp_path: Path) -> None:
    with SimulatorProcess(tmp_path) as sim:

        async def run() -> tuple[list[Any], int | None]:
            async with websockets.connect(f"ws://{sim.feed}/stocks") as ws:
                await ws.recv()
                await ws.send(orjson.dumps({"action": "auth", "params": sim.api_key}).decode())
                await ws.recv()
                assert sim.process is not None
                sim.process.send_signal(signal.SIGTERM)
                frames = [orjson.loads(frame) async for frame in ws]
                return frames, ws.close_code

        frames, code = asyncio.run(run())
        assert sim.process is not None
        assert sim.process.wait(timeout=30) == 0
    assert frames[-1][0]["status"] == "force_disconnect"
    assert code == 1001


def test_invalid_settings_exit_2_naming_the_setting(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "tickpipe_cli", "simulate", "--rate", "fast"]
    env = {"PATH": os.environ.get("PATH", ""), "TICKPIPE_HOME": str(tmp_path), "SIMULATOR_API_KEYS": "hush"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert "RATE" in done.stderr
    assert "hush" not in done.stderr


@pytest.mark.parametrize(
    ("market", "topics"), [("crypto", ["XA.*", "XT.*", "XQ.*"]), ("forex", ["CA.*", "C.*"])]
)
def test_crypto_and_forex_sessions_reach_the_official_client(
    tmp_path: Path, market: str, topics: list[str]
) -> None:
    args = ["--market", market, "--rate", "600", "--session-seconds", "61", "--speed", "0"]
    with SimulatorProcess(tmp_path, *args, "--start", "2024-11-22T14:30:00Z") as sim:

        async def run() -> tuple[list[dict[str, Any]], int]:
            async with FeedCollector(sim, topics, market=market) as feed:
                stats = await asyncio.to_thread(sim.wait_stats, lambda s: s["feed"]["finished"], "the end")
                total = stats["totals"]["events_sent_total"]
                await feed.wait_until(lambda: feed.event_count() >= total, f"{total} events")
            with pytest.raises(websockets.InvalidStatus) as refused:
                await websockets.connect(f"ws://{sim.feed}/stocks")
            return feed.events(), refused.value.response.status_code

        events, refused_status = asyncio.run(run())
        stats = sim.stats()
    assert refused_status == 404
    assert events == list(session_events(spec_from_stats(stats)))
    assert {e["ev"] for e in events} == {topic.split(".")[0] for topic in topics}


def test_fault_flag_arms_the_next_connection_only(tmp_path: Path) -> None:
    fault = '{"action": "close", "code": 1011, "after_frames": 2}'
    with SimulatorProcess(tmp_path, "--rate", "2000", "--fault", fault) as sim:

        async def run() -> None:
            async with FeedCollector(sim, ["T.*"]):
                await asyncio.to_thread(
                    sim.wait_stats,
                    lambda s: len(s["connections"]) == 2 and s["connections"][1]["frames_sent"] > 5,
                    "the reconnected client past the fault",
                )

        asyncio.run(run())
        stats = sim.stats()
    first, second = _connection(stats, 0), _connection(stats, 1)
    assert (first["close_code"], first["frames_sent"]) == (1011, 2)
    assert second["close_code"] in (None, 1000)


def test_bad_fault_flag_exits_2(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "tickpipe_cli", "simulate", "--fault", '{"action": "close", "code": 42}']
    env = {"PATH": os.environ.get("PATH", ""), "TICKPIPE_HOME": str(tmp_path)}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert "code" in done.stderr
