"""Polygon's websocket events from REST rows, and the identity that makes two events the same.

The repair publishes REST rows into RAW_TOPIC in the live feed's shapes (docs/architecture.md),
so the processor decodes them unchanged; an event's identity is what the live feed and REST
share: trades (symbol, time ms, sequence, exchange, id), quotes (symbol, time ms, sequence),
aggregates (ev, symbol, start).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tickpipe_history.pages import AggBar, RestQuote, RestTrade

CHANNEL_DATASET = {"A": "second_aggs", "AM": "minute_aggs", "T": "trades", "Q": "quotes"}

Event = dict[str, Any]


def identity(event: Event) -> tuple[Any, ...] | None:
    """What makes an event the same event, per kind (None: a kind REST does not repair)."""
    ev = event.get("ev")
    if ev == "T":
        return ("T", event.get("sym"), event.get("t"), event.get("q"), event.get("x"), str(event.get("i")))
    if ev == "Q":
        return ("Q", event.get("sym"), event.get("t"), event.get("q"))
    if ev in ("A", "AM"):
        return (ev, event.get("sym"), event.get("s"))
    return None


def trade_event(symbol: str, t: RestTrade) -> Event:
    event: Event = {"ev": "T", "sym": symbol, "x": t.exchange, "i": t.id, "z": t.tape or 0, "p": t.price}
    event |= {"s": _number(t.size), "t": t.sip_timestamp // 1_000_000, "q": t.sequence_number}
    if t.conditions:
        event["c"] = list(t.conditions)
    return event


def quote_event(symbol: str, q: RestQuote) -> Event:
    event: Event = {"ev": "Q", "sym": symbol, "bx": q.bid_exchange, "bp": q.bid_price}
    event |= {"bs": _number(q.bid_size), "ax": q.ask_exchange, "ap": q.ask_price, "as": _number(q.ask_size)}
    if q.conditions:
        event["c"] = q.conditions[0]
    event |= {"t": q.sip_timestamp // 1_000_000, "q": q.sequence_number, "z": q.tape or 0}
    return event


def bar_event(ev: str, symbol: str, span_ms: int, b: AggBar) -> Event:
    event: Event = {"ev": ev, "sym": symbol, "v": _number(b.v), "vw": b.vw, "o": b.o, "c": b.c, "h": b.h}
    event |= {"l": b.l, "s": b.t, "e": b.t + span_ms}
    if b.n:
        event["z"] = int(b.v // b.n)
    if event["vw"] is None:
        del event["vw"]
    return event


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


def channels(topics: Iterable[str]) -> dict[str, set[str]]:
    """{"A": {"*"}, "T": {"AAPL"}} from ["A.*", "T.AAPL", "XT.*" (ignored: not REST-served)]."""
    out: dict[str, set[str]] = {}
    for topic in topics:
        channel, _, symbol = topic.partition(".")
        if channel in CHANNEL_DATASET and symbol:
            out.setdefault(channel, set()).add(symbol)
    return out
