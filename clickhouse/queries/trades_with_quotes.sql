-- trades_with_quotes: each trade of a symbol with the last quote at or before it (ASOF JOIN), spread and position
-- param symbol: ticker, e.g. AAPL
-- param from = 1970-01-01: window start, UTC
-- param to = 2100-01-01: window end, exclusive, UTC
-- param max_staleness_ms = 1000: a quote older than this many milliseconds counts as no quote
-- param limit = 100000: at most this many trades
-- position = (price - bid) / (ask - bid): 0 at the bid, 1 at the ask, outside [0, 1] through the quote.
-- location: below_bid, at_bid, inside, at_ask, above_ask, crossed (ask < bid or a side missing), or ''
-- without a quote. ASOF LEFT JOIN fills an unmatched trade with defaults, so a match is recognised by
-- its quote's non-empty symbol. The same query, for many symbols, is tickpipe_research's
-- trades_with_quotes().
SELECT
    t.timestamp AS timestamp,
    t.price AS price,
    t.size AS size,
    t.exchange AS exchange,
    toBool(q.symbol != '' AND dateDiff('millisecond', q.timestamp, t.timestamp) <= {max_staleness_ms:UInt64})
        AS has_quote,
    if(has_quote, dateDiff('millisecond', q.timestamp, t.timestamp), NULL) AS quote_age_ms,
    if(has_quote, q.bid_price, NULL) AS bid,
    if(has_quote, q.ask_price, NULL) AS ask,
    toBool(has_quote AND q.bid_price > 0 AND q.ask_price >= q.bid_price) AS valid_quote,
    if(valid_quote, round(q.ask_price - q.bid_price, 6), NULL) AS spread,
    if(valid_quote AND q.ask_price > q.bid_price,
        round((t.price - q.bid_price) / (q.ask_price - q.bid_price), 4), NULL) AS position,
    multiIf(
        NOT has_quote, '',
        NOT valid_quote, 'crossed',
        t.price < q.bid_price, 'below_bid',
        t.price = q.bid_price, 'at_bid',
        t.price > q.ask_price, 'above_ask',
        t.price = q.ask_price, 'at_ask',
        'inside'
    ) AS location
FROM
(
    SELECT symbol, timestamp, price, size, exchange, sequence
    FROM trades
    WHERE symbol = {symbol:String}
        AND timestamp >= parseDateTime64BestEffort({from:String}, 3, 'UTC')
        AND timestamp < parseDateTime64BestEffort({to:String}, 3, 'UTC')
) AS t
ASOF LEFT JOIN
(
    SELECT symbol, timestamp, bid_price, ask_price
    FROM quotes
    WHERE symbol = {symbol:String}
        AND timestamp >= parseDateTime64BestEffort({from:String}, 3, 'UTC')
            - toIntervalMillisecond({max_staleness_ms:UInt64})
        AND timestamp < parseDateTime64BestEffort({to:String}, 3, 'UTC')
) AS q
ON t.symbol = q.symbol AND t.timestamp >= q.timestamp
ORDER BY t.timestamp, t.sequence
LIMIT {limit:UInt32}
