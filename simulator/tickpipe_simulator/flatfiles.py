"""Polygon's flat files for a simulated session: minute aggregates as gzipped CSV, one file a day.

    files = minute_aggs_files(spec)                  # {key: gzipped CSV bytes}
    upload(boto3.client("s3", endpoint_url=...), "flatfiles", files)

Keys and columns are Polygon's (`us_stocks_sip/minute_aggs_v1/2024/03/2024-03-07.csv.gz`;
`ticker,volume,open,close,high,low,window_start,transactions`, `window_start` in nanoseconds,
rows by ticker then time). The bars are folded from the same second aggregates the websocket sent
as `A` (bars.py), so a flat-file minute equals the REST minute bar and the `AM` event.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
from typing import Any

from tickpipe_simulator.bars import SPAN_MS, BarHistory
from tickpipe_simulator.market import Market
from tickpipe_simulator.spec import MarketSpec

COLUMNS = ("ticker", "volume", "open", "close", "high", "low", "window_start", "transactions")
PREFIX = "us_stocks_sip/minute_aggs_v1"
NS_PER_MS = 1_000_000


def minute_aggs_key(day: dt.date) -> str:
    return f"{PREFIX}/{day:%Y}/{day:%m}/{day.isoformat()}.csv.gz"


def minute_aggs_files(spec: MarketSpec) -> dict[str, bytes]:
    """Every day of the (finite) session as one gzipped CSV of minute bars."""
    if not spec.session_seconds:
        raise ValueError("flat files need a finite session (session_seconds > 0)")
    market = Market(spec)
    history = BarHistory(market.tickers, market.scale.tolist(), spec.session_seconds)
    while (data := market.next_second()) is not None:
        history.add(data.second_agg)
    day_ms = SPAN_MS["day"]
    first = spec.start_ms - spec.start_ms % day_ms
    last = spec.start_ms + 1000 * spec.session_seconds - 1
    files: dict[str, bytes] = {}
    for start in range(first, last + 1, day_ms):
        rows: list[list[Any]] = []
        for ticker in market.tickers:
            for bar in history.bars(ticker, SPAN_MS["minute"], start, start + day_ms - 1):
                row = [
                    ticker,
                    bar["v"],
                    bar["o"],
                    bar["c"],
                    bar["h"],
                    bar["l"],
                    bar["t"] * NS_PER_MS,
                    bar["n"],
                ]
                rows.append(row)
        day = dt.datetime.fromtimestamp(start / 1000, tz=dt.UTC).date()
        files[minute_aggs_key(day)] = _gzip_csv(rows)
    return files


def _gzip_csv(rows: list[list[Any]]) -> bytes:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(rows)
    return gzip.compress(text.getvalue().encode(), compresslevel=6, mtime=0)


def upload(s3: Any, bucket: str, files: dict[str, bytes]) -> None:
    """Put each file into `bucket` with a boto3 S3 client (moto's server in tests)."""
    for key, body in files.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/gzip")
