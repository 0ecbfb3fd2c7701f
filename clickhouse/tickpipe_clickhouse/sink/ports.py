"""What the sink needs of its neighbours, as Protocols: the Kafka consumer and the dead-letter queue.

The real ones are confluent_kafka.Consumer and dead_letters.DeadLetters; the unit tests pass fakes
(tests/unit/test_ch_sink_loop.py). The writer's Protocol lives beside its implementation (writer.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal, Protocol

from confluent_kafka import KafkaError, TopicPartition

from tickpipe_clickhouse.sink.batching import Record
from tickpipe_clickhouse.sink.writer import Rejected

Rebalance = Callable[[Any, list[TopicPartition]], None]


class ConsumedRecord(Record, Protocol):
    """A consumed message: a record, or an error event in its place."""

    def error(self) -> KafkaError | None: ...


class SinkConsumer(Protocol):
    """The parts of confluent_kafka.Consumer the sink calls (all from its consumer thread)."""

    def subscribe(self, topics: list[str], on_assign: Rebalance, on_revoke: Rebalance) -> None: ...
    def consume(self, num_messages: int, timeout: float) -> Sequence[ConsumedRecord]: ...
    def committed(self, partitions: list[TopicPartition], timeout: float) -> list[TopicPartition]: ...
    def commit(
        self, *, offsets: list[TopicPartition], asynchronous: Literal[False]
    ) -> list[TopicPartition]: ...
    def assignment(self) -> list[TopicPartition]: ...
    def position(self, partitions: list[TopicPartition]) -> list[TopicPartition]: ...
    def get_watermark_offsets(self, partition: TopicPartition, *, cached: bool = ...) -> tuple[int, int]: ...
    def close(self) -> None: ...


class DeadLetterSink(Protocol):
    """Where rows ClickHouse rejected go; flush() returns only once the broker has them all."""

    def send(self, rejected: Rejected) -> None: ...
    def flush(self) -> None: ...
    def close(self) -> None: ...
