"""The steps of a flush, in the order exactly-once rests on.

A flush of batches (one per partition): (1) commit each batch's range as pending offset metadata,
(2) insert each batch with its tokens, retrying transient failures with back-off, (3) send the rows
ClickHouse rejected to the DLQ and wait for the broker, (4) commit the next offsets. A crash anywhere
repeats at most the pending batches, cut identically (batching.py), and ClickHouse drops repeats.
When the next flush of a partition is due by the time a write ends (always, under a backlog; within
the batch's time bound at a steady rate), step 4 of the written batch and step 1 of the next go to
the broker as one commit request (`commit_pending(..., written=...)`).

Steps 1 and 4 touch the consumer, so the consumer's thread runs them (confluent-kafka blocks a
commit from another thread while consume() waits); steps 2 and 3 (`write`) may run on another
thread, which is how the sink inserts one batch while it consumes the next (sink.py). With
`concurrency` above 1 the batches of one flush (one per partition) are inserted at the same time,
each with its own token and retries as before; step 3 waits until every one has ended, so a flush
still ends all at once and a retried batch never overlaps itself.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any

from confluent_kafka import KafkaError, KafkaException, TopicPartition

from tickpipe_clickhouse.sink.batching import Batch
from tickpipe_clickhouse.sink.metrics import SinkMetrics
from tickpipe_clickhouse.sink.ports import DeadLetterSink, SinkConsumer
from tickpipe_clickhouse.sink.state import mark_done, mark_pending
from tickpipe_clickhouse.sink.writer import Rejected, TransientWriteError, Writer

log = logging.getLogger(__name__)

# Commit errors after which the partitions are no longer ours: drop the batch, the owner redoes it.
_LOST_OWNERSHIP = {
    KafkaError.REBALANCE_IN_PROGRESS,
    KafkaError.ILLEGAL_GENERATION,
    KafkaError.UNKNOWN_MEMBER_ID,
    KafkaError._ASSIGNMENT_LOST,
    KafkaError._NO_OFFSET,
}


class Stopped(Exception):
    """A stop was requested while waiting to retry; nothing was committed for the batch."""


class Flusher:
    """Pending ranges -> inserts -> DLQ -> offsets, with retries; see the module docstring."""

    def __init__(
        self,
        consumer: SinkConsumer,
        writer: Writer,
        dead_letters: DeadLetterSink,
        metrics: SinkMetrics,
        retry_max_seconds: float,
        stop: threading.Event,
        concurrency: int = 1,
    ):
        self.consumer = consumer
        self.writer = writer
        self.dead_letters = dead_letters
        self.metrics = metrics
        self.retry_max_seconds = retry_max_seconds
        self.stop = stop
        self.failing_since: float | None = None
        self._pool = (
            ThreadPoolExecutor(concurrency, thread_name_prefix="sink-batch") if concurrency > 1 else None
        )

    def close(self) -> None:
        """Stop the batch threads (after the write in flight has ended)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    def commit_pending(self, batches: list[Batch], written: Sequence[Batch] = ()) -> bool:
        """Step 1; False if the partitions are no longer ours (then drop the batches).

        `written` are earlier batches whose steps 2 and 3 are over but whose step 4 has not been
        committed yet: their step 4 rides in the same commit request. Where a new batch follows a
        written one in the same partition, its pending commit (offset at the new batch's first,
        past the written one's last) is that step 4; elsewhere the written batch's own done offset
        is added. One commit request instead of two per flush, with the same meaning per partition.
        """
        following = {(b.topic, b.partition) for b in batches}
        closed = [b for b in written if (b.topic, b.partition) not in following]
        if self._commit(mark_pending(batches) + mark_done(closed), "record pending ranges"):
            self._count_done(written)
            return True
        return False

    def write(self, batches: list[Batch]) -> None:
        """Steps 2 and 3: insert every batch, send its rejected rows to the DLQ, wait for delivery.

        The rejected rows go out in the batches' order, and the first failure (in that order) is
        raised only once every batch's insert has ended."""
        if self._pool is None or len(batches) < 2:
            results = [self._write(batch) for batch in batches]
        else:
            futures = [self._pool.submit(self._write, batch) for batch in batches]
            wait(futures)
            results = [future.result() for future in futures]
        for batch, rejected in zip(batches, results, strict=True):
            for row in rejected:
                self.dead_letters.send(row)
                self.metrics.rejected.labels(row.reason).inc()
            if rejected:
                log.warning(
                    "rows rejected by ClickHouse sent to the DLQ",
                    extra={"fields": {"batch": batch.token, "rows": len(rejected)}},
                )
        self._retry(self.dead_letters.flush, "deliver DLQ records")

    def commit_done(self, batches: list[Batch]) -> None:
        """Step 4."""
        if self._commit(mark_done(batches), "commit offsets"):
            self._count_done(batches)

    def _count_done(self, batches: Sequence[Batch]) -> None:
        if batches:
            self.metrics.batches.inc(len(batches))
            self.metrics.rows.inc(sum(len(b.records) for b in batches))
            self.metrics.last_flush.set(time.time())

    def _write(self, batch: Batch) -> list[Rejected]:
        def attempt() -> list[Rejected]:
            with self.metrics.insert_seconds.time():
                return self.writer.write(batch)

        rejected: list[Rejected] = self._retry(attempt, f"insert {batch.token}")
        return rejected

    def _commit(self, offsets: list[TopicPartition], what: str) -> bool:
        """Commit synchronously, retrying transient errors; False if the partitions are no longer ours."""
        try:
            self._retry(lambda: _check(self.consumer.commit(offsets=offsets, asynchronous=False)), what)
        except KafkaException as exc:
            log.warning("%s: partitions moved to another consumer (%s)", what, exc.args[0])
            return False
        return True

    def _retry(self, action: Callable[[], Any], what: str) -> Any:
        delay = 0.1
        while True:
            try:
                result = action()
            except KafkaException as exc:
                if exc.args[0].code() in _LOST_OWNERSHIP or exc.args[0].fatal():
                    raise
                self._failed(what, exc)
            except (TransientWriteError, OSError) as exc:
                self._failed(what, exc)
            else:
                self.failing_since = None
                return result
            if self.stop.wait(delay):
                raise Stopped(what)
            delay = min(delay * 2, self.retry_max_seconds)

    def _failed(self, what: str, exc: BaseException) -> None:
        self.metrics.retries.inc()
        if self.failing_since is None:
            self.failing_since = time.monotonic()
        log.warning("%s failed, retrying: %s", what, exc)


def _check(result: list[TopicPartition] | None) -> None:
    for tp in result or []:
        if tp.error is not None:
            raise KafkaException(tp.error)
