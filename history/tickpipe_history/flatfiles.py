"""`tickpipe backfill --source flatfiles`: Polygon's minute-aggregate flat files, read by ClickHouse.

boto3 finds the day files in the bucket (`us_stocks_sip/minute_aggs_v1/YYYY/MM/YYYY-MM-DD.csv.gz`,
with the flat files' own endpoint and keys); ClickHouse then reads each file itself with its
`s3()` table function and inserts the minute bars (`ev` = 'AM') into `aggregates` in one
INSERT ... SELECT: no row passes through Python.

Exactly once, per file: the SELECT leaves out the (ticker, minute) already stored, the insert
carries the token `flatfiles:KEY:ETAG`, and afterwards the same anti-join must count zero rows
missing (or the missing ones go in again under a new token). A day is marked done in
backfill_progress (dataset `flatfiles_minute_aggs`), so a second run skips it; a day with no file
yet (flat files appear the next morning) is left for the next run.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any

from tickpipe_clickhouse.connect import INSERT_SETTINGS
from tickpipe_history.backfill import Report
from tickpipe_history.settings import BackfillSettings
from tickpipe_history.store import HistoryStore

log = logging.getLogger(__name__)

DATASET = "flatfiles_minute_aggs"
PREFIX = "us_stocks_sip/minute_aggs_v1"
DAY_MS = 86_400_000
STRUCTURE = (
    "ticker String, volume Float64, open Float64, close Float64, high Float64, low Float64, "
    "window_start Int64, transactions UInt64"
)
MAX_REINSERTS = 3


def day_key(day: dt.date) -> str:
    return f"{PREFIX}/{day:%Y}/{day:%m}/{day.isoformat()}.csv.gz"


def _quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


class FlatFileLoader:
    def __init__(
        self, store: HistoryStore, s3: Any, bucket: str, endpoint: str, key_id: str, secret: str
    ) -> None:
        self.store = store
        self.s3 = s3
        self.bucket = bucket
        self.endpoint = endpoint.rstrip("/")
        self.key_id = key_id
        self.secret = secret

    def source(self, key: str) -> str:
        """The s3() table function reading one file (credentials inline; ClickHouse masks them in logs)."""
        url = f"{self.endpoint}/{self.bucket}/{key}"
        return (
            f"s3({_quote(url)}, {_quote(self.key_id)}, {_quote(self.secret)}, 'CSVWithNames', "
            f"{_quote(STRUCTURE)}, 'gzip')"
        )

    def _anti_join(self, key: str, day_ms: int) -> str:
        db = self.store.db
        # The database name is a validated identifier; the rest is constants and integers.
        return (
            f"FROM {self.source(key)} AS f WHERE (f.ticker, intDiv(f.window_start, 1000000)) NOT IN ("  # noqa: S608
            f"SELECT symbol, toUnixTimestamp64Milli(timestamp) FROM `{db}`.aggregates "
            f"WHERE ev = 'AM' AND timestamp >= fromUnixTimestamp64Milli({int(day_ms)}, 'UTC') "
            f"AND timestamp < fromUnixTimestamp64Milli({int(day_ms + DAY_MS)}, 'UTC'))"
        )

    def load(self, key: str, etag: str, day_ms: int) -> int:
        """Insert the file's minute bars not stored yet; returns how many rows went in."""
        db = self.store.db
        client = self.store.client
        insert = (
            f"INSERT INTO `{db}`.aggregates (ev, symbol, start_ms, end_ms, open, high, low, close, volume, "
            "vwap, avg_size, otc, received_ns) "
            "SELECT 'AM', f.ticker, intDiv(f.window_start, 1000000), "
            "intDiv(f.window_start, 1000000) + 60000, f.open, f.high, f.low, f.close, f.volume, 0, "
            "if(f.transactions > 0, f.volume / f.transactions, 0), false, "
            f"{time.time_ns()} {self._anti_join(key, day_ms)}"
        )
        count = f"SELECT count() {self._anti_join(key, day_ms)}"
        token = f"flatfiles:{key}:{etag}"
        with self.store.lock:
            before = self._stored(day_ms)
            for attempt in range(MAX_REINSERTS + 1):
                suffix = f":again{attempt}" if attempt else ""
                settings = {**INSERT_SETTINGS, "insert_deduplication_token": token + suffix}
                client.command(insert, settings=settings)
                missing = int(client.command(count))
                if not missing:
                    return self._stored(day_ms) - before
                log.warning("flat-file rows missing after insert; again", extra={"fields": {"key": key}})
        raise RuntimeError(f"{key}: rows still missing after {MAX_REINSERTS} inserts")

    def _stored(self, day_ms: int) -> int:
        sql = (
            f"SELECT count() FROM `{self.store.db}`.aggregates WHERE ev = 'AM' "  # noqa: S608
            f"AND timestamp >= fromUnixTimestamp64Milli({int(day_ms)}, 'UTC') "
            f"AND timestamp < fromUnixTimestamp64Milli({int(day_ms + DAY_MS)}, 'UTC')"
        )
        return int(self.store.client.command(sql))

    def run(self, from_ms: int, to_ms: int, refetch: bool = False) -> Report:
        started = time.monotonic()
        report = Report()
        done = set() if refetch else self.store.done_chunks(DATASET)
        day_ms = from_ms - from_ms % DAY_MS
        while day_ms < to_ms:
            day = dt.datetime.fromtimestamp(day_ms / 1000, tz=dt.UTC).date()
            report.chunks_planned += 1
            if ("*", day_ms) in done:
                report.chunks_skipped += 1
            else:
                state, rows = self._day(day, day_ms, report)
                report.chunks[state] = report.chunks.get(state, 0) + 1
                report.rows_inserted += rows
                self.store.mark(DATASET, "*", day_ms, day_ms + DAY_MS, state, 1, rows)
            day_ms += DAY_MS
        report.seconds = time.monotonic() - started
        return report

    def _day(self, day: dt.date, day_ms: int, report: Report) -> tuple[str, int]:
        key = day_key(day)
        report.requests += 1
        try:
            head = self.s3.head_object(Bucket=self.bucket, Key=key)
        except self.s3.exceptions.ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in ("404", "NoSuchKey", "NotFound"):
                report.failures.append(f"{key}: no such file yet")
                return "partial", 0
            raise
        rows = self.load(key, str(head.get("ETag", "")).strip('"'), day_ms)
        report.pages += 1
        report.rows_fetched += rows
        return "done", rows


def run_flatfiles(settings: BackfillSettings, from_ms: int, to_ms: int, refetch: bool) -> Report:
    import boto3

    from tickpipe_history.run import open_store

    endpoint = settings.flatfiles_endpoint_url or settings.aws_endpoint_url or "https://files.polygon.io"
    key_id = settings.flatfiles_access_key_id.get_secret_value()
    secret = settings.flatfiles_secret_access_key.get_secret_value()
    options: dict[str, Any] = {"endpoint_url": endpoint}
    if key_id:
        options |= {"aws_access_key_id": key_id, "aws_secret_access_key": secret}
    s3 = boto3.client("s3", **options)
    if not key_id:  # fall back to the environment's credentials (AWS_ACCESS_KEY_ID, ...)
        credentials = boto3.session.Session().get_credentials()
        if credentials is not None:
            key_id, secret = credentials.access_key, credentials.secret_key
    loader = FlatFileLoader(open_store(settings), s3, settings.flatfiles_bucket, endpoint, key_id, secret)
    return loader.run(from_ms, to_ms, refetch)
