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

This runs for every message, so each family's check is a function generated from the table:
straight-line attribute reads and comparisons, one test per field, returning the first field at
fault (docs/processor.md gives its measured cost). A failed check
raises `Invalid("out_of_range", ...)` naming the field; a bad symbol `Invalid("bad_symbol", ...)`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import msgspec
import msgspec.inspect

from tickpipe import contract
from tickpipe.contract import Family
from tickpipe_processor.events import RAW_KINDS
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


def decoder_floors(family: Family) -> dict[str, float]:
    """The least value the raw decoder (events.py) lets through for each output field of `family`,
    read from its declared types (`Meta(ge=0)`...) with msgspec.inspect: a field is listed only when
    every raw kind of the family has it and every number type it may be carries a `ge` (for a list,
    its items'). Those fields need no lower-bound test here; if the decoder stops guaranteeing one,
    the test comes back by itself."""
    floors: dict[str, float] | None = None
    for kind in RAW_KINDS:
        if family != kind.FAMILY:
            continue
        found: dict[str, float] = {}
        for field in msgspec.inspect.type_info(kind).fields:  # type: ignore[attr-defined]
            floor = _floor(field.type)
            if floor is not None:
                found[field.name] = floor
        floors = found if floors is None else {k: max(v, found[k]) for k, v in floors.items() if k in found}
    return floors or {}


def _floor(info: Any) -> float | None:
    """The `ge` every number in a msgspec type carries (NoneType allowed), else None."""
    members = info.types if isinstance(info, msgspec.inspect.UnionType) else (info,)
    floors: list[float] = []
    for member in members:
        if isinstance(member, msgspec.inspect.NoneType):
            continue
        if isinstance(member, msgspec.inspect.ListType):
            member = member.item_type
        if not isinstance(member, msgspec.inspect.IntType | msgspec.inspect.FloatType) or member.ge is None:
            return None
        floors.append(member.ge)
    return min(floors) if floors else None


def _refuses(field: str, column: str, nullable: bool, floor: float | None) -> list[str]:
    """Lines of the generated check that `return` the field's name when its value does not fit."""
    if field in UNCHECKED:
        return []
    out = f"return {field!r}"
    if field == "symbol":
        return ["    v = e.symbol", f"    if v not in known and not symbol_ok(v): {out}"]
    if field in EVENT_TIMES:
        return [f"    v = e.{field}", f"    if v < lo_ms or v > hi_ms: {out}"]
    present = "v is not None and " if nullable else ""
    if column == "String":
        return [f"    v = e.{field}", f"    if {present}len(v) > {MAX_TEXT}: {out}"]
    if column.startswith("Array("):
        low, high = LIMITS[column[len("Array(") : -1]]
        return [
            f"    v = e.{field}",
            "    if v:",  # None and [] need no look inside
            f"        if len(v) > {MAX_ARRAY}: {out}",
            "        for x in v:",  # a loop: measured faster than min() and max() for short lists
            f"            if {_outside('x', low, high, floor)}: {out}",
        ]
    low, high = LIMITS[column]
    return [f"    v = e.{field}", f"    if {present}({_outside('v', low, high, floor)}): {out}"]


def _outside(name: str, low: float, high: float, floor: float | None) -> str:
    """`v < low or v > high`, without the first test when the decoder's floor already ensures it.

    (A guaranteed floor also rules out NaN, which fails msgspec's `ge`.)"""
    if floor is not None and floor >= low:
        return f"{name} > {high!r}"
    return f"not ({low!r} <= {name} <= {high!r})"


def _finder_source(family: Family) -> str:
    """`find_<family>(e)`: the first field whose value does not fit its column, else None.

    Straight-line code, one test per field: `not (low <= v <= high)` (which refuses NaN: it
    compares false both ways), or `v > high` where the decoder guarantees the floor."""
    annotations = _OUTPUT[family].__annotations__
    floors = {"received_ns": 0, **decoder_floors(family)}  # received_ns: decimal digits (guards.py)
    lines = [f"def find_{family}(e):"]
    for field in contract.FIELDS[family]:
        column = COLUMN_TYPES[family][field]
        lines += _refuses(field, column, "None" in str(annotations[field]), floors.get(field))
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
