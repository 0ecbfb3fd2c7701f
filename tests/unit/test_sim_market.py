"""The simulated market is deterministic and coherent: aggregates are the true sums of trades."""

from __future__ import annotations

from collections import defaultdict
from fractions import Fraction
from typing import Any

import pytest

from tickpipe_simulator.events import MAX_TICK_EVENTS, second_ticks
from tickpipe_simulator.market import Market
from tickpipe_simulator.spec import MarketSpec
from tickpipe_simulator.symbols import resolve_symbols
from tickpipe_simulator.truth import session_events, session_seconds

START = 1_732_285_800_000 - 1_732_285_800_000 % 60_000 + 45_000  # 15 s before a minute boundary
SPEC = MarketSpec(seed=7, symbols=resolve_symbols("12"), rate=400, start_ms=START, session_seconds=80)


def _events(spec: MarketSpec = SPEC) -> list[dict[str, Any]]:
    return list(session_events(spec))


def test_same_spec_same_events_and_other_seed_differs() -> None:
    first = _events()
    assert first == _events()
    assert first != _events(MarketSpec(**{**SPEC.__dict__, "seed": 8}))


def test_a_is_the_exact_aggregate_of_the_seconds_trades() -> None:
    trades: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    aggregates = {}
    for event in _events():
        if event["ev"] == "T":
            trades[(event["sym"], event["t"] - event["t"] % 1000)].append(event)
        elif event["ev"] == "A":
            aggregates[(event["sym"], event["s"])] = event
    assert set(aggregates) == set(trades), "an A for exactly the symbols that traded in that second"
    for key, agg in aggregates.items():
        prints = trades[key]
        assert agg["e"] == agg["s"] + 1000
        assert agg["v"] == sum(t["s"] for t in prints)
        assert agg["o"] == prints[0]["p"]
        assert agg["c"] == prints[-1]["p"]
        assert agg["h"] == max(t["p"] for t in prints)
        assert agg["l"] == min(t["p"] for t in prints)
        exact_vwap = sum(Fraction(str(t["p"])) * t["s"] for t in prints) / agg["v"]
        assert abs(Fraction(str(agg["vw"])) - exact_vwap) <= Fraction(1, 20000)
        assert agg["z"] == agg["v"] // len(prints)


def test_day_volume_open_and_vwap_accumulate() -> None:
    day_volume: dict[str, int] = defaultdict(int)
    notional: dict[str, Fraction] = defaultdict(Fraction)
    first_price: dict[str, float] = {}
    for event in _events():
        sym = event["sym"]
        if event["ev"] == "T":
            day_volume[sym] += event["s"]
            notional[sym] += Fraction(str(event["p"])) * event["s"]
            first_price.setdefault(sym, event["p"])
        elif event["ev"] in ("A", "AM"):
            assert event["av"] == day_volume[sym]
            assert event["op"] == first_price[sym]
            assert abs(Fraction(str(event["a"])) - notional[sym] / day_volume[sym]) <= Fraction(1, 20000)


def test_am_is_the_aggregate_of_the_minutes_seconds() -> None:
    seconds: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    minutes = []
    for event in _events():
        if event["ev"] == "A":
            seconds[(event["sym"], event["s"] - event["s"] % 60_000)].append(event)
        elif event["ev"] == "AM":
            minutes.append(event)
    # 80 s from 15 s before a boundary: the first (partial) minute and one whole minute close.
    assert {m["s"] for m in minutes} == {START - 45_000, START + 15_000}
    for minute in minutes:
        parts = seconds[(minute["sym"], minute["s"])]
        assert minute["e"] == minute["s"] + 60_000
        assert minute["v"] == sum(p["v"] for p in parts)
        assert (minute["o"], minute["c"]) == (parts[0]["o"], parts[-1]["c"])
        assert (minute["h"], minute["l"]) == (max(p["h"] for p in parts), min(p["l"] for p in parts))


def test_quotes_have_a_positive_realistic_spread_and_trades_print_inside() -> None:
    last_quote: dict[str, dict[str, Any]] = {}
    for event in _events():
        if event["ev"] == "Q":
            spread = event["ap"] - event["bp"]
            assert spread > 0
            assert spread / event["bp"] < 0.002, f"spread of {spread} on {event['bp']}"
            last_quote[event["sym"]] = event
        elif event["ev"] == "T" and event["sym"] in last_quote:
            quote = last_quote[event["sym"]]
            mid = (quote["bp"] + quote["ap"]) / 2
            assert abs(event["p"] - mid) / mid < 0.005, f"trade {event} far from quote {quote}"


def test_events_are_in_time_order_with_unique_sequences() -> None:
    for events in session_seconds(SPEC):
        times = [e["t"] for e in events if e["ev"] in ("T", "Q")]
        assert times == sorted(times)
        kinds = [e["ev"] for e in events]
        if "A" in kinds:
            first_agg = kinds.index("A")
            assert set(kinds[first_agg:]) <= {"A", "AM"}, "aggregates close the second"
    sequences = [(e["sym"], e["q"]) for e in _events() if e["ev"] in ("T", "Q")]
    assert len(sequences) == len(set(sequences))


def test_rate_and_open_profile() -> None:
    flat = MarketSpec(seed=1, symbols=resolve_symbols("100"), rate=2000, start_ms=START, session_seconds=5)
    counted = sum(1 for e in session_events(flat) if e["ev"] in ("T", "Q"))
    assert 9000 < counted < 11000
    burst = MarketSpec(**{**flat.__dict__, "profile": "open"})
    assert sum(1 for e in session_events(burst) if e["ev"] in ("T", "Q")) > 4 * counted
    assert burst.level(0) == pytest.approx(6.0)
    assert burst.level(3600) == pytest.approx(1.0, abs=0.01)


def test_time_range_and_topics_select_a_subset() -> None:
    whole = _events()
    part = list(session_events(SPEC, START + 10_000, START + 20_000, topics=["A.*", "T.NVDA"]))
    expected = [
        e
        for e in whole
        if START + 10_000 <= _sent_in_second(e) < START + 20_000
        and (e["ev"] == "A" or (e["ev"] == "T" and e["sym"] == "NVDA"))
    ]
    assert part == expected
    assert part


def _sent_in_second(event: dict[str, Any]) -> int:
    """The second whose batch carries the event (an AM goes out with the minute's last second)."""
    if event["ev"] in ("T", "Q"):
        return int(event["t"] - event["t"] % 1000)
    return int(event["s"] if event["ev"] == "A" else event["e"] - 1000)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"start_ms": START + 1}, "whole second"),
        ({"rate": -1.0}, "rate"),
        ({"trade_share": 1.5}, "trade_share"),
    ],
)
def test_invalid_specs_are_named(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MarketSpec(**{**SPEC.__dict__, **spec})


def test_symbols_resolve_counts_and_lists() -> None:
    assert [s.ticker for s in resolve_symbols("3")] == ["NVDA", "TSLA", "AAPL"]
    assert [s.ticker for s in resolve_symbols("aapl, XYZQ")] == ["AAPL", "XYZQ"]
    for bad, message in (("0", "between"), ("AAPL,AAPL", "twice"), ("A$", "not a ticker"), (" ", "count")):
        with pytest.raises(ValueError, match=message):
            resolve_symbols(bad)


def test_busy_seconds_leave_in_small_ticks_in_order() -> None:
    spec = MarketSpec(seed=2, symbols=resolve_symbols("50"), rate=120_000, start_ms=START, session_seconds=1)
    market = Market(spec)
    data = market.next_second()
    assert data is not None
    ticks = list(second_ticks(market, data))
    assert len(ticks) >= 24
    assert max(len(t.events) for t in ticks[:-1]) <= MAX_TICK_EVENTS
    assert [t.opens_second for t in ticks] == [True] + [False] * (len(ticks) - 1)
    assert [t.closes_second for t in ticks] == [False] * (len(ticks) - 1) + [True]
    offsets = [t.offset_s for t in ticks]
    assert offsets == sorted(offsets)
    assert [e for t in ticks for e in t.events] == next(session_seconds(spec))
