"""`tickpipe web`: the live console (candles, prices, pipeline health, read-only SQL) and `/ws`."""
