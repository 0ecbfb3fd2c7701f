"""Polygon stock events (`T`, `Q`, `A`, `AM`) from a simulated second, and the ticks they leave in.

(Crypto and forex events are built in crypto_forex.py; `second_ticks` picks by market.)

A `Tick` is what the server sends at one moment: a run of events in order, plus what the
server needs to filter and count them without looking inside each dict again (`ev`, symbol and
event time per event). The last tick of a second carries that second's `A` events and, when the
second closes a clock minute, the minute's `AM` events, after its trades and quotes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from tickpipe_simulator.kinds import Event
from tickpipe_simulator.market import TICKS_PER_SECOND, Aggregates, Market, SecondData

MAX_TICK_EVENTS = 5000  # a multiple of the default frame size (1000), so frames stay full
AggregateBuilder = Callable[[Market, str, Aggregates], list[Event]]


@dataclass
class Tick:
    """Events sent together; `offset_s` is when, in virtual seconds after the session start."""

    offset_s: float
    events: list[Event]
    evs: list[str]
    syms: list[str]
    times: list[int]
    second_ms: int | None = None  # the virtual second (None in a replay)
    opens_second: bool = True  # subscription changes take effect at ticks that open a second
    closes_second: bool = True


def event_symbol(event: Event) -> str:
    """The symbol an event is about: `sym` (stocks), `pair` (crypto, forex CA) or `p` (forex C)."""
    value = event.get("sym", event.get("pair"))
    if value is None and event.get("ev") == "C":
        value = event.get("p")
    return str(value or "")


def event_time(event: Event) -> int:
    """The time an event is about: `t` for trades and quotes, the start `s` for aggregates."""
    value = event.get("t", event.get("s", 0))
    return int(value) if isinstance(value, int | float) else 0


def second_ticks(market: Market, data: SecondData) -> Iterator[Tick]:
    """The TICKS_PER_SECOND ticks of one second, aggregates at the end of the last one.

    A generator: each tick's dicts are built when it is asked for, so a busy second costs the
    server ten small pauses instead of one long one.
    """
    from tickpipe_simulator import crypto_forex

    name = market.kind.name
    trade_ev, quote_ev = {"stocks": ("T", "Q"), "crypto": ("XT", "XQ"), "forex": ("", "C")}[name]
    build = {
        "stocks": _trade_and_quote_events,
        "crypto": crypto_forex.crypto_events,
        "forex": crypto_forex.forex_events,
    }[name]
    aggregates: Sequence[tuple[str, Aggregates | None, AggregateBuilder]] = {
        "stocks": [("A", data.second_agg, aggregate_events), ("AM", data.minute_agg, aggregate_events)],
        "crypto": [("XA", data.minute_agg, crypto_forex.crypto_aggregate_events)],
        "forex": [("CA", data.minute_agg, crypto_forex.forex_aggregate_events)],
    }[name]
    tickers = market.tickers
    for j, lo, hi in _chunks(data.slices):
        last = j == TICKS_PER_SECOND - 1 and hi == data.slices[-1]
        tick = Tick(
            offset_s=data.index + (j + 1) / TICKS_PER_SECOND,
            events=build(market, data, lo, hi),
            evs=[trade_ev if flag else quote_ev for flag in data.is_trade[lo:hi].tolist()],
            syms=[tickers[i] for i in data.sym[lo:hi].tolist()],
            times=data.t[lo:hi].tolist(),
            second_ms=data.second_ms,
            opens_second=lo == 0,
            closes_second=last,
        )
        if last:
            for ev, agg, make in aggregates:
                if agg is None:
                    continue
                built = make(market, ev, agg)
                tick.events.extend(built)
                tick.evs.extend([ev] * len(built))
                tick.syms.extend(tickers[i] for i in agg.sym.tolist())
                tick.times.extend([agg.start_ms] * len(built))
        yield tick


def _chunks(slices: list[int]) -> Iterator[tuple[int, int, int]]:
    """(slice, lo, hi): each 100 ms slice, cut into runs of at most MAX_TICK_EVENTS events.

    Small ticks keep the server responsive at high rates: between two ticks the writers get the
    event loop and push frames to the sockets while the next tick is built.
    """
    for j in range(TICKS_PER_SECOND):
        start, end = slices[j], slices[j + 1]
        lo = start
        while True:
            hi = min(lo + MAX_TICK_EVENTS, end)
            yield j, lo, hi
            if hi >= end:
                break
            lo = hi


def _trade_and_quote_events(market: Market, data: SecondData, lo: int, hi: int) -> list[Event]:
    """Build the T and Q dicts of events [lo, hi) in emission order (one pass over plain lists)."""
    sym = data.sym[lo:hi]
    scale = market.scale[sym]
    tickers = market.tickers
    columns = zip(
        data.is_trade[lo:hi].tolist(),
        [tickers[i] for i in sym.tolist()],
        (data.price[lo:hi] / scale).tolist(),
        (data.ask[lo:hi] / scale).tolist(),
        data.size[lo:hi].tolist(),
        data.ask_size[lo:hi].tolist(),
        data.exchange[lo:hi].tolist(),
        data.ask_exchange[lo:hi].tolist(),
        data.trade_id[lo:hi].tolist(),
        data.sequence[lo:hi].tolist(),
        data.t[lo:hi].tolist(),
        market.tapes[sym].tolist(),
        data.flag[lo:hi].tolist(),
        strict=True,
    )
    events: list[Event] = []
    append = events.append
    for trade, sym, p, ap, s, as_, x, ax, i, q, t, z, sweep in columns:
        if not trade:
            append(
                {
                    "ev": "Q",
                    "sym": sym,
                    "bx": x,
                    "bp": p,
                    "bs": s,
                    "ax": ax,
                    "ap": ap,
                    "as": as_,
                    "c": 1,
                    "t": t,
                    "q": q,
                    "z": z,
                }
            )
        elif sweep:
            append(
                {
                    "ev": "T",
                    "sym": sym,
                    "x": x,
                    "i": str(i),
                    "z": z,
                    "p": p,
                    "s": s,
                    "c": [14],
                    "t": t,
                    "q": q,
                }
            )
        else:
            append({"ev": "T", "sym": sym, "x": x, "i": str(i), "z": z, "p": p, "s": s, "t": t, "q": q})
    return events


def vwap_of(notional: int, volume: int, scale: int) -> float:
    """Volume-weighted average price from integer notional (ticks x shares), to 4 decimals."""
    return round(notional / volume / scale, 4)


def aggregate_events(market: Market, ev: str, agg: Aggregates) -> list[Event]:
    """`A` or `AM` events: fields `ev sym v av op vw o c h l a z s e`, as Polygon sends them."""
    if not len(agg.sym):
        return []
    scale = market.scale[agg.sym]
    tickers = market.tickers
    scales = scale.tolist()
    # Python ints and round(): the REST bars (bars.py) compute VWAP the same way, digit for digit.
    vwap = [
        vwap_of(n, v, s) for n, v, s in zip(agg.notional.tolist(), agg.volume.tolist(), scales, strict=True)
    ]
    day_vwap = [
        round(n / v / s, 4)
        for n, v, s in zip(agg.day_notional.tolist(), agg.day_volume.tolist(), scales, strict=True)
    ]
    columns = zip(
        [tickers[i] for i in agg.sym.tolist()],
        agg.volume.tolist(),
        agg.day_volume.tolist(),
        (agg.day_open / scale).tolist(),
        vwap,
        (agg.open / scale).tolist(),
        (agg.close / scale).tolist(),
        (agg.high / scale).tolist(),
        (agg.low / scale).tolist(),
        day_vwap,
        (agg.volume // agg.trades).tolist(),
        strict=True,
    )
    s, e = agg.start_ms, agg.end_ms
    return [
        {
            "ev": ev,
            "sym": sym,
            "v": v,
            "av": av,
            "op": op,
            "vw": vw,
            "o": o,
            "c": c,
            "h": h,
            "l": low,
            "a": a,
            "z": z,
            "s": s,
            "e": e,
        }
        for sym, v, av, op, vw, o, c, h, low, a, z in columns
    ]
