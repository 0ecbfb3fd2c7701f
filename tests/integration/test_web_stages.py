"""The console's stage table against a real broker: lag exactly as the group left it, rates and DLQ
counts from a real Prometheus exposition, and a stage that does not answer shown as down."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from prometheus_client import CollectorRegistry, Counter, generate_latest

from tests.conftest import KafkaHandle
from tickpipe.process import free_port
from tickpipe_demo.monitor import KafkaWatcher
from tickpipe_web.stages import StageReader, StageSettings

pytestmark = pytest.mark.integration


@pytest.fixture
def processor_metrics() -> Iterator[tuple[str, Counter, Counter]]:
    """A /metrics page with the processor's counters, served on loopback."""
    registry = CollectorRegistry()
    out = Counter("tickpipe_processor_messages_out", "out", registry=registry)
    dead = Counter("tickpipe_processor_dead_letters", "dlq", ["reason"], registry=registry)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = generate_latest(registry)
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/metrics", out, dead
    finally:
        server.shutdown()
        server.server_close()


def test_lag_rates_and_dead_letters_are_read_as_the_pipeline_left_them(
    kafka: KafkaHandle, new_topic: Callable[..., str], processor_metrics: tuple[str, Counter, Counter]
) -> None:
    url, out, dead = processor_metrics
    raw, filtered = new_topic("raw", partitions=2), new_topic("filtered", partitions=1)
    producer = Producer(kafka.config())
    for i in range(30):
        producer.produce(raw, b"{}", partition=i % 2)
    for _ in range(7):
        producer.produce(filtered, b"{}", partition=0)
    assert producer.flush(30) == 0
    group = f"processor-{raw}"
    committer = Consumer(kafka.config(**{"group.id": group, "enable.auto.commit": "false"}))
    committer.commit(offsets=[TopicPartition(raw, 0, 10), TopicPartition(raw, 1, 2)], asynchronous=False)
    committer.close()  # partition 0: 15 - 10 = 5 behind; partition 1: 15 - 2 = 13 behind

    nobody = f"http://127.0.0.1:{free_port()}/metrics"
    settings = StageSettings({"processor": url, "sink": nobody}, raw, filtered, group, f"sink-{raw}")
    watcher = KafkaWatcher(kafka.bootstrap)
    reader = StageReader(settings, watcher)
    try:
        out.inc(100)
        dead.labels(reason="missing_field").inc(3)
        dead.labels(reason="malformed_json").inc(1)
        first = {row["stage"]: row for row in reader.read()}
        out.inc(500)
        second = {row["stage"]: row for row in reader.read()}
        reader.settings.raw_topic = f"{raw}-never-created"
        unknown = {row["stage"]: row for row in reader.read()}
    finally:
        reader.close()
        watcher.close()
    processor, sink, producer_row = second["processor"], second["sink"], second["producer"]
    assert first["processor"]["events_per_s"] is None  # a rate needs two readings
    assert processor["up"] is True
    assert processor["total"] == 600
    assert processor["events_per_s"] > 0
    assert processor["dlq"] == 4
    assert processor["lag"] == 5 + 13
    assert sink["up"] is False  # nothing answers on its port: shown as down, not hidden
    assert sink["lag"] == 7  # a group that never committed is behind by the whole topic
    assert producer_row["up"] is False
    assert producer_row["lag"] is None
    assert unknown["processor"]["lag"] is None  # a topic that does not exist: unknown, not zero
