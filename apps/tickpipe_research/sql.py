"""The SQL behind the research API, in one place, with `{name:Type}` placeholders for every value.

Only names from the fixed tables below (bar sources, column lists) are ever put into the text; every
value a caller gives (symbols, times, limits, staleness) is a bound parameter. Times are bound as
`DateTime64(6, 'UTC')` text (see times.py) and come back as `DateTime64(3, 'UTC')`.

Bars are read from the bar table of migration 040 (`bars`: AggregatingMergeTree rows of partial
states, one per level, symbol, bucket and source) with the same meaning as the `ohlcv_*`
views, but cheaper: `FINAL` merges each key's partial rows in primary-key order (no hash GROUP BY
over every bucket), `finalizeAggregation` turns the open/close states into prices, and the source
cascade (per symbol and day, the finest source present) is decided from the daily bars of the
asked symbols and days only, where the views decide it for every symbol and every day. A bucket
holding only corrections (high -inf, low +inf) is no bar, as in the views. A test compares the two
on several sources, corrections and unmerged parts (tests/integration/test_research_bars.py).
"""

from __future__ import annotations

from typing import Final

# interval -> the bar's length in seconds, its level in `bars` (partial aggregate states, per source).
BAR_SECONDS: Final[dict[str, int]] = {"1m": 60, "5m": 300, "1h": 3600, "1d": 86400}
BAR_COLUMNS: Final = "open, high, low, close, volume, vwap, trades"
# The source cascade's ranks, as in the ohlcv_* views (migrations 006, 040; ties by the source's name).
SOURCE_RANK: Final = (
    "transform(d.source, ['A', 'XAS', 'CAS', 'AM', 'XA', 'CA', 'T', 'XT', 'C'], "
    "[1, 1, 1, 2, 2, 2, 3, 3, 3], 9)"
)

_WINDOW = "timestamp >= {start:DateTime64(6, 'UTC')} AND timestamp < {end:DateTime64(6, 'UTC')}"
_SYMBOLS = "symbol IN {symbols:Array(String)}"


# Bars of one level: the merged partial rows of the asked symbols and window (FINAL), of the source
# the day's daily bars pick; `{seconds}` and `{day}` (the bucket's day) are filled in by bars_sql.
BARS: Final = """
SELECT toString(b.symbol) AS symbol, toDateTime64(b.bucket, 3, 'UTC') AS bucket,
    finalizeAggregation(b.open) AS open, b.high AS high, b.low AS low,
    finalizeAggregation(b.close) AS close, b.volume AS volume,
    if(b.volume > 0, b.pv / b.volume, 0) AS vwap, b.trades AS trades
FROM bars AS b FINAL
WHERE b.seconds = {seconds} AND b.symbol IN {symbols:Array(String)}
    AND b.bucket >= {start:DateTime64(6, 'UTC')} AND b.bucket < {end:DateTime64(6, 'UTC')}
    AND b.high >= b.low
    AND (b.symbol, {day}, b.source) IN (
        SELECT d.symbol, d.bucket, argMin(d.source, ({rank}, d.source))
        FROM bars AS d FINAL
        WHERE d.seconds = 86400 AND d.symbol IN {symbols:Array(String)}
            AND d.bucket >= toStartOfDay({start:DateTime64(6, 'UTC')})
            AND d.bucket < {end:DateTime64(6, 'UTC')}
            AND d.high >= d.low
        GROUP BY d.symbol, d.bucket
    )
ORDER BY b.symbol, b.bucket
"""


def bars_sql(interval: str) -> str:
    """Bars of `interval` whose bucket starts in [start, end), per symbol, oldest first."""
    try:
        seconds = BAR_SECONDS[interval]
    except KeyError:
        raise ValueError(f"interval must be one of {', '.join(BAR_SECONDS)} (got {interval!r})") from None
    day = "b.bucket" if interval == "1d" else "toStartOfDay(b.bucket)"
    return (
        BARS.replace("{seconds}", str(seconds)).replace("{day}", day).replace("{rank}", SOURCE_RANK).strip()
    )


TRADE_COLUMNS: Final = (
    "symbol, timestamp, price, size, exchange, trade_id, tape, conditions, sequence, received"
)
QUOTE_COLUMNS: Final = (
    "symbol, timestamp, bid_price, bid_size, bid_exchange, ask_price, ask_size, ask_exchange, "
    "conditions, tape, sequence, received"
)


def ticks_sql(table: str, limited: bool) -> str:
    """Raw trades or quotes of the symbols in [start, end), in time order per symbol."""
    columns = {"trades": TRADE_COLUMNS, "quotes": QUOTE_COLUMNS}[table]
    limit = "\nLIMIT {limit:UInt64}" if limited else ""
    return (
        f"SELECT {columns}\nFROM {table}\n"
        f"WHERE {_SYMBOLS} AND {_WINDOW}\n"
        "ORDER BY symbol, timestamp, sequence" + limit
    )


def latest_sql(every_symbol: bool) -> str:
    """The newest price, bid and ask per symbol (the `latest_prices` view of migration 003)."""
    where = "" if every_symbol else f"\nWHERE {_SYMBOLS}"
    return "SELECT symbol, updated, price, bid, ask\nFROM latest_prices" + where + "\nORDER BY symbol"


# Each trade with the last quote at or before it (ASOF JOIN on symbol and time). A quote older than
# max_staleness_ms counts as no quote: its columns are NULL and `location` is ''. The quotes read are
# only those that can match (from start - max_staleness), so the join's right side stays small.
# ASOF LEFT JOIN fills an unmatched row with defaults (join_use_nulls is a setting, and the read-only
# path does not let callers change settings), so a match is recognised by its non-empty symbol.
# spread = ask - bid; position = (price - bid) / spread (0 at the bid, 1 at the ask, outside [0, 1]
# through the quote); location: below_bid, at_bid, inside, at_ask, above_ask, or crossed (ask < bid
# or a side missing).
TRADES_WITH_QUOTES: Final = """
SELECT
    t.symbol AS symbol,
    t.timestamp AS timestamp,
    t.price AS price,
    t.size AS size,
    t.exchange AS exchange,
    t.conditions AS conditions,
    t.sequence AS sequence,
    toBool(q.symbol != '' AND dateDiff('millisecond', q.timestamp, t.timestamp) <= {max_staleness_ms:UInt64})
        AS has_quote,
    if(has_quote, q.timestamp, NULL) AS quote_timestamp,
    if(has_quote, dateDiff('millisecond', q.timestamp, t.timestamp), NULL) AS quote_age_ms,
    if(has_quote, q.bid_price, NULL) AS bid,
    if(has_quote, q.bid_size, NULL) AS bid_size,
    if(has_quote, q.ask_price, NULL) AS ask,
    if(has_quote, q.ask_size, NULL) AS ask_size,
    toBool(has_quote AND q.bid_price > 0 AND q.ask_price >= q.bid_price) AS valid_quote,
    if(valid_quote, q.ask_price - q.bid_price, NULL) AS spread,
    if(valid_quote, (q.ask_price + q.bid_price) / 2, NULL) AS mid,
    if(valid_quote AND q.ask_price > q.bid_price, (t.price - q.bid_price) / (q.ask_price - q.bid_price), NULL)
        AS position,
    multiIf(
        NOT has_quote, '',
        NOT valid_quote, 'crossed',
        t.price < q.bid_price, 'below_bid',
        t.price = q.bid_price, 'at_bid',
        t.price > q.ask_price, 'above_ask',
        t.price = q.ask_price, 'at_ask',
        'inside'
    ) AS location
FROM
(
    SELECT symbol, timestamp, price, size, exchange, conditions, sequence
    FROM trades
    WHERE {trade_filter}
        AND timestamp >= {start:DateTime64(6, 'UTC')} AND timestamp < {end:DateTime64(6, 'UTC')}
) AS t
ASOF LEFT JOIN
(
    SELECT symbol, timestamp, bid_price, bid_size, ask_price, ask_size
    FROM quotes
    WHERE {quote_filter}
        AND timestamp >= {start:DateTime64(6, 'UTC')} - toIntervalMillisecond({max_staleness_ms:UInt64})
        AND timestamp < {end:DateTime64(6, 'UTC')}
) AS q
ON t.symbol = q.symbol AND t.timestamp >= q.timestamp
ORDER BY symbol, timestamp, sequence
"""


def trades_with_quotes_sql() -> str:
    """TRADES_WITH_QUOTES for a list of symbols (`{symbols:Array(String)}`)."""
    return TRADES_WITH_QUOTES.replace("{trade_filter}", _SYMBOLS).replace("{quote_filter}", _SYMBOLS).strip()
