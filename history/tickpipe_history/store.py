"""Where backfilled data lands: the live tables, the reference tables, progress and the DLQ.

Every page of events is stored exactly once, whatever happened before:
1. the identities already stored in the page's time range are read (rows from the live feed, an
   earlier run, or a run killed half-way) and those rows are dropped from the page;
2. the rest is inserted, mapped onto the live table's columns by ClickHouse itself (INSERT ...
   SELECT FROM format(JSONEachRow, ...)), with a deterministic `insert_deduplication_token` (a
   hash of what is inserted), so a retried insert whose answer was lost is a no-op (the tables set
   `non_replicated_deduplication_window`, and bars views deduplicate with them);
3. the range is counted again; if rows are missing (a process killed between ClickHouse's
   deduplication log and its part, which chDB can leave), the missing rows go in under a new token.

All calls go through one lock: one clickhouse-connect client (and chDB) is used by one thread at
a time, while the REST requests run concurrently.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tickpipe_history.pages import (
    NS_PER_MS,
    AggBar,
    GroupedBar,
    Identity,
    RestCondition,
    RestQuote,
    RestTicker,
    RestTrade,
    bar_identity,
    encode_rows,
    quote_identity,
    trade_identity,
)

log = logging.getLogger(__name__)

MAX_REINSERTS = 3


@dataclass(frozen=True)
class EventTable:
    """How REST rows of one kind become rows of a live table, in ClickHouse's own SQL.

    `columns` are the live table's insert columns (the sink's, 001_raw_tables.sql); `select` maps
    the REST row (`input` is its structure) onto them, with {symbol}, {ev}, {span_ms} and
    {received_ns} filled in; `keys` reads a stored row's identity (pages.py) back.
    """

    table: str
    columns: str
    select: str
    input: str
    keys: str
    identity: Callable[[Any], Identity]
    time_ms: Callable[[Any], int]


EVENT_TABLES = {
    "aggregates": EventTable(
        "aggregates",
        "ev, symbol, start_ms, end_ms, open, high, low, close, volume, vwap, avg_size, otc, received_ns",
        "{ev}, {symbol}, t, t + {span_ms}, o, h, l, c, v, ifNull(vw, 0), "
        "if(ifNull(n, 0) > 0, v / n, 0), ifNull(otc, false), {received_ns}",
        "t Int64, o Float64, h Float64, l Float64, c Float64, v Float64, vw Nullable(Float64), "
        "n Nullable(UInt64), otc Nullable(Bool)",
        "toUnixTimestamp64Milli(timestamp)",
        bar_identity,
        lambda bar: int(bar.t),
    ),
    "trades": EventTable(
        "trades",
        "ev, symbol, ts_ms, price, size, exchange, trade_id, tape, conditions, sequence, received_ns",
        "{ev}, {symbol}, intDiv(sip_timestamp, 1000000), price, size, exchange, id, tape, "
        "conditions, sequence_number, {received_ns}",
        "sip_timestamp Int64, price Float64, size Float64, exchange UInt16, id String, "
        "tape UInt8, conditions Array(UInt16), sequence_number UInt64",
        "toUnixTimestamp64Milli(timestamp), sequence, exchange, trade_id",
        trade_identity,
        lambda trade: int(trade.sip_timestamp) // NS_PER_MS,
    ),
    "quotes": EventTable(
        "quotes",
        "ev, symbol, ts_ms, bid_price, bid_size, bid_exchange, ask_price, ask_size, ask_exchange, "
        "conditions, tape, sequence, received_ns",
        "{ev}, {symbol}, intDiv(sip_timestamp, 1000000), bid_price, bid_size, bid_exchange, ask_price, "
        "ask_size, ask_exchange, conditions, tape, sequence_number, {received_ns}",
        "sip_timestamp Int64, bid_price Float64, bid_size Float64, bid_exchange UInt16, ask_price Float64, "
        "ask_size Float64, ask_exchange UInt16, conditions Array(UInt16), tape UInt8, "
        "sequence_number UInt64",
        "toUnixTimestamp64Milli(timestamp), sequence",
        quote_identity,
        lambda quote: int(quote.sip_timestamp) // NS_PER_MS,
    ),
}


def _literal(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


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
        received_ns: int,
        span_ms: int = 0,
    ) -> int:
        """Insert the REST rows (one symbol, one kind) not stored yet; returns how many went in."""
        if not rows:
            return 0
        kind = EVENT_TABLES[table]
        times = [kind.time_ms(row) for row in rows]
        lo, hi = min(times), max(times)
        with self.lock:
            began = time.monotonic()
            try:
                return self._store_events(kind, symbol, ev, rows, received_ns, span_ms, lo, hi)
            finally:
                self.busy_s += time.monotonic() - began

    def _store_events(
        self,
        kind: EventTable,
        symbol: str,
        ev: str,
        rows: Sequence[Any],
        received_ns: int,
        span_ms: int,
        lo: int,
        hi: int,
    ) -> int:
        stored = self._identities(kind, symbol, ev, lo, hi)
        have = set(stored)
        new: list[Any] = []
        for row in rows:
            key = kind.identity(row)
            if key not in have:
                have.add(key)  # a page never repeats a row, but if it did, store it once
                new.append(row)
        if not new:
            return 0
        data = encode_rows(new).decode()
        token = self._token(kind, symbol, ev, data)
        values = {"symbol": _literal(symbol), "ev": _literal(ev), "span_ms": int(span_ms)}
        values["received_ns"] = int(received_ns)
        self._insert(kind, values, data, token)
        for attempt in range(1, MAX_REINSERTS + 2):
            if self._count(kind, symbol, ev, lo, hi) >= len(stored) + len(new):
                return len(new)
            if attempt > MAX_REINSERTS:
                break
            present = set(self._identities(kind, symbol, ev, lo, hi))
            missing = [row for row in new if kind.identity(row) not in present]
            log.warning(
                "rows missing after insert; inserting them again",
                extra={"fields": {"table": kind.table, "symbol": symbol, "missing": len(missing)}},
            )
            self._insert(kind, values, encode_rows(missing).decode(), f"{token}:again{attempt}")
            self.reinserted += len(missing)
        raise RuntimeError(f"{kind.table} {symbol}: rows still missing after {MAX_REINSERTS} inserts")

    def _token(self, kind: EventTable, symbol: str, ev: str, data: str) -> str:
        """A hash of what is inserted: the same rows give the same token, whatever the run."""
        digest = hashlib.sha256(f"{kind.table}|{symbol}|{ev}|".encode() + data.encode()).hexdigest()
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

    def _insert(self, kind: EventTable, values: dict[str, Any], data: str, token: str) -> None:
        """INSERT ... SELECT FROM format(JSONEachRow, ...): ClickHouse parses the JSON lines and maps
        the columns (the same statement over HTTP and in chDB; the data rides in the query text as
        a heredoc literal, so `max_query_size` is raised for it; the token is inline, so that is
        the only per-call setting)."""
        tag = "tp"
        while f"${tag}$" in data:
            tag += "x"
        sql = (
            f"INSERT INTO `{self.db}`.{kind.table} ({kind.columns}) "  # noqa: S608
            f"SETTINGS insert_deduplication_token = {_literal(token)} "
            f"SELECT {kind.select.format(**values)} "
            f"FROM format(JSONEachRow, '{kind.input}', ${tag}${data}${tag}$)"
        )
        self.client.command(sql, settings={"max_query_size": len(sql) + 1024})
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
