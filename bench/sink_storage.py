"""Bytes per aggregate row on disk, after OPTIMIZE FINAL (used by `python -m bench.sink storage`).

The same realistic rows (second aggregates of a simulated session: random-walk prices) go into
three layouts of `aggregates`, and each column's compressed size is reported per row:
- `current`: tickpipe's table (clickhouse/migrations/001_raw_tables.sql), filled the sink's way;
- `first`: the first layout (Float64 + Gorilla, received_ns UInt64 + Delta), for the before/after;
- variants of the current one, each a copy of its rows with some columns altered (VARIANTS), not
  chosen (docs/clickhouse.md says why): `decimal`, prices as Decimal64(8) + Delta; `zstd7`, prices
  at ZSTD(7); `integer_day_volume`, day_volume as UInt64 with Delta + T64 (T64 takes integers only);
  `copy`, unaltered (the baseline of the CPU figures).

For each variant the CPU of copying the rows in (`INSERT ... SELECT`, compression included) and of
the OPTIMIZE FINAL that merges them is reported per row: what a codec costs at insert and at merge.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson

from bench.sink_events import simulated_aggregates
from tickpipe_clickhouse.connect import INSERT_SETTINGS, connect
from tickpipe_clickhouse.schema.migrations import migrate
from tickpipe_clickhouse.sink.routing import COLUMNS

PRICES = ("open", "high", "low", "close", "vwap", "day_open", "day_vwap")
VARIANTS: dict[str, list[str]] = {
    "copy": [],
    "decimal": [f"{name} Decimal64(8) CODEC(Delta, ZSTD(3))" for name in PRICES],
    "zstd7": [f"{name} Float64 CODEC(Delta, ZSTD(7))" for name in PRICES],
    "integer_day_volume": ["day_volume UInt64 CODEC(Delta, T64, ZSTD(1))"],
}

FIRST = """
CREATE TABLE b.first
(
    ev LowCardinality(String), symbol LowCardinality(String),
    timestamp DateTime64(3, 'UTC') CODEC(DoubleDelta, ZSTD(1)),
    end_timestamp DateTime64(3, 'UTC') CODEC(DoubleDelta, ZSTD(1)),
    open Float64 CODEC(Gorilla, ZSTD(1)), high Float64 CODEC(Gorilla, ZSTD(1)),
    low Float64 CODEC(Gorilla, ZSTD(1)), close Float64 CODEC(Gorilla, ZSTD(1)),
    volume Float64 CODEC(Gorilla, ZSTD(1)), vwap Float64 CODEC(Gorilla, ZSTD(1)),
    day_volume Float64 CODEC(Gorilla, ZSTD(1)), day_open Float64 CODEC(Gorilla, ZSTD(1)),
    day_vwap Float64 CODEC(Gorilla, ZSTD(1)), avg_size Float64 CODEC(Gorilla, ZSTD(1)),
    otc Bool, received_ns UInt64 CODEC(Delta, ZSTD(1))
)
ENGINE = MergeTree PARTITION BY toYYYYMM(timestamp) ORDER BY (symbol, timestamp)
"""

FILL_FIRST = """
INSERT INTO b.first SELECT ev, symbol, timestamp, end_timestamp, open, high, low, close, volume, vwap,
    day_volume, day_open, day_vwap, avg_size, otc,
    toUInt64(toUnixTimestamp64Milli(received)) * 1000000 + {extra_ns:UInt32}
FROM b.aggregates
"""


def storage(seconds: int, work: Path) -> dict[str, Any]:
    values = [orjson.dumps(e) for e in simulated_aggregates(seconds, rate=5000)]
    client = connect(f"chdb://{work / 'chdb'}")
    migrate(client, "b")
    for start in range(0, len(values), 100_000):
        client.raw_insert(
            "b.aggregates",
            COLUMNS["aggregates"],
            insert_block=b"\n".join(values[start : start + 100_000]),
            fmt="JSONEachRow",
            settings={**INSERT_SETTINGS, "insert_deduplication_token": f"storage:{start}"},
        )
    client.command(FIRST)
    # The first layout kept nanoseconds; the producer's clock gives sub-millisecond digits, so give
    # them back a fixed fraction (a best case for its Delta codec).
    client.command(FILL_FIRST, parameters={"extra_ns": 123_456})
    rows = len(values)
    cpu_us: dict[str, dict[str, float]] = {}
    for variant, columns in VARIANTS.items():
        client.command(f"CREATE TABLE b.{variant} AS b.aggregates")
        for column in columns:
            client.command(f"ALTER TABLE b.{variant} MODIFY COLUMN {column}")
        started = time.process_time()  # chDB runs in this process: its threads count
        client.command(f"INSERT INTO b.{variant} SELECT * FROM b.aggregates")
        inserted = time.process_time()
        client.command(f"OPTIMIZE TABLE b.{variant} FINAL")
        cpu_us[variant] = {
            "insert_select_cpu_us_per_row": round((inserted - started) / rows * 1e6, 2),
            "optimize_final_cpu_us_per_row": round((time.process_time() - inserted) / rows * 1e6, 2),
        }
    result: dict[str, Any] = {
        "scenario": "storage",
        "rows": rows,
        "simulated_seconds": seconds,
        "json_bytes_per_row": round(sum(map(len, values)) / rows, 1),
    }
    for table in ("current", "first", *VARIANTS):
        name = "aggregates" if table == "current" else table
        if table not in VARIANTS:  # the variants were merged above, timed
            client.command(f"OPTIMIZE TABLE b.{name} FINAL")
        on_disk = client.query(
            "SELECT sum(bytes_on_disk) FROM system.parts WHERE database = 'b' AND table = {t:String}"
            " AND active",
            parameters={"t": name},
        ).result_rows[0][0]
        columns = client.query(
            "SELECT name, data_compressed_bytes FROM system.columns WHERE database = 'b'"
            " AND table = {t:String} AND data_compressed_bytes > 0 ORDER BY position",
            parameters={"t": name},
        ).result_rows
        result[table] = {
            "bytes_per_row": round(int(on_disk) / rows, 2),
            "ratio_to_json": round(result["json_bytes_per_row"] * rows / int(on_disk), 1),
            "columns_bytes_per_row": {column: round(int(size) / rows, 3) for column, size in columns},
            **cpu_us.get(table, {}),
        }
    client.close()
    return result
