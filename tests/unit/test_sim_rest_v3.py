"""The simulator's v3 REST pieces: time bounds, tickers on a date, REST faults."""

from __future__ import annotations

import asyncio

import pytest

from tickpipe_simulator.faults import FaultError
from tickpipe_simulator.reference import DAY_MS, ticker_versions, tickers_on
from tickpipe_simulator.rest_faults import RestFaults, parse_rest_fault
from tickpipe_simulator.rest_v3 import time_bounds
from tickpipe_simulator.symbols import DEFAULT_STOCKS

D0 = 1_709_769_600_000  # 2024-03-07T00:00:00Z
NS = 1_000_000


def test_time_bounds_take_days_and_nanoseconds_inclusive() -> None:
    assert time_bounds({"timestamp": "2024-03-07"}) == (D0 * NS, (D0 + DAY_MS) * NS - 1)
    assert time_bounds({"timestamp.gte": "5", "timestamp.lt": "10"}) == (5, 9)
    assert time_bounds({"timestamp.gt": "5", "timestamp.lte": "10"}) == (6, 10)


def test_tickers_on_a_date_are_their_newest_version_by_then() -> None:
    versions = ticker_versions(DEFAULT_STOCKS[:3], D0 + 3_600_000)
    now = {row["ticker"]: row for row in tickers_on(versions, D0)}
    then = {row["ticker"]: row for row in tickers_on(versions, D0 - 101 * DAY_MS)}
    assert now["TSLA"]["name"] == "TSLA Holdings Inc."
    assert then["TSLA"]["name"] == "TSLA Inc."
    assert now["ZDLA"]["active"] is False
    assert now["ZDLA"]["delisted_utc"] == "2024-01-27T00:00:00Z"
    assert then["ZDLA"]["active"] is True
    assert tickers_on(versions, D0 - 4000 * DAY_MS) == []  # before any listing


def test_rest_faults_count_down_and_match_by_path() -> None:
    faults = RestFaults()
    faults.arm(parse_rest_fault('{"status": 429, "count": 2, "retry_after": 3, "path_prefix": "/v3/trades"}'))
    faults.arm(parse_rest_fault('{"corrupt": true}'))

    async def statuses(path: str, n: int) -> list[int | None]:
        answers = [await faults.answer(path) for _ in range(n)]
        return [a.status if a is not None else None for a in answers]

    assert asyncio.run(statuses("/v3/quotes/X", 1)) == [None]
    answer = asyncio.run(faults.answer("/v3/trades/X"))
    assert answer is not None
    assert answer.headers["Retry-After"] == "3"
    assert asyncio.run(statuses("/v3/trades/X", 2)) == [429, None]
    assert faults.served == {"429": 2}
    assert faults.corrupt("/v3/trades/X") is True
    assert faults.corrupt("/v3/trades/X") is False
    with pytest.raises(FaultError):
        parse_rest_fault('{"status": 418}')
