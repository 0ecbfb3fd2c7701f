-- top_movers: symbols with the largest move from first open to last close in a window
-- param from = 1970-01-01: window start, UTC
-- param to = 2100-01-01: window end, exclusive, UTC
-- param limit = 10: how many symbols
SELECT
    symbol,
    argMinMerge(open) AS first_open,
    argMaxMerge(close) AS last_close,
    round(100 * (last_close - first_open) / first_open, 3) AS change_pct,
    sum(volume) AS volume
FROM bars_1m
WHERE bucket >= parseDateTime64BestEffort({from:String}, 3, 'UTC')
    AND bucket < parseDateTime64BestEffort({to:String}, 3, 'UTC')
GROUP BY symbol
HAVING first_open > 0
ORDER BY abs(change_pct) DESC, symbol
LIMIT {limit:UInt32}
