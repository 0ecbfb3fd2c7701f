"""tickpipe_clickhouse: the ClickHouse schema (migrations), the exactly-once sink and `tickpipe query`."""
