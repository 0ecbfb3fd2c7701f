-- OHLCV bars computed on write, as a cascade: raw aggregates -> bars_1m -> bars_5m -> bars_1h -> bars_1d.
-- Only bars_1m reads raw rows; each coarser level reads the block just written to the level below
-- (a materialized view fires on the rows inserted into its source table), so an insert of 50k second
-- aggregates groups 50k rows once and then only a few hundred partial minute bars. Every level is an
-- AggregatingMergeTree of partial states; read bars through the ohlcv_* views (or with
-- argMinMerge/argMaxMerge yourself): a bucket may exist in several parts until merged. Open/close
-- are argMin/argMax on time, so out-of-order arrival still gives the right bar.
-- Source: the finest aggregate of each market (A = stock second, XA = crypto minute, CA = forex
-- minute); AM is skipped because it repeats the A seconds of the same minute. trades = volume /
-- avg_size per source bar (Polygon's `z` is the average trade size of the bar).
-- Every target sets non_replicated_deduplication_window, so a replayed insert is dropped at every
-- level (the sink sends deduplicate_blocks_in_dependent_materialized_views=1). Granules of 1024 rows
-- (not 8192): a query for one symbol's bars over a day or a year reads a few hundred rows, not
-- thousands (measured 10-20% faster on the daily shapes, docs/clickhouse.md).

CREATE TABLE IF NOT EXISTS {db}.bars_1m
(
    symbol LowCardinality(String),
    bucket DateTime('UTC') CODEC(DoubleDelta, ZSTD(1)),
    open   AggregateFunction(argMin, Float64, DateTime64(3, 'UTC')),
    high   SimpleAggregateFunction(max, Float64),
    low    SimpleAggregateFunction(min, Float64),
    close  AggregateFunction(argMax, Float64, DateTime64(3, 'UTC')),
    volume SimpleAggregateFunction(sum, Float64),
    pv     SimpleAggregateFunction(sum, Float64),   -- sum(vwap * volume): vwap = pv / volume
    trades SimpleAggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(bucket)
ORDER BY (symbol, bucket)
SETTINGS non_replicated_deduplication_window = 10000, index_granularity = 1024;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.bars_1m_mv TO {db}.bars_1m AS
SELECT
    src.symbol AS symbol,
    toStartOfMinute(src.timestamp) AS bucket,
    argMinState(src.open, src.timestamp) AS open,
    max(src.high) AS high,
    min(src.low) AS low,
    argMaxState(src.close, src.timestamp) AS close,
    sum(src.volume) AS volume,
    sum(if(src.vwap > 0, src.vwap, src.close) * src.volume) AS pv,
    sum(toUInt64(if(src.avg_size > 0, round(src.volume / src.avg_size), 0))) AS trades
FROM {db}.aggregates AS src
WHERE src.ev IN ('A', 'XA', 'CA')
GROUP BY src.symbol, bucket;

CREATE VIEW IF NOT EXISTS {db}.ohlcv_1m AS
SELECT
    b.symbol AS symbol,
    b.bucket AS bucket,
    argMinMerge(b.open) AS open,
    max(b.high) AS high,
    min(b.low) AS low,
    argMaxMerge(b.close) AS close,
    sum(b.volume) AS volume,
    if(sum(b.volume) > 0, sum(b.pv) / sum(b.volume), 0) AS vwap,
    sum(b.trades) AS trades
FROM {db}.bars_1m AS b
GROUP BY b.symbol, b.bucket;

CREATE TABLE IF NOT EXISTS {db}.bars_5m
(
    symbol LowCardinality(String),
    bucket DateTime('UTC') CODEC(DoubleDelta, ZSTD(1)),
    open   AggregateFunction(argMin, Float64, DateTime64(3, 'UTC')),
    high   SimpleAggregateFunction(max, Float64),
    low    SimpleAggregateFunction(min, Float64),
    close  AggregateFunction(argMax, Float64, DateTime64(3, 'UTC')),
    volume SimpleAggregateFunction(sum, Float64),
    pv     SimpleAggregateFunction(sum, Float64),   -- sum(vwap * volume): vwap = pv / volume
    trades SimpleAggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(bucket)
ORDER BY (symbol, bucket)
SETTINGS non_replicated_deduplication_window = 10000, index_granularity = 1024;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.bars_5m_mv TO {db}.bars_5m AS
SELECT
    src.symbol AS symbol,
    toStartOfFiveMinutes(src.bucket) AS bucket,
    argMinMergeState(src.open) AS open,
    max(src.high) AS high,
    min(src.low) AS low,
    argMaxMergeState(src.close) AS close,
    sum(src.volume) AS volume,
    sum(src.pv) AS pv,
    sum(src.trades) AS trades
FROM {db}.bars_1m AS src
GROUP BY src.symbol, bucket;

CREATE VIEW IF NOT EXISTS {db}.ohlcv_5m AS
SELECT
    b.symbol AS symbol,
    b.bucket AS bucket,
    argMinMerge(b.open) AS open,
    max(b.high) AS high,
    min(b.low) AS low,
    argMaxMerge(b.close) AS close,
    sum(b.volume) AS volume,
    if(sum(b.volume) > 0, sum(b.pv) / sum(b.volume), 0) AS vwap,
    sum(b.trades) AS trades
FROM {db}.bars_5m AS b
GROUP BY b.symbol, b.bucket;

CREATE TABLE IF NOT EXISTS {db}.bars_1h
(
    symbol LowCardinality(String),
    bucket DateTime('UTC') CODEC(DoubleDelta, ZSTD(1)),
    open   AggregateFunction(argMin, Float64, DateTime64(3, 'UTC')),
    high   SimpleAggregateFunction(max, Float64),
    low    SimpleAggregateFunction(min, Float64),
    close  AggregateFunction(argMax, Float64, DateTime64(3, 'UTC')),
    volume SimpleAggregateFunction(sum, Float64),
    pv     SimpleAggregateFunction(sum, Float64),   -- sum(vwap * volume): vwap = pv / volume
    trades SimpleAggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYear(bucket)
ORDER BY (symbol, bucket)
SETTINGS non_replicated_deduplication_window = 10000, index_granularity = 1024;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.bars_1h_mv TO {db}.bars_1h AS
SELECT
    src.symbol AS symbol,
    toStartOfHour(src.bucket) AS bucket,
    argMinMergeState(src.open) AS open,
    max(src.high) AS high,
    min(src.low) AS low,
    argMaxMergeState(src.close) AS close,
    sum(src.volume) AS volume,
    sum(src.pv) AS pv,
    sum(src.trades) AS trades
FROM {db}.bars_5m AS src
GROUP BY src.symbol, bucket;

CREATE VIEW IF NOT EXISTS {db}.ohlcv_1h AS
SELECT
    b.symbol AS symbol,
    b.bucket AS bucket,
    argMinMerge(b.open) AS open,
    max(b.high) AS high,
    min(b.low) AS low,
    argMaxMerge(b.close) AS close,
    sum(b.volume) AS volume,
    if(sum(b.volume) > 0, sum(b.pv) / sum(b.volume), 0) AS vwap,
    sum(b.trades) AS trades
FROM {db}.bars_1h AS b
GROUP BY b.symbol, b.bucket;

CREATE TABLE IF NOT EXISTS {db}.bars_1d
(
    symbol LowCardinality(String),
    bucket DateTime('UTC') CODEC(DoubleDelta, ZSTD(1)),
    open   AggregateFunction(argMin, Float64, DateTime64(3, 'UTC')),
    high   SimpleAggregateFunction(max, Float64),
    low    SimpleAggregateFunction(min, Float64),
    close  AggregateFunction(argMax, Float64, DateTime64(3, 'UTC')),
    volume SimpleAggregateFunction(sum, Float64),
    pv     SimpleAggregateFunction(sum, Float64),   -- sum(vwap * volume): vwap = pv / volume
    trades SimpleAggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYear(bucket)
ORDER BY (symbol, bucket)
SETTINGS non_replicated_deduplication_window = 10000, index_granularity = 1024;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.bars_1d_mv TO {db}.bars_1d AS
SELECT
    src.symbol AS symbol,
    toStartOfDay(src.bucket) AS bucket,
    argMinMergeState(src.open) AS open,
    max(src.high) AS high,
    min(src.low) AS low,
    argMaxMergeState(src.close) AS close,
    sum(src.volume) AS volume,
    sum(src.pv) AS pv,
    sum(src.trades) AS trades
FROM {db}.bars_1h AS src
GROUP BY src.symbol, bucket;

CREATE VIEW IF NOT EXISTS {db}.ohlcv_1d AS
SELECT
    b.symbol AS symbol,
    b.bucket AS bucket,
    argMinMerge(b.open) AS open,
    max(b.high) AS high,
    min(b.low) AS low,
    argMaxMerge(b.close) AS close,
    sum(b.volume) AS volume,
    if(sum(b.volume) > 0, sum(b.pv) / sum(b.volume), 0) AS vwap,
    sum(b.trades) AS trades
FROM {db}.bars_1d AS b
GROUP BY b.symbol, b.bucket;
