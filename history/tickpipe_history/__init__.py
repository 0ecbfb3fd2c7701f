"""History: `tickpipe backfill` loads Polygon's REST data and flat files into tickpipe's ClickHouse tables."""
