"""The sink DLQ (`<FILTERED_TOPIC>.dlq`): rows ClickHouse rejected, with the reason.

Same record shape as every tickpipe DLQ (tickpipe/contract.py, docs/architecture.md): the original
key, value and headers, plus the reason, the detail and where the record came from.
Delivery is at least once: a crash between DLQ delivery and the offset commit repeats the record.
"""

from __future__ import annotations

from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from tickpipe.contract import HeaderValue, dead_letter_headers
from tickpipe_clickhouse.sink.writer import Rejected


class DlqError(RuntimeError):
    """The DLQ did not acknowledge a record; offsets must not be committed."""


def dlq_headers(rejected: Rejected) -> list[tuple[str, HeaderValue]]:
    record = rejected.record
    original = record.headers() or []
    pairs = list(original.items()) if isinstance(original, dict) else list(original)
    return dead_letter_headers(
        pairs, rejected.reason, rejected.detail, record.topic() or "", record.partition(), record.offset()
    )


class DeadLetters:
    """Sends rejected rows and waits for the broker's acknowledgement before the sink commits."""

    def __init__(self, config: dict[str, str], topic: str):
        self.topic = topic
        self._producer = Producer({**config, "enable.idempotence": "true", "linger.ms": "20"})
        self._errors: list[str] = []

    def send(self, rejected: Rejected) -> None:
        record = rejected.record
        self._producer.produce(
            self.topic,
            key=record.key(),
            value=record.value(),
            headers=dlq_headers(rejected),
            on_delivery=self._delivered,
        )
        self._producer.poll(0)

    def flush(self, timeout: float = 30.0) -> None:
        remaining = self._producer.flush(timeout)
        errors, self._errors = self._errors, []
        if remaining or errors:
            raise DlqError(f"DLQ {self.topic}: {remaining} undelivered, errors: {errors[:3]}")

    def _delivered(self, error: KafkaError | None, message: Message) -> None:
        if error is not None:
            self._errors.append(str(error))

    def close(self) -> None:
        self._producer.flush(10)

    def __enter__(self) -> DeadLetters:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
