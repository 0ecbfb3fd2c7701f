"""Wiring `tickpipe sink` together: settings -> ClickHouse, Kafka, metrics, query endpoint -> Sink.run."""

from __future__ import annotations

import gc
import logging
import signal
import threading
from types import FrameType

from tickpipe import contract
from tickpipe.kafka import ensure_topics
from tickpipe.metrics import MetricsServer
from tickpipe_clickhouse.connect import Target, connect
from tickpipe_clickhouse.query.endpoint import QueryEndpoint
from tickpipe_clickhouse.query.limits import open_reader
from tickpipe_clickhouse.schema.migrations import migrate
from tickpipe_clickhouse.settings import SinkSettings
from tickpipe_clickhouse.sink.batching import Batcher
from tickpipe_clickhouse.sink.dead_letters import DeadLetters
from tickpipe_clickhouse.sink.faults import with_faults
from tickpipe_clickhouse.sink.metrics import SinkMetrics
from tickpipe_clickhouse.sink.sink import Sink
from tickpipe_clickhouse.sink.writer import ClickHouseWriter, Writer

log = logging.getLogger(__name__)


def consumer_config(settings: SinkSettings) -> dict[str, str]:
    """Tuning defaults (KAFKA_* may override them), then what exactly-once needs (nothing may)."""
    static = {"group.instance.id": settings.sink_instance_id} if settings.sink_instance_id else {}
    return {
        # Prefetch enough to keep the writer busy through one insert, no more: a preloaded topic
        # would otherwise fill the whole queue (this bounds the sink's memory; docs/clickhouse.md).
        # Against a server, batches are half the size (SinkSettings.batch_rows), and so is this.
        "fetch.max.bytes": str(16 * 1024 * 1024),
        "queued.max.messages.kbytes": str((32 if settings.embedded else 16) * 1024),
        # Fewer, fuller fetches when caught up: the broker answers once 128 KiB are there (about
        # 480 rows, ~50 ms at 10k events/s) or after 200 ms, instead of at every produced batch.
        # Under a backlog fetches are full anyway; at a trickle a row waits at most 200 ms more.
        "fetch.min.bytes": str(128 * 1024),
        "fetch.wait.max.ms": "200",
        # Once the prefetch queue is full (always, under a backlog: the batcher stops reading while
        # an insert runs), librdkafka postpones the next fetch by this long, 1 s unless set: the
        # sink then drained its queue and sat idle in consume() waiting for data (docs/benchmarks.md).
        "fetch.queue.backoff.ms": "2",
        **settings.kafka_config(),
        **static,
        "group.id": settings.sink_group_id,
        "isolation.level": "read_committed",
        "enable.auto.commit": "false",
        "enable.auto.offset.store": "false",
        "auto.offset.reset": "earliest",
    }


EMBEDDED_INSERT_SETTINGS = {"input_format_parallel_parsing": 0}


def _quiet_garbage_collector() -> None:
    """Keep Python's cycle collector out of the hot loop.

    The sink holds a batch or two of Kafka messages (hundreds of thousands of objects) for about a
    second each and makes no reference cycles while doing so; with the default thresholds the
    collector walked all of them many times a second (about 5% of the process's samples). Objects
    alive at start are frozen out of its reach and it runs 100x less often.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(70_000, 20, 20)


def run_sink(settings: SinkSettings) -> int:
    """Run until SIGTERM/SIGINT; returns the exit code."""
    from confluent_kafka import Consumer

    log.info("sink starting", extra={"fields": {"config": settings.effective()}})
    dsn = settings.clickhouse_dsn.get_secret_value()
    database = settings.clickhouse_database
    client = connect(dsn, wait_seconds=settings.sink_chdb_wait_seconds)
    migrate(client, database, settings.raw_ttl_days)
    gap_states = [settings.gap_states_topic] if settings.gap_states_topic else []
    ensure_topics(
        settings.kafka_config(),
        {**settings.topic_partitions(), settings.dlq(): 1, **dict.fromkeys(gap_states, 1)},
    )

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("signal %s: flushing and stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    metrics = SinkMetrics()
    target = Target(dsn)
    # On the embedded engine one insert parses on one thread: splitting a block across the
    # machine's few cores measured slower (docs/clickhouse.md). A server keeps its own default.
    # More sessions of the same ClickHouse: a batch's tables are inserted at once, one session each,
    # and so are the batches of different partitions (the flusher's concurrency).
    sessions = [connect(dsn) for _ in range(settings.sink_insert_sessions - 1)]
    tables_writer = ClickHouseWriter(
        client,
        database,
        EMBEDDED_INSERT_SETTINGS if target.embedded else None,
        topic_tables=dict.fromkeys(gap_states, contract.GAP_STATE_TABLE),
        sessions=sessions,
    )
    writer: Writer = with_faults(tables_writer)
    sink = Sink(
        Consumer(consumer_config(settings)),
        settings.filtered_topic,
        writer,
        DeadLetters(settings.kafka_config(), settings.dlq()),
        Batcher(settings.batch_rows(), settings.sink_batch_bytes, settings.sink_batch_seconds),
        metrics,
        retry_max_seconds=settings.sink_retry_max_seconds,
        stop=stop,
        also=gap_states,
        concurrency=settings.sink_insert_sessions,
    )
    server = MetricsServer(
        metrics.registry, sink.health, host=settings.metrics_host, port=settings.metrics_port
    ).start()
    endpoint = None
    if target.embedded:
        # One chDB session per concurrent query (a session runs one at a time), one more for KILL.
        limits = settings.query_limits()
        readers = [open_reader(dsn, database, limits) for _ in range(settings.sink_query_workers + 1)]
        endpoint = QueryEndpoint(
            readers[1:],
            target.folder,
            database,
            settings.sink_query_port,
            control=readers[0],
            max_seconds=limits.max_execution_seconds,
        ).start()
    _quiet_garbage_collector()
    try:
        sink.run()
    finally:
        if endpoint is not None:
            endpoint.stop()
            endpoint.close_readers()
        server.stop()
        tables_writer.close()
        for session in sessions:
            session.close()
        client.close()
    log.info("sink stopped")
    return 0
