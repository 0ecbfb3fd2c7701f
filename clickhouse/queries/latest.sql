-- latest: the newest price, bid and ask per symbol, and when they were seen
-- param symbol = : ticker, or empty for every symbol
SELECT symbol, updated, price, bid, ask
FROM latest_prices
WHERE {symbol:String} = '' OR symbol = {symbol:String}
ORDER BY symbol
