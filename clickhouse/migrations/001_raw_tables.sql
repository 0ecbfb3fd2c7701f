-- Raw events, one table per kind. The sink routes each Kafka record by its `ev` and inserts the
-- processor's JSON unchanged (JSONEachRow) straight into its table: the JSON field names that are not
-- stored as they are (`start_ms`, `end_ms`, `ts_ms`, `received_ns`) are EPHEMERAL input columns,
-- from which the stored columns take their DEFAULT. No routing table or view sits in between.
--
-- Rows are kept as they arrive: plain MergeTree never collapses two prints with the same key, so
-- trades and quotes in the same millisecond are all kept. Replays are dropped by
-- insert_deduplication_token, which plain MergeTree honours only with non_replicated_deduplication_window.
-- Absent optional values (JSON null) are stored as 0 / '' / [] (a price or size of 0 means "absent").
--
-- Types and codecs, chosen by measuring simulated random-walk sessions (docs/clickhouse.md):
-- - prices stay Float64, exactly what Polygon sent, with plain ZSTD(3): prices move in whole cents
--   and repeat, which ZSTD finds (about 1 byte per price) where Gorilla's XOR of neighbours took
--   2-3 bytes. Decimal64(8) would save about 3 bytes per row more, but it cuts digits past the 8th
--   and its division overflows above about 922 (ClickHouse scales the dividend by 10^8), a trap
--   in ad hoc SQL (`close / open`); see docs/clickhouse.md for the numbers;
-- - volumes stay Float64 (crypto trades fractional coins); day_volume (stocks only, integer shares
--   in Polygon's feed) is UInt64 with Delta, as it only grows during a day;
-- - the producer's receipt time is stored as the delay after the event in milliseconds
--   (`received_delay_ms`, under a byte) and read back as `received` (an ALIAS column).

CREATE TABLE IF NOT EXISTS {db}.aggregates
(
    start_ms          Int64 EPHEMERAL,
    end_ms            Int64 EPHEMERAL,
    received_ns       UInt64 EPHEMERAL,
    ev                LowCardinality(String),
    symbol            LowCardinality(String),
    timestamp         DateTime64(3, 'UTC') DEFAULT fromUnixTimestamp64Milli(start_ms, 'UTC')
                      CODEC(DoubleDelta, ZSTD(1)),
    end_timestamp     DateTime64(3, 'UTC') DEFAULT fromUnixTimestamp64Milli(end_ms, 'UTC')
                      CODEC(DoubleDelta, ZSTD(1)),
    open              Float64 CODEC(ZSTD(3)),
    high              Float64 CODEC(ZSTD(3)),
    low               Float64 CODEC(ZSTD(3)),
    close             Float64 CODEC(ZSTD(3)),
    volume            Float64 CODEC(ZSTD(1)),
    vwap              Float64 CODEC(ZSTD(3)),
    day_volume        UInt64 CODEC(Delta, ZSTD(1)),
    day_open          Float64 CODEC(ZSTD(3)),
    day_vwap          Float64 CODEC(ZSTD(3)),
    avg_size          Float64 CODEC(ZSTD(1)),
    otc               Bool,
    received_delay_ms Int64 DEFAULT intDiv(toInt64(received_ns), 1000000) - end_ms CODEC(T64, ZSTD(1)),
    received          DateTime64(3, 'UTC') ALIAS end_timestamp + toIntervalMillisecond(received_delay_ms),
    CONSTRAINT symbol_present CHECK symbol != '',
    CONSTRAINT time_present CHECK timestamp > 0
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (symbol, timestamp)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS {db}.trades
(
    ts_ms             Int64 EPHEMERAL,
    received_ns       UInt64 EPHEMERAL,
    ev                LowCardinality(String),
    symbol            LowCardinality(String),
    timestamp         DateTime64(3, 'UTC') DEFAULT fromUnixTimestamp64Milli(ts_ms, 'UTC')
                      CODEC(DoubleDelta, ZSTD(1)),                  -- SIP time
    price             Float64 CODEC(ZSTD(3)),
    size              Float64 CODEC(ZSTD(1)),
    exchange          UInt16 CODEC(ZSTD(1)),
    trade_id          String CODEC(ZSTD(1)),
    tape              UInt8,
    conditions        Array(UInt16) CODEC(ZSTD(1)),
    sequence          UInt64 CODEC(Delta, ZSTD(1)),
    received_delay_ms Int64 DEFAULT intDiv(toInt64(received_ns), 1000000) - ts_ms CODEC(T64, ZSTD(1)),
    received          DateTime64(3, 'UTC') ALIAS timestamp + toIntervalMillisecond(received_delay_ms),
    CONSTRAINT symbol_present CHECK symbol != '',
    CONSTRAINT time_present CHECK timestamp > 0
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (symbol, timestamp, sequence, exchange, trade_id)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS {db}.quotes
(
    ts_ms             Int64 EPHEMERAL,
    received_ns       UInt64 EPHEMERAL,
    ev                LowCardinality(String),
    symbol            LowCardinality(String),
    timestamp         DateTime64(3, 'UTC') DEFAULT fromUnixTimestamp64Milli(ts_ms, 'UTC')
                      CODEC(DoubleDelta, ZSTD(1)),
    bid_price         Float64 CODEC(ZSTD(3)),
    bid_size          Float64 CODEC(ZSTD(1)),
    bid_exchange      UInt16 CODEC(ZSTD(1)),
    ask_price         Float64 CODEC(ZSTD(3)),
    ask_size          Float64 CODEC(ZSTD(1)),
    ask_exchange      UInt16 CODEC(ZSTD(1)),
    conditions        Array(UInt16) CODEC(ZSTD(1)),
    tape              UInt8,
    sequence          UInt64 CODEC(Delta, ZSTD(1)),
    received_delay_ms Int64 DEFAULT intDiv(toInt64(received_ns), 1000000) - ts_ms CODEC(T64, ZSTD(1)),
    received          DateTime64(3, 'UTC') ALIAS timestamp + toIntervalMillisecond(received_delay_ms),
    CONSTRAINT symbol_present CHECK symbol != '',
    CONSTRAINT time_present CHECK timestamp > 0
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (symbol, timestamp, sequence)
SETTINGS non_replicated_deduplication_window = 10000;
