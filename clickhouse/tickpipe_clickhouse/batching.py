"""Cutting the input into per-partition batches that a restart cuts the same way again.

Exactly once into ClickHouse rests on one rule: a batch that may have reached ClickHouse is, after any
crash, inserted again as *the same batch* (same rows, same `insert_deduplication_token`), so
ClickHouse drops the repeat. Before inserting, the sink commits the batch's range to Kafka as the
partition's offset metadata, `tickpipe.pending:FIRST-LAST`, with the offset left at FIRST; after
ClickHouse acknowledges, it commits LAST+1 with empty metadata. A consumer that is assigned a
partition whose committed metadata names a pending range first rebuilds exactly that range (it may
wait for more records; it never cuts early or late), then batches freely again.

This module is pure logic (no Kafka, no ClickHouse) so that the rule can be tested on its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

PENDING_PREFIX = "tickpipe.pending:"


HeaderValue = str | bytes | None
Headers = dict[str, HeaderValue] | list[tuple[str, HeaderValue]]


class Record(Protocol):
    """The parts of a confluent_kafka.Message the sink uses."""

    def topic(self) -> str | None: ...
    def partition(self) -> int | None: ...
    def offset(self) -> int | None: ...
    def key(self) -> bytes | None: ...
    def value(self) -> bytes | None: ...
    def headers(self) -> Headers | None: ...


@dataclass
class Batch:
    """Consecutive records of one partition, inserted as one ClickHouse block."""

    topic: str
    partition: int
    records: list[Record]

    @property
    def first(self) -> int:
        return _offset(self.records[0])

    @property
    def last(self) -> int:
        return _offset(self.records[-1])

    @property
    def token(self) -> str:
        """The insert_deduplication_token: topic:partition:first-last."""
        return f"{self.topic}:{self.partition}:{self.first}-{self.last}"

    def pending_metadata(self) -> str:
        return f"{PENDING_PREFIX}{self.first}-{self.last}"


def parse_pending(metadata: str | None) -> tuple[int, int] | None:
    """`tickpipe.pending:100-199` -> (100, 199); anything else (empty, foreign) -> None."""
    if not metadata or not metadata.startswith(PENDING_PREFIX):
        return None
    first, sep, last = metadata[len(PENDING_PREFIX) :].partition("-")
    if not sep or not first.isdigit() or not last.isdigit() or int(last) < int(first):
        return None
    return int(first), int(last)


def _offset(record: Record) -> int:
    offset = record.offset()
    if offset is None:
        raise ValueError("a consumed record has no offset")
    return offset


@dataclass
class _Partition:
    records: list[Record] = field(default_factory=list)
    nbytes: int = 0
    since: float = 0.0  # when the oldest buffered record arrived (clock time)
    replay_last: int | None = None  # set while rebuilding a pending range

    def ready(self) -> bool:
        """Can this partition's buffer be cut now? A replay waits until its last record is here."""
        if not self.records:
            return False
        return self.replay_last is None or _offset(self.records[-1]) >= self.replay_last


class Batcher:
    """Buffers records per partition and says when to flush: by rows, bytes or the oldest row's age."""

    def __init__(
        self,
        max_rows: int,
        max_bytes: int,
        max_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.max_rows = max_rows
        self.max_bytes = max_bytes
        self.max_seconds = max_seconds
        self._clock = clock
        self._parts: dict[tuple[str, int], _Partition] = {}

    # --- assignment -----------------------------------------------------------------------------

    def assign(self, topic: str, partition: int, pending: tuple[int, int] | None) -> None:
        """A partition starts at its committed offset; `pending` is the range to rebuild first."""
        self._parts[(topic, partition)] = _Partition(replay_last=pending[1] if pending else None)

    def revoke(self, topic: str, partition: int) -> None:
        """Forget a partition's buffer: its next owner re-reads from the committed offset."""
        self._parts.pop((topic, partition), None)

    def replaying(self) -> list[tuple[str, int, int]]:
        return [(t, p, s.replay_last) for (t, p), s in self._parts.items() if s.replay_last is not None]

    # --- buffering ------------------------------------------------------------------------------

    def add(self, record: Record) -> None:
        key = (record.topic() or "", record.partition() or 0)
        part = self._parts.get(key)
        if part is None:  # consumed before the assignment callback named it: a fresh partition
            part = self._parts[key] = _Partition()
        if not part.records:
            part.since = self._clock()
        part.records.append(record)
        value = record.value()
        part.nbytes += len(value) if value else 0

    @property
    def rows(self) -> int:
        return sum(len(p.records) for p in self._parts.values())

    @property
    def nbytes(self) -> int:
        return sum(p.nbytes for p in self._parts.values())

    def room(self) -> int:
        """How many more records to consume before the row limit (at least 1, to keep polling)."""
        return max(1, self.max_rows - self.rows)

    def seconds_until_due(self) -> float:
        """Time until the oldest ready row reaches max_seconds (0 = due now, inf = nothing buffered)."""
        ready = [p for p in self._parts.values() if p.ready()]
        if not ready:
            return float("inf")
        if any(p.replay_last is not None for p in ready):
            return 0.0  # a rebuilt pending range goes out at once
        ready_rows = sum(len(p.records) for p in ready)
        if ready_rows >= self.max_rows or sum(p.nbytes for p in ready) >= self.max_bytes:
            return 0.0
        oldest = min(p.since for p in ready)
        return max(0.0, oldest + self.max_seconds - self._clock())

    def due(self) -> bool:
        return self.seconds_until_due() == 0.0

    def take(self) -> list[Batch]:
        """Cut every ready partition into one batch (a pending range exactly as recorded)."""
        batches = []
        for (topic, partition), part in self._parts.items():
            if not part.ready():
                continue
            cut = len(part.records)
            if part.replay_last is not None:  # offsets ascend: keep exactly those up to the recorded last
                cut = sum(1 for r in part.records if _offset(r) <= part.replay_last)
                part.replay_last = None
                if cut == 0:  # the recorded range is no longer in the log (retention): nothing to redo
                    continue
            taken, rest = part.records[:cut], part.records[cut:]
            batches.append(Batch(topic, partition, taken))
            part.records = rest
            part.nbytes = sum(len(r.value() or b"") for r in rest)
            part.since = self._clock()
        return batches
