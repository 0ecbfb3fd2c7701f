"""The sink's exactly-once state: the pending range of each partition, kept in Kafka's offset metadata.

Before a batch is inserted, its partition's committed offset stays at the batch's first offset and
the commit's metadata names the range: `tickpipe.pending:FIRST-LAST` (mark_pending). Once ClickHouse
has acknowledged the insert, the offset moves to LAST+1 with empty metadata (mark_done). A consumer
that is assigned a partition reads the committed metadata (load_pending) and, when a range is named,
rebuilds exactly that batch first (batching.py), so ClickHouse's insert_deduplication_token drops the
repeat. The ClickHouse Kafka Connect sink keeps the same state in a KeeperMap table; Kafka's own
offset metadata needs no second store and commits atomically with the offset it describes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from confluent_kafka import TopicPartition

PENDING_PREFIX = "tickpipe.pending:"


class Range(Protocol):
    """What the state needs of a batch: where it comes from and the offsets it covers."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def first(self) -> int: ...
    @property
    def last(self) -> int: ...


def pending_metadata(first: int, last: int) -> str:
    return f"{PENDING_PREFIX}{first}-{last}"


def parse_pending(metadata: str | None) -> tuple[int, int] | None:
    """`tickpipe.pending:100-199` -> (100, 199); anything else (empty, foreign) -> None."""
    if not metadata or not metadata.startswith(PENDING_PREFIX):
        return None
    first, sep, last = metadata[len(PENDING_PREFIX) :].partition("-")
    if not sep or not first.isdigit() or not last.isdigit() or int(last) < int(first):
        return None
    return int(first), int(last)


def load_pending(committed: Iterable[TopicPartition]) -> list[tuple[TopicPartition, tuple[int, int] | None]]:
    """Each committed partition with the range to rebuild before anything else, or None.

    A range counts only when the committed offset is still its first offset; other metadata (an
    older layout, another tool's) is not ours to replay.
    """
    loaded = []
    for tp in committed:
        pending = parse_pending(tp.metadata)
        if pending is not None and pending[0] != tp.offset:
            pending = None
        loaded.append((tp, pending))
    return loaded


def mark_pending(batches: Iterable[Range]) -> list[TopicPartition]:
    """The commits that record each batch as pending (offset at FIRST, the range as metadata)."""
    return [
        TopicPartition(b.topic, b.partition, b.first, metadata=pending_metadata(b.first, b.last))
        for b in batches
    ]


def mark_done(batches: Iterable[Range]) -> list[TopicPartition]:
    """The commits that close each batch (offset at LAST+1, no metadata)."""
    return [TopicPartition(b.topic, b.partition, b.last + 1, metadata="") for b in batches]
