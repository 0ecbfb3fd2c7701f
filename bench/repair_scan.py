"""How long the repair's read-back of RAW_TOPIC takes, with and without the short fetch backoff.

    python -m bench.repair_scan --events 500000 --repeat 3

Starts a local broker, preloads a 4-partition raw topic (bench/processor_data.py), then runs
`raw_scan.published_since` over all of it, alternating the scan's own consumer settings with the
same consumer but librdkafka's default `fetch.queue.backoff.ms` (1 s). Prints wall and CPU seconds
of each scan as JSON; both must see the same identities.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

import orjson
from confluent_kafka import Consumer

from bench.processor import preload
from tickpipe.kafka import ensure_topics
from tickpipe_history import raw_scan
from tickpipe_local.kafka_broker import KafkaBroker

TOPIC = "bench-raw-scan"


def _consumer_with(setting: str | None) -> Callable[[dict[str, Any]], Consumer]:
    """The scan's Consumer; with `setting`, `fetch.queue.backoff.ms` put back to it."""

    def make(config: dict[str, Any]) -> Consumer:
        if setting is None:
            return Consumer(config)
        return Consumer({**config, "fetch.queue.backoff.ms": setting})

    return make


def _scan(bootstrap: str, variant: str) -> dict[str, Any]:
    factory = _consumer_with(None if variant == "tickpipe" else "1000")
    with mock.patch.object(raw_scan, "Consumer", factory):
        wall, cpu = time.perf_counter(), time.process_time()
        seen = raw_scan.published_since({"bootstrap.servers": bootstrap}, TOPIC, 0)
        return {
            "variant": variant,
            "identities": len(seen.identities),
            "wall_s": round(time.perf_counter() - wall, 2),
            "cpu_s": round(time.process_time() - cpu, 2),
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        broker = KafkaBroker(Path(tmp) / "kafka").start()
        try:
            ensure_topics({"bootstrap.servers": broker.bootstrap}, [TOPIC], partitions=4)
            preload(broker.bootstrap, TOPIC, args.events)
            runs = [
                _scan(broker.bootstrap, variant)
                for _ in range(args.repeat)
                for variant in ("backoff_1s", "tickpipe")
            ]
        finally:
            broker.stop()
    if len({run["identities"] for run in runs}) != 1:
        raise SystemExit(f"the scans disagree: {runs}")
    print(orjson.dumps({"scenario": "repair_scan", "events": args.events, "runs": runs}).decode())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
