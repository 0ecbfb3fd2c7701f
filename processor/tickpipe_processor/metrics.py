"""The processor's Prometheus metrics, updated once per batch (never per message: too costly)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from tickpipe_processor.batch import BatchReport
from tickpipe_processor.filters import RULE_NAMES
from tickpipe_processor.invalid import DLQ_REASONS


class ProcessorMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.messages_in = Counter("tickpipe_processor_messages_in", "raw messages consumed", registry=r)
        self.messages_out = Counter(
            "tickpipe_processor_messages_out", "normalised events produced to FILTERED_TOPIC", registry=r
        )
        self.filtered = Counter(
            "tickpipe_processor_filtered", "valid events dropped, by the rule that dropped them", ["rule"],
            registry=r,
        )  # fmt: skip
        self.dead_letters = Counter(
            "tickpipe_processor_dead_letters", "raw messages sent to the DLQ, by reason", ["reason"],
            registry=r,
        )  # fmt: skip
        self.lag = Gauge(
            "tickpipe_processor_consumer_lag",
            "messages behind the partition's end",
            ["partition"],
            registry=r,
        )
        self.batch_size = Histogram(
            "tickpipe_processor_batch_messages", "messages per transaction",
            buckets=(1, 10, 100, 1_000, 5_000, 10_000, 20_000, 50_000, 100_000), registry=r,
        )  # fmt: skip
        self.transaction_seconds = Histogram(
            "tickpipe_processor_transaction_seconds", "time to process and commit one batch",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10), registry=r,
        )  # fmt: skip
        self.aborted = Counter(
            "tickpipe_processor_transactions_aborted", "transactions aborted and retried", registry=r
        )
        self.assigned = Gauge("tickpipe_processor_partitions", "input partitions assigned", registry=r)
        for rule in RULE_NAMES:
            self.filtered.labels(rule)  # every series exists from the start (alerts see zero, not absent)
        for reason in DLQ_REASONS:
            self.dead_letters.labels(reason)

    def record(self, report: BatchReport, seconds: float) -> None:
        self.messages_in.inc(report.consumed)
        self.messages_out.inc(report.produced)
        for rule, count in report.filtered.items():
            self.filtered.labels(rule).inc(count)
        for reason, count in report.dead.items():
            self.dead_letters.labels(reason).inc(count)
        self.batch_size.observe(report.consumed)
        self.transaction_seconds.observe(seconds)
