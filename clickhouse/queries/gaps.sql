-- gaps: runs of missing seconds in a symbol's second aggregates (A, XA), oldest first
-- param symbol: ticker or pair, e.g. AAPL
-- param from = 1970-01-01: window start, UTC
-- param to = 2100-01-01: window end, exclusive, UTC
SELECT
    prev + toIntervalSecond(1) AS first_missing,
    timestamp - toIntervalSecond(1) AS last_missing,
    dateDiff('second', prev, timestamp) - 1 AS missing_seconds
FROM
(
    SELECT
        timestamp,
        lagInFrame(timestamp) OVER (ORDER BY timestamp ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) AS prev,
        row_number() OVER (ORDER BY timestamp ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS n
    FROM aggregates
    WHERE symbol = {symbol:String} AND ev IN ('A', 'XA')
        AND timestamp >= parseDateTime64BestEffort({from:String}, 3, 'UTC')
        AND timestamp < parseDateTime64BestEffort({to:String}, 3, 'UTC')
)
WHERE n > 1 AND dateDiff('second', prev, timestamp) > 1
ORDER BY first_missing
