"""Frames from the read-ahead queue -> one Kafka message per event on RAW_TOPIC.

Each Polygon event object becomes one message: key = its symbol (`sym`, or `pair` for crypto and
forex), value = the event's own bytes cut from the frame (not decoded and re-encoded), headers
`tp.received_ns` and `tp.feed`. Status messages are not published. A frame that is not a JSON
array is published whole with no key, so the processor dead-letters it with the reason and nothing
is silently lost. A frame whose elements are not all objects takes a slower path that decodes it
and re-encodes each event (compact JSON); there an event orjson cannot encode (nested deeper than
255 levels) is a counted drop (`tickpipe_producer_events_dropped{reason}`) with a log line, and the
other events of its frame are published. A key that is not a string is replaced by none.

The Kafka producer is idempotent with acks=all; librdkafka retries a failed delivery until
`delivery_timeout_seconds`; a delivery that still fails is counted, logged and fatal.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import msgspec
import orjson
from confluent_kafka import KafkaError, Message, Producer

from tickpipe import contract
from tickpipe_producer.frame_queue import FrameQueue
from tickpipe_producer.metrics import ProducerMetrics

log = logging.getLogger(__name__)

RECEIVED_HEADER = contract.RECEIVED_NS
FEED_HEADER = contract.FEED
Headers = dict[str, str | bytes | None]
# Event kinds counted by name in events_received; any other `ev` is counted as `other` (a label per
# arbitrary value would let the feed grow the metrics without bound).
_KINDS = frozenset(
    {*contract.FAMILY_OF_EV, "LULD", "NOI", "FMV", "V", "EC", "AT", "CAS", "C", "XL2", "unknown"}
)


class _Head(msgspec.Struct):
    """What the publisher reads of an event: its kind and its key. Every other field is skipped."""

    ev: Any = "unknown"
    sym: Any = None
    pair: Any = None


_decode_heads = msgspec.json.Decoder(list[_Head]).decode
_decode_values = msgspec.json.Decoder(list[msgspec.Raw]).decode


class DeliveryFailed(RuntimeError):
    """Kafka did not take a message within the retry window; the producer stops (exit 1)."""


def producer_config(kafka: dict[str, str], delivery_timeout_seconds: float) -> dict[str, Any]:
    """librdkafka settings: safe (idempotent, acks=all) and tuned for throughput (lz4, big batches).

    `linger.ms` is the longest a message waits for its batch: at high rates batches fill long
    before it (they go when full), at low rates it sets how many produce requests the broker
    serves per second. The local queue bounds memory in overload (then the read-ahead queue
    fills and the websocket read waits)."""
    return {
        **kafka,
        "enable.idempotence": True,
        "acks": "all",
        "compression.type": "lz4",
        "linger.ms": 25,
        "batch.size": 1_000_000,
        "batch.num.messages": 100_000,
        # ~0.4 s at 250k events/s: bounds memory (each queued message costs its value, its two
        # headers and librdkafka's ~200 bytes of bookkeeping)
        "queue.buffering.max.messages": 100_000,
        "queue.buffering.max.kbytes": 16_384,
        "message.timeout.ms": int(delivery_timeout_seconds * 1000),
        "delivery.report.only.error": True,  # success is counted without a Python callback per message
        "statistics.interval.ms": 0,
    }


class KafkaPublisher:
    """Runs in its own thread: drains the queue, produces, serves delivery callbacks."""

    def __init__(
        self,
        queue: FrameQueue,
        topic: str,
        feed_label: str,
        kafka: dict[str, str],
        metrics: ProducerMetrics,
        delivery_timeout_seconds: float = 60.0,
        producer_factory: Callable[[dict[str, Any]], Producer] = Producer,
    ):
        self.queue = queue
        self.topic = topic
        self.feed = feed_label.encode()
        self.metrics = metrics
        config = producer_config(kafka, delivery_timeout_seconds)
        config["on_delivery"] = self._on_delivery
        config["error_cb"] = self._on_error
        self.producer = producer_factory(config)
        self.fatal: BaseException | None = None
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kafka-publisher", daemon=True)
        self._produced = 0

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> KafkaPublisher:
        self._thread.start()
        return self

    @property
    def produced(self) -> int:
        """Events handed to Kafka so far (each delivered, or reported as a fatal failure)."""
        return self._produced

    def alive(self) -> bool:
        return self._thread.is_alive() and self.fatal is None

    def stop(self, grace_seconds: float) -> int:
        """Publish what is queued, flush within `grace_seconds`; return messages left undelivered."""
        deadline = time.monotonic() + grace_seconds
        self._stopping.set()
        self._thread.join(max(0.0, deadline - time.monotonic()))
        if self._thread.is_alive():
            log.error(
                "publisher did not drain the queue within the grace period",
                extra={"fields": {"frames_left": len(self.queue)}},
            )
            return len(self.queue) + len(self.producer)
        left = int(self.producer.flush(max(0.0, deadline - time.monotonic())))
        if left:
            log.error(
                "Kafka flush incomplete at the end of the grace period",
                extra={"fields": {"undelivered": left}},
            )
        return left

    # --- the loop ----------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while self.fatal is None:
                frames = self.queue.drain(timeout=0.05)
                self.metrics.queue_bytes.set(self.queue.bytes)
                if not frames:
                    self.producer.poll(0)
                    if self._stopping.is_set():
                        return
                    continue
                for received_ns, frame in frames:
                    try:
                        self.publish(received_ns, frame)
                    except DeliveryFailed:
                        raise
                    except Exception as exc:
                        self._drop("unpublishable_frame", f"{type(exc).__name__}: {exc}")
                self.producer.poll(0)
        except BaseException as exc:  # a bug here must stop the service, not die quietly in a thread
            log.exception("publisher failed")
            self.fatal = exc

    def publish(self, received_ns: int, frame: str | bytes) -> int:
        """Produce every event of one frame; returns how many were produced. This is the hot loop.

        The fast path splits the frame without decoding the events: msgspec reads each element's
        `ev`, `sym` and `pair` (skipping every other field in C) and, in a second pass, each
        element's exact bytes, which become the message value unchanged. A frame that path does not
        take (an element that is not an object, `ev`/`sym`/`pair` nested too deep for msgspec,
        invalid JSON) goes through the decode-and-re-encode path, which handles every case.
        """
        headers: Headers = {RECEIVED_HEADER: str(received_ns).encode(), FEED_HEADER: self.feed}
        try:
            heads = _decode_heads(frame)
            values = _decode_values(frame)
        except (msgspec.DecodeError, RecursionError):
            return self._publish_decoded(received_ns, frame, headers)
        produce, topic = self.producer.produce, self.topic
        kinds: dict[str, int] = {}
        produced = 0
        for head, value in zip(heads, values, strict=True):
            kind = head.ev
            if kind == "status":
                continue
            key = head.sym or head.pair
            if type(key) is not str:
                key = None
            data = bytes(value)
            try:
                produce(topic, data, key, headers=headers)
            except BufferError:
                self._produce(data, key, headers)
            label = kind if type(kind) is str and kind in _KINDS else "other"
            kinds[label] = kinds.get(label, 0) + 1
            produced += 1
        return self._count(received_ns, kinds, produced)

    def _publish_decoded(self, received_ns: int, frame: str | bytes, headers: Headers) -> int:
        """The general path: decode the frame, re-encode each event (compact JSON)."""
        try:
            events = orjson.loads(frame)
            if not isinstance(events, list):
                raise TypeError("frame is not a JSON array")
        except (orjson.JSONDecodeError, TypeError):
            self.metrics.malformed_frames.inc()
            log.warning(
                "malformed frame published whole for the processor's DLQ",
                extra={"fields": {"bytes": len(frame)}},
            )
            self._produce(frame.encode() if isinstance(frame, str) else frame, None, headers)
            return 1
        dumps = orjson.dumps
        kinds: dict[str, int] = {}
        produced = 0
        for event in events:
            try:
                kind = event["ev"]
                key = event.get("sym") or event.get("pair")
            except (TypeError, KeyError, AttributeError):  # not an event object: the processor DLQs it
                kind, key = "unknown", None
            if kind == "status":
                continue
            try:
                value = dumps(event)
            except orjson.JSONEncodeError as exc:
                self._drop("unencodable", str(exc))
                continue
            if type(key) is not str:
                key = None
            self._produce(value, key, headers)
            label = kind if type(kind) is str and kind in _KINDS else "other"
            kinds[label] = kinds.get(label, 0) + 1
            produced += 1
        return self._count(received_ns, kinds, produced)

    def _count(self, received_ns: int, kinds: dict[str, int], produced: int) -> int:
        if produced:
            for kind, count in kinds.items():
                self.metrics.events_received.labels(str(kind)).inc(count)
            self.metrics.events_produced.inc(produced)
            self.metrics.saw_events(received_ns / 1e9)
        self._produced += produced
        return produced

    def _drop(self, reason: str, error: str) -> None:
        self.metrics.events_dropped.labels(reason).inc()
        log.warning(
            "event dropped: it cannot be published",
            extra={"fields": {"reason": reason, "error": error[:200]}},
        )

    def _produce(self, value: bytes, key: str | None, headers: Headers) -> None:
        """Produce, waiting for room while librdkafka's local queue is full."""
        while True:
            try:
                self.producer.produce(self.topic, value, key, headers=headers)
                return
            except BufferError:
                # librdkafka's local queue is full: serve deliveries until there is room.
                self.metrics.kafka_queue_full.inc()
                self.producer.poll(0.05)
                if self.fatal is not None:
                    raise DeliveryFailed(str(self.fatal)) from None

    # --- callbacks (called from poll/flush in this thread) --------------------------------------

    def _on_delivery(self, error: KafkaError | None, message: Message) -> None:
        if error is None:
            return
        self.metrics.delivery_errors.inc()
        log.error(
            "Kafka delivery failed after retries",
            extra={"fields": {"topic": message.topic(), "error": error.str(), "code": error.name()}},
        )
        if self.fatal is None:
            self.fatal = DeliveryFailed(f"Kafka delivery to {message.topic()} failed: {error.str()}")

    def _on_error(self, error: KafkaError) -> None:
        if error.fatal():
            log.error("fatal Kafka producer error", extra={"fields": {"error": error.str()}})
            self.fatal = DeliveryFailed(f"fatal Kafka producer error: {error.str()}")
        else:
            log.warning("Kafka client error (retrying)", extra={"fields": {"error": error.str()}})
