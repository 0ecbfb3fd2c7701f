"""Records shaped like FILTERED_TOPIC (docs/architecture.md), for the sink's tests and benchmarks.

Deterministic from a seed, so a test can recompute exactly what ClickHouse must hold.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import orjson

BASE_MS = 1_767_225_600_000  # 2026-01-01 00:00:00 UTC


def aggregate(ev: str, symbol: str, start_ms: int, rng: random.Random, span_ms: int = 1000) -> dict[str, Any]:
    open_ = round(rng.uniform(10, 500), 2)
    close = round(open_ + rng.uniform(-1, 1), 2)
    high = round(max(open_, close) + rng.uniform(0, 0.5), 2)
    low = round(min(open_, close) - rng.uniform(0, 0.5), 2)
    volume = rng.randint(1, 5000)
    return {
        "ev": ev,
        "symbol": symbol,
        "start_ms": start_ms,
        "end_ms": start_ms + span_ms,
        "open": open_,
        "high": high,
        "low": low,
        "close": close,
        "volume": volume,
        "vwap": round((open_ + close + high + low) / 4, 4),
        "day_volume": volume * 100,
        "day_open": open_,
        "day_vwap": open_,
        "avg_size": rng.choice([1, 2, 5, 10]),
        "otc": None,
        "received_ns": start_ms * 1_000_000 + 5_000_000,
    }


def trade(symbol: str, ts_ms: int, sequence: int, rng: random.Random) -> dict[str, Any]:
    return {
        "ev": "T",
        "symbol": symbol,
        "ts_ms": ts_ms,
        "price": round(rng.uniform(10, 500), 2),
        "size": rng.randint(1, 500),
        "exchange": rng.randint(1, 20),
        "trade_id": str(sequence),
        "tape": rng.choice([1, 2, 3]),
        "conditions": rng.choice([[], [12], [14, 41]]),
        "sequence": sequence,
        "received_ns": ts_ms * 1_000_000 + 2_000_000,
    }


def quote(symbol: str, ts_ms: int, sequence: int, rng: random.Random) -> dict[str, Any]:
    bid = round(rng.uniform(10, 500), 2)
    return {
        "ev": "Q",
        "symbol": symbol,
        "ts_ms": ts_ms,
        "bid_price": bid,
        "bid_size": rng.randint(1, 50),
        "bid_exchange": rng.randint(1, 20),
        "ask_price": round(bid + rng.choice([0.01, 0.02, 0.05]), 2),
        "ask_size": rng.randint(1, 50),
        "ask_exchange": rng.randint(1, 20),
        "conditions": [],
        "tape": 3,
        "sequence": sequence,
        "received_ns": ts_ms * 1_000_000 + 1_000_000,
    }


def second_aggregates(count: int, symbols: int = 100, seed: int = 7) -> Iterator[tuple[bytes, bytes]]:
    """`count` A events, one per (symbol, second): every key distinct. Yields (key, value)."""
    rng = random.Random(seed)
    names = [f"S{i:03d}" for i in range(symbols)]
    for i in range(count):
        symbol = names[i % symbols]
        start = BASE_MS + (i // symbols) * 1000
        yield symbol.encode(), orjson.dumps(aggregate("A", symbol, start, rng))


def mixed(count: int, symbols: int = 20, seed: int = 11) -> Iterator[dict[str, Any]]:
    """Every kind: A, AM, XA, CA, T (several prints in one millisecond), XT, Q, XQ."""
    rng = random.Random(seed)
    names = [f"S{i:02d}" for i in range(symbols)]
    for i in range(count):
        symbol = names[i % symbols]
        step = i // symbols  # one step per round over the symbols: times never tie within a kind
        ts = BASE_MS + step * 250
        kind = i % 8
        if kind == 0:
            yield aggregate("A", symbol, BASE_MS + step * 1000, rng)
        elif kind == 1:
            yield aggregate("AM", symbol, BASE_MS + step * 60_000, rng, span_ms=60_000)
        elif kind == 2:
            yield aggregate("XA", f"X:{symbol}USD", BASE_MS + step * 1000, rng)
        elif kind == 3:
            yield aggregate("CA", f"C:{symbol}", BASE_MS + step * 60_000, rng, span_ms=60_000)
        elif kind in (4, 5):
            yield trade(symbol, ts - ts % 1000, i, rng)  # same millisecond, distinct prints
        elif kind == 6:
            yield {**trade(f"X:{symbol}USD", ts, i, rng), "ev": "XT"}
        else:
            yield (
                quote(symbol, ts, i, rng)
                if i % 16 == 7
                else {**quote(f"X:{symbol}USD", ts, i, rng), "ev": "XQ"}
            )


# --- realistic input: the simulator's ground truth, normalised as the processor publishes it -------

SESSION_OPEN_MS = 1_767_796_200_000  # 2026-01-07 14:30:00 UTC, a Wednesday's open


def normalise(event: dict[str, Any], received_ns: int) -> dict[str, Any]:
    """One Polygon stocks event (A, AM, T, Q) -> the FILTERED_TOPIC object (docs/architecture.md)."""
    ev = event["ev"]
    if ev in ("A", "AM"):
        return {
            "ev": ev,
            "symbol": event["sym"],
            "start_ms": event["s"],
            "end_ms": event["e"],
            "open": event["o"],
            "high": event["h"],
            "low": event["l"],
            "close": event["c"],
            "volume": event["v"],
            "vwap": event.get("vw"),
            "day_volume": event.get("av"),
            "day_open": event.get("op"),
            "day_vwap": event.get("a"),
            "avg_size": event.get("z"),
            "otc": event.get("otc"),
            "received_ns": received_ns,
        }
    if ev == "T":
        return {
            "ev": ev,
            "symbol": event["sym"],
            "ts_ms": event["t"],
            "price": event["p"],
            "size": event["s"],
            "exchange": event.get("x"),
            "trade_id": event.get("i"),
            "tape": event.get("z"),
            "conditions": event.get("c", []),
            "sequence": event.get("q"),
            "received_ns": received_ns,
        }
    if ev == "Q":
        return {
            "ev": ev,
            "symbol": event["sym"],
            "ts_ms": event["t"],
            "bid_price": event.get("bp"),
            "bid_size": event.get("bs"),
            "bid_exchange": event.get("bx"),
            "ask_price": event.get("ap"),
            "ask_size": event.get("as"),
            "ask_exchange": event.get("ax"),
            "conditions": [event["c"]] if isinstance(event.get("c"), int) else event.get("c", []),
            "tape": event.get("z"),
            "sequence": event.get("q"),
            "received_ns": received_ns,
        }
    raise ValueError(f"not a stocks event: ev={ev!r}")


def _receipt(event: dict[str, Any], rng: random.Random) -> int:
    """When a producer would have read the event: its time plus 1-40 ms of feed delay, in ns."""
    at_ms: int = event["e"] if "e" in event else event["t"]
    return at_ms * 1_000_000 + rng.randrange(1_000_000, 40_000_000)


def simulated(
    seconds: int, rate: float = 5000.0, seed: int = 7, start_ms: int = SESSION_OPEN_MS
) -> Iterator[dict[str, Any]]:
    """A simulated session's T, Q, A and AM events (random-walk prices), normalised, in send order."""
    from tickpipe_simulator.truth import MarketSpec, session_events

    spec = MarketSpec(seed=seed, rate=rate, start_ms=start_ms, session_seconds=seconds)
    rng = random.Random(seed)
    for event in session_events(spec):
        yield normalise(event, _receipt(event, rng))


def simulated_aggregates(
    seconds: int, rate: float = 20000.0, seed: int = 7, start_ms: int = SESSION_OPEN_MS
) -> Iterator[dict[str, Any]]:
    """Only the second aggregates (A) of a simulated session: fast (no trade or quote dicts built)."""
    from tickpipe_simulator.events import aggregate_events
    from tickpipe_simulator.market import Market
    from tickpipe_simulator.truth import MarketSpec

    market = Market(MarketSpec(seed=seed, rate=rate, start_ms=start_ms, session_seconds=seconds))
    rng = random.Random(seed)
    while (data := market.next_second()) is not None:
        for event in aggregate_events(market, "A", data.second_agg):
            yield normalise(event, _receipt(event, rng))
