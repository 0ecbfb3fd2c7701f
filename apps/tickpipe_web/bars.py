"""Live OHLCV bars in memory, built from FILTERED_TOPIC events, seeded from ClickHouse history.

The same rule as the ClickHouse bars (clickhouse/migrations/006_bars_by_source.sql, kept by 040):
each symbol's bars are counted from the finest source seen for it, never from two. Rank 1: `A`, `XAS`, `CAS`
(second aggregates); 2: `AM`, `XA`, `CA` (minute aggregates); 3: `T`, `XT` (trades) and `C` (the
mid of a forex quote); ties by name. A symbol that only gets `AM`, or only trades, gets candles; when
a finer source first appears for a symbol, the buckets from its first event on are rebuilt from it
alone, and coarser events of that symbol then move only its latest price.

Corrections: an aggregate re-sent for the same (symbol, ev, start) replaces its earlier receipt. Its
volume is taken out again and the latest receipt wins open and close; high and low stay the max and
min over every receipt, as in ClickHouse. The book remembers the newest 500 to 550 sub-bars of a
symbol's source for this (a re-sent aggregate older than those is counted as a new one).

Stock trades (`T`) follow the condition rules of `trade_conditions` (`TradeRules`): a trade moves
open/close, high/low and volume only if none of its codes says it must not; without rules every trade
counts. As in ClickHouse, a bar no trade may set high/low of is not shown (its volume is kept for
when one arrives), and the first trade of a bar sets its open and close until one that may move them
arrives. Crypto trades all count.

Open and close follow the source's time (then receipt for aggregates, sequence for trades and quotes),
so a late event does not move them; volumes add up. A bucket with no event has no bar: the book never
invents a candle, and `gaps()` names the empty buckets between the first and the last bar of a series.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

INTERVALS: dict[str, int] = {"1s": 1, "1m": 60, "5m": 300, "1h": 3600}  # name -> seconds
AGGREGATE_EVS = frozenset({"A", "AM", "XAS", "XA", "CAS", "CA"})
TRADE_EVS = frozenset({"T", "XT"})
QUOTE_BAR_EVS = frozenset({"C"})  # forex quotes: bars from the mid
RANK: dict[str, int] = {
    "A": 1, "XAS": 1, "CAS": 1, "AM": 2, "XA": 2, "CA": 2, "T": 3, "XT": 3, "C": 3,
}  # fmt: skip
WINDOW = 500  # buckets kept per series (the chart's window)
_SLACK = 50  # a series is trimmed back to WINDOW when it grows this far past it
_INTERVAL_ITEMS = tuple(INTERVALS.items())
_SECONDS = tuple(INTERVALS.values())
_INDEX = {name: i for i, name in enumerate(INTERVALS)}
_NEVER = (1 << 62, 0)  # an open key any real one precedes
_NONE = (-(1 << 62), 0)  # a close key any real one follows
_HIDDEN_HIGH, _HIDDEN_LOW = -math.inf, math.inf  # a bar no event may set high/low of yet: not shown


class BadInterval(ValueError):
    """Not one of INTERVALS."""


def interval_seconds(name: str) -> int:
    try:
        return INTERVALS[name]
    except KeyError:
        raise BadInterval(f"interval must be one of {', '.join(INTERVALS)}, not {name!r}") from None


@dataclass(frozen=True, slots=True)
class TradeRules:
    """Condition codes of stock trades that must not move a bar's open/close, high/low or volume."""

    no_open_close: frozenset[int] = frozenset()
    no_high_low: frozenset[int] = frozenset()
    no_volume: frozenset[int] = frozenset()
    loaded: bool = False  # False: no rules could be read, every trade counts

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[Any, Any, Any, Any]]) -> TradeRules:
        """From (id, updates_open_close, updates_high_low, updates_volume) rows."""
        oc: set[int] = set()
        hl: set[int] = set()
        vol: set[int] = set()
        for code, moves_oc, moves_hl, moves_vol in rows:
            for flag, excluded in ((moves_oc, oc), (moves_hl, hl), (moves_vol, vol)):
                if not flag:
                    excluded.add(int(code))
        return cls(frozenset(oc), frozenset(hl), frozenset(vol), loaded=True)


@dataclass(slots=True)
class Bar:
    time: int  # bucket start, Unix seconds UTC
    open: float
    high: float
    low: float
    close: float
    volume: float
    first: tuple[int, int] = (0, 0)  # order key (time ms, tie) of the event that set `open`
    last: tuple[int, int] = (0, 0)  # order key of the event that set `close`
    received_ns: int = 0  # newest event folded in (its producer receipt time), 0 for history

    def fold(
        self,
        first: tuple[int, int] | None,
        last: tuple[int, int] | None,
        o: float,
        h: float | None,
        lo: float | None,
        c: float,
        v: float,
        received_ns: int,
    ) -> None:
        """first/last None: the event may not move open/close; h/lo None: nor high/low."""
        if first is not None and first < self.first:
            self.first, self.open = first, o
        if last is not None and last >= self.last:
            self.last, self.close = last, c
        if h is not None and h > self.high:
            self.high = h
        if lo is not None and lo < self.low:
            self.low = lo
        self.volume += v
        if received_ns > self.received_ns:
            self.received_ns = received_ns

    def as_json(self) -> dict[str, Any]:
        return {
            "time": self.time,
            "open": self.open,
            "high": self.high,
            "low": self.low,
            "close": self.close,
            "volume": self.volume,
        }


@dataclass(slots=True)
class _Source:
    ev: str  # the event kind the symbol's bars are counted from
    parts: dict[int, tuple[int, float]] = field(default_factory=dict)  # start_ms -> (receipt, volume)


class BarBook:
    """Every symbol's bars at every interval, the latest prices, and which bars changed.

    Not thread-safe: one owner (the console's event loop) applies events and reads it.
    """

    def __init__(self, window: int = WINDOW, rules: TradeRules | None = None):
        self.window = window
        self.rules = rules or TradeRules()
        # symbol -> one {bucket: Bar} per interval, in INTERVALS order
        self._series: dict[str, tuple[dict[int, Bar], ...]] = {}
        self._since: dict[str, int] = {}  # symbol -> first second built live; history fills before it
        self._source: dict[str, _Source] = {}  # symbol -> the source its live bars are counted from
        self._dirty: dict[tuple[str, int], int] = {}  # (symbol, source second) -> newest received_ns
        self.prices: dict[str, tuple[float, int]] = {}  # symbol -> (price, event ms)
        self.events = 0  # events applied
        self.ignored = 0  # events that carry no bar or price (quotes, unknown kinds, bad values)

    def source(self, symbol: str) -> str | None:
        """The event kind the symbol's live bars are counted from (None: no bar source seen)."""
        known = self._source.get(symbol)
        return None if known is None else known.ev

    def apply(self, event: Mapping[str, Any]) -> bool:
        """Fold one FILTERED_TOPIC event in; False when it carries no bar or price."""
        self.events += 1
        ev = event.get("ev")
        try:
            symbol = str(event["symbol"])
            received_ns = int(event.get("received_ns") or 0)
            if ev in AGGREGATE_EVS:
                start_ms = int(event["start_ms"])
                o, h = float(event["open"]), float(event["high"])
                lo, c = float(event["low"]), float(event["close"])
                v = float(event.get("volume") or 0.0)
                self._price(symbol, c, int(event.get("end_ms") or start_ms))
                self._aggregate(symbol, ev, start_ms, o, h, lo, c, v, received_ns)
                return True
            if ev in TRADE_EVS:
                ts_ms, price = int(event["ts_ms"]), float(event["price"])
                size = float(event.get("size") or 0.0)
                self._price(symbol, price, ts_ms)
                self._trade(symbol, ev, ts_ms, price, size, event, received_ns)
                return True
            if ev in QUOTE_BAR_EVS:
                ts_ms = int(event["ts_ms"])
                bid, ask = float(event["bid_price"]), float(event["ask_price"])
                if bid > 0 and ask > 0 and self._counts(symbol, ev, ts_ms):
                    mid = (bid + ask) / 2
                    key = (ts_ms, int(event.get("sequence") or 0))
                    self._fold(symbol, ts_ms, key, key, mid, mid, mid, mid, 0.0, received_ns)
                    return True
        except (KeyError, TypeError, ValueError):
            pass
        self.ignored += 1
        return False

    def _counts(self, symbol: str, ev: str, at_ms: int) -> bool:
        """Whether an event of kind `ev` builds this symbol's bars; a finer source replaces a coarser."""
        known = self._source.get(symbol)
        if known is not None and known.ev == ev:
            return True
        if known is not None and (RANK[known.ev], known.ev) < (RANK[ev], ev):
            return False
        self._source[symbol] = _Source(ev)
        if known is not None:  # a finer source: its buckets from this event on count it alone
            self._drop_from(symbol, at_ms // 1000)
        return True

    def _drop_from(self, symbol: str, second: int) -> None:
        for bars, seconds in zip(self._intervals(symbol), _SECONDS, strict=True):
            first = second - second % seconds
            for bucket in [b for b in bars if b >= first]:
                del bars[bucket]
        self._since[symbol] = second

    def _aggregate(
        self, symbol: str, ev: str, start_ms: int, o: float, h: float, lo: float, c: float, v: float, rx: int
    ) -> None:
        if not self._counts(symbol, ev, start_ms):
            return
        parts = self._source[symbol].parts
        earlier = parts.get(start_ms)
        if earlier is not None and rx <= earlier[0]:  # an older receipt than one folded in: high/low only
            self._fold(symbol, start_ms, None, None, o, h, lo, c, 0.0, rx)
            return
        parts[start_ms] = (rx, v)
        if len(parts) > self.window + _SLACK:
            for start in sorted(parts)[: len(parts) - self.window]:
                del parts[start]
        added = v - (earlier[1] if earlier is not None else 0.0)
        self._fold(symbol, start_ms, (start_ms, -rx), (start_ms, rx), o, h, lo, c, added, rx)

    def _trade(
        self, symbol: str, ev: str, ts_ms: int, price: float, size: float, event: Mapping[str, Any], rx: int
    ) -> None:
        if not self._counts(symbol, ev, ts_ms):
            return
        moves_oc = moves_hl = moves_vol = True
        conditions = event.get("conditions") or ()
        if ev == "T" and conditions:
            rules = self.rules
            codes = {int(code) for code in conditions}
            moves_oc = rules.no_open_close.isdisjoint(codes)
            moves_hl = rules.no_high_low.isdisjoint(codes)
            moves_vol = rules.no_volume.isdisjoint(codes)
        key = (ts_ms, int(event.get("sequence") or 0))
        self._fold(
            symbol,
            ts_ms,
            key if moves_oc else None,
            key if moves_oc else None,
            price,
            price if moves_hl else None,
            price if moves_hl else None,
            price,
            size if moves_vol else 0.0,
            rx,
        )

    def _price(self, symbol: str, price: float, at_ms: int) -> None:
        known = self.prices.get(symbol)
        if known is None or at_ms >= known[1]:
            self.prices[symbol] = (price, at_ms)

    def _intervals(self, symbol: str) -> tuple[dict[int, Bar], ...]:
        series = self._series.get(symbol)
        if series is None:
            series = self._series[symbol] = tuple({} for _ in INTERVALS)
        return series

    def _fold(
        self,
        symbol: str,
        at_ms: int,
        first: tuple[int, int] | None,
        last: tuple[int, int] | None,
        o: float,
        h: float | None,
        lo: float | None,
        c: float,
        v: float,
        received_ns: int,
    ) -> None:
        second = at_ms // 1000
        series = self._series.get(symbol) or self._intervals(symbol)
        if symbol not in self._since:
            self._since[symbol] = second
        for bars, seconds in zip(series, _SECONDS, strict=True):
            bucket = second - second % seconds
            bar = bars.get(bucket)
            if bar is not None:
                bar.fold(first, last, o, h, lo, c, v, received_ns)
            else:  # hidden (high < low) until an event that may move high/low arrives
                bars[bucket] = Bar(
                    bucket,
                    o,
                    _HIDDEN_HIGH if h is None else h,
                    _HIDDEN_LOW if lo is None else lo,
                    c,
                    v,
                    first or _NEVER,
                    last or _NONE,
                    received_ns,
                )
                if len(bars) > self.window + _SLACK:
                    self._trim(bars)
        key = (symbol, second)
        if received_ns > self._dirty.get(key, -1):
            self._dirty[key] = received_ns

    def _trim(self, bars: dict[int, Bar]) -> None:
        """Keep the newest `window` buckets of a series."""
        for bucket in sorted(bars)[: len(bars) - self.window]:
            del bars[bucket]

    def live_since(self, symbol: str, interval: str) -> int | None:
        """The first bucket of this series built from live events (None: none yet)."""
        second = self._since.get(symbol)
        seconds = interval_seconds(interval)
        return None if second is None else second - second % seconds

    def _series_of(self, symbol: str, interval: str) -> dict[int, Bar]:
        series = self._series.get(symbol)
        return {} if series is None else series[_INDEX[interval]]

    def seed(self, symbol: str, interval: str, history: Iterable[Bar]) -> int:
        """Add history bars for buckets before the first live one; returns how many were added."""
        bars = self._intervals(symbol)[_INDEX[interval]]
        since = self.live_since(symbol, interval)
        added = 0
        for bar in history:
            if (since is None or bar.time < since) and bar.time not in bars:
                bars[bar.time] = bar
                added += 1
        return added

    def bars(self, symbol: str, interval: str, start: int | None = None, end: int | None = None) -> list[Bar]:
        """The bars of one series in [start, end), oldest first."""
        series = self._series_of(symbol, interval)
        return [
            series[t]
            for t in sorted(series)
            if (start is None or t >= start) and (end is None or t < end) and series[t].high >= series[t].low
        ]

    def bar(self, symbol: str, interval: str, bucket: int) -> Bar | None:
        bar = self._series_of(symbol, interval).get(bucket)
        return bar if bar is not None and bar.high >= bar.low else None

    def take_dirty(self) -> dict[tuple[str, str, int], int]:
        """The bars changed since the last call: (symbol, interval, bucket) -> newest received_ns."""
        dirty, self._dirty = self._dirty, {}
        out: dict[tuple[str, str, int], int] = {}
        for (symbol, second), received_ns in dirty.items():
            for name, seconds in _INTERVAL_ITEMS:
                key = (symbol, name, second - second % seconds)
                if received_ns > out.get(key, -1):
                    out[key] = received_ns
        return out

    def symbols(self) -> list[str]:
        return sorted(set(self._series) | set(self.prices))


def gaps(bars: list[Bar], seconds: int) -> list[tuple[int, int]]:
    """Runs of empty buckets between bars: (first empty bucket, first bucket after the run)."""
    out = []
    for before, after in itertools.pairwise(bars):
        if after.time - before.time > seconds:
            out.append((before.time + seconds, after.time))
    return out
