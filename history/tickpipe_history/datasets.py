"""The datasets `tickpipe backfill` loads, how each is cut into chunks and asked for.

A chunk is one dataset, one symbol (or `*` for market-wide data) and a window [start, end) that
never crosses a UTC day: the unit of progress. Its pages are cut by the server the same way every
time it is asked, and it is marked done only when it is final (its window ended at least
`settle` ago, so REST has caught up).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from polygon import RESTClient

from tickpipe_history.pages import AggBar, GroupedBar, RestCondition, RestQuote, RestTicker, RestTrade

DAY_MS = 86_400_000
NS_PER_MS = 1_000_000
PAGE_LIMIT = 50_000  # the most Polygon serves per page for aggregates, trades and quotes


@dataclass(frozen=True)
class Dataset:
    name: str
    row: type[Any]  # the msgspec Struct of one REST result
    per_symbol: bool
    table: str
    ev: str = ""  # the event kind it becomes in the live tables
    span_ms: int = 0  # aggregates: the bar length


DATASETS: dict[str, Dataset] = {
    d.name: d
    for d in (
        Dataset("minute_aggs", AggBar, True, "aggregates", "AM", 60_000),
        Dataset("second_aggs", AggBar, True, "aggregates", "A", 1000),
        Dataset("trades", RestTrade, True, "trades", "T"),
        Dataset("quotes", RestQuote, True, "quotes", "Q"),
        Dataset("grouped_daily", GroupedBar, False, "daily_bars"),
        Dataset("tickers", RestTicker, False, "tickers"),
        Dataset("conditions", RestCondition, False, "trade_conditions"),
    )
}
DEFAULT_DATASETS = ("minute_aggs", "grouped_daily", "tickers", "conditions")


@dataclass(frozen=True)
class Chunk:
    dataset: Dataset
    symbol: str  # "*" for market-wide datasets
    start_ms: int
    end_ms: int  # exclusive

    @property
    def day(self) -> dt.date:
        return dt.datetime.fromtimestamp(self.start_ms / 1000, tz=dt.UTC).date()

    def describe(self) -> str:
        return f"{self.dataset.name} {self.symbol} {self.day.isoformat()}"


def chunks(dataset: Dataset, symbols: list[str], from_ms: int, to_ms: int) -> Iterator[Chunk]:
    """The chunks covering [from_ms, to_ms): per symbol and UTC day (conditions: one chunk)."""
    if dataset.name == "conditions":
        yield Chunk(dataset, "*", 0, DAY_MS)
        return
    for symbol in symbols if dataset.per_symbol else ["*"]:
        day = from_ms - from_ms % DAY_MS
        while day < to_ms:
            yield Chunk(dataset, symbol, max(day, from_ms), min(day + DAY_MS, to_ms))
            day += DAY_MS


Request = Callable[[RESTClient], Any]


def first_requests(chunk: Chunk) -> list[Request]:
    """The listings that make up a chunk: each a RESTClient call in raw mode (one page)."""
    d, symbol, lo, hi = chunk.dataset, chunk.symbol, chunk.start_ms, chunk.end_ms
    if d.name in ("minute_aggs", "second_aggs"):
        span = "minute" if d.name == "minute_aggs" else "second"
        return [
            lambda r: r.list_aggs(
                symbol, 1, span, lo, hi - 1, adjusted=True, sort="asc", limit=PAGE_LIMIT, raw=True
            )
        ]
    if d.name in ("trades", "quotes"):
        method = "list_trades" if d.name == "trades" else "list_quotes"
        return [
            lambda r: getattr(r, method)(
                symbol,
                timestamp_gte=lo * NS_PER_MS,
                timestamp_lt=hi * NS_PER_MS,
                order="asc",
                sort="timestamp",
                limit=PAGE_LIMIT,
                raw=True,
            )
        ]
    day = chunk.day.isoformat()
    if d.name == "grouped_daily":
        return [lambda r: r.get_grouped_daily_aggs(day, adjusted=True, raw=True)]
    if d.name == "tickers":

        def listing(active: bool) -> Request:
            return lambda r: r.list_tickers(market="stocks", date=day, active=active, limit=1000, raw=True)

        return [listing(True), listing(False)]
    return [lambda r: r.list_conditions(asset_class="stocks", data_type="trade", limit=1000, raw=True)]
