"""tickpipe for notebooks: bars, trades, quotes, the latest prices, trades with their quotes.

    import tickpipe_research as tr
    bars = tr.bars("AAPL", "2026-12-01", "2026-12-02", "5m")              # pandas
    tq = tr.trades_with_quotes(["AAPL", "MSFT"], start, end, max_staleness=0.5, as_="polars")

The module-level functions share one read-only connection, opened on first use from
CLICKHOUSE_DSN and CLICKHOUSE_DATABASE as `tickpipe query` does; `Research.connect(dsn, database)`
opens another. Times in are timezone-aware (or dates, meaning UTC midnight); times out are UTC.
`as_` picks the frame: "pandas" (default), "polars" or "arrow". See docs/research.md.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Literal, overload

from tickpipe_research.frames import FrameKind
from tickpipe_research.session import Interval, Research, Symbols
from tickpipe_research.times import DurationLike, NaiveTimeError, TimeLike

if TYPE_CHECKING:
    import pandas
    import polars
    import pyarrow

__all__ = [
    "FrameKind",
    "Interval",
    "NaiveTimeError",
    "Research",
    "Symbols",
    "bars",
    "close",
    "default",
    "latest",
    "quotes",
    "trades",
    "trades_with_quotes",
]

_default: Research | None = None
_lock = threading.Lock()


def default() -> Research:
    """The shared connection of the module-level functions (opened on first use)."""
    global _default
    with _lock:
        if _default is None:
            _default = Research.connect()
        return _default


def close() -> None:
    """Close the shared connection (the next call opens a new one)."""
    global _default
    with _lock:
        if _default is not None:
            _default.close()
            _default = None


@overload
def bars(
    symbols: Symbols,
    start: TimeLike,
    end: TimeLike,
    interval: Interval = ...,
    *,
    as_: Literal["pandas"] = ...,
) -> pandas.DataFrame: ...
@overload
def bars(
    symbols: Symbols, start: TimeLike, end: TimeLike, interval: Interval = ..., *, as_: Literal["polars"]
) -> polars.DataFrame: ...
@overload
def bars(
    symbols: Symbols, start: TimeLike, end: TimeLike, interval: Interval = ..., *, as_: Literal["arrow"]
) -> pyarrow.Table: ...
@overload
def bars(
    symbols: Symbols, start: TimeLike, end: TimeLike, interval: Interval = ..., *, as_: FrameKind
) -> Any: ...
def bars(
    symbols: Symbols,
    start: TimeLike,
    end: TimeLike,
    interval: Interval = "1m",
    *,
    as_: FrameKind = "pandas",
) -> Any:
    """OHLCV bars; see `Research.bars`."""
    return default().bars(symbols, start, end, interval, as_=as_)


@overload
def trades(
    symbols: Symbols, start: TimeLike, end: TimeLike, *, limit: int | None = ..., as_: Literal["pandas"] = ...
) -> pandas.DataFrame: ...
@overload
def trades(
    symbols: Symbols, start: TimeLike, end: TimeLike, *, limit: int | None = ..., as_: Literal["polars"]
) -> polars.DataFrame: ...
@overload
def trades(
    symbols: Symbols, start: TimeLike, end: TimeLike, *, limit: int | None = ..., as_: Literal["arrow"]
) -> pyarrow.Table: ...
@overload
def trades(
    symbols: Symbols, start: TimeLike, end: TimeLike, *, limit: int | None = ..., as_: FrameKind
) -> Any: ...
def trades(
    symbols: Symbols,
    start: TimeLike,
    end: TimeLike,
    *,
    limit: int | None = None,
    as_: FrameKind = "pandas",
) -> Any:
    """Trades; see `Research.trades`."""
    return default().trades(symbols, start, end, limit=limit, as_=as_)


@overload
def quotes(
    symbols: Symbols, start: TimeLike, end: TimeLike, *, limit: int | None = ..., as_: Literal["pandas"] = ...
) -> pandas.DataFrame: ...
@overload
def quotes(
    symbols: Symbols, start: TimeLike, end: TimeLike, *, limit: int | None = ..., as_: Literal["polars"]
) -> polars.DataFrame: ...
@overload
def quotes(
    symbols: Symbols, start: TimeLike, end: TimeLike, *, limit: int | None = ..., as_: Literal["arrow"]
) -> pyarrow.Table: ...
@overload
def quotes(
    symbols: Symbols, start: TimeLike, end: TimeLike, *, limit: int | None = ..., as_: FrameKind
) -> Any: ...
def quotes(
    symbols: Symbols,
    start: TimeLike,
    end: TimeLike,
    *,
    limit: int | None = None,
    as_: FrameKind = "pandas",
) -> Any:
    """Quotes; see `Research.quotes`."""
    return default().quotes(symbols, start, end, limit=limit, as_=as_)


@overload
def latest(symbols: Symbols | None = ..., *, as_: Literal["pandas"] = ...) -> pandas.DataFrame: ...
@overload
def latest(symbols: Symbols | None = ..., *, as_: Literal["polars"]) -> polars.DataFrame: ...
@overload
def latest(symbols: Symbols | None = ..., *, as_: Literal["arrow"]) -> pyarrow.Table: ...
@overload
def latest(symbols: Symbols | None = ..., *, as_: FrameKind) -> Any: ...
def latest(symbols: Symbols | None = None, *, as_: FrameKind = "pandas") -> Any:
    """The newest price, bid and ask per symbol; see `Research.latest`."""
    return default().latest(symbols, as_=as_)


@overload
def trades_with_quotes(
    symbols: Symbols,
    start: TimeLike,
    end: TimeLike,
    max_staleness: DurationLike = ...,
    *,
    as_: Literal["pandas"] = ...,
) -> pandas.DataFrame: ...
@overload
def trades_with_quotes(
    symbols: Symbols,
    start: TimeLike,
    end: TimeLike,
    max_staleness: DurationLike = ...,
    *,
    as_: Literal["polars"],
) -> polars.DataFrame: ...
@overload
def trades_with_quotes(
    symbols: Symbols,
    start: TimeLike,
    end: TimeLike,
    max_staleness: DurationLike = ...,
    *,
    as_: Literal["arrow"],
) -> pyarrow.Table: ...
@overload
def trades_with_quotes(
    symbols: Symbols, start: TimeLike, end: TimeLike, max_staleness: DurationLike = ..., *, as_: FrameKind
) -> Any: ...
def trades_with_quotes(
    symbols: Symbols,
    start: TimeLike,
    end: TimeLike,
    max_staleness: DurationLike = 1.0,
    *,
    as_: FrameKind = "pandas",
) -> Any:
    """Each trade with its prevailing quote, spread and position; see `Research.trades_with_quotes`."""
    return default().trades_with_quotes(symbols, start, end, max_staleness, as_=as_)
