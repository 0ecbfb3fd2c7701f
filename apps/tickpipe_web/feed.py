"""The console's own reader of FILTERED_TOPIC: committed events only, from the end, with no group.

It assigns every partition at its end offset (read_committed, so an aborted processor transaction
never reaches a chart) and commits nothing: it has no consumer group to lag behind and does not
depend on the sink, so a sink restart changes nothing here. Batches of parsed events go to
`deliver`, which the console runs on its event loop.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import orjson
from confluent_kafka import OFFSET_END, Consumer, TopicPartition

log = logging.getLogger(__name__)

Deliver = Callable[[list[dict[str, Any]]], None]


class FeedReader:
    def __init__(self, kafka: Mapping[str, str], topic: str, deliver: Deliver, batch: int = 5000):
        self.kafka = dict(kafka)
        self.topic = topic
        self.deliver = deliver
        self.batch = batch
        self.stopping = threading.Event()
        self.assigned = threading.Event()
        self.consumed = 0
        self.malformed = 0
        self.positions: dict[int, int] = {}  # partition -> next offset to read
        self._thread = threading.Thread(target=self._run, name="feed-reader", daemon=True)

    def start(self) -> FeedReader:
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self.stopping.set()
        self._thread.join(timeout)

    def _consumer(self) -> Any:
        return Consumer(
            {
                **self.kafka,
                "group.id": f"tickpipe-web-{uuid.uuid4().hex[:8]}",  # never committed: no group state
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
                "fetch.wait.max.ms": 20,
                "socket.keepalive.enable": True,
            }
        )

    def _assign(self, consumer: Any) -> bool:
        metadata = consumer.list_topics(self.topic, timeout=5).topics.get(self.topic)
        if metadata is None or metadata.error is not None or not metadata.partitions:
            return False
        consumer.assign(  # after a failure, from where the last reader stopped
            [
                TopicPartition(self.topic, p, self.positions.get(p, OFFSET_END))
                for p in sorted(metadata.partitions)
            ]
        )
        self.assigned.set()
        log.info("reading %s from its end (%d partitions)", self.topic, len(metadata.partitions))
        return True

    def _run(self) -> None:
        while not self.stopping.is_set():
            consumer = self._consumer()
            try:
                self._read(consumer)
            except Exception:  # a broker or client failure: say so, start a fresh reader
                log.exception("the feed reader failed; starting again in 1 s")
                self.stopping.wait(1.0)
            finally:
                consumer.close()

    def _read(self, consumer: Any) -> None:
        while not self.stopping.is_set() and not self._assign(consumer):
            self.stopping.wait(1.0)  # the topic does not exist yet
        while not self.stopping.is_set():
            # consume() waits for a full batch or the timeout: a short one keeps the latency low
            messages = consumer.consume(num_messages=self.batch, timeout=0.02)
            events = []
            for message in messages:
                if message.error() is not None:
                    continue  # partition EOF and transient broker errors: librdkafka retries
                self.positions[message.partition()] = message.offset() + 1
                try:
                    event = orjson.loads(message.value())
                except orjson.JSONDecodeError:
                    self.malformed += 1
                    continue
                if isinstance(event, dict):
                    events.append(event)
                else:
                    self.malformed += 1
            if events:
                self.consumed += len(events)
                self.deliver(events)
