"""Each websocket gap as a Kafka record on FEED_GAPS_TOPIC, for `tickpipe repair` to fill from REST.

Value (JSON): `gap_id` (`feed:from_ms`, stable for a gap), `feed`, `from_ms` and `to_ms` (wall-clock
Unix ms: the last moment events were received before the gap, the first one after), `topics` (the
subscriptions in force), `why` (how the session ended, or "producer restart"). Key: the feed label,
so one feed's gaps stay in order. The producer is idempotent; a gap not delivered within the
timeout is logged (the gap is still in the log line and metrics).
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from confluent_kafka import Producer

log = logging.getLogger(__name__)


class GapPublisher:
    def __init__(self, topic: str, feed_label: str, kafka: dict[str, str]):
        self.topic = topic
        self.feed = feed_label
        self.producer = Producer({**kafka, "enable.idempotence": True, "acks": "all", "linger.ms": 0})
        self.published = 0

    def publish(self, from_s: float, to_s: float, topics: list[str], why: str) -> None:
        from_ms, to_ms = int(from_s * 1000), int(to_s * 1000)
        record: dict[str, Any] = {
            "gap_id": f"{self.feed}:{from_ms}",
            "feed": self.feed,
            "from_ms": from_ms,
            "to_ms": to_ms,
            "topics": topics,
            "why": why,
        }
        self.producer.produce(
            self.topic, key=self.feed.encode(), value=orjson.dumps(record), on_delivery=self._done
        )
        self.producer.poll(0)

    def _done(self, error: Any, message: Any) -> None:
        if error is not None:
            log.error("a feed gap was not published to %s: %s", self.topic, error)
        else:
            self.published += 1

    def close(self, timeout: float = 10.0) -> None:
        left = self.producer.flush(timeout)
        if left:
            log.error("%d feed gap records not delivered to %s", left, self.topic)
