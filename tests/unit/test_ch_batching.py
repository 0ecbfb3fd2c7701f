"""The batching rule that makes replays identical (pure logic, fake records)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tickpipe_clickhouse.sink.batching import Batcher
from tickpipe_clickhouse.sink.state import parse_pending


@dataclass
class Rec:
    off: int
    part: int = 0
    val: bytes = b'{"ev":"A"}'

    def topic(self) -> str:
        return "t"

    def partition(self) -> int:
        return self.part

    def offset(self) -> int:
        return self.off

    def key(self) -> bytes:
        return b"k"

    def value(self) -> bytes:
        return self.val

    def headers(self) -> None:
        return None


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_flush_by_rows_bytes_and_age() -> None:
    clock = Clock()
    batcher = Batcher(max_rows=3, max_bytes=1000, max_seconds=1.0, clock=clock)
    batcher.add(Rec(0))
    assert not batcher.due()
    clock.now += 1.0
    assert batcher.due()
    batcher.take()
    for offset in (1, 2, 3):
        batcher.add(Rec(offset))
    assert batcher.due()
    batches = batcher.take()
    assert [(b.first, b.last, b.token) for b in batches] == [(1, 3, "t:0:1-3")]
    big = Batcher(max_rows=100, max_bytes=20, max_seconds=60, clock=clock)
    big.add(Rec(0, val=b"x" * 25))
    assert big.due()


def test_one_batch_per_partition_with_its_own_token() -> None:
    batcher = Batcher(10, 1000, 1.0, clock=Clock())
    for offset in (5, 6):
        batcher.add(Rec(offset, part=0))
    batcher.add(Rec(9, part=2))
    tokens = sorted(b.token for b in batcher.take())
    assert tokens == ["t:0:5-6", "t:2:9-9"]
    assert batcher.rows == 0


def test_a_pending_range_is_rebuilt_exactly_even_with_more_data_and_another_size() -> None:
    clock = Clock()
    batcher = Batcher(max_rows=2, max_bytes=1000, max_seconds=0.1, clock=clock)
    batcher.assign("t", 0, (10, 14))
    for offset in (10, 11, 12):  # more than max_rows, older than max_seconds: still waits
        batcher.add(Rec(offset))
    clock.now += 5
    assert not batcher.due()
    assert batcher.take() == []
    for offset in (14, 15, 16):  # 13 was a transaction marker: offsets may skip
        batcher.add(Rec(offset))
    assert batcher.due()
    batches = batcher.take()
    assert [(b.first, b.last) for b in batches] == [(10, 14)]
    assert batcher.replaying() == []
    assert [b.token for b in batcher.take()] == ["t:0:15-16"]


def test_revoke_forgets_the_buffer() -> None:
    batcher = Batcher(10, 1000, 1.0, clock=Clock())
    batcher.add(Rec(1))
    batcher.revoke("t", 0)
    assert batcher.rows == 0
    assert batcher.take() == []


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        ("tickpipe.pending:100-199", (100, 199)),
        ("tickpipe.pending:7-7", (7, 7)),
        ("", None),
        (None, None),
        ("someone-else", None),
        ("tickpipe.pending:9-3", None),
        ("tickpipe.pending:x-3", None),
    ],
)
def test_parse_pending(metadata: str | None, expected: tuple[int, int] | None) -> None:
    assert parse_pending(metadata) == expected


def test_full_stops_consuming_except_to_complete_a_pending_range() -> None:
    batcher = Batcher(max_rows=2, max_bytes=1000, max_seconds=1.0, clock=Clock())
    batcher.extend([Rec(0), Rec(1)])
    assert batcher.full()
    assert batcher.room() == 0
    batcher.take()
    assert (batcher.rows, batcher.nbytes, batcher.room()) == (0, 0, 2)
    batcher.assign("t", 0, (10, 14))  # recorded when batches were larger than today's limit
    batcher.extend([Rec(10), Rec(11), Rec(12)])
    assert batcher.full()
    assert batcher.room() > 0, "the range must be completed, whatever the current limit"


def test_counters_follow_revoke_and_reassign() -> None:
    batcher = Batcher(10, 1000, 1.0, clock=Clock())
    batcher.extend([Rec(1, part=0), Rec(2, part=0), Rec(7, part=1)])
    assert batcher.rows == 3
    batcher.revoke("t", 0)
    assert (batcher.rows, batcher.nbytes) == (1, len(b'{"ev":"A"}'))
    batcher.assign("t", 1, None)
    assert (batcher.rows, batcher.nbytes) == (0, 0)
