"""`tickpipe processor`: RAW_TOPIC -> validate, normalise, filter -> FILTERED_TOPIC (+ DLQ), exactly once.

Exit codes: 0 after SIGTERM/SIGINT (the open transaction is finished first), 2 for invalid
configuration or rules (every problem listed), 1 when Kafka says this instance cannot go on.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from typing import Any

from tickpipe.config import add_settings_flags, flag_overrides, load_settings
from tickpipe_processor.settings import ProcessorSettings

log = logging.getLogger("tickpipe_processor")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "processor",
        help="normalise and filter RAW_TOPIC into FILTERED_TOPIC, exactly once",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--check-rules", action="store_true", help="validate FILTER_RULES, print them, and exit (0 or 2)"
    )
    add_settings_flags(parser, ProcessorSettings)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = load_settings(ProcessorSettings, flag_overrides(args))
    from tickpipe.logs import setup_logging
    from tickpipe_processor.rules import load_rules

    setup_logging(settings.log_level, settings.log_format)
    rules = load_rules(settings.filter_rules, settings.aws_endpoint_url)
    if args.check_rules:
        print(rules.model_dump_json(indent=2))
        return 0
    return serve(settings, rules)


def serve(settings: ProcessorSettings, rules: Any) -> int:
    from confluent_kafka import KafkaException

    from tickpipe.kafka import ensure_topics
    from tickpipe.metrics import MetricsServer
    from tickpipe_processor.loop import FatalError, Processor
    from tickpipe_processor.metrics import ProcessorMetrics

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
        server = MetricsServer(metrics.registry, processor.health, port=settings.metrics_port).start()
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
