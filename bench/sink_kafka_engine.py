"""Peer: ClickHouse's own Kafka table engine, inside chDB (used by `python -m bench.sink kafka-engine`).

The issue asks to compare the sink with the Kafka engine "if it runs there". The plan: a Kafka
table reads the preloaded topic (JSONEachRow, librdkafka inside ClickHouse) and a materialized
view moves its blocks into tickpipe's own `aggregates` table (so the rollups fire as for the sink);
no Python touches a row. The engine commits offsets after each block is stored: at least once,
not the sink's exactly once, and rows it cannot parse are skipped or stop the stream rather than
going to a DLQ with a reason.

Measured with chDB 26.9.2 (chdb 4.4.0): the engine is listed in system.table_engines, but
CREATE TABLE ... ENGINE = Kafka fails with "Code: 49. Shutdown was called. (LOGICAL_ERROR)"
(whatever the settings): it does not run in chDB. This scenario reports that error, and measures
the peer as soon as a chDB release runs it.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from typing import Any

from bench.common import ProcessSampler, kafka
from bench.sink import PARTITIONS, events, produce
from tickpipe.kafka import ensure_topics
from tickpipe_clickhouse.connect import connect
from tickpipe_clickhouse.schema.migrations import migrate

QUEUE = """
CREATE TABLE k.queue
(
    ev String, symbol String, start_ms Int64, end_ms Int64, open Float64, high Float64, low Float64,
    close Float64, volume Float64, vwap Float64, day_volume UInt64, day_open Float64, day_vwap Float64,
    avg_size Float64, otc Bool, received_ns UInt64
)
ENGINE = Kafka
SETTINGS kafka_broker_list = {brokers:String}, kafka_topic_list = {topic:String},
    kafka_group_name = {group:String}, kafka_format = 'JSONEachRow', kafka_num_consumers = {consumers:UInt8},
    kafka_max_block_size = 100000, input_format_null_as_default = 1, input_format_skip_unknown_fields = 1
"""

MOVE = """
CREATE MATERIALIZED VIEW k.move TO k.aggregates AS
SELECT ev, symbol, fromUnixTimestamp64Milli(start_ms, 'UTC') AS timestamp,
    fromUnixTimestamp64Milli(end_ms, 'UTC') AS end_timestamp, open, high, low, close, volume, vwap,
    day_volume, day_open, day_vwap, avg_size, otc,
    intDiv(toInt64(received_ns), 1000000) - end_ms AS received_delay_ms
FROM k.queue
"""


def kafka_engine(rows: int, work: Path, consumers: int = 2) -> dict[str, Any]:
    records = events("realistic", rows)
    with kafka(work) as broker:
        bootstrap = broker.bootstrap
        topic = f"engine-{uuid.uuid4().hex[:6]}"
        ensure_topics({"bootstrap.servers": bootstrap}, [topic], partitions=PARTITIONS)
        produce(bootstrap, topic, iter(records))
        del records
        client = connect(f"chdb://{work / 'chdb'}")
        migrate(client, "k")
        sampler = ProcessSampler(os.getpid())
        sampler.sample()
        cpu_before = sampler.cpu_seconds
        started = time.perf_counter()
        # Kafka settings are plain literals in the DDL; bind them as query parameters.
        params = {"brokers": bootstrap, "topic": topic, "group": f"engine-{uuid.uuid4().hex[:6]}"}
        try:
            client.command(QUEUE.replace("{consumers:UInt8}", str(consumers)), parameters=params)
        except Exception as exc:  # chDB 26.9: "Shutdown was called" (see the module docstring)
            client.close()
            return {"scenario": "kafka-engine", "runs_in_chdb": False, "error": str(exc).splitlines()[0]}
        client.command(MOVE)
        count = 0
        deadline = started + 600
        while count < rows and time.perf_counter() < deadline:
            time.sleep(0.1)
            count = int(client.query("SELECT count() FROM k.aggregates").result_rows[0][0])
        seconds = time.perf_counter() - started
        sampler.sample()
        bar_volume, raw_volume = client.query(
            "SELECT (SELECT sum(volume) FROM k.bars WHERE seconds = 60), "
            "(SELECT sum(volume) FROM k.aggregates)"
        ).result_rows[0]
        client.command("DROP TABLE k.move")
        client.command("DROP TABLE k.queue")
        client.close()
    return {
        "scenario": "kafka-engine",
        "runs_in_chdb": True,
        "rows": rows,
        "stored_rows": count,
        "kafka_num_consumers": consumers,
        "rows_per_s_including_start": round(count / seconds),
        "rows_per_cpu_s": round(count / max(1e-9, sampler.cpu_seconds - cpu_before)),
        "rollups_match_raw": float(bar_volume) == float(raw_volume),
        "process_peak_rss_mb": round(sampler.peak_rss_mb, 1),
    }
