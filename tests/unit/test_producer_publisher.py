"""The publisher splits frames into one message per event, keyed by symbol; failures are fatal."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from confluent_kafka import KafkaError

from tickpipe_producer.feed import Backoff
from tickpipe_producer.frame_queue import FrameQueue
from tickpipe_producer.metrics import ProducerMetrics
from tickpipe_producer.publisher import KafkaPublisher


class FakeProducer:
    """Records produce() calls; can be told to be full once."""

    def __init__(self, config: dict[str, Any]):
        self.config = config
        self.sent: list[tuple[str, bytes, str | None, list[tuple[str, bytes]]]] = []
        self.full_once = False

    def produce(self, topic: str, value: bytes, key: str | None = None, headers: Any = None) -> None:
        if self.full_once:
            self.full_once = False
            raise BufferError("queue full")
        self.sent.append((topic, value, key, headers))

    def poll(self, timeout: float = 0) -> int:
        return 0

    def flush(self, timeout: float = 0) -> int:
        return 0

    def __len__(self) -> int:
        return 0


def _publisher() -> tuple[KafkaPublisher, FakeProducer]:
    holder: dict[str, FakeProducer] = {}

    def factory(config: dict[str, Any]) -> Any:
        holder["p"] = FakeProducer(config)
        return holder["p"]

    publisher = KafkaPublisher(FrameQueue(1024), "raw", "127.0.0.1:1/stocks", {"bootstrap.servers": "x"},
                               ProducerMetrics(), producer_factory=factory)  # fmt: skip
    return publisher, holder["p"]


def test_one_message_per_event_keyed_by_symbol_with_headers() -> None:
    publisher, fake = _publisher()
    frame = orjson.dumps([
        {"ev": "status", "status": "success", "message": "subscribed to: A.AAPL"},
        {"ev": "A", "sym": "AAPL", "v": 100, "o": 1.5, "s": 1, "e": 2},
        {"ev": "XT", "pair": "BTC-USD", "p": 50000.25, "s": 0.1},
        {"ev": "T", "sym": "MSFT", "p": 300.1, "s": 5},
    ]).decode()  # fmt: skip
    assert publisher.publish(1_700_000_000_123_456_789, frame) == 3
    assert [(key, orjson.loads(value)["ev"]) for _, value, key, _ in fake.sent] == [
        ("AAPL", "A"), ("BTC-USD", "XT"), ("MSFT", "T"),
    ]  # fmt: skip
    assert orjson.loads(fake.sent[0][1]) == {"ev": "A", "sym": "AAPL", "v": 100, "o": 1.5, "s": 1, "e": 2}
    assert dict(fake.sent[0][3]) == {
        "tp.received_ns": b"1700000000123456789",
        "tp.feed": b"127.0.0.1:1/stocks",
    }


def test_each_value_is_the_events_own_bytes_from_the_frame_unchanged() -> None:
    publisher, fake = _publisher()
    first = '{"ev": "T", "sym": "AAPL", "p": 1.50, "s": 1, "big": 123456789012345678901234567890}'
    second = '{"sym":"MSFT","ev":"Q","bp":2,"x":{"nested":[1,{"a":"\\u00e9"}]}}'
    frame = f"[ {first} ,\n{second}]"
    assert publisher.publish(5, frame) == 2
    expected = [(first.encode(), "AAPL"), (second.encode(), "MSFT")]
    assert [(value, key) for _, value, key, _ in fake.sent] == expected
    assert publisher.publish(6, frame.encode()) == 2  # bytes frames alike
    assert [value for _, value, _, _ in fake.sent[2:]] == [first.encode(), second.encode()]


def test_a_frame_with_an_element_that_is_not_an_object_publishes_every_element() -> None:
    publisher, fake = _publisher()
    frame = '[{"ev":"T","sym":"AAPL","p":1,"s":1},null,"x",{"ev":"status","status":"success"}]'
    assert publisher.publish(1, frame) == 3
    assert [(value, key) for _, value, key, _ in fake.sent] == [
        (b'{"ev":"T","sym":"AAPL","p":1,"s":1}', "AAPL"), (b"null", None), (b'"x"', None),
    ]  # fmt: skip


def test_producer_is_idempotent_with_acks_all_and_reports_only_errors() -> None:
    _, fake = _publisher()
    assert fake.config["enable.idempotence"] is True
    assert fake.config["acks"] == "all"
    assert fake.config["compression.type"] in ("lz4", "zstd")
    assert fake.config["delivery.report.only.error"] is True


def test_malformed_frame_is_published_whole_not_dropped() -> None:
    publisher, fake = _publisher()
    assert publisher.publish(1, '{"ev":"A"') == 1
    assert fake.sent[0][1] == b'{"ev":"A"'
    assert fake.sent[0][2] is None


def test_full_local_queue_is_retried_not_dropped() -> None:
    publisher, fake = _publisher()
    fake.full_once = True
    assert publisher.publish(1, '[{"ev":"T","sym":"A","p":1,"s":1}]') == 1
    assert len(fake.sent) == 1


def test_delivery_failure_is_fatal() -> None:
    publisher, _ = _publisher()

    class Msg:
        def topic(self) -> str:
            return "raw"

    publisher._on_delivery(KafkaError(KafkaError._MSG_TIMED_OUT), Msg())  # type: ignore[arg-type]
    assert publisher.fatal is not None
    assert "raw" in str(publisher.fatal)


def test_frame_queue_bounds_bytes_but_always_takes_one() -> None:
    queue = FrameQueue(max_bytes=10)
    assert queue.offer((1, "x" * 50))  # an empty queue takes even a large frame
    assert not queue.offer((2, "y"))
    assert queue.drain(timeout=0) == [(1, "x" * 50)]
    assert queue.offer((2, "y" * 5))
    assert queue.offer((3, "z" * 5))
    assert not queue.offer((4, "w"))
    assert queue.bytes == 10
    assert [n for n, _ in queue.drain(timeout=0)] == [2, 3]


@pytest.mark.parametrize("attempts", [1, 5, 20])
def test_backoff_grows_with_jitter_and_is_capped(attempts: int) -> None:
    backoff = Backoff(initial=0.5, maximum=8.0)
    delays = [backoff.next_delay() for _ in range(attempts)]
    for attempt, delay in enumerate(delays):
        cap = min(8.0, 0.5 * 2**attempt)
        assert cap / 2 <= delay <= cap
    backoff.reset()
    assert backoff.next_delay() <= 0.5
