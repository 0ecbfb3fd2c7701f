"""The sink against a real Kafka broker and the real ClickHouse engine (chDB): exact rows, DLQ, retries.

The sink runs in a thread of this process (chDB allows one data folder per process, shared with the
session's `clickhouse` fixture); the kill -9 test runs it as a separate process instead.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import orjson
import pytest
from confluent_kafka import Consumer, Producer

from bench.sink_events import mixed
from tests.conftest import KafkaHandle
from tests.support import wait_for
from tickpipe.kafka import ensure_topics
from tickpipe_clickhouse.schema.migrations import migrate
from tickpipe_clickhouse.sink.batching import Batch, Batcher
from tickpipe_clickhouse.sink.dead_letters import DeadLetters
from tickpipe_clickhouse.sink.metrics import SinkMetrics
from tickpipe_clickhouse.sink.sink import Sink
from tickpipe_clickhouse.sink.writer import ClickHouseWriter, Rejected, TransientWriteError, Writer

pytestmark = pytest.mark.integration


def produce(kafka: KafkaHandle, topic: str, values: list[bytes], keys: list[bytes]) -> None:
    producer = Producer(kafka.config(**{"enable.idempotence": "true", "linger.ms": "5"}))
    for key, value in zip(keys, values, strict=True):
        producer.produce(topic, key=key, value=value)
        producer.poll(0)
    assert producer.flush(30) == 0


@contextmanager
def running_sink(kafka: KafkaHandle, topic: str, writer: Writer, batch_rows: int = 700) -> Iterator[Sink]:
    ensure_topics(kafka.config(), [f"{topic}.dlq"])
    consumer = Consumer(
        kafka.config(
            **{
                "group.id": f"sink-{uuid.uuid4().hex[:8]}",
                "isolation.level": "read_committed",
                "enable.auto.commit": "false",
                "auto.offset.reset": "earliest",
            }
        )
    )
    sink = Sink(
        consumer,
        topic,
        writer,
        DeadLetters(kafka.config(), f"{topic}.dlq"),
        Batcher(batch_rows, 1 << 30, 0.2),
        SinkMetrics(),
        retry_max_seconds=0.2,
    )
    thread = threading.Thread(target=sink.run, name="sink-under-test")
    thread.start()
    try:
        yield sink
    finally:
        sink.stop.set()
        thread.join(60)
        assert not thread.is_alive(), "the sink did not stop within 60 s"


def table_count(clickhouse: Any, db: str, table: str) -> int:
    return int(clickhouse.query(f"SELECT count() FROM {db}.{table}").result_rows[0][0])


def total_rows(clickhouse: Any, db: str) -> int:
    return sum(table_count(clickhouse, db, t) for t in ("aggregates", "trades", "quotes"))


@pytest.fixture
def schema(clickhouse: Any, ch_database: str) -> str:
    migrate(clickhouse, ch_database)
    return ch_database


def test_every_row_lands_once_with_its_content(
    kafka: KafkaHandle, new_topic: Callable[..., str], clickhouse: Any, schema: str
) -> None:
    events = list(mixed(4000))
    topic = new_topic("filtered")
    produce(kafka, topic, [orjson.dumps(e) for e in events], [str(e["symbol"]).encode() for e in events])
    writer = ClickHouseWriter(clickhouse, schema)
    with running_sink(kafka, topic, writer) as sink:
        wait_for(lambda: total_rows(clickhouse, schema) >= len(events), "all rows in ClickHouse")
        wait_for(lambda: sink.batcher.rows == 0, "the buffer to drain")
    assert writer.inserts > 4, "expected several partition batches"

    kinds = Counter(str(e["ev"]) for e in events)
    db = schema
    assert table_count(clickhouse, db, "aggregates") == kinds["A"] + kinds["AM"] + kinds["XA"] + kinds["CA"]
    assert table_count(clickhouse, db, "trades") == kinds["T"] + kinds["XT"]
    assert table_count(clickhouse, db, "quotes") == kinds["Q"] + kinds["XQ"]

    # Content: every trade exactly as published (prints in the same millisecond all kept).
    stored = clickhouse.query(
        f"SELECT ev, symbol, toUnixTimestamp64Milli(timestamp), toFloat64(price), size, exchange, trade_id, "
        f"tape, conditions, sequence, toUnixTimestamp64Milli(received) FROM {db}.trades ORDER BY sequence"
    ).result_rows
    expected = sorted(
        (
            (
                e["ev"],
                e["symbol"],
                e["ts_ms"],
                e["price"],
                e["size"],
                e["exchange"],
                e["trade_id"],
                e["tape"],
                e["conditions"],
                e["sequence"],
                e["received_ns"] // 1_000_000,  # stored to the millisecond
            )
            for e in events
            if e["ev"] in ("T", "XT")
        ),
        key=lambda row: row[9],
    )
    assert [(*tuple(r[:8]), list(r[8]), *tuple(r[9:])) for r in stored] == [
        (*tuple(e[:8]), list(e[8]), *tuple(e[9:])) for e in expected
    ]
    aggregates = clickhouse.query(
        "SELECT ev, symbol, toUnixTimestamp64Milli(timestamp), toUnixTimestamp64Milli(end_timestamp),"
        " toFloat64(open), toFloat64(high), toFloat64(low), toFloat64(close), volume, toFloat64(vwap),"
        f" avg_size FROM {db}.aggregates"
    ).result_rows
    expected_aggs = Counter(
        (
            e["ev"],
            e["symbol"],
            e["start_ms"],
            e["end_ms"],
            e["open"],
            e["high"],
            e["low"],
            e["close"],
            float(e["volume"]),
            e["vwap"],
            float(e["avg_size"]),
        )
        for e in events
        if e["ev"] in ("A", "AM", "XA", "CA")
    )
    assert Counter(tuple(r) for r in aggregates) == expected_aggs

    # Rollups equal bars recomputed independently (in Python) from the published events.
    check_bars_against_events(clickhouse, db, events)


def check_bars_against_events(clickhouse: Any, db: str, events: list[dict[str, Any]]) -> None:
    bars: dict[tuple[str, int], dict[str, Any]] = {}
    for e in sorted((e for e in events if e["ev"] in ("A", "XA", "CA")), key=lambda e: e["start_ms"]):
        key = (e["symbol"], e["start_ms"] // 60_000 * 60)
        bar = bars.setdefault(key, {"open": e["open"], "high": e["high"], "low": e["low"], "volume": 0.0})
        bar["high"] = max(bar["high"], e["high"])
        bar["low"] = min(bar["low"], e["low"])
        bar["close"] = e["close"]
        bar["volume"] += e["volume"]
    rows = clickhouse.query(
        f"SELECT symbol, toUnixTimestamp(bucket), toFloat64(open), toFloat64(high), toFloat64(low), "
        f"toFloat64(close), volume FROM {db}.ohlcv_1m WHERE source IN ('A', 'XA', 'CA')"
    ).result_rows
    got = {
        (r[0], r[1]): {"open": r[2], "high": r[3], "low": r[4], "close": r[5], "volume": r[6]} for r in rows
    }
    assert got == bars


class FlakyWriter:
    """Wraps the real writer: every 3rd call fails before inserting, every 4th after (answer lost)."""

    def __init__(self, inner: ClickHouseWriter):
        self.inner = inner
        self.calls = 0
        self.failures = 0

    def write(self, batch: Batch) -> list[Rejected]:
        self.calls += 1
        if self.calls % 3 == 0:
            self.failures += 1
            raise TransientWriteError("injected: connection reset before the insert")
        rejected = self.inner.write(batch)
        if self.calls % 4 == 0:
            self.failures += 1
            raise TransientWriteError("injected: the insert succeeded but its answer was lost")
        return rejected


def test_write_failures_are_retried_without_loss_or_duplicates(
    kafka: KafkaHandle, new_topic: Callable[..., str], clickhouse: Any, schema: str
) -> None:
    events = [e for e in mixed(3000) if e["ev"] in ("A", "T")]
    topic = new_topic("filtered")
    produce(kafka, topic, [orjson.dumps(e) for e in events], [str(e["symbol"]).encode() for e in events])
    writer = FlakyWriter(ClickHouseWriter(clickhouse, schema))
    with running_sink(kafka, topic, writer, batch_rows=300) as sink:
        wait_for(lambda: total_rows(clickhouse, schema) >= len(events), "all rows despite failures")
        wait_for(lambda: sink.batcher.rows == 0, "the buffer to drain")
    assert writer.failures >= 3
    assert sink.metrics.retries._value.get() >= writer.failures
    db = schema
    assert table_count(clickhouse, db, "trades") == sum(e["ev"] == "T" for e in events)
    distinct = clickhouse.query(f"SELECT uniqExact(sequence) FROM {db}.trades").result_rows[0][0]
    assert distinct == table_count(clickhouse, db, "trades")
    assert table_count(clickhouse, db, "aggregates") == sum(e["ev"] == "A" for e in events)
    raw_volume = clickhouse.query(f"SELECT sum(volume) FROM {db}.aggregates").result_rows[0][0]
    levels = clickhouse.query(
        f"SELECT seconds, sum(volume) FROM {db}.bars WHERE source = 'A' GROUP BY seconds ORDER BY seconds"
    ).result_rows
    assert raw_volume == sum(e["volume"] for e in events if e["ev"] == "A")
    assert levels == [(s, raw_volume) for s in (60, 300, 3600, 86400)], "a level lost or doubled a block"


def test_rejected_rows_go_to_the_dlq_with_a_reason_and_good_rows_land(
    kafka: KafkaHandle, new_topic: Callable[..., str], clickhouse: Any, schema: str
) -> None:
    good = [orjson.dumps(e) for e in mixed(500)]
    bad = {
        b'{"ev":"ZZ","symbol":"AAPL","ts_ms":1}': "unknown_ev",
        b'{"ev":"T","ts_ms":1767225600000,"price":1.5}': "constraint_violated",
        b'{"ev":"T","symbol":"AAPL","ts_ms":"soon"}': "clickhouse_rejected",
        b"not json at all": "malformed_json",
    }
    values = good[:200] + list(bad) + good[200:]
    topic = new_topic("filtered", partitions=1)
    produce(kafka, topic, values, [b"k"] * len(values))
    with running_sink(kafka, topic, ClickHouseWriter(clickhouse, schema)) as sink:
        wait_for(lambda: total_rows(clickhouse, schema) >= len(good), "the good rows")
        wait_for(lambda: sink.batcher.rows == 0, "the buffer to drain")
    assert total_rows(clickhouse, schema) == len(good)

    consumer = Consumer(kafka.config(**{"group.id": uuid.uuid4().hex, "auto.offset.reset": "earliest"}))
    consumer.subscribe([f"{topic}.dlq"])
    dead: dict[bytes, dict[str, bytes]] = {}
    try:

        def collect() -> bool:
            for message in consumer.consume(10, timeout=0.5):
                if message.error() is None:
                    dead[message.value() or b""] = dict(message.headers() or [])  # type: ignore[arg-type]
            return len(dead) >= len(bad)

        wait_for(collect, "the rejected rows in the DLQ")
    finally:
        consumer.close()
    assert set(dead) == set(bad)
    for value, reason in bad.items():
        headers = dead[value]
        assert headers["tp.dlq.reason"].decode() == reason, value
        assert headers["tp.source.topic"].decode() == topic
        assert headers["tp.dlq.detail"], value
    assert b"symbol_present" in dead[b'{"ev":"T","ts_ms":1767225600000,"price":1.5}']["tp.dlq.detail"]
