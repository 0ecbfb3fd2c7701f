"""REST pages: validated in one msgspec decode, then turned into rows of tickpipe's tables.

A page either decodes whole (every row has its fields with the right types and bounds) or is
`Invalid` with a reason naming the first bad field; an invalid page goes to the DLQ whole (its
rows cannot be trusted one by one), and its `next_url`, when the JSON still parses, lets the rest
of the range go on.

Valid rows are encoded again as JSON lines (msgspec, in C) for ClickHouse, which maps them onto
the live tables' columns itself (store.py). Each row has an identity, the key that says "this
event is already stored": aggregates by (ev, start), trades by (time in ms, sequence, exchange,
id), quotes by (time in ms, sequence).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

import msgspec
import orjson
from msgspec import Meta, Struct

NonNegative = Annotated[float, Meta(ge=0)]
Count = Annotated[int, Meta(ge=0)]
Nanos = Annotated[int, Meta(gt=0)]
NS_PER_MS = 1_000_000


class Invalid(Exception):
    def __init__(self, reason: str, detail: str, next_url: str | None = None):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.next_url = next_url


# --- what REST sends ---------------------------------------------------------------------------


class AggBar(Struct, gc=False):
    t: Count
    o: NonNegative
    h: NonNegative
    l: NonNegative  # noqa: E741  (Polygon's name)
    c: NonNegative
    v: NonNegative
    vw: NonNegative | None = None
    n: Count | None = None
    otc: bool | None = None


class GroupedBar(AggBar, gc=False):
    T: str = ""


class RestTrade(Struct, gc=False):
    sip_timestamp: Nanos
    price: NonNegative
    size: NonNegative
    exchange: Count
    sequence_number: Count
    id: str = ""
    tape: Count | None = None
    conditions: list[Count] | None = None


class RestQuote(Struct, gc=False):
    sip_timestamp: Nanos
    sequence_number: Count
    bid_price: NonNegative = 0.0
    bid_size: NonNegative = 0.0
    bid_exchange: Count = 0
    ask_price: NonNegative = 0.0
    ask_size: NonNegative = 0.0
    ask_exchange: Count = 0
    conditions: list[Count] | None = None
    tape: Count | None = None


class UpdateRule(Struct):
    updates_high_low: bool = False
    updates_open_close: bool = False
    updates_volume: bool = False


class UpdateRules(Struct):
    consolidated: UpdateRule = msgspec.field(default_factory=UpdateRule)


class SipMapping(Struct):
    CTA: str = ""
    UTP: str = ""


class RestCondition(Struct):
    id: Count
    name: str
    type: str = ""
    legacy: bool = False
    data_types: list[str] = msgspec.field(default_factory=list)
    sip_mapping: SipMapping = msgspec.field(default_factory=SipMapping)
    update_rules: UpdateRules = msgspec.field(default_factory=UpdateRules)


class RestTicker(Struct):
    ticker: Annotated[str, Meta(min_length=1)]
    last_updated_utc: str
    name: str = ""
    market: str = ""
    locale: str = ""
    type: str = ""
    active: bool = True
    primary_exchange: str = ""
    currency_name: str = ""
    cik: str = ""
    composite_figi: str = ""
    share_class_figi: str = ""
    delisted_utc: str | None = None


class _Page(Struct):
    status: str = "OK"
    next_url: str | None = None


def _page_type(row: type[Any]) -> type[Any]:
    results: Any = list.__class_getitem__(row)  # list[row], built at run time for msgspec
    return msgspec.defstruct(f"{row.__name__}Page", [("results", results, [])], bases=(_Page,))


_DECODERS: dict[type[Any], msgspec.json.Decoder[Any]] = {
    row: msgspec.json.Decoder(_page_type(row))
    for row in (AggBar, GroupedBar, RestTrade, RestQuote, RestCondition, RestTicker)
}


def decode(body: bytes, row: type[Any]) -> tuple[list[Any], str | None]:
    """(rows, next_url) of a page, or `Invalid` with the reason and, if it can be found, next_url."""
    try:
        page = _DECODERS[row].decode(body)
    except msgspec.ValidationError as exc:
        raise Invalid("invalid_row", str(exc)[:400], _next_url_of(body)) from None
    except msgspec.DecodeError as exc:
        raise Invalid("not_json", str(exc)[:400]) from None
    if page.status not in ("OK", "DELAYED"):
        raise Invalid("status_not_ok", f"status {page.status!r}", page.next_url)
    return list(page.results), page.next_url


def _next_url_of(body: bytes) -> str | None:
    try:
        decoded = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    value = decoded.get("next_url") if isinstance(decoded, dict) else None
    return value if isinstance(value, str) else None


# --- identities: "this event is already stored" ------------------------------------------------

Identity = tuple[Any, ...]


def bar_identity(bar: AggBar) -> Identity:
    return (bar.t,)


def trade_identity(trade: RestTrade) -> Identity:
    return (trade.sip_timestamp // NS_PER_MS, trade.sequence_number, trade.exchange, trade.id)


def quote_identity(quote: RestQuote) -> Identity:
    return (quote.sip_timestamp // NS_PER_MS, quote.sequence_number)


_ENCODER = msgspec.json.Encoder()


def encode_rows(rows: Sequence[Any]) -> bytes:
    """JSONEachRow input: one object per line."""
    return _ENCODER.encode_lines(rows)
