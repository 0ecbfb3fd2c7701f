"""Why a raw value is unusable: the `Invalid` exception and its DLQ reason codes.

Reason codes (header `tp.dlq.reason`): oversized, malformed_json, not_an_object, unknown_event,
missing_field, wrong_type, not_finite, negative_value, high_below_low, end_before_start,
bad_header, too_deep (nested deeper than guards.MAX_DEPTH), out_of_range (a value its ClickHouse
column cannot hold, or an event time outside the window: bounds.py), bad_symbol, unprocessable
(any other exception while handling the message: its type and message). The detail (header
`tp.dlq.detail`) names the Polygon key at fault.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import msgspec

DLQ_REASONS = (
    "oversized", "malformed_json", "not_an_object", "unknown_event", "missing_field", "wrong_type",
    "not_finite", "negative_value", "high_below_low", "end_before_start", "bad_header", "too_deep",
    "out_of_range", "bad_symbol", "unprocessable",
)  # fmt: skip
DETAIL_LIMIT = 300

# msgspec's validation messages, in the order they are tried, and the reason each means.
_VALIDATION_REASONS = (
    (re.compile(r"^Object missing required field"), "missing_field"),
    (re.compile(r"^Expected `\w+`, got `null`"), "missing_field"),
    (re.compile(r"^Expected `str` of length >= 1"), "missing_field"),
    (re.compile(r"^Expected `object`, got `\w+`$"), "not_an_object"),
    (re.compile(r"^Invalid value .* - at `\$\.ev`$"), "unknown_event"),
    (re.compile(r"^Expected `\w+` >= 0"), "negative_value"),
    (re.compile(r"^Expected `\w+` <= "), "out_of_range"),  # a ceiling from columns.py
    (re.compile(r"^Expected `array` of length <= "), "out_of_range"),
    (re.compile(r"^Number out of range"), "not_finite"),
    (re.compile(r"^Expected `"), "wrong_type"),
)


class Invalid(Exception):
    """A raw event that cannot be normalised: `reason` is the DLQ code, `detail` names the field."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail[:DETAIL_LIMIT]


def unprocessable(error: BaseException) -> Invalid:
    """Any other exception met while handling one message: that message's dead letter."""
    return Invalid("unprocessable", f"{type(error).__name__}: {str(error)[:200]}")


def from_msgspec_error(value: bytes, error: Exception) -> Invalid:
    """Turn msgspec's error for `value` into a DLQ reason and detail."""
    message = str(error)
    if isinstance(error, msgspec.ValidationError):
        for pattern, reason in _VALIDATION_REASONS:
            if pattern.search(message):
                return Invalid(reason, _polygon_path(message))
        return Invalid("wrong_type", _polygon_path(message))
    return classify_json_error(value, message)


def _polygon_path(message: str) -> str:
    """`Expected `float`, got `str` - at `$.p`` -> `p: Expected `float`, got `str``."""
    text, _, path = message.partition(" - at `$")
    if not path:
        return text
    return f"{path.rstrip('`').lstrip('.')}: {text}"


def classify_json_error(value: bytes, message: str) -> Invalid:
    """Why the JSON parser refused `value`: not UTF-8, NaN or Infinity (words JSON does not
    have), or plainly malformed. Slow, and only run for bad values."""
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Invalid("malformed_json", f"the value is not UTF-8 (byte {exc.start})")
    try:
        parsed = json.loads(text)  # the standard library accepts NaN, Infinity and 1e999
    except ValueError:
        return Invalid("malformed_json", f"not valid JSON: {message}")
    field = _non_finite_field(parsed)
    if field is not None:
        return Invalid("not_finite", f"{field}: NaN or infinite")
    return Invalid("malformed_json", f"not valid JSON: {message}")


def _non_finite_field(parsed: Any, path: str = "") -> str | None:
    if isinstance(parsed, float) and not math.isfinite(parsed):
        return path or "(the value)"
    children: Any = ()
    if isinstance(parsed, dict):
        children = ((f"{path}.{key}" if path else str(key), item) for key, item in parsed.items())
    elif isinstance(parsed, list):
        children = ((f"{path}[{index}]", item) for index, item in enumerate(parsed))
    for child_path, item in children:
        found = _non_finite_field(item, child_path)
        if found is not None:
            return found
    return None
