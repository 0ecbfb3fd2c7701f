"""Every ClickHouse query of the Grafana dashboard runs on the real schema (chDB) and returns data.

Grafana's macros are expanded the way the ClickHouse plugin does for a one-hour window, and
`tickpipe.` is pointed at this test's random database with the project's migrations applied.
"""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "tickpipe.json"


def _queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    queries = [variable["query"] for variable in dashboard["templating"]["list"]]
    return queries + [t["rawSql"] for p in dashboard["panels"] for t in p["targets"] if "rawSql" in t]


def _expand(sql: str, database: str) -> str:
    sql = sql.replace("${symbol}", "AAPL").replace("tickpipe.", f"{database}.")
    return re.sub(r"\$__timeFilter\((\w+)\)", r"\1 >= now() - INTERVAL 1 HOUR AND \1 <= now()", sql)


def test_dashboard_queries_run_on_the_schema(clickhouse: Any, ch_database: str) -> None:
    try:
        migrations = importlib.import_module("tickpipe_clickhouse.schema.migrations")
    except ModuleNotFoundError:
        pytest.skip("the ClickHouse schema (issue 6) is not in this tree yet")
    migrations.migrate(clickhouse, ch_database)
    clickhouse.command(
        f"INSERT INTO {ch_database}.aggregates (ev, symbol, timestamp, end_timestamp, open, high, low, close,"
        " volume, vwap, day_volume, day_open, day_vwap, avg_size, otc, received_ns)"
        " VALUES ('A', 'AAPL', now64(3) - 30, now64(3) - 29,"
        " 10, 12, 9, 11, 500, 10.5, 5000, 10, 10.2, 50, false, 1)"
    )
    for sql in _queries():
        result = clickhouse.query(_expand(sql, ch_database))
        assert result.result_rows, f"no rows from a dashboard query with one bar stored:\n{sql}"
