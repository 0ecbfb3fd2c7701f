"""`tickpipe repair`: fill each websocket gap from REST, into RAW_TOPIC, exactly once.

For each record on FEED_GAPS_TOPIC (the producer publishes one per gap; gaps.py there):
1. the window is the gap widened by REPAIR_MARGIN_SECONDS on both sides, and the service waits
   until REST should have it (REPAIR_REST_LAG_SECONDS after the window's end, Polygon's REST
   trails the feed) and the live feed has run a margin past it;
2. what the live feed did publish around the gap (and what earlier repairs restored) is read
   back from RAW_TOPIC (read_committed, from the offsets at the window's start to the end) and
   kept as identities: trades (symbol, time,
   sequence, exchange, id), quotes (symbol, time, sequence), aggregates (ev, symbol, start);
3. per subscribed channel REST can serve (A -> second aggregates, AM -> minute aggregates,
   T -> trades, Q -> quotes) and per symbol (a `*` subscription: the active tickers from
   /v3/reference/tickers, or REPAIR_SYMBOLS), the window is fetched through the official
   RESTClient (next_url pages, 429/Retry-After) and turned into Polygon's websocket events;
4. the events whose identity was not published live go to RAW_TOPIC with `tp.source=rest` (and
   `tp.received_ns`, `tp.feed`, `tp.gap_id`), in one Kafka transaction with the gap record's
   offset and the gap's `repaired` state: a gap is repaired exactly once, whatever restarts (an
   aborted transaction leaves no event visible to the read_committed processor, and the gap is
   read again).

Each gap's state (`repairing` when it is read, `repaired` with the rows restored) goes to
GAP_STATES_TOPIC, which the sink stores in the `feed_gaps` table like any other table, exactly
once: no second writer opens ClickHouse (an embedded chDB folder admits one process).

The processor and the sink then apply unchanged. A gap record that is not a gap (bad JSON) is
logged and counted, and its offset committed.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from prometheus_client import CollectorRegistry, Counter
from pydantic import Field

from tickpipe import contract
from tickpipe.kafka import ensure_topics
from tickpipe_history.datasets import DATASETS, Chunk
from tickpipe_history.pages import Invalid, RestTicker, decode
from tickpipe_history.rate_limit import RateLimiter
from tickpipe_history.raw_scan import published_since
from tickpipe_history.repair_events import (
    CHANNEL_DATASET,
    Event,
    bar_event,
    channels,
    identity,
    quote_event,
    trade_event,
)
from tickpipe_history.rest_client import PolygonPages, RestFailure
from tickpipe_history.settings import BackfillSettings

log = logging.getLogger(__name__)

SOURCE_HEADER = contract.SOURCE
RECEIVED_HEADER = contract.RECEIVED_NS
FEED_HEADER = contract.FEED
GAP_HEADER = contract.GAP_ID


class RepairSettings(BackfillSettings):
    feed_gaps_topic: str = Field(contract.FEED_GAPS_TOPIC, min_length=1, description="gaps from the producer")
    repair_group_id: str = Field("tickpipe-repair", min_length=1, description="Kafka consumer group")
    repair_transactional_id: str = Field(
        "tickpipe-repair", min_length=1, description="Kafka transactional.id"
    )
    repair_margin_seconds: float = Field(5.0, ge=0, description="the gap is widened by this on both sides")
    repair_rest_lag_seconds: float = Field(
        60.0, ge=0, description="wait this long after a gap before asking REST (it trails the feed)"
    )
    repair_rest_max_wait_seconds: float = Field(
        900.0, ge=0, description="then ask until REST has data past the gap, at most this long"
    )
    gap_states_topic: str = Field(
        contract.GAP_STATES_TOPIC, min_length=1, description="each gap's state, for the sink's feed_gaps"
    )
    repair_symbols: str = Field(
        "", description="symbols for `*` subscriptions; empty = REST's active tickers"
    )


@dataclass(frozen=True)
class Gap:
    gap_id: str
    feed: str
    from_ms: int
    to_ms: int
    topics: tuple[str, ...]
    why: str

    @classmethod
    def parse(cls, value: bytes) -> Gap:
        data = orjson.loads(value)
        return cls(
            str(data["gap_id"]),
            str(data.get("feed", "")),
            int(data["from_ms"]),
            int(data["to_ms"]),
            tuple(str(t) for t in data["topics"]),
            str(data.get("why", "")),
        )


class Repairer:
    """Fetches a gap's window from REST and returns the events the live feed did not deliver."""

    def __init__(self, pages: PolygonPages, margin_ms: int, symbols: list[str] | None = None):
        self.pages = pages
        self.margin_ms = margin_ms
        self.fixed_symbols = symbols
        self._active: list[str] | None = None

    def window(self, gap: Gap) -> tuple[int, int]:
        return gap.from_ms - self.margin_ms, gap.to_ms + self.margin_ms

    def symbols(self, wanted: set[str]) -> list[str]:
        if "*" not in wanted:
            return sorted(wanted)
        if self.fixed_symbols:
            return self.fixed_symbols
        if self._active is None:
            self._active = self._active_tickers()
        return self._active

    def _active_tickers(self) -> list[str]:
        found: list[str] = []
        body = self.pages.first(lambda r: r.list_tickers(market="stocks", active=True, limit=1000, raw=True))
        while True:
            rows, next_url = decode(body, RestTicker)
            found += [row.ticker for row in rows]
            if not next_url:
                return sorted(set(found))
            body = self.pages.follow(next_url)

    def caught_up(self, gap: Gap) -> bool:
        """Has REST got past the window's end? Per channel, some symbol has an event after it."""
        _, hi = self.window(gap)
        for channel, wanted in sorted(channels(gap.topics).items()):
            dataset = DATASETS[CHANNEL_DATASET[channel]]
            after = Chunk(dataset, "", hi + 1, hi + 1 + 3_600_000)
            if not any(
                self._has_any(Chunk(dataset, s, after.start_ms, after.end_ms)) for s in self.symbols(wanted)
            ):
                return False
        return True

    def _has_any(self, chunk: Chunk) -> bool:
        from tickpipe_history.datasets import first_requests

        body = self.pages.first(first_requests(chunk)[0])
        try:
            rows, _ = decode(body, chunk.dataset.row)
        except Invalid:
            return False
        return bool(rows)

    def events(self, gap: Gap, seen: set[tuple[Any, ...]]) -> list[Event]:
        lo, hi = self.window(gap)
        out: list[Event] = []
        for channel, wanted in sorted(channels(gap.topics).items()):
            dataset = DATASETS[CHANNEL_DATASET[channel]]
            # A bar is sent when it ends: one ending in the window may start before it.
            start = lo - lo % dataset.span_ms - dataset.span_ms if dataset.span_ms else lo
            for symbol in self.symbols(wanted):
                chunk = Chunk(dataset, symbol, start, hi + 1)
                for event in self._fetch(chunk):
                    key = identity(event)
                    time_ms = int(event.get("t") or event.get("e") or 0)
                    if key is not None and key not in seen and lo <= time_ms <= hi:
                        seen.add(key)
                        out.append(event)
        return out

    def _fetch(self, chunk: Chunk) -> Iterator[Event]:
        from tickpipe_history.datasets import first_requests

        d = chunk.dataset
        for request in first_requests(chunk):
            body = self.pages.first(request)
            while True:
                try:
                    rows, next_url = decode(body, d.row)
                except Invalid as bad:
                    log.error("a REST page for a repair failed validation: %s", bad)
                    rows, next_url = [], bad.next_url
                for row in rows:
                    if d.name == "trades":
                        yield trade_event(chunk.symbol, row)
                    elif d.name == "quotes":
                        yield quote_event(chunk.symbol, row)
                    else:
                        yield bar_event(d.ev, chunk.symbol, d.span_ms, row)
                if not next_url:
                    break
                body = self.pages.follow(next_url)


class RepairMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.gaps = Counter("tickpipe_repair_gaps", "gaps repaired", registry=self.registry)
        self.events = Counter("tickpipe_repair_events", "events restored from REST", registry=self.registry)
        self.bad = Counter(
            "tickpipe_repair_bad_records", "gap records that are not gaps", registry=self.registry
        )


def gap_state(gap: Gap, state: str, rows: int) -> bytes:
    """A GAP_STATES_TOPIC record (contract.GAP_STATE_FIELDS): the sink stores it in `feed_gaps`."""
    import datetime as dt

    def at(ms: int) -> str:
        return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]

    now = time.time_ns()
    values = [gap.gap_id, gap.feed, at(gap.from_ms), at(gap.to_ms), list(gap.topics), gap.why, state, rows]
    return orjson.dumps(
        dict(zip(contract.GAP_STATE_FIELDS, [*values, at(now // 1_000_000), now], strict=True))
    )


class RepairService:
    def __init__(self, settings: RepairSettings, pages: PolygonPages):
        self.settings = settings
        self.kafka = settings.kafka_config()
        symbols = [s.strip() for s in settings.repair_symbols.split(",") if s.strip()] or None
        self.repairer = Repairer(pages, int(settings.repair_margin_seconds * 1000), symbols)
        self.metrics = RepairMetrics()
        self.stop = threading.Event()
        self.repaired = 0

    def run(self) -> int:
        s = self.settings
        ensure_topics(
            self.kafka, {s.feed_gaps_topic: 1, s.gap_states_topic: 1, s.raw_topic: s.raw_topic_partitions}
        )
        consumer = Consumer(
            {
                **self.kafka,
                "group.id": s.repair_group_id,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "isolation.level": "read_committed",
            }
        )
        producer = Producer(
            {**self.kafka, "transactional.id": s.repair_transactional_id, "enable.idempotence": True}
        )
        producer.init_transactions(30)
        consumer.subscribe([s.feed_gaps_topic])
        try:
            while not self.stop.is_set():
                message = consumer.poll(0.5)
                if message is None or message.error() is not None:
                    continue
                self._handle(consumer, producer, message)
        finally:
            consumer.close()
        return 0

    def _handle(self, consumer: Consumer, producer: Producer, message: Any) -> None:
        try:
            gap = Gap.parse(message.value() or b"")
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            self.metrics.bad.inc()
            log.error(
                "a FEED_GAPS_TOPIC record is not a gap; skipped",
                extra={"fields": {"offset": message.offset()}},
            )
            self._commit(consumer, producer, message, [], None)
            return
        self._publish_state(producer, gap)
        lo, hi = self.repairer.window(gap)
        margin = int(self.settings.repair_margin_seconds * 1000)
        ready_at = max(hi + int(self.settings.repair_rest_lag_seconds * 1000), hi + margin)
        while not self.stop.is_set() and time.time() * 1000 < ready_at:
            self.stop.wait(min(1.0, (ready_at - time.time() * 1000) / 1000))  # until REST has the window
        deadline = time.monotonic() + self.settings.repair_rest_max_wait_seconds
        while not self.stop.is_set() and not self._caught_up(gap):
            if time.monotonic() > deadline:
                log.warning("REST has not caught up with %s; repairing what it has", gap.gap_id)
                break
            self.stop.wait(2.0)  # REST lags the feed: ask again
        if self.stop.is_set():
            return
        began = time.monotonic()
        while True:
            try:
                seen = published_since(self.kafka, self.settings.raw_topic, lo)
                read = time.monotonic()
                events = self.repairer.events(gap, seen.identities)
                fetched = time.monotonic()
                self._commit(consumer, producer, message, events, gap, seen.restored[gap.gap_id])
                break
            except (RestFailure, KafkaException) as exc:
                log.warning("repair of %s failed, retrying: %s", gap.gap_id, exc)
                if self.stop.wait(5.0):
                    return
        self.metrics.gaps.inc()
        self.metrics.events.inc(len(events))
        self.repaired += 1
        log.info(
            "gap repaired",
            extra={
                "fields": {
                    "gap_id": gap.gap_id,
                    "from_ms": gap.from_ms,
                    "to_ms": gap.to_ms,
                    "why": gap.why,
                    "events_restored": len(events),
                    # where the time went once REST was due: reading RAW_TOPIC back, REST, Kafka
                    "read_back_s": round(read - began, 2),
                    "rest_s": round(fetched - read, 2),
                    "commit_s": round(time.monotonic() - fetched, 2),
                }
            },
        )

    def _caught_up(self, gap: Gap) -> bool:
        try:
            return self.repairer.caught_up(gap)
        except RestFailure as exc:
            log.warning("asking REST whether it has caught up failed: %s", exc)
            return False

    def _publish_state(self, producer: Producer, gap: Gap) -> None:
        """`repairing` in feed_gaps, in a transaction of its own (the producer is transactional)."""
        while not self.stop.is_set():
            producer.begin_transaction()
            try:
                producer.produce(
                    self.settings.gap_states_topic,
                    key=gap.gap_id.encode(),
                    value=gap_state(gap, "repairing", 0),
                )
                producer.commit_transaction(60)
                return
            except KafkaException as exc:
                producer.abort_transaction(30)
                log.warning("publishing the state of %s failed, retrying: %s", gap.gap_id, exc)
                self.stop.wait(5.0)

    def _commit(
        self,
        consumer: Consumer,
        producer: Producer,
        message: Any,
        events: list[Event],
        gap: Gap | None,
        restored_before: int = 0,
    ) -> None:
        """The events, the gap's `repaired` state and the gap record's offset in one transaction.

        The state's rows are all this gap has had restored: `restored_before` (found in RAW_TOPIC,
        from an earlier repair of the same gap id) plus these events, so the newest state, the one
        feed_gaps keeps, is the whole count."""
        producer.begin_transaction()
        try:
            now = str(time.time_ns()).encode()
            for event in events:
                headers: list[tuple[str, str | bytes | None]] = [
                    (RECEIVED_HEADER, now),
                    (FEED_HEADER, (gap.feed if gap else "").encode()),
                    (SOURCE_HEADER, b"rest"),
                    (GAP_HEADER, (gap.gap_id if gap else "").encode()),
                ]
                producer.produce(
                    self.settings.raw_topic,
                    key=str(event["sym"]).encode(),
                    value=orjson.dumps(event),
                    headers=headers,
                )
                producer.poll(0)
            if gap is not None:  # `repaired` and its rows, atomically with the events and the offset
                producer.produce(
                    self.settings.gap_states_topic,
                    key=gap.gap_id.encode(),
                    value=gap_state(gap, "repaired", restored_before + len(events)),
                )
            offsets = [TopicPartition(message.topic(), message.partition(), message.offset() + 1)]
            producer.send_offsets_to_transaction(offsets, consumer.consumer_group_metadata(), 30)
            producer.commit_transaction(60)
        except KafkaException:
            producer.abort_transaction(30)
            raise


def run_repair(settings: RepairSettings) -> int:
    from tickpipe.config import ConfigError

    key = settings.polygon_api_key.get_secret_value()
    if not key:
        raise ConfigError("POLYGON_API_KEY: required for `tickpipe repair` (set the variable)")
    pages = PolygonPages(
        key,
        settings.polygon_rest_url,
        RateLimiter(settings.requests_per_minute),
        settings.backfill_max_wait_seconds,
        settings.backfill_concurrency,
    )
    service = RepairService(settings, pages)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: service.stop.set())
    server = None
    if settings.metrics_port:
        from tickpipe.metrics import MetricsServer

        health: dict[str, object] = {}
        server = MetricsServer(service.metrics.registry, lambda: (True, health), port=settings.metrics_port)
        server.start()
    log.info("repair service started", extra={"fields": {"gaps_topic": settings.feed_gaps_topic}})
    try:
        return service.run()
    finally:
        if server is not None:
            server.stop()
