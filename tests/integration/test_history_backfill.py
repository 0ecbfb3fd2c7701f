"""`tickpipe backfill` from the simulator's REST API into chDB: exact, idempotent, point-in-time.

Ground truth is what the simulator's websocket sent (tickpipe_simulator.truth); every check
compares ClickHouse's rows with it, field by field.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.history_support import (
    DAY,
    DAY_MS,
    EVENTS,
    SYMBOLS,
    backfill,
    finished,
    session_args,
    stored,
    truth,
    volumes_by_symbol,
)
from tickpipe_simulator.testing import SimulatorProcess

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SimulatorProcess, dict[str, Any]]]:
    with SimulatorProcess(tmp_path_factory.mktemp("sim"), *session_args()) as sim:
        yield sim, finished(sim)


def test_backfill_twice_is_once_and_equals_the_ground_truth(
    session: tuple[SimulatorProcess, dict[str, Any]], clickhouse: Any, ch_database: str
) -> None:
    sim, stats = session
    datasets = [*EVENTS, "grouped_daily", "conditions"]
    first = backfill(clickhouse, ch_database, sim, datasets)
    expected = truth(stats, SYMBOLS)
    got = stored(clickhouse, ch_database)

    assert first.exit_code() == 0, first.as_dict()
    assert min(expected.counts().values()) > 0
    assert got.counts() == expected.counts()
    assert got == expected  # every field of every trade, quote, second and minute bar
    assert first.rows_inserted == sum(expected.counts().values()) + 5 + 14  # + daily bars, conditions

    second = backfill(clickhouse, ch_database, sim, datasets)
    assert second.chunks_skipped == second.chunks_planned == first.chunks_planned
    assert second.requests == 0
    again = backfill(clickhouse, ch_database, sim, datasets, refetch=True)  # ignore the watermarks
    assert again.rows_fetched == first.rows_fetched
    assert again.rows_inserted == 5 + 14  # reference rows are versions (ReplacingMergeTree); no events
    assert stored(clickhouse, ch_database) == expected

    def one(sql: str) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in clickhouse.query(sql.format(db=ch_database)).result_rows]

    # Bars come from the backfilled second aggregates, through the live tables' views.
    bars = dict(one("SELECT symbol, sum(volume) FROM `{db}`.ohlcv_1m GROUP BY symbol"))
    assert bars == volumes_by_symbol(expected.seconds)
    trades_per_bar = one("SELECT sum(trades) FROM `{db}`.ohlcv_1m")[0][0]
    assert trades_per_bar == len(expected.trades)
    daily_rows = one("SELECT symbol, volume FROM `{db}`.daily_bars FINAL WHERE day = '2024-03-07'")
    daily = dict(daily_rows)
    assert len(daily_rows) == len(daily) == 5
    all_symbols = [s["ticker"] for s in stats["session"]["symbols"]]
    assert daily == volumes_by_symbol(truth(stats, all_symbols).seconds)
    conditions = one(
        "SELECT id, name, updates_open_close, updates_high_low, updates_volume "
        "FROM `{db}`.trade_conditions FINAL WHERE origin = 'api' ORDER BY id"
    )
    assert len(conditions) == 14
    assert (2, "Average Price Trade", False, False, True) in conditions
    assert (14, "Intermarket Sweep", True, True, True) in conditions
    marks = one(
        "SELECT dataset, count() FROM `{db}`.backfill_watermarks WHERE loaded_until > '2024-03-07' "
        "GROUP BY dataset ORDER BY dataset"
    )
    assert dict(marks) == {**dict.fromkeys(EVENTS, len(SYMBOLS)), "grouped_daily": 1}


def test_tickers_keep_every_version_for_point_in_time_lookups(
    session: tuple[SimulatorProcess, dict[str, Any]], clickhouse: Any, ch_database: str
) -> None:
    sim, _ = session
    start = DAY_MS - 120 * 86_400_000
    report = backfill(clickhouse, ch_database, sim, ["tickers"], from_ms=start)
    assert report.exit_code() == 0, report.as_dict()
    assert report.chunks == {"done": 121}

    def as_of(day: dt.date, ticker: str) -> tuple[Any, ...]:
        sql = (
            f"SELECT name, active, delisted_utc FROM `{ch_database}`.tickers_as_of(as_of = {{t:String}}) "
            "WHERE ticker = {ticker:String}"
        )
        rows = clickhouse.query(sql, parameters={"t": f"{day} 23:59:59", "ticker": ticker}).result_rows
        assert len(rows) == 1, (day, ticker, rows)
        return tuple(rows[0])

    before, after = DAY - dt.timedelta(days=101), DAY - dt.timedelta(days=99)
    assert as_of(before, "TSLA")[0] == "TSLA Inc."
    assert as_of(after, "TSLA")[0] == "TSLA Holdings Inc."
    assert as_of(after, "NVDA")[0] == "NVDA Inc."
    delisted = DAY - dt.timedelta(days=40)
    assert as_of(delisted - dt.timedelta(days=1), "ZDLA")[1:] == (True, None)
    name, active, gone = as_of(delisted, "ZDLA")
    assert (name, active) == ("ZDLA Corp.", False)
    assert gone.date() == delisted
    versions = dict(
        clickhouse.query(
            f"SELECT ticker, count() FROM `{ch_database}`.tickers FINAL GROUP BY ticker"
        ).result_rows
    )
    assert versions == {
        "NVDA": 1,
        "TSLA": 2,
        "AAPL": 1,
        "AMZN": 1,
        "MSFT": 1,
        "ZDLA": 2,
        "ZDLB": 2,
        "ZDLC": 2,
    }


def test_a_429_storm_is_waited_out_and_the_load_is_exact(
    tmp_path: Path, clickhouse: Any, ch_database: str
) -> None:
    storm = '{"status": 429, "count": 8, "retry_after": 1}'
    with SimulatorProcess(tmp_path, *session_args(seconds=60), "--rest-fault", storm) as sim:
        stats = finished(sim)
        report = backfill(clickhouse, ch_database, sim, ["second_aggs", "trades"])
        faulted = sim.stats()["rest"]["faulted"]
    assert faulted == {"429": 8}
    assert report.retries == {"429": 8}
    assert report.exit_code() == 0, report.as_dict()
    expected = truth(stats, SYMBOLS)
    got = stored(clickhouse, ch_database)
    assert (got.trades, got.seconds) == (expected.trades, expected.seconds)


def test_a_403_dataset_and_a_corrupt_page_are_reported_and_the_rest_goes_on(
    tmp_path: Path, clickhouse: Any, ch_database: str
) -> None:
    no_quotes = '{"status": 403, "path_prefix": "/v3/quotes", "count": -1}'
    corrupt = '{"corrupt": true, "path_prefix": "/v3/trades/TSLA"}'
    args = [*session_args(seconds=60), "--rest-fault", no_quotes, "--rest-fault", corrupt]
    with SimulatorProcess(tmp_path, *args) as sim:
        stats = finished(sim)
        report = backfill(clickhouse, ch_database, sim, ["trades", "quotes", "second_aggs"])
        expected = truth(stats, SYMBOLS)
        got = stored(clickhouse, ch_database)
        assert report.exit_code() == 4
        assert "quotes" in report.not_entitled
        assert report.dlq_pages == 1
        assert report.chunks["failed"] == 1
        dlq = clickhouse.query(
            f"SELECT dataset, symbol, reason, detail FROM `{ch_database}`.backfill_dlq"
        ).result_rows
        assert [(d, s, r) for d, s, r, _ in dlq] == [("trades", "TSLA", "invalid_row")]
        assert "price" in dlq[0][3]
        assert got.quotes == []
        assert got.seconds == expected.seconds
        assert [t for t in got.trades if t[0] != "TSLA"] == [t for t in expected.trades if t[0] != "TSLA"]

        # The failed chunk is not done: the next run fetches it again and completes it, exactly.
        retry = backfill(clickhouse, ch_database, sim, ["trades"])
        assert retry.chunks == {"done": 1}
        assert stored(clickhouse, ch_database).trades == expected.trades
