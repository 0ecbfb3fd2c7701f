"""Every normalised value against the ClickHouse column it lands in: stored right, or `out_of_range`.

ClickHouse stores what it is given modulo the column's width (exchange 70000 in a UInt16 becomes
4464) and sums whatever floats arrive (1e308 makes a rollup's sum inf), so the processor refuses
such values before they reach FILTERED_TOPIC. One table, `COLUMN_TYPES`, names the ClickHouse type
of every field of every family (the migrations' columns, held to clickhouse/migrations by
tests/unit/test_processor_bounds.py); `LIMITS` says what each type accepts:

- integer columns (UInt8, UInt16, UInt64, Int64): the type's range; arrays: each element, at most
  `MAX_ARRAY` of them;
- Float64 prices and sizes: finite and at most `MAX_FLOAT` (1e12) in magnitude;
- event times (the Int64 inputs of `DateTime64(3)` timestamps): inside the window given at start
  (default 1990-01-01 to now + 1 day, `PROCESSOR_EVENT_TIME_MIN` / `PROCESSOR_EVENT_TIME_AHEAD_S`);
- symbols: 1-64 characters of `SYMBOL_CHARS` (letters, digits, `.`, `-`, `/`, `:`): `BRK.A`,
  `X:BTCUSD`, `C:EUR-USD`, `EUR/USD`; other strings at most `MAX_TEXT` characters.

This runs for every message, so each family's check is a function generated from the table: one
chained boolean expression of attribute reads and comparisons for the common case, then one test
per field to name the one at fault (docs/processor.md gives its measured cost). A failed check
raises `Invalid("out_of_range", ...)` naming the field; a bad symbol `Invalid("bad_symbol", ...)`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from tickpipe import contract
from tickpipe.contract import Family
from tickpipe_processor.invalid import Invalid
from tickpipe_processor.output import Aggregate, Event, Quote, Trade

# The ClickHouse type of each field's column (stored, or the EPHEMERAL input a stored column is
# computed from) in clickhouse/migrations/001_raw_tables.sql, wrappers (LowCardinality) removed.
COLUMN_TYPES: dict[Family, dict[str, str]] = {
    "aggregate": {
        "ev": "String", "symbol": "String", "start_ms": "Int64", "end_ms": "Int64",
        "open": "Float64", "high": "Float64", "low": "Float64", "close": "Float64",
        "volume": "Float64", "vwap": "Float64", "day_volume": "UInt64", "day_open": "Float64",
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
}  # fmt: skip

# Fields whose Int64 is an event time in Unix ms (the input of a DateTime64(3) column).
EVENT_TIMES = frozenset({"start_ms", "end_ms", "ts_ms"})
# Fields not checked here: `ev` is one of the decoder's tags, `otc` a bool.
UNCHECKED = frozenset({"ev", "otc"})

MAX_FLOAT = 1e12  # prices and sizes: far above any real one, far below what makes a sum overflow
MAX_ARRAY = 64  # conditions per event
MAX_TEXT = 128  # trade ids
MAX_SYMBOL = 64
SYMBOL_CHARS = "A-Za-z0-9./:-"
_SYMBOL = re.compile(f"[{SYMBOL_CHARS}]{{1,{MAX_SYMBOL}}}")
_INT64_MAX = 2**63 - 1

# What each column type accepts: (least, greatest).
LIMITS: dict[str, tuple[float, float]] = {
    "UInt8": (0, 2**8 - 1),
    "UInt16": (0, 2**16 - 1),
    # received_ns is read with toInt64() by its table's DEFAULT: a UInt64 above Int64's range would
    # turn negative there, so UInt64 inputs stop at Int64's maximum.
    "UInt64": (0, _INT64_MAX),
    "Int64": (-(2**63), _INT64_MAX),
    "Float64": (-MAX_FLOAT, MAX_FLOAT),
}

DEFAULT_EVENT_TIME_MIN_MS = int(datetime(1990, 1, 1, tzinfo=UTC).timestamp() * 1000)
DEFAULT_EVENT_TIME_AHEAD_S = 86_400
_KNOWN_SYMBOLS_LIMIT = 200_000
_OUTPUT: dict[Family, type[Event]] = {"aggregate": Aggregate, "trade": Trade, "quote": Quote}


def _accepts(field: str, column: str, nullable: bool) -> str | None:
    """A Python expression true when `e.<field>` fits its column; None when the field is unchecked."""
    v = f"e.{field}"
    none_or = ""
    if nullable:  # read the attribute once: `(v := e.f) is None or ... v ...`
        none_or, v = f"(v := {v}) is None or ", "v"
    if field in UNCHECKED:
        return None
    if field == "symbol":
        return f"({v} in known or symbol_ok({v}))"
    if field in EVENT_TIMES:
        return f"(lo_ms <= {v} <= hi_ms)"
    if column == "String":
        return f"({none_or}len({v}) <= {MAX_TEXT})"
    if column.startswith("Array("):
        low, high = LIMITS[column[len("Array(") : -1]]
        fits = f"len({v}) <= {MAX_ARRAY} and {low!r} <= min({v}) and max({v}) <= {high!r}"
        return f"({none_or}not {v} or ({fits}))"
    low, high = LIMITS[column]
    return f"({none_or}{low!r} <= {v} <= {high!r})"


def _finder_source(family: Family) -> str:
    """`find_<family>(e)`: None when every field fits, else the first field that does not.

    The common case is one chained boolean expression over the fields (no per-field branches)."""
    annotations = _OUTPUT[family].__annotations__
    checks = [
        (field, expression)
        for field in contract.FIELDS[family]
        if (expression := _accepts(field, COLUMN_TYPES[family][field], "None" in str(annotations[field])))
        is not None
    ]
    lines = [f"def find_{family}(e):", "    if (" + "\n        and ".join(c for _, c in checks) + "):"]
    lines.append("        return None")
    lines += [f"    if not {expression}: return {field!r}" for field, expression in checks]
    lines.append("    return None")
    return "\n".join(lines)


class Bounds:
    """The checks of every family; `check(event)` raises `Invalid` for a value its column cannot hold.

    `refresh()` moves the window's upper end to now + `ahead_s` (the batch step calls it per batch).
    """

    def __init__(
        self,
        event_time_min_ms: int = DEFAULT_EVENT_TIME_MIN_MS,
        event_time_ahead_s: int = DEFAULT_EVENT_TIME_AHEAD_S,
    ) -> None:
        self.ahead_ms = event_time_ahead_s * 1000
        self.known: set[str] = set()  # symbols already checked: one set lookup per message
        # The generated functions' globals: the window's ends are read as (cached) global names.
        self._namespace: dict[str, Any] = {
            "lo_ms": event_time_min_ms, "hi_ms": 0, "known": self.known, "symbol_ok": self._symbol_ok,
        }  # fmt: skip
        self.refresh()
        self.finders: dict[type, Callable[[Any], str | None]] = {}
        for family in COLUMN_TYPES:
            exec(_finder_source(family), self._namespace)  # noqa: S102  (source built from COLUMN_TYPES)
            self.finders[_OUTPUT[family]] = self._namespace[f"find_{family}"]

    @property
    def window(self) -> dict[str, int]:
        """The event-time window in force, Unix ms: {"lo_ms": ..., "hi_ms": ...}."""
        return {"lo_ms": self._namespace["lo_ms"], "hi_ms": self._namespace["hi_ms"]}

    def refresh(self, now_ms: int | None = None) -> None:
        now = time.time_ns() // 1_000_000 if now_ms is None else now_ms
        self._namespace["hi_ms"] = now + self.ahead_ms

    def _symbol_ok(self, symbol: str) -> bool:
        if _SYMBOL.fullmatch(symbol) is None:
            return False
        if len(self.known) >= _KNOWN_SYMBOLS_LIMIT:
            self.known.clear()
        self.known.add(symbol)
        return True

    def check(self, event: Event) -> None:
        """Raise `Invalid` naming the first field whose value its column cannot hold."""
        field = self.finders[type(event)](event)
        if field is not None:
            raise self.refusal(event, field)

    def refusal(self, event: Event, field: str) -> Invalid:
        value = getattr(event, field)
        if field == "symbol":
            shown = repr(value[:40]) + ("..." if len(value) > 40 else "")
            return Invalid(
                "bad_symbol",
                f"symbol {shown} ({len(value)} chars) is not 1-{MAX_SYMBOL} of [{SYMBOL_CHARS}]",
            )
        family = next(f for f, output in _OUTPUT.items() if output is type(event))
        column = COLUMN_TYPES[family][field]
        if field in EVENT_TIMES:
            allowed = f"the event-time window {self.window['lo_ms']}..{self.window['hi_ms']} ms"
        elif column == "String":
            allowed = f"at most {MAX_TEXT} characters"
        elif column.startswith("Array("):
            low, high = LIMITS[column[len("Array(") : -1]]
            allowed = f"at most {MAX_ARRAY} values in {low:g}..{high:g} ({column})"
        else:
            low, high = LIMITS[column]
            allowed = f"{low:g}..{high:g} ({column})"
        shown_value = repr(value)
        if len(shown_value) > 60:
            shown_value = shown_value[:60] + "..."
        return Invalid("out_of_range", f"{field}: {shown_value} is outside {allowed}")
