-- bars: OHLCV bars of one symbol from the rollups, oldest first
-- param symbol: ticker or pair, e.g. AAPL
-- param interval = 1m: one of 1m, 5m, 1h, 1d
-- param from = 1970-01-01: first bucket, UTC (any ISO-like date or time)
-- param to = 2100-01-01: end, exclusive, UTC
-- param limit = 100000: at most this many bars
SELECT bucket, open, high, low, close, volume, round(vwap, 4) AS vwap, trades
FROM
(
    SELECT * FROM ohlcv_1m WHERE {interval:String} = '1m' AND symbol = {symbol:String}
        AND bucket >= parseDateTime64BestEffort({from:String}, 3, 'UTC')
        AND bucket < parseDateTime64BestEffort({to:String}, 3, 'UTC')
    UNION ALL
    SELECT * FROM ohlcv_5m WHERE {interval:String} = '5m' AND symbol = {symbol:String}
        AND bucket >= parseDateTime64BestEffort({from:String}, 3, 'UTC')
        AND bucket < parseDateTime64BestEffort({to:String}, 3, 'UTC')
    UNION ALL
    SELECT * FROM ohlcv_1h WHERE {interval:String} = '1h' AND symbol = {symbol:String}
        AND bucket >= parseDateTime64BestEffort({from:String}, 3, 'UTC')
        AND bucket < parseDateTime64BestEffort({to:String}, 3, 'UTC')
    UNION ALL
    SELECT * FROM ohlcv_1d WHERE {interval:String} = '1d' AND symbol = {symbol:String}
        AND bucket >= parseDateTime64BestEffort({from:String}, 3, 'UTC')
        AND bucket < parseDateTime64BestEffort({to:String}, 3, 'UTC')
)
ORDER BY bucket
LIMIT {limit:UInt32}
