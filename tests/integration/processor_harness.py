"""Helpers for the processor's integration tests: run `tickpipe processor` as a real process,
write raw messages into Kafka, and read topics back the way the sink does (read_committed)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from tickpipe.process import free_port, log_tail, spawn, stop_pid

RawRecord = tuple[bytes | None, bytes | None, list[tuple[str, str | bytes | None]]]  # key, value, headers


@dataclass
class Record:
    key: bytes | None
    value: bytes
    headers: dict[str, bytes]
    partition: int
    offset: int

    def json(self) -> Any:
        return orjson.loads(self.value)


@dataclass
class RunningProcessor:
    process: subprocess.Popen[bytes]
    log: Path
    metrics_port: int

    def get(self, path: str) -> tuple[int, str]:
        url = f"http://127.0.0.1:{self.metrics_port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return int(response.status), response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()
        except OSError:
            return 0, ""

    def health(self) -> dict[str, Any] | None:
        status, body = self.get("/healthz")
        return orjson.loads(body) if status in (200, 503) else None

    def metric(self, name: str, **labels: str) -> float | None:
        """One sample's value from /metrics (None when absent)."""
        _, text = self.get("/metrics")
        wanted = name + ("{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}" if labels else "")
        for line in text.splitlines():
            if line.startswith(wanted + " "):
                return float(line.rsplit(" ", 1)[1])
        return None

    def alive(self) -> bool:
        return self.process.poll() is None

    def terminate(self, timeout: float = 60) -> int:
        """SIGTERM and wait: the processor finishes its transaction and exits."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def kill9(self) -> None:
        self.process.kill()
        self.process.wait(10)

    def tail(self) -> str:
        return log_tail(self.log, 40)


@contextmanager
def run_processor(
    bootstrap: str,
    raw_topic: str,
    filtered_topic: str,
    workdir: Path,
    group: str,
    instance: str = "p1",
    extra_env: Mapping[str, str] | None = None,
) -> Iterator[RunningProcessor]:
    """Start `tickpipe processor` with an explicit environment; always stopped afterwards."""
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", str(workdir)),
        "TICKPIPE_HOME": str(workdir / "home"),
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "RAW_TOPIC": raw_topic,
        "FILTERED_TOPIC": filtered_topic,
        "PROCESSOR_GROUP_ID": group,
        "PROCESSOR_INSTANCE_ID": instance,
        "METRICS_PORT": str(port),
        "LOG_FORMAT": "json",
        **(extra_env or {}),
    }
    log = workdir / f"processor-{instance}-{uuid.uuid4().hex[:6]}.log"
    process = spawn([sys.executable, "-m", "tickpipe_cli", "processor"], log, env=env)
    try:
        yield RunningProcessor(process, log, port)
    finally:
        if process.poll() is None:
            stop_pid(process.pid, 30)
        process.wait(10)


def produce_raw(bootstrap: str, topic: str, records: Iterable[RawRecord]) -> int:
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 20})
    count = 0
    for key, value, headers in records:
        while True:
            try:
                producer.produce(topic, value, key, headers=headers)
                break
            except BufferError:
                producer.poll(0.1)
        count += 1
        if count % 10_000 == 0:
            producer.poll(0)
    assert producer.flush(60) == 0, "raw messages were not all delivered"
    return count


def _partitions(consumer: Consumer, topic: str) -> list[TopicPartition]:
    metadata = consumer.list_topics(topic, timeout=10).topics[topic]
    return [TopicPartition(topic, p) for p in sorted(metadata.partitions)]


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"probe-{uuid.uuid4().hex}"})
    try:
        return {
            tp.partition: consumer.get_watermark_offsets(tp, timeout=10)[1]
            for tp in _partitions(consumer, topic)
        }
    finally:
        consumer.close()


def committed_offsets(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        found = consumer.committed(_partitions(consumer, topic), timeout=10)
        return {tp.partition: max(tp.offset, 0) for tp in found}
    finally:
        consumer.close()


def all_committed(bootstrap: str, group: str, topic: str) -> bool:
    """True when the group's committed offsets reached the end of every partition of `topic`.

    False while the broker answers with a retriable error (a coordinator still moving)."""
    try:
        return committed_offsets(bootstrap, group, topic) == end_offsets(bootstrap, topic)
    except KafkaException as exc:
        if not_yet(exc.args[0]):
            return False
        raise


def not_yet(error: KafkaError) -> bool:
    """An error that asking again later answers: a coordinator moving, or offsets held unstable by
    an open transaction of a killed instance (librdkafka retries those until its timeout)."""
    return error.retriable() or error.code() in (KafkaError.NOT_COORDINATOR, KafkaError._TIMED_OUT)


def read_topic(bootstrap: str, topic: str, timeout: float = 60) -> list[Record]:
    """Every committed record of `topic`, read from the start to the current end."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{uuid.uuid4().hex}",
            "isolation.level": "read_committed",
            "enable.partition.eof": True,
            "enable.auto.commit": False,
        }
    )
    records: list[Record] = []
    try:
        partitions = _partitions(consumer, topic)
        consumer.assign([TopicPartition(topic, tp.partition, 0) for tp in partitions])
        at_end: set[int] = set()
        deadline = time.monotonic() + timeout
        while len(at_end) < len(partitions):
            assert time.monotonic() < deadline, f"reading {topic} took over {timeout} s"
            for message in consumer.consume(5_000, 1.0):
                error = message.error()
                if error is not None:
                    at_end.add(message.partition() or 0)
                    continue
                at_end.discard(message.partition() or 0)
                records.append(
                    Record(
                        message.key(),
                        message.value() or b"",
                        _headers(message.headers()),
                        message.partition() or 0,
                        message.offset() or 0,
                    )
                )
    finally:
        consumer.close()
    return records


def _headers(headers: Any) -> dict[str, bytes]:
    return {str(name): bytes(value or b"") for name, value in (headers or [])}
