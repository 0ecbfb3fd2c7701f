"""The schema: SQL migrations (clickhouse/migrations/) and how they are applied."""
