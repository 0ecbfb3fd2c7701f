"""Where trades print against the prevailing quote: at, inside or through the spread, per symbol.

    python examples/trade_through_spread.py [--hours 1] [--staleness 1.0] [--symbols AAPL,MSFT]

Each trade of the last `--hours` of data is joined to the last quote at or before it (an ASOF JOIN
in ClickHouse, `trades_with_quotes`); quotes older than `--staleness` seconds do not count. Runs on
CLICKHOUSE_DSN like `tickpipe query` (the embedded default after `make demo`).
"""

from __future__ import annotations

import argparse
import datetime as dt

import polars as pl

from tickpipe_research import Research


def spread_statistics(joined: pl.DataFrame) -> pl.DataFrame:
    """Per symbol: trades, share with a quote, at / inside / through the quote, mean position and spread."""
    quoted = pl.col("has_quote")
    return (
        joined.group_by("symbol")
        .agg(
            pl.len().alias("trades"),
            quoted.mean().alias("with_quote"),
            pl.col("location").is_in(["at_bid", "at_ask"]).sum().alias("at_quote"),
            (pl.col("location") == "inside").sum().alias("inside"),
            pl.col("location").is_in(["below_bid", "above_ask"]).sum().alias("through"),
            pl.col("position").mean().alias("mean_position"),
            (10_000 * pl.col("spread") / pl.col("mid")).mean().alias("mean_spread_bps"),
        )
        .with_columns((pl.col("through") / pl.col("trades")).alias("through_share"))
        .sort("symbol")
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--hours", type=float, default=1.0, help="how much of the newest data (default 1 h)")
    parser.add_argument("--staleness", type=float, default=1.0, help="oldest usable quote, seconds")
    parser.add_argument("--symbols", help="comma-separated (default: every symbol seen)")
    args = parser.parse_args(argv)
    with Research.connect() as research:
        latest = research.latest(as_="polars")
        if latest.is_empty():
            print("no data yet: run `make demo` first")
            return 1
        symbols = args.symbols.split(",") if args.symbols else latest["symbol"].to_list()
        newest: dt.datetime = latest["updated"].max()  # type: ignore[assignment]  # a Datetime column
        end = newest + dt.timedelta(milliseconds=1)
        start = end - dt.timedelta(hours=args.hours)
        joined = research.trades_with_quotes(symbols, start, end, args.staleness, as_="polars")
    if joined.is_empty():
        print(f"no trades between {start} and {end}")
        return 1
    print(f"trades against the prevailing quote, {start:%Y-%m-%d %H:%M:%S} to {end:%H:%M:%S} UTC")
    with pl.Config(tbl_rows=50, tbl_cols=20, float_precision=4, tbl_width_chars=140):
        print(spread_statistics(joined))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
