"""Pipeline health for the console: each stage's events/s, Kafka lag, DLQ counts and feed gaps.

Read the way `tickpipe demo` reads it (tickpipe_demo/monitor.py): the services' Prometheus /metrics
pages and the consumer groups' committed offsets against the topics' end offsets.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from tickpipe_demo.monitor import KafkaWatcher, Samples, scrape, total

# stage -> (its counter of events passed on, its DLQ counter)
COUNTERS: dict[str, tuple[str, str | None]] = {
    "producer": ("tickpipe_producer_events_produced_total", None),
    "processor": ("tickpipe_processor_messages_out_total", "tickpipe_processor_dead_letters_total"),
    "sink": ("tickpipe_sink_rows_total", "tickpipe_sink_dlq_rows_total"),
}


@dataclass
class StageSettings:
    metrics: dict[str, str]  # stage -> its /metrics URL
    raw_topic: str
    filtered_topic: str
    processor_group: str = "tickpipe-processor"
    sink_group: str = "tickpipe-sink"


@dataclass
class StageRow:
    stage: str
    up: bool = False
    events_per_s: float | None = None
    total: float | None = None
    lag: int | None = None
    dlq: float | None = None
    gaps: float | None = None
    gap_seconds: float | None = None


@dataclass
class StageReader:
    settings: StageSettings
    watcher: KafkaWatcher | None
    _before: dict[str, tuple[float, float]] = field(default_factory=dict)  # stage -> (at, total)
    _probes: dict[str, Any] = field(default_factory=dict)  # group -> a consumer that only asks offsets

    def read(self) -> list[dict[str, Any]]:
        rows = []
        for stage in COUNTERS:
            url = self.settings.metrics.get(stage)
            samples = scrape(url) if url else {}
            rows.append(self._row(stage, samples))
        return [row.__dict__ for row in rows]

    def _row(self, stage: str, samples: Samples) -> StageRow:
        row = StageRow(stage, up=bool(samples))
        counter, dlq = COUNTERS[stage]
        if samples:
            now, count = time.monotonic(), total(samples, counter)
            before = self._before.get(stage)
            if before is not None and now > before[0]:
                row.events_per_s = max(0.0, (count - before[1]) / (now - before[0]))
            self._before[stage] = (now, count)
            row.total = count
            row.dlq = total(samples, dlq) if dlq else None
        if stage == "producer" and samples:
            row.gaps = total(samples, "tickpipe_producer_gaps_total")
            row.gap_seconds = total(samples, "tickpipe_producer_gap_seconds_total")
        row.lag = self._lag(stage)
        return row

    def _lag(self, stage: str) -> int | None:
        if self.watcher is None:
            return None
        groups: Mapping[str, tuple[str, str]] = {
            "processor": (self.settings.processor_group, self.settings.raw_topic),
            "sink": (self.settings.sink_group, self.settings.filtered_topic),
        }
        if stage not in groups:
            return None
        group, topic = groups[stage]
        try:
            return self._group_lag(group, topic)
        except Exception:
            return None

    def _group_lag(self, group: str, topic: str) -> int | None:
        """End offsets minus the group's committed offsets (a partition never committed counts whole)."""
        assert self.watcher is not None
        probe = self._probes.get(group)
        if probe is None:  # kept: a new consumer per second would churn the group coordinator
            probe = self._probes[group] = Consumer(
                {"bootstrap.servers": self.watcher.bootstrap, "group.id": group, "enable.auto.commit": False}
            )
        metadata = self.watcher.consumer.list_topics(topic, timeout=5).topics.get(topic)
        if metadata is None or metadata.error is not None:
            return None  # no such topic (yet): unknown, not zero
        partitions = [TopicPartition(topic, p) for p in sorted(metadata.partitions)]
        lag = 0
        for tp in probe.committed(partitions, timeout=5):
            low, high = self.watcher.consumer.get_watermark_offsets(tp, timeout=5)
            lag += high - max(tp.offset, low)
        return lag

    def close(self) -> None:
        for probe in self._probes.values():
            probe.close()
