"""Prometheus metrics of the sink (served with /healthz on METRICS_PORT, default 9103)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class SinkMetrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.rows = Counter("tickpipe_sink_rows", "rows handed to ClickHouse and acknowledged", registry=r)
        self.batches = Counter("tickpipe_sink_batches", "partition batches committed", registry=r)
        self.replays = Counter(
            "tickpipe_sink_replayed_batches", "pending ranges rebuilt after a restart", registry=r
        )
        self.rejected = Counter(
            "tickpipe_sink_dlq_rows", "rows ClickHouse rejected, sent to the DLQ", ["reason"], registry=r
        )
        self.retries = Counter("tickpipe_sink_write_retries", "transient write failures retried", registry=r)
        self.insert_seconds = Histogram(
            "tickpipe_sink_insert_seconds",
            "time to insert one partition batch",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.lag = Gauge(
            "tickpipe_sink_consumer_lag",
            "messages between the consumer's position and the partition's end",
            ["partition"],
            registry=r,
        )
        self.buffered = Gauge("tickpipe_sink_buffered_rows", "rows waiting for the next flush", registry=r)
        self.last_flush = Gauge(
            "tickpipe_sink_last_flush_timestamp_seconds", "Unix time of the last committed flush", registry=r
        )
