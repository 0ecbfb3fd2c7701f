"""The simulated stock market: a deterministic, coherent stream of trades, quotes and aggregates.

A `Market` steps one virtual second at a time. Everything in second k comes from a random
generator seeded with (seed, k) plus the state carried over from second k-1 (each symbol's mid
price, day volume and notional, the open minute), so a session is a pure function of its
`MarketSpec`: the server and `tickpipe_simulator.truth` produce the same events.

Per second, with numpy (no per-event Python work here):
- each symbol draws Poisson counts of trades and quotes, its share of `rate` falling with rank;
- the mid price follows a geometric random walk across those events (2 % daily volatility);
- quotes straddle the mid with a spread of about 0.5-4.5 basis points, at least one tick;
- trades print at or inside the quote, on whole ticks (cents, or 1/100 cent below $1);
- the second's aggregate per traded symbol is computed from exactly those trades, and the
  minute aggregate from the seconds of that minute.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from tickpipe_simulator.spec import MarketSpec

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

SECOND_VOL = 0.02 / math.sqrt(6.5 * 3600)  # 2 % daily volatility over a 6.5 h session
TICKS_PER_SECOND = 10  # a second's events leave in 10 slices of 100 ms
TRADE_NOTIONAL = 2_000.0  # crypto trades are worth about $2,000 (lognormal), quotes about $5,000


@dataclass
class Aggregates:
    """OHLCV of the symbols (indexes `sym`) that traded in one interval, with day context."""

    start_ms: int
    end_ms: int
    sym: IntArray
    open: IntArray  # prices in ticks (divide by the symbol's scale)
    high: IntArray
    low: IntArray
    close: IntArray
    volume: IntArray
    notional: IntArray  # sum of price ticks * size
    trades: IntArray
    day_volume: IntArray
    day_open: IntArray
    day_notional: FloatArray


@dataclass
class SecondData:
    """One simulated second: its trades and quotes in emission order, and its aggregates."""

    index: int
    second_ms: int
    is_trade: npt.NDArray[np.bool_]
    sym: IntArray
    t: IntArray
    price: IntArray  # trade price (ticks); for quotes the bid
    ask: IntArray  # quotes only
    size: IntArray  # trade size; for quotes the bid size
    ask_size: IntArray
    exchange: IntArray  # trade exchange; for quotes the bid exchange
    ask_exchange: IntArray
    trade_id: IntArray
    sequence: IntArray
    flag: npt.NDArray[np.bool_]  # stocks: the trade carries condition 14 (sweep); crypto: a buy
    slices: list[int]  # start offsets of the TICKS_PER_SECOND slices, plus the end
    second_agg: Aggregates
    minute_agg: Aggregates | None = None  # set when this second closes a clock minute


@dataclass
class _DayState:
    mid: FloatArray
    day_volume: IntArray
    day_notional: FloatArray
    day_open: IntArray
    trade_ids: IntArray
    sequences: IntArray
    minute: dict[str, IntArray] = field(default_factory=dict)
    minute_start_ms: int = 0


class Market:
    """Steps through a session's seconds in order: `next_second()` until it returns None."""

    def __init__(self, spec: MarketSpec):
        self.spec = spec
        count = len(spec.symbols)
        self.tickers = [info.ticker for info in spec.symbols]
        self.kind = kind = spec.kind
        self.tapes = np.array([info.tape for info in spec.symbols], dtype=np.int64)
        self.scale = np.array([kind.price_scale(info.price) for info in spec.symbols], dtype=np.int64)
        self.size_scale = kind.size_scale
        self.exchanges = np.array(kind.exchanges, dtype=np.int64)
        ranks = np.arange(count, dtype=np.float64)
        weights = 1.0 / (ranks + 1.0) ** 0.8
        self.weights = weights / weights.sum()
        self.spread_bps = 0.5 + 4.0 * ranks / max(count - 1, 1)
        zeros = np.zeros(count, dtype=np.int64)
        self._state = _DayState(
            mid=np.array([info.price for info in spec.symbols], dtype=np.float64),
            day_volume=zeros.copy(),
            day_notional=np.zeros(count, dtype=np.float64),
            day_open=zeros.copy(),
            trade_ids=zeros.copy(),
            sequences=zeros.copy(),
        )
        self._reset_minute(spec.start_ms - spec.start_ms % 60_000)
        self.index = 0

    def next_second(self) -> SecondData | None:
        spec = self.spec
        if spec.session_seconds and self.index >= spec.session_seconds:
            return None
        data = self._generate(self.index)
        self.index += 1
        return data

    # --- generation ------------------------------------------------------------------------------

    def _generate(self, k: int) -> SecondData:
        spec, state = self.spec, self._state
        rng = np.random.default_rng([spec.seed, k])
        second_ms = spec.start_ms + 1000 * k
        count = len(self.tickers)

        lam = spec.rate * spec.level(k) * self.weights
        share = spec.trade_share if self.kind.has_trades else 0.0
        n_trades = rng.poisson(lam * share).astype(np.int64)
        n_quotes = rng.poisson(lam * (1.0 - share)).astype(np.int64)
        per_sym = n_trades + n_quotes
        total = int(per_sym.sum())
        starts = np.cumsum(per_sym) - per_sym

        # Events grouped by symbol; within a group the first n_trades are the trades, and random
        # millisecond offsets (sorted within the group) interleave them with the quotes.
        sym = np.repeat(np.arange(count, dtype=np.int64), per_sym)
        rank = np.arange(total, dtype=np.int64) - np.repeat(starts, per_sym)
        is_trade = rank < np.repeat(n_trades, per_sym)
        offset = rng.integers(0, 1000, total, dtype=np.int64)
        order = np.lexsort((offset, sym))
        is_trade, offset = is_trade[order], offset[order]

        # Geometric random walk of the mid across the symbol's events in time order.
        sigma = SECOND_VOL / np.sqrt(np.maximum(per_sym, 1))
        steps = rng.standard_normal(total) * sigma[sym]
        walked = np.cumsum(steps)
        before = np.concatenate(([0.0], walked))[starts]
        log_mid = np.log(state.mid)[sym] + walked - np.repeat(before, per_sym)
        mid = np.exp(log_mid)
        traded_any = per_sym > 0
        ends = starts + per_sym
        state.mid[traded_any] = mid[ends[traded_any] - 1]

        scale = self.scale[sym]
        spread = np.maximum(1, np.rint(mid * scale * self.spread_bps[sym] / 1e4)).astype(np.int64)
        bid = np.floor(mid * scale - spread / 2.0).astype(np.int64)
        bid = np.maximum(bid, 1)
        ask = bid + spread
        inside = rng.integers(0, spread + 1, dtype=np.int64)
        price = np.where(is_trade, bid + inside, bid)
        trade_size, bid_size, ask_size = self._sizes(rng, mid, total)
        size = np.where(is_trade, trade_size, bid_size)
        exchange = self.exchanges[rng.integers(0, len(self.exchanges), total)]
        ask_exchange = self.exchanges[rng.integers(0, len(self.exchanges), total)]
        flag = rng.random(total) < (0.1 if self.kind.name == "stocks" else 0.5)

        # Per-symbol counters: a sequence number over all events, a trade id over trades.
        sequence = state.sequences[sym] + rank + 1
        state.sequences += per_sym
        trade_rank = np.cumsum(is_trade) - np.repeat(
            np.concatenate(([0], np.cumsum(is_trade)))[starts], per_sym
        )
        trade_id = state.trade_ids[sym] + trade_rank
        state.trade_ids += n_trades

        if self.kind.has_trades:
            second_agg = self._aggregate_second(second_ms, sym, is_trade, price, size, n_trades)
        else:  # forex: bars of the quotes' bids, volume = how many quotes
            ones = np.ones(total, dtype=np.int64)
            second_agg = self._aggregate_second(second_ms, sym, ~is_trade, price, ones, n_quotes)
        minute_agg = self._roll_minute(second_agg, second_ms)

        # Emission order: by millisecond, then symbol, keeping each symbol's own order.
        emit = np.lexsort((sym, offset))
        t_sorted = offset[emit]
        slices = [int(x) for x in np.searchsorted(t_sorted, np.arange(0, 1001, 1000 // TICKS_PER_SECOND))]
        slices[-1] = total
        return SecondData(
            index=k,
            second_ms=second_ms,
            is_trade=is_trade[emit],
            sym=sym[emit],
            t=second_ms + t_sorted,
            price=price[emit],
            ask=ask[emit],
            size=size[emit],
            ask_size=ask_size[emit],
            exchange=exchange[emit],
            ask_exchange=ask_exchange[emit],
            trade_id=trade_id[emit],
            sequence=sequence[emit],
            flag=(flag & is_trade)[emit],
            slices=slices,
            second_agg=second_agg,
            minute_agg=minute_agg,
        )

    def _sizes(self, rng: np.random.Generator, mid: FloatArray, total: int) -> tuple[IntArray, ...]:
        """Trade, bid and ask sizes in units of 1/size_scale."""
        if self.kind.name == "crypto":
            units = self.size_scale / mid
            trade = np.rint(rng.lognormal(np.log(TRADE_NOTIONAL * units), 1.0))
            bid = np.rint(rng.lognormal(np.log(2.5 * TRADE_NOTIONAL * units), 1.0))
            ask = np.rint(rng.lognormal(np.log(2.5 * TRADE_NOTIONAL * units), 1.0))
            return tuple(np.maximum(1, values).astype(np.int64) for values in (trade, bid, ask))
        trade = np.maximum(1, np.rint(rng.lognormal(4.0, 1.0, total))).astype(np.int64)
        return (
            trade,
            100 * rng.integers(1, 30, total, dtype=np.int64),
            100 * rng.integers(1, 30, total, dtype=np.int64),
        )

    def _aggregate_second(
        self,
        second_ms: int,
        sym: IntArray,
        is_print: npt.NDArray[np.bool_],
        price: IntArray,
        size: IntArray,
        n_trades: IntArray,
    ) -> Aggregates:
        """OHLCV per symbol from exactly this second's prints (grouped by symbol, in time)."""
        state = self._state
        t_price, t_size = price[is_print], size[is_print]
        traded = np.flatnonzero(n_trades)
        counts = n_trades[traded]
        first = np.cumsum(counts) - counts
        if len(traded):
            high = np.maximum.reduceat(t_price, first)
            low = np.minimum.reduceat(t_price, first)
            volume = np.add.reduceat(t_size, first)
            notional = np.add.reduceat(t_price * t_size, first)
            opens, closes = t_price[first], t_price[first + counts - 1]
        else:
            high = low = volume = notional = opens = closes = np.zeros(0, dtype=np.int64)
        fresh = traded[state.day_volume[traded] == 0]
        state.day_open[fresh] = opens[np.isin(traded, fresh)]
        state.day_volume[traded] += volume
        state.day_notional[traded] += notional
        return Aggregates(
            start_ms=second_ms,
            end_ms=second_ms + 1000,
            sym=traded,
            open=opens,
            high=high,
            low=low,
            close=closes,
            volume=volume,
            notional=notional,
            trades=counts,
            day_volume=state.day_volume[traded].copy(),
            day_open=state.day_open[traded].copy(),
            day_notional=state.day_notional[traded].copy(),
        )

    def _reset_minute(self, minute_start_ms: int) -> None:
        count = len(self.tickers)
        state = self._state
        state.minute = {
            name: np.zeros(count, dtype=np.int64)
            for name in ("open", "high", "low", "close", "volume", "notional", "trades")
        }
        state.minute["low"][:] = np.iinfo(np.int64).max
        state.minute_start_ms = minute_start_ms

    def _roll_minute(self, agg: Aggregates, second_ms: int) -> Aggregates | None:
        """Fold this second into the open minute; return the minute's aggregate when it closes."""
        state, minute, idx = self._state, self._state.minute, agg.sym
        new = minute["trades"][idx] == 0
        minute["open"][idx[new]] = agg.open[new]
        minute["high"][idx] = np.maximum(minute["high"][idx], agg.high)
        minute["low"][idx] = np.minimum(minute["low"][idx], agg.low)
        minute["close"][idx] = agg.close
        minute["volume"][idx] += agg.volume
        minute["notional"][idx] += agg.notional
        minute["trades"][idx] += agg.trades
        end_ms = second_ms + 1000
        if end_ms % 60_000:
            return None
        traded = np.flatnonzero(minute["trades"])
        closed = Aggregates(
            start_ms=state.minute_start_ms,
            end_ms=end_ms,
            sym=traded,
            **{name: values[traded] for name, values in minute.items()},
            day_volume=state.day_volume[traded].copy(),
            day_open=state.day_open[traded].copy(),
            day_notional=state.day_notional[traded].copy(),
        )
        self._reset_minute(end_ms)
        return closed
