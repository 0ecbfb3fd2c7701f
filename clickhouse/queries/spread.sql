-- spread: bid/ask spread of a symbol per minute, from quotes (crossed or one-sided quotes skipped)
-- param symbol: ticker or pair, e.g. AAPL
-- param from = 1970-01-01: window start, UTC
-- param to = 2100-01-01: window end, exclusive, UTC
SELECT
    toStartOfMinute(timestamp) AS minute,
    count() AS quotes,
    round(avg(ask_price - bid_price), 6) AS avg_spread,
    round(avg((ask_price - bid_price) / ((ask_price + bid_price) / 2)) * 10000, 3) AS avg_spread_bps,
    round(min(ask_price - bid_price), 6) AS min_spread,
    round(max(ask_price - bid_price), 6) AS max_spread
FROM quotes
WHERE symbol = {symbol:String} AND bid_price > 0 AND ask_price >= bid_price
    AND timestamp >= parseDateTime64BestEffort({from:String}, 3, 'UTC')
    AND timestamp < parseDateTime64BestEffort({to:String}, 3, 'UTC')
GROUP BY minute
ORDER BY minute
