"""Reading back what each stage holds, as comparable keys, and the simulator's ground truth.

Keys identify an event across stages: (ev, symbol, start ms) for aggregates and (ev, symbol,
sequence) for trades and quotes — Polygon's `s`/`q`, the processor's `start_ms`/`sequence`, and
ClickHouse's `timestamp`/`sequence` columns.
"""

from __future__ import annotations

import csv
import io
import subprocess
import sys
import time
import uuid
from collections import Counter
from typing import Any

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from tickpipe_simulator.topics import Selection
from tickpipe_simulator.truth import session_events, session_seconds, spec_from_stats

Key = tuple[str, str, int]
AGGREGATES = ("A", "AM", "XA", "CA")


def raw_key(event: dict[str, Any]) -> Key:
    """A Polygon event as the simulator sent it and the producer published it."""
    ev = str(event["ev"])
    return (ev, str(event["sym"]), int(event["s"] if ev in AGGREGATES else event["q"]))


def normalized_key(record: dict[str, Any]) -> Key:
    ev = str(record["ev"])
    return (ev, str(record["symbol"]), int(record["start_ms"] if ev in AGGREGATES else record["sequence"]))


def read_topic(
    bootstrap: str, topic: str, read_committed: bool = True, timeout: float = 120.0
) -> list[bytes]:
    """Every value in `topic` (committed ones only when `read_committed`), read to the end."""
    return [value for value, _ in read_records(bootstrap, topic, read_committed, timeout)]


def read_records(
    bootstrap: str, topic: str, read_committed: bool = True, timeout: float = 120.0
) -> list[tuple[bytes, dict[str, bytes]]]:
    """Every (value, headers) in `topic`, read to the end."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"chaos-verify-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "isolation.level": "read_committed" if read_committed else "read_uncommitted",
        }
    )
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        at_end: set[int] = set()
        values: list[tuple[bytes, dict[str, bytes]]] = []
        deadline = time.monotonic() + timeout
        while len(at_end) < len(partitions):
            if time.monotonic() > deadline:
                raise AssertionError(f"could not read {topic} to its end within {timeout:.0f} s")
            for message in consumer.consume(num_messages=10_000, timeout=1.0):
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        at_end.add(message.partition() or 0)
                        continue
                    raise AssertionError(f"reading {topic}: {error}")
                at_end.discard(message.partition() or 0)
                given = message.headers() or []
                pairs = given.items() if isinstance(given, dict) else given
                headers = {k: v for k, v in pairs if isinstance(v, bytes)}
                values.append((message.value() or b"", headers))
        return values
    finally:
        consumer.close()


def clickhouse_keys(env: dict[str, str]) -> Counter[Key]:
    """Keys of every row in aggregates, trades and quotes (through `tickpipe query`, a subprocess)."""
    keys: Counter[Key] = Counter()
    sql = {
        "aggregates": "SELECT ev, symbol, toUnixTimestamp64Milli(timestamp) AS k FROM aggregates",
        "trades": "SELECT ev, symbol, sequence AS k FROM trades",
        "quotes": "SELECT ev, symbol, sequence AS k FROM quotes",
    }
    for query in sql.values():
        for row in query_rows(env, query):
            keys[(row["ev"], row["symbol"], int(row["k"]))] += 1
    return keys


def query_rows(env: dict[str, str], sql: str) -> list[dict[str, str]]:
    result = subprocess.run(
        [sys.executable, "-m", "tickpipe_cli", "query", sql, "--format", "csv"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(f"tickpipe query failed: {result.stderr[-2000:]}")
    return list(csv.DictReader(io.StringIO(result.stdout)))


def sent_per_connection(stats: dict[str, Any]) -> dict[int, list[Key]]:
    """For each connection, the keys of exactly the events the simulator wrote to it, in order.

    One pass over the recomputed session: a connection receives whole seconds of its subscriptions
    from `first_second_ms` on, and its `events_sent_total` cuts that stream where it stopped.
    """
    spec = spec_from_stats(stats)
    connections = [c for c in stats["connections"] if c["events_sent_total"]]
    if not connections:
        return {}
    streams: dict[int, list[Key]] = {c["id"]: [] for c in connections}
    wanted = {c["id"]: Selection(frozenset(c["subscriptions"])) for c in connections}
    first = max(spec.start_ms, min(c["first_second_ms"] for c in connections))
    last = max(c["last_event_ms"] for c in connections)
    for index, events in enumerate(session_seconds(spec, first, last + 1000)):
        second = first + 1000 * index
        for conn in connections:
            stream = streams[conn["id"]]
            if conn["first_second_ms"] <= second and len(stream) < conn["events_sent_total"]:
                selection = wanted[conn["id"]]
                stream.extend(raw_key(e) for e in events if selection.wants(e["ev"], e["sym"]))
    return {c["id"]: streams[c["id"]][: c["events_sent_total"]] for c in connections}


def session_truth(stats: dict[str, Any], topics: list[str]) -> dict[Key, int]:
    """Every event of the whole session that `topics` select (the seconds before the first connection
    and between connections included: the producer reported them as gaps, REST serves them), by
    key, with its time (ms: a bar's start, else its timestamp)."""
    spec = spec_from_stats(stats)
    truth: dict[Key, int] = {}
    for event in session_events(spec, None, None, topics=topics):
        key = raw_key(event)
        assert key not in truth, f"the simulator's ground truth repeats {key}"
        truth[key] = int(event["s"] if key[0] in AGGREGATES else event["t"])
    return truth


def decode(values: list[bytes]) -> list[dict[str, Any]]:
    return [orjson.loads(value) for value in values]
