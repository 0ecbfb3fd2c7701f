"""Reference data: the tickers' history (versions by `last_updated_utc`) and the trade conditions.

Deterministic from the session's symbols and start day D (UTC):
- every simulated symbol is listed at D - 3650 days, named "<TICKER> Inc.";
- every fifth symbol (index 1, 6, 11, ...) is renamed "<TICKER> Holdings Inc." at D - 100 days;
- three tickers that never trade in the feed (ZDLA, ZDLB, ZDLC) are listed at D - 3650 days and
  delisted at D - 40, D - 50 and D - 60 days (`active` false, `delisted_utc` set).

`/v3/reference/tickers?date=YYYY-MM-DD` answers each ticker as it was on that day (its newest
version updated on or before the day's end), as Polygon does. Conditions follow Polygon's
`/v3/reference/conditions` (ids, names, SIP mappings and update rules of the real CTA/UTP codes).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from tickpipe_simulator.symbols import SymbolInfo

DAY_MS = 86_400_000
LISTED_DAYS_BEFORE = 3650
RENAMED_DAYS_BEFORE = 100
DELISTED = (("ZDLA", 40), ("ZDLB", 50), ("ZDLC", 60))
EXCHANGE_OF_TAPE = {1: "XNYS", 2: "ARCX", 3: "XNAS"}


@dataclass(frozen=True)
class TickerVersion:
    ticker: str
    updated_ms: int
    fields: dict[str, Any]

    def row(self) -> dict[str, Any]:
        return {**self.fields, "last_updated_utc": iso(self.updated_ms)}


def iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def ticker_versions(symbols: tuple[SymbolInfo, ...], start_ms: int) -> list[TickerVersion]:
    """Every version of every ticker, by ticker then time."""
    day = start_ms - start_ms % DAY_MS
    listed = day - LISTED_DAYS_BEFORE * DAY_MS
    versions: list[TickerVersion] = []
    for i, info in enumerate(symbols):
        base = _base(info.ticker, i, EXCHANGE_OF_TAPE.get(info.tape, "XNAS"))
        versions.append(TickerVersion(info.ticker, listed, {**base, "name": f"{info.ticker} Inc."}))
        if i % 5 == 1:
            renamed = {**base, "name": f"{info.ticker} Holdings Inc."}
            versions.append(TickerVersion(info.ticker, day - RENAMED_DAYS_BEFORE * DAY_MS, renamed))
    for j, (ticker, days) in enumerate(DELISTED):
        base = {**_base(ticker, len(symbols) + j, "XNYS"), "name": f"{ticker} Corp."}
        versions.append(TickerVersion(ticker, listed, base))
        gone = day - days * DAY_MS
        versions.append(TickerVersion(ticker, gone, {**base, "active": False, "delisted_utc": iso(gone)}))
    versions.sort(key=lambda v: (v.ticker, v.updated_ms))
    return versions


def _base(ticker: str, i: int, exchange: str) -> dict[str, Any]:
    return {
        "active": True,
        "cik": f"{1_000_000 + i:010d}",
        "composite_figi": f"BBG{i:09d}",
        "currency_name": "usd",
        "locale": "us",
        "market": "stocks",
        "primary_exchange": exchange,
        "share_class_figi": f"BBG{i + 500_000:09d}",
        "ticker": ticker,
        "type": "ETF" if ticker in _ETFS else "CS",
    }


_ETFS = {"SPY", "QQQ", "IWM", "XLF", "TLT", "GLD", "SLV", "EEM", "HYG", "XLE", "SOXL", "TQQQ"}


def tickers_on(versions: list[TickerVersion], as_of_ms: int) -> list[dict[str, Any]]:
    """Each ticker's newest version updated at or before `as_of_ms`, by ticker."""
    current: dict[str, TickerVersion] = {}
    for version in versions:
        if version.updated_ms <= as_of_ms:
            current[version.ticker] = version
    return [current[ticker].row() for ticker in sorted(current)]


def _rules(open_close: bool, high_low: bool, volume: bool) -> dict[str, dict[str, bool]]:
    rule = {"updates_high_low": high_low, "updates_open_close": open_close, "updates_volume": volume}
    return {"consolidated": dict(rule), "market_center": dict(rule)}


def _condition(
    id_: int, name: str, cta: str, utp: str, rules: tuple[bool, bool, bool], kind: str = "sale_condition"
) -> dict[str, Any]:
    return {
        "asset_class": "stocks",
        "data_types": ["trade"],
        "id": id_,
        "legacy": False,
        "name": name,
        "sip_mapping": {"CTA": cta, "UTP": utp},
        "type": kind,
        "update_rules": _rules(*rules),
    }


# (open/close, high/low, volume) as Polygon's consolidated rules give them.
CONDITIONS: list[dict[str, Any]] = [
    _condition(0, "Regular Sale", "@", "@", (True, True, True)),
    _condition(1, "Acquisition", "A", "A", (True, True, True)),
    _condition(2, "Average Price Trade", "B", "W", (False, False, True)),
    _condition(4, "Bunched Trade", "B", "B", (True, True, True)),
    _condition(7, "Cash Sale", "C", "C", (False, False, True)),
    _condition(10, "Derivatively Priced", "4", "4", (False, True, True)),
    _condition(12, "Form T", "T", "T", (False, False, True)),
    _condition(14, "Intermarket Sweep", "F", "F", (True, True, True)),
    _condition(15, "Market Center Official Close", "M", "M", (False, False, False)),
    _condition(22, "Prior Reference Price", "P", "P", (False, True, True)),
    _condition(29, "Seller", "R", "R", (False, False, True)),
    _condition(33, "Sold Out Of Sequence", "Z", "Z", (False, True, True)),
    _condition(37, "Odd Lot Trade", "I", "I", (False, False, True)),
    _condition(41, "Trade Thru Exempt", "", "", (True, True, True)),
    {
        "asset_class": "stocks",
        "data_types": ["bbo", "nbbo"],
        "id": 1,
        "legacy": False,
        "name": "Regular, Two-Sided Open",
        "sip_mapping": {"CTA": "R", "UTP": "R"},
        "type": "quote_condition",
    },
]
