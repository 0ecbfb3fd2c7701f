"""Checks on a raw message before it is decoded: nesting depth and header sizes.

A JSON value nested a thousand levels deep is 2 KB, and decoding it recurses once per level
(msgspec raises RecursionError; the standard library's parser, used to explain bad values, too);
a header of 5000 digits makes `int()` raise ValueError. Both are refused here with a reason
(`too_deep`, `bad_header`) before anything recursive or unbounded touches them.

The depth check is two `bytes.count` calls per message (C, about 0.1 µs): a value with at most
`MAX_DEPTH` opening brackets cannot be nested deeper than that. Only a value with more brackets
(none of Polygon's events have more than two) is scanned, once, outside strings.
"""

from __future__ import annotations

import re

from tickpipe_processor.invalid import Invalid

MAX_DEPTH = 32  # a Polygon event is an object holding at most one array (conditions)
MAX_NS_DIGITS = 19  # Unix nanoseconds stay 19 digits until the year 2286
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(rb"[\[\]{}]")


def depth_of(value: bytes) -> int:
    """The deepest nesting of arrays and objects in `value` (brackets inside strings ignored)."""
    depth = deepest = 0
    for match in _BRACKET.finditer(_STRING.sub(b"", value)):
        if match.group() in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def check_depth(value: bytes, limit: int = MAX_DEPTH) -> None:
    """Raise `Invalid("too_deep")` when `value` nests arrays or objects deeper than `limit`."""
    if value.count(b"{") + value.count(b"[") <= limit:
        return
    depth = depth_of(value)
    if depth > limit:
        raise Invalid(
            "too_deep", f"the value nests {depth} levels of arrays or objects; the limit is {limit}"
        )


def received_ns(header: bytes | str | None, name: str) -> int:
    """The producer's receive time from its header: decimal nanoseconds, at most 19 digits."""
    if isinstance(header, str):
        header = header.encode("utf-8", "replace")
    if header and len(header) <= MAX_NS_DIGITS and header.isdigit():
        return int(header)
    shown = header[:40] if header is not None else None
    more = f" ({len(header)} bytes)" if header is not None and len(header) > 40 else ""
    raise Invalid(
        "bad_header", f"header {name} is {shown!r}{more}, not decimal nanoseconds (at most 19 digits)"
    )
