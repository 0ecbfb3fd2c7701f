"""What bars per source, corrections and trade conditions cost, in chDB.

    python -m bench bars [--minutes 20000] [--runs 10]      # prints one JSON object

A session of 20 symbols: second aggregates (A) for 10, minute aggregates (AM, 5% of them re-sent
with late trades) for 10, and trades with condition codes for all 20, inserted as the sink inserts
(JSONEachRow, 50k-row blocks). Measured: insert time per row of each raw table with and without the
bar views (the views dropped in a second database), and the ways to read corrected aggregates
(`aggregates_latest` = argMax on the receipt; `LIMIT 1 BY` on the newest receipt; the raw rows with
every receipt) and the bar views against the bar tables.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from typing import Any

import orjson

from tickpipe_clickhouse.connect import INSERT_SETTINGS, connect
from tickpipe_clickhouse.schema.migrations import migrate
from tickpipe_clickhouse.sink.routing import COLUMNS

T0 = 1_733_149_800_000
BAR_VIEWS = (
    "bars_from_aggregates_mv",
    "bars_corrections_mv",
    "bars_from_trades_mv",
    "bars_from_quotes_mv",
)


def session(minutes: int, seed: int = 7) -> dict[str, list[bytes]]:
    rng = random.Random(seed)
    aggs: list[bytes] = []
    trades: list[bytes] = []
    for m in range(minutes):
        start = T0 + m * 60_000
        for s in range(10):
            price = 50 + s + rng.random()
            for second in range(0, 60, 3):  # 20 second bars a minute
                t = start + second * 1000
                aggs.append(orjson.dumps({
                    "ev": "A", "symbol": f"A{s}", "start_ms": t, "end_ms": t + 1000, "open": price,
                    "high": price + 0.02, "low": price - 0.02, "close": price + 0.01, "volume": 100.0,
                    "vwap": price, "avg_size": 10.0, "received_ns": (t + 3000) * 1_000_000,
                }))  # fmt: skip
            bar = {
                "ev": "AM", "symbol": f"M{s}", "start_ms": start, "end_ms": start + 60_000, "open": price,
                "high": price + 0.1, "low": price - 0.1, "close": price, "volume": 5000.0, "vwap": price,
                "avg_size": 50.0, "received_ns": (start + 61_000) * 1_000_000,
            }  # fmt: skip
            aggs.append(orjson.dumps(bar))
            if rng.random() < 0.05:
                late = {
                    **bar,
                    "volume": 5300.0,
                    "high": price + 0.2,
                    "received_ns": (start + 90_000) * 1_000_000,
                }
                aggs.append(orjson.dumps(late))
        for n in range(20):
            t = start + rng.randrange(60_000)
            trades.append(orjson.dumps({
                "ev": "T", "symbol": f"T{n}", "ts_ms": t, "price": 20 + n + rng.random(), "size": 100.0,
                "exchange": 4, "trade_id": str(m * 20 + n), "tape": 1,
                "conditions": rng.choice([[], [12], [37], [14, 37], [0]]), "sequence": m * 20 + n,
                "received_ns": (t + 5) * 1_000_000,
            }))  # fmt: skip
    aggs.sort(key=lambda v: orjson.loads(v)["received_ns"])
    return {"aggregates": aggs, "trades": trades}


def insert_seconds(
    client: Any, db: str, data: dict[str, list[bytes]], block: int = 50_000
) -> dict[str, float]:
    out = {}
    for table, values in data.items():
        started = time.perf_counter()
        for i in range(0, len(values), block):
            client.raw_insert(
                f"`{db}`.{table}",
                COLUMNS[table],
                insert_block=b"\n".join(values[i : i + block]),
                fmt="JSONEachRow",
                settings={**INSERT_SETTINGS, "insert_deduplication_token": f"{table}:{i}"},
            )
        out[table] = time.perf_counter() - started
    return out


def timed(client: Any, sql: str, runs: int) -> tuple[float, int]:
    rows = len(client.query(sql).result_rows)
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        client.query(sql)
        samples.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(samples), 2), rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args(argv)
    client = connect(f"chdb://{tempfile.mkdtemp(prefix='tickpipe-bench-bars-')}")
    data = session(args.minutes)
    result: dict[str, Any] = {"scenario": "bars", "rows": {t: len(v) for t, v in data.items()}}
    for db, views in (("with_views", True), ("without_views", False)):
        migrate(client, db)
        if not views:
            for view in BAR_VIEWS:
                client.command(f"DROP VIEW IF EXISTS `{db}`.{view}")
        seconds = insert_seconds(client, db, data)
        result[db] = {f"{t}_us_per_row": round(1e6 * s / len(data[t]), 2) for t, s in seconds.items()}
    db = "with_views"
    m = "M3"
    reads = {
        "aggregates_latest (argMax view), one symbol": (
            f"SELECT * FROM {db}.aggregates_latest WHERE symbol = '{m}'"
        ),
        "LIMIT 1 BY newest receipt, one symbol": (
            f"SELECT * FROM {db}.aggregates WHERE symbol = '{m}' "
            "ORDER BY symbol, ev, timestamp, received DESC LIMIT 1 BY symbol, ev, timestamp"
        ),
        "raw rows (every receipt), one symbol": f"SELECT * FROM {db}.aggregates WHERE symbol = '{m}'",
        "aggregates_latest, every symbol, count": f"SELECT count() FROM {db}.aggregates_latest",
        "ohlcv_1m view, one symbol": f"SELECT * FROM {db}.ohlcv_1m WHERE symbol = 'A3'",
        "bars (1m level) merged by hand, one symbol (no source pick)": (
            f"SELECT symbol, bucket, argMinMerge(open), max(high), min(low), argMaxMerge(close), sum(volume) "
            f"FROM {db}.bars WHERE seconds = 60 AND symbol = 'A3' GROUP BY symbol, bucket"
        ),
        "ohlcv_1d view, one symbol": f"SELECT * FROM {db}.ohlcv_1d WHERE symbol = 'A3'",
    }
    result["reads_median_ms"] = {}
    for name, sql in reads.items():
        ms, rows = timed(client, sql, args.runs)
        result["reads_median_ms"][name] = {"ms": ms, "rows": rows}
    json.dump(result, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
