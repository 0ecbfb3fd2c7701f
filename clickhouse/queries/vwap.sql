-- vwap: volume-weighted average price per symbol over a time window (from the 1-minute bars)
-- param symbol = : ticker, or empty for every symbol
-- param from = 1970-01-01: window start, UTC
-- param to = 2100-01-01: window end, exclusive, UTC
SELECT
    b.symbol AS symbol,
    round(sum(b.vwap * b.volume) / sum(b.volume), 4) AS vwap,
    sum(b.volume) AS volume,
    sum(b.trades) AS trades
FROM ohlcv_1m AS b
WHERE ({symbol:String} = '' OR b.symbol = {symbol:String})
    AND b.bucket >= parseDateTime64BestEffort({from:String}, 3, 'UTC')
    AND b.bucket < parseDateTime64BestEffort({to:String}, 3, 'UTC')
GROUP BY b.symbol
HAVING sum(b.volume) > 0
ORDER BY symbol
