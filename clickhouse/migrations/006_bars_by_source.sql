-- OHLCV bars on write, per source, for every subscribed symbol; replaces 002_bars.sql's tables.
--
-- Sources. bars_1m is filled from every channel that can make a bar, each row tagged with its
-- `source` (the event kind): aggregates A, AM (stocks), XAS, XA (crypto), CAS, CA (forex) from
-- `aggregates`; trades T and XT from `trades`; forex quotes C (the mid of bid and ask) from `quotes`.
-- The cascade 1m -> 5m -> 1h -> 1d keeps the source in every level's key, so a level never mixes
-- two sources in one row. The ohlcv_* views pick, per symbol and bucket, the finest source present
-- (rank 1: A, XAS, CAS; 2: AM, XA, CA; 3: T, XT, C; ties by name) for the symbol's day, and show it
-- in their `source` column: ohlcv_1d picks per symbol and day, and ohlcv_1m/5m/1h keep the buckets
-- of that day's source only, so a symbol's bars on a day are counted from one source and the
-- levels add up (the minutes of a day sum to its daily bar). A materialized view sees only its insert
-- block, so it cannot know which sources a symbol has; the choice is made when reading, over a few
-- rows per bucket (docs/clickhouse.md has the measurements).
--
-- Corrections. Polygon re-sends an aggregate (same symbol, kind and start) with recalculated values;
-- the later receipt replaces the earlier one. Open and close are argMin/argMax on (start, receipt),
-- encoded as one Int128 (start_ms * 2^64 - receipt_ms for open, + for close; trades and quotes add
-- their sequence number), so the latest receipt of a sub-bar wins them; volume, pv and trades are made exact by
-- bars_1m_corrections_mv, which for every aggregate that replaces an earlier receipt writes the
-- earlier receipt's volume, pv and trades negated (read from the table through the aggregates_received
-- view: inside a materialized view, `aggregates` means the insert block). High and low stay the max
-- and min over every receipt: a re-sent bar that only adds late trades (Polygon's case) can only
-- widen them, so they equal the latest receipt's; a narrowing correction shows in aggregates_latest,
-- not in the bars.
--
-- Trade conditions. Bars from stock trades (T) follow the consolidated update rules of each trade's
-- condition codes, read from trade_conditions (005) at every insert: a trade moves open/close,
-- high/low and volume only if none of its codes says it must not. Crypto trade conditions (XT:
-- 1 = sell, 2 = buy side) are not SIP conditions: every crypto trade counts.
--
-- Every target sets non_replicated_deduplication_window, so a replayed insert is dropped at every
-- level. The migration drops 002's bar tables and rebuilds every level from the raw tables (bars are
-- derived data; where raw tables have a TTL, bars older than the raw rows are not rebuilt).
DROP VIEW IF EXISTS {db}.bars_1d_mv;
DROP VIEW IF EXISTS {db}.bars_1h_mv;
DROP VIEW IF EXISTS {db}.bars_5m_mv;
DROP VIEW IF EXISTS {db}.bars_1m_mv;
DROP VIEW IF EXISTS {db}.ohlcv_1m;
DROP VIEW IF EXISTS {db}.ohlcv_5m;
DROP VIEW IF EXISTS {db}.ohlcv_1h;
DROP VIEW IF EXISTS {db}.ohlcv_1d;
DROP VIEW IF EXISTS {db}.bars_1m_from_aggregates_mv;
DROP VIEW IF EXISTS {db}.bars_1m_corrections_mv;
DROP VIEW IF EXISTS {db}.bars_1m_from_trades_mv;
DROP VIEW IF EXISTS {db}.bars_1m_from_quotes_mv;
DROP TABLE IF EXISTS {db}.bars_1d;
DROP TABLE IF EXISTS {db}.bars_1h;
DROP TABLE IF EXISTS {db}.bars_5m;
DROP TABLE IF EXISTS {db}.bars_1m;

-- The raw aggregates as received (every receipt): the corrections view reads the table through it.
CREATE VIEW IF NOT EXISTS {db}.aggregates_received AS
SELECT a.ev AS ev, a.symbol AS symbol, a.timestamp AS timestamp, a.volume AS volume,
       if(a.vwap > 0, a.vwap, a.close) * a.volume AS pv,
       toInt64(if(a.avg_size > 0, round(a.volume / a.avg_size), 0)) AS trades,
       (toUnixTimestamp64Milli(a.end_timestamp) + a.received_delay_ms) AS receipt_ms
FROM {db}.aggregates AS a;

-- The corrected aggregates: one row per (symbol, ev, start), the latest receipt's values.
CREATE VIEW IF NOT EXISTS {db}.aggregates_latest AS
SELECT a.symbol AS symbol, a.ev AS ev, a.timestamp AS timestamp,
       argMax(a.end_timestamp, r) AS end_timestamp,
       argMax(a.open, r) AS open, argMax(a.high, r) AS high, argMax(a.low, r) AS low,
       argMax(a.close, r) AS close, argMax(a.volume, r) AS volume, argMax(a.vwap, r) AS vwap,
       argMax(a.day_volume, r) AS day_volume, argMax(a.day_open, r) AS day_open,
       argMax(a.day_vwap, r) AS day_vwap, argMax(a.avg_size, r) AS avg_size, argMax(a.otc, r) AS otc,
       max(r) AS received_ms, count() AS receipts
FROM (SELECT *, (toUnixTimestamp64Milli(aggregates.end_timestamp) + aggregates.received_delay_ms) AS r FROM {db}.aggregates) AS a
GROUP BY a.symbol, a.ev, a.timestamp;

CREATE TABLE IF NOT EXISTS {db}.bars_1m
(
    symbol LowCardinality(String),
    bucket DateTime('UTC') CODEC(DoubleDelta, ZSTD(1)),
    source LowCardinality(String),                   -- the event kind the bar is counted from
    open   AggregateFunction(argMin, Float64, Int128),  -- on time_ms * 2^64 -/+ receipt or sequence
    high   SimpleAggregateFunction(max, Float64),
    low    SimpleAggregateFunction(min, Float64),
    close  AggregateFunction(argMax, Float64, Int128),
    volume SimpleAggregateFunction(sum, Float64),
    pv     SimpleAggregateFunction(sum, Float64),   -- sum(vwap * volume): vwap = pv / volume
    trades SimpleAggregateFunction(sum, Int64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(bucket)
ORDER BY (symbol, bucket, source)
SETTINGS non_replicated_deduplication_window = 10000, index_granularity = 1024;

CREATE TABLE IF NOT EXISTS {db}.bars_5m
(
    symbol LowCardinality(String),
    bucket DateTime('UTC') CODEC(DoubleDelta, ZSTD(1)),
    source LowCardinality(String),                   -- the event kind the bar is counted from
    open   AggregateFunction(argMin, Float64, Int128),  -- on time_ms * 2^64 -/+ receipt or sequence
    high   SimpleAggregateFunction(max, Float64),
    low    SimpleAggregateFunction(min, Float64),
    close  AggregateFunction(argMax, Float64, Int128),
    volume SimpleAggregateFunction(sum, Float64),
    pv     SimpleAggregateFunction(sum, Float64),   -- sum(vwap * volume): vwap = pv / volume
    trades SimpleAggregateFunction(sum, Int64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(bucket)
ORDER BY (symbol, bucket, source)
SETTINGS non_replicated_deduplication_window = 10000, index_granularity = 1024;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.bars_5m_mv TO {db}.bars_5m AS
SELECT
    src.symbol AS symbol,
    toStartOfFiveMinutes(src.bucket) AS bucket,
    src.source AS source,
    argMinMergeState(src.open) AS open,
    max(src.high) AS high,
    min(src.low) AS low,
    argMaxMergeState(src.close) AS close,
    sum(src.volume) AS volume,
    sum(src.pv) AS pv,
    sum(src.trades) AS trades
FROM {db}.bars_1m AS src
GROUP BY src.symbol, bucket, src.source;

CREATE TABLE IF NOT EXISTS {db}.bars_1h
(
    symbol LowCardinality(String),
    bucket DateTime('UTC') CODEC(DoubleDelta, ZSTD(1)),
    source LowCardinality(String),                   -- the event kind the bar is counted from
    open   AggregateFunction(argMin, Float64, Int128),  -- on time_ms * 2^64 -/+ receipt or sequence
    high   SimpleAggregateFunction(max, Float64),
    low    SimpleAggregateFunction(min, Float64),
    close  AggregateFunction(argMax, Float64, Int128),
    volume SimpleAggregateFunction(sum, Float64),
    pv     SimpleAggregateFunction(sum, Float64),   -- sum(vwap * volume): vwap = pv / volume
    trades SimpleAggregateFunction(sum, Int64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYear(bucket)
ORDER BY (symbol, bucket, source)
SETTINGS non_replicated_deduplication_window = 10000, index_granularity = 1024;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.bars_1h_mv TO {db}.bars_1h AS
SELECT
    src.symbol AS symbol,
    toStartOfHour(src.bucket) AS bucket,
    src.source AS source,
    argMinMergeState(src.open) AS open,
    max(src.high) AS high,
    min(src.low) AS low,
    argMaxMergeState(src.close) AS close,
    sum(src.volume) AS volume,
    sum(src.pv) AS pv,
    sum(src.trades) AS trades
FROM {db}.bars_5m AS src
GROUP BY src.symbol, bucket, src.source;

CREATE TABLE IF NOT EXISTS {db}.bars_1d
(
    symbol LowCardinality(String),
    bucket DateTime('UTC') CODEC(DoubleDelta, ZSTD(1)),
    source LowCardinality(String),                   -- the event kind the bar is counted from
    open   AggregateFunction(argMin, Float64, Int128),  -- on time_ms * 2^64 -/+ receipt or sequence
    high   SimpleAggregateFunction(max, Float64),
    low    SimpleAggregateFunction(min, Float64),
    close  AggregateFunction(argMax, Float64, Int128),
    volume SimpleAggregateFunction(sum, Float64),
    pv     SimpleAggregateFunction(sum, Float64),   -- sum(vwap * volume): vwap = pv / volume
    trades SimpleAggregateFunction(sum, Int64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYear(bucket)
ORDER BY (symbol, bucket, source)
SETTINGS non_replicated_deduplication_window = 10000, index_granularity = 1024;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.bars_1d_mv TO {db}.bars_1d AS
SELECT
    src.symbol AS symbol,
    toStartOfDay(src.bucket) AS bucket,
    src.source AS source,
    argMinMergeState(src.open) AS open,
    max(src.high) AS high,
    min(src.low) AS low,
    argMaxMergeState(src.close) AS close,
    sum(src.volume) AS volume,
    sum(src.pv) AS pv,
    sum(src.trades) AS trades
FROM {db}.bars_1h AS src
GROUP BY src.symbol, bucket, src.source;

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
    FROM {db}.bars_1d AS b
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
    FROM {db}.bars_1h AS b
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
    FROM {db}.bars_5m AS b
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
    FROM {db}.bars_1m AS b
    GROUP BY b.symbol, b.bucket, b.source
    HAVING max(b.high) >= min(b.low)
) AS s
WHERE (s.symbol, toStartOfDay(s.bucket), s.source) IN (
    SELECT d.symbol, d.bucket, d.source FROM {db}.ohlcv_1d AS d
)
GROUP BY s.symbol, s.bucket;

-- The sources of bars_1m (each fires on its raw table's insert block).
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.bars_1m_from_aggregates_mv TO {db}.bars_1m AS
SELECT
    src.symbol AS symbol,
    toStartOfMinute(src.timestamp) AS bucket,
    src.ev AS source,
    argMinState(src.open, toInt128(toUnixTimestamp64Milli(src.timestamp)) * toInt128('18446744073709551616') - (toUnixTimestamp64Milli(src.end_timestamp) + src.received_delay_ms)) AS open,
    max(src.high) AS high,
    min(src.low) AS low,
    argMaxState(src.close, toInt128(toUnixTimestamp64Milli(src.timestamp)) * toInt128('18446744073709551616') + (toUnixTimestamp64Milli(src.end_timestamp) + src.received_delay_ms)) AS close,
    sum(src.volume) AS volume,
    sum(if(src.vwap > 0, src.vwap, src.close) * src.volume) AS pv,
    sum(toInt64(if(src.avg_size > 0, round(src.volume / src.avg_size), 0))) AS trades
FROM {db}.aggregates AS src
GROUP BY src.symbol, bucket, src.ev;

-- For each aggregate in the block that replaces an earlier receipt of the same (symbol, ev, start),
-- the latest earlier receipt's additive columns, negated: the bar then counts the newest only.
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.bars_1m_corrections_mv TO {db}.bars_1m AS
SELECT
    r.symbol AS symbol,
    toStartOfMinute(r.timestamp) AS bucket,
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
) AS r
GROUP BY r.symbol, bucket, r.ev;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.bars_1m_from_trades_mv TO {db}.bars_1m AS
WITH
    (SELECT groupArray(c.id) FROM {db}.trade_conditions AS c FINAL WHERE NOT c.updates_open_close) AS no_oc,
    (SELECT groupArray(c.id) FROM {db}.trade_conditions AS c FINAL WHERE NOT c.updates_high_low) AS no_hl,
    (SELECT groupArray(c.id) FROM {db}.trade_conditions AS c FINAL WHERE NOT c.updates_volume) AS no_vol
SELECT
    t.symbol AS symbol,
    toStartOfMinute(t.timestamp) AS bucket,
    t.ev AS source,
    argMinStateIf(t.price, toInt128(toUnixTimestamp64Milli(t.timestamp)) * toInt128('18446744073709551616') + t.sequence, t.ev != 'T' OR NOT hasAny(t.conditions, no_oc)) AS open,
    max(if(t.ev != 'T' OR NOT hasAny(t.conditions, no_hl), t.price, -inf)) AS high,
    min(if(t.ev != 'T' OR NOT hasAny(t.conditions, no_hl), t.price, inf)) AS low,
    argMaxStateIf(t.price, toInt128(toUnixTimestamp64Milli(t.timestamp)) * toInt128('18446744073709551616') + t.sequence, t.ev != 'T' OR NOT hasAny(t.conditions, no_oc)) AS close,
    sum(if(t.ev != 'T' OR NOT hasAny(t.conditions, no_vol), t.size, 0)) AS volume,
    sum(if(t.ev != 'T' OR NOT hasAny(t.conditions, no_vol), t.price * t.size, 0)) AS pv,
    toInt64(countIf(t.ev != 'T' OR NOT hasAny(t.conditions, no_vol))) AS trades
FROM {db}.trades AS t
GROUP BY t.symbol, bucket, t.ev;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.bars_1m_from_quotes_mv TO {db}.bars_1m AS
SELECT
    q.symbol AS symbol,
    toStartOfMinute(q.timestamp) AS bucket,
    q.ev AS source,
    argMinState((q.bid_price + q.ask_price) / 2, toInt128(toUnixTimestamp64Milli(q.timestamp)) * toInt128('18446744073709551616') + q.sequence) AS open,
    max((q.bid_price + q.ask_price) / 2) AS high,
    min((q.bid_price + q.ask_price) / 2) AS low,
    argMaxState((q.bid_price + q.ask_price) / 2, toInt128(toUnixTimestamp64Milli(q.timestamp)) * toInt128('18446744073709551616') + q.sequence) AS close,
    toFloat64(0) AS volume,
    toFloat64(0) AS pv,
    toInt64(0) AS trades
FROM {db}.quotes AS q
WHERE q.ev = 'C' AND q.bid_price > 0 AND q.ask_price > 0
GROUP BY q.symbol, bucket, q.ev;

-- Rebuild from what the raw tables hold (the cascade views fill 5m, 1h and 1d): the latest receipt
-- of each aggregate, every trade under today's conditions, every forex quote.
INSERT INTO {db}.bars_1m
SELECT
    src.symbol AS symbol,
    toStartOfMinute(src.timestamp) AS bucket,
    src.ev AS source,
    argMinState(src.open, toInt128(toUnixTimestamp64Milli(src.timestamp)) * toInt128('18446744073709551616') - src.received_ms) AS open,
    max(src.high) AS high,
    min(src.low) AS low,
    argMaxState(src.close, toInt128(toUnixTimestamp64Milli(src.timestamp)) * toInt128('18446744073709551616') + src.received_ms) AS close,
    sum(src.volume) AS volume,
    sum(if(src.vwap > 0, src.vwap, src.close) * src.volume) AS pv,
    sum(toInt64(if(src.avg_size > 0, round(src.volume / src.avg_size), 0))) AS trades
FROM {db}.aggregates_latest AS src
GROUP BY src.symbol, bucket, src.ev;

INSERT INTO {db}.bars_1m
WITH
    (SELECT groupArray(c.id) FROM {db}.trade_conditions AS c FINAL WHERE NOT c.updates_open_close) AS no_oc,
    (SELECT groupArray(c.id) FROM {db}.trade_conditions AS c FINAL WHERE NOT c.updates_high_low) AS no_hl,
    (SELECT groupArray(c.id) FROM {db}.trade_conditions AS c FINAL WHERE NOT c.updates_volume) AS no_vol
SELECT
    t.symbol AS symbol,
    toStartOfMinute(t.timestamp) AS bucket,
    t.ev AS source,
    argMinStateIf(t.price, toInt128(toUnixTimestamp64Milli(t.timestamp)) * toInt128('18446744073709551616') + t.sequence, t.ev != 'T' OR NOT hasAny(t.conditions, no_oc)) AS open,
    max(if(t.ev != 'T' OR NOT hasAny(t.conditions, no_hl), t.price, -inf)) AS high,
    min(if(t.ev != 'T' OR NOT hasAny(t.conditions, no_hl), t.price, inf)) AS low,
    argMaxStateIf(t.price, toInt128(toUnixTimestamp64Milli(t.timestamp)) * toInt128('18446744073709551616') + t.sequence, t.ev != 'T' OR NOT hasAny(t.conditions, no_oc)) AS close,
    sum(if(t.ev != 'T' OR NOT hasAny(t.conditions, no_vol), t.size, 0)) AS volume,
    sum(if(t.ev != 'T' OR NOT hasAny(t.conditions, no_vol), t.price * t.size, 0)) AS pv,
    toInt64(countIf(t.ev != 'T' OR NOT hasAny(t.conditions, no_vol))) AS trades
FROM {db}.trades AS t
GROUP BY t.symbol, bucket, t.ev;

INSERT INTO {db}.bars_1m
SELECT
    q.symbol AS symbol,
    toStartOfMinute(q.timestamp) AS bucket,
    q.ev AS source,
    argMinState((q.bid_price + q.ask_price) / 2, toInt128(toUnixTimestamp64Milli(q.timestamp)) * toInt128('18446744073709551616') + q.sequence) AS open,
    max((q.bid_price + q.ask_price) / 2) AS high,
    min((q.bid_price + q.ask_price) / 2) AS low,
    argMaxState((q.bid_price + q.ask_price) / 2, toInt128(toUnixTimestamp64Milli(q.timestamp)) * toInt128('18446744073709551616') + q.sequence) AS close,
    toFloat64(0) AS volume,
    toFloat64(0) AS pv,
    toInt64(0) AS trades
FROM {db}.quotes AS q
WHERE q.ev = 'C' AND q.bid_price > 0 AND q.ask_price > 0
GROUP BY q.symbol, bucket, q.ev;
