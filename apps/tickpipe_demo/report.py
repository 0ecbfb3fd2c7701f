"""`tickpipe report`: a short analytics summary from the saved queries and a candlestick chart.

While a sink holds the embedded chDB folder, queries go through its read-only endpoint (the demo
never opens the folder itself then: that would lock the sink out); otherwise the folder or the
ClickHouse server is opened directly.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tickpipe.paths import home

DATABASE_DEFAULT = "tickpipe"
CANDLES_WANTED = 60
CANDLE_SECONDS = (1, 5, 10, 15, 30, 60, 300, 900, 3600, 86400)


def _database() -> str:
    return os.environ.get("CLICKHOUSE_DATABASE", DATABASE_DEFAULT)


def live_client(dsn: str) -> Any | None:
    """A client that never takes the chDB folder away from a running sink (None if none answers)."""
    from tickpipe_clickhouse.connect import Target
    from tickpipe_clickhouse.query.client import live_endpoint, open_query_client

    target = Target(dsn)
    if target.embedded:
        return live_endpoint(target.folder)
    return open_query_client(dsn, _database())


def queryable_rows(dsn: str) -> int | None:
    """Rows ClickHouse can answer queries on right now (all event tables)."""
    client = _safe(lambda: live_client(dsn))
    if client is None:
        return None
    rows = _safe(lambda: client.query(_COUNT_SQL).result_rows)
    return int(sum(row[1] for row in rows)) if rows else None


def latest_prices(dsn: str, limit: int = 4) -> list[tuple[str, float]]:
    client = _safe(lambda: live_client(dsn))
    if client is None:
        return []
    from tickpipe_clickhouse.query.client import run_saved

    result = _safe(lambda: run_saved(client, "latest", {}))
    if result is None:
        return []
    names = list(result.column_names)
    at_symbol, at_price = names.index("symbol"), names.index("price")
    prices = [(str(row[at_symbol]), float(row[at_price])) for row in result.result_rows if row[at_price]]
    return prices[:limit]


def table_counts(dsn: str) -> dict[str, int]:
    """Rows per event table, opening ClickHouse directly (call it once the sink has stopped)."""
    from tickpipe_clickhouse.query.client import open_query_client

    client = open_query_client(dsn, _database())
    return {str(name): int(count) for name, count in client.query(_COUNT_SQL).result_rows}


def gap_counts(dsn: str) -> dict[str, int]:
    """feed_gaps (the sink writes it): gaps recorded, repaired, and rows restored (sink stopped)."""
    from tickpipe_clickhouse.query.client import open_query_client

    client = open_query_client(dsn, _database())
    sql = "SELECT count(), countIf(state = 'repaired'), sum(rows_restored) FROM feed_gaps FINAL"
    recorded, repaired, restored = client.query(sql).result_rows[0]
    return {"recorded": int(recorded), "repaired": int(repaired), "rows_restored": int(restored)}


_COUNT_SQL = """
SELECT 'aggregates' AS t, count() FROM aggregates
UNION ALL SELECT 'trades', count() FROM trades
UNION ALL SELECT 'quotes', count() FROM quotes
"""


def print_report(dsn: str, symbol: str | None = None, out: Path | None = None) -> Path | None:
    """Print top movers, busiest symbols and recent bars; draw the chart; return its path."""
    from tickpipe_clickhouse.query.client import open_query_client, render_table, run_rows, run_saved

    client = open_query_client(dsn, _database())
    print("\n== top movers (first open -> last close, from the 1-minute bars)")
    movers = run_saved(client, "top_movers", {"limit": "5"})
    print(render_table(movers.column_names, movers.result_rows))
    busiest = run_rows(client, _BUSIEST_SQL)
    print("== busiest symbols")
    print(render_table(busiest.column_names, busiest.result_rows))
    if not busiest.result_rows and symbol is None:
        print("no data yet: nothing to chart")
        return None
    symbol = symbol or str(busiest.result_rows[0][0])
    bars = run_saved(client, "bars", {"symbol": symbol, "interval": "1m"})
    print(f"== 1-minute bars, {symbol} (last 10)")
    print(render_table(bars.column_names, bars.result_rows[-10:]))
    candles = _candles(client, symbol)
    if not candles.result_rows:
        print(f"no aggregates for {symbol}: nothing to chart")
        return None
    from tickpipe_demo.chart import candlestick_png

    path = out or home() / "report" / f"{symbol}-candles.png"
    candlestick_png(path, symbol, candles.column_names, candles.result_rows)
    print(f"chart: {path}")
    return path


_BUSIEST_SQL = """
SELECT symbol, count() AS trades, sum(size) AS shares, round(sum(price * size) / sum(size), 4) AS vwap
FROM trades GROUP BY symbol ORDER BY trades DESC, symbol LIMIT 5
"""


def _candles(client: Any, symbol: str) -> Any:
    """Candles from the per-second aggregates, sized so the chart shows about 60 of them."""
    from tickpipe_clickhouse.query.client import run_rows

    span = run_rows(
        client,
        "SELECT toUnixTimestamp(max(timestamp)) - toUnixTimestamp(min(timestamp)) FROM aggregates "
        "WHERE symbol = {symbol:String} AND ev IN ('A', 'XA', 'CA')",
        {"symbol": symbol},
    ).result_rows[0][0]
    seconds = next((s for s in CANDLE_SECONDS if s * CANDLES_WANTED >= (span or 0)), CANDLE_SECONDS[-1])
    return run_rows(
        client,
        """
        SELECT toStartOfInterval(timestamp, toIntervalSecond({seconds:UInt32})) AS bucket,
               argMin(open, timestamp) AS open, max(high) AS high, min(low) AS low,
               argMax(close, timestamp) AS close, sum(volume) AS volume
        FROM aggregates
        WHERE symbol = {symbol:String} AND ev IN ('A', 'XA', 'CA')
        GROUP BY bucket ORDER BY bucket
        """,
        {"symbol": symbol, "seconds": str(seconds)},
    )


def _safe(call: Any) -> Any:
    try:
        return call()
    except Exception:
        return None
