"""The console's live bars: OHLCV from second aggregates, history seeding, honest gaps."""

from __future__ import annotations

import random
from typing import Any

import pytest

from tickpipe_web.bars import BadInterval, Bar, BarBook, TradeRules, gaps, interval_seconds

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


def test_quotes_and_bad_events_make_no_bars_and_a_coarser_source_only_moves_the_price() -> None:
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
    bars = [(b.time, b.open, b.high, b.low, b.close, b.volume) for b in book.bars("MSFT", "1m")]
    assert bars == [(T0, 1, 2, 0.5, 1.5, 10)]  # the AM alone: the trade is a coarser source
    assert book.source("MSFT") == "AM"
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


# --- sources per symbol, corrections, trade conditions ----------------------------------------------

NO_OC = 12  # Form T: moves volume only (005_trade_conditions.sql)
RULES = TradeRules.from_rows([(0, True, True, True), (NO_OC, False, False, True), (15, False, False, False)])


def minute_agg(
    symbol: str, minute: int, o: float, h: float, lo: float, c: float, v: float, rx: int
) -> dict[str, Any]:
    return {
        "ev": "AM", "symbol": symbol, "start_ms": minute * 1000, "end_ms": minute * 1000 + 60_000,
        "open": o, "high": h, "low": lo, "close": c, "volume": v, "received_ns": rx,
    }  # fmt: skip


def trade(
    symbol: str, ts_ms: int, price: float, size: float, seq: int, conditions: list[int]
) -> dict[str, Any]:
    return {
        "ev": "T", "symbol": symbol, "ts_ms": ts_ms, "price": price, "size": size, "sequence": seq,
        "conditions": conditions, "received_ns": ts_ms * 10**6 + 1,
    }  # fmt: skip


def ohlcv(bars: list[Bar]) -> dict[int, tuple[float, float, float, float, float]]:
    return {b.time: (b.open, b.high, b.low, b.close, b.volume) for b in bars}


def test_a_symbol_with_only_minute_aggregates_gets_candles() -> None:
    rng = random.Random(11)
    events = []
    for i in range(12):
        o, c = rng.uniform(10, 11), rng.uniform(10, 11)
        events.append(
            minute_agg("IBM", T0 + 60 * i, o, max(o, c) + 0.1, min(o, c) - 0.1, c, rng.randint(1, 900), i)
        )
    book = BarBook()
    for event in reversed(events):
        book.apply(event)
    assert ohlcv(book.bars("IBM", "1m")) == {
        e["start_ms"] // 1000: (e["open"], e["high"], e["low"], e["close"], e["volume"]) for e in events
    }
    five = {}  # independently: five minutes each, first open, max, min, last close, sum
    for k in range(0, 12, 5):
        part = events[k : k + 5]
        five[T0 + 60 * k] = (
            part[0]["open"], max(e["high"] for e in part), min(e["low"] for e in part), part[-1]["close"],
            float(sum(e["volume"] for e in part)),
        )  # fmt: skip
    assert ohlcv(book.bars("IBM", "5m")) == five


def test_a_symbol_with_only_trades_gets_candles_and_a_condition_keeps_a_trade_off_open_and_close() -> None:
    rng = random.Random(5)
    trades = []
    for i in range(300):
        excluded = i % 7 == 3
        price = 50 + rng.uniform(-5, 5) + (20 if excluded else 0)  # excluded trades stand out in price
        trades.append(
            trade(
                "ZZZ",
                T0 * 1000 + i * 400,
                round(price, 2),
                rng.randint(1, 100),
                i,
                [NO_OC] if excluded else [0],
            )
        )
    trades.append(
        trade("ZZZ", T0 * 1000 + 59_999, 99.0, 5, 10_000, [NO_OC])
    )  # the minute's last trade, excluded
    book = BarBook(rules=RULES)
    shuffled = trades[:]
    random.Random(2).shuffle(shuffled)
    first_of_minute_2 = trades[150]  # excluded (150 % 7 == 3): arriving first, it starts no visible bar
    assert NO_OC in first_of_minute_2["conditions"]
    shuffled.remove(first_of_minute_2)
    shuffled.insert(0, first_of_minute_2)
    for event in shuffled:
        assert book.apply(event)
    expected = {}
    for minute in (T0, T0 + 60):
        inside = sorted(
            (t for t in trades if t["ts_ms"] // 60_000 * 60 == minute),
            key=lambda t: (t["ts_ms"], t["sequence"]),
        )
        counted = [t for t in inside if NO_OC not in t["conditions"]]
        expected[minute] = (
            counted[0]["price"], max(t["price"] for t in counted), min(t["price"] for t in counted),
            counted[-1]["price"], float(sum(t["size"] for t in inside)),
        )  # fmt: skip
    assert ohlcv(book.bars("ZZZ", "1m")) == expected
    assert expected[T0][3] != 99.0  # the excluded last trade did not set the close
    assert book.source("ZZZ") == "T"


def test_a_symbol_with_second_and_minute_aggregates_counts_the_seconds_only() -> None:
    seconds = random_seconds("AAPL", range(T0, T0 + 120))
    minutes = [
        minute_agg("AAPL", T0 + 60 * m, 1.0, 999.0, 0.01, 2.0, 10**6, 10**20) for m in range(2)
    ]  # nonsense values: any of them in a bar shows
    book = BarBook()
    for event in (*seconds[:30], minutes[0], *seconds[30:], minutes[1]):
        book.apply(event)
    expected = {}
    for minute in (T0, T0 + 60):
        inside = [e for e in seconds if e["start_ms"] // 60_000 * 60 == minute]
        expected[minute] = (
            inside[0]["open"], max(e["high"] for e in inside), min(e["low"] for e in inside),
            inside[-1]["close"], float(sum(e["volume"] for e in inside)),
        )  # fmt: skip
    assert ohlcv(book.bars("AAPL", "1m")) == expected
    assert book.source("AAPL") == "A"


def test_a_finer_source_arriving_later_replaces_the_coarser_from_its_first_bucket() -> None:
    book = BarBook()
    book.apply(minute_agg("AAPL", T0, 1.0, 999.0, 0.01, 2.0, 10**6, 1))
    seconds = random_seconds("AAPL", range(T0 + 5, T0 + 60))
    for event in seconds:
        book.apply(event)
    (bar,) = book.bars("AAPL", "1m")
    assert (bar.open, bar.close, bar.volume) == (
        seconds[0]["open"],
        seconds[-1]["close"],
        float(sum(e["volume"] for e in seconds)),
    )
    assert book.live_since("AAPL", "1s") == T0 + 5


def test_a_corrected_minute_aggregate_replaces_the_earlier_one() -> None:
    first = [minute_agg("IBM", T0 + 60 * m, 10, 11, 9, 10.5, 100 + m, 1_000 + m) for m in range(5)]
    correction = minute_agg(
        "IBM", T0 + 120, 10.2, 11.5, 9, 10.8, 175, 5_000
    )  # minute 2 re-sent, 73 more volume
    stale = minute_agg("IBM", T0 + 120, 7, 8, 6, 7.5, 3, 10)  # an older receipt arriving last
    book = BarBook()
    for event in (*first, correction, stale):
        book.apply(event)
    latest = {e["start_ms"]: e for e in sorted((*first, correction, stale), key=lambda e: e["received_ns"])}
    assert ohlcv(book.bars("IBM", "1m"))[T0 + 120] == (10.2, 11.5, 6, 10.8, 175)  # low: every receipt's min
    five = ohlcv(book.bars("IBM", "5m"))[T0]
    ordered = [latest[k] for k in sorted(latest)]
    assert five == (
        ordered[0]["open"],
        11.5,
        6,
        ordered[-1]["close"],
        float(sum(e["volume"] for e in ordered)),
    )
    assert five[4] == 100 + 101 + 175 + 103 + 104  # the corrected minute counted once
