"""Minute-only history rolls up into correct 5m, 1h and 1d bars (migration 040's bars by source).

A backfill of minute aggregates (AM) for symbols that have no second aggregates that day goes into
the live `aggregates` table, so every level of `bars` fills from it, tagged `AM`. The ohlcv_*
views must then pick AM for those symbols (over trades, which one of them also has) and A for the
symbol that has second aggregates. Every bar is checked against bars recomputed in pandas from the
simulator's ground truth (its minute aggregates), not from what ClickHouse holds.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest

from tests.integration.history_support import DAY_MS, backfill, finished
from tickpipe_simulator.testing import SimulatorProcess
from tickpipe_simulator.truth import session_events, spec_from_stats

pytestmark = pytest.mark.integration

MINUTE_ONLY = ["NVDA", "TSLA"]  # minute aggregates only (TSLA also has trades: AM must win over T)
WITH_SECONDS = "AAPL"  # second aggregates as well: A wins over AM
# 2 h 10 min from 14:50 UTC: crosses 15:00 and 16:00 (hours) and ends off a 5-minute boundary.
START = "2024-03-07T14:50:00Z"
SESSION_SECONDS = 7_800
INTERVALS = {"5m": "5min", "1h": "1h", "1d": "1D"}


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SimulatorProcess, dict[str, Any]]]:
    args = ["--seed", "11", "--rate", "30", "--symbols", "5", "--start", START]
    args += ["--session-seconds", str(SESSION_SECONDS), "--speed", "1000"]
    with SimulatorProcess(tmp_path_factory.mktemp("sim"), *args) as sim:
        yield sim, finished(sim)


def _truth_minutes(stats: dict[str, Any], symbols: list[str]) -> pd.DataFrame:
    rows = [
        {"symbol": e["sym"], "start": e["s"], "o": e["o"], "h": e["h"], "l": e["l"], "c": e["c"]}
        | {"v": e["v"], "vw": e["vw"]}
        for e in session_events(spec_from_stats(stats), topics=[f"AM.{s}" for s in symbols])
    ]
    frame = pd.DataFrame(rows)
    frame["bucket"] = pd.to_datetime(frame["start"], unit="ms")
    return frame.sort_values(["symbol", "start"])


def _rollup(minutes: pd.DataFrame, rule: str) -> pd.DataFrame:
    """OHLCV bars of `rule` from minute bars: first open, max high, min low, last close, summed
    volume, volume-weighted vwap."""
    frame = minutes.assign(pv=minutes["vw"] * minutes["v"], bucket=minutes["bucket"].dt.floor(rule))
    bars = frame.groupby(["symbol", "bucket"], sort=True).agg(
        open=("o", "first"), high=("h", "max"), low=("l", "min"), close=("c", "last"),
        volume=("v", "sum"), pv=("pv", "sum"),
    )  # fmt: skip
    bars["vwap"] = bars["pv"] / bars["volume"]
    return bars.drop(columns="pv").reset_index()


def _stored(client: Any, db: str, interval: str, symbols: list[str]) -> pd.DataFrame:
    result = client.query(
        f"SELECT symbol, bucket, source, open, high, low, close, volume, vwap FROM `{db}`.ohlcv_{interval} "
        "WHERE symbol IN {symbols:Array(String)} ORDER BY symbol, bucket",
        parameters={"symbols": symbols},
    )
    frame = pd.DataFrame(result.result_rows, columns=list(result.column_names))
    frame["bucket"] = pd.to_datetime(frame["bucket"]).dt.tz_localize(None)
    return frame


def test_minute_only_history_rolls_up_into_5m_1h_1d_bars_equal_to_pandas(
    session: tuple[SimulatorProcess, dict[str, Any]], clickhouse: Any, ch_database: str
) -> None:
    sim, stats = session
    day = (DAY_MS, DAY_MS + 86_400_000)
    every = [*MINUTE_ONLY, WITH_SECONDS]
    reports = [
        backfill(clickhouse, ch_database, sim, ["minute_aggs"], every, *day),
        backfill(clickhouse, ch_database, sim, ["trades"], ["TSLA"], *day),
        backfill(clickhouse, ch_database, sim, ["second_aggs"], [WITH_SECONDS], *day),
    ]
    assert all(r.exit_code() == 0 for r in reports), [r.as_dict() for r in reports]
    sources = dict(
        clickhouse.query(
            f"SELECT symbol, groupUniqArray(source) FROM `{ch_database}`.bars "
            "WHERE seconds = 60 GROUP BY symbol"
        ).result_rows
    )
    assert sorted(sources["TSLA"]) == ["AM", "T"], "TSLA's trades make bars too: the views must choose"
    assert sorted(sources["NVDA"]) == ["AM"]

    minutes = _truth_minutes(stats, MINUTE_ONLY)
    assert minutes["bucket"].dt.hour.nunique() == 3, "the session spans three clock hours"
    assert len(minutes) >= 2 * 125
    for interval, rule in INTERVALS.items():
        got = _stored(clickhouse, ch_database, interval, MINUTE_ONLY)
        want = _rollup(minutes, rule)
        assert set(got["source"]) == {"AM"}, f"ohlcv_{interval} counts the minute-only symbols from AM"
        assert len(got) == len(want), f"ohlcv_{interval}: {len(got)} bars, pandas {len(want)}"
        assert got["symbol"].tolist() == want["symbol"].tolist()
        assert got["bucket"].tolist() == want["bucket"].tolist(), interval
        for column in ("open", "high", "low", "close", "volume", "vwap"):
            assert got[column].tolist() == pytest.approx(want[column].tolist(), rel=1e-9), (interval, column)

    # The control: a symbol with second aggregates is counted from them, at every level.
    for interval in INTERVALS:
        control = _stored(clickhouse, ch_database, interval, [WITH_SECONDS])
        assert len(control) > 0, interval
        assert set(control["source"]) == {"A"}, interval
