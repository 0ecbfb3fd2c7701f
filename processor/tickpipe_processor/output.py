"""The normalised events written to FILTERED_TOPIC: one Struct per family, in contract order.

tickpipe/contract.py is the contract: its FIELDS names each family's fields in this order (a unit
test holds these structs to it); `ev` comes first and `received_ns` last, absent optional values are
null. events.py fills these from the raw kinds. Created with `gc=False`: they hold no cycles, and
the cycle collector need not scan millions of them.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import attrgetter
from typing import Any

from msgspec import Struct

from tickpipe.contract import Family


class Aggregate(Struct, gc=False):
    ev: str
    symbol: str
    start_ms: int
    end_ms: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    vwap: float | None
    day_volume: float | None
    day_open: float | None
    day_vwap: float | None
    avg_size: float | None
    otc: bool | None
    received_ns: int | None


class Trade(Struct, gc=False):
    ev: str
    symbol: str
    ts_ms: int
    price: float
    size: float
    exchange: int | None
    trade_id: str | None
    tape: int | None
    conditions: list[int] | None
    sequence: int | None
    received_ns: int | None


class Quote(Struct, gc=False):
    ev: str
    symbol: str
    ts_ms: int
    bid_price: float
    bid_size: float | None  # forex quotes carry no sizes
    bid_exchange: int | None
    ask_price: float
    ask_size: float | None
    ask_exchange: int | None
    conditions: list[int] | None
    tape: int | None
    sequence: int | None
    received_ns: int | None


class Book(Struct, gc=False):
    """A level-2 book snapshot (crypto XL2): levels are [price, size], best first."""

    ev: str
    symbol: str
    ts_ms: int
    exchange: int
    bids: list[tuple[float, float]]
    asks: list[tuple[float, float]]
    received_ns: int | None


Event = Aggregate | Trade | Quote | Book


def _best_price(book: Book) -> float:
    """A book's price for the rules: the best bid, else the best ask, else 0."""
    side = book.bids or book.asks
    return side[0][0] if side else 0.0


# What the rules read from each family: event time, the price and the volume (None for quotes).
EVENT_TIME: dict[Family, Callable[[Any], int]] = {
    "aggregate": attrgetter("start_ms"), "trade": attrgetter("ts_ms"), "quote": attrgetter("ts_ms"),
    "book": attrgetter("ts_ms"),
}  # fmt: skip
PRICE: dict[Family, Callable[[Any], float]] = {
    "aggregate": attrgetter("close"), "trade": attrgetter("price"), "quote": attrgetter("bid_price"),
    "book": _best_price,
}  # fmt: skip
VOLUME: dict[Family, Callable[[Any], float] | None] = {
    "aggregate": attrgetter("volume"), "trade": attrgetter("size"), "quote": None, "book": None,
}  # fmt: skip
