"""Pure logic of `tickpipe repair`: gap records, channels REST serves, identities, REST -> websocket."""

from __future__ import annotations

import orjson
import pytest

from tickpipe_history.pages import AggBar, RestQuote, RestTrade
from tickpipe_history.repair import Gap
from tickpipe_history.repair_events import bar_event, channels, identity, quote_event, trade_event


def test_a_gap_record_parses_and_a_bad_one_raises() -> None:
    record = {"gap_id": "f:1", "feed": "f", "from_ms": 1, "to_ms": 9, "topics": ["A.*"], "why": "code 1011"}
    assert Gap.parse(orjson.dumps(record)) == Gap("f:1", "f", 1, 9, ("A.*",), "code 1011")
    with pytest.raises(KeyError):
        Gap.parse(orjson.dumps({"gap_id": "x"}))


def test_only_the_channels_rest_serves_are_repaired() -> None:
    assert channels(["A.*", "AM.AAPL", "T.AAPL", "T.MSFT", "Q.*", "XT.*", "LULD.*", "A"]) == {
        "A": {"*"},
        "AM": {"AAPL"},
        "T": {"AAPL", "MSFT"},
        "Q": {"*"},
    }


def test_rest_rows_become_the_websocket_events_with_the_same_identity() -> None:
    trade = RestTrade(
        sip_timestamp=1_709_821_800_004_000_000, price=140.0, size=20.0, exchange=3,
        sequence_number=7, id="5", tape=3, conditions=[14],
    )  # fmt: skip
    live_trade = {"ev": "T", "sym": "NVDA", "x": 3, "i": "5", "z": 3, "p": 140.0, "s": 20, "c": [14]}
    live_trade |= {"t": 1_709_821_800_004, "q": 7}
    assert trade_event("NVDA", trade) == live_trade
    assert identity(trade_event("NVDA", trade)) == identity(live_trade)

    quote = RestQuote(
        sip_timestamp=1_709_821_800_005_000_000, sequence_number=8, bid_price=140.2, bid_size=2500.0,
        bid_exchange=19, ask_price=140.22, ask_size=300.0, ask_exchange=7, conditions=[1], tape=3,
    )  # fmt: skip
    live_quote = {"ev": "Q", "sym": "NVDA", "bx": 19, "bp": 140.2, "bs": 2500, "ax": 7, "ap": 140.22}
    live_quote |= {"as": 300, "c": 1, "t": 1_709_821_800_005, "q": 8, "z": 3}
    assert quote_event("NVDA", quote) == live_quote

    bar = AggBar(t=1_709_821_800_000, o=1.0, h=2.0, l=0.5, c=1.5, v=300.0, vw=1.2, n=4)
    event = bar_event("A", "NVDA", 1000, bar)
    assert event == {
        "ev": "A", "sym": "NVDA", "v": 300, "vw": 1.2, "o": 1.0, "c": 1.5, "h": 2.0, "l": 0.5,
        "s": 1_709_821_800_000, "e": 1_709_821_801_000, "z": 75,
    }  # fmt: skip
    assert identity(event) == ("A", "NVDA", 1_709_821_800_000)
    assert identity({"ev": "status"}) is None
