"""On a server the read-only path is a role: SELECT only, readonly=1, limits fixed; Grafana uses it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tickpipe_clickhouse.schema.migrations import load_migrations
from tickpipe_clickhouse.schema.reader import quote_literal, reader_user_statements

ROOT = Path(__file__).resolve().parents[2]


def _reader_migration() -> list[str]:
    migration = next(m for m in load_migrations() if m.version == 20)
    assert migration.server_only
    return migration.statements("tp")


def test_the_reader_role_may_select_and_nothing_else() -> None:
    statements = _reader_migration()
    grants = [s for s in statements if s.startswith("GRANT")]
    assert grants == ["GRANT SELECT ON `tp`.* TO tickpipe_reader"]
    profile = next(s for s in statements if s.startswith("CREATE SETTINGS PROFILE"))
    assert "readonly = 1 CONST" in profile
    for limit in ("max_memory_usage", "max_result_rows", "max_result_bytes"):
        assert f"{limit} = " in profile
    assert "max_execution_time = 60 MAX 60 CHANGEABLE_IN_READONLY" in profile


def test_the_reader_user_gets_only_the_role_and_a_quoted_password() -> None:
    statements = reader_user_statements("tickpipe_query", "it's a \\ secret", "tp")
    assert "BY 'it\\'s a \\\\ secret'" in statements[0]
    assert [s for s in statements if s.startswith("GRANT")] == ["GRANT tickpipe_reader TO tickpipe_query"]
    assert quote_literal("a'b") == "'a\\'b'"
    with pytest.raises(ValueError, match="letters"):
        reader_user_statements("x; DROP", "pw", "tp")
    with pytest.raises(ValueError, match="password"):
        reader_user_statements("tickpipe_query", "", "tp")


def test_compose_gives_grafana_and_ad_hoc_queries_the_reader_and_keeps_env_out_of_git() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    grafana = compose["services"]["grafana"]
    assert "CLICKHOUSE_READER_PASSWORD" in grafana["environment"]
    assert "CLICKHOUSE_PASSWORD" not in grafana["environment"], "Grafana must not hold the writer's password"
    assert grafana["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    migrate = compose["services"]["migrate"]["environment"]
    assert migrate["CLICKHOUSE_READER_USER"] == "tickpipe_query"
    assert migrate["CLICKHOUSE_READER_PASSWORD"].startswith("${CLICKHOUSE_READER_PASSWORD:-")
    assert ".env" in (ROOT / ".gitignore").read_text().splitlines()
