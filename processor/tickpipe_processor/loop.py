"""The transactional loop: consume a batch, process it, produce, commit it all in one transaction.

Exactly once comes from Kafka transactions: the outputs, the dead letters and the consumed
offsets are committed together or not at all, and downstream readers use `read_committed`.
A kill -9 leaves at most one open transaction, which the restarted instance aborts when
`init_transactions()` fences its old self (same transactional.id), or the broker aborts after
`PROCESSOR_TRANSACTION_TIMEOUT_MS`; the restarted consumer then resumes at the committed offsets.

One rule keeps rebalances simple: no transaction is ever open while `consume()` runs. Partitions
can only move during `consume()`, so they never move under an open transaction, and the
consumer's group metadata sent with the offsets fences a zombie instance (KIP-447).

The consumer uses static group membership (group.instance.id = PROCESSOR_INSTANCE_ID), so an
instance restarted after a crash gets its partitions back at once instead of after a session
timeout. That is also why the instance id must be unique per running instance.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicPartition

from tickpipe.contract import dlq_topic
from tickpipe_processor.batch import BatchReport, BatchStep
from tickpipe_processor.bounds import Bounds
from tickpipe_processor.filters import RuleFilter
from tickpipe_processor.metrics import ProcessorMetrics
from tickpipe_processor.rules import Rules
from tickpipe_processor.settings import ProcessorSettings

log = logging.getLogger(__name__)

_KAFKA_TIMEOUT = 60.0  # seconds for init, offsets and commit calls; they retry inside librdkafka
_LAG_EVERY = 1.0


class FatalError(RuntimeError):
    """Kafka says this instance cannot go on (fenced, misconfigured); exit non-zero and restart."""


def consumer_config(settings: ProcessorSettings) -> dict[str, Any]:
    """Tuned defaults, then KAFKA_* pass-through (which may override them), then what exactly-once
    needs (which nothing overrides)."""
    return {
        # Once caught up the broker holds each fetch until 256 KiB are ready or 100 ms passed:
        # fewer, larger fetches at low rates, no wait at all when there is a backlog.
        "fetch.wait.max.ms": 100,
        "fetch.min.bytes": 256 * 1024,
        "max.partition.fetch.bytes": 1024 * 1024,
        "fetch.max.bytes": 16 * 1024 * 1024,
        # The prefetch buffer bounds memory (peak RSS): about one 20k-message batch ahead. Once it
        # is full, librdkafka postpones the next fetch by `fetch.queue.backoff.ms`, 1 s by default:
        # under a backlog the loop drained it in a tenth of that and then waited in consume() for
        # the rest (96k msg/s with a third of the thread idle; 2 ms: ~178k, docs/benchmarks.md).
        "queued.max.messages.kbytes": 4 * 1024,
        "fetch.queue.backoff.ms": 2,
        "session.timeout.ms": 15_000,
        "auto.offset.reset": "earliest",
        **settings.kafka_config(),
        "group.id": settings.processor_group_id,
        "group.instance.id": settings.instance_id,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "isolation.level": "read_committed",
    }


def producer_config(settings: ProcessorSettings) -> dict[str, Any]:
    return {
        # The commit flushes what is queued, so a batch's outputs go in as few requests as fit
        # batch.size (a full batch goes at once); linger.ms longer than the batch wait means no
        # produce request of its own while a transaction is being filled.
        "linger.ms": 200,
        "batch.size": 1_000_000,
        "batch.num.messages": 10_000,
        "compression.type": "lz4",
        **settings.kafka_config(),
        "transactional.id": settings.transactional_id,
        "transaction.timeout.ms": settings.processor_transaction_timeout_ms,
        "queue.buffering.max.messages": max(100_000, 2 * settings.processor_batch_size),
    }


class Processor:
    """Owns the consumer and the transactional producer; `run()` until `stop` is set."""

    def __init__(self, settings: ProcessorSettings, rules: Rules, metrics: ProcessorMetrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.step = BatchStep(
            RuleFilter(rules),
            source_topic=settings.raw_topic,
            filtered_topic=settings.filtered_topic,
            dlq_topic=dlq_topic(settings.raw_topic),
            max_message_bytes=settings.processor_max_message_bytes,
            bounds=Bounds(settings.event_time_min_ms, settings.processor_event_time_ahead_s),
        )
        self.last_loop = time.monotonic()
        self.assigned: list[int] = []
        self._lag_at = 0.0

    def health(self) -> tuple[bool, dict[str, object]]:
        age = time.monotonic() - self.last_loop
        return age < 60, {"last_loop_age_s": round(age, 1), "partitions": self.assigned}

    def run(self, stop: threading.Event) -> None:
        settings = self.settings
        producer = Producer(producer_config(settings))
        log.info(
            "initialising transactions", extra={"fields": {"transactional_id": settings.transactional_id}}
        )
        producer.init_transactions(_KAFKA_TIMEOUT)
        consumer = Consumer(consumer_config(settings))
        consumer.subscribe(
            [settings.raw_topic],
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_revoke,
        )
        # Every message allocates container objects (header lists and tuples). The cyclic collector
        # would otherwise run every 700 of them and rescan what is alive; what exists after start-up
        # is frozen out of its view and it runs far less often (reference counting frees the rest).
        gc.collect()
        gc.freeze()
        gc.set_threshold(100_000, 50, 100)
        timeout = settings.processor_batch_ms / 1000
        try:
            while not stop.is_set():
                self.last_loop = time.monotonic()
                messages = consumer.consume(settings.processor_batch_size, timeout)
                if messages:
                    self._transact(consumer, producer, messages)
                self._update_lag(consumer)
        finally:
            log.info("stopping: closing the consumer")
            consumer.close()
            producer.flush(10)

    def _transact(self, consumer: Consumer, producer: Producer, messages: list[Any]) -> None:
        started = time.perf_counter()
        report: BatchReport | None = None
        producer.begin_transaction()
        try:
            report = self.step.run(messages, producer.produce)
            _raise_fatal(report)
            # The consumer's position is one past the last message consume() returned.
            offsets = [tp for tp in consumer.position(consumer.assignment()) if tp.offset >= 0]
            producer.send_offsets_to_transaction(offsets, consumer.consumer_group_metadata(), _KAFKA_TIMEOUT)
            _commit(producer)
        except KafkaException as exc:
            error: KafkaError = exc.args[0]
            if error.fatal() or not error.txn_requires_abort():
                raise FatalError(f"Kafka transaction failed: {error}") from None
            self._abort(consumer, producer, error)
            return
        assert report is not None
        self.step.commit()
        self.metrics.record(report, time.perf_counter() - started)

    def _abort(self, consumer: Consumer, producer: Producer, error: KafkaError) -> None:
        """Abort, undo the rules' memory, and rewind to the committed offsets (where this batch
        began), so the same messages are processed again."""
        log.warning("aborting transaction", extra={"fields": {"error": str(error)}})
        producer.abort_transaction(_KAFKA_TIMEOUT)
        self.step.rollback()
        self.metrics.aborted.inc()
        for tp in consumer.committed(consumer.assignment(), _KAFKA_TIMEOUT):
            if tp.offset >= 0:
                consumer.seek(tp)
            else:  # nothing committed yet: back to where auto.offset.reset starts
                consumer.seek(TopicPartition(tp.topic, tp.partition, OFFSET_BEGINNING))

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        numbers = [tp.partition for tp in partitions]
        self.step.forget(numbers)  # memory starts empty: another instance may have had them
        self.assigned = sorted(set(self.assigned) | set(numbers))
        self.metrics.assigned.set(len(self.assigned))
        log.info("partitions assigned", extra={"fields": {"partitions": numbers}})

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        numbers = [tp.partition for tp in partitions]
        self.step.forget(numbers)
        self.assigned = sorted(set(self.assigned) - set(numbers))
        self.metrics.assigned.set(len(self.assigned))
        self.metrics.lag.clear()  # the partitions still assigned are set again within a second
        log.info("partitions revoked", extra={"fields": {"partitions": numbers}})

    def _update_lag(self, consumer: Consumer) -> None:
        now = time.monotonic()
        if now - self._lag_at < _LAG_EVERY or not self.assigned:
            return
        self._lag_at = now
        topic = self.settings.raw_topic
        positions = consumer.position([TopicPartition(topic, p) for p in self.assigned])
        for tp in positions:
            low, high = consumer.get_watermark_offsets(tp, cached=True)
            if high < 0:
                continue  # no fetch answer for this partition yet
            if tp.offset >= 0:
                self.metrics.lag.labels(str(tp.partition)).set(max(0, high - tp.offset))
            elif high == low:
                self.metrics.lag.labels(str(tp.partition)).set(0)  # an empty partition


def _commit(producer: Producer) -> None:
    """commit_transaction, retried while the error is retriable (a broker hiccup)."""
    while True:
        try:
            producer.commit_transaction(_KAFKA_TIMEOUT)
            return
        except KafkaException as exc:
            if not exc.args[0].retriable():
                raise
            log.warning("retrying transaction commit", extra={"fields": {"error": str(exc.args[0])}})


def _raise_fatal(report: BatchReport) -> None:
    for error in report.errors:
        if error.fatal():
            raise FatalError(f"Kafka consumer error: {error}")
        log.warning("consumer error", extra={"fields": {"error": str(error)}})
