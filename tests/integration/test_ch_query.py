"""`tickpipe query` and the saved queries on the real engine (chDB): formats, binding, read-only."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq
import pytest

from bench.sink_events import BASE_MS
from tickpipe_cli.cli import main
from tickpipe_clickhouse.connect import INSERT_SETTINGS
from tickpipe_clickhouse.query.client import EndpointClient, GuardedClient, QueryFailed, run_saved
from tickpipe_clickhouse.query.endpoint import QueryEndpoint
from tickpipe_clickhouse.query.limits import QueryLimits, open_reader
from tickpipe_clickhouse.schema.migrations import migrate
from tickpipe_clickhouse.sink.routing import COLUMNS, route

pytestmark = pytest.mark.integration

MINUTE = 60_000


def agg(symbol: str, start_ms: int, o: float, h: float, low: float, c: float, v: float) -> dict[str, Any]:
    return {
        "ev": "A",
        "symbol": symbol,
        "start_ms": start_ms,
        "end_ms": start_ms + 1000,
        "open": o,
        "high": h,
        "low": low,
        "close": c,
        "volume": v,
        "vwap": (o + c) / 2,
        "avg_size": 2,
        "received_ns": 1,
    }


EVENTS = [
    # AAPL: seconds 0, 1, 2, then a hole of 3 seconds (3, 4, 5), then 6; and one bar in the next minute.
    agg("AAPL", BASE_MS + 0, 100, 101, 99, 100.5, 10),
    agg("AAPL", BASE_MS + 1000, 100.5, 103, 100, 102, 20),
    agg("AAPL", BASE_MS + 2000, 102, 102.5, 98, 99, 30),
    agg("AAPL", BASE_MS + 6000, 99, 99.5, 97, 98, 40),
    agg("AAPL", BASE_MS + MINUTE, 98, 110, 98, 110, 100),
    agg("MSFT", BASE_MS + 0, 400, 401, 399, 400, 5),
    agg("MSFT", BASE_MS + MINUTE, 400, 400, 380, 380, 5),
    {
        "ev": "Q",
        "symbol": "AAPL",
        "ts_ms": BASE_MS + 500,
        "bid_price": 99.98,
        "ask_price": 100.02,
        "bid_size": 1,
        "ask_size": 1,
        "received_ns": 1,
    },
    {
        "ev": "Q",
        "symbol": "AAPL",
        "ts_ms": BASE_MS + 700,
        "bid_price": 99.99,
        "ask_price": 100.01,
        "bid_size": 1,
        "ask_size": 1,
        "received_ns": 1,
    },
    {
        "ev": "T",
        "symbol": "AAPL",
        "ts_ms": BASE_MS + 2 * MINUTE,
        "price": 111.25,
        "size": 1,
        "sequence": 9,
        "received_ns": 1,
    },
]


@pytest.fixture
def db(clickhouse: Any, ch_database: str) -> str:
    migrate(clickhouse, ch_database)
    for table, columns in COLUMNS.items():  # what the sink does: the JSON as published, per table
        clickhouse.raw_insert(
            f"{ch_database}.{table}",
            columns,
            insert_block=b"\n".join(orjson.dumps(e) for e in EVENTS if route(orjson.dumps(e)) == table),
            fmt="JSONEachRow",
            settings=INSERT_SETTINGS,
        )
    return ch_database


@pytest.fixture
def reader(clickhouse_dsn: str, db: str) -> Any:
    client = GuardedClient(open_reader(clickhouse_dsn, db, QueryLimits()))
    yield client
    client.close()


def cli(clickhouse_dsn: str, db: str, *args: str, capsysbinary: Any) -> tuple[int, bytes, str]:
    code = main(["query", "--clickhouse-dsn", clickhouse_dsn, "--clickhouse-database", db, *args])
    out, err = capsysbinary.readouterr()
    return code, out, err.decode()


def test_saved_bars_at_two_intervals(reader: Any) -> None:
    one = run_saved(reader, "bars", {"symbol": "AAPL", "interval": "1m"})
    assert one.column_names[:6] == ("bucket", "open", "high", "low", "close", "volume")
    assert [tuple(r[1:6]) for r in one.result_rows] == [(100, 103, 97, 98, 100), (98, 110, 98, 110, 100)]
    daily = run_saved(reader, "bars", {"symbol": "AAPL", "interval": "1d"})
    assert [tuple(r[1:6]) for r in daily.result_rows] == [(100, 110, 97, 110, 200)]


def test_saved_vwap_movers_gaps_spread_latest(reader: Any) -> None:
    vwap = {r[0]: r for r in run_saved(reader, "vwap").result_rows}
    expected = (10 * 100.25 + 20 * 101.25 + 30 * 100.5 + 40 * 98.5 + 100 * 104) / 200
    assert vwap["AAPL"][1] == pytest.approx(expected, abs=1e-4)
    assert vwap["AAPL"][2] == 200

    movers = run_saved(reader, "top_movers", {"limit": "1"}).result_rows
    assert [(r[0], r[3]) for r in movers] == [("AAPL", 10.0)]

    gaps = run_saved(reader, "gaps", {"symbol": "AAPL"}).result_rows
    assert [r[2] for r in gaps] == [3, 53]  # seconds 3-5, then 7-59 before the next minute's bar

    spread = run_saved(reader, "spread", {"symbol": "AAPL"}).result_rows
    assert spread[0][1] == 2
    assert spread[0][2] == pytest.approx(0.03)

    latest = {r[0]: r for r in run_saved(reader, "latest").result_rows}
    assert latest["AAPL"][2] == 111.25  # the trade is newer than the last bar
    assert latest["AAPL"][3] == 99.99
    assert latest["AAPL"][4] == 100.01
    assert latest["MSFT"][2] == 380


def test_saved_query_parameters_are_checked(reader: Any) -> None:
    with pytest.raises(ValueError, match="needs --param symbol"):
        run_saved(reader, "bars", {})
    with pytest.raises(ValueError, match="interval must be 1m, 5m, 1h, 1d"):
        run_saved(reader, "bars", {"symbol": "AAPL", "interval": "2m"})
    with pytest.raises(ValueError, match="no parameter sym"):
        run_saved(reader, "latest", {"sym": "AAPL"})


def test_output_formats(clickhouse_dsn: str, db: str, tmp_path: Path, capsysbinary: Any) -> None:
    sql = "SELECT symbol, count() AS n FROM aggregates GROUP BY symbol ORDER BY symbol"
    code, out, _ = cli(clickhouse_dsn, db, sql, "--format", "csv", capsysbinary=capsysbinary)
    assert code == 0
    assert out.decode().splitlines() == ['"symbol","n"', '"AAPL",5', '"MSFT",2']

    code, out, _ = cli(clickhouse_dsn, db, sql, "--format", "json", capsysbinary=capsysbinary)
    assert [json.loads(line) for line in out.splitlines()] == [
        {"symbol": "AAPL", "n": 5},
        {"symbol": "MSFT", "n": 2},
    ]

    code, out, _ = cli(clickhouse_dsn, db, sql, "--format", "table", capsysbinary=capsysbinary)
    assert out.decode().splitlines() == ["symbol  n", "------  -", "AAPL    5", "MSFT    2", "(2 rows)"]

    target = tmp_path / "out.parquet"
    code, _, _ = cli(
        clickhouse_dsn, db, sql, "--format", "parquet", "-o", str(target), capsysbinary=capsysbinary
    )
    assert code == 0
    assert pq.read_table(target).to_pydict() == {"symbol": ["AAPL", "MSFT"], "n": [5, 2]}

    sql_file = tmp_path / "q.sql"
    sql_file.write_text("SELECT count() AS n FROM trades")
    code, out, _ = cli(clickhouse_dsn, db, "-f", str(sql_file), "--format", "csv", capsysbinary=capsysbinary)
    assert out.decode().splitlines() == ['"n"', "1"]

    code, out, _ = cli(
        clickhouse_dsn,
        db,
        "--saved",
        "bars",
        "--param",
        "symbol=MSFT",
        "--format",
        "csv",
        capsysbinary=capsysbinary,
    )
    assert code == 0
    assert len(out.decode().splitlines()) == 3


def test_parameters_are_bound_never_pasted(clickhouse_dsn: str, db: str, capsysbinary: Any) -> None:
    hostile = "AAPL' OR 1=1 --"
    code, out, _ = cli(
        clickhouse_dsn,
        db,
        "SELECT count() AS n, {s:String} AS echoed FROM aggregates WHERE symbol = {s:String}",
        "--param",
        f"s={hostile}",
        "--format",
        "json",
        capsysbinary=capsysbinary,
    )
    assert code == 0
    assert json.loads(out) == {"n": 0, "echoed": hostile}

    code, _, err = cli(
        clickhouse_dsn, db, "SELECT 1", "--param", "symbol=AAPL", "--format", "csv", capsysbinary=capsysbinary
    )
    assert code == 2
    assert "symbol is not used in the query" in err
    code, _, err = cli(clickhouse_dsn, db, "SELECT 1", "--param", "novalue", capsysbinary=capsysbinary)
    assert code == 2
    assert "NAME=VALUE" in err


def test_read_only_by_default(clickhouse: Any, clickhouse_dsn: str, db: str, capsysbinary: Any) -> None:
    for statement in (f"INSERT INTO {db}.trades (symbol) VALUES ('X')", f"DROP TABLE {db}.trades"):
        code, _, err = cli(clickhouse_dsn, db, statement, "--format", "csv", capsysbinary=capsysbinary)
        assert code == 1, err
        assert "refused" in err.lower(), err
    assert clickhouse.query(f"SELECT count() FROM {db}.trades").result_rows == [(1,)]


def test_query_endpoint_serves_live_reads_and_refuses_writes(
    clickhouse_dsn: str, db: str, reader: Any, tmp_path: Path
) -> None:
    endpoint = QueryEndpoint([reader.client], tmp_path, db).start()
    try:
        info = json.loads((tmp_path / "tickpipe-query.json").read_text())
        assert (tmp_path / "tickpipe-query.json").stat().st_mode & 0o077 == 0, "token file readable by others"
        client = EndpointClient(info["url"], info["token"])
        bars = run_saved(client, "bars", {"symbol": "MSFT"})
        assert [r[4] for r in bars.result_rows] == [400, 380]
        assert client.raw_query("SELECT 1 AS one", fmt="CSVWithNames") == b'"one"\n1\n'
        with pytest.raises(QueryFailed, match=r"refused: DROP"):
            client.raw_query(f"DROP TABLE {db}.trades")
        with pytest.raises(QueryFailed):
            EndpointClient(info["url"], "wrong-token").raw_query("SELECT 1")
    finally:
        endpoint.stop()
    assert not (tmp_path / "tickpipe-query.json").exists()
