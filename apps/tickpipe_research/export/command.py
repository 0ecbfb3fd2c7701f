"""`tickpipe export`: days of tickpipe's tables as Parquet on S3, each day replaced whole.

It opens ClickHouse DIRECTLY (not the read-only query path) because it writes to S3. On the
embedded engine the chDB folder must be free: while a sink holds it, stop the sink first (or export
from a ClickHouse server); the read-only endpoint a sink serves will not write files.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from tickpipe_research.export.day import DayExport, S3Access, export_day
from tickpipe_research.export.location import ExportLocation
from tickpipe_research.export.settings import ExportSettings


class ExportError(RuntimeError):
    """The export cannot run as configured; the message says why and what to do."""


def s3_access(settings: ExportSettings) -> S3Access:
    """ClickHouse signs with the credentials boto3 finds here (environment, profile, role), if any."""
    import boto3

    credentials = boto3.Session().get_credentials()
    frozen = credentials.get_frozen_credentials() if credentials else None
    return S3Access(
        endpoint=settings.export_clickhouse_s3_endpoint or settings.aws_endpoint_url,
        region=settings.aws_default_region,
        access_key=frozen.access_key if frozen else None,
        secret_key=frozen.secret_key if frozen else None,
        session_token=frozen.token if frozen else None,
    )


def s3_client(settings: ExportSettings) -> Any:
    import boto3

    return boto3.client("s3", endpoint_url=settings.aws_endpoint_url, region_name=settings.aws_default_region)


def open_direct(settings: ExportSettings) -> Any:
    """A read-write client of the export's own, refusing to take a chDB folder from a live sink."""
    from tickpipe_clickhouse.connect import Target, connect
    from tickpipe_clickhouse.query.client import live_endpoint

    dsn = settings.clickhouse_dsn.get_secret_value()
    target = Target(dsn)
    if target.embedded and live_endpoint(target.folder) is not None:
        raise ExportError(
            f"a running sink holds {target.folder}; stop it before exporting from the embedded engine "
            "(the sink's query endpoint is read-only and cannot write to S3)"
        )
    return connect(dsn, settings.clickhouse_database)


def days_between(first: dt.date, last: dt.date) -> list[dt.date]:
    if last < first:
        raise ExportError(f"--until {last} is before --date {first}")
    return [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]


def run_export(
    settings: ExportSettings, days: list[dt.date], client: Any | None = None, s3: Any | None = None
) -> list[DayExport]:
    """Export each of `days` for each configured dataset; returns what was written."""
    location = ExportLocation.parse(settings.export_uri)
    own = client is None
    client = client or open_direct(settings)
    s3 = s3 or s3_client(settings)
    access = s3_access(settings)
    try:
        return [
            export_day(client, s3, access, location, settings.clickhouse_database, dataset, day)
            for day in days
            for dataset in settings.datasets()
        ]
    except Exception as exc:
        if not type(exc).__module__.startswith(("botocore", "boto3", "clickhouse_connect")):
            raise
        # S3's or ClickHouse's own words, without the credentials ClickHouse was given
        raise ExportError(scrub(f"{type(exc).__name__}: {exc}", access)) from None
    finally:
        if own:
            client.close()


def scrub(text: str, access: S3Access) -> str:
    """`text` without the S3 secret key or session token (a driver may echo its arguments)."""
    for secret in (access.secret_key, access.session_token):
        if secret:
            text = text.replace(secret, "***")
    return text
