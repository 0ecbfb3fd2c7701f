"""Which table a FILTERED_TOPIC record goes to, decided from its first bytes.

The processor writes every value as `{"ev":"A",...` (the event kind first), so the sink routes a
record by looking at its prefix, without parsing the JSON: parsing is ClickHouse's job, in C++,
once. A value that does not start that way (another writer's field order) is parsed with orjson
just to find its `ev`. Each table receives the processor's JSON unchanged; its column list names
the contract's fields (tickpipe/contract.py), some of them EPHEMERAL inputs of the table
(clickhouse/migrations/001_raw_tables.sql).
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from tickpipe import contract

# The table of each event kind, and the FILTERED_TOPIC fields each table reads (the insert's column
# list; other fields are skipped): both from the contract (tickpipe/contract.py).
TABLE_OF_EV = {ev: contract.TABLE_OF_FAMILY[family] for ev, family in contract.FAMILY_OF_EV.items()}
COLUMNS = {contract.TABLE_OF_FAMILY[family]: fields for family, fields in contract.FIELDS.items()}
# A topic whose every record goes to one table (no routing): GAP_STATES_TOPIC -> feed_gaps.
COLUMNS[contract.GAP_STATE_TABLE] = contract.GAP_STATE_FIELDS

_KNOWN = ", ".join(TABLE_OF_EV)
# The first bytes of the processor's values, `{"ev":"T",`, `{"ev":"AM"` (10) or `{"ev":"XL2"` (11),
# mapped to the table.
_PREFIX_TABLE = {
    (f'{{"ev":"{ev}"' + ("," if len(ev) == 1 else "")).encode(): table for ev, table in TABLE_OF_EV.items()
}


@dataclass(frozen=True)
class Unroutable:
    """Why a value has no table: a DLQ reason code and a sentence naming the problem."""

    reason: str
    detail: str


def route(value: bytes) -> str | Unroutable:
    """The table for one record value, or why there is none."""
    return _PREFIX_TABLE.get(value[:10]) or _PREFIX_TABLE.get(value[:11]) or _route_parsed(value)


def _route_parsed(value: bytes) -> str | Unroutable:
    """Slow path: parse the JSON to find `ev` (another field order, or an unknown kind)."""
    try:
        event = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        return Unroutable("malformed_json", f"the value is not JSON: {exc}")
    if not isinstance(event, dict):
        return Unroutable("malformed_json", f"the value is a JSON {type(event).__name__}, not an object")
    ev = event.get("ev")
    if ev is None:
        return Unroutable("missing_field", "the event has no `ev` field")
    table = TABLE_OF_EV.get(ev) if isinstance(ev, str) else None
    if table is None:
        return Unroutable("unknown_ev", f"`ev` is {ev!r}; the sink stores {_KNOWN}")
    return table
