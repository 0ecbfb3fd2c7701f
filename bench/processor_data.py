"""Synthetic raw Polygon events for the processor benchmarks: realistic shapes, deterministic.

The mix is roughly a busy feed's: 60% trades, 30% quotes, 10% second aggregates, over 500
symbols, with 0.1% bad values (they must land in the DLQ, not slow the good ones down).
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator

import orjson

SYMBOLS = [f"SYM{i:03d}" for i in range(500)]
FEED = b"socket.polygon.io/stocks"
_BAD = [b"{not json", b'{"ev":"A","sym":"X"}', b'{"ev":"T","sym":"X","x":1,"p":-1,"s":1,"t":1}', b"[1,2]"]


def raw_events(
    count: int, seed: int = 7
) -> Iterator[tuple[bytes, bytes, list[tuple[str, str | bytes | None]]]]:
    """(key, value, headers) of `count` raw messages as the producer would publish them."""
    rng = random.Random(seed)
    base_ms = 1_763_996_400_000  # a Monday, 10:00 New York: inside regular hours
    received = str(time.time_ns()).encode()
    headers: list[tuple[str, str | bytes | None]] = [("tp.received_ns", received), ("tp.feed", FEED)]
    for n in range(count):
        symbol = SYMBOLS[n % len(SYMBOLS)]
        ts = base_ms + n // 10
        price = round(100 + rng.random() * 5, 2)
        pick = n % 10
        if n % 1000 == 999:
            value = _BAD[(n // 1000) % len(_BAD)]
        elif pick < 6:
            value = orjson.dumps(
                {"ev": "T", "sym": symbol, "x": 4, "i": str(n), "z": 3, "p": price,
                 "s": rng.choice((1, 10, 100, 250)), "c": [12, 37], "t": ts, "q": n}
            )  # fmt: skip
        elif pick < 9:
            value = orjson.dumps(
                {"ev": "Q", "sym": symbol, "bx": 4, "bp": price, "bs": 2, "ax": 7, "ap": price + 0.01,
                 "as": 3, "c": 1, "i": [604], "t": ts, "q": n, "z": 3}
            )  # fmt: skip
        else:
            value = orjson.dumps(
                {"ev": "A", "sym": symbol, "v": 1200, "av": 881_000, "op": 101.0, "vw": price,
                 "o": price, "c": price + 0.02, "h": price + 0.05, "l": price - 0.05, "a": 100.9,
                 "z": 80, "s": ts, "e": ts + 1000}
            )  # fmt: skip
        yield symbol.encode(), value, headers
