"""Corrections in the real engine (chDB), inserted as the sink inserts them (JSONEachRow, its settings,
a deduplication token per batch): the later receipt of an aggregate replaces the earlier at every
bar level, whether the two arrive in one insert or in several, and a replayed insert changes nothing."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tickpipe_clickhouse.connect import INSERT_SETTINGS
from tickpipe_clickhouse.schema.migrations import migrate
from tickpipe_clickhouse.sink.routing import COLUMNS

pytestmark = pytest.mark.integration

START = 1_733_149_800_000  # a minute start


def am(volume: float, high: float, close: float, received_ms: int, symbol: str = "AAPL") -> bytes:
    return orjson.dumps({
        "ev": "AM", "symbol": symbol, "start_ms": START, "end_ms": START + 60_000, "open": 10.0,
        "high": high, "low": 9.0, "close": close, "volume": volume, "vwap": 10.0, "avg_size": 10.0,
        "received_ns": received_ms * 1_000_000,
    })  # fmt: skip


def insert(clickhouse: Any, db: str, token: str, *values: bytes) -> None:
    clickhouse.raw_insert(
        f"`{db}`.aggregates",
        COLUMNS["aggregates"],
        insert_block=b"\n".join(values),
        fmt="JSONEachRow",
        settings={**INSERT_SETTINGS, "insert_deduplication_token": token},
    )


def levels(clickhouse: Any, db: str, symbol: str) -> list[tuple[Any, ...]]:
    """(volume, high, close, trades) of the symbol's bar at 1m, 5m, 1h and 1d."""
    return [
        tuple(
            clickhouse.query(
                f"SELECT volume, high, close, trades FROM {db}.ohlcv_{level} WHERE symbol = {{s:String}}",
                parameters={"s": symbol},
            ).result_rows[0]
        )
        for level in ("1m", "5m", "1h", "1d")
    ]


def test_the_latest_receipt_wins_at_every_level_in_one_insert_or_several_and_replays_change_nothing(
    clickhouse: Any, ch_database: str
) -> None:
    db = ch_database
    migrate(clickhouse, db)
    received = START + 61_000
    # Three receipts in three inserts; the third insert is then replayed with its token.
    insert(clickhouse, db, "b1", am(1000, 11.0, 10.5, received))
    insert(clickhouse, db, "b2", am(1200, 11.5, 10.6, received + 10_000))
    insert(clickhouse, db, "b3", am(1500, 12.0, 10.7, received + 20_000))
    insert(clickhouse, db, "b3", am(1500, 12.0, 10.7, received + 20_000))
    # Two receipts in one insert (a correction in the same batch).
    insert(
        clickhouse, db, "c1", am(700, 11.0, 10.1, received, "MSFT"), am(900, 11.2, 10.2, received + 5, "MSFT")
    )

    assert levels(clickhouse, db, "AAPL") == [(1500.0, 12.0, 10.7, 150)] * 4
    assert levels(clickhouse, db, "MSFT") == [(900.0, 11.2, 10.2, 90)] * 4
    raw = clickhouse.query(
        f"SELECT symbol, count() FROM {db}.aggregates GROUP BY symbol ORDER BY symbol"
    ).result_rows
    assert raw == [("AAPL", 3), ("MSFT", 2)]  # every receipt kept
    latest = clickhouse.query(
        f"SELECT symbol, volume, close, receipts FROM {db}.aggregates_latest ORDER BY symbol"
    ).result_rows
    assert latest == [("AAPL", 1500.0, 10.7, 3), ("MSFT", 900.0, 10.2, 2)]
