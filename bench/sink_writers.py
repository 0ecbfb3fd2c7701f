"""Writer paths compared on the same rows, in-process into chDB (used by `python -m bench.sink writer`).

- json_each_row: what the sink does: the Kafka values joined with newlines, parsed by ClickHouse,
  straight into `aggregates` (its EPHEMERAL input columns take the JSON field names).
- python_columns: orjson.loads each value, build columns in Python, insert through one reused
  clickhouse-connect insert context (the issue's first idea).
- loop_100: the Timescale-tutorial style peer: parse and insert 100 rows at a time.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any

import orjson

from bench.sink_events import simulated_aggregates
from tickpipe_clickhouse.connect import INSERT_SETTINGS, connect
from tickpipe_clickhouse.schema.migrations import migrate
from tickpipe_clickhouse.sink.routing import COLUMNS
from tickpipe_clickhouse.sink.service import EMBEDDED_INSERT_SETTINGS

FLOATS = ("open", "high", "low", "close", "volume", "vwap", "day_open", "day_vwap", "avg_size")
STORED = ("ev", "symbol", "timestamp", "end_timestamp", *FLOATS, "day_volume", "otc", "received_delay_ms")


def to_columns(values: list[bytes]) -> list[list[Any]]:
    records = [orjson.loads(v) for v in values]
    return [
        [r["ev"] for r in records],
        [r["symbol"] for r in records],
        [r["start_ms"] for r in records],  # DateTime64(3) ticks
        [r["end_ms"] for r in records],
        *([r[name] or 0.0 for r in records] for name in FLOATS),
        [r["day_volume"] or 0 for r in records],
        [bool(r["otc"]) for r in records],
        [r["received_ns"] // 1_000_000 - r["end_ms"] for r in records],
    ]


def compare_writers(rows: int, work: Path) -> dict[str, Any]:
    values = [orjson.dumps(e) for e in itertools.islice(simulated_aggregates(rows // 95 + 60), rows)]
    client = connect(f"chdb://{work / 'chdb'}")
    results: dict[str, Any] = {"scenario": "writer", "rows": rows}
    for db in ("w_json", "w_cols", "w_loop"):
        migrate(client, db)

    started = time.perf_counter()
    for i in range(0, rows, 50_000):
        client.raw_insert(
            "w_json.aggregates",
            COLUMNS["aggregates"],
            insert_block=b"\n".join(values[i : i + 50_000]),
            fmt="JSONEachRow",
            settings={
                **INSERT_SETTINGS,
                **EMBEDDED_INSERT_SETTINGS,
                "insert_deduplication_token": f"j{i}",
            },
        )
    results["json_each_row_rows_per_s"] = round(rows / (time.perf_counter() - started))

    started = time.perf_counter()
    context = client.create_insert_context("w_cols.aggregates", list(STORED), column_oriented=True)
    for i in range(0, rows, 50_000):
        context.data = to_columns(values[i : i + 50_000])
        context.settings["insert_deduplication_token"] = f"c{i}"
        client.insert(context=context)
    results["python_columns_rows_per_s"] = round(rows / (time.perf_counter() - started))

    loop_rows = min(rows, 20_000)
    started = time.perf_counter()
    for i in range(0, loop_rows, 100):
        client.insert(
            "w_loop.aggregates",
            list(zip(*to_columns(values[i : i + 100]), strict=True)),
            column_names=list(STORED),
        )
    results["loop_100_rows_per_s"] = round(loop_rows / (time.perf_counter() - started))

    counts = [
        client.query(f"SELECT count() FROM {db}.aggregates").result_rows[0][0] for db in ("w_json", "w_cols")
    ]
    results["same_row_counts"] = counts == [rows, rows]
    client.close()
    return results
