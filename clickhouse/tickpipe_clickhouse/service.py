"""Wiring `tickpipe sink` together: settings -> ClickHouse, Kafka, metrics, query endpoint -> Sink.run."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

from tickpipe.kafka import ensure_topics
from tickpipe.metrics import MetricsServer
from tickpipe_clickhouse.batching import Batcher
from tickpipe_clickhouse.connect import Target, connect
from tickpipe_clickhouse.dlq import DeadLetters
from tickpipe_clickhouse.endpoint import QueryEndpoint
from tickpipe_clickhouse.migrations import migrate
from tickpipe_clickhouse.query import READ_ONLY
from tickpipe_clickhouse.settings import SinkSettings
from tickpipe_clickhouse.sink import Sink
from tickpipe_clickhouse.sink_metrics import SinkMetrics
from tickpipe_clickhouse.writer import ClickHouseWriter, Writer

log = logging.getLogger(__name__)


def consumer_config(settings: SinkSettings) -> dict[str, str]:
    static = {"group.instance.id": settings.sink_instance_id} if settings.sink_instance_id else {}
    return {
        **static,
        **settings.kafka_config(),
        "group.id": settings.sink_group_id,
        "isolation.level": "read_committed",
        "enable.auto.commit": "false",
        "enable.auto.offset.store": "false",
        "auto.offset.reset": "earliest",
        "fetch.max.bytes": str(64 * 1024 * 1024),
        "queued.max.messages.kbytes": str(256 * 1024),
    }


def run_sink(settings: SinkSettings) -> int:
    """Run until SIGTERM/SIGINT; returns the exit code."""
    from confluent_kafka import Consumer

    log.info("sink starting", extra={"fields": {"config": settings.effective()}})
    dsn = settings.clickhouse_dsn.get_secret_value()
    database = settings.clickhouse_database
    client = connect(dsn)
    migrate(client, database, settings.raw_ttl_days)
    ensure_topics(settings.kafka_config(), [settings.filtered_topic, settings.dlq()])

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("signal %s: flushing and stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    metrics = SinkMetrics()
    writer: Writer = ClickHouseWriter(client, database)
    sink = Sink(
        Consumer(consumer_config(settings)),
        settings.filtered_topic,
        writer,
        DeadLetters(settings.kafka_config(), settings.dlq()),
        Batcher(settings.sink_batch_rows, settings.sink_batch_bytes, settings.sink_batch_seconds),
        metrics,
        retry_max_seconds=settings.sink_retry_max_seconds,
        stop=stop,
    )
    server = MetricsServer(metrics.registry, sink.health, port=settings.metrics_port).start()
    endpoint = None
    target = Target(dsn)
    if target.embedded:
        reader = connect(dsn, database, settings=dict(READ_ONLY))
        endpoint = QueryEndpoint(reader, target.folder, database, settings.sink_query_port).start()
    try:
        sink.run()
    finally:
        if endpoint is not None:
            endpoint.stop()
        server.stop()
        client.close()
    log.info("sink stopped")
    return 0
