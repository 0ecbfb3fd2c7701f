"""The research API and the Parquet export on embedded chDB: bars(), the as-of join, export to S3.

    python -m bench research [--param runs=20] [--param folder=DIR] [--record]

Data is generated inside ClickHouse into tickpipe's own tables (the real schema, codecs and
rollups): a year of minute bars for 20 symbols (one second aggregate per minute on weekdays,
6.5 h a day, through the bar views, then merged), and one session day of 1M trades
and 3M quotes over 100 symbols. Measured:
- `bars()` of one symbol over one year of minute bars (≈ 102k bars) as pandas, polars and Arrow,
  through `Research` on the read-only client `tickpipe query` uses (target < 50 ms); beside it the
  same bars through the `ohlcv_1m` view (what bars() read before), and bars() with a new window on
  every call (the guard's verdict is remembered by text, not by values);
- `trades_with_quotes()` of all 100 symbols over the day: 1M trades ASOF-joined to 3M quotes, as
  Arrow and pandas, and the same join counted inside ClickHouse (no transfer);
- `tickpipe export` of that day's trades and quotes to S3 (moto's server; AWS_ENDPOINT_URL if set):
  ClickHouse's write alone and the whole export with the manifest (target ≥ 1M rows/s), the
  manifest's files hashed several at once and one at a time, and the S3 server alone (100 PUTs of
  the mean file size, one and four at once).
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import resource
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tickpipe.config import load_settings
from tickpipe_clickhouse.connect import connect
from tickpipe_clickhouse.query.client import open_query_client
from tickpipe_clickhouse.query.limits import QueryLimits
from tickpipe_clickhouse.schema.migrations import migrate
from tickpipe_local.s3_server import LOCAL_AWS_ENV, MotoS3Server
from tickpipe_research import Research
from tickpipe_research.export.command import run_export
from tickpipe_research.export.settings import ExportSettings

DB = "bench_research"
BAR_SYMBOLS, YEAR = 20, 2025
TICK_SYMBOLS, TRADES, QUOTES = 100, 1_000_000, 3_000_000
SESSION = dt.datetime(2026, 12, 1, 14, 30, tzinfo=dt.UTC)
SESSION_MS = 6 * 3600_000 + 30 * 60_000

MINUTE_AGGREGATES = f"""
INSERT INTO {DB}.aggregates (ev, symbol, timestamp, end_timestamp, open, high, low, close, volume, vwap,
    avg_size)
SELECT 'A', concat('B', leftPad(toString(s), 3, '0')), t, t + toIntervalSecond(1),
       p, p + 0.05, p - 0.05, p + 0.01 * ((m % 7) - 3), 100 + (m * 37) % 900, p, 10
FROM (
    SELECT number % {BAR_SYMBOLS} AS s, intDiv(number, {BAR_SYMBOLS}) AS m,
           toDateTime64('{YEAR}-01-01 14:30:00', 3, 'UTC') + toIntervalDay(intDiv(m, 390))
               + toIntervalMinute(m % 390) AS t,
           round(50 + s + 10 * sin(m / 5000.0) + 0.01 * (cityHash64(number) % 100), 2) AS p
    FROM numbers({BAR_SYMBOLS * 365 * 390})
)
WHERE toDayOfWeek(t) <= 5
"""

QUOTE_ROWS = f"""
INSERT INTO {DB}.quotes (ev, symbol, timestamp, bid_price, bid_size, bid_exchange, ask_price, ask_size,
    ask_exchange, sequence)
SELECT 'Q', concat('S', leftPad(toString(number % {TICK_SYMBOLS}), 3, '0')),
       toDateTime64('2026-12-01 14:30:00', 3, 'UTC')
           + toIntervalMillisecond(intDiv(number, {TICK_SYMBOLS}) * {SESSION_MS * TICK_SYMBOLS // QUOTES}
               + cityHash64(number) % 500),
       round(100 + number % {TICK_SYMBOLS} + sin(intDiv(number, {TICK_SYMBOLS}) / 700.0), 2) AS bid,
       100 * (1 + cityHash64(number, 1) % 9), 11, bid + 0.01 * (1 + cityHash64(number, 2) % 4),
       100 * (1 + cityHash64(number, 3) % 9), 12, 2 * number
FROM numbers({QUOTES})
"""

TRADE_ROWS = f"""
INSERT INTO {DB}.trades (ev, symbol, timestamp, price, size, exchange, trade_id, tape, conditions, sequence)
SELECT 'T', concat('S', leftPad(toString(number % {TICK_SYMBOLS}), 3, '0')),
       toDateTime64('2026-12-01 14:30:00', 3, 'UTC')
           + toIntervalMillisecond(intDiv(number, {TICK_SYMBOLS}) * {SESSION_MS * TICK_SYMBOLS // TRADES}
               + cityHash64(number) % 2000),
       round(100 + number % {TICK_SYMBOLS} + sin(intDiv(number, {TICK_SYMBOLS}) * 3 / 700.0)
           + 0.01 * (cityHash64(number, 4) % 5), 2),
       1 + cityHash64(number, 5) % 300, 4 + number % 9, toString(number), 3,
       if(number % 7 = 0, [12], []), 2 * number + 1
FROM numbers({TRADES})
"""


def process_cpu_s() -> float:
    """CPU seconds of this process, every thread (chDB runs in-process: the engine's work included)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed(call: Callable[[], Any], runs: int) -> dict[str, float]:
    """Wall and CPU milliseconds of `runs` calls after a warm-up (CPU: less sensitive to a shared machine)."""
    call()  # warm: the first touch of the parts
    walls, cpus = [], []
    for _ in range(runs):
        started, cpu = time.perf_counter(), process_cpu_s()
        call()
        walls.append((time.perf_counter() - started) * 1000)
        cpus.append((process_cpu_s() - cpu) * 1000)
    walls.sort()
    return {
        "median_ms": round(statistics.median(walls), 2),
        "p95_ms": round(walls[min(len(walls) - 1, int(len(walls) * 0.95))], 2),
        "min_ms": round(walls[0], 2),
        "cpu_median_ms": round(statistics.median(cpus), 2),
        "load_1m": round(os.getloadavg()[0], 2),
    }


def generate(client: Any) -> dict[str, float]:
    migrate(client, DB)
    out: dict[str, float] = {}
    counts = {
        table: int(client.query(f"SELECT count() FROM {DB}.{table}").result_rows[0][0])
        for table in ("aggregates", "trades", "quotes")
    }
    if counts["aggregates"] == 0:
        started = time.perf_counter()
        client.command(MINUTE_AGGREGATES)
        for table in ("aggregates", "bars"):
            client.command(f"OPTIMIZE TABLE {DB}.{table} FINAL")
        out["generate_bars_s"] = round(time.perf_counter() - started, 1)
    if counts["trades"] != TRADES or counts["quotes"] != QUOTES:
        started = time.perf_counter()
        client.command(f"TRUNCATE TABLE {DB}.trades")
        client.command(f"TRUNCATE TABLE {DB}.quotes")
        client.command(QUOTE_ROWS)
        client.command(TRADE_ROWS)
        client.command(f"OPTIMIZE TABLE {DB}.trades FINAL")
        client.command(f"OPTIMIZE TABLE {DB}.quotes FINAL")
        out["generate_ticks_s"] = round(time.perf_counter() - started, 1)
    return out


# What bars() ran before it read the bar tables itself: the ohlcv_1m view (the side-by-side "before").
VIEW_BARS = (
    "SELECT symbol, toDateTime64(bucket, 3, 'UTC') AS bucket, open, high, low, close, volume, vwap, trades\n"
    "FROM ohlcv_1m WHERE symbol IN {symbols:Array(String)}\n"
    "    AND bucket >= {start:DateTime64(6, 'UTC')} AND bucket < {end:DateTime64(6, 'UTC')}\n"
    "ORDER BY symbol, bucket"
)


def bench_bars(research: Research, runs: int) -> dict[str, Any]:
    from tickpipe_research.times import window

    start, end = dt.date(YEAR, 1, 1), dt.date(YEAR + 1, 1, 1)
    table = research.bars("B007", start, end, "1m", as_="arrow")
    first, last = window(start, end)
    params = {"symbols": ["B007"], "start": first, "end": last}
    view = research.query(VIEW_BARS, params, as_="arrow")
    out: dict[str, Any] = {"rows": table.num_rows, "same_as_view": table.equals(view)}
    for kind in ("pandas", "polars", "arrow"):
        out[kind] = timed(functools.partial(research.bars, "B007", start, end, "1m", as_=kind), runs)
    out["view_arrow"] = timed(lambda: research.query(VIEW_BARS, params, as_="arrow"), max(3, runs // 4))
    days = iter(range(10_000))  # a new window on every call: the guard's verdict is remembered by text

    def fresh() -> Any:
        offset = dt.timedelta(days=next(days) % 300)
        return research.bars("B007", start + offset, end, "1m", as_="arrow")

    out["arrow_new_window_each_call"] = timed(fresh, runs)
    out["daily_pandas"] = timed(lambda: research.bars("B007", start, end, "1d"), runs)
    return out


def moto_ceiling(s3: Any, bucket: str, size: int, count: int = 100) -> dict[str, Any]:
    """What the S3 server alone takes: `count` PUTs of `size` bytes (the export's mean file size),
    one at a time and four at once."""
    from concurrent.futures import ThreadPoolExecutor

    body = os.urandom(size)
    out: dict[str, Any] = {"objects": count, "kib": round(size / 1024, 1)}
    for workers in (1, 4):
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=workers) as pool:
            keys = [f"ceiling/{workers}/{n}" for n in range(count)]
            list(pool.map(lambda key: s3.put_object(Bucket=bucket, Key=key, Body=body), keys))
        seconds = time.perf_counter() - started
        out[f"put_{workers}_at_once"] = {
            "s": round(seconds, 2),
            "objects_per_s": round(count / seconds, 1),
            "mib_per_s": round(count * size / 2**20 / seconds, 2),
        }
    out["load_1m"] = round(os.getloadavg()[0], 2)
    return out


def bench_asof(research: Research, runs: int) -> dict[str, Any]:
    symbols = [f"S{i:03d}" for i in range(TICK_SYMBOLS)]
    end = SESSION + dt.timedelta(hours=7)
    table = research.trades_with_quotes(symbols, SESSION, end, 5.0, as_="arrow")
    locations = dict(
        research.query(
            "SELECT location, count() AS n FROM ({inner}) GROUP BY location ORDER BY location".replace(
                "{inner}", _asof_sql()
            ),
            _asof_params(symbols, end),
            as_="arrow",
        )
        .to_pandas()
        .itertuples(index=False, name=None)
    )
    count_sql = f"SELECT count(), countIf(has_quote) FROM ({_asof_sql()})"
    return {
        "trades": table.num_rows,
        "with_quote": int(table.column("has_quote").to_pandas().sum()),
        "locations": {str(k): int(v) for k, v in locations.items()},
        "arrow": timed(lambda: research.trades_with_quotes(symbols, SESSION, end, 5.0, as_="arrow"), runs),
        "pandas": timed(lambda: research.trades_with_quotes(symbols, SESSION, end, 5.0), max(3, runs // 4)),
        "in_clickhouse_count": timed(
            lambda: research.query(count_sql, _asof_params(symbols, end), as_="arrow"), runs
        ),
    }


def _asof_sql() -> str:
    from tickpipe_research.sql import trades_with_quotes_sql

    return trades_with_quotes_sql()


def _asof_params(symbols: list[str], end: dt.datetime) -> dict[str, Any]:
    from tickpipe_research.times import window

    first, last = window(SESSION, end)
    return {"symbols": symbols, "start": first, "end": last, "max_staleness_ms": 5000}


def bench_export(folder: Path, client: Any) -> dict[str, Any]:
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    server = None
    for key, value in LOCAL_AWS_ENV.items():
        os.environ.setdefault(key, value)
    if not endpoint:
        server = MotoS3Server(folder / "s3").start()
        endpoint = server.endpoint
    try:
        bucket = f"bench-{uuid.uuid4().hex[:8]}"
        import boto3

        s3 = boto3.client("s3", endpoint_url=endpoint, region_name=LOCAL_AWS_ENV["AWS_DEFAULT_REGION"])
        s3.create_bucket(Bucket=bucket)
        settings = load_settings(
            ExportSettings,
            {
                "clickhouse_database": DB,
                "export_uri": f"s3://{bucket}/bench",
                "export_datasets": "trades,quotes",
                "aws_endpoint_url": endpoint,
            },
        )
        out: dict[str, Any] = {"endpoint": "AWS_ENDPOINT_URL" if server is None else "moto (started)"}
        import tickpipe_research.export.day as day_module

        workers = day_module.HASH_WORKERS
        # `again` replaces the day: delete, write, manifest; `one_by_one` hashes the files one at a time
        for attempt in ("first", "again", "one_by_one"):
            day_module.HASH_WORKERS = 1 if attempt == "one_by_one" else workers
            cpu = process_cpu_s()
            done = run_export(settings, [SESSION.date()], client=client, s3=s3)
            out[f"{attempt}_cpu_s"] = round(process_cpu_s() - cpu, 2)
            out[f"{attempt}_load_1m"] = round(os.getloadavg()[0], 2)
            out[attempt] = {
                d.dataset: {
                    "rows": d.rows,
                    "files": d.files,
                    "mib": round(d.bytes / 2**20, 1),
                    "write_s": round(d.write_seconds, 3),
                    "total_s": round(d.seconds, 3),
                    "write_rows_per_s": round(d.rows / d.write_seconds),
                    "total_rows_per_s": round(d.rows / d.seconds),
                }
                for d in done
            }
        day_module.HASH_WORKERS = workers
        trades = out["again"]["trades"]
        out["s3_alone"] = moto_ceiling(s3, bucket, int(trades["mib"] * 2**20 / max(1, trades["files"])))
        return out
    finally:
        if server is not None:
            server.stop()


def run(params: dict[str, str]) -> tuple[dict[str, Any], str]:
    runs = int(params.get("runs", "20"))
    folder = Path(params.get("folder") or tempfile.mkdtemp(prefix="tickpipe-bench-research-"))
    writer = connect(f"chdb://{folder}")
    result: dict[str, Any] = {"scenario": "research", "folder": str(folder), **generate(writer)}
    # the query path `tickpipe query` uses, with room for the join's million rows
    reader = open_query_client(f"chdb://{folder}", DB, limits=QueryLimits(max_result_bytes=2 << 30))
    research = Research(reader)
    result["bars_1y_1m"] = bench_bars(research, runs)
    result["asof_1m_trades_3m_quotes"] = bench_asof(research, max(3, runs // 4))
    result["export"] = bench_export(folder, writer)
    bars, asof, export = result["bars_1y_1m"], result["asof_1m_trades_3m_quotes"], result["export"]["again"]
    rows = sum(d["rows"] for d in export.values())
    write_s = sum(d["write_s"] for d in export.values())
    total_s = sum(d["total_s"] for d in export.values())
    summary = (
        f"bars() 1 symbol x 1 year of minute bars ({bars['rows']} bars): "
        f"pandas {bars['pandas']['median_ms']} ms, "
        f"polars {bars['polars']['median_ms']} ms, arrow {bars['arrow']['median_ms']} ms (median; "
        f"CPU {bars['arrow']['cpu_median_ms']} ms, load {bars['arrow']['load_1m']}; through the view "
        f"{bars['view_arrow']['median_ms']} ms, CPU {bars['view_arrow']['cpu_median_ms']} ms); "
        f"as-of join {asof['trades']} trades x 3M quotes: {asof['arrow']['median_ms']:.0f} ms to Arrow, "
        f"{asof['pandas']['median_ms']:.0f} ms to pandas, {asof['in_clickhouse_count']['median_ms']:.0f} ms "
        f"counted in ClickHouse; export {rows} rows to moto S3: write {rows / write_s / 1e6:.2f}M rows/s, "
        f"with manifest {rows / total_s / 1e6:.2f}M rows/s; S3 alone "
        f"{result['export']['s3_alone']['put_4_at_once']['objects_per_s']} PUTs/s (4 at once)"
    )
    reader.close()
    writer.close()
    return result, summary
