"""Where backfilled data lands: the live tables, the reference tables, progress and the DLQ.

Every page of events is stored exactly once, whatever happened before:
1. the identities already stored in the page's time range are read (rows from the live feed, an
   earlier run, or a run killed half-way) and those rows are dropped from the page;
2. the rest is inserted as Arrow columns built from the page (one insert per page, the live
   table's insert columns), with a deterministic `insert_deduplication_token` (a hash of what is
   inserted), so a retried insert whose answer was lost is a no-op (the tables set
   `non_replicated_deduplication_window`, and bars views deduplicate with them);
3. the range is counted again; if rows are missing (a process killed between ClickHouse's
   deduplication log and its part, which chDB can leave), the missing rows go in under a new token.

All calls go through one lock: one clickhouse-connect client (and chDB) is used by one thread at
a time, while the REST requests, the decoding and the building of columns run concurrently.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

import numpy as np
import pyarrow as pa

from tickpipe_clickhouse.connect import INSERT_SETTINGS
from tickpipe_history.pages import (
    NS_PER_MS,
    AggBar,
    GroupedBar,
    Identity,
    RestCondition,
    RestQuote,
    RestTicker,
    RestTrade,
    encode_rows,
)

log = logging.getLogger(__name__)

MAX_REINSERTS = 3


@dataclass(frozen=True)
class EventTable:
    """How REST rows of one kind become rows of a live table: columns built here, in Arrow.

    `fields` are the REST row's attributes read (in this order) and `build` turns those columns
    into the live table's insert columns (the sink's, 001_raw_tables.sql: the EPHEMERAL `start_ms`,
    `end_ms`, `ts_ms` and `received_ns` included, from which ClickHouse computes the stored ones);
    an absent optional value (None) is sent as null and stored as the column's default.
    `identity` gives each row's key (pages.py) from the same columns, and `keys` reads a stored
    row's key back.
    """

    table: str
    fields: tuple[str, ...]
    build: Callable[[list[tuple[Any, ...]], int], dict[str, Any]]  # (REST columns, span_ms) -> columns
    identity: Callable[[list[tuple[Any, ...]]], list[Identity]]
    keys: str


def _ms_of(ns: tuple[int, ...]) -> Any:
    return np.asarray(ns, dtype=np.int64) // NS_PER_MS


def _bar_columns(c: list[tuple[Any, ...]], span_ms: int) -> dict[str, Any]:
    t, o, h, low, close, v, vw, n, otc = c
    start = np.asarray(t, dtype=np.int64)
    volume = np.asarray(v, dtype=np.float64)
    trades = np.asarray(pa.array(n, pa.int64()).fill_null(0), dtype=np.float64)
    avg_size = np.divide(volume, trades, out=np.zeros_like(volume), where=trades > 0)
    return {
        "start_ms": start,
        "end_ms": start + span_ms,
        "open": pa.array(o, pa.float64()),
        "high": pa.array(h, pa.float64()),
        "low": pa.array(low, pa.float64()),
        "close": pa.array(close, pa.float64()),
        "volume": volume,
        "vwap": pa.array(vw, pa.float64()).fill_null(0.0),
        "avg_size": avg_size,
        "otc": pa.array(otc, pa.bool_()).fill_null(False),
    }


def _trade_columns(c: list[tuple[Any, ...]], span_ms: int) -> dict[str, Any]:
    sip, price, size, exchange, sequence, trade_id, tape, conditions = c
    return {
        "ts_ms": _ms_of(sip),
        "price": pa.array(price, pa.float64()),
        "size": pa.array(size, pa.float64()),
        "exchange": pa.array(exchange),
        "trade_id": pa.array(trade_id, pa.string()),
        "tape": pa.array(tape, pa.int64()),
        "conditions": pa.array(conditions, pa.list_(pa.int64())),
        "sequence": pa.array(sequence),
    }


def _quote_columns(c: list[tuple[Any, ...]], span_ms: int) -> dict[str, Any]:
    sip, sequence, bid, bid_size, bid_x, ask, ask_size, ask_x, conditions, tape = c
    return {
        "ts_ms": _ms_of(sip),
        "bid_price": pa.array(bid, pa.float64()),
        "bid_size": pa.array(bid_size, pa.float64()),
        "bid_exchange": pa.array(bid_x),
        "ask_price": pa.array(ask, pa.float64()),
        "ask_size": pa.array(ask_size, pa.float64()),
        "ask_exchange": pa.array(ask_x),
        "conditions": pa.array(conditions, pa.list_(pa.int64())),
        "tape": pa.array(tape, pa.int64()),
        "sequence": pa.array(sequence),
    }


def _bar_keys(c: list[tuple[Any, ...]]) -> list[Identity]:
    return [(t,) for t in c[0]]


def _trade_keys(c: list[tuple[Any, ...]]) -> list[Identity]:
    return list(zip((np.asarray(c[0], dtype=np.int64) // NS_PER_MS).tolist(), c[4], c[3], c[5], strict=True))


def _quote_keys(c: list[tuple[Any, ...]]) -> list[Identity]:
    return list(zip((np.asarray(c[0], dtype=np.int64) // NS_PER_MS).tolist(), c[1], strict=True))


EVENT_TABLES = {
    "aggregates": EventTable(
        "aggregates",
        ("t", "o", "h", "l", "c", "v", "vw", "n", "otc"),
        _bar_columns,
        _bar_keys,
        "toUnixTimestamp64Milli(timestamp)",
    ),
    "trades": EventTable(
        "trades",
        ("sip_timestamp", "price", "size", "exchange", "sequence_number", "id", "tape", "conditions"),
        _trade_columns,
        _trade_keys,
        "toUnixTimestamp64Milli(timestamp), sequence, exchange, trade_id",
    ),
    "quotes": EventTable(
        "quotes",
        (
            "sip_timestamp",
            "sequence_number",
            "bid_price",
            "bid_size",
            "bid_exchange",
            "ask_price",
            "ask_size",
            "ask_exchange",
            "conditions",
            "tape",
        ),
        _quote_columns,
        _quote_keys,
        "toUnixTimestamp64Milli(timestamp), sequence",
    ),
}


@dataclass
class _Batch:
    """One page's rows as Arrow columns, with each row's identity and the token of all of them."""

    rows: Sequence[Any]
    table: Any  # pyarrow.Table
    keys: list[Identity]
    lo: int
    hi: int


def _batch(
    kind: EventTable,
    symbol: str,
    ev: str,
    rows: Sequence[Any],
    received_ns: int | Sequence[int],
    span_ms: int,
) -> _Batch:
    columns = list(zip(*map(attrgetter(*kind.fields), rows), strict=True))
    built = kind.build(columns, span_ms)
    n = len(rows)
    label = pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, dtype=np.int32)), pa.array([ev]))
    name = pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, dtype=np.int32)), pa.array([symbol]))
    arrays = {"ev": label, "symbol": name, **built, "received_ns": _received(received_ns, n)}
    table = pa.table({k: v if isinstance(v, pa.Array) else pa.array(v) for k, v in arrays.items()})
    keys = kind.identity(columns)
    times = [key[0] for key in keys]
    return _Batch(rows, table, keys, min(times), max(times))


def _received(received_ns: int | Sequence[int], n: int) -> Any:
    if isinstance(received_ns, int):
        return np.full(n, received_ns, dtype=np.uint64)
    if len(received_ns) != n:
        raise ValueError(f"{len(received_ns)} arrival times for {n} rows")
    return np.asarray(received_ns, dtype=np.uint64)


def _new_rows(keys: list[Identity], stored: set[Identity]) -> list[int] | None:
    """The positions of the rows to insert (each identity once, none already stored), or None
    when that is every row (the common case, checked without a loop in Python)."""
    if not stored and len(set(keys)) == len(keys):
        return None
    keep: list[int] = []
    have = set(stored)
    for i, key in enumerate(keys):
        if key not in have:
            have.add(key)  # a page never repeats a row, but if it did, store it once
            keep.append(i)
    return keep


def _ms(value: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(value / 1000, tz=dt.UTC)


def _utc(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


class HistoryStore:
    def __init__(self, client: Any, database: str):
        self.client = client
        self.db = database
        self.lock = threading.Lock()
        self.inserts = 0
        self.reinserted = 0
        self.busy_s = 0.0  # time holding the client (queries and inserts)

    # --- events into the live tables ---------------------------------------------------------

    def store_events(
        self,
        table: str,
        symbol: str,
        ev: str,
        rows: Sequence[AggBar | RestTrade | RestQuote],
        received_ns: int | Sequence[int],
        span_ms: int = 0,
    ) -> int:
        """Insert the REST rows (one symbol, one kind) not stored yet; returns how many went in.
        `received_ns` is when they arrived: one time for all, or one per row.

        The columns are built before the client is taken, so other threads' pages are built while
        ClickHouse inserts (chDB runs without the GIL)."""
        if not rows:
            return 0
        kind = EVENT_TABLES[table]
        batch = _batch(kind, symbol, ev, rows, received_ns, span_ms)
        with self.lock:
            began = time.monotonic()
            try:
                return self._store_events(kind, symbol, ev, batch)
            finally:
                self.busy_s += time.monotonic() - began

    def _store_events(self, kind: EventTable, symbol: str, ev: str, batch: _Batch) -> int:
        stored = self._identities(kind, symbol, ev, batch.lo, batch.hi)
        keep = _new_rows(batch.keys, set(stored))
        if keep is None:  # nothing of it stored yet and no row twice in the page: all of it
            new_rows, table, new_keys = batch.rows, batch.table, batch.keys
        elif not keep:
            return 0
        else:
            new_rows = [batch.rows[i] for i in keep]
            table = batch.table.take(pa.array(keep, pa.int64()))
            new_keys = [batch.keys[i] for i in keep]
        token = self._token(kind, symbol, ev, new_rows)
        self._insert(kind, table, token)
        for attempt in range(1, MAX_REINSERTS + 2):
            if self._count(kind, symbol, ev, batch.lo, batch.hi) >= len(stored) + len(new_keys):
                return len(new_keys)
            if attempt > MAX_REINSERTS:
                break
            present = set(self._identities(kind, symbol, ev, batch.lo, batch.hi))
            missing = [i for i, key in enumerate(new_keys) if key not in present]
            log.warning(
                "rows missing after insert; inserting them again",
                extra={"fields": {"table": kind.table, "symbol": symbol, "missing": len(missing)}},
            )
            self._insert(kind, table.take(pa.array(missing, pa.int64())), f"{token}:again{attempt}")
            self.reinserted += len(missing)
        raise RuntimeError(f"{kind.table} {symbol}: rows still missing after {MAX_REINSERTS} inserts")

    def _token(self, kind: EventTable, symbol: str, ev: str, rows: Sequence[Any]) -> str:
        """A hash of what is inserted: the same rows give the same token, whatever the run."""
        digest = hashlib.sha256(f"{kind.table}|{symbol}|{ev}|".encode() + encode_rows(rows)).hexdigest()
        return f"backfill:{kind.table}:{symbol}:{ev}:{digest[:32]}"

    def _where(self, kind: EventTable) -> str:
        ev = " AND ev = {ev:String}" if kind.table == "aggregates" else ""
        return (
            f"symbol = {{symbol:String}}{ev} AND timestamp >= fromUnixTimestamp64Milli({{lo:Int64}}, 'UTC') "
            "AND timestamp <= fromUnixTimestamp64Milli({hi:Int64}, 'UTC')"
        )

    def _identities(self, kind: EventTable, symbol: str, ev: str, lo: int, hi: int) -> list[Identity]:
        sql = f"SELECT {kind.keys} FROM `{self.db}`.{kind.table} WHERE {self._where(kind)}"  # noqa: S608
        result = self.client.query(sql, parameters={"symbol": symbol, "ev": ev, "lo": lo, "hi": hi})
        return [tuple(row) for row in result.result_rows]

    def _count(self, kind: EventTable, symbol: str, ev: str, lo: int, hi: int) -> int:
        sql = f"SELECT count() FROM `{self.db}`.{kind.table} WHERE {self._where(kind)}"  # noqa: S608
        result = self.client.query(sql, parameters={"symbol": symbol, "ev": ev, "lo": lo, "hi": hi})
        return int(result.result_rows[0][0])

    def _insert(self, kind: EventTable, table: Any, token: str) -> None:
        """One Arrow insert (the same call over HTTP and into chDB, where clickhouse-connect hands
        ClickHouse a file: settings ride in the statement, no per-call SET round trips)."""
        settings = {**INSERT_SETTINGS, "insert_deduplication_token": token}
        self.client.insert_arrow(f"`{self.db}`.{kind.table}", table, settings=settings)
        self.inserts += 1

    # --- reference data and daily bars -------------------------------------------------------

    def store_tickers(self, tickers: list[RestTicker]) -> int:
        version = time.time_ns()
        data = [
            [
                t.ticker,
                _utc(t.last_updated_utc),
                t.name,
                t.market,
                t.locale,
                t.type,
                t.active,
                t.primary_exchange,
                t.currency_name,
                t.cik,
                t.composite_figi,
                t.share_class_figi,
                _utc(t.delisted_utc),
                version,
            ]
            for t in tickers
        ]
        columns = ["ticker", "last_updated_utc", "name", "market", "locale", "type", "active"]
        columns += ["primary_exchange", "currency_name", "cik", "composite_figi", "share_class_figi"]
        columns += ["delisted_utc", "version"]
        return self._insert_values("tickers", data, columns)

    def store_conditions(self, conditions: list[RestCondition]) -> int:
        data = [
            [
                c.id,
                c.name,
                c.type,
                c.update_rules.consolidated.updates_open_close,
                c.update_rules.consolidated.updates_high_low,
                c.update_rules.consolidated.updates_volume,
                c.sip_mapping.CTA,
                c.sip_mapping.UTP,
                c.legacy,
            ]
            for c in conditions
            if "trade" in c.data_types
        ]
        # origin and updated_at take their defaults ('api', now): the newest row of an id wins.
        columns = ["id", "name", "type", "updates_open_close", "updates_high_low", "updates_volume"]
        columns += ["sip_cta", "sip_utp", "legacy"]
        return self._insert_values("trade_conditions", data, columns)

    def store_daily(self, day: dt.date, bars: list[GroupedBar]) -> int:
        version = time.time_ns()
        data = [
            [b.T, day, _ms(b.t), b.o, b.h, b.l, b.c, b.v, b.vw or 0.0, b.n or 0, bool(b.otc), version]
            for b in bars
            if b.T
        ]
        columns = ["symbol", "day", "timestamp", "open", "high", "low", "close", "volume", "vwap"]
        columns += ["transactions", "otc", "version"]
        return self._insert_values("daily_bars", data, columns)

    def _insert_values(self, table: str, data: list[list[Any]], columns: list[str]) -> int:
        if not data:
            return 0
        with self.lock:
            self.client.insert(f"`{self.db}`.{table}", data, column_names=columns)
            self.inserts += 1
        return len(data)

    # --- progress and dead letters -----------------------------------------------------------

    def done_chunks(self, dataset: str) -> set[tuple[str, int]]:
        sql = (
            "SELECT symbol, toUnixTimestamp64Milli(chunk_start) FROM "  # noqa: S608
            f"`{self.db}`.backfill_progress FINAL WHERE dataset = {{dataset:String}} AND state = 'done'"
        )
        with self.lock:
            result = self.client.query(sql, parameters={"dataset": dataset})
        return {(str(symbol), int(start)) for symbol, start in result.result_rows}

    def mark(
        self, dataset: str, symbol: str, start_ms: int, end_ms: int, state: str, pages: int, rows: int
    ) -> None:
        data = [[dataset, symbol, _ms(start_ms), _ms(end_ms), state, pages, rows, time.time_ns()]]
        columns = ["dataset", "symbol", "chunk_start", "chunk_end", "state", "pages", "rows", "version"]
        self._insert_values("backfill_progress", data, columns)

    def dead_letter(
        self, dataset: str, symbol: str, request: str, page: int, reason: str, detail: str, body: bytes
    ) -> None:
        data = [[dataset, symbol, request, page, reason, detail, body[:2000].decode(errors="replace")]]
        columns = ["dataset", "symbol", "request", "page", "reason", "detail", "body"]
        self._insert_values("backfill_dlq", data, columns)
