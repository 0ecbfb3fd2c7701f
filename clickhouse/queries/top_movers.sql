-- top_movers: symbols with the largest move from first open to last close in a window
-- param from = 1970-01-01: window start, UTC
-- param to = 2100-01-01: window end, exclusive, UTC
-- param limit = 10: how many symbols
SELECT
    b.symbol AS symbol,
    argMin(b.open, b.bucket) AS first_open,
    argMax(b.close, b.bucket) AS last_close,
    round(100 * (last_close - first_open) / first_open, 3) AS change_pct,
    sum(b.volume) AS volume
FROM ohlcv_1m AS b
WHERE b.bucket >= parseDateTime64BestEffort({from:String}, 3, 'UTC')
    AND b.bucket < parseDateTime64BestEffort({to:String}, 3, 'UTC')
GROUP BY b.symbol
HAVING first_open > 0
ORDER BY abs(change_pct) DESC, symbol
LIMIT {limit:UInt32}
