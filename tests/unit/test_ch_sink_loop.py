"""The sink loop against fakes: commit order, every consumer call on the consumer thread."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from confluent_kafka import TopicPartition

from tests.support import wait_for
from tests.unit.test_ch_batching import Rec
from tickpipe_clickhouse.sink.batching import Batch, Batcher
from tickpipe_clickhouse.sink.flusher import Flusher
from tickpipe_clickhouse.sink.metrics import SinkMetrics
from tickpipe_clickhouse.sink.sink import Sink
from tickpipe_clickhouse.sink.writer import Rejected


class Msg(Rec):
    def error(self) -> None:
        return None


class FakeConsumer:
    """Hands out `records` a few at a time; records every commit and the thread that made each call."""

    def __init__(self, records: list[Msg]):
        self.records = records
        self.commits: list[tuple[int, int, str]] = []  # (offset, partition, metadata)
        self.threads: set[str] = set()
        self.on_assign: Any = None

    def _call(self) -> None:
        self.threads.add(threading.current_thread().name)

    def subscribe(self, topics: list[str], on_assign: Any, on_revoke: Any) -> None:
        self._call()
        self.on_assign = on_assign

    def consume(self, num_messages: int, timeout: float) -> list[Msg]:
        self._call()
        if self.on_assign is not None:
            assign, self.on_assign = self.on_assign, None
            assign(self, [TopicPartition("t", 0)])
        taken, self.records = self.records[:3], self.records[3:]
        if not taken:
            threading.Event().wait(min(timeout, 0.01))
        return taken

    def committed(self, partitions: list[TopicPartition], timeout: float) -> list[TopicPartition]:
        self._call()
        return [TopicPartition(tp.topic, tp.partition, -1001) for tp in partitions]

    def commit(self, offsets: list[TopicPartition], asynchronous: bool) -> list[TopicPartition]:
        self._call()
        assert not asynchronous
        self.commits += [(tp.offset, tp.partition, tp.metadata or "") for tp in offsets]
        return offsets

    def assignment(self) -> list[TopicPartition]:
        self._call()
        return [TopicPartition("t", 0)]

    def position(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        self._call()
        return [TopicPartition(tp.topic, tp.partition, 0) for tp in partitions]

    def get_watermark_offsets(self, partition: TopicPartition, cached: bool = False) -> tuple[int, int]:
        self._call()
        return (0, 0)

    def close(self) -> None:
        self._call()


class SlowWriter:
    def __init__(self) -> None:
        self.batches: list[tuple[int, int]] = []
        self.threads: set[str] = set()

    def write(self, batch: Batch) -> list[Rejected]:
        self.threads.add(threading.current_thread().name)
        threading.Event().wait(0.02)  # an insert takes a while: the consumer goes on meanwhile
        self.batches.append((batch.first, batch.last))
        return []


class NoDeadLetters:
    def send(self, row: Rejected) -> None:
        raise AssertionError("nothing is rejected here")

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def test_batches_commit_pending_then_done_and_only_from_the_consumer_thread() -> None:
    consumer = FakeConsumer([Msg(i) for i in range(40)])
    writer = SlowWriter()
    sink = Sink(consumer, "t", writer, NoDeadLetters(), Batcher(5, 1 << 20, 0.01), SinkMetrics())
    thread = threading.Thread(target=sink.run, name="consumer-thread")
    thread.start()
    try:
        wait_for(lambda: (40, 0, "") in consumer.commits, "every offset committed", timeout=20)
    finally:
        sink.stop.set()
        thread.join(20)
    assert not thread.is_alive()
    assert consumer.threads == {"consumer-thread"}, "a consumer call from another thread blocks"
    assert writer.threads, "nothing was inserted"
    assert "consumer-thread" not in writer.threads, "inserts run on the writer thread"
    covered = [offset for first, last in writer.batches for offset in range(first, last + 1)]
    assert covered == list(range(40)), "every record inserted once, in order"
    for n, (first, last) in enumerate(writer.batches):  # pending at FIRST before, past LAST after
        pending = consumer.commits.index((first, 0, f"tickpipe.pending:{first}-{last}"))
        closed = consumer.commits[pending + 1 :]
        assert closed, "a written batch's offsets are committed"
        offset, _, metadata = closed[0]
        if n + 1 < len(writer.batches):  # closed by itself, or by the next batch's pending commit
            nxt = writer.batches[n + 1]
            assert (offset, metadata) in ((last + 1, ""), (nxt[0], f"tickpipe.pending:{nxt[0]}-{nxt[1]}"))
        else:
            assert (offset, metadata) == (last + 1, "")
    assert sum(1 for _, _, metadata in consumer.commits if metadata) == len(writer.batches)
    assert len(consumer.commits) < 2 * len(writer.batches), "some pending commits closed the batch before"


def test_a_written_batch_is_committed_at_once_when_nothing_follows() -> None:
    consumer = FakeConsumer([Msg(i) for i in range(3)])
    sink = Sink(consumer, "t", SlowWriter(), NoDeadLetters(), Batcher(100, 1 << 20, 0.01), SinkMetrics())
    thread = threading.Thread(target=sink.run, name="consumer-thread")
    thread.start()
    try:
        wait_for(lambda: (3, 0, "") in consumer.commits, "the batch's offsets committed", timeout=20)
        assert sink.metrics.registry.get_sample_value("tickpipe_sink_rows_total") == 3
    finally:
        sink.stop.set()
        thread.join(20)
    assert consumer.commits == [(0, 0, "tickpipe.pending:0-2"), (3, 0, "")]


def test_a_pending_commit_closes_the_written_batches_of_its_partitions_and_the_others_by_themselves() -> None:
    consumer = FakeConsumer([])
    metrics = SinkMetrics()
    flusher = Flusher(consumer, SlowWriter(), NoDeadLetters(), metrics, 1.0, threading.Event())
    written = [Batch("t", 0, [Msg(0), Msg(1)]), Batch("t", 1, [Msg(5), Msg(6)])]
    following = [Batch("t", 0, [Msg(3), Msg(4)])]  # offset 2: a transaction marker, never consumed
    assert flusher.commit_pending(following, written)
    # one request: partition 0 moves past 0-1 to the new pending range; partition 1 is closed at 7
    assert consumer.commits == [(3, 0, "tickpipe.pending:3-4"), (7, 1, "")]
    assert metrics.registry.get_sample_value("tickpipe_sink_rows_total") == 4


class MeetingWriter:
    """Each write waits until `parties` writes are in flight (or fails at the barrier's timeout):
    batches written one after another never meet. Rejects the first record of partition 1; with
    `failing`, that partition's write fails at once and the others take a while longer to end."""

    def __init__(self, parties: int, failing: int | None = None):
        self.barrier = threading.Barrier(parties, timeout=5)
        self.failing = failing
        self.ended: list[int] = []

    def write(self, batch: Batch) -> list[Rejected]:
        self.barrier.wait()
        if batch.partition == self.failing:
            raise RuntimeError("injected: not a retryable error")
        if self.failing is not None:
            threading.Event().wait(0.2)  # an insert still running when the other one has failed
        self.ended.append(batch.partition)
        return [Rejected(batch.records[0], "clickhouse_rejected", "x")] if batch.partition == 1 else []


class ListDeadLetters(NoDeadLetters):
    def __init__(self) -> None:
        self.sent: list[tuple[int, int]] = []

    def send(self, row: Rejected) -> None:
        self.sent.append((row.record.partition() or 0, row.record.offset() or 0))


def test_with_concurrency_the_partitions_batches_are_inserted_at_once_and_rejects_go_in_order() -> None:
    dead_letters = ListDeadLetters()
    writer = MeetingWriter(parties=3)
    flusher = Flusher(FakeConsumer([]), writer, dead_letters, SinkMetrics(), 1.0, threading.Event(), 3)
    try:
        flusher.write([Batch("t", p, [Msg(10 * p, part=p), Msg(10 * p + 1, part=p)]) for p in (2, 1, 0)])
    finally:
        flusher.close()
    assert sorted(writer.ended) == [0, 1, 2], "three batches in flight at once, each written once"
    assert dead_letters.sent == [(1, 10)]


def test_with_concurrency_a_failed_batch_is_raised_only_after_the_others_ended() -> None:
    writer = MeetingWriter(parties=2, failing=0)
    dead_letters = ListDeadLetters()
    flusher = Flusher(FakeConsumer([]), writer, dead_letters, SinkMetrics(), 1.0, threading.Event(), 2)
    try:
        with pytest.raises(RuntimeError, match="injected"):
            flusher.write([Batch("t", p, [Msg(p, part=p)]) for p in (0, 1)])
    finally:
        flusher.close()
    assert writer.ended == [1], "a retry of the flush must not overlap a batch still being inserted"
    assert dead_letters.sent == [], "nothing is delivered for a flush that failed: it is redone whole"
