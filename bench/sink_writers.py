"""Writer paths compared on the same rows, in-process into chDB (used by `python -m bench.sink writer`).

- json_each_row: what the sink does: the Kafka values joined with newlines, parsed by ClickHouse,
  straight into `aggregates` (its EPHEMERAL input columns take the JSON field names).
- python_columns: orjson.loads each value, build columns in Python, insert through one reused
  clickhouse-connect insert context (the issue's first idea).
- loop_100: the Timescale-tutorial style peer: parse and insert 100 rows at a time.
- arrow_from_json: the values joined, read by Arrow's C++ JSON reader with the table's schema, and
  inserted as ArrowStream (columns built outside ClickHouse; chDB ships pyarrow).
- msgspec_arrow: the values decoded by msgspec into the processor's own output struct (typed, in
  C), each column gathered in Python into an Arrow array, inserted as ArrowStream.
- json_each_row_by_insert_rows: the sink's path with inserts of 25k rows (one partition's share of
  a 100k-row buffer over 4 partitions) against 100k rows, per CPU-second of this process; then the
  25k-row inserts without the table's materialized views (`no_views`) and into a Null table
  (`parse_only`: ClickHouse's JSON parsing alone).
"""

from __future__ import annotations

import io
import itertools
import time
from operator import attrgetter
from pathlib import Path
from typing import Any

import msgspec
import orjson

from bench.sink_events import simulated_aggregates
from tickpipe_clickhouse.connect import INSERT_SETTINGS, connect
from tickpipe_clickhouse.schema.migrations import migrate
from tickpipe_clickhouse.sink.routing import COLUMNS
from tickpipe_clickhouse.sink.service import EMBEDDED_INSERT_SETTINGS
from tickpipe_processor.output import Aggregate

AGGREGATE_VIEWS = ("bars_from_aggregates_mv", "bars_corrections_mv", "latest_from_aggregates_mv")
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


def _insert_arrow(client: Any, table_name: str, table: Any, token: str) -> None:
    """One Arrow table into chDB as ArrowStream, deduplicated by `token` like the sink's inserts."""
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as stream:
        stream.write_table(table)
    client.raw_insert(
        table_name,
        table.schema.names,
        insert_block=sink.getvalue().to_pybytes(),
        fmt="ArrowStream",
        settings={**INSERT_SETTINGS, **EMBEDDED_INSERT_SETTINGS, "insert_deduplication_token": token},
    )


def _json_rows_per_cpu_s(client: Any, table_name: str, values: list[bytes], size: int, token: str) -> int:
    """`values` into `table_name` as the sink inserts them (JSONEachRow, `size` rows an insert)."""
    settings = {**INSERT_SETTINGS, **EMBEDDED_INSERT_SETTINGS}
    cpu = time.process_time()
    for i in range(0, len(values), size):
        client.raw_insert(
            table_name,
            COLUMNS["aggregates"],
            insert_block=b"\n".join(values[i : i + size]),
            fmt="JSONEachRow",
            settings={**settings, "insert_deduplication_token": f"{token}{i}"},
        )
    return round(len(values) / (time.process_time() - cpu))


def compare_writers(rows: int, work: Path) -> dict[str, Any]:
    values = [orjson.dumps(e) for e in itertools.islice(simulated_aggregates(rows // 95 + 60), rows)]
    client = connect(f"chdb://{work / 'chdb'}")
    results: dict[str, Any] = {"scenario": "writer", "rows": rows}
    for db in ("w_json", "w_cols", "w_loop"):
        migrate(client, db)

    started, cpu = time.perf_counter(), time.process_time()
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
    results["json_each_row_rows_per_cpu_s"] = round(rows / (time.process_time() - cpu))

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

    import pyarrow as pa
    import pyarrow.json as pj

    migrate(client, "w_arrow")
    types = {"ev": pa.string(), "symbol": pa.string(), "start_ms": pa.int64(), "end_ms": pa.int64()}
    types |= {"otc": pa.bool_(), "received_ns": pa.uint64()}  # the rest Float64, day_volume too (007)
    schema = pa.schema([(c, types.get(c, pa.float64())) for c in COLUMNS["aggregates"]])
    options = pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
    started, cpu = time.perf_counter(), time.process_time()
    for i in range(0, rows, 50_000):
        table = pj.read_json(io.BytesIO(b"\n".join(values[i : i + 50_000])), parse_options=options)
        _insert_arrow(client, "w_arrow.aggregates", table, f"a{i}")
    results["arrow_from_json_rows_per_s"] = round(rows / (time.perf_counter() - started))
    results["arrow_from_json_rows_per_cpu_s"] = round(rows / (time.process_time() - cpu))

    migrate(client, "w_msgspec")
    decoder = msgspec.json.Decoder(list[Aggregate])
    getters = [(name, attrgetter(name), types.get(name, pa.float64())) for name in COLUMNS["aggregates"]]
    started, cpu = time.perf_counter(), time.process_time()
    for i in range(0, rows, 50_000):
        decoded = decoder.decode(b"[" + b",".join(values[i : i + 50_000]) + b"]")
        arrays = [pa.array(list(map(get, decoded)), type=kind) for _, get, kind in getters]
        arrays = [  # JSON null: the column's default, as ClickHouse stores it (input_format_null_as_default)
            a.fill_null(False if a.type == pa.bool_() else 0) if a.null_count else a for a in arrays
        ]
        table = pa.Table.from_arrays(arrays, names=[name for name, _, _ in getters])
        _insert_arrow(client, "w_msgspec.aggregates", table, f"m{i}")
    results["msgspec_arrow_rows_per_s"] = round(rows / (time.perf_counter() - started))
    results["msgspec_arrow_rows_per_cpu_s"] = round(rows / (time.process_time() - cpu))

    by_size = {}
    for size in (25_000, 100_000):
        db = f"w_size{size}"
        migrate(client, db)
        by_size[str(size)] = _json_rows_per_cpu_s(client, f"{db}.aggregates", values, size, "s")
    results["json_each_row_by_insert_rows_per_cpu_s"] = by_size

    # The 25k-row inserts again, without the table's views, and into a Null table of the same input
    # columns (ClickHouse's JSON parsing and nothing else).
    migrate(client, "w_noviews")
    for view in AGGREGATE_VIEWS:
        client.command(f"DROP VIEW w_noviews.{view}")
    columns = client.query(
        "SELECT name, type FROM system.columns WHERE database = 'w_noviews' AND table = 'aggregates'"
    ).result_rows
    types_of = dict(columns)  # the EPHEMERAL inputs are listed too
    listed = ", ".join(f"`{name}` {types_of[name]}" for name in COLUMNS["aggregates"])
    client.command(f"CREATE TABLE w_noviews.parse_only ({listed}) ENGINE = Null")
    for name, table in (("no_views", "aggregates"), ("parse_only", "parse_only")):
        rate = _json_rows_per_cpu_s(client, f"w_noviews.{table}", values, 25_000, name)
        results[f"json_each_row_25000_{name}_rows_per_cpu_s"] = rate

    databases = ("w_json", "w_cols", "w_arrow", "w_msgspec", "w_size25000", "w_size100000")
    counts = [client.query(f"SELECT count() FROM {db}.aggregates").result_rows[0][0] for db in databases]
    results["same_row_counts"] = counts == [rows] * len(databases)
    differing = (
        "SELECT count() FROM (SELECT * FROM w_json.aggregates EXCEPT SELECT * FROM w_msgspec.aggregates)"
    )
    results["msgspec_arrow_same_rows_as_json"] = client.query(differing).result_rows[0][0] == 0
    client.close()
    return results
