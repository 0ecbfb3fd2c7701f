"""`tickpipe backfill` settings: each an environment variable and a `--flag`."""

from __future__ import annotations

from pydantic import Field, SecretStr

from tickpipe_clickhouse.connect import ClickHouseLocation


class BackfillSettings(ClickHouseLocation):
    polygon_api_key: SecretStr = Field(SecretStr(""), description="Polygon/Massive API key (secret)")
    polygon_rest_url: str = Field(
        "https://api.polygon.io", min_length=1, description="REST base URL (api.massive.com also serves)"
    )
    requests_per_minute: float = Field(
        0, ge=0, description="REST requests per minute your plan allows (free: 5); 0 = no limit"
    )
    backfill_concurrency: int = Field(4, ge=1, le=64, description="REST requests in flight at most")
    backfill_max_wait_seconds: float = Field(
        900, gt=0, description="give up a request after waiting this long on 429/5xx in total"
    )
    backfill_settle_minutes: float = Field(
        15,
        ge=0,
        description="a window ending less than this long ago is loaded but not marked done (REST lags)",
    )
    flatfiles_bucket: str = Field("flatfiles", min_length=1, description="flat files bucket")
    flatfiles_endpoint_url: str | None = Field(
        None, description="flat files S3 endpoint (files.polygon.io); default AWS_ENDPOINT_URL"
    )
    flatfiles_access_key_id: SecretStr = Field(SecretStr(""), description="flat files S3 key id (secret)")
    flatfiles_secret_access_key: SecretStr = Field(SecretStr(""), description="flat files S3 secret")
