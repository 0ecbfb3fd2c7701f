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
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec
import msgspec.inspect

from tickpipe import contract
from tickpipe.contract import Family
from tickpipe_processor.columns import (
    COLUMN_TYPES,
    EVENT_TIMES,
    LIMITS,
    MAX_ARRAY,
    MAX_FLOAT,
    MAX_LEVELS,
    MAX_SYMBOL,
    MAX_TEXT,
    SYMBOL_CHARS,
    UNCHECKED,
)
from tickpipe_processor.events import RAW_KINDS
from tickpipe_processor.invalid import Invalid
from tickpipe_processor.output import Aggregate, Book, Event, Quote, Trade

__all__ = [
    "COLUMN_TYPES", "EVENT_TIMES", "LIMITS", "MAX_ARRAY", "MAX_FLOAT", "MAX_SYMBOL", "MAX_TEXT",
    "SYMBOL_CHARS", "UNCHECKED", "Bounds", "decoder_guarantees",
]  # fmt: skip
_SYMBOL = re.compile(f"[{SYMBOL_CHARS}]{{1,{MAX_SYMBOL}}}")
DEFAULT_EVENT_TIME_MIN_MS = int(datetime(1990, 1, 1, tzinfo=UTC).timestamp() * 1000)
DEFAULT_EVENT_TIME_AHEAD_S = 86_400
_KNOWN_SYMBOLS_LIMIT = 200_000
_OUTPUT: dict[Family, type[Event]] = {"aggregate": Aggregate, "trade": Trade, "quote": Quote, "book": Book}


@dataclass(frozen=True)
class Guarantee:
    """What the raw decoder ensures of one output field: every number in floor..ceiling (None: no
    such bound), a list at most `max_length` long."""

    floor: float | None = None
    ceiling: float | None = None
    max_length: int | None = None


def decoder_guarantees(family: Family) -> dict[str, Guarantee]:
    """What the raw decoder (events.py) ensures of each output field of `family`, read from its
    declared types (`Meta(ge=0, le=...)`) with msgspec.inspect. A field is listed only when every
    raw kind of the family has it (its attributes carry the output names); the weakest bound over
    the kinds counts. The generated checks skip what is listed here: the decoder has done it in C.
    If the decoder stops declaring a bound, the check here comes back by itself."""
    found: dict[str, Guarantee] | None = None
    for kind in RAW_KINDS:
        if family != kind.FAMILY:
            continue
        ours = {field.name: _guarantee(field.type) for field in msgspec.inspect.type_info(kind).fields}  # type: ignore[attr-defined]
        found = ours if found is None else {k: _weakest(g, ours[k]) for k, g in found.items() if k in ours}
    return found or {}


def _guarantee(info: Any) -> Guarantee:
    members = info.types if isinstance(info, msgspec.inspect.UnionType) else (info,)
    floors: list[float | None] = []
    ceilings: list[float | None] = []
    lengths: list[int | None] = []
    for member in members:
        if isinstance(member, msgspec.inspect.NoneType):
            continue
        if isinstance(member, msgspec.inspect.ListType):
            lengths.append(member.max_length)
            member = member.item_type
        else:
            lengths.append(None)
        if not isinstance(member, msgspec.inspect.IntType | msgspec.inspect.FloatType):
            return Guarantee()
        floors.append(member.ge)
        ceilings.append(member.le)
    return Guarantee(_least(floors), _most(ceilings), _most(lengths))


def _least(values: list[Any]) -> Any:
    return None if not values or None in values else min(values)


def _most(values: list[Any]) -> Any:
    return None if not values or None in values else max(values)


def _weakest(a: Guarantee, b: Guarantee) -> Guarantee:
    return Guarantee(
        _least([a.floor, b.floor]), _most([a.ceiling, b.ceiling]), _most([a.max_length, b.max_length])
    )


def _outside(name: str, low: float, high: float, given: Guarantee) -> str | None:
    """A test true when `name` is outside low..high, leaving out what the decoder guarantees;
    None when nothing is left to test. (A guaranteed bound also rules out NaN: msgspec's `ge`/`le`
    refuse it; an unguarded float is tested as `not (low <= v <= high)`, which refuses NaN too.)"""
    need_low = given.floor is None or given.floor < low
    need_high = given.ceiling is None or given.ceiling > high
    if need_low and need_high:
        return f"not ({low!r} <= {name} <= {high!r})"
    if need_low:
        return f"{name} < {low!r}"
    if need_high:
        return f"{name} > {high!r}"
    return None


def _refuses(field: str, column: str, nullable: bool, given: Guarantee) -> list[str]:
    """Lines of the generated check that `return` the field's name when its value does not fit."""
    out = f"return {field!r}"
    read = f"    v = e.{field}"
    if field in UNCHECKED:
        return []
    if field == "symbol":
        return [read, f"    if v not in known and not symbol_ok(v): {out}"]
    if field in EVENT_TIMES:
        return [read, f"    if v < lo_ms or v > hi_ms: {out}"]
    present = "v is not None and " if nullable else ""
    if column == "String":
        return [read, f"    if {present}len(v) > {MAX_TEXT}: {out}"]
    if column == "Array(Tuple(Float64, Float64))":  # book levels: (price, size), each in 0..MAX_FLOAT
        level = f"not (0 <= p <= {MAX_FLOAT!r}) or not (0 <= s <= {MAX_FLOAT!r})"
        too_long = f"    if len(v) > {MAX_LEVELS}: {out}"
        return [read, too_long, "    for p, s in v:", f"        if {level}: {out}"]
    if column.startswith("Array("):
        low, high = LIMITS[column[len("Array(") : -1]]
        item = _outside("x", low, high, given)
        long = given.max_length is None or given.max_length > MAX_ARRAY
        if item is None and not long:
            return []
        lines = [read, "    if v:"]  # None and [] need no look inside
        if long:
            lines.append(f"        if len(v) > {MAX_ARRAY}: {out}")
        if item is not None:  # a loop: measured faster than min() and max() for short lists
            lines += ["        for x in v:", f"            if {item}: {out}"]
        return lines
    low, high = LIMITS[column]
    test = _outside("v", low, high, given)
    return [] if test is None else [read, f"    if {present}({test}): {out}"]


def _finder_source(family: Family) -> str:
    """`find_<family>(e)`: the first field whose value does not fit its column, else None.

    Straight-line code, one test per field, without the tests the decoder has already made."""
    annotations = _OUTPUT[family].__annotations__
    given = decoder_guarantees(family)
    given.setdefault("received_ns", Guarantee(floor=0))  # decimal digits only (guards.py)
    lines = [f"def find_{family}(e):"]
    for field in contract.FIELDS[family]:
        column = COLUMN_TYPES[family][field]
        nullable = "None" in str(annotations[field])
        lines += _refuses(field, column, nullable, given.get(field, Guarantee()))
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
        elif column == "Array(Tuple(Float64, Float64))":
            allowed = f"at most {MAX_LEVELS} levels of price and size in 0..{MAX_FLOAT:g}"
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
