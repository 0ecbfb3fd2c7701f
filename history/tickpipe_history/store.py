"""Where backfilled data lands: the live tables, the reference tables, progress and the DLQ.

Every page of events is stored exactly once, whatever happened before:
1. the identities already stored in the page's time range are read (rows from the live feed, an
   earlier run, or a run killed half-way) and those rows are dropped from the page;
2. the rest is inserted with a deterministic `insert_deduplication_token` (a hash of what is
   inserted), so a retried insert whose answer was lost is a no-op (the tables set
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
from collections.abc import Sequence
from typing import Any

from tickpipe_history.pages import (
    AggregateRow,
    GroupedBar,
    Identity,
    QuoteRow,
    RestCondition,
    RestTicker,
    Row,
    TradeRow,
    encode_rows,
    identity,
    time_of,
)

log = logging.getLogger(__name__)

INSERT_SETTINGS = {
    "insert_deduplicate": 1,
    "deduplicate_blocks_in_dependent_materialized_views": 1,
    "input_format_skip_unknown_fields": 1,
    "async_insert": 0,
}
COLUMNS: dict[str, tuple[str, ...]] = {
    "aggregates": AggregateRow.__struct_fields__,
    "trades": TradeRow.__struct_fields__,
    "quotes": QuoteRow.__struct_fields__,
}
# The identity columns read back per table (the same order as pages.identity).
_KEYS = {
    "aggregates": "toUnixTimestamp64Milli(timestamp)",
    "trades": "toUnixTimestamp64Milli(timestamp), sequence, exchange, trade_id",
    "quotes": "toUnixTimestamp64Milli(timestamp), sequence",
}
MAX_REINSERTS = 3


def table_of(row: Row) -> str:
    if isinstance(row, AggregateRow):
        return "aggregates"
    return "trades" if isinstance(row, TradeRow) else "quotes"


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

    # --- events into the live tables ---------------------------------------------------------

    def store_events(self, rows: Sequence[Row]) -> int:
        """Insert the rows (one symbol, one kind) not stored yet; returns how many went in."""
        if not rows:
            return 0
        table, symbol, ev = table_of(rows[0]), rows[0].symbol, rows[0].ev
        times = [time_of(row) for row in rows]
        lo, hi = min(times), max(times)
        with self.lock:
            stored = self._identities(table, symbol, ev, lo, hi)
            have = set(stored)
            new: list[Row] = []
            for row in rows:
                key = identity(row)
                if key not in have:
                    have.add(key)  # a page never repeats a row, but if it did, store it once
                    new.append(row)
            if not new:
                return 0
            token = self._token(table, symbol, ev, new)
            self._insert(table, new, token)
            for attempt in range(1, MAX_REINSERTS + 1):
                if self._count(table, symbol, ev, lo, hi) >= len(stored) + len(new):
                    break
                present = set(self._identities(table, symbol, ev, lo, hi))
                missing = [row for row in new if identity(row) not in present]
                log.warning(
                    "rows missing after insert; inserting them again",
                    extra={"fields": {"table": table, "symbol": symbol, "missing": len(missing)}},
                )
                self._insert(table, missing, f"{token}:again{attempt}")
                self.reinserted += len(missing)
            return len(new)

    def _token(self, table: str, symbol: str, ev: str, rows: Sequence[Row]) -> str:
        digest = hashlib.sha256(f"{table}|{symbol}|{ev}".encode())
        for row in rows:
            digest.update(repr(identity(row)).encode())
        return f"backfill:{table}:{symbol}:{ev}:{len(rows)}:{digest.hexdigest()[:24]}"

    def _where(self, table: str) -> str:
        ev = " AND ev = {ev:String}" if table == "aggregates" else ""
        return (
            f"symbol = {{symbol:String}}{ev} AND timestamp >= fromUnixTimestamp64Milli({{lo:Int64}}, 'UTC') "
            "AND timestamp <= fromUnixTimestamp64Milli({hi:Int64}, 'UTC')"
        )

    def _identities(self, table: str, symbol: str, ev: str, lo: int, hi: int) -> list[Identity]:
        sql = f"SELECT {_KEYS[table]} FROM `{self.db}`.{table} WHERE {self._where(table)}"  # noqa: S608
        result = self.client.query(sql, parameters={"symbol": symbol, "ev": ev, "lo": lo, "hi": hi})
        return [tuple(row) for row in result.result_rows]

    def _count(self, table: str, symbol: str, ev: str, lo: int, hi: int) -> int:
        sql = f"SELECT count() FROM `{self.db}`.{table} WHERE {self._where(table)}"  # noqa: S608
        result = self.client.query(sql, parameters={"symbol": symbol, "ev": ev, "lo": lo, "hi": hi})
        return int(result.result_rows[0][0])

    def _insert(self, table: str, rows: Sequence[Row], token: str) -> None:
        self.client.raw_insert(
            f"`{self.db}`.{table}",
            COLUMNS[table],
            insert_block=encode_rows(rows),
            settings={**INSERT_SETTINGS, "insert_deduplication_token": token},
            fmt="JSONEachRow",
        )
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
        version = time.time_ns()
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
                version,
            ]
            for c in conditions
            if "trade" in c.data_types
        ]
        columns = ["id", "name", "type", "updates_open_close", "updates_high_low", "updates_volume"]
        columns += ["sip_cta", "sip_utp", "legacy", "version"]
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
