"""The sink: FILTERED_TOPIC -> ClickHouse, exactly once (docs/clickhouse.md has the module map)."""
