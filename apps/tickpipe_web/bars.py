"""Live OHLCV bars in memory, built from FILTERED_TOPIC events, seeded from ClickHouse history.

The same source as the ClickHouse rollups (clickhouse/migrations/002_bars.sql): the finest aggregate
of each market (`A` stock second, `XA` crypto minute, `CA` forex minute); `AM` is skipped because it
repeats the `A` seconds of its minute. Open and close follow the source bars' start times, so a late
event does not move them; volumes add up, as in the rollups, so live bars and history agree.

A bucket with no event has no bar: the book never invents a candle, and `gaps()` names the empty
buckets between the first and the last bar of a series.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

INTERVALS: dict[str, int] = {"1s": 1, "1m": 60, "5m": 300, "1h": 3600}  # name -> seconds
BAR_EVS = frozenset({"A", "XA", "CA"})
PRICE_EVS = BAR_EVS | {"AM", "T", "XT"}
WINDOW = 500  # buckets kept per series (the chart's window)
_SLACK = 50  # a series is trimmed back to WINDOW when it grows this far past it
_INTERVAL_ITEMS = tuple(INTERVALS.items())
_SECONDS = tuple(INTERVALS.values())
_INDEX = {name: i for i, name in enumerate(INTERVALS)}


class BadInterval(ValueError):
    """Not one of INTERVALS."""


def interval_seconds(name: str) -> int:
    try:
        return INTERVALS[name]
    except KeyError:
        raise BadInterval(f"interval must be one of {', '.join(INTERVALS)}, not {name!r}") from None


@dataclass(slots=True)
class Bar:
    time: int  # bucket start, Unix seconds UTC
    open: float
    high: float
    low: float
    close: float
    volume: float
    first_ms: int = 0  # start time of the source bar that set `open`
    last_ms: int = 0  # start time of the source bar that set `close`
    received_ns: int = 0  # newest event folded in (its producer receipt time), 0 for history

    def fold(
        self, start_ms: int, o: float, h: float, lo: float, c: float, v: float, received_ns: int
    ) -> None:
        if start_ms < self.first_ms:
            self.first_ms, self.open = start_ms, o
        if start_ms >= self.last_ms:
            self.last_ms, self.close = start_ms, c
        if h > self.high:
            self.high = h
        if lo < self.low:
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


class BarBook:
    """Every symbol's bars at every interval, the latest prices, and which bars changed.

    Not thread-safe: one owner (the console's event loop) applies events and reads it.
    """

    def __init__(self, window: int = WINDOW):
        self.window = window
        # symbol -> one {bucket: Bar} per interval, in INTERVALS order
        self._series: dict[str, tuple[dict[int, Bar], ...]] = {}
        self._since: dict[str, int] = {}  # symbol -> first second built live; history fills before it
        self._dirty: dict[tuple[str, int], int] = {}  # (symbol, source second) -> newest received_ns
        self.prices: dict[str, tuple[float, int]] = {}  # symbol -> (price, event ms)
        self.events = 0  # events applied
        self.ignored = 0  # events that carry no bar or price (quotes, unknown kinds, bad values)

    def apply(self, event: Mapping[str, Any]) -> bool:
        """Fold one FILTERED_TOPIC event in; False when it carries no bar or price."""
        self.events += 1
        ev = event.get("ev")
        try:
            symbol = str(event["symbol"])
            if ev in BAR_EVS:
                start_ms = int(event["start_ms"])
                o, h = float(event["open"]), float(event["high"])
                lo, c = float(event["low"]), float(event["close"])
                v = float(event.get("volume") or 0.0)
                self._fold(symbol, start_ms, o, h, lo, c, v, int(event.get("received_ns") or 0))
                self._price(symbol, c, int(event.get("end_ms") or start_ms))
                return True
            if ev == "AM":
                self._price(symbol, float(event["close"]), int(event.get("end_ms") or event["start_ms"]))
                return True
            if ev in PRICE_EVS:
                self._price(symbol, float(event["price"]), int(event["ts_ms"]))
                return True
        except (KeyError, TypeError, ValueError):
            pass
        self.ignored += 1
        return False

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
        self, symbol: str, start_ms: int, o: float, h: float, lo: float, c: float, v: float, received_ns: int
    ) -> None:
        second = start_ms // 1000
        series = self._series.get(symbol) or self._intervals(symbol)
        if symbol not in self._since:
            self._since[symbol] = second
        for bars, seconds in zip(series, _SECONDS, strict=True):
            bucket = second - second % seconds
            bar = bars.get(bucket)
            if bar is None:
                bars[bucket] = Bar(bucket, o, h, lo, c, v, start_ms, start_ms, received_ns)
                if len(bars) > self.window + _SLACK:
                    self._trim(bars)
            else:
                bar.fold(start_ms, o, h, lo, c, v, received_ns)
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
            series[t] for t in sorted(series) if (start is None or t >= start) and (end is None or t < end)
        ]

    def bar(self, symbol: str, interval: str, bucket: int) -> Bar | None:
        return self._series_of(symbol, interval).get(bucket)

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
