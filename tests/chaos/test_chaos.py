"""Chaos: kill -9 every service repeatedly, restart the broker, break the websocket, fail ClickHouse
writes for a while — then prove nothing was lost after Kafka and nothing was written twice.

Size: `CHAOS_SIZE=ci` (default; a reduced run that fits the CI budget) or `CHAOS_SIZE=full` (a
1M-event session, 10 kills per service, a 30 s ClickHouse outage). The run's figures are printed
as JSON and written to `$CHAOS_REPORT` when set (docs/reliability.md quotes the last full run).

What is checked:
- every event the simulator wrote to a websocket session that ended by itself (1011 close,
  max_connections eviction, the end of the run) is in RAW_TOPIC exactly once; events of sessions
  cut by kill -9 of the producer may be missing (read but not yet delivered; Polygon cannot replay),
  and they are counted;
- RAW_TOPIC holds nothing the simulator did not send, and nothing twice;
- FILTERED_TOPIC (read_committed) equals RAW_TOPIC event for event (the rules keep everything);
- ClickHouse equals FILTERED_TOPIC row for row; rollup volumes equal the raw sums;
- the producer reported a websocket gap for every session after the first.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.chaos.pipeline import Pipeline, service_env
from tests.chaos.verify import (
    clickhouse_keys,
    decode,
    normalized_key,
    query_rows,
    raw_key,
    read_topic,
    sent_per_connection,
)
from tests.conftest import S3Handle
from tests.support import wait_for
from tickpipe.contract import dlq_topic
from tickpipe.kafka import ensure_topics
from tickpipe_clickhouse.sink.faults import CLICKHOUSE_DOWN
from tickpipe_demo.monitor import KafkaWatcher
from tickpipe_local.kafka_broker import KafkaBroker
from tickpipe_simulator.testing import SimulatorProcess

pytestmark = pytest.mark.integration

SUBSCRIPTIONS = "channel,symbol\nA,*\nAM,*\nT,*\nQ,*\n"
CLICKHOUSE_FAULT = CLICKHOUSE_DOWN


@dataclass(frozen=True)
class ChaosSize:
    rate: int  # trades + quotes per second
    session_seconds: int
    kills_per_service: int
    clickhouse_outage_seconds: float
    symbols: int

    @classmethod
    def from_env(cls) -> ChaosSize:
        if os.environ.get("CHAOS_SIZE", "ci") == "full":
            return cls(
                rate=19_000,
                session_seconds=50,
                kills_per_service=10,
                clickhouse_outage_seconds=30,
                symbols=100,
            )
        return cls(
            rate=5_000, session_seconds=24, kills_per_service=3, clickhouse_outage_seconds=5, symbols=40
        )


def _schedule(size: ChaosSize, rng: random.Random) -> list[tuple[float, str]]:
    """(seconds after the session starts, action), spread over the session, the outage in the middle."""
    span = size.session_seconds - 2
    actions = [
        (rng.uniform(1, span), f"kill:{name}")
        for name in ("producer", "processor", "sink")
        for _ in range(size.kills_per_service)
    ]
    actions += [
        (span * 0.30, "broker_restart"),
        (span * 0.15, "ws_1011"),
        (span * 0.75, "ws_evict"),
        (span * 0.50, "clickhouse_down"),
    ]
    return sorted(actions)


def test_chaos_nothing_lost_after_kafka_and_nothing_twice(
    tmp_path: Path, s3: S3Handle, bucket: str, request: pytest.FixtureRequest
) -> None:
    size = ChaosSize.from_env()
    rng = random.Random(20261123)
    broker = KafkaBroker(tmp_path / "kafka").start()
    raw, filtered = "chaos-raw", "chaos-filtered"
    ensure_topics(
        {"bootstrap.servers": broker.bootstrap}, [raw, filtered, dlq_topic(raw), dlq_topic(filtered)]
    )
    s3.client().put_object(Bucket=bucket, Key="subs.csv", Body=SUBSCRIPTIONS.encode())
    fault_dir = tmp_path / "faults"
    fault_dir.mkdir()
    sim_args = [
        "--seed",
        "5",
        "--symbols",
        str(size.symbols),
        "--rate",
        str(size.rate),
        "--session-seconds",
        str(size.session_seconds),
        "--wait-for-subscriber",
    ]
    report: dict[str, Any] = {"size": size.__dict__}
    try:
        with SimulatorProcess(tmp_path, *sim_args) as sim:
            env = service_env(
                {
                    **s3.env(),
                    "HOME": os.environ.get("HOME", str(tmp_path)),
                    "TICKPIPE_HOME": str(tmp_path / "home"),
                },
                bootstrap=broker.bootstrap,
                raw=raw,
                filtered=filtered,
                feed=sim.feed,
                api_key=sim.api_key,
                subscriptions=f"s3://{bucket}/subs.csv",
                clickhouse_dsn=f"chdb://{tmp_path / 'chdb'}",
                fault_dir=fault_dir,
            )
            pipeline = Pipeline(tmp_path, env)
            request.addfinalizer(pipeline.kill_all)  # also when an assertion below fails
            pipeline.start_all()
            wait_for(lambda: sim.stats()["feed"]["started"], "the producer to subscribe", 90)
            started = time.monotonic()
            _run_schedule(pipeline, sim, broker, fault_dir, _schedule(size, rng), started, size)
            wait_for(
                lambda: sim.stats()["feed"]["finished"],
                "the simulated session to end",
                size.session_seconds + 120,
            )
            _settle(pipeline, broker.bootstrap, raw, filtered)
            report["exit_codes"] = pipeline.stop_all()
            stats = sim.stats()
        report["actions"] = Counter(a.what + (":" + a.target if a.target else "") for a in pipeline.actions)
        report.update(_verify(pipeline, stats, broker.bootstrap, raw, filtered, env))
    finally:
        broker.stop()
    print(json.dumps(report, indent=2, default=str))
    if os.environ.get("CHAOS_REPORT"):
        Path(os.environ["CHAOS_REPORT"]).write_text(json.dumps(report, indent=2, default=str) + "\n")


def _run_schedule(
    pipeline: Pipeline,
    sim: SimulatorProcess,
    broker: KafkaBroker,
    fault_dir: Path,
    schedule: list[tuple[float, str]],
    started: float,
    size: ChaosSize,
) -> None:
    outage_ends: float | None = None
    pending = list(schedule)
    while pending or outage_ends is not None:
        now = time.monotonic() - started
        while pending and pending[0][0] <= now:
            _, action = pending.pop(0)
            if action.startswith("kill:"):
                pipeline.kill(action.split(":", 1)[1])
            elif action == "broker_restart":
                pipeline.note("broker_restart")
                broker.restart()
            elif action == "ws_1011":
                pipeline.note("ws_1011")
                sim.fault(action="close", code=1011)
            elif action == "ws_evict":
                pipeline.note("ws_evict")
                sim.fault(action="evict")
            elif action == "clickhouse_down":
                pipeline.note("clickhouse_down", detail=f"{size.clickhouse_outage_seconds} s")
                (fault_dir / CLICKHOUSE_FAULT).touch()
                outage_ends = now + size.clickhouse_outage_seconds
        if outage_ends is not None and now >= outage_ends:
            (fault_dir / CLICKHOUSE_FAULT).unlink()
            pipeline.note("clickhouse_up")
            outage_ends = None
        pipeline.supervise()
        time.sleep(0.1)  # the driver's tick: it paces actions, it does not wait for a result


def _settle(pipeline: Pipeline, bootstrap: str, raw: str, filtered: str, timeout: float = 180.0) -> None:
    """Wait until the processor and the sink have consumed everything (supervising meanwhile)."""
    watcher = KafkaWatcher(bootstrap)
    try:

        def drained() -> bool:
            pipeline.supervise()
            return (
                watcher.lag("tickpipe-processor", [raw]) == 0
                and watcher.unread("tickpipe-sink", filtered) == 0
            )

        wait_for(drained, "the processor and the sink to catch up", timeout, interval=0.5)
    finally:
        watcher.close()


def _verify(
    pipeline: Pipeline, stats: dict[str, Any], bootstrap: str, raw: str, filtered: str, env: dict[str, str]
) -> dict[str, Any]:
    kills = [a.at for a in pipeline.actions if a.what == "kill" and a.target == "producer"]
    sent = sent_per_connection(stats)
    raw_keys = Counter(raw_key(event) for event in decode(read_topic(bootstrap, raw, read_committed=False)))
    assert max(raw_keys.values(), default=1) == 1, "an event is in RAW_TOPIC twice"
    lost_in_kills = 0
    sessions: list[dict[str, Any]] = []
    for conn in stats["connections"]:
        keys = sent.get(conn["id"], [])
        missing = [key for key in keys if key not in raw_keys]
        cut_by_kill = any(
            conn["connected_at"] - 1 <= at <= (conn["disconnected_at"] or time.time()) + 1 for at in kills
        )
        sessions.append(
            {
                "id": conn["id"],
                "sent": len(keys),
                "missing": len(missing),
                "cut_by_kill": cut_by_kill,
                "close": conn["close_code"],
                "seconds": round((conn["disconnected_at"] or time.time()) - conn["connected_at"], 1),
            }
        )
        if cut_by_kill:
            lost_in_kills += len(missing)
        else:
            assert not missing, (
                f"session {conn['id']} (closed {conn['close_code']}) lost {len(missing)} events"
            )
    everything_sent = {key for keys in sent.values() for key in keys}
    assert set(raw_keys) <= everything_sent, "RAW_TOPIC holds events the simulator never sent"

    assert not read_topic(bootstrap, dlq_topic(raw)), "the processor dead-lettered valid input"
    filtered_keys = Counter(normalized_key(r) for r in decode(read_topic(bootstrap, filtered)))
    assert max(filtered_keys.values(), default=1) == 1, "an event is in FILTERED_TOPIC twice"
    assert set(filtered_keys) == set(raw_keys), "FILTERED_TOPIC differs from RAW_TOPIC"

    stored = clickhouse_keys(env)
    assert max(stored.values(), default=1) == 1, "a row is in ClickHouse twice"
    missing_rows = set(filtered_keys) - set(stored)
    extra_rows = set(stored) - set(filtered_keys)
    assert not missing_rows, (
        f"{len(missing_rows)} events missing from ClickHouse, e.g. {sorted(missing_rows)[:3]}"
    )
    assert not extra_rows, (
        f"{len(extra_rows)} rows in ClickHouse not in FILTERED_TOPIC, e.g. {sorted(extra_rows)[:3]}"
    )
    volumes = query_rows(
        env,
        "SELECT (SELECT sum(volume) FROM aggregates WHERE ev = 'A') AS raw, "
        "(SELECT sum(volume) FROM ohlcv_1m WHERE source = 'A') AS m1, "
        "(SELECT sum(volume) FROM ohlcv_1d WHERE source = 'A') AS d1",
    )[0]
    assert float(volumes["raw"]) == float(volumes["m1"]) == float(volumes["d1"]), volumes

    with_data = sum(1 for c in stats["connections"] if c["events_sent_total"])
    gaps = sum(f.read_text().count('"websocket gap') for f in pipeline.log_files("producer"))
    assert gaps >= with_data - 1, f"{with_data} sessions but only {gaps} gaps reported"
    return {
        "simulator_sent": stats["totals"]["events_sent_total"],
        "sessions": sessions,
        "raw": sum(raw_keys.values()),
        "lost_in_producer_kills": lost_in_kills,
        "filtered": sum(filtered_keys.values()),
        "clickhouse_rows": sum(stored.values()),
        "gaps_reported": gaps,
        "rollup_volume": volumes,
    }
