"""Intraday VWAP against the close, per symbol, for one UTC day (the newest with bars by default).

    python examples/intraday_vwap.py [--date 2026-12-01] [--symbols AAPL,MSFT]

Reads CLICKHOUSE_DSN like `tickpipe query` (the embedded default after `make demo`), through the
read-only query path: a running sink is asked through its query endpoint.
"""

from __future__ import annotations

import argparse
import datetime as dt

import pandas as pd

from tickpipe_research import Research


def vwap_vs_close(bars: pd.DataFrame) -> pd.DataFrame:
    """Per symbol: the day's VWAP (volume-weighted over the minute bars), last close, and the gap."""
    bars = bars[bars["volume"] > 0].assign(pv=lambda b: b["vwap"] * b["volume"])
    day = bars.groupby("symbol").agg(
        volume=("volume", "sum"), pv=("pv", "sum"), close=("close", "last"), last_bar=("bucket", "max")
    )
    day["vwap"] = day["pv"] / day["volume"]
    day["close_vs_vwap_bps"] = 10_000 * (day["close"] - day["vwap"]) / day["vwap"]
    return day[["vwap", "close", "close_vs_vwap_bps", "volume", "last_bar"]].sort_values("close_vs_vwap_bps")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--date", type=dt.date.fromisoformat, help="UTC day (default: the newest with data)")
    parser.add_argument("--symbols", help="comma-separated (default: every symbol seen)")
    args = parser.parse_args(argv)
    with Research.connect() as research:
        latest = research.latest()
        if latest.empty:
            print("no data yet: run `make demo` first")
            return 1
        symbols = args.symbols.split(",") if args.symbols else list(latest["symbol"])
        day = args.date or latest["updated"].max().date()
        bars = research.bars(symbols, day, day + dt.timedelta(days=1), "1m")
    if bars.empty:
        print(f"no minute bars on {day}")
        return 1
    print(f"VWAP vs close on {day} (UTC), from {len(bars)} minute bars")
    with pd.option_context("display.width", 120, "display.float_format", "{:,.4f}".format):
        print(vwap_vs_close(bars).to_string())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
