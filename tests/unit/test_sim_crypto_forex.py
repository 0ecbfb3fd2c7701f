"""Crypto (XT, XQ, XA) and forex (C, CA) sessions: Polygon's fields, coherent minute bars."""

from __future__ import annotations

from collections import defaultdict
from fractions import Fraction
from typing import Any

import pytest

from tickpipe_simulator.spec import MarketSpec
from tickpipe_simulator.symbols import resolve_symbols
from tickpipe_simulator.truth import session_events

START = 1_732_285_800_000  # a minute boundary


def _spec(market: str, **extra: Any) -> MarketSpec:
    return MarketSpec(
        seed=5,
        symbols=resolve_symbols(None, market),
        rate=300,
        start_ms=START,
        session_seconds=120,
        market=market,  # type: ignore[arg-type]
        **extra,
    )


def test_crypto_fields_and_xa_is_the_minutes_trades() -> None:
    events = list(session_events(_spec("crypto")))
    assert {e["ev"] for e in events} == {"XT", "XQ", "XA"}
    trade = next(e for e in events if e["ev"] == "XT")
    assert set(trade) == {"ev", "pair", "p", "t", "s", "c", "i", "x", "r"}
    assert isinstance(trade["s"], float)
    quote = next(e for e in events if e["ev"] == "XQ")
    assert set(quote) == {"ev", "pair", "bp", "bs", "ap", "as", "t", "x", "r"}
    assert quote["ap"] > quote["bp"]
    trades: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    for event in events:
        if event["ev"] == "XT":
            trades[(event["pair"], event["t"] - event["t"] % 60_000)].append(event)
    bars = [e for e in events if e["ev"] == "XA"]
    assert {(b["pair"], b["s"]) for b in bars} == set(trades)
    for bar in bars:
        prints = trades[(bar["pair"], bar["s"])]
        assert bar["e"] == bar["s"] + 60_000
        assert (bar["o"], bar["c"]) == (prints[0]["p"], prints[-1]["p"])
        assert (bar["h"], bar["l"]) == (max(t["p"] for t in prints), min(t["p"] for t in prints))
        assert bar["v"] == pytest.approx(sum(t["s"] for t in prints), rel=1e-9)
        vwap = sum(Fraction(str(t["p"])) * Fraction(str(t["s"])) for t in prints) / Fraction(str(bar["v"]))
        assert abs(Fraction(str(bar["vw"])) - vwap) / vwap < Fraction(1, 10**6)


def test_forex_quotes_and_ca_is_the_minutes_bids() -> None:
    events = list(session_events(_spec("forex")))
    assert {e["ev"] for e in events} == {"C", "CA"}
    quote = next(e for e in events if e["ev"] == "C")
    assert set(quote) == {"ev", "p", "x", "a", "b", "t"}
    assert quote["a"] > quote["b"]
    bids: dict[tuple[str, int], list[float]] = defaultdict(list)
    for event in events:
        if event["ev"] == "C":
            bids[(event["p"], event["t"] - event["t"] % 60_000)].append(event["b"])
    bars = [e for e in events if e["ev"] == "CA"]
    assert len(bars) == 2 * len(resolve_symbols(None, "forex"))
    for bar in bars:
        prices = bids[(bar["pair"], bar["s"])]
        assert (bar["o"], bar["c"], bar["v"]) == (prices[0], prices[-1], len(prices))
        assert (bar["h"], bar["l"]) == (max(prices), min(prices))


def test_topics_select_pairs() -> None:
    events = list(session_events(_spec("forex"), topics=["C.EUR/USD"]))
    assert events
    assert {(e["ev"], e["p"]) for e in events} == {("C", "EUR/USD")}


def test_pair_symbols_resolve_per_market() -> None:
    assert [s.ticker for s in resolve_symbols("2", "crypto")] == ["BTC-USD", "ETH-USD"]
    assert [s.ticker for s in resolve_symbols("eur/usd", "forex")] == ["EUR/USD"]
    with pytest.raises(ValueError, match="between 1 and 10"):
        resolve_symbols("11", "forex")
