"""Reading the running pipeline: Prometheus metrics of each service and Kafka offsets and lag."""

from __future__ import annotations

import time
import urllib.request
import uuid
from collections.abc import Iterable

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

Samples = dict[str, list[tuple[dict[str, str], float]]]


def scrape(url: str, timeout: float = 1.0) -> Samples:
    """All samples of a /metrics page by sample name; {} when the service does not answer."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback http
            text = response.read().decode()
    except OSError:
        return {}
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((dict(sample.labels), float(sample.value)))
    return samples


def total(samples: Samples, name: str, **labels: str) -> float:
    """Sum of a metric's samples whose labels include `labels`."""
    return sum(
        value
        for sample_labels, value in samples.get(name, [])
        if all(sample_labels.get(key) == wanted for key, wanted in labels.items())
    )


def by_label(samples: Samples, name: str, label: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for sample_labels, value in samples.get(name, []):
        key = sample_labels.get(label, "")
        out[key] = out.get(key, 0.0) + value
    return out


class KafkaWatcher:
    """Topic sizes (by offsets) and consumer-group lag, through one metadata consumer."""

    def __init__(self, bootstrap: str):
        self.bootstrap = bootstrap
        self.consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"tickpipe-monitor-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
            }
        )

    def _partitions(self, topic: str) -> list[TopicPartition]:
        metadata = self.consumer.list_topics(topic, timeout=5).topics.get(topic)
        if metadata is None or metadata.error is not None:
            return []
        return [TopicPartition(topic, p) for p in sorted(metadata.partitions)]

    def end_offsets(self, topic: str) -> dict[int, int]:
        return {
            tp.partition: self.consumer.get_watermark_offsets(tp, timeout=5)[1]
            for tp in self._partitions(topic)
        }

    def size(self, topic: str) -> int:
        """Messages in a topic by offsets (transaction markers included, so slightly above the count)."""
        total_size = 0
        for tp in self._partitions(topic):
            low, high = self.consumer.get_watermark_offsets(tp, timeout=5)
            total_size += high - low
        return total_size

    def lag(self, group: str, topics: Iterable[str]) -> int:
        """Messages not yet committed by `group` (end offset minus committed offset, per partition)."""
        probe = Consumer(
            {"bootstrap.servers": self.bootstrap, "group.id": group, "enable.auto.commit": False}
        )
        try:
            lag = 0
            for topic in topics:
                partitions = self._partitions(topic)
                committed = probe.committed(partitions, timeout=5) if partitions else []
                for tp in committed:
                    low, high = self.consumer.get_watermark_offsets(tp, timeout=5)
                    lag += high - max(tp.offset, low)
            return lag
        finally:
            probe.close()

    def unread(self, group: str, topic: str, timeout: float = 10.0) -> int:
        """Committed records `group` has not consumed yet, counted exactly by reading them.

        On a transactional topic the end offset counts each transaction's commit marker, so
        "end minus committed" never reaches 0 for a consumer that has read everything; reading
        from the committed offsets with read_committed to the end gives the true number.
        """
        probe = Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                "group.id": group,
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
                "enable.partition.eof": True,
            }
        )
        try:
            partitions = self._partitions(topic)
            if not partitions:
                return 0
            start = [
                TopicPartition(topic, tp.partition, tp.offset if tp.offset >= 0 else OFFSET_BEGINNING)
                for tp in probe.committed(partitions, timeout=timeout)
            ]
            probe.assign(start)
            unread, at_end = 0, set[int | None]()
            deadline = time.monotonic() + timeout
            while len(at_end) < len(start) and time.monotonic() < deadline:
                for message in probe.consume(num_messages=10_000, timeout=0.5):
                    error = message.error()
                    if error is not None and error.code() == KafkaError._PARTITION_EOF:
                        at_end.add(message.partition())
                    elif error is None:
                        unread += 1
            return unread if len(at_end) == len(start) else max(unread, 1)
        finally:
            probe.close()

    def close(self) -> None:
        self.consumer.close()
