"""Where the previous producer left off: the newest `tp.received_ns` of this feed in RAW_TOPIC.

A producer that was killed (kill -9, a crashed task, a deployment) cannot report its own gap. The
next one reads the last message of each partition at start-up; the gap from the newest of them to
its own first event is reported like any other websocket gap (log line and metrics).
"""

from __future__ import annotations

import logging
import uuid

from confluent_kafka import Consumer, TopicPartition

from tickpipe_producer.publisher import FEED_HEADER, RECEIVED_HEADER

log = logging.getLogger(__name__)


def previous_coverage_end(
    kafka: dict[str, str], topic: str, feed_label: str, timeout: float = 5.0
) -> float | None:
    """Unix seconds of the newest event this feed published to `topic`, or None if there is none."""
    consumer = Consumer(
        {
            **kafka,
            "group.id": f"tickpipe-resume-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "enable.partition.eof": False,
        }
    )
    try:
        metadata = consumer.list_topics(topic, timeout=timeout).topics.get(topic)
        if metadata is None or metadata.error is not None:
            return None
        tails = []
        for partition in metadata.partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=timeout)
            if high > low:
                tails.append(TopicPartition(topic, partition, high - 1))
        if not tails:
            return None
        consumer.assign(tails)
        newest: int | None = None
        for message in consumer.consume(num_messages=len(tails), timeout=timeout):
            if message.error() is not None:
                continue
            headers = dict(message.headers() or [])
            if headers.get(FEED_HEADER) != feed_label.encode() or RECEIVED_HEADER not in headers:
                continue
            received = int(headers[RECEIVED_HEADER] or b"0")
            newest = received if newest is None else max(newest, received)
        return newest / 1e9 if newest is not None else None
    except Exception:  # a missing coverage mark only means no restart gap is reported
        log.warning("could not read where the previous producer left off", exc_info=True)
        return None
    finally:
        consumer.close()
