"""Where the export goes: an `s3://bucket/prefix` URI, the keys under it, and how ClickHouse reaches it.

Keys: `PREFIX/DATASET/date=YYYY-MM-DD/symbol=SYMBOL/part.parquet` (the symbol URL-encoded, so
`X:BTC-USD` is `symbol=X%3ABTC-USD`: Hive-style readers decode it), and the day's
`PREFIX/DATASET/date=YYYY-MM-DD/_manifest.json`. ClickHouse is given a path-style URL on the S3
endpoint (AWS_ENDPOINT_URL, or the endpoint as the ClickHouse server reaches it), else the AWS
virtual-hosted URL of the bucket's region.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from urllib.parse import quote

MANIFEST = "_manifest.json"
PART = "part.parquet"


@dataclass(frozen=True)
class ExportLocation:
    bucket: str
    prefix: str  # no leading or trailing slash; may be empty

    @classmethod
    def parse(cls, uri: str) -> ExportLocation:
        scheme, sep, rest = uri.partition("://")
        bucket, _, prefix = rest.partition("/")
        if scheme != "s3" or not sep or not bucket:
            raise ValueError(f"EXPORT_URI must look like s3://bucket/prefix (got {uri!r})")
        return cls(bucket, prefix.strip("/"))

    def day_prefix(self, dataset: str, day: dt.date) -> str:
        """`PREFIX/DATASET/date=YYYY-MM-DD/`: everything one day's export of one dataset writes."""
        head = f"{self.prefix}/" if self.prefix else ""
        return f"{head}{dataset}/date={day.isoformat()}/"

    def manifest_key(self, dataset: str, day: dt.date) -> str:
        return self.day_prefix(dataset, day) + MANIFEST

    def part_template(self, dataset: str, day: dt.date) -> str:
        """The key ClickHouse writes, with its `{_partition_id}` placeholder for the symbol."""
        return self.day_prefix(dataset, day) + "symbol={_partition_id}/" + PART


def clickhouse_url(endpoint: str | None, region: str, bucket: str, key: str) -> str:
    """The URL ClickHouse's s3() function writes `key` to (the key's placeholders kept as they are)."""
    path = quote(key, safe="/{}_=-.%")
    if endpoint:
        return f"{endpoint.rstrip('/')}/{bucket}/{path}"
    return f"https://{bucket}.s3.{region}.amazonaws.com/{path}"
