"""What the repair reads back from RAW_TOPIC before fetching a gap: the identities already there, and
what earlier repairs restored for each gap (a gap whose record is read twice, or a second gap with
the same id, must report every row restored for it, not only the last repair's)."""

from __future__ import annotations

import time
from collections.abc import Callable

import orjson
import pytest
from confluent_kafka import Producer

from tests.conftest import KafkaHandle
from tickpipe import contract
from tickpipe_history.raw_scan import published_since
from tickpipe_history.repair_events import identity

pytestmark = pytest.mark.integration


def _trade(n: int) -> dict[str, object]:
    return {
        "ev": "T",
        "sym": "AAPL",
        "t": 1_700_000_000_000 + n,
        "q": n,
        "x": 4,
        "i": str(n),
        "p": 1.0,
        "s": 1,
    }


def test_the_scan_counts_the_events_restored_for_each_gap(
    kafka: KafkaHandle, new_topic: Callable[..., str]
) -> None:
    topic = new_topic("raw", partitions=2)
    started_ms = int(time.time() * 1000) - 1000
    producer = Producer(kafka.config())
    rest: tuple[str, str | bytes | None] = (contract.SOURCE, b"rest")
    marks: list[list[tuple[str, str | bytes | None]]] = [
        [],  # the websocket's
        [rest, (contract.GAP_ID, b"feed:1")],
        [rest, (contract.GAP_ID, b"feed:1")],
        [rest, (contract.GAP_ID, b"feed:2")],
        [(contract.GAP_ID, b"feed:2")],  # no `tp.source=rest`: not a restored event
    ]
    for n, headers in enumerate(marks):
        producer.produce(topic, orjson.dumps(_trade(n)), key=b"AAPL", headers=headers)
    assert producer.flush(10) == 0

    seen = published_since(kafka.config(), topic, started_ms)

    assert seen.identities == {identity(_trade(n)) for n in range(len(marks))}
    assert seen.restored == {"feed:1": 2, "feed:2": 1}
    assert published_since(kafka.config(), topic, int(time.time() * 1000) + 60_000).restored == {}
