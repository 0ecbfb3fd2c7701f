"""The console's live bars: OHLCV from second aggregates, history seeding, honest gaps."""

from __future__ import annotations

import random
from typing import Any

import pytest

from tickpipe_web.bars import BadInterval, Bar, BarBook, gaps, interval_seconds

T0 = 1_764_597_600  # a whole hour (Unix seconds)


def second_agg(symbol: str, second: int, o: float, h: float, lo: float, c: float, v: float) -> dict[str, Any]:
    return {
        "ev": "A", "symbol": symbol, "start_ms": second * 1000, "end_ms": second * 1000 + 1000,
        "open": o, "high": h, "low": lo, "close": c, "volume": v, "received_ns": second * 10**9 + 5,
    }  # fmt: skip


def random_seconds(symbol: str, seconds: range, seed: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    price, events = 100.0, []
    for second in seconds:
        o = price
        c = round(o + rng.uniform(-0.5, 0.5), 2)
        h, lo = max(o, c) + rng.uniform(0, 0.2), min(o, c) - rng.uniform(0, 0.2)
        events.append(second_agg(symbol, second, o, h, lo, c, float(rng.randint(1, 500))))
        price = c
    return events


def test_minute_and_five_minute_bars_match_an_independent_fold_in_any_arrival_order() -> None:
    events = random_seconds("AAPL", range(T0, T0 + 600))
    shuffled = events[:]
    random.Random(3).shuffle(shuffled)
    book = BarBook()
    for event in shuffled:
        assert book.apply(event)
    for interval, seconds in (("1m", 60), ("5m", 300), ("1s", 1)):
        expected: dict[int, list[float]] = {}
        for e in sorted(events, key=lambda e: e["start_ms"]):
            bucket = e["start_ms"] // 1000 // seconds * seconds
            row = expected.setdefault(bucket, [e["open"], e["high"], e["low"], e["close"], 0.0])
            row[1], row[2] = max(row[1], e["high"]), min(row[2], e["low"])
            row[3] = e["close"]
            row[4] += e["volume"]
        got = {b.time: [b.open, b.high, b.low, b.close, b.volume] for b in book.bars("AAPL", interval)}
        if interval == "1s":  # the book keeps the chart's window (500 buckets) of each series
            assert len(got) >= 500
            expected = {t: row for t, row in expected.items() if t in got}
        assert got == expected, interval
    assert len(book.bars("AAPL", "1m")) == 10
    assert book.prices["AAPL"][0] == events[-1]["close"]


def test_minute_aggregates_quotes_and_bad_events_make_no_bars() -> None:
    book = BarBook()
    am = {**second_agg("MSFT", T0, 1, 2, 0.5, 1.5, 10), "ev": "AM"}
    quote = {"ev": "Q", "symbol": "MSFT", "ts_ms": T0 * 1000, "bid_price": 1.0}
    trade = {"ev": "T", "symbol": "MSFT", "ts_ms": T0 * 1000 + 1500, "price": 1.7, "size": 3}
    broken = {"ev": "A", "symbol": "MSFT", "start_ms": "soon"}
    assert book.apply(am)
    assert book.apply(trade)
    assert not book.apply(quote)
    assert not book.apply(broken)
    assert not book.apply({"ev": "A"})
    assert book.bars("MSFT", "1m") == []
    assert book.prices["MSFT"] == (1.7, T0 * 1000 + 1500)  # the newest, whatever its kind
    assert (book.events, book.ignored) == (5, 3)


def test_a_missing_interval_stays_empty_and_is_reported_as_a_gap() -> None:
    book = BarBook()
    for second in (*range(T0, T0 + 60), *range(T0 + 240, T0 + 300)):  # minutes 2 and 3 have no events
        book.apply(second_agg("AAPL", second, 1, 1, 1, 1, 1))
    bars = book.bars("AAPL", "1m")
    assert [b.time for b in bars] == [T0, T0 + 240]
    assert gaps(bars, 60) == [(T0 + 60, T0 + 240)]


def test_history_fills_only_the_buckets_before_live_data() -> None:
    book = BarBook()
    book.apply(second_agg("AAPL", T0 + 125, 5, 6, 4, 5.5, 7))  # live from minute 2 (partial)
    history = [Bar(T0 + 60 * i, 1, 2, 0.5, 1.5, 100) for i in range(4)]
    assert book.seed("AAPL", "1m", history) == 2  # minutes 0 and 1; minute 2 is live, 3 is later
    bars = book.bars("AAPL", "1m")
    assert [(b.time, b.volume) for b in bars] == [(T0, 100), (T0 + 60, 100), (T0 + 120, 7)]


def test_changed_bars_are_reported_once_until_taken() -> None:
    book = BarBook()
    for second in range(T0, T0 + 3):
        book.apply(second_agg("AAPL", second, 1, 1, 1, 1, 1))
    dirty = book.take_dirty()
    assert set(dirty) == {("AAPL", "1s", T0 + i) for i in range(3)} | {
        ("AAPL", name, T0) for name in ("1m", "5m", "1h")
    }
    assert book.take_dirty() == {}


def test_the_window_is_bounded() -> None:
    book = BarBook(window=20)
    for second in range(T0, T0 + 200):
        book.apply(second_agg("AAPL", second, 1, 1, 1, 1, 1))
    kept = [bar.time for bar in book.bars("AAPL", "1s")]
    assert 20 <= len(kept) <= 20 + 50  # trimmed back to the window when 50 past it
    assert kept[-20:] == list(range(T0 + 180, T0 + 200))  # the newest are the ones kept


def test_intervals_are_the_four_the_page_offers() -> None:
    assert [interval_seconds(n) for n in ("1s", "1m", "5m", "1h")] == [1, 60, 300, 3600]
    with pytest.raises(BadInterval, match="1s, 1m, 5m, 1h"):
        interval_seconds("2m")
