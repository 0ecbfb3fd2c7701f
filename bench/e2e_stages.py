"""Where an e2e run's latency goes (`python -m bench e2e --param stages=true`).

Two read_committed consumers in the bench process follow the run's topics and note, for every
record, how long after the producer read the event it became readable there:
- raw: `RAW_TOPIC` (the producer's delivery), from the `tp.received_ns` header;
- filtered: `FILTERED_TOPIC` (the processor's committed transaction), trades only (the events the
  query probe follows), from the record's `received_ns`.
With the probe's event -> queryable latencies they split the path into producer, processor and
sink + ClickHouse. Each stage's latencies and the probe's are also reported per `WINDOW_SECONDS` of
the run (p50 and p99 per window), which shows a transient (start-up, a stall) and the stage it
happens in apart from the steady state.

The consumers cost the broker fetches of their own (a few CPU-seconds a minute), so a run with
stages is not the one to read the broker's CPU from.
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import orjson
from confluent_kafka import Consumer

from bench.e2e import _percentiles
from tickpipe.contract import RECEIVED_NS

WINDOW_SECONDS = 3.0


class StageProbe:
    """Follows the raw and filtered topics of one run in background threads."""

    def __init__(self, bootstrap: str, raw_topic: str, filtered_topic: str):
        self.delays: dict[str, list[tuple[float, float]]] = {"raw": [], "filtered": []}  # (seen, delay)
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._follow, args=(bootstrap, topic, stage), daemon=True)
            for stage, topic in (("raw", raw_topic), ("filtered", filtered_topic))
        ]
        for thread in self._threads:
            thread.start()

    def _follow(self, bootstrap: str, topic: str, stage: str) -> None:
        consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"bench-stages-{uuid.uuid4().hex[:8]}",
                "auto.offset.reset": "earliest",
                "isolation.level": "read_committed",
                "enable.auto.commit": False,
                "fetch.wait.max.ms": 20,
            }
        )
        consumer.subscribe([topic])
        delays = self.delays[stage]
        try:
            while not self._stop.is_set():
                for message in consumer.consume(1000, 0.1):
                    value = message.value()
                    if message.error() is not None or value is None:
                        continue
                    now = time.time()
                    if stage == "raw":
                        received = dict(message.headers() or []).get(RECEIVED_NS)
                        if received is not None:
                            delays.append((now, now - int(received) / 1e9))
                    elif value.startswith(b'{"ev":"T"'):
                        delays.append((now, now - orjson.loads(value)["received_ns"] / 1e9))
        finally:
            consumer.close()

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        for thread in self._threads:
            thread.join(10)
        return {
            stage: {**_percentiles([delay for _, delay in seen]), "by_window": by_window(seen)}
            for stage, seen in self.delays.items()
        }


def by_window(samples: list[tuple[float, float]]) -> list[dict[str, float]]:
    """(poll time, latency) pairs -> p50/p99 per WINDOW_SECONDS from the first sample."""
    if not samples:
        return []
    start = samples[0][0]
    windows: dict[int, list[float]] = {}
    for at, latency in samples:
        windows.setdefault(int((at - start) // WINDOW_SECONDS), []).append(latency)
    result = []
    for index, values in sorted(windows.items()):
        window = _percentiles(values)
        result.append(
            {"from_s": index * WINDOW_SECONDS, "p50_ms": window["p50_ms"], "p99_ms": window["p99_ms"]}
        )
    return result
