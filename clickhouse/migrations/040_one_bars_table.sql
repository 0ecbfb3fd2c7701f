-- All four bar levels in one table, `bars`, written by one view per source; replaces 006's
-- bars_1m, bars_5m, bars_1h and bars_1d and their 1m -> 5m -> 1h -> 1d cascade.
--
-- Why. Every level of the cascade was one more insert with a part of its own (about ten files,
-- ≈ 20 ms of the sink's CPU however few its rows), and one more table for the merges: a trades or
-- aggregates insert wrote six parts. Here each source view groups its insert block at the four
-- levels at once (ARRAY JOIN over the levels' lengths in seconds) and writes one part. A level's
-- rows are what 006 wrote into that level's table: same columns, same states, same source rule,
-- corrections and trade conditions (006 explains them; docs/clickhouse.md has the measurements).
--
-- Reading. `seconds` says the level (60, 300, 3600, 86400) and leads the key, so one level is a
-- contiguous range: `FROM bars FINAL WHERE seconds = 60 AND symbol = ...`. The ohlcv_* views are
-- rebuilt over it with the same columns and meaning.
--
-- Moving what 006's tables hold. The old views go first (nothing writes the old tables after
-- them), then every old row is copied into `bars` with its level, in one INSERT that runs only
-- while `bars` is empty, then the old tables go. A run cut short after the old tables were
-- dropped runs again: each old table is first re-created empty if missing, so the copy has a
-- table to read (and copies nothing). The one window this leaves: a run killed during the copy
-- itself leaves `bars` part-filled, and the copy does not run again (`bars` is no longer empty).
-- Bars are not rebuilt from the raw tables, so bars whose raw rows a RAW_TTL_DAYS already dropped
-- are kept. Like every migration, this runs before the sink consumes.
DROP VIEW IF EXISTS {db}.bars_1d_mv;
DROP VIEW IF EXISTS {db}.bars_1h_mv;
DROP VIEW IF EXISTS {db}.bars_5m_mv;
DROP VIEW IF EXISTS {db}.bars_1m_from_aggregates_mv;
DROP VIEW IF EXISTS {db}.bars_1m_corrections_mv;
DROP VIEW IF EXISTS {db}.bars_1m_from_trades_mv;
DROP VIEW IF EXISTS {db}.bars_1m_from_quotes_mv;
DROP VIEW IF EXISTS {db}.ohlcv_1m;
DROP VIEW IF EXISTS {db}.ohlcv_5m;
DROP VIEW IF EXISTS {db}.ohlcv_1h;
DROP VIEW IF EXISTS {db}.ohlcv_1d;

CREATE TABLE IF NOT EXISTS {db}.bars
(
    seconds UInt32,                                  -- the bar's length: 60, 300, 3600 or 86400
    symbol  LowCardinality(String),
    bucket  DateTime('UTC') CODEC(DoubleDelta, ZSTD(1)),
    source  LowCardinality(String),                  -- the event kind the bar is counted from
    open    AggregateFunction(argMin, Float64, Int128),  -- on time_ms * 2^64 -/+ receipt or sequence
    high    SimpleAggregateFunction(max, Float64),
    low     SimpleAggregateFunction(min, Float64),
    close   AggregateFunction(argMax, Float64, Int128),
    volume  SimpleAggregateFunction(sum, Float64),
    pv      SimpleAggregateFunction(sum, Float64),   -- sum(vwap * volume): vwap = pv / volume
    trades  SimpleAggregateFunction(sum, Int64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(bucket)
ORDER BY (seconds, symbol, bucket, source)
SETTINGS non_replicated_deduplication_window = 10000, index_granularity = 1024;


-- Empty stand-ins for old tables a cut-short run already dropped (see above).
CREATE TABLE IF NOT EXISTS {db}.bars_1m ENGINE = Memory AS SELECT symbol, bucket, source, open, high, low, close, volume, pv, trades FROM {db}.bars WHERE 0;
CREATE TABLE IF NOT EXISTS {db}.bars_5m ENGINE = Memory AS SELECT symbol, bucket, source, open, high, low, close, volume, pv, trades FROM {db}.bars WHERE 0;
CREATE TABLE IF NOT EXISTS {db}.bars_1h ENGINE = Memory AS SELECT symbol, bucket, source, open, high, low, close, volume, pv, trades FROM {db}.bars WHERE 0;
CREATE TABLE IF NOT EXISTS {db}.bars_1d ENGINE = Memory AS SELECT symbol, bucket, source, open, high, low, close, volume, pv, trades FROM {db}.bars WHERE 0;

INSERT INTO {db}.bars
SELECT o.seconds, o.symbol, o.bucket, o.source, o.open, o.high, o.low, o.close, o.volume, o.pv, o.trades
FROM (
    SELECT toUInt32(60) AS seconds, symbol, bucket, source, open, high, low, close, volume, pv, trades FROM {db}.bars_1m
    UNION ALL SELECT toUInt32(300) AS seconds, symbol, bucket, source, open, high, low, close, volume, pv, trades FROM {db}.bars_5m
    UNION ALL SELECT toUInt32(3600) AS seconds, symbol, bucket, source, open, high, low, close, volume, pv, trades FROM {db}.bars_1h
    UNION ALL SELECT toUInt32(86400) AS seconds, symbol, bucket, source, open, high, low, close, volume, pv, trades FROM {db}.bars_1d
) AS o
WHERE (SELECT count() FROM {db}.bars) = 0;

DROP TABLE IF EXISTS {db}.bars_1m;
DROP TABLE IF EXISTS {db}.bars_5m;
DROP TABLE IF EXISTS {db}.bars_1h;
DROP TABLE IF EXISTS {db}.bars_1d;

-- The sources of `bars`, 006's views with each block grouped at the four levels at once.
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.bars_from_aggregates_mv TO {db}.bars AS
SELECT
    seconds,
    src.symbol AS symbol,
    toDateTime(intDiv(toUnixTimestamp64Milli(src.timestamp), seconds * 1000) * seconds, 'UTC') AS bucket,
    src.ev AS source,
    argMinState(src.open, toInt128(toUnixTimestamp64Milli(src.timestamp)) * toInt128('18446744073709551616') - (toUnixTimestamp64Milli(src.end_timestamp) + src.received_delay_ms)) AS open,
    max(src.high) AS high,
    min(src.low) AS low,
    argMaxState(src.close, toInt128(toUnixTimestamp64Milli(src.timestamp)) * toInt128('18446744073709551616') + (toUnixTimestamp64Milli(src.end_timestamp) + src.received_delay_ms)) AS close,
    sum(src.volume) AS volume,
    sum(if(src.vwap > 0, src.vwap, src.close) * src.volume) AS pv,
    sum(toInt64(if(src.avg_size > 0, round(src.volume / src.avg_size), 0))) AS trades
FROM {db}.aggregates AS src ARRAY JOIN [60, 300, 3600, 86400] AS seconds
GROUP BY seconds, src.symbol, bucket, src.ev;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.bars_corrections_mv TO {db}.bars AS
SELECT
    seconds,
    r.symbol AS symbol,
    toDateTime(intDiv(toUnixTimestamp64Milli(r.timestamp), seconds * 1000) * seconds, 'UTC') AS bucket,
    r.ev AS source,
    argMinStateIf(toFloat64(0), toInt128(0), false) AS open,
    -inf AS high,
    inf AS low,
    argMaxStateIf(toFloat64(0), toInt128(0), false) AS close,
    -sum(r.volume) AS volume,
    -sum(r.pv) AS pv,
    -sum(r.trades) AS trades
FROM (
    SELECT n.symbol AS symbol, n.ev AS ev, n.timestamp AS timestamp, n.receipt_ms AS receipt_ms,
           argMax(o.volume, o.receipt_ms) AS volume, argMax(o.pv, o.receipt_ms) AS pv,
           argMax(o.trades, o.receipt_ms) AS trades
    FROM (
        SELECT b.symbol AS symbol, b.ev AS ev, b.timestamp AS timestamp, (toUnixTimestamp64Milli(b.end_timestamp) + b.received_delay_ms) AS receipt_ms
        FROM {db}.aggregates AS b
    ) AS n
    INNER JOIN (
        SELECT e.symbol AS symbol, e.ev AS ev, e.timestamp AS timestamp, e.volume AS volume, e.pv AS pv,
               e.trades AS trades, e.receipt_ms AS receipt_ms
        FROM {db}.aggregates_received AS e
        WHERE (e.symbol, e.ev, e.timestamp) IN (
            -- first the keys of the block's time range with more than one receipt (three narrow
            -- columns, one pass), then only their rows in full: corrections are rare
            SELECT c.symbol, c.ev, c.timestamp
            FROM {db}.aggregates_received AS c
            WHERE c.timestamp >= (SELECT min(k.timestamp) FROM {db}.aggregates AS k)
                AND c.timestamp <= (SELECT max(k.timestamp) FROM {db}.aggregates AS k)
                AND c.symbol IN (SELECT k.symbol FROM {db}.aggregates AS k)
            GROUP BY c.symbol, c.ev, c.timestamp
            HAVING count() > 1
        )
    ) AS o ON o.symbol = n.symbol AND o.ev = n.ev AND o.timestamp = n.timestamp
    WHERE o.receipt_ms < n.receipt_ms
    GROUP BY n.symbol, n.ev, n.timestamp, n.receipt_ms
) AS r ARRAY JOIN [60, 300, 3600, 86400] AS seconds
GROUP BY seconds, r.symbol, bucket, r.ev;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.bars_from_trades_mv TO {db}.bars AS
WITH
    (SELECT groupArray(c.id) FROM {db}.trade_conditions AS c FINAL WHERE NOT c.updates_open_close) AS no_oc,
    (SELECT groupArray(c.id) FROM {db}.trade_conditions AS c FINAL WHERE NOT c.updates_high_low) AS no_hl,
    (SELECT groupArray(c.id) FROM {db}.trade_conditions AS c FINAL WHERE NOT c.updates_volume) AS no_vol
SELECT
    seconds,
    t.symbol AS symbol,
    toDateTime(intDiv(toUnixTimestamp64Milli(t.timestamp), seconds * 1000) * seconds, 'UTC') AS bucket,
    t.ev AS source,
    argMinStateIf(t.price, toInt128(toUnixTimestamp64Milli(t.timestamp)) * toInt128('18446744073709551616') + t.sequence, t.ev != 'T' OR NOT hasAny(t.conditions, no_oc)) AS open,
    max(if(t.ev != 'T' OR NOT hasAny(t.conditions, no_hl), t.price, -inf)) AS high,
    min(if(t.ev != 'T' OR NOT hasAny(t.conditions, no_hl), t.price, inf)) AS low,
    argMaxStateIf(t.price, toInt128(toUnixTimestamp64Milli(t.timestamp)) * toInt128('18446744073709551616') + t.sequence, t.ev != 'T' OR NOT hasAny(t.conditions, no_oc)) AS close,
    sum(if(t.ev != 'T' OR NOT hasAny(t.conditions, no_vol), t.size, 0)) AS volume,
    sum(if(t.ev != 'T' OR NOT hasAny(t.conditions, no_vol), t.price * t.size, 0)) AS pv,
    toInt64(countIf(t.ev != 'T' OR NOT hasAny(t.conditions, no_vol))) AS trades
FROM {db}.trades AS t ARRAY JOIN [60, 300, 3600, 86400] AS seconds
GROUP BY seconds, t.symbol, bucket, t.ev;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.bars_from_quotes_mv TO {db}.bars AS
SELECT
    seconds,
    q.symbol AS symbol,
    toDateTime(intDiv(toUnixTimestamp64Milli(q.timestamp), seconds * 1000) * seconds, 'UTC') AS bucket,
    q.ev AS source,
    argMinState((q.bid_price + q.ask_price) / 2, toInt128(toUnixTimestamp64Milli(q.timestamp)) * toInt128('18446744073709551616') + q.sequence) AS open,
    max((q.bid_price + q.ask_price) / 2) AS high,
    min((q.bid_price + q.ask_price) / 2) AS low,
    argMaxState((q.bid_price + q.ask_price) / 2, toInt128(toUnixTimestamp64Milli(q.timestamp)) * toInt128('18446744073709551616') + q.sequence) AS close,
    toFloat64(0) AS volume,
    toFloat64(0) AS pv,
    toInt64(0) AS trades
FROM {db}.quotes AS q ARRAY JOIN [60, 300, 3600, 86400] AS seconds
WHERE q.ev = 'C' AND q.bid_price > 0 AND q.ask_price > 0
GROUP BY seconds, q.symbol, bucket, q.ev;

-- 006's views, each over its level of `bars`.
CREATE VIEW IF NOT EXISTS {db}.ohlcv_1d AS
SELECT
    s.symbol AS symbol,
    s.bucket AS bucket,
    argMin(s.source, s.pick) AS source,
    argMin(s.open, s.pick) AS open,
    argMin(s.high, s.pick) AS high,
    argMin(s.low, s.pick) AS low,
    argMin(s.close, s.pick) AS close,
    argMin(s.volume, s.pick) AS volume,
    argMin(s.vwap, s.pick) AS vwap,
    argMin(s.trades, s.pick) AS trades
FROM (
    SELECT
        b.symbol AS symbol,
        b.bucket AS bucket,
        b.source AS source,
        (transform(b.source, ['A', 'XAS', 'CAS', 'AM', 'XA', 'CA', 'T', 'XT', 'C'], [1, 1, 1, 2, 2, 2, 3, 3, 3], 9), b.source) AS pick,
        argMinMerge(b.open) AS open,
        max(b.high) AS high,
        min(b.low) AS low,
        argMaxMerge(b.close) AS close,
        sum(b.volume) AS volume,
        if(sum(b.volume) > 0, sum(b.pv) / sum(b.volume), 0) AS vwap,
        sum(b.trades) AS trades
    FROM {db}.bars AS b
    WHERE b.seconds = 86400
    GROUP BY b.symbol, b.bucket, b.source
    HAVING max(b.high) >= min(b.low)
) AS s
GROUP BY s.symbol, s.bucket;

CREATE VIEW IF NOT EXISTS {db}.ohlcv_1h AS
SELECT
    s.symbol AS symbol,
    s.bucket AS bucket,
    argMin(s.source, s.pick) AS source,
    argMin(s.open, s.pick) AS open,
    argMin(s.high, s.pick) AS high,
    argMin(s.low, s.pick) AS low,
    argMin(s.close, s.pick) AS close,
    argMin(s.volume, s.pick) AS volume,
    argMin(s.vwap, s.pick) AS vwap,
    argMin(s.trades, s.pick) AS trades
FROM (
    SELECT
        b.symbol AS symbol,
        b.bucket AS bucket,
        b.source AS source,
        (transform(b.source, ['A', 'XAS', 'CAS', 'AM', 'XA', 'CA', 'T', 'XT', 'C'], [1, 1, 1, 2, 2, 2, 3, 3, 3], 9), b.source) AS pick,
        argMinMerge(b.open) AS open,
        max(b.high) AS high,
        min(b.low) AS low,
        argMaxMerge(b.close) AS close,
        sum(b.volume) AS volume,
        if(sum(b.volume) > 0, sum(b.pv) / sum(b.volume), 0) AS vwap,
        sum(b.trades) AS trades
    FROM {db}.bars AS b
    WHERE b.seconds = 3600
    GROUP BY b.symbol, b.bucket, b.source
    HAVING max(b.high) >= min(b.low)
) AS s
WHERE (s.symbol, toStartOfDay(s.bucket), s.source) IN (
    SELECT d.symbol, d.bucket, d.source FROM {db}.ohlcv_1d AS d
)
GROUP BY s.symbol, s.bucket;

CREATE VIEW IF NOT EXISTS {db}.ohlcv_5m AS
SELECT
    s.symbol AS symbol,
    s.bucket AS bucket,
    argMin(s.source, s.pick) AS source,
    argMin(s.open, s.pick) AS open,
    argMin(s.high, s.pick) AS high,
    argMin(s.low, s.pick) AS low,
    argMin(s.close, s.pick) AS close,
    argMin(s.volume, s.pick) AS volume,
    argMin(s.vwap, s.pick) AS vwap,
    argMin(s.trades, s.pick) AS trades
FROM (
    SELECT
        b.symbol AS symbol,
        b.bucket AS bucket,
        b.source AS source,
        (transform(b.source, ['A', 'XAS', 'CAS', 'AM', 'XA', 'CA', 'T', 'XT', 'C'], [1, 1, 1, 2, 2, 2, 3, 3, 3], 9), b.source) AS pick,
        argMinMerge(b.open) AS open,
        max(b.high) AS high,
        min(b.low) AS low,
        argMaxMerge(b.close) AS close,
        sum(b.volume) AS volume,
        if(sum(b.volume) > 0, sum(b.pv) / sum(b.volume), 0) AS vwap,
        sum(b.trades) AS trades
    FROM {db}.bars AS b
    WHERE b.seconds = 300
    GROUP BY b.symbol, b.bucket, b.source
    HAVING max(b.high) >= min(b.low)
) AS s
WHERE (s.symbol, toStartOfDay(s.bucket), s.source) IN (
    SELECT d.symbol, d.bucket, d.source FROM {db}.ohlcv_1d AS d
)
GROUP BY s.symbol, s.bucket;

CREATE VIEW IF NOT EXISTS {db}.ohlcv_1m AS
SELECT
    s.symbol AS symbol,
    s.bucket AS bucket,
    argMin(s.source, s.pick) AS source,
    argMin(s.open, s.pick) AS open,
    argMin(s.high, s.pick) AS high,
    argMin(s.low, s.pick) AS low,
    argMin(s.close, s.pick) AS close,
    argMin(s.volume, s.pick) AS volume,
    argMin(s.vwap, s.pick) AS vwap,
    argMin(s.trades, s.pick) AS trades
FROM (
    SELECT
        b.symbol AS symbol,
        b.bucket AS bucket,
        b.source AS source,
        (transform(b.source, ['A', 'XAS', 'CAS', 'AM', 'XA', 'CA', 'T', 'XT', 'C'], [1, 1, 1, 2, 2, 2, 3, 3, 3], 9), b.source) AS pick,
        argMinMerge(b.open) AS open,
        max(b.high) AS high,
        min(b.low) AS low,
        argMaxMerge(b.close) AS close,
        sum(b.volume) AS volume,
        if(sum(b.volume) > 0, sum(b.pv) / sum(b.volume), 0) AS vwap,
        sum(b.trades) AS trades
    FROM {db}.bars AS b
    WHERE b.seconds = 60
    GROUP BY b.symbol, b.bucket, b.source
    HAVING max(b.high) >= min(b.low)
) AS s
WHERE (s.symbol, toStartOfDay(s.bucket), s.source) IN (
    SELECT d.symbol, d.bucket, d.source FROM {db}.ohlcv_1d AS d
)
GROUP BY s.symbol, s.bucket;
