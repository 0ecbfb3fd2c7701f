"""Export one UTC day of one dataset: clear the day's prefix, let ClickHouse write, write the manifest.

ClickHouse itself writes the Parquet (`INSERT INTO FUNCTION s3(...) PARTITION BY symbol`): one file
per symbol, rows in the dataset's order, no row passing through Python. Re-running a day replaces it
exactly: the manifest goes first (a reader that finds no manifest knows the day is incomplete), then
every object under the day's prefix (so a symbol that is gone from the source is gone from S3),
then ClickHouse writes, then the manifest is written last, listing each file with its row count (read
back from the files by ClickHouse), size and SHA-256.

This runs on a DIRECT ClickHouse connection with its own settings: writing to S3 is exactly what the
read-only query path forbids. It is an operator's command, never exposed to ad hoc queries.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from tickpipe_research.export.datasets import DATASETS
from tickpipe_research.export.location import MANIFEST, PART, ExportLocation, clickhouse_url

log = logging.getLogger(__name__)

# ClickHouse settings of the export's own queries (never the query path's).
EXPORT_SETTINGS: dict[str, Any] = {
    "s3_truncate_on_insert": 1,  # a file left by a crashed run is replaced, not appended to
    "s3_retry_attempts": 5,  # transient errors are retried; an unreachable S3 fails in seconds, not minutes
    "output_format_parquet_compression_method": "zstd",
    "output_format_parquet_row_group_size": 1_000_000,
    "output_format_parquet_string_as_string": 1,
}
HASH_WORKERS = 8  # files read back at once for their SHA-256 (boto3 clients are thread-safe)


@dataclass(frozen=True)
class S3Access:
    """How ClickHouse signs its S3 requests: the given keys, or its own (IAM role, environment)."""

    endpoint: str | None
    region: str
    access_key: str | None = None
    secret_key: str | None = None
    session_token: str | None = None

    def function(self, url_param: str) -> tuple[str, dict[str, str]]:
        """The `s3(...)` call with every argument a bound parameter, and those parameters."""
        if self.access_key and self.secret_key:
            params = {"s3_key": self.access_key, "s3_secret": self.secret_key}
            args = "{s3_key:String}, {s3_secret:String}"
            if self.session_token:
                params["s3_token"] = self.session_token
                args += ", {s3_token:String}"
            return f"s3({{{url_param}:String}}, {args}, 'Parquet')", params
        return f"s3({{{url_param}:String}}, 'Parquet')", {}


@dataclass(frozen=True)
class DayExport:
    dataset: str
    day: dt.date
    rows: int
    files: int
    bytes: int
    write_seconds: float
    seconds: float


def export_day(
    client: Any,
    s3: Any,
    access: S3Access,
    location: ExportLocation,
    database: str,
    dataset: str,
    day: dt.date,
) -> DayExport:
    """Replace `dataset`'s `day` under `location` with ClickHouse's Parquet and a manifest."""
    started = time.perf_counter()
    spec = DATASETS[dataset]
    prefix = location.day_prefix(dataset, day)
    s3.delete_object(Bucket=location.bucket, Key=location.manifest_key(dataset, day))
    delete_prefix(s3, location.bucket, prefix)

    function, params = access.function("url")
    url = clickhouse_url(
        access.endpoint, access.region, location.bucket, location.part_template(dataset, day)
    )
    start = f"{day.isoformat()} 00:00:00.000"
    write = time.perf_counter()
    client.command(
        f"INSERT INTO FUNCTION {function} PARTITION BY encodeURLComponent(symbol)\n{spec.select(database)}",
        parameters={**params, "url": url, "start": start},
        settings=EXPORT_SETTINGS,
    )
    write_seconds = time.perf_counter() - write

    glob = clickhouse_url(access.endpoint, access.region, location.bucket, f"{prefix}symbol=*/{PART}")
    keys = sorted(list_keys(s3, location.bucket, prefix))
    counts = file_rows(client, access, glob) if keys else {}
    # one GET per file to hash it: several at once (one file per symbol, each a round trip)
    with ThreadPoolExecutor(max_workers=HASH_WORKERS) as pool:
        sums = list(pool.map(lambda key: sha256_of(s3, location.bucket, key), keys))
    files: list[dict[str, Any]] = []
    for key, (size, digest) in zip(keys, sums, strict=True):
        symbol = unquote(key[len(prefix) :].split("/", 1)[0].removeprefix("symbol="))
        files.append(
            {"key": key, "symbol": symbol, "rows": counts.get(key, 0), "bytes": size, "sha256": digest}
        )
    total = sum(int(f["rows"]) for f in files)
    manifest = {
        "dataset": dataset,
        "date": day.isoformat(),
        "format": "parquet",
        "source": f"{database}.{spec.source}",
        "exported_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "rows": total,
        "files": files,
    }
    s3.put_object(
        Bucket=location.bucket,
        Key=location.manifest_key(dataset, day),
        Body=json.dumps(manifest, indent=2).encode(),
        ContentType="application/json",
    )
    result = DayExport(
        dataset,
        day,
        total,
        len(files),
        sum(int(f["bytes"]) for f in files),
        write_seconds,
        time.perf_counter() - started,
    )
    log.info(
        "exported %s %s: %d rows in %d files",
        dataset,
        day.isoformat(),
        result.rows,
        result.files,
        extra={"fields": {"prefix": prefix, "seconds": round(result.seconds, 3)}},
    )
    return result


def file_rows(client: Any, access: S3Access, glob: str) -> dict[str, int]:
    """Rows per file, counted by ClickHouse from the Parquet files themselves (key -> rows)."""
    function, params = access.function("glob")
    result = client.query(
        f"SELECT _path, count() FROM {function} GROUP BY _path",  # noqa: S608 (bound parameters only)
        parameters={**params, "glob": glob},
        settings={"s3_retry_attempts": EXPORT_SETTINGS["s3_retry_attempts"]},
    )
    # _path is bucket/key
    return {str(path).split("/", 1)[1]: int(rows) for path, rows in result.result_rows}


def list_keys(s3: Any, bucket: str, prefix: str) -> list[str]:
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(obj["Key"] for obj in page.get("Contents", []) if not obj["Key"].endswith(MANIFEST))
    return keys


def delete_prefix(s3: Any, bucket: str, prefix: str) -> int:
    """Delete every object under `prefix`; returns how many."""
    keys = [
        obj["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for obj in page.get("Contents", [])
    ]
    for at in range(0, len(keys), 1000):
        batch = [{"Key": key} for key in keys[at : at + 1000]]
        s3.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
    return len(keys)


def sha256_of(s3: Any, bucket: str, key: str) -> tuple[int, str]:
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    digest, size = hashlib.sha256(), 0
    for chunk in iter(lambda: body.read(1 << 20), b""):
        digest.update(chunk)
        size += len(chunk)
    return size, digest.hexdigest()
