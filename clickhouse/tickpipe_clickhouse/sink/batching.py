"""Cutting the input into per-partition batches that a restart cuts the same way again.

Exactly once into ClickHouse rests on one rule: a batch that may have reached ClickHouse is, after any
crash, inserted again as *the same batch* (same rows, same `insert_deduplication_token`), so
ClickHouse drops the repeat. The range of a batch that may have reached ClickHouse is kept in Kafka's
offset metadata (state.py). A consumer that is assigned a partition with a pending range first
rebuilds exactly that range here (it may wait for more records; it never cuts early or late), then
batches freely again.

This module is pure logic (no Kafka, no ClickHouse) so that the rule can be tested on its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from tickpipe.contract import HeaderValue

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
    replay: bool = False  # a pending range rebuilt after a restart: it may have reached ClickHouse

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
        self._rows = 0  # buffered over all partitions, kept current by extend/take/revoke
        self._bytes = 0

    # --- assignment -----------------------------------------------------------------------------

    def assign(self, topic: str, partition: int, pending: tuple[int, int] | None) -> None:
        """A partition starts at its committed offset; `pending` is the range to rebuild first."""
        self.revoke(topic, partition)
        self._parts[(topic, partition)] = _Partition(replay_last=pending[1] if pending else None)

    def revoke(self, topic: str, partition: int) -> None:
        """Forget a partition's buffer: its next owner re-reads from the committed offset."""
        part = self._parts.pop((topic, partition), None)
        if part is not None:
            self._rows -= len(part.records)
            self._bytes -= part.nbytes

    def replaying(self) -> list[tuple[str, int, int]]:
        return [(t, p, s.replay_last) for (t, p), s in self._parts.items() if s.replay_last is not None]

    # --- buffering ------------------------------------------------------------------------------

    def add(self, record: Record) -> None:
        self.extend((record,))

    def extend(self, records: Iterable[Record]) -> None:
        """Buffer consumed records (in their partitions' order); the hot loop of the sink."""
        key: tuple[str, int] | None = None
        part = _Partition()
        now = self._clock()
        rows = nbytes = 0
        for record in records:
            record_key = (record.topic() or "", record.partition() or 0)
            if record_key != key:
                key = record_key
                found = self._parts.get(key)
                if found is None:  # consumed before the assignment callback named it: a fresh partition
                    found = self._parts[key] = _Partition()
                part = found
            if not part.records:
                part.since = now
            part.records.append(record)
            size = len(record.value() or b"")
            part.nbytes += size
            nbytes += size
            rows += 1
        self._rows += rows
        self._bytes += nbytes

    @property
    def rows(self) -> int:
        return self._rows

    @property
    def nbytes(self) -> int:
        return self._bytes

    def full(self) -> bool:
        """At the row or byte limit: consume no more until a flush takes rows out."""
        return self._rows >= self.max_rows or self._bytes >= self.max_bytes

    def room(self) -> int:
        """How many more records to consume before the row limit (0 when full).

        A pending range being rebuilt may be longer than today's limit (the settings changed since
        it was recorded): while one is incomplete, consuming goes on, or it would never complete.
        """
        if not self.full():
            return self.max_rows - self._rows
        rebuilding = any(p.replay_last is not None and not p.ready() for p in self._parts.values())
        return self.max_rows if rebuilding else 0

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
            replay = part.replay_last is not None
            if part.replay_last is not None:  # offsets ascend: keep exactly those up to the recorded last
                cut = sum(1 for r in part.records if _offset(r) <= part.replay_last)
                part.replay_last = None
                if cut == 0:  # the recorded range is no longer in the log (retention): nothing to redo
                    continue
            taken, rest = part.records[:cut], part.records[cut:]
            batches.append(Batch(topic, partition, taken, replay=replay))
            rest_bytes = sum(len(r.value() or b"") for r in rest) if rest else 0
            self._rows -= len(taken)
            self._bytes -= part.nbytes - rest_bytes
            part.records, part.nbytes = rest, rest_bytes
            part.since = self._clock()
        return batches
