"""Trades and quotes for the REST API, kept from the very seconds the websocket sent as `T` and `Q`.

The feed hands each finished second (`SecondData`) to `TickHistory.add`; `/v3/trades` and
`/v3/quotes` answer from it, so a REST trade is the websocket trade with the same symbol, sequence
number, exchange, id, price and size, its time in nanoseconds (the websocket's milliseconds x 10^6).
Only the last `seconds` seconds are kept (about 90 bytes per event).
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Iterator
from itertools import chain
from typing import Any

import numpy as np

from tickpipe_simulator.market import SecondData

NS_PER_MS = 1_000_000
SWEEP = 14  # the condition the simulator's flagged trades carry (Intermarket Sweep)
QUOTE_CONDITION = 1  # every simulated quote: Regular, Two-Sided Open


class TickHistory:
    def __init__(self, tickers: list[str], scale: list[int], tapes: list[int], seconds: int):
        self.index = {ticker: i for i, ticker in enumerate(tickers)}
        self.scale = scale
        self.tapes = tapes
        self._seconds: deque[SecondData] = deque(maxlen=max(seconds, 1))
        self._starts: deque[int] = deque(maxlen=max(seconds, 1))

    def add(self, data: SecondData) -> None:
        self._seconds.append(data)
        self._starts.append(data.second_ms)

    def trades(
        self, ticker: str, lo_ns: int, hi_ns: int, after: tuple[int, int] | None = None
    ) -> Iterator[dict[str, Any]]:
        """REST trades of `ticker` with lo_ns <= sip_timestamp <= hi_ns, oldest first (lazily);
        with `after` (sip_timestamp, sequence_number), only the rows after that key."""
        return chain.from_iterable(self._rows(ticker, lo_ns, hi_ns, True, after))

    def quotes(
        self, ticker: str, lo_ns: int, hi_ns: int, after: tuple[int, int] | None = None
    ) -> Iterator[dict[str, Any]]:
        """REST quotes of `ticker` with lo_ns <= sip_timestamp <= hi_ns, oldest first (lazily);
        with `after` (sip_timestamp, sequence_number), only the rows after that key."""
        return chain.from_iterable(self._rows(ticker, lo_ns, hi_ns, False, after))

    def _rows(
        self, ticker: str, lo_ns: int, hi_ns: int, trades: bool, after: tuple[int, int] | None
    ) -> Iterator[list[dict[str, Any]]]:
        """The rows second by second (one list each: rows are built a second at a time in bulk)."""
        sym = self.index.get(ticker)
        if sym is None or hi_ns < lo_ns:
            return
        lo_ms, hi_ms = -(-lo_ns // NS_PER_MS), hi_ns // NS_PER_MS  # whole ms inside [lo_ns, hi_ns]
        if after is not None:
            lo_ms = max(lo_ms, after[0] // NS_PER_MS)
        starts = list(self._starts)
        first = max(bisect.bisect_right(starts, lo_ms) - 1, 0)
        last = bisect.bisect_right(starts, hi_ms)
        scale, tape = self.scale[sym], self.tapes[sym]
        for data in list(self._seconds)[first:last]:
            mask = (data.sym == sym) & (data.is_trade if trades else ~data.is_trade)
            mask &= (data.t >= lo_ms) & (data.t <= hi_ms)
            if after is not None:
                t_ns = data.t * NS_PER_MS
                mask &= (t_ns > after[0]) | ((t_ns == after[0]) & (data.sequence > after[1]))
            picked = np.flatnonzero(mask)
            if len(picked):
                yield (_trades if trades else _quotes)(data, picked, scale, tape)


def _trades(data: SecondData, picked: Any, scale: int, tape: int) -> list[dict[str, Any]]:
    t = (data.t[picked] * NS_PER_MS).tolist()
    rows = [
        {
            "exchange": exchange,
            "id": trade_id,
            "participant_timestamp": ts,
            "price": price,
            "sequence_number": sequence,
            "sip_timestamp": ts,
            "size": size,
            "tape": tape,
        }
        for ts, price, size, exchange, trade_id, sequence in zip(
            t,
            (data.price[picked] / scale).tolist(),
            data.size[picked].tolist(),
            data.exchange[picked].tolist(),
            data.trade_id[picked].astype(str).tolist(),
            data.sequence[picked].tolist(),
            strict=True,
        )
    ]
    for i in np.flatnonzero(data.flag[picked]).tolist():
        rows[i]["conditions"] = [SWEEP]
    return rows


def _quotes(data: SecondData, picked: Any, scale: int, tape: int) -> list[dict[str, Any]]:
    t = (data.t[picked] * NS_PER_MS).tolist()
    return [
        {
            "ask_exchange": ask_x,
            "ask_price": ask,
            "ask_size": ask_size,
            "bid_exchange": bid_x,
            "bid_price": bid,
            "bid_size": bid_size,
            "conditions": [QUOTE_CONDITION],
            "participant_timestamp": ts,
            "sequence_number": sequence,
            "sip_timestamp": ts,
            "tape": tape,
        }
        for ts, bid, ask, bid_size, ask_size, bid_x, ask_x, sequence in zip(
            t,
            (data.price[picked] / scale).tolist(),
            (data.ask[picked] / scale).tolist(),
            data.size[picked].tolist(),
            data.ask_size[picked].tolist(),
            data.exchange[picked].tolist(),
            data.ask_exchange[picked].tolist(),
            data.sequence[picked].tolist(),
            strict=True,
        )
    ]
