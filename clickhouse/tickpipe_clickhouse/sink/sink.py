"""`tickpipe sink`: FILTERED_TOPIC -> ClickHouse, exactly once.

The consumer thread consumes (read_committed) into a Batcher. When rows, bytes or the oldest row's
age say so and no write is in flight, it cuts one batch per partition, commits their ranges as
pending (flusher.py), and hands the inserts to a writer thread; then it goes on consuming. When the
write has finished it commits the next offsets. So the next batch is read while ClickHouse stores
this one (chDB and the HTTP client release the GIL during a query), and under load batches grow by
themselves: everything that arrived during an insert goes into the next one, which keeps inserts
large and latency bounded by one insert plus the time bound. A finished write's offsets wait for the
next batch's pending commit when that batch is due soon (within DONE_DEFER_SECONDS), so a flush
costs the broker one commit request, not two (flusher.py); with nothing buffered they go at once.
With `concurrency` above 1 the partitions' batches of one flush are inserted at the same time.

Every consumer call stays on the consumer thread. Rebalances first finish the write in flight, so
the offsets a new owner reads are final. SIGTERM flushes what is buffered and exits 0.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from confluent_kafka import KafkaError, KafkaException, TopicPartition

from tickpipe_clickhouse.sink.batching import Batch, Batcher
from tickpipe_clickhouse.sink.flusher import Flusher, Stopped
from tickpipe_clickhouse.sink.metrics import SinkMetrics
from tickpipe_clickhouse.sink.ports import ConsumedRecord, DeadLetterSink, SinkConsumer
from tickpipe_clickhouse.sink.state import load_pending
from tickpipe_clickhouse.sink.writer import Writer

log = logging.getLogger(__name__)

POLL_SECONDS = 0.2  # longest wait in consume(): how quickly a stop or a due flush is noticed
LAG_EVERY_SECONDS = 5.0  # how often the lag gauge is refreshed (Prometheus scrapes every 15-30 s)
BUSY_POLL_SECONDS = 0.02  # the same while a write is in flight: its end is noticed this soon
DONE_DEFER_SECONDS = 1.0  # a written batch's offsets wait at most this long for the next pending commit


class Sink:
    def __init__(
        self,
        consumer: SinkConsumer,
        topic: str,
        writer: Writer,
        dead_letters: DeadLetterSink,
        batcher: Batcher,
        metrics: SinkMetrics,
        retry_max_seconds: float = 30.0,
        stop: threading.Event | None = None,
        also: Sequence[str] = (),
        concurrency: int = 1,
    ):
        self.consumer = consumer
        self.topic = topic
        self.topics = [topic, *also]  # `also`: topics written to one table each (writer.topic_tables)
        self.writer = writer
        self.dead_letters = dead_letters
        self.batcher = batcher
        self.metrics = metrics
        self.stop = stop or threading.Event()
        self.flusher = Flusher(
            consumer, writer, dead_letters, metrics, retry_max_seconds, self.stop, concurrency
        )
        self.writer_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sink-writer")
        self.in_flight: tuple[list[Batch], Future[None]] | None = None
        self.written: list[Batch] = []  # inserted (and their rejects delivered), offsets not committed yet
        self.last_loop = time.monotonic()
        self.last_lag = 0.0

    # --- health -----------------------------------------------------------------------------------

    def health(self) -> tuple[bool, dict[str, object]]:
        failing_since = self.flusher.failing_since
        stalled = time.monotonic() - self.last_loop > 60
        failing = failing_since is not None and time.monotonic() - failing_since > 30
        return not (stalled or failing), {
            "buffered_rows": self.batcher.rows,
            "writes_failing_for_s": round(time.monotonic() - failing_since, 1) if failing_since else 0,
        }

    # --- the loop ---------------------------------------------------------------------------------

    def run(self) -> None:
        self.consumer.subscribe(self.topics, on_assign=self._on_assign, on_revoke=self._on_revoke)
        try:
            while not self.stop.is_set():
                self.last_loop = time.monotonic()
                if self.in_flight is not None and self.in_flight[1].done():
                    self._collect()
                if self.in_flight is None:
                    if self.batcher.due():
                        self._start(self.batcher.take())
                    elif self.written and self.batcher.seconds_until_due() > DONE_DEFER_SECONDS:
                        self._commit_written()
                self._consume()
                self.metrics.buffered.set(self.batcher.rows)
                self._update_lag()
            self._finish()  # graceful stop: what is buffered goes out and is committed
            self._start(self.batcher.take())
            self._finish()
        except Stopped:
            log.info("stopped while retrying; the pending batches are redone at the next start")
        finally:
            self.stop.set()  # a write still retrying gives up (its range stays pending, redone at restart)
            self.writer_thread.shutdown(wait=True, cancel_futures=True)
            self.flusher.close()
            self.dead_letters.close()
            self.consumer.close()

    def _start(self, batches: list[Batch]) -> None:
        """Record the ranges as pending (closing the written batches in the same commit), then insert
        them on the writer thread."""
        if not batches:
            self._commit_written()
            return
        written, self.written = self.written, []
        if self.flusher.commit_pending(batches, written):
            self.in_flight = (batches, self.writer_thread.submit(self.flusher.write, batches))

    def _collect(self) -> None:
        """Wait for the write in flight (raising its error, e.g. Stopped); its offsets become due."""
        if self.in_flight is None:
            return
        batches, write = self.in_flight
        self.in_flight = None
        write.result()
        self.written += batches

    def _commit_written(self) -> None:
        written, self.written = self.written, []
        if written:
            self.flusher.commit_done(written)

    def _finish(self) -> None:
        """Wait for the write in flight and commit the offsets of everything written."""
        self._collect()
        self._commit_written()

    def _consume(self) -> None:
        room = self.batcher.room()
        if not room:  # full: wait for the write in flight instead of reading more
            self.stop.wait(BUSY_POLL_SECONDS)
            return
        if self.in_flight is not None:  # look again soon: its offsets are committed when it ends
            wait = BUSY_POLL_SECONDS
        else:
            wait = min(POLL_SECONDS, self.batcher.seconds_until_due())
        messages = self.consumer.consume(num_messages=min(room, 10_000), timeout=wait)
        records = [m for m in messages if m.error() is None]
        if len(records) < len(messages):
            _report_errors(messages)
        self.batcher.extend(records)

    def _update_lag(self) -> None:
        """The lag gauge, from the watermarks librdkafka cached with its last fetch (no broker call)."""
        now = time.monotonic()
        if now - self.last_lag < LAG_EVERY_SECONDS:
            return
        self.last_lag = now
        assigned = self.consumer.assignment()
        for tp in self.consumer.position(assigned) if assigned else []:
            _, high = self.consumer.get_watermark_offsets(tp, cached=True)
            if tp.offset >= 0 and high >= 0:
                self.metrics.lag.labels(str(tp.partition)).set(max(0, high - tp.offset))

    def _on_assign(self, consumer: SinkConsumer, partitions: list[TopicPartition]) -> None:
        self._finish()
        for tp, pending in load_pending(consumer.committed(partitions, timeout=30)):
            self.batcher.assign(tp.topic, tp.partition, pending)
            if pending:
                self.metrics.replays.inc()
                log.info(
                    "redoing a pending batch",
                    extra={"fields": {"partition": tp.partition, "first": pending[0], "last": pending[1]}},
                )

    def _on_revoke(self, consumer: SinkConsumer, partitions: list[TopicPartition]) -> None:
        self._finish()  # its commit is still valid while the partitions are being revoked
        for tp in partitions:
            self.batcher.revoke(tp.topic, tp.partition)
            with contextlib.suppress(KeyError):
                self.metrics.lag.remove(str(tp.partition))


def _report_errors(messages: Sequence[ConsumedRecord]) -> None:
    """Raise a fatal consumer error; log any other (they are events, not records)."""
    for message in messages:
        error = message.error()
        if error is None or error.code() == KafkaError._PARTITION_EOF:
            continue
        if error.fatal():
            raise KafkaException(error)
        log.warning("consumer: %s", error)
