"""The retention statements in docs/research.md, checked as far as the embedded engine can: each
parses, the TTL moves are valid expressions on tickpipe's real tables (only the `cold` volume is
missing, as chDB has the default storage policy alone), and the XML names what the SQL uses."""

from __future__ import annotations

import re
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tickpipe_clickhouse.schema.migrations import RAW_TABLES, apply_raw_ttl, migrate, split_statements

pytestmark = pytest.mark.integration

DOC = Path(__file__).resolve().parents[2] / "docs" / "research.md"


def section(title: str) -> str:
    text = DOC.read_text()
    start = text.index(f"## {title}")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else None]


def blocks(kind: str) -> list[str]:
    return re.findall(rf"```{kind}\n(.*?)```", section("Retention"), re.S)


@pytest.fixture
def db(clickhouse: Any) -> Iterator[str]:
    name = f"tp_research_retention_{uuid.uuid4().hex[:8]}"
    clickhouse.command(f"DROP DATABASE IF EXISTS {name}")
    migrate(clickhouse, name)
    yield name
    clickhouse.command(f"DROP DATABASE IF EXISTS {name}")


def test_documented_statements_parse_and_fit_the_real_tables(clickhouse: Any, db: str) -> None:
    statements = [s for block in blocks("sql") for s in split_statements(block)]
    assert len(statements) == 2 * len(RAW_TABLES)
    assert {re.search(r"tickpipe\.(\w+)", s).group(1) for s in statements} == set(RAW_TABLES)  # type: ignore[union-attr]
    for statement in statements:
        ast = clickhouse.query(f"EXPLAIN AST {statement}").result_rows
        assert ast[0][0].startswith("AlterQuery tickpipe"), statement
        local = statement.replace("tickpipe.", f"{db}.")
        if "MODIFY TTL" in statement:
            with pytest.raises(Exception, match=r"No such volume `cold`"):
                clickhouse.command(local)
        else:
            with pytest.raises(Exception, match=r"hot_to_s3"):
                clickhouse.command(local)  # chDB knows no such policy: the name reaches the engine


def test_the_storage_policy_names_what_the_sql_uses() -> None:
    (xml,) = blocks("xml")
    root = ET.fromstring(xml)  # noqa: S314 (our own docs)
    policy = root.find("storage_configuration/policies/hot_to_s3")
    assert policy is not None
    found = policy.find("volumes")
    assert found is not None
    volumes = {volume.tag: volume.findtext("disk") for volume in found}
    assert volumes == {"default": "default", "cold": "s3_cold_cache"}
    disks = root.find("storage_configuration/disks")
    assert disks is not None
    assert disks.findtext("s3_cold/type") == "s3"
    assert disks.findtext("s3_cold_cache/disk") == "s3_cold"
    sql = "\n".join(blocks("sql"))
    assert "storage_policy = 'hot_to_s3'" in sql
    assert "TO VOLUME 'cold'" in sql


def test_raw_ttl_days_drops_old_raw_rows_and_keeps_bars(clickhouse: Any, db: str) -> None:
    clickhouse.command(
        f"INSERT INTO {db}.aggregates (ev, symbol, timestamp, end_timestamp, open, high, low, close, volume) "
        "VALUES ('A', 'OLD', now64(3) - INTERVAL 30 DAY, now64(3) - INTERVAL 30 DAY, 1, 1, 1, 1, 5), "
        "('A', 'NEW', now64(3), now64(3), 2, 2, 2, 2, 5)"
    )
    apply_raw_ttl(clickhouse, db, 7)
    clickhouse.command(f"OPTIMIZE TABLE {db}.aggregates FINAL")
    assert clickhouse.query(f"SELECT symbol FROM {db}.aggregates").result_rows == [("NEW",)]
    bars = clickhouse.query(f"SELECT symbol FROM {db}.ohlcv_1m ORDER BY symbol").result_rows
    assert bars == [("NEW",), ("OLD",)]
