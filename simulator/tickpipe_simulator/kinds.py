"""The three markets the simulator speaks: their event types, symbols, exchanges and units.

stocks  T, Q, A (second), AM (minute)   symbol in `sym`                   bars of the trades
crypto  XT, XQ, XA (minute)             `pair` (BTC-USD)                  bars of the trades
forex   C (quotes), CA (minute)         `p` in C, `pair` in CA (EUR/USD)  bars of the quote bids,
                                                                          `v` = quote count
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from tickpipe_simulator.symbols import DEFAULTS, SymbolInfo

MarketName = Literal["stocks", "crypto", "forex"]
Event = dict[str, Any]  # one Polygon event, as the websocket sends it


@dataclass(frozen=True)
class MarketKind:
    name: MarketName
    event_types: tuple[str, ...]  # what a topic may name, e.g. ("A", "AM", "T", "Q")
    exchanges: tuple[int, ...]
    size_scale: int  # sizes are integers in units of 1/size_scale (crypto trades fractions of a coin)
    has_trades: bool

    @property
    def defaults(self) -> tuple[SymbolInfo, ...]:
        return DEFAULTS[self.name]

    def price_scale(self, price: float) -> int:
        """Ticks per unit of price: cents for stocks over $1, 5 decimals for most forex pairs."""
        if self.name == "stocks":
            return 100 if price >= 1 else 10_000
        if self.name == "crypto":
            return 100 if price >= 1000 else 10_000 if price >= 1 else 1_000_000
        return 1_000 if price >= 20 else 100_000


KINDS: dict[str, MarketKind] = {
    "stocks": MarketKind(
        "stocks", ("A", "AM", "T", "Q"), (1, 2, 3, 4, 7, 8, 9, 10, 11, 12, 15, 17, 19, 21), 1, True
    ),
    "crypto": MarketKind("crypto", ("XA", "XT", "XQ"), (1, 2, 6, 23), 10_000, True),
    "forex": MarketKind("forex", ("CA", "C"), (48,), 1, False),
}
