"""Migration 040 on a database that already holds bars in 006's four tables (the real engine, chDB).

A database is brought to the schema before 040 and filled the sink's way (second and minute
aggregates with a correction, trades, forex quotes, several inserts). Then 040 runs: every ohlcv_*
view must read the same bars as before, from `bars` alone, the old tables gone; running 040's
statements again (a run cut short after its copy, some old tables dropped) must change nothing; a new
insert must land at every level once.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson
import pytest

from tests.integration.test_research_bars import aggregate, trade
from tickpipe_clickhouse.connect import INSERT_SETTINGS
from tickpipe_clickhouse.schema import migrations
from tickpipe_clickhouse.sink.routing import COLUMNS

pytestmark = pytest.mark.integration

DAY = 1_733_097_600_000  # 2024-12-02 00:00 UTC
OPEN = DAY + 14 * 3_600_000 + 30 * 60_000
LEVELS = ("1m", "5m", "1h", "1d")


def _quote(symbol: str, t: int, bid: float, ask: float, sequence: int) -> bytes:
    return orjson.dumps({
        "ev": "C", "symbol": symbol, "ts_ms": t, "bid_price": bid, "ask_price": ask,
        "bid_size": None, "ask_size": None, "bid_exchange": 48, "ask_exchange": 48,
        "sequence": sequence, "received_ns": (t + 5) * 1_000_000,
    })  # fmt: skip


def _insert(clickhouse: Any, db: str, table: str, token: str, rows: list[bytes]) -> None:
    clickhouse.raw_insert(
        f"`{db}`.{table}",
        COLUMNS[table],
        insert_block=b"\n".join(rows),
        fmt="JSONEachRow",
        settings={**INSERT_SETTINGS, "insert_deduplication_token": token},
    )


def _fill(clickhouse: Any, db: str, day: int) -> None:
    """Two hours of one symbol per source, in inserts of 100 rows, and one re-sent minute."""
    opening = day + 14 * 3_600_000 + 30 * 60_000
    seconds = [aggregate("A", "AAPL", opening + s * 1000, 100 + s / 1000, 10, opening + s * 1000 + 1500)
               for s in range(0, 7200, 9)]  # fmt: skip
    minutes = [aggregate("AM", "MSFT", t, 400 + m / 10, 500, t + 61_000)
               for m, t in ((m, opening + m * 60_000) for m in range(120))]  # fmt: skip
    resent = [aggregate("AM", "MSFT", opening + 60_000, 401.0, 900, opening + 300_000)]
    trades = [trade("TSLA", opening + i * 700, 250 + (i % 13) / 10, 1 + i % 5, i) for i in range(2000)]
    quotes = [_quote("C:EUR-USD", opening + i * 900, 1.05 + (i % 7) / 1e4, 1.0502, i) for i in range(2000)]
    for table, rows in (("aggregates", seconds + minutes + resent), ("trades", trades), ("quotes", quotes)):
        for i in range(0, len(rows), 100):
            _insert(clickhouse, db, table, f"{table}:{day}:{i}", rows[i : i + 100])


def _bars(clickhouse: Any, db: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every ohlcv_* row, prices and volumes rounded (a merge may add floats in another order)."""
    return {
        level: clickhouse.query(
            f"SELECT symbol, bucket, source, round(open, 6), round(high, 6), round(low, 6), "
            f"round(close, 6), round(volume, 6), round(vwap, 6), trades "
            f"FROM `{db}`.ohlcv_{level} ORDER BY symbol, bucket"
        ).result_rows
        for level in LEVELS
    }


def _tables(clickhouse: Any, db: str) -> set[str]:
    return {row[0] for row in clickhouse.query(f"SHOW TABLES FROM `{db}`").result_rows}


def test_040_moves_every_bar_into_one_table_once_and_the_views_read_the_same(
    clickhouse: Any, ch_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = ch_database
    every = migrations.load_migrations()
    (move,) = [m for m in every if m.name == "040_one_bars_table"]
    monkeypatch.setattr(migrations, "load_migrations", lambda: [m for m in every if m.version < 40])
    migrations.migrate(clickhouse, db)
    assert {"bars_1m", "bars_5m", "bars_1h", "bars_1d"} <= _tables(clickhouse, db)
    _fill(clickhouse, db, DAY)
    before = _bars(clickhouse, db)
    # AAPL and MSFT 14:30-16:30 (120 minutes, 3 clock hours), TSLA 24 minutes, EUR-USD 30 minutes.
    assert {level: len(rows) for level, rows in before.items()} == {"1m": 294, "5m": 59, "1h": 8, "1d": 4}
    (resent,) = [r for r in before["1m"] if r[0] == "MSFT" and r[1].timestamp() * 1000 == OPEN + 60_000]
    assert resent[7] == 900.0, "the re-sent minute counts once, with its new volume"

    monkeypatch.setattr(migrations, "load_migrations", lambda: every)
    assert migrations.migrate(clickhouse, db) == [m.name for m in every if m.version >= 40]
    assert _bars(clickhouse, db) == before
    left = _tables(clickhouse, db)
    assert "bars" in left
    assert not left & {"bars_1m", "bars_5m", "bars_1h", "bars_1d", "bars_5m_mv", "bars_1m_from_trades_mv"}

    # Cut short after the copy: one old table still there (with its rows), the others dropped.
    clickhouse.command(
        f"CREATE TABLE `{db}`.bars_1m ENGINE = Memory AS SELECT symbol, bucket, source, open, high, low, "
        f"close, volume, pv, trades FROM `{db}`.bars WHERE seconds = 60"
    )
    for statement in move.statements(db):
        clickhouse.command(statement)
    assert _bars(clickhouse, db) == before, "running 040 again copied something twice"
    assert not left ^ _tables(clickhouse, db), "the stand-ins for the dropped tables stayed"

    _fill(clickhouse, db, DAY + 86_400_000)  # the next day, through the new views only
    after = _bars(clickhouse, db)
    second = dt.datetime.fromtimestamp((DAY + 86_400_000) / 1000, tz=dt.UTC).replace(tzinfo=None)
    for level in LEVELS:
        assert [r for r in after[level] if r[1] < second] == before[level], "day one moved"
        assert len(after[level]) == 2 * len(before[level])
    volumes = clickhouse.query(
        f"SELECT seconds, sum(volume) FROM `{db}`.bars "
        f"WHERE bucket >= toDateTime({(DAY + 86_400_000) // 1000}) GROUP BY seconds ORDER BY seconds"
    ).result_rows
    day_two = [r for r in after["1d"] if r[1] >= second]
    assert [s for s, _ in volumes] == [60, 300, 3600, 86400]
    assert len({round(v, 6) for _, v in volumes}) == 1, "every level counts the day's volume once"
    assert round(volumes[0][1], 6) == round(sum(r[7] for r in day_two), 6)
