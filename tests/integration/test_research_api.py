"""The notebook API on the real engine (chDB): values against the events, frames, time zones, binding,
and the read-only path both directly and through a running sink's query endpoint."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from tests.research_data import (
    START,
    expected_minute_bars,
    expected_trades_with_quotes,
    load_session,
    session_events,
)
from tickpipe_clickhouse.query.client import EndpointClient, GuardedClient, QueryFailed, run_saved
from tickpipe_clickhouse.query.endpoint import QueryEndpoint
from tickpipe_clickhouse.query.limits import QueryLimits, open_reader
from tickpipe_research import NaiveTimeError, Research

pytestmark = pytest.mark.integration

EVENTS = session_events()
END = START + dt.timedelta(minutes=10)


@pytest.fixture(scope="module")
def db(clickhouse: Any) -> Iterator[str]:
    name = f"tp_research_api_{uuid.uuid4().hex[:8]}"
    clickhouse.command(f"DROP DATABASE IF EXISTS {name}")
    load_session(clickhouse, name, EVENTS)
    yield name
    clickhouse.command(f"DROP DATABASE IF EXISTS {name}")


@pytest.fixture(scope="module")
def research(clickhouse_dsn: str, db: str) -> Iterator[Research]:
    with Research.connect(clickhouse_dsn, db) as r:
        yield r


def test_connect_reads_like_the_cli_and_stays_read_only(research: Research, db: str) -> None:
    with pytest.raises(Exception, match=r"(?i)refused"):
        research.query(f"DROP TABLE {db}.trades")
    assert research.query("SELECT count() AS n FROM trades")["n"][0] == sum(e["ev"] == "T" for e in EVENTS)


def test_minute_bars_match_the_events(research: Research) -> None:
    bars = research.bars(["AAPL", "MSFT"], START, END, "1m")
    assert isinstance(bars, pd.DataFrame)
    assert str(bars["bucket"].dtype) == "datetime64[ms, UTC]"
    for symbol in ("AAPL", "MSFT"):
        got = bars[bars["symbol"] == symbol]
        expected = expected_minute_bars(EVENTS, symbol)
        assert len(got) == len(expected) == 10
        for row, want in zip(got.itertuples(index=False), expected, strict=True):
            assert row.bucket.to_pydatetime() == want[0]
            assert (row.open, row.high, row.low, row.close, row.volume) == want[1:6]
            assert row.vwap == pytest.approx(want[6], rel=1e-12)
            assert row.trades == want[7]


def test_coarser_bars_and_the_window(research: Research) -> None:
    daily = research.bars("AAPL", START.date(), START.date() + dt.timedelta(days=1), "1d", as_="arrow")
    minutes = expected_minute_bars(EVENTS, "AAPL")
    assert daily.num_rows == 1
    row = daily.to_pylist()[0]
    assert row["bucket"] == dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    assert row["open"] == minutes[0][1]
    assert row["close"] == minutes[-1][4]
    assert row["high"] == max(m[2] for m in minutes)
    assert row["volume"] == sum(m[5] for m in minutes)
    # [start, end): three minutes starting 14:32, given in New York time
    ny = dt.timezone(dt.timedelta(hours=-5))
    three = research.bars("AAPL", dt.datetime(2026, 12, 1, 9, 32, tzinfo=ny), "2026-12-01T14:35:00+00:00")
    assert [t.to_pydatetime() for t in three["bucket"]] == [m[0] for m in minutes[2:5]]
    five = research.bars("AAPL", START, END, "5m", as_="polars")
    assert isinstance(five, pl.DataFrame)
    assert five["volume"].to_list() == [sum(m[5] for m in minutes[:5]), sum(m[5] for m in minutes[5:])]


def test_trades_and_quotes_round_trip(research: Research) -> None:
    trades = research.trades("MSFT", START - dt.timedelta(seconds=5), END, as_="arrow")
    mine = sorted(
        (e for e in EVENTS if e["ev"] == "T" and e["symbol"] == "MSFT"),
        key=lambda e: (e["ts_ms"], e["sequence"]),
    )
    assert trades.column("trade_id").to_pylist() == [e["trade_id"] for e in mine]
    assert trades.column("price").to_pylist() == [e["price"] for e in mine]
    assert trades.column("conditions").to_pylist() == [e["conditions"] for e in mine]
    assert trades.schema.field("timestamp").type == pa.timestamp("ms", tz="UTC")
    assert trades.column("received").to_pylist()[0] - trades.column("timestamp").to_pylist()[
        0
    ] == dt.timedelta(milliseconds=2)
    assert research.trades("MSFT", START, END, limit=3, as_="arrow").num_rows == 3

    quotes = research.quotes(["AAPL"], START, START + dt.timedelta(seconds=30), as_="polars")
    want = [
        e
        for e in EVENTS
        if e["ev"] == "Q"
        and e["symbol"] == "AAPL"
        and e["ts_ms"] < quotes["timestamp"][0].timestamp() * 1000 + 30_000
    ]
    assert quotes["bid_price"].to_list() == [e["bid_price"] for e in want]
    assert str(quotes.schema["timestamp"]) == "Datetime(time_unit='ms', time_zone='UTC')"


def test_latest(research: Research) -> None:
    latest = research.latest(as_="arrow").to_pylist()
    assert [r["symbol"] for r in latest] == ["AAPL", "MSFT"]
    for row in latest:
        last_quote = max(
            (e for e in EVENTS if e["ev"] == "Q" and e["symbol"] == row["symbol"]), key=lambda e: e["ts_ms"]
        )
        assert (row["bid"], row["ask"]) == (last_quote["bid_price"], last_quote["ask_price"])
        assert row["updated"].tzinfo is not None
    assert list(research.latest("MSFT")["symbol"]) == ["MSFT"]


@pytest.mark.parametrize("staleness", [dt.timedelta(seconds=1), 0.2])
def test_trades_with_quotes_match_an_independent_as_of(research: Research, staleness: Any) -> None:
    staleness_ms = round(
        (staleness.total_seconds() if isinstance(staleness, dt.timedelta) else staleness) * 1000
    )
    got = research.trades_with_quotes(
        "AAPL", START - dt.timedelta(seconds=5), END, staleness, as_="arrow"
    ).to_pylist()
    want = expected_trades_with_quotes(EVENTS, "AAPL", staleness_ms)
    assert len(got) == len(want)
    missing = 0
    for row, exp in zip(got, want, strict=True):
        assert (row["timestamp"], row["price"], row["location"]) == (
            exp["timestamp"],
            exp["price"],
            exp["location"],
        )
        if exp["quote"] is None:
            missing += 1
            assert row["has_quote"] is False
            assert row["bid"] is None
            assert row["position"] is None
        else:
            assert row["has_quote"] is True
            assert (row["bid"], row["ask"]) == (exp["quote"]["bid_price"], exp["quote"]["ask_price"])
            assert row["spread"] == pytest.approx(exp["spread"])
            assert row["position"] == pytest.approx(exp["position"])
            assert 0 <= row["quote_age_ms"] <= staleness_ms
    assert missing > 0, "the fixture has trades before the first quote"
    locations = {row["location"] for row in got}
    assert {"at_bid", "at_ask", "inside", "below_bid", "above_ask"} <= locations


def test_times_must_carry_a_zone(research: Research) -> None:
    with pytest.raises(NaiveTimeError, match="no timezone"):
        research.bars("AAPL", dt.datetime(2026, 12, 1, 14, 30), END)
    with pytest.raises(ValueError, match="must be after start"):
        research.trades("AAPL", END, START)
    with pytest.raises(ValueError, match="interval must be one of"):
        research.bars("AAPL", START, END, "2m")  # type: ignore[call-overload]


def test_symbols_are_bound_never_pasted(research: Research) -> None:
    hostile = "AAPL') OR 1=1 --"
    assert research.trades([hostile], START, END, as_="arrow").num_rows == 0
    echoed = research.query("SELECT {s:String} AS s", {"s": hostile})
    assert echoed["s"][0] == hostile


def test_through_a_running_sinks_endpoint(clickhouse_dsn: str, db: str, tmp_path: Path) -> None:
    """While a sink holds the chDB folder, the API talks to its endpoint: same answers, read-only."""
    reader = GuardedClient(open_reader(clickhouse_dsn, db, QueryLimits()))
    endpoint = QueryEndpoint([reader.client], tmp_path, db).start()
    try:
        info = json.loads((tmp_path / "tickpipe-query.json").read_text())
        via_sink = Research(EndpointClient(info["url"], info["token"]))
        direct = Research(reader)
        for name, args in (
            ("bars", (["AAPL", "MSFT"], START, END, "1m")),
            ("trades_with_quotes", (["MSFT"], START, END, dt.timedelta(milliseconds=300))),
        ):
            a = getattr(via_sink, name)(*args, as_="arrow")
            b = getattr(direct, name)(*args, as_="arrow")
            assert a.num_rows > 0, name
            assert a.equals(b), name
        with pytest.raises(QueryFailed, match=r"(?i)refused"):
            via_sink.query(f"DROP TABLE {db}.trades")
    finally:
        endpoint.stop()
        reader.close()


def test_module_functions_use_the_environment(
    clickhouse_dsn: str, db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tickpipe_research as tr

    monkeypatch.setenv("CLICKHOUSE_DSN", clickhouse_dsn)
    monkeypatch.setenv("CLICKHOUSE_DATABASE", db)
    tr.close()
    try:
        bars = tr.bars("AAPL", START, END)
        assert len(bars) == 10
        assert math.isclose(bars["close"].iloc[-1], expected_minute_bars(EVENTS, "AAPL")[-1][4])
    finally:
        tr.close()


def test_saved_query_agrees_with_the_api(clickhouse_dsn: str, db: str, research: Research) -> None:
    reader = GuardedClient(open_reader(clickhouse_dsn, db, QueryLimits()))
    try:
        saved = run_saved(
            reader,
            "trades_with_quotes",
            {
                "symbol": "MSFT",
                "from": "2026-12-01 14:29:00",
                "to": "2026-12-01 14:40:00",
                "max_staleness_ms": "300",
            },
        )
    finally:
        reader.close()
    api = research.trades_with_quotes(
        "MSFT", START - dt.timedelta(minutes=1), END, 0.3, as_="arrow"
    ).to_pylist()
    names = saved.column_names
    rows = [dict(zip(names, row, strict=True)) for row in saved.result_rows]
    assert len(rows) == len(api) > 100
    for mine, theirs in zip(rows, api, strict=True):
        assert mine["timestamp"].replace(tzinfo=dt.UTC) == theirs["timestamp"]
        assert (mine["bid"], mine["ask"], mine["location"]) == (
            theirs["bid"],
            theirs["ask"],
            theirs["location"],
        )
        if theirs["position"] is not None:
            assert mine["position"] == pytest.approx(theirs["position"], abs=1e-4)


def test_connect_finds_a_live_sinks_endpoint_in_the_folder(
    clickhouse_dsn: str, db: str, tmp_path: Path
) -> None:
    """Research.connect on a chDB folder a live sink advertises goes to that sink, not the folder."""
    reader = GuardedClient(open_reader(clickhouse_dsn, db, QueryLimits()))
    endpoint = QueryEndpoint([reader.client], tmp_path, db).start()
    discovery = tmp_path / "tickpipe-query.json"
    info = json.loads(discovery.read_text())
    # the sink is another process in production; here it runs in this one, so say it is our parent
    discovery.write_text(json.dumps({**info, "pid": os.getppid()}))
    try:
        with Research.connect(f"chdb://{tmp_path}", db) as via_sink:
            assert isinstance(via_sink.client, EndpointClient)
            bars = via_sink.bars("MSFT", START, END, as_="arrow")
            assert bars.column("close").to_pylist() == [b[4] for b in expected_minute_bars(EVENTS, "MSFT")]
    finally:
        endpoint.stop()
        reader.close()
