"""The processor service's wiring: topics, metrics and /healthz, signals, and the exactly-once loop."""

from __future__ import annotations

import logging
import signal
import threading

from confluent_kafka import KafkaException

from tickpipe.kafka import ensure_topics
from tickpipe.metrics import MetricsServer
from tickpipe_processor.loop import FatalError, Processor
from tickpipe_processor.metrics import ProcessorMetrics
from tickpipe_processor.rules import Rules
from tickpipe_processor.settings import ProcessorSettings

log = logging.getLogger("tickpipe_processor")


def serve(settings: ProcessorSettings, rules: Rules) -> int:
    """Create the topics, start metrics, run the loop until SIGTERM/SIGINT; the exit code."""
    log.info(
        "processor starting",
        extra={"fields": {"settings": settings.effective(), "rules": rules.model_dump(mode="json")}},
    )
    try:
        ensure_topics(settings.kafka_config(), settings.topic_partitions())
    except (KafkaException, TimeoutError) as exc:
        log.error("Kafka is not reachable", extra={"fields": {"error": str(exc)}})
        return 1
    metrics = ProcessorMetrics()
    processor = Processor(settings, rules, metrics)
    stop = threading.Event()

    def request_stop(signum: int, _frame: object) -> None:
        log.info("stop requested", extra={"fields": {"signal": signal.Signals(signum).name}})
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    server = None
    if settings.metrics_port:
        server = MetricsServer(
            metrics.registry, processor.health, host=settings.metrics_host, port=settings.metrics_port
        ).start()
        log.info("metrics on :%d", server.port)
    try:
        processor.run(stop)
    except (FatalError, KafkaException) as exc:
        log.error("processor cannot go on", extra={"fields": {"error": str(exc)}})
        return 1
    finally:
        if server is not None:
            server.stop()
    log.info("processor stopped")
    return 0
