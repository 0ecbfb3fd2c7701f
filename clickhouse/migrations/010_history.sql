-- History loaded from Polygon's REST API and flat files (`tickpipe backfill`): the reference data,
-- the grouped daily bars, and the backfill's own bookkeeping. Trades, quotes and second/minute
-- aggregates go into the live tables (001_raw_tables.sql), so their bars come from the same views.
--
-- Reference tables are ReplacingMergeTree on the natural key with a version column: loading the
-- same version twice leaves one row once merged; read them with FINAL (or the views below).
-- Every table sets non_replicated_deduplication_window, as every table of tickpipe does: a retried
-- insert with the same insert_deduplication_token (or the same block) is dropped at once.

-- Every version of every ticker, keyed by Polygon's `last_updated_utc`: what a ticker was on a past
-- day is its newest version updated by then (`tickers_as_of`).
CREATE TABLE IF NOT EXISTS {db}.tickers
(
    ticker           LowCardinality(String),
    last_updated_utc DateTime('UTC'),
    name             String,
    market           LowCardinality(String),
    locale           LowCardinality(String),
    type             LowCardinality(String),
    active           Bool,
    primary_exchange LowCardinality(String),
    currency_name    LowCardinality(String),
    cik              String,
    composite_figi   String,
    share_class_figi String,
    delisted_utc     Nullable(DateTime('UTC')),
    version          UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (ticker, last_updated_utc)
SETTINGS non_replicated_deduplication_window = 10000;

-- SELECT * FROM tickers_as_of(as_of = '2024-01-31 23:59:59'): each ticker as it stood then.
CREATE VIEW IF NOT EXISTS {db}.tickers_as_of AS
SELECT
    t.ticker AS ticker,
    max(t.last_updated_utc) AS last_updated_utc,
    argMax(t.name, t.last_updated_utc) AS name,
    argMax(t.active, t.last_updated_utc) AS active,
    argMax(t.type, t.last_updated_utc) AS type,
    argMax(t.primary_exchange, t.last_updated_utc) AS primary_exchange,
    argMax(t.delisted_utc, t.last_updated_utc) AS delisted_utc,
    argMax(t.composite_figi, t.last_updated_utc) AS composite_figi
FROM {db}.tickers AS t
WHERE t.last_updated_utc <= {as_of:DateTime}
GROUP BY t.ticker;

-- The trade conditions and what each does to a bar (`update_rules.consolidated`): the rules table
-- of 005_trade_conditions.sql, which the trade bars read at every insert. The reference-data load
-- adds Polygon's SIP mappings; its rows (origin 'api', updated_at now) replace the built-in ones.
ALTER TABLE {db}.trade_conditions
    ADD COLUMN IF NOT EXISTS sip_cta String,
    ADD COLUMN IF NOT EXISTS sip_utp String,
    ADD COLUMN IF NOT EXISTS legacy Bool;

-- /v2/aggs/grouped/locale/us/market/stocks/{date}: one daily bar per symbol (`timestamp` is the one
-- Polygon gave, which depends on the endpoint; `day` is the trading day asked for).
CREATE TABLE IF NOT EXISTS {db}.daily_bars
(
    symbol       LowCardinality(String),
    day          Date,
    timestamp    DateTime64(3, 'UTC'),
    open         Float64 CODEC(ZSTD(3)),
    high         Float64 CODEC(ZSTD(3)),
    low          Float64 CODEC(ZSTD(3)),
    close        Float64 CODEC(ZSTD(3)),
    volume       Float64,
    vwap         Float64,
    transactions UInt64,
    otc          Bool,
    version      UInt64
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYear(day)
ORDER BY (symbol, day)
SETTINGS non_replicated_deduplication_window = 10000;

-- The backfill's progress: one row per (dataset, symbol, chunk), newest version wins. A chunk is a
-- fixed window (a UTC day for bars, an hour for trades and quotes), so a re-run cuts the same pages.
-- `done` chunks are not fetched again; `partial` (the window is not yet final at the source),
-- `failed` (a page went to backfill_dlq) and `started` (cut short, e.g. by kill -9) are.
CREATE TABLE IF NOT EXISTS {db}.backfill_progress
(
    dataset     LowCardinality(String),
    symbol      LowCardinality(String),
    chunk_start DateTime64(3, 'UTC'),
    chunk_end   DateTime64(3, 'UTC'),
    state       Enum8('started' = 1, 'partial' = 2, 'failed' = 3, 'done' = 4),
    pages       UInt32,
    rows        UInt64,
    version     UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (dataset, symbol, chunk_start)
SETTINGS non_replicated_deduplication_window = 10000;

-- The watermark per dataset and symbol: the end of the newest chunk loaded completely.
CREATE VIEW IF NOT EXISTS {db}.backfill_watermarks AS
SELECT p.dataset AS dataset, p.symbol AS symbol, max(p.chunk_end) AS loaded_until,
       count() AS chunks, sum(p.rows) AS rows
FROM {db}.backfill_progress AS p FINAL
WHERE p.state = 'done'
GROUP BY p.dataset, p.symbol;

-- REST pages that failed validation (or could not be decoded), with the reason: the rest of the
-- range goes on, and the chunk stays `failed`, so the next run fetches it again.
CREATE TABLE IF NOT EXISTS {db}.backfill_dlq
(
    at      DateTime64(3, 'UTC') DEFAULT now64(3),
    dataset LowCardinality(String),
    symbol  LowCardinality(String),
    request String,
    page    UInt32,
    reason  LowCardinality(String),
    detail  String,
    body    String
)
ENGINE = MergeTree
ORDER BY (dataset, at)
SETTINGS non_replicated_deduplication_window = 10000;
