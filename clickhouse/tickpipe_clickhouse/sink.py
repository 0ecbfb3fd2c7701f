"""`tickpipe sink`: FILTERED_TOPIC -> ClickHouse, exactly once.

The loop: consume (read_committed) into a Batcher; when rows, bytes or the oldest row's age say so,
flush: (1) commit each batch's range as pending metadata, (2) insert each partition batch with its
token, retrying transient failures with back-off, (3) send rejected rows to the DLQ, (4) commit the
next offsets. A crash anywhere repeats at most the pending batches, cut identically (batching.py),
and ClickHouse drops the repeats. SIGTERM flushes what is buffered and exits 0.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from tickpipe_clickhouse.batching import Batch, Batcher, parse_pending
from tickpipe_clickhouse.dlq import DeadLetters
from tickpipe_clickhouse.sink_metrics import SinkMetrics
from tickpipe_clickhouse.writer import Rejected, TransientWriteError, Writer

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


class Sink:
    def __init__(
        self,
        consumer: Consumer,
        topic: str,
        writer: Writer,
        dead_letters: DeadLetters,
        batcher: Batcher,
        metrics: SinkMetrics,
        retry_max_seconds: float = 30.0,
        stop: threading.Event | None = None,
    ):
        self.consumer = consumer
        self.topic = topic
        self.writer = writer
        self.dead_letters = dead_letters
        self.batcher = batcher
        self.metrics = metrics
        self.retry_max_seconds = retry_max_seconds
        self.stop = stop or threading.Event()
        self.failing_since: float | None = None
        self.last_loop = time.monotonic()

    # --- health -----------------------------------------------------------------------------------

    def health(self) -> tuple[bool, dict[str, object]]:
        stalled = time.monotonic() - self.last_loop > 60
        failing = self.failing_since is not None and time.monotonic() - self.failing_since > 30
        return not (stalled or failing), {
            "buffered_rows": self.batcher.rows,
            "writes_failing_for_s": round(time.monotonic() - self.failing_since, 1)
            if self.failing_since
            else 0,
        }

    # --- the loop ---------------------------------------------------------------------------------

    def run(self) -> None:
        self.consumer.subscribe([self.topic], on_assign=self._on_assign, on_revoke=self._on_revoke)
        try:
            while not self.stop.is_set():
                self.last_loop = time.monotonic()
                wait = min(0.2, self.batcher.seconds_until_due())
                messages = self.consumer.consume(num_messages=min(self.batcher.room(), 10_000), timeout=wait)
                for message in messages:
                    error = message.error()
                    if error is None:
                        self.batcher.add(message)
                    elif error.fatal():
                        raise KafkaException(error)
                    elif error.code() != KafkaError._PARTITION_EOF:
                        log.warning("consumer: %s", error)
                self.metrics.buffered.set(self.batcher.rows)
                if self.batcher.due():
                    self.flush()
            self.flush()  # graceful stop: what is buffered goes out and is committed
        except Stopped:
            log.info("stopped while retrying; the pending batches are redone at the next start")
        finally:
            self.dead_letters.close()
            self.consumer.close()

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        committed = consumer.committed(partitions, timeout=30)
        for tp in committed:
            pending = parse_pending(tp.metadata)
            if pending is not None and pending[0] != tp.offset:
                pending = None  # stale metadata from an older layout: not ours to replay
            self.batcher.assign(tp.topic, tp.partition, pending)
            if pending:
                self.metrics.replays.inc()
                log.info(
                    "redoing a pending batch",
                    extra={"fields": {"partition": tp.partition, "first": pending[0], "last": pending[1]}},
                )

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            self.batcher.revoke(tp.topic, tp.partition)

    # --- one flush --------------------------------------------------------------------------------

    def flush(self) -> None:
        batches = self.batcher.take()
        if not batches:
            return
        if not self._commit([_pending(b) for b in batches], "record pending ranges"):
            return
        for batch in batches:
            rejected = self._write(batch)
            for row in rejected:
                self.dead_letters.send(row)
                self.metrics.rejected.labels(row.reason).inc()
            if rejected:
                log.warning(
                    "rows rejected by ClickHouse sent to the DLQ",
                    extra={"fields": {"batch": batch.token, "rows": len(rejected)}},
                )
        self._retry(self.dead_letters.flush, "deliver DLQ records")
        if self._commit([_done(b) for b in batches], "commit offsets"):
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


def _pending(batch: Batch) -> TopicPartition:
    return TopicPartition(batch.topic, batch.partition, batch.first, metadata=batch.pending_metadata())


def _done(batch: Batch) -> TopicPartition:
    return TopicPartition(batch.topic, batch.partition, batch.last + 1, metadata="")
