"""`tickpipe producer`: wires the feed, the read-ahead queue, the Kafka publisher and the reloader.

Threads: the main thread runs the asyncio loop (websocket reader and CSV reloader); the publisher
thread produces to Kafka; a small HTTP thread serves /metrics and /healthz.

Exit codes: 0 after SIGTERM/SIGINT with everything read delivered; 1 when Kafka delivery fails
after retries (or messages are left at the end of the grace period); 2 when the configuration or
the initial subscriptions are invalid; 3 when Polygon rejects the API key.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from tickpipe.config import ConfigError
from tickpipe.kafka import ensure_topics
from tickpipe.metrics import MetricsServer
from tickpipe_producer.feed import Backoff, Feed
from tickpipe_producer.frame_queue import FrameQueue
from tickpipe_producer.gaps import GapPublisher
from tickpipe_producer.metrics import ProducerMetrics
from tickpipe_producer.publisher import KafkaPublisher
from tickpipe_producer.reloader import InitialLoadError, Reloader, load_initial
from tickpipe_producer.resume import previous_coverage_end
from tickpipe_producer.settings import ProducerSettings
from tickpipe_producer.source import SubscriptionSource

log = logging.getLogger(__name__)

EXIT_KAFKA = 1


def run(settings: ProducerSettings) -> int:
    if not settings.polygon_api_key.get_secret_value():
        raise ConfigError("invalid configuration:\n  POLYGON_API_KEY: required for the feed")
    log.info("producer starting", extra={"fields": settings.effective()})
    source = SubscriptionSource(settings.subscriptions_uri, settings.aws_endpoint_url)
    try:
        initial = load_initial(source, settings.polygon_market)
    except InitialLoadError as exc:
        raise ConfigError(f"no good subscription set:\n{exc}") from None
    log.info("subscriptions loaded", extra={"fields": {"topics": sorted(initial.topics)}})

    ensure_topics(settings.kafka_config(), {**settings.topic_partitions(), settings.feed_gaps_topic: 1})
    gaps = GapPublisher(settings.feed_gaps_topic, settings.feed_label, settings.kafka_config())
    resumed_from = previous_coverage_end(settings.kafka_config(), settings.raw_topic, settings.feed_label)
    metrics = ProducerMetrics()
    queue = FrameQueue(settings.queue_max_bytes)
    publisher = KafkaPublisher(
        queue,
        settings.raw_topic,
        settings.feed_label,
        settings.kafka_config(),
        metrics,
        settings.delivery_timeout_seconds,
    ).start()
    feed = Feed(
        api_key=settings.polygon_api_key.get_secret_value(),
        feed=settings.polygon_feed,
        market=settings.polygon_market,
        secure=settings.polygon_secure,
        queue=queue,
        metrics=metrics,
        topics=initial.topics,
        backoff=Backoff(settings.reconnect_initial_seconds, settings.reconnect_max_seconds),
        max_reconnects=settings.max_reconnects,
        gap_started=resumed_from,
        on_gap=gaps.publish,
    )
    server = None
    if settings.metrics_port:
        server = MetricsServer(
            metrics.registry,
            lambda: (publisher.alive(), {"connected": feed.connected}),
            host=settings.metrics_host,
            port=settings.metrics_port,
        ).start()
    try:
        code = asyncio.run(_main(settings, source, initial.topics, feed, publisher, metrics))
    finally:
        left = publisher.stop(settings.shutdown_grace_seconds)
        gaps.close()
        if server:
            server.stop()
    if publisher.fatal is not None:
        log.error("stopping: %s", publisher.fatal)
        return EXIT_KAFKA
    if left:
        return EXIT_KAFKA
    log.info("producer stopped", extra={"fields": {"exit_code": code, "events_produced": publisher.produced}})
    return code


async def _main(
    settings: ProducerSettings,
    source: SubscriptionSource,
    topics: frozenset[str],
    feed: Feed,
    publisher: KafkaPublisher,
    metrics: ProducerMetrics,
) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    reloader = Reloader(
        source, settings.polygon_market, topics, feed.apply, metrics, settings.subscriptions_poll_seconds
    )
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    loop.add_signal_handler(signal.SIGHUP, reloader.request)

    async def watch_publisher() -> None:
        while not stop.is_set():
            if not publisher.alive():
                stop.set()
                return
            await asyncio.sleep(0.2)

    tasks = [asyncio.create_task(reloader.run(stop)), asyncio.create_task(watch_publisher())]
    try:
        code = await feed.run(stop)
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
    return code
