"""Two processor instances in one consumer group share the partitions, exactly once; when one
stops (SIGTERM, exit 0) the other takes its partitions over and nothing is lost or doubled."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import orjson
import pytest

from tests.conftest import KafkaHandle
from tests.integration.processor_harness import (
    RawRecord,
    RunningProcessor,
    all_committed,
    produce_raw,
    read_topic,
    run_processor,
)
from tests.support import wait_for

pytestmark = pytest.mark.integration

PARTITIONS = 4
T0_MS = 1_767_225_600_000  # 2026-01-01: inside the processor's plausible event-time window


def trades(first: int, count: int) -> list[RawRecord]:
    records: list[RawRecord] = []
    for n in range(first, first + count):
        symbol = f"G{n % 64:02d}"
        value = orjson.dumps({"ev": "T", "sym": symbol, "x": 1, "p": 10.0, "s": 1, "t": T0_MS + n, "q": n})
        records.append((symbol.encode(), value, [("tp.received_ns", b"1")]))
    return records


def partitions_of(proc: RunningProcessor) -> set[int]:
    health = proc.health()
    return set(health["partitions"]) if health else set()


def test_two_instances_share_partitions_and_hand_over(
    kafka: KafkaHandle, new_topic: Callable[..., str], tmp_path: Path
) -> None:
    raw, out = new_topic("raw", partitions=PARTITIONS), new_topic("filtered")
    group = f"proc-{uuid.uuid4().hex[:8]}"
    produce_raw(kafka.bootstrap, raw, trades(0, 20_000))
    with ExitStack() as stack:
        a = stack.enter_context(run_processor(kafka.bootstrap, raw, out, tmp_path, group, "a"))
        b = stack.enter_context(run_processor(kafka.bootstrap, raw, out, tmp_path, group, "b"))

        def shared() -> bool:
            assert a.alive(), a.tail()
            assert b.alive(), b.tail()
            mine, theirs = partitions_of(a), partitions_of(b)
            return bool(mine and theirs and not mine & theirs and mine | theirs == set(range(PARTITIONS)))

        wait_for(shared, "both instances holding disjoint partitions covering the topic", timeout=90)
        wait_for(lambda: all_committed(kafka.bootstrap, group, raw), "first 20k committed", timeout=90)

        assert b.terminate() == 0, b.tail()
        produce_raw(kafka.bootstrap, raw, trades(20_000, 10_000))
        wait_for(lambda: partitions_of(a) == set(range(PARTITIONS)), "a taking over b's partitions", 90)
        wait_for(lambda: all_committed(kafka.bootstrap, group, raw), "all 30k committed", timeout=90)
        assert a.terminate() == 0, a.tail()

    sequences = Counter(record.json()["sequence"] for record in read_topic(kafka.bootstrap, out))
    assert set(sequences) == set(range(30_000))
    assert max(sequences.values()) == 1, "an event was written twice"
