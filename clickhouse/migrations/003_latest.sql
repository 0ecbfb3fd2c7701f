-- The latest tick per symbol: last price (a trade, or an aggregate's close), last bid and ask, and when.
-- Three views feed one AggregatingMergeTree; each view fills only its own columns (the others get
-- empty states), and argMax on time picks the newest value whatever the arrival order.
-- Read it through the `latest_prices` view.

CREATE TABLE IF NOT EXISTS {db}.latest
(
    symbol  LowCardinality(String),
    updated SimpleAggregateFunction(max, DateTime64(3, 'UTC')),
    price   AggregateFunction(argMax, Float64, DateTime64(3, 'UTC')),
    bid     AggregateFunction(argMax, Float64, DateTime64(3, 'UTC')),
    ask     AggregateFunction(argMax, Float64, DateTime64(3, 'UTC'))
)
ENGINE = AggregatingMergeTree
ORDER BY symbol
SETTINGS non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.latest_from_aggregates_mv TO {db}.latest AS
SELECT a.symbol AS symbol, max(a.end_timestamp) AS updated, argMaxState(a.close, a.end_timestamp) AS price
FROM {db}.aggregates AS a
GROUP BY a.symbol;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.latest_from_trades_mv TO {db}.latest AS
SELECT t.symbol AS symbol, max(t.timestamp) AS updated, argMaxState(t.price, t.timestamp) AS price
FROM {db}.trades AS t
GROUP BY t.symbol;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.latest_from_quotes_mv TO {db}.latest AS
SELECT
    q.symbol AS symbol, max(q.timestamp) AS updated,
    argMaxState(q.bid_price, q.timestamp) AS bid, argMaxState(q.ask_price, q.timestamp) AS ask
FROM {db}.quotes AS q
GROUP BY q.symbol;

CREATE VIEW IF NOT EXISTS {db}.latest_prices AS
SELECT
    l.symbol AS symbol,
    max(l.updated) AS updated,
    argMaxMerge(l.price) AS price,
    argMaxMerge(l.bid) AS bid,
    argMaxMerge(l.ask) AS ask
FROM {db}.latest AS l
GROUP BY l.symbol;
