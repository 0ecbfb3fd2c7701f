"""The wire contract between the services: topics, headers, dead letters and the FILTERED_TOPIC events.

Every service imports these names instead of spelling them again; docs/architecture.md explains them.
The processor's output structs (tickpipe_processor/output.py), the sink's routing columns
(tickpipe_clickhouse/sink/routing.py, derived from FIELDS) and the raw tables' input columns
(clickhouse/migrations/) are held against this module by tests/unit/test_contract.py, so a field added
in one place and not in the others fails a test.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal

# Topics (defaults; each is a setting: RAW_TOPIC, FILTERED_TOPIC).
RAW_TOPIC = "polygon_stream_aggregates"
FILTERED_TOPIC = "custom_filtered_stock_data_topic"
FEED_GAPS_TOPIC = "tickpipe_feed_gaps"  # the producer's gaps, repaired by `tickpipe repair`
GAP_STATES_TOPIC = "tickpipe_feed_gap_states"  # each gap's state, by `tickpipe repair`, for the sink
DLQ_SUFFIX = ".dlq"


def dlq_topic(source_topic: str) -> str:
    """The dead-letter topic of a source topic: `polygon_stream_aggregates.dlq`."""
    return f"{source_topic}{DLQ_SUFFIX}"


# Headers. Values are bytes; numbers are decimal ASCII.
RECEIVED_NS = "tp.received_ns"  # raw topic: Unix ns when the producer read the frame
FEED = "tp.feed"  # raw topic: `host[:port]/market`
SOURCE = "tp.source"  # raw topic: `rest` for an event the repair fetched (absent: the websocket)
GAP_ID = "tp.gap_id"  # raw topic: the gap a repaired event fills
DLQ_REASON = "tp.dlq.reason"  # a short code: malformed_json, missing_field, ...
DLQ_DETAIL = "tp.dlq.detail"  # a sentence naming the field at fault; never a secret
SOURCE_TOPIC = "tp.source.topic"
SOURCE_PARTITION = "tp.source.partition"
SOURCE_OFFSET = "tp.source.offset"
_DEAD_LETTER_PREFIXES = ("tp.dlq.", "tp.source.")

HeaderValue = str | bytes | None


def dead_letter_headers(
    original: Iterable[tuple[str, HeaderValue]] | None,
    reason: str,
    detail: str,
    source_topic: str,
    partition: int | None,
    offset: int | None,
) -> list[tuple[str, HeaderValue]]:
    """The headers of a dead letter: the original ones, then the DLQ contract's.

    One behaviour for every DLQ: a record that was dead-lettered before (replayed from a DLQ and
    rejected again) keeps only its newest `tp.dlq.*` and `tp.source.*` headers, so a reader never
    sees two reasons; text is encoded as UTF-8 with unencodable characters replaced, so building a
    dead letter can never fail on the detail it reports.
    """
    headers = [(key, value) for key, value in original or () if not key.startswith(_DEAD_LETTER_PREFIXES)]
    headers += [
        (DLQ_REASON, reason.encode("utf-8", "replace")),
        (DLQ_DETAIL, detail.encode("utf-8", "replace")),
        (SOURCE_TOPIC, source_topic.encode("utf-8", "replace")),
        (SOURCE_PARTITION, str(partition).encode()),
        (SOURCE_OFFSET, str(offset).encode()),
    ]
    return headers


# FILTERED_TOPIC: one normalised JSON object per event, `ev` first and `received_ns` last.
Family = Literal["aggregate", "trade", "quote", "book"]

FAMILY_OF_EV: dict[str, Family] = {
    "A": "aggregate",  # stock second aggregate
    "AM": "aggregate",  # stock minute aggregate
    "XA": "aggregate",  # crypto minute aggregate
    "XAS": "aggregate",  # crypto second aggregate
    "CA": "aggregate",  # forex minute aggregate
    "CAS": "aggregate",  # forex second aggregate
    "T": "trade",  # stock trade
    "XT": "trade",  # crypto trade
    "Q": "quote",  # stock quote
    "XQ": "quote",  # crypto quote
    "C": "quote",  # forex quote (no sizes)
    "XL2": "book",  # crypto level-2 book snapshot
}

FIELDS: dict[Family, tuple[str, ...]] = {
    "aggregate": (
        "ev", "symbol", "start_ms", "end_ms", "open", "high", "low", "close", "volume", "vwap",
        "day_volume", "day_open", "day_vwap", "avg_size", "otc", "received_ns",
    ),
    "trade": (
        "ev", "symbol", "ts_ms", "price", "size", "exchange", "trade_id", "tape", "conditions",
        "sequence", "received_ns",
    ),
    "quote": (
        "ev", "symbol", "ts_ms", "bid_price", "bid_size", "bid_exchange", "ask_price", "ask_size",
        "ask_exchange", "conditions", "tape", "sequence", "received_ns",
    ),
    "book": ("ev", "symbol", "ts_ms", "exchange", "bids", "asks", "received_ns"),
}  # fmt: skip

# GAP_STATES_TOPIC: one JSON object per state change of a gap (`tickpipe repair` writes them, the
# sink stores them in `feed_gaps`, clickhouse/migrations/011_feed_gaps.sql); times are
# `YYYY-MM-DD hh:mm:ss.fff` UTC, `version` orders a gap's states (the newest wins).
GAP_STATE_TABLE = "feed_gaps"
GAP_STATE_FIELDS = (
    "gap_id", "feed", "gap_from", "gap_to", "topics", "why", "state", "rows_restored", "updated", "version",
)  # fmt: skip

# The raw ClickHouse table each family lands in (clickhouse/migrations/001_raw_tables.sql, 004_books.sql).
TABLE_OF_FAMILY: dict[Family, str] = {
    "aggregate": "aggregates", "trade": "trades", "quote": "quotes", "book": "books",
}  # fmt: skip


def evs_of(family: Family) -> Sequence[str]:
    """The event kinds of one family, in contract order."""
    return [ev for ev, kind in FAMILY_OF_EV.items() if kind == family]
