"""The shipped SQL: migrations split into statements, saved queries declare what they bind."""

from __future__ import annotations

import re

import pytest

from tickpipe.config import ConfigError, load_settings
from tickpipe_clickhouse.query.client import check_params, render_table
from tickpipe_clickhouse.query.saved import QueryParamError, saved_queries
from tickpipe_clickhouse.schema.migrations import load_migrations, split_statements
from tickpipe_clickhouse.settings import SinkSettings


def test_migrations_are_ordered_idempotent_statements() -> None:
    migrations = load_migrations()
    assert [m.version for m in migrations] == sorted({m.version for m in migrations})
    for migration in migrations:
        for statement in migration.statements("tp"):
            if migration.server_only:  # access entities: IF NOT EXISTS, and a GRANT is idempotent
                assert re.match(r"^(CREATE (SETTINGS PROFILE|ROLE) IF NOT EXISTS |GRANT )", statement), (
                    statement
                )
                continue
            # Idempotent: create if absent, drop if present, or fill what the same migration
            # (re)created or what is still empty (a guarded INSERT).
            assert re.match(
                r"^(CREATE (TABLE|MATERIALIZED VIEW|VIEW) IF NOT EXISTS|DROP (TABLE|VIEW) IF EXISTS"
                r"|INSERT INTO|ALTER TABLE) `tp`\.",
                statement,
            ), statement
            if statement.startswith("ALTER TABLE"):
                # IF [NOT] EXISTS, or MODIFY SETTING (setting a table setting twice is setting it once)
                idempotent = (" IF EXISTS ", " IF NOT EXISTS ", " MODIFY SETTING ")
                assert any(word in statement for word in idempotent), statement
            if statement.startswith("INSERT INTO"):
                target = statement.split()[2]
                guarded = f"(SELECT count() FROM {target}) = 0" in statement
                recreated = f"DROP TABLE IF EXISTS {target}" in "\n".join(migration.statements("tp"))
                assert guarded or recreated, statement
            assert "{db}" not in statement


def test_every_deduplicated_target_sets_the_window() -> None:
    """A replay is dropped only where the table sets non_replicated_deduplication_window."""
    text = "\n".join(m.sql for m in load_migrations())
    tables = re.findall(
        r"CREATE TABLE IF NOT EXISTS \{db\}\.(\w+)\s*\((.*?)\)\s*ENGINE = (\w+)(.*?);", text, re.S
    )
    assert len(tables) >= 8
    for name, _, engine, tail in tables:
        if engine != "Null":
            assert "non_replicated_deduplication_window" in tail, name


def test_split_statements_keeps_inline_comments_and_drops_comment_lines() -> None:
    sql = "-- header; with a semicolon\nCREATE TABLE a (x UInt8) -- trailing\nENGINE = Null;\n\nSELECT 1;\n"
    assert split_statements(sql) == ["CREATE TABLE a (x UInt8) -- trailing\nENGINE = Null", "SELECT 1"]


def test_saved_queries_bind_every_declared_parameter() -> None:
    queries = saved_queries()
    assert set(queries) >= {"bars", "vwap", "top_movers", "gaps", "spread", "latest"}
    for query in queries.values():
        placeholders = set(re.findall(r"\{(\w+):", query.sql))
        assert placeholders == {p.name for p in query.params}, query.name
        check_params(query.sql, {p.name: "x" for p in query.params})


def test_unused_parameter_is_refused_not_pasted() -> None:
    with pytest.raises(QueryParamError, match="write it as"):
        check_params("SELECT 1", {"symbol": "AAPL"})


def test_render_table_aligns_numbers_right() -> None:
    text = render_table(("sym", "px"), [("AAPL", 1.5), ("MSFT", 400.25)])
    assert text.splitlines() == ["sym       px", "----  ------", "AAPL     1.5", "MSFT  400.25", "(2 rows)"]


def test_settings_reject_bad_values_and_mask_the_dsn_password() -> None:
    with pytest.raises(ConfigError, match=r"CLICKHOUSE_DSN: .*scheme"):
        load_settings(SinkSettings, {"clickhouse_dsn": "mysql://u:hunter2@h/db"})
    with pytest.raises(ConfigError) as bad_dsn:
        load_settings(SinkSettings, {"clickhouse_dsn": "mysql://u:hunter2@h/db"})
    assert "hunter2" not in str(bad_dsn.value)
    with pytest.raises(ConfigError, match="CLICKHOUSE_DATABASE"):
        load_settings(SinkSettings, {"clickhouse_database": "x; DROP"})
    settings = load_settings(SinkSettings, {"clickhouse_dsn": "https://u:hunter2@ch:8443/db"})
    assert "hunter2" not in str(settings.effective())
    assert settings.dlq() == "custom_filtered_stock_data_topic.dlq"
    assert settings.metrics_port == 9103
