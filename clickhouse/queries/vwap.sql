-- vwap: volume-weighted average price per symbol over a time window (from the 1-minute rollup)
-- param symbol = : ticker, or empty for every symbol
-- param from = 1970-01-01: window start, UTC
-- param to = 2100-01-01: window end, exclusive, UTC
SELECT symbol, round(sum(pv) / sum(volume), 4) AS vwap, sum(volume) AS volume, sum(trades) AS trades
FROM bars_1m
WHERE ({symbol:String} = '' OR symbol = {symbol:String})
    AND bucket >= parseDateTime64BestEffort({from:String}, 3, 'UTC')
    AND bucket < parseDateTime64BestEffort({to:String}, 3, 'UTC')
GROUP BY symbol
HAVING volume > 0
ORDER BY symbol
