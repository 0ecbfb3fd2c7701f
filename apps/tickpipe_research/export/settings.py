"""Settings of `tickpipe export` (each also a CLI flag): where to read, where to write, what."""

from __future__ import annotations

from pydantic import Field, field_validator

from tickpipe_clickhouse.settings import ClickHouseSettings
from tickpipe_research.export.datasets import DATASETS


class ExportSettings(ClickHouseSettings):
    """`tickpipe export`: one UTC day of tickpipe's tables as Parquet on S3, written by ClickHouse."""

    export_uri: str = Field(
        "s3://tickpipe-export/tickpipe", description="s3://bucket/prefix of the Parquet tier"
    )
    export_datasets: str = Field(
        ",".join(DATASETS), description=f"comma-separated datasets: {', '.join(DATASETS)}"
    )
    export_clickhouse_s3_endpoint: str | None = Field(
        None, description="the S3 endpoint as the ClickHouse server reaches it (default AWS_ENDPOINT_URL)"
    )
    aws_default_region: str = Field("us-east-1", description="the bucket's region")

    @field_validator("export_datasets")
    @classmethod
    def _known(cls, value: str) -> str:
        unknown = sorted(set(names(value)) - set(DATASETS))
        if unknown or not names(value):
            raise ValueError(f"datasets are {', '.join(DATASETS)} (got {value!r})")
        return value

    def datasets(self) -> list[str]:
        return names(self.export_datasets)


def names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]
