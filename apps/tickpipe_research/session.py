"""`Research`: one read-only connection and the typed queries a notebook asks for.

It connects the way `tickpipe query` does (tickpipe_clickhouse.query.client.open_query_client):
CLICKHOUSE_DSN names a ClickHouse server (HTTP) or an embedded chDB folder; while a running sink
holds that folder, queries go through the sink's read-only query endpoint instead of opening it.
Every query runs through that read-only path (`run_raw`), with every value bound server-side.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, cast, overload

from tickpipe_research import sql
from tickpipe_research.frames import FrameKind, arrow_table, convert
from tickpipe_research.times import DurationLike, TimeLike, milliseconds, window

if TYPE_CHECKING:
    import pandas
    import polars
    import pyarrow

    from tickpipe_clickhouse.settings import ClickHouseSettings

Interval = Literal["1m", "5m", "1h", "1d"]
Symbols = str | Iterable[str]  # "AAPL" or ["AAPL", "MSFT"]
ARROW_FORMAT = "ArrowStream"


class Research:
    """Typed, read-only access to tickpipe's ClickHouse tables as pandas, polars or Arrow frames.

    >>> from tickpipe_research import Research
    >>> with Research.connect() as r:                    # CLICKHOUSE_DSN, like the CLI
    ...     df = r.bars(["AAPL"], "2026-12-01", "2026-12-02", "1m")

    `client` is anything with clickhouse-connect's `raw_query(sql, parameters=..., fmt=...)`:
    what `open_query_client` returns. `Research.connect()` opens one; the constructor takes one you
    opened yourself (it is not closed by `close()` unless `owns_client`).
    """

    def __init__(self, client: Any, owns_client: bool = False) -> None:
        self.client = client
        self._owns_client = owns_client

    @classmethod
    def connect(cls, dsn: str | None = None, database: str | None = None) -> Research:
        """Open the read-only query path: arguments, else CLICKHOUSE_DSN / CLICKHOUSE_DATABASE
        (the environment, then `.tickpipe/local.env`), else the embedded default folder; with the
        operator's query limits (QUERY_MAX_EXECUTION_SECONDS, QUERY_MAX_RESULT_BYTES, ...)."""
        from tickpipe_clickhouse.query.client import open_query_client

        settings = resolve_settings(dsn, database)
        client = open_query_client(
            settings.clickhouse_dsn.get_secret_value(),
            settings.clickhouse_database,
            limits=settings.query_limits(),
        )
        return cls(client, owns_client=True)

    def close(self) -> None:
        if self._owns_client:
            self.client.close()

    def __enter__(self) -> Research:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # --- the queries ----------------------------------------------------------------------------

    @overload
    def query(
        self, text: str, params: Mapping[str, Any] | None = None, *, as_: Literal["pandas"] = ...
    ) -> pandas.DataFrame: ...
    @overload
    def query(
        self, text: str, params: Mapping[str, Any] | None = None, *, as_: Literal["polars"]
    ) -> polars.DataFrame: ...
    @overload
    def query(
        self, text: str, params: Mapping[str, Any] | None = None, *, as_: Literal["arrow"]
    ) -> pyarrow.Table: ...
    @overload
    def query(self, text: str, params: Mapping[str, Any] | None = None, *, as_: FrameKind) -> Any: ...
    def query(self, text: str, params: Mapping[str, Any] | None = None, *, as_: FrameKind = "pandas") -> Any:
        """Ad hoc read-only SQL; values as `{name:Type}` placeholders bound from `params`."""
        return convert(self.arrow(text, params), as_)

    def arrow(self, text: str, params: Mapping[str, Any] | None = None) -> pyarrow.Table:
        """The answer to `text` as an Arrow table (UTC timestamps)."""
        from tickpipe_clickhouse.query.client import run_raw

        # run_raw binds values server-side; its annotation says str, and lists (Array parameters)
        # and integers are bound the same way by the driver and by the sink's endpoint (JSON).
        data = run_raw(self.client, text, cast("Mapping[str, str]", dict(params or {})), ARROW_FORMAT)
        return arrow_table(data)

    @overload
    def bars(
        self,
        symbols: Symbols,
        start: TimeLike,
        end: TimeLike,
        interval: Interval = ...,
        *,
        as_: Literal["pandas"] = ...,
    ) -> pandas.DataFrame: ...
    @overload
    def bars(
        self,
        symbols: Symbols,
        start: TimeLike,
        end: TimeLike,
        interval: Interval = ...,
        *,
        as_: Literal["polars"],
    ) -> polars.DataFrame: ...
    @overload
    def bars(
        self,
        symbols: Symbols,
        start: TimeLike,
        end: TimeLike,
        interval: Interval = ...,
        *,
        as_: Literal["arrow"],
    ) -> pyarrow.Table: ...
    @overload
    def bars(
        self, symbols: Symbols, start: TimeLike, end: TimeLike, interval: Interval = ..., *, as_: FrameKind
    ) -> Any: ...
    def bars(
        self,
        symbols: Symbols,
        start: TimeLike,
        end: TimeLike,
        interval: Interval = "1m",
        *,
        as_: FrameKind = "pandas",
    ) -> Any:
        """OHLCV bars whose bucket starts in [start, end): symbol, bucket (UTC), open, high, low,
        close, volume, vwap, trades; ordered by symbol, then bucket. `interval`: 1m, 5m, 1h or 1d."""
        first, last = window(start, end)
        params = {"symbols": symbol_list(symbols), "start": first, "end": last}
        return convert(self.arrow(sql.bars_sql(interval), params), as_)

    @overload
    def trades(
        self,
        symbols: Symbols,
        start: TimeLike,
        end: TimeLike,
        *,
        limit: int | None = ...,
        as_: Literal["pandas"] = ...,
    ) -> pandas.DataFrame: ...
    @overload
    def trades(
        self,
        symbols: Symbols,
        start: TimeLike,
        end: TimeLike,
        *,
        limit: int | None = ...,
        as_: Literal["polars"],
    ) -> polars.DataFrame: ...
    @overload
    def trades(
        self,
        symbols: Symbols,
        start: TimeLike,
        end: TimeLike,
        *,
        limit: int | None = ...,
        as_: Literal["arrow"],
    ) -> pyarrow.Table: ...
    @overload
    def trades(
        self, symbols: Symbols, start: TimeLike, end: TimeLike, *, limit: int | None = ..., as_: FrameKind
    ) -> Any: ...
    def trades(
        self,
        symbols: Symbols,
        start: TimeLike,
        end: TimeLike,
        *,
        limit: int | None = None,
        as_: FrameKind = "pandas",
    ) -> Any:
        """Trades in [start, end): symbol, timestamp (UTC), price, size, exchange, trade_id, tape,
        conditions, sequence, received; in time order per symbol; at most `limit` rows if given."""
        return convert(self._ticks("trades", symbols, start, end, limit), as_)

    @overload
    def quotes(
        self,
        symbols: Symbols,
        start: TimeLike,
        end: TimeLike,
        *,
        limit: int | None = ...,
        as_: Literal["pandas"] = ...,
    ) -> pandas.DataFrame: ...
    @overload
    def quotes(
        self,
        symbols: Symbols,
        start: TimeLike,
        end: TimeLike,
        *,
        limit: int | None = ...,
        as_: Literal["polars"],
    ) -> polars.DataFrame: ...
    @overload
    def quotes(
        self,
        symbols: Symbols,
        start: TimeLike,
        end: TimeLike,
        *,
        limit: int | None = ...,
        as_: Literal["arrow"],
    ) -> pyarrow.Table: ...
    @overload
    def quotes(
        self, symbols: Symbols, start: TimeLike, end: TimeLike, *, limit: int | None = ..., as_: FrameKind
    ) -> Any: ...
    def quotes(
        self,
        symbols: Symbols,
        start: TimeLike,
        end: TimeLike,
        *,
        limit: int | None = None,
        as_: FrameKind = "pandas",
    ) -> Any:
        """Quotes (NBBO updates) in [start, end): symbol, timestamp (UTC), bid_price, bid_size,
        bid_exchange, ask_price, ask_size, ask_exchange, conditions, tape, sequence, received."""
        return convert(self._ticks("quotes", symbols, start, end, limit), as_)

    @overload
    def latest(self, symbols: Symbols | None = ..., *, as_: Literal["pandas"] = ...) -> pandas.DataFrame: ...
    @overload
    def latest(self, symbols: Symbols | None = ..., *, as_: Literal["polars"]) -> polars.DataFrame: ...
    @overload
    def latest(self, symbols: Symbols | None = ..., *, as_: Literal["arrow"]) -> pyarrow.Table: ...
    @overload
    def latest(self, symbols: Symbols | None = ..., *, as_: FrameKind) -> Any: ...
    def latest(self, symbols: Symbols | None = None, *, as_: FrameKind = "pandas") -> Any:
        """The newest price, bid and ask per symbol and when it was seen (`updated`, UTC); every
        symbol when `symbols` is None."""
        if symbols is None:
            return convert(self.arrow(sql.latest_sql(every_symbol=True)), as_)
        params = {"symbols": symbol_list(symbols)}
        return convert(self.arrow(sql.latest_sql(every_symbol=False), params), as_)

    @overload
    def trades_with_quotes(
        self,
        symbols: Symbols,
        start: TimeLike,
        end: TimeLike,
        max_staleness: DurationLike = ...,
        *,
        as_: Literal["pandas"] = ...,
    ) -> pandas.DataFrame: ...
    @overload
    def trades_with_quotes(
        self,
        symbols: Symbols,
        start: TimeLike,
        end: TimeLike,
        max_staleness: DurationLike = ...,
        *,
        as_: Literal["polars"],
    ) -> polars.DataFrame: ...
    @overload
    def trades_with_quotes(
        self,
        symbols: Symbols,
        start: TimeLike,
        end: TimeLike,
        max_staleness: DurationLike = ...,
        *,
        as_: Literal["arrow"],
    ) -> pyarrow.Table: ...
    @overload
    def trades_with_quotes(
        self,
        symbols: Symbols,
        start: TimeLike,
        end: TimeLike,
        max_staleness: DurationLike = ...,
        *,
        as_: FrameKind,
    ) -> Any: ...
    def trades_with_quotes(
        self,
        symbols: Symbols,
        start: TimeLike,
        end: TimeLike,
        max_staleness: DurationLike = 1.0,
        *,
        as_: FrameKind = "pandas",
    ) -> Any:
        """Each trade in [start, end) with the last quote at or before it (an ASOF JOIN), if that
        quote is at most `max_staleness` old (a timedelta, or seconds; default 1 s).

        Columns: the trade's symbol, timestamp, price, size, exchange, conditions, sequence; then
        has_quote, quote_timestamp, quote_age_ms, bid, bid_size, ask, ask_size (NULL without a
        quote), valid_quote (bid > 0 and ask ≥ bid), spread (ask - bid), mid, position
        ((price - bid) / spread: 0 at the bid, 1 at the ask, < 0 or > 1 through the quote) and
        location: below_bid, at_bid, inside, at_ask, above_ask, crossed, or '' without a quote.
        """
        first, last = window(start, end)
        params = {
            "symbols": symbol_list(symbols),
            "start": first,
            "end": last,
            "max_staleness_ms": milliseconds(max_staleness, "max_staleness"),
        }
        return convert(self.arrow(sql.trades_with_quotes_sql(), params), as_)

    def _ticks(
        self, table: str, symbols: Symbols, start: TimeLike, end: TimeLike, limit: int | None
    ) -> pyarrow.Table:
        first, last = window(start, end)
        params: dict[str, Any] = {"symbols": symbol_list(symbols), "start": first, "end": last}
        if limit is not None:
            if limit < 0:
                raise ValueError(f"limit must not be negative (got {limit})")
            params["limit"] = int(limit)
        return self.arrow(sql.ticks_sql(table, limited=limit is not None), params)


def symbol_list(symbols: Symbols) -> list[str]:
    """ "AAPL" or ["AAPL", "MSFT"] as a non-empty list of distinct symbols, in the order given."""
    given = [symbols] if isinstance(symbols, str) else list(symbols)
    cleaned = list(dict.fromkeys(str(s).strip() for s in given if str(s).strip()))
    if not cleaned:
        raise ValueError("give at least one symbol, e.g. bars('AAPL', ...) or bars(['AAPL', 'MSFT'], ...)")
    return cleaned


def resolve_settings(dsn: str | None, database: str | None) -> ClickHouseSettings:
    """Where and how to query, as `tickpipe query` would pick it (validated by ClickHouseSettings)."""
    from tickpipe.config import load_settings, read_env_file
    from tickpipe.paths import local_env_file
    from tickpipe_clickhouse.settings import ClickHouseSettings

    overrides: dict[str, Any] = {"clickhouse_dsn": dsn, "clickhouse_database": database}
    path = local_env_file()
    local = read_env_file(path) if path.is_file() else {}
    for key in ("CLICKHOUSE_DSN", "CLICKHOUSE_DATABASE"):  # local.env fills in, never overrides
        field = key.lower()
        if overrides[field] is None and key not in os.environ and key in local:
            overrides[field] = local[key]
    return load_settings(ClickHouseSettings, overrides)
