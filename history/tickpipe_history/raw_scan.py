"""What RAW_TOPIC already holds around a gap (read_committed): event identities, and how many
events earlier repairs restored for each gap."""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson
from confluent_kafka import Consumer, TopicPartition

from tickpipe import contract
from tickpipe_history.repair_events import identity

_REST = (contract.SOURCE, b"rest")


@dataclass
class Published:
    identities: set[tuple[Any, ...]] = field(default_factory=set)
    # events marked `tp.source=rest`, by their `tp.gap_id`: a gap repaired again (its record read
    # twice, or a second gap with the same id) counts what was restored for it before
    restored: Counter[str] = field(default_factory=Counter)


def published_since(kafka: dict[str, str], topic: str, lo_ms: int) -> Published:
    """The events in `topic` (committed) from the first record stamped at or after `lo_ms` to the
    end of each partition at the time of the call: the live feed's events around the gap and those
    earlier repairs restored (stamped later, when they were produced)."""
    consumer = Consumer(
        {
            **kafka,
            "group.id": f"tickpipe-repair-scan-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "enable.partition.eof": True,
            # Fetch again 2 ms after the prefetch queue was full, not librdkafka's 1 s: the scan
            # drains a full queue in a fraction of that (500k events: 2.5-2.7 s -> 1.2-1.3 s,
            # python -m bench.repair_scan).
            "fetch.queue.backoff.ms": 2,
        }
    )
    seen = Published()
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        starts = consumer.offsets_for_times([TopicPartition(topic, p, lo_ms) for p in partitions], timeout=10)
        ends = {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions
        }
        todo = {tp.partition for tp in starts if tp.offset >= 0 and tp.offset < ends[tp.partition]}
        consumer.assign([tp for tp in starts if tp.partition in todo])
        while todo:
            message = consumer.poll(1.0)
            if message is None:
                continue
            error = message.error()
            partition = message.partition() or 0
            if error is not None:
                if error.code() == -191:  # _PARTITION_EOF
                    todo.discard(partition)
                continue
            if (message.offset() or 0) >= ends[partition] - 1:
                todo.discard(partition)
            try:
                event = orjson.loads(message.value() or b"")
            except orjson.JSONDecodeError:
                continue
            key = identity(event) if isinstance(event, dict) else None
            if key is not None:
                seen.identities.add(key)
            headers = message.headers()
            if headers and _REST in headers:
                gap_id = dict(headers).get(contract.GAP_ID)
                seen.restored[gap_id.decode(errors="replace") if isinstance(gap_id, bytes) else ""] += 1
    finally:
        consumer.close()
    return seen
