-- Level-2 book snapshots (crypto XL2): one row per snapshot, its bid and ask levels as arrays of
-- (price, size), best first, as Polygon sends them (up to 100 levels a side). Read a level with
-- `bids[1].1` (best bid price) and `bids[1].2` (its size); `arrayMap(l -> l.1, bids)` gives the prices.
-- Same input contract as the other raw tables (001_raw_tables.sql): the processor's JSON unchanged,
-- `ts_ms` and `received_ns` as EPHEMERAL inputs, replays dropped by insert_deduplication_token.

CREATE TABLE IF NOT EXISTS {db}.books
(
    ts_ms             Int64 EPHEMERAL,
    received_ns       UInt64 EPHEMERAL,
    ev                LowCardinality(String),
    symbol            LowCardinality(String),
    timestamp         DateTime64(3, 'UTC') DEFAULT fromUnixTimestamp64Milli(ts_ms, 'UTC')
                      CODEC(DoubleDelta, ZSTD(1)),
    exchange          UInt16 CODEC(ZSTD(1)),
    bids              Array(Tuple(Float64, Float64)) CODEC(ZSTD(3)),
    asks              Array(Tuple(Float64, Float64)) CODEC(ZSTD(3)),
    received_delay_ms Int64 DEFAULT intDiv(toInt64(received_ns), 1000000) - ts_ms CODEC(T64, ZSTD(1)),
    received          DateTime64(3, 'UTC') ALIAS timestamp + toIntervalMillisecond(received_delay_ms),
    CONSTRAINT symbol_present CHECK symbol != '',
    CONSTRAINT time_present CHECK timestamp > 0
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (symbol, timestamp, exchange)
SETTINGS non_replicated_deduplication_window = 10000;
