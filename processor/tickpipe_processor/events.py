"""Polygon event kinds: the raw shape each must have, and the normalised shape it becomes.

Each raw kind is a msgspec Struct whose attributes carry the *output* names in output order and
whose `rename` maps them to Polygon's keys, with types and bounds declared (`NonNegative`...).
One `msgspec` decode then parses, type-checks, range-checks and names the offending field in C.
Normalising is a re-pack of the same values into the output Struct (output.py), whose encoding
gives the contract's field names (docs/architecture.md, FILTERED_TOPIC). Measured here: ~4 µs per
message for decode + validate + normalise + encode, against ~13 µs for `orjson.loads`, Python
checks and `orjson.dumps`. Structs are created with `gc=False`: they hold no cycles.

Unknown extra keys are ignored (Polygon adds fields from time to time); `Q`'s indicators `i` and
crypto's receive time `r` are dropped as the contract says.

The types are the ones Polygon really sends (its published examples, tests/conformance/): a price or
size may be an integer or a float; a crypto trade id `i` is an integer where a stock trade id is a
string (both become the contract's string); a forex quote's exchange `x` may be a string of digits;
a forex aggregate may have no end `e` (it is then the start plus the bar's width).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, ClassVar, Union

import msgspec
from msgspec import Meta, Struct
from msgspec.structs import astuple

from tickpipe.contract import Family
from tickpipe_processor.columns import LIMITS, MAX_ARRAY, MAX_FLOAT
from tickpipe_processor.invalid import Invalid, from_msgspec_error
from tickpipe_processor.output import Aggregate, Book, Event, Quote, Trade

# Ceilings from the column table (columns.py), checked here in C; bounds.py checks the rest.
_UINT16_MAX, _INT64_MAX = int(LIMITS["UInt16"][1]), int(LIMITS["UInt64"][1])
Symbol = Annotated[str, Meta(min_length=1)]
Millis = Annotated[int, Meta(ge=0)]
Code = Annotated[int, Meta(ge=0, le=_INT64_MAX)]  # exchange ids, tapes, sequence numbers
NonNegative = Annotated[int, Meta(ge=0, le=int(MAX_FLOAT))] | Annotated[float, Meta(ge=0, le=MAX_FLOAT)]
Price = Annotated[float, Meta(ge=0, le=MAX_FLOAT)]  # integers become floats: one JSON type per price field
Conditions = Annotated[list[Annotated[int, Meta(ge=0, le=_UINT16_MAX)]], Meta(max_length=MAX_ARRAY)]
TradeId = str | int  # stocks send a string, crypto an integer
Exchange = Code | str  # forex quotes send the exchange id as a string of digits
Level = tuple[Price, Annotated[float, Meta(ge=0, le=MAX_FLOAT)]]  # one book level: [price, size]

# --- the raw kinds (attributes in output order, renamed to Polygon's keys) ----------------------


class RawEvent(Struct, tag_field="ev", kw_only=True, gc=False):
    EV: ClassVar[str]
    FAMILY: ClassVar[Family]
    OUTPUT: ClassVar[Callable[..., Event]]

    def normalised(self, received_ns: int | None) -> Event:
        """Kinds whose attributes line up with the output re-pack them in one C call.

        Raises `Invalid` for what a type cannot say (an aggregate's high below its low)."""
        return self.OUTPUT(self.EV, *astuple(self), received_ns)


def _exchange_id(exchange: int | str, key: str = "x") -> int:
    """An exchange id sent as an integer or as a string of digits, as an integer."""
    if type(exchange) is int:
        return exchange
    if isinstance(exchange, str) and exchange.isdigit() and len(exchange) < 10:
        return int(exchange)
    raise Invalid("wrong_type", f"{key}: Expected an exchange id (an integer or digits), got {exchange!r}")


def _trade_id(trade_id: str | int | None) -> str | None:
    if trade_id is None or isinstance(trade_id, str):
        return trade_id
    if trade_id < 0:
        raise Invalid("negative_value", f"i: Expected a trade id >= 0, got {trade_id}")
    return str(trade_id)


def _check_bar(high: float, low: float, start_ms: int, end_ms: int) -> None:
    if high < low:
        raise Invalid("high_below_low", f"high `h` {high} is below low `l` {low}")
    if end_ms < start_ms:
        raise Invalid("end_before_start", f"end `e` {end_ms} is before start `s` {start_ms}")


class StockAggregate(RawEvent, tag="A", kw_only=True, rename={
    "symbol": "sym", "start_ms": "s", "end_ms": "e", "open": "o", "high": "h", "low": "l",
    "close": "c", "volume": "v", "vwap": "vw", "day_volume": "av", "day_open": "op",
    "day_vwap": "a", "avg_size": "z",
}):  # fmt: skip
    """A (second) and AM (minute) aggregates for stocks."""

    EV = "A"
    FAMILY = "aggregate"
    OUTPUT = Aggregate
    symbol: Symbol
    start_ms: Millis
    end_ms: Millis
    open: Price
    high: Price
    low: Price
    close: Price
    volume: NonNegative
    vwap: Price | None = None
    day_volume: NonNegative | None = None
    day_open: Price | None = None
    day_vwap: Price | None = None
    avg_size: NonNegative | None = None
    otc: bool | None = None

    def normalised(self, received_ns: int | None) -> Event:
        _check_bar(self.high, self.low, self.start_ms, self.end_ms)
        return super().normalised(received_ns)


class MinuteAggregate(StockAggregate, tag="AM"):
    EV = "AM"


class StockTrade(RawEvent, tag="T", kw_only=True, rename={
    "symbol": "sym", "ts_ms": "t", "price": "p", "size": "s", "exchange": "x", "trade_id": "i",
    "tape": "z", "conditions": "c", "sequence": "q",
}):  # fmt: skip
    EV = "T"
    FAMILY = "trade"
    OUTPUT = Trade
    symbol: Symbol
    ts_ms: Millis
    price: Price
    size: NonNegative
    exchange: Code
    trade_id: TradeId | None = None
    tape: Code | None = None
    conditions: Conditions | None = None
    sequence: Code | None = None

    def normalised(self, received_ns: int | None) -> Event:
        trade = super().normalised(received_ns)
        if type(self.trade_id) is int:
            trade.trade_id = _trade_id(self.trade_id)  # type: ignore[union-attr]
        return trade


class StockQuote(RawEvent, tag="Q", kw_only=True, rename={
    "symbol": "sym", "ts_ms": "t", "bid_price": "bp", "bid_size": "bs", "bid_exchange": "bx",
    "ask_price": "ap", "ask_size": "as", "ask_exchange": "ax", "conditions": "c", "tape": "z",
    "sequence": "q",
}):  # fmt: skip
    EV = "Q"
    FAMILY = "quote"
    OUTPUT = Quote
    symbol: Symbol
    ts_ms: Millis
    bid_price: Price
    bid_size: NonNegative
    bid_exchange: Code | None = None
    ask_price: Price
    ask_size: NonNegative
    ask_exchange: Code | None = None
    conditions: Annotated[int, Meta(ge=0)] | Conditions | None = None  # Polygon sends one int
    tape: Code | None = None
    sequence: Code | None = None

    def normalised(self, received_ns: int | None) -> Event:
        quote = super().normalised(received_ns)
        if type(self.conditions) is int:
            quote.conditions = [self.conditions]  # type: ignore[union-attr]
        return quote


class CryptoAggregate(RawEvent, tag="XA", kw_only=True, rename={
    "symbol": "pair", "start_ms": "s", "end_ms": "e", "open": "o", "high": "h", "low": "l",
    "close": "c", "volume": "v", "vwap": "vw", "avg_size": "z",
}):  # fmt: skip
    """XA (minute) and XAS (second) aggregates for crypto; without `e`, the end is start + width."""

    EV = "XA"
    FAMILY = "aggregate"
    OUTPUT = Aggregate
    WIDTH_MS: ClassVar[int] = 60_000
    symbol: Symbol
    start_ms: Millis
    end_ms: Millis | None = None
    open: Price
    high: Price
    low: Price
    close: Price
    volume: NonNegative
    vwap: Price | None = None
    avg_size: NonNegative | None = None

    def normalised(self, received_ns: int | None) -> Event:
        s = self
        end_ms = s.start_ms + s.WIDTH_MS if s.end_ms is None else s.end_ms
        _check_bar(s.high, s.low, s.start_ms, end_ms)
        return Aggregate(
            s.EV, s.symbol, s.start_ms, end_ms, s.open, s.high, s.low, s.close, s.volume, s.vwap,
            None, None, None, s.avg_size, None, received_ns,
        )  # fmt: skip


class CryptoSecondAggregate(CryptoAggregate, tag="XAS"):
    EV = "XAS"
    WIDTH_MS = 1_000


class ForexAggregate(RawEvent, tag="CA", kw_only=True, rename={
    "symbol": "pair", "start_ms": "s", "end_ms": "e", "open": "o", "high": "h", "low": "l",
    "close": "c", "volume": "v",
}):  # fmt: skip
    """CA (minute) and CAS (second) aggregates for forex; Polygon's examples have no `e`."""

    EV = "CA"
    FAMILY = "aggregate"
    OUTPUT = Aggregate
    WIDTH_MS: ClassVar[int] = 60_000
    symbol: Symbol
    start_ms: Millis
    end_ms: Millis | None = None
    open: Price
    high: Price
    low: Price
    close: Price
    volume: NonNegative = 0

    def normalised(self, received_ns: int | None) -> Event:
        s = self
        end_ms = s.start_ms + s.WIDTH_MS if s.end_ms is None else s.end_ms
        _check_bar(s.high, s.low, s.start_ms, end_ms)
        return Aggregate(
            s.EV, s.symbol, s.start_ms, end_ms, s.open, s.high, s.low, s.close, s.volume, None,
            None, None, None, None, None, received_ns,
        )  # fmt: skip


class ForexSecondAggregate(ForexAggregate, tag="CAS"):
    EV = "CAS"
    WIDTH_MS = 1_000


class CryptoTrade(RawEvent, tag="XT", kw_only=True, rename={
    "symbol": "pair", "ts_ms": "t", "price": "p", "size": "s", "exchange": "x", "trade_id": "i",
    "conditions": "c",
}):  # fmt: skip
    EV = "XT"
    FAMILY = "trade"
    OUTPUT = Trade
    symbol: Symbol
    ts_ms: Millis
    price: Price
    size: NonNegative
    exchange: Code
    trade_id: TradeId | None = None
    conditions: Conditions | None = None

    def normalised(self, received_ns: int | None) -> Event:
        s = self
        return Trade(
            s.EV, s.symbol, s.ts_ms, s.price, s.size, s.exchange, _trade_id(s.trade_id), None,
            s.conditions, None, received_ns,
        )  # fmt: skip


class CryptoQuote(RawEvent, tag="XQ", kw_only=True, rename={
    "symbol": "pair", "ts_ms": "t", "bid_price": "bp", "bid_size": "bs", "ask_price": "ap",
    "ask_size": "as", "exchange": "x",
}):  # fmt: skip
    """A crypto quote names one exchange; it is both the bid and the ask exchange."""

    EV = "XQ"
    FAMILY = "quote"
    OUTPUT = Quote
    symbol: Symbol
    ts_ms: Millis
    bid_price: Price
    bid_size: NonNegative
    ask_price: Price
    ask_size: NonNegative
    exchange: Code

    def normalised(self, received_ns: int | None) -> Event:
        s = self
        return Quote(
            s.EV, s.symbol, s.ts_ms, s.bid_price, s.bid_size, s.exchange, s.ask_price, s.ask_size,
            s.exchange, None, None, None, received_ns,
        )  # fmt: skip


class ForexQuote(RawEvent, tag="C", kw_only=True, rename={
    "symbol": "p", "exchange": "x", "ask_price": "a", "bid_price": "b", "ts_ms": "t",
}):  # fmt: skip
    """A forex quote: the pair in `p`, one exchange `x` (a string in Polygon's example), no sizes."""

    EV = "C"
    FAMILY = "quote"
    OUTPUT = Quote
    symbol: Symbol
    exchange: Exchange | None = None
    ask_price: Price
    bid_price: Price
    ts_ms: Millis

    def normalised(self, received_ns: int | None) -> Event:
        s = self
        exchange = None if s.exchange is None else _exchange_id(s.exchange)
        return Quote(
            s.EV, s.symbol, s.ts_ms, s.bid_price, None, exchange, s.ask_price, None, exchange, None,
            None, None, received_ns,
        )  # fmt: skip


class CryptoBook(RawEvent, tag="XL2", kw_only=True, rename={
    "symbol": "pair", "ts_ms": "t", "exchange": "x", "bids": "b", "asks": "a",
}):  # fmt: skip
    """A level-2 book snapshot: bids and asks as arrays of [price, size], best first."""

    EV = "XL2"
    FAMILY = "book"
    OUTPUT = Book
    symbol: Symbol
    ts_ms: Millis
    exchange: Code
    bids: list[Level] = []
    asks: list[Level] = []


RAW_KINDS: tuple[type[RawEvent], ...] = (
    StockAggregate, MinuteAggregate, StockTrade, StockQuote, CryptoAggregate, CryptoSecondAggregate,
    CryptoTrade, CryptoQuote, CryptoBook, ForexAggregate, ForexSecondAggregate, ForexQuote,
)  # fmt: skip
EVENT_KINDS: tuple[str, ...] = tuple(kind.EV for kind in RAW_KINDS)

decode = msgspec.json.Decoder(Union[RAW_KINDS]).decode  # noqa: UP007  (a union of every raw kind)
DECODE_ERRORS = (msgspec.ValidationError, msgspec.DecodeError)
encode = msgspec.json.Encoder().encode


def parse(value: bytes, received_ns: int | None) -> tuple[RawEvent, Event]:
    """Parse, validate and normalise one raw value (batch.py inlines the same two steps).

    Raises `Invalid` with the DLQ reason and a detail naming the field.
    """
    try:
        raw: RawEvent = decode(value)
    except DECODE_ERRORS as error:
        raise from_msgspec_error(value, error) from None
    return raw, raw.normalised(received_ns)
