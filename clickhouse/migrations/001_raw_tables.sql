-- Raw events, one table per kind, exactly as the processor published them (see docs/architecture.md).
-- Rows are kept as they arrive: plain MergeTree never collapses two prints with the same key, so trades
-- and quotes in the same millisecond are all kept. Replays are dropped by insert_deduplication_token,
-- which plain MergeTree honours only with non_replicated_deduplication_window > 0.
-- Absent optional values (JSON null) are stored as 0 / '' / [] (a price or size of 0 means "absent").

CREATE TABLE IF NOT EXISTS {db}.aggregates
(
    ev            LowCardinality(String),
    symbol        LowCardinality(String),
    timestamp     DateTime64(3, 'UTC') CODEC(DoubleDelta, ZSTD(1)),   -- start of the bar (start_ms)
    end_timestamp DateTime64(3, 'UTC') CODEC(DoubleDelta, ZSTD(1)),   -- end_ms
    open          Float64 CODEC(Gorilla, ZSTD(1)),
    high          Float64 CODEC(Gorilla, ZSTD(1)),
    low           Float64 CODEC(Gorilla, ZSTD(1)),
    close         Float64 CODEC(Gorilla, ZSTD(1)),
    volume        Float64 CODEC(Gorilla, ZSTD(1)),
    vwap          Float64 CODEC(Gorilla, ZSTD(1)),
    day_volume    Float64 CODEC(Gorilla, ZSTD(1)),
    day_open      Float64 CODEC(Gorilla, ZSTD(1)),
    day_vwap      Float64 CODEC(Gorilla, ZSTD(1)),
    avg_size      Float64 CODEC(Gorilla, ZSTD(1)),
    otc           Bool,
    received_ns   UInt64 CODEC(Delta, ZSTD(1))                      -- when the producer read the frame
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (symbol, timestamp)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS {db}.trades
(
    ev          LowCardinality(String),
    symbol      LowCardinality(String),
    timestamp   DateTime64(3, 'UTC') CODEC(DoubleDelta, ZSTD(1)),     -- ts_ms (SIP time)
    price       Float64 CODEC(Gorilla, ZSTD(1)),
    size        Float64 CODEC(Gorilla, ZSTD(1)),
    exchange    UInt16 CODEC(ZSTD(1)),
    trade_id    String CODEC(ZSTD(1)),
    tape        UInt8,
    conditions  Array(UInt16) CODEC(ZSTD(1)),
    sequence    UInt64 CODEC(Delta, ZSTD(1)),
    received_ns UInt64 CODEC(Delta, ZSTD(1))
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (symbol, timestamp, sequence, exchange, trade_id)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS {db}.quotes
(
    ev           LowCardinality(String),
    symbol       LowCardinality(String),
    timestamp    DateTime64(3, 'UTC') CODEC(DoubleDelta, ZSTD(1)),    -- ts_ms
    bid_price    Float64 CODEC(Gorilla, ZSTD(1)),
    bid_size     Float64 CODEC(Gorilla, ZSTD(1)),
    bid_exchange UInt16 CODEC(ZSTD(1)),
    ask_price    Float64 CODEC(Gorilla, ZSTD(1)),
    ask_size     Float64 CODEC(Gorilla, ZSTD(1)),
    ask_exchange UInt16 CODEC(ZSTD(1)),
    conditions   Array(UInt16) CODEC(ZSTD(1)),
    tape         UInt8,
    sequence     UInt64 CODEC(Delta, ZSTD(1)),
    received_ns  UInt64 CODEC(Delta, ZSTD(1))
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (symbol, timestamp, sequence)
SETTINGS non_replicated_deduplication_window = 10000;
