"""The published examples and, for each, the FILTERED_TOPIC event it must become (None: refused).

The expected values are written out here from the examples themselves (not computed by the code
under test): the contract's field names (tickpipe/contract.py), Polygon's values unchanged, integer
ids as the contract's strings, a forex bar without `e` ending one bar width after its start.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

_FILE = Path(__file__).with_name("polygon_examples.json")
EXAMPLES: dict[str, dict[str, Any]] = {e["name"]: e for e in json.loads(_FILE.read_text())["examples"]}

_AGG_NONE = {
    "vwap": None,
    "day_volume": None,
    "day_open": None,
    "day_vwap": None,
    "avg_size": None,
    "otc": None,
}

EXPECTED: dict[str, dict[str, Any] | None] = {
    "T /stocks/T": {
        "ev": "T", "symbol": "MSFT", "ts_ms": 1536036818784, "price": 114.125, "size": 100,
        "exchange": 4, "trade_id": "12345", "tape": 3, "conditions": [0, 12], "sequence": 3681328,
    },
    "T derived: no `c`, integer price": {
        "ev": "T", "symbol": "MSFT", "ts_ms": 1536036818784, "price": 170.0, "size": 100,
        "exchange": 4, "trade_id": "12345", "tape": 3, "conditions": None, "sequence": 3681328,
    },
    "Q /stocks/Q": {
        "ev": "Q", "symbol": "MSFT", "ts_ms": 1536036818784, "bid_price": 114.125, "bid_size": 100,
        "bid_exchange": 4, "ask_price": 114.128, "ask_size": 160, "ask_exchange": 7, "conditions": [0],
        "tape": 3, "sequence": 50385480,
    },
    "A /stocks/A": {
        "ev": "A", "symbol": "SPCE", "start_ms": 1610144868000, "end_ms": 1610144869000, "open": 25.39,
        "high": 25.39, "low": 25.39, "close": 25.39, "volume": 200, "vwap": 25.3981,
        "day_volume": 8642007, "day_open": 25.66, "day_vwap": 25.3714, "avg_size": 50, "otc": None,
    },
    "AM /stocks/AM": {
        "ev": "AM", "symbol": "GTE", "start_ms": 1610144640000, "end_ms": 1610144700000, "open": 0.4488,
        "high": 0.4489, "low": 0.4486, "close": 0.4486, "volume": 4110, "vwap": 0.4488,
        "day_volume": 9470157, "day_open": 0.4372, "day_vwap": 0.4352, "avg_size": 685, "otc": None,
    },
    "AM /launchpad/crypto/AM": {
        "ev": "AM", "symbol": "X:BTC-USD", "start_ms": 1610463240000, "end_ms": 1610463300000,
        "open": 27503.8, "high": 27893.8, "low": 26503.8, "close": 27203.8, "volume": 951.6112,
        "vwap": 26503.8, "day_volume": 738.6112, "day_open": 26503.8, "day_vwap": 26503.8, "avg_size": 10,
        "otc": None,
    },
    "XT /crypto/XT": {
        "ev": "XT", "symbol": "BTC-USD", "ts_ms": 1610462007425, "price": 33021.9, "size": 0.01616617,
        "exchange": 3, "trade_id": "14272084", "tape": None, "conditions": [2], "sequence": None,
    },
    "XQ /crypto/XQ": {
        "ev": "XQ", "symbol": "BTC-USD", "ts_ms": 1610462411115, "bid_price": 33052.79, "bid_size": 0.48,
        "bid_exchange": 1, "ask_price": 33073.19, "ask_size": 0.601, "ask_exchange": 1, "conditions": None,
        "tape": None, "sequence": None,
    },
    "XL2 /crypto/XL2": {
        "ev": "XL2", "symbol": "BTC-USD", "ts_ms": 1610462411115, "exchange": 1,
        "bids": [[33712.71, 0.18635], [33712.7, 0.134]], "asks": [[33718.23, 3.5527483], [33718.24, 0.1]],
    },
    "XA /crypto/XA": {
        "ev": "XA", "symbol": "BCD-USD", "start_ms": 1610463240000, "end_ms": 1610463300000, "open": 0.772,
        "high": 0.784, "low": 0.771, "close": 0.784, "volume": 951.6112, **_AGG_NONE, "vwap": 0.7756,
        "avg_size": 73,
    },
    "XAS /crypto/XAS": {
        "ev": "XAS", "symbol": "BCD-USD", "start_ms": 1610463240000, "end_ms": 1610463300000,
        "open": 0.772, "high": 0.784, "low": 0.771, "close": 0.784, "volume": 951.6112, **_AGG_NONE,
        "vwap": 0.7756, "avg_size": 73,
    },
    "C /forex/C": {
        "ev": "C", "symbol": "USD/CNH", "ts_ms": 1536036818784, "bid_price": 6.83363, "bid_size": None,
        "bid_exchange": 44, "ask_price": 6.83366, "ask_size": None, "ask_exchange": 44, "conditions": None,
        "tape": None, "sequence": None,
    },
    "CA /forex/CA": {
        "ev": "CA", "symbol": "USD/EUR", "start_ms": 1539145740000, "end_ms": 1539145800000,
        "open": 0.8687, "high": 0.86889, "low": 0.8686, "close": 0.86889, "volume": 20, **_AGG_NONE,
    },
    "CAS /forex/CAS": {
        "ev": "CAS", "symbol": "USD/EUR", "start_ms": 1539145740000, "end_ms": 1539145741000,
        "open": 0.8687, "high": 0.86889, "low": 0.8686, "close": 0.86889, "volume": 20, **_AGG_NONE,
    },
    # Channels the subscriptions CSV refuses (producer/tickpipe_producer/subscriptions.py, REFUSED_CHANNELS).
    "LULD /stocks/LULD": None,
    "NOI /stocks/NOI": None,
    "FMV /business/stocks/FMV": None,
}  # fmt: skip
