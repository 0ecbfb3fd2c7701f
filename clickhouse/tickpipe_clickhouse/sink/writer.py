"""The writer boundary: one batch in, one deduplicated ClickHouse insert out, bad rows isolated.

Fast path: each record is routed by its first bytes (routing.py) and the JSON values of one
table go to ClickHouse as they are (JSONEachRow), one insert per table with the token
`topic:partition:first-last:table` (the tables of a batch at the same time when the writer has a
session for each, ClickHouseWriter); parsing happens in ClickHouse's C++ code, not in Python
(building columns in Python measured about 3x slower; see docs/clickhouse.md). Records with no
table (not JSON, unknown `ev`) are rejected here without a round trip.
If ClickHouse rejects the data, the rows of that table are halved and each half inserted with a
derived token (`TOKEN/0`, `TOKEN/1`, ...) until every rejected row stands alone; those rows are
returned for the sink DLQ with ClickHouse's reason. Routing and halving depend only on the rows,
so a replay after a crash repeats them exactly and ClickHouse drops the inserts it already has.

An insert whose rows span more months than ClickHouse lets one insert touch (TOO_MANY_PARTITIONS,
code 252: the tables are partitioned by month) is a data problem too: its rows are split by month
into inserts of at most `MONTHS_PER_INSERT` months each (tokens `TOKEN/m0`, `TOKEN/m1`, ...), so it
is stored instead of retried forever. No value makes this module raise: a row whose time or key
cannot be read (not JSON, a time beyond the year 9999) falls in an `unknown` month and is probed by
no key.

Records of a topic named in `topic_tables` (GAP_STATES_TOPIC -> feed_gaps) all go to that one
table, unrouted, through the same deduplicated, isolating insert.

Anything else (network, server down, TOO_MANY_PARTS, timeouts) raises TransientWriteError; the sink
retries the same batch with the same token, so a write that succeeded but whose answer was lost is
deduplicated.

A replayed batch (a pending range rebuilt after a crash) is also checked: its first and last rows
of each table must be in ClickHouse after the insert. Plain MergeTree records a block's token in its
deduplication log a moment before it commits the part; a process killed in between (with embedded
chDB the sink *is* the ClickHouse process) leaves the token without the part, and the replay would be
dropped as a duplicate of rows that do not exist. When the check finds them absent the rows are
inserted again under a new token (`TOKEN:again1:YYYYMM`, ...), one month (one partition, one part)
at a time. Found by the chaos suite (docs/reliability.md).
"""

from __future__ import annotations

import logging
import queue
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson

from tickpipe_clickhouse.connect import INSERT_SETTINGS
from tickpipe_clickhouse.sink.batching import Batch, Record
from tickpipe_clickhouse.sink.routing import COLUMNS, Unroutable, route

log = logging.getLogger(__name__)

# ClickHouse error codes that mean "this data cannot be stored", not "try again later".
DATA_ERROR_CODES = {
    6,  # CANNOT_PARSE_TEXT
    26,  # CANNOT_PARSE_QUOTED_STRING
    27,  # CANNOT_PARSE_INPUT_ASSERTION_FAILED
    32,  # ATTEMPT_TO_READ_AFTER_EOF
    38,  # CANNOT_PARSE_DATE
    41,  # CANNOT_PARSE_DATETIME
    53,  # TYPE_MISMATCH
    69,  # ARGUMENT_OUT_OF_BOUND
    70,  # CANNOT_CONVERT_TYPE
    72,  # CANNOT_PARSE_NUMBER
    117,  # INCORRECT_DATA
    131,  # TOO_LARGE_STRING_SIZE
    321,  # VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
    349,  # CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN
    407,  # DECIMAL_OVERFLOW
    469,  # VIOLATED_CONSTRAINT
    691,  # UNKNOWN_ELEMENT_OF_ENUM
}
_REASONS = {469: "constraint_violated"}
TOO_MANY_PARTITIONS = 252
MONTHS_PER_INSERT = 50  # ClickHouse's max_partitions_per_insert_block defaults to 100
UNKNOWN_MONTH = "unknown"
_INT64 = (-(2**63), 2**63 - 1)
_UINT64 = (0, 2**64 - 1)
_CODE = re.compile(r"Code: (\d+)")
_NOISE = re.compile(r"\s*\((in file/uri|version) [^)]*\)|: While executing.*$", re.DOTALL)


class TransientWriteError(Exception):
    """The write may succeed if repeated (same batch, same token)."""


@dataclass(frozen=True)
class Rejected:
    """A row ClickHouse will not store, with a short reason code and ClickHouse's words."""

    record: Record
    reason: str
    detail: str


class Writer(Protocol):
    def write(self, batch: Batch) -> list[Rejected]:
        """Insert `batch` exactly once; return the rows rejected; raise TransientWriteError to retry."""
        ...


def error_code(exc: BaseException) -> int | None:
    match = _CODE.search(str(exc))
    return int(match.group(1)) if match else None


def is_data_error(exc: BaseException) -> bool:
    return error_code(exc) in DATA_ERROR_CODES


def describe(exc: BaseException) -> tuple[str, str]:
    """(reason code, one-line detail) for a rejected row."""
    code = error_code(exc)
    reason = _REASONS.get(code or 0, "clickhouse_rejected")
    text = str(exc).split("DB::Exception: ")[-1]
    detail = " ".join(_NOISE.sub("", text).split())[:400]
    return reason, f"ClickHouse code {code}: {detail}"


MAX_REINSERTS = 3
# How to find one stored row again, per table: SQL with bound parameters, and each parameter's field
# in the record's JSON (the processor's normalised schema, docs/architecture.md).
PRESENCE: dict[str, tuple[str, dict[str, str]]] = {
    "aggregates": (
        "SELECT count() FROM `{db}`.aggregates WHERE symbol = {{symbol:String}} AND ev = {{ev:String}} "
        "AND timestamp = fromUnixTimestamp64Milli({{t:Int64}}, 'UTC') "
        # this receipt: a correction of the same bar is another row
        "AND received_delay_ms = intDiv({{r:Int64}}, 1000000) - {{e:Int64}}",
        {"symbol": "symbol", "ev": "ev", "t": "start_ms", "r": "received_ns", "e": "end_ms"},
    ),
    "trades": (
        "SELECT count() FROM `{db}`.trades WHERE symbol = {{symbol:String}} "
        "AND timestamp = fromUnixTimestamp64Milli({{t:Int64}}, 'UTC') AND sequence = {{sequence:UInt64}}",
        {"symbol": "symbol", "t": "ts_ms", "sequence": "sequence"},
    ),
    "quotes": (
        "SELECT count() FROM `{db}`.quotes WHERE symbol = {{symbol:String}} "
        "AND timestamp = fromUnixTimestamp64Milli({{t:Int64}}, 'UTC') AND sequence = {{sequence:UInt64}}",
        {"symbol": "symbol", "t": "ts_ms", "sequence": "sequence"},
    ),
    "books": (
        "SELECT count() FROM `{db}`.books WHERE symbol = {{symbol:String}} "
        "AND timestamp = fromUnixTimestamp64Milli({{t:Int64}}, 'UTC') AND exchange = {{exchange:UInt16}}",
        {"symbol": "symbol", "t": "ts_ms", "exchange": "exchange"},
    ),
    "feed_gaps": (  # one state of a gap; not partitioned by month (no `t`)
        "SELECT count() FROM `{db}`.feed_gaps "
        "WHERE gap_id = {{gap_id:String}} AND version = {{version:UInt64}}",
        {"gap_id": "gap_id", "version": "version"},
    ),
}
_TEXT_KEYS = {"symbol", "ev", "gap_id"}
_UNSIGNED_KEYS = {"sequence", "version"}


class ClickHouseWriter:
    """Writes batches into the raw tables (aggregates, trades, quotes, books) through clickhouse-connect.

    With `sessions` (more clients of the same ClickHouse), the tables of one batch are inserted at
    the same time, one session each: a batch's trades, quotes and aggregates are then queryable
    after the slowest of their inserts instead of after all three in turn. Each table's inserts,
    tokens and rejected rows are the same either way, and a write returns only when every table's
    inserts have ended, so a retried batch never overlaps itself.

    `write` may be called from several threads at once (the flusher inserts the batches of
    different partitions together): every insert takes an idle session for its duration, so no
    session ever runs two statements at once (a chDB session runs one at a time).
    """

    def __init__(
        self,
        client: Any,
        database: str,
        settings: dict[str, Any] | None = None,
        topic_tables: dict[str, str] | None = None,
        sessions: Sequence[Any] = (),
    ):
        self.client = client
        self.database = database
        self.topic_tables = topic_tables or {}
        self.settings = {**INSERT_SETTINGS, **(settings or {})}
        self._inserters = [_Inserter(c, database, self.settings) for c in (client, *sessions)]
        self._idle: queue.SimpleQueue[_Inserter] = queue.SimpleQueue()
        for inserter in self._inserters:
            self._idle.put(inserter)
        self._pool = (
            ThreadPoolExecutor(len(self._inserters), thread_name_prefix="sink-insert") if sessions else None
        )

    @property
    def inserts(self) -> int:
        """ClickHouse inserts issued (for metrics and tests)."""
        return sum(inserter.inserts for inserter in self._inserters)

    def write(self, batch: Batch) -> list[Rejected]:
        rejected: list[Rejected] = []
        tables: dict[str, tuple[list[Record], list[bytes]]] = {}
        fixed = self.topic_tables.get(batch.topic)
        for record in batch.records:  # the hot loop: about a microsecond per record
            value = record.value() or b""
            table = (
                (fixed or _route(value)) if value else Unroutable("empty_value", "the record has no value")
            )
            if isinstance(table, Unroutable):
                rejected.append(Rejected(record, table.reason, table.detail))
                continue
            found = tables.get(table)
            if found is None:
                found = tables[table] = ([], [])
            found[0].append(record)
            found[1].append(value)
        parts: list[tuple[list[Rejected], _TableWork | None]] = []
        for table in sorted(tables):  # a fixed order: a replay issues the same inserts
            records, values = tables[table]
            early: list[Rejected] = []
            if sum(value.count(b"\n") for value in values):  # one JSON value per line, or it is not ours
                records, values = _one_line_each(records, values, early)
            token = f"{batch.token}:{table}"
            parts.append((early, _TableWork(table, records, values, token, batch.replay) if values else None))
        written = iter(self._write_tables([work for _, work in parts if work is not None]))
        for early, work in parts:
            rejected.extend(early)
            if work is not None:
                rejected.extend(next(written))
        return rejected

    def _write_tables(self, work: list[_TableWork]) -> list[list[Rejected]]:
        """Each table's rejected rows, in `work`'s order; the first failure (in that order) raised
        once every table's inserts have ended."""
        if self._pool is None or len(work) < 2:
            return [self._on_idle_session(item) for item in work]
        futures = [self._pool.submit(self._on_idle_session, item) for item in work]
        wait(futures)
        return [future.result() for future in futures]

    def _on_idle_session(self, item: _TableWork) -> list[Rejected]:
        inserter = self._idle.get()  # waits only while other writes hold every session
        try:
            return inserter.write_table(item)
        finally:
            self._idle.put(inserter)

    def close(self) -> None:
        """Stop the insert threads (the clients are the caller's)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)


@dataclass(frozen=True)
class _TableWork:
    table: str
    records: list[Record]
    values: list[bytes]
    token: str
    replay: bool


class _Inserter:
    """One session's inserts of a table's rows: deduplicated by token, bad rows isolated, a replay
    checked for presence."""

    def __init__(self, client: Any, database: str, settings: dict[str, Any]):
        self.client = client
        self.database = database
        self.settings = settings
        self.inserts = 0

    def write_table(self, item: _TableWork) -> list[Rejected]:
        rejected: list[Rejected] = []
        self._insert_isolating(item.table, item.records, item.values, item.token, rejected)
        if item.replay and not rejected:
            self._ensure_present(item.table, item.values, item.token)
        return rejected

    def _ensure_present(self, table: str, values: list[bytes], token: str) -> None:
        """After a replayed insert: each month's rows are stored, or that month is inserted again.

        ClickHouse writes one part per partition (month) of an insert and may have committed some of
        them before a crash, so each month is checked, and inserted again, on its own.
        """
        for month, rows in _by_month(table, values).items():
            probes = [rows[0]] if len(rows) == 1 else [rows[0], rows[-1]]
            attempt = 0
            while not all(self._present(table, value) for value in probes):
                attempt += 1
                if attempt > MAX_REINSERTS:
                    raise TransientWriteError(f"replayed rows of {token} ({month}) are still not stored")
                fields = {"token": token, "table": table, "month": month, "rows": len(rows)}
                log.warning(
                    "a replayed insert was dropped as a duplicate without storing its rows; inserting again",
                    extra={"fields": {**fields, "attempt": attempt}},
                )
                self._insert(table, rows, f"{token}:again{attempt}:{month}")

    def _present(self, table: str, value: bytes) -> bool:
        sql, _keys = PRESENCE[table]
        parameters = _probe_parameters(table, value)
        if parameters is None:  # no key to find it by (ClickHouse stored it as it could): nothing to redo
            return True
        try:
            result = self.client.query(sql.format(db=self.database), parameters=parameters)
        except Exception as exc:
            if is_data_error(exc):  # ClickHouse cannot compare this key: nothing to probe it by
                return True
            raise TransientWriteError(f"presence check on {table} failed: {describe(exc)[1]}") from exc
        return bool(result.result_rows and result.result_rows[0][0])

    def _insert_isolating(
        self, table: str, records: list[Record], values: list[bytes], token: str, out: list[Rejected]
    ) -> None:
        try:
            self._insert(table, values, token)
        except Exception as exc:
            if error_code(exc) == TOO_MANY_PARTITIONS and len(values) > 1:
                self._insert_by_months(table, records, values, token, out)
                return
            if not is_data_error(exc):
                raise TransientWriteError(f"insert {token} failed: {describe(exc)[1]}") from exc
            if len(values) == 1:
                reason, detail = describe(exc)
                out.append(Rejected(records[0], reason, detail))
                return
            middle = len(values) // 2
            self._insert_isolating(table, records[:middle], values[:middle], f"{token}/0", out)
            self._insert_isolating(table, records[middle:], values[middle:], f"{token}/1", out)

    def _insert_by_months(
        self, table: str, records: list[Record], values: list[bytes], token: str, out: list[Rejected]
    ) -> None:
        """TOO_MANY_PARTITIONS: insert the rows in groups of at most MONTHS_PER_INSERT months."""
        months: dict[str, tuple[list[Record], list[bytes]]] = {}
        for record, value in zip(records, values, strict=True):
            group = months.setdefault(_month_of(table, value), ([], []))
            group[0].append(record)
            group[1].append(value)
        ordered = [months[month] for month in sorted(months)]
        if len(ordered) == 1:  # one month and still too many partitions: not ours to split further
            middle = len(values) // 2
            self._insert_isolating(table, records[:middle], values[:middle], f"{token}/0", out)
            self._insert_isolating(table, records[middle:], values[middle:], f"{token}/1", out)
            return
        log.warning(
            "an insert spans too many months; inserting it month by month",
            extra={"fields": {"token": token, "table": table, "months": len(ordered)}},
        )
        for n, start in enumerate(range(0, len(ordered), MONTHS_PER_INSERT)):
            chunk = ordered[start : start + MONTHS_PER_INSERT]
            chunk_records = [record for group in chunk for record in group[0]]
            chunk_values = [value for group in chunk for value in group[1]]
            self._insert_isolating(table, chunk_records, chunk_values, f"{token}/m{n}", out)

    def _insert(self, table: str, values: list[bytes], token: str) -> None:
        self.inserts += 1
        self.client.raw_insert(
            f"`{self.database}`.{table}",
            COLUMNS[table],
            insert_block=b"\n".join(values),
            fmt="JSONEachRow",
            settings={**self.settings, "insert_deduplication_token": token},
        )


def _by_month(table: str, values: list[bytes]) -> dict[str, list[bytes]]:
    """The values grouped by the month of their timestamp (the tables' partition key), in order."""
    months: dict[str, list[bytes]] = {}
    for value in values:
        months.setdefault(_month_of(table, value), []).append(value)
    return months


def _route(value: bytes) -> str | Unroutable:
    try:
        return route(value)
    except Exception as exc:
        return Unroutable("malformed_json", f"the value cannot be routed: {type(exc).__name__}")


def _row(value: bytes) -> dict[str, Any] | None:
    try:
        row = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    return row if isinstance(row, dict) else None


def _month_of(table: str, value: bytes) -> str:
    """`YYYYMM` of a row's time, or UNKNOWN_MONTH when it has none that a calendar can hold."""
    field = PRESENCE[table][1].get("t")
    if field is None:  # a table not partitioned by time
        return UNKNOWN_MONTH
    row = _row(value)
    millis = (row.get(field) if row is not None else None) or 0
    try:
        return datetime.fromtimestamp(millis / 1000, UTC).strftime("%Y%m")
    except (TypeError, OverflowError, ValueError, OSError):  # not a number, or past the year 9999
        return UNKNOWN_MONTH


def _probe_parameters(table: str, value: bytes) -> dict[str, Any] | None:
    """The parameters of a row's PRESENCE query, or None when its key cannot be bound."""
    row = _row(value)
    if row is None:
        return None
    parameters: dict[str, Any] = {}
    for name, field in PRESENCE[table][1].items():
        item = row.get(field)
        if name in _TEXT_KEYS:
            item = item or ""
            if not isinstance(item, str):
                return None
        else:
            item = item or 0
            low, high = _UINT64 if name in _UNSIGNED_KEYS else _INT64
            if type(item) is not int or not low <= item <= high:
                return None
        parameters[name] = item
    return parameters


def _one_line_each(
    records: list[Record], values: list[bytes], rejected: list[Rejected]
) -> tuple[list[Record], list[bytes]]:
    """Reject values spanning several lines (JSONEachRow reads one value per line); keep the rest."""
    kept: tuple[list[Record], list[bytes]] = ([], [])
    for record, value in zip(records, values, strict=True):
        if b"\n" in value:
            rejected.append(Rejected(record, "malformed_json", "the value spans several lines"))
        else:
            kept[0].append(record)
            kept[1].append(value)
    return kept
