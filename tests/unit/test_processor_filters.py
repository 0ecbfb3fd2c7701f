"""Each filter rule's semantics, the New York session clock, and the rules' memory journal."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest

from tickpipe_processor.events import RawEvent, parse
from tickpipe_processor.filters import PartitionMemory, RuleFilter
from tickpipe_processor.output import Event
from tickpipe_processor.rules import parse_rules
from tickpipe_processor.sessions import SessionClock, in_session

NY = ZoneInfo("America/New_York")


def ny_ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=NY).timestamp() * 1000)


MONDAY_NOON = ny_ms("2024-11-25T12:00")


def trade(sym: str = "AAPL", price: float = 100.0, size: int = 100, t: int = MONDAY_NOON, q: int | None = 1, ev: str = "T") -> dict[str, Any]:  # fmt: skip  # noqa: E501
    raw: dict[str, Any] = {"ev": ev, "sym": sym, "x": 4, "p": price, "s": size, "t": t}
    if ev == "XT":
        raw["pair"] = raw.pop("sym")
    if q is not None and ev == "T":
        raw["q"] = q
    return raw


def agg(sym: str = "AAPL", close: float = 100.0, volume: int = 1000, s: int = MONDAY_NOON) -> dict[str, Any]:
    return {
        "ev": "AM",
        "sym": sym,
        "o": close,
        "h": close,
        "l": close,
        "c": close,
        "v": volume,
        "s": s,
        "e": s + 60_000,
    }


def quote(sym: str = "AAPL", bid: float = 100.0, q: int = 1) -> dict[str, Any]:
    return {"ev": "Q", "sym": sym, "bp": bid, "bs": 1, "ap": bid + 0.01, "as": 1, "t": MONDAY_NOON, "q": q}


class Harness:
    def __init__(self, rules_yaml: str) -> None:
        self.filter = RuleFilter(parse_rules(rules_yaml))
        self.memory = PartitionMemory()

    def verdict(self, raw: dict[str, Any]) -> str | None:
        value = orjson.dumps(raw)
        parsed: tuple[RawEvent, Event] = parse(value, None)
        return self.filter.drop_reason(parsed[0], parsed[1], value, self.memory)


def test_defaults_keep_everything() -> None:
    h = Harness("")
    assert h.verdict(trade(t=ny_ms("2024-11-23T03:00"))) is None  # a Saturday night
    assert h.verdict(trade(size=0, price=0)) is None
    assert not h.filter.stateful


def test_event_kinds() -> None:
    h = Harness("events: [T]")
    assert h.verdict(trade()) is None
    assert h.verdict(agg()) == "events"
    assert h.verdict(quote()) == "events"


def test_symbol_deny_then_allow() -> None:
    h = Harness("symbols: {allow: [AAPL, MSFT], deny: [TSLA]}")
    assert h.verdict(trade("AAPL")) is None
    assert h.verdict(trade("TSLA")) == "symbol_deny"
    assert h.verdict(trade("NVDA")) == "symbol_allow"
    assert h.verdict(trade("aapl")) == "symbol_allow"  # exact, case-sensitive


def test_min_volume_and_min_price() -> None:
    h = Harness("min_volume: 100\nmin_price: 5")
    assert h.verdict(trade(size=100, price=5)) is None
    assert h.verdict(trade(size=99)) == "min_volume"
    assert h.verdict(agg(volume=50)) == "min_volume"
    assert h.verdict(trade(price=4.99)) == "min_price"
    assert h.verdict(agg(close=4.99)) == "min_price"
    assert h.verdict(quote(bid=4.99)) == "min_price"  # quotes have no volume; bid price counts


@pytest.mark.parametrize(
    ("when", "regular", "extended"),
    [
        ("2024-11-25T09:29:59", False, True),
        ("2024-11-25T09:30", True, True),
        ("2024-11-25T15:59:59", True, True),
        ("2024-11-25T16:00", False, True),
        ("2024-11-25T03:59", False, False),
        ("2024-11-25T04:00", False, True),
        ("2024-11-25T19:59", False, True),
        ("2024-11-25T20:00", False, False),
        ("2024-11-23T12:00", False, False),  # Saturday
        ("2024-11-24T12:00", False, False),  # Sunday
        ("2024-03-11T09:30", True, True),  # Monday after the spring DST change
        ("2024-11-04T09:29", False, True),  # Monday after the autumn DST change
        ("2024-07-01T15:59", True, True),  # summer time
    ],
)
def test_sessions_in_new_york_time(when: str, regular: bool, extended: bool) -> None:
    ms = ny_ms(when)
    assert in_session(ms, "regular") is regular
    assert in_session(ms, "extended") is extended
    assert in_session(ms, "all") is True
    assert SessionClock("regular").open(ms) is regular


def test_session_rule_spares_crypto() -> None:
    h = Harness("session: regular")
    night = ny_ms("2024-11-25T22:00")
    assert h.verdict(trade(t=night)) == "session"
    assert h.verdict(agg(s=night)) == "session"
    assert h.verdict(trade(t=night, ev="XT")) is None
    assert h.verdict(trade(t=ny_ms("2024-11-25T10:00"))) is None


def test_duplicates_within_the_window_are_dropped() -> None:
    h = Harness("dedupe: {window_seconds: 60}")
    assert h.filter.stateful
    assert h.verdict(trade(q=7)) is None
    assert h.verdict(trade(q=7)) == "duplicate"
    assert h.verdict(trade(q=7, price=101)) == "duplicate"  # same sequence: the same trade
    assert h.verdict(trade(q=8)) is None
    assert h.verdict(trade("MSFT", q=7)) is None  # another symbol
    assert h.verdict(trade(q=7, t=MONDAY_NOON + 61_000)) is None  # outside the window
    assert h.verdict(agg()) is None
    assert h.verdict(agg()) == "duplicate"  # the same aggregate again, byte for byte
    assert h.verdict(agg(close=101)) is None  # a correction (new values, same start) replaces it downstream
    assert h.verdict(quote(q=7)) is None  # quotes and trades are different kinds
    assert h.verdict(trade(q=None, ev="XT")) is None
    assert h.verdict(trade(q=None, ev="XT")) == "duplicate"  # no sequence: identical bytes


def test_bad_tick_guard_against_last_accepted_price() -> None:
    h = Harness("bad_tick: {max_deviation_pct: 10}")
    assert h.verdict(trade(price=100)) is None
    assert h.verdict(trade(price=111)) == "bad_tick"
    assert h.verdict(trade(price=89)) == "bad_tick"
    assert h.verdict(trade(price=109)) is None
    assert h.verdict(trade(price=119)) is None  # compared with 109, the last accepted
    assert h.verdict(trade("MSFT", price=500)) is None  # its own history
    assert h.verdict(quote(bid=1)) is None  # quotes are not prints


def test_rollback_restores_memory_so_a_replayed_batch_meets_the_same_state() -> None:
    h = Harness("dedupe: {window_seconds: 60}\nbad_tick: {max_deviation_pct: 10}")
    assert h.verdict(trade(q=1, price=100)) is None
    h.memory.commit(h.filter.window_ms)
    batch = [trade(q=2, price=105), trade(q=3, price=200), trade(q=2, price=105)]
    first = [h.verdict(raw) for raw in batch]
    assert first == [None, "bad_tick", "duplicate"]
    h.memory.rollback()
    assert [h.verdict(raw) for raw in batch] == first
    h.memory.commit(h.filter.window_ms)
    assert h.verdict(trade(q=2)) == "duplicate"


def test_memory_sweep_forgets_ids_older_than_the_window() -> None:
    memory = PartitionMemory()
    for n in range(60_000):
        memory.remember(memory.seen, ("T", "A", n), n)
    memory.newest_ms = 60_000
    memory.commit(window_ms=1_000)
    assert len(memory.seen) == 1_000  # ids 59000..59999: within 1 s of the newest (60000)
