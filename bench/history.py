"""History loads: REST backfill rows/s (simulator -> official RESTClient -> chDB) and flat-file rows/s.

    python -m bench history                                  # both, JSON on stdout
    python -m bench history --param rest_seconds=300 --param rest_rate=5000 --param ff_tickers=5000
    python -m bench history --param only=rest                # or only=flatfiles

- `rest`: a `tickpipe simulate` subprocess serves a finished session (5 symbols); the backfill loads
  its trades, quotes and second aggregates into a fresh chDB folder in this process. Rows/s counts
  every row fetched and stored, wall clock from the first request to the last insert.
- `flatfiles`: a synthetic day file of `ff_tickers` x 390 minute bars in Polygon's layout, in moto's
  S3 (or AWS_ENDPOINT_URL); ClickHouse loads it with s3() (INSERT ... SELECT, anti-joined).
Targets (issue 16): REST >= 200k rows/s, flat files >= 1M rows/s.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from tickpipe_clickhouse.connect import connect
from tickpipe_clickhouse.schema.migrations import migrate
from tickpipe_history.backfill import Backfill, Plan
from tickpipe_history.flatfiles import FlatFileLoader, day_key
from tickpipe_history.rate_limit import RateLimiter
from tickpipe_history.rest_client import PolygonPages
from tickpipe_history.store import HistoryStore
from tickpipe_local.s3_server import LOCAL_AWS_ENV, MotoS3Server
from tickpipe_simulator.testing import SimulatorProcess

DAY_MS = 1_709_769_600_000  # 2024-03-07
SYMBOLS = ["NVDA", "TSLA", "AAPL", "AMZN", "MSFT"]


def _rest(client: Any, work: Path, seconds: int, rate: int, concurrency: int) -> dict[str, Any]:
    args = ["--seed", "5", "--rate", str(rate), "--symbols", "5", "--start", "2024-03-07T14:30:00Z"]
    args += ["--session-seconds", str(seconds), "--speed", "1000", "--tick-history-seconds", str(seconds)]
    with SimulatorProcess(work, *args, start_timeout=60) as sim:
        sim.wait_stats(lambda s: s["feed"]["finished"], "the session", timeout=600)
        migrate(client, "bench_rest")
        pages = PolygonPages(sim.api_key, sim.base_url, RateLimiter(0), 300, concurrency)
        backfill = Backfill(HistoryStore(client, "bench_rest"), pages, concurrency=concurrency)
        report = backfill.run(Plan(["trades", "quotes", "second_aggs"], SYMBOLS, DAY_MS, DAY_MS + 86_400_000))
    return {
        "rows": report.rows_fetched,
        "seconds": round(report.seconds, 2),
        "rows_per_s": round(report.rows_fetched / report.seconds),
        "requests": report.requests,
        "fetch_s": report.fetch_s,
        "store_s": report.store_s,
        "concurrency": concurrency,
    }


def _flat_file(tickers: int) -> bytes:
    rng = np.random.default_rng(1)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["ticker", "volume", "open", "close", "high", "low", "window_start", "transactions"])
    starts = (DAY_MS + 14 * 3_600_000 + 30 * 60_000 + 60_000 * np.arange(390)) * 1_000_000
    for i in range(tickers):
        price = 10 + 100 * rng.random()
        prices = np.round(price + rng.standard_normal((390, 4)).cumsum(axis=0) * 0.01, 2)
        volume = rng.integers(100, 100_000, 390)
        for m in range(390):
            o, c, h, low = prices[m]
            writer.writerow(
                [f"T{i:05d}", volume[m], o, c, max(o, c, h), min(o, c, low), starts[m], 1 + m % 50]
            )
    return gzip.compress(out.getvalue().encode(), compresslevel=6)


def _flatfiles(client: Any, work: Path, tickers: int) -> dict[str, Any]:
    import boto3

    for key, value in LOCAL_AWS_ENV.items():
        os.environ.setdefault(key, value)
    server = None
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if not endpoint:
        server = MotoS3Server(work / "s3").start()
        endpoint = server.endpoint
    try:
        s3 = boto3.client("s3", endpoint_url=endpoint)
        bucket = f"bench-flatfiles-{os.getpid()}"
        s3.create_bucket(Bucket=bucket)
        body = _flat_file(tickers)
        s3.put_object(Bucket=bucket, Key=day_key(dt.date(2024, 3, 7)), Body=body)
        migrate(client, "bench_ff")
        credentials = boto3.session.Session().get_credentials()
        assert credentials is not None, "AWS credentials (AWS_ACCESS_KEY_ID ...) are set above"
        loader = FlatFileLoader(
            HistoryStore(client, "bench_ff"),
            s3,
            bucket,
            endpoint,
            credentials.access_key,
            credentials.secret_key,
        )
        began = time.monotonic()
        report = loader.run(DAY_MS, DAY_MS + 86_400_000)
        seconds = time.monotonic() - began
    finally:
        if server is not None:
            server.stop()
    return {
        "rows": report.rows_inserted,
        "file_mib": round(len(body) / 2**20, 1),
        "seconds": round(seconds, 2),
        "rows_per_s": round(report.rows_inserted / seconds),
    }


def run(params: dict[str, str]) -> tuple[dict[str, Any], str]:
    work = Path(tempfile.mkdtemp(prefix="bench-history-"))
    client = connect(f"chdb://{work / 'chdb'}")
    only = params.get("only", "")
    result: dict[str, Any] = {"load_before": os.getloadavg()[0]}
    parts = []
    if only in ("", "rest"):
        rest = _rest(
            client, work, int(params.get("rest_seconds", 300)), int(params.get("rest_rate", 5000)),
            int(params.get("concurrency", 4)),
        )  # fmt: skip
        result["rest"] = rest
        parts.append(f"REST backfill {rest['rows_per_s']:,} rows/s ({rest['rows']:,} rows)")
    if only in ("", "flatfiles"):
        flat = _flatfiles(client, work, int(params.get("ff_tickers", 5000)))
        result["flatfiles"] = flat
        parts.append(f"flat files {flat['rows_per_s']:,} rows/s ({flat['rows']:,} minute bars)")
    result["load_after"] = os.getloadavg()[0]
    return result, "; ".join(parts)
