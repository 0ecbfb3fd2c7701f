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
