"""Where the previous producer left off: up to when everything it read of this feed is in RAW_TOPIC.

A producer that was killed (kill -9, a crashed task, a deployment) cannot report its own gap. The
next one reads the tail of each partition at start-up and finds, per partition, the newest event
this feed's websocket delivered (`tp.feed` is this feed, no `tp.source`: an event the repair
restored is not a receipt of the feed). The idempotent producer keeps each partition's order, so
whatever it read before that moment and keyed to that partition is stored; partitions are
delivered independently, though (a killed producer may have had seconds of one partition in
flight while another was current), so the oldest of those per-partition moments is the end of
the coverage: the gap from there to the new producer's first event is reported like any other
websocket gap (log line, metrics, FEED_GAPS_TOPIC). Starting earlier than strictly needed costs
nothing: the repair keeps only the events no one published.
"""

from __future__ import annotations

import logging
import time
import uuid

from confluent_kafka import Consumer, KafkaError, TopicPartition

from tickpipe import contract
from tickpipe_producer.publisher import FEED_HEADER, RECEIVED_HEADER

log = logging.getLogger(__name__)

TAIL_RECORDS = 2000  # how far back each partition is read for the feed's newest live event


def previous_coverage_end(
    kafka: dict[str, str], topic: str, feed_label: str, timeout: float = 5.0
) -> float | None:
    """Unix seconds up to which this feed's previous producer had published everything it read,
    or None if RAW_TOPIC holds no event of this feed's websocket."""
    consumer = Consumer(
        {
            **kafka,
            "group.id": f"tickpipe-resume-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
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
                tails.append(TopicPartition(topic, partition, max(low, high - TAIL_RECORDS)))
        if not tails:
            return None
        consumer.assign(tails)
        newest: dict[int, int] = {}
        at_end: set[int] = set()
        deadline = time.monotonic() + timeout * 4
        while len(at_end) < len(tails) and time.monotonic() < deadline:
            for message in consumer.consume(num_messages=TAIL_RECORDS, timeout=0.5):
                error = message.error()
                partition = message.partition() or 0
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        at_end.add(partition)
                    continue
                headers = dict(message.headers() or [])
                if headers.get(FEED_HEADER) != feed_label.encode() or RECEIVED_HEADER not in headers:
                    continue
                if contract.SOURCE in headers:  # restored by the repair, not received from the feed
                    continue
                received = int(headers[RECEIVED_HEADER] or b"0")
                newest[partition] = max(newest.get(partition, 0), received)
        return min(newest.values()) / 1e9 if newest else None
    except Exception:  # a missing coverage mark only means no restart gap is reported
        log.warning("could not read where the previous producer left off", exc_info=True)
        return None
    finally:
        consumer.close()
