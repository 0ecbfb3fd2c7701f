"""TDengine's stock-ticker query shapes on 5 years x 100 symbols of 1-minute bars, in chDB.

    python -m bench.queries [--folder DIR] [--runs 20]      # prints one JSON object

The data (~49M rows: 100 symbols x 1260 trading days x 390 minutes) is generated inside ClickHouse
into tickpipe's own `aggregates` table (ev = 'AM', the real schema and codecs), and the daily
level of `bars` is filled from it the way the materialized view would. Each shape asks for daily OHLC of
1 or 8 symbols over 1 day, 1 year or 5 years, answered two ways (scanning the minute bars, and from
the rollup) through two clients: clickhouse-connect (what `tickpipe query` uses) and chDB's own
Python API (no driver layer: the closest to the article's in-process JNI client). Reference: the
article's JNI-JDBC column, 5, 9, 29, 7, 60, 225 ms. Reuse a generated folder with --folder.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import chdb

from tickpipe_clickhouse.connect import connect
from tickpipe_clickhouse.schema.migrations import migrate

SYMBOLS, DAYS, MINUTES = 100, 1260, 390
REFERENCE_MS = {"1x1d": 5, "1x1y": 9, "1x5y": 29, "8x1d": 7, "8x1y": 60, "8x5y": 225}
DB = "bench"

GENERATE = f"""
INSERT INTO {DB}.aggregates (ev, symbol, timestamp, end_timestamp, open, high, low, close, volume, vwap)
SELECT 'AM', concat('S', leftPad(toString(s), 3, '0')),
       t, t + 60,
       p, p + 0.05, p - 0.05, p + 0.01 * ((m % 7) - 3), 100 + (m * 37) % 900, p
FROM (
    SELECT number % {SYMBOLS} AS s, intDiv(number, {SYMBOLS}) AS m,
           toDateTime64('2020-01-01 14:30:00', 3, 'UTC') + toIntervalDay(intDiv(m, {MINUTES}))
               + toIntervalMinute(m % {MINUTES}) AS t,
           round(50 + s + 10 * sin(m / 5000.0) + 0.01 * (cityHash64(number) % 100), 2) AS p
    FROM numbers({SYMBOLS * DAYS * MINUTES})
)
"""

# The bench fills the daily level of `bars` itself, the way the views would (source AM, open and
# close on the time key), so the views that build bars from aggregates on write are dropped first.
BAR_VIEWS = ("bars_from_aggregates_mv", "bars_corrections_mv")
ROLLUP = f"""
INSERT INTO {DB}.bars (seconds, symbol, bucket, source, open, high, low, close, volume, pv, trades)
SELECT 86400, symbol, toStartOfDay(timestamp), 'AM',
       argMinState(open, toInt128(toUnixTimestamp64Milli(timestamp)) * toInt128('18446744073709551616')),
       max(high), min(low),
       argMaxState(close, toInt128(toUnixTimestamp64Milli(timestamp)) * toInt128('18446744073709551616')),
       sum(volume), sum(vwap * volume), 0
FROM {DB}.aggregates GROUP BY symbol, toStartOfDay(timestamp)
"""

SCAN = """
SELECT symbol, toDate(timestamp) AS day, argMin(open, timestamp) AS open, max(high) AS high,
       min(low) AS low, argMax(close, timestamp) AS close, sum(volume) AS volume
FROM aggregates
WHERE symbol IN {symbols:Array(String)}
    AND timestamp >= {start:DateTime64(3)} AND timestamp < {end:DateTime64(3)}
GROUP BY symbol, day ORDER BY symbol, day
"""

FROM_ROLLUP = """
SELECT symbol, bucket AS day, argMinMerge(open) AS open, max(high) AS high, min(low) AS low,
       argMaxMerge(close) AS close, sum(volume) AS volume
FROM bars
WHERE seconds = 86400 AND symbol IN {symbols:Array(String)}
    AND bucket >= {start:DateTime64(3)} AND bucket < {end:DateTime64(3)}
GROUP BY symbol, day ORDER BY symbol, day
"""

FROM_VIEW = """
SELECT symbol, bucket AS day, open, high, low, close, volume
FROM ohlcv_1d
WHERE symbol IN {symbols:Array(String)}
    AND bucket >= {start:DateTime64(3)} AND bucket < {end:DateTime64(3)}
ORDER BY symbol, day
"""


def shapes() -> dict[str, dict[str, Any]]:
    one, eight = ["S042"], [f"S{i:03d}" for i in range(10, 90, 10)]
    spans = {
        "1d": ("2022-06-01", "2022-06-02"),
        "1y": ("2021-01-01", "2022-01-01"),
        "5y": ("2020-01-01", "2026-01-01"),
    }
    out = {}
    for count, symbols in (("1", one), ("8", eight)):
        for span, (start, end) in spans.items():
            out[f"{count}x{span}"] = {
                "symbols": symbols,
                "start": f"{start} 00:00:00",
                "end": f"{end} 00:00:00",
            }
    return out


def timed(run: Callable[[], int], runs: int) -> tuple[float, float, int]:
    """Median and max milliseconds of `runs` calls (after one warm-up call), and the rows returned."""
    run()  # warm: first touch of the parts
    samples, rows = [], 0
    for _ in range(runs):
        started = time.perf_counter()
        rows = run()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples), max(samples), rows


def connect_runner(client: Any, sql: str, params: dict[str, Any]) -> Callable[[], int]:
    return lambda: len(client.query(sql, parameters=params).result_rows)


def native_runner(conn: Any, sql: str, params: dict[str, Any]) -> Callable[[], int]:
    """chDB's Connection.query with server-side parameters (values in ClickHouse's text form)."""
    text = {
        name: "[" + ",".join(f"'{v}'" for v in value) + "]" if isinstance(value, list) else str(value)
        for name, value in params.items()
    }
    return lambda: int(conn.query(sql, "ArrowTable", params=text).num_rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--folder", default=None, help="chDB folder (kept between runs; default: a temp dir)")
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args(argv)
    folder = args.folder or tempfile.mkdtemp(prefix="tickpipe-bench-queries-")
    client = connect(f"chdb://{folder}")
    migrate(client, DB)
    count_sql = f"SELECT count() FROM {DB}.aggregates"
    rows = int(client.query(count_sql).result_rows[0][0])
    result: dict[str, Any] = {"scenario": "queries", "folder": folder}
    if rows < SYMBOLS * DAYS * MINUTES:
        started = time.perf_counter()
        client.command(f"TRUNCATE TABLE {DB}.aggregates")
        for view in BAR_VIEWS:
            client.command(f"DROP VIEW IF EXISTS {DB}.{view}")
        client.command(GENERATE)
        client.command(f"OPTIMIZE TABLE {DB}.aggregates FINAL")
        client.command(ROLLUP)
        client.command(f"OPTIMIZE TABLE {DB}.bars FINAL")
        result["generate_s"] = round(time.perf_counter() - started, 1)
    parts = client.query(
        "SELECT sum(rows), sum(bytes_on_disk) FROM system.parts WHERE database = {db:String} "
        "AND table = 'aggregates' AND active",
        parameters={"db": DB},
    ).result_rows[0]
    result["rows"], result["bytes_per_row"] = int(parts[0]), round(int(parts[1]) / max(1, int(parts[0])), 2)
    client.close()
    client = connect(f"chdb://{folder}", DB)
    conn = chdb.connect(str(Path(folder).resolve()))  # type: ignore[no-untyped-call]  # chDB's own API
    conn.query(f"USE {DB}")
    result["shapes"] = {}
    for name, params in shapes().items():
        timings: dict[str, Any] = {}
        for source, sql in (("scan", SCAN), ("rollup", FROM_ROLLUP), ("view", FROM_VIEW)):
            for api, runner in (("connect", connect_runner), ("native", native_runner)):
                median, worst, rows = timed(
                    runner(client if api == "connect" else conn, sql, params), args.runs
                )
                timings[f"{source}_{api}_median_ms"] = round(median, 2)
                timings[f"{source}_{api}_max_ms"] = round(worst, 2)
                timings[f"{source}_rows"] = rows
        reference = REFERENCE_MS[name]
        best = min(v for k, v in timings.items() if k.endswith("_median_ms") and not k.startswith("view"))
        result["shapes"][name] = {
            "reference_ms": reference,
            **timings,
            "same_rows": timings["scan_rows"] == timings["rollup_rows"] == timings["view_rows"],
            "best_ms": best,
            "best_speedup_vs_reference": round(reference / best, 1),
            "meets": best <= reference / 5 if name.endswith("5y") else best <= reference,
        }
    conn.close()
    json.dump(result, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
