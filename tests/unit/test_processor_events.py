"""Validation and normalisation of every Polygon event kind, and every class of bad input."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tickpipe_processor.events import EVENT_KINDS, encode, parse
from tickpipe_processor.invalid import Invalid

AGG: dict[str, Any] = {
    "ev": "A", "sym": "AAPL", "v": 1200, "av": 881000, "op": 225.1, "vw": 226.02, "o": 226.0,
    "c": 226.05, "h": 226.1, "l": 225.9, "a": 225.7, "z": 80, "s": 1732300000000, "e": 1732300001000,
}  # fmt: skip
TRADE = {"ev": "T", "sym": "MSFT", "x": 4, "i": "52983525029461", "z": 3, "p": 415.5, "s": 100,
         "c": [12, 37], "t": 1732300000123, "q": 1063}  # fmt: skip
QUOTE = {"ev": "Q", "sym": "MSFT", "bx": 4, "bp": 415.4, "bs": 2, "ax": 7, "ap": 415.6, "as": 3,
         "c": 1, "i": [604], "t": 1732300000456, "q": 50385480, "z": 3}  # fmt: skip


def normalised(raw: dict[str, Any], received_ns: int | None = 17) -> dict[str, Any]:
    _, event = parse(orjson.dumps(raw), received_ns)
    return dict(orjson.loads(encode(event)))


def reason_of(value: bytes | dict[str, Any]) -> tuple[str, str]:
    data = value if isinstance(value, bytes) else orjson.dumps(value)
    with pytest.raises(Invalid) as caught:
        parse(data, None)
    return caught.value.reason, caught.value.detail


def test_stock_aggregate_maps_every_field_in_contract_order() -> None:
    out = normalised(AGG)
    assert list(out) == [
        "ev", "symbol", "start_ms", "end_ms", "open", "high", "low", "close", "volume", "vwap",
        "day_volume", "day_open", "day_vwap", "avg_size", "otc", "received_ns",
    ]  # fmt: skip
    assert out == {
        "ev": "A", "symbol": "AAPL", "start_ms": 1732300000000, "end_ms": 1732300001000, "open": 226.0,
        "high": 226.1, "low": 225.9, "close": 226.05, "volume": 1200, "vwap": 226.02,
        "day_volume": 881000, "day_open": 225.1, "day_vwap": 225.7, "avg_size": 80, "otc": None,
        "received_ns": 17,
    }  # fmt: skip


def test_minute_aggregate_keeps_its_kind_and_otc() -> None:
    out = normalised({**AGG, "ev": "AM", "otc": True})
    assert out["ev"] == "AM"
    assert out["otc"] is True


def test_trade_and_quote_map_polygon_keys() -> None:
    assert normalised(TRADE) == {
        "ev": "T", "symbol": "MSFT", "ts_ms": 1732300000123, "price": 415.5, "size": 100,
        "exchange": 4, "trade_id": "52983525029461", "tape": 3, "conditions": [12, 37],
        "sequence": 1063, "received_ns": 17,
    }  # fmt: skip
    assert normalised(QUOTE) == {
        "ev": "Q", "symbol": "MSFT", "ts_ms": 1732300000456, "bid_price": 415.4, "bid_size": 2,
        "bid_exchange": 4, "ask_price": 415.6, "ask_size": 3, "ask_exchange": 7, "conditions": [1],
        "tape": 3, "sequence": 50385480, "received_ns": 17,
    }  # fmt: skip


def test_optional_fields_absent_become_null() -> None:
    out = normalised({"ev": "T", "sym": "X", "x": 1, "p": 2, "s": 3, "t": 4}, received_ns=None)
    assert out == {
        "ev": "T", "symbol": "X", "ts_ms": 4, "price": 2.0, "size": 3, "exchange": 1, "trade_id": None,
        "tape": None, "conditions": None, "sequence": None, "received_ns": None,
    }  # fmt: skip


def test_crypto_and_forex_use_the_pair_as_symbol() -> None:
    xa = {"ev": "XA", "pair": "BTC-USD", "v": 0.5, "vw": 97000.1, "z": 0.01, "o": 97000.0,
          "c": 97010.0, "h": 97020.0, "l": 96990.0, "s": 1, "e": 2}  # fmt: skip
    assert normalised(xa)["symbol"] == "BTC-USD"
    assert normalised(xa)["avg_size"] == 0.01
    xt = {
        "ev": "XT",
        "pair": "ETH-USD",
        "p": 3000.5,
        "t": 9,
        "s": 0.25,
        "c": [1],
        "i": "abc",
        "x": 1,
        "r": 10,
    }
    assert normalised(xt) == {
        "ev": "XT", "symbol": "ETH-USD", "ts_ms": 9, "price": 3000.5, "size": 0.25, "exchange": 1,
        "trade_id": "abc", "tape": None, "conditions": [1], "sequence": None, "received_ns": 17,
    }  # fmt: skip
    xq = {"ev": "XQ", "pair": "BTC-USD", "bp": 1.0, "bs": 2.0, "ap": 1.5, "as": 3.0, "t": 5, "x": 2, "r": 6}
    out = normalised(xq)
    assert (out["bid_exchange"], out["ask_exchange"], out["conditions"]) == (2, 2, None)
    ca = {"ev": "CA", "pair": "EUR/USD", "o": 1.05, "c": 1.06, "h": 1.07, "l": 1.04, "v": 125, "s": 1, "e": 2}
    assert normalised(ca)["symbol"] == "EUR/USD"
    assert normalised(ca)["vwap"] is None


def test_every_kind_is_known() -> None:
    assert set(EVENT_KINDS) == {"A", "AM", "T", "Q", "XA", "XAS", "XT", "XQ", "XL2", "CA", "CAS", "C"}


def test_unknown_keys_are_ignored() -> None:
    assert normalised({**TRADE, "new_field": [1, 2]})["symbol"] == "MSFT"


@pytest.mark.parametrize(
    ("value", "reason", "names"),
    [
        (b'{"ev":"T","sym":', "malformed_json", "not valid JSON"),
        (b"\xff\xfe{}", "malformed_json", "UTF-8"),
        (b"", "malformed_json", ""),
        (b"[1, 2]", "not_an_object", "array"),
        (b'"AAPL"', "not_an_object", "str"),
        ({"ev": "ZZ", "sym": "A"}, "unknown_event", "ev"),
        ({"sym": "A", "p": 1}, "missing_field", "ev"),
        ({k: v for k, v in TRADE.items() if k != "p"}, "missing_field", "`p`"),
        ({**TRADE, "sym": None}, "missing_field", "sym"),
        ({**TRADE, "sym": ""}, "missing_field", "sym"),
        ({**TRADE, "p": "415.5"}, "wrong_type", "p"),
        ({**TRADE, "s": True}, "wrong_type", "s"),
        ({**TRADE, "t": 1.5}, "wrong_type", "t"),
        ({**TRADE, "c": [12, "x"]}, "wrong_type", "c[1]"),
        ({**TRADE, "ev": 5}, "wrong_type", "ev"),
        ({**TRADE, "s": -100}, "negative_value", "s"),
        ({**QUOTE, "bp": -0.01}, "negative_value", "bp"),
        ({**AGG, "h": 1.0, "l": 2.0}, "high_below_low", "`h`"),
        ({**AGG, "e": AGG["s"] - 1}, "end_before_start", "`e`"),
    ],
)
def test_bad_input_is_named(value: bytes | dict[str, Any], reason: str, names: str) -> None:
    got_reason, detail = reason_of(value)
    assert got_reason == reason, detail
    assert names in detail


@pytest.mark.parametrize(
    ("text", "field"),
    [
        (b'{"ev":"T","sym":"A","x":1,"p":NaN,"s":1,"t":1}', "p"),
        (b'{"ev":"T","sym":"A","x":1,"p":1,"s":Infinity,"t":1}', "s"),
        (b'{"ev":"T","sym":"A","x":1,"p":1e400,"s":1,"t":1}', "p"),
        (b'{"ev":"T","sym":"A","x":1,"p":-Infinity,"s":1,"t":1}', "p"),
    ],
)
def test_nan_and_infinity_are_not_finite(text: bytes, field: str) -> None:
    reason, detail = reason_of(text)
    assert reason == "not_finite"
    assert detail.startswith(field)
