"""`Research.bars()` reads the bar tables directly (FINAL, finalizeAggregation, the day's source picked
from the asked symbols' daily bars); here it must give exactly what the `ohlcv_*` views give, on data
that exercises every rule of the views: several sources a day (the finest wins, per symbol and day),
a day with only a coarser source, bars from trades, re-sent aggregates (corrections) in separate
inserts so that the parts are not merged, and a symbol that is not asked for."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from tickpipe_clickhouse.connect import INSERT_SETTINGS
from tickpipe_clickhouse.schema.migrations import migrate
from tickpipe_clickhouse.sink.routing import COLUMNS
from tickpipe_research import Research

pytestmark = pytest.mark.integration

DAY = 86_400_000
MONDAY = 1_764_547_200_000  # 2025-12-01 00:00 UTC
OPEN = MONDAY + 14 * 3_600_000 + 30 * 60_000


def aggregate(ev: str, symbol: str, start: int, price: float, volume: float, received: int) -> bytes:
    length = 1000 if ev == "A" else 60_000
    return orjson.dumps({
        "ev": ev, "symbol": symbol, "start_ms": start, "end_ms": start + length, "open": price,
        "high": price + 0.5, "low": price - 0.5, "close": price + 0.1, "volume": volume, "vwap": price,
        "avg_size": 10.0, "received_ns": received * 1_000_000,
    })  # fmt: skip


def trade(symbol: str, ts: int, price: float, size: float, sequence: int) -> bytes:
    return orjson.dumps({
        "ev": "T", "symbol": symbol, "ts_ms": ts, "price": price, "size": size, "exchange": 4,
        "trade_id": str(sequence), "tape": 3, "conditions": [], "sequence": sequence,
        "received_ns": (ts + 5) * 1_000_000,
    })  # fmt: skip


def insert(client: Any, db: str, table: str, rows: list[bytes], token: str) -> None:
    client.raw_insert(
        f"`{db}`.{table}",
        COLUMNS[table],
        insert_block=b"\n".join(rows),
        fmt="JSONEachRow",
        settings={**INSERT_SETTINGS, "insert_deduplication_token": token},
    )


@pytest.fixture(scope="module")
def db(clickhouse: Any) -> Iterator[str]:
    name = f"tp_research_bars_{uuid.uuid4().hex[:8]}"
    migrate(clickhouse, name)
    clickhouse.command(f"SYSTEM STOP MERGES `{name}`.bars")  # partial rows in separate parts, unmerged
    for n, symbol in enumerate(("AAPL", "MSFT", "IBM")):
        # day 1: second aggregates (A) and minute aggregates (AM) and trades: A wins
        # day 2: AM only, re-sent with more volume for three minutes, each receipt in its own insert
        # day 3: trades only (T); day 4: AM, then A for a few minutes only (A wins the whole day)
        day1, day2, day3, day4 = (OPEN + k * DAY for k in range(4))
        seconds = [
            aggregate("A", symbol, day1 + s * 1000, 100 + n + s / 100, 10 + s, day1 + s * 1000 + 1500)
            for s in range(0, 900, 7)
        ]
        minutes = [
            aggregate("AM", symbol, at + m * 60_000, 90 + n + m, 500 + m, at + m * 60_000 + 61_000)
            for at in (day1, day2, day4)
            for m in range(40)
        ]
        trades = [
            trade(symbol, day + t * 997, 80 + n + t / 50, 1 + t % 7, t)
            for day in (day1, day3)
            for t in range(600)
        ]
        insert(clickhouse, name, "aggregates", seconds + minutes, f"{symbol}-agg")
        insert(clickhouse, name, "trades", trades, f"{symbol}-trades")
        for receipt in (1, 2):
            at = day2 + 61_000 + receipt * 5_000
            resent = [
                aggregate(
                    "AM", symbol, day2 + m * 60_000, 90 + n + m + receipt, 600 + m * receipt, at + m * 60_000
                )
                for m in (3, 17, 39)
            ]
            insert(clickhouse, name, "aggregates", resent, f"{symbol}-resent-{receipt}")
        hour = day4 + 3_600_000
        late = [
            aggregate("A", symbol, hour + s * 1000, 70 + n, 5, hour + s * 1000 + 1500)
            for s in range(0, 120, 3)
        ]
        insert(clickhouse, name, "aggregates", late, f"{symbol}-late")
    yield name
    clickhouse.command(f"DROP DATABASE IF EXISTS {name}")


@pytest.fixture(scope="module")
def research(clickhouse_dsn: str, db: str) -> Iterator[Research]:
    with Research.connect(clickhouse_dsn, db) as r:
        yield r


@pytest.mark.parametrize("interval", ["1m", "5m", "1h", "1d"])
@pytest.mark.parametrize(
    ("first_day", "days"),
    [(0, 4), (1, 2), (3, 1)],  # every day; the middle two; the last (a window inside the data)
)
def test_bars_are_the_views_bars(
    clickhouse: Any, db: str, research: Research, interval: str, first_day: int, days: int
) -> None:
    start = dt.datetime.fromtimestamp((MONDAY + first_day * DAY) / 1000, tz=dt.UTC)
    end = start + dt.timedelta(days=days)
    parts = int(
        clickhouse.query(
            f"SELECT count() FROM system.parts WHERE database = '{db}' AND table = 'bars' AND active"
        ).result_rows[0][0]
    )
    assert parts > 4, "the fixture leaves several unmerged parts per partition"  # merges stopped
    expected = clickhouse.query(
        f"SELECT symbol, toDateTime64(bucket, 3, 'UTC'), open, high, low, close, volume, vwap, trades "
        f"FROM `{db}`.ohlcv_{interval} WHERE symbol IN ('AAPL', 'MSFT') "
        "AND bucket >= {start:DateTime64(3, 'UTC')} AND bucket < {end:DateTime64(3, 'UTC')} "
        "ORDER BY symbol, bucket",
        parameters={"start": start, "end": end},
    ).result_rows
    got = research.bars(["MSFT", "AAPL"], start, end, interval, as_="arrow")  # type: ignore[call-overload]
    rows = list(zip(*(got.column(i).to_pylist() for i in range(got.num_columns)), strict=True))
    names = ["symbol", "bucket", "open", "high", "low", "close", "volume", "vwap", "trades"]
    assert got.column_names == names
    assert len(expected) > 0
    assert [(r[0], r[1].timestamp()) for r in rows] == [(e[0], e[1].timestamp()) for e in expected]
    for mine, theirs in zip(rows, expected, strict=True):
        assert mine[2:] == pytest.approx(theirs[2:], rel=1e-12), (mine, theirs)
