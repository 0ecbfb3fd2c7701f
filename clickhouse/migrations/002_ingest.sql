-- The sink's single insert target. `ingest` stores nothing (ENGINE = Null): materialized views route
-- each row by `ev` into its table, converting Unix milliseconds to DateTime64. One insert per Kafka
-- partition batch carries that batch's deduplication token through every view below it.
-- Strict types make ClickHouse reject what it cannot store: an unknown `ev` fails the Enum, a missing
-- symbol or time fails a constraint; the sink then isolates the bad rows into the sink DLQ.

CREATE TABLE IF NOT EXISTS {db}.ingest
(
    ev           Enum8('A' = 1, 'AM' = 2, 'XA' = 3, 'CA' = 4, 'T' = 5, 'XT' = 6, 'Q' = 7, 'XQ' = 8),
    symbol       String,
    -- aggregates
    start_ms     Int64,
    end_ms       Int64,
    open         Float64,
    high         Float64,
    low          Float64,
    close        Float64,
    volume       Float64,
    vwap         Float64,
    day_volume   Float64,
    day_open     Float64,
    day_vwap     Float64,
    avg_size     Float64,
    otc          Bool,
    -- trades and quotes
    ts_ms        Int64,
    price        Float64,
    size         Float64,
    exchange     UInt16,
    trade_id     String,
    tape         UInt8,
    conditions   Array(UInt16),
    sequence     UInt64,
    bid_price    Float64,
    bid_size     Float64,
    bid_exchange UInt16,
    ask_price    Float64,
    ask_size     Float64,
    ask_exchange UInt16,
    received_ns  UInt64,
    CONSTRAINT symbol_present CHECK symbol != '',
    CONSTRAINT time_present CHECK if(ev IN ('A', 'AM', 'XA', 'CA'), start_ms > 0, ts_ms > 0)
)
ENGINE = Null;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.ingest_aggregates_mv TO {db}.aggregates AS
SELECT
    toString(ev) AS ev, symbol,
    fromUnixTimestamp64Milli(start_ms, 'UTC') AS timestamp,
    fromUnixTimestamp64Milli(end_ms, 'UTC') AS end_timestamp,
    open, high, low, close, volume, vwap, day_volume, day_open, day_vwap, avg_size, otc, received_ns
FROM {db}.ingest
WHERE ev IN ('A', 'AM', 'XA', 'CA');

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.ingest_trades_mv TO {db}.trades AS
SELECT
    toString(ev) AS ev, symbol, fromUnixTimestamp64Milli(ts_ms, 'UTC') AS timestamp,
    price, size, exchange, trade_id, tape, conditions, sequence, received_ns
FROM {db}.ingest
WHERE ev IN ('T', 'XT');

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.ingest_quotes_mv TO {db}.quotes AS
SELECT
    toString(ev) AS ev, symbol, fromUnixTimestamp64Milli(ts_ms, 'UTC') AS timestamp,
    bid_price, bid_size, bid_exchange, ask_price, ask_size, ask_exchange, conditions, tape, sequence,
    received_ns
FROM {db}.ingest
WHERE ev IN ('Q', 'XQ');
