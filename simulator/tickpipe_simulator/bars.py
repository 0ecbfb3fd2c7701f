"""Bars for the REST API, folded from the per-second aggregates the websocket sent as `A`.

The server keeps the second aggregates of the last `history_seconds` (the market's memory) and
answers `/v2/aggs/...` from them, so a REST minute bar equals the `AM` event of that minute and a
REST second bar equals the `A` event. Buckets are aligned to multiples of their span in UTC.
"""

from __future__ import annotations

import bisect
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from tickpipe_simulator.events import vwap_of
from tickpipe_simulator.market import Aggregates

SPAN_MS = {
    "second": 1000,
    "minute": 60_000,
    "hour": 3_600_000,
    "day": 86_400_000,
    "week": 7 * 86_400_000,
}


@dataclass
class _Bucket:
    t: int
    o: int
    h: int
    low: int
    c: int
    v: int
    notional: int
    n: int


class BarHistory:
    def __init__(self, tickers: list[str], scale: list[int], history_seconds: int):
        self.index = {ticker: i for i, ticker in enumerate(tickers)}
        self.tickers = tickers
        self.scale = scale
        self._seconds: deque[Aggregates] = deque(maxlen=max(history_seconds, 1))
        self._starts: deque[int] = deque(maxlen=max(history_seconds, 1))

    def add(self, agg: Aggregates) -> None:
        self._seconds.append(agg)
        self._starts.append(agg.start_ms)

    @property
    def span(self) -> tuple[int, int] | None:
        """[first, last] second start held, or None before the first second."""
        return (self._starts[0], self._starts[-1]) if self._starts else None

    def bars(self, ticker: str, span_ms: int, from_ms: int, to_ms: int) -> list[dict[str, Any]]:
        """Bars of `span_ms` for `ticker` over seconds starting in [from_ms, to_ms], oldest first."""
        sym = self.index.get(ticker)
        if sym is None:
            return []
        buckets: dict[int, _Bucket] = {}
        for agg in self._range(from_ms, to_ms):
            pos = int(np.searchsorted(agg.sym, sym))
            if pos < len(agg.sym) and agg.sym[pos] == sym:
                _fold(buckets, agg, pos, agg.start_ms - agg.start_ms % span_ms)
        return [_bar(bucket, self.scale[sym]) for bucket in buckets.values()]

    def grouped(self, day_start_ms: int) -> list[dict[str, Any]]:
        """One daily bar per symbol that traded in the UTC day starting at `day_start_ms`."""
        per_symbol: dict[int, dict[int, _Bucket]] = {}
        for agg in self._range(day_start_ms, day_start_ms + SPAN_MS["day"] - 1):
            for pos, sym in enumerate(agg.sym.tolist()):
                _fold(per_symbol.setdefault(sym, {}), agg, pos, day_start_ms)
        return [
            {"T": self.tickers[sym], **_bar(buckets[day_start_ms], self.scale[sym])}
            for sym, buckets in sorted(per_symbol.items())
        ]

    def _range(self, from_ms: int, to_ms: int) -> list[Aggregates]:
        starts = list(self._starts)
        lo = bisect.bisect_left(starts, from_ms)
        hi = bisect.bisect_right(starts, to_ms)
        seconds = list(self._seconds)
        return seconds[lo:hi]


def _fold(buckets: dict[int, _Bucket], agg: Aggregates, pos: int, t: int) -> None:
    o, h, low, c = int(agg.open[pos]), int(agg.high[pos]), int(agg.low[pos]), int(agg.close[pos])
    v, notional, n = int(agg.volume[pos]), int(agg.notional[pos]), int(agg.trades[pos])
    bucket = buckets.get(t)
    if bucket is None:
        buckets[t] = _Bucket(t, o, h, low, c, v, notional, n)
        return
    bucket.h = max(bucket.h, h)
    bucket.low = min(bucket.low, low)
    bucket.c = c
    bucket.v += v
    bucket.notional += notional
    bucket.n += n


def _bar(bucket: _Bucket, scale: int) -> dict[str, Any]:
    return {
        "v": bucket.v,
        "vw": vwap_of(bucket.notional, bucket.v, scale),
        "o": bucket.o / scale,
        "c": bucket.c / scale,
        "h": bucket.h / scale,
        "l": bucket.low / scale,
        "t": bucket.t,
        "n": bucket.n,
    }
