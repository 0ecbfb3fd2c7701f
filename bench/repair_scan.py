"""How long the repair's read-back of RAW_TOPIC takes, with and without the short fetch backoff.

    python -m bench.repair_scan --events 500000 --repeat 3

Uses KAFKA_BOOTSTRAP_SERVERS, else starts a local broker; preloads a 4-partition raw topic
(bench/processor_data.py), then runs `raw_scan.published_since` over all of it, alternating the
scan's own consumer settings with the same consumer but librdkafka's default
`fetch.queue.backoff.ms` (1 s). Prints wall and CPU seconds of each scan as JSON; both must see the
same identities.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from unittest import mock

from confluent_kafka import Consumer

from bench.common import dumps, kafka, machine
from bench.processor import preload
from tickpipe.kafka import ensure_topics
from tickpipe_history import raw_scan

LIBRDKAFKA_DEFAULT_MS = 1000  # fetch.queue.backoff.ms when nothing sets it


def _scan(bootstrap: str, topic: str, backoff_ms: int | None) -> dict[str, Any]:
    """One read-back; with `backoff_ms`, the scan's consumer gets that `fetch.queue.backoff.ms`."""

    def consumer(config: dict[str, Any]) -> Consumer:
        return Consumer(config if backoff_ms is None else {**config, "fetch.queue.backoff.ms": backoff_ms})

    with mock.patch.object(raw_scan, "Consumer", consumer):
        wall, cpu = time.perf_counter(), time.process_time()
        seen = raw_scan.published_since({"bootstrap.servers": bootstrap}, topic, 0)
    return {
        "variant": "tickpipe" if backoff_ms is None else f"backoff_{backoff_ms}ms",
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
    with tempfile.TemporaryDirectory() as tmp, kafka(Path(tmp)) as broker:
        topic = f"bench-raw-scan-{uuid.uuid4().hex[:8]}"
        ensure_topics({"bootstrap.servers": broker.bootstrap}, [topic], partitions=4)
        preload(broker.bootstrap, topic, args.events)
        runs = [
            _scan(broker.bootstrap, topic, backoff_ms)
            for _ in range(args.repeat)
            for backoff_ms in (LIBRDKAFKA_DEFAULT_MS, None)
        ]
    if len({run["identities"] for run in runs}) != 1:
        raise SystemExit(f"the scans disagree: {runs}")
    print(dumps({"scenario": "repair_scan", "events": args.events, "runs": runs, "machine": machine()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
