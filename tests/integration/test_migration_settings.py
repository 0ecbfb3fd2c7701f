"""Table settings newer than some servers: set where the server knows them, skipped (not failed) where not."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from tickpipe_clickhouse.schema import migrations

WIDER = ("trades", "quotes", "aggregates", "bars", "latest")


def _applied(clickhouse: Any, db: str) -> set[str]:
    rows = clickhouse.query(f"SELECT name FROM `{db}`.schema_migrations").result_rows
    return {row[0] for row in rows}


def test_050_widens_the_merges_of_the_tables_the_sink_writes(clickhouse: Any, ch_database: str) -> None:
    migrations.migrate(clickhouse, ch_database)
    assert "050_wider_merges" in _applied(clickhouse, ch_database)
    for table in WIDER:
        create = str(clickhouse.command(f"SHOW CREATE TABLE `{ch_database}`.{table}"))
        assert "merge_selector_base = 10" in create, table
    assert "merge_selector_base" not in str(clickhouse.command(f"SHOW CREATE TABLE `{ch_database}`.books"))


def test_a_setting_this_server_lacks_skips_its_migration_and_keeps_the_rest(
    clickhouse: Any, ch_database: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    every = migrations.load_migrations()
    unknown = migrations.Migration(
        998,
        "998_unknown_setting",
        "-- needs-merge-tree-setting: no_such_setting_anywhere\n"
        "ALTER TABLE {db}.trades MODIFY SETTING no_such_setting_anywhere = 1;\n",
    )
    known = migrations.Migration(
        999, "999_after", "CREATE TABLE IF NOT EXISTS {db}.after (x UInt8) ENGINE = Null;\n"
    )
    assert unknown.needs_setting == "no_such_setting_anywhere"
    assert migrations.has_merge_tree_setting(clickhouse, "merge_selector_base")
    monkeypatch.setattr(migrations, "load_migrations", lambda: [*every, unknown, known])

    with caplog.at_level(logging.WARNING, logger=migrations.__name__):
        ran = migrations.migrate(clickhouse, ch_database)
    assert "998_unknown_setting" not in ran
    assert "999_after" in ran
    assert "998_unknown_setting" not in _applied(clickhouse, ch_database), (
        "a skipped file must run again later"
    )
    assert any("no MergeTree setting no_such_setting_anywhere" in r.getMessage() for r in caplog.records)
    # The next start tries it again, and again skips it without failing.
    assert migrations.migrate(clickhouse, ch_database) == []
