"""The producer's Prometheus metrics (one registry per service instance, so tests can run several)."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge


class ProducerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.events_received = Counter(
            "tickpipe_producer_events_received", "events read from the websocket, by type", ["ev"], registry=r
        )
        self.events_produced = Counter(
            "tickpipe_producer_events_produced", "events handed to the Kafka producer", registry=r
        )
        self.malformed_frames = Counter(
            "tickpipe_producer_malformed_frames",
            "frames that were not a JSON array (published whole)",
            registry=r,
        )
        self.events_dropped = Counter(
            "tickpipe_producer_events_dropped",
            "events that could not be published (e.g. nested too deep to encode), by reason",
            ["reason"],
            registry=r,
        )
        self.delivery_errors = Counter(
            "tickpipe_producer_delivery_errors", "Kafka deliveries that failed after retries", registry=r
        )
        self.queue_bytes = Gauge(
            "tickpipe_producer_queue_bytes", "bytes waiting in the read-ahead queue", registry=r
        )
        self.queue_full = Counter(
            "tickpipe_producer_queue_full",
            "times the read-ahead queue was full and the reader waited",
            registry=r,
        )
        self.kafka_queue_full = Counter(
            "tickpipe_producer_kafka_queue_full", "times librdkafka's local queue was full", registry=r
        )
        self.reconnects = Counter("tickpipe_producer_reconnects", "websocket reconnect attempts", registry=r)
        self.connected = Gauge(
            "tickpipe_producer_connected", "1 while a websocket session is open", registry=r
        )
        self.statuses = Counter(
            "tickpipe_producer_status_messages",
            "status messages from the feed, by status",
            ["status"],
            registry=r,
        )
        self.subscriptions = Gauge("tickpipe_producer_subscriptions", "topics in force", registry=r)
        self.reloads = Counter(
            "tickpipe_producer_subscription_reloads", "CSV reloads by result", ["result"], registry=r
        )
        self.reloader_errors = Counter(
            "tickpipe_producer_subscription_reloader_errors",
            "unexpected errors in the subscriptions reloader (the last good set stays in force)",
            registry=r,
        )
        self.gaps = Counter(
            "tickpipe_producer_gaps", "websocket gaps (disconnected while subscribed)", registry=r
        )
        self.gap_seconds = Counter(
            "tickpipe_producer_gap_seconds",
            "seconds without a websocket session while subscribed",
            registry=r,
        )
        self.last_event_unix = Gauge(
            "tickpipe_producer_last_event_unix_seconds",
            "when the last event was read (Unix seconds)",
            registry=r,
        )
        self.last_event_age = Gauge(
            "tickpipe_producer_last_event_age_seconds", "seconds since the last event was read", registry=r
        )
        self._last_event = 0.0
        self.last_event_age.set_function(lambda: time.time() - self._last_event if self._last_event else -1.0)

    def saw_events(self, now: float) -> None:
        self._last_event = now
        self.last_event_unix.set(now)
