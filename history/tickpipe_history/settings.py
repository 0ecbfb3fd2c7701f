"""`tickpipe backfill` settings: each an environment variable and a `--flag`."""

from __future__ import annotations

import re

from pydantic import Field, SecretStr, field_validator

from tickpipe.config import BaseServiceSettings

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class BackfillSettings(BaseServiceSettings):
    polygon_api_key: SecretStr = Field(SecretStr(""), description="Polygon/Massive API key (secret)")
    polygon_rest_url: str = Field(
        "https://api.polygon.io", min_length=1, description="REST base URL (api.massive.com also serves)"
    )
    clickhouse_dsn: SecretStr = Field(
        SecretStr("chdb://./data/clickhouse"),
        description="chdb://PATH (embedded, a folder) or http(s)://user:pass@host:8123/db",
    )
    clickhouse_database: str = Field("tickpipe", description="database holding tickpipe's tables")
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

    @field_validator("clickhouse_database")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if not _IDENTIFIER.match(value):
            raise ValueError("must be letters, digits and underscores, not starting with a digit")
        return value

    @field_validator("clickhouse_dsn")
    @classmethod
    def _known_scheme(cls, value: SecretStr) -> SecretStr:
        scheme = value.get_secret_value().partition("://")[0].lower()
        if scheme not in ("chdb", "http", "https"):
            raise ValueError(f"scheme must be chdb://, http:// or https:// (got {scheme or 'none'!r})")
        return value
