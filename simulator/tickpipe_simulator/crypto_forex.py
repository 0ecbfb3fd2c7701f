"""Polygon crypto (`XT`, `XQ`, `XA`) and forex (`C`, `CA`) events from a simulated second.

Crypto sizes are fractions of a coin (integers in units of 1/size_scale on the inside); `XA` is
the minute aggregate of the minute's trades, as on Polygon (`XAS` would be per second). Forex has
quotes only: `C` {ev p x a b t} and the minute aggregate `CA` of the quotes' bids, with `v` the
number of quotes.
"""

from __future__ import annotations

from tickpipe_simulator.kinds import Event
from tickpipe_simulator.market import Aggregates, Market, SecondData


def crypto_events(market: Market, data: SecondData, lo: int, hi: int) -> list[Event]:
    sym = data.sym[lo:hi]
    scale = market.scale[sym]
    units = market.size_scale
    tickers = market.tickers
    columns = zip(
        data.is_trade[lo:hi].tolist(),
        [tickers[i] for i in sym.tolist()],
        (data.price[lo:hi] / scale).tolist(),
        (data.ask[lo:hi] / scale).tolist(),
        (data.size[lo:hi] / units).tolist(),
        (data.ask_size[lo:hi] / units).tolist(),
        data.exchange[lo:hi].tolist(),
        data.trade_id[lo:hi].tolist(),
        data.sequence[lo:hi].tolist(),
        data.t[lo:hi].tolist(),
        data.flag[lo:hi].tolist(),
        strict=True,
    )
    events: list[Event] = []
    append = events.append
    for trade, pair, p, ap, s, as_, x, i, q, t, buy in columns:
        received = t + 3 + q % 37  # Polygon's `r`: when its server received the event
        if trade:
            append(
                {
                    "ev": "XT",
                    "pair": pair,
                    "p": p,
                    "t": t,
                    "s": s,
                    "c": [2 if buy else 1],
                    "i": i,  # an integer, as in Polygon's example (stock trade ids are strings)
                    "x": x,
                    "r": received,
                }
            )
        else:
            append(
                {
                    "ev": "XQ",
                    "pair": pair,
                    "bp": p,
                    "bs": s,
                    "ap": ap,
                    "as": as_,
                    "t": t,
                    "x": x,
                    "r": received,
                }
            )
    return events


def forex_events(market: Market, data: SecondData, lo: int, hi: int) -> list[Event]:
    sym = data.sym[lo:hi]
    scale = market.scale[sym]
    tickers = market.tickers
    columns = zip(
        [tickers[i] for i in sym.tolist()],
        data.exchange[lo:hi].tolist(),
        (data.ask[lo:hi] / scale).tolist(),
        (data.price[lo:hi] / scale).tolist(),
        data.t[lo:hi].tolist(),
        strict=True,
    )
    return [{"ev": "C", "p": pair, "x": x, "a": a, "b": b, "t": t} for pair, x, a, b, t in columns]


def crypto_aggregate_events(market: Market, ev: str, agg: Aggregates) -> list[Event]:
    """`XA`: {ev pair v vw z o c h l s e}, volume and average size in coins."""
    scale = market.scale[agg.sym]
    units = market.size_scale
    columns = zip(
        [market.tickers[i] for i in agg.sym.tolist()],
        (agg.volume / units).tolist(),
        [
            _vwap(n, v, s)
            for n, v, s in zip(agg.notional.tolist(), agg.volume.tolist(), scale.tolist(), strict=True)
        ],
        (agg.volume / agg.trades / units).round(8).tolist(),
        (agg.open / scale).tolist(),
        (agg.close / scale).tolist(),
        (agg.high / scale).tolist(),
        (agg.low / scale).tolist(),
        strict=True,
    )
    s, e = agg.start_ms, agg.end_ms
    return [
        {"ev": ev, "pair": pair, "v": v, "vw": vw, "z": z, "o": o, "c": c, "h": h, "l": low, "s": s, "e": e}
        for pair, v, vw, z, o, c, h, low in columns
    ]


def _vwap(notional: int, volume: int, scale: int) -> float:
    """VWAP to two decimals more than the price has (a $0.38 coin needs more than 4)."""
    return round(notional / volume / scale, len(str(scale)) + 1)


def forex_aggregate_events(market: Market, ev: str, agg: Aggregates) -> list[Event]:
    """`CA`: {ev pair o c h l v s e}, prices of the bids, `v` the number of quotes."""
    scale = market.scale[agg.sym]
    columns = zip(
        [market.tickers[i] for i in agg.sym.tolist()],
        (agg.open / scale).tolist(),
        (agg.close / scale).tolist(),
        (agg.high / scale).tolist(),
        (agg.low / scale).tolist(),
        agg.volume.tolist(),
        strict=True,
    )
    s, e = agg.start_ms, agg.end_ms
    return [
        {"ev": ev, "pair": pair, "o": o, "c": c, "h": h, "l": low, "v": v, "s": s, "e": e}
        for pair, o, c, h, low, v in columns
    ]
