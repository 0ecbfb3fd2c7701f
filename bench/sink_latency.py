"""Event -> queryable latency at a steady rate (used by `python -m bench.sink latency`).

One partition, events numbered in order: event i is queryable once `max(sequence) >= i`. A poller asks
the running sink's read-only endpoint every 20 ms; each event's latency is the first poll that saw
it minus the moment it was produced (an upper bound: polling adds up to 20 ms). The clock starts
once the sink has joined its group and stored a first warm-up event: the steady state, not the
start-up (a new consumer group waits about 3 s for the broker's initial rebalance delay).
"""

from __future__ import annotations

import random
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import Producer

from bench.common import kafka
from bench.sink import endpoint, sink_process
from bench.sink_events import trade
from tickpipe.kafka import ensure_topics


def latency(rate: int, seconds: float, work: Path) -> dict[str, Any]:
    total = int(rate * seconds)
    with kafka(work) as broker:
        bootstrap = broker.bootstrap
        topic = f"lat-{uuid.uuid4().hex[:6]}"
        ensure_topics({"bootstrap.servers": bootstrap}, [topic], partitions=1)
        folder = work / "chdb"
        with sink_process(bootstrap, topic, folder):
            client = endpoint(folder)
            producer = Producer(
                {"bootstrap.servers": bootstrap, "linger.ms": "5", "enable.idempotence": "true"}
            )
            rng = random.Random(3)
            warm_up(client, producer, topic, rng)
            produced_at: list[float] = []
            seen_at: dict[int, float] = {}
            visible = -1
            start = time.perf_counter()
            next_poll = start
            for i in range(total):
                due = start + i / rate
                while (now := time.perf_counter()) < due:
                    if now >= next_poll:
                        visible = _poll(client, visible, seen_at)
                        next_poll = now + 0.02
                    producer.poll(0)
                value = orjson.dumps(trade("LAT", 1_767_225_600_000 + i, i, rng))
                producer.produce(topic, key=b"LAT", value=value)
                produced_at.append(time.perf_counter())
            producer.flush(30)
            deadline = time.perf_counter() + 30
            while visible < total - 1 and time.perf_counter() < deadline:
                visible = _poll(client, visible, seen_at)
                time.sleep(0.02)
    marks = sorted(seen_at.items())
    latencies, j = [], 0
    for i, produced in enumerate(produced_at):
        while marks[j][0] < i:
            j += 1
        latencies.append(marks[j][1] - produced)
    latencies.sort()
    return {
        "scenario": "latency",
        "rate_per_s": rate,
        "events": total,
        "p50_ms": round(latencies[len(latencies) // 2] * 1000),
        "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000),
        "p999_ms": round(latencies[int(len(latencies) * 0.999)] * 1000),
        "max_ms": round(latencies[-1] * 1000),
    }


def warm_up(client: Any, producer: Producer, topic: str, rng: random.Random) -> None:
    """Produce one event of another symbol and wait until it is queryable (group joined, tables warm)."""
    producer.produce(topic, key=b"LAT", value=orjson.dumps(trade("WARM", 1_767_225_599_000, 0, rng)))
    producer.flush(30)
    deadline = time.perf_counter() + 120
    while int(client.query("SELECT count() FROM trades").result_rows[0][0]) == 0:
        if time.perf_counter() > deadline:
            raise TimeoutError("the warm-up event never became queryable")
        time.sleep(0.05)


def _poll(client: Any, visible: int, seen_at: dict[int, float]) -> int:
    rows = client.query("SELECT toInt64(max(sequence)), count() FROM trades WHERE symbol = 'LAT'").result_rows
    newest = int(rows[0][0]) if int(rows[0][1]) else -1
    if newest > visible:
        seen_at[newest] = time.perf_counter()
    return max(newest, visible)
