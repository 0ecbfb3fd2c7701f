"""The ClickHouse column each normalised field lands in, and what each column type accepts.

One table for every value check of the processor: bounds.py generates its per-family checks from
it, and the raw decoder's declared types (events.py) take their ceilings from it, so a bound is
written once. tests/unit/test_processor_bounds.py holds COLUMN_TYPES to clickhouse/migrations and
each limit to its type's width.
"""

from __future__ import annotations

from tickpipe.contract import Family

# The ClickHouse type of each field's column (stored, or the EPHEMERAL input a stored column is
# computed from) in clickhouse/migrations (001_raw_tables.sql and the later ALTERs), wrappers
# (LowCardinality) removed.
COLUMN_TYPES: dict[Family, dict[str, str]] = {
    "aggregate": {
        "ev": "String", "symbol": "String", "start_ms": "Int64", "end_ms": "Int64",
        "open": "Float64", "high": "Float64", "low": "Float64", "close": "Float64",
        "volume": "Float64", "vwap": "Float64", "day_volume": "Float64", "day_open": "Float64",
        "day_vwap": "Float64", "avg_size": "Float64", "otc": "Bool", "received_ns": "UInt64",
    },
    "trade": {
        "ev": "String", "symbol": "String", "ts_ms": "Int64", "price": "Float64", "size": "Float64",
        "exchange": "UInt16", "trade_id": "String", "tape": "UInt8", "conditions": "Array(UInt16)",
        "sequence": "UInt64", "received_ns": "UInt64",
    },
    "quote": {
        "ev": "String", "symbol": "String", "ts_ms": "Int64", "bid_price": "Float64",
        "bid_size": "Float64", "bid_exchange": "UInt16", "ask_price": "Float64", "ask_size": "Float64",
        "ask_exchange": "UInt16", "conditions": "Array(UInt16)", "tape": "UInt8", "sequence": "UInt64",
        "received_ns": "UInt64",
    },
    "book": {  # clickhouse/migrations/004_books.sql
        "ev": "String", "symbol": "String", "ts_ms": "Int64", "exchange": "UInt16",
        "bids": "Array(Tuple(Float64, Float64))", "asks": "Array(Tuple(Float64, Float64))",
        "received_ns": "UInt64",
    },
}  # fmt: skip

# Fields whose Int64 is an event time in Unix ms (the input of a DateTime64(3) column).
EVENT_TIMES = frozenset({"start_ms", "end_ms", "ts_ms"})
# Fields not checked here: `ev` is one of the decoder's tags, `otc` a bool.
UNCHECKED = frozenset({"ev", "otc"})

MAX_FLOAT = 1e12  # prices and sizes: far above any real one, far below what makes a sum overflow
MAX_ARRAY = 64  # conditions per event
MAX_LEVELS = 1000  # price levels per side of a book snapshot
MAX_TEXT = 128  # trade ids
MAX_SYMBOL = 64
SYMBOL_CHARS = "A-Za-z0-9./:-"
INT64_MAX = 2**63 - 1

# What each column type accepts: (least, greatest).
LIMITS: dict[str, tuple[float, float]] = {
    "UInt8": (0, 2**8 - 1),
    "UInt16": (0, 2**16 - 1),
    # received_ns is read with toInt64() by its table's DEFAULT: a UInt64 above Int64's range would
    # turn negative there, so UInt64 inputs stop at Int64's maximum.
    "UInt64": (0, INT64_MAX),
    "Int64": (-(2**63), INT64_MAX),
    "Float64": (-MAX_FLOAT, MAX_FLOAT),
}
