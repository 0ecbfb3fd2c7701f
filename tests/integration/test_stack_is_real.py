"""The local parts are real: a Kafka broker, an S3 API and the ClickHouse engine."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer

from tests.conftest import KafkaHandle, S3Handle

pytestmark = pytest.mark.integration

MESSAGES = 10_000
KEYS = 37


def test_kafka_keeps_per_key_order_for_10k_messages(
    kafka: KafkaHandle, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(partitions=4)
    producer = Producer(kafka.config(**{"enable.idempotence": "true", "linger.ms": "5"}))
    for seq in range(MESSAGES):
        key = f"k{seq % KEYS}"
        producer.produce(topic, key=key, value=f"{key}:{seq}".encode())
        producer.poll(0)
    assert producer.flush(30) == 0

    consumer = Consumer(
        kafka.config(**{"group.id": f"g-{uuid.uuid4().hex}", "auto.offset.reset": "earliest"})
    )
    consumer.subscribe([topic])
    seen: dict[str, list[int]] = defaultdict(list)
    partitions: dict[str, set[int]] = defaultdict(set)
    received = 0
    try:
        while received < MESSAGES:
            batch = consumer.consume(num_messages=1000, timeout=10)
            assert batch, f"no message within 10 s; received {received} of {MESSAGES}"
            for message in batch:
                assert message.error() is None, message.error()
                key, number = (message.value() or b"").decode().split(":")
                seen[key].append(int(number))
                partitions[key].add(message.partition() or 0)
                received += 1
    finally:
        consumer.close()

    assert received == MESSAGES
    assert len(seen) == KEYS
    for key, seqs in seen.items():
        assert seqs == sorted(seqs), f"key {key} out of order"
        assert len(partitions[key]) == 1, f"key {key} spread over partitions {partitions[key]}"
    assert len({p for ps in partitions.values() for p in ps}) > 1, "all keys landed in one partition"


def test_s3_object_round_trip(s3: S3Handle, bucket: str) -> None:
    client = s3.client()
    body = b"channel,symbol\nA,AAPL\n"
    put = client.put_object(Bucket=bucket, Key="subs/subscriptions.csv", Body=body)
    got = client.get_object(Bucket=bucket, Key="subs/subscriptions.csv")
    assert got["Body"].read() == body
    assert got["ETag"] == put["ETag"]


def test_clickhouse_mergetree_create_fill_query(clickhouse: Any, ch_database: str) -> None:
    table = f"{ch_database}.ticks"
    clickhouse.command(
        f"CREATE TABLE {table} (symbol LowCardinality(String), ts DateTime64(3), price Float64) "
        "ENGINE = MergeTree ORDER BY (symbol, ts)"
    )
    rows = [[f"S{i % 5}", 1_700_000_000 + i, 100.0 + i] for i in range(1000)]
    clickhouse.insert(table, rows, column_names=["symbol", "ts", "price"])
    result = clickhouse.query(
        f"SELECT symbol, count(), max(price) FROM {table} GROUP BY symbol ORDER BY symbol"
    )
    assert result.result_rows == [(f"S{i}", 200, 100.0 + 995 + i) for i in range(5)]
    engine = clickhouse.query(
        "SELECT engine FROM system.tables WHERE database = {db:String} AND name = 'ticks'",
        parameters={"db": ch_database},
    ).result_rows
    assert engine == [("MergeTree",)]
